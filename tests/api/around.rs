//! What clients call around the properties: serverInfo, myself and user, under both versions.

use crate::helpers::*;

async fn server_info_says_cloud_to_anyone(backend: Backend) {
    let app = backend.app().await;
    for version in [2, 3] {
        let info = app
            .get(format!("/rest/api/{version}/serverInfo"))
            .send()
            .await;
        info.assert_status(200);
        assert_eq!(
            info.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
        let body = info.json();
        assert_eq!(body["deploymentType"], "Cloud");
        assert_eq!(body["baseUrl"], "http://jira.test");
        assert_eq!(body["versionNumbers"], serde_json::json!([1001, 0, 0]));
        assert!(
            body["serverTime"]
                .as_str()
                .is_some_and(|t| t.ends_with("+0000")),
            "{body}"
        );
        assert_eq!(info.header("x-aaccountid"), None);
    }
    // A header of another scheme, or one that does not parse, is no credentials: anonymous.
    for authorization in ["JWT abc.def.ghi", "Basic !!!", "Bearer", "Negotiate YII="] {
        let info = app
            .get("/rest/api/3/serverInfo")
            .header("authorization", authorization)
            .send()
            .await;
        info.assert_status(200);
        assert_eq!(info.header("x-aaccountid"), None, "{authorization}");
    }
}

async fn server_info_refuses_wrong_credentials_and_names_right_ones(backend: Backend) {
    let app = backend.app().await;
    app.get("/rest/api/2/serverInfo")
        .by(Who::WrongToken)
        .send()
        .await
        .assert_status(401);
    let info = app.get("/rest/api/2/serverInfo").by(Who::Bob).send().await;
    info.assert_status(200);
    assert_eq!(info.header("x-aaccountid"), Some(BOB));
}

async fn server_info_uses_the_public_url(backend: Backend) {
    let database = backend.database().await;
    let app = TestApp::on(&database.url, Some("https://jira.example.net")).await;
    let info = app.get("/rest/api/3/serverInfo").send().await.json();
    assert_eq!(info["baseUrl"], "https://jira.example.net");
}

async fn myself_is_the_caller_with_their_email(backend: Backend) {
    let app = backend.app().await;
    for version in [2, 3] {
        let me = app
            .get(format!("/rest/api/{version}/myself"))
            .by(Who::Alice)
            .send()
            .await;
        me.assert_status(200);
        assert_eq!(
            me.json(),
            serde_json::json!({
                "self": format!("http://jira.test/rest/api/{version}/user?accountId={ALICE}"),
                "accountId": ALICE,
                "accountType": "atlassian",
                "emailAddress": "alice@example.com",
                "displayName": "Alice",
                "active": true,
                "timeZone": "Etc/UTC",
                "locale": "en_US",
            })
        );
    }
    app.get("/rest/api/3/myself")
        .send()
        .await
        .assert_status(401);
    app.get("/rest/api/3/myself")
        .by(Who::Deactivated)
        .send()
        .await
        .assert_status(401);
}

async fn user_shows_anyone_but_their_email_only_to_themselves(backend: Backend) {
    let app = backend.app().await;
    let other = app
        .get(format!("/rest/api/3/user?accountId={BOB}"))
        .by(Who::Alice)
        .send()
        .await;
    other.assert_status(200);
    let other = other.json();
    assert_eq!(other["accountId"], BOB);
    assert_eq!(other["displayName"], "Bob");
    assert_eq!(other["active"], true);
    assert_eq!(other["accountType"], "atlassian");
    assert!(other.get("emailAddress").is_none(), "{other}");

    let carol = app
        .get(format!("/rest/api/2/user?accountId={CAROL}"))
        .by(Who::Admin)
        .send()
        .await;
    assert_eq!(carol.json()["active"], false);

    let me = app
        .get(format!("/rest/api/2/user?accountId={ALICE}"))
        .by(Who::Alice)
        .send()
        .await;
    assert_eq!(me.json()["emailAddress"], "alice@example.com");
}

async fn user_refuses_what_jira_refuses(backend: Backend) {
    let app = backend.app().await;
    let missing = "Specified user does not exist or you do not have required permissions";
    for version in [2, 3] {
        let base = format!("/rest/api/{version}/user");
        app.get(format!("{base}?accountId={NOBODY}"))
            .by(Who::Alice)
            .send()
            .await
            .assert_error(404, missing);
        app.get(format!("{base}?accountId=a%00b"))
            .by(Who::Admin)
            .send()
            .await
            .assert_error(404, missing);
        app.get(&base)
            .by(Who::Alice)
            .send()
            .await
            .assert_error(400, "The 'accountId' query parameter needs to be provided.");
        app.get(format!("{base}?username=bob"))
            .by(Who::Alice)
            .send()
            .await
            .assert_error(
                400,
                "The query parameter 'username' is not supported in GDPR strict mode.",
            );
        app.get(format!("{base}?accountId={BOB}"))
            .send()
            .await
            .assert_status(401);
    }
}

async fn read_only_routes_refuse_other_methods_with_405(backend: Backend) {
    let app = backend.app().await;
    for path in [
        "/rest/api/3/serverInfo",
        "/rest/api/2/myself",
        "/rest/api/3/user",
        "/openapi.json",
    ] {
        let response = app.put(path).by(Who::Admin).json("{}").send().await;
        response.assert_error(405, "The method is not allowed for this resource.");
        assert_eq!(response.header("allow"), Some("GET, HEAD"), "{path}");
    }
}

/// The lookups apps make before writing a property: search by a prefix of the name or email,
/// and bulk by account id, paged as Jira pages them; emails only to their owner.
async fn users_are_searched_and_fetched_in_bulk(backend: Backend) {
    let app = backend.app().await;
    let names = |response: &TestResponse, list: &str| -> Vec<String> {
        let json = response.json();
        let list = if list.is_empty() { &json } else { &json[list] };
        list.as_array()
            .expect("an array")
            .iter()
            .map(|user| user["displayName"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    // Carol is deactivated: search leaves her out.
    for (query, expected) in [
        ("a", vec!["Ada", "Alice"]),
        ("BOB@", vec!["Bob"]),
        ("car", vec![]),
    ] {
        let found = app
            .get(format!("/rest/api/3/user/search?query={query}"))
            .by(Who::Alice)
            .send()
            .await;
        found.assert_status(200);
        assert_eq!(names(&found, ""), expected, "{query}");
    }
    let mine = app
        .get("/rest/api/3/user/search?query=ali")
        .by(Who::Alice)
        .send()
        .await;
    assert_eq!(mine.json()[0]["emailAddress"], "alice@example.com");
    let theirs = app
        .get("/rest/api/3/user/search?query=bob")
        .by(Who::Alice)
        .send()
        .await;
    assert!(theirs.json()[0].get("emailAddress").is_none());
    let by_id = app
        .get(format!("/rest/api/2/user/search?accountId={BOB}"))
        .by(Who::Alice)
        .send()
        .await;
    assert_eq!(names(&by_id, ""), ["Bob"]);
    let paged = app
        .get("/rest/api/3/user/search?query=a&startAt=1&maxResults=1")
        .by(Who::Alice)
        .send()
        .await;
    assert_eq!(names(&paged, ""), ["Alice"]);
    app.get("/rest/api/3/user/search")
        .by(Who::Alice)
        .send()
        .await
        .assert_status(400);
    app.get("/rest/api/3/user/search?query=a&maxResults=x")
        .by(Who::Alice)
        .send()
        .await
        .assert_status(400);
    app.get("/rest/api/3/user/search?query=a")
        .send()
        .await
        .assert_status(401);

    let uri = format!(
        "/rest/api/3/user/bulk?accountId={BOB}&accountId={NOBODY}&accountId={ALICE}&accountId={BOB}"
    );
    let bulk = app.get(&uri).by(Who::Alice).send().await;
    bulk.assert_status(200);
    assert_eq!(names(&bulk, "values"), ["Bob", "Alice"]);
    assert_eq!(
        (bulk.json()["total"].clone(), bulk.json()["isLast"].clone()),
        (2.into(), true.into())
    );
    let first = app
        .get(format!("{uri}&maxResults=1"))
        .by(Who::Alice)
        .send()
        .await;
    assert_eq!(names(&first, "values"), ["Bob"]);
    assert_eq!(first.json()["isLast"], false);
    assert_eq!(first.json()["maxResults"], 1);
    app.get("/rest/api/3/user/bulk")
        .by(Who::Alice)
        .send()
        .await
        .assert_status(400);
}

on_each_backend!(
    users_are_searched_and_fetched_in_bulk,
    server_info_says_cloud_to_anyone,
    server_info_refuses_wrong_credentials_and_names_right_ones,
    server_info_uses_the_public_url,
    myself_is_the_caller_with_their_email,
    user_shows_anyone_but_their_email_only_to_themselves,
    user_refuses_what_jira_refuses,
    read_only_routes_refuse_other_methods_with_405,
);
