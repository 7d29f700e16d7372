mod crash;
mod demo_kill_resume;
mod fuzz_regress;
mod hostile_output;
mod init;
mod preflight;
mod rehearse;
mod secrets_scan;
