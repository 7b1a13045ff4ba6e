//! The console's users of a site: the list, adding one, and their flags.

use axum::extract::State;
use axum::http::StatusCode;
use maud::{Markup, html};

use super::layout::{
    Address, Failure, Form, Tab, View, admin_path, done, field_error, find_site, segment,
    site_header,
};
use super::user::{UserPath, noticed};

/// Users listed on one page: enough to find one by eye, few enough for any browser.
const MOST_USERS: usize = 500;
use crate::domain::{AccountId, NewUser, Site, User};
use crate::error::Error;
use crate::http::AppState;
use crate::http::extract::{PathParams, WholeBody};
use crate::service::admin::{AdminService, UserChanges};

/// The form to add a user, as sent, with what was wrong with each field.
#[derive(Default)]
struct NewUserDraft {
    account_id: String,
    email: String,
    display_name: String,
    admin: bool,
    errors: [Option<String>; 4],
}

pub async fn list(
    State(state): State<AppState>,
    PathParams(site): PathParams<String>,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    users_page(&state, &site, None, &NewUserDraft::default()).await
}

pub async fn create(
    State(state): State<AppState>,
    Address(server): Address,
    PathParams(site): PathParams<String>,
    WholeBody(body): WholeBody,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let form = Form::parse(&body);
    let mut draft = NewUserDraft {
        account_id: form.text("accountId").to_owned(),
        email: form.text("email").to_owned(),
        display_name: form.text("displayName").to_owned(),
        admin: form.get("admin").is_some(),
        errors: Default::default(),
    };
    let parsed = NewUser::parse(&draft.account_id, &draft.email, form.filled("displayName"));
    let user = match parsed {
        Ok(user) => NewUser {
            admin: draft.admin,
            ..user
        },
        Err(invalid) => {
            draft.errors[0] = invalid.account_id.map(|e| e.to_string());
            draft.errors[1] = invalid
                .email
                .map(|_| "This is not an email address.".to_owned());
            draft.errors[2] = invalid.display_name.map(|e| e.to_string());
            let view = users_page(&state, &site, None, &draft).await?;
            return Ok(view.with_status(StatusCode::BAD_REQUEST));
        }
    };
    let account_id = user.account_id.clone();
    match state.admin.create_user(site.key, user, Vec::new()).await {
        Ok(user) => {
            let message = format!(
                "{} added. Make an API token for them below.",
                user.display_name
            );
            noticed(&state, &server, &site, &account_id, &message).await
        }
        Err(Error::Conflict(message)) => {
            draft.errors[3] = Some(message);
            let view = users_page(&state, &site, None, &draft).await?;
            Ok(view.with_status(StatusCode::CONFLICT))
        }
        Err(error) => Err(error.into()),
    }
}

/// Grants or withdraws *Administer Jira*, activates or deactivates; then shows the page the
/// form was on.
pub async fn set_flags(
    State(state): State<AppState>,
    Address(server): Address,
    PathParams(UserPath { site, account_id }): PathParams<UserPath>,
    WholeBody(body): WholeBody,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let account_id = AdminService::account(&account_id)?;
    let form = Form::parse(&body);
    let flag = |name| form.get(name).map(|value| value == "true");
    let changes = UserChanges {
        admin: flag("admin"),
        active: flag("active"),
        ..UserChanges::default()
    };
    let user = state
        .admin
        .update_user(site.key, &account_id, Ok(changes))
        .await?;
    let message = format!(
        "{} {} Administer Jira and is {}.",
        user.display_name,
        if user.admin { "holds" } else { "does not hold" },
        if user.active { "active" } else { "deactivated" },
    );
    if form.get("from") == Some("user") {
        noticed(&state, &server, &site, &account_id, &message).await
    } else {
        users_page(&state, &site, Some(&message), &NewUserDraft::default()).await
    }
}

