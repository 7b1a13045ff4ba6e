//! Starting state: the seed format (users, tokens, properties), read and validated once, and the
//! first administrator. Applied through the admin service. Past 350 lines only with its tests.

use std::collections::HashSet;
use std::fmt::Display;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::clock::parse_rfc3339_ms;
use crate::credentials::{TokenDigest, generate_token};
use crate::domain::{
    AccountId, AppKind, CloudId, DEFAULT_SITE, DisplayName, Email, NewUser, PropertyKey,
    PropertyValue, Scopes, SiteKey, SiteName, User, email_key,
};
use crate::service::apps::{AppService, NewApp};
use crate::service::sites::NewSite;
use crate::service::{AdminService, SiteService};
use crate::store::admin::{TokenEntry, TokenLimits};
use crate::store::{SeedConflict, SeedData, SeedReport};

/// A seed file that cannot be used: which file, which entry, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("seed file {file}: {entry}: {reason}")]
pub struct SeedError {
    file: String,
    entry: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile<'a> {
    #[serde(default, borrow)]
    users: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    properties: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    sites: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    apps: Vec<&'a RawValue>,
}

/// An app of a seed, as `POST /_admin/apps` takes one, with its client id and secret pinned so
/// that tests know them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedApp {
    name: String,
    kind: Option<String>,
    callback_url: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    auto_consent: bool,
    client_id: String,
    client_secret: String,
    #[serde(default)]
    sites: Vec<String>,
    #[serde(default)]
    admin: bool,
}

/// One site of a seed: its name, its cloudId if pinned, and what it starts with.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedSite<'a> {
    name: String,
    id: Option<String>,
    #[serde(default, borrow)]
    users: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    properties: Vec<&'a RawValue>,
}

/// A whole seed document, validated: what the default site gets, and other sites.
#[derive(Debug, Default)]
pub struct Seed {
    /// For the default site.
    pub data: SeedData,
    /// Other sites, made if missing.
    pub sites: Vec<SiteSeed>,
    /// Apps, registered if missing (by client id).
    pub apps: Vec<SeedApp>,
}

/// A site of a seed, validated.
#[derive(Debug)]
pub struct SiteSeed {
    /// Its name.
    pub name: SiteName,
    /// Its cloudId, if pinned.
    pub id: Option<CloudId>,
    /// What it starts with.
    pub data: SeedData,
}

/// One user as the seed format, the admin API and snapshots write it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SeedUser {
    account_id: String,
    email: String,
    display_name: Option<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default = "active_by_default")]
    active: bool,
    #[serde(default)]
    api_tokens: Vec<SeedToken>,
    /// Digests of tokens whose secrets are not known, as snapshots carry them.
    #[serde(default)]
    api_token_hashes: Vec<SeedToken>,
}

/// A token of a seed: its text alone (a classic token), or an object with its scopes and expiry.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a token as a string, or an object with the token, scopes and expiresAt"
)]
enum SeedToken {
    Classic(String),
    Limited(LimitedToken),
}

/// `{"token": …}` in `apiTokens`, `{"hash": …}` in `apiTokenHashes`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LimitedToken {
    token: Option<String>,
    hash: Option<String>,
    scopes: Option<Vec<String>>,
    expires_at: Option<String>,
}

impl SeedToken {
    /// The text (`field` is `token` or `hash`) and the limits.
    fn parts(&self, field: &str) -> Result<(&str, TokenLimits), String> {
        let limited = match self {
            SeedToken::Classic(text) => return Ok((text, TokenLimits::default())),
            SeedToken::Limited(limited) => limited,
        };
        let (text, other) = match field {
            "token" => (&limited.token, &limited.hash),
            _ => (&limited.hash, &limited.token),
        };
        let text = text
            .as_deref()
            .filter(|_| other.is_none())
            .ok_or_else(|| format!("a token given as an object needs \"{field}\" and only it"))?;
        let expires_at = limited
            .expires_at
            .as_deref()
            .map(parse_rfc3339_ms)
            .transpose()
            .map_err(|reason| format!("expiresAt {reason}"))?;
        let scopes = limited.scopes.as_ref().map(|scopes| Scopes::of(scopes));
        Ok((text, TokenLimits { scopes, expires_at }))
    }
}

fn active_by_default() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SeedProperty<'a> {
    account_id: String,
    key: String,
    #[serde(borrow)]
    value: &'a RawValue,
}

/// A user entry, validated: the user and the digests of their tokens.
#[derive(Debug)]
pub struct UserSeed {
    /// The user.
    pub user: NewUser,
    /// Their tokens, in the order given.
    pub tokens: Vec<TokenEntry>,
}

