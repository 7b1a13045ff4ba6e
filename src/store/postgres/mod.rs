//! The PostgreSQL backend: one pool, plain portable SQL (no advisory locks or `xmax` in requests),
//! and a cache of credentials that each request's one statement confirms (`credentials.rs`).
//! Here: connecting, and the API's own operations; the admin API's are in `admin.rs`.

mod admin;
mod credentials;
mod pipeline;
mod reuse;
mod tls;

/// Runs a call on a leased connection (`reuse.rs`), which is kept for the next call if this one
/// succeeds.
macro_rules! leased {
    ($store:expr, |$conn:ident| $call:expr) => {{
        let mut lease = $store.lease().await?;
        let outcome = {
            let $conn: &mut sqlx::PgConnection = &mut lease;
            $call.await
        };
        lease.finish(&outcome);
        outcome
    }};
}
pub(in crate::store) use leased;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Connection as _, PgConnection, Postgres, Row as _};

use super::sql::Dialect;
use super::{DatabaseOptions, Error, Result};
use crate::domain::{CredentialsVersion, PropertyKey, PropertyValue, SiteKey, User, Written};
use credentials::CredentialsCache;
use pipeline::Pipelines;
use reuse::{IDLE_BEFORE_PING, Reuse};

type Sql = super::sql::Sql<Postgres>;

impl Dialect for Postgres {
    const CREATED_AT: &'static str =
        "to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

    fn affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// PostgreSQL (or a compatible database) through sqlx. Many instances may share one database:
/// every decision that must be atomic is made by a single statement or a SERIALIZABLE
/// transaction.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// How migrations connect: as the pool, without its lock timeout.
    migrating: Arc<PgConnectOptions>,
    location: String,
    admission: Arc<Admission>,
    credentials: Arc<CredentialsCache>,
    reuse: Arc<Reuse>,
    pipelines: Arc<Pipelines>,
}

/// Bounds the calls in flight: those holding one of the pool's connections and those waiting
/// for one. The pool bounds each wait, not how many wait; while the database is slow or out of
/// reach, a queue without a bound would grow with every request that arrives.
#[derive(Debug)]
struct Admission {
    in_flight: AtomicU32,
    bound: u32,
}

