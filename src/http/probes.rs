//! Probes for orchestrators: alive (`/healthz`, no I/O) and ready (`/readyz`, the database answers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::error::json_response;
use crate::error::{Error, Result};

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> Response {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#)
}

/// `GET /readyz`: the database is reachable and holds the schema; 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> Result<Response> {
    match state.store.ready().await {
        Ok(()) => Ok(json_response(StatusCode::OK, r#"{"status":"ready"}"#)),
        Err(cause) => {
            tracing::warn!(error = %cause, "not ready");
            Err(Error::NotReady)
        }
    }
}
