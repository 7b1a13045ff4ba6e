//! The order of checks after authentication: query, permission, user, key and body, property.

use axum::http::Method;

use crate::helpers::*;

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
    gdpr_strict_mode_refuses_username_and_user_key,
    the_account_id_must_be_given_and_never_defaults_to_the_caller,
    a_repeated_account_id_counts_its_first_value,
    permission_is_checked_before_the_user_the_key_and_the_body,
    a_missing_user_is_reported_before_the_key_and_the_body,
    the_key_is_checked_before_the_body,
    the_media_type_is_checked_before_the_body_itself,
    an_account_id_that_cannot_exist_is_not_found_or_forbidden,
    a_missing_property_is_the_last_check,
);
