//! Probes for orchestrators: alive (`/healthz`, no I/O), ready (`/readyz`, the database
//! answers), Prometheus metrics (`/metrics`), and a site's cloudId (`/_edge/tenant_info`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::error::{HttpError, json_response};
use super::site::CurrentSite;

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> Response {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#)
}

/// `GET /readyz`: the database is reachable and holds the schema; 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> Result<Response, HttpError> {
    match state.store.ready().await {
        Ok(()) => Ok(json_response(StatusCode::OK, r#"{"status":"ready"}"#)),
        Err(cause) => {
            tracing::warn!(error = %super::error::Causes(&cause), "not ready");
            Err(HttpError::NotReady)
        }
    }
}

/// `GET /metrics`: Prometheus text. Never holds credentials: labels are route templates.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state
        .metrics
        .render(&state.store, state.site_states.journal_len());
    let mut response = Response::new(text.into());
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /_edge/tenant_info`: the site's cloudId, to anyone, as Jira Cloud answers it.
pub async fn tenant_info(site: CurrentSite) -> Response {
    let body = format!(r#"{{"cloudId":"{}"}}"#, site.state.site.id);
    json_response(StatusCode::OK, body)
}
