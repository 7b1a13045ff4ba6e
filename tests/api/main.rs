//! Black-box tests of the HTTP API, one binary: each module reads as a part of the contract.
#![allow(clippy::unwrap_used)]

mod checks;
mod helpers;
mod instances;
mod keys_and_values;
mod operations;
mod permissions;
mod postgres;
mod socket;
mod storage;
