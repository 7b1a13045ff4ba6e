//! Apps: OAuth 2.0 scopes, and which scopes each operation needs (Atlassian's spec).

use std::collections::BTreeSet;
use std::fmt;

/// A set of OAuth 2.0 scopes, written space-separated on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

/// A scope that is empty or holds white space or a control character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a scope: a scope is not empty and holds no white space or control character"
)]
pub struct InvalidScope(String);

impl Scopes {
    /// Scopes from their space-separated form; empty parts are skipped.
    pub fn parse(text: &str) -> Self {
        Self(text.split_ascii_whitespace().map(str::to_owned).collect())
    }

    /// Scopes from a list, each one scope: not empty, without white space or control
    /// characters (a space would read back as two scopes).
    pub fn of<S: AsRef<str>>(scopes: &[S]) -> Result<Self, InvalidScope> {
        scopes
            .iter()
            .map(|scope| {
                let scope = scope.as_ref();
                if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    Err(InvalidScope(scope.escape_debug().to_string()))
                } else {
                    Ok(scope.to_owned())
                }
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `scope` is held.
    pub fn holds(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Whether every scope of `other` is held.
    pub fn covers(&self, other: &Self) -> bool {
        other.0.is_subset(&self.0)
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
            first = false;
        }
        Ok(())
    }
}

/// What an operation does, as far as scopes are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Read a user's properties (list keys, get one).
    ReadProperties,
    /// Set a property.
    WriteProperty,
    /// Delete a property.
    DeleteProperty,
    /// Read users (`myself`, `user`).
    ReadUsers,
}

impl Operation {
    /// The scope groups of which a token must hold one whole, from Atlassian's spec: the classic
    /// scope, or the granular ones (Jira names the groups in its own refusal: "one of these
    /// groups of scopes").
    pub fn scope_groups(self) -> &'static [&'static [&'static str]] {
        match self {
            Self::ReadProperties => &[&["read:jira-user"], &["read:user.property:jira"]],
            Self::WriteProperty => &[&["write:jira-work"], &["write:user.property:jira"]],
            Self::DeleteProperty => &[&["write:jira-work"], &["delete:user.property:jira"]],
            Self::ReadUsers => &[
                &["read:jira-user"],
                &[
                    "read:application-role:jira",
                    "read:group:jira",
                    "read:user:jira",
                    "read:avatar:jira",
                ],
            ],
        }
    }

    /// Whether `scopes` allow this access.
    pub fn allowed_by(self, scopes: &Scopes) -> bool {
        self.scope_groups()
            .iter()
            .any(|group| group.iter().all(|scope| scopes.holds(scope)))
    }
}

/// The two kinds of app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// An OAuth 2.0 (3LO) app: acts for users who consent.
    OAuth2,
    /// A service account: a user of its own, with client credentials.
    ServiceAccount,
}

impl AppKind {
    /// The kind as the admin API and the store write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OAuth2 => "oauth2",
            Self::ServiceAccount => "serviceAccount",
        }
    }

    /// The kind from its written form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "oauth2" => Some(Self::OAuth2),
            "serviceAccount" => Some(Self::ServiceAccount),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classic_or_a_granular_scope_allows_an_operation() {
        let classic = Scopes::parse("read:jira-user offline_access");
        assert!(Operation::ReadProperties.allowed_by(&classic));
        assert!(!Operation::WriteProperty.allowed_by(&classic));
        let granular = Scopes::parse("write:user.property:jira");
        assert!(Operation::WriteProperty.allowed_by(&granular));
        assert!(!Operation::DeleteProperty.allowed_by(&granular));
        assert!(Operation::DeleteProperty.allowed_by(&Scopes::parse("write:jira-work")));
        assert!(!Operation::ReadUsers.allowed_by(&Scopes::parse("read:user.property:jira")));
        let users = "read:application-role:jira read:group:jira read:user:jira read:avatar:jira";
        assert!(Operation::ReadUsers.allowed_by(&Scopes::parse(users)));
        let partial = "read:application-role:jira read:group:jira read:user:jira";
        assert!(!Operation::ReadUsers.allowed_by(&Scopes::parse(partial)));
    }

    #[test]
    fn scopes_are_written_space_separated_in_order() {
        let scopes = Scopes::parse("  write:jira-work read:jira-user  ");
        assert_eq!(scopes.to_string(), "read:jira-user write:jira-work");
        assert!(Scopes::parse("read:jira-user write:jira-work offline_access").covers(&scopes));
        assert!(!scopes.covers(&Scopes::parse("offline_access")));
    }
}
