//! Sites: the isolated Jira worlds one server holds, their names and cloudIds.

use std::fmt;

/// The store's key of a site: the first column of every table. Never reused, so a key held
/// after its site was deleted names nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteKey(pub i64);

impl SiteKey {
    /// The `default` site, which always exists.
    pub const DEFAULT: Self = Self(0);
}

/// A site's name: a DNS label, so that `{name}.{domain}` reaches it. This constructor is the
/// only place the rule lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SiteName(String);

/// The name of the site that always exists.
pub const DEFAULT_SITE: &str = "default";

/// Text that cannot be a site name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "The site name must be 1 to 63 lowercase letters, digits or '-', and must not start or end with '-' or be a cloudId."
)]
pub struct InvalidSiteName;

impl SiteName {
    /// Whether `name` could name a site: the rule [`SiteName::parse`] applies, for text that is
    /// only looked up.
    pub fn is_valid(name: &str) -> bool {
        let allowed = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-';
        (1..=63).contains(&name.len())
            && name.bytes().all(allowed)
            && !name.starts_with('-')
            && !name.ends_with('-')
            // `/_admin/sites/{site}` takes a name or a cloudId: a name must not read as both.
            && CloudId::parse(name).is_err()
    }

    /// Parses a site name.
    pub fn parse(name: impl Into<String>) -> Result<Self, InvalidSiteName> {
        let name = name.into();
        if Self::is_valid(&name) {
            Ok(Self(name))
        } else {
            Err(InvalidSiteName)
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A site's cloudId: a UUID, written in lower case with hyphens as Atlassian writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloudId(uuid::Uuid);

/// Text that is not a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("The site id must be a UUID.")]
pub struct InvalidCloudId;

impl CloudId {
    /// Parses a cloudId in any of the UUID spellings.
    pub fn parse(text: &str) -> Result<Self, InvalidCloudId> {
        uuid::Uuid::try_parse(text)
            .map(Self)
            .map_err(|_| InvalidCloudId)
    }

    /// A new random (version 4) cloudId; `None` when the system has no randomness to give.
    pub fn random() -> Option<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).ok()?;
        Some(Self(uuid::Builder::from_random_bytes(bytes).into_uuid()))
    }
}

impl fmt::Display for CloudId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A site as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The store's key.
    pub key: SiteKey,
    /// Its cloudId.
    pub id: CloudId,
    /// Its name.
    pub name: SiteName,
}

impl Site {
    /// Whether this is the `default` site.
    pub fn is_default(&self) -> bool {
        self.key == SiteKey::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_name_is_a_dns_label() {
        for good in ["acme", "a", "team-42", &"x".repeat(63)] {
            assert!(SiteName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Acme",
            "-acme",
            "acme-",
            "a.b",
            "a_b",
            "ü",
            &"x".repeat(64),
        ] {
            assert_eq!(SiteName::parse(bad), Err(InvalidSiteName), "{bad}");
        }
    }

    #[test]
    fn a_cloud_id_is_written_in_lower_case_with_hyphens() {
        let id = CloudId::parse("35273B54-3F06-40D2-880F-DD28CF8DAAFA").expect("a UUID");
        assert_eq!(id.to_string(), "35273b54-3f06-40d2-880f-dd28cf8daafa");
        assert_eq!(CloudId::parse("acme"), Err(InvalidCloudId));
        let random = CloudId::random().expect("randomness").to_string();
        assert_eq!(random.len(), 36);
        assert_eq!(&random[14..15], "4");
    }
}
