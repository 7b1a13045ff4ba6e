//! What real Jira clients send besides the contract's minimum, each as they send it.

use crate::helpers::*;

/// Python's `json.dumps` spaces its separators, and some clients end the body with a newline.
async fn python_style_bodies_are_kept_without_their_newline(backend: Backend) {
    let app = backend.app().await;
    let uri = property_uri(3, "py", BOB);
    let body = "{\"theme\": \"dark\", \"sizes\": [1, 2.50, null]}\n";
    app.put(&uri)
        .by(Who::Bob)
        .json(body)
        .send()
        .await
        .assert_status(201);
    let read = app.get(&uri).by(Who::Bob).send().await;
    assert_eq!(
        read.text(),
        format!("{{\"key\":\"py\",\"value\":{}}}", body.trim_end())
    );
}

/// Session-based clients send `Content-Type: application/json` on every request, bodiless ones too.
async fn a_json_content_type_on_get_and_delete_is_ignored(backend: Backend) {
    let app = backend.app().await;
    let uri = property_uri(2, "existing", ALICE);
    let read = app
        .get(&uri)
        .by(Who::Alice)
        .header("content-type", "application/json")
        .send()
        .await;
    read.assert_status(200);
    let deleted = app
        .delete(&uri)
        .by(Who::Alice)
        .header("content-type", "application/json")
        .send()
        .await;
    deleted.assert_status(204);
}

/// pycontribs jira sends `X-Atlassian-Token: no-check` on every request.
async fn the_xsrf_opt_out_header_is_accepted(backend: Backend) {
    let app = backend.app().await;
    app.put(property_uri(2, "xsrf", ALICE))
        .by(Who::Alice)
        .header("x-atlassian-token", "no-check")
        .json("1")
        .send()
        .await
        .assert_status(201);
}

/// Clients migrating to account ids send `x-atlassian-force-account-id: true`.
async fn the_force_account_id_header_is_accepted(backend: Backend) {
    let app = backend.app().await;
    let response = app
        .get(keys_uri(3, ALICE))
        .by(Who::Alice)
        .header("x-atlassian-force-account-id", "true")
        .send()
        .await;
    response.assert_status(200);
    assert_eq!(response.json()["keys"][0]["key"], "existing");
}

/// Browsers' and HTTP libraries' wide `Accept` headers get JSON.
async fn a_wide_accept_header_gets_json(backend: Backend) {
    let app = backend.app().await;
    let response = app
        .get(property_uri(3, "existing", ALICE))
        .by(Who::Alice)
        .header("accept", "application/json,*/*;q=0.9")
        .send()
        .await;
    response.assert_status(200);
    assert_eq!(
        response.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
}

/// Clients put keys into the path as they are: `/` raw, spaces as HTTP libraries encode them.
async fn keys_with_slashes_and_spaces_arrive_whole(backend: Backend) {
    let app = backend.app().await;
    let raw = "team/settings for ui";
    let sent = raw.replace(' ', "%20");
    app.put(property_uri(3, &sent, ALICE))
        .by(Who::Alice)
        .json("\"v\"")
        .send()
        .await
        .assert_status(201);
    assert_eq!(app.stored(ALICE, raw).await.as_deref(), Some("\"v\""));
    let read = app
        .get(property_uri(3, &sent, ALICE))
        .by(Who::Alice)
        .send()
        .await;
    assert_eq!(read.json()["key"], raw);
}

on_each_backend!(
    python_style_bodies_are_kept_without_their_newline,
    a_json_content_type_on_get_and_delete_is_ignored,
    the_xsrf_opt_out_header_is_accepted,
    the_force_account_id_header_is_accepted,
    a_wide_accept_header_gets_json,
    keys_with_slashes_and_spaces_arrive_whole,
);
