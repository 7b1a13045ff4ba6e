//! The `jira-userprops` binary: configuration, logging, storage, then serving.

use std::io::IsTerminal as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use jira_userprops::config::{Config, LogFormat};
use jira_userprops::http::{AppState, router};
use jira_userprops::store::Store;
use jira_userprops::{seed, serve, shutdown_signal};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    init_tracing(&config);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("jira-userprops: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    // Checked when the command line was parsed.
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    // A bad seed stops the start before anything is opened or changed.
    let seed = match &config.seed {
        Some(path) => Some((path, seed::load(path)?)),
        None => None,
    };
    let store = Store::connect_with_retry(&config.database_url, &config.database_options()).await?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    tracing::info!(database = %store.location(), "database ready");
    if let Some((path, seed)) = &seed {
        let report = seed::apply(&store, path, seed).await?;
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
    if let Some(admin) = seed::ensure_first_admin(&store).await? {
        print_first_admin(&admin, &config, address);
    }
    let state = AppState::new(store.clone(), config.settings())?;
    tracing::info!(%address, "listening");
    serve(
        listener,
        router(state),
        shutdown_signal(),
        config.shutdown_grace(),
    )
    .await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Shown once, on stderr apart from the log: the token is stored only as a digest and cannot be
/// shown again.
fn print_first_admin(admin: &seed::FirstAdmin, config: &Config, address: SocketAddr) {
    let base = config.public_url.clone().unwrap_or_else(|| {
        let mut reachable = address;
        if address.ip().is_unspecified() {
            reachable.set_ip(match address {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{reachable}")
    });
    eprintln!(
        "\nNo users yet, so an administrator was created. The token is shown only this once.\n\
         \n  email:     {email}\n  accountId: {id}\n  API token: {token}\n\
         \nTry it:\n  curl -u '{email}:{token}' '{base}/rest/api/3/user/properties?accountId={id}'\n",
        email = admin.email,
        id = admin.account_id,
        token = admin.token,
    );
}
