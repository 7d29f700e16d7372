#![no_main]
//! Fuzz target `fno_odata`: see `cutover::fuzzing::fno_odata`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover::fuzzing::fno_odata(data));
