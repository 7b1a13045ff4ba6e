//! The four operations, their bodies and the headers every response carries.

use axum::http::Method;
use jira_userprops::domain::SiteKey;

use crate::helpers::*;

async fn a_new_property_is_created_then_updated_then_read_then_deleted(backend: Backend) {
    let app = backend.app().await;
    let uri = property_uri(3, "theme", ALICE);

    let created = app
        .put(&uri)
        .by(Who::Alice)
        .json(r#"{"mode":"dark"}"#)
        .send()
        .await;
    created.assert_status(201);
    assert!(created.body.is_empty());

    let updated = app
        .put(&uri)
        .by(Who::Alice)
        .json(r#"{"mode":"light"}"#)
        .send()
        .await;
    updated.assert_status(200);
    assert!(updated.body.is_empty());

    let read = app.get(&uri).by(Who::Alice).send().await;
    read.assert_status(200);
    assert_eq!(read.text(), r#"{"key":"theme","value":{"mode":"light"}}"#);
    assert_eq!(
        read.header("content-type"),
        Some("application/json;charset=UTF-8")
    );

    let deleted = app.delete(&uri).by(Who::Alice).send().await;
    deleted.assert_status(204);
    assert!(deleted.body.is_empty());

    app.get(&uri)
        .by(Who::Alice)
        .send()
        .await
        .assert_error(404, "The property theme does not exist.");
    app.delete(&uri)
        .by(Who::Alice)
        .send()
        .await
        .assert_error(404, "The property theme does not exist.");
}

async fn a_property_deleted_and_written_again_is_created_anew(backend: Backend) {
    let app = backend.app().await;
    let uri = property_uri(3, "existing", ALICE);
    app.delete(&uri)
        .by(Who::Alice)
        .send()
        .await
        .assert_status(204);
    app.put(&uri)
        .by(Who::Alice)
        .json("1")
        .send()
        .await
        .assert_status(201);
}

async fn keys_are_listed_with_self_links_in_code_point_order(backend: Backend) {
    let app = backend.app().await;
    for key in ["b", "a", "B", "é", "z", "ä", "aa", "Z", "~", "𝄞"] {
        app.put(property_uri(2, key, BOB))
            .by(Who::Bob)
            .json("1")
            .send()
            .await
            .assert_status(201);
    }
    let list = app.get(keys_uri(2, BOB)).by(Who::Bob).send().await;
    list.assert_status(200);
    let keys: Vec<String> = list.json()["keys"]
        .as_array()
        .expect("keys is an array")
        .iter()
        .map(|entry| entry["key"].as_str().expect("key is text").to_owned())
        .collect();
    assert_eq!(
        keys,
        [
            "B", "Z", "a", "aa", "b", "existing", "z", "~", "ä", "é", "𝄞"
        ]
    );
    assert!(
        list.text().starts_with(&format!(
            r#"{{"keys":[{{"self":"http://jira.test/rest/api/2/user/properties/B?accountId={BOB}","key":"B"}},"#
        )),
        "{}",
        list.text()
    );
}

async fn a_user_without_properties_has_an_empty_key_list(backend: Backend) {
    let app = backend.app().await;
    let list = app.get(keys_uri(3, ADMIN)).by(Who::Admin).send().await;
    list.assert_status(200);
    assert_eq!(list.text(), r#"{"keys":[]}"#);
    assert_eq!(
        list.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
}

async fn a_trailing_slash_lists_the_keys(backend: Backend) {
    let app = backend.app().await;
    for version in [2, 3] {
        let list = app
            .get(format!(
                "/rest/api/{version}/user/properties/?accountId={ALICE}"
            ))
            .by(Who::Alice)
            .send()
            .await;
        list.assert_status(200);
        assert_eq!(list.json()["keys"][0]["key"], "existing");
    }
}

async fn self_links_escape_everything_but_unreserved_characters(backend: Backend) {
    let app = backend.app().await;
    app.put(property_uri(3, "a/b%20c:ü~-._", ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await
        .assert_status(201);
    let list = app
        .get(keys_uri(3, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .json();
    let entry = &list["keys"][0];
    assert_eq!(entry["key"], "a/b c:ü~-._");
    assert_eq!(
        entry["self"],
        format!(
            "http://jira.test/rest/api/3/user/properties/a%2Fb%20c%3A%C3%BC~-._?accountId={ALICE}"
        )
    );
}

async fn self_links_escape_the_account_id(backend: Backend) {
    let app = backend.app().await;
    let odd = "557058:0a1b/c d";
    let store = app.store.clone();
    let seed = format!(
        r#"{{"users":[{{"accountId":"{odd}","email":"odd@example.com","apiTokens":["odd-token"]}}],
            "properties":[]}}"#
    );
    let seed =
        jira_userprops::seed::parse(std::path::Path::new("odd.json"), &seed).expect("valid seed");
    store
        .apply_seed(SiteKey::DEFAULT, &seed.data)
        .await
        .expect("seed applies");
    let uri = "/rest/api/3/user/properties/k?accountId=557058%3A0a1b%2Fc%20d";
    app.put(uri)
        .by(Who::Admin)
        .json("1")
        .send()
        .await
        .assert_status(201);
    let list = app
        .get("/rest/api/3/user/properties?accountId=557058:0a1b/c+d")
        .by(Who::Admin)
        .send()
        .await;
    assert_eq!(
        list.json()["keys"][0]["self"],
        "http://jira.test/rest/api/3/user/properties/k?accountId=557058%3A0a1b%2Fc%20d"
    );
}

async fn self_links_use_the_configured_public_url(backend: Backend) {
    let database = backend.database().await;
    let app = TestApp::on(&database.url, Some("https://jira.example.net/base")).await;
    let list = app
        .get(keys_uri(2, ALICE))
        .by(Who::Alice)
        .send()
        .await
        .json();
    assert_eq!(
        list["keys"][0]["self"],
        format!(
            "https://jira.example.net/base/rest/api/2/user/properties/existing?accountId={ALICE}"
        )
    );
}

async fn both_api_versions_share_one_store(backend: Backend) {
    let app = backend.app().await;
    app.put(property_uri(2, "shared", ALICE))
        .by(Who::Alice)
        .json("[1]")
        .send()
        .await
        .assert_status(201);
    let read = app
        .get(property_uri(3, "shared", ALICE))
        .by(Who::Alice)
        .send()
        .await;
    assert_eq!(read.text(), r#"{"key":"shared","value":[1]}"#);
    app.delete(property_uri(3, "shared", ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(204);
    app.get(property_uri(2, "shared", ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(404);
}

async fn every_response_carries_a_request_id_and_no_cache_headers(backend: Backend) {
    let app = backend.app().await;
    let responses = [
        app.get(keys_uri(3, ALICE)).by(Who::Alice).send().await,
        app.get(keys_uri(3, ALICE)).send().await,
        app.get("/nowhere").send().await,
        app.put(keys_uri(3, ALICE)).send().await,
        app.get(property_uri(3, "missing", ALICE))
            .by(Who::Alice)
            .send()
            .await,
    ];
    let mut ids = std::collections::HashSet::new();
    for response in &responses {
        let id = response
            .header("x-arequestid")
            .expect("X-ARequestId is present");
        assert!(!id.is_empty());
        assert!(ids.insert(id.to_owned()), "request ids repeat: {id}");
        assert_eq!(
            response.header("cache-control"),
            Some("no-cache, no-store, no-transform")
        );
    }
}

async fn responses_after_authentication_name_the_caller(backend: Backend) {
    let app = backend.app().await;
    let cases = [
        (app.get(keys_uri(3, ALICE)).by(Who::Alice).send().await, 200),
        (app.get(keys_uri(3, BOB)).by(Who::Alice).send().await, 403),
        (
            app.get(property_uri(3, "missing", ALICE))
                .by(Who::Alice)
                .send()
                .await,
            404,
        ),
        (
            app.get("/rest/api/3/user/properties")
                .by(Who::Alice)
                .send()
                .await,
            400,
        ),
    ];
    for (response, status) in cases {
        response.assert_status(status);
        assert_eq!(
            response.header("x-aaccountid"),
            Some(ALICE),
            "status {status}"
        );
    }
    let admin = app.get(keys_uri(3, BOB)).by(Who::Admin).send().await;
    assert_eq!(admin.header("x-aaccountid"), Some(ADMIN));
}

async fn head_answers_like_get_without_a_body(backend: Backend) {
    let app = backend.app().await;
    for uri in [
        property_uri(3, "existing", ALICE),
        keys_uri(3, ALICE),
        property_uri(3, "missing", ALICE),
    ] {
        let get = app.get(&uri).by(Who::Alice).send().await;
        let head = app.request(Method::HEAD, &uri).by(Who::Alice).send().await;
        assert_eq!(head.status, get.status, "{uri}");
        assert!(head.body.is_empty(), "{uri}");
        for name in [
            "content-type",
            "content-length",
            "x-aaccountid",
            "cache-control",
        ] {
            assert_eq!(head.header(name), get.header(name), "{uri}: {name}");
        }
    }
}

async fn unknown_paths_get_404_in_jiras_shape(backend: Backend) {
    let app = backend.app().await;
    for uri in [
        "/",
        "/rest/api/4/user/properties?accountId=x",
        "/rest/api/3/user/property",
        "/rest/api/3/users",
    ] {
        app.get(uri)
            .by(Who::Alice)
            .send()
            .await
            .assert_error(404, "The requested resource does not exist.");
    }
}

on_each_backend!(
    a_new_property_is_created_then_updated_then_read_then_deleted,
    a_property_deleted_and_written_again_is_created_anew,
    keys_are_listed_with_self_links_in_code_point_order,
    a_user_without_properties_has_an_empty_key_list,
    a_trailing_slash_lists_the_keys,
    self_links_escape_everything_but_unreserved_characters,
    self_links_escape_the_account_id,
    self_links_use_the_configured_public_url,
    both_api_versions_share_one_store,
    every_response_carries_a_request_id_and_no_cache_headers,
    responses_after_authentication_name_the_caller,
    head_answers_like_get_without_a_body,
    unknown_paths_get_404_in_jiras_shape,
);
