//! jira-userprops: a stand-in server for Jira Cloud's user properties REST API.
//!
//! The map, following a request from the socket down (`docs/architecture.md` has the picture):
//!
//! - [`server`]: the accept loop: connection limits, header timeouts, graceful shutdown.
//! - [`http`]: the route table and the middleware, in the order written in its module doc;
//!   extractors parse what a request carries; `http::error` turns the services' errors into
//!   Jira's responses (OAuth 2.0's endpoints answer in their own shapes). Holds no SQL and no
//!   permission rule.
//! - [`service`]: the rules: who is calling, who may do what (one pure function), in Jira's order
//!   of checks (scopes first, for apps); the administration of sites, apps, users, tokens, seeds
//!   and snapshots; OAuth 2.0's codes, grants and tokens. Knows nothing of HTTP.
//! - [`store`]: the storage backends behind one closed enum, with errors of their own; users,
//!   tokens and properties are keyed by site first, apps and OAuth 2.0 grants belong to the
//!   server. Knows nothing of callers.
//! - [`domain`]: validated values (sites, account ids, keys, values, emails, users); [`credentials`]:
//!   tokens and their digests, and `Secret`, which `Debug` never shows; [`error`]: what the
//!   services can say.
//! - [`faults`] and [`throttle`]: fault rules and rate limits, and failed-login counting, which
//!   `http` applies; [`clock`]: the time they read, which tests move.
//! - [`seed`] and [`snapshot`]: the seed and snapshot format; [`config`]: flags and environment
//!   variables; [`cli`]: the subcommands.
//! - `fuzzing` (hidden, behind the `fuzzing` feature): the properties that the fuzz targets
//!   in `fuzz/` and the corpus replay in `cargo test` check.

pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod domain;
pub mod error;
pub mod faults;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod seed;
pub mod server;
pub mod service;
pub mod snapshot;
pub mod store;
pub mod throttle;

pub use server::{ServeOptions, serve};

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: a signal that came in between would otherwise kill the
/// process outright, in-flight requests and all.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let received = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = received(interrupt) => {},
                () = received(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}
