//! Storage: one closed set of backends chosen by the database URL; no caller knows which one runs.

/// Calls a method on whichever backend runs: one `match` per method, so a method missing on
/// either backend does not compile.
macro_rules! forward {
    ($self:ident.$method:ident($($arg:expr),*).await) => {
        match $self {
            Store::Sqlite(store) => store.$method($($arg),*).await,
            Store::Postgres(store) => {
                let _turn = store.admit()?;
                store.$method($($arg),*).await
            }
        }
    };
    // PostgreSQL's statement also confirms the caller's cached credentials; SQLite, whose one
    // writer keeps its cache true, needs no confirming.
    ($self:ident.$method:ident($($arg:expr),*).await, confirming $caller:expr) => {
        match $self {
            Store::Sqlite(store) => store.$method($($arg),*).await,
            Store::Postgres(store) => {
                let _turn = store.admit()?;
                store.$method($($arg,)* $caller).await
            }
        }
    };
    ($self:ident.$method:ident($($arg:expr),*)) => {
        match $self {
            Store::Sqlite(store) => store.$method($($arg),*),
            Store::Postgres(store) => store.$method($($arg),*),
        }
    };
}

pub mod admin;
mod connect;
mod error;
mod in_site;
pub mod oauth;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

pub use connect::redacted_location;
pub use error::{ConnectError, Error, Result};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::clock::{self, SharedClock};
use crate::credentials::TokenDigest;
use crate::domain::{
    CredentialsVersion, PropertyKey, PropertyValue, Scopes, SiteKey, User, Written,
};

/// How to hold connections.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// Most connections open at once (PostgreSQL), or reader connections (SQLite).
    pub pool_size: u32,
    /// PostgreSQL connections beside the pool on which reads are pipelined; 0 turns them off.
    pub pipelines: u32,
    /// Longest wait for one connection attempt at start.
    pub connect_timeout: Duration,
    /// Longest wait for a free connection while serving; past it the request gets 503.
    pub acquire_timeout: Duration,
    /// Most PostgreSQL calls waiting for a connection while every one is busy; past it a call
    /// is refused at once (503) rather than queued behind a slow or unreachable database.
    pub max_waiting: u32,
    /// How long to keep retrying at start before giving up.
    pub startup_timeout: Duration,
    /// Bytes of property values the SQLite store may keep in its read cache; 0 turns the cache
    /// off. PostgreSQL keeps none: its instances share the database and nothing else.
    pub cache_bytes: u64,
    /// Where the SQLite cache reads the time, to decide how long it trusts what it holds.
    pub clock: SharedClock,
    /// Longest a PostgreSQL statement waits for a lock (`lock_timeout`), unless the URL's
    /// `options` set one: a statement stuck behind another session's lock gives up, rather than
    /// holding its connection, and committing long after its request was answered 503.
    /// Migrations wait without it.
    pub lock_timeout: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            pipelines: 1,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            max_waiting: 512,
            startup_timeout: Duration::from_secs(30),
            cache_bytes: 4 << 20,
            lock_timeout: Duration::from_secs(30),
            clock: clock::system(),
        }
    }
}

/// A user with all their API tokens. Shared, not copied: every request with Basic credentials
/// looks one up.
#[derive(Debug, Clone)]
pub struct Account {
    /// The user.
    pub user: Arc<User>,
    /// Every token the user holds.
    pub tokens: Vec<StoredToken>,
    /// The credentials version this was read at, when a later statement must confirm it.
    pub version: Option<CredentialsVersion>,
}

/// An API token as stored: its digest and what limits it.
#[derive(Debug, Clone)]
pub struct StoredToken {
    /// The digest.
    pub digest: TokenDigest,
    /// Its scopes; `None` for a classic token, which may do all its user may.
    pub scopes: Option<Arc<Scopes>>,
    /// When it stops working (ms since the Unix epoch), if ever.
    pub expires_at: Option<i64>,
}

/// The holder of an API token, and what limits the token.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// The user.
    pub user: Arc<User>,
    /// The token's scopes and expiry.
    pub token: StoredToken,
    /// The credentials version this was read at, when a later statement must confirm it.
    pub version: Option<CredentialsVersion>,
}

/// Everything a seed adds, already validated.
#[derive(Debug, Default, Clone)]
pub struct SeedData {
    /// Users, added when their account id is not taken yet.
    pub users: Vec<User>,
    /// Tokens by the index of their owner in `users`, added when their digest is not stored yet.
    pub tokens: Vec<(usize, admin::TokenEntry)>,
    /// Properties, added only to an empty database.
    pub properties: Vec<(String, PropertyKey, PropertyValue)>,
    /// Whether a user whose account id is taken is a conflict rather than left as it is: so
    /// that creating an account never hands its tokens to one made meanwhile.
    pub users_must_be_new: bool,
}

impl SeedData {
    /// The state this seed describes, as a snapshot: its users with their tokens, and its
    /// properties.
    pub fn to_snapshot(&self) -> admin::Snapshot {
        let mut users: Vec<(User, Vec<admin::TokenEntry>)> = self
            .users
            .iter()
            .map(|user| (user.clone(), Vec::new()))
            .collect();
        for (owner, token) in &self.tokens {
            if let Some((_, tokens)) = users.get_mut(*owner) {
                tokens.push(token.clone());
            }
        }
        let properties = self
            .properties
            .iter()
            .map(|(account_id, key, value)| {
                (
                    account_id.clone(),
                    key.as_str().to_owned(),
                    value.as_str().to_owned(),
                )
            })
            .collect();
        admin::Snapshot { users, properties }
    }
}

