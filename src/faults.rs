//! Faults and rate limits for testing clients' retry code: latency, injected errors, and Jira
//! Cloud's rate limiting, each scoped by route and account and optionally to the next N requests.
//! The rules and their state; `crate::http::faults` applies them to requests. One idea in one
//! file, past 350 lines, a third of it the rules' tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;

/// The whole rule set, as `PUT /_admin/faults` and `--faults` take it; each part optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultRules {
    /// Jira Cloud's rate limiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitRule>,
    /// Added latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyRule>,
    /// Injected error statuses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorRule>,
}

// Each rule carries its scope (`route`, `accountId`, `count`) as fields of its own rather than a
// flattened struct: serde cannot refuse unknown fields next to a flattened one, and a misspelt
// scope field must fail, not widen the rule to everyone.

/// A token bucket: `limit` requests per `windowSeconds`, refilled evenly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitRule {
    /// Requests allowed per window (the bucket's size).
    pub limit: u32,
    /// The window, in seconds.
    pub window_seconds: f64,
    /// One bucket per account, per account and route, or one for everyone.
    #[serde(default)]
    pub per: Per,
    /// Only paths starting so, e.g. `/rest/api/3/user/properties`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Only this caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Only the next N matching requests; then the rule is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// How rate-limit buckets are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Per {
    /// One bucket per calling account.
    #[default]
    Account,
    /// One bucket per calling account, route and method, as Jira's burst limit is per
    /// endpoint and method.
    AccountAndRoute,
    /// One bucket for every caller.
    Global,
}

/// Latency of `minMs` to `maxMs` (uniform; equal for a fixed delay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LatencyRule {
    /// Least added delay.
    pub min_ms: u64,
    /// Most added delay.
    pub max_ms: u64,
    /// Seed of the random source, so that a run can be repeated.
    #[serde(default)]
    pub seed: u64,
    /// Only paths starting so, e.g. `/rest/api/3/user/properties`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Only this caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Only the next N matching requests; then the rule is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// `status` for a `fraction` of requests, drawn from a seeded random source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ErrorRule {
    /// The status answered (400-599).
    pub status: u16,
    /// The share of requests that fail, 0 to 1.
    pub fraction: f64,
    /// Seed of the random source, so that a run can be repeated.
    #[serde(default)]
    pub seed: u64,
    /// Only paths starting so, e.g. `/rest/api/3/user/properties`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Only this caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Only the next N matching requests; then the rule is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl FaultRules {
    /// Checks the values serde cannot: ranges and sizes.
    pub fn validate(&self) -> Result<(), String> {
        let window_ok = |seconds: f64| seconds > 0.0 && seconds <= 86_400.0;
        if self
            .rate_limit
            .as_ref()
            .is_some_and(|rule| rule.limit == 0 || !window_ok(rule.window_seconds))
        {
            return Err("rateLimit needs limit >= 1 and 0 < windowSeconds <= 86400".to_owned());
        }
        if self
            .latency
            .as_ref()
            .is_some_and(|rule| rule.min_ms > rule.max_ms || rule.max_ms > 600_000)
        {
            return Err("latency needs minMs <= maxMs <= 600000".to_owned());
        }
        let scopes = [
            self.rate_limit
                .as_ref()
                .map(|rule| (&rule.route, &rule.account_id)),
            self.latency
                .as_ref()
                .map(|rule| (&rule.route, &rule.account_id)),
            self.errors
                .as_ref()
                .map(|rule| (&rule.route, &rule.account_id)),
        ];
        for (route, account_id) in scopes.into_iter().flatten() {
            // Anything else would be a rule that never acts: rules act on the Jira API alone,
            // whose paths they see as the site's own host serves them.
            if route.as_ref().is_some_and(|route| {
                !route.starts_with("/rest/api/") && !"/rest/api/".starts_with(route.as_str())
            }) {
                return Err(
                    "route must be a prefix of a /rest/api/ path (as the site's own \
                            host serves it, without /ex/jira/{cloudId})"
                        .to_owned(),
                );
            }
            if account_id.as_ref().is_some_and(String::is_empty) {
                return Err("accountId must not be empty".to_owned());
            }
        }
        let status_ok = |status: u16| (400..=599).contains(&status);
        if self
            .errors
            .as_ref()
            .is_some_and(|rule| !status_ok(rule.status) || !(0.0..=1.0).contains(&rule.fraction))
        {
            return Err("errors needs a status from 400 to 599 and 0 <= fraction <= 1".to_owned());
        }
        Ok(())
    }
}

