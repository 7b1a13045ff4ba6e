//! The SQLite backend: one writer connection, a pool of readers, WAL and full fsync on commit.

mod admin;
mod memory;
mod writer;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection as _, Row, SqliteConnection};

use memory::Memory;
use tokio::sync::{mpsc, oneshot};
use writer::Write;

use super::{Account, DatabaseOptions, SeedConflict, SeedData, SeedReport};
use crate::credentials::TokenDigest;
use crate::domain::{PropertyKey, PropertyValue, User, Written, email_key};

/// SQLite through sqlx. Writes go through a single connection, so writers never meet
/// `SQLITE_BUSY` inside one process; other processes on the same file wait on the busy timeout.
/// Property writes queue for one task that commits them in groups; reads may be answered from
/// memory (see [`memory`]).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    writes: mpsc::Sender<Write>,
    memory: Option<Arc<Memory>>,
    location: String,
    _in_memory: Option<KeepAlive>,
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
            return Ok(Self::start(
                pool.clone(),
                pool,
                options,
                "memory (lost when the server stops)".to_owned(),
                Some(KeepAlive(Arc::new(Mutex::new(keeper)))),
            ));
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
        Ok(Self::start(reader, writer, options, location, None))
    }

    /// Starts the writer task over the pools.
    fn start(
        reader: SqlitePool,
        writer: SqlitePool,
        options: &DatabaseOptions,
        location: String,
        in_memory: Option<KeepAlive>,
    ) -> Self {
        let memory = (options.cache_bytes > 0)
            .then(|| Arc::new(Memory::new(options.cache_bytes, in_memory.is_none())));
        let (writes, queue) = mpsc::channel(writer::QUEUE);
        tokio::spawn(writer::run(writer.clone(), memory.clone(), queue));
        Self {
            reader,
            writer,
            writes,
            memory,
            location,
            _in_memory: in_memory,
        }
    }

    /// The memory, when it may answer now.
    fn memory(&self) -> Option<&Memory> {
        self.memory.as_deref().and_then(Memory::usable)
    }

    /// Drops what the memory holds; every change to users or tokens calls this after it commits.
    fn forget(&self) {
        if let Some(memory) = &self.memory {
            memory.forget();
        }
    }

    fn pool(size: u32, acquire_timeout: Duration) -> SqlitePoolOptions {
        SqlitePoolOptions::new()
            .max_connections(size)
            // A connection to a file does not go stale; a test would cost a round trip to its
            // thread on every acquire.
            .test_before_acquire(false)
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
        let pools = if self._in_memory.is_some() {
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

    pub(super) async fn token_owner(
        &self,
        digest: &TokenDigest,
    ) -> sqlx::Result<Option<Arc<User>>> {
        let memory = self.memory();
        if let Some(user) = memory.and_then(|memory| memory.token_owner(digest)) {
            return Ok(Some(user));
        }
        let ticket = memory.map(Memory::accounts_ticket);
        let row = sqlx::query(
            "SELECT u.account_id, u.email, u.display_name, u.admin, u.active
             FROM api_tokens t JOIN users u ON u.account_id = t.account_id
             WHERE t.token_hash = $1",
        )
        .bind(digest.as_bytes())
        .fetch_optional(&self.reader)
        .await?;
        let user = row
            .map(|row| user_from_row(&row).map(Arc::new))
            .transpose()?;
        // Unknown tokens are not remembered: a token created elsewhere must work at once.
        if let (Some(memory), Some(ticket), Some(user)) = (memory, ticket, &user) {
            memory.fill_token_owner(ticket, *digest, user.clone());
        }
        Ok(user)
    }

    pub(super) async fn account_by_email(
        &self,
        email_key: &str,
    ) -> sqlx::Result<Option<Arc<Account>>> {
        let memory = self.memory();
        if let Some(account) = memory.and_then(|memory| memory.account(email_key)) {
            return Ok(Some(account));
        }
        let ticket = memory.map(Memory::accounts_ticket);
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
        let account = Arc::new(Account {
            user: Arc::new(user_from_row(first)?),
            digests,
        });
        if let (Some(memory), Some(ticket)) = (memory, ticket) {
            memory.fill_account(ticket, email_key, account.clone());
        }
        Ok(Some(account))
    }

    pub(super) async fn user(&self, account_id: &str) -> sqlx::Result<Option<User>> {
        let memory = self.memory();
        if let Some(user) = memory.and_then(|memory| memory.user(account_id)) {
            return Ok(user);
        }
        let ticket = memory.map(Memory::accounts_ticket);
        let row = sqlx::query(
            "SELECT account_id, email, display_name, admin, active FROM users WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&self.reader)
        .await?;
        let user = row.map(|row| user_from_row(&row)).transpose()?;
        if let (Some(memory), Some(ticket)) = (memory, ticket) {
            memory.fill_user(ticket, account_id, user.clone());
        }
        Ok(user)
    }

    pub(super) async fn user_exists(&self, account_id: &str) -> sqlx::Result<bool> {
        Ok(self.user(account_id).await?.is_some())
    }

    pub(super) async fn user_count(&self) -> sqlx::Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.reader)
            .await?;
        Ok(count.unsigned_abs())
    }

    pub(super) async fn property_keys(&self, account_id: &str) -> sqlx::Result<Arc<[String]>> {
        let memory = self.memory();
        if let Some(keys) = memory.and_then(|memory| memory.key_list(account_id)) {
            return Ok(keys);
        }
        let ticket = memory.map(|memory| memory.account_ticket(account_id));
        let keys: Arc<[String]> =
            sqlx::query_scalar("SELECT key FROM properties WHERE account_id = $1 ORDER BY key")
                .bind(account_id)
                .fetch_all(&self.reader)
                .await?
                .into();
        if let (Some(memory), Some(ticket)) = (memory, ticket) {
            memory.fill_key_list(ticket, account_id, keys.clone());
        }
        Ok(keys)
    }

    pub(super) async fn property(
        &self,
        account_id: &str,
        key: &PropertyKey,
    ) -> sqlx::Result<Option<PropertyValue>> {
        let memory = self.memory();
        if let Some(value) = memory.and_then(|memory| memory.value(account_id, key.as_str())) {
            return Ok(value);
        }
        let ticket = memory.map(|memory| memory.account_ticket(account_id));
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM properties WHERE account_id = $1 AND key = $2")
                .bind(account_id)
                .bind(key.as_str())
                .fetch_optional(&self.reader)
                .await?;
        let value = value.map(PropertyValue::from_stored);
        if let (Some(memory), Some(ticket)) = (memory, ticket) {
            memory.fill_value(ticket, account_id, key.as_str(), value.clone());
        }
        Ok(value)
    }

    /// Queues the write for the group committer and waits until it is committed.
    pub(super) async fn set_property(
        &self,
        account_id: &str,
        key: &PropertyKey,
        value: &PropertyValue,
    ) -> sqlx::Result<Option<Written>> {
        let (done, outcome) = oneshot::channel();
        self.queue(Write::Set {
            account_id: account_id.to_owned(),
            key: key.clone(),
            value: value.clone(),
            done,
        })
        .await?;
        outcome.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }

    pub(super) async fn delete_property(
        &self,
        account_id: &str,
        key: &PropertyKey,
    ) -> sqlx::Result<bool> {
        let (done, outcome) = oneshot::channel();
        self.queue(Write::Delete {
            account_id: account_id.to_owned(),
            key: key.clone(),
            done,
        })
        .await?;
        outcome.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }

    async fn queue(&self, write: Write) -> sqlx::Result<()> {
        self.writes
            .send(write)
            .await
            .map_err(|_| sqlx::Error::WorkerCrashed)
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
        self.forget();
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
