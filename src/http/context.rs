//! The outermost middleware: a request id and the request's shared context, and the headers
//! every response carries (`X-ARequestId`, `Cache-Control`, `X-AACCOUNTID`; `X-Request-Id`
//! echoed when the client sent a sane one, which then names the request in the log).

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::AppState;
use super::layers::Around;
use super::site::SiteState;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-arequestid");
static ACCOUNT_ID: HeaderName = HeaderName::from_static("x-aaccountid");
static CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
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

/// The client's `X-Request-Id`, when it is a sane token: 1 to 128 printable ASCII characters, no spaces.
fn client_request_id(request: &Request) -> Option<HeaderValue> {
    let value = request.headers().get(&CLIENT_REQUEST_ID)?;
    let bytes = value.as_bytes();
    let sane = (1..=128).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_graphic);
    sane.then(|| value.clone())
}

impl Around for Stamp {
    type Memo = (Arc<RequestContext>, tracing::Span, Option<HeaderValue>);

    fn before(&self, request: &mut Request) -> Self::Memo {
        let context = Arc::new(RequestContext::new(self.0.clock.wall()));
        request.extensions_mut().insert(context.clone());
        let given = client_request_id(request);
        // The log names the request as its client does too, so that the two can be matched;
        // its own id stays, as the journal and the console know it by that.
        let span = match given.as_ref().and_then(|id| id.to_str().ok()) {
            Some(client_id) => tracing::info_span!("request", id = %context.id, client_id),
            None => tracing::info_span!("request", id = %context.id),
        };
        (context, span, given)
    }

    fn after(&self, (context, _, given): Self::Memo, response: &mut Response) {
        let unauthorized = response.status() == StatusCode::UNAUTHORIZED;
        let headers = response.headers_mut();
        if let Some(given) = given {
            headers.insert(CLIENT_REQUEST_ID.clone(), given);
        }
        if let Ok(value) = HeaderValue::from_bytes(&context.id.to_hex()) {
            headers.insert(REQUEST_ID.clone(), value);
        }
        headers.insert(header::CACHE_CONTROL, NO_CACHE.clone());
        // A 401 names nobody, even when credentials passed and a later check (scopes) refused.
        if let Some(value) = context
            .caller()
            .filter(|_| !unauthorized)
            .and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok())
        {
            headers.insert(ACCOUNT_ID.clone(), value);
        }
    }

    fn span((_, span, _): &Self::Memo) -> Option<&tracing::Span> {
        Some(span)
    }
}
