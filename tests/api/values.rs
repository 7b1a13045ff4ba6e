//! Property values: any JSON value kept byte for byte, bad bodies refused with nothing changed.

use axum::http::Method;
use futures_util::StreamExt as _;

use crate::helpers::*;

async fn bad_bodies_are_refused_and_change_nothing(backend: Backend) {
    let app = backend.app().await;
    let uri = property_uri(3, "existing", ALICE);
    let before = app.stored(ALICE, "existing").await;
    let empty = "The property value can not be empty.";
    let too_long =
        "The JSON data provided for the property is too long. Maximum length is 32,768 bytes.";
    let invalid = "The property value must be valid JSON.";
    let media = "The request body must be sent with 'Content-Type: application/json'.";
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (None, b"{}".to_vec(), 415, media),
        (Some("text/plain"), b"{}".to_vec(), 415, media),
        (
            Some("application/x-www-form-urlencoded"),
            b"a=1".to_vec(),
            415,
            media,
        ),
        (Some("application/jsonx"), b"{}".to_vec(), 415, media),
        (Some("application/json"), b"".to_vec(), 400, empty),
        (Some("application/json"), b" \t\r\n ".to_vec(), 400, empty),
        (Some("application/json"), vec![b' '; 40_000], 400, empty),
        (
            Some("application/json"),
            format!("\"{}\"", "x".repeat(32_767)).into_bytes(),
            400,
            too_long,
        ),
        (
            Some("application/json"),
            format!("{}1", " ".repeat(32_768)).into_bytes(),
            400,
            too_long,
        ),
        (Some("application/json"), b"{} {}".to_vec(), 400, invalid),
        (Some("application/json"), b"{".to_vec(), 400, invalid),
        (Some("application/json"), b"NaN".to_vec(), 400, invalid),
        (Some("application/json"), b"Infinity".to_vec(), 400, invalid),
        (Some("application/json"), b"{'a':1}".to_vec(), 400, invalid),
        (
            Some("application/json"),
            b"{\"a\":1} // note".to_vec(),
            400,
            invalid,
        ),
        (Some("application/json"), b"[1,]".to_vec(), 400, invalid),
        (
            Some("application/json"),
            b"\"tab\there\"".to_vec(),
            400,
            invalid,
        ),
        (
            Some("application/json"),
            b"\xEF\xBB\xBF{}".to_vec(),
            400,
            invalid,
        ),
        (Some("application/json"), b"\"\xFF\"".to_vec(), 400, invalid),
        (
            Some("application/json"),
            b"undefined".to_vec(),
            400,
            invalid,
        ),
        (Some("application/json"), b"012".to_vec(), 400, invalid),
        (
            Some("application/json"),
            b"\xC2\xA01".to_vec(),
            400,
            invalid,
        ),
        (
            Some("application/json"),
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            400,
            invalid,
        ),
    ];
    for (content_type, body, status, message) in cases {
        let mut request = app.put(&uri).by(Who::Alice);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let response = request.body(body).send().await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{content_type:?} {shown:?}: {}",
            response.text()
        );
        response.assert_error(status, message);
        assert_eq!(app.stored(ALICE, "existing").await, before, "{shown:?}");
        assert_eq!(app.stored_keys(ALICE).await, ["existing"], "{shown:?}");
    }
}

async fn a_value_of_32768_bytes_is_accepted(backend: Backend) {
    let app = backend.app().await;
    // 2 spaces + 2 quotes + 16,382 two-byte characters = 32,768 bytes as sent.
    let body = format!(" \"{}\" ", "é".repeat(16_382));
    assert_eq!(body.len(), 32_768);
    app.put(property_uri(3, "big", ALICE))
        .by(Who::Alice)
        .json(body.clone())
        .send()
        .await
        .assert_status(201);
    assert_eq!(app.stored(ALICE, "big").await.as_deref(), Some(body.trim()));
    let one_more = format!("{body} ");
    app.put(property_uri(3, "big", ALICE))
        .by(Who::Alice)
        .json(one_more)
        .send()
        .await
        .assert_error(
            400,
            "The JSON data provided for the property is too long. Maximum length is 32,768 bytes.",
        );
}

