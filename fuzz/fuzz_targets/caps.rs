#![no_main]
//! Fuzz target `caps`: see `cutover::fuzzing::caps`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover::fuzzing::caps(data));
