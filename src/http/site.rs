//! Which site a request is for, decided once per request: the gateway's `/ex/jira/{cloudId}`
//! prefix, the admin API's `/_admin/sites/{site}` prefix, or the Host. And what each site keeps
//! in memory: its journal, its faults, its failed logins. Past 350 lines only with its tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri, header};
use percent_encoding::percent_decode_str;

use super::error::HttpError;
use super::journal::Journal;
use super::layers::Guard;
use super::{AppState, RequestContext};
use crate::clock::SharedClock;
use crate::domain::{CloudId, Site, SiteKey};
use crate::error::Error;
use crate::faults::{FaultRules, Faults};
use crate::service::sites::SiteReference;
use crate::throttle::LoginThrottle;

/// The gateway's prefix, followed by a cloudId.
pub const GATEWAY: &str = "/ex/jira/";
/// The admin API's per-site prefix, followed by a site's name or cloudId.
const ADMIN_SITES: &str = "/_admin/sites/";

/// What one site keeps in memory, apart from every other site.
#[derive(Debug)]
pub struct SiteState {
    /// The site.
    pub site: Arc<Site>,
    /// Its last requests.
    pub journal: Journal,
    /// Its faults and rate limits.
    pub faults: Faults,
    /// Its failed logins per client.
    pub logins: LoginThrottle,
    /// How many memories were made before this one: a sweep keeps those made after it began.
    made: u64,
}

/// How a request reached its site, which decides its `self` links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// By the Host (or the default host).
    Host,
    /// Through `/ex/jira/{cloudId}`.
    Gateway,
}

/// The site a request is for: in its extensions once [`ResolveSite`] has run.
#[derive(Debug, Clone)]
pub struct CurrentSite {
    /// The site and what it keeps.
    pub state: Arc<SiteState>,
    /// How the request reached it.
    pub reached: Reached,
}

impl CurrentSite {
    /// The site's store key.
    pub fn key(&self) -> SiteKey {
        self.state.site.key
    }
}

/// What a site starts with in memory.
#[derive(Debug)]
pub struct SiteDefaults {
    /// Requests a journal keeps.
    pub journal_size: usize,
    /// Whether journals keep PUT bodies.
    pub journal_bodies: bool,
    /// The faults every site starts with.
    pub faults: FaultRules,
    /// Failed logins allowed per client and window; 0: no limit.
    pub login_failures: u32,
    /// Their window.
    pub login_failure_window: Duration,
    /// What time it is.
    pub clock: SharedClock,
    /// Most sites the store may hold: memory held for more is partly of deleted sites.
    pub max_sites: u64,
}

/// Every site's memory, made when a site is first reached.
#[derive(Debug)]
pub struct SiteStates {
    states: RwLock<HashMap<SiteKey, Arc<SiteState>>>,
    defaults: SiteDefaults,
    /// Past this many memories, some may be of sites deleted through another instance: see
    /// [`sweep_threshold`].
    sweep_above: AtomicUsize,
    /// Set when a memory made took the count past `sweep_above`.
    sweep_wanted: AtomicBool,
    /// Memories made so far.
    made: AtomicU64,
}

impl SiteStates {
    /// No site reached yet.
    pub fn new(defaults: SiteDefaults) -> Self {
        Self {
            states: RwLock::new(HashMap::new()),
            sweep_above: AtomicUsize::new(sweep_threshold(defaults.max_sites, 0)),
            sweep_wanted: AtomicBool::new(false),
            made: AtomicU64::new(0),
            defaults,
        }
    }

    /// The memory of `site`, made if it has none yet.
    pub fn of(&self, site: Arc<Site>) -> Arc<SiteState> {
        if let Some(state) = held(
            &self.states.read().unwrap_or_else(|e| e.into_inner()),
            &site,
        ) {
            return state.clone();
        }
        let mut states = self.states.write().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = held(&states, &site) {
            return state.clone();
        }
        let defaults = &self.defaults;
        let state = Arc::new(SiteState {
            journal: Journal::new(defaults.journal_size),
            faults: Faults::new(defaults.faults.clone(), defaults.clock.clone()),
            logins: LoginThrottle::new(
                defaults.login_failures,
                defaults.login_failure_window,
                defaults.clock.clone(),
            ),
            site,
            made: self.made.fetch_add(1, Ordering::Relaxed),
        });
        states.insert(state.site.key, state.clone());
        if states.len() > self.sweep_above.load(Ordering::Relaxed) {
            self.sweep_wanted.store(true, Ordering::Relaxed);
        }
        state
    }

