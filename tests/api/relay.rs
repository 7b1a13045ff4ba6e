//! A TCP relay to PostgreSQL that plays the ground giving way, and what a key may hold after
//! answers that may or may not have been applied.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A TCP relay to PostgreSQL that can be cut (every connection dropped, the port closed) and
/// restored on the same port, to play a database outage; drop the connections it holds and go
/// on accepting, as a pooler or a failover does; hold every byte silently, as a partition does;
/// or delay each one, as a slow network does.
pub struct Relay {
    pub port: u16,
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
    pub async fn to(upstream: String) -> Self {
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

    pub fn cut(&self) {
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
        }
        self.drop_connections();
    }

    /// Holds (`true`) or lets through (`false`) every byte, on every connection.
    pub fn hold(&self, held: bool) {
        self.ground.held.store(held, Ordering::Relaxed);
    }

    /// Adds `delay` before each chunk passes.
    pub fn slow_by(&self, delay: Duration) {
        let delay = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.ground.delay_ms.store(delay, Ordering::Relaxed);
    }

    /// Drops every connection held, mid-statement or not; new ones are still accepted.
    pub fn drop_connections(&self) {
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    pub async fn restore(&self) {
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

/// What the database may hold for one key, given the answers so far: one state after an
/// acknowledged write, more after writes that failed and may or may not have been applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Possible(pub Vec<Option<String>>);

impl Possible {
    pub fn may_be_absent(&self) -> bool {
        self.0.contains(&None)
    }

    pub fn may_be_present(&self) -> bool {
        self.0.iter().any(Option::is_some)
    }

    /// Notes the answer to a PUT of `value` (`Some`) or a DELETE (`None`), and says whether it
    /// fits a state the key may have been in.
    pub fn answer(&mut self, status: u16, written: Option<String>) -> Result<(), String> {
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

/// `url` with its host and port replaced by the relay's.
pub fn through(url: &str, relay: &Relay) -> String {
    let (scheme_and_credentials, rest) = url.split_once('@').expect("URL names a host");
    let (_, path) = rest.split_once('/').expect("URL names a database");
    format!("{scheme_and_credentials}@127.0.0.1:{}/{path}", relay.port)
}

/// The `host:port` that `url` names.
pub fn upstream(url: &str) -> String {
    let (_, rest) = url.split_once('@').expect("URL names a host");
    let (host, _) = rest.split_once('/').expect("URL names a database");
    host.to_owned()
}
