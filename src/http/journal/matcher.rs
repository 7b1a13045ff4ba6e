//! Which journal entries a question is about: a request matcher as WireMock users know it, taken
//! as JSON by `POST /_admin/requests/count` and `/find` and as query parameters by
//! `GET /_admin/requests` and the console. Parsed once; a bad field is refused with its name.

use std::time::SystemTime;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::Record;
use crate::http::site::without_gateway;

/// A request matcher: every field given must hold.
#[derive(Debug, Default)]
pub struct Matcher {
    method: Option<String>,
    path: Option<String>,
    path_prefix: Option<String>,
    path_pattern: Option<Regex>,
    account_id: Option<String>,
    caller: Option<String>,
    key: Option<String>,
    status: Option<u16>,
    body: Option<Value>,
    body_contains: Option<Value>,
    since: Option<SystemTime>,
}

/// The matcher as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spec {
    method: Option<String>,
    path: Option<String>,
    path_prefix: Option<String>,
    path_pattern: Option<String>,
    account_id: Option<String>,
    caller: Option<String>,
    key: Option<String>,
    status: Option<u16>,
    #[serde(default, deserialize_with = "present")]
    body: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    body_contains: Option<Value>,
    since: Option<String>,
}

/// A JSON value that was sent, `null` included: a body can be `null`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The longest `pathPattern` taken, and the most memory its compiled form may use.
const MAX_PATTERN_CHARS: usize = 1024;
const MAX_PATTERN_BYTES: usize = 1 << 20;

impl Matcher {
    /// A matcher sent as a JSON object; an empty body matches everything.
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let spec: Spec = crate::http::extract::json_body(body).map_err(|e| {
            format!(
                "The matcher must be a JSON object of method, path, pathPrefix, pathPattern, \
                 accountId, caller, key, status, body, bodyContains and since ({e})."
            )
        })?;
        Self::from_spec(spec)
    }

    /// A matcher sent as query parameters; `body` and `bodyContains` are JSON text.
    pub fn from_query(query: &str) -> Result<Self, String> {
        let mut spec = Spec::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.into_owned();
            let json = |value: &str| {
                serde_json::from_str(value).map_err(|_| format!("{name} '{value}' is not JSON"))
            };
            match name.as_ref() {
                "method" => spec.method = Some(value),
                "path" => spec.path = Some(value),
                "pathPrefix" => spec.path_prefix = Some(value),
                "pathPattern" => spec.path_pattern = Some(value),
                "accountId" => spec.account_id = Some(value),
                "caller" => spec.caller = Some(value),
                "key" => spec.key = Some(value),
                "status" => {
                    let status = value
                        .parse()
                        .map_err(|_| format!("status '{value}' is not a number"))?;
                    spec.status = Some(status);
                }
                "body" => spec.body = Some(json(&value)?),
                "bodyContains" => spec.body_contains = Some(json(&value)?),
                "since" => spec.since = Some(value),
                other => return Err(format!("Unknown filter '{other}'.")),
            }
        }
        Self::from_spec(spec)
    }

    fn from_spec(spec: Spec) -> Result<Self, String> {
        let path_pattern = spec
            .path_pattern
            .map(|pattern| {
                if pattern.chars().count() > MAX_PATTERN_CHARS {
                    return Err(format!(
                        "pathPattern is longer than {MAX_PATTERN_CHARS} characters"
                    ));
                }
                let compiled = |text: &str| {
                    regex::RegexBuilder::new(text)
                        .size_limit(MAX_PATTERN_BYTES)
                        .build()
                        .map_err(|e| format!("pathPattern is not a regular expression: {e}"))
                };
                // A whole expression on its own: `a)|(?:b` would undo the anchoring below.
                compiled(&pattern)?;
                // Anchored: a pattern describes the whole path, as WireMock's urlPathPattern.
                compiled(&format!("^(?:{pattern})$"))
            })
            .transpose()?;
        let since = spec
            .since
            .map(|since| {
                // Not humantime's parser alone: it reads an offset after a fraction as UTC.
                let ms = crate::clock::parse_rfc3339_ms(&since)
                    .map_err(|reason| format!("since {reason}"))?;
                Ok::<_, String>(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.unsigned_abs()),
                )
            })
            .transpose()?;
        Ok(Self {
            method: spec.method,
            path: spec.path,
            path_prefix: spec.path_prefix,
            path_pattern,
            account_id: spec.account_id,
            caller: spec.caller,
            key: spec.key,
            status: spec.status,
            body: spec.body,
            body_contains: spec.body_contains,
            since,
        })
    }

    /// Whether a request passes every field given. Paths match with or without the gateway's
    /// `/ex/jira/{cloudId}`, so a site's requests match its own host's paths too.
    pub(super) fn matches(&self, record: &Record) -> bool {
        let (path, query) = record.path_and_query();
        let paths = [path, without_gateway(path)];
        let given =
            |field: &Option<String>, test: &dyn Fn(&str) -> bool| field.as_deref().is_none_or(test);
        given(&self.method, &|m| {
            record.method.as_str().eq_ignore_ascii_case(m)
        }) && self.status.is_none_or(|s| record.status == s)
            && self.since.is_none_or(|since| record.at >= since)
            && given(&self.path, &|p| paths.contains(&p))
            && given(&self.path_prefix, &|p| {
                paths.iter().any(|path| path.starts_with(p))
            })
            && self
                .path_pattern
                .as_ref()
                .is_none_or(|pattern| paths.iter().any(|path| pattern.is_match(path)))
            && given(&self.caller, &|c| record.account_id.as_deref() == Some(c))
            && given(&self.account_id, &|a| {
                target_account(query).as_deref() == Some(a)
            })
            && given(&self.key, &|k| record.property_key().as_deref() == Some(k))
            && self.body_matches(record.body.as_deref())
    }

    /// Whether `body` or `bodyContains` is given: they need the body, which the journal keeps
    /// only for stored PUTs with `--journal-bodies`.
    pub fn asks_about_bodies(&self) -> bool {
        self.body.is_some() || self.body_contains.is_some()
    }

    /// `body` and `bodyContains` need the body, which the journal keeps only for stored PUTs
    /// with `--journal-bodies`.
    fn body_matches(&self, body: Option<&str>) -> bool {
        if self.body.is_none() && self.body_contains.is_none() {
            return true;
        }
        let Some(value) = body.and_then(|body| serde_json::from_str::<Value>(body).ok()) else {
            return false;
        };
        self.body.as_ref().is_none_or(|expected| *expected == value)
            && self
                .body_contains
                .as_ref()
                .is_none_or(|part| contains(&value, part))
    }
}