    /// Whether memories should be swept to the sites that exist; asking claims the sweep. Its
    /// mark, to give [`SiteStates::keep_only`], is taken before the sites are read.
    pub fn take_sweep(&self) -> Option<u64> {
        (self.sweep_wanted.load(Ordering::Relaxed)
            && self.sweep_wanted.swap(false, Ordering::Relaxed))
        .then(|| self.made.load(Ordering::Relaxed))
    }

    /// How many requests `site`'s journal holds; 0 for a site nothing reached yet, whose state
    /// is not made for the asking.
    pub fn journal_len_of(&self, site: &Site) -> usize {
        let states = self.states.read().unwrap_or_else(|e| e.into_inner());
        held(&states, site).map_or(0, |state| state.journal.len())
    }

    /// How many sites have memory here.
    #[cfg(test)]
    fn held_count(&self) -> usize {
        self.states.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Forgets every site but `live`, those that existed when the sweep marked `mark` began,
    /// and those whose memory was made since (a site made meanwhile).
    pub fn keep_only(&self, live: &[Site], mark: u64) {
        let live_ids: HashMap<SiteKey, CloudId> =
            live.iter().map(|site| (site.key, site.id)).collect();
        self.states
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|key, state| state.made >= mark || live_ids.get(key) == Some(&state.site.id));
        self.sweep_above.store(
            sweep_threshold(self.defaults.max_sites, live.len()),
            Ordering::Relaxed,
        );
    }

    /// Forgets a deleted site.
    pub fn remove(&self, key: SiteKey) {
        self.states
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// Journal entries held over every site.
    pub fn journal_len(&self) -> usize {
        let states = self.states.read().unwrap_or_else(|e| e.into_inner());
        states.values().map(|state| state.journal.len()).sum()
    }

    /// Whether journals keep anything, and whether they keep PUT bodies.
    pub fn journal_settings(&self) -> (bool, bool) {
        (self.defaults.journal_size > 0, self.defaults.journal_bodies)
    }
}

/// How many memories may be held before the next sweep, after one that found `live` sites:
/// twice as many (at least 64, or `max_sites` if fewer), so that a deleted site's memory does
/// not outlive its deletion for long, while sweeps (each a list of the sites) stay rare however
/// many sites live.
fn sweep_threshold(max_sites: u64, live: usize) -> usize {
    let most = usize::try_from(max_sites).unwrap_or(usize::MAX);
    most.min(64).max(live.saturating_mul(2))
}

/// `site`'s memory, unless it has none or holds a deleted site's of the same key.
fn held<'a>(
    states: &'a HashMap<SiteKey, Arc<SiteState>>,
    site: &Site,
) -> Option<&'a Arc<SiteState>> {
    states
        .get(&site.key)
        .filter(|state| state.site.id == site.id)
}

/// Finds the request's site and puts it in the extensions and the request's context. An unknown
/// or malformed cloudId, or a host-form name that is no site, is 404 "Site not found.".
#[derive(Debug, Clone)]
pub struct ResolveSite(pub AppState);

impl Guard for ResolveSite {
    type Memo = ();

    async fn check(&self, mut request: Request) -> Result<(Request, ()), HttpError> {
        check_host(request.uri(), request.headers())?;
        let current = resolve(&self.0, request.uri(), request.headers()).await?;
        if let Some(context) = request.extensions().get::<Arc<RequestContext>>() {
            context.set_site(current.state.clone());
        }
        request.extensions_mut().insert(current);
        Ok((request, ()))
    }
}

