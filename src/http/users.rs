//! What Jira clients call around the properties: `serverInfo`, `myself`, `user`, and the user
//! lookups apps make before writing a property: `user/search` and `user/bulk`.

use std::time::SystemTime;

use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use percent_encoding::utf8_percent_encode;
use serde::Serialize;

use super::AppState;
use super::authenticate::Authenticated;
use super::error::{HttpError, json_response};
use super::extract::{ApiVersion, BaseUrl, LINK_ESCAPES, TargetAccount};
use crate::domain::{Caller, Operation, User};
use crate::error::Error;
use crate::service::properties::require_scope;

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// The Jira Cloud version reported: Cloud always says 1001.0.0-SNAPSHOT.
const VERSION: &str = "1001.0.0-SNAPSHOT";
const VERSION_NUMBERS: [u32; 3] = [1001, 0, 0];
const BUILD_NUMBER: u32 = 100_000;
const BUILD_DATE: &str = "2026-01-01T00:00:00.000+0000";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerInfo<'a> {
    base_url: &'a str,
    version: &'static str,
    version_numbers: [u32; 3],
    deployment_type: &'static str,
    build_number: u32,
    build_date: &'static str,
    server_time: String,
    scm_info: &'static str,
    server_title: &'static str,
    default_locale: Locale,
    server_time_zone: &'static str,
}

#[derive(Serialize)]
struct Locale {
    locale: &'static str,
}

/// `GET .../serverInfo`: what a client learns before anything else. Open to anonymous callers,
/// as on Jira Cloud (the route table lets credentials be checked only when sent).
pub async fn server_info(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    caller: Option<Extension<Caller>>,
) -> Result<Response> {
    // Credentials, when sent, must still hold: nothing else here would confirm cached ones.
    if let Some(Extension(caller)) = caller {
        state.authenticator.confirmed(&caller).await?;
    }
    let info = ServerInfo {
        base_url: &base,
        version: VERSION,
        version_numbers: VERSION_NUMBERS,
        deployment_type: "Cloud",
        build_number: BUILD_NUMBER,
        build_date: BUILD_DATE,
        server_time: jira_time(state.clock.wall()),
        scm_info: env!("CARGO_PKG_VERSION"),
        server_title: "Jira",
        default_locale: Locale { locale: "en_US" },
        server_time_zone: "Etc/UTC",
    };
    json(&info)
}

/// Jira's timestamp form: `2026-11-29T12:00:00.000+0000`.
fn jira_time(time: SystemTime) -> String {
    let text = humantime::format_rfc3339_millis(time).to_string();
    format!("{}+0000", text.trim_end_matches('Z'))
}

/// A user as Jira Cloud shows one.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserBody<'a> {
    #[serde(rename = "self")]
    link: String,
    account_id: &'a str,
    account_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_address: Option<&'a str>,
    display_name: &'a str,
    active: bool,
    time_zone: &'static str,
    locale: &'static str,
}

impl<'a> UserBody<'a> {
    /// Emails are shown to their owner only, as under Jira Cloud's default profile visibility.
    fn new(user: &'a User, version: &str, base: &str, show_email: bool) -> Self {
        Self {
            link: format!(
                "{base}/rest/api/{version}/user?accountId={}",
                utf8_percent_encode(&user.account_id, LINK_ESCAPES)
            ),
            account_id: &user.account_id,
            account_type: "atlassian",
            email_address: show_email.then_some(user.email.as_str()),
            display_name: &user.display_name,
            active: user.active,
            time_zone: "Etc/UTC",
            locale: "en_US",
        }
    }
}

impl<'a> UserBody<'a> {
    /// Users as a list answers them: each email shown to its owner only.
    fn each(users: &'a [User], version: &str, base: &str, caller: &str) -> Vec<Self> {
        users
            .iter()
            .map(|user| Self::new(user, version, base, user.account_id == caller))
            .collect()
    }
}

/// `GET .../myself`: the caller, email included.
pub async fn myself(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    version: ApiVersion,
    BaseUrl(base): BaseUrl,
) -> Result<Response> {
    let user = state.service.myself(&caller).await?;
    json(&UserBody::new(&user, version.0, &base, true))
}

