//! Property keys as paths carry them: everything after the prefix, decoded once, within Jira's rules.

use crate::helpers::*;

async fn keys_take_everything_after_the_prefix_decoded_once(backend: Backend) {
    let app = backend.app().await;
    let cases = [
        ("a/b", "a/b"),
        ("a%2Fb", "a/b"),
        ("%2541", "%41"),
        ("a%20b", "a b"),
        ("jira.issue:view_1-x", "jira.issue:view_1-x"),
        (".", "."),
        ("..", ".."),
        ("a/../b", "a/../b"),
        ("%C3%BC%E2%82%AC", "ü€"),
        ("ü€", "ü€"),
        ("a//b/", "a//b/"),
        ("/x", "/x"),
        ("//", "//"),
        ("%", "%"),
    ];
    for (raw, key) in cases {
        let app = app.clone();
        app.put(property_uri(3, raw, ALICE))
            .by(Who::Alice)
            .json("true")
            .send()
            .await
            .assert_status(201);
        assert_eq!(
            app.stored(ALICE, key).await.as_deref(),
            Some("true"),
            "{raw}"
        );
        let read = app
            .get(property_uri(3, raw, ALICE))
            .by(Who::Alice)
            .send()
            .await;
        read.assert_status(200);
        assert_eq!(read.json()["key"], key, "{raw}");
        app.delete(property_uri(3, raw, ALICE))
            .by(Who::Alice)
            .send()
            .await
            .assert_status(204);
    }
}

async fn a_raw_slash_and_an_encoded_slash_name_the_same_key(backend: Backend) {
    let app = backend.app().await;
    app.put(property_uri(3, "a/b", ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await
        .assert_status(201);
    app.put(property_uri(3, "a%2Fb", ALICE))
        .by(Who::Alice)
        .json("2")
        .send()
        .await
        .assert_status(200);
    assert_eq!(app.stored_keys(ALICE).await, ["a/b", "existing"]);
}

async fn keys_of_255_characters_are_accepted_and_longer_ones_refused(backend: Backend) {
    let app = backend.app().await;
    let longest = "é".repeat(255);
    app.put(property_uri(3, &longest, ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await
        .assert_status(201);
    assert_eq!(app.stored(ALICE, &longest).await.as_deref(), Some("1"));
    let longer = format!("{longest}e");
    app.put(property_uri(3, &longer, ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await
        .assert_error(
            400,
            "The property key cannot be longer than 255 characters.",
        );
    assert_eq!(app.stored_keys(ALICE).await, ["existing", longest.as_str()]);
}

async fn bad_keys_are_refused_and_change_nothing(backend: Backend) {
    let app = backend.app().await;
    let cases = [
        ("a%00b", "The property key contains an invalid character."),
        ("a%1Fb", "The property key contains an invalid character."),
        ("a%7Fb", "The property key contains an invalid character."),
        ("%0A", "The property key contains an invalid character."),
        ("%FF", "The property key is not valid UTF-8."),
        ("%C3", "The property key is not valid UTF-8."),
        (
            &"k".repeat(256),
            "The property key cannot be longer than 255 characters.",
        ),
        (
            &"%C3%A9".repeat(256),
            "The property key cannot be longer than 255 characters.",
        ),
    ];
    for (raw, message) in cases {
        let uri = property_uri(3, raw, ALICE);
        app.put(&uri)
            .by(Who::Alice)
            .json("1")
            .send()
            .await
            .assert_error(400, message);
        app.get(&uri)
            .by(Who::Alice)
            .send()
            .await
            .assert_error(400, message);
        app.delete(&uri)
            .by(Who::Alice)
            .send()
            .await
            .assert_error(400, message);
        assert_eq!(app.stored_keys(ALICE).await, ["existing"], "{raw}");
    }
}

on_each_backend!(
    keys_take_everything_after_the_prefix_decoded_once,
    a_raw_slash_and_an_encoded_slash_name_the_same_key,
    keys_of_255_characters_are_accepted_and_longer_ones_refused,
    bad_keys_are_refused_and_change_nothing,
);
