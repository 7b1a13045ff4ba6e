//! The ground giving way under the binary while it serves a load: PostgreSQL restarted (a
//! server of the test's own), connections cut, a partition, a slow network. Each run writes its
//! figures to `target/reliability/` for `docs/reliability.md`.
//!
//! Ignored in the parallel suite, since they time healing and measure memory: `.ci/run` runs
//! them alone (`cargo test --test api outages:: -- --ignored --test-threads=1`), in their short
//! form; `JIRA_USERPROPS_GROUND=long` gives ten restarts and 30 s of cuts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::binary::{BOB_ID, EXAMPLE_SEED, Server};
use crate::helpers::*;
use crate::relay::{Possible, Relay, through, upstream};

/// The server's bounds in these runs.
const POOL_SIZE: &str = "4";
const MAX_WAITING: &str = "16";
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Service is back this soon after the ground is.
const HEAL_BOUND: Duration = Duration::from_secs(2);
/// The server's resident memory stays under this, whatever the ground does.
const MEMORY_BOUND_KIB: u64 = 64 * 1024;

/// Writers each own their keys, so each key's answers come in order; readers read them all.
const WRITERS: usize = 8;
const KEYS_PER_WRITER: usize = 4;
const READERS: usize = 8;

fn long_run() -> bool {
    std::env::var("JIRA_USERPROPS_GROUND").is_ok_and(|run| run == "long")
}

/// A PostgreSQL server of the test's own, in a temporary folder, on a free port: restarting it
/// touches nobody else. As root, its commands run as the `postgres` user (initdb refuses root).
struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn start() -> Self {
        let bin = postgres_bin();
        let dir = tempfile::Builder::new()
            .prefix("jira-userprops-pg-")
            .tempdir()
            .expect("temp dir");
        if running_as_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path()));
        }
        let own = Self {
            port: free_port(),
            bin,
            dir,
        };
        run(own
            .command("initdb")
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(own.data()));
        own.start_again();
        own
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Starts the server and returns once it accepts connections.
    fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.dir.path().display()
        );
        run(self
            .command("pg_ctl")
            .args(["-w", "-t", "60", "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-o", &options, "-D"])
            .arg(self.data())
            .arg("start"));
    }

    /// Stops the server: `fast` ends every session first, `immediate` is a crash.
    fn stop(&self, mode: &str) {
        run(self
            .command("pg_ctl")
            .args(["-w", "-t", "60", "-m", mode, "-D"])
            .arg(self.data())
            .arg("stop"));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}

/// The newest PostgreSQL server programs on the machine.
fn postgres_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|versions| {
            versions
                .filter_map(|version| Some(version.ok()?.path().join("bin")))
                .filter(|bin| bin.join("pg_ctl").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|bin| {
        let version = bin.parent().and_then(Path::file_name);
        version.and_then(|v| v.to_str()?.parse::<u32>().ok())
    });
    found.pop().expect(
        "PostgreSQL's server programs (initdb, pg_ctl) are not under /usr/lib/postgresql/*/bin",
    )
}

fn running_as_root() -> bool {
    let id = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

fn run(command: &mut Command) {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// Starts the binary over `url` with this module's bounds and the example seed (Bob writes).
fn serve(url: &str) -> Server {
    let acquire = format!("{}ms", ACQUIRE_TIMEOUT.as_millis());
    let request = format!("{}ms", REQUEST_TIMEOUT.as_millis());
    Server::start(&[
        "--database-url",
        url,
        "--seed",
        EXAMPLE_SEED,
        "--db-pool-size",
        POOL_SIZE,
        "--db-max-waiting",
        MAX_WAITING,
        "--db-acquire-timeout",
        &acquire,
        "--request-timeout",
        &request,
    ])
}

/// One answer, as the load saw it.
struct Answer {
    status: u16,
    retry_after: bool,
    body: Bytes,
}

/// A keep-alive HTTP/1.1 connection to the server, made again after any failure.
struct Client {
    address: std::net::SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    fn to(address: std::net::SocketAddr) -> Self {
        Self {
            address,
            sender: None,
        }
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<String>) -> Option<Answer> {
        let answer =
            tokio::time::timeout(REQUEST_TIMEOUT * 4, self.try_send(method, path, body)).await;
        let answer = answer.ok().flatten();
        if answer.is_none() {
            self.sender = None;
        }
        answer
    }

    async fn try_send(&mut self, method: &str, path: &str, body: Option<String>) -> Option<Answer> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            let stream = TcpStream::connect(self.address).await.ok()?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .ok()?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut()?;
        sender.ready().await.ok()?;
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "t")
            .header("authorization", basic("bob@example.com", "bob-token"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").is_some();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some(Answer {
            status,
            retry_after,
            body,
        })
    }
}

