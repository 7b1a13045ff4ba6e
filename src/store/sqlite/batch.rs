//! One group commit's statements: a batch of writes folded into padded multi-row upserts and
//! deletes that touch each key once, and what each write did. Past 350 lines only with its tests.

use std::collections::HashMap;
use std::sync::LazyLock;

use sqlx::{Row as _, SqliteConnection};

use super::writer::{Change, Write};
use crate::domain::{SiteKey, Written};

/// Rows per statement: a group is cut into chunks of at most the largest, each padded to the
/// next of these sizes, so few statements are ever prepared.
const CHUNKS: [usize; 8] = [128, 64, 32, 16, 8, 4, 2, 1];
const LARGEST_CHUNK: usize = CHUNKS[0];

/// What one write did, once committed.
#[derive(Clone, Copy)]
pub(super) enum Outcome {
    Set(Option<Written>),
    Delete(bool),
}

/// Commits every write, atomically; the outcomes line up with `writes`.
///
/// Consecutive writes of one kind form a group, and a group touches each key once: a key written
/// several times gets its last value, the first write learns from the database whether it
/// created the key, and the later ones updated it (as they would, run one after another). A key
/// deleted several times is deleted by the first; the later ones find nothing.
pub(super) async fn apply(
    conn: &mut SqliteConnection,
    writes: &[Write],
) -> sqlx::Result<Vec<Outcome>> {
    let mut groups = groups(writes);
    // One statement is a transaction of its own: one round trip to SQLite's thread, not three.
    match groups.as_mut_slice() {
        [group] if group.rows.len() <= LARGEST_CHUNK => group.run(conn).await?,
        groups => {
            let mut tx = sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?;
            for group in groups {
                group.run(&mut tx).await?;
            }
            tx.commit().await?;
        }
    }
    let mut outcomes = Vec::with_capacity(writes.len());
    for group in &groups {
        group.outcomes(&mut outcomes);
    }
    Ok(outcomes)
}

/// Splits `writes` into runs of one kind, each key once per run.
fn groups(writes: &[Write]) -> Vec<Group<'_>> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < writes.len() {
        let set = writes[start].is_set();
        let end = writes[start..]
            .iter()
            .position(|write| write.is_set() != set)
            .map_or(writes.len(), |offset| start + offset);
        groups.push(Group::new(set, &writes[start..end]));
        start = end;
    }
    groups
}

/// A run of writes of one kind, as the rows its statements carry.
struct Group<'a> {
    set: bool,
    /// Each key once, in the order first written, with the value it is left with.
    rows: Vec<Row<'a>>,
    row_of: HashMap<(SiteKey, &'a str, &'a str), usize>,
    /// Per write, its row.
    write_rows: Vec<usize>,
    /// Per row, what came back: the revision written, or 0 for a row deleted.
    done: Vec<Option<i64>>,
}

impl<'a> Group<'a> {
    fn new(set: bool, writes: &'a [Write]) -> Self {
        let mut rows: Vec<Row<'a>> = Vec::with_capacity(writes.len());
        let mut row_of: HashMap<(SiteKey, &str, &str), usize> =
            HashMap::with_capacity(writes.len());
        let mut write_rows = Vec::with_capacity(writes.len());
        for write in writes {
            let (site, account_id, key) = write.target();
            let value = match &write.change {
                Change::Set { value, .. } => value.as_str(),
                Change::Delete { .. } => "",
            };
            let row = match row_of.get(&(site, account_id, key)) {
                Some(&row) => {
                    rows[row].value = Some(value);
                    row
                }
                None => {
                    row_of.insert((site, account_id, key), rows.len());
                    rows.push(Row {
                        site: Some(site.0),
                        account_id: Some(account_id),
                        key: Some(key),
                        value: Some(value),
                    });
                    rows.len() - 1
                }
            };
            write_rows.push(row);
        }
        let done = vec![None; rows.len()];
        Self {
            set,
            rows,
            row_of,
            write_rows,
            done,
        }
    }

