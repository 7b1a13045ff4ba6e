//! Accounts and users: account ids, emails, display names, the user record and the caller.
//! Past 350 lines only with its tests.

use std::borrow::Cow;
use std::sync::Arc;

use super::{Scopes, SiteKey};
use crate::credentials::Proof;

/// Longest account id (Atlassian's spec).
pub const MAX_ACCOUNT_ID_CHARS: usize = 128;

/// An account id that can name a user: 1 to 128 characters, no control characters. This
/// constructor is the only place that rule lives; a new user's id is not `.` or `..` either
/// ([`NewUser::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

/// Text that cannot be an account id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("accountId must be 1 to 128 characters, without control characters, and not . or ..")]
pub struct InvalidAccountId;

impl AccountId {
    /// Whether `id` could name a user: the rule [`AccountId::parse`] applies, for text that is
    /// only looked up.
    pub fn is_valid(id: &str) -> bool {
        !id.is_empty()
            && id.chars().count() <= MAX_ACCOUNT_ID_CHARS
            && !id.chars().any(char::is_control)
    }

    /// Parses an account id.
    pub fn parse(id: impl Into<String>) -> Result<Self, InvalidAccountId> {
        let id = id.into();
        if Self::is_valid(&id) {
            Ok(Self(id))
        } else {
            Err(InvalidAccountId)
        }
    }

    /// A made-up id in the shape of Atlassian's: 24 hex digits. Not a secret, so not from the
    /// operating system's randomness.
    pub fn random() -> Self {
        Self(format!(
            "{:016x}{:08x}",
            fastrand::u64(..),
            fastrand::u32(..)
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The account a request names in its `accountId` parameter: an id that can name a user, or
/// text that names nobody. Which it is may be told only to callers allowed to ask about others,
/// so it travels to the permission check undecided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedAccount {
    /// A well-formed account id, which may or may not belong to a user.
    Id(AccountId),
    /// Non-empty text that no user can have (too long, control characters).
    Nobody(String),
}

impl NamedAccount {
    /// Sorts non-empty text into the two cases.
    pub fn new(text: String) -> Self {
        match AccountId::parse(text.as_str()) {
            Ok(id) => Self::Id(id),
            Err(InvalidAccountId) => Self::Nobody(text),
        }
    }

    /// The text as given.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Id(id) => id.as_str(),
            Self::Nobody(text) => text,
        }
    }
}

/// An email address a user signs in with: text on both sides of its last `@`, at most 254 bytes
/// (RFC 5321's limit, which also keeps it within what PostgreSQL can index), no control
/// characters, and no `:`, which a Basic header's `email:token` could not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// Text that cannot be an email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an email address")]
pub struct InvalidEmail;

impl Email {
    /// Parses an email address.
    pub fn parse(email: impl Into<String>) -> Result<Self, InvalidEmail> {
        let email = email.into();
        if email
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
            && email.len() <= MAX_EMAIL_BYTES
            && !email.contains(':')
            && !email.chars().any(char::is_control)
        {
            Ok(Self(email))
        } else {
            Err(InvalidEmail)
        }
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest email address, in bytes.
pub const MAX_EMAIL_BYTES: usize = 254;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 255;

/// The name shown for a user: at most 255 characters, without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

/// Text that cannot be a display name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("displayName must be at most 255 characters, without control characters")]
pub struct InvalidDisplayName;

impl DisplayName {
    /// Parses a display name.
    pub fn parse(name: impl Into<String>) -> Result<Self, InvalidDisplayName> {
        let name = name.into();
        if name.chars().count() > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
            Err(InvalidDisplayName)
        } else {
            Ok(Self(name))
        }
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user to create, every field already valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The Atlassian account id.
    pub account_id: AccountId,
    /// The email used with Basic authentication.
    pub email: Email,
    /// The name shown; the email when none is given.
    pub display_name: DisplayName,
    /// Whether the user holds *Administer Jira*.
    pub admin: bool,
    /// Whether the user may sign in.
    pub active: bool,
}

/// What is wrong with a user's fields, each field's problem apart (a form shows each beside its
/// field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvalidUser {
    /// The account id's.
    pub account_id: Option<InvalidAccountId>,
    /// The email's: the text given.
    pub email: Option<String>,
    /// The display name's.
    pub display_name: Option<InvalidDisplayName>,
}

impl std::fmt::Display for InvalidUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut problems = Vec::with_capacity(3);
        if let Some(problem) = &self.account_id {
            problems.push(problem.to_string());
        }
        if let Some(email) = &self.email {
            problems.push(format!("email {email:?} is not an email address"));
        }
        if let Some(problem) = &self.display_name {
            problems.push(problem.to_string());
        }
        f.write_str(&problems.join("; "))
    }
}

