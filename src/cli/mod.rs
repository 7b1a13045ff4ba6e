//! The subcommands: serve (the default), migrate, users, tokens, apps, export, import,
//! healthcheck.

mod admin;
mod healthcheck;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::{Command, Config};
use crate::domain::SiteKey;
use crate::http::{AppState, router};
use crate::service::apps::AppService;
use crate::service::{AdminService, SiteService};
use crate::store::Store;
use crate::{seed, shutdown_signal};

/// SIGINT or SIGTERM, from the moment the command starts.
type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs what the command line asks for.
pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    // Listened for first: in a container the binary is PID 1, which a signal without a handler
    // does not stop, so a start still waiting for its database could not be stopped at all.
    let stopped: Stopped = Box::pin(shutdown_signal());
    let ran = run_until_stopped(config, stopped).await;
    // Also after a signal: a registration cut off half-way would leave a service account
    // without some of its users for good.
    crate::service::apps::registrations_ended(config.serve_options().shutdown_grace).await;
    ran
}

async fn run_until_stopped(config: &Config, stopped: Stopped) -> anyhow::Result<ExitCode> {
    match &config.command {
        None | Some(Command::Serve) => serve_until_stopped(config, stopped).await?,
        Some(Command::Migrate) => {
            let migrate = async {
                // Closed, not dropped: SQLite folds its WAL into the file as the last
                // connection closes, so the file alone is whole afterwards.
                open(config).await?.close().await;
                Ok(())
            };
            unless_stopped(stopped, migrate).await?;
        }
        Some(Command::Users { command }) => {
            unless_stopped(stopped, admin::users(config, command)).await?;
        }
        Some(Command::Tokens { command }) => {
            unless_stopped(stopped, admin::tokens(config, command)).await?;
        }
        Some(Command::Apps { command }) => {
            unless_stopped(stopped, admin::apps(config, command)).await?;
        }
        Some(Command::Export { file }) => {
            unless_stopped(stopped, admin::export(config, file)).await?
        }
        Some(Command::Import { file }) => {
            unless_stopped(stopped, admin::import(config, file)).await?
        }
        Some(Command::Healthcheck { url }) => {
            return Ok(healthcheck::healthcheck(config, url.as_deref()).await);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `work`, unless a signal comes first. Each of a command's writes is one transaction, so a
/// stopped command leaves each whole or undone; one whose commit raced the signal may have
/// stored a token or secret it did not get to print.
async fn unless_stopped(
    stopped: Stopped,
    work: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::select! {
        done = work => done,
        () = stopped => anyhow::bail!("stopped by a signal before it finished"),
    }
}

/// Connects (with retries) and migrates.
async fn open(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect_with_retry(&config.database_url, &config.database_options()).await?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot use the database at {}", store.location()))?;
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

/// Runs the server until `stopped`; stopped while starting, it stops there.
async fn serve_until_stopped(config: &Config, mut stopped: Stopped) -> anyhow::Result<()> {
    let started = tokio::select! {
        started = start(config) => started?,
        () = &mut stopped => {
            tracing::info!("stopped while starting");
            return Ok(());
        }
    };
    let Started {
        store,
        state,
        listener,
        address,
    } = started;
    // Past the signal's race: a token stored is a token shown.
    if let Some(first) = seed::ensure_first_admin(&AdminService::new(store.clone())).await? {
        print_first_admin(&first, config, address);
    }
    tracing::info!(%address, "listening");
    let serve_options = config.serve_options();
    crate::serve(listener, router(state), stopped, &serve_options).await?;
    // Before the store closes: they write to it.
    crate::service::apps::registrations_ended(serve_options.shutdown_grace).await;
    // A connection stuck on an unreachable database would hold the exit for ever.
    if tokio::time::timeout(serve_options.shutdown_grace, store.close())
        .await
        .is_err()
    {
        tracing::warn!("the database's connections did not close within the grace period");
    }
    tracing::info!("stopped");
    Ok(())
}

/// What serving needs, once started.
struct Started {
    store: Store,
    state: AppState,
    listener: TcpListener,
    address: SocketAddr,
}

/// Opens the database, applies the seed and binds the listener: what a signal may cut short.
async fn start(config: &Config) -> anyhow::Result<Started> {
    // A bad seed stops the start before anything is opened or changed.
    let inline = Path::new("JIRA_USERPROPS_SEED_JSON");
    let seed = match (&config.seed, &config.seed_json) {
        (Some(path), _) => Some((path.as_path(), seed::load(path)?)),
        (None, Some(text)) => Some((inline, seed::parse(inline, text)?)),
        (None, None) => None,
    };
    let store = open(config).await?;
    let admin = AdminService::new(store.clone());
    let mut settings = config.settings();
    if let Some((path, seed)) = seed {
        settings.seeds = seed.states();
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
    if let Some(path) = &config.address_file {
        // Only a convenience for `healthcheck`, which falls back to --listen: a read-only file
        // system (`docker run --read-only`) must not stop the server.
        if let Err(error) = write_address(path, address) {
            tracing::warn!(error = %format!("{error:#}"), "healthcheck will probe --listen");
        }
    }
    let state = AppState::new(store.clone(), settings)?;
    Ok(Started {
        store,
        state,
        listener,
        address,
    })
}

/// Writes the address served, whole or not at all (a healthcheck may read it at any moment).
fn write_address(path: &Path, address: SocketAddr) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, address.to_string())
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("cannot write the address file {}", path.display()))
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
