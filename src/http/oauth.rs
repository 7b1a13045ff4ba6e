//! `auth.atlassian.com`: its routes, and `/authorize` (the consent page, or at once with
//! `login_hint` for an app that consents automatically); `/oauth/token` is `oauth_token`'s.

use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::consent::{Choices, consent_page, error_page};
use super::error::{HttpError, Refusal};
use super::oauth_params::{AuthorizeQuery, ConsentForm};
use super::{AppState, RouteTable, oauth_token};
use crate::credentials::Credentials;
use crate::domain::{Site, SiteKey, User};
use crate::http::extract::WholeBody;
use crate::service::authentication::Via;
use crate::service::oauth::{Authorization, OAuthError, OAuthErrorCode};
use crate::throttle::Refused;

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// The routes: (path, methods besides HEAD, handlers). Each checks its own credentials.
pub fn routes() -> RouteTable {
    vec![
        ("/authorize", &["GET", "POST"], get(authorize).post(consent)),
        ("/oauth/token", &["POST"], post(oauth_token::token)),
    ]
}

/// `GET /authorize`.
async fn authorize(State(state): State<AppState>, uri: Uri) -> Result<Response> {
    let query = AuthorizeQuery::parse(uri.query().unwrap_or_default().as_bytes());
    let authorization = match checked(&state, &query).await? {
        Ok(authorization) => authorization,
        Err(refusal) => return Ok(error_page(&refusal)),
    };
    // An empty hint is no hint, as an empty parameter of the token request is none.
    if let Some(hint) = query
        .login_hint
        .as_deref()
        .filter(|hint| !hint.is_empty() && authorization.app.auto_consent)
    {
        let accounts = state.oauth.accounts(hint).await?;
        let Some((_, first)) = accounts.iter().find(|(_, user)| user.active) else {
            let refusal = OAuthError {
                error: OAuthErrorCode::AccessDenied,
                description: format!("login_hint {hint:?} names no active user."),
            };
            return Ok(error_page(&refusal));
        };
        let sites = sites_of(&accounts, &first.account_id);
        let code = state
            .oauth
            .consent(&authorization, &first.account_id, sites)
            .await?;
        return Ok(redirect(
            &authorization.redirect_uri,
            &[("code", &code)],
            query.state.as_deref(),
        ));
    }
    let choices = choices(&state, &state.sites.list().await?).await?;
    Ok(consent_page(&query, &authorization, &choices, None))
}

/// What the consent page offers: the sites to grant, and the seeded users to sign in as (the
/// active users of the first sites, a hundred at most, each once).
async fn choices(state: &AppState, sites: &[Site]) -> Result<Choices> {
    const MOST: usize = 100;
    let mut people: Vec<(String, String)> = Vec::new();
    for site in sites.iter().take(20) {
        if people.len() == MOST {
            break;
        }
        for user in state.admin.first_active_users(site.key, MOST).await? {
            if people.len() == MOST {
                break;
            }
            if !people.iter().any(|(id, _)| *id == user.account_id) {
                let label = format!("{} <{}>", user.display_name, user.email);
                people.push((user.account_id, label));
            }
        }
    }
    let sites = sites.iter().map(|site| site.name.as_str().to_owned());
    Ok(Choices {
        sites: sites.take(MOST).collect(),
        people,
    })
}

/// `POST /authorize`: the consent form.
async fn consent(
    State(state): State<AppState>,
    address: Option<Extension<ConnectInfo<SocketAddr>>>,
    WholeBody(body): WholeBody,
) -> Result<Response> {
    let form = ConsentForm::parse(&body);
    let authorization = match checked(&state, &form.query).await? {
        Ok(authorization) => authorization,
        Err(refusal) => return Ok(error_page(&refusal)),
    };
    let back = form.query.state.as_deref();
    if !form.accept {
        return Ok(redirect(
            &authorization.redirect_uri,
            &[("error", "access_denied")],
            back,
        ));
    }
    let all = state.sites.list().await?;
    let address = address.map(|Extension(ConnectInfo(address))| address.ip());
    let account_id = match signed_in(&state, &form, address).await? {
        SignIn::As(account_id) => account_id,
        SignIn::Refused(problem, retry_after) => {
            let choices = choices(&state, &all).await?;
            let page = consent_page(&form.query, &authorization, &choices, Some(problem));
            let mut response = (StatusCode::UNAUTHORIZED, page).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response.extensions_mut().insert(Refusal::LoginRefused);
            }
            return Ok(response);
        }
    };
    let everywhere = state.oauth.accounts(&account_id).await?;
    let chosen: Vec<SiteKey> = sites_of(&everywhere, &account_id)
        .into_iter()
        .filter(|key| {
            all.iter().any(|site| {
                site.key == *key && form.sites.iter().any(|name| name == site.name.as_str())
            })
        })
        .collect();
    if chosen.is_empty() {
        let message = "Pick at least one site where this account is a user.";
        let choices = choices(&state, &all).await?;
        let page = consent_page(&form.query, &authorization, &choices, Some(message));
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let code = state
        .oauth
        .consent(&authorization, &account_id, chosen)
        .await?;
    Ok(redirect(
        &authorization.redirect_uri,
        &[("code", &code)],
        back,
    ))
}

