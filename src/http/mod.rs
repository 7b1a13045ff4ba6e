//! The HTTP face: shared state, the one route table, and the middleware in the order a request
//! meets it.
//!
//! A request passes, outermost first:
//!
//! 1. `context`: its id and shared context; the headers every response carries.
//! 2. `log`, `metrics`, `journal`: the log line, the counters, the journal entry. They sit
//!    outside the timeout so that a request that runs out of time is still logged, counted and
//!    journaled with the answer it got.
//! 3. `drain`: reads what an answer left unread of its body, whoever refused it (a panic too),
//!    so that the client is not reset while it still sends; outside the timeout, which would
//!    otherwise replace the answer with a 408 while a refused upload still arrives.
//! 4. `timeout`: the request timeout (408 for a slow upload, 503 otherwise); panics become 500s
//!    just inside it.
//! 5. Routing: no route is 404 and a wrong method 405, before anyone is asked who they are.
//! 6. Per route, from the table's [`Access`]: `site` (which site the request is for: the
//!    gateway's `/ex/jira/{cloudId}`, `/_admin/sites/{site}`, or the Host), `authenticate` (the
//!    site's caller into the request's extensions, or the admin token, checked before the site
//!    on admin routes), then on the Jira API `faults` (the site's rate limits, injected latency
//!    and errors). Unknown paths pass `site` too, so their 404 lands in the site's journal.
//! 7. The handler: extract, call the service, shape the answer.
//!
//! The web console (`console`) is routes of its own beside the table: its views sit behind the
//! admin token as the admin API does, and carry its page's security headers.
//!
//! Log, metrics, journal and context are `layers::Around`s, site, authentication and faults
//! `layers::Guard`s; the timeout, the panic catcher and the drain own the handler's future, so
//! each is a tower layer of its own. Only the `Guard` layers allocate per request (one boxed
//! future each), and the drain for a request that has a body.

mod admin;
pub(crate) mod apps;
mod atlassian_api;
mod authenticate;
mod consent;
mod console;
mod context;
mod drain;
mod error;
mod extract;
mod faults;
pub mod journal;
mod layers;
mod log;
mod metrics;
mod oauth;
pub(crate) mod oauth_params;
mod oauth_token;
mod openapi;
mod panics;
mod probes;
mod properties;
pub mod site;
mod sites;
mod state;
mod timeout;
mod users;
mod watched_body;

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use tower::ServiceBuilder;

use error::HttpError;
use layers::{AroundLayer, GuardLayer, Then};
use site::{GATEWAY, ResolveSite};

pub use context::RequestContext;
#[cfg(feature = "fuzzing")]
pub(crate) use extract::LINK_ESCAPES;
pub use openapi::{OPENAPI_DOCUMENT, SEED_SCHEMA};
pub use state::{AppState, Settings, StateParts};

/// `Content-Type` of every JSON body, written exactly as Jira Cloud writes it.
pub const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// Who may use a route, and so which middleware guards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: probes, metrics, the OpenAPI document.
    Open,
    /// A Jira user of the request's site, authenticated; faults and rate limits apply.
    Jira,
    /// Anyone, but credentials that are sent are checked, and then it is as [`Access::Jira`].
    JiraOrAnonymous,
    /// Anyone, on the request's site.
    Site,
    /// The admin token; the route acts on the request's site.
    Admin,
    /// The admin token; the route acts on the server (the sites themselves).
    AdminOfServer,
}

impl Access {
    /// Whether the route is the admin API's, which exists only with the admin token set.
    fn needs_admin(&self) -> bool {
        matches!(self, Self::Admin | Self::AdminOfServer)
    }
}

/// The API versions served; both behave identically.
const API_VERSIONS: [&str; 2] = ["2", "3"];

/// One route: its path in the router's syntax, the methods it serves (HEAD comes with GET),
/// who may use it, and its handlers.
pub struct Route {
    /// The path, e.g. `/rest/api/3/user/properties/{*key}`.
    pub path: String,
    /// The methods served, besides HEAD.
    pub methods: &'static [&'static str],
    /// Who may use it.
    pub access: Access,
    handlers: MethodRouter<AppState>,
}

/// A module's routes before their access is set: (path, methods besides HEAD, handlers).
type RouteTable = Vec<(
    &'static str,
    &'static [&'static str],
    MethodRouter<AppState>,
)>;

