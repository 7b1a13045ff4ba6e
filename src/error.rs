//! The service's and the store's error: what a client can act on, and opaque server faults.
//!
//! Answers that exist only in HTTP (no route, a method not allowed, a timeout, an injected fault,
//! the admin API's own refusals) are `crate::http`'s own.

use crate::domain::{KeyError, ValueError};

/// Everything a service operation can fail with. `src/http/error.rs` turns it into Jira's
/// response.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing, unparseable or rejected credentials.
    #[error("Client must be authenticated to access this resource.")]
    Unauthenticated {
        /// Basic or Bearer credentials were sent but did not match an active user.
        credentials_rejected: bool,
    },
    /// The caller may not act on this user's record.
    #[error("You do not have permission to access the properties of this user.")]
    Forbidden,
    /// The target user does not exist.
    #[error("The user with account ID '{0}' does not exist.")]
    UserNotFound(String),
    /// `GET /user` for an account that does not exist.
    #[error("Specified user does not exist or you do not have required permissions")]
    UserNotVisible,
    /// The property key breaks a rule.
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    /// The property value breaks a rule.
    #[error(transparent)]
    InvalidValue(#[from] ValueError),
    /// The property does not exist.
    #[error("The property {0} does not exist.")]
    PropertyNotFound(String),
    /// An OAuth token that lacks every scope the operation accepts: the gateway's answer.
    #[error("Unauthorized; scope does not match")]
    ScopeMismatch,
    /// A scoped API token sent as a Bearer token through the gateway: 404, as observed there.
    #[error("The requested resource could not be found.")]
    ScopedTokenAsBearer,
    /// No app has this client id.
    #[error("The app {0} does not exist.")]
    AppNotFound(String),
    /// The app has no grant with this id.
    #[error("The grant {0} does not exist.")]
    GrantNotFound(String),
    /// No site has this name or cloudId.
    #[error("Site not found.")]
    SiteNotFound,
    /// A token id that the user does not have.
    #[error("The token {0} does not exist.")]
    TokenNotFound(String),
    /// An administration request whose input makes no sense.
    #[error("{0}")]
    BadRequest(String),
    /// A create that clashes with what exists.
    #[error("{0}")]
    Conflict(String),
    /// A storage fault; the cause goes to the log, never to the client.
    #[error("database error")]
    Store(#[from] crate::store::Error),
    /// A fault with no better home (a failed random source, a panic); logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// Whether the caller's cached credentials were overtaken by a change: prove them again.
    pub fn is_stale(&self) -> bool {
        matches!(self, Self::Store(error) if error.is_stale())
    }

    /// Whether credentials were checked and turned down (not merely missing, nor a fault).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            Self::Unauthenticated {
                credentials_rejected: true
            }
        )
    }
}

/// The result of anything that can fail with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
