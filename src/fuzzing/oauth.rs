//! The OAuth 2.0 parsers' properties: what `/authorize` and `/oauth/token` read, written again
//! in any form they accept, reads back to the same.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::http::oauth_params::{self, AuthorizeQuery, ConsentForm};
use crate::service::oauth::{OAuthError, TokenRequest};

/// The `/authorize` query and the consent form: parsing never panics, and what was read,
/// written as a query again, reads back to the same.
pub fn authorize_query(data: &[u8]) {
    let query = AuthorizeQuery::parse(data);
    let again = AuthorizeQuery::parse(encode(query.pairs()).as_bytes());
    assert_eq!(
        again, query,
        "{data:?} read as {query:?}, written again read as {again:?}"
    );

    let form = ConsentForm::parse(data);
    let mut pairs: Vec<(&str, Option<&str>)> = form.query.pairs().to_vec();
    pairs.push(("email", Some(form.email.as_str())));
    pairs.push(("token", Some(&*form.token)));
    pairs.push(("account", Some(form.account.as_str())));
    pairs.extend(form.sites.iter().map(|site| ("site", Some(site.as_str()))));
    pairs.push(("decision", form.accept.then_some("accept")));
    let again = ConsentForm::parse(encode(pairs).as_bytes());
    assert_eq!(
        again, form,
        "{data:?} read as {form:?}, written again read as {again:?}"
    );
}

/// A token request: the first byte picks the `Content-Type` (bit 0: JSON, bit 1: a form) and
/// whether the text before the first newline is an `Authorization` header (bit 2); the rest is
/// the body. Parsing never panics; an accepted request has no empty value, and written again as
/// a form, as JSON, and with the client in a Basic header, reads back to the same.
pub fn token_request(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let content_type: Option<&[u8]> = match selector & 3 {
        1 => Some(b"application/json"),
        2 => Some(b"application/x-www-form-urlencoded"),
        _ => None,
    };
    let (authorization, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(end) if selector & 4 != 0 => (Some(&rest[..end]), &rest[end + 1..]),
        _ => (None, rest),
    };
    let Ok(request) = oauth_params::token_request(content_type, authorization, body) else {
        return;
    };
    // The Basic header as sent is a second guess at the client, not a field: compared without it.
    let read = |request: Result<TokenRequest, OAuthError>| {
        request.map(|request| TokenRequest {
            basic_as_sent: None,
            ..request
        })
    };
    let request = TokenRequest {
        basic_as_sent: None,
        ..request
    };
    let fields = fields(&request);
    assert!(
        fields.iter().all(|(_, value)| value != &Some("")),
        "{data:?} read as {request:?}, with an empty value"
    );

    let form = encode(fields);
    let again = read(oauth_params::token_request(None, None, form.as_bytes()));
    assert_eq!(again.as_ref(), Ok(&request), "written as the form {form:?}");

    let json: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .filter_map(|(name, value)| Some(((*name).to_owned(), (*value)?.into())))
        .collect();
    let json = serde_json::Value::Object(json).to_string();
    let again = read(oauth_params::token_request(
        Some(b"application/json"),
        None,
        json.as_bytes(),
    ));
    assert_eq!(again.as_ref(), Ok(&request), "written as the JSON {json}");

    if let (Some(id), Some(secret)) = (&request.client_id, &request.client_secret) {
        let pair = format!("{}:{}", form_encoded(id), form_encoded(secret));
        let header = format!("Basic {}", STANDARD.encode(pair));
        let rest = encode(fields.into_iter().skip(2));
        let again = read(oauth_params::token_request(
            None,
            Some(header.as_bytes()),
            rest.as_bytes(),
        ));
        assert_eq!(again.as_ref(), Ok(&request), "client sent as {header:?}");
    }
}

/// A request's fields, the client's first.
fn fields(request: &TokenRequest) -> [(&'static str, Option<&str>); 7] {
    [
        ("client_id", request.client_id.as_deref()),
        ("client_secret", request.client_secret.as_deref()),
        ("grant_type", request.grant_type.as_deref()),
        ("code", request.code.as_deref()),
        ("redirect_uri", request.redirect_uri.as_deref()),
        ("refresh_token", request.refresh_token.as_deref()),
        ("scope", request.scope.as_deref()),
    ]
}

/// The given pairs as `application/x-www-form-urlencoded`.
fn encode<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut encoded = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value {
            encoded.append_pair(name, value);
        }
    }
    encoded.finish()
}

fn form_encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