/// Refuses a request whose authority no client could mean, as RFC 9112 §3.2 asks: more than
/// one Host, or an authority that is not a host with an optional port (`evil.example/x?`,
/// `user@host`, `h:99999`). It would pick the site; links never carry it (see
/// [`request_authority`]).
fn check_host(uri: &Uri, headers: &HeaderMap) -> Result<(), Error> {
    match authority_of(uri, headers) {
        Ok(_) => Ok(()),
        Err(MalformedAuthority) => Err(Error::BadRequest(
            "The Host header must name one host, with a port or without.".to_owned(),
        )),
    }
}

/// Names the request's site in its context, if it has one, for a request to the Jira API
/// answered before the site is resolved (a wrong method): so that the site's journal keeps it,
/// as it keeps that route's other requests.
pub async fn note_site(state: &AppState, request: &Parts) {
    let path = request.uri.path();
    // A malformed authority names no site: the 405 is journaled nowhere rather than in the
    // default site's journal.
    if !(path.starts_with("/rest/") || path.starts_with(GATEWAY))
        || authority_of(&request.uri, &request.headers).is_err()
    {
        return;
    }
    if let (Ok(current), Some(context)) = (
        resolve(state, &request.uri, &request.headers).await,
        request.extensions.get::<Arc<RequestContext>>(),
    ) {
        context.set_site(current.state);
    }
}

async fn resolve(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Result<CurrentSite, Error> {
    let path = uri.path();
    let (site, reached) = if let Some(rest) = path.strip_prefix(GATEWAY) {
        let id = rest.split('/').next().unwrap_or_default();
        let id = CloudId::parse(id).map_err(|_| Error::SiteNotFound)?;
        let site = state.sites.with_id(id).await?;
        (site.ok_or(Error::SiteNotFound)?, Reached::Gateway)
    } else if let Some(rest) = path.strip_prefix(ADMIN_SITES) {
        let reference = rest.split('/').next().unwrap_or_default();
        let reference = percent_decode_str(reference).decode_utf8_lossy();
        let site = state.sites.find(SiteReference::parse(&reference)).await?;
        (site, Reached::Host)
    } else {
        let default_host = state
            .site_proxy
            .as_ref()
            .map(|proxy| proxy.default_host.as_str());
        let site = match site_named_by_host(uri, headers, &state.site_domains, default_host) {
            Some(name) => {
                // Host names compare without case; site names are lower case.
                let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                    std::borrow::Cow::Owned(name.to_ascii_lowercase())
                } else {
                    std::borrow::Cow::Borrowed(name)
                };
                if path.starts_with("/_admin") {
                    state.sites.find(SiteReference::Name(&name)).await?
                } else {
                    let site = state.sites.named(&name).await?;
                    site.ok_or(Error::SiteNotFound)?
                }
            }
            None => state.sites.default_site().await?,
        };
        (site, Reached::Host)
    };
    let current = CurrentSite {
        state: state.site_states.of(site),
        reached,
    };
    // More memories than sites can exist: some are of sites deleted through another instance.
    if let Some(mark) = state.site_states.take_sweep() {
        match state.sites.list().await {
            Ok(live) => state.site_states.keep_only(&live, mark),
            Err(error) => tracing::warn!(%error, "deleted sites' memory not swept"),
        }
    }
    Ok(current)
}

/// The host and port a request was sent to: the authority of its URI when it has one (an
/// absolute-form target, which RFC 9112 §3.2.2 says wins over Host; HTTP/2's `:authority`),
/// else its Host header. `None` when it has neither, or when what it has is malformed (see
/// [`check_host`]), so that no link or site is made of it.
pub fn request_authority<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    authority_of(uri, headers).ok().flatten()
}

/// An authority no client could mean.
struct MalformedAuthority;

/// The authority a request names, if any (an empty Host names none), or why it is malformed.
fn authority_of<'a>(
    uri: &'a Uri,
    headers: &'a HeaderMap,
) -> Result<Option<&'a str>, MalformedAuthority> {
    // The Host is checked whatever the target's form (RFC 9112 §3.2); the URI's authority,
    // when it has one, is the one that counts.
    let mut hosts = headers.get_all(header::HOST).iter();
    let (host, None) = (hosts.next(), hosts.next()) else {
        return Err(MalformedAuthority);
    };
    let host = match host.map(|host| host.to_str()) {
        None => None,
        Some(Ok(text)) => Some(text).filter(|text| !text.is_empty()),
        Some(Err(_)) => return Err(MalformedAuthority),
    };
    if host.is_some_and(|text| !is_host_and_port(text)) {
        return Err(MalformedAuthority);
    }
    match uri.authority().map(|authority| authority.as_str()) {
        Some(text) if !is_host_and_port(text) => Err(MalformedAuthority),
        Some(text) => Ok(Some(text)),
        None => Ok(host),
    }
}

