//! Several instances over one database: without memory they agree at once; with SQLite's memory
//! on, each sees the other's changes within its stated bound.

use std::path::Path;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use jira_userprops::domain::SiteKey;
use jira_userprops::seed;
use jira_userprops::service::apps::AppService;
use jira_userprops::service::{AdminService, SiteService};
use jira_userprops::store::{DatabaseOptions, Store};

use crate::helpers::*;

/// Two instances (two stores, two routers) over one new database, keeping nothing in memory.
async fn two_instances(backend: Backend) -> (TestDatabase, TestApp, TestApp) {
    let options = DatabaseOptions {
        cache_bytes: 0,
        ..test_database_options()
    };
    two_instances_with(backend, &options).await
}

async fn two_instances_with(
    backend: Backend,
    options: &DatabaseOptions,
) -> (TestDatabase, TestApp, TestApp) {
    let database = backend.database().await;
    let first = TestApp::on_with(&database.url, None, options).await;
    let store = Store::connect(&database.url, options)
        .await
        .expect("second instance connects");
    store.migrate().await.expect("second instance migrates");
    (database, first, TestApp::over(store, None))
}

/// SQLite's memory promises that another connection's commit is seen within 50 ms; a loaded
/// test machine gets more, but a change that is never seen fails.
const SEEN_WITHIN: Duration = Duration::from_secs(2);

/// Asks `ask` until it answers `expected`; how long that took, or a failure past [`SEEN_WITHIN`].
async fn seen<F, Fut, T>(what: &str, expected: T, mut ask: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
    T: PartialEq + std::fmt::Debug,
{
    let started = std::time::Instant::now();
    loop {
        let answer = ask().await;
        if answer == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < SEEN_WITHIN,
            "{what}: still {answer:?} after {SEEN_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn with_memory_on_sqlite_another_instance_s_changes_are_seen_within_the_bound() {
    let (_database, first, second) =
        two_instances_with(Backend::Sqlite, &test_database_options()).await;
    let uri = property_uri(3, "shared", ALICE);
    first
        .put(&uri)
        .by(Who::Alice)
        .json("1")
        .send()
        .await
        .assert_status(201);
    // Read a few times, so the second instance holds the value and Alice's account in memory.
    for _ in 0..5 {
        let read = second.get(&uri).by(Who::Alice).send().await;
        assert_eq!(read.text(), r#"{"key":"shared","value":1}"#);
    }

    first
        .put(&uri)
        .by(Who::Alice)
        .json("2")
        .send()
        .await
        .assert_status(200);
    seen(
        "the new value",
        r#"{"key":"shared","value":2}"#.to_owned(),
        || async {
            second
                .get(&uri)
                .by(Who::Alice)
                .send()
                .await
                .text()
                .to_owned()
        },
    )
    .await;

    change_user(&first, ALICE, r#"{"active": false}"#).await;
    seen("the deactivation", StatusCode::UNAUTHORIZED, || async {
        second.get(&uri).by(Who::Alice).send().await.status
    })
    .await;
}

async fn concurrent_first_puts_across_instances_give_exactly_one_201(backend: Backend) {
    let (_database, first, second) = two_instances(backend).await;
    race_first_puts(&[first, second], Who::Bob, BOB, "contended", 32).await;
}

async fn a_write_through_one_instance_is_read_through_the_other_at_once(backend: Backend) {
    let (_database, first, second) = two_instances(backend).await;
    let uri = property_uri(3, "shared", ALICE);
    first
        .put(&uri)
        .by(Who::Alice)
        .json("{\"v\": 1}")
        .send()
        .await
        .assert_status(201);
    let read = second.get(&uri).by(Who::Alice).send().await;
    assert_eq!(read.text(), r#"{"key":"shared","value":{"v": 1}}"#);

    second
        .put(&uri)
        .by(Who::Alice)
        .json("{\"v\": 2}")
        .send()
        .await
        .assert_status(200);
    let read = first.get(&uri).by(Who::Alice).send().await;
    assert_eq!(read.text(), r#"{"key":"shared","value":{"v": 2}}"#);

    first
        .delete(&uri)
        .by(Who::Alice)
        .send()
        .await
        .assert_status(204);
    second
        .get(&uri)
        .by(Who::Alice)
        .send()
        .await
        .assert_error(404, "The property shared does not exist.");
    let keys = second
        .get(keys_uri(2, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .json();
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1), "{keys}");
}

async fn a_user_seeded_by_one_instance_can_call_the_other(backend: Backend) {
    let (_database, first, second) = two_instances(backend).await;
    let newcomer = r#"{"users": [{"accountId": "gina-1", "email": "gina@example.com", "apiTokens": ["gina-token"]}]}"#;
    let newcomer = seed::parse(Path::new("newcomer.json"), newcomer).expect("valid");
    let report = first
        .store
        .apply_seed(SiteKey::DEFAULT, &newcomer.data)
        .await
        .expect("seed applies");
    assert_eq!((report.users, report.tokens), (1, 1));
    second
        .put(property_uri(3, "hello", "gina-1"))
        .header("authorization", &basic("gina@example.com", "gina-token"))
        .json("true")
        .send()
        .await
        .assert_status(201);
}

/// Instances started at once against one empty database: the migration lock lets one migrate
/// while the others wait, and all of them come up.
async fn instances_starting_together_migrate_once(backend: Backend) {
    let database = backend.database().await;
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let url = database.url.clone();
            tokio::spawn(async move {
                // As the binary starts: connection attempts are retried.
                let store = Store::connect_with_retry(&url, &test_database_options()).await?;
                store.migrate().await?;
                anyhow::Ok(store)
            })
        })
        .collect();
    for start in starts {
        start
            .await
            .expect("task completes")
            .expect("every instance starts");
    }
    let app = TestApp::on(&database.url, None).await;
    app.get(keys_uri(3, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);
}

/// Instances started at once with one seed that makes a site and registers an app: whichever
/// makes them, the others find them and apply the rest, and all of them come up.
async fn instances_starting_together_apply_one_seed_with_sites_and_apps(backend: Backend) {
    let database = backend.database().await;
    let first = Store::connect_with_retry(&database.url, &test_database_options())
        .await
        .expect("connects");
    first.migrate().await.expect("migrates");
    let text = r#"{"sites": [{"name": "acme", "users": [{"accountId": "acme-ann",
        "email": "ann@acme.test", "apiTokens": ["ann-token"]}],
        "properties": [{"accountId": "acme-ann", "key": "k", "value": 1}]}],
        "apps": [{"name": "Sync", "clientId": "sync", "clientSecret": "s",
        "callbackUrl": "http://127.0.0.1/cb", "scopes": ["read:jira-user"]}]}"#;
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = database.url.clone();
            tokio::spawn(async move {
                let store = Store::connect_with_retry(&url, &test_database_options()).await?;
                let clock = jira_userprops::clock::system();
                let admin = AdminService::new(store.clone());
                let sites = SiteService::new(store.clone(), 10, clock.clone());
                let apps = AppService::new(store, clock);
                let parsed = seed::parse(Path::new("seed.json"), text)?;
                seed::apply(&admin, &sites, &apps, Path::new("seed.json"), parsed).await
            })
        })
        .collect();
    for start in starts {
        start
            .await
            .expect("task completes")
            .expect("every instance applies the seed");
    }
    let acme = first
        .site_named("acme")
        .await
        .expect("read")
        .expect("the site is made");
    assert_eq!(first.user_count(acme.key).await.expect("counted"), 1);
    let apps = AppService::new(first, jira_userprops::clock::system());
    assert!(apps.app("sync").await.expect("read").is_some());
}

