//! One user of a seed, as the seed format, the admin API and snapshots write it: the user and
//! their tokens (classic, or with scopes and an expiry), checked on their own.

use std::path::Path;

use serde::Deserialize;

use super::{SeedError, fail};
use crate::clock::parse_rfc3339_ms;
use crate::credentials::TokenDigest;
use crate::domain::{AccountId, NewUser, Scopes};
use crate::store::admin::{TokenEntry, TokenLimits};

/// One user as the seed format, the admin API and snapshots write it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SeedUser {
    account_id: String,
    email: String,
    display_name: Option<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default = "active_by_default")]
    active: bool,
    #[serde(default)]
    api_tokens: Vec<SeedToken>,
    /// Digests of tokens whose secrets are not known, as snapshots carry them.
    #[serde(default)]
    api_token_hashes: Vec<SeedToken>,
}

/// A token of a seed: its text alone (a classic token), or an object with its scopes and expiry.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a token as a string, or an object with the token, scopes and expiresAt"
)]
enum SeedToken {
    Classic(String),
    Limited(LimitedToken),
}

/// `{"token": …}` in `apiTokens`, `{"hash": …}` in `apiTokenHashes`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LimitedToken {
    token: Option<String>,
    hash: Option<String>,
    scopes: Option<Vec<String>>,
    expires_at: Option<String>,
}

impl SeedToken {
    /// The text (`field` is `token` or `hash`) and the limits.
    fn parts(&self, field: &str) -> Result<(&str, TokenLimits), String> {
        let limited = match self {
            SeedToken::Classic(text) => return Ok((text, TokenLimits::default())),
            SeedToken::Limited(limited) => limited,
        };
        let (text, other) = match field {
            "token" => (&limited.token, &limited.hash),
            _ => (&limited.hash, &limited.token),
        };
        let text = text
            .as_deref()
            .filter(|_| other.is_none())
            .ok_or_else(|| format!("a token given as an object needs \"{field}\" and only it"))?;
        let expires_at = limited
            .expires_at
            .as_deref()
            .map(parse_rfc3339_ms)
            .transpose()
            .map_err(|reason| format!("expiresAt {reason}"))?;
        let scopes = limited
            .scopes
            .as_ref()
            .map(|scopes| Scopes::of(scopes))
            .transpose()
            .map_err(|e| format!("scopes: {e}"))?;
        Ok((text, TokenLimits { scopes, expires_at }))
    }
}

fn active_by_default() -> bool {
    true
}

/// A user entry, validated: the user and the digests of their tokens.
#[derive(Debug)]
pub struct UserSeed {
    /// The user.
    pub user: NewUser,
    /// Their tokens, in the order given.
    pub tokens: Vec<TokenEntry>,
}

impl SeedUser {
    /// The account id alone, checked before anything else so that errors can name it.
    fn account_id(&self) -> Result<AccountId, String> {
        AccountId::parse(self.account_id.as_str()).map_err(|e| e.to_string())
    }

    /// Everything an entry says, valid on its own; what spans entries is the caller's to check.
    fn validate(self) -> Result<UserSeed, String> {
        let user = NewUser::parse(&self.account_id, &self.email, self.display_name.as_deref())
            .map_err(|e| e.to_string())?;
        let mut tokens = Vec::with_capacity(self.api_tokens.len() + self.api_token_hashes.len());
        for entry in &self.api_tokens {
            let (token, limits) = entry.parts("token")?;
            if token.is_empty() || token.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(
                    "apiTokens must be non-empty, without spaces or control characters".to_owned(),
                );
            }
            // A new token's scopes are checked as the admin API checks them; a digest's
            // (`apiTokenHashes`, from snapshots) are taken as they were stored.
            if limits.scopes.as_ref().is_some_and(Scopes::is_empty) {
                return Err(
                    "scopes must name at least one scope; leave it out for a classic token"
                        .to_owned(),
                );
            }
            let digest = TokenDigest::of(token);
            tokens.push(TokenEntry { digest, limits });
        }
        for entry in &self.api_token_hashes {
            let (hash, limits) = entry.parts("hash")?;
            let digest = TokenDigest::from_hex(hash).ok_or_else(|| {
                "apiTokenHashes must be SHA-256 digests in 64 hex digits".to_owned()
            })?;
            tokens.push(TokenEntry { digest, limits });
        }
        let mut distinct: Vec<_> = tokens.iter().map(|token| token.digest).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < tokens.len() {
            return Err("an API token appears twice".to_owned());
        }
        let user = NewUser {
            admin: self.admin,
            active: self.active,
            ..user
        };
        Ok(UserSeed { user, tokens })
    }
}

/// Reads one user entry, as `users[index]` of the document `path` names.
pub(super) fn user_entry(
    path: &Path,
    index: usize,
    raw: &str,
) -> Result<(String, UserSeed), SeedError> {
    let entry = format!("users[{index}]");
    let user: SeedUser = super::parse_entry(path, &entry, raw)?;
    let entry = format!("{entry} ({:?})", user.account_id);
    user.account_id()
        .map_err(|reason| fail(path, &entry, reason))?;
    let seed = user
        .validate()
        .map_err(|reason| fail(path, &entry, reason))?;
    Ok((entry, seed))
}

/// Reads one user in the seed format, as the admin API takes it; `source` names it in errors.
pub fn parse_user(source: &Path, text: &str) -> Result<UserSeed, SeedError> {
    Ok(user_entry(source, 0, text)?.1)
}
