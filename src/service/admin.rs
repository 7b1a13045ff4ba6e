//! The administration service: users, tokens, seeds, reset and snapshots, for the admin API, the
//! command line and the start-up seed. It trusts its caller; the HTTP layer checks the admin
//! token first.

use std::path::Path;

use crate::credentials::Secret;
use crate::credentials::{TokenDigest, generate_token};
use crate::domain::{
    AccountId, DisplayName, Email, NewUser, PropertyKey, PropertyValue, Scopes, SiteKey, User,
    Written,
};
use crate::error::{Error, Result};
use crate::snapshot;
use crate::store::admin::{PatchOutcome, Snapshot, TokenEntry, TokenInfo, TokenLimits, UserPatch};
use crate::store::{SeedData, SeedReport, Store};

/// Administration over a store.
#[derive(Debug, Clone)]
pub struct AdminService {
    store: Store,
}

/// A new token: its id, and the secret, shown this once.
#[derive(Debug)]
pub struct NewToken {
    /// The token's id, for listing and revoking.
    pub id: String,
    /// The secret.
    pub token: Secret,
}

/// Changes to a user, each already valid; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct UserChanges {
    /// A new email.
    pub email: Option<Email>,
    /// A new display name.
    pub display_name: Option<DisplayName>,
    /// Grant or withdraw *Administer Jira*.
    pub admin: Option<bool>,
    /// Activate or deactivate.
    pub active: Option<bool>,
}

impl AdminService {
    /// Administration over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Every user, by account id.
    pub async fn users(&self, site: SiteKey) -> Result<Vec<User>> {
        Ok(self.store.users(site, usize::MAX, false).await?)
    }

    /// The first `most` active users, by account id.
    pub async fn first_active_users(&self, site: SiteKey, most: usize) -> Result<Vec<User>> {
        Ok(self.store.users(site, most, true).await?)
    }

    /// How many users there are.
    pub async fn user_count(&self, site: SiteKey) -> Result<u64> {
        Ok(self.store.user_count(site).await?)
    }

    /// The account a path or an argument names: text that cannot be an account id names no
    /// user, so it is 404 as an unknown user is.
    pub fn account(text: &str) -> Result<AccountId> {
        AccountId::parse(text).map_err(|_| Error::UserNotFound(text.to_owned()))
    }

    /// One user.
    pub async fn user(&self, site: SiteKey, account_id: &AccountId) -> Result<User> {
        let user = self.store.user(site, account_id.as_str()).await?;
        user.ok_or_else(|| not_found(account_id))
    }

    /// Creates a user with the tokens whose digests are given.
    pub async fn create_user(
        &self,
        site: SiteKey,
        user: NewUser,
        tokens: Vec<TokenEntry>,
    ) -> Result<User> {
        let account_id = user.account_id.clone();
        // An existing account must not gain the new tokens as a side effect.
        if self
            .store
            .user_exists(site, account_id.as_str(), None)
            .await?
        {
            return Err(Error::Conflict(format!(
                "A user with account ID '{}' exists already.",
                account_id.as_str()
            )));
        }
        let seed = SeedData {
            users: vec![User::from(user)],
            tokens: tokens.into_iter().map(|token| (0, token)).collect(),
            properties: Vec::new(),
            users_must_be_new: true,
        };
        let report = self.store.apply_seed(site, &seed).await?;
        if report.users == 0 || report.conflict.is_some() {
            return Err(Error::Conflict(format!(
                "A user with account ID '{}', its email or one of its tokens exists already.",
                account_id.as_str()
            )));
        }
        self.user(site, &account_id).await
    }

    /// Changes a user's email, display name, admin or active flag. The changes are checked only
    /// once the user is known to exist, so an unknown user is 404 whatever the changes say.
    pub async fn update_user(
        &self,
        site: SiteKey,
        account_id: &AccountId,
        changes: Result<UserChanges>,
    ) -> Result<User> {
        self.user(site, account_id).await?;
        let changes = changes?;
        let patch = UserPatch {
            email: changes.email.map(|email| email.as_str().to_owned()),
            display_name: changes.display_name.map(|name| name.as_str().to_owned()),
            admin: changes.admin,
            active: changes.active,
        };
        match self
            .store
            .update_user(site, account_id.as_str(), &patch)
            .await?
        {
            PatchOutcome::Updated => self.user(site, account_id).await,
            PatchOutcome::NoSuchUser => Err(not_found(account_id)),
            PatchOutcome::EmailTaken => {
                Err(Error::Conflict("Another user has that email.".to_owned()))
            }
        }
    }

    /// Deletes a user with their tokens and properties.
    pub async fn delete_user(&self, site: SiteKey, account_id: &AccountId) -> Result<()> {
        if self.store.delete_user(site, account_id.as_str()).await? {
            Ok(())
        } else {
            Err(not_found(account_id))
        }
    }

