//! jira-userprops: a stand-in server for Jira Cloud's user properties REST API.
//!
//! The map, following a request from the socket down:
//!
//! - [`server`]: the accept loop: connection limits, header timeouts, graceful shutdown.
//! - [`http`]: the route table, middleware and extractors; turns [`error::Error`] into Jira's
//!   responses. Holds no SQL and no permission rule.
//! - [`service`]: the operations, in Jira's order of checks: authenticate, authorize, validate,
//!   store. Knows nothing of HTTP.
//! - [`store`]: the storage backends behind one closed enum. Knows nothing of callers.
//! - [`domain`]: validated values (keys, values, account ids) and [`credentials`]: tokens.
//! - [`admin`]: users, tokens, reset and snapshots for the admin API and the command line;
//!   [`snapshot`]: the snapshot format.
//! - [`seed`]: the starting state; [`config`]: flags and environment variables; [`cli`]: the
//!   subcommands.
//! - `fuzzing` (hidden, behind the `fuzzing` feature): the properties that the fuzz targets in
//!   `fuzz/` and the corpus replay in `cargo test` check.

pub mod admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod domain;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod seed;
pub mod server;
pub mod service;
pub mod snapshot;
pub mod store;

pub use server::{ServeOptions, serve};

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
