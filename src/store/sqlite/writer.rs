//! Group commit: one task owns the SQLite writes and commits all that are waiting in one
//! transaction, so many writers share one fsync. How a batch becomes statements is [`batch`].

use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::batch::{Outcome, apply};
use super::cache::{POLL_EVERY_MS, ReadCache};
use crate::domain::{PropertyKey, PropertyValue, Written};
use crate::store::{Error, Result};

/// Most writes in one transaction.
const MOST_PER_COMMIT: usize = 256;
/// Writes waiting for the writer; past this, senders wait for room.
pub(super) const QUEUE: usize = 1_024;

/// One write and where its outcome goes.
pub(super) enum Write {
    Set {
        account_id: String,
        key: PropertyKey,
        value: PropertyValue,
        done: oneshot::Sender<Result<Option<Written>>>,
    },
    Delete {
        account_id: String,
        key: PropertyKey,
        done: oneshot::Sender<Result<bool>>,
    },
}

impl Write {
    pub(super) fn target(&self) -> (&str, &str) {
        match self {
            Self::Set {
                account_id, key, ..
            }
            | Self::Delete {
                account_id, key, ..
            } => (account_id, key.as_str()),
        }
    }

    pub(super) fn is_set(&self) -> bool {
        matches!(self, Self::Set { .. })
    }
}

/// Runs the writer until every sender is gone. Between writes, while requests come in, it
/// also has the cache poll for changes by other processes.
pub(super) async fn run(
    pool: SqlitePool,
    cache: Option<Arc<ReadCache>>,
    mut queue: mpsc::Receiver<Write>,
) {
    let mut data_version = None;
    let mut batch = Vec::with_capacity(MOST_PER_COMMIT);
    let cache = cache.as_deref();
    loop {
        let polling = cache.is_some_and(ReadCache::polling);
        let next = tokio::select! {
            biased;
            write = queue.recv() => match write {
                Some(write) => Some(write),
                None => return,
            },
            () = tokio::time::sleep(Duration::from_millis(POLL_EVERY_MS)), if polling => None,
            () = poll_requested(cache), if !polling => None,
        };
        if let Some(first) = next {
            batch.push(first);
            while batch.len() < MOST_PER_COMMIT {
                match queue.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            commit(&pool, cache, &mut batch).await;
        }
        if let Some(cache) = cache.filter(|cache| cache.polling()) {
            cache.poll_other_writers(&pool, &mut data_version).await;
        }
    }
}

async fn poll_requested(cache: Option<&ReadCache>) {
    match cache {
        Some(cache) => cache.poll_requested().await,
        None => std::future::pending().await,
    }
}

/// Commits `batch` in one transaction and answers each write. If the transaction fails, each
/// write is tried alone, so one write's fault is not every write's.
async fn commit(pool: &SqlitePool, cache: Option<&ReadCache>, batch: &mut Vec<Write>) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(error) => {
            let error = Error::from(error);
            for write in batch.drain(..) {
                answer(cache, write, Err(error.clone()));
            }
            return;
        }
    };
    match apply(&mut conn, batch).await {
        // The cache learns of the commit while this connection is still held, so a later
        // writer (an admin change, say) cannot commit and invalidate before it.
        Ok(outcomes) => {
            for (write, outcome) in batch.drain(..).zip(outcomes) {
                answer(cache, write, Ok(outcome));
            }
        }
        Err(error) if batch.len() == 1 => {
            if let Some(write) = batch.pop() {
                answer(cache, write, Err(error.into()));
            }
        }
        Err(error) => {
            tracing::warn!(%error, writes = batch.len(), "group commit failed; committing one by one");
            for write in batch.drain(..) {
                let outcome = apply(&mut conn, std::slice::from_ref(&write)).await;
                answer(
                    cache,
                    write,
                    outcome.map(|outcomes| outcomes[0]).map_err(Error::from),
                );
            }
        }
    }
}

/// Tells the cache what a committed write did, then answers the request that made it.
fn answer(cache: Option<&ReadCache>, write: Write, outcome: Result<Outcome>) {
    match (write, outcome) {
        (
            Write::Set {
                account_id,
                key,
                value,
                done,
            },
            Ok(Outcome::Set(written)),
        ) => {
            if let (Some(cache), Some(written)) = (cache, written) {
                let created = written == Written::Created;
                cache.after_write(&account_id, key.as_str(), value, created);
            }
            let _ = done.send(Ok(written));
        }
        (
            Write::Delete {
                account_id,
                key,
                done,
            },
            Ok(Outcome::Delete(existed)),
        ) => {
            if let Some(cache) = cache {
                cache.after_delete(&account_id, key.as_str(), existed);
            }
            let _ = done.send(Ok(existed));
        }
        (Write::Set { done, .. }, outcome) => {
            let _ = done.send(outcome.and_then(|_| Err(mismatch())));
        }
        (Write::Delete { done, .. }, outcome) => {
            let _ = done.send(outcome.and_then(|_| Err(mismatch())));
        }
    }
}

fn mismatch() -> Error {
    sqlx::Error::Protocol("a write's outcome is of the other kind".into()).into()
}
