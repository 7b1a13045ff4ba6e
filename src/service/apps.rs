//! Apps as an administrator registers them: OAuth 2.0 apps and service accounts (each also a
//! user of its sites), listed without secrets, deleted with everything they hold.

use crate::clock::{SharedClock, unix_ms};
use crate::credentials::Secret;
use crate::credentials::TokenDigest;
use crate::domain::{
    AccountId, AppKind, MAX_ACCOUNT_ID_CHARS, MAX_DISPLAY_NAME_CHARS, NewUser, Scopes, SiteKey,
};
use crate::error::{Error, Result};
use crate::service::AdminService;
use crate::service::oauth::random_token;
use crate::store::Store;
use crate::store::oauth::{AppRecord, Grant};

/// Service accounts' emails end so.
const SERVICE_ACCOUNT_DOMAIN: &str = "serviceaccount.atlassian.com";

/// Registrations running, each holding a read lock, so that the process can wait for them
/// before it exits ([`registrations_ended`]): the runtime would cut them off half-way, and a
/// service account left without some of its users stays so.
static REGISTERING: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Waits, at most `bound`, for the app registrations running to end.
pub async fn registrations_ended(bound: std::time::Duration) {
    if tokio::time::timeout(bound, REGISTERING.write())
        .await
        .is_err()
    {
        tracing::warn!("an app registration did not end before the exit");
    }
}

/// The registry of apps over one store.
#[derive(Debug, Clone)]
pub struct AppService {
    store: Store,
    admin: AdminService,
    clock: SharedClock,
}

/// An app to register.
#[derive(Debug, Default)]
pub struct NewApp {
    /// Its name.
    pub name: String,
    /// OAuth 2.0 app (`None` too) or service account.
    pub kind: Option<AppKind>,
    /// Its one callback URL (OAuth 2.0 apps).
    pub callback_url: Option<String>,
    /// The scopes it may use.
    pub scopes: Scopes,
    /// Whether a `login_hint` grants at once.
    pub auto_consent: bool,
    /// A pinned client id.
    pub client_id: Option<String>,
    /// A pinned client secret.
    pub client_secret: Option<Secret>,
    /// A service account's sites.
    pub sites: Vec<SiteKey>,
    /// Whether a service account administers Jira.
    pub admin: bool,
}

/// A registered app, with its secret shown this once.
#[derive(Debug)]
pub struct CreatedApp {
    /// The app.
    pub app: AppRecord,
    /// Its client secret.
    pub client_secret: Secret,
    /// A service account's user: account id and email.
    pub account: Option<(String, String)>,
}

