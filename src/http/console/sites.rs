//! The console's sites: the list with each site's addresses and counts, making and deleting one.

use axum::extract::State;
use axum::http::StatusCode;
use maud::{Markup, html};

use super::layout::{Address, Failure, Form, View, done, field_error, find_site, segment};
use crate::domain::{CloudId, DEFAULT_SITE, SiteName};
use crate::error::Error;
use crate::http::AppState;
use crate::http::extract::{PathParams, WholeBody};
use crate::http::sites::Server;
use crate::service::sites::NewSite;

/// What the form to make a site was sent with, and what was wrong with it.
#[derive(Default)]
struct Draft<'a> {
    name: &'a str,
    id: &'a str,
    name_error: Option<String>,
    id_error: Option<String>,
    error: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Address(server): Address,
) -> Result<View, Failure> {
    page(&state, &server, None, &Draft::default()).await
}

pub async fn create(
    State(state): State<AppState>,
    Address(server): Address,
    WholeBody(body): WholeBody,
) -> Result<View, Failure> {
    let form = Form::parse(&body);
    let mut draft = Draft {
        name: form.text("name"),
        id: form.text("id"),
        ..Draft::default()
    };
    let name = form.filled("name").map(SiteName::parse).transpose();
    let id = form.filled("id").map(CloudId::parse).transpose();
    let (name, id) = match (name, id) {
        (Ok(name), Ok(id)) => (name, id),
        (name, id) => {
            draft.name_error = name.err().map(|e| e.to_string());
            draft.id_error = id.err().map(|e| e.to_string());
            let view = page(&state, &server, None, &draft).await?;
            return Ok(view.with_status(StatusCode::BAD_REQUEST));
        }
    };
    let new = NewSite {
        name,
        id,
        seed: Default::default(),
    };
    match state.sites.create(new).await {
        Ok((site, _)) => {
            let message = format!("Site {} made.", site.name.as_str());
            page(&state, &server, Some(&message), &Draft::default()).await
        }
        Err(error @ (Error::Conflict(_) | Error::BadRequest(_))) => {
            let status = match error {
                Error::Conflict(_) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            draft.error = Some(error.to_string());
            let view = page(&state, &server, None, &draft).await?;
            Ok(view.with_status(status))
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    PathParams(reference): PathParams<String>,
    Address(server): Address,
) -> Result<View, Failure> {
    let site = find_site(&state, &reference).await?;
    state.sites.delete(&site).await?;
    state.site_states.remove(site.key);
    let message = format!("Site {} deleted, with its users and properties.", site.name);
    page(&state, &server, Some(&message), &Draft::default()).await
}

async fn page(
    state: &AppState,
    server: &Server,
    notice: Option<&str>,
    draft: &Draft<'_>,
) -> Result<View, Failure> {
    let sites = state.sites.list().await?;
    let mut rows = Vec::with_capacity(sites.len());
    for site in &sites {
        let users = state.admin.user_count(site.key).await?;
        let requests = state.site_states.journal_len_of(site);
        rows.push((site, users, requests));
    }
    let markup = html! {
        h1 tabindex="-1" { "Sites" }
        @if let Some(notice) = notice { (done(notice)) }
        p.hint {
            "Each site is a Jira Cloud site of its own: its users, tokens, properties, requests and faults. "
            "Reach one by its own host or through the gateway address."
        }
        div.scroll {
            table {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "cloudId" }
                    th scope="col" { "Addresses" } th scope="col" { "Users" }
                    th scope="col" { "Requests kept" } th scope="col" { span.sr-only { "Actions" } }
                } }
                tbody {
                    @for (site, users, requests) in &rows {
                        @let described = server.describe(state, site);
                        @let path = segment(site.name.as_str());
                        tr {
                            td { a href={ "#/sites/" (path) "/users" } { (site.name.as_str()) } }
                            td { code { (described.id) } }
                            td.addresses {
                                code { (described.url) } br;
                                code { (described.gateway_url) }
                            }
                            td.number { a href={ "#/sites/" (path) "/users" } { (users) } }
                            td.number { a href={ "#/sites/" (path) "/requests" } { (requests) } }
                            td {
                                @if site.name.as_str() != DEFAULT_SITE {
                                    form method="post" action={ "/_admin/ui/views/sites/" (path) "/delete" }
                                        data-confirm={ "Delete site " (site.name.as_str()) " with all its users and properties?" } {
                                        button.danger type="submit" aria-label={ "Delete site " (site.name.as_str()) } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (create_form(draft))
    };
    Ok(View::new("/sites".to_owned(), markup))
}

fn create_form(draft: &Draft<'_>) -> Markup {
    html! {
        section.card {
            h2 { "Make a site" }
            form method="post" action="/_admin/ui/views/sites" {
                (field_error("site-error", draft.error.as_deref()))
                div.field {
                    label for="site-name" { "Name" }
                    input #site-name name="name" value=(draft.name) placeholder="acme" required
                        autocomplete="off" aria-describedby="site-name-error site-name-hint";
                    small #site-name-hint { "1 to 63 lower-case letters, digits and dashes." }
                    (field_error("site-name-error", draft.name_error.as_deref()))
                }
                div.field {
                    label for="site-id" { "cloudId (optional)" }
                    input #site-id name="id" value=(draft.id) placeholder="a UUID; random when left empty"
                        autocomplete="off" aria-describedby="site-id-error";
                    (field_error("site-id-error", draft.id_error.as_deref()))
                }
                button type="submit" { "Make site" }
            }
        }
    }
}
