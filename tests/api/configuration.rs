//! Configuration as container users expect it: secrets from files and never shown by `--help`,
//! durations with units, and a healthcheck that finds the port however it was set.

use std::process::{Command, Stdio};

use crate::binary::{EXAMPLE_SEED, Server};
use crate::helpers::ADMIN_TOKEN;
use crate::socket::exchange;

/// Runs the binary to its end: (success, exit code, stdout and stderr).
fn run(args: &[&str], environment: &[(&str, &str)]) -> (bool, Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_jira-userprops"))
        .args(args)
        .envs(environment.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), output.status.code(), text)
}

fn admin_users(address: std::net::SocketAddr, token: &str) -> String {
    exchange(
        address,
        &format!(
            "GET /_admin/users HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        ),
    )
}

#[test]
fn secrets_are_read_from_files_and_never_shown_by_help() {
    let folder = tempfile::tempdir().expect("a folder");
    let token_file = folder.path().join("admin-token");
    std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).expect("written");
    let url_file = folder.path().join("database-url");
    std::fs::write(&url_file, "sqlite::memory:\n").expect("written");
    // As in the image, which sets JIRA_USERPROPS_DATABASE_URL: the files win over the
    // environment (this URL's folder does not exist, so the server would not start on it).
    let mut server = Server::start_with(
        &["--seed", EXAMPLE_SEED],
        &[
            ("JIRA_USERPROPS_ADMIN_TOKEN", "token-in-env"),
            (
                "JIRA_USERPROPS_ADMIN_TOKEN_FILE",
                token_file.to_str().expect("UTF-8"),
            ),
            (
                "JIRA_USERPROPS_DATABASE_URL",
                "sqlite:/nonexistent-folder/jira-userprops.db",
            ),
            (
                "JIRA_USERPROPS_DATABASE_URL_FILE",
                url_file.to_str().expect("UTF-8"),
            ),
        ],
    );
    let address = server.address();
    assert!(admin_users(address, ADMIN_TOKEN).starts_with("HTTP/1.1 200 OK"));
    assert!(admin_users(address, "token-in-env").starts_with("HTTP/1.1 401"));
    drop(server);
    // A flag wins over a file named in the environment.
    let mut server = Server::start_with(
        &[
            "--seed",
            EXAMPLE_SEED,
            "--database-url",
            "sqlite::memory:",
            "--admin-token",
            "token-by-flag",
        ],
        &[(
            "JIRA_USERPROPS_ADMIN_TOKEN_FILE",
            token_file.to_str().expect("UTF-8"),
        )],
    );
    let address = server.address();
    assert!(admin_users(address, "token-by-flag").starts_with("HTTP/1.1 200 OK"));
    assert!(admin_users(address, ADMIN_TOKEN).starts_with("HTTP/1.1 401"));
    drop(server);

    let token = token_file.to_str().expect("UTF-8");
    let (ok, code, output) = run(
        &["--admin-token", "x", "--admin-token-file", token, "migrate"],
        &[],
    );
    assert!(!ok && code == Some(2), "{output}");
    assert!(
        output.contains("--admin-token-file cannot be used with --admin-token"),
        "{output}"
    );
    let url = url_file.to_str().expect("UTF-8");
    let (ok, code, output) = run(
        &[
            "migrate",
            "--database-url",
            "sqlite::memory:",
            "--database-url-file",
            url,
        ],
        &[],
    );
    assert!(!ok && code == Some(2), "{output}");
    assert!(
        output.contains("--database-url-file cannot be used with --database-url"),
        "{output}"
    );
    let missing = folder.path().join("missing");
    let (ok, code, output) = run(
        &[
            "--admin-token-file",
            missing.to_str().expect("UTF-8"),
            "migrate",
        ],
        &[],
    );
    assert!(!ok && code == Some(2), "{output}");
    assert!(output.contains("cannot read"), "{output}");

    // An empty admin token would turn the admin API on with no way in.
    let (ok, code, output) = run(&["--admin-token", "", "migrate"], &[]);
    assert!(!ok && code == Some(2), "{output}");
    assert!(output.contains("must not be empty"), "{output}");
    // An empty variable is how compose files leave it out: no admin token, no refusal.
    let (ok, _, output) = run(
        &["--database-url", "sqlite::memory:", "migrate"],
        &[("JIRA_USERPROPS_ADMIN_TOKEN", "")],
    );
    assert!(ok, "{output}");

    // Refused URLs are not quoted back: they may hold a password.
    let (ok, code, output) = run(
        &[
            "--public-url",
            "https://user:password-in-url@j.example",
            "migrate",
        ],
        &[],
    );
    assert!(!ok && code == Some(2), "{output}");
    assert!(!output.contains("password-in-url"), "{output}");
    let (ok, code, output) = run(
        &[
            "healthcheck",
            "--url",
            "http://a:password-in-url@127.0.0.1:9",
        ],
        &[],
    );
    assert!(!ok && code == Some(1), "{output}");
    assert!(output.contains("no user name or password"), "{output}");
    assert!(!output.contains("password-in-url"), "{output}");

    let (ok, _, help) = run(
        &["--help"],
        &[
            ("JIRA_USERPROPS_ADMIN_TOKEN", "admin-secret-in-env"),
            (
                "JIRA_USERPROPS_DATABASE_URL",
                "postgres://u:password-in-env@h/db",
            ),
            (
                "JIRA_USERPROPS_SEED_JSON",
                r#"{"users": [{"apiTokens": ["token-in-env"]}]}"#,
            ),
        ],
    );
    assert!(ok, "{help}");
    assert!(help.contains("JIRA_USERPROPS_ADMIN_TOKEN_FILE"), "{help}");
    for secret in ["admin-secret-in-env", "password-in-env", "token-in-env"] {
        assert!(!help.contains(secret), "--help shows {secret}");
    }
}

