//! Properties that hold for any input, checked on generated cases: keys and values round-trip
//! exactly, and no body, header or path makes the server fail (5xx).
//!
//! Each test runs its cases on one runtime over one app (SQLite in memory), so that a hundred
//! cases take well under a second each.

use axum::http::{HeaderValue, Method};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::helpers::*;

const CASES: u32 = 96;

/// What JavaScript's `encodeURIComponent` leaves alone, as a client encoding a key would.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Runs `test` on `CASES` generated inputs, each on one runtime shared by all.
fn check<S: Strategy>(
    strategy: S,
    test: impl Fn(&TestApp, S::Value) -> Result<(), TestCaseError> + 'static,
) where
    S::Value: std::fmt::Debug,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = runtime.block_on(Backend::Sqlite.app());
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let _guard = runtime.enter();
    TestRunner::new(config)
        .run(&strategy, |input| test(&app, input))
        .unwrap_or_else(|failure| panic!("{failure}"));
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Handle::current().block_on(future)
}

/// Any key the rules allow: 1 to 255 characters of any Unicode but ASCII controls, rich in the
/// characters that need care in a path.
fn keys() -> impl Strategy<Value = String> {
    let character = prop_oneof![
        3 => any::<char>(),
        1 => proptest::sample::select(vec!['/', '%', ' ', '?', '#', '+', '&', '=', '.', ':', ';', '\u{80}', 'é']),
    ]
    .prop_filter("no ASCII control characters", |c| !c.is_ascii_control());
    proptest::collection::vec(character, 1..=255).prop_map(|chars| chars.into_iter().collect())
}

#[test]
fn any_key_round_trips_through_put_get_list_and_its_self_link() {
    check(keys(), |app, key| {
        block_on(async {
            let encoded = utf8_percent_encode(&key, COMPONENT).to_string();
            let uri = property_uri(3, &encoded, ALICE);
            let put = app.put(&uri).by(Who::Alice).json("[1]").send().await;
            prop_assert!(put.status == 201, "PUT {uri}: {put:?}");

            let read = app.get(&uri).by(Who::Alice).send().await;
            prop_assert_eq!(read.status.as_u16(), 200, "GET {}", uri);
            prop_assert_eq!(read.json(), serde_json::json!({"key": key, "value": [1]}));

            let list = app
                .get(keys_uri(3, ALICE))
                .by(Who::Alice)
                .send()
                .await
                .json();
            let entry = list["keys"].as_array().and_then(|keys| {
                keys.iter()
                    .find(|entry| entry["key"].as_str() == Some(key.as_str()))
            });
            prop_assert!(entry.is_some(), "{key:?} not listed: {list}");
            let link = entry.and_then(|entry| entry["self"].as_str()).unwrap_or("");
            let path = link.strip_prefix("http://jira.test").unwrap_or(link);
            let by_link = app.get(path).by(Who::Alice).send().await;
            prop_assert_eq!(by_link.status.as_u16(), 200, "self link {}", link);
            prop_assert_eq!(by_link.text(), read.text());

            app.delete(&uri)
                .by(Who::Alice)
                .send()
                .await
                .assert_status(204);
            Ok(())
        })
    });
}

/// JSON white space, sometimes none.
fn space() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(vec![' ', '\t', '\r', '\n']), 0..3)
        .prop_map(|chars| chars.into_iter().collect())
}

/// A JSON number as a person or a program might spell it: any length, fractions, exponents.
fn number() -> impl Strategy<Value = String> {
    "-?(0|[1-9][0-9]{0,40})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?"
}

/// A JSON string: plain characters, short escapes, `\u` escapes in either case and surrogate
/// pairs.
fn string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => any::<char>()
            .prop_filter("plain", |c| !c.is_control() && *c != '"' && *c != '\\')
            .prop_map(String::from),
        1 => proptest::sample::select(vec!["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"])
            .prop_map(str::to_owned),
        1 => (0u32..0xD800, any::<bool>()).prop_map(|(unit, upper)| if upper {
            format!("\\u{unit:04X}")
        } else {
            format!("\\u{unit:04x}")
        }),
        1 => (0xD800u32..0xDC00, 0xDC00u32..0xE000)
            .prop_map(|(high, low)| format!("\\u{high:04x}\\u{low:04X}")),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

/// Any JSON value as text, with odd white space between its tokens.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number(),
        string(),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let element = (space(), inner, space())
            .prop_map(|(a, v, b)| format!("{a}{v}{b}"))
            .boxed();
        let member = (space(), string(), space(), space(), element.clone())
            .prop_map(|(a, k, b, c, v)| format!("{a}{k}{b}:{c}{v}"));
        prop_oneof![
            (proptest::collection::vec(element, 0..6), space())
                .prop_map(|(items, s)| format!("[{s}{}]", items.join(","))),
            (proptest::collection::vec(member, 0..6), space())
                .prop_map(|(members, s)| format!("{{{s}{}}}", members.join(","))),
        ]
    })
}

