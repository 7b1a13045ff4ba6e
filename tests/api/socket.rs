//! Over a real socket: the bytes on the wire, exactly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use jira_userprops::{ServeOptions, serve};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::net::TcpListener;

use crate::helpers::*;

/// Sends one raw HTTP/1.1 request and returns the whole response as text.
pub fn exchange(address: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("server accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout set");
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    response
}

/// An app served over a real socket on a port of its own, until [`Served::stop`] or drop.
pub struct Served {
    pub address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Served {
    /// Serves `app` with `options` on 127.0.0.1, port 0.
    pub async fn start(app: &TestApp, options: ServeOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("port bound");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = app.router.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            serve(listener, router, shutdown, &options).await
        });
        Self {
            address,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops the server and waits for it to end cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

/// One HTTP/1.1 response, read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Reads one response: the head, then as many body bytes as its `Content-Length` says.
pub async fn read_response(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<RawResponse> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        bytes.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = bytes[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..read]);
    }
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    Ok(RawResponse {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Waits up to `within` for the server to close the connection; returns what it sent before
/// closing, or `None` if it was still open.
pub async fn closed_within(
    stream: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let until_closed = async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => received.extend_from_slice(&chunk[..read]),
            }
        }
    };
    tokio::time::timeout(within, until_closed).await.ok()?;
    Some(received)
}

async fn the_wire_carries_jiras_exact_headers(backend: Backend) {
    let app = backend.app().await;
    let served = Served::start(&app, ServeOptions::default()).await;
    let address = served.address;

    let authorization = Who::Alice.authorization().expect("Alice has credentials");
    let request = format!(
        "GET /rest/api/3/user/properties/existing?accountId={ALICE} HTTP/1.1\r\nHost: jira.test\r\n\
         Authorization: {authorization}\r\nConnection: close\r\n\r\n"
    );
    let response = tokio::task::spawn_blocking(move || exchange(address, &request))
        .await
        .expect("exchange");
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let lines: Vec<String> = head.lines().map(str::to_ascii_lowercase).collect();
    assert!(
        lines.contains(&"content-type: application/json;charset=utf-8".to_owned()),
        "{head}"
    );
    assert!(
        head.contains("content-type: application/json;charset=UTF-8"),
        "exact case of the value: {head}"
    );
    assert!(lines.contains(&format!("x-aaccountid: {ALICE}")), "{head}");
    assert_eq!(body, r#"{"key":"existing","value":{"owner":"alice"}}"#);

    served.stop().await;
}

on_each_backend!(the_wire_carries_jiras_exact_headers);
