//! Black-box tests of the HTTP API, one binary: each module reads as a part of the contract.
#![allow(clippy::unwrap_used)]

mod admin;
mod around;
mod backends;
mod binary;
mod checks;
mod fuzz_corpus;
mod helpers;
mod instances;
mod keys;
mod openapi;
mod operability;
mod operations;
mod permissions;
mod postgres;
mod quirks;
mod routing_and_auth;
mod socket;
mod storage;
mod values;
