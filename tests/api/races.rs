//! Hundreds of concurrent creations, updates and deletions of the same keys, through one
//! instance and through two: the answers and the final state fit one serial order.

use jira_userprops::store::{DatabaseOptions, Store};

use crate::helpers::*;

const KEYS: usize = 3;
const OPERATIONS_PER_KEY: usize = 150;

/// Runs PUTs and DELETEs on `KEYS` keys at once, spread over `apps`, and holds every key to what
/// a serial order allows: creations and deletions alternate (so 201s minus 204s is 0 or 1, and
/// 1 exactly when the key is there at the end), no 5xx, and a final value that some
/// acknowledged PUT wrote.
async fn races_fit_one_serial_order(apps: &[TestApp]) {
    let tasks: Vec<_> = (0..KEYS * OPERATIONS_PER_KEY)
        .map(|i| {
            let app = apps[i % apps.len()].clone();
            let key = format!("raced-{}", i % KEYS);
            tokio::spawn(async move {
                let uri = property_uri(3, &key, BOB);
                // Two PUTs to each DELETE, so keys are created again and again.
                if i % 3 == 2 {
                    let status = app.delete(uri).by(Who::Bob).send().await.status.as_u16();
                    (key, status, None)
                } else {
                    let body = format!("{{\"op\":{i}}}");
                    let status = app.put(uri).by(Who::Bob).json(body.clone()).send().await;
                    (key, status.status.as_u16(), Some(body))
                }
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task completes"));
    }
    for k in 0..KEYS {
        let key = format!("raced-{k}");
        let mine: Vec<_> = outcomes.iter().filter(|(of, ..)| *of == key).collect();
        let count = |status: u16| mine.iter().filter(|(_, s, _)| *s == status).count();
        let (created, deleted) = (count(201), count(204));
        let statuses: Vec<u16> = mine.iter().map(|(_, status, _)| *status).collect();
        assert!(
            statuses.iter().all(|s| matches!(s, 200 | 201 | 204 | 404)),
            "{key}: {statuses:?}"
        );
        assert!(
            created == deleted || created == deleted + 1,
            "{key}: {created} creations and {deleted} deletions cannot alternate"
        );
        let read = apps[0]
            .get(property_uri(3, &key, BOB))
            .by(Who::Bob)
            .send()
            .await;
        if created == deleted {
            read.assert_status(404);
        } else {
            read.assert_status(200);
            let value = read.json()["value"].to_string();
            let written: Vec<String> = mine
                .iter()
                .filter(|(_, status, _)| matches!(status, 200 | 201))
                .filter_map(|(_, _, body)| body.clone())
                .collect();
            assert!(
                written.contains(&value),
                "{key}: {value} is no acknowledged write"
            );
        }
    }
}

async fn through_one_instance_races_fit_one_serial_order(backend: Backend) {
    let app = backend.app().await;
    races_fit_one_serial_order(&[app]).await;
}

async fn through_two_instances_races_fit_one_serial_order(backend: Backend) {
    let database = backend.database().await;
    // Two SQLite processes agree at once only without memory; PostgreSQL never caches.
    let options = DatabaseOptions {
        cache_bytes: 0,
        ..test_database_options()
    };
    let first = TestApp::on_with(&database.url, None, &options).await;
    let store = Store::connect(&database.url, &options)
        .await
        .expect("second instance connects");
    races_fit_one_serial_order(&[first, TestApp::over(store, None)]).await;
}

on_each_backend!(
    through_one_instance_races_fit_one_serial_order,
    through_two_instances_races_fit_one_serial_order,
);
