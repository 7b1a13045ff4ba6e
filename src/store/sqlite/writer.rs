//! Group commit: one task owns the SQLite writes and commits all that are waiting in one
//! transaction, so many writers share one fsync.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Acquire as _, Row as _, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::memory::{CHECK_EVERY_MS, Memory};
use crate::domain::{PropertyKey, PropertyValue, Written};

/// Most writes in one transaction.
const MOST_PER_COMMIT: usize = 256;
/// Writes waiting for the writer; past this, senders wait for room.
pub(super) const QUEUE: usize = 1_024;
/// Rows per statement: a group is cut into these sizes, so few statements are ever prepared.
const CHUNKS: [usize; 8] = [128, 64, 32, 16, 8, 4, 2, 1];

/// One write and where its outcome goes.
pub(super) enum Write {
    Set {
        account_id: String,
        key: PropertyKey,
        value: PropertyValue,
        done: oneshot::Sender<sqlx::Result<Option<Written>>>,
    },
    Delete {
        account_id: String,
        key: PropertyKey,
        done: oneshot::Sender<sqlx::Result<bool>>,
    },
}

impl Write {
    fn target(&self) -> (&str, &str) {
        match self {
            Self::Set {
                account_id, key, ..
            }
            | Self::Delete {
                account_id, key, ..
            } => (account_id, key.as_str()),
        }
    }

    fn is_set(&self) -> bool {
        matches!(self, Self::Set { .. })
    }
}

/// What one write did, once committed.
#[derive(Clone, Copy)]
enum Outcome {
    Set(Option<Written>),
    Delete(bool),
}

/// Runs the writer until every sender is gone.
pub(super) async fn run(
    pool: SqlitePool,
    memory: Option<Arc<Memory>>,
    mut queue: mpsc::Receiver<Write>,
) {
    let mut data_version = None;
    let mut batch = Vec::with_capacity(MOST_PER_COMMIT);
    loop {
        let watching = memory.as_deref().is_some_and(Memory::watching);
        let next = tokio::select! {
            biased;
            write = queue.recv() => match write {
                Some(write) => Some(write),
                None => return,
            },
            () = tokio::time::sleep(Duration::from_millis(CHECK_EVERY_MS)), if watching => None,
            () = wake(memory.as_deref()), if !watching => None,
        };
        if let Some(first) = next {
            batch.push(first);
            while batch.len() < MOST_PER_COMMIT {
                match queue.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            commit(&pool, memory.as_deref(), &mut batch).await;
        }
        if let Some(memory) = memory.as_deref()
            && memory.watching()
            && memory.due_for_check()
        {
            look_for_others(&pool, memory, &mut data_version).await;
        }
    }
}

async fn wake(memory: Option<&Memory>) {
    match memory {
        Some(memory) => memory.wake.notified().await,
        None => std::future::pending().await,
    }
}

/// `PRAGMA data_version` on the writer's own connection changes only when another connection
/// commits: another process, or a second store on the same file.
async fn look_for_others(pool: &SqlitePool, memory: &Memory, last: &mut Option<i64>) {
    let at = memory.now_ms();
    let version = match pool.acquire().await {
        Ok(mut conn) => {
            sqlx::query_scalar::<_, i64>("PRAGMA data_version")
                .fetch_one(&mut *conn)
                .await
        }
        Err(error) => Err(error),
    };
    match version {
        Ok(version) => {
            if last.is_some_and(|last| last != version) {
                memory.forget();
            }
            *last = Some(version);
            memory.verified(at);
        }
        Err(error) => tracing::warn!(%error, "cannot look for changes by other processes"),
    }
}

/// Commits `batch` in one transaction and answers each write. If the transaction fails, each
/// write is tried alone, so one write's fault is not every write's.
async fn commit(pool: &SqlitePool, memory: Option<&Memory>, batch: &mut Vec<Write>) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(error) => {
            for write in batch.drain(..) {
                settle(memory, write, Err(copy_of(&error)));
            }
            return;
        }
    };
    match apply(&mut conn, batch).await {
        // The memory learns of the commit while this connection is still held, so a later
        // writer (an admin change, say) cannot commit and forget before it.
        Ok(outcomes) => {
            for (write, outcome) in batch.drain(..).zip(outcomes) {
                settle(memory, write, Ok(outcome));
            }
        }
        Err(error) if batch.len() == 1 => {
            if let Some(write) = batch.pop() {
                settle(memory, write, Err(error));
            }
        }
        Err(error) => {
            tracing::warn!(%error, writes = batch.len(), "group commit failed; committing one by one");
            for write in batch.drain(..) {
                let outcome = apply(&mut conn, std::slice::from_ref(&write)).await;
                settle(memory, write, outcome.map(|outcomes| outcomes[0]));
            }
        }
    }
}