async fn users_page(
    state: &AppState,
    site: &Site,
    notice: Option<&str>,
    draft: &NewUserDraft,
) -> Result<View, Failure> {
    let users = state.admin.users(site.key).await?;
    let base = format!("/sites/{}", segment(site.name.as_str()));
    let markup = html! {
        (site_header(site, Tab::Users, &format!("Users of {}", site.name)))
        @if let Some(notice) = notice { (done(notice)) }
        @if users.is_empty() {
            p.empty { "No users yet: add one below, or POST one to " code { (admin_path(site, "users")) } "." }
        } @else {
            @if users.len() > MOST_USERS {
                p.hint { "The first " (MOST_USERS) " of " (users.len()) " users; "
                    code { "GET " (admin_path(site, "users")) } " lists them all." }
            }
            div.scroll { table {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "accountId" } th scope="col" { "Email" }
                    th scope="col" { "Administer Jira" } th scope="col" { "Active" }
                } }
                tbody { @for user in users.iter().take(MOST_USERS) {
                    tr {
                        td { a href={ "#" (base) "/users/" (segment(&user.account_id)) } { (shown_name(user)) } }
                        td { code { (user.account_id) } }
                        td { (user.email) }
                        td { (flag_form(&base, user, "admin", "users")) }
                        td { (flag_form(&base, user, "active", "users")) }
                    }
                } }
            } }
        }
        (new_user_form(&base, draft))
    };
    Ok(View::new(format!("{base}/users"), markup))
}

/// A yes/no with the button that turns it round.
pub(super) fn flag_form(base: &str, user: &User, flag: &str, from: &str) -> Markup {
    let (on, turn_on, turn_off) = match flag {
        "admin" => (user.admin, "Grant", "Withdraw"),
        _ => (user.active, "Activate", "Deactivate"),
    };
    let label = if on { turn_off } else { turn_on };
    let what = if flag == "admin" {
        "Administer Jira"
    } else {
        "sign-in"
    };
    html! {
        form.inline method="post" action={ "/_admin/ui/views" (base) "/users/" (segment(&user.account_id)) "/flags" } {
            span.flag { @if on { "Yes" } @else { "No" } }
            input type="hidden" name=(flag) value=(if on { "false" } else { "true" });
            input type="hidden" name="from" value=(from);
            button type="submit" aria-label={ (label) " " (what) " for " (shown_name(user)) } { (label) }
        }
    }
}

fn new_user_form(base: &str, draft: &NewUserDraft) -> Markup {
    let suggested;
    let account_id = if draft.account_id.is_empty() {
        // A made-up id in Atlassian's shape, to change at will.
        suggested = AccountId::random().into_string();
        suggested.as_str()
    } else {
        draft.account_id.as_str()
    };
    html! {
        section.card {
            h2 { "Add a user" }
            form method="post" action={ "/_admin/ui/views" (base) "/users" } {
                (field_error("user-error", draft.errors[3].as_deref()))
                div.field {
                    label for="user-name" { "Display name" }
                    input #user-name name="displayName" value=(draft.display_name) autocomplete="off"
                        aria-describedby="user-name-error";
                    (field_error("user-name-error", draft.errors[2].as_deref()))
                }
                div.field {
                    label for="user-email" { "Email" }
                    input #user-email name="email" type="email" value=(draft.email) required autocomplete="off"
                        aria-describedby="user-email-error";
                    (field_error("user-email-error", draft.errors[1].as_deref()))
                }
                div.field {
                    label for="user-account-id" { "accountId" }
                    input #user-account-id name="accountId" value=(account_id) required autocomplete="off"
                        aria-describedby="user-account-id-error";
                    (field_error("user-account-id-error", draft.errors[0].as_deref()))
                }
                div.field.check {
                    input #user-admin name="admin" type="checkbox" value="true" checked[draft.admin];
                    label for="user-admin" { "Administer Jira" }
                }
                button type="submit" { "Add user" }
            }
        }
    }
}

/// The name a user is shown by: their display name, or their account id when it is blank.
pub fn shown_name(user: &User) -> &str {
    if user.display_name.trim().is_empty() {
        &user.account_id
    } else {
        &user.display_name
    }
}
