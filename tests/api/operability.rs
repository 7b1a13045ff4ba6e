//! What operators and test suites use: the request journal, metrics, faults and rate limits.

use axum::http::Method;
use jira_userprops::clock::ManualClock;
use jira_userprops::http::Settings;

use crate::helpers::*;

async fn entries(app: &TestApp, query: &str) -> Vec<serde_json::Value> {
    let response = app
        .admin(Method::GET, format!("/_admin/requests{query}"))
        .send()
        .await;
    response.assert_status(200);
    response.json().as_array().expect("a list").clone()
}

async fn the_journal_records_api_requests_without_credentials(backend: Backend) {
    let app = backend.app().await;
    app.put(property_uri(3, "j", ALICE))
        .by(Who::Alice)
        .json("{\"secret-ish\": 1}")
        .send()
        .await
        .assert_status(201);
    app.get(property_uri(3, "j", BOB))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(403);
    app.get(keys_uri(2, ALICE)).send().await.assert_status(401);
    app.get("/healthz").send().await.assert_status(200);
    let all = entries(&app, "").await;
    assert_eq!(
        all.len(),
        3,
        "probes and the admin API are not journaled: {all:?}"
    );
    let first = &all[0];
    assert_eq!(first["method"], "PUT");
    assert_eq!(first["path"], "/rest/api/3/user/properties/j");
    assert_eq!(first["query"], format!("accountId={ALICE}"));
    assert_eq!(first["accountId"], ALICE);
    assert_eq!(first["status"], 201);
    assert!(
        first["latencyMs"].is_number()
            && first["requestId"].is_string()
            && first["time"].is_string()
    );
    assert!(
        first.get("body").is_none(),
        "bodies only with --journal-bodies"
    );
    let text = serde_json::to_string(&all).expect("JSON");
    let credentials = basic("alice@example.com", "alice-token");
    let encoded = credentials.trim_start_matches("Basic ");
    assert!(
        !text.contains("alice-token") && !text.contains(encoded),
        "{text}"
    );
    assert_eq!(first["headers"]["authorization"], "Basic [hidden]");
    assert_eq!(first["headers"]["content-type"], "application/json");

    assert_eq!(entries(&app, "?status=403").await.len(), 1);
    assert_eq!(entries(&app, "?method=put").await.len(), 1);
    assert_eq!(entries(&app, "?pathPrefix=/rest/api/2").await.len(), 1);
    assert_eq!(
        entries(&app, "?path=/rest/api/2").await.len(),
        0,
        "path is exact"
    );
    assert_eq!(
        entries(&app, "?path=/rest/api/2/user/properties")
            .await
            .len(),
        1
    );
    let about_alice = entries(&app, &format!("?accountId={ALICE}")).await;
    let statuses: Vec<_> = about_alice.iter().map(|e| e["status"].clone()).collect();
    assert_eq!(
        statuses,
        [201, 401],
        "accountId is whose record a request was about"
    );
    let by_alice = entries(&app, &format!("?caller={ALICE}")).await;
    let statuses: Vec<_> = by_alice.iter().map(|e| e["status"].clone()).collect();
    assert_eq!(statuses, [201, 403], "caller is who was signed in");
    assert_eq!(entries(&app, "?since=2999-01-01T00:00:00Z").await.len(), 0);
    assert_eq!(entries(&app, "?since=2000-01-01T00:00:00Z").await.len(), 3);
    app.admin(Method::GET, "/_admin/requests?status=abc")
        .send()
        .await
        .assert_status(400);
    app.admin(Method::GET, "/_admin/requests?colour=red")
        .send()
        .await
        .assert_status(400);

    app.admin(Method::DELETE, "/_admin/requests")
        .send()
        .await
        .assert_status(204);
    assert!(entries(&app, "").await.is_empty());
}

async fn the_journal_never_exceeds_its_size_and_keeps_bodies_when_asked(backend: Backend) {
    let app = backend.app().await;
    let settings = Settings {
        journal_size: 3,
        journal_bodies: true,
        ..TestApp::settings(None)
    };
    let app = TestApp::with_settings(app.store.clone(), settings);
    for i in 0..7 {
        app.put(property_uri(3, &format!("k{i}"), BOB))
            .by(Who::Bob)
            .json(format!("[{i}]"))
            .send()
            .await;
    }
    let kept = entries(&app, "").await;
    let paths: Vec<&str> = kept.iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(
        paths,
        [
            "/rest/api/3/user/properties/k4",
            "/rest/api/3/user/properties/k5",
            "/rest/api/3/user/properties/k6"
        ]
    );
    assert_eq!(kept[2]["body"], "[6]");

    let off = TestApp::with_settings(
        app.store.clone(),
        Settings {
            journal_size: 0,
            ..TestApp::settings(None)
        },
    );
    off.get(keys_uri(3, BOB))
        .by(Who::Bob)
        .send()
        .await
        .assert_status(200);
    // Off, it holds nothing, and says so rather than answer that nothing matched.
    let refused = off.admin(Method::GET, "/_admin/requests").send().await;
    refused.assert_error_mentioning(400, "The journal is off");
}

