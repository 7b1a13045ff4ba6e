//! Who may use which route, for apps: every kind of app caller (OAuth 2.0 tokens, service
//! accounts, scoped and classic API tokens) × every route an app calls × the gateway form and the
//! site's own URL, written out as one table. A refusal never changes what is stored.

use axum::http::Method;
use serde_json::json;

use crate::helpers::*;

const CALLBACK: &str = "http://127.0.0.1:3000/callback";
const FULL: &str = "read:jira-user write:jira-work read:me";
const GRANULAR: &str = "read:user.property:jira write:user.property:jira";
/// The granular group that reads users, whole, and one scope short of it.
const GRANULAR_USERS: &str =
    "read:application-role:jira read:group:jira read:user:jira read:avatar:jira";
const GRANULAR_USERS_BUT_ONE: &str = "read:application-role:jira read:group:jira read:user:jira";
const WORKER: &str = "712020:matrix-worker";
const SUPERVISOR: &str = "712020:matrix-supervisor";

/// The kinds of app caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// An OAuth 2.0 access token acting for Alice, with read and write scopes.
    OAuthUser,
    /// The same, with `read:jira-user` only.
    OAuthReadOnly,
    /// An OAuth 2.0 access token acting for a Jira administrator.
    OAuthAdmin,
    /// A service account's access token (client credentials).
    ServiceAccount,
    /// A service account that administers Jira.
    ServiceAccountAdmin,
    /// Alice's scoped API token, with read and write scopes.
    ScopedToken,
    /// Alice's scoped API token, with `read:jira-user` only.
    ScopedReadOnly,
    /// Alice's scoped API token with the granular property scopes: no delete, no user reads.
    ScopedGranular,
    /// Alice's scoped API token with the granular group that reads users: no properties.
    ScopedGranularUsers,
    /// The same, one scope short of that group: nothing.
    ScopedGranularUsersButOne,
    /// Alice's classic API token.
    ClassicToken,
    /// A Bearer token nobody issued.
    UnknownBearer,
}

const CALLERS: [Caller; 12] = [
    Caller::OAuthUser,
    Caller::OAuthReadOnly,
    Caller::OAuthAdmin,
    Caller::ServiceAccount,
    Caller::ServiceAccountAdmin,
    Caller::ScopedToken,
    Caller::ScopedReadOnly,
    Caller::ScopedGranular,
    Caller::ScopedGranularUsers,
    Caller::ScopedGranularUsersButOne,
    Caller::ClassicToken,
    Caller::UnknownBearer,
];

impl Caller {
    /// The account the caller acts as.
    fn account(self) -> &'static str {
        match self {
            Caller::OAuthAdmin => ADMIN,
            Caller::ServiceAccount => WORKER,
            Caller::ServiceAccountAdmin => SUPERVISOR,
            _ => ALICE,
        }
    }

    fn is_admin(self) -> bool {
        matches!(self, Caller::OAuthAdmin | Caller::ServiceAccountAdmin)
    }

    /// Whether it is an OAuth 2.0 access token (a user's or a service account's).
    fn is_oauth(self) -> bool {
        matches!(
            self,
            Caller::OAuthUser
                | Caller::OAuthReadOnly
                | Caller::OAuthAdmin
                | Caller::ServiceAccount
                | Caller::ServiceAccountAdmin
        )
    }

    /// The scopes it holds; `None` for a classic token, which may do all its user may.
    fn scopes(self) -> Option<&'static str> {
        match self {
            Caller::OAuthReadOnly | Caller::ScopedReadOnly => Some("read:jira-user"),
            Caller::ScopedGranular => Some(GRANULAR),
            Caller::ScopedGranularUsers => Some(GRANULAR_USERS),
            Caller::ScopedGranularUsersButOne => Some(GRANULAR_USERS_BUT_ONE),
            Caller::ClassicToken => None,
            _ => Some(FULL),
        }
    }
}

impl Caller {
    /// Whether its scopes allow the route: one of the route's scope groups held whole, if it has
    /// any.
    fn may(self, route: Route) -> bool {
        let groups = route.scope_groups();
        match self.scopes() {
            Some(held) if !groups.is_empty() => groups.iter().any(|group| {
                group
                    .iter()
                    .all(|scope| held.split(' ').any(|h| h == *scope))
            }),
            _ => true,
        }
    }
}

