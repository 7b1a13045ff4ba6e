//! PostgreSQL's own concerns: TLS from the URL, and riding out a database outage.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jira_userprops::http::Settings;
use jira_userprops::store::{DatabaseOptions, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::helpers::*;

fn with_parameter(url: &str, parameter: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{parameter}")
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

/// A TCP relay to PostgreSQL that can be cut (every connection dropped, the port closed) and
/// restored on the same port, to play a database outage; drop the connections it holds and go
/// on accepting, as a pooler or a failover does; hold every byte silently, as a partition does;
/// or delay each one, as a slow network does.
struct Relay {
    port: u16,
    upstream: String,
    tasks: Arc<std::sync::Mutex<Vec<AbortHandle>>>,
    links: Arc<std::sync::Mutex<Vec<AbortHandle>>>,
    ground: Arc<Ground>,
}

/// How the relay passes bytes on.
#[derive(Default)]
struct Ground {
    /// A partition: nothing passes, and nothing says so.
    held: AtomicBool,
    /// Milliseconds added before each chunk passes.
    delay_ms: AtomicU64,
}

/// Copies one direction of a connection, as the ground allows. Each chunk is due its delay
/// after it arrived, and chunks travel together, as on a slow link: a delay is not paid once
/// per chunk in turn.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    ground: Arc<Ground>,
) {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer_ground = ground.clone();
    let reading = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => {
                    let delay = Duration::from_millis(ground.delay_ms.load(Ordering::Relaxed));
                    if sender
                        .send((Instant::now() + delay, buffer[..read].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    let writing = async move {
        while let Some((due, chunk)) = receiver.recv().await {
            tokio::time::sleep_until(due.into()).await;
            while writer_ground.held.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(reading, writing);
}

impl Relay {
    async fn to(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay binds");
        let port = listener.local_addr().expect("relay address").port();
        let relay = Self {
            port,
            upstream,
            tasks: Arc::new(std::sync::Mutex::new(Vec::new())),
            links: Arc::new(std::sync::Mutex::new(Vec::new())),
            ground: Arc::new(Ground::default()),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, links) = (self.upstream.clone(), self.links.clone());
        let ground = self.ground.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, ground) = (upstream.clone(), ground.clone());
                let link = tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::select! {
                            () = pump(client_read, server_write, ground.clone()) => {}
                            () = pump(server_read, client_write, ground) => {}
                        }
                    }
                });
                links.lock().expect("links").push(link.abort_handle());
            }
        });
        self.tasks
            .lock()
            .expect("tasks")
            .push(accepting.abort_handle());
    }

    fn cut(&self) {
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
        }
        self.drop_connections();
    }

    /// Holds (`true`) or lets through (`false`) every byte, on every connection.
    fn hold(&self, held: bool) {
        self.ground.held.store(held, Ordering::Relaxed);
    }

    /// Adds `delay` before each chunk passes.
    fn slow_by(&self, delay: Duration) {
        let delay = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.ground.delay_ms.store(delay, Ordering::Relaxed);
    }

    /// Drops every connection held, mid-statement or not; new ones are still accepted.
    fn drop_connections(&self) {
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    async fn restore(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(e) => assert!(Instant::now() < deadline, "relay cannot rebind: {e}"),
            }
            tokio::task::yield_now().await;
        };
        self.serve(listener);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_gives_503_and_the_server_recovers_by_itself() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let (scheme_and_credentials, rest) = database.url.split_once('@').expect("URL names a host");
    let (host, path) = rest.split_once('/').expect("URL names a database");
    let relay = Relay::to(host.to_owned()).await;
    let relayed = format!("{scheme_and_credentials}@127.0.0.1:{}/{path}", relay.port);
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

/// What the database may hold for one key, given the answers so far: one state after an
/// acknowledged write, more after writes that failed and may or may not have been applied.
#[derive(Debug, Clone, PartialEq)]
struct Possible(Vec<Option<String>>);

impl Possible {
    fn may_be_absent(&self) -> bool {
        self.0.contains(&None)
    }

    fn may_be_present(&self) -> bool {
        self.0.iter().any(Option::is_some)
    }

