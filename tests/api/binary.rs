//! The binary itself: start-up, seeds, logging, signals, crashes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::helpers::*;
use crate::socket::exchange;

/// The binary under test: `JIRA_USERPROPS_BIN` when set (CI points it at the release build),
/// else the one cargo built for these tests.
pub fn binary() -> String {
    std::env::var("JIRA_USERPROPS_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_jira-userprops").to_owned())
}

/// The binary under test, with its stdout and stderr read line by line into one stream.
pub struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    pub fn start(args: &[&str]) -> Self {
        Self::start_with(args, &[])
    }

    /// Starts the binary with `args` and these environment variables.
    pub fn start_with(args: &[&str], environment: &[(&str, &str)]) -> Self {
        let mut child = Command::new(binary())
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .envs(environment.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout piped");
        let stderr = child.stderr.take().expect("stderr piped");
        forward_lines(stdout, sender.clone());
        forward_lines(stderr, sender);
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads output until a line contains `needle`; returns that line.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {needle:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Waits for the log line that says where the server listens.
    pub fn address(&mut self) -> SocketAddr {
        // Logs (stdout) and the banner (stderr) interleave in any order: look back first.
        let seen = self
            .seen
            .iter()
            .find(|line| line.contains("\"listening\""))
            .cloned();
        let line = seen.unwrap_or_else(|| self.wait_for("\"listening\""));
        let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        log["fields"]["address"]
            .as_str()
            .expect("address logged")
            .parse()
            .expect("socket address")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to end; returns its status and everything it wrote.
    pub fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("process ends");
        self.seen.extend(self.lines.try_iter());
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(line);
        }
        (status, self.seen.join("\n"))
    }
}

fn forward_lines(pipe: impl Read + Send + 'static, sender: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const EXAMPLE_SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed.json");
pub const BOB_ID: &str = "5b10ac8d82e05b22cc7d4ef5";

pub fn bob_request(method: &str, key: &str, body: Option<&str>) -> String {
    let authorization = basic("bob@example.com", "bob-token");
    let mut request = format!(
        "{method} /rest/api/3/user/properties/{key}?accountId={BOB_ID} HTTP/1.1\r\nHost: t\r\n\
         Authorization: {authorization}\r\nConnection: close\r\n"
    );
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    request
}

#[test]
fn a_bad_seed_stops_the_start_naming_the_file_the_entry_and_the_fault() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad-seed.json");
    std::fs::write(
        &path,
        r#"{"users":[{"accountId":"a","email":"a@x.io"},{"accountId":"b","email":"A@X.IO"}]}"#,
    )
    .expect("seed written");
    let server = Server::start(&[
        "--database-url",
        "sqlite::memory:",
        "--seed",
        path.to_str().expect("utf-8 path"),
    ]);
    let (status, stderr) = server.wait();
    assert!(!status.success());
    assert!(stderr.contains("bad-seed.json"), "{stderr}");
    assert!(stderr.contains("users[1]"), "{stderr}");
    assert!(stderr.contains("belongs to another user"), "{stderr}");
}

#[test]
fn an_empty_database_gets_one_administrator_announced_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("first.db").display());
    let mut server = Server::start(&["--database-url", &url]);
    let curl = server.wait_for("curl -u");
    let address = server.address();
    // curl -u 'EMAIL:TOKEN' 'URL'
    let parts: Vec<&str> = curl.split('\'').collect();
    let (credentials, url_in_banner) = (parts[1], parts[3]);
    let (email, token) = credentials.split_once(':').expect("email:token");
    let path = url_in_banner
        .split_once(&address.to_string())
        .expect("banner names the listen address")
        .1;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        basic(email, token)
    );
    let response = exchange(address, &request);
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with(r#"{"keys":[]}"#), "{response}");
    server.signal("-TERM");
    let (status, _) = server.wait();
    assert!(status.success(), "{status}");

    let mut again = Server::start(&["--database-url", &url]);
    again.address();
    again.signal("-TERM");
    let (_, output) = again.wait();
    assert!(!output.contains("API token"), "{output}");
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_and_refuses_new_connections() {
    let mut server = Server::start(&[
        "--database-url",
        "sqlite::memory:",
        "--seed",
        EXAMPLE_SEED,
        "--log-level",
        "jira_userprops=debug",
    ]);
    let address = server.address();
    let body = r#"{"late":1}"#;
    let mut stream = TcpStream::connect(address).expect("server accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout set");
    let head = format!(
        "PUT /rest/api/3/user/properties/late?accountId=5b10ac8d82e05b22cc7d4ef5 HTTP/1.1\r\nHost: t\r\n\
         Authorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        basic("bob@example.com", "bob-token"),
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("head sent");
    stream
        .write_all(&body.as_bytes()[..3])
        .expect("part of the body sent");
    stream.flush().expect("flushed");
    // The request is now in flight: its handler waits for the rest of the body.
    server.wait_for("\"started\"");
    server.signal("-TERM");
    server.wait_for("shutting down");
    // The listener closes right after the signal is seen; poll for it rather than guess a delay.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(address).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "new connections are still accepted after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stream
        .write_all(&body.as_bytes()[3..])
        .expect("rest of the body sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    assert!(response.starts_with("HTTP/1.1 201 Created"), "{response}");
    let (status, _) = server.wait();
    assert!(status.success(), "{status}");
}

#[test]
fn an_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("crash.db").display());
    let args = ["--database-url", url.as_str(), "--seed", EXAMPLE_SEED];
    let mut server = Server::start(&args);
    let address = server.address();
    let response = exchange(address, &bob_request("PUT", "kept", Some(r#"{"n": 1.50}"#)));
    assert!(response.starts_with("HTTP/1.1 201 Created"), "{response}");
    server.signal("-KILL");
    let _ = server.wait();

    let mut server = Server::start(&args);
    let address = server.address();
    let response = exchange(address, &bob_request("GET", "kept", None));
    assert!(
        response.ends_with(r#"{"key":"kept","value":{"n": 1.50}}"#),
        "{response}"
    );
}

#[test]
fn an_oversized_body_gets_its_400_over_the_wire() {
    let mut server = Server::start(&["--database-url", "sqlite::memory:", "--seed", EXAMPLE_SEED]);
    let address = server.address();
    let body = format!("[{}1]", "1,".repeat(300_000));
    let response = exchange(address, &bob_request("PUT", "big", Some(&body)));
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request"),
        "{response}"
    );
    assert!(response.ends_with(
        r#"{"errorMessages":["The JSON data provided for the property is too long. Maximum length is 32,768 bytes."],"errors":{}}"#
    ), "{response}");
}

#[test]
fn each_request_logs_one_line_without_credentials() {
    let mut server = Server::start(&["--database-url", "sqlite::memory:", "--seed", EXAMPLE_SEED]);
    let address = server.address();
    let response = exchange(address, &bob_request("PUT", "logged", Some("true")));
    let request_id = response
        .lines()
        .find_map(|line| line.strip_prefix("x-arequestid: "))
        .expect("request id header")
        .to_owned();
    let line = server.wait_for(&request_id);
    let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(log["fields"]["message"], "handled", "{line}");
    assert_eq!(log["fields"]["method"], "PUT");
    assert_eq!(log["fields"]["route"], "/rest/api/3/user/properties/{*key}");
    assert_eq!(log["fields"]["status"], 201);
    assert_eq!(log["fields"]["caller"], BOB_ID);
    assert!(log["fields"]["latency_us"].is_u64(), "{line}");
    assert_eq!(log["span"]["id"], request_id.as_str(), "{line}");
    server.signal("-TERM");
    let (_, output) = server.wait();
    let lines = output
        .lines()
        .filter(|line| line.contains(&request_id))
        .count();
    assert_eq!(lines, 1, "{output}");
    let secret = basic("bob@example.com", "bob-token");
    for leaked in ["bob-token", secret.trim_start_matches("Basic ")] {
        assert!(!output.contains(leaked), "{leaked} in the log:\n{output}");
    }
}

#[test]
fn an_unreachable_database_is_retried_then_named_with_its_cause() {
    let server = Server::start(&[
        "--database-url",
        "postgres://postgres:secret-password@127.0.0.1:1/test",
        "--db-startup-timeout",
        "2",
    ]);
    let (status, output) = server.wait();
    assert!(!status.success());
    assert!(
        output.matches("database not reachable yet").count() >= 2,
        "{output}"
    );
    assert!(
        output.contains("cannot connect to the database at postgres://127.0.0.1:1 ("),
        "{output}"
    );
    assert!(
        output.to_lowercase().contains("connection refused"),
        "{output}"
    );
    assert!(!output.contains("secret-password"), "{output}");
}

/// In a container the binary is PID 1, which a signal without a handler does not stop: SIGTERM
/// must be handled from the start, while the database is still being waited for.
#[test]
fn sigterm_while_waiting_for_the_database_stops_the_start_cleanly() {
    let mut server = Server::start(&[
        "--database-url",
        "postgres://postgres@127.0.0.1:1/test",
        "--db-startup-timeout",
        "60",
    ]);
    server.wait_for("database not reachable yet");
    server.signal("-TERM");
    let (status, output) = server.wait();
    assert!(
        status.success(),
        "exits 0, not killed by the signal: {status}\n{output}"
    );
    assert!(output.contains("stopped while starting"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_password_stays_out_of_a_started_servers_log() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let database = backend.database().await;
    let mut url = url::Url::parse(&database.url).expect("a URL");
    // The server's own password if the URL has one; else one that trust authentication ignores.
    let password = url.password().unwrap_or("pg-secret-pw").to_owned();
    url.set_password(Some(&password)).expect("a password");
    let mut server = Server::start(&["--database-url", url.as_str()]);
    server.wait_for("database ready");
    let health = exchange(
        server.address(),
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    server.signal("-TERM");
    let (status, output) = server.wait();
    assert!(status.success(), "{output}");
    assert!(
        output.contains("postgres://"),
        "names the database: {output}"
    );
    assert!(!output.contains(&password), "{output}");
}

fn run_cli(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_jira-userprops"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn healthcheck_exits_0_for_a_live_server_and_1_when_it_is_down() {
    let mut server = Server::start(&["--database-url", "sqlite::memory:", "--seed", EXAMPLE_SEED]);
    let address = server.address();
    let url = format!("http://{address}");
    assert!(run_cli(&["healthcheck", "--url", &url]).0);
    assert!(
        run_cli(&["--listen", &address.to_string(), "healthcheck"]).0,
        "defaults to --listen"
    );
    server.signal("-TERM");
    let _ = server.wait();
    assert!(!run_cli(&["healthcheck", "--url", &url]).0);
}

#[test]
fn the_command_line_adds_users_and_tokens_and_moves_snapshots() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = format!("sqlite:{}", dir.path().join("first.db").display());
    let second = format!("sqlite:{}", dir.path().join("second.db").display());
    assert!(run_cli(&["--database-url", &first, "migrate"]).0);
    let (ok, added) = run_cli(&[
        "--database-url",
        &first,
        "users",
        "add",
        "--account-id",
        "cli-1",
        "--email",
        "cli@example.com",
    ]);
    assert!(ok, "{added}");
    let added: serde_json::Value = serde_json::from_str(&added).expect("JSON");
    assert_eq!(added["accountId"], "cli-1");
    assert!(added["token"].as_str().is_some_and(|t| t.len() >= 40));
    assert!(added["tokenId"].is_string(), "{added}");
    let (ok, token) = run_cli(&[
        "--database-url",
        &first,
        "tokens",
        "create",
        "--account-id",
        "cli-1",
    ]);
    assert!(ok);
    let token: serde_json::Value = serde_json::from_str(&token).expect("JSON");
    assert!(token["id"].is_string() && token["token"].is_string());
    let (_, listed) = run_cli(&["--database-url", &first, "users", "list"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(
        !run_cli(&[
            "--database-url",
            &first,
            "tokens",
            "create",
            "--account-id",
            "nobody"
        ])
        .0
    );

    let (ok, scoped) = run_cli(&[
        "--database-url",
        &first,
        "tokens",
        "create",
        "--account-id",
        "cli-1",
        "--scope",
        "read:jira-user",
        "--expires-at",
        "2999-01-01T00:00:00Z",
    ]);
    assert!(ok, "{scoped}");
    let bad_expiry = [
        "tokens",
        "create",
        "--account-id",
        "cli-1",
        "--expires-at",
        "soon",
    ];
    assert!(!run_cli(&[&["--database-url", &first][..], &bad_expiry].concat()).0);

    let snapshot = dir.path().join("snapshot.json");
    let snapshot = snapshot.to_str().expect("UTF-8 path");
    assert!(run_cli(&["--database-url", &first, "export", snapshot]).0);
    assert!(run_cli(&["--database-url", &second, "import", snapshot]).0);
    let (_, exported_again) = run_cli(&["--database-url", &second, "export", "-"]);
    assert_valid_seed(exported_again.as_bytes());
    assert_eq!(
        exported_again,
        std::fs::read_to_string(snapshot).expect("snapshot written")
    );
    assert!(
        exported_again.contains("apiTokenHashes")
            && !exported_again.contains(added["token"].as_str().unwrap_or("?"))
    );
    assert!(
        exported_again.contains("read:jira-user") && exported_again.contains("2999-01-01"),
        "{exported_again}"
    );
}

#[test]
fn the_command_line_registers_lists_and_deletes_apps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite:{}", dir.path().join("apps.db").display());
    let cli = |args: &[&str]| run_cli(&[&["--database-url", database.as_str()][..], args].concat());
    let (ok, created) = cli(&[
        "apps",
        "create",
        "--name",
        "Nightly sync",
        "--kind",
        "serviceAccount",
        "--scope",
        "read:jira-user",
        "--in-site",
        "default",
        "--client-id",
        "nightly",
    ]);
    assert!(ok, "{created}");
    let created: serde_json::Value = serde_json::from_str(&created).expect("JSON");
    assert_eq!(created["clientId"], "nightly");
    assert_eq!(created["kind"], "serviceAccount");
    assert!(
        created["clientSecret"]
            .as_str()
            .is_some_and(|s| s.len() >= 32)
    );
    assert_eq!(created["accountId"], "712020:nightly");
    let (_, users) = cli(&["users", "list"]);
    assert!(users.contains("712020:nightly"), "{users}");
    let (ok, oauth) = cli(&[
        "apps",
        "create",
        "--name",
        "Acme",
        "--callback-url",
        "http://127.0.0.1:3000/callback",
        "--scope",
        "read:jira-user",
        "--scope",
        "offline_access",
    ]);
    assert!(ok, "{oauth}");
    let (_, listed) = cli(&["apps", "list"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(!listed.contains("clientSecret"), "{listed}");
    assert!(!cli(&["apps", "create", "--name", "X", "--in-site", "nowhere"]).0);
    assert!(!cli(&["apps", "create", "--name", "X", "--kind", "connect"]).0);
    assert!(cli(&["apps", "delete", "--client-id", "nightly"]).0);
    assert!(!cli(&["apps", "delete", "--client-id", "nightly"]).0);
    let (_, listed) = cli(&["apps", "list"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let (_, users) = cli(&["users", "list"]);
    assert!(!users.contains("712020:nightly"), "{users}");
}
