//! The console's request journal of a site: newest first, filtered, refreshed every second by
//! the script, and one request in full.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::json_html;
use super::layout::{Failure, Tab, View, done, field_error, find_site, segment, site_header};
use crate::domain::Site;
use crate::http::AppState;
use crate::http::extract::PathParams;
use crate::http::journal::{Entry, Matcher};
use crate::http::site::SiteState;

/// Rows shown at most; the journal itself may hold more.
const MOST_ROWS: usize = 200;

/// `{site}` and `{requestId}`.
#[derive(Deserialize)]
pub struct RequestPath {
    site: String,
    #[serde(rename = "requestId")]
    request_id: String,
}

/// The filters as typed, the matcher they make, and what was wrong with them.
struct Filters {
    method: String,
    status: String,
    account_id: String,
    caller: String,
    key: String,
    matcher: Matcher,
    error: Option<String>,
}

impl Filters {
    fn of(uri: &Uri) -> Self {
        let mut filters = Self {
            method: String::new(),
            status: String::new(),
            account_id: String::new(),
            caller: String::new(),
            key: String::new(),
            matcher: Matcher::default(),
            error: None,
        };
        let query = uri.query().unwrap_or_default().as_bytes();
        for (name, value) in form_urlencoded::parse(query) {
            // Keys and ids are matched as typed (a key may start with a space); only the status,
            // a number, is forgiven its spaces.
            let value = value.into_owned();
            match name.as_ref() {
                "method" => filters.method = value,
                "status" => filters.status = value.trim().to_owned(),
                "accountId" => filters.account_id = value,
                "caller" => filters.caller = value,
                "key" => filters.key = value,
                _ => {}
            }
        }
        // The journal's own matcher, from the fields typed (blank ones left out).
        // A matcher that cannot be made lists nothing, beside its message.
        match Matcher::from_query(&filters.query()) {
            Ok(matcher) => filters.matcher = matcher,
            Err(message) => filters.error = Some(message),
        }
        filters
    }

    /// The newest entries these filters pass (at most the rows shown), newest first, and how
    /// many they pass in all.
    fn entries(&self, site_state: &SiteState) -> (Vec<Entry>, usize) {
        match self.error {
            Some(_) => (Vec::new(), 0),
            None => site_state.journal.newest(&self.matcher, MOST_ROWS),
        }
    }

    /// The query that repeats these filters.
    fn query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                [
                    ("method", &self.method),
                    ("status", &self.status),
                    ("accountId", &self.account_id),
                    ("caller", &self.caller),
                    ("key", &self.key),
                ]
                .into_iter()
                .filter(|(_, value)| !value.is_empty()),
            )
            .finish()
    }
}

pub async fn list(
    State(state): State<AppState>,
    PathParams(site): PathParams<String>,
    uri: Uri,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    Ok(page(&state, &site, &Filters::of(&uri), None))
}

pub async fn rows(
    State(state): State<AppState>,
    PathParams(site): PathParams<String>,
    uri: Uri,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let filters = Filters::of(&uri);
    let (entries, total) = filters.entries(&state.site_states.of(site.clone()));
    Ok(View::new(
        list_path(&site, &filters),
        table(&state, &site, &filters, &entries, total),
    ))
}

pub async fn clear(
    State(state): State<AppState>,
    PathParams(site): PathParams<String>,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    state.site_states.of(site.clone()).journal.clear();
    let filters = Filters::of(&Uri::from_static("/"));
    Ok(page(&state, &site, &filters, Some("The journal is empty.")))
}

fn list_path(site: &Site, filters: &Filters) -> String {
    let query = filters.query();
    let base = format!("/sites/{}/requests", segment(site.name.as_str()));
    if query.is_empty() {
        base
    } else {
        format!("{base}?{query}")
    }
}

fn page(state: &AppState, site: &Site, filters: &Filters, notice: Option<&str>) -> View {
    let site_state: std::sync::Arc<SiteState> =
        state.site_states.of(std::sync::Arc::new(site.clone()));
    let (entries, total) = filters.entries(&site_state);
    let name = segment(site.name.as_str());
    let live = format!(
        "/_admin/ui/views/sites/{name}/requests/live?{}",
        filters.query()
    );
    let mut methods = vec!["", "GET", "PUT", "DELETE", "POST", "HEAD"];
    // A method typed into the address is shown as the one in force, not as "any".
    if !methods
        .iter()
        .any(|method| filters.method.eq_ignore_ascii_case(method))
    {
        methods.push(filters.method.as_str());
    }
    let markup = html! {
        (site_header(site, Tab::Requests, &format!("Requests to {}", site.name)))
        @if let Some(notice) = notice { (done(notice)) }
        form.filters method="get" data-view={ "/sites/" (name) "/requests" } aria-label="Filter requests" {
            div.field {
                label for="filter-method" { "Method" }
                select #filter-method name="method" {
                    @for method in methods {
                        option value=(method) selected[filters.method.eq_ignore_ascii_case(method)] {
                            @if method.is_empty() { "any" } @else { (method) }
                        }
                    }
                }
            }
            div.field {
                label for="filter-status" { "Status" }
                input #filter-status name="status" inputmode="numeric" value=(filters.status) size="4"
                    aria-describedby="filter-status-error";
                (field_error("filter-status-error", filters.error.as_deref()))
            }
            div.field {
                label for="filter-account" { "For accountId" }
                input #filter-account name="accountId" value=(filters.account_id) autocomplete="off";
            }
            div.field {
                label for="filter-caller" { "Caller" }
                input #filter-caller name="caller" value=(filters.caller) autocomplete="off";
            }
            div.field {
                label for="filter-key" { "Property key" }
                input #filter-key name="key" value=(filters.key) autocomplete="off";
            }
            button type="submit" { "Filter" }
        }
        form.inline method="post" action={ "/_admin/ui/views/sites/" (name) "/requests/clear" } {
            button.danger type="submit" { "Clear the journal" }
        }
        p.hint { "Newest first; refreshed every second. The journal keeps a site's last "
            code { "--journal-size" } " requests; PUT bodies with " code { "--journal-bodies" } "." }
        div #journal data-poll=(live) aria-live="off" {
            (table(state, site, filters, &entries, total))
        }
    };
    View::new(list_path(site, filters), markup)
}

