//! PostgreSQL's own concerns: TLS from the URL, riding out an outage, a bounded queue for
//! connections. Restarts, cuts, partitions and slow networks under load are in `outages.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use jira_userprops::store::{DatabaseOptions, Store};

use crate::helpers::*;
use crate::relay::{Relay, through, upstream};

fn with_parameter(url: &str, parameter: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{parameter}")
}

/// Waits until `count` of the store's calls hold or wait for a connection.
async fn until_in_flight(store: &Store, count: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.calls_in_flight() != Some(count) {
        assert!(
            Instant::now() < deadline,
            "calls in flight: {:?}, not {count}",
            store.calls_in_flight()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn tls_follows_the_urls_sslmode() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let encrypted = with_parameter(&database.url, "sslmode=require");
    let app = TestApp::on(&encrypted, None).await;
    app.put(property_uri(3, "over-tls", ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await
        .assert_status(201);

    // The server's certificate is self-signed: full verification must refuse it.
    let verified = with_parameter(&database.url, "sslmode=verify-full");
    let refused = Store::connect(&verified, &test_database_options()).await;
    let error = refused.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_gives_503_and_the_server_recovers_by_itself() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let relay = Relay::to(upstream(&database.url)).await;
    let relayed = through(&database.url, &relay);
    let options = DatabaseOptions {
        pool_size: 2,
        acquire_timeout: Duration::from_secs(1),
        ..DatabaseOptions::default()
    };
    let app = TestApp::on_with(&relayed, None, &options).await;
    let uri = property_uri(3, "existing", ALICE);
    app.get(&uri).by(Who::Alice).send().await.assert_status(200);

    relay.cut();
    let started = Instant::now();
    let response = app.get(&uri).by(Who::Alice).send().await;
    response.assert_error(503, "The database is unavailable. Try again later.");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no hang: {:?}",
        started.elapsed()
    );

    relay.restore().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = app.get(&uri).by(Who::Alice).send().await;
        if response.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not recovered: {}",
            response.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_waiting_bound_requests_are_refused_at_once() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let relay = Relay::to(upstream(&database.url)).await;
    let options = DatabaseOptions {
        pool_size: 2,
        max_waiting: 2,
        acquire_timeout: Duration::from_secs(2),
        ..DatabaseOptions::default()
    };
    let app = Arc::new(TestApp::on_with(&through(&database.url, &relay), None, &options).await);
    let uri = property_uri(3, "existing", ALICE);
    app.get(&uri).by(Who::Alice).send().await.assert_status(200);

    // A partition: the two connections hang on their statements, two requests wait for them.
    relay.hold(true);
    let stuck: Vec<_> = (0..4)
        .map(|_| {
            let (app, uri) = (app.clone(), uri.clone());
            tokio::spawn(async move { app.get(&uri).by(Who::Alice).send().await.status })
        })
        .collect();
    until_in_flight(&app.store, 4).await;
    assert_eq!(
        metric(&app, "jira_userprops_db_calls_in_flight ")
            .await
            .as_deref(),
        Some("jira_userprops_db_calls_in_flight 4")
    );
    for _ in 0..5 {
        let started = Instant::now();
        let response = app.get(&uri).by(Who::Alice).send().await;
        response.assert_error(
            503,
            "The database is busy: too many requests are waiting for it. Try again later.",
        );
        assert_eq!(response.header("retry-after"), Some("1"));
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "refused at once, not after waiting: {:?}",
            started.elapsed()
        );
    }
    relay.hold(false);
    for request in stuck {
        let status = request.await.expect("the request ends");
        assert!(matches!(status.as_u16(), 200 | 503), "{status}");
    }
    app.get(&uri).by(Who::Alice).send().await.assert_status(200);
}

/// Instances share no lock but PostgreSQL's row locks, and hold none across a request: while
/// one instance's every connection hangs mid-statement behind a partition, with requests
/// queued behind them, the other reads and writes the very same rows, each answered promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_stalled_mid_statement_does_not_hold_up_the_other() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let relay = Relay::to(upstream(&database.url)).await;
    let options = DatabaseOptions {
        pool_size: 2,
        acquire_timeout: Duration::from_secs(5),
        ..test_database_options()
    };
    let stalled = Arc::new(TestApp::on_with(&through(&database.url, &relay), None, &options).await);
    let store = Store::connect(&database.url, &options)
        .await
        .expect("the other instance connects");
    let other = TestApp::over(store, None);
    let uri = property_uri(3, "existing", ALICE);
    for app in [&*stalled, &other] {
        app.get(&uri).by(Who::Alice).send().await.assert_status(200);
    }

    relay.hold(true);
    let stuck: Vec<_> = (0..6)
        .map(|turn| {
            let (app, uri) = (stalled.clone(), uri.clone());
            tokio::spawn(async move {
                let request = if turn % 2 == 0 {
                    app.put(&uri).by(Who::Alice).json("\"stalled\"")
                } else {
                    app.get(&uri).by(Who::Alice)
                };
                request.send().await.status
            })
        })
        .collect();
    until_in_flight(&stalled.store, 6).await;
    assert!(
        stuck.iter().all(|request| !request.is_finished()),
        "the first instance's requests hang while the partition holds"
    );

    // The other instance writes and reads the same row, and others, as if nothing were wrong.
    let mut slowest = Duration::ZERO;
    for turn in 0..200 {
        let started = Instant::now();
        let value = format!("{turn}");
        other
            .put(&uri)
            .by(Who::Alice)
            .json(value)
            .send()
            .await
            .assert_status(200);
        let read = other.get(&uri).by(Who::Admin).send().await;
        read.assert_status(200);
        assert_eq!(read.json()["value"], turn);
        let elsewhere = other
            .put(property_uri(3, &format!("other.{}", turn % 10), BOB))
            .by(Who::Bob)
            .json("1")
            .send()
            .await;
        assert!(elsewhere.status.is_success(), "{}", elsewhere.text());
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(2),
        "the other instance waited on something: {slowest:?}"
    );
    assert!(
        stuck.iter().all(|request| !request.is_finished()),
        "the partition held throughout"
    );

    relay.hold(false);
    for request in stuck {
        let status = request.await.expect("the request ends");
        assert!(matches!(status.as_u16(), 200 | 201 | 503), "{status}");
    }
    stalled
        .get(&uri)
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);
}