async fn values_round_trip_byte_for_byte(backend: Backend) {
    let app = backend.app().await;
    let values = [
        "123456789012345678901234567890",
        "1.0",
        "1e3",
        "-0.0e-7",
        r#""\u00e9 and é""#,
        r#"{"z":1,"a":2,"m":{"y":[],"b":{}}}"#,
        r#"{"a": 1, "b" : [1, 2 ,3]}"#,
        r#""just a string""#,
        "42",
        "null",
        "true",
        "false",
        "[]",
        "{}",
        r#"{"dup":1,"dup":2}"#,
        r#""\ud83d\ude00 \/ \b\f\n\r\t \"""#,
    ];
    for (index, value) in values.into_iter().enumerate() {
        let key = format!("value-{index}");
        let uri = property_uri(3, &key, BOB);
        app.put(&uri)
            .by(Who::Bob)
            .json(value)
            .send()
            .await
            .assert_status(201);
        let read = app.get(&uri).by(Who::Bob).send().await;
        assert_eq!(
            read.text(),
            format!(r#"{{"key":"{key}","value":{value}}}"#),
            "{value}"
        );
    }
}

async fn surrounding_white_space_is_dropped_and_inner_spacing_kept(backend: Backend) {
    let app = backend.app().await;
    let uri = property_uri(3, "spaced", BOB);
    app.put(&uri)
        .by(Who::Bob)
        .json("\r\n\t {\"a\": 1, \"b\": [1, 2]}\n")
        .send()
        .await
        .assert_status(201);
    assert_eq!(
        app.get(&uri).by(Who::Bob).send().await.text(),
        r#"{"key":"spaced","value":{"a": 1, "b": [1, 2]}}"#
    );
}

async fn media_type_parameters_and_case_are_accepted(backend: Backend) {
    let app = backend.app().await;
    for (index, content_type) in [
        "application/json; charset=UTF-8",
        "application/json;charset=utf-8",
        "Application/JSON",
    ]
    .into_iter()
    .enumerate()
    {
        let uri = property_uri(3, &format!("typed-{index}"), BOB);
        app.put(&uri)
            .by(Who::Bob)
            .header("content-type", content_type)
            .body("1")
            .send()
            .await
            .assert_status(201);
    }
}

async fn nesting_1000_deep_is_accepted(backend: Backend) {
    let app = backend.app().await;
    let value = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let uri = property_uri(3, "deep", BOB);
    app.put(&uri)
        .by(Who::Bob)
        .json(value.clone())
        .send()
        .await
        .assert_status(201);
    assert_eq!(app.stored(BOB, "deep").await, Some(value));
}

async fn chunked_bodies_are_accepted(backend: Backend) {
    let app = backend.app().await;
    let chunks: Vec<Result<&'static str, std::io::Error>> =
        vec![Ok("{\"a\":"), Ok(" [1,"), Ok("2]}")];
    let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
    let uri = property_uri(3, "chunked", BOB);
    app.put(&uri)
        .by(Who::Bob)
        .json(body)
        .send()
        .await
        .assert_status(201);
    assert_eq!(
        app.stored(BOB, "chunked").await.as_deref(),
        Some("{\"a\": [1,2]}")
    );
}

async fn an_endless_body_is_refused_once_past_the_limit(backend: Backend) {
    let app = backend.app().await;
    // A stream that would never end: the answer must come from the first 32 KiB and a bit.
    let endless =
        futures_util::stream::iter((0..).map(|_| Ok::<_, std::io::Error>("[1,1,1,1,1,1,1,1]")));
    let body = axum::body::Body::from_stream(endless);
    app.put(property_uri(3, "endless", BOB))
        .by(Who::Bob)
        .json(body)
        .send()
        .await
        .assert_error(
            400,
            "The JSON data provided for the property is too long. Maximum length is 32,768 bytes.",
        );
}

/// A body of 64 chunks of 8 KiB, and how many of its bytes were read.
fn counted_body() -> (
    axum::body::Body,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let consumed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = consumed.clone();
    let chunks = (0..64).map(move |_| {
        counter.fetch_add(8192, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, std::io::Error>(vec![b'1'; 8192])
    });
    let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
    (body, consumed)
}

/// A refused body is read to its end (up to a bound) before the answer, whoever refused it (the
/// service, the query's parser, authentication, the method's router), so that closing the
/// connection does not reset it under a client that is still sending.
async fn a_refused_body_is_drained_before_the_answer(backend: Backend) {
    let app = backend.app().await;
    let key = property_uri(3, "drained", BOB);
    let refusals = [
        (Method::PUT, key.clone(), Who::Bob, 400),
        (
            Method::PUT,
            "/rest/api/3/user/properties/drained".to_owned(),
            Who::Bob,
            400,
        ),
        (Method::PUT, key.clone(), Who::WrongToken, 401),
        (Method::POST, key, Who::Bob, 405),
    ];
    for (method, uri, who, status) in refusals {
        let (body, consumed) = counted_body();
        app.request(method.clone(), &uri)
            .by(who)
            .json(body)
            .send()
            .await
            .assert_status(status);
        assert_eq!(
            consumed.load(std::sync::atomic::Ordering::SeqCst),
            64 * 8192,
            "{method} {uri} as {who:?}"
        );
    }
    assert_eq!(app.stored_keys(BOB).await, ["existing"]);
}

/// A client that sends `Expect: 100-continue` sends its body only when asked: a refusal before
/// the body was read does not ask for it by draining it.
async fn a_refusal_does_not_ask_for_a_body_held_back_for_100_continue(backend: Backend) {
    let app = backend.app().await;
    for (who, status, read) in [(Who::WrongToken, 401, 0), (Who::Bob, 400, 64 * 8192)] {
        let (body, consumed) = counted_body();
        app.put(property_uri(3, "continued", BOB))
            .by(who)
            .header("expect", "100-continue")
            .json(body)
            .send()
            .await
            .assert_status(status);
        assert_eq!(
            consumed.load(std::sync::atomic::Ordering::SeqCst),
            read,
            "as {who:?}"
        );
    }
}

async fn a_body_that_stalls_past_the_request_timeout_gets_408_and_changes_nothing(
    backend: Backend,
) {
    let app = backend
        .app()
        .await
        .with_request_timeout(std::time::Duration::from_millis(200));
    let stalled = futures_util::stream::iter([Ok::<_, std::io::Error>("{\"a\":")])
        .chain(futures_util::stream::pending());
    let body = axum::body::Body::from_stream(stalled);
    app.put(property_uri(3, "stalled", BOB))
        .by(Who::Bob)
        .json(body)
        .send()
        .await
        .assert_error(408, "The request body was not received in time.");
    assert_eq!(app.stored_keys(BOB).await, ["existing"]);
}

/// The request timeout blames the client (408) only when it was the body that was awaited.
async fn a_slow_server_past_the_request_timeout_gets_503(backend: Backend) {
    let app = backend.app().await;
    let settings = jira_userprops::http::Settings {
        request_timeout: std::time::Duration::from_millis(200),
        faults: serde_json::from_str(r#"{"latency": {"minMs": 5000, "maxMs": 5000}}"#)
            .expect("fault rules"),
        ..TestApp::settings(None)
    };
    let app = TestApp::with_settings(app.store, settings);
    let response = app
        .put(property_uri(3, "late", BOB))
        .by(Who::Bob)
        .json("1")
        .send()
        .await;
    response.assert_error(503, "The request took too long to complete.");
    assert_eq!(response.header("retry-after"), Some("1"));
}

on_each_backend!(
    a_slow_server_past_the_request_timeout_gets_503,
    a_body_that_stalls_past_the_request_timeout_gets_408_and_changes_nothing,
    bad_bodies_are_refused_and_change_nothing,
    a_value_of_32768_bytes_is_accepted,
    values_round_trip_byte_for_byte,
    surrounding_white_space_is_dropped_and_inner_spacing_kept,
    media_type_parameters_and_case_are_accepted,
    nesting_1000_deep_is_accepted,
    chunked_bodies_are_accepted,
    an_endless_body_is_refused_once_past_the_limit,
    a_refused_body_is_drained_before_the_answer,
    a_refusal_does_not_ask_for_a_body_held_back_for_100_continue,
);
