//! The subcommands: serve (the default), migrate, users, tokens, export, import, healthcheck.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::client::conn::http1::handshake;
use hyper::header::HOST;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::config::{Command, Config, TokensCommand, UsersCommand};
use crate::domain::{AccountId, DisplayName, Email, NewUser, SiteKey};
use crate::http::{AppState, router};
use crate::service::apps::AppService;
use crate::service::{AdminService, SiteService};
use crate::store::Store;
use crate::store::admin::TokenLimits;
use crate::{seed, shutdown_signal};

/// Runs what the command line asks for.
pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    match &config.command {
        None | Some(Command::Serve) => serve_until_stopped(config).await?,
        Some(Command::Migrate) => {
            open(config).await?;
        }
        Some(Command::Users { command }) => users(config, command).await?,
        Some(Command::Tokens {
            command: TokensCommand::Create { account_id },
        }) => {
            let (admin, site) = administer(config).await?;
            let token = admin
                .create_token(site, account_id, &TokenLimits::default())
                .await?;
            println!("{}", json!({"id": token.id, "token": token.token}));
        }
        Some(Command::Export { file }) => {
            let (admin, site) = administer(config).await?;
            let snapshot = admin.export(site).await?;
            if file == Path::new("-") {
                tokio::io::stdout().write_all(&snapshot).await?;
            } else {
                tokio::fs::write(file, &snapshot)
                    .await
                    .with_context(|| format!("cannot write {}", file.display()))?;
            }
        }
        Some(Command::Import { file }) => {
            let text = if file == Path::new("-") {
                let mut text = Vec::new();
                tokio::io::stdin().read_to_end(&mut text).await?;
                text
            } else {
                tokio::fs::read(file)
                    .await
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let (admin, site) = administer(config).await?;
            admin.import(site, file, &text).await?;
        }
        Some(Command::Healthcheck { url }) => return Ok(healthcheck(config, url.as_deref()).await),
    }
    Ok(ExitCode::SUCCESS)
}

/// Connects (with retries) and migrates.
async fn open(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect_with_retry(&config.database_url, &config.database_options()).await?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    tracing::info!(database = %store.location(), "database ready");
    Ok(store)
}

/// The admin service over the store, and the key of the site `--site` names.
async fn administer(config: &Config) -> anyhow::Result<(AdminService, SiteKey)> {
    let store = open(config).await?;
    let site = store
        .site_named(&config.site)
        .await?
        .with_context(|| format!("there is no site named {:?}", config.site))?;
    Ok((AdminService::new(store), site.key))
}

async fn users(config: &Config, command: &UsersCommand) -> anyhow::Result<()> {
    let (admin, site) = administer(config).await?;
    match command {
        UsersCommand::Add {
            account_id,
            email,
            display_name,
            admin: is_admin,
        } => {
            let user = NewUser {
                account_id: AccountId::parse(account_id.as_str())?,
                email: Email::parse(email.as_str())
                    .map_err(|_| anyhow::anyhow!("email {email:?} is not an email address"))?,
                display_name: DisplayName::parse(display_name.as_deref().unwrap_or(email))?,
                admin: *is_admin,
                active: true,
            };
            let user = admin.create_user(site, user, Vec::new()).await?;
            let token = admin
                .create_token(site, &user.account_id, &TokenLimits::default())
                .await?;
            println!(
                "{}",
                json!({"accountId": user.account_id, "email": user.email, "displayName": user.display_name,
                       "admin": user.admin, "active": user.active, "tokenId": token.id, "token": token.token})
            );
        }
        UsersCommand::List => {
            for user in admin.users(site).await? {
                println!(
                    "{}",
                    json!({"accountId": user.account_id, "email": user.email, "displayName": user.display_name,
                           "admin": user.admin, "active": user.active})
                );
            }
        }
    }
    Ok(())
}

/// GET {url}/healthz over plain HTTP/1.1, so that a container needs no curl.
async fn healthcheck(config: &Config, url: Option<&str>) -> ExitCode {
    let base = url.map_or_else(
        || format!("http://{}", reachable(&config.listen)),
        str::to_owned,
    );
    let probe = async {
        let target = HealthTarget::of(&base)?;
        let stream = TcpStream::connect(&target.address).await?;
        let (mut sender, connection) = handshake(TokioIo::new(stream)).await?;
        // Errors of the connection also fail `send_request`, which reports them.
        tokio::spawn(connection);
        let request = Request::get(target.path)
            .header(HOST, target.host)
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        anyhow::Ok(response.status() == StatusCode::OK)
    };
    match tokio::time::timeout(Duration::from_secs(5), probe).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => {
            eprintln!("jira-userprops: {base} is not healthy");
            ExitCode::FAILURE
        }
        Ok(Err(error)) => {
            eprintln!("jira-userprops: {base} did not answer: {error:#}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("jira-userprops: {base} did not answer within 5 s");
            ExitCode::FAILURE
        }
    }
}

/// Where the healthcheck of a base URL goes.
#[derive(Debug)]
struct HealthTarget {
    /// `host:port` to connect to, port 80 unless given.
    address: String,
    /// The base's path with `/healthz` after it.
    path: String,
    /// The Host header: the host, and the port when the URL names one.
    host: String,
}

