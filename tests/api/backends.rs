//! The storage backends under test: a new database per test, and the macro that stamps each
//! test out once per backend.

use std::path::Path;
use std::sync::Arc;

use jira_userprops::store::DatabaseOptions;
use tokio::sync::OnceCell;

use crate::helpers::TestApp;

/// Where PostgreSQL tests find their server; unset, they are skipped.
pub const POSTGRES_URL_VAR: &str = "JIRA_USERPROPS_TEST_POSTGRES_URL";

/// Stamps out `async fn name(backend: Backend)` tests once per backend, as
/// `sqlite::name` and `postgres::name`. A test fn left out of the list is dead code, which the
/// lints refuse.
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::Backend::postgres() {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}
pub(crate) use on_each_backend;

/// A storage backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// PostgreSQL when its URL is configured; otherwise says once, visibly, that it is skipped.
    pub fn postgres() -> Option<Self> {
        if std::env::var_os(POSTGRES_URL_VAR).is_some() {
            return Some(Backend::Postgres);
        }
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            // Written past the test harness's capture, so that it shows in a passing run.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "PostgreSQL tests skipped: {POSTGRES_URL_VAR} is not set"
            );
        });
        None
    }

    /// A new, empty database of this backend: a SQLite file in a temporary folder, or a
    /// PostgreSQL schema of its own.
    pub async fn database(self) -> TestDatabase {
        match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite:{}", dir.path().join("props.db").display());
                TestDatabase {
                    url,
                    _dir: Some(Arc::new(dir)),
                }
            }
            Backend::Postgres => TestDatabase {
                url: postgres_schema().await,
                _dir: None,
            },
        }
    }

    /// An app over a new database with [`FIXTURE`] loaded (SQLite in memory, for speed).
    pub async fn app(self) -> TestApp {
        match self {
            Backend::Sqlite => TestApp::on("sqlite::memory:", None).await,
            Backend::Postgres => {
                let database = self.database().await;
                TestApp::on(&database.url, None).await
            }
        }
    }
}

/// A database that lives as long as this value.
#[derive(Clone)]
pub struct TestDatabase {
    pub url: String,
    _dir: Option<Arc<tempfile::TempDir>>,
}

/// Test schemas are named `jup_t_{pid}_{n}`; those of finished test runs are dropped first.
async fn postgres_schema() -> String {
    use sqlx::Connection as _;
    static CLEANED: OnceCell<()> = OnceCell::const_new();
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let base = std::env::var(POSTGRES_URL_VAR).expect("PostgreSQL URL is set");
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {POSTGRES_URL_VAR}: {e}"));
    CLEANED
        .get_or_init(|| async {
            let schemas: Vec<String> = sqlx::query_scalar(
                r"SELECT nspname FROM pg_namespace WHERE nspname LIKE 'jup\_t\_%'",
            )
            .fetch_all(&mut admin)
            .await
            .expect("schemas listed");
            for schema in schemas {
                let pid = schema
                    .split('_')
                    .nth(2)
                    .and_then(|pid| pid.parse::<u32>().ok());
                if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                        .execute(&mut admin)
                        .await
                        .expect("stale schema dropped");
                }
            }
        })
        .await;
    let schema = format!(
        "jup_t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("schema created");
    let _ = admin.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

/// Small pools: many test apps share one PostgreSQL server.
pub fn test_database_options() -> DatabaseOptions {
    DatabaseOptions {
        pool_size: 4,
        ..DatabaseOptions::default()
    }
}

/// Plays a race in a fixed order on PostgreSQL: a session locks the rows `rows` names (`FROM
/// ... WHERE ...`), `request` starts and its statement waits on their lock, and the rows are
/// deleted under it. Returns what `request` answered. `rows` is the test's own text.
pub async fn deleted_under<T: Send + 'static>(
    url: &str,
    rows: &'static str,
    request: impl Future<Output = T> + Send + 'static,
) -> T {
    use sqlx::Connection as _;
    let mut session = sqlx::PgConnection::connect(url).await.expect("connects");
    let held = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; SELECT 1 {rows} FOR UPDATE"
    )))
    .execute(&mut session)
    .await
    .expect("locked");
    assert!(held.rows_affected() > 0, "{rows} found nothing");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut session)
        .await
        .expect("pid");
    let answer = tokio::spawn(request);
    let mut watcher = sqlx::PgConnection::connect(url).await.expect("connects");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
        )
        .bind(pid)
        .fetch_one(&mut watcher)
        .await
        .expect("counted");
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no session waits on the rows {rows}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DELETE {rows}; COMMIT")))
        .execute(&mut session)
        .await
        .expect("deleted");
    answer.await.expect("answered")
}