    /// Notes the answer to a PUT of `value` (`Some`) or a DELETE (`None`), and says whether it
    /// fits a state the key may have been in.
    fn answer(&mut self, status: u16, written: Option<String>) -> Result<(), String> {
        let fits = match (status, &written) {
            (201, Some(_)) | (404, None) => self.may_be_absent(),
            (200, Some(_)) | (204, None) => self.may_be_present(),
            (503, _) => {
                if !self.0.contains(&written) {
                    self.0.push(written);
                }
                return Ok(());
            }
            _ => return Err(format!("answered {status}")),
        };
        if !fits {
            return Err(format!(
                "answered {status} while the key could be only {:?}",
                self.0
            ));
        }
        self.0 = vec![written];
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_every_100_ms_lose_no_acknowledged_write_and_apply_none_twice() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let seconds: u64 = std::env::var("JIRA_USERPROPS_CUT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let database = backend.database().await;
    let (scheme_and_credentials, rest) = database.url.split_once('@').expect("URL names a host");
    let (host, path) = rest.split_once('/').expect("URL names a database");
    let relay = Arc::new(Relay::to(host.to_owned()).await);
    let relayed = format!("{scheme_and_credentials}@127.0.0.1:{}/{path}", relay.port);
    let options = DatabaseOptions {
        pool_size: 4,
        acquire_timeout: Duration::from_secs(2),
        ..DatabaseOptions::default()
    };
    let app = Arc::new(TestApp::on_with(&relayed, None, &options).await);
    let until = Instant::now() + Duration::from_secs(seconds);
    let cutter = {
        let relay = relay.clone();
        tokio::spawn(async move {
            let mut cuts = 0u32;
            while Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(100)).await;
                relay.drop_connections();
                cuts += 1;
            }
            cuts
        })
    };
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let app = app.clone();
            tokio::spawn(async move {
                let keys: Vec<String> = (0..4).map(|k| format!("cut-{worker}-{k}")).collect();
                let mut possible = vec![Possible(vec![None]); keys.len()];
                let (mut sent, mut acknowledged) = (0u32, 0u32);
                while Instant::now() < until {
                    let index = (sent as usize) % keys.len();
                    let key = &keys[index];
                    let uri = property_uri(3, key, ALICE);
                    let delete = possible[index].0.iter().all(Option::is_some);
                    let (status, written) = if delete {
                        let response = app.delete(&uri).by(Who::Alice).send().await;
                        (response.status.as_u16(), None)
                    } else {
                        let value = format!("{sent}");
                        let response = app
                            .put(&uri)
                            .by(Who::Alice)
                            .json(value.clone())
                            .send()
                            .await;
                        (response.status.as_u16(), Some(value))
                    };
                    sent += 1;
                    if status != 503 {
                        acknowledged += 1;
                    }
                    if let Err(fault) = possible[index].answer(status, written) {
                        panic!("{key}: {fault}");
                    }
                }
                (keys, possible, sent, acknowledged)
            })
        })
        .collect();
    let mut results = Vec::new();
    for worker in workers {
        results.push(worker.await.expect("the worker finishes"));
    }
    let cuts = cutter.await.expect("the cutter finishes");
    let (mut sent, mut acknowledged) = (0, 0);
    for (keys, possible, worker_sent, worker_acknowledged) in results {
        sent += worker_sent;
        acknowledged += worker_acknowledged;
        for (key, possible) in keys.iter().zip(possible) {
            let stored = app.stored(ALICE, key).await;
            assert!(
                possible.0.contains(&stored),
                "{key}: {stored:?} not in {possible:?}"
            );
        }
    }
    println!("{cuts} cuts, {sent} writes sent, {acknowledged} answered 2xx or 404");
    assert!(cuts >= 10 * seconds as u32 / 2, "{cuts} cuts");
    assert!(acknowledged > 0, "some writes got through between cuts");
}

