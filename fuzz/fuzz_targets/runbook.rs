#![no_main]
//! Fuzz target `runbook`: see `cutover::fuzzing::runbook`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover::fuzzing::runbook(data));
