//! Property keys and values, and the rules Jira holds them to.

use std::sync::Arc;

use percent_encoding::percent_decode_str;
use serde_json::value::RawValue;

/// Longest property key, in Unicode code points (Atlassian's spec).
pub const MAX_KEY_CHARS: usize = 255;
/// Longest property value, in UTF-8 bytes of the body as sent (Jira Cloud).
pub const MAX_VALUE_BYTES: usize = 32_768;
/// Deepest nesting of arrays and objects in a value; Jackson's default limit.
pub const MAX_VALUE_DEPTH: usize = 1_000;

/// Why a property key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing after `/user/properties/`.
    #[error("The property key must not be empty.")]
    Empty,
    /// The decoded bytes are not UTF-8.
    #[error("The property key is not valid UTF-8.")]
    NotUtf8,
    /// A control character (U+0000-U+001F, U+007F).
    #[error("The property key contains an invalid character.")]
    InvalidCharacter,
    /// More than 255 code points.
    #[error("The property key cannot be longer than 255 characters.")]
    TooLong,
}

/// Why a property value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// No body, or only white space.
    #[error("The property value can not be empty.")]
    Empty,
    /// More than 32,768 bytes as sent.
    #[error("The JSON data provided for the property is too long. Maximum length is 32,768 bytes.")]
    TooLong,
    /// Not exactly one strict JSON value.
    #[error("The property value must be valid JSON.")]
    InvalidJson,
}

/// A property key that satisfies Jira's rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PropertyKey(String);

impl PropertyKey {
    /// Decodes the raw path text after `/user/properties/` (percent-decoded once, as UTF-8).
    pub fn from_path(raw: &str) -> Result<Self, KeyError> {
        let decoded = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| KeyError::NotUtf8)?;
        Self::new(decoded.into_owned())
    }

    /// Checks an already decoded key.
    pub fn new(key: String) -> Result<Self, KeyError> {
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        // PostgreSQL cannot store U+0000, and control characters break logs and headers.
        if key.chars().any(|c| c.is_ascii_control()) {
            return Err(KeyError::InvalidCharacter);
        }
        if key.chars().count() > MAX_KEY_CHARS {
            return Err(KeyError::TooLong);
        }
        Ok(Self(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A property value: one JSON value as its exact text, without surrounding white space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyValue(Arc<str>);

/// JSON's insignificant white space (RFC 8259); a byte-order mark is not among it.
pub fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

impl PropertyValue {
    /// Validates a request body in Jira's order: empty, too long, not JSON.
    pub fn from_body(body: Vec<u8>) -> Result<Self, ValueError> {
        let Some(start) = body.iter().position(|&b| !is_json_whitespace(b)) else {
            return Err(ValueError::Empty);
        };
        if body.len() > MAX_VALUE_BYTES {
            return Err(ValueError::TooLong);
        }
        let text = String::from_utf8(body).map_err(|_| ValueError::InvalidJson)?;
        // RawValue validates strictly (RFC 8259, no trailing data) without building a tree.
        let len = serde_json::from_str::<&RawValue>(&text)
            .map_err(|_| ValueError::InvalidJson)?
            .get()
            .len();
        if nesting_depth(&text.as_bytes()[start..start + len]) > MAX_VALUE_DEPTH {
            return Err(ValueError::InvalidJson);
        }
        Ok(Self(trim_to(text, start, len).into()))
    }

    /// Wraps a value that was validated before it was stored.
    pub fn from_stored(text: String) -> Self {
        Self(text.into())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0.as_ref().to_owned()
    }
}

/// Keeps `len` bytes from `start`, reusing the allocation (values rarely carry white space).
fn trim_to(mut text: String, start: usize, len: usize) -> String {
    text.truncate(start + len);
    if start > 0 {
        text.drain(..start);
    }
    text
}

/// The deepest nesting of arrays and objects in valid JSON text.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Whether a write made a new property or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The key did not exist before this write.
    Created,
    /// The key existed and its value was replaced.
    Updated,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_once() {
        assert_eq!(PropertyKey::from_path("%2541").unwrap().as_str(), "%41");
        assert_eq!(PropertyKey::from_path("a%2Fb").unwrap().as_str(), "a/b");
        assert_eq!(PropertyKey::from_path("a/b").unwrap().as_str(), "a/b");
        assert_eq!(PropertyKey::from_path("%").unwrap().as_str(), "%");
    }

    #[test]
    fn key_rules_reject_what_jira_rejects() {
        assert_eq!(PropertyKey::from_path("%FF"), Err(KeyError::NotUtf8));
        assert_eq!(
            PropertyKey::from_path("a%00b"),
            Err(KeyError::InvalidCharacter)
        );
        assert_eq!(
            PropertyKey::from_path("a%7F"),
            Err(KeyError::InvalidCharacter)
        );
        assert_eq!(PropertyKey::new(String::new()), Err(KeyError::Empty));
        assert!(PropertyKey::new("é".repeat(255)).is_ok());
        assert_eq!(PropertyKey::new("é".repeat(256)), Err(KeyError::TooLong));
    }

    #[test]
    fn values_keep_their_text_and_lose_surrounding_white_space() {
        let value = PropertyValue::from_body(b" \n{\"b\":1.0, \"a\":1e3}\r\n".to_vec()).unwrap();
        assert_eq!(value.as_str(), "{\"b\":1.0, \"a\":1e3}");
    }

    #[test]
    fn value_checks_come_in_jiras_order() {
        let spaces = vec![b' '; MAX_VALUE_BYTES + 10];
        assert_eq!(PropertyValue::from_body(spaces), Err(ValueError::Empty));
        let mut long = vec![b'x'; MAX_VALUE_BYTES + 1];
        long[0] = b'{';
        assert_eq!(PropertyValue::from_body(long), Err(ValueError::TooLong));
        for bad in [
            "{} {}",
            "NaN",
            "'a'",
            "[1,]",
            "\u{feff}1",
            "\"a\u{1}\"",
            "01",
        ] {
            assert_eq!(
                PropertyValue::from_body(bad.as_bytes().to_vec()),
                Err(ValueError::InvalidJson),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn nesting_is_accepted_to_jacksons_limit() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
        assert!(PropertyValue::from_body(nested(MAX_VALUE_DEPTH)).is_ok());
        assert_eq!(
            PropertyValue::from_body(nested(MAX_VALUE_DEPTH + 1)),
            Err(ValueError::InvalidJson)
        );
        let in_string = format!("\"{}\"", "[".repeat(2000)).into_bytes();
        assert!(PropertyValue::from_body(in_string).is_ok());
    }
}
