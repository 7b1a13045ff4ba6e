//! The only place errors become responses: Jira's ErrorCollection, or its 401 shape.

use std::any::Any;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::JSON_CONTENT_TYPE;
use crate::error::Error;

static LOGIN_REASON: HeaderName = HeaderName::from_static("x-seraph-loginreason");

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

fn error_collection(status: StatusCode, message: &str) -> Response {
    let body = ErrorCollection {
        error_messages: [message],
        errors: Empty {},
    };
    json_response(status, serde_json::to_vec(&body).unwrap_or_default())
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::Unauthenticated { .. } | Error::LoginDenied { .. } => StatusCode::UNAUTHORIZED,
            Error::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::UnsupportedQueryParameter(_)
            | Error::MissingAccountId
            | Error::InvalidKey(_)
            | Error::InvalidValue(_)
            | Error::UnreadableBody
            | Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Forbidden | Error::AdminForbidden => StatusCode::FORBIDDEN,
            Error::AdminUnauthenticated | Error::AdminLoginDenied { .. } => {
                StatusCode::UNAUTHORIZED
            }
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::UserNotFound(_)
            | Error::UserNotVisible
            | Error::TokenNotFound(_)
            | Error::PropertyNotFound(_)
            | Error::RouteNotFound => StatusCode::NOT_FOUND,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::Timeout | Error::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::InjectedFault(status) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Error::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Error::Store(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match self {
            Error::Unauthenticated {
                credentials_rejected,
            } => {
                let mut response = unauthorized(&self);
                if credentials_rejected {
                    response.headers_mut().insert(
                        LOGIN_REASON.clone(),
                        HeaderValue::from_static("AUTHENTICATED_FAILED"),
                    );
                }
                response
            }
            Error::LoginDenied { retry_after } => {
                let mut response = unauthorized(&self);
                let headers = response.headers_mut();
                headers.insert(
                    LOGIN_REASON.clone(),
                    HeaderValue::from_static("AUTHENTICATION_DENIED"),
                );
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                response
            }
            Error::AdminUnauthenticated => {
                let mut response = error_collection(status, &self.to_string());
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            // The admin API's own error shape, with the throttle's headers.
            Error::AdminLoginDenied { retry_after } => {
                let mut response = error_collection(status, &self.to_string());
                let headers = response.headers_mut();
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                headers.insert(
                    LOGIN_REASON.clone(),
                    HeaderValue::from_static("AUTHENTICATION_DENIED"),
                );
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                response
            }
            Error::RateLimited {
                retry_after,
                limit,
                ref reset,
            } => {
                let mut response = error_collection(status, &self.to_string());
                let headers = response.headers_mut();
                let limits = [
                    ("retry-after", retry_after.to_string()),
                    ("x-ratelimit-limit", limit.to_string()),
                    ("x-ratelimit-remaining", "0".to_owned()),
                    ("x-ratelimit-reset", reset.clone()),
                    ("ratelimit-reason", "jira-burst-based".to_owned()),
                ];
                for (name, value) in limits {
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        headers.insert(name, value);
                    }
                }
                response
            }
            Error::MethodNotAllowed { allow, message } => {
                let mut response = error_collection(status, message);
                if let Ok(allow) = HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(header::ALLOW, allow);
                }
                response
            }
            Error::Store(cause) => {
                tracing::error!(error = %Causes(&cause), "database fault");
                let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                    "The database is unavailable. Try again later."
                } else {
                    "Internal server error."
                };
                error_collection(status, message)
            }
            Error::Internal(cause) => {
                tracing::error!(error = %cause, "internal fault");
                error_collection(status, "Internal server error.")
            }
            Error::Timeout => {
                tracing::warn!("request timed out");
                error_collection(status, &self.to_string())
            }
            client_error => error_collection(status, &client_error.to_string()),
        }
    }
}

/// Jira's 401: its own body shape, and a Basic challenge.
fn unauthorized(error: &Error) -> Response {
    let body = Unauthorized {
        message: &error.to_string(),
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
