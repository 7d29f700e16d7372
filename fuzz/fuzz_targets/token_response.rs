#![no_main]
//! Fuzz target `token_response`: see `cutover::fuzzing::token_response`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover::fuzzing::token_response(data));
