//! Group commit: one task owns the SQLite writes and commits all that are waiting in one
//! transaction, so many writers share one fsync.

use std::collections::HashMap;
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
///
/// Consecutive writes of one kind form a group, and a group touches each key once: a key written
/// several times gets its last value, the first write learns from the database whether it
/// created the key, and the later ones updated it (as they would, run one after another). A key
/// deleted several times is deleted by the first; the later ones find nothing.
async fn apply(conn: &mut PoolConnection<Sqlite>, writes: &[Write]) -> sqlx::Result<Vec<Outcome>> {
    let mut tx = sqlx::Connection::begin_with(conn.acquire().await?, "BEGIN IMMEDIATE").await?;
    let mut outcomes = Vec::with_capacity(writes.len());
    let mut start = 0;
    while start < writes.len() {
        let kind = writes[start].is_set();
        let end = writes[start..]
            .iter()
            .position(|write| write.is_set() != kind)
            .map_or(writes.len(), |offset| start + offset);
        let group = &writes[start..end];
        // Each key once, in the order first written, with the value it is left with.
        let mut rows: Vec<Row<'_>> = Vec::with_capacity(group.len());
        let mut row_of: HashMap<(&str, &str), usize> = HashMap::with_capacity(group.len());
        for write in group {
            let (account_id, key) = write.target();
            let value = match write {
                Write::Set { value, .. } => value.as_str(),
                Write::Delete { .. } => "",
            };
            match row_of.get(&(account_id, key)) {
                Some(&row) => rows[row].value = value,
                None => {
                    row_of.insert((account_id, key), rows.len());
                    rows.push(Row {
                        account_id,
                        key,
                        value,
                    });
                }
            }
        }
        // Per row, what came back: the revision written, or 0 for a row deleted.
        let mut done: Vec<Option<i64>> = vec![None; rows.len()];
        let mut chunk_start = 0;
        while chunk_start < rows.len() {
            let size = CHUNKS
                .into_iter()
                .find(|&size| size <= rows.len() - chunk_start)
                .unwrap_or(1);
            let chunk = &rows[chunk_start..chunk_start + size];
            if kind {
                set_rows(&mut tx, chunk, &row_of, &mut done).await?;
            } else {
                delete_rows(&mut tx, chunk, &row_of, &mut done).await?;
            }
            chunk_start += size;
        }
        // Only the first write of a key learns from the database; the rest follow it.
        let mut answered = vec![false; rows.len()];
        for write in group {
            let row = row_of.get(&write.target()).copied();
            let first = row.is_some_and(|row| !std::mem::replace(&mut answered[row], true));
            let found = row.and_then(|row| done[row]);
            outcomes.push(match (kind, first, found) {
                // No row came back: the user does not exist.
                (true, _, None) => Outcome::Set(None),
                (true, true, Some(0)) => Outcome::Set(Some(Written::Created)),
                (true, _, Some(_)) => Outcome::Set(Some(Written::Updated)),
                (false, true, found) => Outcome::Delete(found.is_some()),
                (false, false, _) => Outcome::Delete(false),
            });
        }
        start = end;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// One row of a multi-row statement.
struct Row<'a> {
    account_id: &'a str,
    key: &'a str,
    value: &'a str,
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
    chunk: &[Row<'_>],
    row_of: &HashMap<(&str, &str), usize>,
    done: &mut [Option<i64>],
) -> sqlx::Result<()> {
    let mut query = sqlx::query(statement(&UPSERTS, chunk.len()));
    for row in chunk {
        query = query.bind(row.account_id).bind(row.key).bind(row.value);
    }
    for returned in query.fetch_all(conn).await? {
        let row = row_index(row_of, returned.try_get(0)?, returned.try_get(1)?)?;
        done[row] = Some(returned.try_get(2)?);
    }
    Ok(())
}

async fn delete_rows(
    conn: &mut SqliteConnection,
    chunk: &[Row<'_>],
    row_of: &HashMap<(&str, &str), usize>,
    done: &mut [Option<i64>],
) -> sqlx::Result<()> {
    let mut query = sqlx::query(statement(&DELETES, chunk.len()));
    for row in chunk {
        query = query.bind(row.account_id).bind(row.key);
    }
    for returned in query.fetch_all(conn).await? {
        let row = row_index(row_of, returned.try_get(0)?, returned.try_get(1)?)?;
        done[row] = Some(0);
    }
    Ok(())
}

fn row_index(
    row_of: &HashMap<(&str, &str), usize>,
    account_id: &str,
    key: &str,
) -> sqlx::Result<usize> {
    row_of
        .get(&(account_id, key))
        .copied()
        .ok_or_else(|| sqlx::Error::Protocol("a returned row matches no write".into()))
}
