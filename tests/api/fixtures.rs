//! Fixtures for suites that reset between tests: back to exactly what the seed made, per site;
//! the seed inline in an environment variable, or as a folder of files.

use std::path::Path;

use axum::http::Method;
use jira_userprops::seed;

use crate::binary::{BOB_ID, EXAMPLE_SEED, Server, bob_request};
use crate::helpers::*;
use crate::socket::exchange;

/// An app that knows the fixture as its start seed.
async fn seeded_app(backend: Backend) -> TestApp {
    let app = backend.app().await;
    let fixture = seed::parse(Path::new("fixture.json"), FIXTURE).expect("fixture is valid");
    let settings = jira_userprops::http::Settings {
        seeds: fixture.states(),
        ..TestApp::settings(None)
    };
    TestApp::with_settings(app.store.clone(), settings)
}

/// The snapshot of the default site (`""`) or of the site whose admin API starts so.
async fn snapshot(app: &TestApp, site: &str) -> Vec<u8> {
    let base = if site.is_empty() { "/_admin" } else { site };
    let response = app
        .admin(Method::GET, format!("{base}/snapshot"))
        .send()
        .await;
    response.assert_status(200);
    response.body.to_vec()
}

/// The ids of a user's tokens on the default site, as the admin API lists them.
async fn token_ids(app: &TestApp, account_id: &str) -> Vec<String> {
    let tokens = app
        .admin(Method::GET, format!("/_admin/users/{account_id}/tokens"))
        .send()
        .await;
    tokens.assert_status(200);
    let mut ids: Vec<String> = tokens
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|token| token["id"].as_str().expect("an id").to_owned())
        .collect();
    ids.sort();
    ids
}

