//! The web console at `/_admin/ui/`: server-rendered views over the services the admin API uses.
//!
//! It adds pages, never rules. The shell page and its script and style sheet are open: they hold
//! the sign-in form and nothing else. Every view and action takes the admin token as a Bearer
//! header, which the script keeps in the tab's `sessionStorage` and never puts in a URL or a
//! cookie. Views are fetched by the script and put into the shell; actions are POSTed forms
//! that answer with the view to show next. Every asset is compiled in.

mod faults;
mod json_html;
mod layout;
mod requests;
mod sites;
mod user;
mod users;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::AppState;
use super::authenticate::RequireAdmin;
use super::error::HttpError;
use super::layers::GuardLayer;

/// Where the console lives.
pub const BASE: &str = "/_admin/ui";

const SHELL: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// Scripts and styles from the server only, none inline; no framing; requests to the server only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

/// The console's routes: merged only when the admin API is on (`http::router`), every view
/// and action behind the admin token.
pub fn router(state: &AppState) -> Router<AppState> {
    let views = Router::new()
        .route(
            "/_admin/ui/views/sites",
            get(sites::list).post(sites::create),
        )
        .route("/_admin/ui/views/sites/{site}/delete", post(sites::delete))
        .route(
            "/_admin/ui/views/sites/{site}/users",
            get(users::list).post(users::create),
        )
        .route(
            "/_admin/ui/views/sites/{site}/users/{accountId}",
            get(user::show),
        )
        .route(
            "/_admin/ui/views/sites/{site}/users/{accountId}/flags",
            post(users::set_flags),
        )
        .route(
            "/_admin/ui/views/sites/{site}/users/{accountId}/tokens",
            post(user::create_token),
        )
        .route(
            "/_admin/ui/views/sites/{site}/users/{accountId}/tokens/{tokenId}/revoke",
            post(user::revoke_token),
        )
        .route(
            "/_admin/ui/views/sites/{site}/users/{accountId}/properties",
            post(user::set_property),
        )
        .route(
            "/_admin/ui/views/sites/{site}/users/{accountId}/properties/delete",
            post(user::delete_property),
        )
        .route(
            "/_admin/ui/views/sites/{site}/requests",
            get(requests::list),
        )
        .route(
            "/_admin/ui/views/sites/{site}/requests/live",
            get(requests::rows),
        )
        .route(
            "/_admin/ui/views/sites/{site}/requests/clear",
            post(requests::clear),
        )
        .route(
            "/_admin/ui/views/sites/{site}/requests/{requestId}",
            get(requests::show),
        )
        .route(
            "/_admin/ui/views/sites/{site}/faults",
            get(faults::show).post(faults::set),
        )
        .route(
            "/_admin/ui/views/sites/{site}/faults/clear",
            post(faults::clear),
        )
        .route_layer(GuardLayer(RequireAdmin(state.clone())));
    Router::new()
        .route(BASE, get(|| async { Redirect::permanent("/_admin/ui/") }))
        .route("/_admin/ui/", get(shell))
        .route("/_admin/ui/console.js", get(script))
        .route("/_admin/ui/console.css", get(style))
        .merge(views)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(secure))
}

/// A method a console page does not take: 405 in the API's shape; the router adds `Allow`.
async fn method_not_allowed() -> HttpError {
    HttpError::MethodNotAllowed {
        allow: "".into(),
        message: "The method is not allowed for this resource.",
    }
}

/// The headers every console answer carries.
async fn secure(response: Response) -> Response {
    super::browser_page(response, CONTENT_SECURITY_POLICY)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

async fn shell() -> Response {
    asset("text/html; charset=utf-8", SHELL)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// How many bytes the console's assets take in all.
#[cfg(test)]
fn assets_size() -> usize {
    SHELL.len() + SCRIPT.len() + STYLE.len()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_assets_stay_small_and_load_nothing_from_elsewhere() {
        assert!(
            super::assets_size() < 250 * 1024,
            "{}",
            super::assets_size()
        );
        for asset in [super::SHELL, super::SCRIPT, super::STYLE] {
            assert!(!asset.contains("http://") && !asset.contains("https://"));
        }
    }
}
