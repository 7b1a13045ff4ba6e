//! One user of a site in the console: their API tokens, and their properties, which are created,
//! edited and deleted under the API's own rules.
//!
//! Just past 350 lines, and one idea: one user's page, its five actions and the view they share.

use axum::extract::State;
use axum::http::StatusCode;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::json_html;
use super::layout::{
    Address, Failure, Form, Tab, View, done, field_error, find_site, segment, site_header,
};
use super::users::{flag_form, shown_name};
use crate::domain::{AccountId, PropertyKey, PropertyValue, Scopes, Site, Written};
use crate::error::Error;
use crate::http::AppState;
use crate::http::extract::LINK_ESCAPES;
use crate::http::extract::{PathParams, WholeBody};
use crate::http::sites::Server;
use crate::service::admin::AdminService;
use crate::store::admin::TokenLimits;

/// `{site}` and `{accountId}`.
#[derive(Deserialize)]
pub struct UserPath {
    pub(super) site: String,
    #[serde(rename = "accountId")]
    pub(super) account_id: String,
}

/// `{site}`, `{accountId}` and `{tokenId}`.
#[derive(Deserialize)]
pub struct TokenPath {
    site: String,
    #[serde(rename = "accountId")]
    account_id: String,
    #[serde(rename = "tokenId")]
    token_id: String,
}

/// What a user's page shows besides the user: a token just made, or a property form sent back.
#[derive(Default)]
struct Extras {
    new_token: Option<String>,
    token_error: Option<String>,
    /// The scopes typed, kept when they were refused.
    scopes: Option<String>,
    property: Option<PropertyDraft>,
}

/// A property form sent back with its error: which form (`editing` a key, or the new one), what
/// was typed, and the message beside the field that is wrong.
struct PropertyDraft {
    editing: bool,
    key: String,
    value: String,
    key_error: Option<String>,
    value_error: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    Address(server): Address,
    PathParams(UserPath { site, account_id }): PathParams<UserPath>,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let account_id = AdminService::account(&account_id)?;
    let page = UserPage::new(&state, &server, &site, &account_id);
    page.render(None, &Extras::default()).await
}

pub async fn create_token(
    State(state): State<AppState>,
    Address(server): Address,
    PathParams(UserPath { site, account_id }): PathParams<UserPath>,
    WholeBody(body): WholeBody,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let account_id = AdminService::account(&account_id)?;
    let form = Form::parse(&body);
    // Words of the field: each is one scope, checked as the admin API checks a list of them.
    let words: Vec<&str> = form.text("scopes").split_whitespace().collect();
    let scopes = (!words.is_empty()).then(|| Scopes::of(&words)).transpose();
    let mut extras = Extras::default();
    let made = match scopes {
        Ok(scopes) => {
            let limits = TokenLimits {
                scopes,
                expires_at: None,
            };
            state
                .admin
                .create_token(site.key, &account_id, &limits)
                .await
        }
        Err(refused) => Err(Error::BadRequest(refused.to_string())),
    };
    let status = match made {
        Ok(token) => {
            extras.new_token = Some(token.token.into());
            StatusCode::OK
        }
        Err(Error::BadRequest(message)) => {
            extras.token_error = Some(message);
            extras.scopes = form.get("scopes").map(str::to_owned);
            StatusCode::BAD_REQUEST
        }
        Err(error) => return Err(error.into()),
    };
    let view = UserPage::new(&state, &server, &site, &account_id)
        .render(None, &extras)
        .await?;
    Ok(view.with_status(status))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Address(server): Address,
    PathParams(TokenPath {
        site,
        account_id,
        token_id,
    }): PathParams<TokenPath>,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let account_id = AdminService::account(&account_id)?;
    state
        .admin
        .revoke_token(site.key, &account_id, &token_id)
        .await?;
    let message = format!("Token {token_id} revoked: it no longer signs in.");
    noticed(&state, &server, &site, &account_id, &message).await
}

