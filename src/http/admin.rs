//! The admin API under `/_admin`: users, tokens, reset, snapshots, the request journal and the
//! faults, behind the admin token.

use std::path::Path;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path as UrlPath, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use serde::Serialize;

use super::AppState;
use super::error::json_response;
use super::faults::FaultRules;
use super::journal::Filter;
use crate::credentials::{Credentials, TokenDigest};
use crate::domain::User;
use crate::error::{Error, Result};
use crate::store::admin::TokenInfo;

/// The admin API's routes: (path, methods besides HEAD, handlers).
pub fn routes() -> Vec<(
    &'static str,
    &'static [&'static str],
    MethodRouter<AppState>,
)> {
    vec![
        (
            "/_admin/users",
            &["GET", "POST"],
            get(list_users).post(create_user),
        ),
        (
            "/_admin/users/{accountId}",
            &["GET", "PATCH", "DELETE"],
            get(get_user).patch(update_user).delete(delete_user),
        ),
        (
            "/_admin/users/{accountId}/tokens",
            &["GET", "POST"],
            get(list_tokens).post(create_token),
        ),
        (
            "/_admin/users/{accountId}/tokens/{tokenId}",
            &["DELETE"],
            axum::routing::delete(revoke_token),
        ),
        ("/_admin/reset", &["POST"], post(reset)),
        (
            "/_admin/snapshot",
            &["GET", "PUT"],
            // Snapshots are as large as the state they carry: no 2 MiB default here.
            get(export)
                .put(import)
                .layer(DefaultBodyLimit::max(SNAPSHOT_LIMIT)),
        ),
        (
            "/_admin/requests",
            &["GET", "DELETE"],
            get(requests).delete(clear_requests),
        ),
        (
            "/_admin/faults",
            &["GET", "PUT", "DELETE"],
            get(faults).put(set_faults).delete(clear_faults),
        ),
    ]
}

/// The largest snapshot `PUT /_admin/snapshot` reads.
const SNAPSHOT_LIMIT: usize = 1 << 30;

/// A request carrying the admin token. Without the admin token configured the admin API does not
/// exist (404); a missing or wrong token is 401, a Jira user's credentials 403.
pub struct AdminCaller;

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let expected = state.admin_token.as_ref().ok_or(Error::RouteNotFound)?;
        let credentials = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| Credentials::from_authorization(value.as_bytes()));
        // Guesses at the admin token, or at users' tokens through here, count as failed logins.
        let attempt = state
            .logins
            .admit(parts, credentials.as_ref(), true)
            .map_err(|error| match error {
                Error::LoginDenied { retry_after } => Error::AdminLoginDenied { retry_after },
                other => other,
            })?;
        match credentials {
            Some(Credentials::Bearer(token)) if TokenDigest::of(&token).matches(expected) => {
                Ok(Self)
            }
            Some(credentials) => match state.service.authenticate(Some(&credentials)).await {
                Ok(_) => Err(Error::AdminForbidden),
                Err(error) => {
                    state.logins.settle(attempt, Some(&credentials), &error);
                    Err(Error::AdminUnauthenticated)
                }
            },
            None => Err(Error::AdminUnauthenticated),
        }
    }
}

/// A user as the admin API shows one.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserBody<'a> {
    account_id: &'a str,
    email: &'a str,
    display_name: &'a str,
    admin: bool,
    active: bool,
}

impl<'a> From<&'a User> for UserBody<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            account_id: &user.account_id,
            email: &user.email,
            display_name: &user.display_name,
            admin: user.admin,
            active: user.active,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenBody<'a> {
    id: &'a str,
    created_at: &'a str,
}

impl<'a> From<&'a TokenInfo> for TokenBody<'a> {
    fn from(token: &'a TokenInfo) -> Self {
        Self {
            id: &token.id,
            created_at: &token.created_at,
        }
    }
}

fn json(status: StatusCode, body: &impl Serialize) -> Result<Response> {
    let body = serde_json::to_vec(body).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(json_response(status, body))
}

async fn list_users(_: AdminCaller, State(state): State<AppState>) -> Result<Response> {
    let users = state.admin.users().await?;
    json(
        StatusCode::OK,
        &users.iter().map(UserBody::from).collect::<Vec<_>>(),
    )
}

