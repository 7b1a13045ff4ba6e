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

/// A request id unique to this process run: a random prefix and a counter, 32 hex digits.
fn next_request_id() -> String {
    static PREFIX: LazyLock<u64> = LazyLock::new(|| {
        let mut bytes = [0u8; 8];
        // Without randomness ids are still unique within the run, only not across runs.
        let _ = getrandom::fill(&mut bytes);
        u64::from_ne_bytes(bytes)
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:016x}{:016x}",
        *PREFIX,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
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
    let mut response = match tokio::time::timeout(
        state.request_timeout,
        next.run(request).instrument(span.clone()),
    )
    .await
    {
        Ok(response) => response,
        Err(_) => Error::Timeout.into_response(),
    };
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