#[test]
fn durations_take_units_and_bare_numbers_are_seconds() {
    let mut server = Server::start(&[
        "--database-url",
        "sqlite::memory:",
        "--request-timeout",
        "1500ms",
        "--db-acquire-timeout",
        "2s",
        "--login-failure-window",
        "1m",
        "--shutdown-grace",
        "0",
        "--oauth-token-ttl",
        "90",
    ]);
    server.address();
    drop(server);
    for (flag, value) in [
        ("--request-timeout", "soon"),
        ("--request-timeout", "0s"),
        ("--header-read-timeout", "5 fortnights"),
    ] {
        let (ok, code, output) = run(&[flag, value, "migrate"], &[]);
        assert!(!ok && code == Some(2), "{flag} {value}: {output}");
        assert!(output.contains(flag), "{output}");
    }
}

#[test]
fn the_healthcheck_finds_the_port_in_the_address_file() {
    let folder = tempfile::tempdir().expect("a folder");
    let file = folder.path().join("address");
    let file = file.to_str().expect("UTF-8");
    let mut server = Server::start(&["--database-url", "sqlite::memory:", "--address-file", file]);
    let address = server.address();
    assert_eq!(
        std::fs::read_to_string(file).expect("the address file"),
        address.to_string()
    );
    // The environment names another port, as an image's default would; the file wins.
    let environment = [("JIRA_USERPROPS_LISTEN", "127.0.0.1:9")];
    let (ok, _, output) = run(
        &["healthcheck"],
        &[("JIRA_USERPROPS_ADDRESS_FILE", file), environment[0]],
    );
    assert!(ok, "{output}");
    let (ok, _, _) = run(&["healthcheck"], &environment);
    assert!(!ok, "without the file, the environment's port is probed");
}

#[test]
fn an_address_file_that_cannot_be_written_is_no_reason_not_to_serve() {
    let folder = tempfile::tempdir().expect("a folder");
    let file = folder.path().join("missing-folder").join("address");
    let file = file.to_str().expect("UTF-8");
    let mut server = Server::start(&["--database-url", "sqlite::memory:", "--address-file", file]);
    let warning = server.wait_for("healthcheck will probe --listen");
    assert!(
        warning.contains("cannot write the address file"),
        "{warning}"
    );
    let address = server.address().to_string();
    let (ok, _, output) = run(
        &["healthcheck"],
        &[
            ("JIRA_USERPROPS_ADDRESS_FILE", file),
            ("JIRA_USERPROPS_LISTEN", &address),
        ],
    );
    assert!(ok, "{output}");
}
