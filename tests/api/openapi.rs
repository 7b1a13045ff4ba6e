//! `/openapi.json`: served, true to the route table, and true to Atlassian's description.

use std::collections::BTreeSet;

use jira_userprops::http::{OPENAPI_DOCUMENT, routes};
use serde_json::Value;

use crate::helpers::*;

const ATLASSIAN: &str = include_str!("../data/atlassian-userprops-openapi.json");
const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

fn document() -> Value {
    serde_json::from_str(OPENAPI_DOCUMENT).expect("the document is JSON")
}

/// Every (path, method) the document describes.
fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(move |method| (path.clone(), method.to_string()))
        })
        .collect()
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let routed: BTreeSet<(String, String)> = routes()
        .iter()
        .flat_map(|route| {
            let path = route.path.replace("{*key}", "{propertyKey}");
            route
                .methods
                .iter()
                .map(move |method| (path.clone(), method.to_lowercase()))
        })
        .collect();
    let documented = documented(&document());
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from /openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

/// The route table lists exactly what the router serves: every other method gets 405.
async fn routes_serve_exactly_their_listed_methods(backend: Backend) {
    let app = backend.app().await;
    for route in routes() {
        let path = route.path.replace("{*key}", "k");
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            let request = app
                .request(
                    method.parse().expect("method"),
                    format!("{path}?accountId={ALICE}"),
                )
                .by(Who::Alice)
                .json("1");
            let status = request.send().await.status.as_u16();
            let listed = route.methods.contains(&method);
            assert_eq!(status == 405, !listed, "{method} {path}: {status}");
        }
    }
}

/// Atlassian's four operations, under both versions, are ours word for word in what a client
/// relies on: parameters, request body, and every status Atlassian lists with its body schema.
#[test]
fn the_property_operations_agree_with_atlassians_document() {
    let ours = document();
    let theirs: Value = serde_json::from_str(ATLASSIAN).expect("reference is JSON");
    let mut compared = 0;
    for (path, item) in theirs["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let mine = &ours["paths"][path][method];
            let case = format!("{method} {path}");
            assert!(mine.is_object(), "{case} is missing");
            assert_eq!(
                mine["parameters"], operation["parameters"],
                "{case}: parameters"
            );
            assert_eq!(
                mine["requestBody"], operation["requestBody"],
                "{case}: request body"
            );
            for (status, response) in operation["responses"].as_object().expect("responses") {
                let my_response = &mine["responses"][status];
                assert!(
                    my_response.is_object(),
                    "{case}: status {status} is missing"
                );
                // Atlassian gives PUT's 200/201 a JSON body; Jira sends none, and so do we.
                let empty_success = method == "put" && (status == "200" || status == "201");
                if !empty_success {
                    let schema = &response["content"]["application/json"]["schema"];
                    if !schema.is_null() {
                        let my_schema = &my_response["content"]["application/json"]["schema"];
                        assert_eq!(my_schema, schema, "{case}: {status} body");
                    }
                }
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 8);
    for schema in [
        "EntityProperty",
        "PropertyKey",
        "PropertyKeys",
        "ErrorCollection",
    ] {
        assert_eq!(
            ours["components"]["schemas"][schema], theirs["components"]["schemas"][schema],
            "schema {schema}"
        );
    }
}

/// Error bodies that Atlassian's document leaves out are described.
#[test]
fn every_error_status_has_its_body_described() {
    let ours = document();
    for (path, method) in documented(&ours) {
        let responses = ours["paths"][&path][&method]["responses"]
            .as_object()
            .expect("responses");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                // JSON for the APIs; HTML for the consent flow's pages.
                let content = &response["content"];
                let schema = &content["application/json"]["schema"]["$ref"];
                let page = &content["text/html"]["schema"]["$ref"];
                assert!(
                    schema.is_string() || page.is_string(),
                    "{method} {path}: {status} has no body schema"
                );
            }
        }
    }
}

async fn the_document_is_served(backend: Backend) {
    let app = backend.app().await;
    let served = app.get("/openapi.json").send().await;
    served.assert_status(200);
    assert_eq!(
        served.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    assert_eq!(served.json(), document());
}

on_each_backend!(
    routes_serve_exactly_their_listed_methods,
    the_document_is_served
);
