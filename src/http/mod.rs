//! The HTTP face: shared state, the one route table and the middleware stack.

mod admin;
mod context;
mod error;
mod extract;
pub mod faults;
pub mod journal;
mod metrics;
mod openapi;
mod probes;
mod properties;
pub mod throttle;
mod upload;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{MethodRouter, get};

use crate::admin::AdminService;
use crate::credentials::TokenDigest;
use crate::error::Error;
use crate::service::PropertyService;
use crate::store::Store;
use faults::{FaultRules, Faults};
use journal::Journal;
use metrics::Metrics;
use throttle::LoginThrottle;

pub use context::RequestContext;
#[cfg(feature = "fuzzing")]
pub(crate) use extract::LINK_ESCAPES;
pub use openapi::OPENAPI_DOCUMENT;

/// `Content-Type` of every JSON body, written exactly as Jira Cloud writes it.
pub const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// What every handler and middleware shares. Extractors clone it for every request, so it is
/// one reference count, not a copy of each part.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// The user-properties service.
    pub service: PropertyService,
    /// The administration service.
    pub admin: AdminService,
    /// The store underneath, for readiness.
    pub store: Store,
    /// Base of `self` links; `None` means `http://` plus the request's Host header.
    pub public_url: Option<Arc<str>>,
    /// Longest time one request may take.
    pub request_timeout: Duration,
    /// Digest of the admin token; `None` turns the admin API off (404).
    pub admin_token: Option<TokenDigest>,
    /// The last requests, for `/_admin/requests`.
    pub journal: Arc<Journal>,
    /// Faults and rate limits in force.
    pub faults: Arc<Faults>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Failed logins per client.
    pub logins: Arc<LoginThrottle>,
}

/// The settings a server runs with, besides its store.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base of `self` links; `None` means `http://` plus the request's Host header.
    pub public_url: Option<String>,
    /// Longest time one request may take.
    pub request_timeout: Duration,
    /// The admin API's bearer token; `None` turns the admin API off.
    pub admin_token: Option<String>,
    /// Requests the journal keeps; 0 turns it off.
    pub journal_size: usize,
    /// Whether the journal keeps PUT bodies.
    pub journal_bodies: bool,
    /// Faults and rate limits at start.
    pub faults: FaultRules,
    /// Failed logins a client may make within the window before its logins are refused; 0: no
    /// limit.
    pub login_failures: u32,
    /// The window of `login_failures`, and how long a client is refused.
    pub login_failure_window: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_url: None,
            request_timeout: Duration::from_secs(30),
            admin_token: None,
            journal_size: 1000,
            journal_bodies: false,
            faults: FaultRules::default(),
            login_failures: 20,
            login_failure_window: Duration::from_secs(60),
        }
    }
}

impl AppState {
    /// The state of a server over `store`.
    pub fn new(store: Store, settings: Settings) -> Result<Self, prometheus::Error> {
        Ok(Self(Arc::new(Shared {
            service: PropertyService::new(store.clone()),
            admin: AdminService::new(store.clone()),
            store,
            public_url: settings.public_url.map(Arc::from),
            request_timeout: settings.request_timeout,
            admin_token: settings.admin_token.as_deref().map(TokenDigest::of),
            journal: Arc::new(Journal::new(settings.journal_size, settings.journal_bodies)),
            faults: Arc::new(Faults::new(settings.faults)),
            metrics: Metrics::new()?,
            logins: Arc::new(LoginThrottle::new(
                settings.login_failures,
                settings.login_failure_window,
            )),
        })))
    }
}

/// The API versions served; both behave identically.
const API_VERSIONS: [&str; 2] = ["2", "3"];

/// One route: its path in the router's syntax, the methods it serves (HEAD comes with GET) and
/// their handlers.
pub struct Route {
    /// The path, e.g. `/rest/api/3/user/properties/{*key}`.
    pub path: String,
    /// The methods served, besides HEAD.
    pub methods: &'static [&'static str],
    handlers: MethodRouter<AppState>,
}

/// Every route the server answers. The router is built from this table, and a test holds it
/// against `/openapi.json`, so the two cannot drift apart.
pub fn routes() -> Vec<Route> {
    let route = |path: String, methods, handlers| Route {
        path,
        methods,
        handlers,
    };
    let mut routes = Vec::new();
    for version in API_VERSIONS {
        let base = format!("/rest/api/{version}");
        let keys = || get(properties::list_keys).fallback(properties::keys_method_not_allowed);
        let property = get(properties::get_property)
            .put(properties::set_property)
            .delete(properties::delete_property)
            .fallback(properties::property_method_not_allowed);
        routes.extend([
            route(format!("{base}/user/properties"), &["GET"], keys()),
            route(format!("{base}/user/properties/"), &["GET"], keys()),
            route(
                format!("{base}/user/properties/{{*key}}"),
                &["GET", "PUT", "DELETE"],
                property,
            ),
            route(
                format!("{base}/serverInfo"),
                &["GET"],
                read_only(get(users::server_info)),
            ),
            route(
                format!("{base}/myself"),
                &["GET"],
                read_only(get(users::myself)),
            ),
            route(
                format!("{base}/user"),
                &["GET"],
                read_only(get(users::user)),
            ),
        ]);
    }
    let singles = [
        ("/openapi.json", get(openapi::document)),
        ("/healthz", get(probes::healthz)),
        ("/readyz", get(probes::readyz)),
        ("/metrics", get(probes::metrics)),
    ];
    for (path, handlers) in singles {
        routes.push(route(path.to_owned(), &["GET"], read_only(handlers)));
    }
    for (path, methods, handlers) in admin::routes() {
        routes.push(route(path.to_owned(), methods, allowing(methods, handlers)));
    }
    routes
}

/// Other methods get 405 in Jira's shape, with `Allow` naming `methods` (and HEAD with GET).
fn allowing(
    methods: &'static [&'static str],
    handlers: MethodRouter<AppState>,
) -> MethodRouter<AppState> {
    handlers.fallback(move || async move {
        let mut allow: Vec<&str> = methods.to_vec();
        if methods.contains(&"GET") {
            allow.insert(1, "HEAD");
        }
        Error::MethodNotAllowed {
            allow: allow.join(", ").into(),
            message: "The method is not allowed for this resource.",
        }
    })
}

/// Other methods on a path that only reads get 405 in Jira's shape.
fn read_only(handlers: MethodRouter<AppState>) -> MethodRouter<AppState> {
    allowing(&["GET"], handlers)
}

/// The complete application.
///
/// Middleware, outermost first: the request context (request id, timeout, common headers, the
/// log line), then panic recovery, then routing; authentication is an extractor, so routing
/// (404, 405) answers before it.
pub fn router(state: AppState) -> Router {
    let router = routes().into_iter().fold(Router::new(), |router, route| {
        router.route(&route.path, route.handlers)
    });
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
