#![no_main]
//! Fuzz target `sim_scenario`: see `cutover::fuzzing::sim_scenario`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover::fuzzing::sim_scenario(data));
