//! API tokens: how they arrive in an `Authorization` header, how they are made and how they are stored.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Credentials as a client sent them. Debug output never shows the token.
pub enum Credentials {
    /// `Basic base64(email:api_token)`, the way integrations call Jira Cloud.
    Basic {
        /// The email the user signs in with.
        email: String,
        /// The API token.
        token: String,
    },
    /// `Bearer token`: looked up like an API token, acting as its owner.
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { email, .. } => write!(f, "Basic({email}:<redacted>)"),
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// A secret (a token, a client secret, a database URL with its password): the text it holds,
/// but shown as `<redacted>` by `Debug`, so that no `{:?}` of a struct holding one leaks it.
/// Credentials are compared by digest, in constant time, never with `==`: it has `PartialEq`
/// only for the parsers' round-trip checks (tests and fuzzing).
#[derive(Clone, Default, serde::Deserialize, serde::Serialize)]
#[cfg_attr(any(test, feature = "fuzzing"), derive(PartialEq, Eq))]
#[serde(transparent)]
pub struct Secret(String);

impl std::ops::Deref for Secret {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl From<Secret> for String {
    fn from(secret: Secret) -> Self {
        secret.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How a request reached its site, as far as credentials care: OAuth 2.0 access tokens work
/// only through the gateway (`api.atlassian.com/ex/jira/{cloudId}`), as on Atlassian's cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The site's own URL.
    Site,
    /// The gateway form.
    Gateway,
}

/// What a caller proved, kept for the length of its request so that it can be checked again
/// when the stored credentials it was accepted against changed meanwhile. Holds the token's
/// digest, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// How the request reached its site.
    pub via: Via,
    /// The lower-cased email of Basic credentials; `None` for a Bearer token.
    pub email_key: Option<String>,
    /// The token's digest.
    pub digest: TokenDigest,
}

/// Standard base64, with or without padding, as clients send it.
const BASIC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Credentials {
    /// Parses an `Authorization` header value. Another scheme, or a value that does not parse,
    /// gives `None`: it counts as no credentials at all.
    pub fn from_authorization(value: &[u8]) -> Option<Self> {
        let value = std::str::from_utf8(value).ok()?.trim();
        let (scheme, rest) = value.split_once(' ')?;
        let rest = rest.trim_start();
        if scheme.eq_ignore_ascii_case("basic") {
            // UTF-8 as RFC 7617's charset="UTF-8" asks; other bytes as ISO-8859-1, which
            // Python's requests and other older clients send non-ASCII text in.
            let mut email = String::from_utf8(BASIC_BASE64.decode(rest).ok()?)
                .unwrap_or_else(|e| e.into_bytes().into_iter().map(char::from).collect());
            let colon = email.find(':')?;
            // The email keeps the decoded buffer; only the token is copied out of it.
            let token = email.split_off(colon + 1);
            email.truncate(colon);
            Some(Self::Basic { email, token })
        } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            Some(Self::Bearer(rest.to_owned()))
        } else {
            None
        }
    }

    /// The API token, whichever scheme carried it.
    pub fn token(&self) -> &str {
        match self {
            Self::Basic { token, .. } | Self::Bearer(token) => token,
        }
    }
}

/// The SHA-256 digest of an API token: the only form in which tokens are stored.
///
/// A plain fast hash is right here: tokens we issue carry 256 random bits, so nobody can
/// brute-force them from a leaked digest, and a slow password hash would cost every request
/// milliseconds. Lookups go by digest, so their timing reveals nothing about the token itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// Digests a token.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Rebuilds a digest read back from storage; `None` when it has the wrong length.
    pub fn from_stored(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// Reads a digest written by [`TokenDigest::to_hex`]; `None` unless 64 hex digits.
    pub fn from_hex(digits: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digits, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// The digest as 64 lower-case hex digits, as snapshots carry it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The digest's bytes, for storage.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The token's id in the admin API: 16 hex digits derived from the digest, so that a token
    /// keeps its id through snapshots, `reset?to=seed` and every instance. It tells nothing the
    /// digest does not.
    pub fn token_id(&self) -> String {
        let id = Sha256::new_with_prefix(b"jira-userprops token id\0")
            .chain_update(self.0)
            .finalize();
        hex::encode(&id[..8])
    }

    /// Compares in constant time, so the comparison itself leaks nothing.
    pub fn matches(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// Makes a new API token: 256 random bits, URL-safe base64.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokens_id_is_16_hex_digits_that_follow_from_the_token_alone() {
        let id = TokenDigest::of("bob-token").token_id();
        assert_eq!(id.len(), 16);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(TokenDigest::of("bob-token").token_id(), id);
        assert_ne!(TokenDigest::of("alice-token").token_id(), id);
        assert!(!TokenDigest::of("bob-token").to_hex().starts_with(&id));
    }

    fn basic(pair: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let header = basic("bob@example.com:tok:en");
        let Some(Credentials::Basic { email, token }) =
            Credentials::from_authorization(header.as_bytes())
        else {
            panic!("not parsed as Basic");
        };
        assert_eq!(
            (email.as_str(), token.as_str()),
            ("bob@example.com", "tok:en")
        );
    }

    #[test]
    fn basic_credentials_not_in_utf8_are_read_as_latin_1() {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(b"\xe4nne@example.com:s\xe9cret")
        );
        let Some(Credentials::Basic { email, token }) =
            Credentials::from_authorization(header.as_bytes())
        else {
            panic!("not parsed as Basic");
        };
        assert_eq!(
            (email.as_str(), token.as_str()),
            ("änne@example.com", "sécret")
        );
        let utf8 = basic("änne@example.com:sécret");
        assert!(matches!(
            Credentials::from_authorization(utf8.as_bytes()),
            Some(Credentials::Basic { email, .. }) if email == "änne@example.com"
        ));
    }

    #[test]
    fn scheme_names_are_case_insensitive() {
        assert!(
            Credentials::from_authorization(basic("a:b").replace("Basic", "bASIC").as_bytes())
                .is_some()
        );
        assert!(matches!(
            Credentials::from_authorization(b"bearer abc"),
            Some(Credentials::Bearer(t)) if t == "abc"
        ));
    }

    #[test]
    fn unparseable_headers_count_as_no_credentials() {
        for header in [
            "",
            "Basic",
            "Basic !!!",
            "Bearer ",
            "Digest abc",
            "Basic Ym9i",
            "Token abc",
        ] {
            assert!(
                Credentials::from_authorization(header.as_bytes()).is_none(),
                "{header:?}"
            );
        }
    }

    #[test]
    fn digests_compare_equal_only_for_the_same_token() {
        assert!(TokenDigest::of("a").matches(&TokenDigest::of("a")));
        assert!(!TokenDigest::of("a").matches(&TokenDigest::of("b")));
    }

    #[test]
    fn digests_survive_hex() {
        let digest = TokenDigest::of("bob-token");
        assert_eq!(TokenDigest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(
            TokenDigest::from_hex(&digest.to_hex().to_uppercase()),
            Some(digest)
        );
        let signed = format!("+{}", &digest.to_hex()[1..]);
        let long = format!("{}00", digest.to_hex());
        for bad in [
            "",
            "00",
            &"0".repeat(63),
            &long,
            &"g".repeat(64),
            &"é".repeat(32),
            &signed,
        ] {
            assert_eq!(TokenDigest::from_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn debug_output_hides_the_token() {
        let shown = format!(
            "{:?}",
            Credentials::from_authorization(basic("e:secret").as_bytes())
        );
        assert!(!shown.contains("secret"), "{shown}");
    }
}