/// The outcome of signing in on the consent form.
enum SignIn {
    /// Signed in as this account.
    As(String),
    /// Not signed in: what to tell the user, and, when the client is refused unchecked for too
    /// many failed sign-ins, the seconds until it may try again.
    Refused(&'static str, Option<u64>),
}

/// Who signs in on the consent form: with the email and API token of any site (the first site
/// they work on), or a seeded user picked from the list when no email is given. Wrong API tokens
/// count as failed logins of `address` as that email, as on the Jira API.
async fn signed_in(
    state: &AppState,
    form: &ConsentForm,
    address: Option<IpAddr>,
) -> Result<SignIn> {
    if form.email.is_empty() && !form.account.is_empty() {
        let accounts = state.oauth.accounts(&form.account).await?;
        let picked = accounts
            .into_iter()
            .find(|(_, user)| user.account_id == form.account && user.active);
        return Ok(match picked {
            Some((_, user)) => SignIn::As(user.account_id),
            None => SignIn::Refused("No active user has this account id.", None),
        });
    }
    let credentials = Credentials::Basic {
        email: form.email.clone(),
        token: form.token.to_string(),
    };
    let attempt = match state.logins.admit(address, Some(&credentials), false) {
        Ok(attempt) => attempt,
        Err(Refused { retry_after }) => {
            let problem = "Too many failed sign-ins; try again later.";
            return Ok(SignIn::Refused(problem, Some(retry_after)));
        }
    };
    for (site, _) in state.oauth.accounts(&form.email).await? {
        match state
            .authenticator
            .authenticate_confirmed(site, Via::Site, Some(&credentials))
            .await
        {
            Ok(caller) => return Ok(SignIn::As(caller.user.account_id.clone())),
            // A fault (the database away or busy) is not the user's failed login.
            Err(error) if !error.is_rejection() => return Err(error.into()),
            Err(_) => {}
        }
    }
    state.logins.count_rejection(attempt, Some(&credentials));
    Ok(SignIn::Refused("Wrong email or API token.", None))
}

/// The checks of `/authorize`'s parameters, before anyone signs in.
async fn checked(
    state: &AppState,
    query: &AuthorizeQuery,
) -> Result<std::result::Result<Authorization, OAuthError>> {
    if query.response_type.as_deref() != Some("code") {
        return Ok(Err(OAuthError {
            error: OAuthErrorCode::UnsupportedResponseType,
            description: "response_type must be code.".to_owned(),
        }));
    }
    let client_id = query.client_id.as_deref().unwrap_or_default();
    let redirect_uri = query.redirect_uri.as_deref().unwrap_or_default();
    let scope = query.scope.as_deref().unwrap_or_default();
    Ok(state
        .oauth
        .check_authorization(client_id, redirect_uri, scope)
        .await?)
}

/// The sites where `account_id` is an active user.
fn sites_of(accounts: &[(SiteKey, User)], account_id: &str) -> Vec<SiteKey> {
    accounts
        .iter()
        .filter(|(_, user)| user.account_id == account_id && user.active)
        .map(|(site, _)| *site)
        .collect()
}

/// A 302 to the app's callback URL with `pairs` and the `state` it sent.
fn redirect(callback: &str, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    let mut url = match url::Url::parse(callback) {
        Ok(url) => url,
        // The callback URL was checked when the app was registered: a fault if it fails now.
        Err(e) => {
            let fault = format!("the app's callback URL does not parse: {e}");
            return crate::error::Error::Internal(fault).into_response();
        }
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
