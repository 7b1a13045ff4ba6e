//! Abusive bodies over real sockets: huge ones are refused early without being held, slow ones
//! are cut off. `connections.rs` has slow headers and too many connections.
//!
//! Deep nesting (10,000 levels) is refused with 400 in `values.rs`
//! (`bad_bodies_are_refused_and_change_nothing`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jira_userprops::ServeOptions;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpSocket, TcpStream};

use crate::binary::{BOB_ID, EXAMPLE_SEED, Server};
use crate::helpers::*;
use crate::socket::{Served, read_response};

#[cfg(target_os = "linux")]
/// The resident set of a process, in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status readable");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

const TOO_LONG: &str =
    "The JSON data provided for the property is too long. Maximum length is 32,768 bytes.";

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_body_is_refused_before_it_is_all_sent_and_is_never_held_whole() {
    const BODY_BYTES: usize = 10 * 1024 * 1024;
    let mut server = Server::start(&["--database-url", "sqlite::memory:", "--seed", EXAMPLE_SEED]);
    let address = server.address();
    let authorization = basic("bob@example.com", "bob-token");
    let head = |length: usize| {
        format!(
            "PUT /rest/api/3/user/properties/big?accountId={BOB_ID} HTTP/1.1\r\nHost: t\r\n\
             Authorization: {authorization}\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n\r\n"
        )
    };
    // A first write settles the server's pools and allocator before its size is measured.
    let mut warm = TcpStream::connect(address).await.expect("server accepts");
    warm.write_all(format!("{}1", head(1)).as_bytes())
        .await
        .expect("sent");
    assert_eq!(read_response(&mut warm).await.expect("answer").status, 201);
    let rss_before = rss_kib(server.pid());

    let socket = TcpSocket::new_v4().expect("socket");
    // A small send buffer keeps what the kernel takes on the client's side small.
    socket.set_send_buffer_size(64 * 1024).expect("buffer size");
    let stream = socket.connect(address).await.expect("server accepts");
    let (mut reader, mut writer) = stream.into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    let head = head(BODY_BYTES);
    let sending = {
        let sent = sent.clone();
        tokio::spawn(async move {
            writer.write_all(head.as_bytes()).await?;
            let chunk = vec![b'1'; 64 * 1024];
            while sent.load(Ordering::SeqCst) < BODY_BYTES {
                writer.write_all(&chunk).await?;
                sent.fetch_add(chunk.len(), Ordering::SeqCst);
            }
            std::io::Result::Ok(())
        })
    };
    let response = tokio::time::timeout(Duration::from_secs(30), read_response(&mut reader))
        .await
        .expect("answered in time")
        .expect("answer read");
    let sent_when_answered = sent.load(Ordering::SeqCst);
    let rss_after = rss_kib(server.pid());
    sending.abort();

    assert_eq!(response.status, 400, "{}", response.head);
    assert_eq!(
        response.body,
        format!(r#"{{"errorMessages":["{TOO_LONG}"],"errors":{{}}}}"#)
    );
    assert!(
        sent_when_answered < BODY_BYTES,
        "the answer came only after all {BODY_BYTES} bytes were sent"
    );
    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown < 5 * 1024,
        "the server grew by {grown} KiB while refusing a 10 MiB body"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_keeps_requests_without_keeping_their_large_headers() {
    const REQUESTS: usize = 1000;
    // Each request's head is about 48 KiB: an entry that held on to the buffer it was read
    // into would keep 48 MiB alive across the journal's 1,000 entries.
    let padding = "p".repeat(48 * 1024);
    let mut server = Server::start(&["--database-url", "sqlite::memory:", "--seed", EXAMPLE_SEED]);
    let address = server.address();
    let request = format!(
        "GET /rest/api/3/user/properties/k?accountId={BOB_ID} HTTP/1.1\r\nHost: t\r\n\
         Authorization: {}\r\nX-Padding: {padding}\r\n\r\n",
        basic("bob@example.com", "bob-token")
    );
    let mut stream = TcpStream::connect(address).await.expect("server accepts");
    let send = async |stream: &mut TcpStream| {
        stream.write_all(request.as_bytes()).await.expect("sent");
        let response = read_response(stream).await.expect("answer");
        assert_eq!(response.status, 404, "{}", response.head);
    };
    for _ in 0..20 {
        send(&mut stream).await;
    }
    let rss_before = rss_kib(server.pid());
    for _ in 0..REQUESTS {
        send(&mut stream).await;
    }
    let grown = rss_kib(server.pid()).saturating_sub(rss_before);
    assert!(
        grown < 12 * 1024,
        "the server grew by {grown} KiB while journaling {REQUESTS} requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_is_cut_off_with_408_at_the_request_timeout() {
    let timeout = Duration::from_millis(500);
    let app = Backend::Sqlite.app().await.with_request_timeout(timeout);
    let served = Served::start(&app, ServeOptions::default()).await;
    let stream = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    stream.set_nodelay(true).expect("no delay");
    let (mut reader, mut writer) = stream.into_split();
    let authorization = Who::Bob.authorization().expect("Bob has credentials");
    let head = format!(
        "PUT /rest/api/3/user/properties/slow?accountId={BOB} HTTP/1.1\r\nHost: jira.test\r\n\
         Authorization: {authorization}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n["
    );
    writer.write_all(head.as_bytes()).await.expect("head sent");
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for _ in 0..999 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b"1").await.is_err() {
                break;
            }
        }
    });
    let response = tokio::time::timeout(Duration::from_secs(10), read_response(&mut reader))
        .await
        .expect("answered within the bound")
        .expect("answer read");
    let elapsed = started.elapsed();
    assert_eq!(response.status, 408, "{}", response.head);
    assert_eq!(
        response.body,
        r#"{"errorMessages":["The request body was not received in time."],"errors":{}}"#
    );
    // The server's clock starts when it has read the head, a moment before `started`.
    assert!(
        elapsed + Duration::from_millis(100) >= timeout
            && elapsed < timeout + Duration::from_secs(4),
        "answered after {elapsed:?}"
    );
    assert!(
        crate::socket::closed_within(&mut reader, Duration::from_secs(5))
            .await
            .is_some(),
        "the connection stays open after the 408"
    );
    trickle.abort();
    assert_eq!(app.stored_keys(BOB).await, ["existing"]);
}