#[tokio::test]
async fn sessions_are_named_jira_userprops_unless_the_url_names_them() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let sessions = |app: &TestApp, name: &'static str| {
        let app = app.get("/readyz");
        async move {
            app.send().await.assert_status(200);
            let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&database_url())
                .await
                .expect("connects");
            let count: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(name)
            .fetch_one(&mut connection)
            .await
            .expect("counted");
            count
        }
    };
    let named = TestApp::on(&database.url, None).await;
    assert!(sessions(&named, "jira-userprops").await > 0);
    let own = with_parameter(&database.url, "application_name=suite-7");
    let renamed = TestApp::on(&own, None).await;
    assert!(sessions(&renamed, "suite-7").await > 0);
}

fn database_url() -> String {
    std::env::var(POSTGRES_URL_VAR).expect("the PostgreSQL URL")
}

/// The pipeline test's own name for its sessions: other tests' servers share the database.
const PIPELINE_TEST_APP: &str = "suite-pipelines";

/// That test's pipeline sessions: (backend pid, encrypted, last statement).
async fn pipeline_sessions(url: &str) -> Vec<(i32, bool, String)> {
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connects");
    sqlx::query_as(
        "SELECT a.pid, s.ssl, a.query FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
         WHERE a.datname = current_database() AND a.application_name = $1",
    )
    .bind(format!("{PIPELINE_TEST_APP} (pipelined reads)"))
    .fetch_all(&mut connection)
    .await
    .expect("listed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_pipelined_over_tls_and_answered_by_the_pool_while_the_pipelines_are_cut() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let encrypted = with_parameter(
        &database.url,
        &format!("sslmode=require&application_name={PIPELINE_TEST_APP}"),
    );
    // Two, so that reads take turns between pipelines.
    let options = DatabaseOptions {
        pipelines: 2,
        ..test_database_options()
    };
    let app = TestApp::on_with(&encrypted, None, &options).await;
    // Both pipelines are made at start, before any read asks for one.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let made = pipeline_sessions(&database.url).await;
        if made.len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "not made at start: {made:?}");
    }
    let uri = property_uri(3, "piped", ALICE);
    app.put(&uri)
        .by(Who::Alice)
        .json("{\"n\":1}")
        .send()
        .await
        .assert_status(201);
    let read = || async {
        let response = app.get(&uri).by(Who::Alice).send().await;
        response.assert_status(200);
        assert_eq!(response.json()["value"], serde_json::json!({"n": 1}));
    };

    // Reads take turns between the two pipelines.
    let deadline = Instant::now() + Duration::from_secs(10);
    let sessions = loop {
        read().await;
        let sessions = pipeline_sessions(&database.url).await;
        if sessions.len() == 2
            && sessions
                .iter()
                .all(|(_, _, query)| query.contains("p.value"))
        {
            break sessions;
        }
        assert!(
            Instant::now() < deadline,
            "no pipelined reads: {sessions:?}"
        );
    };
    assert!(
        sessions.iter().all(|(_, ssl, _)| *ssl),
        "TLS as the URL asks: {sessions:?}"
    );

    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
        .await
        .expect("connects");
    for (pid, _, _) in &sessions {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&mut connection)
            .await
            .expect("terminated");
    }
    for _ in 0..50 {
        read().await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        read().await;
        let again = pipeline_sessions(&database.url).await;
        let fresh = again
            .iter()
            .filter(|(pid, _, _)| sessions.iter().all(|(old, _, _)| old != pid));
        if fresh
            .filter(|(_, _, query)| query.contains("p.value"))
            .count()
            == 2
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pipelines were not made again: {again:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_made_at_once_by_many_test_workers_are_all_made() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    // As many connections as workers, so that their serializable transactions really meet.
    let options = DatabaseOptions {
        pool_size: 24,
        ..test_database_options()
    };
    let app = TestApp::on_with(&database.url, None, &options).await;
    let made = (0..24).map(|n| {
        let app = &app;
        async move {
            let seed = format!(
                r#"{{"users": [{{"accountId": "worker-{n}", "email": "w{n}@example.com", "apiTokens": ["w{n}-token"]}}]}}"#
            );
            let created = app
                .admin(Method::POST, "/_admin/sites")
                .json(format!(r#"{{"name": "worker-{n}", "seed": {seed}}}"#))
                .send()
                .await;
            (created.status, created.text().to_owned())
        }
    });
    for (status, body) in futures_util::future::join_all(made).await {
        assert_eq!(status, 201, "{body}");
    }
    let sites = app.admin(Method::GET, "/_admin/sites").send().await;
    let listed = sites.json();
    let count = listed.as_array().map_or(0, Vec::len);
    assert_eq!(count, 25, "the default site and every worker's: {listed}");
}

/// A token made for a user whose deletion commits while the token's statement runs: the user
/// was found, then the row it refers to is gone. The answer is the missing user's 404, as a
/// moment later, not a database fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_a_user_deleted_meanwhile_is_a_404() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let app = TestApp::on(&database.url, None).await;
    let making = {
        let app = app.clone();
        async move {
            app.admin(Method::POST, format!("/_admin/users/{ALICE}/tokens"))
                .send()
                .await
        }
    };
    let made = deleted_under(
        &database.url,
        "FROM users WHERE account_id LIKE 'alice-%'",
        making,
    )
    .await;
    made.assert_status(404);
    assert!(made.text().contains(ALICE), "{}", made.text());
}

/// Text PostgreSQL cannot store (U+0000), should it reach the store past the parsers that
/// refuse it: the store names it the client's (`Unstorable`, answered 400), not a fault (500).
#[tokio::test]
async fn text_the_database_cannot_store_is_the_clients_fault() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let store = backend.app().await.store;
    let refused = store
        .user(jira_userprops::domain::SiteKey::DEFAULT, "a\u{0}b")
        .await
        .expect_err("refused");
    assert!(refused.is_unstorable(), "{refused:?}");
    let error = jira_userprops::error::Error::from(refused);
    assert_eq!(
        axum::response::IntoResponse::into_response(error).status(),
        400
    );
}

/// A write stuck behind another session's lock gives up at the lock timeout: it is answered
/// 503 at once, holds no connection, and is never applied once the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_behind_another_sessions_lock_gives_up_and_is_never_applied() {
    use sqlx::{Connection as _, Executor as _};
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let options = DatabaseOptions {
        lock_timeout: Duration::from_millis(300),
        ..test_database_options()
    };
    let app = TestApp::on_with(&database.url, None, &options).await;
    let uri = property_uri(3, "existing", ALICE);
    let before = app.get(&uri).by(Who::Alice).send().await;
    before.assert_status(200);

    let mut holder = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("a session of its own");
    holder.execute("BEGIN").await.expect("begun");
    holder
        .execute("LOCK TABLE properties IN EXCLUSIVE MODE")
        .await
        .expect("locked");
    let write = app
        .put(&uri)
        .by(Who::Alice)
        .json(r#""while locked""#)
        .send();
    let refused = tokio::time::timeout(Duration::from_secs(5), write)
        .await
        .expect("the write gives up at the lock timeout, not at the request timeout");
    refused.assert_status(503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    app.get(&uri).by(Who::Alice).send().await.assert_status(200);

    holder.execute("COMMIT").await.expect("lock released");
    // A statement still waiting would take the lock now and commit at once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = app.get(&uri).by(Who::Alice).send().await;
    assert_eq!(after.text(), before.text(), "the refused write was applied");
    app.put(&uri)
        .by(Who::Alice)
        .json(r#""after""#)
        .send()
        .await
        .assert_status(200);
}

/// Makes every write to `properties` in `database` fail with `sqlstate`, after the failing
/// session takes advisory lock 42 for as long as it lives (a session lock outlives the
/// rollback), so that a test can tell whether that session was closed.
async fn writes_fail_with(database_url: &str, sqlstate: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(database_url)
        .await
        .expect("a session of its own");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         PERFORM pg_advisory_lock(42); \
         RAISE EXCEPTION 'refused' USING ERRCODE = '{sqlstate}'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON properties \
         FOR EACH ROW EXECUTE FUNCTION refuse();"
    )))
    .execute(&mut admin)
    .await
    .expect("trigger made");
    admin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_on_postgresql_is_507_as_on_sqlite() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let app = TestApp::on(&database.url, None).await;
    let _admin = writes_fail_with(&database.url, "53100").await;
    app.put(property_uri(3, "existing", ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await
        .assert_error(
            507,
            "The disk holding the database is full: writes are refused until space is freed.",
        );
}

/// A failover that demotes the server leaves it answering pings: a connection refused a write
/// as read-only is closed, not kept for the next write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_refused_as_read_only_is_closed() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let app = TestApp::on(&database.url, None).await;
    let mut admin = writes_fail_with(&database.url, "25006").await;
    let refused = app
        .put(property_uri(3, "existing", ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await;
    refused.assert_status(503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(42)")
            .fetch_one(&mut admin)
            .await
            .expect("asked");
        if free {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session refused as read-only is still open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
