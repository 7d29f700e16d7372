#![no_main]
//! Fuzz target `dmf`: see `cutover::fuzzing::dmf`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover::fuzzing::dmf(data));
