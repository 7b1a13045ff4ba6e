//! What Jira clients call around the properties: `serverInfo`, `myself` and `user`.

use std::time::SystemTime;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use percent_encoding::utf8_percent_encode;
use serde::Serialize;

use super::AppState;
use super::authenticate::Authenticated;
use super::error::{HttpError, json_response};
use super::extract::{ApiVersion, BaseUrl, LINK_ESCAPES, TargetAccount};
use crate::domain::User;
use crate::error::Error;

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
) -> Result<Response> {
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

/// `GET .../myself`: the caller, email included.
pub async fn myself(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    version: ApiVersion,
    BaseUrl(base): BaseUrl,
) -> Result<Response> {
    let user = state.service.myself(&caller)?;
    json(&UserBody::new(&user, version.0, &base, true))
}

/// `GET .../user?accountId=A`: any user, for anyone signed in.
pub async fn user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    TargetAccount(target): TargetAccount,
    version: ApiVersion,
    BaseUrl(base): BaseUrl,
) -> Result<Response> {
    let user = state.service.user(&caller, &target).await?;
    let show_email = user.account_id == caller.account_id();
    json(&UserBody::new(&user, version.0, &base, show_email))
}

fn json(body: &impl Serialize) -> Result<Response> {
    let body =
        serde_json::to_vec(body).map_err(|e| HttpError::from(Error::Internal(e.to_string())))?;
    Ok(json_response(StatusCode::OK, body))
}
