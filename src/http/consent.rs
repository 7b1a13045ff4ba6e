//! The pages of the authorization-code flow: the consent form and the error page, written with
//! maud, which escapes every value shown.

use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, html};

use super::oauth_params::AuthorizeQuery;
use crate::service::oauth::{Authorization, OAuthError};

pub(super) fn error_page(refusal: &OAuthError) -> Response {
    let page = html! {
        (DOCTYPE)
        meta charset="utf-8";
        title { "Authorization failed" }
        h1 { "Something went wrong" }
        p id="error" { (refusal.error.as_str()) }
        p id="description" { (refusal.description) }
    };
    let status = super::oauth_token::status_of(refusal.error);
    framed_nowhere((status, Html(page.into_string())).into_response())
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
    let name = &authorization.app.name;
    let page = html! {
        (DOCTYPE)
        meta charset="utf-8";
        title { "Authorize " (name) }
        h1 { (name) " wants to access your Jira sites" }
        p { "Scopes: " code { (authorization.scopes) } }
        @if let Some(problem) = problem {
            p id="problem" role="alert" { (problem) }
        }
        form method="post" action="/authorize" {
            @for (field, value) in query.pairs() {
                @if let Some(value) = value {
                    input type="hidden" name=(field) value=(value);
                }
            }
            p { label { "Email " input name="email" type="email" autocomplete="username"; } }
            p { label { "API token " input name="token" type="password"; } }
            @if !choices.people.is_empty() {
                p {
                    label {
                        "Or, with no email, sign in as "
                        select name="account" {
                            option value="" {}
                            @for (account_id, label) in &choices.people {
                                option value=(account_id) { (label) }
                            }
                        }
                    }
                }
            }
            fieldset {
                legend { "Sites" }
                @for site in &choices.sites {
                    label { input type="checkbox" name="site" value=(site) checked; " " (site) }
                    br;
                }
            }
            button name="decision" value="accept" { "Accept" }
            " "
            button name="decision" value="deny" { "Deny" }
        }
    };
    framed_nowhere(Html(page.into_string()).into_response())
}

/// These pages load nothing. No `form-action`: browsers apply it to the redirect to the app's
/// callback too.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn framed_nowhere(response: Response) -> Response {
    super::browser_page(response, CONTENT_SECURITY_POLICY)
}
