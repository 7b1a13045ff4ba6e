//! Applying a validated seed through the services, and the first administrator of an empty
//! database.

use std::path::Path;

use super::{Seed, fail};
use crate::credentials::{TokenDigest, generate_token};
use crate::domain::{AccountId, SiteKey, User};
use crate::service::apps::AppService;
use crate::service::sites::NewSite;
use crate::service::{AdminService, SiteService};
use crate::store::admin::TokenEntry;
use crate::store::{SeedConflict, SeedData, SeedReport};

/// Applies a loaded seed: the default site's part, then each site's, making the sites that do
/// not exist yet. A seed user whose email or token another account of its site already holds
/// stops it; each site's part is all or nothing.
pub async fn apply(
    admin: &AdminService,
    sites: &SiteService,
    apps: &AppService,
    path: &Path,
    seed: Seed,
) -> anyhow::Result<SeedReport> {
    // Every site an app names is in the seed or in the database, before anything is stored.
    for (index, app) in seed.apps.iter().enumerate() {
        // A registered app is left as it is, whatever its sites.
        if apps.app(&app.client_id).await?.is_some() {
            continue;
        }
        let entry = format!("apps[{index}] ({:?})", app.client_id);
        for name in app.site_names() {
            let in_seed = seed.sites.iter().any(|site| site.name.as_str() == name);
            if !in_seed && sites.named(name).await?.is_none() {
                return Err(fail(path, entry, format!("there is no site {name:?}")).into());
            }
        }
    }
    let mut total = apply_to(admin, SiteKey::DEFAULT, path, "", &seed.data).await?;
    for (index, site) in seed.sites.into_iter().enumerate() {
        let entry = format!("sites[{index}] ({:?})", site.name.as_str());
        let report = match sites.named(site.name.as_str()).await? {
            Some(found) if site.id.is_some_and(|id| id != found.id) => {
                let reason = format!("the site exists with another id, {}", found.id);
                return Err(fail(path, entry, reason).into());
            }
            Some(found) => apply_to(admin, found.key, path, &entry, &site.data).await?,
            None => {
                let name = site.name.clone();
                // Kept for the case below; a seed is copied once, at start.
                let data = site.data.clone();
                let new = NewSite {
                    name: Some(site.name),
                    id: site.id,
                    seed: site.data,
                };
                match sites.create(new).await {
                    Ok((_, report)) => report,
                    // Another instance starting on the same seed made it meanwhile: its part
                    // is applied there as to any site that exists.
                    Err(error) => match sites.named(name.as_str()).await? {
                        Some(found) if site.id.is_none_or(|id| id == found.id) => {
                            apply_to(admin, found.key, path, &entry, &data).await?
                        }
                        _ => return Err(fail(path, &entry, error).into()),
                    },
                }
            }
        };
        total.users += report.users;
        total.tokens += report.tokens;
        total.properties += report.properties;
    }
    for (index, app) in seed.apps.into_iter().enumerate() {
        let entry = format!("apps[{index}] ({:?})", app.client_id);
        if apps.app(&app.client_id).await?.is_some() {
            continue;
        }
        let mut keys = Vec::with_capacity(app.sites.len());
        for name in app.site_names() {
            let site = sites.named(name).await?;
            let site =
                site.ok_or_else(|| fail(path, &entry, format!("there is no site {name:?}")))?;
            keys.push(site.key);
        }
        let new = app.to_new_app(keys).map_err(|e| fail(path, &entry, e))?;
        if let Err(error) = apps.create_app(new).await {
            // Registered meanwhile by another instance starting on the same seed: left as is.
            if apps.app(&app.client_id).await?.is_none() {
                return Err(fail(path, &entry, error).into());
            }
        }
    }
    Ok(total)
}

/// Applies one site's part of a seed; `site_entry` names the site in errors (empty for the
/// default site).
async fn apply_to(
    admin: &AdminService,
    site: SiteKey,
    path: &Path,
    site_entry: &str,
    seed: &SeedData,
) -> anyhow::Result<SeedReport> {
    let report = admin.apply_seed(site, seed).await?;
    let Some(conflict) = report.conflict else {
        return Ok(report);
    };
    let (index, reason) = match conflict {
        SeedConflict::Email(index) => (
            index,
            "its email belongs to another account in the database",
        ),
        SeedConflict::Token(index) => (
            index,
            "one of its apiTokens belongs to another account in the database",
        ),
        SeedConflict::Taken(index) => (index, "its accountId is taken in the database"),
    };
    let entry = seed.users.get(index).map_or_else(
        || format!("users[{index}]"),
        |user| format!("users[{index}] ({:?})", user.account_id),
    );
    let entry = if site_entry.is_empty() {
        entry
    } else {
        format!("{site_entry}: {entry}")
    };
    Err(fail(path, entry, reason).into())
}

/// The administrator made for a database that has no users and was given no seed.
pub struct FirstAdmin {
    /// Their account id.
    pub account_id: String,
    /// Their email, for Basic authentication.
    pub email: String,
    /// Their API token, shown once and stored only as a digest.
    pub token: String,
}

/// Creates an administrator when the database has no users at all; `None` when it has some.
pub async fn ensure_first_admin(admin: &AdminService) -> anyhow::Result<Option<FirstAdmin>> {
    if admin.user_count(SiteKey::DEFAULT).await? > 0 {
        return Ok(None);
    }
    let token = generate_token()?;
    let first = FirstAdmin {
        account_id: AccountId::random().into_string(),
        email: "admin@jira-userprops.local".to_owned(),
        token,
    };
    let seed = SeedData {
        users: vec![User {
            account_id: first.account_id.clone(),
            email: first.email.clone(),
            display_name: "Administrator".to_owned(),
            admin: true,
            active: true,
        }],
        tokens: vec![(0, TokenEntry::classic(TokenDigest::of(&first.token)))],
        properties: Vec::new(),
        users_must_be_new: true,
    };
    let report = admin.apply_seed(SiteKey::DEFAULT, &seed).await?;
    // Another instance starting at the same moment may have made its administrator first.
    if report.users == 0 || report.conflict.is_some() {
        return Ok(None);
    }
    Ok(Some(first))
}
