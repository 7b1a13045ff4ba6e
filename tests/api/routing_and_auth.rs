//! Routing (404, 405) answers first, then authentication (401): Jira's first two checks.

use axum::http::Method;

use crate::helpers::*;

const UNAUTHENTICATED: &str =
    r#"{"message":"Client must be authenticated to access this resource.","status-code":401}"#;

async fn put_and_delete_without_a_key_get_405_before_authentication(backend: Backend) {
    let app = backend.app().await;
    for version in [2, 3] {
        for path in ["/user/properties", "/user/properties/"] {
            for method in [Method::PUT, Method::DELETE] {
                let uri = format!("/rest/api/{version}{path}?accountId={ALICE}");
                let response = app.request(method.clone(), &uri).json("1").send().await;
                response.assert_error(405, "The property key is not specified.");
                assert_eq!(
                    response.header("allow"),
                    Some("GET, HEAD"),
                    "{method} {uri}"
                );
            }
        }
    }
}

async fn other_methods_get_405_with_the_paths_allow_header(backend: Backend) {
    let app = backend.app().await;
    let cases = [
        (Method::POST, keys_uri(3, ALICE), "GET, HEAD"),
        (Method::PATCH, keys_uri(2, ALICE), "GET, HEAD"),
        (
            Method::POST,
            property_uri(3, "k", ALICE),
            "GET, HEAD, PUT, DELETE",
        ),
        (
            Method::PATCH,
            property_uri(2, "k", ALICE),
            "GET, HEAD, PUT, DELETE",
        ),
        (
            Method::OPTIONS,
            property_uri(3, "k", ALICE),
            "GET, HEAD, PUT, DELETE",
        ),
    ];
    for (method, uri, allow) in cases {
        let response = app
            .request(method.clone(), &uri)
            .by(Who::Alice)
            .send()
            .await;
        response.assert_error(405, "The method is not allowed for this resource.");
        assert_eq!(response.header("allow"), Some(allow), "{method} {uri}");
        assert_eq!(
            response.header("x-aaccountid"),
            None,
            "routing answers before authentication"
        );
    }
}

