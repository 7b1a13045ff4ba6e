//! OAuth 2.0's request parameters, parsed once: the `/authorize` query, the consent form that
//! carries it back, and the token request's body with the client's Basic header.

use serde::Deserialize;

use crate::credentials::{Credentials, Secret};
use crate::service::oauth::{OAuthError, OAuthErrorCode, TokenRequest};

/// The query of `/authorize`, and the hidden fields of the consent form.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct AuthorizeQuery {
    pub(crate) client_id: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) response_type: Option<String>,
    pub(crate) login_hint: Option<String>,
}

impl AuthorizeQuery {
    /// Reads a query string; the first value counts when a parameter is repeated.
    pub(crate) fn parse(query: &[u8]) -> Self {
        let mut parsed = Self::default();
        for (name, value) in form_urlencoded::parse(query) {
            parsed.take(&name, value);
        }
        parsed
    }

    /// Every parameter given, in a stable order.
    pub(crate) fn pairs(&self) -> [(&'static str, Option<&str>); 6] {
        [
            ("client_id", self.client_id.as_deref()),
            ("redirect_uri", self.redirect_uri.as_deref()),
            ("scope", self.scope.as_deref()),
            ("state", self.state.as_deref()),
            ("response_type", self.response_type.as_deref()),
            ("login_hint", self.login_hint.as_deref()),
        ]
    }

    /// Keeps `value` when `name` is one of the query's parameters not seen yet.
    fn take(&mut self, name: &str, value: std::borrow::Cow<'_, str>) {
        let slot = match name {
            "client_id" => &mut self.client_id,
            "redirect_uri" => &mut self.redirect_uri,
            "scope" => &mut self.scope,
            "state" => &mut self.state,
            "response_type" => &mut self.response_type,
            "login_hint" => &mut self.login_hint,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(value.into_owned());
        }
    }
}

/// What the consent form sends: the query's fields, who signs in, the sites picked, the answer.
#[derive(Debug, Default, Clone)]
#[cfg_attr(any(test, feature = "fuzzing"), derive(PartialEq, Eq))]
pub(crate) struct ConsentForm {
    pub(crate) query: AuthorizeQuery,
    pub(crate) email: String,
    pub(crate) token: Secret,
    /// A seeded user's account id, picked instead of an email and token.
    pub(crate) account: String,
    pub(crate) sites: Vec<String>,
    pub(crate) accept: bool,
}

impl ConsentForm {
    /// Reads a form body in one pass.
    pub(crate) fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        for (name, value) in form_urlencoded::parse(body) {
            match name.as_ref() {
                "email" => form.email = value.into_owned(),
                "token" => form.token = value.into_owned().into(),
                "account" => form.account = value.into_owned(),
                "site" => form.sites.push(value.into_owned()),
                "decision" => form.accept = value == "accept",
                other => form.query.take(other, value),
            }
        }
        form
    }
}

