//! The one error type: what a client can act on, and opaque server faults.

use crate::domain::{KeyError, ValueError};

/// Everything a request can fail with. `src/http/error.rs` turns it into Jira's response.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing, unparseable or rejected credentials.
    #[error("Client must be authenticated to access this resource.")]
    Unauthenticated {
        /// Basic or Bearer credentials were sent but did not match an active user.
        credentials_rejected: bool,
    },
    /// `username` or `userKey` was sent: Jira Cloud is in GDPR strict mode.
    #[error("The query parameter '{0}' is not supported in GDPR strict mode.")]
    UnsupportedQueryParameter(&'static str),
    /// No `accountId`, or an empty one.
    #[error("The 'accountId' query parameter needs to be provided.")]
    MissingAccountId,
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
    /// The request body broke off before it was complete.
    #[error("The request body could not be read.")]
    UnreadableBody,
    /// A PUT body that is not declared as JSON.
    #[error("The request body must be sent with 'Content-Type: application/json'.")]
    UnsupportedMediaType,
    /// The property does not exist.
    #[error("The property {0} does not exist.")]
    PropertyNotFound(String),
    /// A token id that the user does not have.
    #[error("The token {0} does not exist.")]
    TokenNotFound(String),
    /// An admin request whose body or parameters make no sense.
    #[error("{0}")]
    BadRequest(String),
    /// A create that clashes with what exists.
    #[error("{0}")]
    Conflict(String),
    /// The admin API without the admin token.
    #[error("The admin API needs 'Authorization: Bearer <admin token>'.")]
    AdminUnauthenticated,
    /// The admin API from a client that failed to log in too often: refused unchecked.
    #[error("Too many failed logins from this client; try again later.")]
    AdminLoginDenied {
        /// Seconds until logins are accepted again.
        retry_after: u64,
    },
    /// The admin API with a Jira user's credentials.
    #[error("Jira users cannot use the admin API; it takes the admin token.")]
    AdminForbidden,
    /// `/readyz` while the database does not answer.
    #[error("The database is not ready.")]
    NotReady,
    /// Jira Cloud's rate limit, as configured with the faults.
    #[error("Rate limit exceeded.")]
    RateLimited {
        /// Seconds until a request will pass.
        retry_after: u64,
        /// The bucket's size.
        limit: u32,
        /// When the bucket is full again, ISO 8601.
        reset: String,
    },
    /// An error status injected by the faults.
    #[error("Injected fault: this response was made to fail on purpose.")]
    InjectedFault(u16),
    /// No route serves this path.
    #[error("The requested resource does not exist.")]
    RouteNotFound,
    /// The path exists but not for this method.
    #[error("{message}")]
    MethodNotAllowed {
        /// The methods the path serves, for the `Allow` header.
        allow: std::borrow::Cow<'static, str>,
        /// What to tell the client.
        message: &'static str,
    },
    /// The request did not finish within the configured time.
    #[error("The request took too long to complete.")]
    Timeout,
    /// The client had not sent the whole body when the request ran out of time.
    #[error("The request body was not received in time.")]
    BodyTimeout,
    /// Too many failed logins from this client: refused without checking the credentials.
    #[error("Client must be authenticated to access this resource.")]
    LoginDenied {
        /// Seconds until logins are accepted again.
        retry_after: u64,
    },
    /// A storage fault; the cause goes to the log, never to the client.
    #[error("database error")]
    Store(#[from] crate::store::Error),
    /// A fault with no better home (a failed random source, a panic); logged, never shown.
    #[error("{0}")]
    Internal(String),
}

/// The result of anything that can fail with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