async fn create_user(
    _: AdminCaller,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response> {
    let user = state.admin.create_user(&body).await?;
    json(StatusCode::CREATED, &UserBody::from(&user))
}

async fn get_user(
    _: AdminCaller,
    State(state): State<AppState>,
    UrlPath(account_id): UrlPath<String>,
) -> Result<Response> {
    json(
        StatusCode::OK,
        &UserBody::from(&state.admin.user(&account_id).await?),
    )
}

async fn update_user(
    _: AdminCaller,
    State(state): State<AppState>,
    UrlPath(account_id): UrlPath<String>,
    body: Bytes,
) -> Result<Response> {
    let user = state.admin.update_user(&account_id, &body).await?;
    json(StatusCode::OK, &UserBody::from(&user))
}

async fn delete_user(
    _: AdminCaller,
    State(state): State<AppState>,
    UrlPath(account_id): UrlPath<String>,
) -> Result<StatusCode> {
    state.admin.delete_user(&account_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tokens(
    _: AdminCaller,
    State(state): State<AppState>,
    UrlPath(account_id): UrlPath<String>,
) -> Result<Response> {
    let tokens = state.admin.tokens(&account_id).await?;
    json(
        StatusCode::OK,
        &tokens.iter().map(TokenBody::from).collect::<Vec<_>>(),
    )
}

#[derive(Serialize)]
struct NewTokenBody<'a> {
    id: &'a str,
    token: &'a str,
}

async fn create_token(
    _: AdminCaller,
    State(state): State<AppState>,
    UrlPath(account_id): UrlPath<String>,
) -> Result<Response> {
    let created = state.admin.create_token(&account_id).await?;
    json(
        StatusCode::CREATED,
        &NewTokenBody {
            id: &created.id,
            token: &created.token,
        },
    )
}

async fn revoke_token(
    _: AdminCaller,
    State(state): State<AppState>,
    UrlPath((account_id, token_id)): UrlPath<(String, String)>,
) -> Result<StatusCode> {
    state.admin.revoke_token(&account_id, &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset(_: AdminCaller, State(state): State<AppState>, uri: Uri) -> Result<StatusCode> {
    let query = uri.query().unwrap_or_default().as_bytes();
    let scope = form_urlencoded::parse(query)
        .find(|(name, _)| name == "scope")
        .map(|(_, value)| value);
    let everything = match scope.as_deref() {
        None | Some("properties") => false,
        Some("all") => true,
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "Unknown scope '{other}': use 'properties' (the default) or 'all'."
            )));
        }
    };
    state.admin.reset(everything).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn export(_: AdminCaller, State(state): State<AppState>) -> Result<Response> {
    Ok(json_response(StatusCode::OK, state.admin.export().await?))
}

async fn import(_: AdminCaller, State(state): State<AppState>, body: Bytes) -> Result<StatusCode> {
    state.admin.import(Path::new("request body"), &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /_admin/requests?method=&path=&status=&accountId=&since=`: the journal, oldest first.
async fn requests(_: AdminCaller, State(state): State<AppState>, uri: Uri) -> Result<Response> {
    let mut filter = Filter::default();
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "method" => filter.method = Some(value.into_owned()),
            "path" => filter.path_prefix = Some(value.into_owned()),
            "accountId" => filter.account_id = Some(value.into_owned()),
            "status" => {
                let status = value
                    .parse()
                    .map_err(|_| Error::BadRequest(format!("status '{value}' is not a number")))?;
                filter.status = Some(status);
            }
            "since" => {
                let since = humantime::parse_rfc3339_weak(&value).map_err(|_| {
                    Error::BadRequest(format!("since '{value}' is not an RFC 3339 time"))
                })?;
                filter.since = Some(since);
            }
            other => return Err(Error::BadRequest(format!("Unknown filter '{other}'."))),
        }
    }
    json(StatusCode::OK, &state.journal.entries(&filter))
}

async fn clear_requests(_: AdminCaller, State(state): State<AppState>) -> StatusCode {
    state.journal.clear();
    StatusCode::NO_CONTENT
}

/// `GET /_admin/faults`: the rules in force, with what is left of their counts.
async fn faults(_: AdminCaller, State(state): State<AppState>) -> Result<Response> {
    json(StatusCode::OK, &state.faults.rules())
}

/// `PUT /_admin/faults`: replaces the whole rule set.
async fn set_faults(
    _: AdminCaller,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response> {
    let rules: FaultRules =
        serde_json::from_slice(&body).map_err(|e| Error::BadRequest(e.to_string()))?;
    rules.validate().map_err(Error::BadRequest)?;
    state.faults.replace(rules);
    json(StatusCode::OK, &state.faults.rules())
}

/// `DELETE /_admin/faults`: no faults, no rate limits.
async fn clear_faults(_: AdminCaller, State(state): State<AppState>) -> StatusCode {
    state.faults.replace(FaultRules::default());
    StatusCode::NO_CONTENT
}
