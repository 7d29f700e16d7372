mod encoding;
mod files;
mod full;
mod old_journal;
mod replay;
mod roundtrip;
mod secrets;
mod tamper;