impl HealthTarget {
    /// Reads a plain http:// base URL; user info, query and fragment have no place in it.
    fn of(base: &str) -> anyhow::Result<Self> {
        let url = match Url::parse(base) {
            Ok(url) if url.scheme() == "http" => url,
            // "127.0.0.1:8080" is relative; "localhost:8080" reads as the scheme "localhost".
            Ok(_) | Err(url::ParseError::RelativeUrlWithoutBase) => {
                anyhow::bail!("healthcheck speaks plain http:// only")
            }
            Err(error) => return Err(error).context("not a valid URL"),
        };
        anyhow::ensure!(
            url.username().is_empty() && url.password().is_none(),
            "healthcheck takes no user name or password"
        );
        anyhow::ensure!(
            url.query().is_none() && url.fragment().is_none(),
            "healthcheck takes a base URL, without query or fragment"
        );
        // Never `None` for http://, which needs a host; a bracketed IPv6 literal stays bracketed.
        let name = url.host_str().context("no host")?;
        let host = match url.port() {
            Some(port) => format!("{name}:{port}"),
            None => name.to_owned(),
        };
        Ok(Self {
            address: format!("{name}:{}", url.port().unwrap_or(80)),
            path: format!("{}/healthz", url.path().trim_end_matches('/')),
            host,
        })
    }
}

/// The listen address as a client reaches it: an unspecified IP becomes loopback.
fn reachable(listen: &str) -> String {
    match listen.parse::<SocketAddr>() {
        Ok(mut address) if address.ip().is_unspecified() => {
            address.set_ip(match address {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
            address.to_string()
        }
        _ => listen.to_owned(),
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve_until_stopped(config: &Config) -> anyhow::Result<()> {
    // A bad seed stops the start before anything is opened or changed.
    let seed = match &config.seed {
        Some(path) => Some((path, seed::load(path)?)),
        None => None,
    };
    let store = open(config).await?;
    let admin = AdminService::new(store.clone());
    let settings = config.settings();
    if let Some((path, seed)) = seed {
        let sites = SiteService::new(store.clone(), settings.max_sites, settings.clock.clone());
        let apps = AppService::new(store.clone(), settings.clock.clone());
        let report = seed::apply(&admin, &sites, &apps, path, seed).await?;
        tracing::info!(
            users = report.users,
            tokens = report.tokens,
            properties = report.properties,
            "seed applied"
        );
    }
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    if let Some(first) = seed::ensure_first_admin(&admin).await? {
        print_first_admin(&first, config, address);
    }
    let state = AppState::new(store.clone(), settings)?;
    // Before "listening": whoever waits for that line may signal at once.
    let shutdown = shutdown_signal();
    tracing::info!(%address, "listening");
    crate::serve(listener, router(state), shutdown, &config.serve_options()).await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Shown once, on stderr apart from the log: the token is stored only as a digest and cannot be
/// shown again.
fn print_first_admin(admin: &seed::FirstAdmin, config: &Config, address: SocketAddr) {
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", reachable(&address.to_string())));
    eprintln!(
        "\nNo users yet, so an administrator was created. The token is shown only this once.\n\
         \n  email:     {email}\n  accountId: {id}\n  API token: {token}\n\
         \nTry it:\n  curl -u '{email}:{token}' '{base}/rest/api/3/user/properties?accountId={id}'\n",
        email = admin.email,
        id = admin.account_id,
        token = admin.token,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn target(base: &str) -> (String, String, String) {
        let target = HealthTarget::of(base).unwrap_or_else(|e| panic!("{base}: {e:#}"));
        (target.address, target.path, target.host)
    }

    #[test]
    fn healthchecks_go_to_the_healthz_under_the_base() {
        for (base, address, path, host) in [
            (
                "http://127.0.0.1:8080",
                "127.0.0.1:8080",
                "/healthz",
                "127.0.0.1:8080",
            ),
            (
                "http://127.0.0.1:8080/",
                "127.0.0.1:8080",
                "/healthz",
                "127.0.0.1:8080",
            ),
            ("http://[::1]:8080", "[::1]:8080", "/healthz", "[::1]:8080"),
            ("http://[::1]", "[::1]:80", "/healthz", "[::1]"),
            ("http://h:8080/jira", "h:8080", "/jira/healthz", "h:8080"),
            ("http://h:8080/jira/", "h:8080", "/jira/healthz", "h:8080"),
            ("http://h/a/b", "h:80", "/a/b/healthz", "h"),
            ("http://h", "h:80", "/healthz", "h"),
            ("http://h:80", "h:80", "/healthz", "h"),
            ("HTTP://H:8080", "h:8080", "/healthz", "h:8080"),
        ] {
            assert_eq!(
                target(base),
                (address.to_owned(), path.to_owned(), host.to_owned()),
                "{base}"
            );
        }
    }

    #[test]
    fn healthchecks_refuse_what_is_not_a_plain_http_base() {
        for (base, message) in [
            ("https://h", "plain http:// only"),
            ("127.0.0.1:8080", "plain http:// only"),
            ("localhost:8080", "plain http:// only"),
            ("", "plain http:// only"),
            ("http://", "not a valid URL"),
            ("http://[::1", "not a valid URL"),
            ("http://h:99999", "not a valid URL"),
            ("http://u:p@h", "no user name or password"),
            ("http://h/?x=1", "without query or fragment"),
            ("http://h/#x", "without query or fragment"),
        ] {
            match HealthTarget::of(base) {
                Ok(target) => panic!("{base:?} was taken: {target:?}"),
                Err(error) => assert!(
                    format!("{error:#}").contains(message),
                    "{base:?}: {error:#}"
                ),
            }
        }
    }
}
