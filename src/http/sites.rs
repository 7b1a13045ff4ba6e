//! The admin API's sites: `/_admin/sites` lists and makes them, `/_admin/sites/{site}` shows or
//! deletes one (by name or cloudId). The route table puts them behind the admin token.

use std::path::Path;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::AppState;
use super::error::{HttpError, json_response};
use super::site::{CurrentSite, GATEWAY};
use crate::domain::{CloudId, Site, SiteName};
use crate::error::Error;
use crate::seed;
use crate::service::sites::NewSite;

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// The sites' routes: (path, methods besides HEAD, handlers).
pub fn routes() -> Vec<(
    &'static str,
    &'static [&'static str],
    MethodRouter<AppState>,
)> {
    vec![
        (
            "/_admin/sites",
            &["GET", "POST"],
            get(list_sites).post(create_site),
        ),
        (
            "/_admin/sites/{site}",
            &["GET", "DELETE"],
            get(get_site).delete(delete_site),
        ),
    ]
}

/// A site as the admin API shows one, with the two ways to reach it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SiteBody<'a> {
    id: String,
    name: &'a str,
    url: String,
    gateway_url: String,
}

/// `POST /_admin/sites`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSiteBody<'a> {
    name: Option<String>,
    id: Option<String>,
    #[serde(borrow)]
    seed: Option<&'a RawValue>,
}

/// Where the server is reached: its scheme, host and port, from `--public-url` or the request.
struct Server {
    /// `--public-url`, or `http://` and the Host header.
    base: String,
    scheme: String,
    /// `:port`, or nothing.
    port: String,
}

impl Server {
    fn of(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Self {
        if let Some(public) = state.public_url.as_deref() {
            let parsed = url::Url::parse(public).ok();
            let port = parsed
                .as_ref()
                .and_then(url::Url::port)
                .map_or_else(String::new, |port| format!(":{port}"));
            let scheme = parsed.map_or_else(|| "http".to_owned(), |url| url.scheme().to_owned());
            return Self {
                base: public.to_owned(),
                scheme,
                port,
            };
        }
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .or_else(|| uri.authority().map(|authority| authority.as_str()))
            .unwrap_or("localhost");
        let port = match host.rsplit_once(':') {
            Some((_, port)) if port.bytes().all(|b| b.is_ascii_digit()) => format!(":{port}"),
            _ => String::new(),
        };
        Self {
            base: format!("http://{host}"),
            scheme: "http".to_owned(),
            port,
        }
    }

    fn describe<'a>(&self, state: &AppState, site: &'a Site) -> SiteBody<'a> {
        let gateway_url = format!("{}{GATEWAY}{}", self.base, site.id);
        let url = match state.site_domains.first() {
            _ if site.is_default() => self.base.clone(),
            Some(domain) => format!("{}://{}.{domain}{}", self.scheme, site.name, self.port),
            None => gateway_url.clone(),
        };
        SiteBody {
            id: site.id.to_string(),
            name: site.name.as_str(),
            url,
            gateway_url,
        }
    }
}

fn json(status: StatusCode, body: &impl Serialize) -> Result<Response> {
    let body = serde_json::to_vec(body).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(json_response(status, body))
}

fn bad_request(message: impl Into<String>) -> HttpError {
    Error::BadRequest(message.into()).into()
}

async fn list_sites(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    let server = Server::of(&state, &uri, &headers);
    let sites = state.sites.list().await?;
    let bodies: Vec<_> = sites
        .iter()
        .map(|site| server.describe(&state, site))
        .collect();
    json(StatusCode::OK, &bodies)
}

async fn create_site(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let body: NewSiteBody = std::str::from_utf8(&body)
        .ok()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| {
            bad_request(r#"The request body must be a site as JSON: {"name":"acme"}, optionally with "id" and "seed"."#)
        })?;
    let name = body
        .name
        .map(SiteName::parse)
        .transpose()
        .map_err(|e| bad_request(e.to_string()))?;
    let id = body
        .id
        .as_deref()
        .map(CloudId::parse)
        .transpose()
        .map_err(|e| bad_request(e.to_string()))?;
    let seed = match body.seed {
        Some(seed) => {
            let seed = seed::parse(Path::new("seed"), seed.get())
                .map_err(|e| bad_request(e.to_string()))?;
            if !seed.sites.is_empty() {
                return Err(bad_request("A site's seed cannot hold other sites."));
            }
            seed.data
        }
        None => Default::default(),
    };
    let (site, _) = state.sites.create(NewSite { name, id, seed }).await?;
    let server = Server::of(&state, &uri, &headers);
    json(StatusCode::CREATED, &server.describe(&state, &site))
}

async fn get_site(
    State(state): State<AppState>,
    site: CurrentSite,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    let server = Server::of(&state, &uri, &headers);
    json(StatusCode::OK, &server.describe(&state, &site.state.site))
}

async fn delete_site(State(state): State<AppState>, site: CurrentSite) -> Result<StatusCode> {
    state.sites.delete(&site.state.site).await?;
    state.site_states.remove(site.key());
    Ok(StatusCode::NO_CONTENT)
}
