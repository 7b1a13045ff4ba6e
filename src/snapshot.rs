//! Snapshots: the whole state in the seed format, with token digests in place of tokens.

use std::path::Path;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::clock::rfc3339_ms;
use crate::seed::{self, SeedError};
use crate::store::admin::{Snapshot, TokenEntry, TokenLimits};

#[derive(Serialize)]
struct SnapshotFile<'a> {
    users: Vec<UserEntry<'a>>,
    properties: Vec<PropertyEntry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserEntry<'a> {
    account_id: &'a str,
    email: &'a str,
    display_name: &'a str,
    admin: bool,
    active: bool,
    api_token_hashes: Vec<HashEntry>,
}

/// A classic token's digest alone; a scoped or expiring one's as an object.
#[derive(Serialize)]
#[serde(untagged)]
enum HashEntry {
    Classic(String),
    #[serde(rename_all = "camelCase")]
    Limited {
        hash: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        scopes: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_at: Option<String>,
    },
}

impl From<&TokenEntry> for HashEntry {
    fn from(token: &TokenEntry) -> Self {
        let hash = token.digest.to_hex();
        let TokenLimits { scopes, expires_at } = &token.limits;
        if scopes.is_none() && expires_at.is_none() {
            return HashEntry::Classic(hash);
        }
        HashEntry::Limited {
            hash,
            scopes: scopes
                .as_ref()
                .map(|scopes| scopes.iter().map(str::to_owned).collect()),
            expires_at: expires_at.map(rfc3339_ms),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PropertyEntry<'a> {
    account_id: &'a str,
    key: &'a str,
    value: &'a RawValue,
}

/// Writes a snapshot as JSON; values appear exactly as stored.
pub fn to_json(snapshot: &Snapshot) -> serde_json::Result<Vec<u8>> {
    let users = snapshot
        .users
        .iter()
        .map(|(user, tokens)| UserEntry {
            account_id: &user.account_id,
            email: &user.email,
            display_name: &user.display_name,
            admin: user.admin,
            active: user.active,
            api_token_hashes: tokens.iter().map(HashEntry::from).collect(),
        })
        .collect();
    let properties = snapshot
        .properties
        .iter()
        .map(|(account_id, key, value)| {
            Ok(PropertyEntry {
                account_id,
                key,
                value: serde_json::from_str(value)?,
            })
        })
        .collect::<serde_json::Result<_>>()?;
    serde_json::to_vec_pretty(&SnapshotFile { users, properties })
}

/// Reads a snapshot (or any seed file) with the seed's rules; `source` names it in errors.
pub fn from_json(source: &Path, text: &str) -> Result<Snapshot, SeedError> {
    let seed = seed::parse(source, text)?;
    if !seed.sites.is_empty() {
        let reason = "a snapshot holds one site; import other sites through their own routes";
        return Err(seed::fail(source, "sites", reason));
    }
    if !seed.apps.is_empty() {
        let reason = "apps belong to the server, not to a site: register them with /_admin/apps";
        return Err(seed::fail(source, "apps", reason));
    }
    let seed = seed.data;
    let mut users: Vec<_> = seed
        .users
        .into_iter()
        .map(|user| (user, Vec::new()))
        .collect();
    for (owner, token) in seed.tokens {
        if let Some((_, tokens)) = users.get_mut(owner) {
            tokens.push(token);
        }
    }
    for (_, tokens) in &mut users {
        tokens.sort_by_key(|token| token.digest);
    }
    users.sort_by(|(a, _), (b, _)| a.account_id.cmp(&b.account_id));
    let mut properties: Vec<_> = seed
        .properties
        .into_iter()
        .map(|(account_id, key, value)| (account_id, key.as_str().to_owned(), value.into_string()))
        .collect();
    properties.sort();
    Ok(Snapshot { users, properties })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_read_back_writes_the_same_bytes() {
        let text = r#"{"users":[{"accountId":"b","email":"b@x.io","apiTokens":["t1","t2",
                                   {"token":"t3","scopes":["read:jira-user"],
                                    "expiresAt":"2027-01-01T00:00:00Z"}]},
                                 {"accountId":"a","email":"a@x.io","admin":true,"active":false}],
                       "properties":[{"accountId":"b","key":"z","value":{"n": 1.50}},
                                     {"accountId":"a","key":"k","value":[1e3]}]}"#;
        let snapshot = from_json(Path::new("s.json"), text).unwrap();
        assert_eq!(snapshot.users[0].0.account_id, "a");
        assert_eq!(snapshot.users[1].1.len(), 3);
        let limited = snapshot.users[1]
            .1
            .iter()
            .filter(|t| t.limits.scopes.is_some());
        assert_eq!(limited.count(), 1);
        let written = to_json(&snapshot).unwrap();
        let again = from_json(
            Path::new("again.json"),
            std::str::from_utf8(&written).unwrap(),
        )
        .unwrap();
        assert_eq!(again, snapshot);
        assert_eq!(to_json(&again).unwrap(), written);
        let written = String::from_utf8(written).unwrap();
        assert!(written.contains(r#""value": {"n": 1.50}"#), "{written}");
        assert!(!written.contains("t1"), "{written}");
        assert!(
            written.contains(r#""expiresAt": "2027-01-01T00:00:00.000Z""#),
            "{written}"
        );
    }
}
