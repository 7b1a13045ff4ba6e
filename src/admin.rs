//! The administration service: users, tokens, reset and snapshots, for the admin API and the
//! command line. It trusts its caller; the HTTP layer checks the admin token first.

use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::credentials::{TokenDigest, generate_token};
use crate::domain::{User, is_valid_account_id};
use crate::error::{Error, Result};
use crate::snapshot;
use crate::store::Store;
use crate::store::admin::{PatchOutcome, TokenInfo, UserPatch};

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
    pub token: String,
}

/// The fields a PATCH may change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchBody {
    email: Option<String>,
    display_name: Option<String>,
    admin: Option<bool>,
    active: Option<bool>,
}

impl AdminService {
    /// Administration over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Every user, by account id.
    pub async fn users(&self) -> Result<Vec<User>> {
        Ok(self.store.users().await?)
    }

    /// One user.
    pub async fn user(&self, account_id: &str) -> Result<User> {
        let user = if is_valid_account_id(account_id) {
            self.store.user(account_id).await?
        } else {
            None
        };
        user.ok_or_else(|| Error::UserNotFound(account_id.to_owned()))
    }

    /// Creates a user from one entry in the seed format (`apiTokens` optional).
    pub async fn create_user(&self, body: &[u8]) -> Result<User> {
        let entry: &RawValue = std::str::from_utf8(body)
            .ok()
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| {
                Error::BadRequest("The request body must be one user as JSON.".to_owned())
            })?;
        let wrapped = format!("{{\"users\":[{}]}}", entry.get());
        let seed = crate::seed::parse(Path::new("request body"), &wrapped)
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        let account_id = seed
            .users
            .first()
            .map(|user| user.account_id.clone())
            .unwrap_or_default();
        // An existing account must not gain the body's tokens as a side effect.
        if self.store.user_exists(&account_id).await? {
            return Err(Error::Conflict(format!(
                "A user with account ID '{account_id}' exists already."
            )));
        }
        let report = self.store.apply_seed(&seed).await?;
        if report.users == 0 || report.conflict.is_some() {
            return Err(Error::Conflict(format!(
                "A user with account ID '{account_id}', its email or one of its tokens exists already."
            )));
        }
        self.user(&account_id).await
    }

    /// Changes a user's email, display name, admin or active flag.
    pub async fn update_user(&self, account_id: &str, body: &[u8]) -> Result<User> {
        self.user(account_id).await?;
        let patch: PatchBody =
            serde_json::from_slice(body).map_err(|e| Error::BadRequest(e.to_string()))?;
        if patch
            .email
            .as_deref()
            .is_some_and(|email| !email.contains('@') || email.chars().any(char::is_control))
        {
            return Err(Error::BadRequest(
                "email is not an email address".to_owned(),
            ));
        }
        if patch
            .display_name
            .as_deref()
            .is_some_and(|name| name.chars().any(char::is_control))
        {
            return Err(Error::BadRequest(
                "displayName must not contain control characters".to_owned(),
            ));
        }
        let patch = UserPatch {
            email: patch.email,
            display_name: patch.display_name,
            admin: patch.admin,
            active: patch.active,
        };
        match self.store.update_user(account_id, &patch).await? {
            PatchOutcome::Updated => self.user(account_id).await,
            PatchOutcome::NoSuchUser => Err(Error::UserNotFound(account_id.to_owned())),
            PatchOutcome::EmailTaken => {
                Err(Error::Conflict("Another user has that email.".to_owned()))
            }
        }
    }

    /// Deletes a user with their tokens and properties.
    pub async fn delete_user(&self, account_id: &str) -> Result<()> {
        if is_valid_account_id(account_id) && self.store.delete_user(account_id).await? {
            Ok(())
        } else {
            Err(Error::UserNotFound(account_id.to_owned()))
        }
    }

    /// Makes a new API token for a user.
    pub async fn create_token(&self, account_id: &str) -> Result<NewToken> {
        self.user(account_id).await?;
        let token = generate_token().map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
        match self
            .store
            .add_token(account_id, &TokenDigest::of(&token))
            .await?
        {
            Some(id) => Ok(NewToken { id, token }),
            None => Err(Error::UserNotFound(account_id.to_owned())),
        }
    }

    /// A user's tokens, without secrets.
    pub async fn tokens(&self, account_id: &str) -> Result<Vec<TokenInfo>> {
        self.user(account_id).await?;
        self.store
            .tokens(account_id)
            .await?
            .ok_or_else(|| Error::UserNotFound(account_id.to_owned()))
    }

    /// Revokes one of a user's tokens.
    pub async fn revoke_token(&self, account_id: &str, id: &str) -> Result<()> {
        let plausible =
            is_valid_account_id(account_id) && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if plausible && self.store.revoke_token(account_id, id).await? {
            Ok(())
        } else {
            Err(Error::TokenNotFound(id.to_owned()))
        }
    }

    /// Deletes every property, and with `everything` every user and token too.
    pub async fn reset(&self, everything: bool) -> Result<()> {
        Ok(self.store.reset(everything).await?)
    }

    /// The whole state as snapshot JSON.
    pub async fn export(&self) -> Result<Vec<u8>> {
        let snapshot = self.store.snapshot().await?;
        snapshot::to_json(&snapshot)
            .map_err(|e| Error::Internal(format!("snapshot not written: {e}")))
    }

    /// Replaces the whole state with snapshot JSON, atomically; `source` names it in errors.
    pub async fn import(&self, source: &Path, body: &[u8]) -> Result<()> {
        let text = std::str::from_utf8(body)
            .map_err(|_| Error::BadRequest("The snapshot must be UTF-8 JSON.".to_owned()))?;
        let snapshot =
            snapshot::from_json(source, text).map_err(|e| Error::BadRequest(e.to_string()))?;
        Ok(self.store.restore(&snapshot).await?)
    }
}
