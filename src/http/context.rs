//! The outermost middleware: a request id and the request's shared context, and the headers
//! every response carries (`X-ARequestId`, `Cache-Control`, `X-AACCOUNTID`).

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;

use super::AppState;
use super::layers::Around;
use super::site::SiteState;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-arequestid");
static ACCOUNT_ID: HeaderName = HeaderName::from_static("x-aaccountid");
static NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache, no-store, no-transform");

/// A request's id: 128 random bits, shown as 32 hex digits; it reveals nothing about the process
/// or how many requests came before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(u128);

impl RequestId {
    /// A new id.
    pub fn random() -> Self {
        Self(fastrand::u128(..))
    }

    /// The id as hex digits, without an allocation.
    pub fn to_hex(self) -> [u8; 32] {
        let mut digits = [0u8; 32];
        // 16 bytes always fit 32 digits.
        let _ = hex::encode_to_slice(self.0.to_be_bytes(), &mut digits);
        digits
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// What every layer of one request shares, in its extensions: when it came, its id, which site
/// it is for and who turned out to be calling. Layers outside routing read these from here,
/// because the request itself has moved on by the time they answer.
#[derive(Debug)]
pub struct RequestContext {
    /// The request's id (`X-ARequestId`).
    pub id: RequestId,
    /// When the request arrived, for latencies.
    pub started: Instant,
    /// When the request arrived, for the journal.
    pub arrived: SystemTime,
    caller: OnceLock<Arc<str>>,
    site: OnceLock<Arc<SiteState>>,
}

impl RequestContext {
    fn new(arrived: SystemTime) -> Self {
        Self {
            id: RequestId::random(),
            started: Instant::now(),
            arrived,
            caller: OnceLock::new(),
            site: OnceLock::new(),
        }
    }

    /// Records the authenticated caller.
    pub fn set_caller(&self, account_id: &str) {
        let _ = self.caller.set(Arc::from(account_id));
    }

    /// Records the site the request is for.
    pub fn set_site(&self, site: Arc<SiteState>) {
        let _ = self.site.set(site);
    }

    /// The site the request is for, once known.
    pub fn site(&self) -> Option<&Arc<SiteState>> {
        self.site.get()
    }

    /// The authenticated caller's account id, once known.
    pub fn caller(&self) -> Option<&Arc<str>> {
        self.caller.get()
    }
}

/// Gives the request its context and a tracing span, then stamps the common headers.
#[derive(Debug, Clone)]
pub struct Stamp(pub AppState);

impl Around for Stamp {
    type Memo = (Arc<RequestContext>, tracing::Span);

    fn before(&self, request: &mut Request) -> Self::Memo {
        let context = Arc::new(RequestContext::new(self.0.clock.wall()));
        request.extensions_mut().insert(context.clone());
        let span = tracing::info_span!("request", id = %context.id);
        (context, span)
    }

    fn after(&self, (context, _): Self::Memo, response: &mut Response) {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_bytes(&context.id.to_hex()) {
            headers.insert(REQUEST_ID.clone(), value);
        }
        headers.insert(header::CACHE_CONTROL, NO_CACHE.clone());
        if let Some(value) = context
            .caller()
            .and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok())
        {
            headers.insert(ACCOUNT_ID.clone(), value);
        }
    }

    fn span((_, span): &Self::Memo) -> Option<&tracing::Span> {
        Some(span)
    }
}
