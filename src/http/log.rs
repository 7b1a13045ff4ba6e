//! The log line of every request: method, route template, status, latency and caller.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;

use super::RequestContext;
use super::layers::Around;

/// Logs the request when it starts (debug) and when it is answered (info).
#[derive(Debug, Clone)]
pub struct LogLine;

impl Around for LogLine {
    type Memo = (Method, Option<MatchedPath>, Option<Arc<RequestContext>>);

    fn before(&self, request: &mut Request) -> Self::Memo {
        let method = request.method().clone();
        let matched = request.extensions().get::<MatchedPath>().cloned();
        let route = matched.as_ref().map_or("(unmatched)", MatchedPath::as_str);
        tracing::debug!(%method, route, "started");
        let context = request.extensions().get::<Arc<RequestContext>>().cloned();
        (method, matched, context)
    }

    fn after(&self, (method, matched, context): Self::Memo, response: &mut Response) {
        let Some(context) = context else {
            return;
        };
        let route = matched.as_ref().map_or("(unmatched)", MatchedPath::as_str);
        let caller = context.caller().map_or("-", |caller| &**caller);
        tracing::info!(
            %method,
            route,
            status = response.status().as_u16(),
            latency_us = context.started.elapsed().as_micros() as u64,
            caller,
            "handled"
        );
    }

    fn cancelled(&self, (method, matched, context): Self::Memo) {
        let Some(context) = context else {
            return;
        };
        let route = matched.as_ref().map_or("(unmatched)", MatchedPath::as_str);
        let caller = context.caller().map_or("-", |caller| &**caller);
        // Outside the request's span by now, so its id is named here.
        tracing::info!(
            id = %context.id,
            %method,
            route,
            latency_us = context.started.elapsed().as_micros() as u64,
            caller,
            "dropped before its answer, as when its client went away"
        );
    }
}