async fn reset_to_the_seed_undoes_everything_a_test_did(backend: Backend) {
    let app = seeded_app(backend).await;
    let at_start = snapshot(&app, "").await;
    let bobs_tokens = token_ids(&app, BOB).await;
    assert!(!bobs_tokens.is_empty());
    app.put(property_uri(3, "new", ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await
        .assert_status(201);
    app.delete(property_uri(3, "existing", BOB))
        .by(Who::Bob)
        .send()
        .await
        .assert_status(204);
    app.admin(Method::POST, "/_admin/users")
        .json(r#"{"accountId": "extra-1", "email": "extra@example.com"}"#)
        .send()
        .await
        .assert_status(201);
    app.admin(Method::PATCH, format!("/_admin/users/{ALICE}"))
        .json(r#"{"active": false, "admin": true}"#)
        .send()
        .await
        .assert_status(200);
    app.admin(Method::POST, format!("/_admin/users/{BOB}/tokens"))
        .send()
        .await
        .assert_status(201);
    assert_ne!(snapshot(&app, "").await, at_start);

    assert_ne!(token_ids(&app, BOB).await, bobs_tokens);

    app.admin(Method::POST, "/_admin/reset?to=seed")
        .send()
        .await
        .assert_status(204);
    assert_eq!(snapshot(&app, "").await, at_start);
    assert_eq!(
        token_ids(&app, BOB).await,
        bobs_tokens,
        "a token keeps its id through a reset"
    );
    let existing = app
        .get(property_uri(3, "existing", BOB))
        .by(Who::Bob)
        .send()
        .await;
    assert_eq!(
        existing.json()["value"],
        serde_json::json!({"owner": "bob"})
    );
    app.get(property_uri(3, "new", ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(404);
}

async fn each_site_returns_to_its_own_seed(backend: Backend) {
    let app = seeded_app(backend).await;
    let seed = r#"{"name": "acme", "seed": {"users": [{"accountId": "a-1", "email": "a@acme.test",
        "apiTokens": ["a-token"]}], "properties": [{"accountId": "a-1", "key": "k", "value": [1]}]}}"#;
    app.admin(Method::POST, "/_admin/sites")
        .json(seed)
        .send()
        .await
        .assert_status(201);
    app.admin(Method::POST, "/_admin/sites")
        .json(r#"{"name": "bare"}"#)
        .send()
        .await
        .assert_status(201);
    let acme = "/_admin/sites/acme";
    let at_start = snapshot(&app, acme).await;
    app.admin(Method::POST, format!("{acme}/reset?scope=all"))
        .send()
        .await
        .assert_status(204);
    app.admin(Method::POST, "/_admin/sites/bare/users")
        .json(r#"{"accountId": "b-1", "email": "b@bare.test"}"#)
        .send()
        .await
        .assert_status(201);
    app.put(property_uri(3, "new", ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await;
    let default_before = snapshot(&app, "").await;

    app.admin(Method::POST, format!("{acme}/reset?to=seed"))
        .send()
        .await
        .assert_status(204);
    assert_eq!(snapshot(&app, acme).await, at_start);
    assert_eq!(
        snapshot(&app, "").await,
        default_before,
        "other sites untouched"
    );
    // Another instance over the same database (or this one restarted) returns to it as well.
    app.admin(Method::POST, format!("{acme}/reset?scope=all"))
        .send()
        .await
        .assert_status(204);
    let other = TestApp::with_settings(app.store.clone(), TestApp::settings(None));
    other
        .admin(Method::POST, format!("{acme}/reset?to=seed"))
        .send()
        .await
        .assert_status(204);
    assert_eq!(snapshot(&other, acme).await, at_start);
    app.admin(Method::POST, "/_admin/sites/bare/reset?to=seed")
        .send()
        .await
        .assert_status(204);
    let bare = app
        .admin(Method::GET, "/_admin/sites/bare/users")
        .send()
        .await;
    assert_eq!(
        bare.json(),
        serde_json::json!([]),
        "a site made without a seed is empty"
    );
}

async fn reset_parameters_that_make_no_sense_are_refused(backend: Backend) {
    let app = seeded_app(backend).await;
    let before = snapshot(&app, "").await;
    for query in [
        "to=start",
        "to=seed&scope=all",
        "scope=everything",
        "colour=red",
    ] {
        app.admin(Method::POST, format!("/_admin/reset?{query}"))
            .send()
            .await
            .assert_status(400);
    }
    assert_eq!(snapshot(&app, "").await, before);
}

on_each_backend!(
    reset_to_the_seed_undoes_everything_a_test_did,
    each_site_returns_to_its_own_seed,
    reset_parameters_that_make_no_sense_are_refused,
);

#[test]
fn the_seed_can_come_inline_from_the_environment() {
    let seed = std::fs::read_to_string(EXAMPLE_SEED).expect("the example seed");
    let mut server = Server::start_with(
        &["--database-url", "sqlite::memory:"],
        &[("JIRA_USERPROPS_SEED_JSON", &seed)],
    );
    let response = exchange(server.address(), &bob_request("GET", "my.key", None));
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");

    let broken = Server::start_with(
        &["--database-url", "sqlite::memory:"],
        &[("JIRA_USERPROPS_SEED_JSON", r#"{"users": [{"email": "x"}]}"#)],
    );
    let (status, output) = broken.wait();
    assert!(!status.success());
    assert!(output.contains("JIRA_USERPROPS_SEED_JSON"), "{output}");
}

#[test]
fn a_seed_folder_is_read_in_name_order_as_one_seed() {
    let folder = tempfile::tempdir().expect("a folder");
    let write = |name: &str, text: &str| {
        std::fs::write(folder.path().join(name), text).expect("written");
    };
    write(
        "10-users.json",
        &std::fs::read_to_string(EXAMPLE_SEED).expect("the example"),
    );
    write(
        "20-more.json",
        r#"{"properties": [{"accountId": "5b10ac8d82e05b22cc7d4ef5", "key": "from.second", "value": 2}]}"#,
    );
    write("notes.txt", "not a seed");
    let path = folder.path().to_str().expect("a UTF-8 path");
    let mut server = Server::start(&["--database-url", "sqlite::memory:", "--seed", path]);
    let address = server.address();
    for key in ["my.key", "from.second"] {
        let response = exchange(address, &bob_request("GET", key, None));
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{key}: {response}");
    }
    drop(server);

    write(
        "30-twice.json",
        &format!(r#"{{"users": [{{"accountId": "{BOB_ID}", "email": "other@example.com"}}]}}"#),
    );
    let (status, output) =
        Server::start(&["--database-url", "sqlite::memory:", "--seed", path]).wait();
    assert!(!status.success());
    assert!(output.contains("accountId appears twice"), "{output}");
    // The users of 10-users.json come first, so the third user is the one given twice.
    assert!(output.contains("users[2]"), "read in name order: {output}");
}

#[tokio::test]
async fn the_seed_schema_is_served_and_holds_the_examples_and_exports() {
    let app = Backend::Sqlite.app().await;
    let served = app.get("/_admin/schema/seed.json").send().await;
    served.assert_status(200);
    let in_docs = include_str!("../../docs/seed.schema.json");
    assert_eq!(served.text(), in_docs);
    let example = std::fs::read(EXAMPLE_SEED).expect("the example seed");
    assert_valid_seed(&example);
    assert_valid_seed(FIXTURE.as_bytes());
    let with_everything = r#"{"$schema": "http://127.0.0.1:8080/_admin/schema/seed.json",
        "users": [{"accountId": "u", "email": "u@example.com",
                   "apiTokens": ["t", {"token": "s", "scopes": ["read:jira-user"], "expiresAt": "2030-01-01T00:00:00Z"}]}],
        "sites": [{"name": "acme", "id": "00000000-0000-4000-8000-000000000001", "users": []}],
        "apps": [{"name": "A", "clientId": "c", "clientSecret": "s", "kind": "serviceAccount", "sites": ["acme"]}]}"#;
    assert_valid_seed(with_everything.as_bytes());
    seed::parse(Path::new("seed.json"), with_everything).expect("the server takes it too");
    // A snapshot export is checked by the helper on every GET of a snapshot.
    app.admin(Method::POST, format!("/_admin/users/{ALICE}/tokens"))
        .json(r#"{"scopes": ["read:jira-user"], "expiresAt": "2030-01-01T00:00:00Z"}"#)
        .send()
        .await
        .assert_status(201);
    snapshot(&app, "").await;
}

#[test]
#[should_panic(expected = "not a valid seed")]
fn the_schema_refuses_what_the_server_refuses() {
    assert_valid_seed(br#"{"users": [{"accountId": "u", "emial": "u@example.com"}]}"#);
}