    /// Runs the group's statements, at most [`LARGEST_CHUNK`] rows each.
    async fn run(&mut self, conn: &mut SqliteConnection) -> sqlx::Result<()> {
        for chunk in self.rows.chunks(LARGEST_CHUNK) {
            let statements: &'static [String] = if self.set { &UPSERTS } else { &DELETES };
            // The smallest prepared size that holds the chunk; the rest is padding.
            let (index, size) = CHUNKS
                .iter()
                .enumerate()
                .rev()
                .find(|&(_, &size)| size >= chunk.len())
                .map_or((0, LARGEST_CHUNK), |(index, &size)| (index, size));
            let mut query = sqlx::query(statements[index].as_str());
            for row in chunk
                .iter()
                .chain(std::iter::repeat_n(&PADDING, size - chunk.len()))
            {
                query = query.bind(row.site).bind(row.account_id).bind(row.key);
                if self.set {
                    query = query.bind(row.value);
                }
            }
            for returned in query.fetch_all(&mut *conn).await? {
                let target: (SiteKey, &str, &str) = (
                    SiteKey(returned.try_get(0)?),
                    returned.try_get(1)?,
                    returned.try_get(2)?,
                );
                let row = *self.row_of.get(&target).ok_or_else(|| {
                    sqlx::Error::Protocol("a returned row matches no write".into())
                })?;
                self.done[row] = Some(if self.set { returned.try_get(3)? } else { 0 });
            }
        }
        Ok(())
    }

    /// What each write did: only the first write of a key learns from the database; the rest
    /// follow it.
    fn outcomes(&self, outcomes: &mut Vec<Outcome>) {
        let mut answered = vec![false; self.rows.len()];
        for &row in &self.write_rows {
            let first = !std::mem::replace(&mut answered[row], true);
            let found = self.done[row];
            outcomes.push(match (self.set, first, found) {
                // No row came back: the user does not exist.
                (true, _, None) => Outcome::Set(None),
                (true, true, Some(0)) => Outcome::Set(Some(Written::Created)),
                (true, _, Some(_)) => Outcome::Set(Some(Written::Updated)),
                (false, true, found) => Outcome::Delete(found.is_some()),
                (false, false, _) => Outcome::Delete(false),
            });
        }
    }
}

/// One row of a multi-row statement.
struct Row<'a> {
    site: Option<i64>,
    account_id: Option<&'a str>,
    key: Option<&'a str>,
    value: Option<&'a str>,
}

/// Fills a statement up to its size: NULL names no user and matches no row.
const PADDING: Row<'static> = Row {
    site: None,
    account_id: None,
    key: None,
    value: None,
};

static UPSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    CHUNKS
        .iter()
        .map(|&rows| {
            format!(
                "INSERT INTO properties (site, account_id, key, value)
                 SELECT column1, column2, column3, column4 FROM (VALUES {})
                 WHERE EXISTS (
                     SELECT 1 FROM users WHERE users.site = column1 AND users.account_id = column2
                 )
                 ON CONFLICT (site, account_id, key)
                 DO UPDATE SET value = excluded.value, revision = properties.revision + 1
                 RETURNING site, account_id, key, revision",
                vec!["(?, ?, ?, ?)"; rows].join(", ")
            )
        })
        .collect()
});

static DELETES: LazyLock<Vec<String>> = LazyLock::new(|| {
    CHUNKS
        .iter()
        .map(|&rows| {
            format!(
                "DELETE FROM properties WHERE (site, account_id, key) IN (VALUES {})
                 RETURNING site, account_id, key",
                vec!["(?, ?, ?)"; rows].join(", ")
            )
        })
        .collect()
});

#[cfg(test)]
pub(super) mod tests {
    use sqlx::SqlitePool;
    use tokio::sync::oneshot;

    use super::*;
    use crate::domain::{PropertyKey, PropertyValue};

    /// A database in memory with one user, `a`.
    pub(in crate::store::sqlite) async fn database() -> SqlitePool {
        let pool = SqlitePool::connect("sqlite::memory:").await.expect("opens");
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .expect("migrates");
        sqlx::query("INSERT INTO users (site, account_id, email, email_key, display_name) VALUES (0, 'a', 'a@x', 'a@x', 'A')")
            .execute(&pool)
            .await
            .expect("user added");
        pool
    }

