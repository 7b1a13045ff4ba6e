//! When the ground under SQLite gives way: bad files at start, a file another process locks, a
//! full disk. Nothing acknowledged is lost, the answers say what happened, and service comes
//! back without a restart. (PostgreSQL's restarts and cut connections are `postgres.rs`'.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use crate::helpers::*;

fn digest(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).expect("the file")).to_vec()
}

/// Runs `migrate` on the database file, as `user` (with a copy of the binary that user may
/// run) when given: (exit code, output, seconds).
fn migrate(file: &Path, user: Option<(&str, &Path)>) -> (Option<i32>, String, f64) {
    let binary = env!("CARGO_BIN_EXE_jira-userprops");
    let url = format!("sqlite:{}", file.display());
    let mut command = match user {
        Some((user, binary)) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    let started = Instant::now();
    let output = command
        .args(["--database-url", &url, "migrate"])
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), text, started.elapsed().as_secs_f64())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

#[test]
fn bad_files_at_start_are_named_refused_at_once_and_left_as_they_are() {
    let folder = tempfile::tempdir().expect("a folder");
    let made = folder.path().join("made.db");
    assert_eq!(migrate(&made, None).0, Some(0));
    let wal = std::fs::metadata(folder.path().join("made.db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "migrate leaves the file whole, its WAL folded in");
    let valid = std::fs::read(&made).expect("a database");

    let garbage = folder.path().join("garbage.db");
    std::fs::write(
        &garbage,
        b"this is not an SQLite database, and never was".repeat(100),
    )
    .expect("written");
    let truncated = folder.path().join("truncated.db");
    std::fs::write(&truncated, &valid[..valid.len() / 2]).expect("written");
    for (file, words) in [
        (&garbage, "file is not a database"),
        (&truncated, "malformed"),
    ] {
        let before = digest(file);
        let (code, output, seconds) = migrate(file, None);
        assert_eq!(code, Some(1), "{output}");
        assert!(output.contains(&file.display().to_string()), "{output}");
        assert!(output.contains(words), "{output}");
        assert!(seconds < 5.0, "no retries for a bad file: {seconds} s");
        assert_eq!(digest(file), before, "the file is never repaired");
    }

    // A database a newer binary migrated.
    let newer = folder.path().join("newer.db");
    std::fs::write(&newer, &valid).expect("copied");
    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(async {
            let url = format!("sqlite:{}", newer.display());
            let mut connection = SqliteConnection::connect(&url).await.expect("opens");
            sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (29991231000000, 'from a newer binary', TRUE, X'00', 1)",
        )
        .execute(&mut connection)
        .await
        .expect("inserted");
            connection.close().await.expect("closed");
        });
    let before = digest(&newer);
    let (code, output, _) = migrate(&newer, None);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains(&newer.display().to_string()), "{output}");
    assert!(
        output.contains("schema is version 29991231000000, newer than this binary knows"),
        "{output}"
    );
    assert_eq!(digest(&newer), before);

    // A folder the server may not write, and a file it may read but not write.
    if is_root() {
        let chmod = |mode: &str, target: &Path| {
            let done = Command::new("chmod").arg(mode).arg(target).status();
            assert!(done.is_ok_and(|s| s.success()));
        };
        // The build's folders may be closed to other users: run a copy from an open one.
        let bin = tempfile::tempdir().expect("a folder");
        let copy = bin.path().join("jira-userprops");
        std::fs::copy(env!("CARGO_BIN_EXE_jira-userprops"), &copy).expect("copied");
        chmod("755", bin.path());
        chmod("755", &copy);
        let nobody = Some(("nobody", copy.as_path()));
        let locked_out = tempfile::tempdir().expect("a folder");
        let path = locked_out.path();
        std::fs::copy(&made, path.join("readonly.db")).expect("copied");
        chmod("755", path);
        chmod("644", &path.join("readonly.db"));
        let (code, output, _) = migrate(&path.join("readonly.db"), nobody);
        assert_eq!(code, Some(1), "{output}");
        assert!(output.contains("readonly.db cannot be written"), "{output}");
        chmod("555", path);
        let (code, output, _) = migrate(&path.join("new.db"), nobody);
        assert_eq!(code, Some(1), "{output}");
        assert!(output.contains("new.db"), "{output}");
        assert!(!path.join("new.db").exists());
        chmod("755", path);
    } else {
        println!("skipped: read-only folders (needs root, to run the server as another user)");
    }
}

