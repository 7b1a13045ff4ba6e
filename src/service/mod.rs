//! The services: every rule about who may do what, and in which order Jira checks it. They know
//! nothing of HTTP; `crate::http` calls them, and they call `crate::store`.
//!
//! - [`authentication`]: who is calling, from the credentials a request carries.
//! - [`properties`]: the user-properties operations and the permission rule.
//! - [`admin`]: users, tokens, seeds, reset and snapshots, for the admin API, the command line
//!   and the start-up seed.
//! - [`sites`]: making, finding and deleting sites.
//! - [`apps`]: registering OAuth 2.0 apps and service accounts.
//! - [`oauth`]: the OAuth 2.0 flows and their tokens.

pub mod admin;
pub mod apps;
pub mod authentication;
pub mod oauth;
pub mod properties;
pub mod sites;

pub use admin::AdminService;
pub use authentication::Authenticator;
pub use properties::{PropertyService, authorize};
pub use sites::SiteService;

/// Runs CPU-bound `work` (a snapshot written or read) off the runtime's threads; its failure,
/// or the task's, as text.
async fn off_runtime<T, E>(
    work: impl FnOnce() -> std::result::Result<T, E> + Send + 'static,
) -> std::result::Result<T, String>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}
