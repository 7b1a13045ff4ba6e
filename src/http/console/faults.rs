//! The console's faults and rate limits of a site: the rules in force, a form that replaces
//! them (checked as `PUT /_admin/faults` checks them), and each rate-limit bucket's level.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use maud::{Markup, html};

use super::layout::{
    Failure, Form, Tab, View, admin_path, done, field_error, find_site, segment, site_header,
};
use crate::domain::Site;
use crate::faults::{ErrorRule, FaultRules, LatencyRule, Per, RateLimitRule};
use crate::http::AppState;
use crate::http::extract::{PathParams, WholeBody};

pub async fn show(
    State(state): State<AppState>,
    PathParams(site): PathParams<String>,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let rules = state.site_states.of(site.clone()).faults.rules();
    Ok(page(&state, &site, &Draft::of(&rules), None))
}

pub async fn set(
    State(state): State<AppState>,
    PathParams(site): PathParams<String>,
    WholeBody(body): WholeBody,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let form = Form::parse(&body);
    let mut draft = Draft::from_form(&form);
    let faults = &state.site_states.of(site.clone()).faults;
    // Read and replaced under one lock: a count spent meanwhile is not given back.
    match faults.update(|in_force| draft.rules(in_force)) {
        Ok(()) => {
            let draft = Draft::of(&faults.rules());
            Ok(page(&state, &site, &draft, Some("The rules are in force.")))
        }
        Err((field, message)) => {
            draft.errors.push((field, message));
            Ok(page(&state, &site, &draft, None).with_status(StatusCode::BAD_REQUEST))
        }
    }
}

pub async fn clear(
    State(state): State<AppState>,
    PathParams(site): PathParams<String>,
) -> Result<View, Failure> {
    let site = find_site(&state, &site).await?;
    let faults = &state.site_states.of(site.clone()).faults;
    faults.replace(FaultRules::default());
    let notice = "No faults and no rate limit: every request is answered as it comes.";
    Ok(page(
        &state,
        &site,
        &Draft::of(&faults.rules()),
        Some(notice),
    ))
}