    pub(in crate::store::sqlite) fn write(account_id: &str, key: &str, change: Change) -> Write {
        Write {
            site: SiteKey::DEFAULT,
            account_id: account_id.to_owned(),
            key: PropertyKey::new(key.to_owned()).expect("valid key"),
            change,
        }
    }

    fn set(account_id: &str, key: &str, value: &str) -> Write {
        let value = PropertyValue::from_stored(value.to_owned());
        let done = oneshot::channel().0;
        write(account_id, key, Change::Set { value, done })
    }

    fn delete(account_id: &str, key: &str) -> Write {
        let done = oneshot::channel().0;
        write(account_id, key, Change::Delete { done })
    }

    fn written(outcomes: &[Outcome]) -> Vec<String> {
        outcomes
            .iter()
            .map(|outcome| match outcome {
                Outcome::Set(Some(Written::Created)) => "created".to_owned(),
                Outcome::Set(Some(Written::Updated)) => "updated".to_owned(),
                Outcome::Set(None) => "no user".to_owned(),
                Outcome::Delete(existed) => format!("deleted {existed}"),
            })
            .collect()
    }

    pub(in crate::store::sqlite) async fn stored(pool: &SqlitePool) -> Vec<(String, String)> {
        sqlx::query_as("SELECT key, value FROM properties ORDER BY key")
            .fetch_all(pool)
            .await
            .expect("read")
    }

    #[tokio::test]
    async fn a_padded_statement_writes_only_its_rows() {
        let pool = database().await;
        let mut conn = pool.acquire().await.expect("connection");
        // Three keys go in a statement of four rows; a fifth write repeats a key.
        let writes = [
            set("a", "k1", "1"),
            set("a", "k2", "2"),
            set("nobody", "k3", "3"),
            set("a", "k4", "4"),
            set("a", "k1", "5"),
        ];
        let outcomes = apply(&mut conn, &writes).await.expect("committed");
        assert_eq!(
            written(&outcomes),
            ["created", "created", "no user", "created", "updated"]
        );
        assert_eq!(
            stored(&pool).await,
            [
                ("k1".to_owned(), "5".to_owned()),
                ("k2".to_owned(), "2".to_owned()),
                ("k4".to_owned(), "4".to_owned())
            ]
        );
        let deletes = [delete("a", "k2"), delete("a", "k2"), delete("a", "gone")];
        let outcomes = apply(&mut conn, &deletes).await.expect("committed");
        assert_eq!(
            written(&outcomes),
            ["deleted true", "deleted false", "deleted false"]
        );
        assert_eq!(stored(&pool).await.len(), 2);
    }

    #[tokio::test]
    async fn writes_of_both_kinds_commit_together_in_order() {
        let pool = database().await;
        let mut conn = pool.acquire().await.expect("connection");
        let writes = [
            set("a", "k", "1"),
            delete("a", "k"),
            set("a", "k", "2"),
            set("a", "other", "3"),
        ];
        let outcomes = apply(&mut conn, &writes).await.expect("committed");
        assert_eq!(
            written(&outcomes),
            ["created", "deleted true", "created", "created"]
        );
        assert_eq!(
            stored(&pool).await,
            [
                ("k".to_owned(), "2".to_owned()),
                ("other".to_owned(), "3".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn a_group_larger_than_one_statement_is_split() {
        let pool = database().await;
        let mut conn = pool.acquire().await.expect("connection");
        let writes: Vec<Write> = (0..LARGEST_CHUNK + 3)
            .map(|i| set("a", &format!("k{i:04}"), "1"))
            .collect();
        let outcomes = apply(&mut conn, &writes).await.expect("committed");
        assert!(
            written(&outcomes)
                .iter()
                .all(|outcome| outcome == "created")
        );
        assert_eq!(stored(&pool).await.len(), LARGEST_CHUNK + 3);
    }
}
