#![no_main]
//! Fuzz target `dataverse`: see `cutover::fuzzing::dataverse`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover::fuzzing::dataverse(data));
