//! Authentication middleware: who is calling, decided once per request before the handler runs.
//! The Jira API's caller goes into the request's extensions as a [`Caller`]; the admin API takes
//! the admin token. Failed logins are counted by the login throttle.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;

use super::error::HttpError;
use super::layers::Guard;
use super::site::{CurrentSite, Reached};
use super::{AppState, RequestContext};
use crate::credentials::{Credentials, TokenDigest};
use crate::domain::{Caller, SiteKey};
use crate::error::Error;
use crate::service::authentication::Via;
use crate::throttle::Refused;

/// Jira API routes: the caller must authenticate (401 before any other check). With
/// `anonymous_allowed`, no credentials pass too, but credentials that are sent must be right.
#[derive(Debug, Clone)]
pub struct RequireCaller {
    /// The server's state.
    pub state: AppState,
    /// Whether a request without credentials goes on, anonymous.
    pub anonymous_allowed: bool,
}

impl Guard for RequireCaller {
    type Memo = ();

    async fn check(&self, request: Request) -> Result<(Request, ()), HttpError> {
        // A header of another scheme, or one that does not parse, is no credentials.
        let credentials = credentials(&request);
        if self.anonymous_allowed && credentials.is_none() {
            return Ok((request, ()));
        }
        Ok((identified(&self.state, request, credentials).await?, ()))
    }
}

/// Checks the credentials, unless this client failed too often of late, and records the caller.
async fn identified(
    state: &AppState,
    mut request: Request,
    credentials: Option<Credentials>,
) -> Result<Request, HttpError> {
    let current = request
        .extensions()
        .get::<CurrentSite>()
        .ok_or_else(|| Error::Internal("no site resolved before authentication".to_owned()))?;
    let via = match current.reached {
        Reached::Gateway => Via::Gateway,
        Reached::Host => Via::Site,
    };
    let site = current.state.clone();
    let address = client_address(&request);
    let attempt = site
        .logins
        .admit(address, credentials.as_ref(), false)
        .map_err(|Refused { retry_after }| HttpError::LoginDenied { retry_after })?;
    let authenticated = state
        .authenticator
        .authenticate(site.site.key, via, credentials.as_ref())
        .await;
    let caller = match authenticated {
        Ok(caller) => caller,
        Err(error) => {
            if error.is_rejection() {
                site.logins.count_rejection(attempt, credentials.as_ref());
            }
            return Err(error.into());
        }
    };
    if let Some(context) = request.extensions().get::<Arc<RequestContext>>() {
        context.set_caller(caller.account_id());
    }
    request.extensions_mut().insert(caller);
    Ok(request)
}

/// The admin API: the admin token, or nothing. Without the admin token configured the admin API
/// does not exist (404); a missing or wrong token is 401, a Jira user's credentials 403.
#[derive(Debug, Clone)]
pub struct RequireAdmin(pub AppState);

impl Guard for RequireAdmin {
    type Memo = ();

    async fn check(&self, request: Request) -> Result<(Request, ()), HttpError> {
        let state = &self.0;
        let expected = state.admin_token.as_ref().ok_or(HttpError::RouteNotFound)?;
        let credentials = credentials(&request);
        // Guesses at the admin token, or at users' tokens through here, count as failed logins.
        let attempt = state
            .logins
            .admit(client_address(&request), credentials.as_ref(), true)
            .map_err(|Refused { retry_after }| HttpError::AdminLoginDenied { retry_after })?;
        match credentials {
            Some(Credentials::Bearer(token)) if TokenDigest::of(&token).matches(expected) => {
                Ok((request, ()))
            }
            // A Jira user of the default site is told apart from a stranger: 403, not 401.
            Some(credentials) => match state
                .authenticator
                .authenticate_confirmed(SiteKey::DEFAULT, Via::Site, Some(&credentials))
                .await
            {
                Ok(_) => Err(HttpError::AdminForbidden),
                Err(error) => {
                    if error.is_rejection() {
                        state.logins.count_rejection(attempt, Some(&credentials));
                    }
                    Err(HttpError::AdminUnauthenticated)
                }
            },
            None => Err(HttpError::AdminUnauthenticated),
        }
    }
}

fn credentials(request: &Request) -> Option<Credentials> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| Credentials::from_authorization(value.as_bytes()))
}

/// The address the accept loop recorded, when there is one.
pub(super) fn client_address(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// The caller that [`RequireCaller`] authenticated.
pub struct Authenticated(pub Caller);

impl<S: Sync> FromRequestParts<S> for Authenticated {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        // Routes that take a caller sit behind the authentication layer; without one, the
        // route table is wrong, and the client is told only that it is not signed in.
        let caller = parts.extensions.remove::<Caller>();
        caller
            .map(Self)
            .ok_or(HttpError::Service(Error::Unauthenticated {
                credentials_rejected: false,
            }))
    }
}