/// What the rate limit and the latency rule decided for one request; whether it then fails is
/// decided after the delay, by [`Faults::fail`].
#[derive(Debug, Default)]
pub struct Decision {
    /// Wait this long first.
    pub delay: Option<Duration>,
    /// Refused by the rate limit.
    pub limited: Option<Limited>,
    /// Let through with less than 20% of the bucket left.
    pub near_limit: bool,
    /// An error rule is in force: [`Faults::fail`] is worth asking.
    pub may_fail: bool,
}

/// A rate-limit refusal, with what its headers say.
#[derive(Debug, Clone)]
pub struct Limited {
    /// Seconds until a request will pass (`Retry-After`).
    pub retry_after: u64,
    /// The bucket's size (`X-RateLimit-Limit`).
    pub limit: u32,
    /// When a request will pass (`X-RateLimit-Reset`): Jira's `yyyy-MM-ddTHH:mmZ`, the
    /// request's time plus `retry_after`, rounded up to the minute so that a client waiting
    /// for it is never early.
    pub reset: String,
}

/// One rate-limit bucket as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketLevel {
    /// The account, account and route, or empty for the one bucket of everyone.
    pub key: String,
    /// Requests it would let through now (fractions refill evenly).
    pub tokens: f64,
    /// The bucket's size.
    pub capacity: u32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets held before full ones (which are as good as none) are let go.
const MOST_BUCKETS: usize = 100_000;

#[derive(Debug)]
struct State {
    rules: FaultRules,
    buckets: HashMap<String, Bucket>,
    /// The number of buckets at which full ones are next let go: twice what was left after the
    /// last time, so that the sweep costs O(1) a request however many stay.
    sweep_at: usize,
    latency_random: fastrand::Rng,
    error_random: fastrand::Rng,
}

/// The live rule set and its state (buckets, random sources, remaining counts).
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
    clock: SharedClock,
}

impl Faults {
    /// Faults following `rules` (already validated), timed by `clock`.
    pub fn new(rules: FaultRules, clock: SharedClock) -> Self {
        let faults = Self {
            state: Mutex::new(State {
                rules: FaultRules::default(),
                buckets: HashMap::new(),
                sweep_at: MOST_BUCKETS,
                latency_random: fastrand::Rng::with_seed(0),
                error_random: fastrand::Rng::with_seed(0),
            }),
            clock,
        };
        faults.replace(rules);
        faults
    }

    /// The rules in force, with what is left of their counts.
    pub fn rules(&self) -> FaultRules {
        self.lock().rules.clone()
    }

    /// Replaces the rules; buckets and random sources start afresh.
    pub fn replace(&self, rules: FaultRules) {
        Self::install(&mut self.lock(), rules);
    }

    /// Replaces the rules with what `change` makes of those in force (with what is left of
    /// their counts), under one lock: no request spends a count that the new rules would then
    /// give back.
    pub fn update<E>(
        &self,
        change: impl FnOnce(&FaultRules) -> Result<FaultRules, E>,
    ) -> Result<(), E> {
        let mut state = self.lock();
        let rules = change(&state.rules)?;
        Self::install(&mut state, rules);
        Ok(())
    }

    fn install(state: &mut State, rules: FaultRules) {
        state.latency_random =
            fastrand::Rng::with_seed(rules.latency.as_ref().map_or(0, |rule| rule.seed));
        state.error_random =
            fastrand::Rng::with_seed(rules.errors.as_ref().map_or(0, |rule| rule.seed));
        state.buckets.clear();
        state.sweep_at = MOST_BUCKETS;
        state.rules = rules;
    }

