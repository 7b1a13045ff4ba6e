//! What storage fails with, sorted into what a caller can act on; sqlx stays inside the store.

use std::sync::Arc;
use std::time::Duration;

/// A storage fault. Callers act on its kind; the database's own error is its source, for the log.
///
/// The source is shared, so one failed group commit can answer every write it held.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The database cannot be reached now: no connection, or the server refusing work while it
    /// starts, stops or is full. Trying again later may succeed.
    #[error("the database is unavailable")]
    Unavailable(#[source] Arc<sqlx::Error>),
    /// Too many calls already wait for a connection: refused at once, not queued.
    #[error("{0} calls already hold or wait for a database connection")]
    Busy(u32),
    /// The caller's credentials were read from a cache that the database has since overtaken:
    /// authenticate again and retry. Never answered to a client unless it keeps happening.
    #[error("the stored credentials changed while the request ran")]
    Stale,
    /// Anything else the database or the driver reported: a bug, not an outage.
    #[error("the database failed")]
    Fault(#[source] Arc<sqlx::Error>),
    /// The request holds text the database cannot store (PostgreSQL: U+0000, SQLSTATE 22021;
    /// an index entry past its size limit, 54000): the client's mistake, not a fault, wherever
    /// an input reached the store unparsed.
    #[error("the database cannot store a character of the request")]
    Unstorable(#[source] Arc<sqlx::Error>),
    /// A write refers to a row (a user, a site, an app, a grant) that a concurrent request
    /// deleted after this one found it: the client's target is gone, not a fault.
    #[error("a row the write refers to was deleted meanwhile")]
    Gone(#[source] Arc<sqlx::Error>),
    /// The disk holding the database is full: writes fail until space is freed; reads go on.
    #[error("the disk holding the database is full")]
    Full(#[source] Arc<sqlx::Error>),
    /// The database was migrated by a newer binary: this one must not touch it.
    #[error(
        "its schema is version {version}, newer than this binary knows ({known}): a newer \
         jira-userprops wrote it; run that, or use another database. Nothing was changed"
    )]
    NewerSchema {
        /// The newest migration the database has.
        version: i64,
        /// The newest migration this binary has.
        known: i64,
    },
}

/// The result of a storage operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whether the database is out of reach for now, rather than at fault.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// Whether the call was refused unqueued, because too many already wait.
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Busy(_))
    }

    /// Whether the caller's cached credentials were overtaken by a change.
    pub fn is_stale(&self) -> bool {
        matches!(self, Self::Stale)
    }

    /// Whether the disk holding the database is full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Whether the request held text the database cannot store.
    pub fn is_unstorable(&self) -> bool {
        matches!(self, Self::Unstorable(_))
    }

    /// Whether a write referred to a row deleted by a concurrent request.
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::Gone(_))
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        if sqlite_code(&error) == Some(SQLITE_FULL)
            || matches!(&error, sqlx::Error::Database(e) if e.code().as_deref() == Some("53100"))
        {
            Self::Full(Arc::new(error))
        } else if is_outage(&error) {
            Self::Unavailable(Arc::new(error))
        } else if matches!(&error, sqlx::Error::Database(e)
            if matches!(e.code().as_deref(), Some("22021" | "54000")))
        {
            Self::Unstorable(Arc::new(error))
        } else if matches!(&error, sqlx::Error::Database(e) if e.is_foreign_key_violation()) {
            Self::Gone(Arc::new(error))
        } else {
            Self::Fault(Arc::new(error))
        }
    }
}

/// SQLite's primary result codes that are not faults of ours: another process holds the file
/// (busy, locked), or the disk is full.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_FULL: i32 = 13;

/// The primary result code of an SQLite error (its extended code's low byte).
fn sqlite_code(error: &sqlx::Error) -> Option<i32> {
    let sqlx::Error::Database(e) = error else {
        return None;
    };
    e.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    e.code()?.parse::<i32>().ok().map(|code| code & 0xff)
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(error) => error.into(),
            other => sqlx::Error::Migrate(Box::new(other)).into(),
        }
    }
}

