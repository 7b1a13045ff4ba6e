//! The documents that describe what is served: the OpenAPI document at `/openapi.json`, and the
//! JSON Schema of seeds and snapshots at `/_admin/schema/seed.json`.

use axum::http::StatusCode;
use axum::response::Response;

use super::error::json_response;

/// The document: Atlassian's description of the four operations, completed with the error bodies
/// it leaves out and with the routes around them.
pub const OPENAPI_DOCUMENT: &str = include_str!("openapi.json");

/// The JSON Schema of the seed and snapshot format, kept in `docs/`.
pub const SEED_SCHEMA: &str = include_str!("../../docs/seed.schema.json");

/// `GET /openapi.json`.
pub async fn document() -> Response {
    json_response(StatusCode::OK, OPENAPI_DOCUMENT)
}

/// `GET /_admin/schema/seed.json`: open, so that editors can fetch it by its address.
pub async fn seed_schema() -> Response {
    json_response(StatusCode::OK, SEED_SCHEMA)
}
