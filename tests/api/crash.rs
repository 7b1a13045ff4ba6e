//! Crashes and shutdowns under concurrent load: every acknowledged write outlives the process.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::binary::{BOB_ID, EXAMPLE_SEED, Server};
use crate::helpers::*;

/// Writers at once; each owns its keys, so the order of one key's writes is known.
const WRITERS: usize = 8;
const KEYS_PER_WRITER: usize = 6;

/// A key's state as the store must show it: a value's JSON text, or absent.
type State = Option<String>;

/// What the writers know of each key: its last acknowledged state, and the state an
/// unanswered write would leave, if one was cut off.
#[derive(Default)]
struct Ledger {
    acknowledged: HashMap<String, State>,
    unanswered: HashMap<String, State>,
    acknowledgements: u64,
}

/// A small deterministic generator, seeded per run and printed on failure.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |since| since.as_nanos() as u64);
    nanos | 1
}

fn request(method: &str, key: &str, body: Option<&str>) -> String {
    let authorization = basic("bob@example.com", "bob-token");
    let mut request = format!(
        "{method} /rest/api/3/user/properties/{key}?accountId={BOB_ID} HTTP/1.1\r\nHost: t\r\n\
         Authorization: {authorization}\r\nConnection: close\r\n"
    );
    match body {
        Some(body) => request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => request.push_str("\r\n"),
    }
    request
}

/// One exchange; `None` when the connection fails or the answer is cut short.
fn try_exchange(address: SocketAddr, request: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((status, body.to_owned()))
}

