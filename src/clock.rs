//! Time as the server reads it: the system's, or one that tests move by hand.
//!
//! Whatever waits or expires (the fault token bucket, the login throttle, the cache's trust
//! window, tokens later) asks a [`Clock`] instead of `Instant::now()`, so that a test can move
//! time forward instead of sleeping through it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// A source of the current time, monotonic and wall-clock.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, for measuring intervals.
    fn now(&self) -> Instant;
    /// Now, for showing or comparing with dates.
    fn wall(&self) -> SystemTime;
}

/// The clock every part of a server shares.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The system's clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until [`ManualClock::advance`] moves it: for tests.
#[derive(Debug)]
pub struct ManualClock {
    started: Instant,
    started_wall: SystemTime,
    advanced_ns: AtomicU64,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            advanced_ns: AtomicU64::new(0),
        }
    }
}

/// Milliseconds since the Unix epoch on `clock`'s wall, as stored expiry times are written.
pub fn unix_ms(clock: &SharedClock) -> i64 {
    let since = clock
        .wall()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch as RFC 3339 with milliseconds, in UTC.
pub fn rfc3339_ms(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs());
    humantime::format_rfc3339_millis(at).to_string()
}

/// An RFC 3339 time as milliseconds since the Unix epoch; the message says what is wrong.
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    // humantime reads UTC only, and passes over an offset that follows a fraction: an offset
    // other than UTC's is refused rather than read hours wrong.
    let (date, time) = text.split_at_checked(10).unwrap_or((text, ""));
    let utc = match time.rfind(['+', '-']).map(|at| time.split_at(at)) {
        Some((clock, "+00:00" | "-00:00")) => format!("{date}{clock}Z"),
        Some(_) => return Err(format!("'{text}' is not in UTC: end it in Z")),
        None => text.to_owned(),
    };
    let at = humantime::parse_rfc3339_weak(&utc)
        .map_err(|_| format!("'{text}' is not an RFC 3339 time"))?;
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("'{text}' is before 1970"))?
        .as_millis();
    i64::try_from(ms).map_err(|_| format!("'{text}' is too far away"))
}

impl ManualClock {
    /// A clock standing at the moment it was made.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.advanced_ns.fetch_add(ns, Ordering::SeqCst);
    }

    fn advanced(&self) -> Duration {
        Duration::from_nanos(self.advanced_ns.load(Ordering::SeqCst))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.started + self.advanced()
    }

    fn wall(&self) -> SystemTime {
        self.started_wall + self.advanced()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new();
        let (before, before_wall) = (clock.now(), clock.wall());
        assert_eq!(clock.now(), before);
        clock.advance(Duration::from_secs(3));
        assert_eq!(clock.now() - before, Duration::from_secs(3));
        assert_eq!(
            clock.wall().duration_since(before_wall).ok(),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn rfc3339_times_read_back_to_the_same_millisecond() {
        let ms = parse_rfc3339_ms("2027-12-31T00:00:00.250Z").unwrap();
        assert_eq!(ms, 1_830_211_200_250);
        assert_eq!(rfc3339_ms(ms), "2027-12-31T00:00:00.250Z");
        assert!(parse_rfc3339_ms("1969-12-31T23:59:59Z").is_err());
        assert!(parse_rfc3339_ms("tomorrow").is_err());
        // An offset is UTC's or refused, never passed over.
        let utc = parse_rfc3339_ms("2027-12-31T00:00:00.250+00:00");
        assert_eq!(utc, Ok(ms));
        for elsewhere in ["2027-12-31T00:00:00.000+09:00", "2027-12-31T00:00:00-05:00"] {
            assert!(parse_rfc3339_ms(elsewhere).is_err(), "{elsewhere}");
        }
    }
}
