//! Faults and rate limits on the Jira API, for an authenticated caller: Jira Cloud's limits act
//! per user, after authentication and before anything else. The rules live in `crate::faults`.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

use super::AppState;
use super::error::HttpError;
use super::layers::Guard;
use crate::domain::Caller;

static NEAR_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-nearlimit");

/// Refuses (429), delays or fails the request as the rules decide; marks a success that left
/// the caller's bucket nearly empty (`X-RateLimit-NearLimit`).
#[derive(Debug, Clone)]
pub struct ApplyFaults(pub AppState);

impl Guard for ApplyFaults {
    /// Whether the caller's bucket is nearly empty.
    type Memo = bool;

    async fn check(&self, request: Request) -> Result<(Request, bool), HttpError> {
        let Some(caller) = request.extensions().get::<Caller>() else {
            return Ok((request, false));
        };
        let path = request.uri().path();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or(path, MatchedPath::as_str);
        let decision = self.0.faults.decide(path, route, caller.account_id());
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
        Ok((request, decision.near_limit))
    }

    fn after(&self, near_limit: bool, response: &mut Response) {
        if near_limit && response.status().as_u16() < 400 {
            response
                .headers_mut()
                .insert(NEAR_LIMIT.clone(), HeaderValue::from_static("true"));
        }
    }
}
