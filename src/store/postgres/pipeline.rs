//! Reads pipelined on a few shared connections beside the pool, so that one write to the socket
//! carries many requests' statements and one read brings back many answers.
//!
//! sqlx runs one statement at a time on a connection: each costs a send, a receive and a wake-up
//! on both sides. tokio-postgres sends the statements of concurrent callers of one client back to
//! back without waiting for the answers. One pipeline is the default: on 2 cores it batched more
//! and answered faster than 2, 4 or 10 (`docs/performance.md`).
//!
//! Only the two reads go this way (a property's value, an account's keys), as the very statements
//! the pool runs when it answers them: a read never waits for a row lock, so none holds up the
//! reads queued behind it. Writes and transactions stay on the pool.
//!
//! A pipeline is an optimisation, never a dependency. A read that finds no pipeline ready, or
//! whose pipeline fails or stalls, is answered through the pool as before, and the broken
//! pipeline is replaced in the background. So restarts, cuts and outages are met by the pool's
//! rules alone. A URL that asks to verify the server's certificate (`verify-ca`, `verify-full`)
//! turns pipelines off: the pool alone checks certificates.
//!
//! Past 350 lines only with its tests.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::tls::Unverified;
use crate::store::DatabaseOptions;

/// Ends the pipelines' `application_name`: the pool's own name, then this.
const PIPELINE_SUFFIX: &str = "(pipelined reads)";

/// How long a failed connection attempt keeps its slot from trying again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// A property's value, beside the credentials version.
pub(super) const VALUE: &str = "SELECT v.version, p.value FROM credentials_version v
     LEFT JOIN properties p ON p.site = $1 AND p.account_id = $2 AND p.key = $3";

/// An account's keys in order, beside the credentials version.
pub(super) const KEYS: &str = "SELECT v.version, ARRAY (SELECT key FROM properties
                          WHERE site = $1 AND account_id = $2 ORDER BY key)
     FROM credentials_version v";

/// The pipelined connections, each made at start (or on first use) and again after it fails.
pub(super) struct Pipelines {
    target: Option<Arc<Target>>,
    slots: Box<[Arc<Slot>]>,
    next: AtomicUsize,
    /// Past this, a read on a pipeline is given up and asked of the pool.
    patience: Duration,
}

/// Where and how to connect.
struct Target {
    config: tokio_postgres::Config,
    tls: Option<Unverified>,
}

#[derive(Default)]
struct Slot {
    pipe: Mutex<Option<Arc<Pipe>>>,
    connecting: AtomicBool,
    retry_at: Mutex<Option<Instant>>,
}

/// One pipelined connection and the reads prepared on it.
struct Pipe {
    client: Client,
    value: Statement,
    keys: Statement,
}

impl std::fmt::Debug for Pipelines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipelines")
            .field("on", &self.target.is_some())
            .field("count", &self.slots.len())
            .finish()
    }
}

impl Pipelines {
    /// `options.pipelines` pipelines to the pool's database, with the pool's password; none
    /// when that is 0 or the URL asks to verify certificates.
    pub(super) fn new(connect: &PgConnectOptions, options: &DatabaseOptions) -> Self {
        let count = usize::try_from(options.pipelines).unwrap_or(usize::MAX);
        let target = match target(connect, options.connect_timeout) {
            Ok(target) => Some(Arc::new(target)),
            Err(reason) => {
                if count > 0 {
                    tracing::info!("reads go through the pool only: {reason}");
                }
                None
            }
        };
        let count = if target.is_some() { count } else { 0 };
        Self {
            target,
            slots: (0..count).map(|_| Arc::default()).collect(),
            next: AtomicUsize::new(0),
            patience: options.acquire_timeout,
        }
    }

    /// The credentials version and a property's value, or `None`: ask the pool.
    pub(super) async fn value(
        &self,
        site: i64,
        account_id: &str,
        key: &str,
    ) -> Option<(i64, Option<String>)> {
        let (slot, pipe) = self.pipe()?;
        let parameters: [&(dyn ToSql + Sync); 3] = [&site, &account_id, &key];
        let read = pipe.client.query_one(&pipe.value, &parameters);
        let row = slot.answer_or_retire(&pipe, tokio::time::timeout(self.patience, read).await)?;
        slot.answer_or_retire(
            &pipe,
            Ok(row.try_get(0).and_then(|v| Ok((v, row.try_get(1)?)))),
        )
    }

