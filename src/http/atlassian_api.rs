//! `api.atlassian.com`'s own endpoints for an access token: `/oauth/token/accessible-resources`
//! (the sites of its grant) and `/me` (the user it acts for).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;

use super::error::{HttpError, json_response};
use super::sites::Server;
use super::{AppState, RouteTable};
use crate::credentials::Credentials;

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// The routes: (path, methods besides HEAD, handlers). Each checks its own token.
pub fn routes() -> RouteTable {
    vec![
        (
            "/oauth/token/accessible-resources",
            &["GET"],
            get(accessible_resources),
        ),
        ("/me", &["GET"], get(me)),
    ]
}

/// The Bearer token a request carries.
fn bearer(headers: &HeaderMap) -> Option<String> {
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|value| Credentials::from_authorization(value.as_bytes()))
    {
        Some(Credentials::Bearer(token)) => Some(token),
        _ => None,
    }
}

/// The gateway's answer to a token it does not take (ours: Atlassian's body is not known).
fn unauthorized() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        r#"{"code":401,"message":"Unauthorized"}"#,
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Resource<'a> {
    id: String,
    name: &'a str,
    url: String,
    scopes: Vec<&'a str>,
    avatar_url: &'static str,
}

/// `GET /oauth/token/accessible-resources`: the sites of the token's grant.
async fn accessible_resources(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    let Some(token) = bearer(&headers) else {
        return Ok(unauthorized());
    };
    let Some((grant, sites)) = state.oauth.grant_of(&token).await? else {
        return Ok(unauthorized());
    };
    let server = Server::of(&state, &uri, &headers);
    let resources: Vec<Resource> = sites
        .iter()
        .map(|site| Resource {
            id: site.id.to_string(),
            name: site.name.as_str(),
            url: server.site_address(&state, &site.name, &site.id),
            scopes: grant.scopes.iter().collect(),
            avatar_url: "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/site.png",
        })
        .collect();
    let body =
        serde_json::to_vec(&resources).map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

#[derive(Serialize)]
struct Profile<'a> {
    account_type: &'static str,
    account_id: &'a str,
    email: &'a str,
    email_verified: bool,
    name: &'a str,
    nickname: &'a str,
    picture: &'static str,
    account_status: &'static str,
    zoneinfo: &'static str,
    locale: &'static str,
    extended_profile: serde_json::Map<String, serde_json::Value>,
}

/// `GET /me`: the profile of the user the token acts for, to a token holding `read:me`.
async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let Some(token) = bearer(&headers) else {
        return Ok(unauthorized());
    };
    let Some((grant, _)) = state.oauth.grant_of(&token).await? else {
        return Ok(unauthorized());
    };
    // Atlassian's user identity API: an app must ask for `read:me` to read it.
    if !grant.scopes.holds("read:me") {
        return Err(crate::error::Error::ScopeMismatch.into());
    }
    let Some(user) = state.oauth.user_of(&grant).await? else {
        return Ok(unauthorized());
    };
    let profile = Profile {
        account_type: "atlassian",
        account_id: &user.account_id,
        email: &user.email,
        email_verified: true,
        name: &user.display_name,
        nickname: &user.display_name,
        picture: "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/default.png",
        account_status: if user.active { "active" } else { "inactive" },
        zoneinfo: "UTC",
        locale: "en-US",
        extended_profile: serde_json::Map::new(),
    };
    let body =
        serde_json::to_vec(&profile).map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}