impl SeedUser {
    /// The account id alone, checked before anything else so that errors can name it.
    fn account_id(&self) -> Result<AccountId, String> {
        AccountId::parse(self.account_id.as_str()).map_err(|e| e.to_string())
    }

    /// Everything an entry says, valid on its own; what spans entries is the caller's to check.
    fn validate(self) -> Result<UserSeed, String> {
        let account_id = self.account_id()?;
        let email = Email::parse(self.email.as_str())
            .map_err(|_| format!("email {:?} is not an email address", self.email))?;
        let display_name = DisplayName::parse(self.display_name.unwrap_or(self.email))
            .map_err(|e| e.to_string())?;
        let mut tokens = Vec::with_capacity(self.api_tokens.len() + self.api_token_hashes.len());
        for entry in &self.api_tokens {
            let (token, limits) = entry.parts("token")?;
            if token.is_empty() || token.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(
                    "apiTokens must be non-empty, without spaces or control characters".to_owned(),
                );
            }
            let digest = TokenDigest::of(token);
            tokens.push(TokenEntry { digest, limits });
        }
        for entry in &self.api_token_hashes {
            let (hash, limits) = entry.parts("hash")?;
            let digest = TokenDigest::from_hex(hash).ok_or_else(|| {
                "apiTokenHashes must be SHA-256 digests in 64 hex digits".to_owned()
            })?;
            tokens.push(TokenEntry { digest, limits });
        }
        let mut distinct: Vec<_> = tokens.iter().map(|token| token.digest).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < tokens.len() {
            return Err("an API token appears twice".to_owned());
        }
        let user = NewUser {
            account_id,
            email,
            display_name,
            admin: self.admin,
            active: self.active,
        };
        Ok(UserSeed { user, tokens })
    }
}

/// Reads and validates a seed file; nothing is stored unless all of it is valid.
pub fn load(path: &Path) -> Result<Seed, SeedError> {
    let text = std::fs::read_to_string(path).map_err(|e| fail(path, "the file", e))?;
    parse(path, &text)
}

/// A serde error without its "at line 1 column N" (within one entry, that position misleads)
/// and without quoted values, which may be tokens given in the wrong place.
fn within_entry(error: serde_json::Error) -> String {
    let text = error.to_string();
    let text = text
        .rfind(" at line ")
        .map_or(text.as_str(), |end| &text[..end]);
    let mut redacted = String::with_capacity(text.len());
    for (index, part) in text.split('"').enumerate() {
        if index > 0 {
            redacted.push('"');
        }
        redacted.push_str(if index % 2 == 1 { "…" } else { part });
    }
    redacted
}

pub(crate) fn fail(path: &Path, entry: impl Into<String>, reason: impl Display) -> SeedError {
    SeedError {
        file: path.display().to_string(),
        entry: entry.into(),
        reason: reason.to_string(),
    }
}

/// Reads one user entry, as `users[index]` of the document `path` names.
fn user_entry(path: &Path, index: usize, raw: &str) -> Result<(String, UserSeed), SeedError> {
    let entry = format!("users[{index}]");
    let user: SeedUser =
        serde_json::from_str(raw).map_err(|e| fail(path, &entry, within_entry(e)))?;
    let entry = format!("{entry} ({:?})", user.account_id);
    user.account_id()
        .map_err(|reason| fail(path, &entry, reason))?;
    let seed = user
        .validate()
        .map_err(|reason| fail(path, &entry, reason))?;
    Ok((entry, seed))
}

/// Reads one user in the seed format, as the admin API takes it; `source` names it in errors.
pub fn parse_user(source: &Path, text: &str) -> Result<UserSeed, SeedError> {
    Ok(user_entry(source, 0, text)?.1)
}