/// The form's fields as text, and the messages for the fields that are wrong.
#[derive(Default)]
struct Draft {
    fields: Vec<(&'static str, String)>,
    errors: Vec<(&'static str, String)>,
}

/// The form's fields: (name, label).
const FIELDS: [(&str, &str); 10] = [
    ("limit", "Requests per window"),
    ("windowSeconds", "Window (seconds)"),
    ("per", "One bucket per"),
    ("route", "Only paths starting"),
    ("accountId", "Only this caller"),
    ("minMs", "Least delay (ms)"),
    ("maxMs", "Most delay (ms)"),
    ("status", "Status"),
    ("fraction", "Share of requests (0 to 1)"),
    ("seed", "Random seed"),
];

impl Draft {
    /// The fields that show `rules`.
    fn of(rules: &FaultRules) -> Self {
        let mut fields = Vec::new();
        let text = |value: Option<String>| value.unwrap_or_default();
        let rate = rules.rate_limit.as_ref();
        fields.push(("limit", text(rate.map(|r| r.limit.to_string()))));
        fields.push((
            "windowSeconds",
            text(rate.map(|r| r.window_seconds.to_string())),
        ));
        let per = rate.map_or("account", |r| match r.per {
            Per::Account => "account",
            Per::AccountAndRoute => "accountAndRoute",
            Per::Global => "global",
        });
        fields.push(("per", per.to_owned()));
        fields.push(("route", text(rate.and_then(|r| r.route.clone()))));
        fields.push(("accountId", text(rate.and_then(|r| r.account_id.clone()))));
        let latency = rules.latency.as_ref();
        fields.push(("minMs", text(latency.map(|l| l.min_ms.to_string()))));
        fields.push(("maxMs", text(latency.map(|l| l.max_ms.to_string()))));
        let errors = rules.errors.as_ref();
        fields.push(("status", text(errors.map(|e| e.status.to_string()))));
        fields.push(("fraction", text(errors.map(|e| e.fraction.to_string()))));
        fields.push(("seed", text(errors.map(|e| e.seed.to_string()))));
        Self {
            fields,
            errors: Vec::new(),
        }
    }

    fn from_form(form: &Form) -> Self {
        Self {
            fields: FIELDS
                .iter()
                .map(|(name, _)| (*name, form.text(name).to_owned()))
                .collect(),
            errors: Vec::new(),
        }
    }

    fn value(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(field, _)| *field == name)
            .map_or("", |(_, value)| value.as_str())
    }

    fn error(&self, name: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, message)| message.as_str())
    }

    /// A number from a field, or `None` when it is empty.
    fn number<T: std::str::FromStr>(
        &self,
        name: &'static str,
    ) -> Result<Option<T>, (&'static str, String)> {
        match self.value(name) {
            "" => Ok(None),
            text => text.parse().map(Some).map_err(|_| {
                (
                    name,
                    format!("'{text}' is not a number of the kind this takes."),
                )
            }),
        }
    }

    /// The rule set the form says, checked as the admin API checks it. A part whose fields are
    /// all empty is off. What the form does not show (a rule's route, account and count, set
    /// through the admin API) is kept from the rules in force, so that a rule is never widened.
    fn rules(&self, in_force: &FaultRules) -> Result<FaultRules, (&'static str, String)> {
        let (limiting, delay, failing) = (
            in_force.rate_limit.as_ref(),
            in_force.latency.as_ref(),
            in_force.errors.as_ref(),
        );
        let optional = |name| Some(self.value(name).to_owned()).filter(|v| !v.is_empty());
        let rate_limit = match (self.number("limit")?, self.number("windowSeconds")?) {
            (None, None) => None,
            (Some(limit), Some(window_seconds)) => Some(RateLimitRule {
                limit,
                window_seconds,
                per: match self.value("per") {
                    "accountAndRoute" => Per::AccountAndRoute,
                    "global" => Per::Global,
                    _ => Per::Account,
                },
                route: optional("route"),
                account_id: optional("accountId"),
                count: limiting.and_then(|rule| rule.count),
            }),
            (None, Some(_)) => return Err(("limit", "A rate limit needs both.".into())),
            (Some(_), None) => return Err(("windowSeconds", "A rate limit needs both.".into())),
        };
        let latency = match (self.number("minMs")?, self.number("maxMs")?) {
            (None, None) => None,
            (min, max) => Some(LatencyRule {
                min_ms: min.or(max).unwrap_or_default(),
                max_ms: max.or(min).unwrap_or_default(),
                seed: delay.map_or(0, |rule| rule.seed),
                route: delay.and_then(|rule| rule.route.clone()),
                account_id: delay.and_then(|rule| rule.account_id.clone()),
                count: delay.and_then(|rule| rule.count),
            }),
        };
        let errors = match (self.number("status")?, self.number("fraction")?) {
            (None, None) => None,
            (Some(status), fraction) => Some(ErrorRule {
                status,
                fraction: fraction.unwrap_or(1.0),
                seed: self.number("seed")?.unwrap_or_default(),
                route: failing.and_then(|rule| rule.route.clone()),
                account_id: failing.and_then(|rule| rule.account_id.clone()),
                count: failing.and_then(|rule| rule.count),
            }),
            (None, Some(_)) => return Err(("status", "Injected errors need a status.".into())),
        };
        let rules = FaultRules {
            rate_limit,
            latency,
            errors,
        };
        rules.validate().map_err(|message| ("rules", message))?;
        Ok(rules)
    }
}

