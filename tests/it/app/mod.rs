mod crash;
mod demo_kill_resume;
mod fuzz_regress;
mod preflight;
mod secrets_scan;