/// Validates seed text; `path` only names the file in errors.
pub fn parse(path: &Path, text: &str) -> Result<Seed, SeedError> {
    let file: SeedFile = serde_json::from_str(text).map_err(|e| fail(path, "the file", e))?;
    let data = parse_site(path, &file.users, &file.properties)?;
    let mut sites: Vec<SiteSeed> = Vec::with_capacity(file.sites.len());
    for (index, raw) in file.sites.iter().enumerate() {
        let entry = format!("sites[{index}]");
        let site: SeedSite =
            serde_json::from_str(raw.get()).map_err(|e| fail(path, &entry, within_entry(e)))?;
        let entry = format!("{entry} ({:?})", site.name);
        let name = SiteName::parse(site.name.as_str()).map_err(|e| fail(path, &entry, e))?;
        let id = site
            .id
            .as_deref()
            .map(CloudId::parse)
            .transpose()
            .map_err(|e| fail(path, &entry, e))?;
        if name.as_str() == DEFAULT_SITE {
            let reason = "the default site's users and properties go at the top of the document";
            return Err(fail(path, entry, reason));
        }
        if sites.iter().any(|other| other.name == name) {
            return Err(fail(path, entry, "the site is named twice"));
        }
        if id.is_some() && sites.iter().any(|other| other.id == id) {
            return Err(fail(
                path,
                entry,
                "the site's id is given to another site too",
            ));
        }
        let data = parse_site(path, &site.users, &site.properties).map_err(|e| SeedError {
            entry: format!("{entry}: {}", e.entry),
            ..e
        })?;
        sites.push(SiteSeed { name, id, data });
    }
    let mut apps: Vec<SeedApp> = Vec::with_capacity(file.apps.len());
    for (index, raw) in file.apps.iter().enumerate() {
        let entry = format!("apps[{index}]");
        let app: SeedApp =
            serde_json::from_str(raw.get()).map_err(|e| fail(path, &entry, within_entry(e)))?;
        let entry = format!("{entry} ({:?})", app.client_id);
        if app
            .kind
            .as_deref()
            .is_some_and(|kind| AppKind::parse(kind).is_none())
        {
            return Err(fail(path, entry, "kind must be oauth2 or serviceAccount"));
        }
        if apps.iter().any(|other| other.client_id == app.client_id) {
            return Err(fail(path, entry, "the clientId is given twice"));
        }
        apps.push(app);
    }
    Ok(Seed { data, sites, apps })
}

