//! What a request carries: which account, which key, the base of links, the value. Each is
//! parsed here once; handlers get typed values.

use std::borrow::Cow;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::HttpError;
use super::site::{CurrentSite, GATEWAY, Reached, request_authority, without_gateway};
use crate::domain::{
    Caller, KeyError, MAX_VALUE_BYTES, NamedAccount, Operation, PropertyKey, PropertyValue,
    ValueError, is_json_whitespace,
};
use crate::service::properties::require_scope;

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// A JSON body as `T`, or what is wrong with it, naming the field at fault (`scopes[1]: invalid
/// type: integer `5`, expected a string`), as serde alone does not.
pub fn json_body<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut json).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })?;
    json.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// The account named by the query: `accountId`, with Jira Cloud's GDPR strict-mode rules.
pub struct TargetAccount(pub NamedAccount);

impl<S: Sync> FromRequestParts<S> for TargetAccount {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        let query = parts.uri.query().unwrap_or_default();
        let mut account_id = None;
        let (mut username, mut user_key) = (false, false);
        let mut visit = |name: &str, value: Cow<'_, str>| match name {
            "username" => username = true,
            "userKey" => user_key = true,
            // The first value counts when the parameter is repeated.
            "accountId" if account_id.is_none() => account_id = Some(value.into_owned()),
            _ => {}
        };
        if query.contains(['%', '+']) {
            for (name, value) in form_urlencoded::parse(query.as_bytes()) {
                visit(&name, value);
            }
        } else {
            // Nothing to decode, as in most queries: splitting is all form decoding would do.
            for pair in query.split('&').filter(|pair| !pair.is_empty()) {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                visit(name, Cow::Borrowed(value));
            }
        }
        if username {
            return Err(HttpError::UnsupportedQueryParameter("username"));
        }
        if user_key {
            return Err(HttpError::UnsupportedQueryParameter("userKey"));
        }
        account_id
            .filter(|id| !id.is_empty())
            .map(|id| Self(NamedAccount::new(id)))
            .ok_or(HttpError::MissingAccountId)
    }
}

impl TargetAccount {
    /// The account, once the gateway's scope rule passed: the gateway answers before Jira reads
    /// the query, so an app without the scope hears "scope does not match" whatever it sent.
    pub fn in_scope(
        target: Result<Self>,
        caller: &Caller,
        operation: Operation,
    ) -> Result<NamedAccount> {
        require_scope(caller, operation)?;
        Ok(target?.0)
    }
}

/// The API version a request was made under: `"2"` or `"3"`.
pub struct ApiVersion(pub &'static str);

impl ApiVersion {
    fn of(path: &str) -> Result<(Self, &str)> {
        let path = without_gateway(path);
        if let Some(rest) = path.strip_prefix("/rest/api/2") {
            Ok((Self("2"), rest))
        } else if let Some(rest) = path.strip_prefix("/rest/api/3") {
            Ok((Self("3"), rest))
        } else {
            Err(HttpError::RouteNotFound)
        }
    }
}

impl<S: Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        Ok(Self::of(parts.uri.path())?.0)
    }
}

/// The parts of a properties path: the API version and the raw (still encoded) key.
pub struct PropertyPath {
    /// `"2"` or `"3"`, as requested.
    pub version: &'static str,
    raw_key: String,
}

impl PropertyPath {
    /// The key: everything after `/user/properties/`, percent-decoded once.
    pub fn key(&self) -> Result<PropertyKey, KeyError> {
        PropertyKey::from_path(&self.raw_key)
    }
}

impl<S: Sync> FromRequestParts<S> for PropertyPath {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        let (ApiVersion(version), rest) = ApiVersion::of(parts.uri.path())?;
        let rest = rest
            .strip_prefix("/user/properties")
            .ok_or(HttpError::RouteNotFound)?;
        Ok(Self {
            version,
            raw_key: rest.strip_prefix('/').unwrap_or(rest).to_owned(),
        })
    }
}

/// Everything but RFC 3986's unreserved characters is escaped in links.
pub const LINK_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The base of `self` links. Through the gateway: the server's own base (the public URL, or
/// `http://` plus the Host header) and `/ex/jira/{cloudId}`. By a site's own host: that host,
/// by the scheme sites are reached by. On the default site: the public URL, or the Host.
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let host = |scheme: &str| {
            let host = request_authority(&parts.uri, &parts.headers).unwrap_or("localhost");
            format!("{scheme}://{host}")
        };
        let server = || {
            state
                .public_url
                .as_deref()
                .map_or_else(|| host("http"), str::to_owned)
        };
        let base = match parts.extensions.get::<CurrentSite>() {
            Some(site) if site.reached == Reached::Gateway => {
                format!("{}{GATEWAY}{}", server(), site.state.site.id)
            }
            Some(site) if !site.state.site.is_default() => host(
                state
                    .site_proxy
                    .as_ref()
                    .map_or("http", |proxy| proxy.scheme),
            ),
            _ => server(),
        };
        Ok(Self(base))
    }
}

/// Whether the request declares a JSON body: `application/json`, with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads and validates a PUT body in Jira's order: media type, empty, too long, not JSON.
///
/// Never buffers more than the limit: once the body is known to be too long, reading stops.
/// Until a non-white-space byte arrives the body might still be "empty", so white space past the
/// limit is read and dropped rather than answered early.
pub async fn read_value(headers: &HeaderMap, body: &mut Body) -> Result<PropertyValue> {
    if !is_json(headers) {
        return Err(HttpError::UnsupportedMediaType);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(0);
    let mut buffer = Vec::with_capacity(declared.min(MAX_VALUE_BYTES + 1));
    let (mut received, mut has_value) = (0usize, false);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| HttpError::UnreadableBody)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len();
        has_value = has_value || data.iter().any(|&byte| !is_json_whitespace(byte));
        if received > MAX_VALUE_BYTES {
            if has_value {
                return Err(ValueError::TooLong.into());
            }
            continue;
        }
        buffer.extend_from_slice(&data);
    }
    if received > MAX_VALUE_BYTES {
        return Err(ValueError::Empty.into());
    }
    Ok(PropertyValue::from_body(buffer)?)
}

/// A whole request body, up to the route's limit: past it, 413 in Jira's shape rather than the
/// framework's text.
pub struct WholeBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for WholeBody {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        Bytes::from_request(request, state)
            .await
            .map(WholeBody)
            .map_err(|rejection| match rejection.status() {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE => HttpError::BodyTooLarge,
                _ => HttpError::UnreadableBody,
            })
    }
}

/// The path's parameters. One that does not decode (not UTF-8, say) names nothing: 404 in Jira's
/// shape rather than the framework's text.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(params)) => Ok(PathParams(params)),
            Err(rejection) if rejection.status().is_client_error() => Err(HttpError::RouteNotFound),
            Err(rejection) => Err(HttpError::Service(crate::error::Error::Internal(format!(
                "path parameters: {}",
                rejection.body_text()
            )))),
        }
    }
}
