//! Token requests (JSON or form bodies, with or without a Basic header): parsed without panicking, and what parses reads back the same in every form.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jira_userprops::fuzzing::token_request(data));