pub async fn set_property(
    State(state): State<AppState>,
    Address(server): Address,
    PathParams(UserPath { site, account_id }): PathParams<UserPath>,
    WholeBody(body): WholeBody,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let account_id = AdminService::account(&account_id)?;
    let form = Form::parse(&body);
    let key_text = form.get("key").unwrap_or_default();
    let value_text = form.get("value").unwrap_or_default();
    let key = PropertyKey::new(key_text.to_owned());
    // Browsers send a textarea's line breaks as CRLF; JSON holds no raw line break inside a
    // string, so turning them back into LF changes only white space, and the value keeps the
    // size it had when shown.
    let value = PropertyValue::from_body(value_text.replace("\r\n", "\n").into_bytes());
    let (key, value) = match (key, value) {
        (Ok(key), Ok(value)) => (key, value),
        (key, value) => {
            let extras = Extras {
                property: Some(PropertyDraft {
                    editing: form.get("editing").is_some(),
                    key: key_text.to_owned(),
                    value: value_text.to_owned(),
                    key_error: key.err().map(|e| e.to_string()),
                    value_error: value.err().map(|e| e.to_string()),
                }),
                ..Extras::default()
            };
            let page = UserPage::new(&state, &server, &site, &account_id);
            let view = page.render(None, &extras).await?;
            return Ok(view.with_status(StatusCode::BAD_REQUEST));
        }
    };
    let written = state
        .admin
        .set_property(site.key, &account_id, &key, &value)
        .await?;
    let message = format!(
        "Property {} {}.",
        key.as_str(),
        match written {
            Written::Created => "created",
            Written::Updated => "saved",
        }
    );
    noticed(&state, &server, &site, &account_id, &message).await
}

pub async fn delete_property(
    State(state): State<AppState>,
    Address(server): Address,
    PathParams(UserPath { site, account_id }): PathParams<UserPath>,
    WholeBody(body): WholeBody,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let account_id = AdminService::account(&account_id)?;
    let form = Form::parse(&body);
    let key =
        PropertyKey::new(form.get("key").unwrap_or_default().to_owned()).map_err(Error::from)?;
    state
        .admin
        .delete_property(site.key, &account_id, &key)
        .await?;
    let message = format!("Property {} deleted.", key.as_str());
    noticed(&state, &server, &site, &account_id, &message).await
}

/// A user's page with a notice of what was just done.
pub(super) async fn noticed(
    state: &AppState,
    server: &Server,
    site: &Site,
    account_id: &AccountId,
    message: &str,
) -> Result<View, Failure> {
    UserPage::new(state, server, site, account_id)
        .render(Some(message), &Extras::default())
        .await
}

/// One user's page: who they are, their tokens and their properties.
struct UserPage<'a> {
    state: &'a AppState,
    server: &'a Server,
    site: &'a Site,
    account_id: &'a AccountId,
}

impl<'a> UserPage<'a> {
    fn new(
        state: &'a AppState,
        server: &'a Server,
        site: &'a Site,
        account_id: &'a AccountId,
    ) -> Self {
        Self {
            state,
            server,
            site,
            account_id,
        }
    }

    async fn render(&self, notice: Option<&str>, extras: &Extras) -> Result<View, Failure> {
        let Self {
            state,
            server,
            site,
            account_id,
        } = *self;
        let user = state.admin.user(site.key, account_id).await?;
        let tokens = state.admin.tokens(site.key, account_id).await?;
        let properties = state.admin.properties(site.key, account_id).await?;
        let base = format!("/sites/{}", segment(site.name.as_str()));
        let user_path = format!("{base}/users/{}", segment(&user.account_id));
        let action = format!("/_admin/ui/views{user_path}");
        let draft = extras.property.as_ref();
        let markup = html! {
            (site_header(site, Tab::Users, shown_name(&user)))
            @if let Some(notice) = notice { (done(notice)) }
            dl.facts {
                dt { "accountId" } dd { code { (user.account_id) } }
                dt { "Email" } dd { (user.email) }
                dt { "Administer Jira" } dd { (flag_form(&base, &user, "admin", "user")) }
                dt { "Active" } dd { (flag_form(&base, &user, "active", "user")) }
            }
            section.card #tokens {
                h2 { "API tokens" }
                @if let Some(token) = &extras.new_token {
                    div.notice.done role="status" {
                        p { "New API token, shown this once. Sign in with " code { (user.email) } " and it:" }
                        p.secret { code #new-token { (token) } " "
                            button type="button" data-copy="new-token" { "Copy" } }
                    }
                }
                (field_error("token-error", extras.token_error.as_deref()))
                @if tokens.is_empty() {
                    p.empty { "No API tokens yet: make one below, then sign in with Basic " code { "email:token" } "." }
                } @else {
                    div.scroll { table {
                        thead { tr { th scope="col" { "Id" } th scope="col" { "Made" } th scope="col" { "Scopes" }
                            th scope="col" { "Expires" } th scope="col" { span.sr-only { "Actions" } } } }
                        tbody { @for token in &tokens { tr {
                            td { code { (token.id) } }
                            td { (token.created_at) }
                            td { @match &token.limits.scopes {
                                Some(scopes) => { @for scope in scopes.iter() { code { (scope) } " " } }
                                None => { "classic" }
                            } }
                            td { @match token.limits.expires_at {
                                Some(at) => { (crate::clock::rfc3339_ms(at)) }
                                None => { "never" }
                            } }
                            td { form.inline method="post" action={ (action) "/tokens/" (segment(&token.id)) "/revoke" } {
                                button.danger type="submit" aria-label={ "Revoke token " (token.id) } { "Revoke" }
                            } }
                        } } }
                    } }
                }
                form method="post" action={ (action) "/tokens" } {
                    div.field {
                        label for="token-scopes" { "Scopes (optional, space-separated; none for a classic token)" }
                        input #token-scopes name="scopes" autocomplete="off" placeholder="read:jira-user write:jira-work"
                            value=[extras.scopes.as_deref()];
                    }
                    button type="submit" { "Create API token" }
                }
            }
            section.card #properties {
                h2 { "Properties" }
                @if properties.is_empty() {
                    p.empty {
                        "No properties yet: add one below, or PUT one with "
                        code { (curl_put(&server.site_address(state, &site.name, &site.id), &user.email, &user.account_id)) }
                    }
                }
                @if properties.len() > MOST_PROPERTIES {
                    p.hint { "The first " (MOST_PROPERTIES) " of " (properties.len()) " properties, by key; "
                        code { "GET /rest/api/3/user/properties?accountId=…" } " lists every key." }
                }
                @for (key, value) in properties.iter().take(MOST_PROPERTIES) {
                    @let editing = draft.filter(|d| d.editing && d.key == key.as_str());
                    article.property {
                        h3 { code { (key.as_str()) } }
                        div.json { (PreEscaped(json_html::render(value.as_str()))) }
                        details open[editing.is_some()] {
                            summary { "Edit " span.sr-only { (key.as_str()) } }
                            (property_form(&action, key.as_str(), value.as_str(), editing, true))
                        }
                        form.inline method="post" action={ (action) "/properties/delete" } {
                            input type="hidden" name="key" value=(key.as_str());
                            button.danger type="submit" aria-label={ "Delete property " (key.as_str()) } { "Delete" }
                        }
                    }
                }
                h3 { "Add a property" }
                (property_form(&action, "", "", draft.filter(|d| !d.editing), false))
            }
        };
        Ok(View::new(user_path, markup))
    }
}

