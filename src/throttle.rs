//! Failed logins, counted per client and account. After too many within a window, that client's
//! logins to that account are refused without their credentials being checked, as Jira refuses
//! logins once it asks for a CAPTCHA (`X-Seraph-LoginReason: AUTHENTICATION_DENIED`), until a
//! window has passed.
//!
//! A client is its IP address (an IPv6 address by its /64, which one host usually holds whole);
//! the account is a Basic login's email. Counting per account keeps one client's bad guesses (a
//! test suite checking its 401s, say) from locking it out of every other account. Bearer tokens
//! on the Jira API are ours, 256 random bits, and not worth guessing, so their failures are not
//! counted; on the admin API, whose token an operator chooses, they count per address. When the
//! address is unknown (the router served without the accept loop of [`crate::server`]), logins
//! count by email alone. A successful login clears nothing: otherwise a client with one valid
//! token of its own could reset its count between guesses at another user's.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::clock::SharedClock;
use crate::credentials::Credentials;
use crate::domain::{MAX_EMAIL_BYTES, email_key};

/// Most clients tracked at once, so that a flood of addresses cannot grow the table without
/// bound. When it is full, lapsed entries go first, then the oldest not refused: a flood of
/// junk failures cannot push out a refusal in force.
pub const MAX_TRACKED_CLIENTS: usize = 10_000;

/// Who failed to log in, and as whom.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A Basic login: the client's address (when known) and the lower-cased email.
    Basic(Option<IpAddr>, String),
    /// A bearer token on the admin API, by the client's address.
    AdminToken(IpAddr),
}

