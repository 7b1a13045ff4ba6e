//! Who is calling: credentials checked against the stored token digests.

use crate::credentials::{Credentials, TokenDigest};
use crate::domain::{Caller, SiteKey, email_key};
use crate::error::{Error, Result};
use crate::store::Store;

/// Turns credentials into a [`Caller`].
#[derive(Debug, Clone)]
pub struct Authenticator {
    store: Store,
}

impl Authenticator {
    /// Checks credentials against `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Who is calling on `site`. Credentials of an unknown token, a mismatched email or a
    /// deactivated user are all rejected alike; so are those of another site.
    pub async fn authenticate(
        &self,
        site: SiteKey,
        credentials: Option<&Credentials>,
    ) -> Result<Caller> {
        let credentials = credentials.ok_or(Error::Unauthenticated {
            credentials_rejected: false,
        })?;
        let user = match credentials {
            // No account has an email with control characters (PostgreSQL cannot even store NUL).
            Credentials::Basic { email, .. } if email.chars().any(char::is_control) => None,
            Credentials::Basic { email, token } => {
                let digest = TokenDigest::of(token);
                let account = self.store.account_by_email(site, &email_key(email)).await?;
                // Every digest is compared, without stopping at a match, in constant time each.
                account
                    .filter(|account| {
                        account
                            .digests
                            .iter()
                            .fold(false, |found, stored| found | stored.matches(&digest))
                    })
                    .map(|account| account.user.clone())
            }
            Credentials::Bearer(token) => {
                self.store
                    .token_owner(site, &TokenDigest::of(token))
                    .await?
            }
        };
        let user = user
            .filter(|user| user.active)
            .ok_or(Error::Unauthenticated {
                credentials_rejected: true,
            })?;
        Ok(Caller { site, user })
    }
}
