//! Path text as a property key: decoding, the key rules and the round trip through a link.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jira_userprops::fuzzing::key_decoding(data));
