//! OAuth 2.0, as `auth.atlassian.com` plays it: the authorization-code flow, the token endpoint
//! with rotating refresh tokens, client credentials for service accounts, and what a token
//! reaches (`accessible-resources`, `/me`).
//!
//! A little past 350 lines, and one idea: the three grants share the client check and the
//! issuing of tokens, and their rules read best side by side.

use std::time::Duration;

use crate::clock::SharedClock;
use crate::credentials::{Secret, TokenDigest, generate_token};
use crate::domain::{AppKind, Scopes, SiteKey, User};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::oauth::{AppRecord, Grant, GrantedSite, Refresh};

/// Authorization codes live this long (Atlassian: "about 10 minutes").
const CODE_TTL: Duration = Duration::from_secs(600);
/// A spent refresh token presented again within this long is tolerated.
const REFRESH_LEEWAY: Duration = Duration::from_secs(600);
/// A refresh token unused this long expires.
const REFRESH_INACTIVITY: Duration = Duration::from_secs(90 * 24 * 3600);
/// A token family's absolute life.
const FAMILY_LIFE: Duration = Duration::from_secs(365 * 24 * 3600);
/// The scope that earns a refresh token.
const OFFLINE_ACCESS: &str = "offline_access";

/// Apps and their tokens over one store.
#[derive(Debug)]
pub struct OAuthService {
    store: Store,
    clock: SharedClock,
    access_ttl: Duration,
}

/// Tokens the token endpoint hands out.
#[derive(Debug)]
pub struct IssuedTokens {
    /// The access token.
    pub access_token: Secret,
    /// Its life in seconds.
    pub expires_in: u64,
    /// What it may do.
    pub scopes: Scopes,
    /// The next refresh token, with `offline_access`.
    pub refresh_token: Option<Secret>,
}

/// A token request, as the endpoint parsed it.
#[derive(Debug, Default, Clone)]
#[cfg_attr(any(test, feature = "fuzzing"), derive(PartialEq, Eq))]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token` or `client_credentials`.
    pub grant_type: Option<String>,
    /// The client, from the body or a Basic header.
    pub client_id: Option<String>,
    /// Its secret.
    pub client_secret: Option<Secret>,
    /// The code (`authorization_code`).
    pub code: Option<Secret>,
    /// The redirect URI the code was made for (`authorization_code`).
    pub redirect_uri: Option<String>,
    /// The refresh token (`refresh_token`).
    pub refresh_token: Option<Secret>,
    /// A scope parameter, refused for client credentials.
    pub scope: Option<String>,
    /// A Basic header's id and secret as sent, when form-decoding changed them: tried when the
    /// decoded ones fail, for clients that do not form-encode (a secret with a `+`, say).
    pub basic_as_sent: Option<(String, Secret)>,
}

/// The OAuth 2.0 error codes (RFC 6749, 4.1.2.1 and 5.2) that `/authorize` and the token
/// endpoint answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// A parameter missing, repeated or malformed.
    InvalidRequest,
    /// The client's id or secret is wrong.
    InvalidClient,
    /// A code or refresh token that is unknown, spent or expired.
    InvalidGrant,
    /// The client may not ask this (unknown id, callback URL, kind of app).
    UnauthorizedClient,
    /// A grant type the server does not issue.
    UnsupportedGrantType,
    /// A response type other than `code`.
    UnsupportedResponseType,
    /// Scopes the app does not have.
    InvalidScope,
    /// The user, or the server for them, said no.
    AccessDenied,
}

impl OAuthErrorCode {
    /// The code as the protocol spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
        }
    }
}

/// A refusal of `/authorize` or the token endpoint, as Atlassian writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The OAuth error code.
    pub error: OAuthErrorCode,
    /// Its description.
    pub description: String,
}

impl OAuthError {
    /// A refusal with this code and description.
    pub fn new(error: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }

    fn invalid_client() -> Self {
        Self::new(OAuthErrorCode::InvalidClient, "Unauthorized")
    }
}

/// A token endpoint outcome: tokens, a refusal, or a fault of the store.
pub type TokenOutcome = Result<std::result::Result<IssuedTokens, OAuthError>>;