/// How the request reaches the default site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `/ex/jira/{cloudId}/rest/api/…`, as `api.atlassian.com` serves it.
    Gateway,
    /// The site's own URL.
    Site,
}

/// The routes an app calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    ListKeys,
    GetProperty,
    PutProperty,
    DeleteProperty,
    ServerInfo,
    Myself,
    User,
    UserSearch,
    UserBulk,
    /// The admin API, which no app credential opens.
    AdminListUsers,
    /// `api.atlassian.com`'s own routes, which take OAuth 2.0 tokens only.
    AccessibleResources,
    Me,
}

const ROUTES: [Route; 12] = [
    Route::ListKeys,
    Route::GetProperty,
    Route::PutProperty,
    Route::DeleteProperty,
    Route::ServerInfo,
    Route::Myself,
    Route::User,
    Route::UserSearch,
    Route::UserBulk,
    Route::AdminListUsers,
    Route::AccessibleResources,
    Route::Me,
];

impl Route {
    /// Method, path (without the gateway prefix) and body, for a target account.
    fn request(self, target: &str) -> (Method, String, Option<&'static str>) {
        let property = property_uri(3, "existing", target);
        match self {
            Route::ListKeys => (Method::GET, keys_uri(3, target), None),
            Route::GetProperty => (Method::GET, property, None),
            Route::PutProperty => (Method::PUT, property, Some(r#"{"changed":true}"#)),
            Route::DeleteProperty => (Method::DELETE, property, None),
            Route::ServerInfo => (Method::GET, "/rest/api/3/serverInfo".into(), None),
            Route::Myself => (Method::GET, "/rest/api/3/myself".into(), None),
            Route::User => (
                Method::GET,
                format!("/rest/api/3/user?accountId={target}"),
                None,
            ),
            Route::UserSearch => (Method::GET, "/rest/api/3/user/search?query=a".into(), None),
            Route::UserBulk => (
                Method::GET,
                format!("/rest/api/3/user/bulk?accountId={target}"),
                None,
            ),
            Route::AdminListUsers => (Method::GET, "/_admin/users".into(), None),
            Route::AccessibleResources => (
                Method::GET,
                "/oauth/token/accessible-resources".into(),
                None,
            ),
            Route::Me => (Method::GET, "/me".into(), None),
        }
    }

    /// Whether it is a Jira route, reached in both forms.
    fn is_jira(self) -> bool {
        !matches!(
            self,
            Route::AdminListUsers | Route::AccessibleResources | Route::Me
        )
    }

    fn is_property(self) -> bool {
        matches!(
            self,
            Route::ListKeys | Route::GetProperty | Route::PutProperty | Route::DeleteProperty
        )
    }

    /// The scopes of which the caller must hold one, from Atlassian's spec.
    fn scope_groups(self) -> &'static [&'static [&'static str]] {
        match self {
            Route::ListKeys | Route::GetProperty => {
                &[&["read:jira-user"], &["read:user.property:jira"]]
            }
            Route::PutProperty => &[&["write:jira-work"], &["write:user.property:jira"]],
            Route::DeleteProperty => &[&["write:jira-work"], &["delete:user.property:jira"]],
            Route::Me => &[&["read:me"]],
            Route::Myself | Route::User | Route::UserSearch | Route::UserBulk => &[
                &["read:jira-user"],
                &[
                    "read:application-role:jira",
                    "read:group:jira",
                    "read:user:jira",
                    "read:avatar:jira",
                ],
            ],
            _ => &[],
        }
    }

    /// A success: 204 for a delete, 200 otherwise (the property exists before each case).
    fn done(self) -> u16 {
        if self == Route::DeleteProperty {
            204
        } else {
            200
        }
    }
}

/// The table: what each caller gets on each route, in each form, on its own record or Bob's.
fn expected(route: Route, caller: Caller, form: Form, own: bool) -> u16 {
    use Caller::*;
    match route {
        // Only the admin token opens it; a user of the site is told apart from a stranger.
        Route::AdminListUsers => {
            if caller == ClassicToken {
                403
            } else {
                401
            }
        }
        // `/me` wants `read:me` (Atlassian's user identity API); the sites list no scope.
        Route::AccessibleResources | Route::Me => {
            if caller.is_oauth() && caller.may(route) {
                200
            } else {
                401
            }
        }
        _ if caller == UnknownBearer => 401,
        // On the site's own URL an app's credentials are refused as a wrong API token.
        _ if form == Form::Site && caller != ClassicToken => 401,
        // Scopes first, before any Jira check ("scope does not match").
        _ if !caller.may(route) => 401,
        // Then Jira's rule for the user the app acts for.
        _ if route.is_property() && !own && !caller.is_admin() => 403,
        _ => route.done(),
    }
}

/// The callers' `Authorization` headers, made through the admin API and the OAuth 2.0 flows.
struct Credentials {
    gateway: String,
    headers: Vec<(Caller, String)>,
}

async fn access_token(app: &TestApp, body: serde_json::Value) -> String {
    let response = app
        .request(Method::POST, "/oauth/token")
        .json(body.to_string())
        .send()
        .await;
    response.assert_status(200);
    let token = response.json()["access_token"].as_str().map(str::to_owned);
    format!("Bearer {}", token.expect("an access token"))
}

async fn user_token(app: &TestApp, hint: &str, scope: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("audience", "api.atlassian.com")
        .append_pair("client_id", "matrix-app")
        .append_pair("scope", scope)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("login_hint", hint);
    let response = app
        .get(format!("/authorize?{}", query.finish()))
        .send()
        .await;
    response.assert_status(302);
    let location = url::Url::parse(response.header("location").unwrap_or_default()).expect("URL");
    let code = location
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .expect("a code");
    access_token(
        app,
        json!({"grant_type": "authorization_code", "client_id": "matrix-app",
               "client_secret": "matrix-secret", "code": code, "redirect_uri": CALLBACK}),
    )
    .await
}

async fn service_account_token(app: &TestApp, client_id: &str, admin: bool) -> String {
    let body = json!({"name": client_id, "kind": "serviceAccount", "sites": ["default"],
                      "scopes": FULL.split(' ').collect::<Vec<_>>(), "admin": admin,
                      "clientId": client_id, "clientSecret": "sa-secret"});
    let created = app
        .admin(Method::POST, "/_admin/apps")
        .json(body.to_string())
        .send()
        .await;
    created.assert_status(201);
    access_token(
        app,
        json!({"grant_type": "client_credentials", "client_id": client_id,
               "client_secret": "sa-secret"}),
    )
    .await
}

async fn scoped_token(app: &TestApp, scopes: &str) -> String {
    let body = json!({"scopes": scopes.split(' ').collect::<Vec<_>>()});
    let created = app
        .admin(Method::POST, format!("/_admin/users/{ALICE}/tokens"))
        .json(body.to_string())
        .send()
        .await;
    created.assert_status(201);
    basic(
        "alice@example.com",
        created.json()["token"].as_str().expect("a token"),
    )
}

async fn credentials(app: &TestApp) -> Credentials {
    let body = json!({"name": "Matrix", "kind": "oauth2", "callbackUrl": CALLBACK,
                      "scopes": ["read:jira-user", "write:jira-work", "read:me"], "autoConsent": true,
                      "clientId": "matrix-app", "clientSecret": "matrix-secret"});
    app.admin(Method::POST, "/_admin/apps")
        .json(body.to_string())
        .send()
        .await
        .assert_status(201);
    let site = app
        .admin(Method::GET, "/_admin/sites/default")
        .send()
        .await
        .json();
    let gateway = format!("/ex/jira/{}", site["id"].as_str().expect("a cloudId"));
    let mut headers = Vec::new();
    for caller in CALLERS {
        let header = match caller {
            Caller::OAuthUser => user_token(app, "alice@example.com", FULL).await,
            Caller::OAuthReadOnly => user_token(app, "alice@example.com", "read:jira-user").await,
            Caller::OAuthAdmin => user_token(app, "ada@example.com", FULL).await,
            Caller::ServiceAccount => service_account_token(app, "matrix-worker", false).await,
            Caller::ServiceAccountAdmin => {
                service_account_token(app, "matrix-supervisor", true).await
            }
            Caller::ScopedToken => scoped_token(app, FULL).await,
            Caller::ScopedReadOnly => scoped_token(app, "read:jira-user").await,
            Caller::ScopedGranular => scoped_token(app, GRANULAR).await,
            Caller::ScopedGranularUsers => scoped_token(app, GRANULAR_USERS).await,
            Caller::ScopedGranularUsersButOne => scoped_token(app, GRANULAR_USERS_BUT_ONE).await,
            Caller::ClassicToken => Who::Alice.authorization().expect("Alice's header"),
            Caller::UnknownBearer => "Bearer no-such-access-token".to_owned(),
        };
        headers.push((caller, header));
    }
    Credentials { gateway, headers }
}

async fn every_app_caller_gets_what_the_table_says_in_each_form(backend: Backend) {
    let app = backend.app().await;
    let credentials = credentials(&app).await;
    let mut mismatches = Vec::new();
    let mut cases = 0;
    for route in ROUTES {
        let forms: &[Form] = if route.is_jira() {
            &[Form::Gateway, Form::Site]
        } else {
            &[Form::Site]
        };
        for &form in forms {
            for (caller, header) in &credentials.headers {
                for own in [true, false] {
                    let target = if own { caller.account() } else { BOB };
                    let before = Some(format!(r#"{{"owner":"{target}"}}"#));
                    app.restore(target, "existing", before.clone()).await;
                    let (method, uri, body) = route.request(target);
                    let uri = match form {
                        Form::Gateway => format!("{}{uri}", credentials.gateway),
                        Form::Site => uri,
                    };
                    let mut request = app
                        .request(method.clone(), &uri)
                        .header("authorization", header);
                    if let Some(body) = body {
                        request = request.json(body);
                    }
                    let response = request.send().await;
                    cases += 1;
                    let (got, want) = (
                        response.status.as_u16(),
                        expected(route, *caller, form, own),
                    );
                    if got != want {
                        mismatches.push(format!(
                            "{route:?} {form:?} by {caller:?} (own record: {own}): {got}, want {want}: {}",
                            response.text()
                        ));
                    }
                    if got == 401 {
                        assert_eq!(
                            response.header("x-aaccountid"),
                            None,
                            "{route:?} {form:?} by {caller:?}: a 401 names nobody"
                        );
                    }
                    if want == 401
                        && route.is_jira()
                        && form == Form::Gateway
                        && *caller != Caller::UnknownBearer
                    {
                        assert_eq!(
                            response.header("x-failure-category"),
                            Some("FAILURE_CLIENT_SCOPE_CHECK"),
                            "{route:?} by {caller:?}: a refusal for scope says so"
                        );
                        // The gateway answers before Jira reads the query: no query, same 401.
                        let bare = uri.split('?').next().unwrap_or_default();
                        let mut request = app.request(method, bare).header("authorization", header);
                        if let Some(body) = body {
                            request = request.json(body);
                        }
                        let queryless = request.send().await;
                        assert_eq!(
                            (
                                queryless.status.as_u16(),
                                queryless.header("x-failure-category")
                            ),
                            (401, Some("FAILURE_CLIENT_SCOPE_CHECK")),
                            "{route:?} by {caller:?} without a query: {}",
                            queryless.text()
                        );
                    }
                    if route.is_property() && !(200..300).contains(&got) {
                        let after = app.stored(target, "existing").await;
                        assert_eq!(
                            after, before,
                            "{route:?} by {caller:?}: a refusal changed the store"
                        );
                    }
                }
            }
        }
    }
    assert!(cases > 300, "{cases} cases");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // No app credential reaches the journal or the metrics.
    let journal = app.admin(Method::GET, "/_admin/requests").send().await;
    let metrics = app.get("/metrics").send().await;
    assert!(
        journal.text().contains("/ex/jira/"),
        "the journal kept requests"
    );
    for (caller, header) in &credentials.headers {
        let secret = header.split_once(' ').map_or("", |(_, secret)| secret);
        for (name, text) in [("journal", journal.text()), ("metrics", metrics.text())] {
            assert!(
                !text.contains(secret),
                "{name} holds {caller:?}'s credential"
            );
        }
    }
}

on_each_backend!(every_app_caller_gets_what_the_table_says_in_each_form);
