//! The admin API: who may use it, users, tokens, reset and snapshots; and the probes.

use axum::http::Method;
use jira_userprops::http::Settings;
use serde_json::json;

use crate::helpers::*;

async fn the_admin_api_takes_the_admin_token_only(backend: Backend) {
    let app = backend.app().await;
    let cases = [
        (None, 401),
        (Some("Bearer wrong-admin-token".to_owned()), 401),
        (Some("Basic %%%".to_owned()), 401),
        (Some(basic("alice@example.com", "wrong")), 401),
        (Who::Admin.authorization(), 403),
        (Who::Alice.authorization(), 403),
        (Some("Bearer alice-token".to_owned()), 403),
        (Some(format!("Bearer {ADMIN_TOKEN}")), 200),
    ];
    for (authorization, status) in cases {
        let mut request = app.get("/_admin/users");
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await;
        response.assert_status(status);
        if status == 401 {
            response.assert_error(
                401,
                "The admin API needs 'Authorization: Bearer <admin token>'.",
            );
            assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        }
    }
}

async fn without_an_admin_token_the_admin_api_does_not_exist(backend: Backend) {
    let app = backend.app().await;
    let off = TestApp::with_settings(app.store.clone(), Settings::default());
    for authorization in ["Bearer ", "Bearer test-admin-token"] {
        off.get("/_admin/users")
            .header("authorization", authorization)
            .send()
            .await
            .assert_error(404, "The requested resource does not exist.");
    }
    // Methods a path does not take are no exception: no 405 tells that the path exists.
    let paths = [
        (Method::DELETE, "/_admin/users"),
        (Method::PUT, "/_admin/sites"),
        (Method::PATCH, "/_admin/apps"),
        (Method::POST, "/_admin/ui/"),
        (Method::PUT, "/_admin/ui/views/sites"),
        (Method::GET, "/_admin/ui/views/sites/default/requests/clear"),
    ];
    for (method, path) in paths {
        let refused = off
            .request(method.clone(), path)
            .header("authorization", "Bearer test-admin-token")
            .send()
            .await;
        refused.assert_error(404, "The requested resource does not exist.");
        assert_eq!(refused.header("allow"), None, "{method} {path}");
    }
}

