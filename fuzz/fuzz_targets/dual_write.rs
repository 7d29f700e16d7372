#![no_main]
//! Fuzz target `dual_write`: see `cutover::fuzzing::dual_write`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover::fuzzing::dual_write(data));