/// A call's place among those in flight, given back when it ends (or is cancelled).
pub(super) struct Turn<'a>(&'a AtomicU32);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PostgresStore {
    /// Connects; TLS follows the URL's `sslmode`.
    pub(super) async fn connect(url: &str, options: &DatabaseOptions) -> sqlx::Result<Self> {
        let mut connect = PgConnectOptions::from_str(url)?;
        // Named in pg_stat_activity, so an operator can find (or terminate) our sessions; a
        // URL's own `application_name` wins.
        if connect.get_application_name().is_none() {
            connect = connect.application_name("jira-userprops");
        }
        // The last `-c` of a setting wins: this one follows the URL's own `options`.
        let migrating = Arc::new(connect.clone().options([("lock_timeout", "0")]));
        if !connect
            .get_options()
            .is_some_and(|options| options.contains("lock_timeout"))
        {
            let milliseconds = options.lock_timeout.as_millis().max(1);
            connect = connect.options([("lock_timeout", format!("{milliseconds}ms"))]);
        }
        let location = format!(
            "postgres://{}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or_default()
        );
        // One plain connection first: it fails fast with the real cause, where a pool would keep
        // retrying until its acquire timeout and report only that.
        PgConnection::connect_with(&connect).await?.close().await?;
        let pipelines = Pipelines::new(&connect, options);
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size)
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            // Pinging every connection before handing it out costs each statement a round
            // trip. Only one that sat idle is pinged: a connection in use that broke (a restart,
            // a cut) failed its statement, and sqlx closes it when its release ping fails.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    Ok(meta.idle_for < IDLE_BEFORE_PING || conn.ping().await.is_ok())
                })
            })
            .connect_with(connect)
            .await?;
        let admission = Arc::new(Admission {
            in_flight: AtomicU32::new(0),
            bound: options.pool_size.saturating_add(options.max_waiting),
        });
        Ok(Self {
            pool,
            migrating,
            location,
            admission,
            credentials: Arc::new(CredentialsCache::new()),
            reuse: Arc::new(Reuse::new(options.pool_size, options.acquire_timeout)),
            pipelines: Arc::new(pipelines),
        })
    }

    /// A place among the calls in flight, or [`Error::Busy`] at once when every connection is
    /// taken and `max_waiting` calls already wait.
    pub(super) fn admit(&self) -> Result<Turn<'_>> {
        let Admission { in_flight, bound } = &*self.admission;
        // Never past the bound, even for a moment: the count is also a gauge.
        let admitted = in_flight.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |calls| {
            (calls < *bound).then_some(calls + 1)
        });
        match admitted {
            Ok(_) => Ok(Turn(in_flight)),
            Err(_) => Err(Error::Busy(*bound)),
        }
    }

    pub(super) async fn migrate(&self) -> Result<()> {
        let migrator = sqlx::migrate!("migrations/postgres");
        let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        // On a connection without the lock timeout: an instance starting beside another that
        // migrates waits for its lock (an advisory lock, which the timeout would end too)
        // rather than failing.
        let migrating = PgPoolOptions::new()
            .max_connections(1)
            .connect_with((*self.migrating).clone())
            .await?;
        let migrated = migrator.run(&migrating).await;
        migrating.close().await;
        migrated.map_err(|e| super::error::migration_failed(e, known))?;
        // The pipelines prepare their statements, so they are made once the schema is in place.
        self.pipelines.warm();
        Ok(())
    }

    pub(super) fn location(&self) -> String {
        self.location.clone()
    }

    pub(super) fn calls_in_flight(&self) -> u32 {
        self.admission.in_flight.load(Ordering::Relaxed)
    }

    pub(super) fn pool_usage(&self) -> (u32, u32) {
        let (in_use, kept) = self.reuse.usage();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        (in_use, kept.saturating_add(idle))
    }

    pub(super) async fn close(&self) {
        self.pipelines.close();
        self.reuse.close();
        self.pool.close().await;
    }

    pub(super) async fn user(&self, site: SiteKey, account_id: &str) -> Result<Option<User>> {
        Ok(leased!(self, |conn| Sql::user(conn, site, account_id))?)
    }

    /// In one statement: PostgreSQL takes the ids as one array.
    pub(super) async fn users_named(
        &self,
        site: SiteKey,
        account_ids: &[&str],
    ) -> Result<Vec<User>> {
        let rows = leased!(self, |conn| sqlx::query(
            "SELECT account_id, email, display_name, admin, active FROM users
             WHERE site = $1 AND account_id = ANY($2)"
        )
        .bind(site.0)
        .bind(account_ids)
        .fetch_all(conn))?;
        let mut by_id = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let user = Sql::user_from_row(row)?;
            by_id.insert(user.account_id.clone(), user);
        }
        Ok(account_ids
            .iter()
            .filter_map(|account_id| by_id.remove(*account_id))
            .collect())
    }

    /// From the cache for a caller whose credentials are cached too, since the statement that
    /// follows confirms both; otherwise from the database.
    pub(super) async fn user_exists(
        &self,
        site: SiteKey,
        account_id: &str,
        caller: Option<CredentialsVersion>,
    ) -> Result<bool> {
        if let Some(version) = caller {
            if !self.credentials.is_current(version) {
                return Err(Error::Stale);
            }
            if self.credentials.user_exists(site, account_id) {
                return Ok(true);
            }
        }
        let query = sqlx::query(
            "SELECT v.version, EXISTS (SELECT 1 FROM users WHERE site = $1 AND account_id = $2)
             FROM credentials_version v",
        )
        .bind(site.0)
        .bind(account_id);
        let row = leased!(self, |conn| query.fetch_one(conn))?;
        let found = row.try_get(0)?;
        let found = self.confirm_version(found, caller)?;
        let exists = row.try_get(1)?;
        if exists {
            self.credentials.keep_user(site, account_id, found);
        }
        Ok(exists)
    }

    pub(super) async fn user_count(&self, site: SiteKey) -> Result<u64> {
        Ok(leased!(self, |conn| Sql::user_count(conn, site))?)
    }

    // Each request's statement reads the credentials version beside its value, or guards its
    // write with it: one statement both confirms the caller and does the work.

    pub(super) async fn property_keys(
        &self,
        site: SiteKey,
        account_id: &str,
        caller: Option<CredentialsVersion>,
    ) -> Result<Arc<[String]>> {
        if let Some((version, keys)) = self.pipelines.keys(site.0, account_id).await {
            self.confirm_version(version, caller)?;
            return Ok(keys.into());
        }
        let query = sqlx::query(pipeline::KEYS).bind(site.0).bind(account_id);
        let row = leased!(self, |conn| query.fetch_one(conn))?;
        self.confirm_version(row.try_get(0)?, caller)?;
        Ok(row.try_get::<Vec<String>, _>(1)?.into())
    }

    pub(super) async fn property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
        caller: Option<CredentialsVersion>,
    ) -> Result<Option<PropertyValue>> {
        if let Some((version, value)) = self.pipelines.value(site.0, account_id, key.as_str()).await
        {
            self.confirm_version(version, caller)?;
            return Ok(value.map(PropertyValue::from_stored));
        }
        let query = sqlx::query(pipeline::VALUE)
            .bind(site.0)
            .bind(account_id)
            .bind(key.as_str());
        let row = leased!(self, |conn| query.fetch_one(conn))?;
        self.confirm_version(row.try_get(0)?, caller)?;
        let value: Option<String> = row.try_get(1)?;
        Ok(value.map(PropertyValue::from_stored))
    }

    pub(super) async fn set_property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
        value: &PropertyValue,
        caller: Option<CredentialsVersion>,
    ) -> Result<Option<Written>> {
        // Concurrent first writers meet on the primary key: one inserts (revision 0), the others
        // wait for it and update. Portable to CockroachDB and YugabyteDB.
        let query = sqlx::query(
            "WITH v AS (SELECT version FROM credentials_version),
             written AS (
                 INSERT INTO properties (site, account_id, key, value)
                 SELECT $1, $2, $3, $4 FROM v WHERE $5::BIGINT IS NULL OR v.version = $5
                 ON CONFLICT (site, account_id, key)
                 DO UPDATE SET value = EXCLUDED.value, revision = properties.revision + 1
                 RETURNING revision)
             SELECT v.version, written.revision FROM v LEFT JOIN written ON TRUE",
        )
        .bind(site.0)
        .bind(account_id)
        .bind(key.as_str())
        .bind(value.as_str())
        .bind(caller.map(|version| version.0));
        let row = leased!(self, |conn| query.fetch_one(conn));
        // A missing user shows as a foreign-key violation.
        let row = match row {
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => return Ok(None),
            row => row?,
        };
        self.confirm_version(row.try_get(0)?, caller)?;
        // 0 is a new row.
        match row.try_get::<Option<i64>, _>(1)? {
            Some(0) => Ok(Some(Written::Created)),
            Some(_) => Ok(Some(Written::Updated)),
            None => Err(Error::Stale),
        }
    }

    pub(super) async fn delete_property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
        caller: Option<CredentialsVersion>,
    ) -> Result<bool> {
        let query = sqlx::query(
            "WITH v AS (SELECT version FROM credentials_version),
             gone AS (
                 DELETE FROM properties
                 WHERE site = $1 AND account_id = $2 AND key = $3
                   AND EXISTS (SELECT 1 FROM v WHERE $4::BIGINT IS NULL OR v.version = $4)
                 RETURNING 1)
             SELECT v.version, (SELECT COUNT(*) FROM gone) FROM v",
        )
        .bind(site.0)
        .bind(account_id)
        .bind(key.as_str())
        .bind(caller.map(|version| version.0));
        let row = leased!(self, |conn| query.fetch_one(conn))?;
        self.confirm_version(row.try_get(0)?, caller)?;
        Ok(row.try_get::<i64, _>(1)? > 0)
    }

    pub(super) async fn ready(&self) -> Result<()> {
        Ok(leased!(self, |conn| Sql::ready(conn))?)
    }

    /// A connection, kept from the last call or from the pool; see `reuse.rs`.
    pub(in crate::store) async fn lease(&self) -> sqlx::Result<reuse::Lease<'_>> {
        self.reuse.lease(&self.pool).await
    }
}
