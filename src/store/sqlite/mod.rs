//! The SQLite backend: one writer connection, a pool of readers, WAL and full fsync on commit.
//! Here: the operations of the API, through the cache and the writer; opening is `open.rs`.

mod admin;
mod batch;
mod cache;
mod open;
mod writer;

use std::sync::Arc;

use sqlx::Sqlite;
use sqlx::sqlite::{SqlitePool, SqliteQueryResult};

use cache::ReadCache;
use open::InMemoryKeeper;
use tokio::sync::{mpsc, oneshot};
use writer::{Change, Write};

use super::oauth::Access;
use super::sql::{Dialect, connection};
use super::{Account, Error, Result, TokenOwner};
use crate::credentials::TokenDigest;
use crate::domain::{PropertyKey, PropertyValue, SiteKey, User, Written};

type Sql = super::sql::Sql<Sqlite>;

impl Dialect for Sqlite {
    const CREATED_AT: &'static str = "CAST(t.created_at AS TEXT)";

    fn affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// SQLite through sqlx. Writes go through a single connection, so writers never meet
/// `SQLITE_BUSY` inside one process; other processes on the same file wait on the busy timeout.
/// Property writes queue for one task that commits them in groups (`writer.rs`); reads may be
/// answered from a cache (`cache.rs`).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    writes: mpsc::Sender<Write>,
    cache: Arc<ReadCache>,
    location: String,
    /// Set for an in-memory database, whose reader and writer are one pool.
    keeper: Option<InMemoryKeeper>,
}

impl SqliteStore {
    pub(super) fn location(&self) -> String {
        self.location.clone()
    }

    /// The readers and the writer, for statements of other areas (`store/oauth.rs`).
    pub(super) fn pools(&self) -> (&SqlitePool, &SqlitePool) {
        (&self.reader, &self.writer)
    }

    /// An OAuth access token's grant, held or read by `read` (`store/oauth.rs`).
    pub(super) async fn access_through_cache<F, R>(
        &self,
        site: SiteKey,
        token: &TokenDigest,
        read: F,
    ) -> sqlx::Result<Option<Arc<Access>>>
    where
        F: FnOnce() -> R,
        R: Future<Output = sqlx::Result<Option<Arc<Access>>>>,
    {
        self.cache.access(site, token, read).await
    }

