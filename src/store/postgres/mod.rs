//! The PostgreSQL backend: one pool, plain portable SQL (no advisory locks or `xmax` in requests).

mod admin;

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection as _, PgConnection, Row};

use super::{Account, DatabaseOptions, SeedConflict, SeedData, SeedReport};
use crate::credentials::TokenDigest;
use crate::domain::{PropertyKey, PropertyValue, User, Written, email_key};

/// PostgreSQL (or a compatible database) through sqlx. Many instances may share one database:
/// every decision that must be atomic is made by a single statement.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    location: String,
}

impl PostgresStore {
    /// Connects; TLS follows the URL's `sslmode`.
    pub async fn connect(url: &str, options: &DatabaseOptions) -> sqlx::Result<Self> {
        let connect = PgConnectOptions::from_str(url)?;
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
            .connect_with(connect)
            .await?;
        Ok(Self { pool, location })
    }

    pub(super) async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("migrations/postgres").run(&self.pool).await
    }

    pub(super) fn location(&self) -> String {
        self.location.clone()
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
        digest: &TokenDigest,
    ) -> sqlx::Result<Option<Arc<User>>> {
        let row = sqlx::query(
            "SELECT u.account_id, u.email, u.display_name, u.admin, u.active
             FROM api_tokens t JOIN users u ON u.account_id = t.account_id
             WHERE t.token_hash = $1",
        )
        .bind(digest.as_bytes())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| user_from_row(&row).map(Arc::new)).transpose()
    }

    pub(super) async fn account_by_email(
        &self,
        email_key: &str,
    ) -> sqlx::Result<Option<Arc<Account>>> {
        let rows = sqlx::query(
            "SELECT u.account_id, u.email, u.display_name, u.admin, u.active, t.token_hash
             FROM users u LEFT JOIN api_tokens t ON t.account_id = u.account_id
             WHERE u.email_key = $1",
        )
        .bind(email_key)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut digests = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(stored) = row.try_get::<Option<&[u8]>, _>(5)? {
                digests.push(super::stored_digest(stored)?);
            }
        }
        Ok(Some(Arc::new(Account {
            user: Arc::new(user_from_row(first)?),
            digests,
        })))
    }

    pub(super) async fn user(&self, account_id: &str) -> sqlx::Result<Option<User>> {
        let row = sqlx::query(
            "SELECT account_id, email, display_name, admin, active FROM users WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| user_from_row(&row)).transpose()
    }

    pub(super) async fn user_exists(&self, account_id: &str) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE account_id = $1)")
            .bind(account_id)
            .fetch_one(&self.pool)
            .await
    }

    pub(super) async fn user_count(&self) -> sqlx::Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(count.unsigned_abs())
    }

    pub(super) async fn property_keys(&self, account_id: &str) -> sqlx::Result<Arc<[String]>> {
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT key FROM properties WHERE account_id = $1 ORDER BY key")
                .bind(account_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(keys.into())
    }

    pub(super) async fn property(
        &self,
        account_id: &str,
        key: &PropertyKey,
    ) -> sqlx::Result<Option<PropertyValue>> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM properties WHERE account_id = $1 AND key = $2")
                .bind(account_id)
                .bind(key.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(value.map(PropertyValue::from_stored))
    }

    pub(super) async fn set_property(
        &self,
        account_id: &str,
        key: &PropertyKey,
        value: &PropertyValue,
    ) -> sqlx::Result<Option<Written>> {
        // Concurrent first writers meet on the primary key: one inserts (revision 0), the others
        // wait for it and update. Portable to CockroachDB and YugabyteDB.
        let revision = sqlx::query_scalar::<_, i64>(
            "INSERT INTO properties (account_id, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, key)
             DO UPDATE SET value = EXCLUDED.value, revision = properties.revision + 1
             RETURNING revision",
        )
        .bind(account_id)
        .bind(key.as_str())
        .bind(value.as_str())
        .fetch_one(&self.pool)
        .await;
        super::written(revision)
    }

    pub(super) async fn delete_property(
        &self,
        account_id: &str,
        key: &PropertyKey,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query("DELETE FROM properties WHERE account_id = $1 AND key = $2")
            .bind(account_id)
            .bind(key.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn apply_seed(&self, seed: &SeedData) -> sqlx::Result<SeedReport> {
        // Instances seeding one database at once must agree on whether it was empty.
        serializable(|| self.try_apply_seed(seed)).await
    }

    /// A transaction that PostgreSQL fails (40001) rather than interleave with another.
    async fn begin_serializable(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn try_apply_seed(&self, seed: &SeedData) -> sqlx::Result<SeedReport> {
        let mut tx = self.begin_serializable().await?;
        let empty: bool = sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM users) AND NOT EXISTS (SELECT 1 FROM properties)",
        )
        .fetch_one(&mut *tx)
        .await?;
        let mut report = SeedReport::default();
        for (index, user) in seed.users.iter().enumerate() {
            let inserted = insert_user(&mut tx, user).await?;
            if !inserted && !exists(&mut tx, &user.account_id).await? {
                // Not added, and not there: another account holds the email. Roll back.
                report.conflict = Some(SeedConflict::Email(index));
                return Ok(report);
            }
            report.users += u64::from(inserted);
        }
        for &(owner, digest) in &seed.tokens {
            let account_id = &seed.users[owner].account_id;
            let inserted = sqlx::query(
                "INSERT INTO api_tokens (token_hash, account_id, id)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(digest.as_bytes())
            .bind(account_id)
            .bind(super::new_token_id()?)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                let holder: String =
                    sqlx::query_scalar("SELECT account_id FROM api_tokens WHERE token_hash = $1")
                        .bind(digest.as_bytes())
                        .fetch_one(&mut *tx)
                        .await?;
                if &holder != account_id {
                    report.conflict = Some(SeedConflict::Token(owner));
                    return Ok(report);
                }
            }
            report.tokens += inserted;
        }
        if empty {
            for (account_id, key, value) in &seed.properties {
                report.properties += sqlx::query(
                    "INSERT INTO properties (account_id, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                )
                .bind(account_id)
                .bind(key.as_str())
                .bind(value.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
        }
        tx.commit().await?;
        Ok(report)
    }
}

/// Runs a serializable transaction again while PostgreSQL reports a serialization failure:
/// all but one of several concurrent ones fail, and each retry sees what the winner committed.
async fn serializable<T, F, Fut>(mut attempt: F) -> sqlx::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<T>>,
{
    for _ in 0..10 {
        match attempt().await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40001") => {}
            outcome => return outcome,
        }
    }
    attempt().await
}

/// Adds a user unless its account id or email is taken; whether it was added.
pub(super) async fn insert_user(conn: &mut sqlx::PgConnection, user: &User) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO users (account_id, email, email_key, display_name, admin, active)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(&user.account_id)
    .bind(&user.email)
    .bind(email_key(&user.email))
    .bind(&user.display_name)
    .bind(user.admin)
    .bind(user.active)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

async fn exists(tx: &mut sqlx::PgConnection, account_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE account_id = $1)")
        .bind(account_id)
        .fetch_one(tx)
        .await
}

fn user_from_row(row: &PgRow) -> sqlx::Result<User> {
    Ok(User {
        account_id: row.try_get(0)?,
        email: row.try_get(1)?,
        display_name: row.try_get(2)?,
        admin: row.try_get(3)?,
        active: row.try_get(4)?,
    })
}