async fn users_are_created_listed_changed_and_deleted(backend: Backend) {
    let app = backend.app().await;
    let body = r#"{"accountId": "dana-1", "email": "Dana@example.com", "displayName": "Dana", "apiTokens": ["dana-token"]}"#;
    let created = app
        .admin(Method::POST, "/_admin/users")
        .json(body)
        .send()
        .await;
    created.assert_status(201);
    let expected = serde_json::json!({"accountId": "dana-1", "email": "Dana@example.com",
        "displayName": "Dana", "admin": false, "active": true});
    assert_eq!(created.json(), expected);
    app.admin(Method::POST, "/_admin/users")
        .json(body)
        .send()
        .await
        .assert_status(409);
    let clash = r#"{"accountId": "other", "email": "dana@EXAMPLE.com"}"#;
    app.admin(Method::POST, "/_admin/users")
        .json(clash)
        .send()
        .await
        .assert_status(409);
    for bad in [
        "{}",
        "[",
        r#"{"accountId": "x"}"#,
        r#"{"accountId": "x", "email": "x@y", "extra": 1}"#,
    ] {
        app.admin(Method::POST, "/_admin/users")
            .json(bad)
            .send()
            .await
            .assert_status(400);
    }

    let listed = app.admin(Method::GET, "/_admin/users").send().await.json();
    let ids: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|u| u["accountId"].as_str())
        .collect();
    assert_eq!(ids, [ADMIN, ALICE, BOB, CAROL, "dana-1"]);

    // The new user works at once, and becomes an administrator at once.
    let dana = basic("dana@example.com", "dana-token");
    app.get(keys_uri(3, BOB))
        .header("authorization", &dana)
        .send()
        .await
        .assert_status(403);
    let changed = app
        .admin(Method::PATCH, "/_admin/users/dana-1")
        .json(r#"{"admin": true}"#)
        .send()
        .await;
    assert_eq!(changed.json()["admin"], true);
    app.get(keys_uri(3, BOB))
        .header("authorization", &dana)
        .send()
        .await
        .assert_status(200);
    app.admin(Method::PATCH, "/_admin/users/dana-1")
        .json(r#"{"active": false}"#)
        .send()
        .await
        .assert_status(200);
    app.get(keys_uri(3, BOB))
        .header("authorization", &dana)
        .send()
        .await
        .assert_status(401);
    app.admin(Method::PATCH, "/_admin/users/dana-1")
        .json(r#"{"email": "alice@example.com"}"#)
        .send()
        .await
        .assert_status(409);
    app.admin(Method::PATCH, "/_admin/users/nobody")
        .json("{}")
        .send()
        .await
        .assert_status(404);
    // An empty body changes nothing, as `{}`; a field of the wrong kind is named.
    let unchanged = app
        .admin(Method::PATCH, "/_admin/users/dana-1")
        .send()
        .await;
    unchanged.assert_status(200);
    assert_eq!(unchanged.json()["active"], false);
    let wrong = app
        .admin(Method::PATCH, "/_admin/users/dana-1")
        .json(r#"{"admin": "yes"}"#)
        .send()
        .await;
    wrong.assert_error_mentioning(400, "admin: invalid type");

    app.admin(Method::DELETE, format!("/_admin/users/{ALICE}"))
        .send()
        .await
        .assert_status(204);
    assert!(
        app.stored_keys(ALICE).await.is_empty(),
        "properties go with their user"
    );
    app.get(keys_uri(3, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(401);
    app.admin(Method::GET, format!("/_admin/users/{ALICE}"))
        .send()
        .await
        .assert_status(404);
    app.admin(Method::DELETE, format!("/_admin/users/{ALICE}"))
        .send()
        .await
        .assert_status(404);
}

async fn tokens_are_shown_once_listed_without_secrets_and_revoked(backend: Backend) {
    let app = backend.app().await;
    let created = app
        .admin(Method::POST, format!("/_admin/users/{BOB}/tokens"))
        .send()
        .await;
    created.assert_status(201);
    let created = created.json();
    let (id, token) = (
        created["id"].as_str().expect("id"),
        created["token"].as_str().expect("token"),
    );
    assert!(token.len() >= 40, "{token}");
    let with_new = basic("bob@example.com", token);
    app.get(keys_uri(3, BOB))
        .header("authorization", &with_new)
        .send()
        .await
        .assert_status(200);

    let listed = app
        .admin(Method::GET, format!("/_admin/users/{BOB}/tokens"))
        .send()
        .await;
    assert!(!listed.text().contains(token), "{}", listed.text());
    let ids: Vec<String> = listed
        .json()
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect();
    assert!(ids.iter().any(|listed| listed == id), "{ids:?}");
    assert_eq!(ids.len(), 2, "the seed's token and the new one");

    app.admin(Method::DELETE, format!("/_admin/users/{BOB}/tokens/{id}"))
        .send()
        .await
        .assert_status(204);
    app.get(keys_uri(3, BOB))
        .header("authorization", &with_new)
        .send()
        .await
        .assert_status(401);
    app.get(keys_uri(3, BOB))
        .by(Who::Bob)
        .send()
        .await
        .assert_status(200);
    app.admin(Method::DELETE, format!("/_admin/users/{BOB}/tokens/{id}"))
        .send()
        .await
        .assert_status(404);
    app.admin(Method::POST, "/_admin/users/nobody/tokens")
        .send()
        .await
        .assert_status(404);
    app.admin(Method::GET, "/_admin/users/nobody/tokens")
        .send()
        .await
        .assert_status(404);
}

async fn reset_deletes_properties_or_everything(backend: Backend) {
    let app = backend.app().await;
    app.admin(Method::POST, "/_admin/reset")
        .send()
        .await
        .assert_status(204);
    app.get(property_uri(3, "existing", ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(404);
    app.get(keys_uri(3, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);
    app.admin(Method::POST, "/_admin/reset?scope=nonsense")
        .send()
        .await
        .assert_status(400);
    app.admin(Method::POST, "/_admin/reset?scope=all")
        .send()
        .await
        .assert_status(204);
    app.get(keys_uri(3, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(401);
    let users = app.admin(Method::GET, "/_admin/users").send().await;
    assert_eq!(users.text(), "[]");
}

async fn a_snapshot_imported_into_a_fresh_database_exports_identically(backend: Backend) {
    let app = backend.app().await;
    app.put(property_uri(3, "odd%2Fkey%20%C3%A9", BOB))
        .by(Who::Bob)
        .json("{\"n\": 1.50, \"a\": [1e3]}")
        .send()
        .await
        .assert_status(201);
    let first = app.admin(Method::GET, "/_admin/snapshot").send().await;
    first.assert_status(200);
    assert!(
        !first.text().contains("bob-token"),
        "no secrets in snapshots"
    );

    let fresh = backend.app().await;
    fresh
        .admin(Method::POST, "/_admin/reset?scope=all")
        .send()
        .await
        .assert_status(204);
    fresh
        .admin(Method::PUT, "/_admin/snapshot")
        .json(first.body.clone())
        .send()
        .await
        .assert_status(204);
    let second = fresh.admin(Method::GET, "/_admin/snapshot").send().await;
    assert_eq!(second.text(), first.text());
    let read = fresh
        .get(property_uri(3, "odd%2Fkey%20%C3%A9", BOB))
        .by(Who::Bob)
        .send()
        .await;
    assert_eq!(
        read.json()["value"],
        serde_json::json!({"n": 1.5, "a": [1000.0]})
    );
    assert!(
        read.text().contains("{\"n\": 1.50, \"a\": [1e3]}"),
        "verbatim: {}",
        read.text()
    );
}

async fn a_bad_snapshot_changes_nothing(backend: Backend) {
    let app = backend.app().await;
    let before = app
        .admin(Method::GET, "/_admin/snapshot")
        .send()
        .await
        .text()
        .to_owned();
    for bad in [
        "{",
        r#"{"users": [{"accountId": "a"}]}"#,
        r#"{"properties": [{"accountId": "z", "key": "k", "value": 1}]}"#,
        // Apps belong to the server: a snapshot of a site holding them is refused, not cut.
        r#"{"apps": [{"name": "a", "clientId": "a", "clientSecret": "s", "callbackUrl": "http://x"}]}"#,
    ] {
        app.admin(Method::PUT, "/_admin/snapshot")
            .json(bad)
            .send()
            .await
            .assert_status(400);
    }
    let after = app.admin(Method::GET, "/_admin/snapshot").send().await;
    assert_eq!(after.text(), before);
}

/// Input that one backend would store and the other refuse, or that would be stored other than
/// it was meant, is a 400 on both, and nothing changes.
async fn input_either_backend_would_mangle_is_refused_on_both(backend: Backend) {
    let app = backend.app().await;
    let before = app.admin(Method::GET, "/_admin/snapshot").send().await;
    let long_email = format!("a@{}.example.com", "x".repeat(3000));
    let long_name = "n".repeat(256);
    let refusals = [
        (
            "/_admin/users",
            json!({"accountId": "x", "email": long_email}),
        ),
        (
            "/_admin/users",
            json!({"accountId": "x", "email": "x@example.com", "displayName": long_name}),
        ),
        // Dot segments: no address of the admin API or the console could name the user.
        (
            "/_admin/users",
            json!({"accountId": "..", "email": "x@example.com"}),
        ),
        (
            "/_admin/users",
            json!({"accountId": ".", "email": "x@example.com"}),
        ),
        (
            &*format!("/_admin/users/{ALICE}/tokens"),
            json!({"scopes": [""]}),
        ),
        (
            &*format!("/_admin/users/{ALICE}/tokens"),
            json!({"scopes": ["read:jira-user write:jira-work"]}),
        ),
        (
            &*format!("/_admin/users/{ALICE}/tokens"),
            json!({"expiresAt": "2999-01-01T00:00:00.000+09:00"}),
        ),
        (
            "/_admin/apps",
            json!({"name": "x", "kind": "serviceAccount", "sites": ["default"],
                   "clientId": "c".repeat(122)}),
        ),
        (
            "/_admin/apps",
            json!({"name": long_name, "callbackUrl": "http://x"}),
        ),
        (
            "/_admin/sites",
            json!({"name": "acme", "seed": {"apps": [{"name": "a", "clientId": "a",
                   "clientSecret": "s", "callbackUrl": "http://x"}]}}),
        ),
    ];
    for (path, body) in refusals {
        let refused = app
            .admin(Method::POST, path)
            .json(body.to_string())
            .send()
            .await;
        assert_eq!(
            refused.status.as_u16(),
            400,
            "{path} {body}: {}",
            refused.text()
        );
    }
    let after = app.admin(Method::GET, "/_admin/snapshot").send().await;
    assert_eq!(after.text(), before.text());
    let apps = app.admin(Method::GET, "/_admin/apps").send().await;
    assert_eq!(apps.json(), json!([]));
    let sites = app.admin(Method::GET, "/_admin/sites").send().await.json();
    assert_eq!(sites.as_array().map(Vec::len), Some(1), "{sites}");
}

async fn probes_answer_without_credentials(backend: Backend) {
    let app = backend.app().await;
    let alive = app.get("/healthz").send().await;
    assert_eq!(alive.text(), r#"{"status":"ok"}"#);
    let ready = app.get("/readyz").send().await;
    assert_eq!(ready.text(), r#"{"status":"ready"}"#);
    app.store.close().await;
    app.get("/readyz")
        .send()
        .await
        .assert_error(503, "The database is not ready.");
    app.get("/healthz").send().await.assert_status(200);
}

async fn creating_a_user_that_exists_adds_nothing(backend: Backend) {
    let app = backend.app().await;
    let again = format!(
        r#"{{"accountId": "{BOB}", "email": "bob@example.com", "apiTokens": ["smuggled"]}}"#
    );
    app.admin(Method::POST, "/_admin/users")
        .json(again)
        .send()
        .await
        .assert_status(409);
    let smuggled = basic("bob@example.com", "smuggled");
    app.get(keys_uri(3, BOB))
        .header("authorization", &smuggled)
        .send()
        .await
        .assert_status(401);
    let taken =
        r#"{"accountId": "erin-2", "email": "erin@example.com", "apiTokens": ["bob-token"]}"#;
    app.admin(Method::POST, "/_admin/users")
        .json(taken)
        .send()
        .await
        .assert_status(409);
    app.admin(Method::GET, "/_admin/users/erin-2")
        .send()
        .await
        .assert_status(404);
    let control =
        r#"{"accountId": "erin-3", "email": "erin@example.com", "displayName": "a\u0000b"}"#;
    app.admin(Method::POST, "/_admin/users")
        .json(control)
        .send()
        .await
        .assert_status(400);
    app.admin(Method::PATCH, format!("/_admin/users/{BOB}"))
        .json(r#"{"displayName": "x\u0007"}"#)
        .send()
        .await
        .assert_status(400);
}

async fn ids_that_cannot_exist_are_not_found(backend: Backend) {
    let app = backend.app().await;
    for path in ["/_admin/users/a%00b", "/_admin/users/a%00b/tokens"] {
        app.admin(Method::GET, path).send().await.assert_status(404);
    }
    app.admin(Method::DELETE, "/_admin/users/a%00b")
        .send()
        .await
        .assert_status(404);
    app.admin(Method::POST, "/_admin/users/a%00b/tokens")
        .send()
        .await
        .assert_status(404);
    app.admin(Method::PATCH, "/_admin/users/a%00b")
        .json("{}")
        .send()
        .await
        .assert_status(404);
    app.admin(Method::DELETE, format!("/_admin/users/{BOB}/tokens/a%00b"))
        .send()
        .await
        .assert_status(404);
    // Ids that do not decode, and bodies past the limit, get the API's own shape, not plain text.
    for path in [
        "/_admin/users/%FF",
        "/_admin/apps/%FF/grants",
        "/_admin/sites/%FF",
    ] {
        app.admin(Method::GET, path)
            .send()
            .await
            .assert_error(404, "The requested resource does not exist.");
    }
    let too_large = " ".repeat(3 << 20);
    for request in [
        app.admin(Method::POST, "/_admin/users"),
        app.request(Method::POST, "/authorize"),
    ] {
        request
            .json(too_large.clone())
            .send()
            .await
            .assert_error(413, "The request body is too large.");
    }
    let nul_email = basic("bob\u{0}@example.com", "bob-token");
    app.get(keys_uri(3, BOB))
        .header("authorization", &nul_email)
        .send()
        .await
        .assert_status(401);
}

async fn snapshots_larger_than_two_mebibytes_round_trip(backend: Backend) {
    let app = backend.app().await;
    let big = format!("\"{}\"", "x".repeat(30_000));
    for i in 0..80 {
        app.put(property_uri(3, &format!("big.{i:02}"), BOB))
            .by(Who::Bob)
            .json(big.clone())
            .send()
            .await
            .assert_status(201);
    }
    let snapshot = app.admin(Method::GET, "/_admin/snapshot").send().await;
    assert!(snapshot.body.len() > 2 << 20, "{}", snapshot.body.len());
    app.admin(Method::PUT, "/_admin/snapshot")
        .json(snapshot.body.clone())
        .send()
        .await
        .assert_status(204);
    assert_eq!(app.stored_keys(BOB).await.len(), 81);
}

async fn concurrent_snapshot_imports_both_succeed(backend: Backend) {
    let app = backend.app().await;
    let snapshot = app.admin(Method::GET, "/_admin/snapshot").send().await.body;
    let imports: Vec<_> = (0..4)
        .map(|_| {
            let app = app.clone();
            let snapshot = snapshot.clone();
            tokio::spawn(async move {
                app.admin(Method::PUT, "/_admin/snapshot")
                    .json(snapshot)
                    .send()
                    .await
                    .status
                    .as_u16()
            })
        })
        .collect();
    for import in imports {
        assert_eq!(import.await.expect("task completes"), 204);
    }
    let after = app.admin(Method::GET, "/_admin/snapshot").send().await;
    assert_eq!(after.body, snapshot);
}

on_each_backend!(
    input_either_backend_would_mangle_is_refused_on_both,
    creating_a_user_that_exists_adds_nothing,
    ids_that_cannot_exist_are_not_found,
    snapshots_larger_than_two_mebibytes_round_trip,
    concurrent_snapshot_imports_both_succeed,
    the_admin_api_takes_the_admin_token_only,
    without_an_admin_token_the_admin_api_does_not_exist,
    users_are_created_listed_changed_and_deleted,
    tokens_are_shown_once_listed_without_secrets_and_revoked,
    reset_deletes_properties_or_everything,
    a_snapshot_imported_into_a_fresh_database_exports_identically,
    a_bad_snapshot_changes_nothing,
    probes_answer_without_credentials,
);
