//! What every console view shares: the answer's shape, a site's tabs, notices, the one error
//! fragment, and reading a posted form.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::domain::{DEFAULT_SITE, Site};
use crate::http::AppState;
use crate::http::error::HttpError;
use crate::http::sites::Server;
use crate::service::sites::SiteReference;

/// The header that tells the script which view an answer shows, so the address bar follows.
static VIEW_HEADER: HeaderName = HeaderName::from_static("x-console-view");

/// Path segments keep letters, digits and `-._~`; everything else is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` as one path segment of a view's address.
pub fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// The admin API's address for `part` (`users`, `faults`) of `site`: the short form for the
/// default site, the one under `/_admin/sites/` for the others.
pub fn admin_path(site: &Site, part: &str) -> String {
    if site.name.as_str() == DEFAULT_SITE {
        format!("/_admin/{part}")
    } else {
        format!("/_admin/sites/{}/{part}", segment(site.name.as_str()))
    }
}

/// One view: its address (the part after `#`), its status and its markup.
pub struct View {
    path: String,
    status: StatusCode,
    markup: Markup,
}

impl View {
    /// A view at `path` (e.g. `/sites/acme/users`), answered 200.
    pub fn new(path: String, markup: Markup) -> Self {
        Self {
            path,
            status: StatusCode::OK,
            markup,
        }
    }

    /// The same view, answered with `status` (a form shown again with its errors).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl IntoResponse for View {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            self.markup.into_string(),
        )
            .into_response();
        if let Ok(path) = HeaderValue::from_str(&self.path) {
            response.headers_mut().insert(VIEW_HEADER.clone(), path);
        }
        response
    }
}

/// What a view or an action failed with, shown as a notice in the console's own shape. A server
/// fault is logged with its cause, as everywhere, and the console says only that it happened.
#[derive(Debug)]
pub struct Failure(pub HttpError);

impl<E: Into<HttpError>> From<E> for Failure {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let message = self.0.to_string();
        // The API's answer logs a server fault and knows the status.
        let status = self.0.into_response().status();
        let message = if status.is_server_error() {
            "The server could not do this; its log says why. Try again."
        } else {
            &message
        };
        let markup = html! {
            section.notice.error role="alert" {
                h1 tabindex="-1" { "Not done" }
                p { (message) }
                p { a href="#/sites" { "Back to the sites" } }
            }
        };
        (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            markup.into_string(),
        )
            .into_response()
    }
}

/// Where the server is reached, from the request: for the addresses a view shows.
pub struct Address(pub Server);

impl FromRequestParts<AppState> for Address {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(Server::of(state, &parts.uri, &parts.headers)))
    }
}

/// The site a view is for, by name or cloudId.
pub async fn find_site(state: &AppState, reference: &str) -> Result<Arc<Site>, Failure> {
    Ok(state.sites.find(SiteReference::parse(reference)).await?)
}

/// The tabs of a site's views.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Users,
    Requests,
    Faults,
}

/// A site's heading, the way back to the sites, and its tabs.
pub fn site_header(site: &Site, current: Tab, title: &str) -> Markup {
    let base = format!("#/sites/{}", segment(site.name.as_str()));
    let tabs = [
        (Tab::Users, "users", "Users"),
        (Tab::Requests, "requests", "Requests"),
        (Tab::Faults, "faults", "Faults and rate limits"),
    ];
    html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="#/sites" { "Sites" } " / " span { (site.name.as_str()) }
        }
        h1 tabindex="-1" { (title) }
        nav.tabs aria-label="Site" {
            @for (tab, path, label) in tabs {
                @if tab == current {
                    a href={ (base) "/" (path) } aria-current="page" { (label) }
                } @else {
                    a href={ (base) "/" (path) } { (label) }
                }
            }
        }
    }
}

/// A notice above a view: what an action did.
pub fn done(message: &str) -> Markup {
    html! { p.notice.done role="status" { (message) } }
}

/// A message beside a form field; `id` is what the field's `aria-describedby` names.
pub fn field_error(id: &str, message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.error id=(id) role="alert" { (message) }
        }
    }
}

/// A posted form (`application/x-www-form-urlencoded`), read once.
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Reads a form body.
    pub fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, if sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of `name` without white space around it, or `""`.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).map_or("", str::trim)
    }

    /// The first value of `name`, or `None` when it is missing or blank.
    pub fn filled(&self, name: &str) -> Option<&str> {
        Some(self.text(name)).filter(|value| !value.is_empty())
    }
}
