//! Who may use which route: every route, every kind of caller, a target that exists or does not,
//! written out as one table. Secrets never reach the metrics or the journal.

use axum::http::Method;

use crate::helpers::*;

/// The kinds of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    WrongToken,
    Deactivated,
    /// Alice, acting on her own record.
    Myself,
    /// Alice, acting on someone else's.
    AnotherUser,
    /// A Jira administrator (Administer Jira), by Basic credentials.
    JiraAdmin,
    /// The admin API's bearer token.
    AdminToken,
}

const CALLERS: [Caller; 7] = [
    Caller::Anonymous,
    Caller::WrongToken,
    Caller::Deactivated,
    Caller::Myself,
    Caller::AnotherUser,
    Caller::JiraAdmin,
    Caller::AdminToken,
];

impl Caller {
    fn authorization(self) -> Option<String> {
        match self {
            Caller::Anonymous => None,
            Caller::WrongToken => Who::WrongToken.authorization(),
            Caller::Deactivated => Who::Deactivated.authorization(),
            Caller::Myself | Caller::AnotherUser => Who::Alice.authorization(),
            Caller::JiraAdmin => Who::Admin.authorization(),
            Caller::AdminToken => Some(format!("Bearer {ADMIN_TOKEN}")),
        }
    }

    /// The account the request names: the caller's own for `Myself`, else one that exists or not.
    fn target(self, exists: bool) -> &'static str {
        match (self, exists) {
            (Caller::Myself, _) => ALICE,
            (_, true) => BOB,
            (_, false) => NOBODY,
        }
    }
}

/// Every route the server has, by what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    ListKeys,
    GetProperty,
    PutProperty,
    DeleteProperty,
    ServerInfo,
    CurrentUser,
    User,
    AdminListUsers,
    AdminCreateUser,
    AdminGetUser,
    AdminPatchUser,
    AdminDeleteUser,
    AdminListTokens,
    AdminCreateToken,
    AdminRevokeToken,
    AdminReset,
    AdminExport,
    AdminImport,
    AdminRequests,
    AdminClearRequests,
    AdminFaults,
    AdminSetFaults,
    AdminClearFaults,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
}

const ROUTES: [Route; 27] = [
    Route::ListKeys,
    Route::GetProperty,
    Route::PutProperty,
    Route::DeleteProperty,
    Route::ServerInfo,
    Route::CurrentUser,
    Route::User,
    Route::AdminListUsers,
    Route::AdminCreateUser,
    Route::AdminGetUser,
    Route::AdminPatchUser,
    Route::AdminDeleteUser,
    Route::AdminListTokens,
    Route::AdminCreateToken,
    Route::AdminRevokeToken,
    Route::AdminReset,
    Route::AdminExport,
    Route::AdminImport,
    Route::AdminRequests,
    Route::AdminClearRequests,
    Route::AdminFaults,
    Route::AdminSetFaults,
    Route::AdminClearFaults,
    Route::Healthz,
    Route::Readyz,
    Route::Metrics,
    Route::OpenApi,
];