impl std::error::Error for InvalidUser {}

impl NewUser {
    /// An active user who does not administer Jira, from its fields as given; the display name
    /// is the email when none is given. The one place these three are parsed together.
    pub fn parse(
        account_id: &str,
        email: &str,
        display_name: Option<&str>,
    ) -> Result<Self, InvalidUser> {
        // Dot segments: no address of the admin API or the console could name the user. Only
        // new users are refused them, so that one made before the rule stays reachable.
        let parsed = (
            AccountId::parse(account_id).and_then(|id| match id.as_str() {
                "." | ".." => Err(InvalidAccountId),
                _ => Ok(id),
            }),
            Email::parse(email),
            DisplayName::parse(display_name.unwrap_or(email)),
        );
        match parsed {
            (Ok(account_id), Ok(email), Ok(display_name)) => Ok(Self {
                account_id,
                email,
                display_name,
                admin: false,
                active: true,
            }),
            (account_id, email_parsed, display_name_parsed) => Err(InvalidUser {
                account_id: account_id.err(),
                email: email_parsed.err().map(|_| email.to_owned()),
                // A name taken from a bad email is the email's problem, told once.
                display_name: display_name_parsed.err().filter(|_| display_name.is_some()),
            }),
        }
    }
}

impl From<NewUser> for User {
    fn from(user: NewUser) -> Self {
        Self {
            account_id: user.account_id.0,
            email: user.email.0,
            display_name: user.display_name.0,
            admin: user.admin,
            active: user.active,
        }
    }
}

/// The form in which emails are compared, so that Basic authentication ignores their case.
pub fn email_key(email: &str) -> Cow<'_, str> {
    // Most emails are already lower-case ASCII, and need no copy.
    if email
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        Cow::Borrowed(email)
    } else {
        Cow::Owned(email.to_lowercase())
    }
}

/// Who is calling, once their credentials were accepted: their own user record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The site the caller authenticated on, which everything they do acts on.
    pub site: SiteKey,
    /// What an OAuth 2.0 token may do; `None` for an API token, which may do all its user may.
    pub scopes: Option<Arc<Scopes>>,
    /// The caller's user record as it was when they authenticated.
    pub user: Arc<User>,
    /// What the caller proved, kept when accepted on cached credentials (below), to prove it
    /// again if those turn out stale.
    pub proof: Option<Proof>,
    /// When the credentials came from an instance's cache: the version of the stored
    /// credentials they were read at, which the request's statement must still find. `None`
    /// when nothing needs checking (read fresh, or a backend with one writer).
    pub credentials_version: Option<CredentialsVersion>,
}

/// A version of everything stored about users and API tokens: it moves with every change to
/// them, in the changing transaction (PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CredentialsVersion(pub i64);

impl Caller {
    /// The caller's own account.
    pub fn account_id(&self) -> &str {
        &self.user.account_id
    }

    /// Whether the caller holds the *Administer Jira* global permission.
    pub fn is_admin(&self) -> bool {
        self.user.admin
    }
}

