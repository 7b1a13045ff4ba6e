//! The subcommands that change or read the store: users, tokens, apps, export and import.

use std::path::Path;

use anyhow::Context as _;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{administer, open};
use crate::clock::parse_rfc3339_ms;
use crate::config::{AppsCommand, Config, TokensCommand, UsersCommand};
use crate::credentials::{TokenDigest, generate_token};
use crate::domain::{AppKind, NewUser, Scopes};
use crate::http::apps::AppBody;
use crate::service::admin::AdminService;
use crate::service::apps::{AppService, NewApp};
use crate::store::admin::{TokenEntry, TokenLimits};

pub(super) async fn users(config: &Config, command: &UsersCommand) -> anyhow::Result<()> {
    let (admin, site) = administer(config).await?;
    match command {
        UsersCommand::Add {
            account_id,
            email,
            display_name,
            admin: is_admin,
        } => {
            let user = NewUser {
                admin: *is_admin,
                ..NewUser::parse(account_id, email, display_name.as_deref())?
            };
            // The user and their token in one write: never a user left without one.
            let token = generate_token()?;
            let digest = TokenDigest::of(&token);
            let token_id = digest.token_id();
            let entry = TokenEntry::classic(digest);
            let user = admin.create_user(site, user, vec![entry]).await?;
            println!(
                "{}",
                json!({"accountId": user.account_id, "email": user.email, "displayName": user.display_name,
                       "admin": user.admin, "active": user.active, "tokenId": token_id.as_str(), "token": token})
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

pub(super) async fn tokens(config: &Config, command: &TokensCommand) -> anyhow::Result<()> {
    let TokensCommand::Create {
        account_id,
        scopes,
        expires_at,
    } = command;
    let expires_at = expires_at
        .as_deref()
        .map(parse_rfc3339_ms)
        .transpose()
        .map_err(|reason| anyhow::anyhow!("--expires-at {reason}"))?;
    let limits = TokenLimits {
        scopes: (!scopes.is_empty())
            .then(|| Scopes::of(scopes))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--scope: {e}"))?,
        expires_at,
    };
    let (admin, site) = administer(config).await?;
    let account_id = AdminService::account(account_id)?;
    let token = admin.create_token(site, &account_id, &limits).await?;
    println!("{}", json!({"id": token.id, "token": token.token}));
    Ok(())
}

pub(super) async fn apps(config: &Config, command: &AppsCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    let apps = AppService::new(store.clone(), crate::clock::system());
    match command {
        AppsCommand::Create {
            name,
            kind,
            callback_url,
            scopes,
            auto_consent,
            client_id,
            client_secret,
            sites: site_names,
            admin,
        } => {
            let mut sites = Vec::with_capacity(site_names.len());
            for name in site_names {
                let site = store.site_named(name).await?;
                sites.push(
                    site.with_context(|| format!("there is no site named {name:?}"))?
                        .key,
                );
            }
            let new = NewApp {
                name: name.clone(),
                kind: AppKind::parse(kind),
                callback_url: callback_url.clone(),
                scopes: Scopes::of(scopes).map_err(|e| anyhow::anyhow!("--scope: {e}"))?,
                auto_consent: *auto_consent,
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                sites,
                admin: *admin,
            };
            let created = apps.create_app(new).await?;
            println!("{}", serde_json::to_string(&AppBody::created(&created))?);
        }
        AppsCommand::List => {
            for app in apps.apps().await? {
                println!("{}", serde_json::to_string(&AppBody::from(&app))?);
            }
        }
        AppsCommand::Delete { client_id } => {
            let sites: Vec<_> = store.sites().await?.iter().map(|site| site.key).collect();
            apps.delete_app(client_id, &sites).await?;
        }
    }
    Ok(())
}

/// Writes the site's snapshot to `file`; `-` is standard output.
pub(super) async fn export(config: &Config, file: &Path) -> anyhow::Result<()> {
    let (admin, site) = administer(config).await?;
    let snapshot = admin.export(site).await?;
    if file == Path::new("-") {
        let mut stdout = tokio::io::stdout();
        stdout.write_all(&snapshot).await?;
        // tokio's stdout may hold the last bytes until flushed.
        stdout.flush().await?;
    } else {
        tokio::fs::write(file, &snapshot)
            .await
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(())
}

/// Replaces the site's state with the snapshot in `file`; `-` is standard input.
pub(super) async fn import(config: &Config, file: &Path) -> anyhow::Result<()> {
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
    admin.import(site, file, text).await?;
    Ok(())
}
