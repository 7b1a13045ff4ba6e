//! The request journal: each site's last N API requests, in memory, for tests to assert on; and
//! the middleware that keeps them. One idea, a little past 350 lines: the body tap and the entry
//! exist only for each other.
//! Which entries a question is about is `matcher`'s.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

use super::context::RequestId;
use super::layers::Around;
use super::site::without_gateway;

mod matcher;

use super::watched_body::{BodyObserver, Polled, watched};
use super::{AppState, RequestContext};
use crate::domain::{MAX_VALUE_BYTES, is_json_whitespace};
pub use matcher::Matcher;

/// Keeps one journal entry for every request to the API (not probes, metrics or the admin API),
/// with the body of a PUT that was stored when bodies are kept.
#[derive(Debug, Clone)]
pub struct Keep(pub AppState);

/// What the journal notes of a request before it is answered.
pub struct Arrival {
    method: Method,
    target: Box<str>,
    headers: Box<str>,
    context: Arc<RequestContext>,
    tap: Option<BodyTap>,
}

impl Around for Keep {
    type Memo = Option<Arrival>;

    fn before(&self, request: &mut Request) -> Self::Memo {
        let (keeps, bodies) = self.0.site_states.journal_settings();
        let path = request.uri().path();
        if !keeps
            || path.starts_with("/_admin")
            || path.starts_with("/_edge/")
            || matches!(path, "/healthz" | "/readyz" | "/metrics")
        {
            return None;
        }
        let context = request.extensions().get::<Arc<RequestContext>>()?.clone();
        let method = request.method().clone();
        let target = kept_target(
            request
                .uri()
                .path_and_query()
                .map_or(path, |target| target.as_str()),
        );
        let headers = headers_without_secrets(request.headers());
        let tap = (bodies && method == Method::PUT).then(BodyTap::default);
        if let Some(tap) = &tap {
            let body = std::mem::take(request.body_mut());
            *request.body_mut() = watched(body, tap.clone());
        }
        Some(Arrival {
            method,
            target,
            headers,
            context,
            tap,
        })
    }

    fn after(&self, arrival: Self::Memo, response: &mut Response) {
        let Some(Arrival {
            method,
            target,
            headers,
            context,
            tap,
        }) = arrival
        else {
            return;
        };
        // Requests for no site (an unknown one) go to no journal.
        let Some(site) = context.site() else {
            return;
        };
        let status = response.status();
        let body = tap
            .filter(|_| matches!(status, StatusCode::OK | StatusCode::CREATED))
            .and_then(BodyTap::value);
        site.journal.record(Record {
            method,
            target,
            headers,
            account_id: context.caller().cloned(),
            status: status.as_u16(),
            latency: context.started.elapsed(),
            request_id: context.id,
            body,
            at: context.arrived,
        });
    }
}

/// Most of a request's path and query the journal keeps: past any request the API accepts (a
/// 255-character key, percent-encoded, and an account id), short of what a flood could fill.
const MAX_TARGET: usize = 8192;

/// `target`, copied (a `Uri` would share, and so keep alive, the connection's whole read buffer)
/// and cut short past [`MAX_TARGET`].
fn kept_target(target: &str) -> Box<str> {
    if target.len() <= MAX_TARGET {
        return target.into();
    }
    let kept = &target[..target.floor_char_boundary(MAX_TARGET)];
    format!("{kept}… ({} bytes)", target.len()).into()
}

/// Most of one header value the journal keeps.
const MAX_HEADER_VALUE: usize = 256;
/// Most of a request's headers the journal keeps, so that 1,000 entries stay a few MiB.
const MAX_HEADERS: usize = 2048;

/// The request's headers as `name: value` lines, one copy for the whole set, with the values of
/// credentials replaced (an `Authorization` keeps its scheme) and long values cut short.
fn headers_without_secrets(headers: &HeaderMap) -> Box<str> {
    let mut text = String::with_capacity(256);
    for (name, value) in headers {
        if text.len() + name.as_str().len() > MAX_HEADERS {
            text.push_str("…: more headers not kept\n");
            break;
        }
        text.push_str(name.as_str());
        text.push_str(": ");
        let value = String::from_utf8_lossy(value.as_bytes());
        if name == header::AUTHORIZATION || name == header::PROXY_AUTHORIZATION {
            let scheme = value.split_once(' ').map_or("", |(scheme, _)| scheme);
            let scheme = &scheme[..scheme.floor_char_boundary(32)];
            text.push_str(scheme);
            text.push_str(if scheme.is_empty() {
                "[hidden]"
            } else {
                " [hidden]"
            });
        } else if name == header::COOKIE {
            text.push_str("[hidden]");
        } else if value.len() > MAX_HEADER_VALUE {
            text.push_str(&value[..value.floor_char_boundary(MAX_HEADER_VALUE)]);
            text.push_str(&format!("… ({} bytes)", value.len()));
        } else {
            text.push_str(&value);
        }
        text.push('\n');
    }
    text.into()
}

