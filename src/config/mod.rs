//! Command-line and environment configuration: every option is a flag and an environment variable.
//! One clap struct, so that `--help` lists every option from one place. Past 350 lines because
//! each option's doc comment is its `--help` text: one idea, read top to bottom as `--help` is.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use url::Url;

use crate::ServeOptions;
use crate::credentials::Secret;
use crate::faults::FaultRules;
use crate::http::Settings;
use crate::store::DatabaseOptions;

mod commands;
mod values;

pub use commands::{AppsCommand, Command, TokensCommand, UsersCommand};

/// A stand-in server for Jira Cloud's user properties REST API.
#[derive(Debug, Clone, Parser)]
#[command(name = "jira-userprops", version, about)]
pub struct Config {
    /// What to do; without one, `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address and port to listen on.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: String,

    /// Database URL: `sqlite:PATH` (the file is created if missing), `sqlite::memory:` for a
    /// database that lives only as long as the process, or `postgres://USER:PASSWORD@HOST:PORT/DB`
    /// (TLS as its `sslmode` parameter says: disable, prefer, require, verify-ca, verify-full).
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite:jira-userprops.db"
    )]
    pub database_url: Secret,

    /// A file holding the database URL (for secrets mounted as files), instead of
    /// --database-url; it wins over JIRA_USERPROPS_DATABASE_URL (which the image sets).
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_DATABASE_URL_FILE",
        value_name = "FILE"
    )]
    pub database_url_file: Option<PathBuf>,

    /// Where the server writes the address it listens on once it does, for `healthcheck` to
    /// find the port however it was set (the image sets /tmp/jira-userprops.address).
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_ADDRESS_FILE",
        value_name = "FILE"
    )]
    pub address_file: Option<PathBuf>,

    /// Most database connections held open (PostgreSQL), or reader connections (SQLite).
    #[arg(long, global = true, env = "JIRA_USERPROPS_DB_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_pool_size: u32,

    /// PostgreSQL connections beside the pool that carry reads pipelined, many requests' in one
    /// round trip; 0 sends every read through the pool.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_DB_PIPELINES",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(0..=64)
    )]
    pub db_pipelines: u32,

    /// How long one connection attempt may take at start (seconds, or with units: 500ms, 2m).
    #[arg(long, global = true, env = "JIRA_USERPROPS_DB_CONNECT_TIMEOUT", default_value = "5", value_parser = values::positive_duration)]
    pub db_connect_timeout: Duration,

    /// How long a request may wait for a free database connection; past it, 503.
    #[arg(long, global = true, env = "JIRA_USERPROPS_DB_ACQUIRE_TIMEOUT", default_value = "5", value_parser = values::positive_duration)]
    pub db_acquire_timeout: Duration,

    /// Most requests waiting for a PostgreSQL connection while every one is busy; past it, 503
    /// at once instead of a queue that grows while the database is slow or out of reach.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_DB_MAX_WAITING",
        default_value_t = 512
    )]
    pub db_max_waiting: u32,

    /// How long to keep retrying the database at start (with backoff) before giving up.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_DB_STARTUP_TIMEOUT",
        default_value = "30",
        value_parser = values::duration
    )]
    pub db_startup_timeout: Duration,

    /// MiB of property values (and a quarter as much again of key lists) that SQLite keeps in
    /// memory, so reads skip the database; writes update it as they commit, and changes made to
    /// the file by other processes are seen within 50 ms. 0 turns it off. PostgreSQL never
    /// caches: its instances share the database and nothing else.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_CACHE_SIZE",
        default_value_t = 4
    )]
    pub cache_size: u64,

    /// JSON file of users, API tokens and properties to load at start, or a folder whose
    /// `*.json` files are read in name order as one seed. Missing users and tokens are added on
    /// every start; properties only into an empty database.
    #[arg(long, global = true, env = "JIRA_USERPROPS_SEED")]
    pub seed: Option<PathBuf>,

    /// The seed document itself, inline (for containers that start before a checkout, such as
    /// GitHub Actions `services:`). Instead of `--seed`.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_SEED_JSON",
        hide_env_values = true,
        conflicts_with = "seed",
        value_name = "JSON"
    )]
    pub seed_json: Option<Secret>,

    /// Public base URL of this server, used in `self` links (e.g. https://jira.example.test).
    /// Without it, links use `http://` and the request's Host header.
    #[arg(long, global = true, env = "JIRA_USERPROPS_PUBLIC_URL", value_parser = PublicUrlParser)]
    pub public_url: Option<String>,

    /// A host suffix whose first label names a site: with `localhost`, a request to
    /// `acme.localhost:8080` is for the site `acme`. Repeatable; any other host reaches the
    /// `default` site.
    #[arg(
        long = "site-domain",
        global = true,
        env = "JIRA_USERPROPS_SITE_DOMAINS",
        value_delimiter = ',',
        default_value = "localhost"
    )]
    pub site_domains: Vec<String>,

    /// Most sites one store holds, `default` included; creating one more is refused (409).
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_MAX_SITES",
        default_value_t = 10_000
    )]
    pub max_sites: u64,

    /// How long OAuth 2.0 access tokens live (Atlassian: 3600 s); shorter helps tests of expiry.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_OAUTH_TOKEN_TTL",
        default_value = "3600",
        value_parser = values::positive_duration
    )]
    pub oauth_token_ttl: Duration,

    /// The site the users, tokens, export and import subcommands act on.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_SITE",
        default_value = "default"
    )]
    pub site: String,

    /// Bearer token for the admin API under /_admin; without it the admin API answers 404.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<Secret>,

    /// A file holding the admin token (for secrets mounted as files), instead of --admin-token;
    /// it wins over JIRA_USERPROPS_ADMIN_TOKEN.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_ADMIN_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub admin_token_file: Option<PathBuf>,

    /// Requests the journal keeps for GET /_admin/requests (oldest dropped first); 0 turns it off.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_JOURNAL_SIZE",
        default_value_t = 1000
    )]
    pub journal_size: usize,

    /// Keep PUT bodies in the journal too (never credentials).
    #[arg(long, global = true, env = "JIRA_USERPROPS_JOURNAL_BODIES")]
    pub journal_bodies: bool,

    /// Faults and rate limits at start, as JSON in the form PUT /_admin/faults takes, e.g.
    /// '{"rateLimit": {"limit": 100, "windowSeconds": 1}, "latency": {"minMs": 0, "maxMs": 50}}'.
    #[arg(long, global = true, env = "JIRA_USERPROPS_FAULTS", value_parser = parse_faults)]
    pub faults: Option<FaultRules>,

    /// Log format.
    #[arg(long, global = true, env = "JIRA_USERPROPS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, in `tracing` directive syntax (e.g. `info`, `jira_userprops=debug`).
    #[arg(long, global = true, env = "JIRA_USERPROPS_LOG_LEVEL", default_value = "info", value_parser = parse_log_filter)]
    pub log_level: String,

    /// Longest time one request may take, counted from the end of its headers, body upload
    /// included. Past it: 408 if the body was still arriving, 503 otherwise.
    #[arg(long, global = true, env = "JIRA_USERPROPS_REQUEST_TIMEOUT", default_value = "30", value_parser = values::positive_duration)]
    pub request_timeout: Duration,

    /// How long a client has to send a request's headers, from when it connects or from the end
    /// of the previous response; a connection that is slower, or idle that long, is closed.
    #[arg(long, global = true, env = "JIRA_USERPROPS_HEADER_READ_TIMEOUT", default_value = "10", value_parser = values::positive_duration)]
    pub header_read_timeout: Duration,

    /// Most connections served at once (keep it under the open-file limit, `ulimit -n`). More
    /// clients wait in the listen backlog until a connection closes.
    #[arg(long, global = true, env = "JIRA_USERPROPS_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Failed Basic logins as one account that one client (IP address) may make within
    /// --login-failure-window; after that its logins as that account are refused unchecked (401,
    /// X-Seraph-LoginReason: AUTHENTICATION_DENIED) for a window. Wrong bearer tokens count per
    /// client on the admin API only. 0 turns this off.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_LOGIN_FAILURES",
        default_value_t = 20
    )]
    pub login_failures: u32,

    /// The window of --login-failures: failures older than this are forgotten, and a refused
    /// client is refused for this long.
    #[arg(long, global = true, env = "JIRA_USERPROPS_LOGIN_FAILURE_WINDOW", default_value = "60", value_parser = values::positive_duration)]
    pub login_failure_window: Duration,

    /// On SIGINT or SIGTERM, how long in-flight requests get to finish.
    #[arg(
        long,
        global = true,
        env = "JIRA_USERPROPS_SHUTDOWN_GRACE",
        default_value = "10",
        value_parser = values::duration
    )]
    pub shutdown_grace: Duration,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// The database connection settings.
    pub fn database_options(&self) -> DatabaseOptions {
        DatabaseOptions {
            pool_size: self.db_pool_size,
            pipelines: self.db_pipelines,
            connect_timeout: self.db_connect_timeout,
            acquire_timeout: self.db_acquire_timeout,
            max_waiting: self.db_max_waiting,
            startup_timeout: self.db_startup_timeout,
            cache_bytes: self.cache_size.saturating_mul(1 << 20),
            clock: crate::clock::system(),
            // Well within the request timeout, which starts earlier (at the end of the headers):
            // a statement gives up on a lock before its request is answered 503.
            lock_timeout: self.request_timeout() / 2,
        }
    }

    /// What the HTTP layer runs with.
    pub fn settings(&self) -> Settings {
        Settings {
            public_url: self.public_url.clone(),
            request_timeout: self.request_timeout(),
            admin_token: self.admin_token.clone(),
            journal_size: self.journal_size,
            journal_bodies: self.journal_bodies,
            faults: self.faults.clone().unwrap_or_default(),
            login_failures: self.login_failures,
            login_failure_window: self.login_failure_window,
            site_domains: self.site_domains.clone(),
            max_sites: self.max_sites,
            oauth_token_ttl: self.oauth_token_ttl,
            clock: crate::clock::system(),
            seeds: Vec::new(),
        }
    }

    /// How connections are served.
    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            shutdown_grace: self.shutdown_grace,
            header_read_timeout: self.header_read_timeout,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The command line and environment, with the secrets that `*_FILE` options name read in.
    pub fn load() -> Result<Self, String> {
        let matches = Self::command().get_matches();
        let config = Self::from_arg_matches(&matches)
            .unwrap_or_else(|error| error.format(&mut Self::command()).exit());
        config.with_secret_files(&matches)
    }

    /// Reads the secrets that `--admin-token-file` and `--database-url-file` name. A file wins
    /// over a value from the environment or the default, and a flag over a file named in the
    /// environment; a value and its file both given as flags are refused.
    pub fn with_secret_files(mut self, matches: &ArgMatches) -> Result<Self, String> {
        if let Some(path) = &self.admin_token_file
            && values::file_wins(matches, "admin_token", "admin_token_file")?
        {
            self.admin_token = Some(values::secret_file(path)?.into());
        }
        if self.admin_token.as_deref().is_some_and(str::is_empty) {
            // An empty variable is how compose files leave a setting out; an empty flag would
            // turn the admin API on with no token that could open it.
            if matches.value_source("admin_token") == Some(ValueSource::EnvVariable) {
                self.admin_token = None;
            } else {
                return Err("--admin-token must not be empty".to_owned());
            }
        }
        if let Some(path) = &self.database_url_file
            && values::file_wins(matches, "database_url", "database_url_file")?
        {
            self.database_url = values::secret_file(path)?.into();
        }
        Ok(self)
    }
}