/// A site made through one instance is reachable through the other at once, with what its
/// seed holds; deleted through the other, its data is gone for both.
async fn a_site_made_through_one_instance_is_reached_through_the_other(backend: Backend) {
    let (_database, first, second) = two_instances(backend).await;
    let seed = r#"{"users": [{"accountId": "gina-1", "email": "gina@example.com", "apiTokens": ["gina-token"]}]}"#;
    let created = first
        .admin(axum::http::Method::POST, "/_admin/sites")
        .json(format!(r#"{{"name":"shared","seed":{seed}}}"#))
        .send()
        .await;
    created.assert_status(201);
    let id = created.json()["id"].as_str().expect("an id").to_owned();
    let gina = basic("gina@example.com", "gina-token");
    let uri = property_uri(3, "hello", "gina-1");
    second
        .put(&uri)
        .host("shared.localhost")
        .header("authorization", &gina)
        .json("true")
        .send()
        .await
        .assert_status(201);
    let through_gateway = first
        .get(format!("/ex/jira/{id}{uri}"))
        .header("authorization", &gina)
        .send()
        .await;
    assert_eq!(through_gateway.text(), r#"{"key":"hello","value":true}"#);
    first
        .get(&uri)
        .host("shared.localhost")
        .header("authorization", &gina)
        .send()
        .await
        .assert_status(200);
    second
        .admin(axum::http::Method::DELETE, "/_admin/sites/shared")
        .send()
        .await
        .assert_status(204);
    // The admin API acts on the site as the database has it, at once.
    for path in ["/_admin/sites/shared", "/_admin/sites/shared/users"] {
        first
            .admin(axum::http::Method::GET, path)
            .send()
            .await
            .assert_status(404);
    }
    // The first instance may still know the site for a moment; its users are gone at once.
    let after = first
        .get(&uri)
        .host("shared.localhost")
        .header("authorization", &gina)
        .send()
        .await;
    assert!(
        matches!(after.status.as_u16(), 401 | 404),
        "{}",
        after.status
    );
    let again = r#"{"users": [{"accountId": "hank-1", "email": "hank@example.com"}]}"#;
    second
        .admin(axum::http::Method::POST, "/_admin/sites")
        .json(format!(r#"{{"name":"shared","seed":{again}}}"#))
        .send()
        .await
        .assert_status(201);
    let users = first
        .admin(axum::http::Method::GET, "/_admin/users")
        .host("shared.localhost")
        .send()
        .await;
    users.assert_status(200);
    assert_eq!(users.json()[0]["accountId"], "hank-1", "{}", users.text());
}

/// Revocation through the admin API of one instance holds at the next request on the other.
async fn a_grant_revoked_through_one_instance_is_refused_by_the_other_at_once(backend: Backend) {
    let (_database, first, second) = two_instances(backend).await;
    let app = serde_json::json!({"name": "Sync", "kind": "oauth2", "clientId": "sync",
        "clientSecret": "sync-secret", "callbackUrl": "http://127.0.0.1:3000/callback",
        "scopes": ["read:jira-user"], "autoConsent": true});
    first
        .admin(Method::POST, "/_admin/apps")
        .json(app.to_string())
        .send()
        .await
        .assert_status(201);
    let authorize = "/authorize?client_id=sync&scope=read%3Ajira-user&response_type=code\
        &redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcallback&login_hint=alice%40example.com";
    let redirected = first.get(authorize).send().await;
    redirected.assert_status(302);
    let location = url::Url::parse(redirected.header("location").unwrap_or_default()).expect("URL");
    let code = location
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .expect("a code");
    let exchange = serde_json::json!({"grant_type": "authorization_code", "client_id": "sync",
        "client_secret": "sync-secret", "code": code,
        "redirect_uri": "http://127.0.0.1:3000/callback"});
    let tokens = second
        .request(Method::POST, "/oauth/token")
        .json(exchange.to_string())
        .send()
        .await;
    tokens.assert_status(200);
    let bearer = format!(
        "Bearer {}",
        tokens.json()["access_token"].as_str().unwrap_or("?")
    );
    let tenant = second.get("/_edge/tenant_info").send().await.json();
    let myself = format!(
        "/ex/jira/{}/rest/api/3/myself",
        tenant["cloudId"].as_str().unwrap_or("?")
    );
    let sites = |app: &TestApp| {
        app.get("/oauth/token/accessible-resources")
            .header("authorization", &bearer)
            .send()
    };
    let jira = |app: &TestApp| app.get(&myself).header("authorization", &bearer).send();
    sites(&second).await.assert_status(200);
    jira(&second).await.assert_status(200);
    let grants = first
        .admin(Method::GET, "/_admin/apps/sync/grants")
        .send()
        .await
        .json();
    let grant = grants[0]["id"].as_str().expect("a grant");
    first
        .admin(Method::DELETE, format!("/_admin/apps/sync/grants/{grant}"))
        .send()
        .await
        .assert_status(204);
    sites(&second).await.assert_status(401);
    jira(&second).await.assert_status(401);
    sites(&first).await.assert_status(401);
}

/// Credentials changed through one instance's admin API hold for every request the other starts
/// after the change was answered: a revoked token, a withdrawn *Administer Jira*, a deactivated
/// user. Each instance has served the same callers just before, so whatever it may remember of
/// them is warm.
async fn credentials_changed_through_one_instance_hold_at_once_on_the_other(backend: Backend) {
    let (_database, first, second) = two_instances(backend).await;
    let own = property_uri(3, "k", BOB);
    for app in [&first, &second] {
        app.get(&own).by(Who::Bob).send().await.assert_status(404);
        app.get(&own).by(Who::Admin).send().await.assert_status(404);
        let alice = property_uri(3, "k", ALICE);
        app.get(alice)
            .by(Who::Alice)
            .send()
            .await
            .assert_status(404);
    }

    let tokens = first
        .admin(Method::GET, format!("/_admin/users/{BOB}/tokens"))
        .send()
        .await
        .json();
    let token = tokens[0]["id"].as_str().expect("Bob's token").to_owned();
    first
        .admin(
            Method::DELETE,
            format!("/_admin/users/{BOB}/tokens/{token}"),
        )
        .send()
        .await
        .assert_status(204);
    second
        .get(&own)
        .by(Who::Bob)
        .send()
        .await
        .assert_status(401);
    let written = second.put(&own).by(Who::Bob).json("1").send().await;
    written.assert_status(401);

    change_user(&first, ADMIN, r#"{"admin": false}"#).await;
    second
        .get(&own)
        .by(Who::Admin)
        .send()
        .await
        .assert_status(403);
    let deleted = second.delete(&own).by(Who::Admin).send().await;
    deleted.assert_status(403);

    change_user(&first, ALICE, r#"{"active": false}"#).await;
    let alice = property_uri(3, "k", ALICE);
    second
        .get(&alice)
        .by(Who::Alice)
        .send()
        .await
        .assert_status(401);
    assert_eq!(second.stored(BOB, "k").await, None, "nothing was written");
}

/// The other direction: what instance B has cached must not refuse what A just allowed.
async fn credentials_granted_through_one_instance_hold_at_once_on_the_other(backend: Backend) {
    let (_database, first, second) = two_instances(backend).await;
    let bob = property_uri(3, "k", BOB);
    // The second instance learns Bob's and Alice's credentials as they are now.
    for (who, status) in [(Who::Bob, 404), (Who::Alice, 403)] {
        second.get(&bob).by(who).send().await.assert_status(status);
    }

    let created = first
        .admin(Method::POST, format!("/_admin/users/{BOB}/tokens"))
        .send()
        .await;
    created.assert_status(201);
    let token = created.json()["token"]
        .as_str()
        .expect("the new token")
        .to_owned();
    let written = second
        .put(&bob)
        .header("authorization", &basic("bob@example.com", &token))
        .json("1")
        .send()
        .await;
    written.assert_status(201);

    change_user(&first, ALICE, r#"{"admin": true}"#).await;
    let read = second.get(&bob).by(Who::Alice).send().await;
    read.assert_status(200);
    assert_eq!(read.json()["value"], 1);

    change_user(&first, ALICE, r#"{"admin": false, "active": false}"#).await;
    let info = second
        .get("/rest/api/3/serverInfo")
        .by(Who::Alice)
        .send()
        .await;
    info.assert_status(401);
    let myself = "/rest/api/3/myself";
    second
        .get(myself)
        .by(Who::Alice)
        .send()
        .await
        .assert_status(401);
    second
        .get(&bob)
        .by(Who::Alice)
        .send()
        .await
        .assert_status(401);
    change_user(&first, ALICE, r#"{"active": true}"#).await;
    second
        .get(&bob)
        .by(Who::Alice)
        .send()
        .await
        .assert_status(403);
    let shown = second.get(myself).by(Who::Alice).send().await;
    shown.assert_status(200);
    assert_eq!(shown.json()["active"], true);

    // A PUT's first checks, not only its write, run again on renewed credentials: after a grant,
    // and after any change of credentials, made through the other instance.
    change_user(&first, ALICE, r#"{"admin": true}"#).await;
    let put = |value: &'static str| second.put(&bob).by(Who::Alice).json(value).send();
    put("2").await.assert_status(200);
    first
        .admin(Method::POST, format!("/_admin/users/{BOB}/tokens"))
        .send()
        .await
        .assert_status(201);
    put("3").await.assert_status(200);
    let read = second.get(&bob).by(Who::Alice).send().await;
    assert_eq!(read.json()["value"], 3);
}

on_each_backend!(
    credentials_granted_through_one_instance_hold_at_once_on_the_other,
    credentials_changed_through_one_instance_hold_at_once_on_the_other,
    a_site_made_through_one_instance_is_reached_through_the_other,
    a_grant_revoked_through_one_instance_is_refused_by_the_other_at_once,
    concurrent_first_puts_across_instances_give_exactly_one_201,
    a_write_through_one_instance_is_read_through_the_other_at_once,
    a_user_seeded_by_one_instance_can_call_the_other,
    instances_starting_together_migrate_once,
    instances_starting_together_apply_one_seed_with_sites_and_apps,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_with_memory_another_instance_s_changes_are_seen_within_the_bound() {
    with_memory_on_sqlite_another_instance_s_changes_are_seen_within_the_bound().await;
}

/// Changes a user through the admin API of `app`.
async fn change_user(app: &TestApp, account_id: &str, change: &'static str) {
    app.admin(Method::PATCH, format!("/_admin/users/{account_id}"))
        .json(change)
        .send()
        .await
        .assert_status(200);
}
