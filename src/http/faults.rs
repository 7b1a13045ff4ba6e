//! Faults and rate limits on the Jira API, for an authenticated caller: Jira Cloud's limits act
//! per user, after authentication and before anything else. The rules live in `crate::faults`.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

use super::error::HttpError;
use super::layers::Guard;
use super::site::{CurrentSite, without_gateway};
use crate::domain::Caller;

static NEAR_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-nearlimit");

/// Refuses (429), delays or fails the request as the rules decide; marks a success that left
/// the caller's bucket nearly empty (`X-RateLimit-NearLimit`).
#[derive(Debug, Clone)]
pub struct ApplyFaults;

impl Guard for ApplyFaults {
    /// Whether the caller's bucket is nearly empty.
    type Memo = bool;

    async fn check(&self, request: Request) -> Result<(Request, bool), HttpError> {
        let extensions = request.extensions();
        let (Some(caller), Some(site)) =
            (extensions.get::<Caller>(), extensions.get::<CurrentSite>())
        else {
            return Ok((request, false));
        };
        // Rules name paths as a site's own host serves them, whichever way the request came.
        let path = without_gateway(request.uri().path());
        let route = extensions
            .get::<MatchedPath>()
            .map_or(path, |route| without_gateway(route.as_str()));
        let faults = &site.state.faults;
        let decision = faults.decide(path, request.method().as_str(), route, caller.account_id());
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
        // Decided after the delay: a request cut off while it waits spends no error's count.
        if decision.may_fail
            && let Some(status) = faults.fail(path, caller.account_id())
        {
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
