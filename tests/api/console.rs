//! The web console over HTTP: who may see it, the headers that keep it safe, values shown as
//! text, no change on GET, and the API's rules on its forms. `tests/console/` drives it in a
//! real browser.

use axum::http::Method;
use jira_userprops::http::Settings;

use crate::helpers::*;

const VIEWS: &str = "/_admin/ui/views";

fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

async fn post_form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> TestResponse {
    app.admin(Method::POST, format!("{VIEWS}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
}

async fn view(app: &TestApp, path: &str) -> TestResponse {
    app.admin(Method::GET, format!("{VIEWS}{path}"))
        .send()
        .await
}

async fn the_shell_is_open_and_every_view_takes_the_admin_token(backend: Backend) {
    let app = backend.app().await;
    let shell = app.get("/_admin/ui/").send().await;
    shell.assert_status(200);
    assert!(shell.text().contains("id=\"sign-in-form\""));
    assert!(!shell.text().contains(ALICE), "the shell holds no data");
    for asset in ["/_admin/ui/console.js", "/_admin/ui/console.css"] {
        app.get(asset).send().await.assert_status(200);
    }
    let bare = app.get("/_admin/ui").send().await;
    bare.assert_status(308);
    assert_eq!(bare.header("location"), Some("/_admin/ui/"));
    let views = [
        "/sites",
        "/sites/default/users",
        &format!("/sites/default/users/{ALICE}"),
        "/sites/default/requests",
        "/sites/default/requests/live",
        "/sites/default/faults",
    ];
    for path in views {
        for authorization in [None, Some("Bearer wrong"), Some("Basic YWxpY2U6eA==")] {
            let mut request = app.get(format!("{VIEWS}{path}"));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await;
            assert_eq!(response.status, 401, "{path} with {authorization:?}");
            assert!(!response.text().contains(ALICE));
        }
        view(&app, path).await.assert_status(200);
    }
    let refused = app
        .request(Method::POST, format!("{VIEWS}/sites"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=sneaky")
        .send()
        .await;
    refused.assert_status(401);
    let sites = app.admin(Method::GET, "/_admin/sites").send().await;
    assert!(
        !sites.text().contains("sneaky"),
        "nothing made without the token"
    );
}

async fn the_console_is_on_exactly_when_the_admin_api_is(backend: Backend) {
    let app = backend.app().await;
    let off = TestApp::with_settings(app.store.clone(), Settings::default());
    for path in [
        "/_admin/ui/",
        "/_admin/ui/console.js",
        "/_admin/ui/views/sites",
    ] {
        off.get(path)
            .header("authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .send()
            .await
            .assert_error(404, "The requested resource does not exist.");
    }
}

async fn every_answer_carries_a_policy_without_inline_script_and_refuses_framing(backend: Backend) {
    let app = backend.app().await;
    let answers = [
        app.get("/_admin/ui/").send().await,
        app.get("/_admin/ui/console.js").send().await,
        view(&app, "/sites").await,
        view(&app, "/sites/nowhere/users").await,
        app.get(format!("{VIEWS}/sites")).send().await,
    ];
    for answer in &answers {
        let policy = answer
            .header("content-security-policy")
            .expect("a content security policy");
        let script = policy
            .split(';')
            .map(str::trim)
            .find(|directive| directive.starts_with("script-src"))
            .expect("script-src");
        assert_eq!(script, "script-src 'self'");
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert_eq!(answer.header("x-frame-options"), Some("DENY"));
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    }
}

async fn markup_in_values_keys_and_names_is_shown_as_text(backend: Backend) {
    let app = backend.app().await;
    let values = [
        ("xss.string", r#""<script>alert(1)</script>""#),
        (
            "xss.object",
            r#"{"x":"</pre><img src=x onerror=alert(1)>"}"#,
        ),
        ("<b>key</b>", r#"{"<i>k</i>":1}"#),
    ];
    for (key, value) in values {
        let path = property_uri(3, &key.replace('<', "%3C").replace('>', "%3E"), ALICE);
        app.put(path).by(Who::Alice).json(value).send().await;
    }
    post_form(
        &app,
        "/sites/default/users",
        &[
            ("displayName", "<img src=x onerror=alert(2)>"),
            ("email", "mallory@example.com"),
            ("accountId", "mallory-1"),
        ],
    )
    .await
    .assert_status(200);
    let page = view(&app, &format!("/sites/default/users/{ALICE}")).await;
    page.assert_status(200);
    let html = page.text();
    for raw in ["<script>", "<img", "<b>", "<i>"] {
        assert!(!html.contains(raw), "{raw} is not escaped");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("&lt;b&gt;key&lt;/b&gt;"));
    let users = view(&app, "/sites/default/users").await;
    assert!(!users.text().contains("<img"));
    assert!(users.text().contains("&lt;img src=x onerror=alert(2)&gt;"));
}

/// The `curl` hint on a user's page is safe to paste into a shell, whatever the email and the
/// account id hold: each word quoted, the account id percent-encoded.
async fn the_curl_hint_quotes_what_a_user_holds(backend: Backend) {
    let app = backend.app().await;
    post_form(
        &app,
        "/sites/default/users",
        &[
            ("displayName", "Shell"),
            ("email", "a@b.c$(id)"),
            ("accountId", "x'$(id)'"),
        ],
    )
    .await
    .assert_status(200);
    let page = view(&app, "/sites/default/users/x%27%24%28id%29%27").await;
    page.assert_status(200);
    let html = page.text();
    assert!(html.contains("-u 'a@b.c$(id):API_TOKEN'"), "{html}");
    assert!(
        html.contains("/rest/api/3/user/properties/theme?accountId=x%27%24%28id%29%27'"),
        "{html}"
    );
}

/// On a site other than the default, the hints name that site's addresses: the curl a user's
/// page offers reaches the site, and the admin API paths are the site's own.
async fn hints_on_another_site_name_that_sites_addresses(backend: Backend) {
    // Without a site domain a site has no host of its own: the gateway is its one address.
    let settings = Settings {
        site_domains: Vec::new(),
        ..TestApp::settings(None)
    };
    let app = TestApp::with_settings(backend.app().await.store, settings);
    post_form(&app, "/sites", &[("name", "acme")])
        .await
        .assert_status(200);
    let site = app
        .admin(Method::GET, "/_admin/sites/acme")
        .send()
        .await
        .json();
    let site_url = site["url"].as_str().expect("a url").to_owned();
    assert!(site_url.contains("/ex/jira/"), "{site}");
    let users = view(&app, "/sites/acme/users").await;
    assert!(
        users
            .text()
            .contains("<code>/_admin/sites/acme/users</code>"),
        "{}",
        users.text()
    );
    let faults = view(&app, "/sites/acme/faults").await;
    assert!(!faults.text().contains("PUT /_admin/faults"));
    // A blank display name, which the admin API keeps as given.
    app.admin(Method::POST, "/_admin/sites/acme/users")
        .json(r#"{"accountId":"carol-1","email":"carol@example.com","displayName":" "}"#)
        .send()
        .await
        .assert_status(201);
    let page = view(&app, "/sites/acme/users/carol-1").await;
    page.assert_status(200);
    let html = page.text();
    assert!(
        html.contains(&format!(
            "'{site_url}/rest/api/3/user/properties/theme?accountId=carol-1'"
        )),
        "{site_url}: {html}"
    );
    // A blank display name: the user is shown, and linked, by their account id.
    let listed = view(&app, "/sites/acme/users").await;
    assert!(
        listed
            .text()
            .contains(r##"href="#/sites/acme/users/carol-1">carol-1</a>"##),
        "{}",
        listed.text()
    );
}

/// A textarea's CRLF line breaks are stored as LF: saving a value unchanged keeps its bytes.
async fn a_value_saved_from_the_console_keeps_its_line_breaks(backend: Backend) {
    let app = backend.app().await;
    post_form(
        &app,
        &format!("/sites/default/users/{ALICE}/properties"),
        &[("key", "lines"), ("value", "{\r\n  \"a\": 1\r\n}")],
    )
    .await
    .assert_status(200);
    let stored = app
        .get(property_uri(3, "lines", ALICE))
        .by(Who::Alice)
        .send()
        .await;
    stored.assert_status(200);
    // The answer carries the value's stored bytes as they are.
    assert!(
        stored.text().contains("{\n  \"a\": 1\n}"),
        "{}",
        stored.text()
    );
}

async fn no_action_changes_anything_on_get(backend: Backend) {
    let app = backend.app().await;
    post_form(&app, "/sites", &[("name", "acme")])
        .await
        .assert_status(200);
    app.put(property_uri(3, "kept", ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await;
    let actions = [
        "/sites/acme/delete".to_owned(),
        format!("/sites/default/users/{ALICE}/flags?active=false"),
        format!("/sites/default/users/{ALICE}/tokens"),
        format!("/sites/default/users/{ALICE}/properties/delete?key=kept"),
        "/sites/default/requests/clear".to_owned(),
        "/sites/default/faults/clear".to_owned(),
    ];
    for action in &actions {
        let response = view(&app, action).await;
        response.assert_error(405, "The method is not allowed for this resource.");
        assert_eq!(response.header("allow"), Some("POST"), "GET {action}");
    }
    view(&app, "/sites/acme/users").await.assert_status(200);
    assert_eq!(app.stored(ALICE, "kept").await.as_deref(), Some("1"));
    app.get(property_uri(3, "kept", ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);
}

async fn property_forms_follow_the_api_rules_and_store_nothing_wrong(backend: Backend) {
    let app = backend.app().await;
    let path = format!("/sites/default/users/{ALICE}/properties");
    let too_long = format!("[{}1]", "1,".repeat(16_384));
    let refusals = [
        ("k", "{'a': 1}", "The property value must be valid JSON."),
        ("k", "  ", "The property value can not be empty."),
        (
            "k",
            too_long.as_str(),
            "The JSON data provided for the property is too long. Maximum length is 32,768 bytes.",
        ),
        (
            "a\u{1}b",
            "1",
            "The property key contains an invalid character.",
        ),
        ("", "1", "The property key must not be empty."),
    ];
    let before = app.stored_keys(ALICE).await;
    for (key, value, message) in refusals {
        let response = post_form(&app, &path, &[("key", key), ("value", value)]).await;
        response.assert_status(400);
        assert!(response.text().contains(message), "{message}");
        assert_eq!(app.stored_keys(ALICE).await, before);
    }
    let created = post_form(
        &app,
        &path,
        &[("key", "ui"), ("value", " {\"a\": [1, 2]} ")],
    )
    .await;
    created.assert_status(200);
    assert!(created.text().contains("Property ui created."));
    assert_eq!(
        app.stored(ALICE, "ui").await.as_deref(),
        Some("{\"a\": [1, 2]}")
    );
    let saved = post_form(
        &app,
        &path,
        &[("key", "ui"), ("value", "false"), ("editing", "1")],
    )
    .await;
    assert!(saved.text().contains("Property ui saved."));
    let through_the_api = app
        .get(property_uri(2, "ui", ALICE))
        .by(Who::Alice)
        .send()
        .await;
    assert_eq!(through_the_api.json()["value"], serde_json::json!(false));
    post_form(&app, &format!("{path}/delete"), &[("key", "ui")])
        .await
        .assert_status(200);
    assert_eq!(app.stored(ALICE, "ui").await, None);
    post_form(&app, &format!("{path}/delete"), &[("key", "ui")])
        .await
        .assert_status(404);
}

async fn users_tokens_and_flags_change_what_the_api_accepts(backend: Backend) {
    let app = backend.app().await;
    let made = post_form(
        &app,
        "/sites/default/users",
        &[("email", "dora@example.com"), ("accountId", "dora-1")],
    )
    .await;
    made.assert_status(200);
    assert_eq!(
        made.header("x-console-view"),
        Some("/sites/default/users/dora-1")
    );
    let again = post_form(
        &app,
        "/sites/default/users",
        &[("email", "dora@example.com"), ("accountId", "dora-1")],
    )
    .await;
    again.assert_status(409);
    let bad = post_form(
        &app,
        "/sites/default/users",
        &[("email", "not an email"), ("accountId", "")],
    )
    .await;
    bad.assert_status(400);
    assert!(bad.text().contains("This is not an email address."));

    // Scopes are checked as the admin API checks them; what was typed comes back to be mended.
    let refused = post_form(
        &app,
        "/sites/default/users/dora-1/tokens",
        &[("scopes", "read:jira-user write:jira\u{1}work")],
    )
    .await;
    refused.assert_status(400);
    assert!(
        refused.text().contains("control character")
            && refused
                .text()
                .contains(r#"value="read:jira-user write:jira"#),
        "{}",
        refused.text()
    );
    let page = post_form(&app, "/sites/default/users/dora-1/tokens", &[]).await;
    let html = page.text();
    let start = html.find("id=\"new-token\">").expect("the new token") + 15;
    let token = &html[start..start + html[start..].find('<').expect("end")];
    let myself = || {
        app.get("/rest/api/3/myself")
            .header("authorization", &basic("dora@example.com", token))
            .send()
    };
    myself().await.assert_status(200);
    post_form(
        &app,
        "/sites/default/users/dora-1/flags",
        &[("active", "false")],
    )
    .await
    .assert_status(200);
    myself().await.assert_status(401);
    post_form(
        &app,
        "/sites/default/users/dora-1/flags",
        &[("active", "true"), ("admin", "true"), ("from", "user")],
    )
    .await
    .assert_status(200);
    app.get(keys_uri(3, ALICE))
        .header("authorization", &basic("dora@example.com", token))
        .send()
        .await
        .assert_status(200);
}

async fn the_journal_view_filters_and_shows_one_request_without_secrets(backend: Backend) {
    let app = backend.app().await;
    app.put(property_uri(3, "seen", ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await;
    app.get(keys_uri(3, ALICE)).by(Who::Alice).send().await;
    let rows = view(&app, "/sites/default/requests/live?method=PUT&key=seen").await;
    assert_eq!(
        rows.text().matches("<tr>").count(),
        2,
        "a header and one row"
    );
    let none = view(&app, "/sites/default/requests/live?status=429").await;
    assert!(
        none.text()
            .contains("No request kept matches these filters")
    );
    let bad = view(&app, "/sites/default/requests?status=many").await;
    assert!(bad.text().contains("status 'many' is not a number"));
    assert!(
        bad.text().contains("No request kept matches these filters"),
        "a bad filter lists nothing"
    );
    // A key is matched as typed, a leading space included, as the admin API matches it.
    app.put(property_uri(3, "%20lead", ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await
        .assert_status(201);
    let spaced = view(&app, "/sites/default/requests/live?key=%20lead").await;
    assert_eq!(
        spaced.text().matches("<tr>").count(),
        2,
        "{}",
        spaced.text()
    );
    // A method the list does not offer is shown as the one in force, not as "any".
    let patch = view(&app, "/sites/default/requests?method=PATCH").await;
    assert!(
        patch.text().contains(r#"<option value="PATCH" selected>"#),
        "{}",
        patch.text()
    );

    let entries = app
        .admin(Method::GET, "/_admin/requests?key=seen")
        .send()
        .await
        .json();
    let id = entries[0]["requestId"].as_str().expect("an id").to_owned();
    assert_eq!(entries.as_array().map(Vec::len), Some(1));
    assert_eq!(entries[0]["headers"]["authorization"], "Basic [hidden]");
    let detail = view(&app, &format!("/sites/default/requests/{id}")).await;
    detail.assert_status(200);
    assert!(detail.text().contains("Basic [hidden]"));
    assert!(!detail.text().contains("alice-token"));
    view(&app, "/sites/default/requests/0")
        .await
        .assert_status(404);
}

/// With the journal off, the requests view says so instead of promising rows.
async fn the_journal_view_says_when_the_journal_is_off(backend: Backend) {
    let app = backend.app().await;
    let off = TestApp::with_settings(
        app.store.clone(),
        Settings {
            journal_size: 0,
            ..TestApp::settings(None)
        },
    );
    off.get(keys_uri(3, BOB))
        .by(Who::Bob)
        .send()
        .await
        .assert_status(200);
    let page = view(&off, "/sites/default/requests").await;
    page.assert_status(200);
    assert!(
        page.text().contains("The journal is off"),
        "{}",
        page.text()
    );
    assert!(!page.text().contains("they appear here"));
}

async fn a_rate_limit_set_in_the_console_is_in_force_and_its_bucket_shown(backend: Backend) {
    let app = backend.app().await;
    let set = post_form(
        &app,
        "/sites/default/faults",
        &[("limit", "1"), ("windowSeconds", "60")],
    )
    .await;
    set.assert_status(200);
    let statuses = [
        app.get(keys_uri(3, ALICE))
            .by(Who::Alice)
            .send()
            .await
            .status,
        app.get(keys_uri(3, ALICE))
            .by(Who::Alice)
            .send()
            .await
            .status,
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [200, 429]);
    let page = view(&app, "/sites/default/faults").await;
    assert!(page.text().contains(&format!("<code>{ALICE}</code>")));
    assert!(page.text().contains("0.0 of 1"));
    let refused = post_form(
        &app,
        "/sites/default/faults",
        &[("limit", "0"), ("windowSeconds", "1")],
    )
    .await;
    refused.assert_status(400);
    assert!(refused.text().contains("rateLimit needs limit &gt;= 1"));
    let wrong = post_form(&app, "/sites/default/faults", &[("limit", "x")]).await;
    wrong.assert_status(400);
    post_form(&app, "/sites/default/faults/clear", &[])
        .await
        .assert_status(200);
    app.get(keys_uri(3, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);
}

/// The form shows no rule's route, account or count; applying it keeps them as they were set
/// through the admin API, rather than widening a scoped rule to every request.
async fn the_faults_form_keeps_what_it_does_not_show(backend: Backend) {
    let app = backend.app().await;
    let scoped = r#"{"errors": {"status": 500, "fraction": 1, "route": "/rest/api/3/user/properties/{key}",
                    "accountId": "someone-else", "count": 3}}"#;
    set_faults(&app, scoped).await;
    post_form(
        &app,
        "/sites/default/faults",
        &[
            ("status", "500"),
            ("fraction", "1"),
            ("limit", "100"),
            ("windowSeconds", "60"),
        ],
    )
    .await
    .assert_status(200);
    let rules = app.admin(Method::GET, "/_admin/faults").send().await.json();
    assert_eq!(
        rules["errors"]["route"], "/rest/api/3/user/properties/{key}",
        "{rules}"
    );
    assert_eq!(rules["errors"]["accountId"], "someone-else", "{rules}");
    assert_eq!(rules["rateLimit"]["limit"], 100, "{rules}");
    app.get(keys_uri(3, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);
    // A count used up is kept too, and the page says what that means.
    const SPENT: &str = "A rule whose count is 0 has acted on the requests it was set for";
    assert!(
        !view(&app, "/sites/default/faults")
            .await
            .text()
            .contains(SPENT)
    );
    set_faults(
        &app,
        r#"{"errors": {"status": 503, "fraction": 1, "count": 1}}"#,
    )
    .await;
    app.get(keys_uri(3, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(503);
    let page = view(&app, "/sites/default/faults").await;
    page.assert_status(200);
    assert!(page.text().contains(SPENT), "{}", page.text());
}

async fn sites_are_made_and_deleted_and_unknown_ones_are_not_found(backend: Backend) {
    let app = backend.app().await;
    let bad = post_form(&app, "/sites", &[("name", "Not A Name")]).await;
    bad.assert_status(400);
    let unnamed = post_form(&app, "/sites", &[("name", "")]).await;
    unnamed.assert_status(400);
    assert!(
        unnamed.text().contains("A site needs a name"),
        "{}",
        unnamed.text()
    );
    post_form(&app, "/sites", &[("name", "acme")])
        .await
        .assert_status(200);
    post_form(&app, "/sites", &[("name", "acme")])
        .await
        .assert_status(409);
    app.admin(Method::GET, "/_admin/sites/acme")
        .send()
        .await
        .assert_status(200);
    post_form(&app, "/sites/acme/delete", &[])
        .await
        .assert_status(200);
    app.admin(Method::GET, "/_admin/sites/acme")
        .send()
        .await
        .assert_status(404);
    let missing = view(&app, "/sites/acme/users").await;
    missing.assert_status(404);
    assert!(missing.text().contains("Site not found."));
    post_form(&app, "/sites/default/delete", &[])
        .await
        .assert_status(409);
}

async fn a_users_page_shows_their_properties_by_key_and_unknown_users_are_not_found(
    backend: Backend,
) {
    let app = backend.app().await;
    // Put out of order; code-point order puts `Z` before `a` and `é` last.
    for (key, value) in [("é.last", "3"), ("a.middle", "2"), ("Z.first", "1")] {
        app.put(property_uri(3, &key.replace('é', "%C3%A9"), ALICE))
            .by(Who::Alice)
            .json(value)
            .send()
            .await
            .assert_status(201);
    }
    let page = view(&app, &format!("/sites/default/users/{ALICE}")).await;
    page.assert_status(200);
    let html = page.text();
    let at = |key: &str| {
        html.find(&format!("<h3><code>{key}</code></h3>"))
            .unwrap_or_else(|| panic!("{key} is not shown"))
    };
    let order = ["Z.first", "a.middle", "existing", "é.last"].map(at);
    assert!(order.is_sorted(), "keys out of order: {order:?}");

    let empty = view(&app, &format!("/sites/default/users/{ADMIN}")).await;
    empty.assert_status(200);
    assert!(empty.text().contains("No properties yet"));
    assert!(!empty.text().contains("<article class=\"property\">"));

    // A page holds a bounded number of properties (each up to 32 KiB), and says so: by key,
    // the three above come before `z.000`, and `é.last` after.
    for n in 0..100 {
        app.put(property_uri(3, &format!("z.{n:03}"), ALICE))
            .by(Who::Alice)
            .json("0")
            .send()
            .await
            .assert_status(201);
    }
    let long = view(&app, &format!("/sites/default/users/{ALICE}")).await;
    let html = long.text();
    assert!(html.contains("The first 100 of 104 properties"), "{html}");
    assert!(html.contains("<code>z.096</code>") && !html.contains("<code>z.097</code>"));

    for unknown in [NOBODY, "not an account id"] {
        let path = format!("/sites/default/users/{}", unknown.replace(' ', "%20"));
        view(&app, &path).await.assert_status(404);
    }
}

on_each_backend!(
    the_shell_is_open_and_every_view_takes_the_admin_token,
    the_console_is_on_exactly_when_the_admin_api_is,
    every_answer_carries_a_policy_without_inline_script_and_refuses_framing,
    markup_in_values_keys_and_names_is_shown_as_text,
    the_curl_hint_quotes_what_a_user_holds,
    hints_on_another_site_name_that_sites_addresses,
    a_value_saved_from_the_console_keeps_its_line_breaks,
    the_journal_view_says_when_the_journal_is_off,
    no_action_changes_anything_on_get,
    property_forms_follow_the_api_rules_and_store_nothing_wrong,
    a_users_page_shows_their_properties_by_key_and_unknown_users_are_not_found,
    users_tokens_and_flags_change_what_the_api_accepts,
    the_journal_view_filters_and_shows_one_request_without_secrets,
    a_rate_limit_set_in_the_console_is_in_force_and_its_bucket_shown,
    sites_are_made_and_deleted_and_unknown_ones_are_not_found,
    the_faults_form_keeps_what_it_does_not_show,
);
