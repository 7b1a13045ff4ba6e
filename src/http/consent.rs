//! The pages of the authorization-code flow: the consent form and the error page. Every value
//! shown is escaped.

use axum::response::{Html, IntoResponse, Response};

use super::oauth_params::AuthorizeQuery;
use crate::service::oauth::{Authorization, OAuthError};

/// Text made safe for HTML.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

pub(super) fn error_page(refusal: &OAuthError) -> Response {
    let body = format!(
        "<!doctype html><title>Authorization failed</title><h1>{}</h1><p id=\"error\">{}</p><p id=\"description\">{}</p>",
        "Something went wrong",
        escape(refusal.error.as_str()),
        escape(&refusal.description)
    );
    (super::oauth::status_of(refusal.error), Html(body)).into_response()
}

/// What the consent page offers.
pub(super) struct Choices {
    /// Site names, to grant.
    pub(super) sites: Vec<String>,
    /// Seeded users to sign in as: (account id, label).
    pub(super) people: Vec<(String, String)>,
}

pub(super) fn consent_page(
    query: &AuthorizeQuery,
    authorization: &Authorization,
    choices: &Choices,
    problem: Option<&str>,
) -> Response {
    let hidden = query.pairs();
    let mut page = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>Authorize {name}</title>\
         <h1>{name} wants to access your Jira sites</h1><p>Scopes: <code>{scopes}</code></p>",
        name = escape(&authorization.app.name),
        scopes = escape(&authorization.scopes.to_string()),
    );
    if let Some(problem) = problem {
        page.push_str(&format!(
            "<p id=\"problem\" role=\"alert\">{}</p>",
            escape(problem)
        ));
    }
    page.push_str("<form method=\"post\" action=\"/authorize\">");
    for (name, value) in hidden {
        if let Some(value) = value {
            page.push_str(&format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(value)
            ));
        }
    }
    page.push_str(
        "<p><label>Email <input name=\"email\" type=\"email\" autocomplete=\"username\"></label></p>\
         <p><label>API token <input name=\"token\" type=\"password\"></label></p>",
    );
    if !choices.people.is_empty() {
        page.push_str(
            "<p><label>Or, with no email, sign in as <select name=\"account\"><option value=\"\"></option>",
        );
        for (account_id, label) in &choices.people {
            page.push_str(&format!(
                "<option value=\"{}\">{}</option>",
                escape(account_id),
                escape(label)
            ));
        }
        page.push_str("</select></label></p>");
    }
    page.push_str("<fieldset><legend>Sites</legend>");
    for site in &choices.sites {
        let site = escape(site);
        page.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"site\" value=\"{site}\" checked> {site}</label><br>"
        ));
    }
    page.push_str(
        "</fieldset><button name=\"decision\" value=\"accept\">Accept</button> \
         <button name=\"decision\" value=\"deny\">Deny</button></form>",
    );
    Html(page).into_response()
}
