//! The SQLite backend: one writer connection, a pool of readers, WAL and full fsync on commit.

mod admin;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection as _, Row, SqliteConnection};

use super::{Account, DatabaseOptions, SeedConflict, SeedData, SeedReport};
use crate::credentials::TokenDigest;
use crate::domain::{PropertyKey, PropertyValue, User, Written, email_key};

/// SQLite through sqlx. Writes go through a single connection, so writers never meet
/// `SQLITE_BUSY` inside one process; other processes on the same file wait on the busy timeout.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    location: String,
    _memory: Option<KeepAlive>,
}

/// A connection held for as long as the store lives: an in-memory database vanishes when its
/// last connection closes, and a pool may close its connection (after a cancelled query, say).
#[derive(Clone)]
struct KeepAlive(#[allow(dead_code)] Arc<Mutex<SqliteConnection>>);

impl std::fmt::Debug for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeepAlive")
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database `url` names; `pool_size` readers sit beside the
    /// writer, since WAL lets them run while a write commits.
    pub async fn connect(url: &str, options: &DatabaseOptions) -> sqlx::Result<Self> {
        let acquire_timeout = options.acquire_timeout;
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // An in-memory database lives as long as its connections; sharing one keeps it whole.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if in_memory {
            let keeper = SqliteConnection::connect_with(&connect).await?;
            let pool = Self::pool(1, acquire_timeout).connect_with(connect).await?;
            return Ok(Self {
                reader: pool.clone(),
                writer: pool,
                location: "memory (lost when the server stops)".to_owned(),
                _memory: Some(KeepAlive(Arc::new(Mutex::new(keeper)))),
            });
        }
        let location = std::path::absolute(connect.get_filename())
            .unwrap_or_else(|_| connect.get_filename().to_owned())
            .display()
            .to_string();
        // FULL makes every commit fsync the WAL: an acknowledged write survives power loss too.
        let writer_options = connect
            .clone()
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let writer = Self::pool(1, acquire_timeout)
            .connect_with(writer_options)
            .await?;
        let reader = Self::pool(options.pool_size.max(1), acquire_timeout)
            .connect_with(connect.read_only(true))
            .await?;
        Ok(Self {
            reader,
            writer,
            location,
            _memory: None,
        })
    }

    fn pool(size: u32, acquire_timeout: Duration) -> SqlitePoolOptions {
        SqlitePoolOptions::new()
            .max_connections(size)
            .acquire_timeout(acquire_timeout)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    }

    pub(super) async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        // SQLite has no migration lock: processes starting together on one file can both try a
        // migration. The loser's transaction rolls back whole, and running again finds it applied.
        let migrator = sqlx::migrate!("migrations/sqlite");
        let mut attempt = 1;
        loop {
            match migrator.run(&self.writer).await {
                Err(_) if attempt < 5 => {
                    tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    pub(super) fn location(&self) -> String {
        self.location.clone()
    }

    pub(super) fn pool_usage(&self) -> (u32, u32) {
        // In memory, reader and writer are one pool.
        let pools = if self._memory.is_some() {
            vec![&self.reader]
        } else {
            vec![&self.reader, &self.writer]
        };
        pools.iter().fold((0, 0), |(in_use, idle), pool| {
            let pool_idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
            (
                in_use + pool.size().saturating_sub(pool_idle),
                idle + pool_idle,
            )
        })
    }

    pub(super) async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    pub(super) async fn token_owner(&self, digest: &TokenDigest) -> sqlx::Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.account_id, u.email, u.display_name, u.admin, u.active
             FROM api_tokens t JOIN users u ON u.account_id = t.account_id
             WHERE t.token_hash = $1",
        )
        .bind(digest.as_bytes())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| user_from_row(&row)).transpose()
    }

    pub(super) async fn account_by_email(&self, email_key: &str) -> sqlx::Result<Option<Account>> {
        let rows = sqlx::query(
            "SELECT u.account_id, u.email, u.display_name, u.admin, u.active, t.token_hash
             FROM users u LEFT JOIN api_tokens t ON t.account_id = u.account_id
             WHERE u.email_key = $1",
        )
        .bind(email_key)
        .fetch_all(&self.reader)
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
        Ok(Some(Account {
            user: user_from_row(first)?,
            digests,
        }))
    }

    pub(super) async fn user(&self, account_id: &str) -> sqlx::Result<Option<User>> {
        let row = sqlx::query(
            "SELECT account_id, email, display_name, admin, active FROM users WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| user_from_row(&row)).transpose()
    }

    pub(super) async fn user_exists(&self, account_id: &str) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE account_id = $1)")
            .bind(account_id)
            .fetch_one(&self.reader)
            .await
    }

    pub(super) async fn user_count(&self) -> sqlx::Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.reader)
            .await?;
        Ok(count.unsigned_abs())
    }

    pub(super) async fn property_keys(&self, account_id: &str) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT key FROM properties WHERE account_id = $1 ORDER BY key")
            .bind(account_id)
            .fetch_all(&self.reader)
            .await
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
                .fetch_optional(&self.reader)
                .await?;
        Ok(value.map(PropertyValue::from_stored))
    }

    pub(super) async fn set_property(
        &self,
        account_id: &str,
        key: &PropertyKey,
        value: &PropertyValue,
    ) -> sqlx::Result<Option<Written>> {
        let revision = sqlx::query_scalar::<_, i64>(
            "INSERT INTO properties (account_id, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, key)
             DO UPDATE SET value = excluded.value, revision = properties.revision + 1
             RETURNING revision",
        )
        .bind(account_id)
        .bind(key.as_str())
        .bind(value.as_str())
        .fetch_one(&self.writer)
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
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn apply_seed(&self, seed: &SeedData) -> sqlx::Result<SeedReport> {
        // IMMEDIATE takes the write lock first, so another process on the same file makes this
        // wait (busy timeout) instead of failing when the read turns into a write.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
                 VALUES ($1, $2, lower(hex(randomblob(8)))) ON CONFLICT DO NOTHING",
            )
            .bind(digest.as_bytes())
            .bind(account_id)
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

/// Adds a user unless its account id or email is taken; whether it was added.
pub(super) async fn insert_user(
    conn: &mut sqlx::SqliteConnection,
    user: &User,
) -> sqlx::Result<bool> {
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

async fn exists(tx: &mut sqlx::SqliteConnection, account_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE account_id = $1)")
        .bind(account_id)
        .fetch_one(tx)
        .await
}

fn user_from_row(row: &SqliteRow) -> sqlx::Result<User> {
    Ok(User {
        account_id: row.try_get(0)?,
        email: row.try_get(1)?,
        display_name: row.try_get(2)?,
        admin: row.try_get(3)?,
        active: row.try_get(4)?,
    })
}