#[test]
fn any_json_value_round_trips_byte_for_byte() {
    let sent = (space(), json_text(), space());
    check(sent, |app, (before, value, after)| {
        block_on(async {
            let uri = property_uri(3, "generated", BOB);
            let put = app
                .put(&uri)
                .by(Who::Bob)
                .json(format!("{before}{value}{after}"))
                .send()
                .await;
            prop_assert!(put.status == 201 || put.status == 200, "{value}: {put:?}");
            let read = app.get(&uri).by(Who::Bob).send().await;
            prop_assert_eq!(
                read.text(),
                format!(r#"{{"key":"generated","value":{value}}}"#)
            );
            Ok(())
        })
    });
}

#[track_caller]
fn no_server_error(response: &TestResponse, case: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        response.status.as_u16() < 500,
        "{case}: {} {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    Ok(())
}

#[test]
fn no_body_gets_a_server_error() {
    let content_type = prop_oneof![
        Just(Some("application/json".to_owned())),
        Just(Some("application/json; charset=ISO-8859-1".to_owned())),
        Just(Some("text/plain".to_owned())),
        Just(None),
        "[ -~]{0,40}".prop_map(Some),
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        json_text().prop_map(String::into_bytes),
        proptest::collection::vec(
            proptest::sample::select(b"[]{}\",:0123 \\\"".to_vec()),
            0..2048
        ),
    ];
    check((content_type, body), |app, (content_type, body)| {
        block_on(async {
            let mut request = app.put(property_uri(3, "any", ALICE)).by(Who::Alice);
            if let Some(content_type) = &content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.body(body).send().await;
            no_server_error(&response, &format!("{content_type:?}"))
        })
    });
}

#[test]
fn no_header_value_gets_a_server_error() {
    let name = prop_oneof![
        3 => proptest::sample::select(vec![
            "authorization",
            "content-type",
            "content-length",
            "host",
            "accept",
            "transfer-encoding",
            "x-forwarded-for",
            "x-atlassian-force-account-id",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z][a-z0-9-]{0,20}",
    ];
    let value = proptest::collection::vec(any::<u8>(), 0..200).prop_map(|bytes| {
        bytes
            .into_iter()
            .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
            .collect::<Vec<u8>>()
    });
    let method = proptest::sample::select(vec![Method::GET, Method::PUT, Method::DELETE]);
    let auth = prop_oneof![
        Just(None),
        Just(Some(Who::Alice)),
        Just(Some(Who::Admin)),
        Just(Some(Who::WrongToken)),
    ];
    check(
        (name, value, method, auth),
        |app, (name, value, method, auth)| {
            block_on(async {
                let header = HeaderValue::from_bytes(&value).expect("valid header bytes");
                let mut request = app.request(method.clone(), property_uri(3, "h", ALICE));
                if let Some(who) = auth {
                    request = request.by(who);
                }
                let request = request.header_bytes(&name, header).body("{}");
                let response = request.send().await;
                no_server_error(&response, &format!("{method} {name}: {value:?}"))
            })
        },
    );
}

#[test]
fn no_path_gets_a_server_error() {
    let prefix = proptest::sample::select(vec![
        "/rest/api/3/user/properties/",
        "/rest/api/2/user/properties",
        "/rest/api/3/user",
        "/rest/api/3/",
        "/_admin/users/",
        "/",
    ]);
    let bytes = proptest::collection::vec(any::<u8>(), 0..300);
    let query = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..60));
    let method =
        proptest::sample::select(vec![Method::GET, Method::PUT, Method::DELETE, Method::HEAD]);
    check(
        (prefix, bytes, query, method),
        |app, (prefix, bytes, query, method)| {
            block_on(async {
                let encoded = percent_encoding::percent_encode(&bytes, NON_ALPHANUMERIC);
                let mut uri = format!("{prefix}{encoded}");
                match &query {
                    Some(query) => uri.push_str(&format!(
                        "?accountId={}",
                        percent_encoding::percent_encode(query, NON_ALPHANUMERIC)
                    )),
                    None => uri.push_str(&format!("?accountId={ALICE}")),
                }
                let response = app
                    .request(method.clone(), &uri)
                    .by(Who::Alice)
                    .json("1")
                    .send()
                    .await;
                no_server_error(&response, &format!("{method} {uri}"))
            })
        },
    );
}
