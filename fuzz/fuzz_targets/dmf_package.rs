#![no_main]
//! Fuzz target `dmf_package`: see `cutover::fuzzing::dmf_package`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover::fuzzing::dmf_package(data));
