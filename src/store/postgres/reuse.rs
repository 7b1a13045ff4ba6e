//! Connections kept checked out of sqlx's pool and handed from one statement to the next, so that
//! a statement costs one round trip.
//!
//! sqlx's pool pings every connection it is given back (`Sync`, then a wait for
//! `ReadyForQuery`), always: a second round trip per statement, which cost a GET about a third of
//! its rate on PostgreSQL. This keeps connections after a statement that succeeded and gives
//! them to the next caller as they are. A connection whose statement failed, or was cancelled,
//! or that held a transaction, goes back to sqlx's pool, whose ping settles or closes it; one
//! that sat idle for a while is pinged before it is reused, as a restart may have killed it.
//! The pool still opens connections and bounds how many exist; this bounds how many are in use.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Connection as _, PgConnection, PgPool, Postgres};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a connection may sit idle before it is pinged on its way out. Under load none sits
/// idle that long; a PostgreSQL restart takes longer (about a quarter second for an empty
/// database), so a connection idle across one is pinged and replaced, not handed out dead.
pub(super) const IDLE_BEFORE_PING: Duration = Duration::from_millis(100);

/// The connections kept for reuse, and the permits that bound those in use.
#[derive(Debug)]
pub(super) struct Reuse {
    permits: Semaphore,
    size: u32,
    acquire_timeout: Duration,
    idle: Mutex<Vec<(PoolConnection<Postgres>, Instant)>>,
}

/// A connection for one call. [`Lease::finish`] keeps it for the next call when the call
/// succeeded; a lease dropped otherwise (a failure, a cancelled request) gives its connection
/// back to the pool.
pub(in crate::store) struct Lease<'a> {
    connection: PoolConnection<Postgres>,
    reuse: &'a Reuse,
    _permit: SemaphorePermit<'a>,
}

impl Reuse {
    pub(super) fn new(size: u32, acquire_timeout: Duration) -> Self {
        Self {
            permits: Semaphore::new(size as usize),
            size,
            acquire_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A connection: a kept one if there is one, else one from `pool`. Waits at most the
    /// acquire timeout in all, as the pool alone would.
    pub(super) async fn lease<'a>(&'a self, pool: &PgPool) -> sqlx::Result<Lease<'a>> {
        let lease = async {
            let permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| sqlx::Error::PoolClosed)?;
            let connection = loop {
                let kept = self.idle.lock().map(|mut idle| idle.pop()).ok().flatten();
                match kept {
                    Some((connection, since)) if since.elapsed() < IDLE_BEFORE_PING => {
                        break connection;
                    }
                    // Dropped, it goes back to the pool, whose own ping closes it if dead.
                    Some((mut connection, _)) => {
                        if connection.ping().await.is_ok() {
                            break connection;
                        }
                    }
                    // Boxed: `Pool::acquire`'s future is kilobytes, and every future that held
                    // it in place, each request's all the way up, would carry it and copy it on
                    // every move, though it is seldom reached.
                    None => break Box::pin(pool.acquire()).await?,
                }
            };
            Ok(Lease {
                connection,
                reuse: self,
                _permit: permit,
            })
        };
        tokio::time::timeout(self.acquire_timeout, lease)
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
    }

    /// Connections in use, and kept idle.
    pub(super) fn usage(&self) -> (u32, u32) {
        let free = u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX);
        let idle = self.idle.lock().map(|idle| idle.len()).unwrap_or(0);
        (
            self.size.saturating_sub(free),
            u32::try_from(idle).unwrap_or(u32::MAX),
        )
    }

    /// Gives every kept connection back to the pool, and takes no more.
    pub(super) fn close(&self) {
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

impl Lease<'_> {
    /// Ends the call: the connection is kept for the next when `outcome` succeeded, as a
    /// statement that completed leaves its connection ready for another. It is kept before the
    /// permit is given back, so the next caller finds it.
    pub(in crate::store) fn finish<T>(mut self, outcome: &sqlx::Result<T>) {
        match outcome {
            Ok(_) => {
                if !self.reuse.permits.is_closed()
                    && let Ok(mut idle) = self.reuse.idle.lock()
                {
                    idle.push((self.connection, Instant::now()));
                }
            }
            // A server that turned read-only (a failover demoted it) answers the pool's ping
            // as well as ever: its connections must be closed, or every write through them
            // fails until they reach their lifetime.
            Err(sqlx::Error::Database(error))
                if matches!(error.code().as_deref(), Some("25006" | "57P01")) =>
            {
                self.connection.close_on_drop();
            }
            Err(_) => {}
        }
    }
}

impl Deref for Lease<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.connection
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.connection
    }
}