/// The fields of a token request body, as JSON names them. No `Debug`: it holds secrets.
#[derive(Default, Deserialize)]
struct TokenBody {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

impl TokenBody {
    /// A form body: RFC 6749 §3.2 forbids repeating a parameter, and an empty one is omitted.
    fn from_form(body: &[u8]) -> Result<Self, OAuthError> {
        let mut parsed = Self::default();
        for (name, value) in form_urlencoded::parse(body) {
            let slot = match name.as_ref() {
                "grant_type" => &mut parsed.grant_type,
                "client_id" => &mut parsed.client_id,
                "client_secret" => &mut parsed.client_secret,
                "code" => &mut parsed.code,
                "redirect_uri" => &mut parsed.redirect_uri,
                "refresh_token" => &mut parsed.refresh_token,
                "scope" => &mut parsed.scope,
                _ => continue,
            };
            if value.is_empty() {
                continue;
            }
            if slot.is_some() {
                return Err(invalid_request(format!(
                    "The parameter {name} is repeated."
                )));
            }
            *slot = Some(value.into_owned());
        }
        Ok(parsed)
    }
}

fn invalid_request(description: String) -> OAuthError {
    OAuthError {
        error: OAuthErrorCode::InvalidRequest,
        description,
    }
}

/// A token request from its `Content-Type` and `Authorization` headers and its body: JSON when
/// the type says so, a form otherwise; the client's credentials in the body or, form-encoded
/// (RFC 6749 §2.3.1), in a Basic header. An empty value counts as not given.
pub(crate) fn token_request(
    content_type: Option<&[u8]>,
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Result<TokenRequest, OAuthError> {
    let json = content_type.is_some_and(|value| {
        let value = value.trim_ascii_start();
        value.len() >= 16 && value[..16].eq_ignore_ascii_case(b"application/json")
    });
    let body = if json {
        serde_json::from_slice::<TokenBody>(body)
            .map_err(|_| invalid_request("The body is not a JSON object of strings.".to_owned()))?
    } else {
        TokenBody::from_form(body)?
    };
    let given = |value: Option<String>| value.filter(|value| !value.is_empty());
    let (mut client_id, mut client_secret) = (given(body.client_id), given(body.client_secret));
    let mut basic_as_sent = None;
    if let Some(Credentials::Basic { email, token }) =
        authorization.and_then(Credentials::from_authorization)
    {
        let decode = |text: &str| {
            form_urlencoded::parse(format!("x={text}").as_bytes())
                .next()
                .map(|(_, value)| value.into_owned())
        };
        // What the body lacks comes from the header, form-decoded; the header as sent is kept
        // to try next when decoding changed it.
        let (id_from_header, secret_from_header) = (client_id.is_none(), client_secret.is_none());
        let sent_id = if id_from_header {
            given(Some(email.clone()))
        } else {
            client_id.clone()
        };
        let sent_secret = if secret_from_header {
            given(Some(token.clone()))
        } else {
            client_secret.clone()
        };
        if id_from_header {
            client_id = given(decode(&email));
        }
        if secret_from_header {
            client_secret = given(decode(&token));
        }
        if (&sent_id, &sent_secret) != (&client_id, &client_secret) {
            basic_as_sent = sent_id.zip(sent_secret.map(Secret::from));
        }
    }
    Ok(TokenRequest {
        grant_type: given(body.grant_type),
        client_id,
        client_secret: client_secret.map(Secret::from),
        code: given(body.code).map(Secret::from),
        redirect_uri: given(body.redirect_uri),
        refresh_token: given(body.refresh_token).map(Secret::from),
        scope: given(body.scope),
        basic_as_sent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_authorize_parameter_counts_and_others_are_ignored() {
        let query = AuthorizeQuery::parse(b"client_id=a&client_id=b&x=1&state=%20s+t");
        assert_eq!(query.client_id.as_deref(), Some("a"));
        assert_eq!(query.state.as_deref(), Some(" s t"));
        assert_eq!(query.scope, None);
    }

    #[test]
    fn the_consent_form_carries_the_query_back() {
        let form = ConsentForm::parse(
            b"client_id=c&email=a%40x.io&token=t&site=acme&site=beta&decision=accept&state=s",
        );
        assert_eq!(form.query.client_id.as_deref(), Some("c"));
        assert_eq!(form.query.state.as_deref(), Some("s"));
        assert_eq!((form.email.as_str(), &*form.token), ("a@x.io", "t"));
        assert_eq!(form.sites, ["acme", "beta"]);
        assert!(form.accept);
        assert!(!ConsentForm::parse(b"decision=deny").accept);
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let request = token_request(
            None,
            None,
            b"client_id=c&client_secret=s3cret-1&code=s3cret-2&refresh_token=s3cret-3",
        )
        .unwrap();
        let form = ConsentForm::parse(b"email=a%40x.io&token=s3cret-4");
        for debug in [format!("{request:?}"), format!("{form:?}")] {
            assert!(!debug.contains("s3cret"), "{debug}");
        }
        assert_eq!(request.client_secret.as_deref(), Some("s3cret-1"));
        assert_eq!(&*form.token, "s3cret-4");
    }

    #[test]
    fn token_requests_read_json_forms_and_basic_headers() {
        let json = token_request(
            Some(b" Application/JSON; charset=utf-8"),
            None,
            br#"{"grant_type":"refresh_token","refresh_token":"r","client_id":""}"#,
        )
        .unwrap();
        assert_eq!(json.grant_type.as_deref(), Some("refresh_token"));
        assert_eq!(json.client_id, None, "an empty value is not given");
        // "a b:c%3Ad" form-encoded in Basic: client "a b", secret "c:d".
        let form = token_request(
            Some(b"application/x-www-form-urlencoded"),
            Some(b"Basic YStiOmMlM0Fk"),
            b"grant_type=client_credentials",
        )
        .unwrap();
        assert_eq!(form.client_id.as_deref(), Some("a b"));
        assert_eq!(form.client_secret.as_deref(), Some("c:d"));
        let (id, secret) = form.basic_as_sent.expect("the header as sent, to try next");
        assert_eq!((id.as_str(), &*secret), ("a+b", "c%3Ad"));
        // The id in the body, the secret in the header: the secret as sent is tried next.
        let mixed = token_request(
            None,
            Some(b"Basic bmlnaHRseTpzK2NyZXQ="),
            b"client_id=nightly",
        )
        .unwrap();
        assert_eq!(mixed.client_secret.as_deref(), Some("s cret"));
        let (id, secret) = mixed
            .basic_as_sent
            .expect("the secret as sent, to try next");
        assert_eq!((id.as_str(), &*secret), ("nightly", "s+cret"));
        // Nothing to decode: nothing else to try.
        let plain = token_request(None, Some(b"Basic YTpi"), b"").unwrap();
        assert_eq!(plain.client_id.as_deref(), Some("a"));
        assert!(plain.basic_as_sent.is_none());
        let repeated = token_request(None, None, b"code=a&code=b").unwrap_err();
        assert_eq!(repeated.error, OAuthErrorCode::InvalidRequest);
        assert!(token_request(Some(b"application/json"), None, b"[1]").is_err());
        assert!(token_request(Some(b"application/json"), None, br#"{"code":1}"#).is_err());
    }
}
