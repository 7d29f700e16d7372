#![no_main]
//! Fuzz target `error_body`: see `cutover::fuzzing::error_body`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover::fuzzing::error_body(data));