/// The `accountId` a request's query named: whose record it was about.
fn target_account(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "accountId")
        .map(|(_, value)| value.into_owned())
}

/// Whether `part` is found in `value`: an object's fields each in the value's field of that
/// name, an array's elements each in some element of the value's array, anything else equal.
fn contains(value: &Value, part: &Value) -> bool {
    match (value, part) {
        (Value::Object(value), Value::Object(part)) => part
            .iter()
            .all(|(name, field)| value.get(name).is_some_and(|v| contains(v, field))),
        (Value::Array(value), Value::Array(part)) => part
            .iter()
            .all(|element| value.iter().any(|v| contains(v, element))),
        _ => value == part,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_json_subset_is_contained_and_anything_else_is_not() {
        let value = json!({"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}, "f": null});
        for part in [
            json!({}),
            json!({"a": 1}),
            json!({"b": {"c": [{"d": 2}]}}),
            json!({"b": {"c": [1]}, "f": null}),
        ] {
            assert!(contains(&value, &part), "{part}");
        }
        for part in [
            json!({"a": 2}),
            json!({"g": null}),
            json!({"b": {"c": [{"d": 3}]}}),
            json!({"b": {"c": {"d": 2}}}),
            json!([1]),
        ] {
            assert!(!contains(&value, &part), "{part}");
        }
    }

    #[test]
    fn a_null_field_does_not_filter_but_a_null_body_is_the_value_null() {
        let matcher =
            Matcher::from_json(br#"{"method": null, "since": null, "body": null}"#).unwrap();
        assert!(matcher.method.is_none() && matcher.since.is_none());
        assert_eq!(matcher.body, Some(Value::Null));
        assert_eq!(Matcher::from_json(b"{}").unwrap().body, None);
    }

    #[test]
    fn unknown_fields_bad_patterns_and_bad_times_are_refused_by_name() {
        let refused = |json: &str| Matcher::from_json(json.as_bytes()).unwrap_err();
        assert!(refused(r#"{"paht": "/x"}"#).contains("unknown field `paht`"));
        assert!(refused(r#"{"pathPattern": "("}"#).contains("pathPattern"));
        assert!(refused(r#"{"pathPattern": "a)|(?:b"}"#).contains("pathPattern"));
        assert!(refused(r#"{"since": "yesterday"}"#).contains("since"));
        assert!(refused(r#"{"status": "200"}"#).contains("status"));
        assert!(refused("[]").contains("JSON object"));
        let long = format!(
            r#"{{"pathPattern": "{}"}}"#,
            "a".repeat(MAX_PATTERN_CHARS + 1)
        );
        assert!(refused(&long).contains("longer than"));
        assert!(
            Matcher::from_query("status=x")
                .unwrap_err()
                .contains("status")
        );
        assert!(
            Matcher::from_query("body={")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            Matcher::from_query("nope=1")
                .unwrap_err()
                .contains("Unknown filter")
        );
        assert!(Matcher::from_json(b"  ").is_ok());
    }
}