    /// Each rate-limit bucket's level now: its key (the account, account and route, or empty
    /// for one bucket for everyone) and the requests it would let through, sorted by key.
    pub fn bucket_levels(&self) -> Vec<BucketLevel> {
        let state = self.lock();
        let Some(rule) = &state.rules.rate_limit else {
            return Vec::new();
        };
        let capacity = f64::from(rule.limit);
        let rate = capacity / rule.window_seconds;
        let now = self.clock.now();
        let mut levels: Vec<BucketLevel> = state
            .buckets
            .iter()
            .map(|(key, bucket)| BucketLevel {
                key: key.clone(),
                tokens: (bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate)
                    .min(capacity),
                capacity: rule.limit,
            })
            .collect();
        levels.sort_by(|a, b| a.key.cmp(&b.key));
        levels
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decides the rate limit and the delay for one authenticated request: `method` to `path`
    /// (matched by the route template `route`) by `account_id`.
    pub fn decide(&self, path: &str, method: &str, route: &str, account_id: &str) -> Decision {
        let mut decision = Decision::default();
        let mut state = self.lock();
        let state = &mut *state;
        if let Some(rule) = &mut state.rules.rate_limit
            && take(
                &rule.route,
                &rule.account_id,
                &mut rule.count,
                path,
                account_id,
            )
        {
            let key = match rule.per {
                Per::Account => account_id.to_owned(),
                // The template, not the path: a new key must not mean a new bucket.
                Per::AccountAndRoute => format!("{account_id} {method} {route}"),
                Per::Global => String::new(),
            };
            let capacity = f64::from(rule.limit);
            let rate = capacity / rule.window_seconds;
            let now = self.clock.now();
            if state.buckets.len() >= state.sweep_at {
                // One per account (and route) ever seen would grow for as long as the server
                // runs; a bucket that has filled up again is no different from a new one.
                state.buckets.retain(|_, bucket| {
                    bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate
                        < capacity
                });
                state.sweep_at = MOST_BUCKETS.max(state.buckets.len() * 2);
            }
            let bucket = state.buckets.entry(key).or_insert(Bucket {
                tokens: capacity,
                updated: now,
            });
            bucket.tokens = (bucket.tokens
                + now.duration_since(bucket.updated).as_secs_f64() * rate)
                .min(capacity);
            bucket.updated = now;
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                decision.near_limit = bucket.tokens < capacity * 0.2;
            } else {
                let retry_after = ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64;
                decision.limited = Some(Limited {
                    retry_after,
                    limit: rule.limit,
                    reset: minute_after(self.clock.wall(), retry_after),
                });
                return decision;
            }
        }
        if let Some(rule) = &mut state.rules.latency
            && take(
                &rule.route,
                &rule.account_id,
                &mut rule.count,
                path,
                account_id,
            )
        {
            let delay = state.latency_random.u64(rule.min_ms..=rule.max_ms);
            decision.delay = Some(Duration::from_millis(delay));
        }
        decision.may_fail = state.rules.errors.is_some();
        decision
    }

    /// Whether the request, past its delay, fails, and with which status.
    pub fn fail(&self, path: &str, account_id: &str) -> Option<u16> {
        let mut state = self.lock();
        let state = &mut *state;
        let rule = state.rules.errors.as_mut()?;
        (take(
            &rule.route,
            &rule.account_id,
            &mut rule.count,
            path,
            account_id,
        ) && state.error_random.f64() < rule.fraction)
            .then_some(rule.status)
    }
}

/// `at` plus `seconds`, rounded up to the minute, as Jira writes `X-RateLimit-Reset`.
fn minute_after(at: std::time::SystemTime, seconds: u64) -> String {
    let since_epoch = at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(Duration::from_secs(seconds));
    let minutes = since_epoch.as_secs().div_ceil(60)
        + u64::from(since_epoch.as_secs().is_multiple_of(60) && since_epoch.subsec_nanos() > 0);
    let rounded = std::time::UNIX_EPOCH + Duration::from_secs(minutes.saturating_mul(60));
    let text = humantime::format_rfc3339_seconds(rounded).to_string();
    // `2026-12-03T18:25:00Z` to `2026-12-03T18:25Z`.
    format!("{}Z", text.get(..16).unwrap_or(&text))
}

