//! The SQLite backend: one writer connection, a pool of readers, WAL and full fsync on commit.

mod memory;
mod writer;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Connection as _, Sqlite, SqliteConnection};

use memory::Memory;
use tokio::sync::{mpsc, oneshot};
use writer::Write;

use super::admin::{PatchOutcome, Snapshot, TokenInfo, UserPatch};
use super::sql::Dialect;
use super::{Account, DatabaseOptions, Result, SeedData, SeedReport};
use crate::credentials::TokenDigest;
use crate::domain::{PropertyKey, PropertyValue, User, Written};

type Sql = super::sql::Sql<Sqlite>;

impl Dialect for Sqlite {
    const CREATED_AT: &'static str = "CAST(t.created_at AS TEXT)";

    fn affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

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
    pub(super) async fn connect(url: &str, options: &DatabaseOptions) -> sqlx::Result<Self> {
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

    pub(super) async fn migrate(&self) -> Result<()> {
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
                outcome => return Ok(outcome?),
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

    pub(super) async fn token_owner(&self, digest: &TokenDigest) -> Result<Option<Arc<User>>> {
        let memory = self.memory();
        if let Some(user) = memory.and_then(|memory| memory.token_owner(digest)) {
            return Ok(Some(user));
        }
        let ticket = memory.map(Memory::accounts_ticket);
        let user = Sql::token_owner(&mut *self.reader.acquire().await?, digest).await?;
        let user = user.map(Arc::new);
        // Unknown tokens are not remembered: a token created elsewhere must work at once.
        if let (Some(memory), Some(ticket), Some(user)) = (memory, ticket, &user) {
            memory.fill_token_owner(ticket, *digest, user.clone());
        }
        Ok(user)
    }

    pub(super) async fn account_by_email(&self, email_key: &str) -> Result<Option<Arc<Account>>> {
        let memory = self.memory();
        if let Some(account) = memory.and_then(|memory| memory.account(email_key)) {
            return Ok(Some(account));
        }
        let ticket = memory.map(Memory::accounts_ticket);
        let account = Sql::account_by_email(&mut *self.reader.acquire().await?, email_key).await?;
        if let (Some(memory), Some(ticket), Some(account)) = (memory, ticket, &account) {
            memory.fill_account(ticket, email_key, account.clone());
        }
        Ok(account)
    }

    pub(super) async fn user(&self, account_id: &str) -> Result<Option<User>> {
        let memory = self.memory();
        if let Some(user) = memory.and_then(|memory| memory.user(account_id)) {
            return Ok(user);
        }
        let ticket = memory.map(Memory::accounts_ticket);
        let user = Sql::user(&mut *self.reader.acquire().await?, account_id).await?;
        if let (Some(memory), Some(ticket)) = (memory, ticket) {
            memory.fill_user(ticket, account_id, user.clone());
        }
        Ok(user)
    }

    /// Answered by [`SqliteStore::user`], whose answer the memory may hold.
    pub(super) async fn user_exists(&self, account_id: &str) -> Result<bool> {
        Ok(self.user(account_id).await?.is_some())
    }

    pub(super) async fn user_count(&self) -> Result<u64> {
        Ok(Sql::user_count(&mut *self.reader.acquire().await?).await?)
    }

    pub(super) async fn property_keys(&self, account_id: &str) -> Result<Arc<[String]>> {
        let memory = self.memory();
        if let Some(keys) = memory.and_then(|memory| memory.key_list(account_id)) {
            return Ok(keys);
        }
        let ticket = memory.map(|memory| memory.account_ticket(account_id));
        let keys = Sql::property_keys(&mut *self.reader.acquire().await?, account_id).await?;
        if let (Some(memory), Some(ticket)) = (memory, ticket) {
            memory.fill_key_list(ticket, account_id, keys.clone());
        }
        Ok(keys)
    }

    pub(super) async fn property(
        &self,
        account_id: &str,
        key: &PropertyKey,
    ) -> Result<Option<PropertyValue>> {
        let memory = self.memory();
        let key = key.as_str();
        if let Some(value) = memory.and_then(|memory| memory.value(account_id, key)) {
            return Ok(value);
        }
        let ticket = memory.map(|memory| memory.account_ticket(account_id));
        let value = Sql::property(&mut *self.reader.acquire().await?, account_id, key).await?;
        if let (Some(memory), Some(ticket)) = (memory, ticket) {
            memory.fill_value(ticket, account_id, key, value.clone());
        }
        Ok(value)
    }

    /// Queues the write for the group committer and waits until it is committed.
    pub(super) async fn set_property(
        &self,
        account_id: &str,
        key: &PropertyKey,
        value: &PropertyValue,
    ) -> Result<Option<Written>> {
        let (done, outcome) = oneshot::channel();
        self.queue(Write::Set {
            account_id: account_id.to_owned(),
            key: key.clone(),
            value: value.clone(),
            done,
        })
        .await?;
        Ok(outcome.await.map_err(|_| sqlx::Error::WorkerCrashed)??)
    }

    pub(super) async fn delete_property(
        &self,
        account_id: &str,
        key: &PropertyKey,
    ) -> Result<bool> {
        let (done, outcome) = oneshot::channel();
        self.queue(Write::Delete {
            account_id: account_id.to_owned(),
            key: key.clone(),
            done,
        })
        .await?;
        Ok(outcome.await.map_err(|_| sqlx::Error::WorkerCrashed)??)
    }

    async fn queue(&self, write: Write) -> sqlx::Result<()> {
        self.writes
            .send(write)
            .await
            .map_err(|_| sqlx::Error::WorkerCrashed)
    }

    pub(super) async fn apply_seed(&self, seed: &SeedData) -> Result<SeedReport> {
        self.changed(Sql::apply_seed(self.begin_immediate().await?, seed).await)
    }

    pub(super) async fn users(&self) -> Result<Vec<User>> {
        Ok(Sql::users(&mut *self.reader.acquire().await?).await?)
    }

    pub(super) async fn update_user(
        &self,
        account_id: &str,
        patch: &UserPatch,
    ) -> Result<PatchOutcome> {
        self.changed(Sql::update_user(&mut *self.writer.acquire().await?, account_id, patch).await)
    }

    pub(super) async fn delete_user(&self, account_id: &str) -> Result<bool> {
        self.changed(Sql::delete_user(&mut *self.writer.acquire().await?, account_id).await)
    }

    pub(super) async fn add_token(
        &self,
        account_id: &str,
        digest: &TokenDigest,
    ) -> Result<Option<String>> {
        self.changed(Sql::add_token(&mut *self.writer.acquire().await?, account_id, digest).await)
    }

    pub(super) async fn tokens(&self, account_id: &str) -> Result<Option<Vec<TokenInfo>>> {
        Ok(Sql::tokens(&mut *self.reader.acquire().await?, account_id).await?)
    }

    pub(super) async fn revoke_token(&self, account_id: &str, id: &str) -> Result<bool> {
        self.changed(Sql::revoke_token(&mut *self.writer.acquire().await?, account_id, id).await)
    }

    pub(super) async fn reset(&self, everything: bool) -> Result<()> {
        self.changed(Sql::reset(self.begin_immediate().await?, everything).await)
    }

    /// Read under the write lock, so no write lands between its three reads.
    pub(super) async fn snapshot(&self) -> Result<Snapshot> {
        Ok(Sql::snapshot(self.begin_immediate().await?).await?)
    }

    pub(super) async fn restore(&self, snapshot: &Snapshot) -> Result<()> {
        self.changed(Sql::restore(self.begin_immediate().await?, snapshot).await)
    }

    pub(super) async fn ready(&self) -> Result<()> {
        Ok(Sql::ready(&mut *self.reader.acquire().await?).await?)
    }

    /// A transaction on the writer that takes the write lock first, so another process on the
    /// same file makes it wait (busy timeout) instead of failing when a read turns into a write.
    async fn begin_immediate(&self) -> sqlx::Result<sqlx::Transaction<'static, Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// Passes on the outcome of a change to users, tokens or everything, after dropping what
    /// the memory holds: whatever the change did, nothing remembered from before it is trusted.
    fn changed<T>(&self, outcome: sqlx::Result<T>) -> Result<T> {
        self.forget();
        Ok(outcome?)
    }
}
