//! The HTTP face: shared state, the one route table and the middleware stack.

mod context;
mod error;
mod extract;
mod properties;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{MethodRouter, get};

use crate::service::PropertyService;

pub use context::RequestContext;

/// `Content-Type` of every JSON body, written exactly as Jira Cloud writes it.
pub const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// What every handler and middleware shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The user-properties service.
    pub service: PropertyService,
    /// Base of `self` links; `None` means `http://` plus the request's Host header.
    pub public_url: Option<Arc<str>>,
    /// Longest time one request may take.
    pub request_timeout: Duration,
}

/// The API versions served; both behave identically.
const API_VERSIONS: [&str; 2] = ["2", "3"];

/// The complete application.
///
/// Middleware, outermost first: the request context (request id, timeout, common headers, the
/// log line), then panic recovery, then routing; authentication is an extractor, so routing
/// (404, 405) answers before it.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for version in API_VERSIONS {
        let keys: MethodRouter<AppState> =
            get(properties::list_keys).fallback(properties::keys_method_not_allowed);
        let property = get(properties::get_property)
            .put(properties::set_property)
            .delete(properties::delete_property)
            .fallback(properties::property_method_not_allowed);
        router = router
            .route(
                &format!("/rest/api/{version}/user/properties"),
                keys.clone(),
            )
            .route(&format!("/rest/api/{version}/user/properties/"), keys)
            .route(
                &format!("/rest/api/{version}/user/properties/{{*key}}"),
                property,
            );
    }
    router
        .fallback(properties::route_not_found)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::request_context,
        ))
        .with_state(state)
}
