//! Connections over real sockets: slow or silent headers and idle keep-alive connections are
//! closed at the header timeout, connections past the limit wait, and failed logins are counted
//! by the client's address.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jira_userprops::ServeOptions;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::*;
use crate::socket::{Served, closed_within, read_response};

fn options(header_read_timeout: Duration, max_connections: usize) -> ServeOptions {
    ServeOptions {
        shutdown_grace: Duration::from_secs(5),
        header_read_timeout,
        max_connections,
    }
}

fn get_healthz() -> &'static [u8] {
    b"GET /healthz HTTP/1.1\r\nHost: jira.test\r\n\r\n"
}

/// Connects over HTTP/2 without TLS (pinging every `pings`, if given), asks for `/healthz`, and
/// returns the client's sender, which keeps the client from closing the connection itself,
/// and the connection's task, which ends when the server closes the connection.
async fn http2_healthz(
    served: &Served,
    pings: Option<Duration>,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<axum::body::Bytes>>,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
) {
    let stream = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    let mut client = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    client.timer(hyper_util::rt::TokioTimer::new());
    if let Some(every) = pings {
        client
            .keep_alive_interval(every)
            .keep_alive_while_idle(true);
    }
    let (mut sender, connection) = client
        .handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .expect("HTTP/2 without TLS is spoken");
    let connection = tokio::spawn(connection);
    let request = axum::http::Request::get(format!("http://{}/healthz", served.address))
        .body(http_body_util::Empty::<axum::body::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("answer");
    assert_eq!(response.status(), 200);
    (sender, connection)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_a_byte_at_a_time_are_cut_off_at_the_header_timeout() {
    let app = Backend::Sqlite.app().await;
    let served = Served::start(&app, options(Duration::from_millis(500), 16)).await;
    let stream = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    stream.set_nodelay(true).expect("no delay");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: jira.test\r\nX-Padding: {}\r\n\r\n",
        "p".repeat(200)
    );
    let head_len = head.len();
    let sent = Arc::new(AtomicUsize::new(0));
    let trickle = {
        let sent = sent.clone();
        tokio::spawn(async move {
            for byte in head.into_bytes() {
                if writer.write_all(&[byte]).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let received = closed_within(&mut reader, Duration::from_secs(5))
        .await
        .expect("the server closes a connection whose headers trickle in");
    let elapsed = started.elapsed();
    trickle.abort();
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        elapsed >= Duration::from_millis(400),
        "closed after {elapsed:?}"
    );
    let sent = sent.load(Ordering::SeqCst);
    assert!(
        sent < head_len,
        "closed only after the whole head ({sent} bytes)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_timeout() {
    let app = Backend::Sqlite.app().await;
    let served = Served::start(&app, options(Duration::from_millis(300), 16)).await;
    let mut stream = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    let received = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server closes a silent connection");
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_at_the_header_timeout() {
    let app = Backend::Sqlite.app().await;
    let served = Served::start(&app, options(Duration::from_millis(300), 16)).await;
    let mut stream = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    stream.write_all(get_healthz()).await.expect("sent");
    let response = read_response(&mut stream).await.expect("answer");
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.body, r#"{"status":"ok"}"#);
    assert!(
        !response
            .head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{}",
        response.head
    );
    let received = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server closes an idle keep-alive connection");
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_a_new_connection_waits_until_one_closes() {
    let app = Backend::Sqlite.app().await;
    let served = Served::start(&app, options(Duration::from_secs(60), 2)).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(served.address)
            .await
            .expect("server accepts");
        stream.write_all(get_healthz()).await.expect("sent");
        let response = read_response(&mut stream).await.expect("answer");
        assert_eq!(response.status, 200, "{}", response.head);
        open.push(stream);
    }
    // The kernel completes the handshake from its backlog; the server does not take it up.
    let mut third = TcpStream::connect(served.address)
        .await
        .expect("kernel accepts");
    third.write_all(get_healthz()).await.expect("sent");
    let early = tokio::time::timeout(Duration::from_millis(500), read_response(&mut third)).await;
    assert!(early.is_err(), "served past the limit: {early:?}");

    drop(open.pop());
    let response = tokio::time::timeout(Duration::from_secs(10), read_response(&mut third))
        .await
        .expect("served once a connection closed")
        .expect("answer");
    assert_eq!(response.status, 200, "{}", response.head);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_over_a_socket_are_counted_by_the_clients_address() {
    let app = crate::logins::app_with(5, Duration::from_secs(60)).await;
    let served = Served::start(&app, options(Duration::from_secs(10), 16)).await;
    let request = |who: Who| {
        format!(
            "GET /rest/api/3/user/properties?accountId={ALICE} HTTP/1.1\r\nHost: jira.test\r\n\
             Authorization: {}\r\n\r\n",
            who.authorization().expect("credentials")
        )
    };
    let mut stream = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    for attempt in 1..=5 {
        stream
            .write_all(request(Who::WrongToken).as_bytes())
            .await
            .expect("sent");
        let response = read_response(&mut stream).await.expect("answer");
        assert_eq!(response.status, 401, "attempt {attempt}");
        assert!(
            response
                .head
                .contains("x-seraph-loginreason: AUTHENTICATED_FAILED"),
            "attempt {attempt}: {}",
            response.head
        );
    }
    // Another connection from the same address: refused unchecked.
    let mut again = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    again
        .write_all(request(Who::Alice).as_bytes())
        .await
        .expect("sent");
    let response = read_response(&mut again).await.expect("answer");
    assert_eq!(response.status, 401, "{}", response.head);
    assert!(
        response
            .head
            .contains("x-seraph-loginreason: AUTHENTICATION_DENIED"),
        "{}",
        response.head
    );
}

/// Requests sent back to back on one connection, before any answer, are all answered, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    use tokio::io::AsyncReadExt as _;
    let app = Backend::Sqlite.app().await;
    let served = Served::start(&app, options(Duration::from_secs(5), 16)).await;
    let mut stream = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    let requests = [
        "GET /healthz HTTP/1.1\r\nHost: jira.test\r\n\r\n",
        "GET /no/such/route HTTP/1.1\r\nHost: jira.test\r\n\r\n",
        "GET /rest/api/3/serverInfo HTTP/1.1\r\nHost: jira.test\r\n\r\n",
    ]
    .concat();
    stream
        .write_all(requests.as_bytes())
        .await
        .expect("requests sent");
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        while received.windows(9).filter(|w| *w == b"HTTP/1.1 ").count() < 3 {
            let read = stream.read(&mut chunk).await.expect("readable");
            assert!(read > 0, "closed before three answers");
            received.extend_from_slice(&chunk[..read]);
        }
    })
    .await;
    assert!(answered.is_ok(), "three answers did not come");
    let text = String::from_utf8_lossy(&received);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &text[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["200", "404", "200"], "{text}");
    assert!(text.contains("\"deploymentType\":\"Cloud\""), "{text}");
}

/// An answer goes out when it is ready, even while the start of a next request waits on the
/// socket: a client that sent one byte too many after a PUT still hears the PUT's 201.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_not_held_back_by_the_start_of_a_next_request() {
    let app = Backend::Sqlite.app().await;
    let served = Served::start(&app, options(Duration::from_secs(30), 16)).await;
    let mut stream = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    let request = format!(
        "PUT {} HTTP/1.1\r\nHost: jira.test\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1\r\n\r\n7}}",
        property_uri(3, "short", BOB),
        Who::Bob.authorization().expect("credentials"),
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = stream.read(&mut chunk).await.expect("readable");
            assert!(read > 0, "closed before the answer");
            received.extend_from_slice(&chunk[..read]);
        }
    })
    .await;
    assert!(
        answered.is_ok(),
        "the PUT's answer waited on the next request"
    );
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 201 "), "{text}");
}

/// A malformed request gets hyper's own 400 before the connection closes, not a bare close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_is_answered_400_before_the_close() {
    let app = Backend::Sqlite.app().await;
    let served = Served::start(&app, options(Duration::from_secs(30), 16)).await;
    let mut stream = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: jira.test\r\nnot a header\r\n\r\n")
        .await
        .expect("request sent");
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
        .await
        .expect("closed within the time");
    assert!(read.is_ok(), "{read:?}");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed_after_the_header_timeout() {
    let app = Backend::Sqlite.app().await;
    let served = Served::start(&app, options(Duration::from_millis(300), 16)).await;
    let (_sender, connection) = http2_healthz(&served, None).await;
    let answered = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("the server closes an idle HTTP/2 connection")
        .expect("connection task")
        .expect("closed with a GOAWAY, not an error");
    let idle = answered.elapsed();
    assert!(idle >= Duration::from_millis(250), "closed after {idle:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_answers_is_dropped() {
    let app = Backend::Sqlite.app().await;
    let served = Served::start(&app, options(Duration::from_millis(300), 16)).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let mut stream = socket
        .connect(served.address)
        .await
        .expect("server accepts");
    let one = b"GET /openapi.json HTTP/1.1\r\nHost: jira.test\r\n\r\n";
    let requests = 1000;
    stream
        .write_all(&one.repeat(requests))
        .await
        .expect("requests sent");
    let first = read_response(&mut stream).await.expect("first answer");
    assert_eq!(first.status, 200, "{}", first.head);
    let answer_size = first.head.len() + 4 + first.body.len();
    // Long enough for the server to fill both sockets' buffers and find no progress.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rest = closed_within(&mut stream, Duration::from_secs(10))
        .await
        .expect("the connection ends");
    let answered = 1 + rest.len() / answer_size;
    // Kept open, the connection goes on to answer nearly all of them once the client reads.
    assert!(
        answered < requests / 2,
        "{answered} of {requests} answers were written to a client that read none for 2 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_goes_away_is_counted_as_499() {
    let app = Backend::Sqlite.app().await;
    set_faults(&app, r#"{"latency": {"minMs": 5000, "maxMs": 5000}}"#).await;
    let served = Served::start(&app, options(Duration::from_secs(10), 16)).await;
    let mut stream = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    let authorization = Who::Bob.authorization().expect("Bob has credentials");
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: jira.test\r\nAuthorization: {authorization}\r\n\r\n",
        keys_uri(3, BOB)
    );
    stream.write_all(request.as_bytes()).await.expect("sent");
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = app.get("/metrics").send().await.text().to_owned();
        if page
            .lines()
            .any(|line| line.contains("status=\"499\"") && line.contains("GET"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no 499 counted:\n{page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_still_reading_a_large_answer_keeps_its_connection() {
    let app = Backend::Sqlite.app().await;
    // A snapshot of about 10 MB: more than the sockets' buffers hold, so the server's write
    // waits on the client's reads.
    let value = format!("\"{}\"", "v".repeat(32_000));
    for key in 0..320 {
        app.put(property_uri(3, &format!("big.{key}"), BOB))
            .by(Who::Bob)
            .json(value.clone())
            .send()
            .await
            .assert_status(201);
    }
    let served = Served::start(&app, options(Duration::from_millis(500), 16)).await;
    let mut stream = TcpStream::connect(served.address)
        .await
        .expect("server accepts");
    let request = format!(
        "GET /_admin/snapshot HTTP/1.1\r\nHost: jira.test\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("sent");
    // Read at most 64 KiB every 20 ms, about 3 MB/s: the server's writes move bytes each time
    // the kernel frees room in its send buffer, well within the 500 ms period, though the
    // whole answer takes several periods.
    let started = Instant::now();
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let complete = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("the server goes on sending")
            .expect("read");
        if read == 0 {
            break false;
        }
        received.extend_from_slice(&chunk[..read]);
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|length| length.trim().parse().ok())
                .expect("a content length");
            if received.len() >= end + 4 + length {
                break true;
            }
        }
    };
    assert!(
        complete,
        "cut off after {:?} and {} bytes",
        started.elapsed(),
        received.len()
    );
    assert!(
        started.elapsed() > Duration::from_millis(1500),
        "read too fast to show anything: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_pings_do_not_hold_an_idle_connection_open() {
    let app = Backend::Sqlite.app().await;
    let served = Served::start(&app, options(Duration::from_millis(300), 16)).await;
    let (_sender, connection) = http2_healthz(&served, Some(Duration::from_millis(50))).await;
    tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("the server closes an idle HTTP/2 connection, pings or not")
        .expect("connection task")
        .expect("closed with a GOAWAY, not an error");
}
