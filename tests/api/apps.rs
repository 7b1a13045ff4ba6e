//! Apps: OAuth 2.0 (3LO) with rotating refresh tokens, service accounts with client credentials,
//! scopes enforced on the gateway form, and `api.atlassian.com`'s own endpoints.

use std::time::Duration;

use axum::http::Method;
use jira_userprops::clock::{Clock, ManualClock};
use jira_userprops::http::Settings;
use jira_userprops::store::Store;
use serde_json::{Value, json};

use crate::helpers::*;

const CALLBACK: &str = "http://127.0.0.1:3000/callback";
const CLIENT_ID: &str = "acme-sync";
const CLIENT_SECRET: &str = "acme-sync-secret";

/// A site `acme` where the fixture's Alice is a user too, with a token of her own there.
async fn make_acme(app: &TestApp) -> String {
    let seed = r#"{"users": [{"accountId": "alice-5b10ac8d82e05b22cc7d4ef5", "email": "alice@example.com",
        "displayName": "Alice", "apiTokens": ["acme-alice-token"]}]}"#;
    let created = app
        .admin(Method::POST, "/_admin/sites")
        .json(format!(r#"{{"name":"acme","seed":{seed}}}"#))
        .send()
        .await;
    created.assert_status(201);
    created.json()["id"].as_str().expect("an id").to_owned()
}

async fn register(app: &TestApp, scopes: &[&str], auto_consent: bool) {
    let body = json!({"name": "Acme sync", "kind": "oauth2", "callbackUrl": CALLBACK, "scopes": scopes,
                      "autoConsent": auto_consent, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET});
    let created = app
        .admin(Method::POST, "/_admin/apps")
        .json(body.to_string())
        .send()
        .await;
    created.assert_status(201);
    assert_eq!(created.json()["clientSecret"], CLIENT_SECRET);
}

fn authorize_uri(scope: &str, extra: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("audience", "api.atlassian.com")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("scope", scope)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("state", "s-1")
        .append_pair("response_type", "code")
        .append_pair("prompt", "consent");
    format!("/authorize?{}{extra}", query.finish())
}

/// The query parameters of a redirect's `Location`.
fn redirected(response: &TestResponse) -> Vec<(String, String)> {
    response.assert_status(302);
    let location = response.header("location").expect("a Location");
    assert!(location.starts_with(CALLBACK), "{location}");
    let url = url::Url::parse(location).expect("a URL");
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

async fn token_request(app: &TestApp, body: Value) -> TestResponse {
    app.request(Method::POST, "/oauth/token")
        .json(body.to_string())
        .send()
        .await
}

async fn code_for(app: &TestApp, hint: &str, scope: &str) -> String {
    let response = app
        .get(authorize_uri(scope, &format!("&login_hint={hint}")))
        .send()
        .await;
    let pairs = redirected(&response);
    assert_eq!(param(&pairs, "state").as_deref(), Some("s-1"));
    param(&pairs, "code").expect("a code")
}

/// An app over `backend`'s store whose clock the test moves, and whose access tokens live `ttl`
/// (an hour when `None`).
async fn on_a_clock(
    backend: Backend,
    ttl: Option<Duration>,
) -> (TestApp, std::sync::Arc<ManualClock>) {
    let clock = ManualClock::new();
    let defaults = TestApp::settings(None);
    let settings = Settings {
        clock: clock.clone(),
        oauth_token_ttl: ttl.unwrap_or(defaults.oauth_token_ttl),
        ..defaults
    };
    (
        TestApp::with_settings(backend.app().await.store, settings),
        clock,
    )
}

/// Registers the service account `sync-bot`, a user of `sites`, with `secret`.
async fn make_sync_bot(app: &TestApp, sites: &[&str], secret: &str) {
    let body = json!({"name": "Sync bot", "kind": "serviceAccount", "sites": sites,
                      "scopes": ["read:jira-user"], "clientId": "sync-bot", "clientSecret": secret});
    app.admin(Method::POST, "/_admin/apps")
        .json(body.to_string())
        .send()
        .await
        .assert_status(201);
}

/// The names of the sites an `accessible-resources` answer lists.
fn site_names(resources: &TestResponse) -> Vec<Value> {
    resources.assert_status(200);
    let listed = resources.json();
    let listed = listed.as_array().expect("an array");
    listed.iter().map(|r| r["name"].clone()).collect()
}

fn exchange(code: &str) -> Value {
    json!({"grant_type": "authorization_code", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
           "code": code, "redirect_uri": CALLBACK})
}

async fn the_authorization_code_flow_reaches_the_granted_sites(backend: Backend) {
    let (app, clock) = on_a_clock(backend, None).await;
    let acme = make_acme(&app).await;
    register(
        &app,
        &["read:jira-user", "write:jira-work", "offline_access"],
        true,
    )
    .await;
    let code = code_for(
        &app,
        "alice@example.com",
        "read:jira-user write:jira-work offline_access",
    )
    .await;
    // An empty hint is no hint: the consent page, not a refusal.
    app.get(authorize_uri("read:jira-user", "&login_hint="))
        .send()
        .await
        .assert_status(200);
    let tokens = token_request(&app, exchange(&code)).await;
    tokens.assert_status(200);
    assert_eq!(tokens.header("pragma"), Some("no-cache"), "RFC 6749 §5.1");
    let tokens = tokens.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(
        tokens["scope"],
        "offline_access read:jira-user write:jira-work"
    );
    let access = tokens["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    // A code is spent once.
    let again = token_request(&app, exchange(&code)).await;
    again.assert_status(400);
    assert_eq!(again.header("pragma"), Some("no-cache"));
    assert_eq!(
        again.json(),
        json!({"error": "invalid_request", "error_description": "authorization_code is invalid"})
    );
    // Both of Alice's sites are granted.
    let resources = app
        .get("/oauth/token/accessible-resources")
        .header("authorization", &format!("Bearer {access}"))
        .send()
        .await;
    assert_eq!(site_names(&resources), [json!("default"), json!("acme")]);
    assert_eq!(resources.json()[1]["id"], acme);
    assert_eq!(
        resources.json()[1]["scopes"],
        json!(["offline_access", "read:jira-user", "write:jira-work"])
    );
    // `/me` wants `read:me`, which this grant lacks: the gateway's answer.
    let me = app
        .get("/me")
        .header("authorization", &format!("Bearer {access}"))
        .send()
        .await;
    me.assert_status(401);
    assert_eq!(
        me.json(),
        json!({"code": 401, "message": "Unauthorized; scope does not match"})
    );
    // Through the gateway, the token acts for Alice; on a site's own URL it is refused.
    let bearer = format!("Bearer {access}");
    let uri = format!("/ex/jira/{acme}{}", property_uri(3, "synced", ALICE));
    app.put(&uri)
        .header("authorization", &bearer)
        .json("true")
        .send()
        .await
        .assert_status(201);
    let read = app.get(&uri).header("authorization", &bearer).send().await;
    assert_eq!(read.text(), r#"{"key":"synced","value":true}"#);
    app.get(property_uri(3, "synced", ALICE))
        .host("acme.localhost")
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status(401);
    app.get(property_uri(3, "existing", ALICE))
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status(401);
    // Rotating refresh tokens: each use gives a new one; the old one is tolerated for 10 minutes.
    let refreshed = app
        .request(Method::POST, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &basic(CLIENT_ID, CLIENT_SECRET))
        .body(format!("grant_type=refresh_token&refresh_token={refresh}"))
        .send()
        .await;
    refreshed.assert_status(200);
    let newest = refreshed.json()["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    assert_ne!(newest, refresh);
    let refresh_with = |token: &str| {
        json!({"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                             "client_secret": CLIENT_SECRET, "refresh_token": token})
    };
    token_request(&app, refresh_with(&refresh))
        .await
        .assert_status(200);
    clock.advance(Duration::from_secs(11 * 60));
    let reused = token_request(&app, refresh_with(&refresh)).await;
    reused.assert_status(403);
    assert_eq!(
        reused.json(),
        json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
    );
    // Reuse past the leeway revoked the whole family.
    token_request(&app, refresh_with(&newest))
        .await
        .assert_status(403);
    let resources = app
        .get("/oauth/token/accessible-resources")
        .header("authorization", &bearer)
        .send()
        .await;
    resources.assert_status(401);
}

async fn an_access_token_expires(backend: Backend) {
    let (app, clock) = on_a_clock(backend, Some(Duration::from_secs(60))).await;
    let acme = make_acme(&app).await;
    register(&app, &["read:jira-user"], true).await;
    let code = code_for(&app, ALICE, "read:jira-user").await;
    let tokens = token_request(&app, exchange(&code)).await.json();
    assert_eq!(tokens["expires_in"], 60);
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let bearer = format!(
        "Bearer {}",
        tokens["access_token"].as_str().expect("a token")
    );
    let uri = format!("/ex/jira/{acme}/rest/api/3/myself");
    app.get(&uri)
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status(200);
    clock.advance(Duration::from_secs(61));
    app.get(&uri)
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status(401);
}

async fn scopes_are_checked_before_jira_and_an_app_is_never_more_than_its_user(backend: Backend) {
    let app = backend.app().await;
    let acme = make_acme(&app).await;
    register(&app, &["read:jira-user", "write:jira-work"], true).await;
    let code = code_for(&app, ALICE, "read:jira-user").await;
    let tokens = token_request(&app, exchange(&code)).await.json();
    let bearer = format!(
        "Bearer {}",
        tokens["access_token"].as_str().expect("a token")
    );
    let put = app
        .put(format!("/ex/jira/{acme}{}", property_uri(3, "k", ALICE)))
        .header("authorization", &bearer)
        .json("1")
        .send()
        .await;
    put.assert_status(401);
    assert_eq!(
        put.json(),
        json!({"code": 401, "message": "Unauthorized; scope does not match"})
    );
    assert_eq!(
        put.header("x-failure-category"),
        Some("FAILURE_CLIENT_SCOPE_CHECK")
    );
    // Before Jira's own checks: even a request Jira would refuse for its query.
    let no_account = app
        .get(format!("/ex/jira/{acme}/rest/api/3/user/properties/k"))
        .header("authorization", &bearer)
        .send()
        .await;
    no_account.assert_status(400);
    let delete = app
        .delete(format!("/ex/jira/{acme}{}", property_uri(3, "k", ALICE)))
        .header("authorization", &bearer)
        .send()
        .await;
    assert_eq!(
        delete.header("x-failure-category"),
        Some("FAILURE_CLIENT_SCOPE_CHECK")
    );
    // Reading is in scope; another user's record is Jira's 403, as for Alice herself.
    let default = app
        .admin(Method::GET, "/_admin/sites/default")
        .send()
        .await
        .json();
    let default_id = default["id"].as_str().expect("an id");
    let bob = app
        .get(format!(
            "/ex/jira/{default_id}{}",
            property_uri(3, "existing", BOB)
        ))
        .header("authorization", &bearer)
        .send()
        .await;
    bob.assert_status(403);
    let own = app
        .get(format!(
            "/ex/jira/{default_id}{}",
            property_uri(3, "existing", ALICE)
        ))
        .header("authorization", &bearer)
        .send()
        .await;
    own.assert_status(200);
}

async fn authorize_refuses_without_redirecting(backend: Backend) {
    let app = backend.app().await;
    register(&app, &["read:jira-user"], true).await;
    let cases = [
        (
            authorize_uri("read:jira-user", "").replace("127.0.0.1%3A3000", "evil.example"),
            "Callback URL mismatch.",
        ),
        (
            authorize_uri("read:jira-user", "").replace(CLIENT_ID, "nobody"),
            "Unknown client_id.",
        ),
        (
            authorize_uri("write:jira-work", ""),
            "The scope asked for is not among the app's scopes.",
        ),
        (
            authorize_uri("read:jira-user", "")
                .replace("response_type=code", "response_type=token"),
            "response_type must be code.",
        ),
    ];
    for (uri, message) in cases {
        let response = app.get(&uri).send().await;
        response.assert_status(400);
        assert!(response.header("location").is_none(), "{uri}");
        assert!(
            response.text().contains(message),
            "{uri}: {}",
            response.text()
        );
    }
    // No automatic consent for a hint the app was not given leave to follow.
    let other = json!({"name": "Manual", "callbackUrl": CALLBACK, "scopes": ["read:jira-user"], "clientId": "manual"});
    app.admin(Method::POST, "/_admin/apps")
        .json(other.to_string())
        .send()
        .await
        .assert_status(201);
    let page = app
        .get(
            authorize_uri("read:jira-user", "&login_hint=alice@example.com")
                .replace(CLIENT_ID, "manual"),
        )
        .send()
        .await;
    page.assert_status(200);
    assert!(
        page.text()
            .contains("<form method=\"post\" action=\"/authorize\">")
    );
}

async fn the_consent_page_signs_in_and_grants_the_sites_picked(backend: Backend) {
    let app = backend.app().await;
    let acme = make_acme(&app).await;
    register(&app, &["read:jira-user", "read:me"], false).await;
    let page = app
        .get(authorize_uri(
            "read:jira-user",
            "&login_hint=alice@example.com",
        ))
        .send()
        .await;
    page.assert_status(200);
    assert!(page.text().contains("Acme sync"));
    // No other page may frame the Accept button.
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        page.header("content-security-policy")
            .is_some_and(|policy| policy.contains("frame-ancestors 'none'")),
        "{:?}",
        page.header("content-security-policy")
    );
    let form = |token: &str, decision: &str| consent_form(token, "acme", decision);
    let post = |body: String| {
        app.request(Method::POST, "/authorize")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let wrong = post(form("wrong", "accept")).await;
    wrong.assert_status(401);
    assert!(wrong.text().contains("Wrong email or API token."));
    let denied = redirected(&post(form("wrong", "deny")).await);
    assert_eq!(param(&denied, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&denied, "state").as_deref(), Some("s-1"));
    // Signed in with the default site's token; only the site picked is granted.
    let granted = redirected(&post(form("alice-token", "accept")).await);
    let code = param(&granted, "code").expect("a code");
    let tokens = token_request(&app, exchange(&code)).await.json();
    let bearer = format!(
        "Bearer {}",
        tokens["access_token"].as_str().expect("a token")
    );
    let resources = app
        .get("/oauth/token/accessible-resources")
        .header("authorization", &bearer)
        .send()
        .await;
    assert_eq!(resources.json().as_array().map(Vec::len), Some(1));
    assert_eq!(resources.json()[0]["id"], acme);
    // Or a seeded user picked from the page's list, with no email or token.
    assert!(
        page.text().contains(&format!(
            "<option value=\"{BOB}\">Bob &lt;bob@example.com&gt;</option>"
        )),
        "{}",
        page.text()
    );
    assert!(
        !page.text().contains("carol@example.com"),
        "deactivated users are not offered"
    );
    let pick = |account: &str| {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("scope", "read:jira-user read:me")
            .append_pair("response_type", "code")
            .append_pair("email", "")
            .append_pair("account", account)
            .append_pair("site", "default")
            .append_pair("site", "acme")
            .append_pair("decision", "accept");
        body.finish()
    };
    let nobody = post(pick(CAROL)).await;
    nobody.assert_status(401);
    assert!(
        nobody
            .text()
            .contains("No active user has this account id.")
    );
    let granted = redirected(&post(pick(BOB)).await);
    let code = param(&granted, "code").expect("a code");
    let tokens = token_request(&app, exchange(&code)).await.json();
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap_or("?"));
    let me = app.get("/me").header("authorization", &bearer).send().await;
    assert_eq!(me.json()["account_id"], BOB);
    assert_eq!(me.json()["email"], "bob@example.com");
    // Bob is a user of the default site only: that is all the grant covers.
    let resources = app
        .get("/oauth/token/accessible-resources")
        .header("authorization", &bearer)
        .send()
        .await;
    assert_eq!(resources.json().as_array().map(Vec::len), Some(1));
    assert_eq!(resources.json()[0]["name"], "default");
}

/// Behind a public URL whose host looks like the site `acme`'s, that host is the default site's:
/// `accessible-resources` gives `acme` the address the admin API gives it (the gateway's), so
/// no two sites share a `url` a client could pick the wrong one by.
async fn accessible_resources_give_each_site_the_address_the_admin_api_gives(backend: Backend) {
    let settings = Settings {
        public_url: Some("http://acme.localhost:8080".to_owned()),
        ..TestApp::settings(None)
    };
    let app = TestApp::with_settings(backend.app().await.store, settings);
    make_acme(&app).await;
    register(&app, &["read:jira-user"], true).await;
    let code = code_for(&app, "alice@example.com", "read:jira-user").await;
    let tokens = token_request(&app, exchange(&code)).await.json();
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap_or("?"));
    let resources = app
        .get("/oauth/token/accessible-resources")
        .header("authorization", &bearer)
        .send()
        .await;
    assert_eq!(site_names(&resources), [json!("default"), json!("acme")]);
    let listed = resources.json();
    for site in ["default", "acme"] {
        let described = app
            .admin(Method::GET, format!("/_admin/sites/{site}"))
            .send()
            .await
            .json();
        let resource = listed
            .as_array()
            .and_then(|all| all.iter().find(|r| r["name"] == site))
            .expect("listed");
        assert_eq!(resource["url"], described["url"], "{site}: {listed}");
    }
    assert_ne!(listed[0]["url"], listed[1]["url"], "{listed}");
}

async fn service_accounts_use_client_credentials(backend: Backend) {
    let app = backend.app().await;
    let acme = make_acme(&app).await;
    let body = json!({"name": "Sync bot", "kind": "serviceAccount", "sites": ["acme"],
                      "scopes": ["read:jira-user", "write:jira-work"], "clientId": "sync-bot"});
    let created = app
        .admin(Method::POST, "/_admin/apps")
        .json(body.to_string())
        .send()
        .await;
    created.assert_status(201);
    let created = created.json();
    let secret = created["clientSecret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let account_id = created["accountId"]
        .as_str()
        .expect("an account")
        .to_owned();
    assert!(
        created["email"]
            .as_str()
            .is_some_and(|e| e.ends_with("@serviceaccount.atlassian.com"))
    );
    let listed = app.admin(Method::GET, "/_admin/apps").send().await.json();
    assert!(listed[0].get("clientSecret").is_none(), "{listed}");
    let form = |extra: &str| {
        format!("grant_type=client_credentials&client_id=sync-bot&client_secret={secret}{extra}")
    };
    let request = |body: String| {
        app.request(Method::POST, "/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let scoped = request(form("&scope=read:jira-user")).await;
    assert_eq!(scoped.json()["error"], "invalid_scope");
    let wrong =
        request("grant_type=client_credentials&client_id=sync-bot&client_secret=nope".to_owned())
            .await;
    wrong.assert_status(400);
    assert_eq!(wrong.json()["error"], "invalid_client");
    // In a Basic header, a wrong secret is challenged (RFC 6749, 5.2).
    let challenged = app
        .request(Method::POST, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &basic("sync-bot", "nope"))
        .body("grant_type=client_credentials")
        .send()
        .await;
    challenged.assert_status(401);
    assert_eq!(challenged.json()["error"], "invalid_client");
    assert!(
        challenged
            .header("www-authenticate")
            .is_some_and(|c| c.starts_with("Basic "))
    );
    let tokens = request(form("")).await;
    tokens.assert_status(200);
    assert!(tokens.json().get("refresh_token").is_none());
    let bearer = format!(
        "Bearer {}",
        tokens.json()["access_token"].as_str().expect("a token")
    );
    let uri = format!("/ex/jira/{acme}{}", property_uri(3, "bot", &account_id));
    app.put(&uri)
        .header("authorization", &bearer)
        .json("1")
        .send()
        .await
        .assert_status(201);
    let default = app
        .admin(Method::GET, "/_admin/sites/default")
        .send()
        .await
        .json();
    let elsewhere = format!(
        "/ex/jira/{}{}",
        default["id"].as_str().unwrap_or_default(),
        property_uri(3, "bot", &account_id)
    );
    app.get(&elsewhere)
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status(401);
    // Deleting the app revokes its tokens and removes its user.
    app.admin(Method::DELETE, "/_admin/apps/sync-bot")
        .send()
        .await
        .assert_status(204);
    app.get(&uri)
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status(401);
    app.admin(
        Method::GET,
        format!("/_admin/sites/acme/users/{account_id}"),
    )
    .send()
    .await
    .assert_status(404);
    app.admin(Method::DELETE, "/_admin/apps/sync-bot")
        .send()
        .await
        .assert_status(404);
}

/// A service account whose user cannot be made in one of its sites (its email is taken there):
/// refused, and nothing of it stays, so the same client id registers once the clash is gone.
async fn a_service_account_refused_half_way_leaves_nothing(backend: Backend) {
    let app = backend.app().await;
    make_acme(&app).await;
    let email = "sync-bot-sync-bot@serviceaccount.atlassian.com";
    let squatter = json!({"accountId": "squatter", "email": email});
    app.admin(Method::POST, "/_admin/sites/acme/users")
        .json(squatter.to_string())
        .send()
        .await
        .assert_status(201);
    let register = |sites: &[&str]| {
        let body = json!({"name": "Sync bot", "kind": "serviceAccount", "sites": sites,
                          "scopes": ["read:jira-user"], "clientId": "sync-bot"});
        app.admin(Method::POST, "/_admin/apps")
            .json(body.to_string())
            .send()
    };
    register(&["default", "acme"]).await.assert_status(409);
    let apps = app.admin(Method::GET, "/_admin/apps").send().await;
    assert_eq!(apps.json(), json!([]));
    let bot = "/_admin/users/712020:sync-bot";
    app.admin(Method::GET, bot).send().await.assert_status(404);
    app.admin(Method::GET, "/_admin/sites/acme/users/squatter")
        .send()
        .await
        .assert_status(200);
    register(&["default"]).await.assert_status(201);
    app.admin(Method::GET, bot).send().await.assert_status(200);
}

async fn the_admin_api_refuses_bad_apps(backend: Backend) {
    let app = backend.app().await;
    register(&app, &["read:jira-user"], false).await;
    let cases = [
        (
            json!({"name": "Again", "callbackUrl": CALLBACK, "clientId": CLIENT_ID}),
            409,
        ),
        (json!({"name": "No callback"}), 400),
        (
            json!({"name": "Bad callback", "callbackUrl": "ftp://x"}),
            400,
        ),
        (json!({"name": "Bot", "kind": "serviceAccount"}), 400),
        (
            json!({"name": "Bot", "kind": "serviceAccount", "sites": ["nowhere"]}),
            400,
        ),
        // A service account has no callback, sane or not (one held would be stored on one
        // backend only).
        (
            json!({"name": "Bot", "kind": "serviceAccount", "sites": ["default"],
                   "callbackUrl": "a\u{0}b"}),
            400,
        ),
        (
            json!({"name": "Bot", "kind": "serviceAccount", "sites": ["default"],
                   "callbackUrl": CALLBACK}),
            400,
        ),
        (
            json!({"name": "Odd", "kind": "robot", "callbackUrl": CALLBACK}),
            400,
        ),
        (
            json!({"name": "Id", "callbackUrl": CALLBACK, "clientId": "a b"}),
            400,
        ),
        (json!({"callbackUrl": CALLBACK}), 400),
        (
            json!({"name": "Nul", "callbackUrl": "http://127.0.0.1:3000/cb\u{0}"}),
            400,
        ),
        (
            json!({"name": "Scopes", "callbackUrl": CALLBACK, "scopes": ["read:jira-user\u{0}"]}),
            400,
        ),
        // Names alike and client ids alike in their first 8 characters: two accounts.
        (
            json!({"name": "Sync", "kind": "serviceAccount", "sites": ["default"],
                   "clientId": "myservice-a"}),
            201,
        ),
        (
            json!({"name": "Sync", "kind": "serviceAccount", "sites": ["default", "default"],
                   "clientId": "myservice-b"}),
            201,
        ),
    ];
    for (body, status) in cases {
        let response = app
            .admin(Method::POST, "/_admin/apps")
            .json(body.to_string())
            .send()
            .await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{body}: {}",
            response.text()
        );
    }
    let unknown = token_request(&app, json!({"grant_type": "password"})).await;
    assert_eq!(unknown.json()["error"], "unsupported_grant_type");
    // Ids PostgreSQL cannot compare name nothing, on either backend.
    for path in [
        format!("/_admin/apps/{CLIENT_ID}/grants/a%00b"),
        "/_admin/apps/a%00b/grants/x".to_owned(),
    ] {
        let response = app.admin(Method::DELETE, &path).send().await;
        assert_eq!(response.status.as_u16(), 404, "{path}: {}", response.text());
    }
}

/// Scoped API tokens: Basic `email:token` through the gateway only, within their scopes; as
/// Bearer through the gateway, 404 (as observed); expired, refused everywhere.
async fn scoped_api_tokens_work_through_the_gateway_only(backend: Backend) {
    let app = backend.app().await;
    let acme = make_acme(&app).await;
    let tokens_uri = format!("/_admin/sites/acme/users/{ALICE}/tokens");
    let make = |body: &'static str| app.admin(Method::POST, &tokens_uri).json(body).send();
    let created = make(r#"{"scopes":["read:jira-user"],"expiresAt":"2999-01-01T00:00:00Z"}"#).await;
    created.assert_status(201);
    assert_eq!(created.json()["scopes"], json!(["read:jira-user"]));
    assert_eq!(created.json()["expiresAt"], "2999-01-01T00:00:00.000Z");
    let token = created.json()["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let listed = app.admin(Method::GET, &tokens_uri).send().await.json();
    let scoped: Vec<&Value> = listed
        .as_array()
        .expect("an array")
        .iter()
        .filter(|t| t.get("scopes").is_some())
        .collect();
    assert_eq!(scoped.len(), 1);
    let alice = basic("alice@example.com", &token);
    let gateway = format!("/ex/jira/{acme}");
    app.get(format!("{gateway}/rest/api/3/myself"))
        .header("authorization", &alice)
        .send()
        .await
        .assert_status(200);
    let put = app
        .put(format!("{gateway}{}", property_uri(3, "k", ALICE)))
        .header("authorization", &alice)
        .json("1")
        .send()
        .await;
    assert_eq!(
        put.header("x-failure-category"),
        Some("FAILURE_CLIENT_SCOPE_CHECK")
    );
    app.get("/rest/api/3/myself")
        .host("acme.localhost")
        .header("authorization", &alice)
        .send()
        .await
        .assert_status(401);
    let bearer = app
        .get(format!("{gateway}/rest/api/3/myself"))
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await;
    bearer.assert_status(404);
    // Expired tokens, scoped or classic, are refused on both forms.
    let expired = make(r#"{"scopes":["read:jira-user"],"expiresAt":"2000-01-01T00:00:00Z"}"#)
        .await
        .json();
    let expired = basic(
        "alice@example.com",
        expired["token"].as_str().unwrap_or_default(),
    );
    app.get(format!("{gateway}/rest/api/3/myself"))
        .header("authorization", &expired)
        .send()
        .await
        .assert_status(401);
    let classic = make(r#"{"expiresAt":"2000-01-01T00:00:00Z"}"#).await.json();
    let classic = basic(
        "alice@example.com",
        classic["token"].as_str().unwrap_or_default(),
    );
    app.get("/rest/api/3/myself")
        .host("acme.localhost")
        .header("authorization", &classic)
        .send()
        .await
        .assert_status(401);
    // A token without a body is classic, as before.
    let plain = app.admin(Method::POST, &tokens_uri).send().await.json();
    let plain = basic(
        "alice@example.com",
        plain["token"].as_str().unwrap_or_default(),
    );
    app.get("/rest/api/3/myself")
        .host("acme.localhost")
        .header("authorization", &plain)
        .send()
        .await
        .assert_status(200);
    for bad in [
        r#"{"scopes":[]}"#,
        r#"{"expiresAt":"soon"}"#,
        r#"{"scope":["x"]}"#,
        "[1]",
    ] {
        make(bad).await.assert_status(400);
    }
    app.admin(
        Method::POST,
        format!("/_admin/sites/acme/users/{NOBODY}/tokens"),
    )
    .json("{\"scopes\":[]}")
    .send()
    .await
    .assert_status(404);
}

/// An app over `store` whose login throttle refuses a client after 3 failures.
fn refusing_after_3_failed_logins(store: Store) -> TestApp {
    let settings = Settings {
        login_failures: 3,
        ..TestApp::settings(None)
    };
    TestApp::with_settings(store, settings)
}

/// Alice's answer on the consent page: signed in with `token`, `decision` for `site`.
fn consent_form(token: &str, site: &str, decision: &str) -> String {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "read:jira-user")
        .append_pair("state", "s-1")
        .append_pair("response_type", "code")
        .append_pair("email", "alice@example.com")
        .append_pair("token", token)
        .append_pair("site", site)
        .append_pair("decision", decision);
    body.finish()
}

/// Alice signing in on the consent page from `from` with `token`, accepting for the default site.
async fn sign_in_as_alice(app: &TestApp, token: &str, from: &str) -> TestResponse {
    app.request(Method::POST, "/authorize")
        .header("content-type", "application/x-www-form-urlencoded")
        .from(from)
        .body(consent_form(token, "default", "accept"))
        .send()
        .await
}

/// Guesses at a client secret count as failed logins: past the limit, even the right secret is
/// refused for a while.
async fn failed_client_authentications_are_throttled(backend: Backend) {
    let app = refusing_after_3_failed_logins(backend.app().await.store);
    register(&app, &["read:jira-user"], true).await;
    let attempt = |secret: &str| {
        let body = json!({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": secret});
        app.request(Method::POST, "/oauth/token")
            .from("10.1.2.3:4000")
            .json(body.to_string())
            .send()
    };
    for _ in 0..3 {
        assert_eq!(attempt("wrong").await.json()["error"], "invalid_client");
    }
    let refused = attempt(CLIENT_SECRET).await;
    refused.assert_status(400);
    assert_eq!(
        refused.json()["error_description"],
        "Too many failed attempts; try again later."
    );
    assert!(refused.header("retry-after").is_some());
    assert_eq!(
        metric(&app, "jira_userprops_refused_logins_total ")
            .await
            .as_deref(),
        Some("jira_userprops_refused_logins_total 1")
    );
}

/// Wrong API tokens on the consent form are failed logins: past the limit, that client's
/// sign-ins as that email are refused unchecked, while another client's go on.
async fn failed_sign_ins_on_the_consent_page_are_throttled(backend: Backend) {
    let app = refusing_after_3_failed_logins(backend.app().await.store);
    register(&app, &["read:jira-user"], false).await;
    let sign_in = |token, from| sign_in_as_alice(&app, token, from);
    for attempt in 1..=3 {
        let wrong = sign_in("guess", "10.1.2.3:4000").await;
        assert_eq!(wrong.status, 401, "attempt {attempt}");
        assert!(wrong.text().contains("Wrong email or API token."));
        assert_eq!(wrong.header("retry-after"), None);
    }
    // Refused before the token is checked: the right one fares no better.
    let refused = sign_in("alice-token", "10.1.2.3:4000").await;
    refused.assert_status(401);
    assert!(
        refused
            .text()
            .contains("Too many failed sign-ins; try again later."),
        "{}",
        refused.text()
    );
    let retry_after: u64 = refused
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        metric(&app, "jira_userprops_refused_logins_total ")
            .await
            .as_deref(),
        Some("jira_userprops_refused_logins_total 1")
    );
    let elsewhere = sign_in("alice-token", "10.9.8.7:4000").await;
    assert!(param(&redirected(&elsewhere), "code").is_some());
}

/// The database failing while someone signs in on the consent page: a 503, not "wrong token",
/// and not a failed login that would lock the account out once the database is back. The
/// credentials' tables are locked, and statements give up on a lock after 200 ms, so the app,
/// the sites and the accounts are read and only the sign-in's own statements fail.
/// PostgreSQL only: it alone lets the test set a lock timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_fault_during_a_consent_sign_in_is_no_failed_login() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let mut locker = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
        .await
        .expect("connects");
    // The server's own sessions only: the test URL ends in its `options`, which this extends.
    let impatient = format!("{}%20-c%20lock_timeout%3D200ms", database.url);
    assert!(
        impatient.contains("options=-c%20search_path"),
        "{impatient}"
    );
    // Migrated and seeded with the usual patience: migrations wait on other tests' for a lock.
    TestApp::on(&database.url, None).await;
    let store = Store::connect(&impatient, &test_database_options())
        .await
        .expect("database opens");
    let app = refusing_after_3_failed_logins(store);
    register(&app, &["read:jira-user"], false).await;

    sqlx::raw_sql("BEGIN; LOCK TABLE api_tokens, credentials_version IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .expect("locked");
    for attempt in 1..=3 {
        let answer = sign_in_as_alice(&app, "alice-token", "10.1.2.3:4000").await;
        answer.assert_error(503, "The database is unavailable. Try again later.");
        assert!(answer.header("retry-after").is_some(), "attempt {attempt}");
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut locker)
        .await
        .expect("unlocked");

    let signed_in = sign_in_as_alice(&app, "alice-token", "10.1.2.3:4000").await;
    assert!(param(&redirected(&signed_in), "code").is_some());
}

/// A code exchanged while its grant is revoked: the grant is read, then deleted before the
/// tokens referring to it are stored. The answer is a spent code's, as a moment later, and no
/// token comes back; refreshing (the same `issue` path) fares alike. PostgreSQL only: it alone
/// lets the test hold the grant's row between the two statements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_exchanged_while_its_grant_is_revoked_is_refused() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let app = TestApp::on(&database.url, None).await;
    register(&app, &["read:jira-user"], true).await;
    let code = code_for(&app, ALICE, "read:jira-user").await;
    let exchanging = {
        let app = app.clone();
        async move { token_request(&app, exchange(&code)).await }
    };
    let refused = deleted_under(&database.url, "FROM oauth_grants", exchanging).await;
    refused.assert_status(400);
    assert_eq!(
        refused.json(),
        json!({"error": "invalid_request", "error_description": "authorization_code is invalid"})
    );
}

/// A refresh while its grant is revoked: the grant is read, then deleted before the new tokens
/// are stored. The answer is a revoked refresh token's, as a moment later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_while_its_grant_is_revoked_is_refused() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let app = TestApp::on(&database.url, None).await;
    register(&app, &["read:jira-user", "offline_access"], true).await;
    let code = code_for(&app, ALICE, "read:jira-user offline_access").await;
    let tokens = token_request(&app, exchange(&code)).await;
    tokens.assert_status(200);
    let refresh_token = tokens.json()["refresh_token"].clone();
    assert!(refresh_token.is_string(), "{}", tokens.text());
    let body = json!({"grant_type": "refresh_token", "client_id": CLIENT_ID,
                      "client_secret": CLIENT_SECRET, "refresh_token": refresh_token});
    let refreshing = {
        let app = app.clone();
        async move { token_request(&app, body).await }
    };
    let refused = deleted_under(&database.url, "FROM oauth_grants", refreshing).await;
    refused.assert_status(403);
    assert_eq!(
        refused.json(),
        json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
    );
}

/// The row of the site `make_acme` makes.
const ACME_ROW: &str = "FROM sites WHERE name = 'acme'";

/// A service account asking for a token while one of its sites is deleted: its grant is made
/// again over the sites left, and the token works there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_while_a_site_is_deleted_grant_the_sites_left() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let app = TestApp::on(&database.url, None).await;
    make_acme(&app).await;
    make_sync_bot(&app, &["default", "acme"], "s").await;
    let body = json!({"grant_type": "client_credentials", "client_id": "sync-bot",
                      "client_secret": "s"});
    let asking = {
        let app = app.clone();
        async move { token_request(&app, body).await }
    };
    let tokens = deleted_under(&database.url, ACME_ROW, asking).await;
    tokens.assert_status(200);
    let bearer = format!(
        "Bearer {}",
        tokens.json()["access_token"].as_str().unwrap_or("?")
    );
    let resources = app
        .get("/oauth/token/accessible-resources")
        .header("authorization", &bearer)
        .send()
        .await;
    resources.assert_status(200);
    let names: Vec<_> = resources
        .json()
        .as_array()
        .map(|sites| sites.iter().map(|site| site["name"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(names, [json!("default")], "{}", resources.text());
}

/// A consent granting a site whose deletion commits meanwhile: a 404 saying so, and no grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_to_a_site_deleted_meanwhile_grants_nothing() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let app = TestApp::on(&database.url, None).await;
    make_acme(&app).await;
    register(&app, &["read:jira-user"], true).await;
    let uri = authorize_uri("read:jira-user", &format!("&login_hint={ALICE}"));
    let consenting = {
        let app = app.clone();
        async move { app.get(uri).send().await }
    };
    deleted_under(&database.url, ACME_ROW, consenting)
        .await
        .assert_error(404, "What this request refers to was deleted while it ran.");
    let grants = app
        .admin(Method::GET, format!("/_admin/apps/{CLIENT_ID}/grants"))
        .send()
        .await;
    grants.assert_status(200);
    assert_eq!(grants.json(), json!([]));
}

/// A seed may give a token's scopes and expiry; a snapshot carries them, and an import keeps
/// the token scoped rather than making it classic.
async fn seeds_and_snapshots_keep_a_tokens_scopes(backend: Backend) {
    let app = backend.app().await;
    let seed = r#"{"users": [{"accountId": "ada", "email": "ada@example.com", "apiTokens": [
        "ada-classic",
        {"token": "ada-scoped", "scopes": ["read:jira-user"], "expiresAt": "2999-01-01T00:00:00Z"}]}]}"#;
    let created = app
        .admin(Method::POST, "/_admin/sites")
        .json(format!(r#"{{"name":"acme","seed":{seed}}}"#))
        .send()
        .await;
    created.assert_status(201);
    let gateway = format!("/ex/jira/{}", created.json()["id"].as_str().unwrap_or("?"));
    let answers = |token: &'static str| {
        let app = &app;
        let gateway = gateway.clone();
        async move {
            let mut statuses = Vec::new();
            let ada = basic("ada@example.com", token);
            for (uri, host) in [
                (format!("{gateway}/rest/api/3/myself"), "localhost"),
                ("/rest/api/3/myself".to_owned(), "acme.localhost"),
            ] {
                let response = app.get(uri).host(host).header("authorization", &ada).send();
                statuses.push(response.await.status.as_u16());
            }
            statuses
        }
    };
    assert_eq!(answers("ada-scoped").await, [200, 401]);
    assert_eq!(answers("ada-classic").await, [200, 200]);
    let listed = app
        .admin(Method::GET, "/_admin/sites/acme/users/ada/tokens")
        .send()
        .await
        .json();
    let expiries: Vec<&Value> = listed
        .as_array()
        .map(|tokens| tokens.iter().filter_map(|t| t.get("expiresAt")).collect())
        .unwrap_or_default();
    assert_eq!(expiries, [&json!("2999-01-01T00:00:00.000Z")]);

    let snapshot = app
        .admin(Method::GET, "/_admin/sites/acme/snapshot")
        .send()
        .await;
    snapshot.assert_status(200);
    let hashes = snapshot.json()["users"][0]["apiTokenHashes"].clone();
    let scoped: Vec<&Value> = hashes
        .as_array()
        .map(|hashes| hashes.iter().filter(|h| h.is_object()).collect())
        .unwrap_or_default();
    assert_eq!(scoped.len(), 1, "{hashes}");
    assert_eq!(scoped[0]["scopes"], json!(["read:jira-user"]));
    assert_eq!(scoped[0]["expiresAt"], "2999-01-01T00:00:00.000Z");
    app.admin(Method::PUT, "/_admin/sites/acme/snapshot")
        .json(snapshot.text().to_owned())
        .send()
        .await
        .assert_status(204);
    assert_eq!(answers("ada-scoped").await, [200, 401]);
    assert_eq!(answers("ada-classic").await, [200, 200]);
}

/// Each consent is a grant (a refresh-token family); revoking one through the admin API ends its
/// tokens at the next request and leaves the others alone.
async fn grants_are_listed_and_revoked_one_at_a_time(backend: Backend) {
    let app = backend.app().await;
    make_acme(&app).await;
    let scopes = "read:jira-user offline_access";
    register(&app, &["read:jira-user", "offline_access"], true).await;
    let mut issued = Vec::new();
    for _ in 0..2 {
        let code = code_for(&app, "alice@example.com", scopes).await;
        let tokens = token_request(&app, exchange(&code)).await;
        tokens.assert_status(200);
        issued.push(tokens.json());
    }
    let grants = app
        .admin(Method::GET, format!("/_admin/apps/{CLIENT_ID}/grants"))
        .send()
        .await;
    grants.assert_status(200);
    let grants = grants.json();
    let grants = grants.as_array().expect("an array");
    assert_eq!(grants.len(), 2, "{grants:?}");
    for grant in grants {
        assert_eq!(grant["accountId"], ALICE);
        assert_eq!(grant["scopes"], json!(["offline_access", "read:jira-user"]));
        let names: Vec<&Value> = grant["sites"]
            .as_array()
            .map(|sites| sites.iter().map(|site| &site["name"]).collect())
            .unwrap_or_default();
        assert_eq!(names, [&json!("default"), &json!("acme")]);
    }
    let works = |tokens: &Value| {
        let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap_or("?"));
        let app = &app;
        async move {
            let sites = app
                .get("/oauth/token/accessible-resources")
                .header("authorization", &bearer)
                .send()
                .await;
            sites.status.as_u16()
        }
    };
    assert_eq!(
        (works(&issued[0]).await, works(&issued[1]).await),
        (200, 200)
    );
    // Which grant holds which token is not shown; revoking each in turn tells them apart.
    let first = grants[0]["id"].as_str().expect("an id");
    let revoke = |grant: &str| {
        app.admin(
            Method::DELETE,
            format!("/_admin/apps/{CLIENT_ID}/grants/{grant}"),
        )
        .send()
    };
    revoke(first).await.assert_status(204);
    let after = (works(&issued[0]).await, works(&issued[1]).await);
    assert!(after == (401, 200) || after == (200, 401), "{after:?}");
    let revoked = if after.0 == 401 {
        &issued[0]
    } else {
        &issued[1]
    };
    let refresh = json!({"grant_type": "refresh_token", "client_id": CLIENT_ID,
                         "client_secret": CLIENT_SECRET, "refresh_token": revoked["refresh_token"]});
    token_request(&app, refresh).await.assert_status(403);
    revoke(first).await.assert_status(404);
    app.admin(Method::GET, "/_admin/apps/nobody/grants")
        .send()
        .await
        .assert_status(404);
    app.admin(
        Method::DELETE,
        format!("/_admin/apps/nobody/grants/{first}"),
    )
    .send()
    .await
    .assert_status(404);
    let remaining = app
        .admin(Method::GET, format!("/_admin/apps/{CLIENT_ID}/grants"))
        .send()
        .await
        .json();
    assert_eq!(remaining.as_array().map(Vec::len), Some(1));
}

/// A refresh token is its own app's: presented by another, it is unknown and left as it was, so
/// that its app refreshes with it later, past the leeway a spent one would have had. An app
/// needs no `offline_access` among its registered scopes to ask for it.
async fn another_apps_refresh_token_is_refused_and_left_alone(backend: Backend) {
    let (app, clock) = on_a_clock(backend, None).await;
    register(&app, &["read:jira-user"], true).await;
    let other = json!({"name": "Other", "kind": "oauth2", "callbackUrl": CALLBACK,
                       "scopes": ["read:jira-user"], "clientId": "other-app", "clientSecret": "other-secret"});
    app.admin(Method::POST, "/_admin/apps")
        .json(other.to_string())
        .send()
        .await
        .assert_status(201);
    let code = code_for(&app, ALICE, "read:jira-user offline_access").await;
    let tokens = token_request(&app, exchange(&code)).await;
    tokens.assert_status(200);
    let refresh_token = tokens.json()["refresh_token"].clone();
    assert!(refresh_token.is_string(), "{}", tokens.text());
    let by = |client_id: &str, client_secret: &str| {
        json!({"grant_type": "refresh_token", "client_id": client_id,
               "client_secret": client_secret, "refresh_token": refresh_token})
    };
    let stolen = token_request(&app, by("other-app", "other-secret")).await;
    stolen.assert_status(403);
    assert_eq!(stolen.json()["error"], "invalid_grant");
    clock.advance(Duration::from_secs(11 * 60));
    token_request(&app, by(CLIENT_ID, CLIENT_SECRET))
        .await
        .assert_status(200);
}

/// A secret with characters form-encoding changes is accepted in a Basic header both as RFC 6749
/// asks (form-encoded) and as clients that do not encode send it.
async fn a_basic_headers_secret_counts_encoded_or_not(backend: Backend) {
    let app = backend.app().await;
    make_sync_bot(&app, &["default"], "a+b/c=").await;
    // With the client id in the body too, as some libraries send it beside the header.
    let bodies = [
        "grant_type=client_credentials",
        "grant_type=client_credentials&client_id=sync-bot",
    ];
    for body in bodies {
        for (secret, status) in [("a+b/c=", 200), ("a%2Bb%2Fc%3D", 200), ("a b/c=", 401)] {
            let answer = app
                .request(Method::POST, "/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", &basic("sync-bot", secret))
                .body(body)
                .send()
                .await;
            assert_eq!(
                answer.status.as_u16(),
                status,
                "{body} {secret}: {}",
                answer.text()
            );
        }
    }
}

/// Each client-credentials token is a grant of its own; grants that ended are forgotten as new
/// ones are made, so that a job asking for a token per run does not pile them up.
async fn a_service_accounts_ended_grants_are_forgotten(backend: Backend) {
    let (app, clock) = on_a_clock(backend, Some(Duration::from_secs(60))).await;
    make_sync_bot(&app, &["default"], "s").await;
    let ask = json!({"grant_type": "client_credentials", "client_id": "sync-bot",
                     "client_secret": "s"});
    let grants = || async {
        let listed = app
            .admin(Method::GET, "/_admin/apps/sync-bot/grants")
            .send()
            .await;
        listed.assert_status(200);
        listed.json().as_array().map_or(0, Vec::len)
    };
    for _ in 0..3 {
        token_request(&app, ask.clone()).await.assert_status(200);
    }
    assert_eq!(grants().await, 3, "each live token is a grant");
    // Forgotten a minute after they ended.
    clock.advance(Duration::from_secs(61));
    token_request(&app, ask.clone()).await.assert_status(200);
    assert_eq!(grants().await, 4, "ended a second ago: kept a while");
    clock.advance(Duration::from_secs(60));
    token_request(&app, ask).await.assert_status(200);
    assert_eq!(
        grants().await,
        2,
        "the three ended a minute ago are forgotten"
    );
}

/// A consent whose code is never exchanged, or is spent on a refused exchange, leaves no grant
/// behind: `/authorize` asks no credentials of an app that consents by itself.
async fn grants_whose_code_was_not_exchanged_are_forgotten(backend: Backend) {
    let (app, clock) = on_a_clock(backend, None).await;
    register(&app, &["read:jira-user"], true).await;
    let grants = || async {
        let listed = app
            .admin(Method::GET, format!("/_admin/apps/{CLIENT_ID}/grants"))
            .send()
            .await;
        listed.assert_status(200);
        listed.json().as_array().map_or(0, Vec::len)
    };
    let expired = code_for(&app, "alice@example.com", "read:jira-user").await;
    clock.advance(Duration::from_secs(11 * 60));
    token_request(&app, exchange(&expired))
        .await
        .assert_status(400);
    assert_eq!(grants().await, 0, "an expired code's grant");
    let misdirected = code_for(&app, "alice@example.com", "read:jira-user").await;
    let mut wrong = exchange(&misdirected);
    wrong["redirect_uri"] = json!("http://127.0.0.1:3000/elsewhere");
    token_request(&app, wrong).await.assert_status(400);
    assert_eq!(grants().await, 0, "a code spent on a refused exchange");
    for _ in 0..3 {
        code_for(&app, "alice@example.com", "read:jira-user").await;
    }
    assert_eq!(grants().await, 3, "live codes keep their grants");
    clock.advance(Duration::from_secs(12 * 60));
    let fresh = code_for(&app, "alice@example.com", "read:jira-user").await;
    assert_eq!(
        grants().await,
        1,
        "a new consent forgets the unexchanged ones"
    );
    token_request(&app, exchange(&fresh))
        .await
        .assert_status(200);
    assert_eq!(grants().await, 1);
}

/// A clock whose wall moves a millisecond at each reading, as a busy machine's may between two.
#[derive(Debug, Default)]
struct TickingClock(ManualClock);

impl Clock for TickingClock {
    fn now(&self) -> std::time::Instant {
        self.0.now()
    }

    fn wall(&self) -> std::time::SystemTime {
        self.0.advance(Duration::from_millis(1));
        self.0.wall()
    }
}

async fn expires_in_is_the_whole_hour_however_the_clock_moves(backend: Backend) {
    let settings = Settings {
        clock: std::sync::Arc::new(TickingClock::default()),
        ..TestApp::settings(None)
    };
    let app = TestApp::with_settings(backend.app().await.store, settings);
    register(&app, &["read:jira-user", "offline_access"], true).await;
    let code = code_for(&app, "alice@example.com", "read:jira-user offline_access").await;
    let tokens = token_request(&app, exchange(&code)).await;
    tokens.assert_status(200);
    assert_eq!(tokens.json()["expires_in"], 3600);
    let body = json!({"grant_type": "refresh_token", "client_id": CLIENT_ID,
                      "client_secret": CLIENT_SECRET,
                      "refresh_token": tokens.json()["refresh_token"]});
    let refreshed = token_request(&app, body).await;
    refreshed.assert_status(200);
    assert_eq!(refreshed.json()["expires_in"], 3600);
}

/// Codes live 10 minutes; refresh tokens end after 90 days unused, and their family 365 days
/// after the consent, however often it is refreshed.
async fn codes_and_refresh_tokens_expire_as_atlassian_says(backend: Backend) {
    const DAY: Duration = Duration::from_secs(24 * 3600);
    let (app, clock) = on_a_clock(backend, None).await;
    register(&app, &["read:jira-user", "offline_access"], true).await;
    let scopes = "read:jira-user offline_access";
    let stale = code_for(&app, "alice@example.com", scopes).await;
    clock.advance(Duration::from_secs(10 * 60 + 1));
    let refused = token_request(&app, exchange(&stale)).await;
    refused.assert_status(400);
    assert_eq!(refused.json()["error"], "invalid_request");
    let fresh = code_for(&app, "alice@example.com", scopes).await;
    clock.advance(Duration::from_secs(9 * 60));
    let tokens = token_request(&app, exchange(&fresh)).await;
    tokens.assert_status(200);
    let refresh = |token: String| {
        let app = &app;
        async move {
            let body = json!({"grant_type": "refresh_token", "client_id": CLIENT_ID,
                              "client_secret": CLIENT_SECRET, "refresh_token": token});
            let answer = token_request(app, body).await;
            let next = answer.json()["refresh_token"].as_str().map(str::to_owned);
            (answer.status.as_u16(), next)
        }
    };
    let mut newest = tokens.json()["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    // Used every 80 days the family lives on, until 365 days after the consent.
    for _ in 0..4 {
        clock.advance(80 * DAY);
        let (status, next) = refresh(newest.clone()).await;
        assert_eq!(status, 200, "refreshed within 90 days");
        newest = next.expect("a rotated refresh token");
    }
    clock.advance(44 * DAY);
    let (status, next) = refresh(newest.clone()).await;
    assert_eq!(status, 200, "day 364");
    newest = next.expect("a rotated refresh token");
    clock.advance(2 * DAY);
    assert_eq!(
        refresh(newest).await.0,
        403,
        "day 366: the family has ended"
    );
    // Unused for 90 days, a refresh token ends.
    let code = code_for(&app, "alice@example.com", scopes).await;
    let tokens = token_request(&app, exchange(&code)).await.json();
    let unused = tokens["refresh_token"].as_str().expect("a refresh token");
    clock.advance(90 * DAY + Duration::from_secs(1));
    assert_eq!(refresh(unused.to_owned()).await.0, 403, "90 days unused");
}

/// Text holding U+0000, which PostgreSQL cannot even compare, names no app, account or site: it
/// is answered as any unknown name is, on both backends, never with a 5xx.
async fn text_with_nul_is_answered_as_any_unknown_name(backend: Backend) {
    let app = backend.app().await;
    register(&app, &["read:jira-user"], true).await;
    let authorize = authorize_uri("read:jira-user", "");
    let pairs = [
        (
            authorize.replace(CLIENT_ID, "a%00b"),
            authorize.replace(CLIENT_ID, "unknown-client"),
        ),
        (
            authorize_uri("read:jira-user", "&login_hint=a%00b"),
            authorize_uri("read:jira-user", "&login_hint=nobody%40example.com"),
        ),
    ];
    let bulk = |id: &str| format!("/rest/api/3/user/bulk?accountId={id}");
    let (odd, plain) = (
        app.get(bulk("a%00b")).by(Who::Bob).send().await,
        app.get(bulk("nobody")).by(Who::Bob).send().await,
    );
    plain.assert_status(200);
    odd.assert_status(200);
    assert_eq!(
        (&odd.json()["total"], &plain.json()["total"]),
        (&json!(0), &json!(0))
    );
    for (with_nul, unknown) in pairs {
        let (odd, plain) = (
            app.get(&with_nul).by(Who::Bob).send().await,
            app.get(&unknown).by(Who::Bob).send().await,
        );
        assert!(!odd.status.is_server_error(), "{with_nul}: {}", odd.text());
        // The pages may quote what they were given; the statuses must agree.
        assert_eq!(odd.status, plain.status, "{with_nul}: {}", odd.text());
    }
    let (odd, plain) = (
        app.admin(Method::GET, "/_admin/sites/a%00b").send().await,
        app.admin(Method::GET, "/_admin/sites/nosuchsite")
            .send()
            .await,
    );
    assert_eq!((odd.status, odd.json()), (plain.status, plain.json()));
    for client_id in ["a\u{0}b", "unknown-client"] {
        let refused = token_request(
            &app,
            json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"}),
        )
        .await;
        refused.assert_status(400);
        assert_eq!(refused.json()["error"], "invalid_client", "{client_id:?}");
    }
}

/// A user deleted and made again is someone new to every app: what they granted before, in that
/// site, is gone; in their other sites it holds.
async fn a_users_grants_in_a_site_end_with_them(backend: Backend) {
    let app = backend.app().await;
    make_acme(&app).await;
    register(&app, &["read:jira-user"], true).await;
    let code = code_for(&app, ALICE, "read:jira-user").await;
    let tokens = token_request(&app, exchange(&code)).await.json();
    let bearer = format!(
        "Bearer {}",
        tokens["access_token"].as_str().expect("a token")
    );
    let granted = || async {
        let resources = app
            .get("/oauth/token/accessible-resources")
            .header("authorization", &bearer)
            .send()
            .await;
        site_names(&resources)
    };
    assert_eq!(granted().await, [json!("default"), json!("acme")]);
    app.admin(Method::DELETE, format!("/_admin/sites/acme/users/{ALICE}"))
        .send()
        .await
        .assert_status(204);
    let again = json!({"accountId": ALICE, "email": "alice@example.com", "displayName": "Alice"});
    app.admin(Method::POST, "/_admin/sites/acme/users")
        .json(again.to_string())
        .send()
        .await
        .assert_status(201);
    assert_eq!(granted().await, [json!("default")]);
    app.admin(Method::POST, "/_admin/reset?scope=all")
        .send()
        .await
        .assert_status(204);
    app.admin(Method::POST, "/_admin/reset?to=seed")
        .send()
        .await
        .assert_status(204);
    assert_eq!(granted().await, Vec::<Value>::new());
}

on_each_backend!(
    a_users_grants_in_a_site_end_with_them,
    accessible_resources_give_each_site_the_address_the_admin_api_gives,
    codes_and_refresh_tokens_expire_as_atlassian_says,
    expires_in_is_the_whole_hour_however_the_clock_moves,
    grants_are_listed_and_revoked_one_at_a_time,
    grants_whose_code_was_not_exchanged_are_forgotten,
    seeds_and_snapshots_keep_a_tokens_scopes,
    scoped_api_tokens_work_through_the_gateway_only,
    failed_client_authentications_are_throttled,
    failed_sign_ins_on_the_consent_page_are_throttled,
    the_authorization_code_flow_reaches_the_granted_sites,
    an_access_token_expires,
    scopes_are_checked_before_jira_and_an_app_is_never_more_than_its_user,
    authorize_refuses_without_redirecting,
    the_consent_page_signs_in_and_grants_the_sites_picked,
    service_accounts_use_client_credentials,
    the_admin_api_refuses_bad_apps,
    a_service_account_refused_half_way_leaves_nothing,
    text_with_nul_is_answered_as_any_unknown_name,
    another_apps_refresh_token_is_refused_and_left_alone,
    a_service_accounts_ended_grants_are_forgotten,
    a_basic_headers_secret_counts_encoded_or_not,
);
