//! What storage promises: atomic create-or-update, durability across restarts, idempotent seeds.

use std::path::Path;

use jira_userprops::domain::SiteKey;
use jira_userprops::seed;
use jira_userprops::store::{SeedConflict, Store};

use crate::helpers::*;

/// 32 first PUTs of one key at once: exactly one is told it created the property.
async fn concurrent_first_puts_of_one_key_give_exactly_one_201(backend: Backend) {
    let database = backend.database().await;
    let app = TestApp::on(&database.url, None).await;
    race_first_puts(
        std::slice::from_ref(&app),
        Who::Alice,
        ALICE,
        "contended",
        32,
    )
    .await;
    let stored = app.stored(ALICE, "contended").await.expect("stored");
    let writer: serde_json::Value = serde_json::from_str(&stored).expect("an untorn value");
    assert!(
        writer["writer"].as_u64().is_some_and(|i| i < 32),
        "{stored}"
    );
}

async fn concurrent_creates_and_deletes_never_fail(backend: Backend) {
    let database = backend.database().await;
    let app = TestApp::on(&database.url, None).await;
    let uri = property_uri(3, "churn", BOB);
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let app = app.clone();
            let uri = uri.clone();
            tokio::spawn(async move {
                let request = if i % 3 == 0 {
                    app.delete(uri)
                } else {
                    app.put(uri).json(i.to_string())
                };
                request.by(Who::Bob).send().await.status.as_u16()
            })
        })
        .collect();
    for task in tasks {
        let status = task.await.expect("task completes");
        assert!([200, 201, 204, 404].contains(&status), "{status}");
    }
}

async fn data_survives_a_restart_on_the_same_database(backend: Backend) {
    let database = backend.database().await;
    let app = TestApp::on(&database.url, None).await;
    app.put(property_uri(3, "kept", ALICE))
        .by(Who::Alice)
        .json("[1.0]")
        .send()
        .await
        .assert_status(201);
    app.delete(property_uri(3, "existing", ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(204);
    app.store.close().await;
    drop(app);

    let store = Store::connect(&database.url, &test_database_options())
        .await
        .expect("reopens");
    store.migrate().await.expect("migrations are idempotent");
    let app = TestApp::over(store, None);
    let read = app
        .get(property_uri(3, "kept", ALICE))
        .by(Who::Alice)
        .send()
        .await;
    assert_eq!(read.text(), r#"{"key":"kept","value":[1.0]}"#);
    app.get(property_uri(3, "existing", ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(404);
}

async fn a_seed_applied_again_changes_nothing_and_adds_what_is_missing(backend: Backend) {
    let fixture = seed::parse(Path::new("fixture.json"), FIXTURE).expect("valid");
    let app = backend.app().await;
    app.put(property_uri(3, "existing", ALICE))
        .by(Who::Alice)
        .json("\"changed\"")
        .send()
        .await
        .assert_status(200);
    app.delete(property_uri(3, "existing", BOB))
        .by(Who::Bob)
        .send()
        .await
        .assert_status(204);

    let report = app
        .store
        .apply_seed(SiteKey::DEFAULT, &fixture.data)
        .await
        .expect("seed applies");
    assert_eq!((report.users, report.tokens, report.properties), (0, 0, 0));
    assert_eq!(
        app.stored(ALICE, "existing").await.as_deref(),
        Some("\"changed\"")
    );
    assert_eq!(app.stored(BOB, "existing").await, None);

    let grown = FIXTURE.replace(
        r#""apiTokens": ["bob-token"]},"#,
        r#""apiTokens": ["bob-token", "bob-new-token"]},
        {"accountId": "dave-1", "email": "dave@example.com", "apiTokens": ["dave-token"]},"#,
    );
    let grown = seed::parse(Path::new("grown.json"), &grown).expect("valid");
    let report = app
        .store
        .apply_seed(SiteKey::DEFAULT, &grown.data)
        .await
        .expect("seed applies");
    assert_eq!((report.users, report.tokens, report.properties), (1, 2, 0));
    app.get(keys_uri(3, "dave-1"))
        .header("authorization", &basic("dave@example.com", "dave-token"))
        .send()
        .await
        .assert_status(200);
    app.get(keys_uri(3, BOB))
        .header("authorization", "Bearer bob-new-token")
        .send()
        .await
        .assert_status(200);
    assert_eq!(
        app.stored(BOB, "existing").await,
        None,
        "a deleted seed property stays deleted"
    );
}

async fn a_seed_whose_email_is_taken_changes_nothing(backend: Backend) {
    let app = backend.app().await;
    let clash = r#"{"users": [
        {"accountId": "erin-1", "email": "erin@example.com", "apiTokens": ["erin-token"]},
        {"accountId": "someone-else", "email": "ALICE@example.com", "apiTokens": ["else-token"]}]}"#;
    let clash = seed::parse(Path::new("clash.json"), clash).expect("valid on its own");
    let report = app
        .store
        .apply_seed(SiteKey::DEFAULT, &clash.data)
        .await
        .expect("store answers");
    assert_eq!(report.conflict, Some(SeedConflict::Email(1)));
    assert!(
        !app.store
            .user_exists(SiteKey::DEFAULT, "erin-1", None)
            .await
            .expect("store answers"),
        "rolled back"
    );
}

async fn a_seed_whose_token_belongs_to_another_account_changes_nothing(backend: Backend) {
    let app = backend.app().await;
    let clash = r#"{"users": [
        {"accountId": "frank-1", "email": "frank@example.com", "apiTokens": ["frank-token", "bob-token"]}]}"#;
    let clash = seed::parse(Path::new("clash.json"), clash).expect("valid on its own");
    let report = app
        .store
        .apply_seed(SiteKey::DEFAULT, &clash.data)
        .await
        .expect("store answers");
    assert_eq!(report.conflict, Some(SeedConflict::Token(0)));
    assert!(
        !app.store
            .user_exists(SiteKey::DEFAULT, "frank-1", None)
            .await
            .expect("store answers"),
        "rolled back"
    );
    app.get(keys_uri(3, BOB))
        .header("authorization", "Bearer bob-token")
        .send()
        .await
        .assert_status(200);
}

/// Creating an account that was made meanwhile adds nothing, not even its tokens to the
/// account that won.
async fn a_seed_of_new_users_whose_account_is_taken_changes_nothing(backend: Backend) {
    let app = backend.app().await;
    let late = r#"{"users": [
        {"accountId": "grace-1", "email": "grace@example.com", "apiTokens": ["grace-token"]},
        {"accountId": "bob-5b10a2844c20165700ede21g", "email": "other-bob@example.com", "apiTokens": ["stolen-token"]}]}"#;
    let mut late = seed::parse(Path::new("late.json"), late).expect("valid on its own");
    late.data.users_must_be_new = true;
    let report = app
        .store
        .apply_seed(SiteKey::DEFAULT, &late.data)
        .await
        .expect("store answers");
    assert_eq!(report.conflict, Some(SeedConflict::Taken(1)));
    assert!(
        !app.store
            .user_exists(SiteKey::DEFAULT, "grace-1", None)
            .await
            .expect("store answers"),
        "rolled back"
    );
    app.get(keys_uri(3, BOB))
        .header("authorization", "Bearer stolen-token")
        .send()
        .await
        .assert_status(401);
}

