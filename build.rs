//! The commit the binary is built from, for the `jira_userprops_build_info` metric: the
//! `JIRA_USERPROPS_COMMIT` variable (the image's build sets it), else git's HEAD, else
//! "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=JIRA_USERPROPS_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = std::env::var("JIRA_USERPROPS_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(|| {
            let output = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let commit = String::from_utf8(output.stdout).ok()?;
            (output.status.success() && !commit.trim().is_empty()).then(|| commit.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=JIRA_USERPROPS_COMMIT={commit}");
}