fn property_path(key: &str) -> String {
    format!("/rest/api/3/user/properties/{key}?accountId={BOB_ID}")
}

/// What the load saw, summed over its tasks.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    not_found: AtomicU64,
    unavailable: AtomicU64,
    refused_at_once: AtomicU64,
    /// 507: the disk holding SQLite's file is full.
    full: AtomicU64,
    /// The longest a 503 took, in milliseconds.
    slowest_unavailable_ms: AtomicU64,
    acknowledged: AtomicU64,
    /// Answers outside the contract: another status, a hang, a 503 without `Retry-After`.
    faults: Mutex<Vec<String>>,
    /// Answers that fit no state the key could be in: a write applied twice, or one lost.
    misfits: Mutex<Vec<String>>,
}

impl Tally {
    fn note(&self, what: &str, took: Duration, answer: Option<&Answer>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let fault = match answer {
            None => Some(format!("{what}: no answer after {took:?}")),
            Some(answer) if took > REQUEST_TIMEOUT + Duration::from_secs(1) => {
                Some(format!("{what}: answered {} after {took:?}", answer.status))
            }
            Some(answer) => match answer.status {
                200 | 201 | 204 => {
                    self.ok.fetch_add(1, Ordering::Relaxed);
                    None
                }
                404 => {
                    self.not_found.fetch_add(1, Ordering::Relaxed);
                    None
                }
                503 if answer.retry_after => {
                    self.unavailable.fetch_add(1, Ordering::Relaxed);
                    let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
                    self.slowest_unavailable_ms.fetch_max(ms, Ordering::Relaxed);
                    if took < Duration::from_millis(100) {
                        self.refused_at_once.fetch_add(1, Ordering::Relaxed);
                    }
                    None
                }
                507 => {
                    self.full.fetch_add(1, Ordering::Relaxed);
                    None
                }
                status => Some(format!(
                    "{what}: answered {status}: {}",
                    String::from_utf8_lossy(&answer.body)
                )),
            },
        };
        if let Some(fault) = fault {
            self.faults.lock().expect("tally").push(fault);
        }
    }
}

/// Writers and readers running until stopped; each writer's keys with what they may hold.
struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    writers: Vec<tokio::task::JoinHandle<Vec<(String, Possible)>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(address: std::net::SocketAddr, readers: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let writers = (0..WRITERS)
            .map(|writer| {
                let (stop, tally) = (stop.clone(), tally.clone());
                tokio::spawn(write_until(address, writer, stop, tally))
            })
            .collect();
        let readers = (0..readers)
            .map(|reader| {
                let (stop, tally) = (stop.clone(), tally.clone());
                tokio::spawn(read_until(address, reader, stop, tally))
            })
            .collect();
        Self {
            stop,
            tally,
            writers,
            readers,
        }
    }

    /// Tells the load to stop after the requests it has in flight.
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops the load; returns every writer's keys.
    async fn finish(self) -> (Arc<Tally>, Vec<(String, Possible)>) {
        self.stop();
        for reader in self.readers {
            reader.await.expect("a reader ends");
        }
        let mut keys = Vec::new();
        for writer in self.writers {
            keys.extend(writer.await.expect("a writer ends"));
        }
        (self.tally, keys)
    }
}

