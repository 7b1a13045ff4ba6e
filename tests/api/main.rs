//! Black-box tests of the HTTP API, one binary: each module reads as a part of the contract.
#![allow(clippy::unwrap_used)]

mod abuse;
mod admin;
mod any_input;
mod app_access;
mod apps;
mod around;
mod backends;
mod binary;
mod checks;
mod configuration;
mod connections;
mod console;
mod crash;
mod fixtures;
mod fuzz_corpus;
mod ground;
mod helpers;
mod instances;
mod keys;
mod logins;
mod observability;
mod openapi;
mod operability;
mod operations;
mod outages;
mod postgres;
mod property_permissions;
mod quirks;
mod races;
mod readme;
mod recipes;
mod relay;
mod route_access;

mod routing_and_auth;
mod sites;
mod socket;
mod storage;
mod values;
mod verification;