/// What a seed changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    /// Users added.
    pub users: u64,
    /// Tokens added.
    pub tokens: u64,
    /// Properties added.
    pub properties: u64,
    /// Why the seed could not be applied; when set, it was rolled back and nothing changed.
    pub conflict: Option<SeedConflict>,
}

/// A seed user that clashes with another account in the database (an index into `users`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedConflict {
    /// Another account holds the user's email.
    Email(usize),
    /// Another account holds one of the user's API tokens.
    Token(usize),
    /// The user's account id is taken, in a seed whose users must be new.
    Taken(usize),
}

/// The storage backends. Every method matches on all of them, so one missing does not compile.
#[derive(Debug, Clone)]
pub enum Store {
    /// SQLite, the embedded default.
    Sqlite(SqliteStore),
    /// PostgreSQL, for shared and multi-instance deployments.
    Postgres(PostgresStore),
}

impl Store {
    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<()> {
        forward!(self.migrate().await)
    }

    /// Where the data lives, for the startup log.
    pub fn location(&self) -> String {
        forward!(self.location())
    }

    /// The backend's name: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Connections in use and idle, over every pool.
    pub fn pool_usage(&self) -> (u32, u32) {
        forward!(self.pool_usage())
    }

    /// PostgreSQL: the calls holding or waiting for a connection, which `--db-max-waiting`
    /// bounds. SQLite has no such bound: `None`.
    pub fn calls_in_flight(&self) -> Option<u32> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(store) => Some(store.calls_in_flight()),
        }
    }

    /// Closes every connection, letting the last writes settle.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Postgres(store) => store.close().await,
        }
    }

    /// The owner of the token with this digest. The lookup goes by digest, so its timing can
    /// reveal nothing about any token.
    pub async fn token_owner(
        &self,
        site: SiteKey,
        digest: &TokenDigest,
    ) -> Result<Option<Arc<TokenOwner>>> {
        forward!(self.token_owner(site, digest).await)
    }

    /// The user whose lower-cased email is `email_key`, with their token digests.
    pub async fn account_by_email(
        &self,
        site: SiteKey,
        email_key: &str,
    ) -> Result<Option<Arc<Account>>> {
        forward!(self.account_by_email(site, email_key).await)
    }

    /// The user with this account id.
    pub async fn user(&self, site: SiteKey, account_id: &str) -> Result<Option<User>> {
        forward!(self.user(site, account_id).await)
    }

    /// The users with these account ids, in the order asked; ids no user has are left out.
    pub async fn users_named(&self, site: SiteKey, account_ids: &[&str]) -> Result<Vec<User>> {
        forward!(self.users_named(site, account_ids).await)
    }

    /// Whether a user with this account id exists. `caller` is the credentials version of the
    /// caller's cached credentials, if any: here and below, [`Error::Stale`] when the database
    /// has moved past it.
    pub async fn user_exists(
        &self,
        site: SiteKey,
        account_id: &str,
        caller: Option<CredentialsVersion>,
    ) -> Result<bool> {
        forward!(self.user_exists(site, account_id).await, confirming caller)
    }

    /// Whether credentials read at `caller` still hold, for operations that read no property.
    pub async fn confirm(&self, caller: Option<CredentialsVersion>) -> Result<()> {
        match self {
            Self::Sqlite(_) => Ok(()),
            Self::Postgres(store) => {
                let _turn = store.admit()?;
                store.confirm(caller).await
            }
        }
    }

    /// How many users there are.
    pub async fn user_count(&self, site: SiteKey) -> Result<u64> {
        forward!(self.user_count(site).await)
    }

    /// The user's property keys in code-point order.
    pub async fn property_keys(
        &self,
        site: SiteKey,
        account_id: &str,
        caller: Option<CredentialsVersion>,
    ) -> Result<Arc<[String]>> {
        forward!(self.property_keys(site, account_id).await, confirming caller)
    }

    /// One property's stored JSON text.
    pub async fn property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
        caller: Option<CredentialsVersion>,
    ) -> Result<Option<PropertyValue>> {
        forward!(self.property(site, account_id, key).await, confirming caller)
    }

    /// Creates or replaces a property, deciding which in the same statement; `None` when the
    /// user does not exist.
    pub async fn set_property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
        value: &PropertyValue,
        caller: Option<CredentialsVersion>,
    ) -> Result<Option<Written>> {
        forward!(self.set_property(site, account_id, key, value).await, confirming caller)
    }

    /// Deletes a property; whether it existed.
    pub async fn delete_property(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &PropertyKey,
        caller: Option<CredentialsVersion>,
    ) -> Result<bool> {
        forward!(self.delete_property(site, account_id, key).await, confirming caller)
    }

    /// Adds a seed to a site in one transaction: missing users and tokens always, properties only
    /// when the site holds no users and no properties yet.
    pub async fn apply_seed(&self, site: SiteKey, seed: &SeedData) -> Result<SeedReport> {
        forward!(self.apply_seed(site, seed).await)
    }
}