/// Runs `WRITERS` threads of PUTs and DELETEs until one fails to get an answer or `stop` is set.
/// Any answer but the expected ones fails the test.
fn load(
    address: SocketAddr,
    ledger: &Arc<Mutex<Ledger>>,
    stop: &Arc<AtomicBool>,
    round: u64,
    seed: u64,
) {
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (ledger, stop) = (Arc::clone(ledger), Arc::clone(stop));
            thread::spawn(move || {
                let mut dice = Dice(seed.wrapping_add(writer as u64 * 7919) | 1);
                let mut sequence = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("w{writer}.k{}", dice.roll(KEYS_PER_WRITER as u64));
                    sequence += 1;
                    let (method, body) = if dice.roll(4) == 0 {
                        ("DELETE", None)
                    } else {
                        (
                            "PUT",
                            Some(format!(r#"{{"r":{round},"w":{writer},"n":{sequence}}}"#)),
                        )
                    };
                    let after = body.clone();
                    ledger
                        .lock()
                        .expect("ledger")
                        .unanswered
                        .insert(key.clone(), after.clone());
                    let Some((status, text)) =
                        try_exchange(address, &request(method, &key, body.as_deref()))
                    else {
                        // Cut off: the write may or may not have happened. Leave it pending.
                        return;
                    };
                    let mut ledger = ledger.lock().expect("ledger");
                    ledger.unanswered.remove(&key);
                    match (method, status) {
                        ("PUT", 200 | 201) | ("DELETE", 204) => {
                            ledger.acknowledged.insert(key, after);
                            ledger.acknowledgements += 1;
                        }
                        // Deleting an absent key: absent it is.
                        ("DELETE", 404) => {
                            ledger.acknowledged.insert(key, None);
                        }
                        _ => panic!("{method} {key} answered {status}: {text} (seed {seed})"),
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer thread");
    }
}

/// Reads every key back and holds it to the ledger: the acknowledged state, or the state of a
/// write that was cut off. Then the ledger learns what is there.
fn check(address: SocketAddr, ledger: &Mutex<Ledger>, seed: u64) {
    let mut ledger = ledger.lock().expect("ledger");
    for writer in 0..WRITERS {
        for k in 0..KEYS_PER_WRITER {
            let key = format!("w{writer}.k{k}");
            let (status, body) = try_exchange(address, &request("GET", &key, None))
                .unwrap_or_else(|| panic!("GET {key} after restart got no answer"));
            let found = match status {
                200 => {
                    let prefix = format!(r#"{{"key":"{key}","value":"#);
                    let value = body
                        .strip_prefix(&prefix)
                        .and_then(|rest| rest.strip_suffix('}'))
                        .unwrap_or_else(|| panic!("GET {key}: {body}"));
                    Some(value.to_owned())
                }
                404 => None,
                _ => panic!("GET {key} answered {status}: {body}"),
            };
            let acknowledged = ledger.acknowledged.get(&key).cloned().unwrap_or(None);
            let unanswered = ledger.unanswered.remove(&key);
            assert!(
                found == acknowledged || unanswered.as_ref() == Some(&found),
                "{key}: found {found:?}; acknowledged {acknowledged:?}, cut off {unanswered:?} (seed {seed})"
            );
            ledger.acknowledged.insert(key, found);
        }
    }
}

/// How many SIGKILLs one run deals; `JIRA_USERPROPS_CRASH_KILLS` asks for more.
fn kills() -> u64 {
    std::env::var("JIRA_USERPROPS_CRASH_KILLS")
        .ok()
        .and_then(|kills| kills.parse().ok())
        .unwrap_or(20)
}

fn acknowledged_writes_survive_repeated_sigkill_under_load(url: &str) {
    let seed = seed();
    let mut dice = Dice(seed);
    let args = ["--database-url", url, "--seed", EXAMPLE_SEED];
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for round in 0..kills() {
        let mut server = Server::start(&args);
        let address = server.address();
        if round > 0 {
            check(address, &ledger, seed);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writers = {
            let (ledger, stop) = (Arc::clone(&ledger), Arc::clone(&stop));
            thread::spawn(move || load(address, &ledger, &stop, round, seed.wrapping_add(round)))
        };
        // Kill at a random moment once this round has some acknowledged writes behind it.
        let before = ledger.lock().expect("ledger").acknowledgements;
        let wanted = before + 10 + dice.roll(40);
        let deadline = Instant::now() + Duration::from_secs(60);
        while ledger.lock().expect("ledger").acknowledgements < wanted {
            assert!(Instant::now() < deadline, "the load stalled (seed {seed})");
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_millis(dice.roll(20)));
        server.signal("-KILL");
        let _ = server.wait();
        stop.store(true, Ordering::SeqCst);
        writers.join().expect("load");
    }
    let mut server = Server::start(&args);
    let address = server.address();
    check(address, &ledger, seed);
    let acknowledgements = ledger.lock().expect("ledger").acknowledgements;
    assert!(
        acknowledgements >= kills() * 10,
        "too little load to prove anything: {acknowledgements} acknowledged writes"
    );
}

#[test]
fn sqlite_acknowledged_writes_survive_repeated_sigkill_under_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("crash.db").display());
    acknowledged_writes_survive_repeated_sigkill_under_load(&url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_acknowledged_writes_survive_repeated_sigkill_under_load() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    tokio::task::spawn_blocking(move || {
        acknowledged_writes_survive_repeated_sigkill_under_load(&database.url)
    })
    .await
    .expect("crash test");
}

#[test]
fn sigterm_under_load_finishes_what_is_in_flight_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("term.db").display());
    let args = ["--database-url", url.as_str(), "--seed", EXAMPLE_SEED];
    let seed = seed();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut server = Server::start(&args);
    let address = server.address();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = {
        let (ledger, stop) = (Arc::clone(&ledger), Arc::clone(&stop));
        thread::spawn(move || load(address, &ledger, &stop, 0, seed))
    };
    // Signalled once the load is under way: some writes acknowledged, more in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while ledger.lock().expect("ledger").acknowledgements < 20 {
        assert!(Instant::now() < deadline, "the load stalled (seed {seed})");
        thread::sleep(Duration::from_millis(1));
    }
    let signalled = Instant::now();
    server.signal("-TERM");
    // Every answered request got its normal status (the writers panic otherwise); the listener
    // closes, so the writers stop at their first refused connection.
    writers
        .join()
        .expect("every answer during shutdown was a normal one");
    stop.store(true, Ordering::SeqCst);
    let (status, _) = server.wait();
    assert!(status.success(), "{status}");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "exit within the default grace"
    );
    assert!(
        TcpStream::connect(address).is_err(),
        "nothing listens after the exit"
    );

    let mut server = Server::start(&args);
    let address = server.address();
    check(address, &ledger, seed);
    assert!(ledger.lock().expect("ledger").acknowledgements > 0);
}

#[test]
fn a_request_that_outlasts_the_grace_period_does_not_hold_the_exit() {
    let mut server = Server::start(&[
        "--database-url",
        "sqlite::memory:",
        "--seed",
        EXAMPLE_SEED,
        "--shutdown-grace",
        "1",
        "--log-level",
        "jira_userprops=debug",
    ]);
    let address = server.address();
    let mut stream = TcpStream::connect(address).expect("server accepts");
    let head = request("PUT", "slow", None).replace(
        "Connection: close\r\n\r\n",
        "Connection: close\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{",
    );
    stream
        .write_all(head.as_bytes())
        .expect("head and a byte sent");
    server.wait_for("\"started\"");
    let signalled = Instant::now();
    server.signal("-TERM");
    let (status, output) = server.wait();
    let took = signalled.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "exit {took:?} after SIGTERM with a 1 s grace"
    );
    assert!(output.contains("grace period over"), "{output}");
}
