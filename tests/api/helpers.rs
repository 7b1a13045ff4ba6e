//! Shared test fixtures: an app over a fresh database, its users, and a small request builder.

use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use jira_userprops::domain::SiteKey;
use jira_userprops::http::{AppState, Settings, router};
use jira_userprops::seed;
use jira_userprops::store::{DatabaseOptions, Store};
use tower::ServiceExt;

pub use crate::backends::*;

pub const ALICE: &str = "alice-5b10ac8d82e05b22cc7d4ef5";
pub const BOB: &str = "bob-5b10a2844c20165700ede21g";
pub const ADMIN: &str = "admin-557058f0a1b2c3d4e5f6a7b8";
pub const CAROL: &str = "carol-deactivated-0001";
/// The admin API's token in every test app.
pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const NOBODY: &str = "nobody-0000000000000000";

/// Users: Alice and Bob (plain users), an administrator, and Carol (deactivated). Alice, Bob and
/// Carol each hold the property `existing`.
pub const FIXTURE: &str = r#"{
  "users": [
    {"accountId": "alice-5b10ac8d82e05b22cc7d4ef5", "email": "alice@example.com", "displayName": "Alice",
     "apiTokens": ["alice-token", "alice-second-token"]},
    {"accountId": "bob-5b10a2844c20165700ede21g", "email": "bob@example.com", "displayName": "Bob",
     "apiTokens": ["bob-token"]},
    {"accountId": "admin-557058f0a1b2c3d4e5f6a7b8", "email": "ada@example.com", "displayName": "Ada",
     "admin": true, "apiTokens": ["ada-token"]},
    {"accountId": "carol-deactivated-0001", "email": "carol@example.com", "displayName": "Carol",
     "active": false, "apiTokens": ["carol-token"]}
  ],
  "properties": [
    {"accountId": "alice-5b10ac8d82e05b22cc7d4ef5", "key": "existing", "value": {"owner":"alice"}},
    {"accountId": "bob-5b10a2844c20165700ede21g", "key": "existing", "value": {"owner":"bob"}},
    {"accountId": "carol-deactivated-0001", "key": "existing", "value": {"owner":"carol"}}
  ]
}"#;

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Anonymous,
    WrongToken,
    MalformedHeader,
    Deactivated,
    Alice,
    Bob,
    Admin,
}

impl Who {
    /// The `Authorization` header this caller sends, if any.
    pub fn authorization(self) -> Option<String> {
        match self {
            Who::Anonymous => None,
            Who::WrongToken => Some(basic("alice@example.com", "not-the-token")),
            Who::MalformedHeader => Some("Basic %%%not-base64%%%".to_owned()),
            Who::Deactivated => Some(basic("carol@example.com", "carol-token")),
            Who::Alice => Some(basic("alice@example.com", "alice-token")),
            Who::Bob => Some(basic("bob@example.com", "bob-token")),
            Who::Admin => Some(basic("ada@example.com", "ada-token")),
        }
    }
}

