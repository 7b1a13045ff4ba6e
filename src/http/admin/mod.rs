//! The admin API under `/_admin`: users, tokens, reset, snapshots, the request journal and the
//! faults. The route table puts it behind the admin token.

use std::path::Path;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;

use super::error::{HttpError, json_response};
use super::journal::Matcher;
use super::site::CurrentSite;
use super::{AppState, RouteTable};
use crate::error::Error;
use crate::faults::FaultRules;
use crate::http::extract::{WholeBody, json_body};

mod users;

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// The admin API's routes: (path, methods besides HEAD, handlers).
pub fn routes() -> RouteTable {
    vec![
        (
            "/_admin/users",
            &["GET", "POST"],
            get(users::list_users).post(users::create_user),
        ),
        (
            "/_admin/users/{accountId}",
            &["GET", "PATCH", "DELETE"],
            get(users::get_user)
                .patch(users::update_user)
                .delete(users::delete_user),
        ),
        (
            "/_admin/users/{accountId}/tokens",
            &["GET", "POST"],
            get(users::list_tokens).post(users::create_token),
        ),
        (
            "/_admin/users/{accountId}/tokens/{tokenId}",
            &["DELETE"],
            axum::routing::delete(users::revoke_token),
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
        ("/_admin/requests/count", &["POST"], post(count_requests)),
        ("/_admin/requests/find", &["POST"], post(find_requests)),
        (
            "/_admin/faults",
            &["GET", "PUT", "DELETE"],
            get(faults).put(set_faults).delete(clear_faults),
        ),
    ]
}

/// The largest snapshot `PUT /_admin/snapshot` reads.
const SNAPSHOT_LIMIT: usize = 1 << 30;

pub(super) fn json(status: StatusCode, body: &impl Serialize) -> Result<Response> {
    let body = serde_json::to_vec(body).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(json_response(status, body))
}

pub(super) fn bad_request(message: impl Into<String>) -> HttpError {
    Error::BadRequest(message.into()).into()
}

/// `POST /_admin/reset`: `scope=properties` (the default) deletes every property, `scope=all`
/// users and tokens too; `to=seed` returns to exactly what the site's seed made (users, tokens,
/// properties), in one transaction.
async fn reset(
    State(state): State<AppState>,
    site: CurrentSite,
    uri: Uri,
    WholeBody(body): WholeBody,
) -> Result<StatusCode> {
    // Nothing, or an empty JSON object, as some clients send with every POST.
    let empty = body.iter().all(u8::is_ascii_whitespace)
        || serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body)
            .is_ok_and(|object| object.is_empty());
    if !empty {
        return Err(bad_request(
            "reset takes no body: its options are query parameters, ?scope=all or ?to=seed.",
        ));
    }
    let query = uri.query().unwrap_or_default().as_bytes();
    let (mut scope, mut to) = (None, None);
    for (name, value) in form_urlencoded::parse(query) {
        match name.as_ref() {
            "scope" => scope = Some(value),
            "to" => to = Some(value),
            other => return Err(bad_request(format!("Unknown parameter '{other}'."))),
        }
    }
    match (scope.as_deref(), to.as_deref()) {
        (None, Some("seed")) => {
            let seed = state.sites.seed_of(&site.state.site).await?;
            state.admin.restore(site.key(), &seed).await?;
        }
        (Some(_), Some(_)) => {
            return Err(bad_request("Use either scope or to=seed, not both."));
        }
        (_, Some(other)) => {
            return Err(bad_request(format!(
                "Unknown target '{other}': to=seed returns to what the seed made."
            )));
        }
        (None | Some("properties"), None) => state.admin.reset(site.key(), false).await?,
        (Some("all"), None) => state.admin.reset(site.key(), true).await?,
        (Some(other), None) => {
            return Err(bad_request(format!(
                "Unknown scope '{other}': use 'properties' (the default) or 'all'."
            )));
        }
    }
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
    WholeBody(body): WholeBody,
) -> Result<StatusCode> {
    state
        .admin
        .import(site.key(), Path::new("request body"), body)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /_admin/requests?method=&path=&…`: the journal, oldest first, filtered by a matcher
/// given as query parameters.
async fn requests(State(state): State<AppState>, site: CurrentSite, uri: Uri) -> Result<Response> {
    let matcher = usable(&state, Matcher::from_query(uri.query().unwrap_or_default()))?;
    json(StatusCode::OK, &site.state.journal.entries(&matcher))
}

/// `POST /_admin/requests/count` with a matcher: `{"count": N}`.
async fn count_requests(
    State(state): State<AppState>,
    site: CurrentSite,
    uri: Uri,
    WholeBody(body): WholeBody,
) -> Result<Response> {
    no_query(&uri)?;
    let matcher = usable(&state, Matcher::from_json(&body))?;
    let count = site.state.journal.count(&matcher);
    json(StatusCode::OK, &serde_json::json!({ "count": count }))
}

/// `POST /_admin/requests/find` with a matcher: the entries it matches, oldest first.
async fn find_requests(
    State(state): State<AppState>,
    site: CurrentSite,
    uri: Uri,
    WholeBody(body): WholeBody,
) -> Result<Response> {
    no_query(&uri)?;
    let matcher = usable(&state, Matcher::from_json(&body))?;
    json(StatusCode::OK, &site.state.journal.entries(&matcher))
}

/// Refuses query parameters where they would be ignored: a filter meant for the matcher in the
/// body would match everything, or clear the whole journal.
fn no_query(uri: &Uri) -> Result<()> {
    if uri.query().is_some_and(|query| !query.is_empty()) {
        return Err(bad_request(
            "This route takes no query parameters: a matcher goes in the JSON body, and \
             DELETE /_admin/requests clears the whole journal.",
        ));
    }
    Ok(())
}

/// A matcher that can match: one asked of a journal that is off, or about bodies the journal
/// does not keep, would match nothing, silently, so it is refused.
fn usable(state: &AppState, matcher: std::result::Result<Matcher, String>) -> Result<Matcher> {
    let matcher = matcher.map_err(bad_request)?;
    let (keeps, bodies) = state.site_states.journal_settings();
    if !keeps {
        return Err(bad_request(
            "The journal is off (--journal-size 0): it holds no request to match.",
        ));
    }
    if matcher.asks_about_bodies() && !bodies {
        return Err(bad_request(
            "body and bodyContains match PUT bodies, which the journal keeps only when the server \
             runs with --journal-bodies.",
        ));
    }
    Ok(matcher)
}

async fn clear_requests(site: CurrentSite, uri: Uri) -> Result<StatusCode> {
    no_query(&uri)?;
    site.state.journal.clear();
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /_admin/faults`: the rules in force, with what is left of their counts.
async fn faults(site: CurrentSite) -> Result<Response> {
    json(StatusCode::OK, &site.state.faults.rules())
}

/// `PUT /_admin/faults`: replaces the whole rule set.
async fn set_faults(site: CurrentSite, WholeBody(body): WholeBody) -> Result<Response> {
    let rules: FaultRules = json_body(&body).map_err(bad_request)?;
    rules.validate().map_err(bad_request)?;
    site.state.faults.replace(rules);
    json(StatusCode::OK, &site.state.faults.rules())
}

/// `DELETE /_admin/faults`: no faults, no rate limits.
async fn clear_faults(site: CurrentSite) -> StatusCode {
    site.state.faults.replace(FaultRules::default());
    StatusCode::NO_CONTENT
}
