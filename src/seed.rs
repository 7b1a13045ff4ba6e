//! Starting state: the seed file (users, tokens, properties) and the first administrator.

use std::collections::HashSet;
use std::fmt::Display;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::credentials::{TokenDigest, generate_token};
use crate::domain::{PropertyKey, PropertyValue, User, email_key, is_valid_account_id};
use crate::store::{SeedConflict, SeedData, SeedReport, Store};

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
}

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
    api_tokens: Vec<String>,
    /// Digests of tokens whose secrets are not known, as snapshots carry them.
    #[serde(default)]
    api_token_hashes: Vec<String>,
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

/// Reads and validates a seed file; nothing is stored unless all of it is valid.
pub fn load(path: &Path) -> Result<SeedData, SeedError> {
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

fn fail(path: &Path, entry: impl Into<String>, reason: impl Display) -> SeedError {
    SeedError {
        file: path.display().to_string(),
        entry: entry.into(),
        reason: reason.to_string(),
    }
}

/// Validates seed text; `path` only names the file in errors.
pub fn parse(path: &Path, text: &str) -> Result<SeedData, SeedError> {
    let file: SeedFile = serde_json::from_str(text).map_err(|e| fail(path, "the file", e))?;
    let mut seed = SeedData::default();
    let (mut emails, mut tokens) = (HashSet::new(), HashSet::new());
    for (index, raw) in file.users.iter().enumerate() {
        let entry = format!("users[{index}]");
        let user: SeedUser =
            serde_json::from_str(raw.get()).map_err(|e| fail(path, &entry, within_entry(e)))?;
        let entry = format!("{entry} ({:?})", user.account_id);
        if !is_valid_account_id(&user.account_id) {
            return Err(fail(
                path,
                entry,
                "accountId must be 1 to 128 characters, without control characters",
            ));
        }
        if seed
            .users
            .iter()
            .any(|u: &User| u.account_id == user.account_id)
        {
            return Err(fail(path, entry, "accountId appears twice"));
        }
        if !user.email.contains('@') || user.email.chars().any(char::is_control) {
            return Err(fail(
                path,
                entry,
                format!("email {:?} is not an email address", user.email),
            ));
        }
        if user
            .display_name
            .as_deref()
            .is_some_and(|name| name.chars().any(char::is_control))
        {
            return Err(fail(
                path,
                entry,
                "displayName must not contain control characters",
            ));
        }
        if !emails.insert(email_key(&user.email).into_owned()) {
            return Err(fail(
                path,
                entry,
                format!("email {:?} belongs to another user", user.email),
            ));
        }
        for token in &user.api_tokens {
            if token.is_empty() || token.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(fail(
                    path,
                    entry,
                    "apiTokens must be non-empty, without spaces or control characters",
                ));
            }
            if !tokens.insert(TokenDigest::of(token)) {
                return Err(fail(path, entry, "an API token appears twice"));
            }
            seed.tokens.push((seed.users.len(), TokenDigest::of(token)));
        }
        for hash in &user.api_token_hashes {
            let digest = TokenDigest::from_hex(hash).ok_or_else(|| {
                fail(
                    path,
                    &entry,
                    "apiTokenHashes must be SHA-256 digests in 64 hex digits",
                )
            })?;
            if !tokens.insert(digest) {
                return Err(fail(path, entry, "an API token appears twice"));
            }
            seed.tokens.push((seed.users.len(), digest));
        }
        seed.users.push(User {
            display_name: user.display_name.unwrap_or_else(|| user.email.clone()),
            account_id: user.account_id,
            email: user.email,
            admin: user.admin,
            active: user.active,
        });
    }
    let mut keys = HashSet::new();
    for (index, raw) in file.properties.iter().enumerate() {
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

/// Applies a loaded seed. A seed user whose email or token another account in the database
/// already holds stops it, with nothing changed.
pub async fn apply(store: &Store, path: &Path, seed: &SeedData) -> anyhow::Result<SeedReport> {
    let report = store.apply_seed(seed).await?;
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
pub async fn ensure_first_admin(store: &Store) -> anyhow::Result<Option<FirstAdmin>> {
    if store.user_count().await? > 0 {
        return Ok(None);
    }
    let token = generate_token()?;
    let mut id = [0u8; 12];
    getrandom::fill(&mut id)?;
    let admin = FirstAdmin {
        account_id: hex::encode(id),
        email: "admin@jira-userprops.local".to_owned(),
        token,
    };
    let seed = SeedData {
        users: vec![User {
            account_id: admin.account_id.clone(),
            email: admin.email.clone(),
            display_name: "Administrator".to_owned(),
            admin: true,
            active: true,
        }],
        tokens: vec![(0, TokenDigest::of(&admin.token))],
        properties: Vec::new(),
    };
    let report = store.apply_seed(&seed).await?;
    // Another instance starting at the same moment may have made its administrator first.
    if report.users == 0 || report.conflict.is_some() {
        return Ok(None);
    }
    Ok(Some(admin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<SeedData, SeedError> {
        parse(Path::new("seed.json"), text)
    }

    #[test]
    fn defaults_are_applied() {
        let seed = parse_text(r#"{"users":[{"accountId":"a","email":"a@x.io"}]}"#).unwrap();
        let user = &seed.users[0];
        assert!(!user.admin && user.active);
        assert_eq!(user.display_name, "a@x.io");
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
