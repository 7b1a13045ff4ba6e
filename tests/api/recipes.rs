//! The CI recipes of `docs/ci-recipes.md`, run without a container engine: each recipe's
//! environment is read out of the document and the binary is started with exactly that, as the
//! image would start it, and must serve and pass the image's `HEALTHCHECK`.

use std::collections::BTreeMap;
use std::process::Command;

use regex::Regex;

use crate::binary::{BOB_ID, Server, bob_request};
use crate::socket::exchange;

const RECIPES: &str = include_str!("../../docs/ci-recipes.md");

/// Each recipe (a `## ` section with a code block): its title, its text, and the
/// `JIRA_USERPROPS_*` variables its code sets, in YAML (`KEY: value`, `KEY: '...'`) or in code
/// (`("KEY", "value")`, `{ KEY: "value" }`, `"KEY": "value"`).
fn recipes() -> Vec<(String, String, BTreeMap<String, String>)> {
    let assignment = Regex::new(
        r##"(JIRA_USERPROPS_[A-Z_]+)"?\s*[:,]\s*(?:'([^']*)'|"((?:[^"\\]|\\.)*)"|([^\s'"#,)}][^\n#]*))"##,
    )
    .expect("a pattern");
    RECIPES
        .split("\n## ")
        .skip(1)
        .filter(|section| section.contains("```"))
        .map(|section| {
            let (title, body) = section.split_once('\n').unwrap_or((section, ""));
            let mut environment = BTreeMap::new();
            for found in assignment.captures_iter(body) {
                let value = found
                    .get(2)
                    .or(found.get(3))
                    .or(found.get(4))
                    .map_or("", |value| value.as_str())
                    .replace("\\\"", "\"");
                environment.insert(found[1].to_owned(), value.trim().to_owned());
            }
            (title.to_owned(), body.to_owned(), environment)
        })
        .collect()
}

fn get(address: std::net::SocketAddr, path: &str, authorization: &str) -> String {
    exchange(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\n{authorization}Connection: close\r\n\r\n"),
    )
}

#[test]
fn every_recipe_waits_for_healthz_and_its_environment_serves() {
    let recipes = recipes();
    assert_eq!(
        recipes.len(),
        7,
        "{:?}",
        recipes.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    for (title, body, environment) in recipes {
        assert!(
            body.contains("/healthz") || body.contains("healthcheck"),
            "{title}"
        );
        assert!(
            body.contains("ghcr.io/jira-userprops/jira-userprops:"),
            "{title} names the image"
        );
        // The image has no shell, and Docker runs these through /bin/sh: never healthy.
        let code: String = body.split("```").skip(1).step_by(2).collect();
        assert!(
            !code.contains("--health-cmd") && !code.contains("CMD-SHELL"),
            "{title}: a health check by shell"
        );
        let token = environment
            .get("JIRA_USERPROPS_ADMIN_TOKEN")
            .unwrap_or_else(|| panic!("{title} sets the admin token: {environment:?}"))
            .clone();
        // The image sets where the address is written, for its HEALTHCHECK to find the port.
        let folder = tempfile::tempdir().expect("a folder");
        let address_file = folder.path().join("address");
        let mut pairs: Vec<(&str, &str)> = environment
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        pairs.push((
            "JIRA_USERPROPS_ADDRESS_FILE",
            address_file.to_str().expect("UTF-8"),
        ));
        // As the image runs it, but on a free port and without a volume.
        let mut server = Server::start_with(&["--database-url", "sqlite::memory:"], &pairs);
        let address = server.address();
        let healthcheck = Command::new(env!("CARGO_BIN_EXE_jira-userprops"))
            .arg("healthcheck")
            .envs(pairs.iter().copied())
            .output()
            .expect("healthcheck runs");
        assert!(
            healthcheck.status.success(),
            "{title}: the image's HEALTHCHECK fails: {}",
            String::from_utf8_lossy(&healthcheck.stderr)
        );
        let health = get(address, "/healthz", "");
        assert!(health.starts_with("HTTP/1.1 200"), "{title}: {health}");
        let users = get(
            address,
            "/_admin/users",
            &format!("Authorization: Bearer {token}\r\n"),
        );
        assert!(users.starts_with("HTTP/1.1 200"), "{title}: {users}");
        if environment.contains_key("JIRA_USERPROPS_SEED_JSON") {
            let theme = exchange(address, &bob_request("GET", "theme", None));
            assert!(
                theme.ends_with(r#"{"key":"theme","value":{"mode":"dark"}}"#),
                "{title}: {theme}"
            );
            assert!(users.contains(BOB_ID), "{title}");
        }
    }
}