/// Keys that differ only by case or normalisation are different keys, sorted the same way on
/// every backend.
async fn keys_compare_exactly_and_sort_by_code_point(backend: Backend) {
    let app = backend.app().await;
    let keys = ["a", "A", "ü", "u\u{308}", "B", "b", "ß", "ss", "İ", "i"];
    for key in keys {
        let encoded: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
        app.put(property_uri(3, &encoded, ALICE))
            .by(Who::Alice)
            .json(format!("\"{key}\""))
            .send()
            .await
            .assert_status(201);
    }
    let mut expected: Vec<&str> = keys.to_vec();
    expected.push("existing");
    expected.sort();
    assert_eq!(app.stored_keys(ALICE).await, expected);
    for key in keys {
        assert_eq!(app.stored(ALICE, key).await, Some(format!("\"{key}\"")));
    }
}

on_each_backend!(
    concurrent_first_puts_of_one_key_give_exactly_one_201,
    concurrent_creates_and_deletes_never_fail,
    data_survives_a_restart_on_the_same_database,
    a_seed_applied_again_changes_nothing_and_adds_what_is_missing,
    a_seed_whose_email_is_taken_changes_nothing,
    a_seed_whose_token_belongs_to_another_account_changes_nothing,
    a_seed_of_new_users_whose_account_is_taken_changes_nothing,
    keys_compare_exactly_and_sort_by_code_point,
);

/// sqlx runs a statement it sent to its end even when the request that sent it is dropped: a
/// deactivation given up on while it waits for another process's lock still commits, and the
/// process that made it must then stop trusting what its cache holds of the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_given_up_on_that_commits_later_is_not_hidden_by_the_cache() {
    use sqlx::{Connection as _, Executor as _};
    let database = Backend::Sqlite.database().await;
    let app = std::sync::Arc::new(TestApp::on(&database.url, None).await);
    let keys = keys_uri(3, BOB);
    app.get(&keys).by(Who::Bob).send().await.assert_status(200);

    let mut other = sqlx::SqliteConnection::connect(&database.url)
        .await
        .expect("another connection to the file");
    other.execute("BEGIN EXCLUSIVE").await.expect("locked");
    let deactivation = {
        let app = app.clone();
        tokio::spawn(async move {
            app.admin(axum::http::Method::PATCH, format!("/_admin/users/{BOB}"))
                .json(r#"{"active": false}"#)
                .send()
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    deactivation.abort();
    let _ = deactivation.await;
    other.execute("COMMIT").await.expect("unlocked");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let active: bool = sqlx::query_scalar("SELECT active FROM users WHERE account_id = ?")
            .bind(BOB)
            .fetch_one(&mut other)
            .await
            .expect("read");
        if !active {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the deactivation never committed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Requests for a while, so that the cache polls and trusts itself again: what it still
    // holds of Bob is then what answers, unless the change emptied it.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(200);
    while std::time::Instant::now() < until {
        app.get(keys_uri(3, ALICE))
            .by(Who::Alice)
            .send()
            .await
            .assert_status(200);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    app.get(&keys).by(Who::Bob).send().await.assert_status(401);
}