async fn missing_or_rejected_credentials_get_jiras_401(backend: Backend) {
    let app = backend.app().await;
    let cases = [
        (None, false),
        (Some("Digest username=\"alice\"".to_owned()), false),
        (Some("Basic %%%".to_owned()), false),
        (Some("Basic YWxpY2U=".to_owned()), false), // "alice": no colon, does not parse
        (Some("Bearer".to_owned()), false),
        (Some(basic("alice@example.com", "wrong")), true),
        (Some(basic("bob@example.com", "alice-token")), true),
        (Some(basic("alice@example.com", "ALICE-TOKEN")), true),
        (Some(basic("alice@example.com", "")), true),
        (Some(basic("carol@example.com", "carol-token")), true),
        (Some("Bearer wrong".to_owned()), true),
        (Some("Bearer carol-token".to_owned()), true),
    ];
    for (authorization, rejected) in cases {
        let mut request = app.get(keys_uri(3, ALICE));
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await;
        response.assert_status(401);
        assert_eq!(response.text(), UNAUTHENTICATED, "{authorization:?}");
        assert_eq!(
            response.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
        assert!(
            response.header("www-authenticate").is_some(),
            "{authorization:?}"
        );
        assert_eq!(response.header("x-aaccountid"), None, "{authorization:?}");
        let reason = response.header("x-seraph-loginreason");
        assert_eq!(
            reason,
            rejected.then_some("AUTHENTICATED_FAILED"),
            "{authorization:?}"
        );
    }
}

async fn credentials_are_accepted_in_every_documented_form(backend: Backend) {
    let app = backend.app().await;
    let forms = [
        basic("alice@example.com", "alice-token"),
        basic("ALICE@Example.COM", "alice-token"),
        basic("alice@example.com", "alice-second-token"),
        basic("alice@example.com", "alice-token").replace("Basic", "basic"),
        "Bearer alice-token".to_owned(),
        "bearer alice-second-token".to_owned(),
    ];
    for authorization in forms {
        let response = app
            .get(keys_uri(3, ALICE))
            .header("authorization", &authorization)
            .send()
            .await;
        response.assert_status(200);
        assert_eq!(
            response.header("x-aaccountid"),
            Some(ALICE),
            "{authorization}"
        );
    }
}

async fn authentication_comes_before_the_query(backend: Backend) {
    let app = backend.app().await;
    for uri in [
        "/rest/api/3/user/properties",
        "/rest/api/3/user/properties?username=alice",
    ] {
        app.get(uri).send().await.assert_status(401);
    }
}

async fn head_answers_refusals_like_get(backend: Backend) {
    let app = backend.app().await;
    let cases = [
        (keys_uri(3, ALICE), None, 401),
        (keys_uri(3, BOB), Some(Who::Alice), 403),
        (property_uri(3, "missing", ALICE), Some(Who::Alice), 404),
    ];
    for (uri, who, status) in cases {
        let mut request = app.request(Method::HEAD, &uri);
        if let Some(who) = who {
            request = request.by(who);
        }
        let response = request.send().await;
        response.assert_status(status);
        assert!(response.body.is_empty(), "{uri}");
        assert_eq!(
            response.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
    }
    let refused = app
        .request(Method::POST, "/rest/api/3/user/properties/")
        .send()
        .await;
    refused.assert_error(405, "The method is not allowed for this resource.");
    assert_eq!(refused.header("allow"), Some("GET, HEAD"));
}

/// A Host no client could mean (two of them, a path, a user name, a port past 65535) is a 400: it would
/// pick the site and go into every link. A refused PUT stores nothing.
async fn a_host_header_that_is_not_one_host_is_refused(backend: Backend) {
    let app = backend.app().await;
    for host in [
        "evil.example/x?",
        "user:pw@evil.example",
        "a b",
        "[::1",
        "h:99999",
        "h:abc",
        "h:+80",
        "a%zz",
    ] {
        let refused = app
            .put(property_uri(3, "hosted", ALICE))
            .host(host)
            .by(Who::Alice)
            .json("1")
            .send()
            .await;
        refused.assert_error_mentioning(400, "Host header");
    }
    let twice = app
        .get(keys_uri(3, ALICE))
        .header("host", "other.example")
        .by(Who::Alice)
        .send()
        .await;
    twice.assert_error_mentioning(400, "Host header");
    // An absolute-form target's authority counts as the Host does.
    let absolute = app
        .get(format!("http://user:pw@evil.example{}", keys_uri(3, ALICE)))
        .by(Who::Alice)
        .send()
        .await;
    absolute.assert_error_mentioning(400, "Host header");
    // And the Host beside an absolute-form target is checked all the same.
    let beside = app
        .get(format!("http://jira.test{}", keys_uri(3, ALICE)))
        .header("host", "other.example")
        .by(Who::Alice)
        .send()
        .await;
    beside.assert_error_mentioning(400, "Host header");
    app.get(property_uri(3, "hosted", ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(404);
    // An empty Host names no host: the links fall back to `localhost`.
    for host in [
        "jira.example:8080",
        "[::1]:8080",
        "127.0.0.1",
        "JIRA.example.",
        "",
    ] {
        app.get(keys_uri(3, ALICE))
            .host(host)
            .by(Who::Alice)
            .send()
            .await
            .assert_status(200);
    }
}

on_each_backend!(
    a_host_header_that_is_not_one_host_is_refused,
    put_and_delete_without_a_key_get_405_before_authentication,
    other_methods_get_405_with_the_paths_allow_header,
    missing_or_rejected_credentials_get_jiras_401,
    credentials_are_accepted_in_every_documented_form,
    authentication_comes_before_the_query,
    head_answers_refusals_like_get,
);
