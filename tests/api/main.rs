//! Black-box tests of the HTTP API, one binary: each module reads as a part of the contract.
#![allow(clippy::unwrap_used)]

mod abuse;
mod access;
mod admin;
mod around;
mod backends;
mod binary;
mod checks;
mod connections;
mod crash;
mod fuzz_corpus;
mod helpers;
mod instances;
mod keys;
mod logins;
mod openapi;
mod operability;
mod operations;
mod permissions;
mod postgres;
mod properties_props;
mod quirks;
mod races;
mod routing_and_auth;
mod socket;
mod storage;
mod values;
