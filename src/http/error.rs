//! Where the services' errors become Jira's responses: its ErrorCollection, or its 401 shape.
//! Holds the answers that exist only in HTTP beside the service's [`Error`]; OAuth 2.0's
//! endpoints answer in their own shapes (`oauth_token.rs`, `oauth.rs`, `atlassian_api.rs`).
//!
//! Past 350 lines, and one idea: every error and the answer it becomes, in one match that a
//! reader asking "where does this status come from?" scans top to bottom.

use std::any::Any;
use std::borrow::Cow;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::JSON_CONTENT_TYPE;
use crate::domain::{KeyError, ValueError};
use crate::error::Error;

static LOGIN_REASON: HeaderName = HeaderName::from_static("x-seraph-loginreason");

/// Everything a request can fail with: the service's errors, and what only HTTP can say.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// What the service or the store said.
    #[error(transparent)]
    Service(#[from] Error),
    /// `username` or `userKey` was sent: Jira Cloud is in GDPR strict mode.
    #[error("The query parameter '{0}' is not supported in GDPR strict mode.")]
    UnsupportedQueryParameter(&'static str),
    /// No `accountId`, or an empty one.
    #[error("The 'accountId' query parameter needs to be provided.")]
    MissingAccountId,
    /// The request body broke off before it was complete.
    #[error("The request body could not be read.")]
    UnreadableBody,
    /// A PUT body that is not declared as JSON.
    #[error("The request body must be sent with 'Content-Type: application/json'.")]
    UnsupportedMediaType,
    /// Too many failed logins from this client: refused without checking the credentials.
    #[error("Client must be authenticated to access this resource.")]
    LoginDenied {
        /// Seconds until logins are accepted again.
        retry_after: u64,
    },
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
        /// The methods the path serves, for the `Allow` header; empty leaves it to the router,
        /// which knows them.
        allow: Cow<'static, str>,
        /// What to tell the client.
        message: &'static str,
    },
    /// The request did not finish within the configured time.
    #[error("The request took too long to complete.")]
    Timeout,
    /// A body past the route's limit.
    #[error("The request body is too large.")]
    BodyTooLarge,
    /// The client had not sent the whole body when the request ran out of time.
    #[error("The request body was not received in time.")]
    BodyTimeout,
}

impl From<KeyError> for HttpError {
    fn from(error: KeyError) -> Self {
        Self::Service(error.into())
    }
}

impl From<ValueError> for HttpError {
    fn from(error: ValueError) -> Self {
        Self::Service(error.into())
    }
}

/// Jira's error body: `{"errorMessages":[...],"errors":{}}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorCollection<'a> {
    error_messages: [&'a str; 1],
    errors: Empty,
}

#[derive(Serialize)]
struct Empty {}

/// Jira's 401 body.
#[derive(Serialize)]
struct Unauthorized<'a> {
    message: &'a str,
    #[serde(rename = "status-code")]
    status_code: u16,
}

/// A JSON response with Jira's exact `Content-Type`.
pub fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

