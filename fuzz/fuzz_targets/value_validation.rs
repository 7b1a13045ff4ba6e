//! Request bodies as property values: kept verbatim, JSON when accepted, refused for the right reason.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jira_userprops::fuzzing::value_validation(data));