/// A copy of what the handler reads of a request body, up to the largest value.
#[derive(Debug, Clone, Default)]
pub struct BodyTap(Arc<Mutex<Vec<u8>>>);

impl BodyTap {
    /// The value as stored: a stored PUT's body is one JSON value, and its text is the body
    /// without the white space around it.
    fn value(self) -> Option<String> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        let start = bytes.iter().position(|&b| !is_json_whitespace(b))?;
        let end = bytes.iter().rposition(|&b| !is_json_whitespace(b))?;
        String::from_utf8(bytes.get(start..=end)?.to_vec()).ok()
    }
}

impl BodyObserver for BodyTap {
    fn polled(&self, polled: &Polled) {
        if let Poll::Ready(Some(Ok(frame))) = polled
            && let Some(data) = frame.data_ref()
        {
            let mut copy = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let room = (MAX_VALUE_BYTES + 1).saturating_sub(copy.len());
            copy.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
}

/// One request as the journal shows it: never credentials; the body only when asked to.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// When the request arrived, RFC 3339.
    pub time: String,
    /// The method.
    pub method: String,
    /// The path, as sent.
    pub path: String,
    /// The query string, as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The authenticated caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The status answered.
    pub status: u16,
    /// How long the answer took, in milliseconds.
    pub latency_ms: f64,
    /// The request id (`X-ARequestId`).
    pub request_id: String,
    /// The request's headers, credentials hidden; repeated names joined with `, `.
    #[serde(serialize_with = "header_object")]
    pub headers: Vec<(String, String)>,
    /// The PUT body, with `--journal-bodies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// What to keep of a request, in as few allocations as will do: most entries are never read,
/// and are written out only when they are.
#[derive(Debug)]
pub struct Record {
    /// The method.
    pub method: Method,
    /// The path and query, as sent. Copied: a `Uri` would share, and so keep alive, the
    /// connection's whole read buffer.
    pub target: Box<str>,
    /// The headers as `name: value` lines, credentials hidden.
    pub headers: Box<str>,
    /// The authenticated caller.
    pub account_id: Option<Arc<str>>,
    /// The status answered.
    pub status: u16,
    /// How long the answer took.
    pub latency: Duration,
    /// The request id.
    pub request_id: RequestId,
    /// The PUT body, if kept.
    pub body: Option<String>,
    /// When the request arrived.
    pub at: SystemTime,
}

impl Record {
    /// The path, and the query if there is one.
    pub(super) fn path_and_query(&self) -> (&str, Option<&str>) {
        match self.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (&self.target, None),
        }
    }

    fn entry(&self) -> Entry {
        let (path, query) = self.path_and_query();
        Entry {
            time: humantime::format_rfc3339_millis(self.at).to_string(),
            method: self.method.as_str().to_owned(),
            path: path.to_owned(),
            query: query.map(str::to_owned),
            account_id: self.account_id.as_deref().map(str::to_owned),
            status: self.status,
            latency_ms: self.latency.as_secs_f64() * 1000.0,
            request_id: self.request_id.to_string(),
            headers: self.header_pairs(),
            body: self.body.clone(),
        }
    }

    fn header_pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for line in self.headers.lines() {
            let (name, value) = line.split_once(": ").unwrap_or((line, ""));
            match pairs.last_mut() {
                Some((last, joined)) if last == name => {
                    joined.push_str(", ");
                    joined.push_str(value);
                }
                _ => pairs.push((name.to_owned(), value.to_owned())),
            }
        }
        pairs
    }

    /// The property key of a request to one property, decoded.
    pub(super) fn property_key(&self) -> Option<String> {
        let path = without_gateway(self.path_and_query().0);
        let rest = path
            .strip_prefix("/rest/api/3/user/properties/")
            .or_else(|| path.strip_prefix("/rest/api/2/user/properties/"))?;
        let key = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
        (!key.is_empty()).then(|| key.into_owned())
    }
}

fn header_object<S: serde::Serializer>(
    pairs: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(pairs.iter().map(|(name, value)| (name, value)))
}

/// A bounded journal: memory never holds more than `capacity` entries; 0 turns it off.
///
/// Questions are answered on a copy of the list (of pointers) taken under the lock: matching
/// bodies can take long, and every request of the site waits on the lock to be recorded.
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    entries: Mutex<VecDeque<Arc<Record>>>,
}