/// A failed migration, with a database of a newer schema told apart from other faults.
pub(super) fn migration_failed(error: sqlx::migrate::MigrateError, known: i64) -> Error {
    match error {
        sqlx::migrate::MigrateError::VersionMissing(version) if version > known => {
            Error::NewerSchema { version, known }
        }
        other => other.into(),
    }
}

/// Faults that mean the database cannot be reached now: no connection, or the server refusing
/// work while it starts (57P03), stops (57P01, 57P02) or is full (53300), a lock held past the
/// server's `lock_timeout` (55P03), or work that kept losing to concurrent work (40001, 40P01)
/// past its retries; a statement cancelled by the server (57014) or refused by a read-only
/// standby the URL now names (25006); class 08 is the connection's own; an SQLite file another
/// process holds past the busy timeout.
fn is_outage(error: &sqlx::Error) -> bool {
    if matches!(sqlite_code(error), Some(SQLITE_BUSY | SQLITE_LOCKED)) {
        return true;
    }
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            code.starts_with("08")
                || matches!(
                    &*code,
                    "57P01"
                        | "57P02"
                        | "57P03"
                        | "53300"
                        | "55P03"
                        | "40001"
                        | "40P01"
                        | "57014"
                        | "25006"
                )
        }),
        _ => false,
    }
}

/// Why opening the database failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL names no backend this server has.
    #[error(
        "unsupported database URL scheme {0:?}: use sqlite:PATH, sqlite::memory: or postgres://..."
    )]
    UnsupportedScheme(String),
    /// A PostgreSQL URL without `//`: no host, and the rest would be taken for a database name.
    #[error("a PostgreSQL URL is postgres://USER:PASSWORD@HOST:PORT/DB")]
    PostgresUrlWithoutHost,
    /// The database refused or failed the connection; its words are the message.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The attempt took longer than the connect timeout.
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
}

impl ConnectError {
    /// Faults that retrying cannot mend: a malformed URL, an unknown scheme, refused
    /// credentials (SQLSTATE class 28) or a database that does not exist (3D000); for SQLite,
    /// every refusal but a busy or locked file (a file that cannot be opened, is not a
    /// database, or is corrupt stays so).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::UnsupportedScheme(_) | Self::PostgresUrlWithoutHost => true,
            Self::Database(sqlx::Error::Configuration(_)) => true,
            Self::Database(error) if sqlite_code(error).is_some() => {
                !matches!(sqlite_code(error), Some(SQLITE_BUSY | SQLITE_LOCKED))
            }
            Self::Database(sqlx::Error::Database(e)) => e
                .code()
                .is_some_and(|code| code.starts_with("28") || code == "3D000"),
            Self::Database(_) | Self::NoAnswer(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_from_faults() {
        let io = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let cases = [
            (sqlx::Error::PoolTimedOut, true),
            (sqlx::Error::PoolClosed, true),
            (sqlx::Error::WorkerCrashed, true),
            (sqlx::Error::Io(io()), true),
            (sqlx::Error::Tls(io().into()), true),
            (sqlx::Error::RowNotFound, false),
            (sqlx::Error::Protocol("garbled".into()), false),
        ];
        for (error, unavailable) in cases {
            let text = error.to_string();
            assert_eq!(Error::from(error).is_unavailable(), unavailable, "{text}");
        }
    }

    #[test]
    fn only_what_retrying_cannot_mend_is_permanent() {
        let cases = [
            (ConnectError::UnsupportedScheme("mysql".into()), true),
            (sqlx::Error::Configuration("bad URL".into()).into(), true),
            (sqlx::Error::PoolTimedOut.into(), false),
            (ConnectError::NoAnswer(Duration::from_secs(5)), false),
        ];
        for (error, permanent) in cases {
            assert_eq!(error.is_permanent(), permanent, "{error}");
        }
    }
}
