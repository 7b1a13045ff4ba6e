//! The OpenAPI document of everything served, at `/openapi.json`.

use axum::http::StatusCode;
use axum::response::Response;

use super::error::json_response;

/// The document: Atlassian's description of the four operations, completed with the error bodies
/// it leaves out and with the routes around them.
pub const OPENAPI_DOCUMENT: &str = include_str!("openapi.json");

/// `GET /openapi.json`.
pub async fn document() -> Response {
    json_response(StatusCode::OK, OPENAPI_DOCUMENT)
}
