//! Sites: isolated worlds in one server, reached through the gateway form, by Host, or as the
//! default site; made, listed and deleted through the admin API.

use axum::http::Method;
use jira_userprops::domain::SiteKey;
use jira_userprops::http::Settings;
use jira_userprops::seed;
use jira_userprops::service::apps::AppService;
use jira_userprops::service::{AdminService, SiteService};
use serde_json::{Value, json};

use crate::helpers::*;

/// A site holding the fixture's Alice under the same account id and email, with a token and
/// a value of its own.
const ACME_SEED: &str = r#"{
  "users": [
    {"accountId": "alice-5b10ac8d82e05b22cc7d4ef5", "email": "alice@example.com",
     "displayName": "Alice at Acme", "apiTokens": ["acme-alice-token"]}
  ],
  "properties": [
    {"accountId": "alice-5b10ac8d82e05b22cc7d4ef5", "key": "existing", "value": {"owner":"acme"}}
  ]
}"#;

const ACME_HOST: &str = "acme.localhost:8080";

fn acme_alice() -> String {
    basic("alice@example.com", "acme-alice-token")
}

/// Makes the site `acme` with [`ACME_SEED`]; its cloudId.
async fn make_acme(app: &TestApp) -> String {
    let body = format!(r#"{{"name":"acme","seed":{ACME_SEED}}}"#);
    let created = app
        .admin(Method::POST, "/_admin/sites")
        .json(body)
        .send()
        .await;
    created.assert_status(201);
    created.json()["id"].as_str().expect("an id").to_owned()
}

fn existing(version: u8) -> String {
    property_uri(version, "existing", ALICE)
}

async fn sites_are_made_listed_shown_and_deleted(backend: Backend) {
    let app = backend.app().await;
    let pinned = "35273b54-3f06-40d2-880f-dd28cf8daafa";
    let created = app
        .admin(Method::POST, "/_admin/sites")
        .json(format!(r#"{{"name":"acme","id":"{pinned}"}}"#))
        .host("127.0.0.1:8080")
        .send()
        .await;
    created.assert_status(201);
    assert_eq!(
        created.json(),
        json!({"id": pinned, "name": "acme", "url": "http://acme.localhost:8080",
               "gatewayUrl": format!("http://127.0.0.1:8080/ex/jira/{pinned}")})
    );
    let listed = app.admin(Method::GET, "/_admin/sites").send().await;
    listed.assert_status(200);
    let names: Vec<Value> = listed
        .json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|site| site["name"].clone())
        .collect();
    assert_eq!(names, [json!("default"), json!("acme")]);
    for reference in ["acme", pinned, "35273B54-3F06-40D2-880F-DD28CF8DAAFA"] {
        let shown = app
            .admin(Method::GET, format!("/_admin/sites/{reference}"))
            .send()
            .await;
        shown.assert_status(200);
        assert_eq!(shown.json()["id"], pinned, "{reference}");
    }
    let taken = [
        (
            r#"{"name":"acme"}"#.to_owned(),
            "A site named 'acme' exists already.",
        ),
        (
            format!(r#"{{"name":"other","id":"{pinned}"}}"#),
            &*format!("A site with id '{pinned}' exists already."),
        ),
        (
            r#"{"name":"default"}"#.to_owned(),
            "A site named 'default' exists already.",
        ),
    ];
    for (body, message) in taken {
        let refused = app
            .admin(Method::POST, "/_admin/sites")
            .json(body)
            .send()
            .await;
        refused.assert_error(409, message);
    }
    for bad in [
        r#"{"name":"Acme"}"#,
        r#"{"name":"a.b"}"#,
        r#"{"name":"-a"}"#,
        r#"{"name":""}"#,
        // Read as cloudIds where a name or a cloudId is taken.
        r#"{"name":"deadbeefdeadbeefdeadbeefdeadbeef"}"#,
        r#"{"name":"deadbeef-dead-4eef-8ead-beefdeadbeef"}"#,
    ] {
        let refused = app
            .admin(Method::POST, "/_admin/sites")
            .json(bad)
            .send()
            .await;
        refused.assert_error(400, "The site name must be 1 to 63 lowercase letters, digits or '-', and must not start or end with '-' or be a cloudId.");
    }
    for bad in [
        r#"{"name":"x","id":"nope"}"#,
        r#"{}"#,
        "[]",
        r#"{"name":"x","colour":"red"}"#,
    ] {
        let refused = app
            .admin(Method::POST, "/_admin/sites")
            .json(bad)
            .send()
            .await;
        refused.assert_status(400);
    }
    // A field of the wrong kind is named.
    let refused = app
        .admin(Method::POST, "/_admin/sites")
        .json(r#"{"name":5}"#)
        .send()
        .await;
    refused.assert_error_mentioning(400, "name: invalid type");
    // Asked through a site's own host, the default site is still the bare domain.
    let default = app
        .admin(Method::GET, "/_admin/sites/default")
        .host("acme.localhost:8080")
        .send()
        .await;
    assert_eq!(default.json()["url"], "http://localhost:8080");
    // The sites themselves are the server's: no site host is needed to list them.
    app.admin(Method::GET, "/_admin/sites")
        .host("nowhere.localhost")
        .send()
        .await
        .assert_status(200);
    app.admin(Method::DELETE, "/_admin/sites/default")
        .send()
        .await
        .assert_error(409, "The default site cannot be deleted.");
    app.admin(Method::DELETE, "/_admin/sites/acme")
        .send()
        .await
        .assert_status(204);
    for gone in ["/_admin/sites/acme", "/_admin/sites/acme/users"] {
        app.admin(Method::GET, gone)
            .send()
            .await
            .assert_error(404, "Site not found.");
    }
    app.admin(Method::DELETE, format!("/_admin/sites/{pinned}"))
        .send()
        .await
        .assert_error(404, "Site not found.");
    let listed = app.admin(Method::GET, "/_admin/sites").send().await;
    assert_eq!(listed.json().as_array().map(Vec::len), Some(1));
}

async fn the_same_account_in_two_sites_is_two_accounts(backend: Backend) {
    let app = backend.app().await;
    let id = make_acme(&app).await;
    let gateway = format!("/ex/jira/{id}");
    // Each site's Alice reads her own value, with her own token.
    let at_acme = app
        .get(existing(3))
        .host(ACME_HOST)
        .header("authorization", &acme_alice())
        .send()
        .await;
    assert_eq!(
        at_acme.json(),
        json!({"key": "existing", "value": {"owner": "acme"}})
    );
    let through_gateway = app
        .get(format!("{gateway}{}", existing(3)))
        .header("authorization", &acme_alice())
        .send()
        .await;
    assert_eq!(
        through_gateway.json(),
        json!({"key": "existing", "value": {"owner": "acme"}})
    );
    let at_default = app.get(existing(3)).by(Who::Alice).send().await;
    assert_eq!(
        at_default.json(),
        json!({"key": "existing", "value": {"owner": "alice"}})
    );
    // A token of one site is refused by the other.
    app.get(existing(3))
        .host(ACME_HOST)
        .by(Who::Alice)
        .send()
        .await
        .assert_status(401);
    app.get(format!("{gateway}{}", existing(3)))
        .by(Who::Admin)
        .send()
        .await
        .assert_status(401);
    app.get(existing(3))
        .header("authorization", &acme_alice())
        .send()
        .await
        .assert_status(401);
    // Bob exists only in the default site.
    app.get(property_uri(3, "existing", BOB))
        .host(ACME_HOST)
        .header("authorization", &acme_alice())
        .send()
        .await
        .assert_status(403);
    // A write in one site is not seen in the other.
    app.put(property_uri(3, "new", ALICE))
        .host(ACME_HOST)
        .header("authorization", &acme_alice())
        .json("1")
        .send()
        .await
        .assert_status(201);
    app.get(property_uri(3, "new", ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(404);
    app.put(property_uri(3, "new", ALICE))
        .by(Who::Alice)
        .json("2")
        .send()
        .await
        .assert_status(201);
    let mine = app
        .get(format!("{gateway}{}", property_uri(3, "new", ALICE)))
        .header("authorization", &acme_alice())
        .send()
        .await;
    assert_eq!(mine.json()["value"], 1);
    // The admin API sees each site's users apart.
    let acme_users = app
        .admin(Method::GET, "/_admin/sites/acme/users")
        .send()
        .await;
    assert_eq!(acme_users.json().as_array().map(Vec::len), Some(1));
    assert_eq!(acme_users.json()[0]["displayName"], "Alice at Acme");
    let default_users = app.admin(Method::GET, "/_admin/users").send().await;
    assert_eq!(default_users.json().as_array().map(Vec::len), Some(4));
}

async fn reset_snapshot_faults_and_journal_stay_in_their_site(backend: Backend) {
    let app = backend.app().await;
    make_acme(&app).await;
    // A fault in acme: every request there fails.
    let rules = r#"{"errors":{"status":503,"fraction":1}}"#;
    app.admin(Method::PUT, "/_admin/sites/acme/faults")
        .json(rules)
        .send()
        .await
        .assert_status(200);
    app.get(existing(3))
        .host(ACME_HOST)
        .header("authorization", &acme_alice())
        .send()
        .await
        .assert_status(503);
    app.get(existing(3))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);
    app.admin(Method::DELETE, "/_admin/sites/acme/faults")
        .send()
        .await
        .assert_status(204);
    // Each journal holds its own site's requests.
    let journaled = |site: &'static str| {
        let app = &app;
        async move {
            let path = if site == "default" {
                "/_admin/requests".to_owned()
            } else {
                format!("/_admin/sites/{site}/requests")
            };
            let entries = app.admin(Method::GET, path).send().await.json();
            entries
                .as_array()
                .expect("an array")
                .iter()
                .map(|entry| entry["status"].as_u64().unwrap_or_default())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(journaled("acme").await, [503]);
    assert_eq!(journaled("default").await, [200]);
    // A reset in acme leaves the default site's properties.
    app.admin(Method::POST, "/_admin/sites/acme/reset")
        .send()
        .await
        .assert_status(204);
    app.get(existing(3))
        .host(ACME_HOST)
        .header("authorization", &acme_alice())
        .send()
        .await
        .assert_status(404);
    app.get(existing(3))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);
    // A snapshot of acme holds acme only; importing it into acme leaves the default site be.
    let snapshot = app
        .admin(Method::GET, "/_admin/sites/acme/snapshot")
        .send()
        .await;
    let users = snapshot.json()["users"].as_array().map(Vec::len);
    assert_eq!(users, Some(1));
    app.admin(Method::PUT, "/_admin/sites/acme/snapshot")
        .json(snapshot.body.clone())
        .send()
        .await
        .assert_status(204);
    let default_users = app.admin(Method::GET, "/_admin/users").send().await;
    assert_eq!(default_users.json().as_array().map(Vec::len), Some(4));
    // Failed logins in one site do not lock the client out of another.
    let throttled = TestApp::with_settings(
        app.store.clone(),
        Settings {
            login_failures: 3,
            ..TestApp::settings(None)
        },
    );
    let wrong = basic("alice@example.com", "wrong");
    for _ in 0..4 {
        let response = throttled
            .get(existing(3))
            .host(ACME_HOST)
            .header("authorization", &wrong)
            .from("10.0.0.9:1000")
            .send()
            .await;
        response.assert_status(401);
    }
    let locked = throttled
        .get(existing(3))
        .host(ACME_HOST)
        .header("authorization", &acme_alice())
        .from("10.0.0.9:1000")
        .send()
        .await;
    assert_eq!(
        locked.header("x-seraph-loginreason"),
        Some("AUTHENTICATION_DENIED")
    );
    throttled
        .get(existing(3))
        .by(Who::Alice)
        .from("10.0.0.9:1000")
        .send()
        .await
        .assert_status(200);
}

/// Every Jira route × gateway form, host form, default host and unknown sites.
async fn each_jira_route_is_reached_in_every_form(backend: Backend) {
    let app = backend.app().await;
    let id = make_acme(&app).await;
    // Each form writes a key of its own, so that every PUT creates and every DELETE finds.
    let routes = [
        (Method::GET, keys_uri(3, ALICE), 200),
        (Method::GET, existing(2), 200),
        (Method::PUT, property_uri(3, "FORM", ALICE), 201),
        (Method::DELETE, property_uri(3, "FORM", ALICE), 204),
        (Method::GET, "/rest/api/3/myself".to_owned(), 200),
        (
            Method::GET,
            format!("/rest/api/2/user?accountId={ALICE}"),
            200,
        ),
        (Method::GET, "/rest/api/3/serverInfo".to_owned(), 200),
    ];
    let unknown = "0e6bd4d9-6b1c-4f6a-9a55-000000000000";
    for (method, path, status) in routes {
        let send = |uri: String, host: &str, authorization: String| {
            let uri = uri.replace("FORM", &host.replace([':', '.'], "-"));
            let request = app
                .request(method.clone(), uri)
                .host(host)
                .header("authorization", &authorization);
            let request = if method == Method::PUT {
                request.json("1")
            } else {
                request
            };
            request.send()
        };
        let gateway = send(
            format!("/ex/jira/{id}{path}"),
            "127.0.0.1:8080",
            acme_alice(),
        )
        .await;
        assert_eq!(gateway.status, status, "gateway {method} {path}");
        let host = send(path.clone(), ACME_HOST, acme_alice()).await;
        assert_eq!(host.status, status, "host {method} {path}");
        let default = send(
            path.clone(),
            "127.0.0.1:8080",
            Who::Alice.authorization().unwrap_or_default(),
        )
        .await;
        assert_eq!(default.status, status, "default {method} {path}");
        let plain_localhost = send(
            path.clone(),
            "localhost:8080",
            Who::Alice.authorization().unwrap_or_default(),
        )
        .await;
        assert_eq!(plain_localhost.status, status, "localhost {method} {path}");
        for (uri, host) in [
            (format!("/ex/jira/{unknown}{path}"), "127.0.0.1:8080"),
            (format!("/ex/jira/not-a-uuid{path}"), "127.0.0.1:8080"),
            (path.clone(), "nowhere.localhost:8080"),
        ] {
            let response = send(uri.clone(), host, acme_alice()).await;
            response.assert_error(404, "Site not found.");
        }
    }
    // What a user knows of a site is its cloudId, from its host.
    let tenant = app.get("/_edge/tenant_info").host(ACME_HOST).send().await;
    assert_eq!(tenant.json(), json!({"cloudId": id}));
    let default = app
        .admin(Method::GET, "/_admin/sites/default")
        .send()
        .await
        .json();
    let tenant = app
        .get("/_edge/tenant_info")
        .host("127.0.0.1:8080")
        .send()
        .await;
    assert_eq!(tenant.json(), json!({"cloudId": default["id"]}));
    app.get("/_edge/tenant_info")
        .host("nowhere.localhost")
        .send()
        .await
        .assert_error(404, "Site not found.");
}

async fn self_links_follow_how_the_request_came(backend: Backend) {
    let app = backend.app().await;
    let id = make_acme(&app).await;
    let first_link = |response: TestResponse| response.json()["keys"][0]["self"].clone();
    let host = app
        .get(keys_uri(3, ALICE))
        .host(ACME_HOST)
        .header("authorization", &acme_alice())
        .send()
        .await;
    assert_eq!(
        first_link(host),
        format!("http://{ACME_HOST}/rest/api/3/user/properties/existing?accountId={ALICE}")
    );
    let gateway = app
        .get(format!("/ex/jira/{id}{}", keys_uri(3, ALICE)))
        .host("127.0.0.1:8080")
        .header("authorization", &acme_alice())
        .send()
        .await;
    assert_eq!(
        first_link(gateway),
        format!(
            "http://127.0.0.1:8080/ex/jira/{id}/rest/api/3/user/properties/existing?accountId={ALICE}"
        )
    );
    let behind = |public_url: &str| {
        let settings = Settings {
            public_url: Some(public_url.to_owned()),
            ..TestApp::settings(None)
        };
        TestApp::with_settings(app.store.clone(), settings)
    };
    let public = behind("https://jira.example");
    let default = public.get(keys_uri(2, ALICE)).by(Who::Alice).send().await;
    assert_eq!(
        first_link(default),
        format!("https://jira.example/rest/api/2/user/properties/existing?accountId={ALICE}")
    );
    let gateway = public
        .get(format!("/ex/jira/{id}{}", keys_uri(2, ALICE)))
        .header("authorization", &acme_alice())
        .send()
        .await;
    assert_eq!(
        first_link(gateway),
        format!(
            "https://jira.example/ex/jira/{id}/rest/api/2/user/properties/existing?accountId={ALICE}"
        )
    );
    // A site's own host is reached as the public URL is when that lies in a site domain (one
    // proxy in front of every site), and by plain http otherwise.
    for (public_url, scheme) in [
        ("https://jira.example", "http"),
        ("https://jira.localhost", "https"),
        ("http://jira.localhost:8080", "http"),
    ] {
        let host = behind(public_url)
            .get(keys_uri(3, ALICE))
            .host(ACME_HOST)
            .header("authorization", &acme_alice())
            .send()
            .await;
        assert_eq!(
            first_link(host),
            format!("{scheme}://{ACME_HOST}/rest/api/3/user/properties/existing?accountId={ALICE}"),
            "{public_url}"
        );
    }
    // The public URL's own host reaches the default site its links are of, though it looks
    // like the host of a site named `jira`.
    let default = behind("http://jira.localhost:8080")
        .get("/rest/api/3/myself")
        .host("jira.localhost:8080")
        .by(Who::Alice)
        .send()
        .await;
    default.assert_status(200);
    assert_eq!(default.json()["accountId"], ALICE);
    // So a site named `jira` is described by its gateway URL, the one way to reach it.
    let jira = behind("http://jira.localhost:8080")
        .admin(Method::POST, "/_admin/sites")
        .json(r#"{"name":"jira"}"#)
        .send()
        .await;
    jira.assert_status(201);
    let jira = jira.json();
    assert_eq!(jira["url"], jira["gatewayUrl"], "{jira}");
}

async fn concurrent_creation_of_one_name_makes_one_site(backend: Backend) {
    let app = backend.app().await;
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.admin(Method::POST, "/_admin/sites")
                    .json(r#"{"name":"race"}"#)
                    .send()
                    .await
                    .status
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.expect("task completes"));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
}

async fn past_max_sites_creation_is_refused(backend: Backend) {
    let app = backend.app().await;
    let small = TestApp::with_settings(
        app.store.clone(),
        Settings {
            max_sites: 2,
            ..TestApp::settings(None)
        },
    );
    small
        .admin(Method::POST, "/_admin/sites")
        .json(r#"{"name":"one"}"#)
        .send()
        .await
        .assert_status(201);
    small
        .admin(Method::POST, "/_admin/sites")
        .json(r#"{"name":"two"}"#)
        .send()
        .await
        .assert_error(409, "This server holds at most 2 sites (--max-sites).");
}

async fn deleting_a_site_under_load_fails_no_request_of_another(backend: Backend) {
    let app = backend.app().await;
    let load = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..200 {
                let response = app
                    .put(property_uri(3, &format!("k{}", i % 5), ALICE))
                    .by(Who::Alice)
                    .json("1")
                    .send()
                    .await;
                statuses.push(response.status.as_u16());
            }
            statuses
        })
    };
    for round in 0..10 {
        let name = format!("s{round}");
        app.admin(Method::POST, "/_admin/sites")
            .json(format!(r#"{{"name":"{name}","seed":{ACME_SEED}}}"#))
            .send()
            .await
            .assert_status(201);
        app.admin(Method::DELETE, format!("/_admin/sites/{name}"))
            .send()
            .await
            .assert_status(204);
    }
    let statuses = load.await.expect("load completes");
    assert!(
        statuses.iter().all(|status| matches!(status, 200 | 201)),
        "{statuses:?}"
    );
}

/// A seed document's sites are made at start, with what each holds.
async fn a_seed_makes_its_sites(backend: Backend) {
    let app = backend.app().await;
    let text = format!(
        r#"{{"sites":[{{"name":"acme","id":"35273b54-3f06-40d2-880f-dd28cf8daafa",{}}}]}}"#,
        &ACME_SEED.trim()[1..ACME_SEED.trim().len() - 1]
    );
    let sites = SiteService::new(app.store.clone(), 10, jira_userprops::clock::system());
    let admin = AdminService::new(app.store.clone());
    let apps = AppService::new(app.store.clone(), jira_userprops::clock::system());
    // Applies a seed document as a start does.
    let apply = |text: &str| {
        let parsed = seed::parse(std::path::Path::new("seed.json"), text).expect("a valid seed");
        seed::apply(
            &admin,
            &sites,
            &apps,
            std::path::Path::new("seed.json"),
            parsed,
        )
    };
    let report = apply(&text).await.expect("applied");
    assert_eq!((report.users, report.tokens, report.properties), (1, 1, 1));
    let tenant = app.get("/_edge/tenant_info").host(ACME_HOST).send().await;
    assert_eq!(
        tenant.json()["cloudId"],
        "35273b54-3f06-40d2-880f-dd28cf8daafa"
    );
    let at_acme = app
        .get(existing(3))
        .host(ACME_HOST)
        .header("authorization", &acme_alice())
        .send()
        .await;
    assert_eq!(at_acme.json()["value"], json!({"owner": "acme"}));
    assert_eq!(
        app.store
            .user_count(SiteKey::DEFAULT)
            .await
            .expect("counted"),
        4
    );
    // Apps in a seed are registered once, with their pinned credentials.
    let with_app = r#"{"apps":[{"name":"Seeded bot","kind":"serviceAccount","clientId":"seeded-bot",
        "clientSecret":"s3cret","sites":["acme"],"scopes":["read:jira-user"]}]}"#;
    for _ in 0..2 {
        apply(with_app).await.expect("applied");
    }
    // A registered app is left as it is, even when the sites its seed entry names are gone.
    let moved_on = with_app.replace(r#""sites":["acme"]"#, r#""sites":["gone-site"]"#);
    apply(&moved_on).await.expect("applied");
    let tokens = app
        .request(Method::POST, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=seeded-bot&client_secret=s3cret")
        .send()
        .await;
    tokens.assert_status(200);
    // A site named twice is one site, as in the admin API.
    let twice = r#"{"apps":[{"name":"Twice bot","kind":"serviceAccount","clientId":"twice-bot",
        "clientSecret":"s","sites":["default","acme","default"]}]}"#;
    apply(twice).await.expect("applied");
    for path in [
        "/_admin/users/712020:twice-bot",
        "/_admin/sites/acme/users/712020:twice-bot",
    ] {
        app.admin(Method::GET, path).send().await.assert_status(200);
    }
    // A pinned id that differs from the stored site's stops the seed.
    let moved = r#"{"sites":[{"name":"acme","id":"11111111-3f06-40d2-880f-dd28cf8daafa"}]}"#;
    let refused = apply(moved).await;
    let message = refused.expect_err("refused").to_string();
    assert!(
        message.contains(r#"sites[0] ("acme"): the site exists with another id"#),
        "{message}"
    );
    // An app naming a site that is nowhere stops the seed before any of it is stored.
    let nowhere = r#"{"users":[{"accountId":"early-1","email":"early@example.com"}],
        "sites":[{"name":"early-site"}],
        "apps":[{"name":"Lost bot","kind":"serviceAccount","clientId":"lost-bot",
        "clientSecret":"s","sites":["early-site","nowhere"]}]}"#;
    let refused = apply(nowhere).await;
    let message = refused.expect_err("refused").to_string();
    assert!(
        message.contains(r#"apps[0] ("lost-bot"): there is no site "nowhere""#),
        "{message}"
    );
    assert!(
        !app.store
            .user_exists(SiteKey::DEFAULT, "early-1", None)
            .await
            .expect("store answers"),
        "nothing stored"
    );
    assert!(sites.named("early-site").await.expect("read").is_none());
    let twice = r#"{"sites":[{"name":"a","id":"11111111-3f06-40d2-880f-dd28cf8daafa"},{"name":"b","id":"11111111-3f06-40d2-880f-dd28cf8daafa"}]}"#;
    for bad in [
        r#"{"sites":[{"name":"Bad"}]}"#,
        r#"{"sites":[{"name":"a"},{"name":"a"}]}"#,
        r#"{"sites":[{"name":"default"}]}"#,
        twice,
        r#"{"apps":[{"name":"x","clientId":"a","clientSecret":"b","kind":"robot"}]}"#,
        r#"{"apps":[{"name":"x","clientId":"a"}]}"#,
        // The service account's user would be a second user with that account id.
        r#"{"users":[{"accountId":"712020:bot","email":"bot@example.com"}],
            "apps":[{"name":"x","kind":"serviceAccount","clientId":"bot","clientSecret":"s","sites":["default"]}]}"#,
        r#"{"sites":[{"name":"a","users":[{"accountId":"712020:bot","email":"b@example.com"}]}],
            "apps":[{"name":"x","kind":"serviceAccount","clientId":"bot","clientSecret":"s","sites":["a"]}]}"#,
    ] {
        assert!(
            seed::parse(std::path::Path::new("seed.json"), bad).is_err(),
            "{bad}"
        );
    }
    let apart = r#"{"sites":[{"name":"a","users":[{"accountId":"712020:bot","email":"b@example.com"}]}],
        "apps":[{"name":"x","kind":"serviceAccount","clientId":"bot","clientSecret":"s","sites":["default"]}]}"#;
    seed::parse(std::path::Path::new("seed.json"), apart)
        .expect("a user of a site the service account is not in is no clash");
}

on_each_backend!(
    sites_are_made_listed_shown_and_deleted,
    the_same_account_in_two_sites_is_two_accounts,
    reset_snapshot_faults_and_journal_stay_in_their_site,
    each_jira_route_is_reached_in_every_form,
    self_links_follow_how_the_request_came,
    concurrent_creation_of_one_name_makes_one_site,
    past_max_sites_creation_is_refused,
    deleting_a_site_under_load_fails_no_request_of_another,
    a_seed_makes_its_sites,
);

/// A site's seed is kept as it was when the site was made; should a later version's rules
/// refuse it, returning to it is a conflict that says why, not a server fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_seed_that_later_rules_refuse_is_a_conflict() {
    use sqlx::Connection as _;
    let database = Backend::Sqlite.database().await;
    let app = TestApp::on(&database.url, None).await;
    app.admin(Method::POST, "/_admin/sites")
        .json(r#"{"name": "old"}"#)
        .send()
        .await
        .assert_status(201);
    let mut other = sqlx::SqliteConnection::connect(&database.url)
        .await
        .expect("another connection to the file");
    sqlx::query("UPDATE sites SET seed = ? WHERE name = 'old'")
        .bind(r#"{"users":[{"accountId":"x","email":"a:b@old.test"}]}"#)
        .execute(&mut other)
        .await
        .expect("a seed of an earlier version's rules");
    let refused = app
        .admin(Method::POST, "/_admin/sites/old/reset?to=seed")
        .send()
        .await;
    refused.assert_error_mentioning(409, "fails this version's seed rules");
}