/// Properties shown on a user's page, each up to 32 KiB and shown twice (read and edit).
const MOST_PROPERTIES: usize = 100;

/// The form that writes one property: for a key shown (`editing`), or for a new one.
fn property_form(
    action: &str,
    key: &str,
    value: &str,
    draft: Option<&PropertyDraft>,
    editing: bool,
) -> Markup {
    let (key, value) = draft.map_or((key, value), |d| (d.key.as_str(), d.value.as_str()));
    let id = if editing {
        format!("edit-{}", segment(key))
    } else {
        "new-property".to_owned()
    };
    let key_error = draft.and_then(|d| d.key_error.as_deref());
    let value_error = draft.and_then(|d| d.value_error.as_deref());
    html! {
        form.property-form method="post" action={ (action) "/properties" } {
            @if editing {
                input type="hidden" name="editing" value="1";
                input type="hidden" name="key" value=(key);
            } @else {
                div.field {
                    label for={ (id) "-key" } { "Key" }
                    input id={ (id) "-key" } name="key" value=(key) autocomplete="off" required
                        aria-describedby={ (id) "-key-error" } aria-invalid=[key_error.map(|_| "true")];
                    (field_error(&format!("{id}-key-error"), key_error))
                }
            }
            div.field {
                label for={ (id) "-value" } { "Value (JSON, at most 32,768 bytes)" }
                textarea id={ (id) "-value" } name="value" rows="6" spellcheck="false"
                    aria-describedby={ (id) "-value-error" } aria-invalid=[value_error.map(|_| "true")] { (value) }
                (field_error(&format!("{id}-value-error"), value_error))
            }
            button type="submit" { @if editing { "Save" } @else { "Add property" } }
        }
    }
}

/// A `curl` that PUTs a property for the user, safe to paste into a shell whatever the email
/// and account id hold: each word single-quoted, the account id percent-encoded in the URL.
fn curl_put(site_url: &str, email: &str, account_id: &str) -> String {
    let quoted = |text: &str| format!("'{}'", text.replace('\'', r"'\''"));
    let account = percent_encoding::utf8_percent_encode(account_id, LINK_ESCAPES);
    let url = format!("{site_url}/rest/api/3/user/properties/theme?accountId={account}");
    format!(
        "curl -X PUT -u {} -H 'Content-Type: application/json' --data '{{\"theme\":\"dark\"}}' {}",
        quoted(&format!("{email}:API_TOKEN")),
        quoted(&url)
    )
}
