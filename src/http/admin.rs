//! The admin API under `/_admin`: users, tokens, reset, snapshots, the request journal and the
//! faults. The route table puts it behind the admin token.

use std::path::Path;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::error::{HttpError, json_response};
use super::journal::Filter;
use super::site::CurrentSite;
use super::{AppState, RouteTable};
use crate::clock::{parse_rfc3339_ms, rfc3339_ms};
use crate::domain::{DisplayName, Email, Scopes, User};
use crate::error::Error;
use crate::faults::FaultRules;
use crate::seed;
use crate::service::admin::UserChanges;
use crate::store::admin::{TokenInfo, TokenLimits};

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// The admin API's routes: (path, methods besides HEAD, handlers).
pub fn routes() -> RouteTable {
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

/// `{accountId}` in a path, beside `{site}` or not.
#[derive(Deserialize)]
struct UserPath {
    #[serde(rename = "accountId")]
    account_id: String,
}

/// `{accountId}` and `{tokenId}` in a path, beside `{site}` or not.
#[derive(Deserialize)]
struct TokenPath {
    #[serde(rename = "accountId")]
    account_id: String,
    #[serde(rename = "tokenId")]
    token_id: String,
}

/// The largest snapshot `PUT /_admin/snapshot` reads.
const SNAPSHOT_LIMIT: usize = 1 << 30;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
}

impl<'a> From<&'a TokenInfo> for TokenBody<'a> {
    fn from(token: &'a TokenInfo) -> Self {
        Self {
            id: &token.id,
            created_at: &token.created_at,
            scopes: token.limits.scopes.as_ref().map(|s| s.iter().collect()),
            expires_at: token.limits.expires_at.map(rfc3339_ms),
        }
    }
}

/// `POST .../tokens`: no body for a classic token; scopes and an expiry for a scoped one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewTokenRequest {
    scopes: Option<Vec<String>>,
    expires_at: Option<String>,
}

fn token_limits(body: &[u8]) -> Result<TokenLimits> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(TokenLimits::default());
    }
    let request: NewTokenRequest = serde_json::from_slice(body).map_err(|e| {
        bad_request(format!(
            "The request body must be empty, or JSON with scopes and expiresAt ({e})."
        ))
    })?;
    let expires_at = request
        .expires_at
        .as_deref()
        .map(parse_rfc3339_ms)
        .transpose()
        .map_err(|reason| bad_request(format!("expiresAt {reason}.")))?;
    Ok(TokenLimits {
        scopes: request.scopes.map(|scopes| Scopes::of(&scopes)),
        expires_at,
    })
}

fn json(status: StatusCode, body: &impl Serialize) -> Result<Response> {
    let body = serde_json::to_vec(body).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(json_response(status, body))
}

fn bad_request(message: impl Into<String>) -> HttpError {
    Error::BadRequest(message.into()).into()
}

/// The fields a PATCH may change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchBody {
    email: Option<String>,
    display_name: Option<String>,
    admin: Option<bool>,
    active: Option<bool>,
}

/// Reads a PATCH body into valid changes.
fn user_changes(body: &[u8]) -> Result<UserChanges, Error> {
    let patch: PatchBody =
        serde_json::from_slice(body).map_err(|e| Error::BadRequest(e.to_string()))?;
    let email = patch
        .email
        .map(Email::parse)
        .transpose()
        .map_err(|_| Error::BadRequest("email is not an email address".to_owned()))?;
    let display_name = patch
        .display_name
        .map(DisplayName::parse)
        .transpose()
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    Ok(UserChanges {
        email,
        display_name,
        admin: patch.admin,
        active: patch.active,
    })
}

async fn list_users(State(state): State<AppState>, site: CurrentSite) -> Result<Response> {
    let users = state.admin.users(site.key()).await?;
    json(
        StatusCode::OK,
        &users.iter().map(UserBody::from).collect::<Vec<_>>(),
    )
}

async fn create_user(
    State(state): State<AppState>,
    site: CurrentSite,
    body: Bytes,
) -> Result<Response> {
    let entry: &RawValue = std::str::from_utf8(&body)
        .ok()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| bad_request("The request body must be one user as JSON."))?;
    let parsed = seed::parse_user(Path::new("request body"), entry.get())
        .map_err(|e| bad_request(e.to_string()))?;
    let user = state
        .admin
        .create_user(site.key(), parsed.user, parsed.tokens)
        .await?;
    json(StatusCode::CREATED, &UserBody::from(&user))
}

async fn get_user(
    State(state): State<AppState>,
    site: CurrentSite,
    UrlPath(UserPath { account_id }): UrlPath<UserPath>,
) -> Result<Response> {
    json(
        StatusCode::OK,
        &UserBody::from(&state.admin.user(site.key(), &account_id).await?),
    )
}