/// Validates one site's users and properties.
fn parse_site(
    path: &Path,
    users: &[&RawValue],
    properties: &[&RawValue],
) -> Result<SeedData, SeedError> {
    let mut seed = SeedData::default();
    let (mut emails, mut tokens) = (HashSet::new(), HashSet::new());
    for (index, raw) in users.iter().enumerate() {
        let (entry, user) = user_entry(path, index, raw.get())?;
        let account_id = user.user.account_id.as_str();
        if seed.users.iter().any(|u: &User| u.account_id == account_id) {
            return Err(fail(path, entry, "accountId appears twice"));
        }
        if !emails.insert(email_key(user.user.email.as_str()).into_owned()) {
            let reason = format!(
                "email {:?} belongs to another user",
                user.user.email.as_str()
            );
            return Err(fail(path, entry, reason));
        }
        for token in user.tokens {
            if !tokens.insert(token.digest) {
                return Err(fail(path, entry, "an API token appears twice"));
            }
            seed.tokens.push((seed.users.len(), token));
        }
        seed.users.push(User::from(user.user));
    }
    let mut keys = HashSet::new();
    for (index, raw) in properties.iter().enumerate() {
        let entry = format!("properties[{index}]");
        let property: SeedProperty =
            serde_json::from_str(raw.get()).map_err(|e| fail(path, &entry, within_entry(e)))?;
        let entry = format!("{entry} ({:?})", property.key);
        if !seed
            .users
            .iter()
            .any(|u| u.account_id == property.account_id)
        {
            let reason = format!(
                "accountId {:?} is not among the seed's users",
                property.account_id
            );
            return Err(fail(path, entry, reason));
        }
        let key = PropertyKey::new(property.key).map_err(|e| fail(path, &entry, e))?;
        let value = PropertyValue::from_body(property.value.get().as_bytes().to_vec())
            .map_err(|e| fail(path, &entry, e))?;
        if !keys.insert((property.account_id.clone(), key.clone())) {
            return Err(fail(
                path,
                entry,
                "the same key is given twice for this user",
            ));
        }
        seed.properties.push((property.account_id, key, value));
    }
    Ok(seed)
}

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
                let new = NewSite {
                    name: Some(site.name),
                    id: site.id,
                    seed: site.data,
                };
                let created = sites.create(new).await;
                created.map_err(|e| fail(path, &entry, e))?.1
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
        for name in &app.sites {
            let site = sites.named(name).await?;
            let site =
                site.ok_or_else(|| fail(path, &entry, format!("there is no site {name:?}")))?;
            keys.push(site.key);
        }
        let new = NewApp {
            name: app.name,
            kind: app.kind.as_deref().and_then(AppKind::parse),
            callback_url: app.callback_url,
            scopes: Scopes::of(&app.scopes),
            auto_consent: app.auto_consent,
            client_id: Some(app.client_id),
            client_secret: Some(app.client_secret),
            sites: keys,
            admin: app.admin,
        };
        apps.create_app(new)
            .await
            .map_err(|e| fail(path, &entry, e))?;
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
    let mut id = [0u8; 12];
    getrandom::fill(&mut id)?;
    let first = FirstAdmin {
        account_id: hex::encode(id),
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
    };
    let report = admin.apply_seed(SiteKey::DEFAULT, &seed).await?;
    // Another instance starting at the same moment may have made its administrator first.
    if report.users == 0 || report.conflict.is_some() {
        return Ok(None);
    }
    Ok(Some(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<SeedData, SeedError> {
        parse(Path::new("seed.json"), text).map(|seed| seed.data)
    }

    #[test]
    fn defaults_are_applied() {
        let seed = parse_text(r#"{"users":[{"accountId":"a","email":"a@x.io"}]}"#).unwrap();
        let user = &seed.users[0];
        assert!(!user.admin && user.active);
        assert_eq!(user.display_name, "a@x.io");
    }

    #[test]
    fn a_token_may_carry_scopes_and_an_expiry() {
        let seed = parse_text(
            r#"{"users":[{"accountId":"a","email":"a@x.io","apiTokens":["classic",
                {"token":"scoped","scopes":["read:jira-user"],"expiresAt":"2030-01-01T00:00:00Z"}]}]}"#,
        )
        .unwrap();
        let [(0, classic), (0, scoped)] = &seed.tokens[..] else {
            panic!("two tokens of the first user: {:?}", seed.tokens);
        };
        assert_eq!(classic.limits, TokenLimits::default());
        assert_eq!(classic.digest, TokenDigest::of("classic"));
        assert_eq!(scoped.digest, TokenDigest::of("scoped"));
        let scopes = scoped.limits.scopes.as_ref().map(ToString::to_string);
        assert_eq!(scopes.as_deref(), Some("read:jira-user"));
        assert_eq!(scoped.limits.expires_at, Some(1_893_456_000_000));
    }

    #[test]
    fn values_are_kept_verbatim() {
        let seed = parse_text(
            r#"{"users":[{"accountId":"a","email":"a@x.io"}],
                "properties":[{"accountId":"a","key":"k","value": {"b":1.0,"a":1e3} }]}"#,
        )
        .unwrap();
        assert_eq!(seed.properties[0].2.as_str(), r#"{"b":1.0,"a":1e3}"#);
    }

    #[test]
    fn errors_name_the_file_the_entry_and_the_fault() {
        let cases = [
            (
                r#"{"users":[{"accountId":"a","email":"a@x.io"},{"accountId":"a","email":"b@x.io"}]}"#,
                "users[1]",
                "twice",
            ),
            (
                r#"{"users":[{"accountId":"a","email":"nope"}]}"#,
                "users[0]",
                "not an email",
            ),
            (
                r#"{"users":[{"accountId":"a","emial":"a@x.io"}]}"#,
                "users[0]",
                "unknown field",
            ),
            (
                r#"{"users":[{"accountId":"","email":"a@x.io"}]}"#,
                "users[0]",
                "accountId",
            ),
            (
                r#"{"users":[{"accountId":"a","email":"a@x.io","apiTokens":["t","t"]}]}"#,
                "users[0]",
                "twice",
            ),
            (
                r#"{"properties":[{"accountId":"z","key":"k","value":1}]}"#,
                "properties[0]",
                "not among",
            ),
            (
                r#"{"users":[{"accountId":"a","email":"a@x.io"}],"properties":[{"accountId":"a","key":"","value":1}]}"#,
                "properties[0]",
                "empty",
            ),
            (
                r#"{"users":[{"accountId":"a","email":"a@x.io","apiTokens":[{"hash":"t"}]}]}"#,
                "users[0]",
                "needs \"token\"",
            ),
            (
                r#"{"users":[{"accountId":"a","email":"a@x.io","apiTokens":[{"token":"t","expiresAt":"soon"}]}]}"#,
                "users[0]",
                "expiresAt 'soon' is not an RFC 3339 time",
            ),
            (
                r#"{"users":[{"accountId":"a","email":"a@x.io","apiTokens":[7]}]}"#,
                "users[0]",
                "a token as a string, or an object",
            ),
            (r#"{"users": ["#, "the file", "EOF"),
        ];
        for (text, entry, reason) in cases {
            let message = parse_text(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                message.starts_with("seed file seed.json: "),
                "{text}: {message}"
            );
            assert!(
                message.contains(entry) && message.contains(reason),
                "{text}: {message}"
            );
        }
    }
}
