//! The admin API's sites: `/_admin/sites` lists and makes them, `/_admin/sites/{site}` shows or
//! deletes one (by name or cloudId). The route table puts them behind the admin token, and
//! nothing else: they act on no one site.

use std::path::Path;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::error::{HttpError, json_response};
use super::site::{GATEWAY, request_authority, request_host};
use super::{AppState, RouteTable};
use crate::domain::{CloudId, DEFAULT_SITE, Site, SiteName};
use crate::error::Error;
use crate::http::extract::{PathParams, WholeBody, json_body};
use crate::seed;
use crate::service::sites::{NewSite, SiteReference};

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// The sites' routes: (path, methods besides HEAD, handlers).
pub fn routes() -> RouteTable {
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
pub(super) struct SiteBody<'a> {
    pub(super) id: String,
    pub(super) name: &'a str,
    pub(super) url: String,
    pub(super) gateway_url: String,
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

/// Where the server is reached, from `--public-url` or the request's own Host and port.
pub(super) struct Server {
    /// `--public-url`, or `http://` and the Host header: the default site, and the gateway.
    base: String,
    /// `http://` or `https://`, for a site's own host.
    scheme: &'static str,
    /// `:port`, or nothing, for a site's own host.
    port: String,
}

impl Server {
    pub(super) fn of(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Self {
        let host = request_host(uri, headers).unwrap_or("localhost");
        let authority = request_authority(uri, headers).unwrap_or("localhost");
        let port = authority
            .strip_prefix(host)
            .filter(|port| port.starts_with(':'))
            .unwrap_or_default()
            .to_owned();
        // A public URL in a site domain (`http://localhost:8080`) says how sites are reached too.
        let (scheme, port) = match &state.site_proxy {
            Some(proxy) => (proxy.scheme, proxy.port.clone()),
            None => ("http", port),
        };
        let base = match state.public_url.as_deref() {
            Some(public) => public.to_owned(),
            // Asked through a site's host: the server itself is the bare domain.
            None => match site_domain_of(state, host) {
                Some(domain) => format!("http://{domain}{port}"),
                None => format!("http://{authority}"),
            },
        };
        Self { base, scheme, port }
    }

    /// A site's own URL by its name; the server's for the default site.
    fn site_url(&self, state: &AppState, name: &SiteName) -> String {
        match state.site_domains.first() {
            _ if name.as_str() == DEFAULT_SITE => self.base.clone(),
            Some(domain) => format!("{}://{name}.{domain}{}", self.scheme, self.port),
            None => self.base.clone(),
        }
    }

    /// Where clients reach a site: its own host, or the gateway where it has none (no site
    /// domain) or where that host is the default site's (the public URL's own).
    pub(super) fn site_address(&self, state: &AppState, name: &SiteName, id: &CloudId) -> String {
        let shadowed = state.site_proxy.as_ref().is_some_and(|proxy| {
            name.as_str() != DEFAULT_SITE
                && state.site_domains.first().is_some_and(|domain| {
                    proxy.default_host == format!("{}.{domain}", name.as_str())
                })
        });
        match state.site_domains.first() {
            Some(_) if !shadowed => self.site_url(state, name),
            _ => self.gateway_url(id),
        }
    }

    /// A site's address on the gateway, `…/ex/jira/{cloudId}`.
    fn gateway_url(&self, id: &CloudId) -> String {
        format!("{}{GATEWAY}{id}", self.base)
    }

    pub(super) fn describe<'a>(&self, state: &AppState, site: &'a Site) -> SiteBody<'a> {
        SiteBody {
            id: site.id.to_string(),
            name: site.name.as_str(),
            url: self.site_address(state, &site.name, &site.id),
            gateway_url: self.gateway_url(&site.id),
        }
    }
}

/// Whether `host` is a site domain or lies under one.
fn in_site_domain(site_domains: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    site_domains
        .iter()
        .any(|domain| host == *domain || host.ends_with(&format!(".{domain}")))
}

/// How every site's own host is reached when the public URL lies in a site domain
/// (`https://jira.example` with the domain `example`: one proxy serves every site's host).
#[derive(Debug, Clone)]
pub struct SiteProxy {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `:port`, or nothing.
    pub port: String,
    /// The public URL's own host, lower case: it reaches the default site, as its links say,
    /// though it looks like a site's host (`jira.example` would name a site `jira`).
    pub default_host: String,
}

impl SiteProxy {
    /// The proxy the public URL says, if it lies in a site domain; read once, at start.
    pub(super) fn of(public_url: Option<&str>, site_domains: &[String]) -> Option<Self> {
        let url = url::Url::parse(public_url?).ok()?;
        let host = url.host_str()?;
        in_site_domain(site_domains, host).then(|| Self {
            scheme: if url.scheme() == "https" {
                "https"
            } else {
                "http"
            },
            port: url
                .port()
                .map_or_else(String::new, |port| format!(":{port}")),
            default_host: host.trim_end_matches('.').to_ascii_lowercase(),
        })
    }
}

/// The site domain `host` lies under (`acme.localhost` → `localhost`).
fn site_domain_of<'a>(state: &'a AppState, host: &str) -> Option<&'a str> {
    let host = host.to_ascii_lowercase();
    state
        .site_domains
        .iter()
        .find(|domain| host.ends_with(&format!(".{domain}")))
        .map(String::as_str)
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
    WholeBody(body): WholeBody,
) -> Result<Response> {
    // A seed may be 2 MB of JSON: read off the runtime's threads.
    let new = tokio::task::spawn_blocking(move || new_site(&body))
        .await
        .map_err(|e| Error::Internal(format!("the new site's body was not read: {e}")))??;
    let (site, _) = state.sites.create(new).await?;
    let server = Server::of(&state, &uri, &headers);
    json(StatusCode::CREATED, &server.describe(&state, &site))
}

/// A `POST /_admin/sites` body: a name, perhaps an id, perhaps a seed of users and tokens.
fn new_site(body: &[u8]) -> Result<NewSite> {
    let body: NewSiteBody = json_body(body).map_err(|e| {
        bad_request(format!(
            r#"The request body must be a site as JSON: {{"name":"acme"}}, optionally with "id" and "seed" ({e})."#
        ))
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
            // Apps belong to the server, not to a site: registered through /_admin/apps.
            if !seed.apps.is_empty() {
                return Err(bad_request(
                    "A site's seed cannot hold apps: register them with POST /_admin/apps.",
                ));
            }
            seed.data
        }
        None => Default::default(),
    };
    Ok(NewSite { name, id, seed })
}

async fn get_site(
    State(state): State<AppState>,
    PathParams(reference): PathParams<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    let site = state.sites.find(SiteReference::parse(&reference)).await?;
    let server = Server::of(&state, &uri, &headers);
    json(StatusCode::OK, &server.describe(&state, &site))
}

async fn delete_site(
    State(state): State<AppState>,
    PathParams(reference): PathParams<String>,
) -> Result<StatusCode> {
    let site = state.sites.find(SiteReference::parse(&reference)).await?;
    state.sites.delete(&site).await?;
    state.site_states.remove(site.key);
    Ok(StatusCode::NO_CONTENT)
}