/// A relay to a fresh PostgreSQL database, and an app that reaches it through the relay.
async fn relayed_app(
    options: &DatabaseOptions,
    settings: Option<Settings>,
) -> Option<(Arc<Relay>, TestApp, TestDatabase)> {
    let backend = Backend::postgres()?;
    let database = backend.database().await;
    let (scheme_and_credentials, rest) = database.url.split_once('@').expect("URL names a host");
    let (host, path) = rest.split_once('/').expect("URL names a database");
    let relay = Arc::new(Relay::to(host.to_owned()).await);
    let relayed = format!("{scheme_and_credentials}@127.0.0.1:{}/{path}", relay.port);
    let app = TestApp::on_with(&relayed, None, options).await;
    let app = match settings {
        Some(settings) => TestApp::with_settings(app.store.clone(), settings),
        None => app,
    };
    Some((relay, app, database))
}

/// Sends `count` GETs and PUTs at once; each must end, with 200 or 201 or 503, within `bound`.
async fn burst(app: &Arc<TestApp>, count: usize, bound: Duration) -> (usize, usize) {
    let started = Instant::now();
    let requests: Vec<_> = (0..count)
        .map(|index| {
            let app = app.clone();
            tokio::spawn(async move {
                let response = if index % 2 == 0 {
                    app.get(property_uri(3, "existing", ALICE))
                        .by(Who::Alice)
                        .send()
                        .await
                } else {
                    let uri = property_uri(3, &format!("burst-{index}"), ALICE);
                    app.put(uri).by(Who::Alice).json("1").send().await
                };
                (
                    response.status.as_u16(),
                    started.elapsed(),
                    response.text().to_owned(),
                )
            })
        })
        .collect();
    let (mut served, mut refused) = (0, 0);
    for request in requests {
        let (status, took, text) = request.await.expect("the request ends");
        assert!(took < bound, "a request took {took:?}, past {bound:?}");
        match status {
            200 | 201 => served += 1,
            503 => refused += 1,
            other => panic!("answered {other}: {text}"),
        }
    }
    (served, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_ends_requests_with_503_at_the_bounds_and_heals_within_2_s() {
    let options = DatabaseOptions {
        pool_size: 2,
        acquire_timeout: Duration::from_secs(1),
        ..DatabaseOptions::default()
    };
    let settings = Settings {
        request_timeout: Duration::from_secs(2),
        ..TestApp::settings(None)
    };
    let Some((relay, app, _database)) = relayed_app(&options, Some(settings)).await else {
        return;
    };
    let app = Arc::new(app);
    let (served, _) = burst(&app, 8, Duration::from_secs(3)).await;
    assert_eq!(served, 8, "all served before the partition");

    relay.hold(true);
    let (served, refused) = burst(&app, 16, Duration::from_secs(4)).await;
    assert_eq!(
        (served, refused),
        (0, 16),
        "nothing gets through a partition, and nothing hangs"
    );
    relay.hold(false);

    let healed = Instant::now();
    loop {
        let response = app
            .get(property_uri(3, "existing", ALICE))
            .by(Who::Alice)
            .send()
            .await;
        if response.status == 200 {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(2),
            "not healed: {}",
            response.text()
        );
    }
    let (served, _) = burst(&app, 8, Duration::from_secs(3)).await;
    assert_eq!(served, 8, "all served after the heal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_database_answers_or_refuses_within_the_bounds() {
    let options = DatabaseOptions {
        pool_size: 2,
        acquire_timeout: Duration::from_secs(1),
        ..DatabaseOptions::default()
    };
    let settings = Settings {
        request_timeout: Duration::from_secs(10),
        ..TestApp::settings(None)
    };
    let Some((relay, app, _database)) = relayed_app(&options, Some(settings)).await else {
        return;
    };
    let app = Arc::new(app);
    relay.slow_by(Duration::from_millis(200));
    for _ in 0..3 {
        let started = Instant::now();
        let one = app
            .get(property_uri(3, "existing", ALICE))
            .by(Who::Alice)
            .send()
            .await;
        eprintln!(
            "DEBUG {} {:?} {}",
            one.status,
            started.elapsed(),
            one.text()
        );
    }
    let (served, refused) = burst(&app, 20, Duration::from_secs(5)).await;
    assert!(
        served > 0,
        "a slow database still answers ({refused} refused)"
    );
    relay.slow_by(Duration::ZERO);
    let (served, _) = burst(&app, 8, Duration::from_secs(3)).await;
    assert_eq!(served, 8, "normal again");
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
