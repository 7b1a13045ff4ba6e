//! Who may act on whose properties: every caller kind × every property operation × a target that
//! exists or does not, with the store checked after each refusal. (`route_access.rs` covers every
//! route, the admin API included, for the same callers.)

use crate::helpers::*;

#[derive(Debug, Clone, Copy)]
enum Operation {
    List,
    Get,
    Put,
    Delete,
}

impl Operation {
    const ALL: [Operation; 4] = [
        Operation::List,
        Operation::Get,
        Operation::Put,
        Operation::Delete,
    ];

    /// The status when the operation succeeds on the fixture's `existing` property.
    fn success(self) -> u16 {
        match self {
            Operation::List | Operation::Get | Operation::Put => 200,
            Operation::Delete => 204,
        }
    }

    async fn send(self, app: &TestApp, who: Who, target: &str) -> TestResponse {
        let property = property_uri(3, "existing", target);
        let request = match self {
            Operation::List => app.get(keys_uri(3, target)),
            Operation::Get => app.get(property),
            Operation::Put => app.put(property).json(r#"{"changed":true}"#),
            Operation::Delete => app.delete(property),
        };
        request.by(who).send().await
    }
}

/// Jira's rule, written out as a table rather than computed the way the server computes it.
fn expected(who: Who, target: &str, operation: Operation) -> u16 {
    match (who, target) {
        (Who::Anonymous | Who::WrongToken | Who::MalformedHeader | Who::Deactivated, _) => 401,
        (Who::Alice, ALICE) | (Who::Bob, BOB) => operation.success(),
        (Who::Alice | Who::Bob, _) => 403,
        (Who::Admin, NOBODY) => 404,
        (Who::Admin, _) => operation.success(),
    }
}

async fn every_caller_kind_gets_jiras_answer_for_every_operation(backend: Backend) {
    let callers = [
        Who::Anonymous,
        Who::WrongToken,
        Who::MalformedHeader,
        Who::Deactivated,
        Who::Alice,
        Who::Bob,
        Who::Admin,
    ];
    let app = backend.app().await;
    for who in callers {
        for target in [ALICE, BOB, CAROL, NOBODY] {
            for operation in Operation::ALL {
                let before = app.stored(target, "existing").await;
                let response = operation.send(&app, who, target).await;
                let status = expected(who, target, operation);
                let case = format!("{who:?} {operation:?} on {target}");
                assert_eq!(
                    response.status.as_u16(),
                    status,
                    "{case}: {}",
                    response.text()
                );
                let after = app.stored(target, "existing").await;
                match (status, operation) {
                    (200, Operation::Put) => {
                        assert_eq!(after.as_deref(), Some(r#"{"changed":true}"#), "{case}")
                    }
                    (204, Operation::Delete) => assert_eq!(after, None, "{case}"),
                    _ => assert_eq!(after, before, "{case}: a refused request changed the store"),
                }
                if status == 200 && matches!(operation, Operation::Get) {
                    assert!(
                        response.text().starts_with(r#"{"key":"existing","value":"#),
                        "{case}"
                    );
                }
                app.restore(target, "existing", before).await;
            }
        }
    }
}

async fn refusals_do_not_reveal_whether_a_user_exists(backend: Backend) {
    let app = backend.app().await;
    for operation in Operation::ALL {
        let existing = operation.send(&app, Who::Alice, BOB).await;
        let missing = operation.send(&app, Who::Alice, NOBODY).await;
        assert_eq!(existing.status, missing.status, "{operation:?}");
        assert_eq!(existing.body, missing.body, "{operation:?}");
    }
}

on_each_backend!(
    every_caller_kind_gets_jiras_answer_for_every_operation,
    refusals_do_not_reveal_whether_a_user_exists,
);