/// A valid `/authorize` request: the app, and the scopes asked for.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// The app.
    pub app: AppRecord,
    /// The scopes asked for, all of them the app's.
    pub scopes: Scopes,
    /// Where the user goes back to: the app's callback URL.
    pub redirect_uri: String,
}

impl OAuthService {
    /// Apps over `store`; access tokens live `access_ttl`.
    pub fn new(store: Store, clock: SharedClock, access_ttl: Duration) -> Self {
        Self {
            store,
            clock,
            access_ttl,
        }
    }

    pub(super) fn now_ms(&self) -> i64 {
        crate::clock::unix_ms(&self.clock)
    }

    fn later_ms(&self, by: Duration) -> i64 {
        after(self.now_ms(), by)
    }

    /// Checks an `/authorize` request: a known app, its callback URL exactly, its scopes only.
    /// A refusal is an error page, never a redirect.
    pub async fn check_authorization(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
    ) -> Result<std::result::Result<Authorization, OAuthError>> {
        let app = self.store.oauth().app(client_id).await?;
        let Some(app) = app.filter(|app| app.kind == AppKind::OAuth2) else {
            return Ok(Err(OAuthError::new(
                OAuthErrorCode::UnauthorizedClient,
                "Unknown client_id.",
            )));
        };
        if app.callback_url.as_deref() != Some(redirect_uri) {
            let description = format!(
                "Callback URL mismatch. {redirect_uri} is not in the list of allowed callback URLs"
            );
            return Ok(Err(OAuthError::new(
                OAuthErrorCode::UnauthorizedClient,
                description,
            )));
        }
        let scopes = Scopes::parse(scope);
        // `offline_access` is asked for, never registered: it is no API's scope.
        let registered = |scope: &str| scope == OFFLINE_ACCESS || app.scopes.holds(scope);
        if scopes.is_empty() || !scopes.iter().all(registered) {
            return Ok(Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "The scope asked for is not among the app's scopes.",
            )));
        }
        Ok(Ok(Authorization {
            redirect_uri: redirect_uri.to_owned(),
            app,
            scopes,
        }))
    }

    /// Every site's account named by an email or an account id (a `login_hint`).
    pub async fn accounts(&self, hint: &str) -> Result<Vec<(SiteKey, User)>> {
        // No account id or email has control characters (PostgreSQL cannot even compare NUL).
        if hint.chars().any(char::is_control) {
            return Ok(Vec::new());
        }
        let email_key = crate::domain::email_key(hint);
        Ok(self.store.oauth().accounts(hint, &email_key).await?)
    }

    /// The user consented: a grant for `account_id` on `sites`, and a code for it.
    pub async fn consent(
        &self,
        authorization: &Authorization,
        account_id: &str,
        sites: Vec<SiteKey>,
    ) -> Result<String> {
        let grant = Grant {
            id: random_token()?,
            client_id: authorization.app.client_id.clone(),
            account_id: account_id.to_owned(),
            scopes: authorization.scopes.clone(),
            sites,
            ends_at: self.later_ms(FAMILY_LIFE),
        };
        let oauth = self.store.oauth();
        // Each consent tidies the grants whose codes were never exchanged, so that they do not
        // pile up (`/authorize` needs no credentials for an app that consents by itself).
        oauth.forget_unexchanged(self.now_ms()).await?;
        oauth.add_grant(&grant).await?;
        let code = random_token()?;
        oauth
            .add_code(
                &TokenDigest::of(&code),
                &grant.id,
                &authorization.redirect_uri,
                self.later_ms(CODE_TTL),
            )
            .await?;
        Ok(code)
    }

    /// `POST /oauth/token`.
    pub async fn token(&self, request: TokenRequest) -> TokenOutcome {
        let Some(grant_type) = request.grant_type.as_deref() else {
            return Ok(Err(OAuthError::new(
                OAuthErrorCode::InvalidRequest,
                "grant_type is missing",
            )));
        };
        if !matches!(
            grant_type,
            "authorization_code" | "refresh_token" | "client_credentials"
        ) {
            return Ok(Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                format!("Unsupported grant type: {grant_type}"),
            )));
        }
        let app = match self.client(&request).await? {
            Ok(app) => app,
            Err(refusal) => return Ok(Err(refusal)),
        };
        match grant_type {
            "authorization_code" => self.exchange_code(&app, &request).await,
            "refresh_token" => self.refresh(&app, &request).await,
            _ => self.client_credentials(&app, &request).await,
        }
    }

    /// The app whose credentials the request carries, compared in constant time.
    async fn client(
        &self,
        request: &TokenRequest,
    ) -> Result<std::result::Result<AppRecord, OAuthError>> {
        let (Some(client_id), Some(secret)) = (&request.client_id, &request.client_secret) else {
            return Ok(Err(OAuthError::invalid_client()));
        };
        let known = |app: Option<AppRecord>, secret: &Secret| {
            app.filter(|app| app.secret.matches(&TokenDigest::of(secret)))
        };
        if let Some(app) = known(self.store.oauth().app(client_id).await?, secret) {
            return Ok(Ok(app));
        }
        let Some((client_id, secret)) = &request.basic_as_sent else {
            return Ok(Err(OAuthError::invalid_client()));
        };
        Ok(known(self.store.oauth().app(client_id).await?, secret)
            .ok_or_else(OAuthError::invalid_client))
    }

    async fn exchange_code(&self, app: &AppRecord, request: &TokenRequest) -> TokenOutcome {
        let invalid = || {
            OAuthError::new(
                OAuthErrorCode::InvalidRequest,
                "authorization_code is invalid",
            )
        };
        let Some(code) = &request.code else {
            return Ok(Err(invalid()));
        };
        let oauth = self.store.oauth();
        let taken = oauth
            .take_code(&TokenDigest::of(code), self.now_ms())
            .await?;
        let Some((grant, redirect_uri)) = taken else {
            return Ok(Err(invalid()));
        };
        if grant.client_id != app.client_id
            || request.redirect_uri.as_deref() != Some(&redirect_uri)
        {
            // The code is spent: its grant, which has no tokens, can never have any.
            oauth.forget_unused_grant(&grant.id).await?;
            return Ok(Err(invalid()));
        }
        issued_unless_gone(self.issue(&grant, true).await, invalid)
    }

    async fn refresh(&self, app: &AppRecord, request: &TokenRequest) -> TokenOutcome {
        let invalid = || {
            OAuthError::new(
                OAuthErrorCode::InvalidGrant,
                "Unknown or invalid refresh token.",
            )
        };
        let Some(token) = &request.refresh_token else {
            return Ok(Err(invalid()));
        };
        let now = self.now_ms();
        let leeway = i64::try_from(REFRESH_LEEWAY.as_millis()).unwrap_or(i64::MAX);
        let oauth = self.store.oauth();
        let grant_id = match oauth
            .refresh(&TokenDigest::of(token), &app.client_id, now, leeway)
            .await?
        {
            Refresh::Rotated(grant_id) | Refresh::Tolerated(grant_id) => grant_id,
            Refresh::Refused => return Ok(Err(invalid())),
        };
        let grant = oauth.grant(&grant_id).await?;
        match grant {
            Some(grant) if grant.client_id == app.client_id && grant.ends_at > now => {
                issued_unless_gone(self.issue(&grant, true).await, invalid)
            }
            _ => Ok(Err(invalid())),
        }
    }

    async fn client_credentials(&self, app: &AppRecord, request: &TokenRequest) -> TokenOutcome {
        if request.scope.is_some() {
            return Ok(Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "The scope parameter is not allowed for client credentials.",
            )));
        }
        let Some(account_id) = app
            .account_id
            .as_deref()
            .filter(|_| app.kind == AppKind::ServiceAccount)
        else {
            return Ok(Err(OAuthError::new(
                OAuthErrorCode::UnauthorizedClient,
                "Client credentials are for service accounts.",
            )));
        };
        // A site deleted while the grant is made: the grant is made again over the sites left.
        // Gone a second time, the app itself is: refused as an unknown client would be.
        let mut retried = false;
        loop {
            let issued = self.service_account_grant(app, account_id).await;
            match issued {
                Err(Error::Store(error)) if error.is_gone() && !retried => retried = true,
                issued => return issued_unless_gone(issued, OAuthError::invalid_client),
            }
        }
    }

    /// A grant for a service account over every site it is a user of, and its access token.
    async fn service_account_grant(
        &self,
        app: &AppRecord,
        account_id: &str,
    ) -> Result<IssuedTokens> {
        let oauth = self.store.oauth();
        let sites = oauth
            .accounts(account_id, "")
            .await?
            .into_iter()
            .map(|(site, _)| site)
            .collect();
        let grant = Grant {
            id: random_token()?,
            client_id: app.client_id.clone(),
            account_id: account_id.to_owned(),
            scopes: app.scopes.clone(),
            sites,
            ends_at: self.later_ms(self.access_ttl),
        };
        oauth.add_grant(&grant).await?;
        self.issue(&grant, false).await
    }

    /// A new access token for `grant`, and a new refresh token when `refreshable` and the grant
    /// holds `offline_access`.
    async fn issue(&self, grant: &Grant, refreshable: bool) -> Result<IssuedTokens> {
        let oauth = self.store.oauth();
        // Each token issued tidies its app's ended grants, so that they do not pile up.
        oauth
            .forget_ended(&grant.client_id, &grant.id, self.now_ms())
            .await?;
        let access_token = random_token()?;
        // No access token outlives its grant (a family's 365 days, a service account's token).
        // One reading of the clock: `expires_in` is the whole lifetime, not a millisecond more.
        let now = self.now_ms();
        let expires_at = after(now, self.access_ttl).min(grant.ends_at);
        oauth
            .add_token(
                &TokenDigest::of(&access_token),
                &grant.id,
                "access",
                expires_at,
            )
            .await?;
        let refresh_token = if refreshable && grant.scopes.holds(OFFLINE_ACCESS) {
            let token = random_token()?;
            let expires_at = after(now, REFRESH_INACTIVITY).min(grant.ends_at);
            oauth
                .add_token(&TokenDigest::of(&token), &grant.id, "refresh", expires_at)
                .await?;
            Some(token.into())
        } else {
            None
        };
        Ok(IssuedTokens {
            access_token: access_token.into(),
            // Whole seconds, rounded up: 0 would read as "never expires" to some clients.
            expires_in: u64::try_from((expires_at - now).max(1)).map_or(1, |ms| ms.div_ceil(1000)),
            scopes: grant.scopes.clone(),
            refresh_token,
        })
    }

    /// The grant of an access token, with its sites.
    pub async fn grant_of(&self, token: &str) -> Result<Option<(Grant, Vec<GrantedSite>)>> {
        let oauth = self.store.oauth();
        let Some(grant) = oauth
            .grant_of_access(&TokenDigest::of(token), self.now_ms())
            .await?
        else {
            return Ok(None);
        };
        let sites = oauth.granted_sites(&grant.id).await?;
        Ok(Some((grant, sites)))
    }

    /// The user a grant acts for, as one of its sites holds them.
    pub async fn user_of(&self, grant: &Grant) -> Result<Option<User>> {
        let accounts = self.store.oauth().accounts(&grant.account_id, "").await?;
        Ok(accounts
            .into_iter()
            .find(|(site, user)| grant.sites.contains(site) && user.account_id == grant.account_id)
            .map(|(_, user)| user))
    }
}

/// Tokens issued; or, when a concurrent request deleted the app or the grant they were for
/// (revoked, or its refresh token reused), the refusal the request would have met a moment later.
fn issued_unless_gone(
    issued: Result<IssuedTokens>,
    refusal: impl FnOnce() -> OAuthError,
) -> TokenOutcome {
    match issued {
        Err(Error::Store(error)) if error.is_gone() => Ok(Err(refusal())),
        issued => issued.map(Ok),
    }
}

/// `by` after `now`, both in milliseconds since the Unix epoch.
fn after(now: i64, by: Duration) -> i64 {
    now.saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX))
}

/// A new secret: 256 random bits.
pub(super) fn random_token() -> Result<String> {
    generate_token().map_err(|e| Error::Internal(format!("no randomness: {e}")))
}