/// Every route the server answers. The router is built from this table, and a test holds it
/// against `/openapi.json`, so the two cannot drift apart.
pub fn routes() -> Vec<Route> {
    let route = |path: String, methods, access, handlers| Route {
        path,
        methods,
        access,
        handlers,
    };
    let mut routes = Vec::new();
    let bases = API_VERSIONS.iter().flat_map(|version| {
        [
            format!("/rest/api/{version}"),
            format!("{GATEWAY}{{cloudId}}/rest/api/{version}"),
        ]
    });
    for base in bases {
        let keys = || get(properties::list_keys).fallback(properties::keys_method_not_allowed);
        let property = get(properties::get_property)
            .put(properties::set_property)
            .delete(properties::delete_property)
            .fallback(properties::property_method_not_allowed);
        let (jira, either) = (Access::Jira, Access::JiraOrAnonymous);
        routes.extend([
            route(format!("{base}/user/properties"), &["GET"], jira, keys()),
            route(format!("{base}/user/properties/"), &["GET"], jira, keys()),
            route(
                format!("{base}/user/properties/{{*key}}"),
                &["GET", "PUT", "DELETE"],
                jira,
                property,
            ),
            route(
                format!("{base}/serverInfo"),
                &["GET"],
                either,
                read_only(get(users::server_info)),
            ),
            route(
                format!("{base}/myself"),
                &["GET"],
                jira,
                read_only(get(users::myself)),
            ),
            route(
                format!("{base}/user"),
                &["GET"],
                jira,
                read_only(get(users::user)),
            ),
            route(
                format!("{base}/user/search"),
                &["GET"],
                jira,
                read_only(get(users::search)),
            ),
            route(
                format!("{base}/user/bulk"),
                &["GET"],
                jira,
                read_only(get(users::bulk)),
            ),
        ]);
    }
    let singles = [
        ("/openapi.json", get(openapi::document)),
        ("/_admin/schema/seed.json", get(openapi::seed_schema)),
        ("/healthz", get(probes::healthz)),
        ("/readyz", get(probes::readyz)),
        ("/metrics", get(probes::metrics)),
    ];
    for (path, handlers) in singles {
        routes.push(route(
            path.to_owned(),
            &["GET"],
            Access::Open,
            read_only(handlers),
        ));
    }
    routes.push(route(
        "/_edge/tenant_info".to_owned(),
        &["GET"],
        Access::Site,
        read_only(get(probes::tenant_info)),
    ));
    for (path, methods, handlers) in oauth::routes().into_iter().chain(atlassian_api::routes()) {
        routes.push(route(
            path.to_owned(),
            methods,
            Access::Open,
            allowing(methods, handlers),
        ));
    }
    for (path, methods, handlers) in sites::routes().into_iter().chain(apps::routes()) {
        routes.push(route(
            path.to_owned(),
            methods,
            Access::AdminOfServer,
            allowing(methods, handlers),
        ));
    }
    for (path, methods, handlers) in admin::routes() {
        let per_site = path
            .strip_prefix("/_admin")
            .map(|rest| format!("/_admin/sites/{{site}}{rest}"));
        for path in std::iter::once(path.to_owned()).chain(per_site) {
            routes.push(route(
                path,
                methods,
                Access::Admin,
                allowing(methods, handlers.clone()),
            ));
        }
    }
    routes
}

/// Other methods get 405 in Jira's shape, with `Allow` naming `methods` (and HEAD with GET).
fn allowing(
    methods: &'static [&'static str],
    handlers: MethodRouter<AppState>,
) -> MethodRouter<AppState> {
    handlers.fallback(
        move |State(state): State<AppState>, request: Parts| async move {
            // Answered before the site is resolved: named here, so that its journal keeps it.
            site::note_site(&state, &request).await;
            let mut allow: Vec<&str> = methods.to_vec();
            if methods.contains(&"GET") {
                allow.insert(1, "HEAD");
            }
            HttpError::MethodNotAllowed {
                allow: allow.join(", ").into(),
                message: "The method is not allowed for this resource.",
            }
        },
    )
}

/// Other methods on a path that only reads get 405 in Jira's shape.
fn read_only(handlers: MethodRouter<AppState>) -> MethodRouter<AppState> {
    allowing(&["GET"], handlers)
}

/// A route's handlers behind the middleware its access asks for. `route_layer` leaves the
/// method fallback (405) outside, so a wrong method is answered before authentication.
fn guarded(route: Route, state: &AppState) -> MethodRouter<AppState> {
    let site = || ResolveSite(state.clone());
    let caller = |anonymous_allowed| {
        let authenticate = authenticate::RequireCaller {
            state: state.clone(),
            anonymous_allowed,
        };
        GuardLayer(Then(site(), Then(authenticate, faults::ApplyFaults)))
    };
    let handlers = route.handlers;
    match route.access {
        Access::Open => handlers,
        Access::Jira => handlers.route_layer(caller(false)),
        Access::JiraOrAnonymous => handlers.route_layer(caller(true)),
        Access::Site => handlers.route_layer(GuardLayer(site())),
        Access::Admin => handlers.route_layer(GuardLayer(Then(
            authenticate::RequireAdmin(state.clone()),
            site(),
        ))),
        Access::AdminOfServer => {
            handlers.route_layer(GuardLayer(authenticate::RequireAdmin(state.clone())))
        }
    }
}

/// The complete application: the route table behind the middleware, in the order written at
/// the top of this module.
pub fn router(state: AppState) -> Router {
    // Without the admin token the admin API and the console do not exist: their paths are
    // unknown paths (404), whatever the method, with no `Allow` to say otherwise.
    let admin_api_on = state.admin_token.is_some();
    let router = routes()
        .into_iter()
        .filter(|route| admin_api_on || !route.access.needs_admin())
        .fold(Router::new(), |router, route| {
            let path = route.path.clone();
            router.route(&path, guarded(route, &state))
        });
    let router = if admin_api_on {
        router.merge(console::router(&state))
    } else {
        router
    };
    let pipeline = ServiceBuilder::new()
        .layer(AroundLayer(context::Stamp(state.clone())))
        .layer(AroundLayer(log::LogLine))
        .layer(AroundLayer(metrics::Count(state.clone())))
        .layer(AroundLayer(journal::Keep(state.clone())))
        .layer(drain::DrainUnread)
        .layer(timeout::Limit(state.request_timeout))
        .layer(panics::CatchPanics);
    // Unknown paths are the site's too: journaled there, or 404 for a site that does not exist.
    let not_found = axum::routing::any(properties::route_not_found)
        .layer(GuardLayer(ResolveSite(state.clone())))
        .with_state(state.clone());
    router
        .fallback_service(not_found)
        .layer(pipeline)
        .with_state(state)
}

/// Headers for pages a browser shows: no other page may frame them (a framed button can be
/// clicked by a trick), nothing is sniffed, and no address leaks to the pages they link to.
fn browser_page(mut response: Response, content_security_policy: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(content_security_policy),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
