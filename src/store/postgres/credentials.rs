//! The PostgreSQL store's cache of credentials (accounts, token owners, which users exist), each
//! entry good only while the database's credentials version is the one it was read at, and the
//! store's reads and confirmations of credentials through it.
//!
//! Every change to users or API tokens moves `credentials_version` in its own transaction (the
//! triggers of migration 0006). An entry carries the version it was read at, and every request's
//! statement reads the version again, beside the value it reads or in the guard of the row it
//! writes. When the statement finds a newer one, nothing is acted on: the store says
//! [`Error::Stale`](super::super::Error::Stale), this cache forgets everything older, and the
//! service authenticates the caller again. So a request that starts after an admin change was
//! answered, on any instance, is never authorised by what the change replaced, and a steady
//! request costs one statement.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use quick_cache::sync::Cache;
use sqlx::PgConnection;

use super::super::in_site::{InSite, InSiteLookup, in_site};
use super::super::{Account, TokenOwner};
use super::{PostgresStore, Sql, leased};
use crate::credentials::TokenDigest;
use crate::domain::{CredentialsVersion, SiteKey};
use crate::store::{Error, Result};

/// Accounts, token owners and known users held, each.
const HELD: usize = 10_000;

/// What this instance knows of the stored credentials, and the newest version it has seen.
pub(super) struct CredentialsCache {
    /// The newest credentials version any statement returned; entries of another are dead.
    newest: AtomicI64,
    tokens: Cache<(SiteKey, TokenDigest), Arc<TokenOwner>>,
    accounts: Cache<InSite, Arc<Account>>,
    /// Users known to exist, with the version they were seen at.
    users: Cache<InSite, CredentialsVersion>,
}

impl std::fmt::Debug for CredentialsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsCache")
            .field("newest", &self.newest)
            .field("accounts", &self.accounts.len())
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

impl CredentialsCache {
    pub(super) fn new() -> Self {
        Self {
            newest: AtomicI64::new(i64::MIN),
            tokens: Cache::new(HELD),
            accounts: Cache::new(HELD),
            users: Cache::new(HELD),
        }
    }

    /// Notes a version a statement returned; entries read at an older one are dead from now on.
    pub(super) fn saw(&self, version: CredentialsVersion) {
        self.newest.fetch_max(version.0, Ordering::AcqRel);
    }

    /// Whether `version` is the newest seen: what was read at it may still be acted on.
    pub(super) fn is_current(&self, version: CredentialsVersion) -> bool {
        self.newest.load(Ordering::Acquire) == version.0
    }

    fn current(&self, version: Option<CredentialsVersion>) -> bool {
        version.is_some_and(|version| self.is_current(version))
    }

    pub(super) fn token_owner(
        &self,
        site: SiteKey,
        digest: &TokenDigest,
    ) -> Option<Arc<TokenOwner>> {
        self.tokens
            .get(&(site, *digest))
            .filter(|owner| self.current(owner.version))
    }

    pub(super) fn keep_token_owner(
        &self,
        site: SiteKey,
        digest: &TokenDigest,
        owner: &Arc<TokenOwner>,
    ) {
        self.tokens.insert((site, *digest), Arc::clone(owner));
    }

    pub(super) fn account(&self, site: SiteKey, email_key: &str) -> Option<Arc<Account>> {
        let lookup = InSiteLookup {
            site,
            text: email_key,
        };
        self.accounts
            .get(&lookup)
            .filter(|account| self.current(account.version))
    }

    pub(super) fn keep_account(&self, site: SiteKey, email_key: &str, account: &Arc<Account>) {
        self.accounts
            .insert(in_site(site, email_key), Arc::clone(account));
    }

    /// Whether the user is known to exist at the newest version.
    pub(super) fn user_exists(&self, site: SiteKey, account_id: &str) -> bool {
        let lookup = InSiteLookup {
            site,
            text: account_id,
        };
        self.users
            .get(&lookup)
            .is_some_and(|version| self.is_current(version))
    }

    pub(super) fn keep_user(&self, site: SiteKey, account_id: &str, version: CredentialsVersion) {
        self.users.insert(in_site(site, account_id), version);
    }
}

/// How the store reads credentials through the cache and confirms them.
impl PostgresStore {
    pub(in crate::store) async fn token_owner(
        &self,
        site: SiteKey,
        digest: &TokenDigest,
    ) -> Result<Option<Arc<TokenOwner>>> {
        if let Some(owner) = self.credentials.token_owner(site, digest) {
            return Ok(Some(owner));
        }
        let (version, owner) = leased!(self, |conn| async {
            let version = read_version(&mut *conn).await?;
            Ok((version, Sql::token_owner(conn, site, digest).await?))
        })?;
        let version = self.seen(version);
        let owner = owner.map(|owner| {
            Arc::new(TokenOwner {
                version: Some(version),
                ..Arc::unwrap_or_clone(owner)
            })
        });
        if let Some(owner) = &owner {
            self.credentials.keep_token_owner(site, digest, owner);
        }
        Ok(owner)
    }

