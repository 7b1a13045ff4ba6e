//! `Authorization` header values: parsed without panicking, and what parses survives being sent again.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jira_userprops::fuzzing::credentials(data));
