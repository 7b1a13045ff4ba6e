//! The admin API's users and their API tokens: create (in the seed format), list, get, change,
//! delete; tokens classic or scoped, listed without their secrets.

use std::path::Path;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Result, bad_request, json};
use crate::clock::{parse_rfc3339_ms, rfc3339_ms};
use crate::domain::{AccountId, DisplayName, Email, Scopes, User};
use crate::error::Error;
use crate::http::AppState;
use crate::http::extract::{PathParams, WholeBody, json_body};
use crate::http::site::CurrentSite;
use crate::seed;
use crate::service::admin::{AdminService, UserChanges};
use crate::store::admin::{TokenInfo, TokenLimits};

/// `{accountId}` in a path, beside `{site}` or not.
#[derive(Deserialize)]
pub(super) struct UserPath {
    #[serde(rename = "accountId")]
    account_id: String,
}

/// `{accountId}` and `{tokenId}` in a path, beside `{site}` or not.
#[derive(Deserialize)]
pub(super) struct TokenPath {
    #[serde(rename = "accountId")]
    account_id: String,
    #[serde(rename = "tokenId")]
    token_id: String,
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
    let request: NewTokenRequest = json_body(body).map_err(|e| {
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
        scopes: request
            .scopes
            .map(|scopes| Scopes::of(&scopes))
            .transpose()
            .map_err(|e| bad_request(format!("scopes: {e}.")))?,
        expires_at,
    })
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
    // An empty body changes nothing, as `{}` does.
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let patch: PatchBody = json_body(body).map_err(|e| {
        Error::BadRequest(format!(
            "The request body must be JSON with any of email, displayName, admin and active \
             ({e})."
        ))
    })?;
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

pub(super) async fn list_users(
    State(state): State<AppState>,
    site: CurrentSite,
) -> Result<Response> {
    let users = state.admin.users(site.key()).await?;
    json(
        StatusCode::OK,
        &users.iter().map(UserBody::from).collect::<Vec<_>>(),
    )
}

pub(super) async fn create_user(
    State(state): State<AppState>,
    site: CurrentSite,
    WholeBody(body): WholeBody,
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

pub(super) async fn get_user(
    State(state): State<AppState>,
    site: CurrentSite,
    PathParams(UserPath { account_id }): PathParams<UserPath>,
) -> Result<Response> {
    let account_id = AdminService::account(&account_id)?;
    json(
        StatusCode::OK,
        &UserBody::from(&state.admin.user(site.key(), &account_id).await?),
    )
}

pub(super) async fn update_user(
    State(state): State<AppState>,
    site: CurrentSite,
    PathParams(UserPath { account_id }): PathParams<UserPath>,
    WholeBody(body): WholeBody,
) -> Result<Response> {
    let account_id = AdminService::account(&account_id)?;
    let user = state
        .admin
        .update_user(site.key(), &account_id, user_changes(&body))
        .await?;
    json(StatusCode::OK, &UserBody::from(&user))
}

pub(super) async fn delete_user(
    State(state): State<AppState>,
    site: CurrentSite,
    PathParams(UserPath { account_id }): PathParams<UserPath>,
) -> Result<StatusCode> {
    let account_id = AdminService::account(&account_id)?;
    state.admin.delete_user(site.key(), &account_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn list_tokens(
    State(state): State<AppState>,
    site: CurrentSite,
    PathParams(UserPath { account_id }): PathParams<UserPath>,
) -> Result<Response> {
    let account_id = AdminService::account(&account_id)?;
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

pub(super) async fn create_token(
    State(state): State<AppState>,
    site: CurrentSite,
    PathParams(UserPath { account_id }): PathParams<UserPath>,
    WholeBody(body): WholeBody,
) -> Result<Response> {
    let account_id = AdminService::account(&account_id)?;
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

pub(super) async fn revoke_token(
    State(state): State<AppState>,
    site: CurrentSite,
    PathParams(TokenPath {
        account_id,
        token_id,
    }): PathParams<TokenPath>,
) -> Result<StatusCode> {
    // An id that names no account names none of its tokens either.
    let account_id =
        AccountId::parse(account_id).map_err(|_| Error::TokenNotFound(token_id.clone()))?;
    state
        .admin
        .revoke_token(site.key(), &account_id, &token_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
