//! The README's walk-through, run as written with curl against the binary on the example seed:
//! every command must print what the comment under it says.

use std::process::Command;

use crate::binary::{EXAMPLE_SEED, Server};

const README: &str = include_str!("../../README.md");

/// The address the README's commands name; the test's server listens elsewhere.
const README_ADDRESS: &str = "127.0.0.1:8080";

/// One command of the walk-through and the lines the README says it prints.
#[derive(Debug)]
struct Step {
    title: String,
    command: String,
    expected: Vec<String>,
}

/// The walk-through's shell block, with `address` for the README's: its variable assignments,
/// and its steps.
fn walk_through(address: &str) -> (String, Vec<Step>) {
    let section = README
        .split_once("\n## Walk-through\n")
        .expect("the README has a walk-through")
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .expect("the walk-through has a shell block")
        .0
        .replace(README_ADDRESS, address);
    let mut assignments = String::new();
    let mut steps: Vec<Step> = Vec::new();
    let mut title = String::new();
    // Comments right under a command are its output; after a blank line, the next step's title.
    let mut under_command = false;
    for line in block.lines() {
        let pending = steps.last_mut().filter(|step| step.command.ends_with('\\'));
        if let Some(step) = pending {
            step.command.push('\n');
            step.command.push_str(line);
        } else if line.trim().is_empty() {
            under_command = false;
        } else if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.strip_prefix(' ').unwrap_or(comment);
            match steps.last_mut() {
                Some(step) if under_command => step.expected.push(comment.to_owned()),
                _ => comment.clone_into(&mut title),
            }
        } else if title.is_empty() {
            assignments.push_str(line);
            assignments.push('\n');
        } else {
            under_command = true;
            steps.push(Step {
                title: std::mem::take(&mut title),
                command: line.to_owned(),
                expected: Vec::new(),
            });
        }
    }
    (assignments, steps)
}

/// A README line matches when equal, or, where it holds `...`, when the output line starts with
/// what comes before it (the rest varies from run to run).
fn matches(expected: &str, actual: &str) -> bool {
    match expected.split_once("...") {
        Some((fixed, _)) => actual.starts_with(fixed),
        None => actual == expected,
    }
}

#[test]
fn the_readme_walk_through_prints_what_its_comments_say() {
    if Command::new("curl").arg("--version").output().is_err() {
        println!("skipped: the README's walk-through needs curl, which is not installed");
        return;
    }
    let mut server = Server::start(&["--database-url", "sqlite::memory:", "--seed", EXAMPLE_SEED]);
    let (assignments, steps) = walk_through(&server.address().to_string());
    assert!(steps.len() >= 8, "the walk-through was read: {steps:#?}");
    for step in &steps {
        assert!(!step.expected.is_empty(), "{step:#?} says what it prints");
        let output = Command::new("bash")
            .arg("-c")
            .arg(format!("set -eu\n{assignments}{}", step.command))
            .output()
            .expect("bash runs");
        assert!(output.status.success(), "{step:#?}: {output:?}");
        let printed = String::from_utf8_lossy(&output.stdout).replace('\r', "");
        let printed: Vec<&str> = printed.lines().collect();
        let expected = &step.expected;
        let agree = printed.len() == expected.len()
            && expected
                .iter()
                .zip(&printed)
                .all(|(expected, actual)| matches(expected, actual));
        assert!(
            agree,
            "{}\nREADME says:\n{}\nprinted:\n{}",
            step.title,
            expected.join("\n"),
            printed.join("\n")
        );
    }
}