fn parse_faults(json: &str) -> Result<FaultRules, String> {
    let rules: FaultRules = serde_json::from_str(json).map_err(|e| e.to_string())?;
    rules.validate()?;
    Ok(rules)
}

fn parse_log_filter(filter: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(|_| filter.to_owned())
        .map_err(|e| e.to_string())
}

/// `--public-url`'s parser: [`parse_public_url`], whose refusals are told without quoting the
/// text (clap's own message would, and it may hold a password).
#[derive(Debug, Clone, Copy)]
struct PublicUrlParser;

impl clap::builder::TypedValueParser for PublicUrlParser {
    type Value = String;

    fn parse_ref(
        &self,
        _command: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let refused = |reason: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid --public-url: {reason}\n"),
            )
        };
        let text = value.to_str().ok_or_else(|| refused("not UTF-8"))?;
        parse_public_url(text).map_err(|reason| refused(&reason))
    }
}

/// Reads `--public-url`: an http:// or https:// base (a host, a port and a path at most), given
/// back as written less any trailing '/'.
///
/// Links carry the text as written, not `Url`'s rewriting of it (which adds a '/' after a bare
/// host, lower-cases, drops a default port), so the text is checked as written too: `Url` would
/// also take an upper-case scheme, tabs and newlines, `\` for `/` and extra slashes before the
/// host, and these are refused. A user name or password is refused: every `self` link would
/// hand it to every client.
fn parse_public_url(text: &str) -> Result<String, String> {
    const NOT_A_BASE: &str = "the public URL must be a base such as https://jira.example.test";
    let base = text.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err("the public URL must start with http:// or https://".to_owned());
    }
    // Only what a URI may hold, as links carry it unescaped: RFC 3986's characters, `%` only
    // before two hex digits.
    let bytes = base.as_bytes();
    let uri_char = |(at, &byte): (usize, &u8)| match byte {
        b'%' => bytes
            .get(at + 1..at + 3)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)),
        _ => byte.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&byte),
    };
    if !bytes.iter().enumerate().all(uri_char) {
        return Err(format!(
            "{NOT_A_BASE}, written with URI characters only (percent-encode the others)"
        ));
    }
    let url = Url::parse(base).map_err(|e| format!("{NOT_A_BASE}: {e}"))?;
    // What stands between "//" and the path, as written; `Url` skips a '/' too many there.
    let authority = base.split('/').nth(2).unwrap_or_default();
    if authority.contains('@') {
        return Err("the public URL must not carry a user name or password".to_owned());
    }
    if authority.is_empty()
        || url.port() == Some(0)
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(NOT_A_BASE.to_owned());
    }
    Ok(base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_no_secret() {
        let config = Config::try_parse_from([
            "jira-userprops",
            "--admin-token",
            "admin-secret-1",
            "--database-url",
            "postgres://u:db-secret-2@localhost/jira",
            "--seed-json",
            r#"{"users":[{"accountId":"a","email":"a@x.io","apiTokens":["seed-secret-4"]}]}"#,
        ])
        .unwrap();
        assert_eq!(config.admin_token.as_deref(), Some("admin-secret-1"));
        for debug in [format!("{config:?}"), format!("{:?}", config.settings())] {
            assert!(debug.contains("admin_token"), "{debug}");
            assert!(!debug.contains("secret-"), "{debug}");
        }
        let pinned = Config::try_parse_from([
            "jira-userprops",
            "apps",
            "create",
            "--name",
            "sync",
            "--client-secret",
            "app-secret-3",
        ])
        .unwrap();
        let debug = format!("{pinned:?}");
        assert!(debug.contains("client_secret"), "{debug}");
        assert!(!debug.contains("secret-"), "{debug}");
    }

    #[test]
    fn durations_on_the_command_line_keep_their_units() {
        let config = Config::try_parse_from([
            "jira-userprops",
            "--request-timeout",
            "1500ms",
            "--login-failure-window",
            "2m",
            "--db-acquire-timeout",
            "7",
        ])
        .unwrap();
        assert_eq!(config.request_timeout(), Duration::from_millis(1500));
        assert_eq!(
            config.settings().login_failure_window,
            Duration::from_secs(120)
        );
        assert_eq!(
            config.database_options().acquire_timeout,
            Duration::from_secs(7)
        );
        assert_eq!(
            config.serve_options().shutdown_grace,
            Duration::from_secs(10)
        );
    }

    #[test]
    fn public_urls_lose_their_trailing_slash() {
        assert_eq!(
            parse_public_url("https://j.example/").unwrap(),
            "https://j.example"
        );
        assert_eq!(
            parse_public_url("http://h:8080/jira").unwrap(),
            "http://h:8080/jira"
        );
    }

    #[test]
    fn public_urls_come_back_as_written() {
        for (given, expected) in [
            ("https://j.example", "https://j.example"),
            ("https://j.example//", "https://j.example"),
            ("https://Jira.Example.test/", "https://Jira.Example.test"),
            ("http://h:80/jira/", "http://h:80/jira"),
            ("http://[::1]:8080/", "http://[::1]:8080"),
            ("http://127.0.0.1:8080/a/b", "http://127.0.0.1:8080/a/b"),
            ("https://j.example/a%20b", "https://j.example/a%20b"),
        ] {
            assert_eq!(parse_public_url(given).as_deref(), Ok(expected), "{given}");
        }
    }

    #[test]
    fn public_urls_must_be_http_bases() {
        for bad in [
            "ftp://x",
            "j.example",
            "j.example:8080",
            "https://",
            "https:///",
            "https:///j.example",
            "https:/j.example",
            "https:j.example",
            "HTTPS://j.example",
            "Http://j.example",
            "https://x?a=1",
            "https://x?",
            "https://x/#top",
            "https://a b",
            " https://j.example",
            "https://j.example ",
            "https://j.example/a b",
            "https://j.ex\tample",
            "https://j.example/\n",
            "https://j.example\\jira",
            "https://user:secret@j.example",
            "https://user@j.example",
            "https://@j.example",
            "https://:8080",
            "https://j.example:99999",
            "https://[::1",
            "http://h:0",
            "http://h/é",
            "http://h/<x>",
            "http://h/{y}",
            "http://h/%zz",
            "http://h/a%2",
            "http://h/\"q\"",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_refused_public_url_is_not_quoted() {
        let refused = Config::try_parse_from([
            "jira-userprops",
            "--public-url",
            "https://user:TopSecretPw@j.example",
        ])
        .expect_err("refused");
        let message = refused.to_string();
        assert!(message.contains("user name or password"), "{message}");
        assert!(!message.contains("TopSecretPw"), "{message}");
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}
