//! Starting state: the seed format (sites, users, tokens, properties, apps), read and validated
//! once; `user.rs` reads one user, `apply.rs` applies a seed through the services. Past 350
//! lines only with its tests.

use std::collections::HashSet;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::credentials::Secret;
use crate::domain::{
    AppKind, CloudId, DEFAULT_SITE, PropertyKey, PropertyValue, Scopes, SiteKey, SiteName, User,
    email_key,
};
use crate::error::Error;
use crate::service::apps::NewApp;
use crate::store::SeedData;
use crate::store::admin::Snapshot;

mod apply;
mod user;

pub use apply::{FirstAdmin, apply, ensure_first_admin};
use user::user_entry;
pub use user::{UserSeed, parse_user};

/// A seed file that cannot be used: which file, which entry, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("seed file {file}: {entry}: {reason}")]
pub struct SeedError {
    file: String,
    entry: String,
    reason: String,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SeedFile<'a> {
    /// The schema's address, for editors; ignored.
    #[serde(rename = "$schema", default, skip_serializing)]
    _schema: Option<String>,
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
    client_secret: Secret,
    #[serde(default)]
    sites: Vec<String>,
    #[serde(default)]
    admin: bool,
}

impl SeedApp {
    /// The names of the sites a service account is a user of.
    pub fn site_names(&self) -> impl Iterator<Item = &str> {
        self.sites.iter().map(String::as_str)
    }

    /// The app to register, over the sites whose keys are `sites` (one for each it names).
    pub fn to_new_app(&self, sites: Vec<SiteKey>) -> Result<NewApp, Error> {
        let scopes =
            Scopes::of(&self.scopes).map_err(|e| Error::BadRequest(format!("scopes: {e}")))?;
        Ok(NewApp {
            name: self.name.clone(),
            kind: self.kind.as_deref().and_then(AppKind::parse),
            callback_url: self.callback_url.clone(),
            scopes,
            auto_consent: self.auto_consent,
            client_id: Some(self.client_id.clone()),
            client_secret: Some(self.client_secret.clone()),
            sites,
            admin: self.admin,
        })
    }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SeedProperty<'a> {
    account_id: String,
    key: String,
    #[serde(borrow)]
    value: &'a RawValue,
}

/// Reads and validates a seed file, or every `*.json` of a folder in name order, as one seed;
/// nothing is stored unless all of it is valid.
pub fn load(path: &Path) -> Result<Seed, SeedError> {
    if path.is_dir() {
        return load_folder(path);
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(path, "the file", e))?;
    parse(path, &text)
}

/// A folder's seed files, as LocalStack's init folders are read: each read as a seed document
/// (so that a syntax error names its file), then all of them checked together as one document,
/// whose users, properties, sites and apps are the files' in name order; a later file's
/// properties may belong to an earlier file's users.
fn load_folder(folder: &Path) -> Result<Seed, SeedError> {
    let entries = std::fs::read_dir(folder).map_err(|e| fail(folder, "the folder", e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut texts = Vec::with_capacity(files.len());
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| fail(file, "the file", e))?;
        texts.push((file, text));
    }
    let mut merged = SeedFile::default();
    for (file, text) in &texts {
        let part: SeedFile =
            serde_json::from_str(text).map_err(|e| fail(file, "the file", in_file(e)))?;
        merged.users.extend(part.users);
        merged.properties.extend(part.properties);
        merged.sites.extend(part.sites);
        merged.apps.extend(part.apps);
    }
    let text = serde_json::to_string(&merged).map_err(|e| fail(folder, "the folder", e))?;
    parse(folder, &text)
}

impl Seed {
    /// What each site of the seed holds, by site name (`default` first), as a state to return
    /// to with `POST /_admin/reset?to=seed`.
    pub fn states(&self) -> Vec<(String, Snapshot)> {
        std::iter::once((DEFAULT_SITE.to_owned(), self.data.to_snapshot()))
            .chain(
                self.sites
                    .iter()
                    .map(|site| (site.name.as_str().to_owned(), site.data.to_snapshot())),
            )
            .collect()
    }
}

/// A serde error without its "at line 1 column N" (within one entry, that position misleads)
/// and without quoted values, which may be tokens given in the wrong place.
fn within_entry(error: serde_json::Error) -> String {
    let text = error.to_string();
    let text = text
        .rfind(" at line ")
        .map_or(text.as_str(), |end| &text[..end]);
    redacted(text)
}

/// A parse error of the whole file, with its position, and with what it quotes hidden as an
/// entry's errors hide it.
fn in_file(error: serde_json::Error) -> String {
    redacted(&error.to_string())
}