    /// Makes a new API token for a user.
    pub async fn create_token(
        &self,
        site: SiteKey,
        account_id: &AccountId,
        limits: &TokenLimits,
    ) -> Result<NewToken> {
        self.user(site, account_id).await?;
        if limits.scopes.as_ref().is_some_and(Scopes::is_empty) {
            return Err(Error::BadRequest(
                "scopes must name at least one scope; leave it out for a classic token.".into(),
            ));
        }
        let token = generate_token().map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
        match self
            .store
            .add_token(site, account_id.as_str(), &TokenDigest::of(&token), limits)
            .await?
        {
            Some(id) => Ok(NewToken {
                id,
                token: token.into(),
            }),
            None => Err(not_found(account_id)),
        }
    }

    /// A user's tokens, without secrets.
    pub async fn tokens(&self, site: SiteKey, account_id: &AccountId) -> Result<Vec<TokenInfo>> {
        let tokens = self.store.tokens(site, account_id.as_str()).await?;
        tokens.ok_or_else(|| not_found(account_id))
    }

    /// Revokes one of a user's tokens.
    pub async fn revoke_token(
        &self,
        site: SiteKey,
        account_id: &AccountId,
        id: &str,
    ) -> Result<()> {
        let plausible = id.bytes().all(|b| b.is_ascii_alphanumeric());
        if plausible
            && self
                .store
                .revoke_token(site, account_id.as_str(), id)
                .await?
        {
            Ok(())
        } else {
            Err(Error::TokenNotFound(id.to_owned()))
        }
    }

    /// A user's properties in the API's order (keys by code point), with their values.
    pub async fn properties(
        &self,
        site: SiteKey,
        account_id: &AccountId,
    ) -> Result<Vec<(PropertyKey, PropertyValue)>> {
        let stored = self.store.properties(site, account_id.as_str()).await?;
        let stored = stored.ok_or_else(|| not_found(account_id))?;
        stored
            .into_iter()
            .map(|(key, value)| Ok((PropertyKey::new(key)?, value)))
            .collect()
    }

    /// Creates or replaces a user's property, as the API would for an administrator.
    pub async fn set_property(
        &self,
        site: SiteKey,
        account_id: &AccountId,
        key: &PropertyKey,
        value: &PropertyValue,
    ) -> Result<Written> {
        // The store answers `None` for a user it does not hold: no lookup beforehand.
        let written = self
            .store
            .set_property(site, account_id.as_str(), key, value, None)
            .await?;
        written.ok_or_else(|| not_found(account_id))
    }

    /// Deletes a user's property.
    pub async fn delete_property(
        &self,
        site: SiteKey,
        account_id: &AccountId,
        key: &PropertyKey,
    ) -> Result<()> {
        self.user(site, account_id).await?;
        if self
            .store
            .delete_property(site, account_id.as_str(), key, None)
            .await?
        {
            Ok(())
        } else {
            Err(Error::PropertyNotFound(key.as_str().to_owned()))
        }
    }

    /// Adds a seed in one transaction: missing users and tokens always, properties only into an
    /// empty database. A conflict is reported, with nothing changed.
    pub async fn apply_seed(&self, site: SiteKey, seed: &SeedData) -> Result<SeedReport> {
        Ok(self.store.apply_seed(site, seed).await?)
    }

    /// Deletes every property, and with `everything` every user and token too.
    pub async fn reset(&self, site: SiteKey, everything: bool) -> Result<()> {
        Ok(self.store.reset(site, everything).await?)
    }

    /// Replaces the whole state with `state` (what a seed made), atomically.
    pub async fn restore(&self, site: SiteKey, state: &Snapshot) -> Result<()> {
        Ok(self.store.restore(site, state).await?)
    }

    /// The whole state as snapshot JSON, written off the runtime's threads.
    pub async fn export(&self, site: SiteKey) -> Result<Vec<u8>> {
        let snapshot = self.store.snapshot(site).await?;
        super::off_runtime(move || snapshot::to_json(&snapshot))
            .await
            .map_err(|e| Error::Internal(format!("snapshot not written: {e}")))
    }

    /// Replaces the whole state with snapshot JSON, atomically; `source` names it in errors.
    /// A snapshot may be a gigabyte: it is parsed off the runtime's threads.
    pub async fn import(
        &self,
        site: SiteKey,
        source: &Path,
        body: impl AsRef<[u8]> + Send + 'static,
    ) -> Result<()> {
        let source = source.to_owned();
        let parse = move || {
            let text = std::str::from_utf8(body.as_ref())
                .map_err(|_| Error::BadRequest("The snapshot must be UTF-8 JSON.".to_owned()))?;
            snapshot::from_json(&source, text).map_err(|e| Error::BadRequest(e.to_string()))
        };
        let snapshot = tokio::task::spawn_blocking(parse)
            .await
            .map_err(|e| Error::Internal(format!("snapshot not read: {e}")))??;
        Ok(self.store.restore(site, &snapshot).await?)
    }
}

/// The 404 of a user that does not exist.
fn not_found(account_id: &AccountId) -> Error {
    Error::UserNotFound(account_id.as_str().to_owned())
}
