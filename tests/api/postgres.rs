//! PostgreSQL's own concerns: TLS from the URL, and riding out a database outage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jira_userprops::store::{DatabaseOptions, Store};
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
/// restored on the same port, to play a database outage; or can drop the connections it holds
/// and go on accepting, as a pooler or a failover does.
struct Relay {
    port: u16,
    upstream: String,
    tasks: Arc<std::sync::Mutex<Vec<AbortHandle>>>,
    links: Arc<std::sync::Mutex<Vec<AbortHandle>>>,
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
        };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, links) = (self.upstream.clone(), self.links.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
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
