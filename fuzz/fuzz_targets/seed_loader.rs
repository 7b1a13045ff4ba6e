//! Seed and snapshot files: loaded or refused without panicking; what loads survives a snapshot round trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jira_userprops::fuzzing::seed_loader(data));
