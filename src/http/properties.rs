//! The four user-property operations, under /rest/api/2 and /rest/api/3.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use percent_encoding::utf8_percent_encode;
use serde::Serialize;

use std::sync::Arc;

use super::error::json_response;
use super::extract::{
    Authenticated, BaseUrl, LINK_ESCAPES, PropertyPath, TargetAccount, discard_unread, read_value,
};
use super::{AppState, RequestContext};
use crate::domain::{AccountId, Written};
use crate::error::{Error, Result};

#[derive(Serialize)]
struct KeyList<'a> {
    keys: Vec<KeyEntry<'a>>,
}

/// `self` comes before `key`, as Jira writes it.
#[derive(Serialize)]
struct KeyEntry<'a> {
    #[serde(rename = "self")]
    link: String,
    key: &'a str,
}

/// `GET .../user/properties?accountId=A`: the user's keys with their links.
pub async fn list_keys(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    TargetAccount(target): TargetAccount,
    path: PropertyPath,
    BaseUrl(base): BaseUrl,
) -> Result<Response> {
    let keys = state.service.property_keys(&caller, &target).await?;
    let list = KeyList {
        keys: keys
            .iter()
            .map(|key| KeyEntry {
                link: self_link(&base, path.version, key, &target),
                key,
            })
            .collect(),
    };
    let body = serde_json::to_vec(&list).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

fn self_link(base: &str, version: &str, key: &str, target: &AccountId) -> String {
    format!(
        "{base}/rest/api/{version}/user/properties/{}?accountId={}",
        utf8_percent_encode(key, LINK_ESCAPES),
        utf8_percent_encode(target.as_str(), LINK_ESCAPES)
    )
}

/// `GET .../user/properties/{key}?accountId=A`: `{"key":K,"value":V}` with V verbatim.
pub async fn get_property(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    TargetAccount(target): TargetAccount,
    path: PropertyPath,
) -> Result<Response> {
    let (key, value) = state.service.property(&caller, &target, path.key()).await?;
    let mut body = Vec::with_capacity(key.as_str().len() + value.as_str().len() + 24);
    body.extend_from_slice(b"{\"key\":");
    serde_json::to_writer(&mut body, key.as_str()).map_err(|e| Error::Internal(e.to_string()))?;
    body.extend_from_slice(b",\"value\":");
    body.extend_from_slice(value.as_str().as_bytes());
    body.push(b'}');
    Ok(json_response(StatusCode::OK, body))
}

/// `PUT .../user/properties/{key}?accountId=A`: 201 when created, 200 when replaced.
pub async fn set_property(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    TargetAccount(target): TargetAccount,
    path: PropertyPath,
    request: Request,
) -> Result<StatusCode> {
    let (parts, mut body) = request.into_parts();
    let context = parts
        .extensions
        .get::<Arc<RequestContext>>()
        .filter(|_| state.journal.keeps_bodies());
    let value = async {
        let value = read_value(&parts.headers, &mut body).await?;
        if let Some(context) = context {
            context.set_body(value.as_str());
        }
        Ok(value)
    };
    let written = state
        .service
        .set_property(&caller, &target, path.key(), value)
        .await;
    if written.is_err() {
        discard_unread(&mut body).await;
    }
    let written = written?;
    state.metrics.writes.inc();
    Ok(match written {
        Written::Created => StatusCode::CREATED,
        Written::Updated => StatusCode::OK,
    })
}

/// `DELETE .../user/properties/{key}?accountId=A`: 204.
pub async fn delete_property(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    TargetAccount(target): TargetAccount,
    path: PropertyPath,
) -> Result<StatusCode> {
    state
        .service
        .delete_property(&caller, &target, path.key())
        .await?;
    state.metrics.deletes.inc();
    Ok(StatusCode::NO_CONTENT)
}

/// Any other method on the keys path; PUT and DELETE there lack a key.
pub async fn keys_method_not_allowed(method: Method) -> Error {
    let message = if method == Method::PUT || method == Method::DELETE {
        "The property key is not specified."
    } else {
        "The method is not allowed for this resource."
    };
    Error::MethodNotAllowed {
        allow: "GET, HEAD".into(),
        message,
    }
}

/// Any other method on a property's path.
pub async fn property_method_not_allowed() -> Error {
    Error::MethodNotAllowed {
        allow: "GET, HEAD, PUT, DELETE".into(),
        message: "The method is not allowed for this resource.",
    }
}

/// No route matched.
pub async fn route_not_found() -> Error {
    Error::RouteNotFound
}
