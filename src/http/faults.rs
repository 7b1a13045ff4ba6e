//! Faults and rate limits on the Jira API, for an authenticated caller: Jira Cloud's limits act
//! per user, after authentication and before anything else. The rules live in `crate::faults`.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::HttpError;
use crate::domain::Caller;

static NEAR_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-nearlimit");

/// Refuses (429), delays or fails the request as the rules decide; marks a success that left
/// the caller's bucket nearly empty (`X-RateLimit-NearLimit`).
pub async fn apply(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, HttpError> {
    let Some(caller) = request.extensions().get::<Caller>() else {
        return Ok(next.run(request).await);
    };
    let path = request.uri().path();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(path, MatchedPath::as_str);
    let decision = state.faults.decide(path, route, caller.account_id());
    if let Some(limited) = decision.limited {
        return Err(HttpError::RateLimited {
            retry_after: limited.retry_after,
            limit: limited.limit,
            reset: limited.reset,
        });
    }
    if let Some(delay) = decision.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = decision.error {
        return Err(HttpError::InjectedFault(status));
    }
    let mut response = next.run(request).await;
    if decision.near_limit && response.status().as_u16() < 400 {
        response
            .headers_mut()
            .insert(NEAR_LIMIT.clone(), HeaderValue::from_static("true"));
    }
    Ok(response)
}