    /// The credentials version and an account's keys in order, or `None`: ask the pool.
    pub(super) async fn keys(&self, site: i64, account_id: &str) -> Option<(i64, Vec<String>)> {
        let (slot, pipe) = self.pipe()?;
        let parameters: [&(dyn ToSql + Sync); 2] = [&site, &account_id];
        let read = pipe.client.query_one(&pipe.keys, &parameters);
        let row = slot.answer_or_retire(&pipe, tokio::time::timeout(self.patience, read).await)?;
        slot.answer_or_retire(
            &pipe,
            Ok(row.try_get(0).and_then(|v| Ok((v, row.try_get(1)?)))),
        )
    }

    /// Starts making every pipeline in the background, so that the first reads find them ready
    /// rather than each opening a pooled connection of its own.
    pub(super) fn warm(&self) {
        if let Some(target) = &self.target {
            for slot in &*self.slots {
                Slot::make(slot, target);
            }
        }
    }

    /// Closes every pipeline (they close once their reads in flight end).
    pub(super) fn close(&self) {
        for slot in &*self.slots {
            slot.discard();
        }
    }

    /// The next slot's pipeline if it is ready; otherwise one is made in the background.
    fn pipe(&self) -> Option<(&Slot, Arc<Pipe>)> {
        let target = self.target.as_ref()?;
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len().max(1);
        let slot = self.slots.get(index)?;
        let current = slot
            .pipe
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match current {
            Some(pipe) if !pipe.client.is_closed() => Some((slot, pipe)),
            Some(closed) => {
                slot.retire(&closed);
                None
            }
            None => {
                Slot::make(slot, target);
                None
            }
        }
    }
}

impl Slot {
    /// A read's outcome; a failure or a stall retires the pipeline and hands the read to the
    /// pool.
    fn answer_or_retire<T>(
        &self,
        pipe: &Arc<Pipe>,
        outcome: Result<Result<T, tokio_postgres::Error>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        match outcome {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                tracing::debug!(%error, "a pipelined read failed; the pool answers it");
                self.retire(pipe);
                None
            }
            Err(_) => {
                tracing::debug!("a pipelined read stalled; the pool answers it");
                self.retire(pipe);
                None
            }
        }
    }

    /// Takes a failed pipeline out of use, unless it was replaced already, and holds back the
    /// next one for a while: a fault that outlives a reconnection must not cost one per read.
    fn retire(&self, failed: &Arc<Pipe>) {
        let retired = {
            let mut pipe = self.pipe.lock().unwrap_or_else(PoisonError::into_inner);
            let same = pipe
                .as_ref()
                .is_some_and(|current| Arc::ptr_eq(current, failed));
            same && pipe.take().is_some()
        };
        if retired {
            *self.retry_at.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(Instant::now() + RETRY_AFTER);
        }
    }

    fn discard(&self) {
        self.pipe
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Starts making this slot's pipeline, unless one is being made or the last attempt failed
    /// too recently.
    fn make(slot: &Arc<Slot>, target: &Arc<Target>) {
        let waiting = slot
            .retry_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| Instant::now() < at);
        if waiting || slot.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (slot, target) = (Arc::clone(slot), Arc::clone(target));
        tokio::spawn(async move {
            match target.connect().await {
                Ok(pipe) => {
                    *slot.pipe.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(Arc::new(pipe));
                }
                // A warning, at most one per slot every RETRY_AFTER: a pipeline that can never
                // be made (pg_hba, max_connections) costs every read a pool connection.
                Err(error) => {
                    tracing::warn!(%error, "a read pipeline could not be made; reads go through the pool");
                    *slot.retry_at.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(Instant::now() + RETRY_AFTER);
                }
            }
            slot.connecting.store(false, Ordering::Release);
        });
    }
}

impl Target {
    async fn connect(&self) -> Result<Pipe, tokio_postgres::Error> {
        let client = match &self.tls {
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                tokio::spawn(connection);
                client
            }
            None => {
                let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
            }
        };
        Ok(Pipe {
            value: client.prepare(VALUE).await?,
            keys: client.prepare(KEYS).await?,
            client,
        })
    }
}

