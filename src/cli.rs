//! The subcommands: serve (the default), migrate, users, tokens, export, import, healthcheck.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::config::{Command, Config, TokensCommand, UsersCommand};
use crate::domain::{AccountId, DisplayName, Email, NewUser};
use crate::http::{AppState, router};
use crate::service::AdminService;
use crate::store::Store;
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
            let admin = AdminService::new(open(config).await?);
            let token = admin.create_token(account_id).await?;
            println!("{}", json!({"id": token.id, "token": token.token}));
        }
        Some(Command::Export { file }) => {
            let admin = AdminService::new(open(config).await?);
            let snapshot = admin.export().await?;
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
            let admin = AdminService::new(open(config).await?);
            admin.import(file, &text).await?;
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

async fn users(config: &Config, command: &UsersCommand) -> anyhow::Result<()> {
    let admin = AdminService::new(open(config).await?);
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
            let user = admin.create_user(user, Vec::new()).await?;
            let token = admin.create_token(&user.account_id).await?;
            println!(
                "{}",
                json!({"accountId": user.account_id, "email": user.email, "displayName": user.display_name,
                       "admin": user.admin, "active": user.active, "tokenId": token.id, "token": token.token})
            );
        }
        UsersCommand::List => {
            for user in admin.users().await? {
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
        let rest = base
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
            .and_then(|_| base.get(7..))
            .context("healthcheck speaks plain http:// only")?
            .trim_end_matches('/');
        let (host, prefix) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
        let address = if has_port {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let mut stream = TcpStream::connect(address).await?;
        let request = format!(
            "GET /{prefix}{}healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
            if prefix.is_empty() { "" } else { "/" }
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(response.starts_with(b"HTTP/1.1 200 ") || response.starts_with(b"HTTP/1.0 200 "))
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
    if let Some((path, seed)) = &seed {
        let report = seed::apply(&admin, path, seed).await?;
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
    let state = AppState::new(store.clone(), config.settings())?;
    tracing::info!(%address, "listening");
    crate::serve(
        listener,
        router(state),
        shutdown_signal(),
        &config.serve_options(),
    )
    .await?;
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