fn page(state: &AppState, site: &Arc<Site>, draft: &Draft, notice: Option<&str>) -> View {
    let faults = &state.site_states.of(site.clone()).faults;
    let rules = faults.rules();
    let levels = faults.bucket_levels();
    let in_force = serde_json::to_string_pretty(&rules).unwrap_or_default();
    let name = segment(site.name.as_str());
    let markup = html! {
        (site_header(site, Tab::Faults, &format!("Faults and rate limits of {}", site.name)))
        @if let Some(notice) = notice { (done(notice)) }
        section.card {
            h2 { "In force" }
            @if rules == FaultRules::default() {
                p.empty { "None: every request is answered as it comes. Set a rate limit below to see clients meet 429." }
            } @else {
                pre.json { code { (in_force) } }
                @if spent(&rules) {
                    p.hint { "A rule whose count is 0 has acted on the requests it was set for and acts on no more. Applying the form below keeps that count: set a new one through "
                        code { "PUT " (admin_path(site, "faults")) } ", or turn all off." }
                }
            }
            h3 { "Rate-limit buckets" }
            @if levels.is_empty() {
                p.empty { "No bucket yet: one is made by the first request a rate limit counts." }
            } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Bucket" } th scope="col" { "Requests left" } th scope="col" { "Level" } } }
                    tbody { @for level in &levels { tr {
                        td { @if level.key.is_empty() { "everyone" } @else { code { (level.key) } } }
                        td.number { (format!("{:.1} of {}", level.tokens, level.capacity)) }
                        td { meter min="0" max=(level.capacity) value=(format!("{:.2}", level.tokens))
                            aria-label={ "Level of " (level.key) } {} }
                    } } }
                } }
            }
        }
        section.card {
            h2 { "Change them" }
            p.hint { "Replaces the whole rule set; leave a part empty to turn it off. Scopes by route, caller or count for latency and errors: "
                code { "PUT " (admin_path(site, "faults")) } "." }
            form method="post" action={ "/_admin/ui/views/sites/" (name) "/faults" } {
                (field_error("rules-error", draft.error("rules")))
                fieldset {
                    legend { "Rate limit (429 with Retry-After)" }
                    (number_field(draft, "limit"))
                    (number_field(draft, "windowSeconds"))
                    div.field {
                        label for="fault-per" { "One bucket per" }
                        select #fault-per name="per" {
                            @for (value, label) in [("account", "account"), ("accountAndRoute", "account and route"), ("global", "everyone together")] {
                                option value=(value) selected[draft.value("per") == value] { (label) }
                            }
                        }
                    }
                    (text_field(draft, "route"))
                    (text_field(draft, "accountId"))
                }
                fieldset {
                    legend { "Latency" }
                    (number_field(draft, "minMs"))
                    (number_field(draft, "maxMs"))
                }
                fieldset {
                    legend { "Injected errors" }
                    (number_field(draft, "status"))
                    (number_field(draft, "fraction"))
                    (number_field(draft, "seed"))
                }
                button type="submit" { "Apply" }
            }
            form.inline method="post" action={ "/_admin/ui/views/sites/" (name) "/faults/clear" } {
                button.danger type="submit" { "Turn all off" }
            }
        }
    };
    View::new(format!("/sites/{name}/faults"), markup)
}

/// Whether a rule has used up its count: in force, yet acting on no request.
fn spent(rules: &FaultRules) -> bool {
    let counts = [
        rules.rate_limit.as_ref().and_then(|rule| rule.count),
        rules.latency.as_ref().and_then(|rule| rule.count),
        rules.errors.as_ref().and_then(|rule| rule.count),
    ];
    counts.contains(&Some(0))
}

fn label_of(name: &str) -> &'static str {
    FIELDS
        .iter()
        .find(|(field, _)| *field == name)
        .map_or("", |(_, label)| label)
}

fn number_field(draft: &Draft, name: &str) -> Markup {
    field(draft, name, "decimal")
}

fn text_field(draft: &Draft, name: &str) -> Markup {
    field(draft, name, "text")
}

fn field(draft: &Draft, name: &str, mode: &str) -> Markup {
    let id = format!("fault-{name}");
    let error_id = format!("{id}-error");
    html! {
        div.field {
            label for=(id) { (label_of(name)) }
            input id=(id) name=(name) inputmode=(mode) value=(draft.value(name)) autocomplete="off"
                aria-describedby=(error_id);
            (field_error(&error_id, draft.error(name)))
        }
    }
}
