//! The properties the fuzz targets check, kept here so that `cargo test` replays the committed
//! corpus through the very same checks without cargo-fuzz (see `docs/fuzzing.md`).
//!
//! Each function takes arbitrary bytes and panics when the parser breaks a property; for any
//! other input, refused ones included, it returns. Not part of the server's API.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::utf8_percent_encode;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::credentials::Credentials;
use crate::domain::{
    MAX_KEY_CHARS, MAX_VALUE_BYTES, PropertyKey, PropertyValue, ValueError, is_json_whitespace,
};
use crate::http::LINK_ESCAPES;
use crate::snapshot;

mod oauth;

pub use oauth::{authorize_query, token_request};

/// Key decoding: decoded keys obey the key rules, and every valid key, written into a `self` link
/// with the link escapes, decodes back to itself.
pub fn key_decoding(data: &[u8]) {
    // Path text reaches the decoder as `&str`; other bytes never get that far.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = PropertyKey::from_path(text) {
        assert_is_valid_key(&key, text);
        assert_link_round_trip(&key);
    }
    // The same text taken as an already decoded key, as the seed file and the admin API give it.
    if let Ok(key) = PropertyKey::new(text.to_owned()) {
        assert_link_round_trip(&key);
    }
}

#[track_caller]
fn assert_is_valid_key(key: &PropertyKey, raw: &str) {
    let key = key.as_str();
    assert!(!key.is_empty(), "{raw:?} decoded to an empty key");
    assert!(
        key.chars().count() <= MAX_KEY_CHARS,
        "{raw:?} decoded to a key longer than {MAX_KEY_CHARS} characters"
    );
    assert!(
        !key.chars().any(|c| c.is_ascii_control()),
        "{raw:?} decoded to a key with a control character: {key:?}"
    );
}

#[track_caller]
fn assert_link_round_trip(key: &PropertyKey) {
    let link = utf8_percent_encode(key.as_str(), LINK_ESCAPES).to_string();
    assert!(
        link.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
        "{key:?} was written as {link:?}, which is not made of unreserved characters and escapes"
    );
    assert_eq!(
        PropertyKey::from_path(&link).as_ref(),
        Ok(key),
        "{key:?} was written as {link:?}"
    );
}

/// Value validation: an accepted body is stored as exactly its bytes, less JSON white space
/// around them, and that text is JSON to serde_json; a body serde_json reads as one JSON value
/// within the size limit is accepted; refusals name the right reason.
pub fn value_validation(data: &[u8]) {
    let serde_reads = serde_json::from_slice::<Walked>(data);
    match PropertyValue::from_body(data.to_vec()) {
        Ok(value) => {
            let stored = value.as_str();
            assert_eq!(
                stored.as_bytes(),
                trim_json_whitespace(data),
                "the stored text is not the body's own bytes"
            );
            assert!(
                data.len() <= MAX_VALUE_BYTES,
                "a body over the limit passed"
            );
            assert_is_json(stored);
        }
        Err(ValueError::Empty) => assert!(
            trim_json_whitespace(data).is_empty(),
            "a body with content was called empty: {data:?}"
        ),
        Err(ValueError::TooLong) => assert!(
            data.len() > MAX_VALUE_BYTES && !trim_json_whitespace(data).is_empty(),
            "a body within the limit was called too long"
        ),
        Err(ValueError::InvalidJson) => assert!(
            serde_reads.is_err(),
            "serde_json reads {:?} but it was refused as not JSON",
            String::from_utf8_lossy(data)
        ),
    }
}

/// JSON text without the white space RFC 8259 allows around a value.
fn trim_json_whitespace(data: &[u8]) -> &[u8] {
    let start = data
        .iter()
        .position(|&b| !is_json_whitespace(b))
        .unwrap_or(data.len());
    let end = data
        .iter()
        .rposition(|&b| !is_json_whitespace(b))
        .map_or(start, |last| last + 1);
    &data[start..end]
}

/// Stored text must read as JSON. Where serde_json's full parser cannot take what RFC 8259's
/// grammar allows, namely nesting past its 128 levels (values may go to 1,000), a lone UTF-16
/// surrogate escape such as `"\ud800"` (a Rust `str` cannot hold one) or a number past `f64`'s
/// range such as `1e400`, the text is held to serde_json's syntax check alone.
#[track_caller]
fn assert_is_json(text: &str) {
    let Err(error) = serde_json::from_str::<Walked>(text) else {
        return;
    };
    let reason = error.to_string();
    let beyond_parser = [
        "recursion limit exceeded",
        "lone leading surrogate in hex escape",
        "unexpected end of hex escape",
        "number out of range",
    ]
    .iter()
    .any(|limit| reason.starts_with(limit));
    assert!(
        beyond_parser && serde_json::from_str::<IgnoredAny>(text).is_ok(),
        "the stored text {text:?} is not JSON: {reason}"
    );
}

