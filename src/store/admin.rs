//! What the admin API and the command line need of storage: users, tokens, reset, snapshots.

use super::{Result, SeedData, SeedReport, Store};
use crate::credentials::TokenDigest;
use crate::domain::{CloudId, PropertyValue, Scopes, Site, SiteKey, SiteName, User};

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct UserPatch {
    /// A new email.
    pub email: Option<String>,
    /// A new display name.
    pub display_name: Option<String>,
    /// Grant or withdraw *Administer Jira*.
    pub admin: Option<bool>,
    /// Activate or deactivate.
    pub active: Option<bool>,
}

/// What a patch could not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOutcome {
    /// The user as it is now.
    Updated,
    /// No such user.
    NoSuchUser,
    /// Another account holds the new email.
    EmailTaken,
}

/// What creating a site did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatedSite {
    /// Made, with what its seed added.
    Created(Site, SeedReport),
    /// Another site has the name.
    NameTaken,
    /// Another site has the cloudId.
    IdTaken,
    /// As many sites as allowed exist already.
    TooMany,
    /// The seed clashes with itself; nothing was made.
    SeedConflict(SeedReport),
}

/// A token as an administrator sees it: never the secret, never the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's id.
    pub id: String,
    /// When it was made, as the database wrote it.
    pub created_at: String,
    /// Its scopes and expiry.
    pub limits: TokenLimits,
}

/// What limits an API token: its scopes (a scoped token works only through the gateway form)
/// and its expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenLimits {
    /// `None` for a classic token.
    pub scopes: Option<Scopes>,
    /// When it stops working (ms since the Unix epoch), if ever.
    pub expires_at: Option<i64>,
}

/// A token as seeds and snapshots carry it: its digest and what limits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// The digest of the secret.
    pub digest: TokenDigest,
    /// Its scopes and expiry.
    pub limits: TokenLimits,
}

impl TokenEntry {
    /// A classic token: no scopes, no expiry.
    pub fn classic(digest: TokenDigest) -> Self {
        Self {
            digest,
            limits: TokenLimits::default(),
        }
    }
}

/// The whole state: users with their tokens, and properties, in a stable order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Users by account id, each with their tokens in digest order.
    pub users: Vec<(User, Vec<TokenEntry>)>,
    /// Properties by account id, then key: (account id, key, stored JSON text).
    pub properties: Vec<(String, String, String)>,
}

impl Store {
    /// The first `most` users (`usize::MAX` for every one; active ones only, when `active_only`),
    /// by account id.
    pub async fn users(&self, site: SiteKey, most: usize, active_only: bool) -> Result<Vec<User>> {
        forward!(self.users(site, most, active_only).await)
    }

    /// Changes a user.
    pub async fn update_user(
        &self,
        site: SiteKey,
        account_id: &str,
        patch: &UserPatch,
    ) -> Result<PatchOutcome> {
        forward!(self.update_user(site, account_id, patch).await)
    }

    /// Deletes a user with their tokens and properties; whether they existed.
    pub async fn delete_user(&self, site: SiteKey, account_id: &str) -> Result<bool> {
        forward!(self.delete_user(site, account_id).await)
    }

    /// Adds a token for a user; its new id, or `None` when there is no such user.
    pub async fn add_token(
        &self,
        site: SiteKey,
        account_id: &str,
        digest: &TokenDigest,
        limits: &TokenLimits,
    ) -> Result<Option<String>> {
        forward!(self.add_token(site, account_id, digest, limits).await)
    }

    /// A user's properties by key, read in one statement; `None` when there is no such user.
    pub async fn properties(
        &self,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Option<Vec<(String, PropertyValue)>>> {
        forward!(self.properties(site, account_id).await)
    }

    /// A user's tokens by creation; `None` when there is no such user.
    pub async fn tokens(&self, site: SiteKey, account_id: &str) -> Result<Option<Vec<TokenInfo>>> {
        forward!(self.tokens(site, account_id).await)
    }

    /// Revokes a user's token; whether it existed.
    pub async fn revoke_token(&self, site: SiteKey, account_id: &str, id: &str) -> Result<bool> {
        forward!(self.revoke_token(site, account_id, id).await)
    }

    /// Deletes every property, and with `everything` every user and token too.
    pub async fn reset(&self, site: SiteKey, everything: bool) -> Result<()> {
        forward!(self.reset(site, everything).await)
    }

    /// The whole state, read in one transaction.
    pub async fn snapshot(&self, site: SiteKey) -> Result<Snapshot> {
        forward!(self.snapshot(site).await)
    }

    /// Replaces the whole state with a snapshot, in one transaction.
    pub async fn restore(&self, site: SiteKey, snapshot: &Snapshot) -> Result<()> {
        forward!(self.restore(site, snapshot).await)
    }

    /// Makes a site with a seed, in one transaction, unless `most` sites exist already; the site
    /// keeps `kept`, its seed in the snapshot format, for resets.
    pub async fn create_site(
        &self,
        id: CloudId,
        name: &SiteName,
        seed: &SeedData,
        kept: &str,
        most: u64,
    ) -> Result<CreatedSite> {
        forward!(self.create_site(id, name, seed, kept, most).await)
    }

    /// The seed a site made through the admin API keeps (the snapshot format), if it has one.
    pub async fn site_seed(&self, site: SiteKey) -> Result<Option<String>> {
        forward!(self.site_seed(site).await)
    }

    /// Deletes a site and everything of it; whether it existed. The default site stays.
    pub async fn delete_site(&self, site: SiteKey) -> Result<bool> {
        forward!(self.delete_site(site).await)
    }

    /// Every site, oldest first.
    pub async fn sites(&self) -> Result<Vec<Site>> {
        forward!(self.sites().await)
    }

    /// The site with this name.
    pub async fn site_named(&self, name: &str) -> Result<Option<Site>> {
        forward!(self.site_named(name).await)
    }

    /// The site with this cloudId.
    pub async fn site_with_id(&self, id: CloudId) -> Result<Option<Site>> {
        forward!(self.site_with_id(id).await)
    }

    /// Whether the database answers and holds the schema.
    pub async fn ready(&self) -> Result<()> {
        forward!(self.ready().await)
    }
}