/// `GET .../user?accountId=A`: any user, for anyone signed in.
pub async fn user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    target: Result<TargetAccount>,
    version: ApiVersion,
    BaseUrl(base): BaseUrl,
) -> Result<Response> {
    let target = TargetAccount::in_scope(target, &caller, Operation::ReadUsers)?;
    let user = state.service.user(&caller, &target).await?;
    let show_email = user.account_id == caller.account_id();
    json(&UserBody::new(&user, version.0, &base, show_email))
}

/// `startAt` and `maxResults`, as Jira reads them: whole numbers, `maxResults` capped.
fn page(query: &[(String, String)], default_max: usize, cap: usize) -> Result<(usize, usize)> {
    let number = |name: &str, default: usize| -> Result<usize> {
        match query.iter().find(|(key, _)| key == name) {
            None => Ok(default),
            Some((_, value)) => value.parse().map_err(|_| {
                HttpError::from(Error::BadRequest(format!(
                    "The value '{value}' is invalid for {name}."
                )))
            }),
        }
    };
    Ok((
        number("startAt", 0)?,
        number("maxResults", default_max)?.min(cap),
    ))
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// `GET .../user/search?query=&accountId=&startAt=&maxResults=`: active users by a prefix of
/// their name or email, or by account id.
pub async fn search(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    version: ApiVersion,
    BaseUrl(base): BaseUrl,
    uri: Uri,
) -> Result<Response> {
    // The gateway's scope rule answers before the query is read.
    require_scope(&caller, Operation::ReadUsers)?;
    let pairs = query_pairs(&uri);
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.as_str())
    };
    let (query, account_id) = (value("query"), value("accountId"));
    if query.is_none_or(str::is_empty) && account_id.is_none_or(str::is_empty) {
        return Err(Error::BadRequest(
            "The query parameter or the accountId parameter must be provided.".to_owned(),
        )
        .into());
    }
    let (start_at, max_results) = page(&pairs, 50, 1000)?;
    let users = state
        .service
        .search_users(&caller, query, account_id, start_at, max_results)
        .await?;
    json(&UserBody::each(
        &users,
        version.0,
        &base,
        caller.account_id(),
    ))
}

/// A page of users, as `user/bulk` answers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserPage<'a> {
    #[serde(rename = "self")]
    link: String,
    max_results: usize,
    start_at: usize,
    total: usize,
    is_last: bool,
    values: Vec<UserBody<'a>>,
}

/// `GET .../user/bulk?accountId=A&accountId=B&startAt=&maxResults=`: users by account id.
pub async fn bulk(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    version: ApiVersion,
    BaseUrl(base): BaseUrl,
    uri: Uri,
) -> Result<Response> {
    // The gateway's scope rule answers before the query is read.
    require_scope(&caller, Operation::ReadUsers)?;
    let pairs = query_pairs(&uri);
    let ids: Vec<String> = pairs
        .iter()
        .filter(|(key, value)| key == "accountId" && !value.is_empty())
        .map(|(_, value)| value.clone())
        .collect();
    if ids.is_empty() {
        return Err(
            Error::BadRequest("The accountId parameter must be provided.".to_owned()).into(),
        );
    }
    let (start_at, max_results) = page(&pairs, 10, 200)?;
    let (users, total) = state
        .service
        .users_by_id(&caller, &ids, start_at, max_results)
        .await?;
    let link = format!(
        "{base}/rest/api/{}/user/bulk?{}",
        version.0,
        uri.query().unwrap_or_default()
    );
    let values = UserBody::each(&users, version.0, &base, caller.account_id());
    json(&UserPage {
        link,
        max_results,
        start_at,
        total,
        is_last: start_at + values.len() >= total,
        values,
    })
}

fn json(body: &impl Serialize) -> Result<Response> {
    let body =
        serde_json::to_vec(body).map_err(|e| HttpError::from(Error::Internal(e.to_string())))?;
    Ok(json_response(StatusCode::OK, body))
}