/// `text` with every quoted part replaced by `…`.
fn redacted(text: &str) -> String {
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

/// One entry of a list: a JSON object (serde would also take an array of the fields in order,
/// which the schema does not allow), named `entry` in errors.
fn parse_entry<'a, T: Deserialize<'a>>(
    path: &Path,
    entry: &str,
    raw: &'a str,
) -> Result<T, SeedError> {
    if !raw.trim_start().starts_with('{') {
        return Err(fail(path, entry, "must be a JSON object"));
    }
    serde_json::from_str(raw).map_err(|e| fail(path, entry, within_entry(e)))
}

/// Validates seed text; `path` only names the file in errors.
pub fn parse(path: &Path, text: &str) -> Result<Seed, SeedError> {
    let file: SeedFile =
        serde_json::from_str(text).map_err(|e| fail(path, "the file", in_file(e)))?;
    let data = parse_site(path, &file.users, &file.properties)?;
    let mut sites: Vec<SiteSeed> = Vec::with_capacity(file.sites.len());
    for (index, raw) in file.sites.iter().enumerate() {
        let entry = format!("sites[{index}]");
        let site: SeedSite = parse_entry(path, &entry, raw.get())?;
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
        let app: SeedApp = parse_entry(path, &entry, raw.get())?;
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
        // Checked as registering checks it, with stand-ins for the sites it names: which sites
        // those are is known only once the database is open.
        let stand_ins = vec![SiteKey::DEFAULT; app.sites.len()];
        let checked = app
            .to_new_app(stand_ins)
            .and_then(NewApp::checked)
            .map_err(|e| fail(path, &entry, e))?;
        // Its user would clash with a seed user of a site it names only once stored.
        if let Some((account_id, email)) = checked.account() {
            for name in app.site_names() {
                let part = if name == DEFAULT_SITE {
                    Some(&data)
                } else {
                    sites
                        .iter()
                        .find(|site| site.name.as_str() == name)
                        .map(|site| &site.data)
                };
                let clash = part.into_iter().flat_map(|part| &part.users).find(|user| {
                    user.account_id == account_id || email_key(&user.email) == email_key(email)
                });
                if let Some(user) = clash {
                    let reason = format!(
                        "its service account ({account_id}, {email}) clashes with user {:?} of \
                         site {name:?}",
                        user.account_id
                    );
                    return Err(fail(path, entry, reason));
                }
            }
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
    let (mut account_ids, mut emails, mut tokens) =
        (HashSet::new(), HashSet::new(), HashSet::new());
    for (index, raw) in users.iter().enumerate() {
        let (entry, user) = user_entry(path, index, raw.get())?;
        if !account_ids.insert(user.user.account_id.as_str().to_owned()) {
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
        let property: SeedProperty = parse_entry(path, &entry, raw.get())?;
        let entry = format!("{entry} ({:?})", property.key);
        if !account_ids.contains(property.account_id.as_str()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::TokenDigest;
    use crate::store::admin::TokenLimits;

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
    fn a_digest_keeps_the_scopes_it_was_stored_with_even_none() {
        let hash = "0".repeat(64);
        let text = format!(
            r#"{{"users":[{{"accountId":"a","email":"a@x.io","apiTokenHashes":[{{"hash":"{hash}","scopes":[]}}]}}]}}"#
        );
        let seed = parse_text(&text).expect("a snapshot's digest is taken as stored");
        let scopes = seed.tokens[0].1.limits.scopes.as_ref();
        assert!(scopes.is_some_and(Scopes::is_empty));
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
            (
                r#"{"apps":[{"name":"A","clientId":"c","clientSecret":"s"}]}"#,
                "apps[0]",
                "needs a callbackUrl",
            ),
            (
                r#"{"apps":[{"name":"A","kind":"serviceAccount","clientId":"c","clientSecret":"s"}]}"#,
                "apps[0]",
                "needs the sites",
            ),
            (
                r#"{"apps":[{"name":"A","clientId":"c","clientSecret":"s","callbackUrl":"http://x","scopes":["read me"]}]}"#,
                "apps[0]",
                "scopes",
            ),
            (
                r#"{"users":[{"accountId":"a","email":"a@x.io","apiTokens":[{"token":"t","scopes":[]}]}]}"#,
                "users[0]",
                "at least one scope",
            ),
            (
                r#"{"users":[["a","a@x.io"]]}"#,
                "users[0]",
                "must be a JSON object",
            ),
            (
                r#"{"users":[{"accountId":"a","email":"a@x.io"}],"properties":[["a","k",1]]}"#,
                "properties[0]",
                "must be a JSON object",
            ),
            (
                r#"{"users":"bob-token"}"#,
                "the file",
                "invalid type: string \"…\"",
            ),
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
            assert!(!message.contains("bob-token"), "{message}");
        }
    }
}
