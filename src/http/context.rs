//! Per-request context: request id, timeout, the headers every response carries, the log line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::AppState;
use crate::error::Error;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-arequestid");
static ACCOUNT_ID: HeaderName = HeaderName::from_static("x-aaccountid");
static NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache, no-store, no-transform");

/// What the middleware learns while the request runs: who the caller turned out to be.
#[derive(Debug, Default)]
pub struct RequestContext {
    caller: OnceLock<String>,
}

impl RequestContext {
    /// Records the authenticated caller, for `X-AACCOUNTID` and the log line.
    pub fn set_caller(&self, account_id: &str) {
        let _ = self.caller.set(account_id.to_owned());
    }
}

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
    let started = Instant::now();
    let request_id = next_request_id();
    let context = Arc::new(RequestContext::default());
    request.extensions_mut().insert(context.clone());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!("request", id = %request_id);
    span.in_scope(|| tracing::debug!(%method, route, "started"));
    let timeout = state.request_timeout;
    let run = async move {
        match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => Error::Timeout.into_response(),
        }
    };
    let mut response = run.instrument(span.clone()).await;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID.clone(), value);
    }
    headers.insert(header::CACHE_CONTROL, NO_CACHE.clone());
    let caller = context.caller.get().map_or("-", String::as_str);
    if let Some(value) = context
        .caller
        .get()
        .and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok())
    {
        headers.insert(ACCOUNT_ID.clone(), value);
    }
    span.in_scope(|| {
        tracing::info!(
            %method,
            route,
            status = response.status().as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            caller,
            "handled"
        );
    });
    response
}