/// The rows of `entries`, newest first, of `total` that matched.
fn table(
    state: &AppState,
    site: &Site,
    filters: &Filters,
    entries: &[Entry],
    total: usize,
) -> Markup {
    let name = segment(site.name.as_str());
    let (journal_on, _) = state.site_states.journal_settings();
    html! {
        @if !journal_on {
            p.empty { "The journal is off: this server was started with "
                code { "--journal-size 0" } ", so no request is kept." }
        } @else if entries.is_empty() && !filters.query().is_empty() {
            p.empty { "No request kept matches these filters." }
        } @else if entries.is_empty() {
            p.empty { "No requests yet: point your integration at this site, e.g. "
                code { "GET /rest/api/3/user/properties?accountId=…" } ", and they appear here." }
        } @else {
            @if total > entries.len() {
                p.hint { "The newest " (entries.len()) " of " (total) "." }
            }
            div.scroll { table.requests {
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Method" } th scope="col" { "Path" }
                    th scope="col" { "Caller" } th scope="col" { "Status" } th scope="col" { "ms" }
                } }
                tbody { @for entry in entries { tr {
                    td { time { (entry.time) } }
                    td { (entry.method) }
                    td.path { a href={ "#/sites/" (name) "/requests/" (entry.request_id) } {
                        (entry.path) @if let Some(query) = &entry.query { "?" (query) } } }
                    td { @if let Some(caller) = &entry.account_id { code { (caller) } } @else { "—" } }
                    td { span class={ "status s" (entry.status / 100) } { (entry.status) } }
                    td.number { (format!("{:.1}", entry.latency_ms)) }
                } } }
            } }
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    PathParams(RequestPath { site, request_id }): PathParams<RequestPath>,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let name = segment(site.name.as_str());
    let path = format!("/sites/{name}/requests/{}", segment(&request_id));
    let Some(entry) = state
        .site_states
        .of(site.clone())
        .journal
        .entry(&request_id)
    else {
        let markup = html! {
            (site_header(&site, Tab::Requests, "Request not found"))
            p.empty { "The journal no longer holds request " code { (request_id) } "; it keeps the newest only. "
                a href={ "#/sites/" (name) "/requests" } { "Back to the requests" } }
        };
        return Ok(View::new(path, markup).with_status(StatusCode::NOT_FOUND));
    };
    let markup = html! {
        (site_header(&site, Tab::Requests, &format!("{} {}", entry.method, entry.path)))
        p { a href={ "#/sites/" (name) "/requests" } { "← All requests" } }
        dl.facts {
            dt { "Method" } dd { (entry.method) }
            dt { "Path" } dd { code { (entry.path) @if let Some(query) = &entry.query { "?" (query) } } }
            dt { "Caller" } dd { @if let Some(caller) = &entry.account_id { code { (caller) } } @else { "none (not signed in)" } }
            dt { "Status" } dd { span class={ "status s" (entry.status / 100) } { (entry.status) } }
            dt { "Duration" } dd { (format!("{:.2} ms", entry.latency_ms)) }
            dt { "Arrived" } dd { time { (entry.time) } }
            dt { "Request id" } dd { code { (entry.request_id) } }
        }
        section.card {
            h2 { "Headers" }
            p.hint { "Credentials are never kept: Authorization shows its scheme only." }
            div.scroll { table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } } }
                tbody { @for (name, value) in &entry.headers { tr { td { code { (name) } } td { (value) } } } }
            } }
        }
        section.card {
            h2 { "Body" }
            @match &entry.body {
                Some(body) => { div.json { (PreEscaped(json_html::render(body))) } }
                None => { p.empty { "Not kept: the journal keeps the bodies of stored PUTs when the server runs with "
                    code { "--journal-bodies" } "." } }
            }
        }
    };
    Ok(View::new(path, markup))
}