/// Whether `text` is RFC 3986's `host [ ":" port ]`: a registered name or IPv4 address, or an IP
/// literal in brackets, and a port of 0 to 65535. No user info, path or white space.
fn is_host_and_port(text: &str) -> bool {
    let (host, port) = if text.starts_with('[') {
        match text.find(']') {
            Some(end) => (&text[..=end], &text[end + 1..]),
            None => return false,
        }
    } else {
        text.rfind(':')
            .map_or((text, ""), |at| (&text[..at], &text[at..]))
    };
    let port_fits = port.is_empty()
        || port.strip_prefix(':').is_some_and(|digits| {
            digits.bytes().all(|b| b.is_ascii_digit())
                && (digits.is_empty() || digits.parse::<u16>().is_ok())
        });
    let host_fits = match host.strip_prefix('[') {
        Some(literal) => {
            literal.len() > 1
                && literal[..literal.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        None => {
            let bytes = host.as_bytes();
            !host.is_empty()
                && bytes.iter().enumerate().all(|(at, &b)| match b {
                    // An escape: two hex digits follow.
                    b'%' => bytes
                        .get(at + 1..at + 3)
                        .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)),
                    _ => b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b),
                })
        }
    };
    port_fits && host_fits
}

/// The host a request was sent to, without its port.
pub fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let host = request_authority(uri, headers)?;
    Some(match host.rsplit_once(':') {
        // A bracketed IPv6 address keeps its colons.
        Some((name, port)) if !port.contains(']') => name,
        _ => host,
    })
}

/// The site a Host names: its first label, when the host ends in one of the site domains
/// (`acme.localhost` → `acme`); `None` for any other host, and for `default_host` (the public
/// URL's), which reach the default site.
fn site_named_by_host<'a>(
    uri: &'a Uri,
    headers: &'a HeaderMap,
    domains: &[String],
    default_host: Option<&str>,
) -> Option<&'a str> {
    let host = request_host(uri, headers)?.trim_end_matches('.');
    if default_host.is_some_and(|default| host.eq_ignore_ascii_case(default)) {
        return None;
    }
    domains.iter().find_map(|domain| {
        let (labels, dot_domain) = host.split_at_checked(host.len().checked_sub(domain.len())?)?;
        let labels = labels.strip_suffix('.')?;
        (dot_domain.eq_ignore_ascii_case(domain) && !labels.is_empty())
            .then(|| labels.split('.').next().unwrap_or(labels))
    })
}

/// A path without its gateway prefix: `/ex/jira/{cloudId}/rest/api/3/…` → `/rest/api/3/…`.
pub fn without_gateway(path: &str) -> &str {
    match path.strip_prefix(GATEWAY) {
        Some(rest) => rest.find('/').map_or("", |slash| &rest[slash..]),
        None => path,
    }
}

