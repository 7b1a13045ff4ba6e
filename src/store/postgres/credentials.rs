//! The PostgreSQL store's cache of credentials (accounts, token owners, which users exist), each
//! entry good only while the database's credentials version is the one it was read at.
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

use super::super::in_site::{InSite, InSiteLookup, in_site};
use super::super::{Account, TokenOwner};
use crate::credentials::TokenDigest;
use crate::domain::{CredentialsVersion, SiteKey};

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