    pub(in crate::store) async fn account_by_email(
        &self,
        site: SiteKey,
        email_key: &str,
    ) -> Result<Option<Arc<Account>>> {
        if let Some(account) = self.credentials.account(site, email_key) {
            return Ok(Some(account));
        }
        let (version, account) = leased!(self, |conn| async {
            let version = read_version(&mut *conn).await?;
            Ok((version, Sql::account_by_email(conn, site, email_key).await?))
        })?;
        let version = self.seen(version);
        let account = account.map(|account| {
            Arc::new(Account {
                version: Some(version),
                ..Arc::unwrap_or_clone(account)
            })
        });
        if let Some(account) = &account {
            self.credentials.keep_account(site, email_key, account);
        }
        Ok(account)
    }

    /// Notes a version read before the credentials it will tag.
    fn seen(&self, version: i64) -> CredentialsVersion {
        let version = CredentialsVersion(version);
        self.credentials.saw(version);
        version
    }

    /// Notes the version a statement returned, and returns it; [`Error::Stale`] when the
    /// caller's credentials were read at another.
    pub(super) fn confirm_version(
        &self,
        found: i64,
        caller: Option<CredentialsVersion>,
    ) -> Result<CredentialsVersion> {
        let found = self.seen(found);
        match caller {
            Some(version) if version != found => Err(Error::Stale),
            _ => Ok(found),
        }
    }

    /// Whether credentials read at `caller` still hold: at once when this instance already
    /// knows better, else by one statement.
    pub(in crate::store) async fn confirm(&self, caller: Option<CredentialsVersion>) -> Result<()> {
        let Some(version) = caller else {
            return Ok(());
        };
        if !self.credentials.is_current(version) {
            return Err(Error::Stale);
        }
        let found = leased!(self, |conn| read_version(conn))?;
        self.confirm_version(found, caller).map(drop)
    }
}

/// The credentials version, read before the credentials it will tag: what is read after it is at
/// least that new, so an entry is never trusted past a change it missed.
async fn read_version(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT version FROM credentials_version")
        .fetch_one(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::User;

    fn account(version: i64) -> Arc<Account> {
        Arc::new(Account {
            user: Arc::new(User {
                account_id: "bob".to_owned(),
                email: "bob@example.com".to_owned(),
                display_name: "Bob".to_owned(),
                admin: false,
                active: true,
            }),
            tokens: Vec::new(),
            version: Some(CredentialsVersion(version)),
        })
    }

    #[test]
    fn entries_answer_only_while_their_version_is_the_newest_seen() {
        let cache = CredentialsCache::new();
        let site = SiteKey::DEFAULT;
        cache.saw(CredentialsVersion(7));
        cache.keep_account(site, "bob@example.com", &account(7));
        cache.keep_user(site, "bob", CredentialsVersion(7));
        assert!(cache.account(site, "bob@example.com").is_some());
        assert!(cache.user_exists(site, "bob"));
        assert!(cache.account(SiteKey(1), "bob@example.com").is_none());

        cache.saw(CredentialsVersion(8));
        assert!(cache.account(site, "bob@example.com").is_none());
        assert!(!cache.user_exists(site, "bob"));
        assert!(!cache.is_current(CredentialsVersion(7)));
    }

    #[test]
    fn an_older_version_seen_late_does_not_revive_entries() {
        let cache = CredentialsCache::new();
        let site = SiteKey::DEFAULT;
        cache.saw(CredentialsVersion(7));
        cache.keep_account(site, "bob@example.com", &account(7));
        cache.saw(CredentialsVersion(8));
        // A slow statement that read version 7 answers after one that read 8.
        cache.saw(CredentialsVersion(7));
        assert!(cache.account(site, "bob@example.com").is_none());
        assert!(cache.is_current(CredentialsVersion(8)));
    }

    #[test]
    fn entries_without_a_version_never_answer() {
        let cache = CredentialsCache::new();
        let site = SiteKey::DEFAULT;
        let untagged = Arc::new(Account {
            version: None,
            ..Account::clone(&account(1))
        });
        cache.saw(CredentialsVersion(1));
        cache.keep_account(site, "bob@example.com", &untagged);
        assert!(cache.account(site, "bob@example.com").is_none());
    }
}
