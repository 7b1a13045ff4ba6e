//! The admin API's apps: `/_admin/apps` lists and registers OAuth 2.0 apps and service accounts,
//! `/_admin/apps/{clientId}` deletes one with everything it holds.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::error::{HttpError, json_response};
use super::{AppState, RouteTable};
use crate::clock::rfc3339_ms;
use crate::credentials::Secret;
use crate::domain::{AppKind, Scopes};
use crate::error::Error;
use crate::http::extract::{PathParams, WholeBody, json_body};
use crate::service::apps::{CreatedApp, NewApp};
use crate::service::sites::SiteReference;
use crate::store::oauth::AppRecord;

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// The apps' routes: (path, methods besides HEAD, handlers).
pub fn routes() -> RouteTable {
    vec![
        (
            "/_admin/apps",
            &["GET", "POST"],
            get(list_apps).post(create_app),
        ),
        (
            "/_admin/apps/{clientId}",
            &["DELETE"],
            axum::routing::delete(delete_app),
        ),
        ("/_admin/apps/{clientId}/grants", &["GET"], get(list_grants)),
        (
            "/_admin/apps/{clientId}/grants/{grantId}",
            &["DELETE"],
            axum::routing::delete(revoke_grant),
        ),
    ]
}

/// `POST /_admin/apps`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewAppBody {
    name: String,
    kind: Option<String>,
    callback_url: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    auto_consent: bool,
    client_id: Option<String>,
    client_secret: Option<String>,
    #[serde(default)]
    sites: Vec<String>,
    #[serde(default)]
    admin: bool,
}

/// An app as the admin API shows it: never its secret's digest.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppBody<'a> {
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    name: &'a str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<&'a str>,
    scopes: Vec<&'a str>,
    auto_consent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

impl<'a> From<&'a AppRecord> for AppBody<'a> {
    fn from(app: &'a AppRecord) -> Self {
        Self {
            client_id: &app.client_id,
            client_secret: None,
            name: &app.name,
            kind: app.kind.as_str(),
            callback_url: app.callback_url.as_deref(),
            scopes: app.scopes.iter().collect(),
            auto_consent: app.auto_consent,
            account_id: app.account_id.as_deref(),
            email: None,
        }
    }
}

impl<'a> AppBody<'a> {
    /// A new app, with its secret shown this once and a service account's email.
    pub(crate) fn created(created: &'a CreatedApp) -> Self {
        let mut body = Self::from(&created.app);
        body.client_secret = Some(&created.client_secret);
        body.email = created.account.as_ref().map(|(_, email)| email.as_str());
        body
    }
}

fn json(status: StatusCode, body: &impl Serialize) -> Result<Response> {
    let body = serde_json::to_vec(body).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(json_response(status, body))
}

fn bad_request(message: impl Into<String>) -> HttpError {
    Error::BadRequest(message.into()).into()
}

async fn list_apps(State(state): State<AppState>) -> Result<Response> {
    let apps = state.apps.apps().await?;
    json(
        StatusCode::OK,
        &apps.iter().map(AppBody::from).collect::<Vec<_>>(),
    )
}

async fn create_app(State(state): State<AppState>, WholeBody(body): WholeBody) -> Result<Response> {
    let body: NewAppBody = json_body(&body).map_err(|e| {
        bad_request(format!(
            "The request body must be an app as JSON ({e}): name, kind, callbackUrl, scopes, \
             autoConsent, clientId, clientSecret, sites, admin."
        ))
    })?;
    let kind = match body.kind.as_deref() {
        None => None,
        Some(kind) => Some(AppKind::parse(kind).ok_or_else(|| {
            bad_request(format!(
                "Unknown kind '{kind}': use 'oauth2' or 'serviceAccount'."
            ))
        })?),
    };
    let mut sites = Vec::with_capacity(body.sites.len());
    for name in &body.sites {
        let key = match state.sites.find(SiteReference::Name(name)).await {
            Ok(site) => site.key,
            Err(Error::SiteNotFound) => {
                return Err(bad_request(format!("There is no site named '{name}'.")));
            }
            Err(error) => return Err(error.into()),
        };
        sites.push(key);
    }
    let new = NewApp {
        name: body.name,
        kind,
        callback_url: body.callback_url,
        scopes: Scopes::of(&body.scopes).map_err(|e| bad_request(format!("scopes: {e}.")))?,
        auto_consent: body.auto_consent,
        client_id: body.client_id,
        client_secret: body.client_secret.map(Secret::from),
        sites,
        admin: body.admin,
    };
    let created = state.apps.create_app(new).await?;
    json(StatusCode::CREATED, &AppBody::created(&created))
}

/// A grant as the admin API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GrantBody<'a> {
    id: &'a str,
    account_id: &'a str,
    scopes: Vec<&'a str>,
    sites: Vec<GrantSite<'a>>,
    /// When its refresh-token family ends, whatever its use.
    ends_at: String,
}

#[derive(Serialize)]
struct GrantSite<'a> {
    id: String,
    name: &'a str,
}

async fn list_grants(
    State(state): State<AppState>,
    PathParams(client_id): PathParams<String>,
) -> Result<Response> {
    let grants = state.apps.grants(&client_id).await?;
    let sites = state.sites.list().await?;
    let body: Vec<GrantBody> = grants
        .iter()
        .map(|grant| GrantBody {
            id: &grant.id,
            account_id: &grant.account_id,
            scopes: grant.scopes.iter().collect(),
            sites: sites
                .iter()
                .filter(|site| grant.sites.contains(&site.key))
                .map(|site| GrantSite {
                    id: site.id.to_string(),
                    name: site.name.as_str(),
                })
                .collect(),
            ends_at: rfc3339_ms(grant.ends_at),
        })
        .collect();
    json(StatusCode::OK, &body)
}

async fn revoke_grant(
    State(state): State<AppState>,
    PathParams((client_id, grant_id)): PathParams<(String, String)>,
) -> Result<StatusCode> {
    state.apps.revoke_grant(&client_id, &grant_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_app(
    State(state): State<AppState>,
    PathParams(client_id): PathParams<String>,
) -> Result<StatusCode> {
    let sites: Vec<_> = state
        .sites
        .list()
        .await?
        .iter()
        .map(|site| site.key)
        .collect();
    state.apps.delete_app(&client_id, &sites).await?;
    Ok(StatusCode::NO_CONTENT)
}
