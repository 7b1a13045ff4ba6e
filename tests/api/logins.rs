//! Failed logins are throttled per client and account: past the limit, that client's logins as
//! that account are refused without the credentials being checked
//! (`X-Seraph-LoginReason: AUTHENTICATION_DENIED`), until the window passes. Over a real socket the client is its address (`abuse.rs` shows it); here the address
//! is set on each request as the accept loop would set it.

use std::time::Duration;

use jira_userprops::clock::ManualClock;
use jira_userprops::http::Settings;

use crate::helpers::*;

const HERE: &str = "198.51.100.7:40000";
const ELSEWHERE: &str = "203.0.113.9:40000";

/// An app that refuses a client after `limit` failed logins within `window`.
pub async fn app_with(limit: u32, window: Duration) -> TestApp {
    let app = Backend::Sqlite.app().await;
    let settings = Settings {
        login_failures: limit,
        login_failure_window: window,
        ..TestApp::settings(None)
    };
    TestApp::with_settings(app.store, settings)
}

fn list(app: &TestApp, who: Who) -> TestRequest {
    app.get(keys_uri(3, ALICE)).by(who)
}

#[track_caller]
fn assert_rejected(response: &TestResponse, reason: &str) {
    response.assert_status(401);
    assert_eq!(
        response.json(),
        serde_json::json!({"message": "Client must be authenticated to access this resource.", "status-code": 401})
    );
    assert_eq!(response.header("x-seraph-loginreason"), Some(reason));
    assert!(response.header("www-authenticate").is_some());
    assert_eq!(response.header("x-aaccountid"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_5_failed_logins_even_the_right_token_is_refused_unchecked() {
    let app = app_with(5, Duration::from_secs(60)).await;
    for attempt in 1..=5 {
        let response = list(&app, Who::WrongToken).from(HERE).send().await;
        assert_eq!(response.status, 401, "attempt {attempt}");
        assert_rejected(&response, "AUTHENTICATED_FAILED");
    }
    let refused = list(&app, Who::Alice).from(HERE).send().await;
    assert_rejected(&refused, "AUTHENTICATION_DENIED");
    let retry_after: u64 = refused
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // The same client's logins as other accounts go on: its bad guesses were at Alice's.
    app.get(keys_uri(3, BOB))
        .by(Who::Bob)
        .from(HERE)
        .send()
        .await
        .assert_status(200);
    list(&app, Who::Admin)
        .from(HERE)
        .send()
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bearer_tokens_on_the_jira_api_are_not_counted() {
    let app = app_with(2, Duration::from_secs(60)).await;
    for _ in 0..5 {
        let response = app
            .get(keys_uri(3, ALICE))
            .header("authorization", "Bearer not-a-token")
            .from(HERE)
            .send()
            .await;
        assert_rejected(&response, "AUTHENTICATED_FAILED");
    }
    list(&app, Who::Alice)
        .from(HERE)
        .send()
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_client_is_not_affected() {
    let app = app_with(5, Duration::from_secs(60)).await;
    for _ in 0..5 {
        list(&app, Who::WrongToken).from(HERE).send().await;
    }
    list(&app, Who::Alice)
        .from(ELSEWHERE)
        .send()
        .await
        .assert_status(200);
    // Its own failures count for it alone.
    let response = list(&app, Who::WrongToken).from(ELSEWHERE).send().await;
    assert_rejected(&response, "AUTHENTICATED_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_login_does_not_reset_the_count() {
    let app = app_with(5, Duration::from_secs(60)).await;
    for _ in 0..4 {
        list(&app, Who::WrongToken).from(HERE).send().await;
    }
    list(&app, Who::Alice)
        .from(HERE)
        .send()
        .await
        .assert_status(200);
    let fifth = list(&app, Who::WrongToken).from(HERE).send().await;
    assert_rejected(&fifth, "AUTHENTICATED_FAILED");
    assert_rejected(
        &list(&app, Who::Alice).from(HERE).send().await,
        "AUTHENTICATION_DENIED",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unparseable_credentials_are_not_failed_logins() {
    let app = app_with(2, Duration::from_secs(60)).await;
    for who in [Who::Anonymous, Who::MalformedHeader] {
        for _ in 0..3 {
            let response = list(&app, who).from(HERE).send().await;
            response.assert_status(401);
            assert_eq!(response.header("x-seraph-loginreason"), None, "{who:?}");
        }
    }
    list(&app, Who::Alice)
        .from(HERE)
        .send()
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_is_let_in_again_once_the_window_passes() {
    let window = Duration::from_secs(60);
    let clock = ManualClock::new();
    let app = Backend::Sqlite.app().await;
    let settings = Settings {
        login_failures: 2,
        login_failure_window: window,
        clock: clock.clone(),
        ..TestApp::settings(None)
    };
    let app = TestApp::with_settings(app.store, settings);
    for _ in 0..2 {
        list(&app, Who::WrongToken).from(HERE).send().await;
    }
    let refused = list(&app, Who::Alice).from(HERE).send().await;
    assert_rejected(&refused, "AUTHENTICATION_DENIED");
    assert_eq!(refused.header("retry-after"), Some("60"));

    clock.advance(window - Duration::from_millis(1));
    assert_rejected(
        &list(&app, Who::Alice).from(HERE).send().await,
        "AUTHENTICATION_DENIED",
    );
    clock.advance(Duration::from_millis(1));
    list(&app, Who::Alice)
        .from(HERE)
        .send()
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_client_address_basic_logins_are_counted_by_email() {
    let app = app_with(3, Duration::from_secs(60)).await;
    for _ in 0..3 {
        list(&app, Who::WrongToken).send().await;
    }
    // WrongToken is Alice's email with a wrong token.
    assert_rejected(
        &list(&app, Who::Alice).send().await,
        "AUTHENTICATION_DENIED",
    );
    app.get(keys_uri(3, BOB))
        .by(Who::Bob)
        .send()
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_of_0_turns_the_throttle_off() {
    let app = app_with(0, Duration::from_secs(60)).await;
    for _ in 0..20 {
        let response = list(&app, Who::WrongToken).from(HERE).send().await;
        assert_rejected(&response, "AUTHENTICATED_FAILED");
    }
    list(&app, Who::Alice)
        .from(HERE)
        .send()
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_at_the_admin_token_are_failed_logins_too() {
    let app = app_with(5, Duration::from_secs(60)).await;
    for guess in 1..=5 {
        let response = app
            .get("/_admin/users")
            .header("authorization", &format!("Bearer guess-{guess}"))
            .from(HERE)
            .send()
            .await;
        response.assert_status(401);
    }
    // Refused before the token is compared: the right one fares no better.
    let refused = app
        .admin(axum::http::Method::GET, "/_admin/users")
        .from(HERE)
        .send()
        .await;
    refused.assert_error(
        401,
        "Too many failed logins from this client; try again later.",
    );
    assert_eq!(
        refused.header("x-seraph-loginreason"),
        Some("AUTHENTICATION_DENIED")
    );
    assert!(refused.header("retry-after").is_some());
    // Jira API logins from that client are another matter.
    list(&app, Who::Alice)
        .from(HERE)
        .send()
        .await
        .assert_status(200);
    app.admin(axum::http::Method::GET, "/_admin/users")
        .from(ELSEWHERE)
        .send()
        .await
        .assert_status(200);
}
