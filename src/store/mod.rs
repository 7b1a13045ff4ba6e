//! Storage: one closed set of backends chosen by the database URL; no caller knows which one runs.

mod sqlite;

pub use sqlite::SqliteStore;

use crate::credentials::TokenDigest;
use crate::domain::{PropertyKey, PropertyValue, User, Written};

/// A user and the digest of the token that was presented for them.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// The user the token belongs to.
    pub user: User,
    /// The digest as stored.
    pub digest: TokenDigest,
}

/// Everything a seed adds, already validated.
#[derive(Debug, Default)]
pub struct SeedData {
    /// Users, added when their account id is not taken yet.
    pub users: Vec<User>,
    /// Tokens by owner, added when their digest is not stored yet.
    pub tokens: Vec<(String, TokenDigest)>,
    /// Properties, added only to an empty database.
    pub properties: Vec<(String, PropertyKey, PropertyValue)>,
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
    /// The index of a seed user whose email another account already holds; when set, the seed
    /// was rolled back and nothing changed.
    pub email_taken: Option<usize>,
}

/// The storage backends. Every method matches on all of them, so one missing does not compile.
#[derive(Debug, Clone)]
pub enum Store {
    /// SQLite, the embedded default.
    Sqlite(SqliteStore),
}

impl Store {
    /// Opens the database that `url` names, choosing the backend by its scheme.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Ok(Self::Sqlite(SqliteStore::connect(url).await?)),
            _ => anyhow::bail!(
                "unsupported database URL scheme {scheme:?}: use sqlite:PATH or sqlite::memory:"
            ),
        }
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Self::Sqlite(store) => store.migrate().await,
        }
    }

    /// Where the data lives, for the startup log.
    pub fn location(&self) -> String {
        match self {
            Self::Sqlite(store) => store.location(),
        }
    }

    /// Closes every connection, letting the last writes settle.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close().await,
        }
    }

    /// The owner of the token with this digest.
    pub async fn token_owner(&self, digest: &TokenDigest) -> sqlx::Result<Option<TokenOwner>> {
        match self {
            Self::Sqlite(store) => store.token_owner(digest).await,
        }
    }

    /// Whether a user with this account id exists.
    pub async fn user_exists(&self, account_id: &str) -> sqlx::Result<bool> {
        match self {
            Self::Sqlite(store) => store.user_exists(account_id).await,
        }
    }

    /// How many users there are.
    pub async fn user_count(&self) -> sqlx::Result<u64> {
        match self {
            Self::Sqlite(store) => store.user_count().await,
        }
    }

    /// The user's property keys in code-point order.
    pub async fn property_keys(&self, account_id: &str) -> sqlx::Result<Vec<String>> {
        match self {
            Self::Sqlite(store) => store.property_keys(account_id).await,
        }
    }

    /// One property's stored JSON text.
    pub async fn property(
        &self,
        account_id: &str,
        key: &PropertyKey,
    ) -> sqlx::Result<Option<PropertyValue>> {
        match self {
            Self::Sqlite(store) => store.property(account_id, key).await,
        }
    }

    /// Creates or replaces a property, deciding which in the same statement; `None` when the
    /// user does not exist.
    pub async fn set_property(
        &self,
        account_id: &str,
        key: &PropertyKey,
        value: &PropertyValue,
    ) -> sqlx::Result<Option<Written>> {
        match self {
            Self::Sqlite(store) => store.set_property(account_id, key, value).await,
        }
    }

    /// Deletes a property; whether it existed.
    pub async fn delete_property(&self, account_id: &str, key: &PropertyKey) -> sqlx::Result<bool> {
        match self {
            Self::Sqlite(store) => store.delete_property(account_id, key).await,
        }
    }

    /// Adds a seed in one transaction: missing users and tokens always, properties only when the
    /// database holds no users and no properties yet.
    pub async fn apply_seed(&self, seed: &SeedData) -> sqlx::Result<SeedReport> {
        match self {
            Self::Sqlite(store) => store.apply_seed(seed).await,
        }
    }
}
