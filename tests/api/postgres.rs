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
/// restored on the same port, to play a database outage.
struct Relay {
    port: u16,
    upstream: String,
    tasks: Arc<std::sync::Mutex<Vec<AbortHandle>>>,
}

impl Relay {
    async fn to(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay binds");
        let port = listener.local_addr().expect("relay address").port();
        let relay = Self {
            port,
            upstream,
            tasks: Arc::new(std::sync::Mutex::new(Vec::new())),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, tasks) = (self.upstream.clone(), self.tasks.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().expect("tasks").push(link.abort_handle());
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