/// A server over an SQLite file, in this process.
async fn file_app(path: &Path) -> TestApp {
    TestApp::on(&format!("sqlite:{}", path.display()), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_for_a_file_another_process_locks_then_get_503_and_service_comes_back() {
    let folder = tempfile::tempdir().expect("a folder");
    let file = folder.path().join("locked.db");
    let app = file_app(&file).await;
    app.put(property_uri(3, "before", ALICE))
        .by(Who::Alice)
        .json("1")
        .send()
        .await
        .assert_status(201);

    let url = format!("sqlite:{}", file.display());
    let mut other = SqliteConnection::connect(&url).await.expect("opens");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .expect("locked");
    // Held past the busy timeout (10 s): the write waits that long, then 503.
    let started = Instant::now();
    let refused = app
        .put(property_uri(3, "during", ALICE))
        .by(Who::Alice)
        .json("2")
        .send()
        .await;
    let waited = started.elapsed();
    refused.assert_error(503, "The database is unavailable. Try again later.");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    app.get(property_uri(3, "before", ALICE))
        .by(Who::Alice)
        .send()
        .await
        .assert_status(200);
    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("unlocked");

    // Held a little while: the write waits, then succeeds.
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .expect("locked");
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        sqlx::query("ROLLBACK")
            .execute(&mut other)
            .await
            .expect("unlocked");
        other
    });
    app.put(property_uri(3, "after", ALICE))
        .by(Who::Alice)
        .json("3")
        .send()
        .await
        .assert_status(201);
    release.await.expect("released");
    assert_eq!(app.stored(ALICE, "before").await.as_deref(), Some("1"));
    assert_eq!(app.stored(ALICE, "during").await, None);
    assert_eq!(app.stored(ALICE, "after").await.as_deref(), Some("3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_507_keeps_reads_and_heals_when_space_is_freed() {
    if !is_root() {
        println!("skipped: a full disk (needs root, to mount a small tmpfs)");
        return;
    }
    let folder = tempfile::tempdir().expect("a folder");
    let mount = folder.path();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mount)
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        println!("skipped: a full disk (cannot mount a tmpfs here)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mount);
    let app = file_app(&mount.join("full.db")).await;
    let value = format!("\"{}\"", "v".repeat(30_000));
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for index in 0..400 {
        let key = format!("k{index}");
        let response = app
            .put(property_uri(3, &key, ALICE))
            .by(Who::Alice)
            .json(value.clone())
            .send()
            .await;
        match response.status.as_u16() {
            201 => acknowledged.push(key),
            507 => {
                refused = Some(response);
                break;
            }
            other => panic!("{key}: {other} {}", response.text()),
        }
    }
    let refused = refused.expect("the disk filled up");
    refused.assert_error(
        507,
        "The disk holding the database is full: writes are refused until space is freed.",
    );
    assert!(!acknowledged.is_empty());
    for key in &acknowledged {
        app.get(property_uri(3, key, ALICE))
            .by(Who::Alice)
            .send()
            .await
            .assert_status(200);
    }
    // Space comes back: deleting values frees pages once the WAL is checkpointed; a bigger
    // mount is quicker and as good a test of healing without a restart.
    let remounted = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(mount)
        .status();
    assert!(remounted.is_ok_and(|s| s.success()));
    app.put(property_uri(3, "after", ALICE))
        .by(Who::Alice)
        .json(value.clone())
        .send()
        .await
        .assert_status(201);
    for key in acknowledged
        .iter()
        .chain(std::iter::once(&"after".to_owned()))
    {
        assert_eq!(
            app.stored(ALICE, key).await.as_deref(),
            Some(value.as_str()),
            "{key}"
        );
    }
}