/// Whether a rule's scope (`route`, `account_id`, `count`) takes this request by `caller` to
/// `path`, spending one of its count if so.
fn take(
    route: &Option<String>,
    account_id: &Option<String>,
    count: &mut Option<u64>,
    path: &str,
    caller: &str,
) -> bool {
    let matches = route
        .as_ref()
        .is_none_or(|route| path.starts_with(route.as_str()))
        && account_id.as_ref().is_none_or(|id| id == caller)
        && *count != Some(0);
    if matches && let Some(count) = count {
        *count -= 1;
    }
    matches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn faults(json: &str) -> Faults {
        Faults::new(rules(json), crate::clock::system())
    }

    fn rules(json: &str) -> FaultRules {
        let rules: FaultRules = serde_json::from_str(json).unwrap();
        rules.validate().unwrap();
        rules
    }

    #[test]
    fn a_bucket_refuses_past_its_limit_names_the_wait_and_refills_with_time() {
        let clock = ManualClock::new();
        let rules = rules(r#"{"rateLimit": {"limit": 5, "windowSeconds": 10}}"#);
        let faults = Faults::new(rules, clock.clone());
        let near: Vec<bool> = (0..5)
            .map(|_| faults.decide("/p", "GET", "/p", "a").near_limit)
            .collect();
        assert_eq!(near, [false, false, false, false, true]);
        let refused = faults
            .decide("/p", "GET", "/p", "a")
            .limited
            .expect("refused");
        assert_eq!((refused.retry_after, refused.limit), (2, 5));
        assert!(
            faults.decide("/p", "GET", "/p", "b").limited.is_none(),
            "buckets are per account"
        );
        clock.advance(Duration::from_millis(1_900));
        assert!(
            faults.decide("/p", "GET", "/p", "a").limited.is_some(),
            "not yet"
        );
        clock.advance(Duration::from_millis(200));
        assert!(
            faults.decide("/p", "GET", "/p", "a").limited.is_none(),
            "refilled"
        );
    }

    #[test]
    fn bucket_levels_show_what_each_bucket_would_let_through_now() {
        let clock = ManualClock::new();
        let rules = rules(r#"{"rateLimit": {"limit": 4, "windowSeconds": 4}}"#);
        let faults = Faults::new(rules, clock.clone());
        assert!(
            faults.bucket_levels().is_empty(),
            "no bucket before a request"
        );
        for _ in 0..3 {
            faults.decide("/p", "GET", "/p", "b");
        }
        faults.decide("/p", "GET", "/p", "a");
        let levels = |faults: &Faults| -> Vec<(String, f64, u32)> {
            faults
                .bucket_levels()
                .into_iter()
                .map(|l| (l.key, l.tokens, l.capacity))
                .collect()
        };
        assert_eq!(
            levels(&faults),
            [("a".to_owned(), 3.0, 4), ("b".to_owned(), 1.0, 4)]
        );
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            levels(&faults),
            [("a".to_owned(), 4.0, 4), ("b".to_owned(), 3.0, 4)],
            "refilled at one a second, never past the limit"
        );
        faults.replace(FaultRules::default());
        assert!(faults.bucket_levels().is_empty());
    }

    #[test]
    fn buckets_that_filled_up_again_are_let_go_past_the_most_held() {
        let clock = ManualClock::new();
        let rules = rules(r#"{"rateLimit": {"limit": 2, "windowSeconds": 1}}"#);
        let faults = Faults::new(rules, clock.clone());
        // "busy" spends its bucket, and "recent" a little of its, a long time after the others
        // spent a little of theirs.
        for account in 2..MOST_BUCKETS {
            faults.decide("/p", "GET", "/p", &account.to_string());
        }
        clock.advance(Duration::from_secs(1));
        for account in ["busy", "busy", "recent"] {
            faults.decide("/p", "GET", "/p", account);
        }
        assert_eq!(faults.lock().buckets.len(), MOST_BUCKETS);
        // A new account: the others have filled up again and go; "busy" and "recent" have not.
        clock.advance(Duration::from_millis(100));
        faults.decide("/p", "GET", "/p", "new");
        let mut kept: Vec<String> = faults.lock().buckets.keys().cloned().collect();
        kept.sort();
        assert_eq!(kept, ["busy", "new", "recent"]);
        assert!(
            faults.decide("/p", "GET", "/p", "busy").limited.is_some(),
            "a bucket in use keeps its level"
        );
    }

    #[test]
    fn per_account_and_route_buckets_go_by_route_template() {
        let faults =
            faults(r#"{"rateLimit": {"limit": 1, "windowSeconds": 60, "per": "accountAndRoute"}}"#);
        let template = "/rest/api/3/user/properties/{*key}";
        assert!(
            faults
                .decide("/rest/api/3/user/properties/a", "GET", template, "u")
                .limited
                .is_none()
        );
        assert!(
            faults
                .decide("/rest/api/3/user/properties/b", "GET", template, "u")
                .limited
                .is_some(),
            "a new key is no new bucket"
        );
        assert!(
            faults
                .decide("/rest/api/3/user/properties/a", "PUT", template, "u")
                .limited
                .is_none(),
            "another method is another bucket"
        );
        assert!(
            faults
                .decide(
                    "/rest/api/3/user/properties",
                    "GET",
                    "/rest/api/3/user/properties",
                    "u"
                )
                .limited
                .is_none()
        );
    }

    #[test]
    fn errors_repeat_with_their_seed() {
        let draw = || {
            let faults = faults(r#"{"errors": {"status": 503, "fraction": 0.3, "seed": 7}}"#);
            (0..200)
                .map(|_| faults.fail("/p", "a").is_some())
                .collect::<Vec<_>>()
        };
        let first = draw();
        assert_eq!(first, draw());
        let failed = first.iter().filter(|&&failed| failed).count();
        assert!((30..90).contains(&failed), "{failed}");
    }

    #[test]
    fn scopes_select_routes_accounts_and_the_next_n() {
        let faults = faults(
            r#"{"errors": {"status": 500, "fraction": 1, "route": "/rest/api/3", "accountId": "a", "count": 2}}"#,
        );
        assert!(faults.fail("/rest/api/2/x", "a").is_none());
        assert!(faults.fail("/rest/api/3/x", "b").is_none());
        assert_eq!(faults.fail("/rest/api/3/x", "a"), Some(500));
        assert_eq!(faults.fail("/rest/api/3/x", "a"), Some(500));
        assert!(faults.fail("/rest/api/3/x", "a").is_none(), "spent");
        assert_eq!(faults.rules().errors.and_then(|rule| rule.count), Some(0));
    }

    #[test]
    fn latency_stays_within_its_range() {
        let faults = faults(r#"{"latency": {"minMs": 5, "maxMs": 9, "seed": 1}}"#);
        for _ in 0..100 {
            let delay = faults
                .decide("/p", "GET", "/p", "a")
                .delay
                .expect("delayed")
                .as_millis();
            assert!((5..=9).contains(&delay), "{delay}");
        }
    }

    #[test]
    fn reset_is_the_wait_later_rounded_up_to_the_minute() {
        let at = |seconds: u64, nanos: u32| std::time::UNIX_EPOCH + Duration::new(seconds, nanos);
        assert_eq!(minute_after(at(100, 0), 20), "1970-01-01T00:02Z");
        assert_eq!(minute_after(at(100, 0), 21), "1970-01-01T00:03Z");
        assert_eq!(minute_after(at(120, 1), 0), "1970-01-01T00:03Z");
        assert_eq!(minute_after(at(3_599, 0), 2), "1970-01-01T01:01Z");
    }

    #[test]
    fn an_update_sees_the_counts_left_and_a_refused_one_changes_nothing() {
        let faults = faults(r#"{"errors": {"status": 500, "fraction": 1, "count": 3}}"#);
        assert_eq!(faults.fail("/p", "a"), Some(500));
        let seen = faults.update(|in_force| {
            Err::<FaultRules, _>(in_force.errors.as_ref().and_then(|rule| rule.count))
        });
        assert_eq!(seen, Err(Some(2)));
        assert_eq!(faults.rules().errors.and_then(|rule| rule.count), Some(2));
        faults
            .update(|in_force| {
                let mut rules = in_force.clone();
                rules.latency = Some(LatencyRule {
                    min_ms: 0,
                    max_ms: 0,
                    seed: 0,
                    route: None,
                    account_id: None,
                    count: None,
                });
                Ok::<_, ()>(rules)
            })
            .expect("updated");
        let rules = faults.rules();
        assert_eq!(rules.errors.and_then(|rule| rule.count), Some(2));
        assert!(rules.latency.is_some());
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            r#"{"rateLimit": {"limit": 0, "windowSeconds": 1}}"#,
            r#"{"latency": {"minMs": 9, "maxMs": 5}}"#,
            r#"{"errors": {"status": 200, "fraction": 0.5}}"#,
            r#"{"errors": {"status": 500, "fraction": 1.5}}"#,
            r#"{"errors": {"status": 500, "fraction": 1, "route": "rest/api/3"}}"#,
            r#"{"errors": {"status": 500, "fraction": 1, "route": "/rest/apix"}}"#,
            r#"{"latency": {"minMs": 1, "maxMs": 1, "route": "/ex/jira/x/rest/api/3"}}"#,
            r#"{"rateLimit": {"limit": 1, "windowSeconds": 1, "accountId": ""}}"#,
        ] {
            let parsed: FaultRules = serde_json::from_str(bad).unwrap();
            assert!(parsed.validate().is_err(), "{bad}");
        }
        for wide in ["/", "/rest", "/rest/api", "/rest/api/3/user"] {
            let rule =
                format!(r#"{{"errors": {{"status": 500, "fraction": 1, "route": "{wide}"}}}}"#);
            let parsed: FaultRules = serde_json::from_str(&rule).unwrap();
            assert!(parsed.validate().is_ok(), "{wide} acts on Jira API paths");
        }
        assert!(serde_json::from_str::<FaultRules>(r#"{"typo": {}}"#).is_err());
        let misspelt = r#"{"errors": {"status": 500, "fraction": 1, "acountId": "a"}}"#;
        assert!(
            serde_json::from_str::<FaultRules>(misspelt).is_err(),
            "a typo must not widen a rule"
        );
    }
}
