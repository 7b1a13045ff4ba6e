//! Verifying what a client sent, as WireMock users do: count and find journal entries with a
//! request matcher, per site, and clear the journal between tests.

use axum::http::Method;
use jira_userprops::http::Settings;
use serde_json::json;

use crate::helpers::*;

/// An app whose journal keeps PUT bodies.
async fn app_keeping_bodies(backend: Backend) -> TestApp {
    let app = backend.app().await;
    let settings = Settings {
        journal_bodies: true,
        ..TestApp::settings(None)
    };
    TestApp::with_settings(app.store.clone(), settings)
}

async fn count(app: &TestApp, path: &str, matcher: serde_json::Value) -> u64 {
    let response = app
        .admin(Method::POST, path)
        .json(matcher.to_string())
        .send()
        .await;
    response.assert_status(200);
    response.json()["count"].as_u64().expect("a count")
}

async fn a_matcher_counts_and_finds_exactly_the_requests_it_describes(backend: Backend) {
    let app = app_keeping_bodies(backend).await;
    let put = |key: &'static str, body: &'static str| {
        app.put(property_uri(3, key, ALICE))
            .by(Who::Alice)
            .json(body)
            .send()
    };
    put("theme", r#"{"mode":"dark","size":3,"tags":["a","b"]}"#)
        .await
        .assert_status(201);
    put("theme", r#"{"mode":"light"}"#).await.assert_status(200);
    put("other", "1").await.assert_status(201);
    app.get(property_uri(3, "theme", BOB))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(403);
    app.get(keys_uri(2, ALICE)).by(Who::Admin).send().await;

    let counts = "/_admin/requests/count";
    let theme = "/rest/api/3/user/properties/theme";
    let cases = [
        (json!({}), 5),
        (json!({"method": "PUT"}), 3),
        (
            json!({"method": "put", "key": "theme", "accountId": ALICE}),
            2,
        ),
        (json!({"path": theme}), 3),
        (json!({"path": "/rest/api/3/user/properties"}), 0),
        (json!({"pathPrefix": "/rest/api/2/"}), 1),
        (
            json!({"pathPattern": "/rest/api/[23]/user/properties/(theme|other)"}),
            4,
        ),
        (json!({"pathPattern": "theme"}), 0),
        (json!({"caller": ALICE}), 4),
        (json!({"caller": ADMIN}), 1),
        (json!({"accountId": BOB}), 1),
        (json!({"status": 403}), 1),
        (json!({"body": {"mode": "light"}}), 1),
        (json!({"body": {"mode": "dark"}}), 0),
        (json!({"bodyContains": {"mode": "dark", "tags": ["b"]}}), 1),
        (json!({"bodyContains": {}}), 2), // the two object bodies, not `1`
        (json!({"body": 1, "key": "other"}), 1),
        (json!({"since": "2999-01-01T00:00:00Z"}), 0),
    ];
    for (matcher, expected) in cases {
        assert_eq!(
            count(&app, counts, matcher.clone()).await,
            expected,
            "{matcher}"
        );
    }
    let found = app
        .admin(Method::POST, "/_admin/requests/find")
        .json(json!({"method": "PUT", "key": "theme"}).to_string())
        .send()
        .await;
    found.assert_status(200);
    let found = found.json();
    let statuses: Vec<_> = found
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["status"].as_u64())
        .collect();
    assert_eq!(statuses, [Some(201), Some(200)], "oldest first");
    assert_eq!(found[1]["body"], r#"{"mode":"light"}"#);

    let listed = app
        .admin(
            Method::GET,
            "/_admin/requests?method=PUT&bodyContains=%7B%22mode%22%3A%22dark%22%7D",
        )
        .send()
        .await;
    assert_eq!(listed.json().as_array().map(Vec::len), Some(1));

    app.admin(Method::DELETE, "/_admin/requests")
        .send()
        .await
        .assert_status(204);
    assert_eq!(count(&app, counts, json!({})).await, 0);
}

async fn bad_matchers_are_refused_with_their_reason(backend: Backend) {
    let app = backend.app().await;
    let cases = [
        (r#"{"paht": "/x"}"#, "unknown field `paht`"),
        (r#"{"status": "201"}"#, "status: invalid type"),
        (r#"{"key": 5}"#, "key: invalid type"),
        (
            r#"{"since": "2026-11-29T13:00:00.000+01:00"}"#,
            "is not in UTC",
        ),
        (
            r#"{"pathPattern": "(("}"#,
            "pathPattern is not a regular expression",
        ),
        (
            r#"{"since": "soon"}"#,
            "since 'soon' is not an RFC 3339 time",
        ),
        ("[1]", "The matcher must be a JSON object"),
        ("{", "The matcher must be a JSON object"),
        // This app keeps no bodies: a body matcher would match nothing, silently.
        (
            r#"{"method": "PUT", "bodyContains": {"mode": "dark"}}"#,
            "which the journal keeps only when the server runs with --journal-bodies",
        ),
        (r#"{"body": 1}"#, "--journal-bodies"),
    ];
    for path in ["/_admin/requests/count", "/_admin/requests/find"] {
        for (body, reason) in cases {
            let response = app.admin(Method::POST, path).json(body).send().await;
            response.assert_status(400);
            let message = response.json()["errorMessages"][0]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(message.contains(reason), "{body}: {message}");
        }
        app.admin(Method::GET, path).send().await.assert_status(405);
    }
    app.admin(Method::GET, "/_admin/requests?bodyContains=%7B%7D")
        .send()
        .await
        .assert_status(400);
    app.request(Method::POST, "/_admin/requests/count")
        .json("{}")
        .send()
        .await
        .assert_status(401);
    // Where a query would be ignored, matching everything or clearing everything, it is refused.
    app.get(keys_uri(3, BOB))
        .by(Who::Bob)
        .send()
        .await
        .assert_status(200);
    for (method, path) in [
        (Method::POST, "/_admin/requests/count?method=PUT"),
        (Method::POST, "/_admin/requests/find?method=PUT"),
        (Method::DELETE, "/_admin/requests?status=404"),
    ] {
        let response = app.admin(method, path).send().await;
        response.assert_status(400);
        assert!(response.text().contains("no query parameters"), "{path}");
    }
    assert_eq!(count(&app, "/_admin/requests/count", json!({})).await, 1);
}

async fn reset_takes_its_options_from_the_query_only(backend: Backend) {
    let app = backend.app().await;
    let existing = property_uri(3, "existing", ALICE);
    let response = app
        .admin(Method::POST, "/_admin/reset")
        .json(r#"{"scope": "all"}"#)
        .send()
        .await;
    response.assert_error_mentioning(400, "?scope=all");
    app.get(&existing)
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);
    app.admin(Method::POST, "/_admin/reset")
        .json("{}")
        .send()
        .await
        .assert_status(204);
    app.get(&existing)
        .by(Who::Alice)
        .send()
        .await
        .assert_status(404);
}

async fn a_wrong_method_is_journaled(backend: Backend) {
    let app = backend.app().await;
    let property = property_uri(3, "theme", BOB);
    for (method, uri) in [
        (Method::POST, property.as_str()),
        (Method::PUT, &keys_uri(3, BOB)),
    ] {
        app.request(method, uri)
            .by(Who::Bob)
            .json("{}")
            .send()
            .await
            .assert_status(405);
    }
    assert_eq!(
        count(&app, "/_admin/requests/count", json!({"status": 405})).await,
        2
    );
    assert_eq!(
        count(
            &app,
            "/_admin/requests/count",
            json!({"method": "POST", "key": "theme"})
        )
        .await,
        1
    );
}

async fn a_journal_that_is_off_refuses_questions(backend: Backend) {
    let app = backend.app().await;
    let settings = Settings {
        journal_size: 0,
        ..TestApp::settings(None)
    };
    let app = TestApp::with_settings(app.store.clone(), settings);
    let response = app
        .admin(Method::POST, "/_admin/requests/count")
        .json("{}")
        .send()
        .await;
    response.assert_error_mentioning(400, "The journal is off");
}

async fn each_site_counts_its_own_requests(backend: Backend) {
    let app = backend.app().await;
    app.admin(Method::POST, "/_admin/sites")
        .json(r#"{"name": "acme", "seed": {"users": [{"accountId": "a-1", "email": "a@acme.test", "apiTokens": ["a-token"]}]}}"#)
        .send()
        .await
        .assert_status(201);
    app.put(property_uri(3, "k", "a-1"))
        .host("acme.localhost")
        .header("authorization", &basic("a@acme.test", "a-token"))
        .json("1")
        .send()
        .await
        .assert_status(201);
    let matcher = json!({"method": "PUT", "key": "k"});
    assert_eq!(
        count(&app, "/_admin/sites/acme/requests/count", matcher.clone()).await,
        1
    );
    assert_eq!(count(&app, "/_admin/requests/count", matcher).await, 0);
}

on_each_backend!(
    a_matcher_counts_and_finds_exactly_the_requests_it_describes,
    bad_matchers_are_refused_with_their_reason,
    each_site_counts_its_own_requests,
    reset_takes_its_options_from_the_query_only,
    a_wrong_method_is_journaled,
    a_journal_that_is_off_refuses_questions,
);