/// A 503 or 429 that asks the client to try again in a second.
fn retry_after_one(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn error_collection(status: StatusCode, message: &str) -> Response {
    let body = ErrorCollection {
        error_messages: [message],
        errors: Empty {},
    };
    json_response(status, serde_json::to_vec(&body).unwrap_or_default())
}

fn service_status(error: &Error) -> StatusCode {
    match error {
        Error::Unauthenticated { .. } | Error::ScopeMismatch => StatusCode::UNAUTHORIZED,
        Error::InvalidKey(_) | Error::InvalidValue(_) | Error::BadRequest(_) => {
            StatusCode::BAD_REQUEST
        }
        Error::Forbidden => StatusCode::FORBIDDEN,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::UserNotFound(_)
        | Error::UserNotVisible
        | Error::TokenNotFound(_)
        | Error::SiteNotFound
        | Error::ScopedTokenAsBearer
        | Error::AppNotFound(_)
        | Error::GrantNotFound(_)
        | Error::PropertyNotFound(_) => StatusCode::NOT_FOUND,
        Error::Store(e) if e.is_unavailable() || e.is_busy() || e.is_stale() => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Error::Store(e) if e.is_full() => StatusCode::INSUFFICIENT_STORAGE,
        Error::Store(e) if e.is_unstorable() => StatusCode::BAD_REQUEST,
        Error::Store(e) if e.is_gone() => StatusCode::NOT_FOUND,
        Error::Store(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl HttpError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Service(error) => service_status(error),
            Self::LoginDenied { .. }
            | Self::AdminUnauthenticated
            | Self::AdminLoginDenied { .. } => StatusCode::UNAUTHORIZED,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedQueryParameter(_) | Self::MissingAccountId | Self::UnreadableBody => {
                StatusCode::BAD_REQUEST
            }
            Self::AdminForbidden => StatusCode::FORBIDDEN,
            Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::InjectedFault(status) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        HttpError::Service(self).into_response()
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        let refusal = self.refusal();
        let mut response = match &self {
            Self::Service(Error::Unauthenticated { .. }) | Self::LoginDenied { .. } => {
                unauthorized(&self.to_string())
            }
            Self::Service(Error::Store(cause)) => {
                let message = if cause.is_busy() {
                    // Load shed on purpose: a warning, not a fault.
                    tracing::warn!(error = %cause, "request refused unqueued");
                    "The database is busy: too many requests are waiting for it. Try again later."
                } else if cause.is_stale() {
                    // Not expected: a renewed caller is never stale. Churn, not a fault.
                    tracing::warn!(error = %cause, "credentials kept changing under the request");
                    "Credentials are changing: try again."
                } else if cause.is_unstorable() {
                    // The client's text, past a parser that should have refused it: a warning.
                    tracing::warn!(error = %Causes(cause), "unstorable text in a request");
                    "The request contains a character that cannot be stored."
                } else if cause.is_gone() {
                    // Most likely a race between the client's own requests: what one wrote to,
                    // another deleted. A warning, so that a wrong key bound by a bug shows too.
                    tracing::warn!(error = %Causes(cause), "write to a row deleted meanwhile");
                    "What this request refers to was deleted while it ran."
                } else {
                    tracing::error!(error = %Causes(cause), "database fault");
                    match status {
                        StatusCode::SERVICE_UNAVAILABLE => {
                            "The database is unavailable. Try again later."
                        }
                        StatusCode::INSUFFICIENT_STORAGE => {
                            "The disk holding the database is full: writes are refused until space is freed."
                        }
                        _ => "Internal server error.",
                    }
                };
                let response = error_collection(status, message);
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    retry_after_one(response)
                } else {
                    response
                }
            }
            Self::Service(Error::Internal(cause)) => {
                tracing::error!(error = %cause, "internal fault");
                error_collection(status, "Internal server error.")
            }
            Self::Timeout => {
                tracing::warn!("request timed out");
                retry_after_one(error_collection(status, &self.to_string()))
            }
            Self::MethodNotAllowed { message, .. } => error_collection(status, message),
            // An injected fault looks like the real answer of its status, so that retry and
            // re-login code meets what it would meet from Jira.
            Self::InjectedFault(_) => match status {
                StatusCode::UNAUTHORIZED => unauthorized(
                    &Error::Unauthenticated {
                        credentials_rejected: false,
                    }
                    .to_string(),
                ),
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                    retry_after_one(error_collection(status, &self.to_string()))
                }
                _ => error_collection(status, &self.to_string()),
            },
            // The gateway's shape, not Jira's.
            Self::Service(Error::ScopeMismatch) => {
                let mut response = json_response(
                    status,
                    r#"{"code":401,"message":"Unauthorized; scope does not match"}"#,
                );
                response.headers_mut().insert(
                    HeaderName::from_static("x-failure-category"),
                    HeaderValue::from_static("FAILURE_CLIENT_SCOPE_CHECK"),
                );
                response
            }
            _ => error_collection(status, &self.to_string()),
        };
        let headers = response.headers_mut();
        match self {
            Self::Service(Error::Unauthenticated {
                credentials_rejected: true,
            }) => {
                headers.insert(
                    LOGIN_REASON.clone(),
                    HeaderValue::from_static("AUTHENTICATED_FAILED"),
                );
            }
            Self::LoginDenied { retry_after } => {
                headers.insert(
                    LOGIN_REASON.clone(),
                    HeaderValue::from_static("AUTHENTICATION_DENIED"),
                );
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            Self::AdminUnauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // The admin API's own error shape, with the throttle's headers.
            Self::AdminLoginDenied { retry_after } => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                headers.insert(
                    LOGIN_REASON.clone(),
                    HeaderValue::from_static("AUTHENTICATION_DENIED"),
                );
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            Self::RateLimited {
                retry_after,
                limit,
                reset,
            } => {
                let limits = [
                    ("retry-after", retry_after.to_string()),
                    ("x-ratelimit-limit", limit.to_string()),
                    ("x-ratelimit-remaining", "0".to_owned()),
                    ("x-ratelimit-reset", reset),
                    ("ratelimit-reason", "jira-burst-based".to_owned()),
                ];
                for (name, value) in limits {
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        headers.insert(name, value);
                    }
                }
            }
            Self::MethodNotAllowed { allow, .. } if !allow.is_empty() => {
                if let Ok(allow) = HeaderValue::from_str(&allow) {
                    headers.insert(header::ALLOW, allow);
                }
            }
            _ => {}
        }
        if let Some(refusal) = refusal {
            response.extensions_mut().insert(refusal);
        }
        response
    }
}

/// A refusal the metrics count, marked on its response: made by the server's own rules, not
/// by the client's request being wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The rate limit's 429.
    RateLimited,
    /// An injected fault's status.
    InjectedFault,
    /// A login refused unchecked after too many failures.
    LoginRefused,
}

impl HttpError {
    fn refusal(&self) -> Option<Refusal> {
        match self {
            Self::RateLimited { .. } => Some(Refusal::RateLimited),
            Self::InjectedFault(_) => Some(Refusal::InjectedFault),
            Self::LoginDenied { .. } | Self::AdminLoginDenied { .. } => Some(Refusal::LoginRefused),
            _ => None,
        }
    }
}

/// Jira's 401: its own body shape, and a Basic challenge.
fn unauthorized(message: &str) -> Response {
    let body = Unauthorized {
        message,
        status_code: 401,
    };
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        serde_json::to_vec(&body).unwrap_or_default(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Jira\""),
    );
    response
}

/// An error and its sources, `a: b: c`, for the log; a source the text before already ends
/// with is not repeated.
pub(crate) struct Causes<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.ends_with(&cause_text) {
                text = format!("{text}: {cause_text}");
            }
            source = cause.source();
        }
        f.write_str(&text)
    }
}

/// Turns a panic into a logged 500; the process keeps serving.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    Error::Internal(format!("panic while handling a request: {detail}")).into_response()
}
