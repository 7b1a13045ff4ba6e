//! The log line of every request: method, route template, status, latency and caller.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use super::RequestContext;

/// Logs the request when it starts (debug) and when it is answered (info).
pub async fn record(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let context = request.extensions().get::<Arc<RequestContext>>().cloned();
    let route = matched.as_ref().map_or("(unmatched)", MatchedPath::as_str);
    tracing::debug!(%method, route, "started");
    let response = next.run(request).await;
    let Some(context) = context else {
        return response;
    };
    let caller = context.caller().map_or("-", |caller| &**caller);
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        latency_us = context.started.elapsed().as_micros() as u64,
        caller,
        "handled"
    );
    response
}
