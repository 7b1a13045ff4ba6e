//! What operators see: the build, the process and the server's own refusals in `/metrics`, and
//! a client's `X-Request-Id` kept, echoed and logged beside the request's own id.

use jira_userprops::http::Settings;

use crate::binary::{EXAMPLE_SEED, Server};
use crate::helpers::*;
use crate::socket::exchange;

async fn build_process_and_refusals_are_in_the_metrics(backend: Backend) {
    let app = backend.app().await;
    let app = TestApp::with_settings(
        app.store.clone(),
        Settings {
            login_failures: 1,
            ..TestApp::settings(None)
        },
    );
    let build = metric(&app, "jira_userprops_build_info{")
        .await
        .expect("build_info");
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{build}"
    );
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert!(build.contains(&format!("backend=\"{name}\"")), "{build}");
    assert!(
        build.contains("commit=\"") && build.ends_with(" 1"),
        "{build}"
    );
    assert!(metric(&app, "process_cpu_seconds_total ").await.is_some());
    assert!(
        metric(&app, "process_resident_memory_bytes ")
            .await
            .is_some()
    );
    for name in ["rate_limited", "injected_faults", "refused_logins"] {
        let line = metric(&app, &format!("jira_userprops_{name}_total ")).await;
        assert_eq!(
            line.as_deref(),
            Some(format!("jira_userprops_{name}_total 0").as_str())
        );
    }

    set_faults(&app, r#"{"rateLimit": {"limit": 1, "windowSeconds": 60}}"#).await;
    for _ in 0..3 {
        app.get(keys_uri(3, ALICE)).by(Who::Alice).send().await;
    }
    set_faults(
        &app,
        r#"{"errors": {"status": 503, "fraction": 1, "count": 2}}"#,
    )
    .await;
    for _ in 0..3 {
        app.get(keys_uri(3, BOB)).by(Who::Bob).send().await;
    }
    for _ in 0..3 {
        app.get(keys_uri(3, ALICE))
            .header("authorization", &basic("alice@example.com", "wrong"))
            .from("10.0.0.7:40000")
            .send()
            .await;
    }
    let expected = [
        ("rate_limited", 2),
        ("injected_faults", 2),
        ("refused_logins", 2),
    ];
    for (name, count) in expected {
        let line = metric(&app, &format!("jira_userprops_{name}_total ")).await;
        assert_eq!(
            line.as_deref(),
            Some(format!("jira_userprops_{name}_total {count}").as_str())
        );
    }
}

async fn a_sane_client_request_id_is_echoed_and_an_odd_one_is_not(backend: Backend) {
    let app = backend.app().await;
    let cases = [
        ("trace-0af7651916cd43dd8448eb211c80319c", true),
        (&*"x".repeat(128), true),
        (&*"x".repeat(129), false),
        ("two words", false),
        ("", false),
    ];
    for (id, echoed) in cases {
        let response = app
            .get(keys_uri(3, ALICE))
            .by(Who::Alice)
            .header("x-request-id", id)
            .send()
            .await;
        response.assert_status(200);
        let expected = echoed.then_some(id);
        assert_eq!(response.header("x-request-id"), expected, "{id:?}");
        assert!(response.header("x-arequestid").is_some());
    }
}

on_each_backend!(
    build_process_and_refusals_are_in_the_metrics,
    a_sane_client_request_id_is_echoed_and_an_odd_one_is_not,
);

#[test]
fn the_log_names_a_request_by_the_clients_id_and_by_its_own() {
    let mut server = Server::start(&["--database-url", "sqlite::memory:", "--seed", EXAMPLE_SEED]);
    let request = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: ci-run-42\r\n\
                   Connection: close\r\n\r\n";
    let response = exchange(server.address(), request);
    assert!(response.contains("x-request-id: ci-run-42"), "{response}");
    let own = response
        .lines()
        .find_map(|line| line.strip_prefix("x-arequestid: "))
        .unwrap_or_else(|| panic!("no X-ARequestId: {response}"));
    let line = server.wait_for("\"handled\"");
    assert!(line.contains("\"client_id\":\"ci-run-42\""), "{line}");
    assert!(line.contains(&format!("\"id\":\"{own}\"")), "{line}");
}
