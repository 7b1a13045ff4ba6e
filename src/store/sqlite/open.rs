//! Opening a SQLite store: its pools, the writer task, the checks made before the first
//! statement, and migrations.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection as _, SqliteConnection};
use tokio::sync::mpsc;

use super::SqliteStore;
use super::cache::ReadCache;
use super::writer;
use crate::store::{DatabaseOptions, Result};

/// Keeps an in-memory database alive by holding a connection to it for as long as the store
/// lives: the database vanishes when its last connection closes, and a pool may close its
/// connection (after a cancelled query, say).
#[derive(Debug, Clone)]
pub(super) struct InMemoryKeeper(#[allow(dead_code)] Arc<Mutex<SqliteConnection>>);

/// What the writer writes to: memory that only this store reaches, or a file that others may
/// write too, with a count of the writer connections made to it.
enum Writer {
    Memory(InMemoryKeeper),
    File(Arc<AtomicU64>),
}

impl SqliteStore {
    /// Opens (creating if missing) the database `url` names; `pool_size` readers sit beside the
    /// writer, since WAL lets them run while a write commits.
    pub(in crate::store) async fn connect(
        url: &str,
        options: &DatabaseOptions,
    ) -> sqlx::Result<Self> {
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
                Writer::Memory(InMemoryKeeper(Arc::new(Mutex::new(keeper)))),
            ));
        }
        let location = std::path::absolute(connect.get_filename())
            .unwrap_or_else(|_| connect.get_filename().to_owned())
            .display()
            .to_string();
        refuse_unwritable(connect.get_filename())?;
        // FULL makes every commit fsync the WAL: an acknowledged write survives power loss too.
        // After a checkpoint the WAL file is cut back to 64 MiB, so that one large import does
        // not keep the disk it took.
        let writer_options = connect
            .clone()
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .pragma("journal_size_limit", "67108864");
        // `PRAGMA data_version` counts per connection: polls tell a new writer connection by this.
        let writer_connections = Arc::new(AtomicU64::new(0));
        let made = writer_connections.clone();
        let writer = Self::pool(1, acquire_timeout)
            .after_connect(move |_, _| {
                made.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Ok(()) })
            })
            .connect_with(writer_options)
            .await?;
        let reader = Self::pool(options.pool_size.max(1), acquire_timeout)
            .connect_with(connect.read_only(true))
            .await?;
        Ok(Self::start(
            reader,
            writer,
            options,
            location,
            Writer::File(writer_connections),
        ))
    }

    /// Starts the writer task over the pools.
    fn start(
        reader: SqlitePool,
        writer: SqlitePool,
        options: &DatabaseOptions,
        location: String,
        kind: Writer,
    ) -> Self {
        let (keeper, writer_connections) = match kind {
            Writer::Memory(keeper) => (Some(keeper), None),
            Writer::File(connections) => (None, Some(connections)),
        };
        let others_may_write = keeper.is_none();
        let clock = options.clock.clone();
        let cache = Arc::new(ReadCache::new(options.cache_bytes, others_may_write, clock));
        let (writes, queue) = mpsc::channel(writer::QUEUE);
        tokio::spawn(writer::run(
            writer.clone(),
            cache.clone(),
            queue,
            writer_connections,
        ));
        Self {
            reader,
            writer,
            writes,
            cache,
            location,
            keeper,
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

    pub(in crate::store) async fn migrate(&self) -> Result<()> {
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
                outcome => {
                    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
                    return outcome.map_err(|e| crate::store::error::migration_failed(e, known));
                }
            }
        }
    }
}

/// SQLite opens a file it may not write read-only, without a word, and every write would then
/// fail: refuse at start instead, naming the file. Nothing is created or changed here.
fn refuse_unwritable(file: &std::path::Path) -> sqlx::Result<()> {
    let mut paths = vec![file.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        paths.push(name.into());
    }
    for path in paths.iter().filter(|path| path.exists()) {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| {
                let message = format!(
                    "the database file {} cannot be written: {e}",
                    path.display()
                );
                sqlx::Error::Configuration(message.into())
            })?;
    }
    Ok(())
}
