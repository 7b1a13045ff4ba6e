//! The four user-property operations, under /rest/api/2 and /rest/api/3.

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use percent_encoding::utf8_percent_encode;

use super::AppState;
use super::authenticate::Authenticated;
use super::error::{HttpError, json_response};
use super::extract::{BaseUrl, LINK_ESCAPES, PropertyPath, TargetAccount, read_value};
use super::site::note_site;
use crate::domain::{NamedAccount, Operation, Written};
use crate::error::Error;

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// `GET .../user/properties?accountId=A`: the user's keys with their links.
pub async fn list_keys(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    target: Result<TargetAccount>,
    path: PropertyPath,
    BaseUrl(base): BaseUrl,
) -> Result<Response> {
    let target = TargetAccount::in_scope(target, &caller, Operation::ReadProperties)?;
    let keys = state.service.property_keys(&caller, &target).await?;
    let prefix = format!("{base}/rest/api/{}/user/properties/", path.version);
    Ok(json_response(
        StatusCode::OK,
        key_list(&prefix, &target, &keys)?,
    ))
}

/// `{"keys":[{"self":L,"key":K},...]}` (`self` first, as Jira writes it), written straight into
/// one buffer: no string for each link, and the account encoded once.
fn key_list(prefix: &str, target: &NamedAccount, keys: &[String]) -> Result<Vec<u8>> {
    let account = utf8_percent_encode(target.as_str(), LINK_ESCAPES).to_string();
    let per_key = prefix.len() + account.len() + 40;
    let size: usize = keys.iter().map(|key| 2 * key.len() + per_key).sum();
    let mut body = Vec::with_capacity(16 + size);
    let mut link = prefix.to_owned();
    body.extend_from_slice(b"{\"keys\":[");
    for (index, key) in keys.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        link.truncate(prefix.len());
        link.extend(utf8_percent_encode(key, LINK_ESCAPES));
        link.push_str("?accountId=");
        link.push_str(&account);
        body.extend_from_slice(b"{\"self\":");
        write_json_string(&mut body, &link)?;
        body.extend_from_slice(b",\"key\":");
        write_json_string(&mut body, key)?;
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    Ok(body)
}

fn write_json_string(body: &mut Vec<u8>, text: &str) -> Result<()> {
    serde_json::to_writer(body, text).map_err(|e| Error::Internal(e.to_string()).into())
}

/// `GET .../user/properties/{key}?accountId=A`: `{"key":K,"value":V}` with V verbatim.
pub async fn get_property(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    target: Result<TargetAccount>,
    path: PropertyPath,
) -> Result<Response> {
    let target = TargetAccount::in_scope(target, &caller, Operation::ReadProperties)?;
    let (key, value) = state.service.property(&caller, &target, path.key()).await?;
    let mut body = Vec::with_capacity(key.as_str().len() + value.as_str().len() + 24);
    body.extend_from_slice(b"{\"key\":");
    write_json_string(&mut body, key.as_str())?;
    body.extend_from_slice(b",\"value\":");
    body.extend_from_slice(value.as_str().as_bytes());
    body.push(b'}');
    Ok(json_response(StatusCode::OK, body))
}

/// `PUT .../user/properties/{key}?accountId=A`: 201 when created, 200 when replaced.
pub async fn set_property(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    target: Result<TargetAccount>,
    path: PropertyPath,
    request: Request,
) -> Result<StatusCode> {
    let target = TargetAccount::in_scope(target, &caller, Operation::WriteProperty)?;
    let (parts, mut body) = request.into_parts();
    let value = read_value(&parts.headers, &mut body);
    let written = state
        .service
        .set_property(&caller, &target, path.key(), value)
        .await;
    Ok(match written? {
        Written::Created => StatusCode::CREATED,
        Written::Updated => StatusCode::OK,
    })
}

/// `DELETE .../user/properties/{key}?accountId=A`: 204.
pub async fn delete_property(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    target: Result<TargetAccount>,
    path: PropertyPath,
) -> Result<StatusCode> {
    let target = TargetAccount::in_scope(target, &caller, Operation::DeleteProperty)?;
    let key = path.key();
    state.service.delete_property(&caller, &target, key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Any other method on the keys path; PUT and DELETE there lack a key.
pub async fn keys_method_not_allowed(State(state): State<AppState>, request: Parts) -> HttpError {
    note_site(&state, &request).await;
    let method = &request.method;
    let message = if method == Method::PUT || method == Method::DELETE {
        "The property key is not specified."
    } else {
        "The method is not allowed for this resource."
    };
    HttpError::MethodNotAllowed {
        allow: "GET, HEAD".into(),
        message,
    }
}

/// Any other method on a property's path.
pub async fn property_method_not_allowed(
    State(state): State<AppState>,
    request: Parts,
) -> HttpError {
    note_site(&state, &request).await;
    HttpError::MethodNotAllowed {
        allow: "GET, HEAD, PUT, DELETE".into(),
        message: "The method is not allowed for this resource.",
    }
}

/// No route matched.
pub async fn route_not_found() -> HttpError {
    HttpError::RouteNotFound
}
