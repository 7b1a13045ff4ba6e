//! Group commit: one task owns the SQLite writes and commits all that are waiting in one
//! transaction, so many writers share one fsync. How a batch becomes statements is in `batch.rs`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::batch::{Outcome, apply};
use super::cache::{POLL_EVERY_MS, ReadCache};
use crate::domain::{PropertyKey, PropertyValue, SiteKey, Written};
use crate::store::{Error, Result};

/// Most writes in one transaction.
const MOST_PER_COMMIT: usize = 256;
/// Writes waiting for the writer; past this, senders wait for room.
pub(super) const QUEUE: usize = 1_024;

/// One write: which property, and what happens to it.
pub(super) struct Write {
    pub(super) site: SiteKey,
    pub(super) account_id: String,
    pub(super) key: PropertyKey,
    pub(super) change: Change,
}

/// What a write does to its property, and where its outcome goes.
pub(super) enum Change {
    Set {
        value: PropertyValue,
        done: oneshot::Sender<Result<Option<Written>>>,
    },
    Delete {
        done: oneshot::Sender<Result<bool>>,
    },
}

impl Write {
    pub(super) fn target(&self) -> (SiteKey, &str, &str) {
        (self.site, &self.account_id, self.key.as_str())
    }

    pub(super) fn is_set(&self) -> bool {
        matches!(self.change, Change::Set { .. })
    }

    /// Whether the request that sent this write stopped waiting for its outcome.
    fn is_abandoned(&self) -> bool {
        match &self.change {
            Change::Set { done, .. } => done.is_closed(),
            Change::Delete { done } => done.is_closed(),
        }
    }
}

/// Runs the writer until every sender is gone. Between writes, while requests come in, it
/// also has the cache poll for changes by other processes.
pub(super) async fn run(
    pool: SqlitePool,
    cache: Arc<ReadCache>,
    mut queue: mpsc::Receiver<Write>,
    connections: Option<Arc<AtomicU64>>,
) {
    let mut data_version = None;
    let mut batch = Vec::with_capacity(MOST_PER_COMMIT);
    loop {
        let polling = cache.polling();
        let next = tokio::select! {
            biased;
            write = queue.recv() => match write {
                Some(write) => Some(write),
                None => return,
            },
            () = tokio::time::sleep(Duration::from_millis(POLL_EVERY_MS)), if polling => None,
            () = cache.poll_requested(), if !polling => None,
        };
        if let Some(first) = next {
            batch.push(first);
            while batch.len() < MOST_PER_COMMIT {
                match queue.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            commit(&pool, &cache, &mut batch).await;
        }
        if let Some(connections) = connections.as_deref()
            && cache.polling()
        {
            cache
                .poll_other_writers(&pool, connections, &mut data_version)
                .await;
        }
    }
}

/// Commits `batch` in one transaction and answers each write. If the transaction fails for a
/// reason one write could cause, each write is tried alone, so one write's fault is not every
/// write's; a database out of reach or full fails them all at once. Writes whose request has
/// gone (timed out, or its client left) are dropped unapplied: nobody was told they happened.
async fn commit(pool: &SqlitePool, cache: &ReadCache, batch: &mut Vec<Write>) {
    batch.retain(|write| !write.is_abandoned());
    if batch.is_empty() {
        return;
    }
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(error) => return fail_all(cache, batch, &error.into()),
    };
    match apply(&mut conn, batch).await {
        // The cache learns of the commit while this connection is still held, so a later
        // writer (an admin change, say) cannot commit and invalidate before it.
        Ok(outcomes) => {
            for (write, outcome) in batch.drain(..).zip(outcomes) {
                answer(cache, write, Ok(outcome));
            }
        }
        // What failed may have been committed all the same (an error read after a statement
        // ran, say): nothing the cache holds is trusted on the strength of it.
        Err(error) if batch.len() == 1 => {
            cache.invalidate_all();
            if let Some(write) = batch.pop() {
                answer(cache, write, Err(error.into()));
            }
        }
        Err(error) => {
            cache.invalidate_all();
            let error = Error::from(error);
            if error.is_unavailable() || error.is_full() {
                return fail_all(cache, batch, &error);
            }
            tracing::warn!(
                ?error,
                writes = batch.len(),
                "group commit failed; committing one by one"
            );
            for write in batch.drain(..) {
                if write.is_abandoned() {
                    continue;
                }
                let outcome = apply(&mut conn, std::slice::from_ref(&write)).await;
                if outcome.is_err() {
                    cache.invalidate_all();
                }
                answer(
                    cache,
                    write,
                    outcome
                        .and_then(|outcomes| {
                            outcomes.first().copied().ok_or_else(|| {
                                sqlx::Error::Protocol("a write returned no outcome".into())
                            })
                        })
                        .map_err(Error::from),
                );
            }
        }
    }
}

/// Answers every write of `batch` with `error`, none of them applied.
fn fail_all(cache: &ReadCache, batch: &mut Vec<Write>, error: &Error) {
    for write in batch.drain(..) {
        answer(cache, write, Err(error.clone()));
    }
}

/// Tells the cache what a committed write did, then answers the request that made it.
fn answer(cache: &ReadCache, write: Write, outcome: Result<Outcome>) {
    let (site, account_id, key) = (write.site, write.account_id.as_str(), write.key.as_str());
    match (write.change, outcome) {
        (Change::Set { value, done }, Ok(Outcome::Set(written))) => {
            if let Some(written) = written {
                cache.after_write(site, account_id, key, value, written == Written::Created);
            }
            let _ = done.send(Ok(written));
        }
        (Change::Delete { done }, Ok(Outcome::Delete(existed))) => {
            cache.after_delete(site, account_id, key, existed);
            let _ = done.send(Ok(existed));
        }
        (Change::Set { done, .. }, outcome) => {
            let _ = done.send(outcome.and_then(|_| Err(mismatch())));
        }
        (Change::Delete { done }, outcome) => {
            let _ = done.send(outcome.and_then(|_| Err(mismatch())));
        }
    }
}

fn mismatch() -> Error {
    sqlx::Error::Protocol("a write's outcome is of the other kind".into()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock;
    use crate::store::sqlite::batch::tests::{database, stored, write};

    fn value(text: &str) -> PropertyValue {
        PropertyValue::from_stored(text.to_owned())
    }

    #[tokio::test]
    async fn a_write_whose_request_has_gone_is_not_applied() {
        let pool = database().await;
        let cache = ReadCache::new(0, false, clock::system());
        let (abandoned, gone) = oneshot::channel();
        drop(gone);
        let (awaited, outcome) = oneshot::channel();
        let mut batch = vec![
            write(
                "a",
                "gone",
                Change::Set {
                    value: value("1"),
                    done: abandoned,
                },
            ),
            write(
                "a",
                "kept",
                Change::Set {
                    value: value("2"),
                    done: awaited,
                },
            ),
        ];
        commit(&pool, &cache, &mut batch).await;
        assert!(matches!(outcome.await, Ok(Ok(Some(Written::Created)))));
        assert_eq!(stored(&pool).await, [("kept".to_owned(), "2".to_owned())]);
    }
}