impl Route {
    /// Method, path and body for a target account.
    fn request(self, target: &str) -> (Method, String, Option<&'static str>) {
        let property = property_uri(3, "existing", target);
        let admin_user = format!("/_admin/users/{target}");
        match self {
            Route::ListKeys => (Method::GET, keys_uri(3, target), None),
            Route::GetProperty => (Method::GET, property, None),
            Route::PutProperty => (Method::PUT, property, Some(r#"{"changed":true}"#)),
            Route::DeleteProperty => (Method::DELETE, property, None),
            Route::ServerInfo => (Method::GET, "/rest/api/3/serverInfo".into(), None),
            Route::CurrentUser => (Method::GET, "/rest/api/3/myself".into(), None),
            Route::User => (
                Method::GET,
                format!("/rest/api/3/user?accountId={target}"),
                None,
            ),
            Route::AdminListUsers => (Method::GET, "/_admin/users".into(), None),
            Route::AdminCreateUser => (
                Method::POST,
                "/_admin/users".into(),
                Some(r#"{"accountId": "new-1", "email": "new@example.com"}"#),
            ),
            Route::AdminGetUser => (Method::GET, admin_user, None),
            Route::AdminPatchUser => (Method::PATCH, admin_user, Some(r#"{"displayName": "X"}"#)),
            Route::AdminDeleteUser => (Method::DELETE, admin_user, None),
            Route::AdminListTokens => (Method::GET, format!("{admin_user}/tokens"), None),
            Route::AdminCreateToken => (Method::POST, format!("{admin_user}/tokens"), None),
            Route::AdminRevokeToken => (Method::DELETE, format!("{admin_user}/tokens/ffff"), None),
            Route::AdminReset => (Method::POST, "/_admin/reset".into(), None),
            Route::AdminExport => (Method::GET, "/_admin/snapshot".into(), None),
            Route::AdminImport => (
                Method::PUT,
                "/_admin/snapshot".into(),
                Some(r#"{"users": [], "properties": []}"#),
            ),
            Route::AdminRequests => (Method::GET, "/_admin/requests".into(), None),
            Route::AdminClearRequests => (Method::DELETE, "/_admin/requests".into(), None),
            Route::AdminFaults => (Method::GET, "/_admin/faults".into(), None),
            Route::AdminSetFaults => (
                Method::PUT,
                "/_admin/faults".into(),
                Some(r#"{"latency": {"minMs": 0, "maxMs": 0}}"#),
            ),
            Route::AdminClearFaults => (Method::DELETE, "/_admin/faults".into(), None),
            Route::Healthz => (Method::GET, "/healthz".into(), None),
            Route::Readyz => (Method::GET, "/readyz".into(), None),
            Route::Metrics => (Method::GET, "/metrics".into(), None),
            Route::OpenApi => (Method::GET, "/openapi.json".into(), None),
        }
    }

    fn is_admin_api(self) -> bool {
        format!("{self:?}").starts_with("Admin")
    }

    fn names_a_target(self) -> bool {
        let (_, uri, _) = self.request(BOB);
        uri.contains(BOB)
    }

    fn is_property(self) -> bool {
        matches!(
            self,
            Route::ListKeys | Route::GetProperty | Route::PutProperty | Route::DeleteProperty
        )
    }
}

/// The table: what each caller gets on each route, for a target that exists or not.
fn expected(route: Route, caller: Caller, exists: bool) -> u16 {
    use Caller::*;
    use Route::*;
    let signed_in = matches!(caller, Myself | AnotherUser | JiraAdmin);
    match route {
        Healthz | Readyz | Metrics | OpenApi => 200,
        _ if route.is_admin_api() => match caller {
            AdminToken => match (route, exists) {
                (AdminGetUser | AdminPatchUser | AdminListTokens | AdminCreateToken, false) => 404,
                (AdminDeleteUser, false) | (AdminRevokeToken, _) => 404,
                (AdminCreateToken, true) | (AdminCreateUser, _) => 201,
                (AdminDeleteUser | AdminReset | AdminImport, true) => 204,
                (AdminClearRequests | AdminClearFaults, _) => 204,
                (AdminReset | AdminImport, false) => 204,
                _ => 200,
            },
            // A Jira user, even an administrator, is not the admin API's caller.
            _ if signed_in => 403,
            _ => 401,
        },
        ServerInfo => match caller {
            // Jira answers serverInfo without credentials, but refuses bad ones.
            Anonymous => 200,
            _ if signed_in => 200,
            _ => 401,
        },
        CurrentUser => {
            if signed_in {
                200
            } else {
                401
            }
        }
        // Jira's user lookup: every signed-in user may look any user up (Browse users).
        User => match caller {
            _ if !signed_in => 401,
            _ if exists || caller == Myself => 200,
            _ => 404,
        },
        _ => match caller {
            _ if !signed_in => 401,
            Myself => {
                if route == DeleteProperty {
                    204
                } else {
                    200
                }
            }
            AnotherUser => 403,
            _ if !exists => 404,
            _ => {
                if route == DeleteProperty {
                    204
                } else {
                    200
                }
            }
        },
    }
}

async fn send(app: &TestApp, route: Route, caller: Caller, exists: bool) -> TestResponse {
    let (method, uri, body) = route.request(caller.target(exists));
    let mut request = app.request(method, uri);
    if let Some(authorization) = caller.authorization() {
        request = request.header("authorization", &authorization);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_caller_as_the_table_says() {
    let mut mismatches = Vec::new();
    for route in ROUTES {
        for caller in CALLERS {
            for exists in [true, false] {
                // A fresh app per case: admin routes reset, import and delete.
                let app = Backend::Sqlite.app().await;
                let target = caller.target(exists);
                let before = app.stored(target, "existing").await;
                let response = send(&app, route, caller, exists).await;
                let want = expected(route, caller, exists);
                let got = response.status.as_u16();
                if got != want {
                    mismatches.push(format!(
                        "{route:?} by {caller:?} (target exists: {exists}): {got}, want {want}: {}",
                        response.text()
                    ));
                }
                if route.is_property() && !(200..300).contains(&got) {
                    let after = app.stored(target, "existing").await;
                    assert_eq!(
                        after, before,
                        "{route:?} by {caller:?}: a refusal changed the store"
                    );
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// No route answers a non-admin differently for an account that exists and one that does not,
/// except Jira's user lookup, which Jira opens to every signed-in user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_tells_a_non_admin_whether_another_user_exists() {
    let app = Backend::Sqlite.app().await;
    for route in ROUTES {
        if matches!(route, Route::User | Route::Metrics) {
            continue;
        }
        for caller in [
            Caller::Anonymous,
            Caller::WrongToken,
            Caller::Deactivated,
            Caller::AnotherUser,
        ] {
            let existing = send(&app, route, caller, true).await;
            let missing = send(&app, route, caller, false).await;
            assert_eq!(existing.status, missing.status, "{route:?} by {caller:?}");
            // Bodies of routes without a target may differ anyway (serverInfo's clock).
            if route.names_a_target() {
                assert_eq!(existing.body, missing.body, "{route:?} by {caller:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_journal_never_hold_a_secret() {
    let app = Backend::Sqlite.app().await;
    for route in ROUTES {
        for caller in CALLERS {
            if !matches!(
                route,
                Route::AdminReset | Route::AdminImport | Route::AdminClearRequests
            ) {
                send(&app, route, caller, true).await;
            }
        }
    }
    let metrics = app.get("/metrics").send().await.text().to_owned();
    let journal = app
        .admin(Method::GET, "/_admin/requests")
        .send()
        .await
        .text()
        .to_owned();
    assert!(
        journal.contains("/rest/api/3/user/properties"),
        "the journal kept requests"
    );
    let secrets = [
        "alice-token",
        "bob-token",
        "ada-token",
        "carol-token",
        "not-the-token",
        ADMIN_TOKEN,
    ];
    for secret in secrets {
        for (name, text) in [("metrics", &metrics), ("journal", &journal)] {
            assert!(!text.contains(secret), "{name} holds {secret}");
        }
    }
    for caller in CALLERS {
        if let Some(authorization) = caller.authorization() {
            let credential = authorization.split_once(' ').map_or("", |(_, c)| c);
            assert!(
                !metrics.contains(credential),
                "metrics hold {caller:?}'s header"
            );
            assert!(
                !journal.contains(credential),
                "journal holds {caller:?}'s header"
            );
        }
    }
}
