mod crash;
mod demo_kill_resume;
mod fuzz_regress;
mod secrets_scan;
