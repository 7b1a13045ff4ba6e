//! The outermost middleware: a request id and the request's shared context, and the headers
//! every response carries (`X-ARequestId`, `Cache-Control`, `X-AACCOUNTID`).

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::AppState;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-arequestid");
static ACCOUNT_ID: HeaderName = HeaderName::from_static("x-aaccountid");
static NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache, no-store, no-transform");

/// What every layer of one request shares, in its extensions: when it came, its id, and who
/// turned out to be calling. Layers outside authentication read the caller from here, because
/// the request itself has moved on by the time they answer.
#[derive(Debug)]
pub struct RequestContext {
    /// 32 hex digits, unique to this process run, that reveal nothing about it.
    pub id: String,
    /// When the request arrived, for latencies.
    pub started: Instant,
    /// When the request arrived, for the journal.
    pub arrived: SystemTime,
    caller: OnceLock<Arc<str>>,
}

impl RequestContext {
    fn new(arrived: SystemTime) -> Self {
        Self {
            id: format!("{:032x}", fastrand::u128(..)),
            started: Instant::now(),
            arrived,
            caller: OnceLock::new(),
        }
    }

    /// Records the authenticated caller.
    pub fn set_caller(&self, account_id: &str) {
        let _ = self.caller.set(Arc::from(account_id));
    }

    /// The authenticated caller's account id, once known.
    pub fn caller(&self) -> Option<&Arc<str>> {
        self.caller.get()
    }
}

/// Gives the request its context and a tracing span, then stamps the common headers.
pub async fn stamp(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let context = Arc::new(RequestContext::new(state.clock.wall()));
    request.extensions_mut().insert(context.clone());
    let span = tracing::info_span!("request", id = %context.id);
    let mut response = next.run(request).instrument(span).await;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&context.id) {
        headers.insert(REQUEST_ID.clone(), value);
    }
    headers.insert(header::CACHE_CONTROL, NO_CACHE.clone());
    if let Some(value) = context
        .caller()
        .and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok())
    {
        headers.insert(ACCOUNT_ID.clone(), value);
    }
    response
}