impl Journal {
    /// A journal of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
        }
    }

    /// Adds a request, dropping the oldest when full.
    pub fn record(&self, record: Record) {
        if self.capacity == 0 {
            return;
        }
        let record = Arc::new(record);
        let mut entries = self.records();
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(record);
    }

    /// The entries that `matcher` matches, oldest first.
    pub fn entries(&self, matcher: &Matcher) -> Vec<Entry> {
        self.held()
            .iter()
            .filter(|record| matcher.matches(record))
            .map(|record| record.entry())
            .collect()
    }

    /// The newest `most` entries `matcher` matches, newest first, and how many it matches in
    /// all: only those shown are copied out.
    pub fn newest(&self, matcher: &Matcher, most: usize) -> (Vec<Entry>, usize) {
        let held = self.held();
        let mut matching = held.iter().rev().filter(|record| matcher.matches(record));
        let newest: Vec<Entry> = matching
            .by_ref()
            .take(most)
            .map(|record| record.entry())
            .collect();
        let total = newest.len() + matching.count();
        (newest, total)
    }

    /// How many entries `matcher` matches.
    pub fn count(&self, matcher: &Matcher) -> usize {
        self.held()
            .iter()
            .filter(|record| matcher.matches(record))
            .count()
    }

    /// The records held now, oldest first, to look through without the lock.
    fn held(&self) -> Vec<Arc<Record>> {
        self.records().iter().cloned().collect()
    }

    /// The entry with this request id.
    pub fn entry(&self, request_id: &str) -> Option<Entry> {
        let entries = self.records();
        entries
            .iter()
            .find(|e| e.request_id.to_hex() == request_id.as_bytes())
            .map(|record| record.entry())
    }

    fn records(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Record>>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.len())
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.records().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(journal: &Journal, status: u16) {
        journal.record(Record {
            method: Method::GET,
            target: "/rest/api/3/user/properties".into(),
            headers: "authorization: Basic [hidden]\n".into(),
            account_id: Some(Arc::from("a")),
            status,
            latency: Duration::from_millis(1),
            request_id: RequestId::random(),
            body: None,
            at: SystemTime::now(),
        });
    }

    #[test]
    fn the_journal_never_holds_more_than_its_capacity() {
        let journal = Journal::new(3);
        for status in 200..210 {
            record(&journal, status);
        }
        let statuses: Vec<u16> = journal
            .entries(&Matcher::default())
            .iter()
            .map(|e| e.status)
            .collect();
        assert_eq!(statuses, [207, 208, 209]);
    }

    #[test]
    fn credentials_are_hidden_and_repeated_headers_joined() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            "Basic Ym9iOnNlY3JldA==".parse().unwrap(),
        );
        headers.insert(header::COOKIE, "session=secret".parse().unwrap());
        headers.append("x-trace", "1".parse().unwrap());
        headers.append("x-trace", "2".parse().unwrap());
        let journal = Journal::new(1);
        journal.record(Record {
            method: Method::PUT,
            target: "/ex/jira/c0ffee/rest/api/2/user/properties/a%20b?accountId=x".into(),
            headers: headers_without_secrets(&headers),
            account_id: None,
            status: 200,
            latency: Duration::ZERO,
            request_id: RequestId::random(),
            body: None,
            at: SystemTime::now(),
        });
        let entry = journal.entries(&Matcher::default()).remove(0);
        assert_eq!(
            entry.headers,
            [
                ("authorization".to_owned(), "Basic [hidden]".to_owned()),
                ("cookie".to_owned(), "[hidden]".to_owned()),
                ("x-trace".to_owned(), "1, 2".to_owned()),
            ]
        );
        let with_key =
            |key: &str| Matcher::from_query(&format!("key={}", key.replace(' ', "%20"))).unwrap();
        assert_eq!(journal.entries(&with_key("a b")).len(), 1, "decoded key");
        assert!(journal.entries(&with_key("a")).is_empty());
        assert_eq!(
            journal.entry(&entry.request_id).map(|e| e.status),
            Some(200)
        );
        assert!(journal.entry("0").is_none());
    }

    #[test]
    fn a_journal_of_zero_keeps_nothing() {
        let journal = Journal::new(0);
        record(&journal, 200);
        assert!(journal.is_empty());
    }

    #[test]
    fn the_newest_entries_come_first_and_the_total_counts_them_all() {
        let journal = Journal::new(10);
        for status in 200..205 {
            record(&journal, status);
        }
        let (newest, total) = journal.newest(&Matcher::default(), 2);
        let statuses: Vec<u16> = newest.iter().map(|entry| entry.status).collect();
        assert_eq!((statuses, total), (vec![204, 203], 5));
    }

    #[test]
    fn a_long_target_is_cut_short_and_says_how_long_it_was() {
        // An odd prefix: the cut falls inside an "é", and must not split it.
        let long = format!("/rest/api/3/x{}", "é".repeat(MAX_TARGET));
        let kept = kept_target(&long);
        assert!(kept.len() < MAX_TARGET + 32, "{} bytes kept", kept.len());
        assert!(
            kept.ends_with(&format!("… ({} bytes)", long.len())),
            "{kept}"
        );
        assert_eq!(&*kept_target("/a?b=c"), "/a?b=c");
    }
}
