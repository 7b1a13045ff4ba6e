//! Per-request context: request id, timeout, the headers every response carries, the log line,
//! and the journal and metrics entries.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Instant, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::AppState;
use super::journal::Record;
use super::upload::Upload;
use crate::error::Error;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-arequestid");
static ACCOUNT_ID: HeaderName = HeaderName::from_static("x-aaccountid");
static NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache, no-store, no-transform");

/// What the middleware learns while the request runs.
#[derive(Debug, Default)]
pub struct RequestContext {
    caller: OnceLock<Arc<str>>,
    body: OnceLock<String>,
    near_limit: AtomicBool,
}

impl RequestContext {
    /// Records the authenticated caller, for `X-AACCOUNTID`, the log line and the journal.
    pub fn set_caller(&self, account_id: &str) {
        let _ = self.caller.set(Arc::from(account_id));
    }

    /// Records the request body for the journal.
    pub fn set_body(&self, body: &str) {
        let _ = self.body.set(body.to_owned());
    }

    /// Marks the caller's rate-limit bucket as nearly empty (`X-RateLimit-NearLimit`).
    pub fn set_near_limit(&self) {
        self.near_limit.store(true, Ordering::Relaxed);
    }
}

static NEAR_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-nearlimit");

/// A request id: 32 hex digits, unique to this process run, that reveal neither the process nor
/// how many requests came before (a counter mixed with a random key).
fn next_request_id() -> String {
    static KEY: LazyLock<[u64; 2]> = LazyLock::new(|| {
        let mut bytes = [0u8; 16];
        // Without randomness ids are still unique within the run, only predictable.
        let _ = getrandom::fill(&mut bytes);
        let (high, low) = bytes.split_at(8);
        [
            u64::from_ne_bytes(high.try_into().unwrap_or_default()),
            u64::from_ne_bytes(low.try_into().unwrap_or_default()),
        ]
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{:016x}", mix(count ^ KEY[0]), mix(count ^ KEY[1]))
}

/// SplitMix64's finaliser: a bijection, so distinct counts give distinct ids.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Runs a request with its context, under the timeout, then stamps the common headers and logs.
pub async fn request_context(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let (started, arrived) = (Instant::now(), SystemTime::now());
    let request_id = next_request_id();
    // The URI is shared, not copied: only the journal needs its parts.
    let uri = request.uri().clone();
    let context = Arc::new(RequestContext::default());
    request.extensions_mut().insert(context.clone());
    let method = request.method().clone();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("(unmatched)", MatchedPath::as_str);
    let span = tracing::info_span!("request", id = %request_id);
    span.in_scope(|| tracing::debug!(%method, route, "started"));
    let timeout = state.request_timeout;
    let upload = Upload::default();
    let request = request.map(|body| upload.watch(body));
    let run = async move {
        match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            // The client was too slow sending the body: its fault (408), not the server's (503).
            Err(_) if upload.waiting_for_client() => Error::BodyTimeout.into_response(),
            Err(_) => Error::Timeout.into_response(),
        }
    };
    let mut response = run.instrument(span.clone()).await;
    let status = response.status().as_u16();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID.clone(), value);
    }
    headers.insert(header::CACHE_CONTROL, NO_CACHE.clone());
    let caller = context.caller.get().map_or("-", |caller| &**caller);
    if let Some(value) = context
        .caller
        .get()
        .and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok())
    {
        headers.insert(ACCOUNT_ID.clone(), value);
    }
    if status < 400 && context.near_limit.load(Ordering::Relaxed) {
        headers.insert(NEAR_LIMIT.clone(), HeaderValue::from_static("true"));
    }
    let latency = started.elapsed();
    span.in_scope(|| {
        tracing::info!(
            %method,
            route,
            status,
            latency_us = latency.as_micros() as u64,
            caller,
            "handled"
        );
    });
    state
        .metrics
        .observe(route, method.as_str(), status, latency.as_secs_f64());
    if journaled(uri.path()) {
        state.journal.record(Record {
            method,
            target: uri
                .path_and_query()
                .map_or(uri.path(), |target| target.as_str())
                .into(),
            account_id: context.caller.get().cloned(),
            status,
            latency,
            request_id,
            body: context.body.get().cloned(),
            at: arrived,
        });
    }
    response
}

/// The journal keeps what clients send to the API, not probes, metrics or the admin API.
fn journaled(path: &str) -> bool {
    !(path.starts_with("/_admin") || matches!(path, "/healthz" | "/readyz" | "/metrics"))
}