impl ClientKey {
    /// The key of a login, if its failures count; `admin_api` for logins to the admin API.
    pub fn of(address: Option<IpAddr>, credentials: &Credentials, admin_api: bool) -> Option<Self> {
        let address = address.map(|address| match address {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64)))
            }
            address => address.to_canonical(),
        });
        match (address, credentials) {
            (address, Credentials::Basic { email, .. }) => {
                // No account's email is longer, so a longer one's failures may share a counter
                // with others of its first bytes; its size cannot grow the table.
                let email = &email[..email.floor_char_boundary(MAX_EMAIL_BYTES + 1)];
                Some(Self::Basic(address, email_key(email).into_owned()))
            }
            (Some(address), Credentials::Bearer(_)) if admin_api => Some(Self::AdminToken(address)),
            (_, Credentials::Bearer(_)) => None,
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |f: &mut fmt::Formatter<'_>, address: &IpAddr| match address {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            v4 => write!(f, "{v4}"),
        };
        match self {
            // Quoted and escaped: the email is as the client sent it, control characters and all.
            Self::Basic(Some(address), email) => {
                show(f, address)?;
                write!(f, " as {email:?}")
            }
            Self::Basic(None, email) => write!(f, "email {email:?}"),
            Self::AdminToken(address) => {
                show(f, address)?;
                write!(f, " on the admin API")
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Failures since `since`.
    failures: u32,
    /// The first failure of the current window.
    since: Instant,
    /// While set and in the future, logins are refused.
    refused_until: Option<Instant>,
}

impl Entry {
    fn lapsed(&self, now: Instant, window: Duration) -> bool {
        match self.refused_until {
            Some(until) => now >= until,
            None => now >= self.since + window,
        }
    }
}

/// The failed-login table.
#[derive(Debug)]
pub struct LoginThrottle {
    /// Failures allowed within a window; 0 turns the throttle off.
    limit: u32,
    window: Duration,
    entries: Mutex<HashMap<ClientKey, Entry>>,
    /// When the last refusal ends, in ms since `epoch`: until then some client may be refused.
    /// Every login reads it, so no lock is taken while nobody is refused.
    refusing_until: AtomicU64,
    epoch: Instant,
    clock: SharedClock,
}

impl LoginThrottle {
    /// A throttle that refuses a client for `window` once it failed `limit` times within one.
    pub fn new(limit: u32, window: Duration, clock: SharedClock) -> Self {
        Self {
            limit,
            window,
            entries: Mutex::new(HashMap::new()),
            refusing_until: AtomicU64::new(0),
            epoch: clock.now(),
            clock,
        }
    }

    /// When the client's logins are refused now: how long until they are accepted again.
    pub fn refused(&self, key: &ClientKey, now: Instant) -> Option<Duration> {
        if self.limit == 0 || self.millis(now) > self.refusing_until.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let until = entries.get(key)?.refused_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a failed login; returns true when this failure starts a refusal.
    pub fn failed(&self, key: ClientKey, now: Instant) -> bool {
        if self.limit == 0 {
            return false;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if !entries.contains_key(&key) && entries.len() >= MAX_TRACKED_CLIENTS {
            make_room(&mut entries, now, self.window);
        }
        let fresh = Entry {
            failures: 0,
            since: now,
            refused_until: None,
        };
        let entry = entries.entry(key).or_insert(fresh);
        if entry.lapsed(now, self.window) {
            *entry = fresh;
        }
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures >= self.limit && entry.refused_until.is_none() {
            entry.refused_until = Some(now + self.window);
            self.refusing_until
                .fetch_max(self.millis(now + self.window) + 1, Ordering::AcqRel);
            return true;
        }
        false
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Clients tracked now.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no client is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A login about to be checked: where it came from, so that a failure can be counted.
#[derive(Debug)]
pub struct LoginAttempt {
    address: Option<IpAddr>,
    admin_api: bool,
}

/// A login refused unchecked, and for how much longer such logins will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Whole seconds until logins are accepted again.
    pub retry_after: u64,
}

impl LoginThrottle {
    /// Lets a login from `address` be checked, or refuses it at once when its client failed too
    /// often of late; `admin_api` for logins to the admin API.
    pub fn admit(
        &self,
        address: Option<IpAddr>,
        credentials: Option<&Credentials>,
        admin_api: bool,
    ) -> Result<LoginAttempt, Refused> {
        // The client's key is built only while somebody may be refused: most logins never are.
        if self.limit > 0
            && self.refusing_until.load(Ordering::Acquire) > 0
            && let Some(client) =
                credentials.and_then(|credentials| ClientKey::of(address, credentials, admin_api))
            && let Some(wait) = self.refused(&client, self.clock.now())
        {
            return Err(Refused {
                retry_after: wait.as_secs_f64().ceil() as u64,
            });
        }
        Ok(LoginAttempt { address, admin_api })
    }

    /// Counts a login whose credentials were checked and rejected.
    pub fn count_rejection(&self, attempt: LoginAttempt, credentials: Option<&Credentials>) {
        if let Some(client) = credentials
            .and_then(|credentials| ClientKey::of(attempt.address, credentials, attempt.admin_api))
            && self.failed(client.clone(), self.clock.now())
        {
            tracing::warn!(%client, "too many failed logins; refusing this client's logins for a while");
        }
    }
}

/// Drops lapsed entries; if too few had lapsed, a tenth of the table: those not refused whose
/// window started first, then, only when that is not enough, those whose refusal ends first.
/// A tenth at a time, so that a flood of new failing clients costs a scan of the table per
/// thousand of them, not per one.
fn make_room(entries: &mut HashMap<ClientKey, Entry>, now: Instant, window: Duration) {
    entries.retain(|_, entry| !entry.lapsed(now, window));
    let room = MAX_TRACKED_CLIENTS / 10;
    if entries.len() + room <= MAX_TRACKED_CLIENTS {
        return;
    }
    let mut order: Vec<_> = entries
        .iter()
        .map(|(key, entry)| ((entry.refused_until, entry.since), key.clone()))
        .collect();
    // `None` (not refused) sorts first.
    let cut = room.min(order.len().saturating_sub(1));
    order.select_nth_unstable_by(cut, |a, b| a.0.cmp(&b.0));
    for (_, key) in order.drain(..cut) {
        entries.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(n: u32) -> ClientKey {
        ClientKey::Basic(
            Some(IpAddr::from(n.to_be_bytes())),
            "bob@example.com".to_owned(),
        )
    }

    #[test]
    fn a_client_is_refused_after_the_limit_until_the_window_passes() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60), crate::clock::system());
        let start = Instant::now();
        assert!(!throttle.failed(address(1), start));
        assert!(!throttle.failed(address(1), start));
        assert_eq!(throttle.refused(&address(1), start), None);
        assert!(throttle.failed(address(1), start));
        let later = start + Duration::from_secs(59);
        assert_eq!(
            throttle.refused(&address(1), later),
            Some(Duration::from_secs(1))
        );
        assert_eq!(throttle.refused(&address(2), later), None);
        assert_eq!(
            throttle.refused(&address(1), start + Duration::from_secs(60)),
            None
        );
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(10), crate::clock::system());
        let start = Instant::now();
        throttle.failed(address(1), start);
        let later = start + Duration::from_secs(11);
        assert!(!throttle.failed(address(1), later));
        assert_eq!(throttle.refused(&address(1), later), None);
        assert!(throttle.failed(address(1), later));
    }

    #[test]
    fn a_limit_of_zero_turns_it_off() {
        let throttle = LoginThrottle::new(0, Duration::from_secs(10), crate::clock::system());
        let now = Instant::now();
        for _ in 0..100 {
            assert!(!throttle.failed(address(1), now));
        }
        assert_eq!(throttle.refused(&address(1), now), None);
        assert!(throttle.is_empty());
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_refusing_the_newest() {
        let throttle = LoginThrottle::new(1, Duration::from_secs(60), crate::clock::system());
        let start = Instant::now();
        for n in 0..(MAX_TRACKED_CLIENTS as u32 + 500) {
            throttle.failed(address(n), start + Duration::from_millis(u64::from(n)));
        }
        assert!(throttle.len() <= MAX_TRACKED_CLIENTS);
        let last = address(MAX_TRACKED_CLIENTS as u32 + 499);
        assert!(throttle.refused(&last, start).is_some());
        assert_eq!(throttle.refused(&address(0), start), None, "oldest evicted");
    }

    #[test]
    fn a_flood_of_other_failures_does_not_push_out_a_refusal_in_force() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60), crate::clock::system());
        let start = Instant::now();
        for _ in 0..3 {
            throttle.failed(address(0), start);
        }
        for n in 1..(MAX_TRACKED_CLIENTS as u32 * 2) {
            throttle.failed(address(n), start + Duration::from_millis(1));
        }
        assert!(throttle.len() <= MAX_TRACKED_CLIENTS);
        assert!(throttle.refused(&address(0), start).is_some());
    }

    #[test]
    fn a_key_shows_its_email_escaped() {
        let key = ClientKey::Basic(None, "a\nforged line".to_owned());
        assert_eq!(key.to_string(), r#"email "a\nforged line""#);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_bit_prefix() {
        let credentials = Credentials::Bearer("t".to_owned());
        let key = |address| ClientKey::of(address, &credentials, true);
        let one = "2001:db8:1:2:aaaa::1".parse().ok();
        let two = "2001:db8:1:2:bbbb::2".parse().ok();
        let other = "2001:db8:1:3::1".parse().ok();
        let mapped = "::ffff:192.0.2.7".parse().ok();
        assert_eq!(key(one), key(two));
        assert_ne!(key(one), key(other));
        assert_eq!(key(mapped), key("192.0.2.7".parse().ok()));
    }

    #[test]
    fn basic_logins_count_per_account_and_bearer_ones_only_on_the_admin_api() {
        let basic = Credentials::Basic {
            email: "Bob@Example.com".to_owned(),
            token: "x".to_owned(),
        };
        let bearer = Credentials::Bearer("t".to_owned());
        let here = "192.0.2.7".parse().ok();
        assert_eq!(
            ClientKey::of(None, &basic, false),
            Some(ClientKey::Basic(None, "bob@example.com".to_owned()))
        );
        assert_eq!(
            ClientKey::of(here, &basic, false),
            Some(ClientKey::Basic(here, "bob@example.com".to_owned()))
        );
        assert_eq!(ClientKey::of(here, &bearer, false), None);
        assert_eq!(ClientKey::of(None, &bearer, true), None);
        assert!(ClientKey::of(here, &bearer, true).is_some());
    }

    #[test]
    fn an_email_longer_than_any_account_is_kept_only_as_long_as_one() {
        let long = |tail: &str| Credentials::Basic {
            email: format!("{}{tail}", "é".repeat(MAX_EMAIL_BYTES)),
            token: "x".to_owned(),
        };
        let key = |credentials| match ClientKey::of(None, &credentials, false) {
            Some(ClientKey::Basic(_, email)) => email,
            other => panic!("not a Basic key: {other:?}"),
        };
        let one = key(long("a"));
        assert!(one.len() <= MAX_EMAIL_BYTES + 1, "{} bytes kept", one.len());
        assert_eq!(one, key(long("b")));
    }
}