    pub(super) fn pool_usage(&self) -> (u32, u32) {
        // In memory, reader and writer are one pool.
        let writer = self.keeper.is_none().then_some(&self.writer);
        let pools = std::iter::once(&self.reader).chain(writer);
        pools.fold((0, 0), |(in_use, idle), pool| {
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

    // Reads go through the cache, handing it the read on a reader connection to run on a miss.

    pub(super) async fn token_owner(
        &self,
        site: SiteKey,
        digest: &TokenDigest,
    ) -> Result<Option<Arc<TokenOwner>>> {
        let read = move || async move {
            Sql::token_owner(&mut *connection(&self.reader).await?, site, digest).await
        };
        Ok(self.cache.token_owner(site, digest, read).await?)
    }

    pub(super) async fn account_by_email(
        &self,
        site: SiteKey,
        email_key: &str,
    ) -> Result<Option<Arc<Account>>> {
        let read = move || async move {
            Sql::account_by_email(&mut *connection(&self.reader).await?, site, email_key).await
        };
        Ok(self.cache.account(site, email_key, read).await?)
    }

    pub(super) async fn user(&self, site: SiteKey, account_id: &str) -> Result<Option<User>> {
        let read = move || async move {
            Sql::user(&mut *connection(&self.reader).await?, site, account_id).await
        };
        Ok(self.cache.user(site, account_id, read).await?)
    }

    /// One by one, each answered by [`SqliteStore::user`], whose answer the cache may hold.
    pub(super) async fn users_named(
        &self,
        site: SiteKey,
        account_ids: &[&str],
    ) -> Result<Vec<User>> {
        let mut found = Vec::with_capacity(account_ids.len());
        for account_id in account_ids {
            if let Some(user) = self.user(site, account_id).await? {
                found.push(user);
            }
        }
        Ok(found)
    }

    /// Answered by [`SqliteStore::user`], whose answer the cache may hold.
    pub(super) async fn user_exists(&self, site: SiteKey, account_id: &str) -> Result<bool> {
        Ok(self.user(site, account_id).await?.is_some())
    }

    pub(super) async fn user_count(&self, site: SiteKey) -> Result<u64> {
        Ok(Sql::user_count(&mut *connection(&self.reader).await?, site).await?)
    }

    pub(super) async fn property_keys(
        &self,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Arc<[String]>> {
        let read = move || async move {
            Sql::property_keys(&mut *connection(&self.reader).await?, site, account_id).await
        };
        Ok(self.cache.key_list(site, account_id, read).await?)
    }

    pub(super) async fn property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
    ) -> Result<Option<PropertyValue>> {
        let key = key.as_str();
        let read = move || async move {
            Sql::property(&mut *connection(&self.reader).await?, site, account_id, key).await
        };
        Ok(self.cache.value(site, account_id, key, read).await?)
    }

    pub(super) async fn set_property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
        value: &PropertyValue,
    ) -> Result<Option<Written>> {
        let value = value.clone();
        self.write(site, account_id, key, |done| Change::Set { value, done })
            .await
    }

    pub(super) async fn delete_property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
    ) -> Result<bool> {
        self.write(site, account_id, key, |done| Change::Delete { done })
            .await
    }

    /// Queues a write for the group committer and waits until it is committed.
    async fn write<T>(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
        change: impl FnOnce(oneshot::Sender<Result<T>>) -> Change,
    ) -> Result<T> {
        // The writer task is gone: the store is closing, or the task panicked.
        let crashed = || Error::from(sqlx::Error::WorkerCrashed);
        let (done, outcome) = oneshot::channel();
        let (account_id, key) = (account_id.to_owned(), key.clone());
        let write = Write {
            site,
            account_id,
            key,
            change: change(done),
        };
        self.writes.send(write).await.map_err(|_| crashed())?;
        outcome.await.map_err(|_| crashed())?
    }

    /// Ready while a reader answers and the writer task runs: without it no write lands.
    pub(super) async fn ready(&self) -> Result<()> {
        if self.writes.is_closed() {
            return Err(sqlx::Error::WorkerCrashed.into());
        }
        Ok(Sql::ready(&mut *connection(&self.reader).await?).await?)
    }

    /// A transaction on the writer that takes the write lock first, so another process on the
    /// same file makes it wait (busy timeout) instead of failing when a read turns into a write.
    pub(in crate::store) async fn begin_immediate(
        &self,
    ) -> sqlx::Result<sqlx::Transaction<'static, Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// Runs a change to users, tokens or everything, then drops what the cache holds: whatever
    /// the change did, nothing kept from before it is trusted. So also when the caller stops
    /// waiting (see [`Changing`]).
    async fn change<T>(&self, work: impl Future<Output = sqlx::Result<T>>) -> Result<T> {
        let changing = self.changing();
        let outcome = work.await;
        changing.done(true);
        Ok(outcome?)
    }

    /// A change about to run, for [`Changing::done`] once it is over.
    pub(in crate::store) fn changing(&self) -> Changing<'_> {
        Changing {
            store: self,
            running: true,
        }
    }
}

/// A change to users, tokens or everything that is running. sqlx runs a statement it has sent
/// to its end even when the future that sent it is dropped (a request timed out, its client
/// went away), so a change given up on may still commit; this process's own commits do not move
/// the `data_version` its cache polls. Dropped while running, it queues a ping on the writer
/// behind that statement, and drops what the cache holds once the ping is answered.
pub(in crate::store) struct Changing<'a> {
    store: &'a SqliteStore,
    running: bool,
}

impl Changing<'_> {
    /// The change is over; `forget` drops what the cache holds.
    pub(in crate::store) fn done(mut self, forget: bool) {
        self.running = false;
        if forget {
            self.store.cache.invalidate_all();
        }
    }
}

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (writer, cache) = (self.store.writer.clone(), Arc::clone(&self.store.cache));
        runtime.spawn(async move {
            if let Ok(mut connection) = writer.acquire().await {
                let _ = sqlx::Connection::ping(&mut *connection).await;
            }
            cache.invalidate_all();
        });
    }
}