async fn update_user(
    State(state): State<AppState>,
    site: CurrentSite,
    UrlPath(UserPath { account_id }): UrlPath<UserPath>,
    body: Bytes,
) -> Result<Response> {
    let user = state
        .admin
        .update_user(site.key(), &account_id, user_changes(&body))
        .await?;
    json(StatusCode::OK, &UserBody::from(&user))
}

async fn delete_user(
    State(state): State<AppState>,
    site: CurrentSite,
    UrlPath(UserPath { account_id }): UrlPath<UserPath>,
) -> Result<StatusCode> {
    state.admin.delete_user(site.key(), &account_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tokens(
    State(state): State<AppState>,
    site: CurrentSite,
    UrlPath(UserPath { account_id }): UrlPath<UserPath>,
) -> Result<Response> {
    let tokens = state.admin.tokens(site.key(), &account_id).await?;
    json(
        StatusCode::OK,
        &tokens.iter().map(TokenBody::from).collect::<Vec<_>>(),
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewTokenBody<'a> {
    id: &'a str,
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
}

async fn create_token(
    State(state): State<AppState>,
    site: CurrentSite,
    UrlPath(UserPath { account_id }): UrlPath<UserPath>,
    body: Bytes,
) -> Result<Response> {
    // An unknown user is 404 whatever the body says.
    state.admin.user(site.key(), &account_id).await?;
    let limits = token_limits(&body)?;
    let created = state
        .admin
        .create_token(site.key(), &account_id, &limits)
        .await?;
    json(
        StatusCode::CREATED,
        &NewTokenBody {
            id: &created.id,
            token: &created.token,
            scopes: limits.scopes.as_ref().map(|s| s.iter().collect()),
            expires_at: limits.expires_at.map(rfc3339_ms),
        },
    )
}

async fn revoke_token(
    State(state): State<AppState>,
    site: CurrentSite,
    UrlPath(TokenPath {
        account_id,
        token_id,
    }): UrlPath<TokenPath>,
) -> Result<StatusCode> {
    state
        .admin
        .revoke_token(site.key(), &account_id, &token_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset(State(state): State<AppState>, site: CurrentSite, uri: Uri) -> Result<StatusCode> {
    let query = uri.query().unwrap_or_default().as_bytes();
    let scope = form_urlencoded::parse(query)
        .find(|(name, _)| name == "scope")
        .map(|(_, value)| value);
    let everything = match scope.as_deref() {
        None | Some("properties") => false,
        Some("all") => true,
        Some(other) => {
            return Err(bad_request(format!(
                "Unknown scope '{other}': use 'properties' (the default) or 'all'."
            )));
        }
    };
    state.admin.reset(site.key(), everything).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn export(State(state): State<AppState>, site: CurrentSite) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        state.admin.export(site.key()).await?,
    ))
}

async fn import(
    State(state): State<AppState>,
    site: CurrentSite,
    body: Bytes,
) -> Result<StatusCode> {
    state
        .admin
        .import(site.key(), Path::new("request body"), &body)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /_admin/requests?method=&path=&status=&accountId=&since=`: the journal, oldest first.
async fn requests(site: CurrentSite, uri: Uri) -> Result<Response> {
    let mut filter = Filter::default();
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "method" => filter.method = Some(value.into_owned()),
            "path" => filter.path_prefix = Some(value.into_owned()),
            "accountId" => filter.account_id = Some(value.into_owned()),
            "status" => {
                let status = value
                    .parse()
                    .map_err(|_| bad_request(format!("status '{value}' is not a number")))?;
                filter.status = Some(status);
            }
            "since" => {
                let since = humantime::parse_rfc3339_weak(&value)
                    .map_err(|_| bad_request(format!("since '{value}' is not an RFC 3339 time")))?;
                filter.since = Some(since);
            }
            other => return Err(bad_request(format!("Unknown filter '{other}'."))),
        }
    }
    json(StatusCode::OK, &site.state.journal.entries(&filter))
}

async fn clear_requests(site: CurrentSite) -> StatusCode {
    site.state.journal.clear();
    StatusCode::NO_CONTENT
}

/// `GET /_admin/faults`: the rules in force, with what is left of their counts.
async fn faults(site: CurrentSite) -> Result<Response> {
    json(StatusCode::OK, &site.state.faults.rules())
}

/// `PUT /_admin/faults`: replaces the whole rule set.
async fn set_faults(site: CurrentSite, body: Bytes) -> Result<Response> {
    let rules: FaultRules =
        serde_json::from_slice(&body).map_err(|e| bad_request(e.to_string()))?;
    rules.validate().map_err(bad_request)?;
    site.state.faults.replace(rules);
    json(StatusCode::OK, &site.state.faults.rules())
}

/// `DELETE /_admin/faults`: no faults, no rate limits.
async fn clear_faults(site: CurrentSite) -> StatusCode {
    site.state.faults.replace(FaultRules::default());
    StatusCode::NO_CONTENT
}