pub fn basic(email: &str, token: &str) -> String {
    let pair = format!("{email}:{token}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The application over its own database, with [`FIXTURE`] loaded.
#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
    pub store: Store,
}

impl TestApp {
    /// An app over the database at `url`, with `public_url` as the base of links.
    pub async fn on(url: &str, public_url: Option<&str>) -> Self {
        Self::on_with(url, public_url, &test_database_options()).await
    }

    /// Like [`TestApp::on`], with other connection settings.
    pub async fn on_with(url: &str, public_url: Option<&str>, options: &DatabaseOptions) -> Self {
        let store = Store::connect(url, options).await.expect("database opens");
        store.migrate().await.expect("migrations apply");
        let fixture = seed::parse(Path::new("fixture.json"), FIXTURE).expect("fixture is valid");
        store
            .apply_seed(SiteKey::DEFAULT, &fixture.data)
            .await
            .expect("fixture loads");
        Self::over(store, public_url)
    }

    /// An app over an already prepared store.
    pub fn over(store: Store, public_url: Option<&str>) -> Self {
        Self::with_settings(store, Self::settings(public_url))
    }

    /// The same app with another request timeout.
    pub fn with_request_timeout(self, request_timeout: Duration) -> Self {
        let settings = Settings {
            request_timeout,
            ..Self::settings(None)
        };
        Self::with_settings(self.store, settings)
    }

    /// The same app over the same store, with other settings.
    pub fn with_settings(store: Store, settings: Settings) -> Self {
        let state = AppState::new(store.clone(), settings).expect("state builds");
        Self {
            router: router(state),
            store,
        }
    }

    /// The settings of test apps: the admin API on, with [`ADMIN_TOKEN`]. The failed-login
    /// throttle is off: `logins.rs` tests it, and elsewhere tables of wrong credentials, sent
    /// with no client address, would trip it for the fixture's users.
    pub fn settings(public_url: Option<&str>) -> Settings {
        Settings {
            public_url: public_url.map(str::to_owned),
            admin_token: Some(ADMIN_TOKEN.to_owned().into()),
            login_failures: 0,
            ..Settings::default()
        }
    }

    /// A request to the admin API with the admin token.
    pub fn admin(&self, method: Method, uri: impl Into<String>) -> TestRequest {
        self.request(method, uri)
            .header("authorization", &format!("Bearer {ADMIN_TOKEN}"))
    }

    /// Starts a request.
    pub fn request(&self, method: Method, uri: impl Into<String>) -> TestRequest {
        TestRequest {
            router: self.router.clone(),
            builder: Request::builder()
                .method(method)
                .uri(uri.into())
                .header("host", "jira.test"),
            body: Body::empty(),
        }
    }

    pub fn get(&self, uri: impl Into<String>) -> TestRequest {
        self.request(Method::GET, uri)
    }

    pub fn put(&self, uri: impl Into<String>) -> TestRequest {
        self.request(Method::PUT, uri)
    }

    pub fn delete(&self, uri: impl Into<String>) -> TestRequest {
        self.request(Method::DELETE, uri)
    }

    /// The stored JSON text of a property, read straight from the store.
    pub async fn stored(&self, account_id: &str, key: &str) -> Option<String> {
        let key = jira_userprops::domain::PropertyKey::new(key.to_owned()).expect("valid key");
        self.store
            .property(SiteKey::DEFAULT, account_id, &key, None)
            .await
            .expect("store answers")
            .map(|value| value.into_string())
    }

    /// Puts a property back as it was (`None`: absent), straight through the store.
    pub async fn restore(&self, account_id: &str, key: &str, value: Option<String>) {
        let key = jira_userprops::domain::PropertyKey::new(key.to_owned()).expect("valid key");
        match value {
            Some(value) => {
                let value = jira_userprops::domain::PropertyValue::from_stored(value);
                self.store
                    .set_property(SiteKey::DEFAULT, account_id, &key, &value, None)
                    .await
                    .expect("store answers");
            }
            None => {
                self.store
                    .delete_property(SiteKey::DEFAULT, account_id, &key, None)
                    .await
                    .expect("store answers");
            }
        }
    }

    /// Every key the user holds, straight from the store.
    pub async fn stored_keys(&self, account_id: &str) -> Vec<String> {
        self.store
            .property_keys(SiteKey::DEFAULT, account_id, None)
            .await
            .expect("store answers")
            .to_vec()
    }
}

/// The URI of a property (the key as given, not encoded) for an account.
pub fn property_uri(version: u8, key: &str, account_id: &str) -> String {
    format!("/rest/api/{version}/user/properties/{key}?accountId={account_id}")
}

/// The URI of an account's key list.
pub fn keys_uri(version: u8, account_id: &str) -> String {
    format!("/rest/api/{version}/user/properties?accountId={account_id}")
}

/// Replaces the fault rules of the default site through the admin API.
pub async fn set_faults(app: &TestApp, rules: &str) {
    app.admin(Method::PUT, "/_admin/faults")
        .json(rules.to_owned())
        .send()
        .await
        .assert_status(200);
}

pub struct TestRequest {
    router: Router,
    builder: axum::http::request::Builder,
    body: Body,
}

impl TestRequest {
    pub fn by(self, who: Who) -> Self {
        match who.authorization() {
            Some(value) => self.header("authorization", &value),
            None => self,
        }
    }

    /// Sent from `address`, as the accept loop records the client's address.
    pub fn from(mut self, address: &str) -> Self {
        let address: std::net::SocketAddr = address.parse().expect("socket address");
        self.builder = self.builder.extension(axum::extract::ConnectInfo(address));
        self
    }

    /// A header whose value need not be text.
    pub fn header_bytes(mut self, name: &str, value: axum::http::HeaderValue) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// Sent to `host` (the Host header), in place of the default `jira.test`.
    pub fn host(mut self, host: &str) -> Self {
        if let Some(headers) = self.builder.headers_mut() {
            headers.insert("host", host.parse().expect("a host"));
        }
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// A body sent as `application/json`.
    pub fn json(self, body: impl Into<Body>) -> Self {
        self.header("content-type", "application/json").body(body)
    }

    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    pub async fn send(self) -> TestResponse {
        let request = self.builder.body(self.body).expect("request builds");
        let exports_a_snapshot =
            request.method() == Method::GET && request.uri().path().ends_with("/snapshot");
        let response = self
            .router
            .oneshot(request)
            .await
            .expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body reads")
            .to_bytes()
            .to_vec();
        // Every snapshot the server exports in any test is held against the published schema.
        if exports_a_snapshot && status == StatusCode::OK {
            assert_valid_seed(&body);
        }
        TestResponse {
            status,
            headers,
            body,
        }
    }
}

/// The first line of `/metrics` that starts with `name`.
pub async fn metric(app: &TestApp, name: &str) -> Option<String> {
    let page = app.get("/metrics").send().await;
    page.assert_status(200);
    page.text()
        .lines()
        .find(|line| line.starts_with(name))
        .map(str::to_owned)
}

/// Holds a seed or snapshot document against `docs/seed.schema.json`, as the server serves it.
pub fn assert_valid_seed(document: &[u8]) {
    static SCHEMA: std::sync::LazyLock<jsonschema::Validator> = std::sync::LazyLock::new(|| {
        let schema = serde_json::from_str(jira_userprops::http::SEED_SCHEMA).expect("JSON");
        jsonschema::validator_for(&schema).expect("a valid schema")
    });
    let document: serde_json::Value = serde_json::from_slice(document).expect("JSON");
    let errors: Vec<String> = SCHEMA
        .iter_errors(&document)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not a valid seed: {errors:?}");
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("header is text"))
    }

    /// The body parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// Asserts a status, showing the body when it differs.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    /// The status, and an error message in Jira's shape that mentions `part`.
    #[track_caller]
    pub fn assert_error_mentioning(&self, status: u16, part: &str) -> &Self {
        self.assert_status(status);
        let message = self.json()["errorMessages"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains(part), "{}", self.text());
        self
    }

    /// Asserts Jira's ErrorCollection with exactly this message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, message: &str) -> &Self {
        self.assert_status(status);
        assert_eq!(
            self.json(),
            serde_json::json!({"errorMessages": [message], "errors": {}}),
            "error body"
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
        self
    }
}

/// Sends `writers` first PUTs of one key at once, spread over `apps` in turn; each writes
/// `{"writer":i}`. Asserts that exactly one was told it created the property.
pub async fn race_first_puts(
    apps: &[TestApp],
    who: Who,
    account_id: &str,
    key: &str,
    writers: usize,
) {
    let uri = property_uri(3, key, account_id);
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let app = apps[i % apps.len()].clone();
            let uri = uri.clone();
            tokio::spawn(async move {
                let body = format!("{{\"writer\":{i}}}");
                app.put(uri).by(who).json(body).send().await.status.as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task completes"));
    }
    let created = statuses.iter().filter(|&&s| s == 201).count();
    let updated = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!((created, updated), (1, writers - 1), "{statuses:?}");
}