/// One JSON value read through serde_json's full parser and dropped: strings decoded, numbers
/// converted, containers walked. Unlike `serde_json::Value`, which reads an object whose key is
/// serde_json's private raw-value marker as a raw value, it gives no key a meaning.
struct Walked;

impl<'de> Deserialize<'de> for Walked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Walker)
    }
}

struct Walker;

impl<'de> Visitor<'de> for Walker {
    type Value = Walked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Walked, E> {
        Ok(Walked)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Walked, E> {
        Ok(Walked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Walked, E> {
        Ok(Walked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Walked, E> {
        Ok(Walked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Walked, E> {
        Ok(Walked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Walked, E> {
        Ok(Walked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Walked, A::Error> {
        while items.next_element::<Walked>()?.is_some() {}
        Ok(Walked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Walked, A::Error> {
        while entries.next_entry::<Walked, Walked>()?.is_some() {}
        Ok(Walked)
    }
}

/// Credentials: a parsed header never panics, and what it gives, sent again in a header of its
/// own scheme, parses to the same credentials; the token never shows in debug output.
pub fn credentials(data: &[u8]) {
    let Some(parsed) = Credentials::from_authorization(data) else {
        return;
    };
    let header = match &parsed {
        Credentials::Basic { email, token } => {
            assert!(!email.contains(':'), "the email {email:?} holds a colon");
            format!("Basic {}", STANDARD.encode(format!("{email}:{token}")))
        }
        Credentials::Bearer(token) => {
            assert!(
                !token.is_empty() && token.trim() == token,
                "the bearer token {token:?} is empty or padded"
            );
            format!("Bearer {token}")
        }
    };
    let again = Credentials::from_authorization(header.as_bytes());
    assert!(
        matches!(
            (&parsed, &again),
            (Credentials::Basic { email: e1, token: t1 }, Some(Credentials::Basic { email: e2, token: t2 }))
                if e1 == e2 && t1 == t2
        ) || matches!(
            (&parsed, &again),
            (Credentials::Bearer(t1), Some(Credentials::Bearer(t2))) if t1 == t2
        ),
        "{parsed:?} sent again as {header:?} parsed as {again:?}"
    );
    let without_token = match &parsed {
        Credentials::Basic { email, .. } => Credentials::Basic {
            email: email.clone(),
            token: String::new(),
        },
        Credentials::Bearer(_) => Credentials::Bearer(String::new()),
    };
    assert_eq!(
        format!("{parsed:?}"),
        format!("{without_token:?}"),
        "debug output depends on the token"
    );
}

/// Seed and snapshot loading: any text is accepted or refused with a message naming the file,
/// and an accepted one, written as a snapshot, reads back to the same state and the same bytes.
pub fn seed_loader(data: &[u8]) {
    // Seed files are read as UTF-8 text before they are parsed.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = match snapshot::from_json(Path::new("fuzz.json"), text) {
        Ok(loaded) => loaded,
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.starts_with("seed file fuzz.json: "),
                "the message does not name the file: {message}"
            );
            return;
        }
    };
    let written = snapshot::to_json(&loaded)
        .unwrap_or_else(|e| panic!("a loaded seed cannot be written as a snapshot: {e}"));
    let written_text = std::str::from_utf8(&written)
        .unwrap_or_else(|e| panic!("a snapshot was written as other than UTF-8: {e}"));
    let again = snapshot::from_json(Path::new("again.json"), written_text)
        .unwrap_or_else(|e| panic!("a written snapshot does not load: {e}\n{written_text}"));
    assert_eq!(again, loaded, "a snapshot read back differs");
    let rewritten = snapshot::to_json(&again)
        .unwrap_or_else(|e| panic!("a reloaded snapshot cannot be written: {e}"));
    assert!(rewritten == written, "a snapshot written twice differs");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_good_inputs_pass_every_check() {
        for input in ["a%2Fb", "%", "é/ü?#", "%FF", ""] {
            key_decoding(input.as_bytes());
        }
        for input in [
            " {\"a\":[1,2.5e3,\"\\u00e9\"]}\n",
            "",
            "  ",
            "[1,]",
            "\"\\ud800\"",
            "114E4464444440040000",
            "{\"$serde_json::private::RawValue\" : { }}",
        ] {
            value_validation(input.as_bytes());
        }
        for input in ["Basic YTpiOmM=", "Bearer  tok ", "Basic", "Digest x"] {
            credentials(input.as_bytes());
        }
        seed_loader(
            br#"{"users":[{"accountId":"a","email":"a@x.io","apiTokens":["t"]}],
                 "properties":[{"accountId":"a","key":"k","value": [1e3, {"b":null}] }]}"#,
        );
        seed_loader(b"{\"users\": [");
    }

    #[test]
    fn values_nested_past_serde_json_limit_still_count_as_json() {
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        value_validation(deep.as_bytes());
    }
}
