//! What the admin API and seeds do to a PostgreSQL store: users, tokens, snapshots and sites,
//! each decision that must be atomic across instances in one SERIALIZABLE transaction.

use std::time::{Duration, Instant};

use sqlx::{Connection as _, PgConnection, Postgres};

use super::{PostgresStore, Sql, leased};
use crate::credentials::TokenDigest;
use crate::domain::{CloudId, PropertyValue, Site, SiteKey, SiteName, User};
use crate::store::admin::{CreatedSite, PatchOutcome, Snapshot, TokenInfo, TokenLimits, UserPatch};
use crate::store::{Result, SeedData, SeedReport};

impl PostgresStore {
    pub(in crate::store) async fn apply_seed(
        &self,
        site: SiteKey,
        seed: &SeedData,
    ) -> Result<SeedReport> {
        // Instances seeding one database at once must agree on whether it was empty.
        serializable(|| async {
            let mut lease = self.lease().await?;
            Sql::apply_seed(begin_serializable(&mut lease).await?, site, seed).await
        })
        .await
    }

    pub(in crate::store) async fn users(
        &self,
        site: SiteKey,
        most: usize,
        active_only: bool,
    ) -> Result<Vec<User>> {
        Ok(leased!(self, |conn| Sql::users(
            conn,
            site,
            most,
            active_only
        ))?)
    }

    pub(in crate::store) async fn update_user(
        &self,
        site: SiteKey,
        account_id: &str,
        patch: &UserPatch,
    ) -> Result<PatchOutcome> {
        Ok(leased!(self, |conn| Sql::update_user(
            conn, site, account_id, patch
        ))?)
    }

    pub(in crate::store) async fn delete_user(
        &self,
        site: SiteKey,
        account_id: &str,
    ) -> Result<bool> {
        Ok(leased!(self, |conn| Sql::delete_user(
            conn, site, account_id
        ))?)
    }

    pub(in crate::store) async fn add_token(
        &self,
        site: SiteKey,
        account_id: &str,
        digest: &TokenDigest,
        limits: &TokenLimits,
    ) -> Result<Option<String>> {
        Ok(leased!(self, |conn| Sql::add_token(
            conn, site, account_id, digest, limits
        ))?)
    }

    pub(in crate::store) async fn properties(
        &self,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Option<Vec<(String, PropertyValue)>>> {
        Ok(leased!(self, |conn| Sql::properties(
            conn, site, account_id
        ))?)
    }

    pub(in crate::store) async fn tokens(
        &self,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Option<Vec<TokenInfo>>> {
        Ok(leased!(self, |conn| Sql::tokens(conn, site, account_id))?)
    }

    pub(in crate::store) async fn revoke_token(
        &self,
        site: SiteKey,
        account_id: &str,
        id: &str,
    ) -> Result<bool> {
        Ok(leased!(self, |conn| Sql::revoke_token(
            conn, site, account_id, id
        ))?)
    }

    pub(in crate::store) async fn reset(&self, site: SiteKey, everything: bool) -> Result<()> {
        serializable(|| async {
            let mut lease = self.lease().await?;
            Sql::reset(begin_serializable(&mut lease).await?, site, everything).await
        })
        .await
    }

    pub(in crate::store) async fn snapshot(&self, site: SiteKey) -> Result<Snapshot> {
        // A lease that holds a transaction is never finished: it goes back to the pool.
        let mut lease = self.lease().await?;
        let mut tx = lease.begin().await?;
        // One consistent view across the three reads.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
        Ok(Sql::snapshot(tx, site).await?)
    }

    pub(in crate::store) async fn restore(&self, site: SiteKey, snapshot: &Snapshot) -> Result<()> {
        serializable(|| async {
            let mut lease = self.lease().await?;
            Sql::restore(begin_serializable(&mut lease).await?, site, snapshot).await
        })
        .await
    }

    pub(in crate::store) async fn create_site(
        &self,
        id: CloudId,
        name: &SiteName,
        seed: &SeedData,
        kept: &str,
        most: u64,
    ) -> Result<CreatedSite> {
        // Instances creating sites at once must agree on how many there are.
        serializable(|| async {
            let mut lease = self.lease().await?;
            let tx = begin_serializable(&mut lease).await?;
            Sql::create_site(tx, id, name, seed, kept, most).await
        })
        .await
    }

    pub(in crate::store) async fn delete_site(&self, site: SiteKey) -> Result<bool> {
        Ok(leased!(self, |conn| Sql::delete_site(conn, site))?)
    }

    pub(in crate::store) async fn site_seed(&self, site: SiteKey) -> Result<Option<String>> {
        Ok(leased!(self, |conn| Sql::site_seed(conn, site))?)
    }

    pub(in crate::store) async fn sites(&self) -> Result<Vec<Site>> {
        Ok(leased!(self, |conn| Sql::sites(conn))?)
    }

    pub(in crate::store) async fn site_named(&self, name: &str) -> Result<Option<Site>> {
        Ok(leased!(self, |conn| Sql::site_named(conn, name))?)
    }

    pub(in crate::store) async fn site_with_id(&self, id: CloudId) -> Result<Option<Site>> {
        Ok(leased!(self, |conn| Sql::site_with_id(conn, id))?)
    }
}

/// How long a serializable transaction is tried again before it is answered as the database
/// being busy (503, `Retry-After`): every change of users or tokens writes one row, so many
/// callers at once (test workers making a site each) commit one at a time.
const SERIALIZABLE_PATIENCE: Duration = Duration::from_secs(10);

/// Runs a serializable transaction again while PostgreSQL reports a serialization failure
/// (40001) or a deadlock (40P01): all but one of several concurrent ones fail, and each retry
/// sees what the winner committed. A random pause that grows to 50 ms keeps the losers from
/// meeting again at once.
async fn serializable<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = sqlx::Result<T>>,
{
    let deadline = Instant::now() + SERIALIZABLE_PATIENCE;
    let mut most_ms = 1;
    loop {
        match attempt().await {
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("40001" | "40P01"))
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=most_ms))).await;
                most_ms = (most_ms * 2).min(50);
            }
            outcome => return Ok(outcome?),
        }
    }
}

/// A transaction that PostgreSQL fails (40001) rather than interleave with another. Its lease is
/// never finished: it goes back to the pool, whose ping settles whatever the transaction left.
async fn begin_serializable(
    conn: &mut PgConnection,
) -> sqlx::Result<sqlx::Transaction<'_, Postgres>> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}
