//! Opening a store: the backend chosen by the URL's scheme, and retries while the database starts.

use std::time::{Duration, Instant};

use super::{ConnectError, DatabaseOptions, PostgresStore, SqliteStore, Store};

/// The URL's scheme as written, found by the `url` crate (`sqlite::memory:` and
/// `sqlite:relative.db` are URLs whose path has no slash). Letter case counts, as it does for
/// sqlx's SQLite parser, which would take `SQLite:x.db` for a file name.
fn scheme(url: &str) -> &str {
    let parsed = url::Url::parse(url).ok();
    let length = parsed.map_or(0, |parsed| parsed.scheme().len());
    match url.split_at_checked(length) {
        Some((scheme, rest)) if length > 0 && rest.starts_with(':') => scheme,
        // Not a URL as a whole (a `#` in a password, a bad port), or one the parser trimmed:
        // what comes before the first colon still names the backend (whose own parser then
        // says what is wrong) or the scheme we do not support.
        _ => url.split_once(':').map_or("", |(scheme, _)| scheme),
    }
}

impl Store {
    /// Opens the database that `url` names, choosing the backend by its scheme. One attempt.
    pub async fn connect(url: &str, options: &DatabaseOptions) -> Result<Self, ConnectError> {
        let attempt = async {
            Ok(match scheme(url) {
                "sqlite" => Self::Sqlite(SqliteStore::connect(url, options).await?),
                // Without `//` the rest reads as a database name, and the server's refusal
                // would quote it, password and all.
                "postgres" | "postgresql" if !url.contains("://") => {
                    return Err(ConnectError::PostgresUrlWithoutHost);
                }
                "postgres" | "postgresql" => {
                    Self::Postgres(PostgresStore::connect(url, options).await?)
                }
                other => return Err(ConnectError::UnsupportedScheme(other.to_owned())),
            })
        };
        tokio::time::timeout(options.connect_timeout, attempt)
            .await
            .unwrap_or(Err(ConnectError::NoAnswer(options.connect_timeout)))
    }

    /// Like [`Store::connect`], retrying with backoff for `options.startup_timeout`, since a
    /// database container may start after us. Each failed attempt is logged; the error names
    /// the database (without its password), the attempts and the last cause.
    pub async fn connect_with_retry(url: &str, options: &DatabaseOptions) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1u32;
        loop {
            let error = match Self::connect(url, options).await {
                Ok(store) => return Ok(store),
                Err(error) => error,
            };
            let give_up =
                error.is_permanent() || started.elapsed() + delay >= options.startup_timeout;
            let error = anyhow::Error::new(error);
            if give_up {
                return Err(error.context(format!(
                    "cannot connect to the database at {} ({attempt} attempts over {:.1} s)",
                    redacted_location(url),
                    started.elapsed().as_secs_f64()
                )));
            }
            tracing::warn!(attempt, retry_in_ms = delay.as_millis() as u64, error = %format!("{error:#}"), "database not reachable yet");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            attempt += 1;
        }
    }
}

/// The URL without its password, for messages.
pub fn redacted_location(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let after_credentials = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            let host = after_credentials
                .split(['/', '?'])
                .next()
                .unwrap_or_default();
            format!("{scheme}://{host}")
        }
        // A SQLite path holds no secret; anything else without `://` may hold a password
        // anywhere (`postgres:u:secret@db/app`, `host=db password=secret`): its scheme only.
        None if scheme(url).eq_ignore_ascii_case("sqlite") => {
            url.split('?').next().unwrap_or_default().to_owned()
        }
        None => format!("{}:…", scheme(url)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_read_as_a_url_s() {
        let cases = [
            ("sqlite::memory:", "sqlite"),
            ("sqlite:relative.db", "sqlite"),
            ("sqlite:data.db?mode=rwc", "sqlite"),
            ("sqlite:///var/lib/data.db", "sqlite"),
            ("SQLite:data.db", "SQLite"),
            ("postgres://u:p@db:5432/app", "postgres"),
            ("postgresql://db/app", "postgresql"),
            // Not URLs as a whole, but plainly meant for PostgreSQL: its parser says why.
            ("postgres://u:p#ss@db:5432/app", "postgres"),
            ("postgres://db:port/app", "postgres"),
            (" sqlite::memory:", " sqlite"),
            ("data.db", ""),
            ("", ""),
        ];
        for (url, expected) in cases {
            assert_eq!(scheme(url), expected, "{url}");
        }
    }

    /// Refused before any connection is tried, and for good: an unknown scheme, or a PostgreSQL
    /// URL without a host (whose rest the server would take for a database name, and quote).
    #[tokio::test]
    async fn urls_no_backend_can_use_are_refused_at_once_and_for_good() {
        for (url, expected) in [
            (
                "mysql://db/app",
                "unsupported database URL scheme \"mysql\": use sqlite:PATH, sqlite::memory: or postgres://...",
            ),
            (
                "postgres:u:secret@db/app",
                "a PostgreSQL URL is postgres://USER:PASSWORD@HOST:PORT/DB",
            ),
        ] {
            let error = Store::connect(url, &DatabaseOptions::default()).await.err();
            let message = error.as_ref().map(ToString::to_string).unwrap_or_default();
            assert_eq!(message, expected, "{url}");
            assert!(error.is_some_and(|error| error.is_permanent()), "{url}");
        }
    }

    #[test]
    fn locations_name_the_host_and_hide_credentials() {
        assert_eq!(
            redacted_location("postgres://u:secret@db.example:5432/app?sslmode=require"),
            "postgres://db.example:5432"
        );
        assert_eq!(redacted_location("postgresql://db/app"), "postgresql://db");
        assert_eq!(
            redacted_location("sqlite:data.db?mode=rwc"),
            "sqlite:data.db"
        );
        for malformed in [
            "postgres:u:secret@db/app",
            "u:secret@db/app",
            "host=db password=secret",
        ] {
            let shown = redacted_location(malformed);
            assert!(!shown.contains("secret"), "{malformed} shown as {shown}");
        }
        assert_eq!(redacted_location("postgres:u:secret@db/app"), "postgres:…");
    }
}
