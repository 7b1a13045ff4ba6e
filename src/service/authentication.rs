//! Who is calling: credentials checked against the stored token digests, and OAuth 2.0 access
//! tokens on the gateway form.

use crate::clock::{SharedClock, unix_ms};
use crate::credentials::{Credentials, TokenDigest};
use crate::domain::{Caller, SiteKey, email_key};
use crate::error::{Error, Result};
use crate::store::Store;

/// Turns credentials into a [`Caller`].
#[derive(Debug, Clone)]
pub struct Authenticator {
    store: Store,
    clock: SharedClock,
}

/// How a request reached its site, as far as credentials care: OAuth 2.0 access tokens work
/// only through the gateway (`api.atlassian.com/ex/jira/{cloudId}`), as on Atlassian's cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The site's own URL.
    Site,
    /// The gateway form.
    Gateway,
}

impl Authenticator {
    /// Checks credentials against `store`; token expiry is read on `clock`.
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// Who is calling on `site`. Credentials of an unknown token, a mismatched email or a
    /// deactivated user are all rejected alike; so are those of another site.
    pub async fn authenticate(
        &self,
        site: SiteKey,
        via: Via,
        credentials: Option<&Credentials>,
    ) -> Result<Caller> {
        let credentials = credentials.ok_or(Error::Unauthenticated {
            credentials_rejected: false,
        })?;
        let rejected = || Error::Unauthenticated {
            credentials_rejected: true,
        };
        let (user, token) = match credentials {
            // No account has an email with control characters (PostgreSQL cannot even store NUL).
            Credentials::Basic { email, .. } if email.chars().any(char::is_control) => {
                return Err(rejected());
            }
            Credentials::Basic { email, token } => {
                let digest = TokenDigest::of(token);
                let account = self.store.account_by_email(site, &email_key(email)).await?;
                let account = account.ok_or_else(rejected)?;
                // Every digest is compared, without stopping at a match, in constant time each.
                let matched = account.tokens.iter().fold(None, |found, stored| {
                    if stored.digest.matches(&digest) {
                        Some(stored)
                    } else {
                        found
                    }
                });
                let token = matched.ok_or_else(rejected)?.clone();
                (account.user.clone(), token)
            }
            Credentials::Bearer(token) => {
                let digest = TokenDigest::of(token);
                if via == Via::Gateway
                    && let Some(access) = self
                        .store
                        .oauth()
                        .access(site, &digest, unix_ms(&self.clock))
                        .await?
                {
                    if !access.user.active {
                        return Err(rejected());
                    }
                    let scopes = Some(access.scopes.clone());
                    let user = access.user.clone();
                    return Ok(Caller { site, scopes, user });
                }
                let owner = self.store.token_owner(site, &digest).await?;
                let owner = owner.ok_or_else(rejected)?;
                // A scoped token is Basic only; as Bearer the gateway knows no such resource.
                if owner.token.scopes.is_some() {
                    return Err(match via {
                        Via::Gateway => Error::ScopedTokenAsBearer,
                        Via::Site => rejected(),
                    });
                }
                (owner.user.clone(), owner.token.clone())
            }
        };
        let expired = token
            .expires_at
            .is_some_and(|at| at <= unix_ms(&self.clock));
        // Scoped API tokens work only through the gateway, as on Atlassian's cloud.
        let scoped_on_site = token.scopes.is_some() && via == Via::Site;
        if !user.active || expired || scoped_on_site {
            return Err(rejected());
        }
        Ok(Caller {
            site,
            scopes: token.scopes,
            user,
        })
    }
}