async fn write_until(
    address: std::net::SocketAddr,
    writer: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<(String, Possible)> {
    let mut client = Client::to(address);
    let mut keys: Vec<(String, Possible)> = (0..KEYS_PER_WRITER)
        .map(|k| (format!("ground-{writer}-{k}"), Possible(vec![None])))
        .collect();
    let mut sequence = 0usize;
    while !stop.load(Ordering::Relaxed) {
        sequence += 1;
        let (key, possible) = &mut keys[sequence % KEYS_PER_WRITER];
        let path = property_path(key);
        // Deletes when the key is surely there, so both kinds of write meet the faults.
        let delete = possible.0.iter().all(Option::is_some) && sequence.is_multiple_of(3);
        let written = (!delete).then(|| format!("\"w{writer}-{sequence}\""));
        let started = Instant::now();
        let answer = match &written {
            None => client.send("DELETE", &path, None).await,
            Some(value) => client.send("PUT", &path, Some(value.clone())).await,
        };
        let what = format!("{} {key}", if delete { "DELETE" } else { "PUT" });
        tally.note(&what, started.elapsed(), answer.as_ref());
        let Some(answer) = answer else {
            // No answer: the write may or may not have been applied.
            if !possible.0.contains(&written) {
                possible.0.push(written);
            }
            continue;
        };
        if matches!(answer.status, 200 | 201 | 204 | 404) {
            tally.acknowledged.fetch_add(1, Ordering::Relaxed);
        }
        // The contract's other answers are the tally's faults; here only the key's states.
        let status = if matches!(answer.status, 200 | 201 | 204 | 404 | 503) {
            answer.status
        } else {
            503
        };
        if let Err(misfit) = possible.answer(status, written) {
            tally
                .misfits
                .lock()
                .expect("tally")
                .push(format!("{what}: {misfit}"));
        }
    }
    keys
}

async fn read_until(
    address: std::net::SocketAddr,
    reader: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut client = Client::to(address);
    let mut sequence = reader;
    while !stop.load(Ordering::Relaxed) {
        sequence += 1;
        let key = format!(
            "ground-{}-{}",
            sequence % WRITERS,
            sequence / WRITERS % KEYS_PER_WRITER
        );
        let started = Instant::now();
        let answer = client.send("GET", &property_path(&key), None).await;
        tally.note(&format!("GET {key}"), started.elapsed(), answer.as_ref());
    }
}

/// How long after `since` the server answers normally again: a property read, a property write
/// and `/readyz`.
async fn heal(address: std::net::SocketAddr, since: Instant) -> Duration {
    let mut client = Client::to(address);
    loop {
        let read = client.send("GET", &property_path("ground-0-0"), None).await;
        let probe = Some("\"healed\"".to_owned());
        let write = client
            .send("PUT", &property_path("ground-heal"), probe)
            .await;
        let ready = client.send("GET", "/readyz", None).await;
        let normal = read.is_some_and(|a| matches!(a.status, 200 | 404))
            && write.is_some_and(|a| matches!(a.status, 200 | 201))
            && ready.is_some_and(|a| a.status == 200);
        if normal {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "the server did not heal within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `/readyz` while the ground is away: not ready.
async fn assert_not_ready(address: std::net::SocketAddr) {
    let answer = Client::to(address).send("GET", "/readyz", None).await;
    let status = answer.map(|a| a.status);
    assert_eq!(status, Some(503), "/readyz while the database is away");
}

/// Each key as the server now shows it, held to what it may hold; the keys that fit nothing.
async fn lost_keys(address: std::net::SocketAddr, keys: &[(String, Possible)]) -> Vec<String> {
    let mut client = Client::to(address);
    let mut lost = Vec::new();
    for (key, possible) in keys {
        let answer = client
            .send("GET", &property_path(key), None)
            .await
            .expect("a read after the heal");
        let stored = match answer.status {
            200 => {
                let property: serde_json::Value =
                    serde_json::from_slice(&answer.body).expect("a property");
                Some(property["value"].to_string())
            }
            404 => None,
            status => panic!("GET {key} after the heal answered {status}"),
        };
        if !possible.0.contains(&stored) {
            lost.push(format!("{key}: {stored:?}, not one of {:?}", possible.0));
        }
    }
    lost
}

/// The server's peak resident memory so far (`VmHWM`), in KiB.
fn peak_memory_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .expect("the server's /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// One fault's row in `docs/reliability.md`.
struct Figures<'a> {
    fault: &'a str,
    tally: &'a Tally,
    lost: usize,
    heals: Vec<Duration>,
    peak_kib: u64,
}

impl Figures<'_> {
    /// Writes the row to `target/reliability/`, and the table of every row there beside it.
    fn write(&self) {
        let count = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let t = self.tally;
        let mut heals = self.heals.clone();
        heals.sort();
        let p50 = heals.get(heals.len() / 2).copied().unwrap_or_default();
        let max = heals.last().copied().unwrap_or_default();
        let other = t.faults.lock().expect("tally").len();
        let row = format!(
            "| {} | {} | {} | {} | {} ({} at once) / {} | {} | {} | {} | {} | {} ms | {} ms | {:.1} MiB |",
            self.fault,
            count(&t.sent),
            count(&t.ok),
            count(&t.not_found),
            count(&t.unavailable),
            count(&t.refused_at_once),
            count(&t.full),
            other,
            count(&t.acknowledged),
            self.lost,
            t.misfits.lock().expect("tally").len(),
            p50.as_millis(),
            max.as_millis(),
            self.peak_kib as f64 / 1024.0,
        );
        println!("{row}");
        let folder = target_dir().join("reliability");
        std::fs::create_dir_all(&folder).expect("target/reliability");
        let name: String = self
            .fault
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        std::fs::write(folder.join(format!("{name}.row")), format!("{row}\n")).expect("row");
        let mut rows: Vec<String> = std::fs::read_dir(&folder)
            .expect("rows")
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                (path.extension()? == "row").then(|| std::fs::read_to_string(path).ok())?
            })
            .collect();
        rows.sort();
        let table = format!(
            "| fault | requests | 2xx | 404 | 503 / 507 | other | writes acknowledged | lost | applied twice | heal p50 | heal max | peak RSS |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|\n{}",
            rows.concat()
        );
        std::fs::write(folder.join("table.md"), table).expect("table");
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    )
}

/// Records the run, then holds it to every promise.
fn record_and_check(figures: &Figures<'_>) {
    figures.write();
    let tally = figures.tally;
    let faults = tally.faults.lock().expect("tally");
    assert!(
        faults.is_empty(),
        "{} faults: {:?}",
        faults.len(),
        &faults[..faults.len().min(10)]
    );
    let misfits = tally.misfits.lock().expect("tally");
    assert!(misfits.is_empty(), "answers that fit no state: {misfits:?}");
    assert_eq!(figures.lost, 0, "acknowledged writes lost");
    for heal in &figures.heals {
        assert!(
            *heal <= HEAL_BOUND,
            "healed after {heal:?}, past {HEAL_BOUND:?}"
        );
    }
    assert!(
        figures.peak_kib < MEMORY_BOUND_KIB,
        "peak memory {} KiB",
        figures.peak_kib
    );
    assert!(
        tally.acknowledged.load(Ordering::Relaxed) >= 50,
        "too little load to prove anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts a PostgreSQL of its own and times healing: run alone (.ci/run)"]
async fn postgres_restarts_under_load_lose_nothing_and_heal_within_2_s() {
    let postgres = tokio::task::spawn_blocking(OwnPostgres::start)
        .await
        .expect("PostgreSQL of the test's own");
    let postgres = Arc::new(postgres);
    let mut server = serve(&postgres.url());
    let address = server.address();
    let load = Load::start(address, READERS);
    let restarts = if long_run() { 10 } else { 2 };
    let mut heals = Vec::new();
    for restart in 0..restarts {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mode = if restart % 2 == 0 {
            "fast"
        } else {
            "immediate"
        };
        let own = postgres.clone();
        tokio::task::spawn_blocking(move || own.stop(mode))
            .await
            .expect("stopped");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_not_ready(address).await;
        let own = postgres.clone();
        tokio::task::spawn_blocking(move || own.start_again())
            .await
            .expect("started");
        heals.push(heal(address, Instant::now()).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (tally, keys) = load.finish().await;
    let lost = lost_keys(address, &keys).await;

    // A restart while nothing is asked: the pool's connections sat idle across it, and the
    // first request after it is served, not answered 503 by a connection that died unseen.
    let own = postgres.clone();
    tokio::task::spawn_blocking(move || {
        own.stop("fast");
        own.start_again();
    })
    .await
    .expect("restarted");
    let mut client = Client::to(address);
    for path in [property_path("ground-0-0"), "/readyz".to_owned()] {
        let answer = client.send("GET", &path, None).await.expect("an answer");
        assert!(
            matches!(answer.status, 200 | 404),
            "GET {path} after a quiet restart: {}",
            answer.status
        );
    }

    let fault = format!("PostgreSQL restarted ×{restarts} (fast, immediate)");
    record_and_check(&Figures {
        fault: &fault,
        tally: &tally,
        lost: lost.len(),
        heals,
        peak_kib: peak_memory_kib(&server),
    });
    assert!(lost.is_empty(), "{lost:?}");
    assert!(
        tally.unavailable.load(Ordering::Relaxed) > 0,
        "the restarts were felt"
    );
    assert_eq!(tally.full.load(Ordering::Relaxed), 0, "507 over PostgreSQL");
    // A request may wait for a connection twice: for its caller's credentials, then for the value.
    let slowest = Duration::from_millis(tally.slowest_unavailable_ms.load(Ordering::Relaxed));
    assert!(
        slowest <= ACQUIRE_TIMEOUT * 2 + Duration::from_millis(500),
        "a 503 took {slowest:?}, past twice the acquire timeout"
    );
}

/// The binary over a fresh database of the shared PostgreSQL, through a relay.
async fn relayed() -> (Relay, Server, TestDatabase) {
    let backend = Backend::postgres().expect("these tests need PostgreSQL: set its URL");
    let database = backend.database().await;
    let relay = Relay::to(upstream(&database.url)).await;
    let server = serve(&through(&database.url, &relay));
    (relay, server, database)
}

/// Runs the load while `fault` plays on the relay; then heals, records and checks the run.
async fn under_fault<F, Fut>(name: &str, extra_readers: usize, fault: F) -> Arc<Tally>
where
    F: FnOnce(Arc<Relay>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (relay, server, _database) = relayed().await;
    let relay = Arc::new(relay);
    let tally = under(name, server, extra_readers, fault(relay)).await;
    let full = tally.full.load(Ordering::Relaxed);
    assert_eq!(full, 0, "507 answered over PostgreSQL");
    tally
}

/// Runs the load on `server` while `fault` plays; then heals, records and checks the run.
async fn under(
    name: &str,
    mut server: Server,
    extra_readers: usize,
    fault: impl Future<Output = ()>,
) -> Arc<Tally> {
    let address = server.address();
    let load = Load::start(address, READERS);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flood = (extra_readers > 0).then(|| Load::start(address, extra_readers));
    fault.await;
    let restored = Instant::now();
    if let Some(flood) = &flood {
        flood.stop();
    }
    let healed = heal(address, restored).await;
    if let Some(flood) = flood {
        let (flood_tally, _) = flood.finish().await;
        let faults = flood_tally.faults.lock().expect("tally");
        assert!(
            faults.is_empty(),
            "the flood's faults: {:?}",
            &faults[..faults.len().min(10)]
        );
        let at_once = flood_tally.refused_at_once.load(Ordering::Relaxed);
        assert!(
            at_once > 0,
            "past the waiting bound, requests are refused at once"
        );
        merge(&load.tally, &flood_tally);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (tally, keys) = load.finish().await;
    let lost = lost_keys(address, &keys).await;
    record_and_check(&Figures {
        fault: name,
        tally: &tally,
        lost: lost.len(),
        heals: vec![healed],
        peak_kib: peak_memory_kib(&server),
    });
    assert!(lost.is_empty(), "{lost:?}");
    tally
}

/// Adds the flood's counts to the load's, for one row.
fn merge(into: &Tally, from: &Tally) {
    for (to, add) in [
        (&into.sent, &from.sent),
        (&into.ok, &from.ok),
        (&into.not_found, &from.not_found),
        (&into.unavailable, &from.unavailable),
        (&into.refused_at_once, &from.refused_at_once),
        (&into.full, &from.full),
    ] {
        to.fetch_add(add.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "times healing and measures memory under faults: run alone (.ci/run)"]
async fn connections_cut_every_100_ms_lose_nothing_and_apply_nothing_twice() {
    let seconds = if long_run() { 30 } else { 5 };
    let name = format!("connections cut every 100 ms for {seconds} s");
    let tally = under_fault(&name, 0, |relay| async move {
        let until = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            relay.drop_connections();
        }
    })
    .await;
    assert!(
        tally.unavailable.load(Ordering::Relaxed) > 0,
        "the cuts were felt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "times healing and measures memory under faults: run alone (.ci/run)"]
async fn a_10_s_partition_bounds_the_queue_and_heals_within_2_s() {
    // 48 more readers than the pool and its waiting bound hold: they must be refused at once.
    let tally = under_fault("partition for 10 s", 48, |relay| async move {
        relay.hold(true);
        tokio::time::sleep(Duration::from_secs(10)).await;
        relay.hold(false);
    })
    .await;
    assert!(tally.unavailable.load(Ordering::Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "times healing and measures memory under faults: run alone (.ci/run)"]
async fn a_slow_database_answers_within_the_bounds_and_heals_within_2_s() {
    let seconds = if long_run() { 30 } else { 10 };
    let name = format!("200 ms added each way for {seconds} s");
    let tally = under_fault(&name, 0, |relay| async move {
        relay.slow_by(Duration::from_millis(200));
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        relay.slow_by(Duration::ZERO);
    })
    .await;
    assert!(tally.ok.load(Ordering::Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "times healing and measures memory under faults: run alone (.ci/run)"]
async fn an_sqlite_file_locked_for_5_s_loses_nothing_and_heals_within_2_s() {
    use sqlx::Connection as _;
    let folder = tempfile::tempdir().expect("a folder");
    let url = format!("sqlite:{}", folder.path().join("locked.db").display());
    let server = serve(&url);
    let tally = under(
        "SQLite file locked by another process for 5 s",
        server,
        0,
        async {
            let mut other = sqlx::SqliteConnection::connect(&url).await.expect("opens");
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut other)
                .await
                .expect("locked");
            tokio::time::sleep(Duration::from_secs(5)).await;
            sqlx::query("ROLLBACK")
                .execute(&mut other)
                .await
                .expect("unlocked");
        },
    )
    .await;
    assert!(
        tally.unavailable.load(Ordering::Relaxed) > 0,
        "the lock was felt"
    );
    assert_eq!(tally.full.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "times healing and measures memory under faults: run alone (.ci/run)"]
async fn a_full_disk_under_sqlite_loses_nothing_and_heals_within_2_s_of_space_freed() {
    assert!(
        running_as_root(),
        "a full disk needs root, to mount a small tmpfs"
    );
    let folder = tempfile::tempdir().expect("a folder");
    let mount = folder.path().to_owned();
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mount));
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let url = format!("sqlite:{}", mount.join("full.db").display());
    let mut server = serve(&url);
    let address = server.address();
    let filler = mount.join("filler");
    // The load's small writes may fit in space SQLite already holds (its WAL is reused after
    // each checkpoint), so large new values are written until the disk refuses one.
    let refused_large = AtomicU64::new(0);
    let tally = under("SQLite's disk full for 5 s", server, 0, async {
        // Whatever the database does not hold yet, the filler takes; removing it frees the space.
        let fill = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", filler.display()))
            .output()
            .expect("dd runs");
        assert!(!fill.status.success(), "dd stops at a full disk");
        let mut client = Client::to(address);
        let large = format!("\"{}\"", "v".repeat(30_000));
        for n in 0..400 {
            let path = property_path(&format!("ground-large-{n}"));
            let answer = client.send("PUT", &path, Some(large.clone())).await;
            if answer.is_some_and(|a| a.status == 507) {
                refused_large.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        std::fs::remove_file(&filler).expect("the filler goes");
    })
    .await;
    assert!(
        tally.full.load(Ordering::Relaxed) + refused_large.load(Ordering::Relaxed) > 0,
        "the full disk was felt"
    );
}
