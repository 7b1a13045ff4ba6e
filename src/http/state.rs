//! What every handler and middleware shares ([`AppState`]), and the settings it is made from.

use std::sync::Arc;
use std::time::Duration;

use super::metrics::Metrics;
use super::site::{SiteDefaults, SiteStates};
use crate::clock::{self, SharedClock};
use crate::credentials::{Secret, TokenDigest};
use crate::faults::FaultRules;
use crate::service::apps::AppService;
use crate::service::oauth::OAuthService;
use crate::service::{AdminService, Authenticator, PropertyService, SiteService};
use crate::store::Store;
use crate::store::admin::Snapshot;
use crate::throttle::LoginThrottle;

/// What every handler and middleware shares. Extractors clone it for every request, so it is
/// one reference count, not a copy of each part.
#[derive(Debug, Clone)]
pub struct AppState(Arc<StateParts>);

impl std::ops::Deref for AppState {
    type Target = StateParts;

    fn deref(&self) -> &StateParts {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct StateParts {
    /// Who is calling.
    pub authenticator: Authenticator,
    /// The user-properties service.
    pub service: PropertyService,
    /// The administration service.
    pub admin: AdminService,
    /// The sites.
    pub sites: SiteService,
    /// The registered apps.
    pub apps: AppService,
    /// The OAuth 2.0 flows and their tokens.
    pub oauth: OAuthService,
    /// What each site keeps in memory: journal, faults, failed logins.
    pub site_states: SiteStates,
    /// Host suffixes whose first label names a site (`acme.localhost` → `acme`).
    pub site_domains: Vec<String>,
    /// The store underneath, for readiness.
    pub store: Store,
    /// Base of `self` links; `None` means `http://` plus the request's Host header.
    pub public_url: Option<Arc<str>>,
    /// How a site's own host is reached, when the public URL lies in a site domain (the server
    /// sits behind one proxy for them all); plain http by the Host otherwise.
    pub site_proxy: Option<super::sites::SiteProxy>,
    /// Longest time one request may take.
    pub request_timeout: Duration,
    /// Digest of the admin token; `None` turns the admin API off (404).
    pub admin_token: Option<TokenDigest>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Failed logins at the admin API per client (each site counts its own).
    pub logins: LoginThrottle,
    /// What time it is.
    pub clock: SharedClock,
}

/// The settings a server runs with, besides its store.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base of `self` links; `None` means `http://` plus the request's Host header.
    pub public_url: Option<String>,
    /// Longest time one request may take.
    pub request_timeout: Duration,
    /// The admin API's bearer token; `None` turns the admin API off.
    pub admin_token: Option<Secret>,
    /// Requests the journal keeps; 0 turns it off.
    pub journal_size: usize,
    /// Whether the journal keeps PUT bodies.
    pub journal_bodies: bool,
    /// Faults and rate limits at start.
    pub faults: FaultRules,
    /// Failed logins a client may make within the window before its logins are refused; 0: no
    /// limit.
    pub login_failures: u32,
    /// The window of `login_failures`, and how long a client is refused.
    pub login_failure_window: Duration,
    /// Host suffixes whose first label names a site.
    pub site_domains: Vec<String>,
    /// Most sites the store may hold, `default` included.
    pub max_sites: u64,
    /// How long OAuth 2.0 access tokens live.
    pub oauth_token_ttl: Duration,
    /// What time it is: the system's clock, or one a test moves.
    pub clock: SharedClock,
    /// What the start seed made of each site, by site name, for `reset?to=seed`.
    pub seeds: Vec<(String, Snapshot)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_url: None,
            request_timeout: Duration::from_secs(30),
            admin_token: None,
            journal_size: 1000,
            journal_bodies: false,
            faults: FaultRules::default(),
            login_failures: 20,
            login_failure_window: Duration::from_secs(60),
            site_domains: vec!["localhost".to_owned()],
            max_sites: 10_000,
            oauth_token_ttl: Duration::from_secs(3600),
            clock: clock::system(),
            seeds: Vec::new(),
        }
    }
}

impl AppState {
    /// The state of a server over `store`.
    pub fn new(store: Store, settings: Settings) -> Result<Self, prometheus::Error> {
        let clock = settings.clock;
        let site_domains: Vec<String> = settings
            .site_domains
            .iter()
            .map(|domain| domain.trim_matches('.').to_ascii_lowercase())
            .collect();
        let sites = SiteService::new(store.clone(), settings.max_sites, clock.clone());
        let metrics = Metrics::new(store.backend())?;
        sites.remember_seeds(settings.seeds);
        Ok(Self(Arc::new(StateParts {
            authenticator: Authenticator::new(store.clone(), clock.clone()),
            service: PropertyService::new(
                store.clone(),
                Authenticator::new(store.clone(), clock.clone()),
            ),
            admin: AdminService::new(store.clone()),
            sites,
            apps: AppService::new(store.clone(), clock.clone()),
            oauth: OAuthService::new(store.clone(), clock.clone(), settings.oauth_token_ttl),
            site_states: SiteStates::new(SiteDefaults {
                journal_size: settings.journal_size,
                journal_bodies: settings.journal_bodies,
                faults: settings.faults,
                login_failures: settings.login_failures,
                login_failure_window: settings.login_failure_window,
                clock: clock.clone(),
                max_sites: settings.max_sites,
            }),
            site_proxy: super::sites::SiteProxy::of(settings.public_url.as_deref(), &site_domains),
            site_domains,
            store,
            public_url: settings.public_url.map(Arc::from),
            request_timeout: settings.request_timeout,
            admin_token: settings.admin_token.as_deref().map(TokenDigest::of),
            metrics,
            logins: LoginThrottle::new(
                settings.login_failures,
                settings.login_failure_window,
                clock.clone(),
            ),
            clock,
        })))
    }
}