async fn metrics_count_requests_writes_and_deletes(backend: Backend) {
    let app = backend.app().await;
    app.put(property_uri(3, "m", BOB))
        .by(Who::Bob)
        .json("1")
        .send()
        .await
        .assert_status(201);
    app.put(property_uri(3, "m", BOB))
        .by(Who::Bob)
        .json("2")
        .send()
        .await
        .assert_status(200);
    app.delete(property_uri(3, "m", BOB))
        .by(Who::Bob)
        .send()
        .await
        .assert_status(204);
    app.get(property_uri(3, "m", BOB))
        .by(Who::Bob)
        .send()
        .await
        .assert_status(404);
    let metrics = app.get("/metrics").send().await;
    metrics.assert_status(200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    let text = metrics.text();
    for line in [
        r#"jira_userprops_http_requests_total{method="PUT",route="/rest/api/3/user/properties/{*key}",status="201"} 1"#,
        r#"jira_userprops_http_requests_total{method="PUT",route="/rest/api/3/user/properties/{*key}",status="200"} 1"#,
        r#"jira_userprops_http_requests_total{method="GET",route="/rest/api/3/user/properties/{*key}",status="404"} 1"#,
        "jira_userprops_property_writes_total 2",
        "jira_userprops_property_deletes_total 1",
        "jira_userprops_journal_entries 4",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
    assert!(text.contains(r#"jira_userprops_http_request_duration_seconds_bucket{route="/rest/api/3/user/properties/{*key}""#));
    assert!(
        text.contains(r#"jira_userprops_db_pool_connections{state="idle"}"#),
        "{text}"
    );
    assert!(
        !text.contains("bob-token") && !text.contains(BOB),
        "no tokens or accounts in metrics"
    );
}

async fn the_rate_limiter_sends_every_header_refuses_then_recovers(backend: Backend) {
    let clock = ManualClock::new();
    let settings = Settings {
        clock: clock.clone(),
        ..TestApp::settings(None)
    };
    let app = TestApp::with_settings(backend.app().await.store, settings);
    // 5 per 5 s: one token a second. The clock stands still until the test moves it.
    set_faults(
        &app,
        r#"{"rateLimit": {"limit": 5, "windowSeconds": 5, "per": "account"}}"#,
    )
    .await;
    let uri = keys_uri(3, BOB);
    let mut near = Vec::new();
    for _ in 0..5 {
        let response = app.get(&uri).by(Who::Bob).send().await;
        response.assert_status(200);
        near.push(response.header("x-ratelimit-nearlimit").is_some());
    }
    assert_eq!(near, [false, false, false, false, true]);
    let refused = app.get(&uri).by(Who::Bob).send().await;
    refused.assert_error(429, "Rate limit exceeded.");
    let retry_after: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert_eq!(retry_after, 1);
    assert_eq!(refused.header("x-ratelimit-limit"), Some("5"));
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    assert!(refused.header("ratelimit-reason").is_some());
    // Jira's `yyyy-MM-ddTHH:mmZ`: the request's time plus Retry-After, here to the minute up.
    let reset = refused.header("x-ratelimit-reset").expect("reset");
    let at = reset
        .strip_suffix('Z')
        .filter(|minute| minute.len() == 16)
        .and_then(|minute| humantime::parse_rfc3339(&format!("{minute}:00Z")).ok())
        .unwrap_or_else(|| panic!("not yyyy-MM-ddTHH:mmZ: {reset}"));
    let due =
        jira_userprops::clock::Clock::wall(&*clock) + std::time::Duration::from_secs(retry_after);
    assert!(
        at >= due && at < due + std::time::Duration::from_secs(60),
        "{reset}"
    );
    app.get(keys_uri(3, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);

    clock.advance(std::time::Duration::from_millis(900));
    app.get(&uri)
        .by(Who::Bob)
        .send()
        .await
        .assert_error(429, "Rate limit exceeded.");
    clock.advance(std::time::Duration::from_millis(200));
    app.get(&uri).by(Who::Bob).send().await.assert_status(200);
    app.admin(Method::DELETE, "/_admin/faults")
        .send()
        .await
        .assert_status(204);
    for _ in 0..10 {
        app.get(&uri).by(Who::Bob).send().await.assert_status(200);
    }
}

async fn injected_errors_follow_their_scope_and_count(backend: Backend) {
    let app = backend.app().await;
    set_faults(
        &app,
        &format!(
            r#"{{"errors": {{"status": 503, "fraction": 1, "accountId": "{BOB}", "count": 2}}}}"#
        ),
    )
    .await;
    app.get(keys_uri(3, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);
    for _ in 0..2 {
        let failed = app
            .put(property_uri(3, "f", BOB))
            .by(Who::Bob)
            .json("1")
            .send()
            .await;
        failed.assert_status(503);
    }
    assert_eq!(
        app.stored(BOB, "f").await,
        None,
        "a failed request changes nothing"
    );
    app.put(property_uri(3, "f", BOB))
        .by(Who::Bob)
        .json("1")
        .send()
        .await
        .assert_status(201);
    let rules = app.admin(Method::GET, "/_admin/faults").send().await.json();
    assert_eq!(rules["errors"]["count"], 0);
}

/// A client's retry and re-login code meets an injected 401, 429 or 503 as it would meet
/// Jira's own: the 401 in its shape with its challenge, the others with `Retry-After`.
async fn injected_errors_look_like_the_real_answers(backend: Backend) {
    let app = backend.app().await;
    set_faults(&app, r#"{"errors": {"status": 401, "fraction": 1}}"#).await;
    let refused = app.get(keys_uri(3, BOB)).by(Who::Bob).send().await;
    refused.assert_status(401);
    assert_eq!(
        refused.json(),
        serde_json::json!({
            "message": "Client must be authenticated to access this resource.",
            "status-code": 401
        })
    );
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Basic realm=\"Jira\"")
    );
    for status in [429, 503] {
        set_faults(
            &app,
            &format!(r#"{{"errors": {{"status": {status}, "fraction": 1}}}}"#),
        )
        .await;
        let refused = app.get(keys_uri(3, BOB)).by(Who::Bob).send().await;
        refused.assert_status(status);
        assert_eq!(refused.header("retry-after"), Some("1"), "{status}");
        assert_eq!(
            refused.json()["errorMessages"].as_array().map(Vec::len),
            Some(1)
        );
    }
    set_faults(&app, r#"{"errors": {"status": 500, "fraction": 1}}"#).await;
    let failed = app.get(keys_uri(3, BOB)).by(Who::Bob).send().await;
    failed.assert_status(500);
    assert_eq!(failed.header("retry-after"), None);
}

async fn latency_delays_requests(backend: Backend) {
    let app = backend.app().await;
    set_faults(&app, r#"{"latency": {"minMs": 150, "maxMs": 150}}"#).await;
    let started = std::time::Instant::now();
    app.get(keys_uri(3, BOB))
        .by(Who::Bob)
        .send()
        .await
        .assert_status(200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
}

/// Whether a request fails is decided after its delay: one cut off by the request timeout
/// while it waits leaves the error's count for the next.
async fn an_error_is_not_spent_on_a_request_cut_off_during_its_delay(backend: Backend) {
    let app = backend
        .app()
        .await
        .with_request_timeout(std::time::Duration::from_millis(200));
    set_faults(
        &app,
        r#"{"latency": {"minMs": 5000, "maxMs": 5000, "count": 1},
            "errors": {"status": 500, "fraction": 1, "count": 1}}"#,
    )
    .await;
    let uri = keys_uri(3, BOB);
    app.get(&uri).by(Who::Bob).send().await.assert_status(503);
    app.get(&uri).by(Who::Bob).send().await.assert_status(500);
    app.get(&uri).by(Who::Bob).send().await.assert_status(200);
}

async fn bad_fault_rules_are_refused_and_change_nothing(backend: Backend) {
    let app = backend.app().await;
    set_faults(&app, r#"{"latency": {"minMs": 1, "maxMs": 2}}"#).await;
    for bad in [
        "{",
        r#"{"rateLimit": {"limit": 0, "windowSeconds": 1}}"#,
        r#"{"errors": {"status": 99, "fraction": 1}}"#,
        r#"{"other": 1}"#,
    ] {
        app.admin(Method::PUT, "/_admin/faults")
            .json(bad)
            .send()
            .await
            .assert_status(400);
    }
    let rules = app.admin(Method::GET, "/_admin/faults").send().await.json();
    assert_eq!(
        rules,
        serde_json::json!({"latency": {"minMs": 1, "maxMs": 2, "seed": 0}})
    );
}

on_each_backend!(
    the_journal_records_api_requests_without_credentials,
    the_journal_never_exceeds_its_size_and_keeps_bodies_when_asked,
    metrics_count_requests_writes_and_deletes,
    the_rate_limiter_sends_every_header_refuses_then_recovers,
    injected_errors_follow_their_scope_and_count,
    injected_errors_look_like_the_real_answers,
    latency_delays_requests,
    an_error_is_not_spent_on_a_request_cut_off_during_its_delay,
    bad_fault_rules_are_refused_and_change_nothing,
);
