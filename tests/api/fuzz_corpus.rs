//! The committed fuzz corpus, replayed through the fuzz targets' own checks, so a regression on
//! any input the fuzzer once found interesting fails `cargo test` without cargo-fuzz.

use std::path::{Path, PathBuf};

use jira_userprops::fuzzing;

/// The corpus files of one fuzz target, in a stable order.
#[track_caller]
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no corpus files", dir.display());
    files
}

#[track_caller]
fn replay(target: &str, check: fn(&[u8])) {
    for file in corpus(target) {
        let data = std::fs::read(&file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its checks", file.display());
    }
}

#[test]
fn the_key_decoding_corpus_passes_its_checks() {
    replay("key_decoding", fuzzing::key_decoding);
}

#[test]
fn the_value_validation_corpus_passes_its_checks() {
    replay("value_validation", fuzzing::value_validation);
}

#[test]
fn the_credentials_corpus_passes_its_checks() {
    replay("credentials", fuzzing::credentials);
}

#[test]
fn the_seed_loader_corpus_passes_its_checks() {
    replay("seed_loader", fuzzing::seed_loader);
}

#[test]
fn the_authorize_query_corpus_passes_its_checks() {
    replay("authorize_query", fuzzing::authorize_query);
}

#[test]
fn the_token_request_corpus_passes_its_checks() {
    replay("token_request", fuzzing::token_request);
}
