//! The order of checks: routing, authentication, query, permission, user, key and body, property.

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

async fn gdpr_strict_mode_refuses_username_and_user_key(backend: Backend) {
    let app = backend.app().await;
    let cases = [
        (format!("?accountId={ALICE}&username=alice"), "username"),
        ("?username=alice".to_owned(), "username"),
        (format!("?userKey=alice&accountId={ALICE}"), "userKey"),
        ("?userKey=x&username=y".to_owned(), "username"),
        ("?userKey=&username=".to_owned(), "username"),
    ];
    for (query, parameter) in cases {
        for path in [
            "/rest/api/3/user/properties",
            "/rest/api/2/user/properties/existing",
        ] {
            let message =
                format!("The query parameter '{parameter}' is not supported in GDPR strict mode.");
            app.get(format!("{path}{query}"))
                .by(Who::Alice)
                .send()
                .await
                .assert_error(400, &message);
        }
    }
}

async fn the_account_id_must_be_given_and_never_defaults_to_the_caller(backend: Backend) {
    let app = backend.app().await;
    for query in ["", "?", "?accountId=", "?accountid=x", "?other=1"] {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let uri = format!("/rest/api/3/user/properties/existing{query}");
            let response = app
                .request(method.clone(), &uri)
                .by(Who::Alice)
                .json("1")
                .send()
                .await;
            response.assert_error(400, "The 'accountId' query parameter needs to be provided.");
        }
    }
    assert_eq!(
        app.stored(ALICE, "existing").await.as_deref(),
        Some(r#"{"owner":"alice"}"#)
    );
}

async fn a_repeated_account_id_counts_its_first_value(backend: Backend) {
    let app = backend.app().await;
    let response = app
        .get(format!(
            "/rest/api/3/user/properties/existing?accountId={ALICE}&accountId={BOB}"
        ))
        .by(Who::Alice)
        .send()
        .await;
    assert_eq!(
        response.text(),
        r#"{"key":"existing","value":{"owner":"alice"}}"#
    );
    let response = app
        .get(format!(
            "/rest/api/3/user/properties/existing?accountId={BOB}&accountId={ALICE}"
        ))
        .by(Who::Alice)
        .send()
        .await;
    response.assert_status(403);
}

async fn permission_is_checked_before_the_user_the_key_and_the_body(backend: Backend) {
    let app = backend.app().await;
    let forbidden = "You do not have permission to access the properties of this user.";
    let bad_key = "/rest/api/3/user/properties/bad%00key";
    for target in [BOB, NOBODY] {
        app.get(format!("{bad_key}?accountId={target}"))
            .by(Who::Alice)
            .send()
            .await
            .assert_error(403, forbidden);
        app.put(format!("{bad_key}?accountId={target}"))
            .by(Who::Alice)
            .body("not json")
            .send()
            .await
            .assert_error(403, forbidden);
    }
}

async fn a_missing_user_is_reported_before_the_key_and_the_body(backend: Backend) {
    let app = backend.app().await;
    let message = format!("The user with account ID '{NOBODY}' does not exist.");
    app.get(keys_uri(3, NOBODY))
        .by(Who::Admin)
        .send()
        .await
        .assert_error(404, &message);
    app.get(format!(
        "/rest/api/3/user/properties/bad%00key?accountId={NOBODY}"
    ))
    .by(Who::Admin)
    .send()
    .await
    .assert_error(404, &message);
    app.put(format!("/rest/api/3/user/properties/k?accountId={NOBODY}"))
        .by(Who::Admin)
        .body("")
        .send()
        .await
        .assert_error(404, &message);
    app.delete(property_uri(3, "k", NOBODY))
        .by(Who::Admin)
        .send()
        .await
        .assert_error(404, &message);
}

async fn the_key_is_checked_before_the_body(backend: Backend) {
    let app = backend.app().await;
    app.put(format!(
        "/rest/api/3/user/properties/bad%01key?accountId={ALICE}"
    ))
    .by(Who::Alice)
    .header("content-type", "text/plain")
    .body("")
    .send()
    .await
    .assert_error(400, "The property key contains an invalid character.");
}

async fn the_media_type_is_checked_before_the_body_itself(backend: Backend) {
    let app = backend.app().await;
    let uri = property_uri(3, "k", ALICE);
    for body in ["", "   ", "{", "1"] {
        app.put(&uri)
            .by(Who::Alice)
            .body(body)
            .send()
            .await
            .assert_error(
                415,
                "The request body must be sent with 'Content-Type: application/json'.",
            );
    }
    let too_long = format!("[{}]", "1,".repeat(20_000));
    app.put(&uri)
        .by(Who::Alice)
        .header("content-type", "text/plain")
        .body(too_long)
        .send()
        .await
        .assert_status(415);
}

async fn an_account_id_that_cannot_exist_is_not_found_or_forbidden(backend: Backend) {
    let app = backend.app().await;
    let long = "x".repeat(129);
    for (raw, shown) in [
        ("a%00b", "a\u{0}b"),
        ("%0A", "\n"),
        (long.as_str(), long.as_str()),
    ] {
        let message = format!("The user with account ID '{shown}' does not exist.");
        for uri in [
            format!("/rest/api/3/user/properties?accountId={raw}"),
            format!("/rest/api/3/user/properties/k?accountId={raw}"),
        ] {
            app.get(&uri)
                .by(Who::Admin)
                .send()
                .await
                .assert_error(404, &message);
            app.get(&uri).by(Who::Alice).send().await.assert_status(403);
        }
        app.put(format!("/rest/api/3/user/properties/k?accountId={raw}"))
            .by(Who::Admin)
            .json("1")
            .send()
            .await
            .assert_error(404, &message);
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

async fn a_missing_property_is_the_last_check(backend: Backend) {
    let app = backend.app().await;
    app.get(property_uri(3, "nope", BOB))
        .by(Who::Admin)
        .send()
        .await
        .assert_error(404, "The property nope does not exist.");
    app.delete(property_uri(2, "nope", BOB))
        .by(Who::Admin)
        .send()
        .await
        .assert_error(404, "The property nope does not exist.");
}

on_each_backend!(
    an_account_id_that_cannot_exist_is_not_found_or_forbidden,
    head_answers_refusals_like_get,
    put_and_delete_without_a_key_get_405_before_authentication,
    other_methods_get_405_with_the_paths_allow_header,
    missing_or_rejected_credentials_get_jiras_401,
    credentials_are_accepted_in_every_documented_form,
    authentication_comes_before_the_query,
    gdpr_strict_mode_refuses_username_and_user_key,
    the_account_id_must_be_given_and_never_defaults_to_the_caller,
    a_repeated_account_id_counts_its_first_value,
    permission_is_checked_before_the_user_the_key_and_the_body,
    a_missing_user_is_reported_before_the_key_and_the_body,
    the_key_is_checked_before_the_body,
    the_media_type_is_checked_before_the_body_itself,
    a_missing_property_is_the_last_check,
);
