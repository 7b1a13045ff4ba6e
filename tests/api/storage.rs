//! What storage promises: atomic create-or-update, durability across restarts, idempotent seeds.

use std::path::Path;

use jira_userprops::seed;
use jira_userprops::store::Store;

use crate::helpers::*;

fn database_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("props.db").display())
}

async fn concurrent_first_puts_create_once(app: TestApp) {
    let uri = property_uri(3, "contended", ALICE);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let app = app.clone();
            let uri = uri.clone();
            tokio::spawn(async move {
                app.put(uri)
                    .by(Who::Alice)
                    .json(format!("{{\"writer\":{i}}}"))
                    .send()
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task completes").as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        31,
        "{statuses:?}"
    );
    let stored = app.stored(ALICE, "contended").await.expect("stored");
    let writer: serde_json::Value = serde_json::from_str(&stored).expect("an untorn value");
    assert!(
        writer["writer"].as_u64().is_some_and(|i| i < 32),
        "{stored}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_puts_of_one_key_give_exactly_one_201_on_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    concurrent_first_puts_create_once(TestApp::on(&database_url(&dir), None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_puts_of_one_key_give_exactly_one_201_in_memory() {
    concurrent_first_puts_create_once(TestApp::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_and_deletes_never_fail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = TestApp::on(&database_url(&dir), None).await;
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

#[tokio::test]
async fn data_survives_a_restart_on_the_same_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = database_url(&dir);
    let app = TestApp::on(&url, None).await;
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

    let store = Store::connect(&url).await.expect("reopens");
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

#[tokio::test]
async fn a_seed_applied_again_changes_nothing_and_adds_what_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = database_url(&dir);
    let fixture = seed::parse(Path::new("fixture.json"), FIXTURE).expect("valid");
    let app = TestApp::on(&url, None).await;
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

    let report = app.store.apply_seed(&fixture).await.expect("seed applies");
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
    let report = app.store.apply_seed(&grown).await.expect("seed applies");
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
