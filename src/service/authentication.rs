//! Who is calling: credentials checked against the stored token digests, and OAuth 2.0 access
//! tokens on the gateway form.

use crate::clock::{SharedClock, unix_ms};
pub use crate::credentials::Via;
use crate::credentials::{Credentials, Proof, TokenDigest};
use crate::domain::{Caller, CredentialsVersion, SiteKey, email_key};
use crate::error::{Error, Result};
use crate::store::Store;

/// Turns credentials into a [`Caller`].
#[derive(Debug, Clone)]
pub struct Authenticator {
    store: Store,
    clock: SharedClock,
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
        match credentials {
            // No account has an email with control characters (PostgreSQL cannot even store NUL).
            Credentials::Basic { email, .. } if email.chars().any(char::is_control) => {
                Err(rejected())
            }
            Credentials::Basic { email, token } => {
                let email_key = email_key(email);
                let claim = Claim {
                    via,
                    email_key: Some(&email_key),
                    digest: TokenDigest::of(token),
                };
                self.prove(site, claim).await
            }
            Credentials::Bearer(token) => {
                let claim = Claim {
                    via,
                    email_key: None,
                    digest: TokenDigest::of(token),
                };
                self.prove(site, claim).await
            }
        }
    }

    /// The caller once more, from what they proved: for a caller whose cached credentials the
    /// store found overtaken by a change. What is read now is at least as new as the version the
    /// store found, which a statement of this very request read, so it holds every change
    /// answered before the request began: nothing later needs to confirm it, and a retry with it
    /// cannot be stale again, however busy other sites keep the version.
    pub async fn renew(&self, caller: &Caller) -> Result<Caller> {
        let proof = caller.proof.as_ref().ok_or_else(rejected)?;
        let claim = Claim {
            via: proof.via,
            email_key: proof.email_key.as_deref(),
            digest: proof.digest,
        };
        let mut renewed = self.prove(caller.site, claim).await?;
        renewed.credentials_version = None;
        Ok(renewed)
    }

    /// Who is calling, confirmed against the stored credentials at once: for callers that run
    /// no statement of a user-properties operation, which would confirm them (the consent
    /// page's sign-in, a Jira user at the admin API).
    pub async fn authenticate_confirmed(
        &self,
        site: SiteKey,
        via: Via,
        credentials: Option<&Credentials>,
    ) -> Result<Caller> {
        let caller = self.authenticate(site, via, credentials).await?;
        self.confirmed(&caller).await
    }

    /// The caller, their cached credentials confirmed by one statement, or read again when a
    /// change overtook them: for operations whose own statements do not confirm them.
    pub async fn confirmed(&self, caller: &Caller) -> Result<Caller> {
        match self.store.confirm(caller.credentials_version).await {
            Err(stale) if stale.is_stale() => self.renew(caller).await,
            Err(other) => Err(other.into()),
            Ok(()) => Ok(caller.clone()),
        }
    }

    /// Who made this claim. A refusal decided on cached credentials is confirmed first: a token
    /// made or a user reactivated through another instance works at once here too. A caller
    /// accepted on cached credentials keeps what they proved, to prove it again if need be.
    async fn prove(&self, site: SiteKey, claim: Claim<'_>) -> Result<Caller> {
        let outcome = match self.prove_once(site, &claim).await {
            Err(Refusal {
                error,
                cached: Some(version),
            }) if error.is_rejection() => match self.store.confirm(Some(version)).await {
                Err(stale) if stale.is_stale() => self.prove_once(site, &claim).await,
                Err(other) => return Err(other.into()),
                Ok(()) => return Err(error),
            },
            outcome => outcome,
        };
        let mut caller = outcome.map_err(|refusal| refusal.error)?;
        if caller.credentials_version.is_some() {
            caller.proof = Some(Proof {
                via: claim.via,
                email_key: claim.email_key.map(str::to_owned),
                digest: claim.digest,
            });
        }
        Ok(caller)
    }

    /// One attempt, on whatever the store holds; the caller's proof is left to [`Self::prove`].
    async fn prove_once(&self, site: SiteKey, claim: &Claim<'_>) -> Result<Caller, Refusal> {
        let via = claim.via;
        let (user, token, version) = match claim.email_key {
            Some(email_key) => {
                let account = self.store.account_by_email(site, email_key).await?;
                let account = account.ok_or_else(rejected)?;
                let cached = account.version;
                // Every digest is compared, without stopping at a match, in constant time each.
                let matched = account.tokens.iter().fold(None, |found, stored| {
                    if stored.digest.matches(&claim.digest) {
                        Some(stored)
                    } else {
                        found
                    }
                });
                let token = matched
                    .ok_or_else(|| Refusal::cached(rejected(), cached))?
                    .clone();
                (account.user.clone(), token, cached)
            }
            None => {
                if via == Via::Gateway
                    && let Some(access) = self
                        .store
                        .oauth()
                        .access(site, &claim.digest, unix_ms(&self.clock))
                        .await?
                {
                    if !access.user.active {
                        return Err(rejected().into());
                    }
                    // Read afresh by this request: nothing to confirm later.
                    return Ok(Caller {
                        site,
                        scopes: Some(access.scopes.clone()),
                        user: access.user.clone(),
                        proof: None,
                        credentials_version: None,
                    });
                }
                let owner = self.store.token_owner(site, &claim.digest).await?;
                let owner = owner.ok_or_else(rejected)?;
                // A scoped token is Basic only; as Bearer the gateway knows no such resource.
                if owner.token.scopes.is_some() {
                    return Err(match via {
                        Via::Gateway => Error::ScopedTokenAsBearer,
                        Via::Site => rejected(),
                    }
                    .into());
                }
                (owner.user.clone(), owner.token.clone(), owner.version)
            }
        };
        let expired = token
            .expires_at
            .is_some_and(|at| at <= unix_ms(&self.clock));
        // Scoped API tokens work only through the gateway, as on Atlassian's cloud.
        let scoped_on_site = token.scopes.is_some() && via == Via::Site;
        if !user.active || expired || scoped_on_site {
            return Err(Refusal::cached(rejected(), version));
        }
        Ok(Caller {
            site,
            scopes: token.scopes,
            user,
            proof: None,
            credentials_version: version,
        })
    }
}

/// What a request claims: [`Proof`] borrowed from its credentials, not yet copied.
struct Claim<'a> {
    via: Via,
    email_key: Option<&'a str>,
    digest: TokenDigest,
}

/// Why an attempt failed, and the version of the cached credentials it was decided on, if any.
struct Refusal {
    error: Error,
    cached: Option<CredentialsVersion>,
}

impl Refusal {
    fn cached(error: Error, cached: Option<CredentialsVersion>) -> Self {
        Self { error, cached }
    }
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Self {
            error,
            cached: None,
        }
    }
}

impl From<crate::store::Error> for Refusal {
    fn from(error: crate::store::Error) -> Self {
        Error::from(error).into()
    }
}

fn rejected() -> Error {
    Error::Unauthenticated {
        credentials_rejected: true,
    }
}