/// A user record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The Atlassian account id.
    pub account_id: String,
    /// The email address used with Basic authentication.
    pub email: String,
    /// The name shown for the user.
    pub display_name: String,
    /// Whether the user holds *Administer Jira*.
    pub admin: bool,
    /// Whether the user may sign in.
    pub active: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_user_is_parsed_whole_and_each_bad_field_is_named() {
        let user = NewUser::parse("a-1", "ann@example.com", None).expect("valid");
        assert_eq!(user.display_name.as_str(), "ann@example.com");
        assert!(user.active && !user.admin);
        let named = NewUser::parse("a-1", "ann@example.com", Some("Ann")).expect("valid");
        assert_eq!(named.display_name.as_str(), "Ann");

        for dots in [".", ".."] {
            let refused = NewUser::parse(dots, "ann@example.com", None).expect_err("invalid");
            assert_eq!(refused.account_id, Some(InvalidAccountId));
            assert!(AccountId::parse(dots).is_ok(), "{dots} is still looked up");
        }
        let invalid = NewUser::parse("", "nobody", Some("tab\there")).expect_err("invalid");
        assert_eq!(invalid.account_id, Some(InvalidAccountId));
        assert_eq!(invalid.email.as_deref(), Some("nobody"));
        assert_eq!(invalid.display_name, Some(InvalidDisplayName));
        assert_eq!(
            invalid.to_string(),
            "accountId must be 1 to 128 characters, without control characters, and not . or ..; \
             email \"nobody\" is not an email address; \
             displayName must be at most 255 characters, without control characters"
        );
        // Past what PostgreSQL can index, and what mail allows: refused on both backends.
        let long_email = format!("a@{}", "x".repeat(253));
        let long_name = "n".repeat(256);
        let too_long = NewUser::parse("a-1", &long_email, Some(&long_name)).expect_err("invalid");
        assert!(too_long.email.is_some() && too_long.display_name.is_some());
        let longest = format!("a@{}", "x".repeat(252));
        NewUser::parse("a-1", &longest, Some(&long_name[1..])).expect("254 bytes, 255 characters");
        let only_email = NewUser::parse("a-1", "nobody", Some("Ann")).expect_err("invalid");
        assert_eq!(
            only_email.to_string(),
            "email \"nobody\" is not an email address"
        );
        let unnamed = NewUser::parse("a-1", "bell\u{7}@example.com", None).expect_err("invalid");
        assert_eq!(unnamed.display_name, None, "the email's problem, told once");
    }

    #[test]
    fn made_up_account_ids_have_atlassians_shape_and_differ() {
        let (one, other) = (AccountId::random(), AccountId::random());
        for id in [&one, &other] {
            assert_eq!(id.as_str().len(), 24, "{id:?}");
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()), "{id:?}");
            assert_eq!(AccountId::parse(id.as_str()), Ok(id.clone()));
        }
        assert_ne!(one, other);
    }

    #[test]
    fn email_keys_are_lower_case_and_copied_only_when_they_must_change() {
        assert!(matches!(
            email_key("bob@example.com"),
            Cow::Borrowed("bob@example.com")
        ));
        assert_eq!(email_key("Bob@Example.COM"), "bob@example.com");
        assert_eq!(email_key("ÄNNE@example.com"), "änne@example.com");
        assert_eq!(email_key("änne@example.com"), "änne@example.com");
    }

    #[test]
    fn account_ids_are_one_to_128_characters_without_control_characters() {
        assert!(AccountId::parse("a").is_ok());
        assert!(AccountId::parse("é".repeat(MAX_ACCOUNT_ID_CHARS)).is_ok());
        for bad in [
            String::new(),
            "é".repeat(MAX_ACCOUNT_ID_CHARS + 1),
            "a\u{0}b".to_owned(),
            "a\nb".to_owned(),
        ] {
            assert_eq!(
                AccountId::parse(bad.as_str()),
                Err(InvalidAccountId),
                "{bad:?}"
            );
        }
        assert!(matches!(
            NamedAccount::new("x".repeat(129)),
            NamedAccount::Nobody(_)
        ));
        assert!(matches!(
            NamedAccount::new("bob".to_owned()),
            NamedAccount::Id(_)
        ));
    }

    #[test]
    fn emails_and_display_names_refuse_what_cannot_be_shown_or_signed_in_with() {
        assert!(Email::parse("a@x.io").is_ok());
        assert_eq!(Email::parse("nope"), Err(InvalidEmail));
        assert_eq!(Email::parse("a@x\u{7}.io"), Err(InvalidEmail));
        assert!(
            Email::parse("\"a@b\"@x.io").is_ok(),
            "an @ in a quoted local part"
        );
        for bad in ["@", "a@", "@x.io", "a:b@x.io"] {
            assert_eq!(Email::parse(bad), Err(InvalidEmail), "{bad}");
        }
        assert!(DisplayName::parse("Änne Ö").is_ok());
        assert_eq!(DisplayName::parse("a\tb"), Err(InvalidDisplayName));
    }
}
