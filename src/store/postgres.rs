//! The PostgreSQL backend: one pool, plain portable SQL (no advisory locks or `xmax` in requests).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Connection as _, PgConnection, Postgres, Row as _};

use super::admin::{CreatedSite, PatchOutcome, Snapshot, TokenInfo, TokenLimits, UserPatch};
use super::sql::{Dialect, connection};
use super::{Account, DatabaseOptions, Error, Result, SeedData, SeedReport, TokenOwner};
use crate::credentials::TokenDigest;
use crate::domain::{CloudId, PropertyKey, PropertyValue, Site, SiteKey, SiteName, User, Written};

type Sql = super::sql::Sql<Postgres>;

impl Dialect for Postgres {
    const CREATED_AT: &'static str =
        "to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

    fn affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// How long a connection may sit idle before it is pinged on its way out of the pool. Under load
/// none sits idle that long; a PostgreSQL restart takes longer (about a quarter second for an
/// empty database), so a connection idle across one is pinged and replaced, not handed out dead.
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_millis(100);

/// PostgreSQL (or a compatible database) through sqlx. Many instances may share one database:
/// every decision that must be atomic is made by a single statement or a SERIALIZABLE
/// transaction.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    location: String,
    admission: Arc<Admission>,
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
        let location = format!(
            "postgres://{}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or_default()
        );
        // One plain connection first: it fails fast with the real cause, where a pool would keep
        // retrying until its acquire timeout and report only that.
        PgConnection::connect_with(&connect).await?.close().await?;
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
            location,
            admission,
        })
    }

    /// A place among the calls in flight, or [`Error::Busy`] at once when every connection is
    /// taken and `max_waiting` calls already wait.
    pub(super) fn admit(&self) -> Result<Turn<'_>> {
        let Admission { in_flight, bound } = &*self.admission;
        let turn = Turn(in_flight);
        if in_flight.fetch_add(1, Ordering::Relaxed) >= *bound {
            return Err(Error::Busy(*bound));
        }
        Ok(turn)
    }

    pub(super) async fn migrate(&self) -> Result<()> {
        let migrator = sqlx::migrate!("migrations/postgres");
        let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| super::error::migration_failed(e, known))
    }

    pub(super) fn location(&self) -> String {
        self.location.clone()
    }

    /// The pool, for statements of other areas (`store/oauth.rs`).
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn pool_usage(&self) -> (u32, u32) {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        (self.pool.size().saturating_sub(idle), idle)
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    pub(super) async fn token_owner(
        &self,
        site: SiteKey,
        digest: &TokenDigest,
    ) -> Result<Option<Arc<TokenOwner>>> {
        Ok(Sql::token_owner(&mut *connection(&self.pool).await?, site, digest).await?)
    }

    pub(super) async fn account_by_email(
        &self,
        site: SiteKey,
        email_key: &str,
    ) -> Result<Option<Arc<Account>>> {
        Ok(Sql::account_by_email(&mut *connection(&self.pool).await?, site, email_key).await?)
    }

    pub(super) async fn user(&self, site: SiteKey, account_id: &str) -> Result<Option<User>> {
        Ok(Sql::user(&mut *connection(&self.pool).await?, site, account_id).await?)
    }

    pub(super) async fn user_exists(&self, site: SiteKey, account_id: &str) -> Result<bool> {
        Ok(Sql::user_exists(&mut *connection(&self.pool).await?, site, account_id).await?)
    }

    pub(super) async fn user_count(&self, site: SiteKey) -> Result<u64> {
        Ok(Sql::user_count(&mut *connection(&self.pool).await?, site).await?)
    }

    pub(super) async fn property_keys(
        &self,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Arc<[String]>> {
        Ok(Sql::property_keys(&mut *connection(&self.pool).await?, site, account_id).await?)
    }

    pub(super) async fn property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
    ) -> Result<Option<PropertyValue>> {
        Ok(Sql::property(
            &mut *connection(&self.pool).await?,
            site,
            account_id,
            key.as_str(),
        )
        .await?)
    }

    pub(super) async fn set_property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
        value: &PropertyValue,
    ) -> Result<Option<Written>> {
        // Concurrent first writers meet on the primary key: one inserts (revision 0), the others
        // wait for it and update. Portable to CockroachDB and YugabyteDB.
        let revision = sqlx::query(
            "INSERT INTO properties (site, account_id, key, value) VALUES ($1, $2, $3, $4)
             ON CONFLICT (site, account_id, key)
             DO UPDATE SET value = EXCLUDED.value, revision = properties.revision + 1
             RETURNING revision",
        )
        .bind(site.0)
        .bind(account_id)
        .bind(key.as_str())
        .bind(value.as_str())
        .fetch_one(&self.pool)
        .await
        .and_then(|row| row.try_get::<i64, _>(0));
        // 0 is a new row; a missing user shows as a foreign-key violation.
        match revision {
            Ok(0) => Ok(Some(Written::Created)),
            Ok(_) => Ok(Some(Written::Updated)),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn delete_property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
    ) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM properties WHERE site = $1 AND account_id = $2 AND key = $3")
                .bind(site.0)
                .bind(account_id)
                .bind(key.as_str())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn apply_seed(&self, site: SiteKey, seed: &SeedData) -> Result<SeedReport> {
        // Instances seeding one database at once must agree on whether it was empty.
        serializable(|| async {
            Sql::apply_seed(self.begin_serializable().await?, site, seed).await
        })
        .await
    }

    pub(super) async fn users(&self, site: SiteKey) -> Result<Vec<User>> {
        Ok(Sql::users(&mut *connection(&self.pool).await?, site).await?)
    }

    pub(super) async fn update_user(
        &self,
        site: SiteKey,
        account_id: &str,
        patch: &UserPatch,
    ) -> Result<PatchOutcome> {
        Ok(Sql::update_user(&mut *connection(&self.pool).await?, site, account_id, patch).await?)
    }

    pub(super) async fn delete_user(&self, site: SiteKey, account_id: &str) -> Result<bool> {
        Ok(Sql::delete_user(&mut *connection(&self.pool).await?, site, account_id).await?)
    }

    pub(super) async fn add_token(
        &self,
        site: SiteKey,
        account_id: &str,
        digest: &TokenDigest,
        limits: &TokenLimits,
    ) -> Result<Option<String>> {
        Ok(Sql::add_token(
            &mut *connection(&self.pool).await?,
            site,
            account_id,
            digest,
            limits,
        )
        .await?)
    }

    pub(super) async fn tokens(
        &self,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Option<Vec<TokenInfo>>> {
        Ok(Sql::tokens(&mut *connection(&self.pool).await?, site, account_id).await?)
    }

    pub(super) async fn revoke_token(
        &self,
        site: SiteKey,
        account_id: &str,
        id: &str,
    ) -> Result<bool> {
        Ok(Sql::revoke_token(&mut *connection(&self.pool).await?, site, account_id, id).await?)
    }

    pub(super) async fn reset(&self, site: SiteKey, everything: bool) -> Result<()> {
        serializable(|| async {
            Sql::reset(self.begin_serializable().await?, site, everything).await
        })
        .await
    }

    pub(super) async fn snapshot(&self, site: SiteKey) -> Result<Snapshot> {
        let mut tx = self.pool.begin().await?;
        // One consistent view across the three reads.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
        Ok(Sql::snapshot(tx, site).await?)
    }

    pub(super) async fn restore(&self, site: SiteKey, snapshot: &Snapshot) -> Result<()> {
        serializable(|| async {
            Sql::restore(self.begin_serializable().await?, site, snapshot).await
        })
        .await
    }

    pub(super) async fn create_site(
        &self,
        id: CloudId,
        name: &SiteName,
        seed: &SeedData,
        most: u64,
    ) -> Result<CreatedSite> {
        // Instances creating sites at once must agree on how many there are.
        serializable(|| async {
            Sql::create_site(self.begin_serializable().await?, id, name, seed, most).await
        })
        .await
    }

    pub(super) async fn delete_site(&self, site: SiteKey) -> Result<bool> {
        Ok(Sql::delete_site(&mut *connection(&self.pool).await?, site).await?)
    }

    pub(super) async fn sites(&self) -> Result<Vec<Site>> {
        Ok(Sql::sites(&mut *connection(&self.pool).await?).await?)
    }

    pub(super) async fn site_named(&self, name: &str) -> Result<Option<Site>> {
        Ok(Sql::site_named(&mut *connection(&self.pool).await?, name).await?)
    }

    pub(super) async fn site_with_id(&self, id: CloudId) -> Result<Option<Site>> {
        Ok(Sql::site_with_id(&mut *connection(&self.pool).await?, id).await?)
    }

    pub(super) async fn ready(&self) -> Result<()> {
        Ok(Sql::ready(&mut *connection(&self.pool).await?).await?)
    }

    /// A transaction that PostgreSQL fails (40001) rather than interleave with another.
    async fn begin_serializable(&self) -> sqlx::Result<sqlx::Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// Runs a serializable transaction again while PostgreSQL reports a serialization failure:
/// all but one of several concurrent ones fail, and each retry sees what the winner committed.
async fn serializable<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = sqlx::Result<T>>,
{
    for _ in 0..10 {
        match attempt().await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40001") => {}
            outcome => return Ok(outcome?),
        }
    }
    Ok(attempt().await?)
}