/// The site a request is for, for handlers behind [`ResolveSite`].
impl<S: Sync> FromRequestParts<S> for CurrentSite {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        // Only a route table that forgot the layer gets here without a site.
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| Error::Internal("no site resolved for this route".to_owned()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(host: &str) -> Option<String> {
        named_beside(host, None)
    }

    /// The site `host` names when the public URL's host is `default_host`.
    fn named_beside(host: &str, default_host: Option<&str>) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().expect("a header value"));
        let domains = ["localhost".to_owned(), "atlassian.net".to_owned()];
        site_named_by_host(&Uri::from_static("/"), &headers, &domains, default_host)
            .map(str::to_owned)
    }

    #[test]
    fn an_absolute_form_targets_authority_wins_over_host() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1".parse().expect("a header value"));
        let uri = Uri::from_static("http://acme.localhost:8080/_edge/tenant_info");
        let domains = ["localhost".to_owned()];
        assert_eq!(
            site_named_by_host(&uri, &headers, &domains, None),
            Some("acme")
        );
        let origin_form = Uri::from_static("/_edge/tenant_info");
        assert_eq!(
            site_named_by_host(&origin_form, &headers, &domains, None),
            None
        );
    }

    #[test]
    fn the_public_urls_own_host_is_the_default_site_though_it_looks_like_a_sites() {
        for host in ["jira.localhost:8080", "JIRA.localhost", "jira.localhost."] {
            assert_eq!(named_beside(host, Some("jira.localhost")), None, "{host}");
        }
        assert_eq!(
            named_beside("acme.localhost", Some("jira.localhost")).as_deref(),
            Some("acme")
        );
    }

    #[test]
    fn memories_are_swept_past_twice_the_live_sites() {
        assert_eq!(sweep_threshold(10_000, 0), 64);
        assert_eq!(sweep_threshold(10_000, 100), 200);
        assert_eq!(
            sweep_threshold(10_000, 9_000),
            18_000,
            "rare near a full store too"
        );
        assert_eq!(sweep_threshold(2, 0), 2);
        assert_eq!(sweep_threshold(2, 1), 2);
    }

    #[test]
    fn only_live_sites_keep_their_memory() {
        let states = SiteStates::new(SiteDefaults {
            journal_size: 10,
            journal_bodies: false,
            faults: FaultRules::default(),
            login_failures: 0,
            login_failure_window: Duration::from_secs(60),
            clock: crate::clock::system(),
            max_sites: 2,
        });
        let site = |key, id: &str, name: &str| Site {
            key: SiteKey(key),
            id: CloudId::parse(id).expect("a cloudId"),
            name: crate::domain::SiteName::parse(name).expect("a name"),
        };
        let live = site(1, "00000000-0000-4000-8000-000000000001", "live");
        let gone = site(2, "00000000-0000-4000-8000-000000000002", "gone");
        // Deleted, and its key's memory is of another site than the one now under that key.
        let replaced = site(3, "00000000-0000-4000-8000-000000000003", "old");
        let kept = states.of(Arc::new(live.clone()));
        states.of(Arc::new(gone.clone()));
        assert!(states.take_sweep().is_none(), "no more than max_sites");
        states.of(Arc::new(replaced.clone()));
        let mark = states.take_sweep().expect("more than max_sites");
        assert!(states.take_sweep().is_none(), "claimed");
        // Made while the sweep read the sites: kept, though the sites read do not name it.
        let newer = site(4, "00000000-0000-4000-8000-000000000004", "newer");
        let newer_kept = states.of(Arc::new(newer.clone()));
        let now = site(3, "00000000-0000-4000-8000-000000000033", "new");
        states.keep_only(&[live.clone(), now], mark);
        assert_eq!(states.held_count(), 2);
        assert!(Arc::ptr_eq(&kept, &states.of(Arc::new(live))));
        assert!(Arc::ptr_eq(&newer_kept, &states.of(Arc::new(newer))));
    }

    #[test]
    fn a_host_in_a_site_domain_names_its_site_by_the_first_label() {
        assert_eq!(named("acme.localhost:8080").as_deref(), Some("acme"));
        assert_eq!(named("acme.atlassian.net").as_deref(), Some("acme"));
        assert_eq!(named("ACME.LocalHost").as_deref(), Some("ACME"));
        assert_eq!(named("a.b.localhost").as_deref(), Some("a"));
        assert_eq!(named("acme.localhost.").as_deref(), Some("acme"));
    }

    #[test]
    fn any_other_host_is_the_default_site() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "jira",
            "notlocalhost",
            "acme.example.com",
        ] {
            assert_eq!(named(host), None, "{host}");
        }
    }

    #[test]
    fn the_gateway_prefix_comes_off() {
        let id = "35273b54-3f06-40d2-880f-dd28cf8daafa";
        assert_eq!(
            without_gateway(&format!("/ex/jira/{id}/rest/api/3/myself")),
            "/rest/api/3/myself"
        );
        assert_eq!(without_gateway("/rest/api/3/myself"), "/rest/api/3/myself");
    }
}
