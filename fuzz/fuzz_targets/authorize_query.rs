//! The `/authorize` query and the consent form: parsed without panicking, and what parses reads back the same when written again.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jira_userprops::fuzzing::authorize_query(data));
