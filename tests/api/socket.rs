//! Over a real socket: the bytes on the wire, exactly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use jira_userprops::serve;
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

async fn the_wire_carries_jiras_exact_headers(backend: Backend) {
    let app = backend.app().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("port bound");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        app.router.clone(),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));

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

    let _ = stop.send(());
    server
        .await
        .expect("server task")
        .expect("server stops cleanly");
}

on_each_backend!(the_wire_carries_jiras_exact_headers);
