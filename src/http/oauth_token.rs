//! `POST /oauth/token`: the token endpoint's request, its refusals and their statuses, and the
//! tokens it answers with.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde::Serialize;

use super::AppState;
use super::authenticate::client_address;
use super::error::{HttpError, Refusal, json_response};
use super::oauth_params::token_request;
use crate::credentials::Credentials;
use crate::service::oauth::{OAuthError, OAuthErrorCode, TokenRequest};
use crate::throttle::Refused;

/// The longest token request read.
const TOKEN_REQUEST_LIMIT: usize = 64 << 10;

#[derive(Serialize)]
struct TokenAnswer<'a> {
    access_token: &'a str,
    expires_in: u64,
    token_type: &'static str,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

#[derive(Serialize)]
struct OAuthErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

fn oauth_error(refusal: &OAuthError) -> Response {
    let body = serde_json::to_vec(&OAuthErrorBody {
        error: refusal.error.as_str(),
        error_description: &refusal.description,
    })
    .unwrap_or_default();
    json_response(status_of(refusal.error), body)
}

/// The status a refusal is answered with, as Atlassian answers: 403 for a grant that is not (or
/// no longer) valid, 400 for the rest, a client that failed to authenticate in the body included.
pub(super) fn status_of(error: OAuthErrorCode) -> StatusCode {
    match error {
        OAuthErrorCode::InvalidGrant => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A client that failed to authenticate with a Basic header is asked again (RFC 6749, 5.2).
fn challenged(mut response: Response) -> Response {
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"auth.atlassian.com\""),
    );
    response
}

/// `POST /oauth/token`: JSON or form bodies; the client's credentials in the body or in a
/// Basic header. Guesses at client secrets count as failed logins, by client id and address.
pub(super) async fn token(state: State<AppState>, request: Request) -> Response {
    let mut response = match answer(state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    // Every answer, a fault's too, with the `Pragma: no-cache` RFC 6749 §5.1 asks for beside
    // the `Cache-Control` every answer carries.
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

async fn answer(State(state): State<AppState>, request: Request) -> Result<Response, HttpError> {
    let address = client_address(&request);
    let by_basic = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| Credentials::from_authorization(value.as_bytes()))
        .is_some_and(|credentials| matches!(credentials, Credentials::Basic { .. }));
    let refused_client = |response: Response| {
        if by_basic {
            challenged(response)
        } else {
            response
        }
    };
    let request = match read(request).await {
        Ok(request) => request,
        Err(refusal) => return Ok(oauth_error(&refusal)),
    };
    let login = Credentials::Basic {
        email: request.client_id.clone().unwrap_or_default(),
        token: String::new(),
    };
    let attempt = match state.logins.admit(address, Some(&login), false) {
        Ok(attempt) => attempt,
        Err(refused) => return Ok(refused_client(too_many_attempts(refused))),
    };
    let issued = match state.oauth.token(request).await? {
        Ok(issued) => issued,
        Err(refusal) => {
            if refusal.error == OAuthErrorCode::InvalidClient {
                state.logins.count_rejection(attempt, Some(&login));
                return Ok(refused_client(oauth_error(&refusal)));
            }
            return Ok(oauth_error(&refusal));
        }
    };
    let answer = TokenAnswer {
        access_token: &issued.access_token,
        expires_in: issued.expires_in,
        token_type: "Bearer",
        scope: issued.scopes.to_string(),
        refresh_token: issued.refresh_token.as_deref(),
    };
    let body =
        serde_json::to_vec(&answer).map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

/// The token request: its body, read up to the limit, and its headers, parsed once.
async fn read(request: Request) -> Result<TokenRequest, OAuthError> {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, TOKEN_REQUEST_LIMIT).await else {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "The body could not be read, or is too long.",
        ));
    };
    let header = |name| parts.headers.get(name).map(HeaderValue::as_bytes);
    token_request(
        header(header::CONTENT_TYPE),
        header(header::AUTHORIZATION),
        &body,
    )
}

/// A client refused unchecked after too many failed attempts.
fn too_many_attempts(Refused { retry_after }: Refused) -> Response {
    let mut response = oauth_error(&OAuthError::new(
        OAuthErrorCode::InvalidClient,
        "Too many failed attempts; try again later.",
    ));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response.extensions_mut().insert(Refusal::LoginRefused);
    response
}