impl AppService {
    /// Apps over `store`, registered at `clock`'s time.
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self {
            admin: AdminService::new(store.clone()),
            store,
            clock,
        }
    }

    /// Registers an app; a service account also becomes a user of each of its sites. The
    /// registration runs to its end, or is undone, even when the caller stops waiting (a
    /// request that timed out, a signal during start): a service account is several writes.
    pub async fn create_app(&self, new: NewApp) -> Result<CreatedApp> {
        let apps = self.clone();
        let running = REGISTERING.read().await;
        let registration = async move {
            let _running = running;
            apps.register(new).await
        };
        tokio::spawn(tracing::Instrument::in_current_span(registration))
            .await
            .map_err(|e| Error::Internal(format!("app registration failed: {e}")))?
    }

    async fn register(&self, new: NewApp) -> Result<CreatedApp> {
        let CheckedApp {
            app,
            secret,
            account,
            user,
            sites,
        } = new.checked()?;
        if !self
            .store
            .oauth()
            .add_app(&app, unix_ms(&self.clock))
            .await?
        {
            return Err(Error::Conflict(format!(
                "An app with client id '{}' exists already.",
                app.client_id
            )));
        }
        if let Some(user) = user {
            for (made, site) in sites.iter().enumerate() {
                let created = self.admin.create_user(*site, user.clone(), Vec::new());
                if let Err(error) = created.await {
                    self.forget(
                        &app.client_id,
                        &user.account_id,
                        sites.get(..made).unwrap_or_default(),
                    )
                    .await;
                    return Err(error);
                }
            }
        }
        Ok(CreatedApp {
            app,
            client_secret: secret,
            account,
        })
    }

    /// Undoes a registration that failed half-way (a site deleted meanwhile, a clash): the app
    /// and the users `made` for it go, so that it can be made again with the same client id.
    async fn forget(&self, client_id: &str, account_id: &AccountId, made: &[SiteKey]) {
        for site in made {
            if let Err(error) = self.admin.delete_user(*site, account_id).await
                && !matches!(error, Error::UserNotFound(_))
            {
                tracing::warn!(%error, "a failed registration's user was not removed");
            }
        }
        if let Err(error) = self.store.oauth().delete_app(client_id).await {
            tracing::warn!(%error, "a failed registration's app was not removed");
        }
    }

    /// The app with this client id.
    pub async fn app(&self, client_id: &str) -> Result<Option<AppRecord>> {
        Ok(self.store.oauth().app(client_id).await?)
    }

    /// Every app.
    pub async fn apps(&self) -> Result<Vec<AppRecord>> {
        Ok(self.store.oauth().apps().await?)
    }

    /// An app's grants: whom it acts for, where, with which scopes.
    pub async fn grants(&self, client_id: &str) -> Result<Vec<Grant>> {
        if self.app(client_id).await?.is_none() {
            return Err(Error::AppNotFound(client_id.to_owned()));
        }
        Ok(self.store.oauth().grants_of(client_id).await?)
    }

    /// Revokes one grant of an app: its refresh-token family and every access token it issued
    /// stop working at the next request, on every instance.
    pub async fn revoke_grant(&self, client_id: &str, grant_id: &str) -> Result<()> {
        if self.app(client_id).await?.is_none() {
            return Err(Error::AppNotFound(client_id.to_owned()));
        }
        // No grant id has control characters (PostgreSQL cannot even compare NUL).
        if !grant_id.chars().any(char::is_control)
            && self.store.oauth().delete_grant(client_id, grant_id).await?
        {
            return Ok(());
        }
        Err(Error::GrantNotFound(grant_id.to_owned()))
    }

    /// Deletes an app with every grant and token it holds; a service account's users go too.
    pub async fn delete_app(&self, client_id: &str, sites: &[SiteKey]) -> Result<()> {
        let app = self
            .store
            .oauth()
            .app(client_id)
            .await?
            .ok_or_else(|| Error::AppNotFound(client_id.to_owned()))?;
        // The users first: should one fail, the app is still there to be deleted again.
        // The service account's id was made here, so it parses.
        if let Some(Ok(account_id)) = app.account_id.as_deref().map(AdminService::account) {
            for site in sites {
                match self.admin.delete_user(*site, &account_id).await {
                    // Gone already from a site is as good as deleted.
                    Ok(()) | Err(Error::UserNotFound(_)) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        self.store.oauth().delete_app(client_id).await?;
        Ok(())
    }
}

/// An app as [`AppService::create_app`] stores it: checked, nothing stored yet.
pub struct CheckedApp {
    app: AppRecord,
    secret: Secret,
    account: Option<(String, String)>,
    user: Option<NewUser>,
    sites: Vec<SiteKey>,
}

impl CheckedApp {
    /// A service account's user: its account id and email.
    pub fn account(&self) -> Option<(&str, &str)> {
        self.account
            .as_ref()
            .map(|(account_id, email)| (account_id.as_str(), email.as_str()))
    }
}

impl NewApp {
    /// Refuses what registering would refuse before the store is asked (so a seed is checked
    /// whole before anything of it is stored); makes up a missing client id and secret.
    pub fn checked(self) -> Result<CheckedApp> {
        let kind = self.kind.unwrap_or(AppKind::OAuth2);
        let name = self.name.trim().to_owned();
        if name.is_empty()
            || name.chars().count() > MAX_DISPLAY_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(Error::BadRequest(
                "An app needs a name: 1 to 255 characters, without control characters.".to_owned(),
            ));
        }
        if kind == AppKind::OAuth2 {
            let callback = self.callback_url.as_deref().unwrap_or_default();
            let parsed = url::Url::parse(callback).ok();
            // Stored as given, so it holds no control characters (the parser would drop them).
            if !parsed.is_some_and(|url| matches!(url.scheme(), "http" | "https"))
                || callback.chars().any(char::is_control)
            {
                return Err(Error::BadRequest(
                    "An OAuth 2.0 app needs a callbackUrl: an http or https URL.".to_owned(),
                ));
            }
        }
        if kind == AppKind::ServiceAccount && self.callback_url.is_some() {
            return Err(Error::BadRequest(
                "A service account has no callbackUrl: it asks for tokens with its client \
                 credentials."
                    .to_owned(),
            ));
        }
        if kind == AppKind::ServiceAccount && self.sites.is_empty() {
            return Err(Error::BadRequest(
                "A service account needs the sites it is a user of.".to_owned(),
            ));
        }
        let secret = match self.client_secret {
            Some(secret) if !secret.is_empty() => secret,
            Some(_) => return Err(Error::BadRequest("clientSecret must not be empty.".into())),
            None => random_token()?.into(),
        };
        let client_id = match self.client_id {
            Some(id) if is_client_id(&id) => id,
            Some(_) => {
                return Err(Error::BadRequest(
                    "clientId must be 1 to 128 letters, digits, '-', '_' or '.'.".to_owned(),
                ));
            }
            None => random_token()?,
        };
        if kind == AppKind::ServiceAccount && client_id.len() > MAX_ACCOUNT_ID_CHARS - 7 {
            return Err(Error::BadRequest(
                "A service account's clientId must be at most 121 characters: its accountId is \
                 712020: and the clientId."
                    .to_owned(),
            ));
        }
        let account = (kind == AppKind::ServiceAccount).then(|| {
            // Short enough that the email stays within its limit whatever the name.
            let label: String = name
                .chars()
                .take(64)
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            let account_id = format!("712020:{client_id}");
            (
                account_id,
                format!(
                    "{}-{}@{SERVICE_ACCOUNT_DOMAIN}",
                    label.trim_matches('-'),
                    client_id
                ),
            )
        });
        // The service account's user, checked before anything is stored.
        let user = match &account {
            Some((account_id, email)) => Some(NewUser {
                admin: self.admin,
                ..NewUser::parse(account_id, email, Some(&name))
                    .map_err(|e| Error::BadRequest(e.to_string()))?
            }),
            None => None,
        };
        let app = AppRecord {
            client_id,
            name,
            kind,
            secret: TokenDigest::of(&secret),
            callback_url: self.callback_url,
            scopes: self.scopes,
            auto_consent: self.auto_consent,
            account_id: account.as_ref().map(|(id, _)| id.clone()),
        };
        // A site named twice is one site, whichever way the app came (API, seed or command).
        let mut sites = self.sites;
        let mut seen = std::collections::HashSet::with_capacity(sites.len());
        sites.retain(|site| seen.insert(*site));
        Ok(CheckedApp {
            app,
            secret,
            account,
            user,
            sites,
        })
    }
}

/// A client id, pinned: plain characters only, so that it travels in URLs unescaped.
fn is_client_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