/// An error for one more waiting write: outages stay outages (503), the rest say what failed.
fn copy_of(error: &sqlx::Error) -> sqlx::Error {
    match error {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed => sqlx::Error::WorkerCrashed,
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// Tells the memory what a committed write did, then answers the writer.
fn settle(memory: Option<&Memory>, write: Write, outcome: sqlx::Result<Outcome>) {
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
            if let (Some(memory), Some(written)) = (memory, written) {
                let created = written == Written::Created;
                memory.wrote(&account_id, key.as_str(), value, created);
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
            if let Some(memory) = memory {
                memory.deleted(&account_id, key.as_str(), existed);
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

fn mismatch() -> sqlx::Error {
    sqlx::Error::Protocol("a write's outcome is of the other kind".into())
}

/// Runs every write in one IMMEDIATE transaction; the outcomes line up with `writes`.
async fn apply(conn: &mut PoolConnection<Sqlite>, writes: &[Write]) -> sqlx::Result<Vec<Outcome>> {
    let mut tx = sqlx::Connection::begin_with(conn.acquire().await?, "BEGIN IMMEDIATE").await?;
    let mut outcomes = vec![None; writes.len()];
    let mut start = 0;
    while start < writes.len() {
        let end = group_end(writes, start);
        let mut chunk_start = start;
        while chunk_start < end {
            let size = CHUNKS
                .into_iter()
                .find(|&size| size <= end - chunk_start)
                .unwrap_or(1);
            let chunk = &writes[chunk_start..chunk_start + size];
            if chunk[0].is_set() {
                set_rows(&mut tx, chunk, &mut outcomes[chunk_start..]).await?;
            } else {
                delete_rows(&mut tx, chunk, &mut outcomes[chunk_start..]).await?;
            }
            chunk_start += size;
        }
        start = end;
    }
    tx.commit().await?;
    Ok(outcomes
        .into_iter()
        .zip(writes)
        .map(|(outcome, write)| {
            outcome.unwrap_or(if write.is_set() {
                // No row came back: the user does not exist.
                Outcome::Set(None)
            } else {
                Outcome::Delete(false)
            })
        })
        .collect())
}

/// Where the group starting at `start` ends: writes of one kind, each key at most once, so a
/// statement's returned rows name their write unambiguously.
fn group_end(writes: &[Write], start: usize) -> usize {
    let kind = writes[start].is_set();
    let mut seen = HashSet::new();
    writes[start..]
        .iter()
        .position(|write| write.is_set() != kind || !seen.insert(write.target()))
        .map_or(writes.len(), |offset| start + offset)
}

static UPSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    CHUNKS
        .iter()
        .map(|&rows| {
            format!(
                "INSERT INTO properties (account_id, key, value)
                 SELECT column1, column2, column3 FROM (VALUES {})
                 WHERE EXISTS (SELECT 1 FROM users WHERE users.account_id = column1)
                 ON CONFLICT (account_id, key)
                 DO UPDATE SET value = excluded.value, revision = properties.revision + 1
                 RETURNING account_id, key, revision",
                vec!["(?, ?, ?)"; rows].join(", ")
            )
        })
        .collect()
});

static DELETES: LazyLock<Vec<String>> = LazyLock::new(|| {
    CHUNKS
        .iter()
        .map(|&rows| {
            format!(
                "DELETE FROM properties WHERE (account_id, key) IN (VALUES {})
                 RETURNING account_id, key",
                vec!["(?, ?)"; rows].join(", ")
            )
        })
        .collect()
});

fn statement(statements: &'static [String], rows: usize) -> &'static str {
    let index = CHUNKS.iter().position(|&size| size == rows).unwrap_or(0);
    &statements[index]
}

async fn set_rows(
    conn: &mut SqliteConnection,
    chunk: &[Write],
    outcomes: &mut [Option<Outcome>],
) -> sqlx::Result<()> {
    let mut query = sqlx::query(statement(&UPSERTS, chunk.len()));
    for write in chunk {
        if let Write::Set {
            account_id,
            key,
            value,
            ..
        } = write
        {
            query = query
                .bind(account_id.as_str())
                .bind(key.as_str())
                .bind(value.as_str());
        }
    }
    for row in query.fetch_all(conn).await? {
        let index = position(chunk, row.try_get(0)?, row.try_get(1)?)?;
        let revision: i64 = row.try_get(2)?;
        let written = if revision == 0 {
            Written::Created
        } else {
            Written::Updated
        };
        outcomes[index] = Some(Outcome::Set(Some(written)));
    }
    Ok(())
}

async fn delete_rows(
    conn: &mut SqliteConnection,
    chunk: &[Write],
    outcomes: &mut [Option<Outcome>],
) -> sqlx::Result<()> {
    let mut query = sqlx::query(statement(&DELETES, chunk.len()));
    for write in chunk {
        let (account_id, key) = write.target();
        query = query.bind(account_id).bind(key);
    }
    for row in query.fetch_all(conn).await? {
        let index = position(chunk, row.try_get(0)?, row.try_get(1)?)?;
        outcomes[index] = Some(Outcome::Delete(true));
    }
    Ok(())
}

fn position(chunk: &[Write], account_id: &str, key: &str) -> sqlx::Result<usize> {
    chunk
        .iter()
        .position(|write| write.target() == (account_id, key))
        .ok_or_else(|| sqlx::Error::Protocol("a written row matches no write".into()))
}