/// The pool's own settings, as tokio-postgres takes them.
fn target(options: &PgConnectOptions, connect_timeout: Duration) -> Result<Target, &'static str> {
    let mut config = tokio_postgres::Config::new();
    config.connect_timeout(connect_timeout);
    match options.get_socket() {
        Some(directory) => config.host_path(directory),
        None => config.host(options.get_host()),
    };
    config
        .port(options.get_port())
        .user(options.get_username())
        // Told apart from the pool's sessions in pg_stat_activity.
        .application_name(format!(
            "{} {PIPELINE_SUFFIX}",
            options.get_application_name().unwrap_or("jira-userprops")
        ));
    if let Some(database) = options.get_database() {
        config.dbname(database);
    }
    if let Some(startup) = options.get_options() {
        config.options(startup);
    }
    if let Some(password) = password(options) {
        config.password(password);
    }
    let tls = match options.get_ssl_mode() {
        PgSslMode::Disable => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            None
        }
        PgSslMode::Allow | PgSslMode::Prefer => {
            config.ssl_mode(tokio_postgres::config::SslMode::Prefer);
            Some(Unverified::new().map_err(|_| "TLS could not be set up")?)
        }
        PgSslMode::Require => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            Some(Unverified::new().map_err(|_| "TLS could not be set up")?)
        }
        PgSslMode::VerifyCa | PgSslMode::VerifyFull => {
            return Err("the URL asks to verify the server's certificate");
        }
    };
    Ok(Target { config, tls })
}

/// The pool's password, wherever sqlx found it: the URL's user part or `password` parameter,
/// `PGPASSWORD`, or a password file (`PGPASSFILE`, `~/.pgpass`). Its URL form is the one place
/// sqlx shows it.
fn password(options: &PgConnectOptions) -> Option<String> {
    let url = options.to_url_lossy();
    let encoded = url.password()?;
    Some(
        percent_encoding::percent_decode_str(encoded)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn options(url: &str) -> PgConnectOptions {
        PgConnectOptions::from_str(url).expect("a valid URL")
    }

    #[test]
    fn a_url_that_verifies_certificates_turns_pipelines_off() {
        for mode in ["verify-ca", "verify-full"] {
            let url = format!("postgres://u@db.example/app?sslmode={mode}");
            let pipelines = Pipelines::new(&options(&url), &DatabaseOptions::default());
            assert!(pipelines.target.is_none(), "{mode}");
            assert!(pipelines.slots.is_empty(), "{mode}");
        }
    }

    #[test]
    fn pipelines_connect_where_the_pool_does_with_tls_as_asked() {
        let url = "postgres://reader:p%40ss%2Fw@db.example:6543/app?sslmode=require&application_name=here";
        let encrypted = target(&options(url), Duration::from_secs(3)).expect("a target");
        let config = &encrypted.config;
        assert_eq!(config.get_user(), Some("reader"));
        assert_eq!(config.get_password(), Some(&b"p@ss/w"[..]));
        assert_eq!(config.get_dbname(), Some("app"));
        assert_eq!(config.get_ports(), [6543]);
        assert_eq!(
            config.get_application_name(),
            Some("here (pipelined reads)")
        );
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert!(encrypted.tls.is_some());

        let url = "postgres://u@db.example/app?sslmode=disable";
        let plain = target(&options(url), Duration::from_secs(3)).expect("a target");
        assert_eq!(
            plain.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        assert!(plain.tls.is_none());
    }

    #[test]
    fn pipelines_take_the_password_wherever_the_pool_found_it() {
        let url = "postgres://reader@db.example/app?password=in%20a%20parameter";
        let config = target(&options(url), Duration::from_secs(3))
            .expect("a target")
            .config;
        assert_eq!(config.get_password(), Some(&b"in a parameter"[..]));
    }

    #[test]
    fn no_pipelines_are_made_when_none_are_asked_for() {
        let url = "postgres://u@db.example/app";
        let none = DatabaseOptions {
            pipelines: 0,
            ..DatabaseOptions::default()
        };
        assert!(Pipelines::new(&options(url), &none).pipe().is_none());
        let two = DatabaseOptions {
            pipelines: 2,
            ..DatabaseOptions::default()
        };
        assert_eq!(Pipelines::new(&options(url), &two).slots.len(), 2);
    }
}
