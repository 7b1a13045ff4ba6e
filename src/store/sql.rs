//! The SQL both dialects speak, written once: each statement and the Rust around it.
//!
//! The functions are generic over sqlx's [`Database`] rather than kept as a table of statement
//! texts, because what repeated between the backends was as much the Rust as the SQL: binding
//! the same values, folding rows into users, accounts and snapshots, the seed's rules. Written
//! once here, a fix lands on both backends or on neither. The bounds sit on one `impl` block,
//! so no function repeats them; callers name a concrete database and never see them.
//!
//! Each function takes a connection (or, where it must be atomic, a transaction it commits).
//! Which pool the connection comes from, how a transaction begins (SQLite's `BEGIN IMMEDIATE`,
//! PostgreSQL's SERIALIZABLE with retries) and what a backend remembers stay with the backend.
//! The few spellings the dialects do not share are the constants of [`Dialect`].
//!
//! Longer than most files, and one idea: every statement both backends run. Splitting it would
//! repeat the bounds on a second `impl` block for no gain in reading.

use std::marker::PhantomData;
use std::sync::Arc;

use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Result, Row,
    Transaction, Type,
};

use super::admin::{
    CreatedSite, PatchOutcome, Snapshot, TokenEntry, TokenInfo, TokenLimits, UserPatch,
};
use super::{Account, SeedConflict, SeedData, SeedReport, StoredToken, TokenOwner};
use crate::credentials::TokenDigest;
use crate::domain::{CloudId, PropertyValue, Scopes, Site, SiteKey, SiteName, User, email_key};

/// What the dialects spell differently.
pub(super) trait Dialect: Database {
    /// A token's `created_at` as ISO 8601 text in UTC with milliseconds, as SQLite's default
    /// writes it and PostgreSQL's `timestamptz` does not.
    const CREATED_AT: &'static str;

    /// How many rows a statement changed (sqlx has no trait for it).
    fn affected(done: &Self::QueryResult) -> u64;
}

/// A connection to `DB`.
type Conn<DB> = <DB as Database>::Connection;

/// A connection from `pool`, boxed: `Pool::acquire`'s future is kilobytes, and every future
/// that awaited it in place, each request's all the way up, would carry them and copy them on
/// every move, whether it reached the database or was answered from the cache.
pub(super) fn connection<DB: Database>(
    pool: &sqlx::Pool<DB>,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = sqlx::Result<sqlx::pool::PoolConnection<DB>>> + Send + '_>,
> {
    Box::pin(pool.acquire())
}

/// The shared statements, for one database.
pub(super) struct Sql<DB>(PhantomData<DB>);

/// Every user, by account id.
const USERS: &str = "SELECT account_id, email, display_name, admin, active FROM users
                     WHERE site = $1 ORDER BY account_id";
/// The first `$2` users (active ones only, when `$3`), by account id.
const FIRST_USERS: &str = "SELECT account_id, email, display_name, admin, active FROM users
                           WHERE site = $1 AND (active OR NOT $3)
                           ORDER BY account_id LIMIT $2";

impl<DB> Sql<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'a> &'a str: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> &'a [u8]: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<bool>: Encode<'a, DB> + Type<DB>,
    for<'a> String: Decode<'a, DB> + Type<DB>,
    for<'a> bool: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> Option<i64>: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
{
    /// The owner of the token with this digest.
    pub async fn token_owner(
        conn: &mut Conn<DB>,
        site: SiteKey,
        digest: &TokenDigest,
    ) -> Result<Option<Arc<TokenOwner>>> {
        let row = sqlx::query(
            "SELECT u.account_id, u.email, u.display_name, u.admin, u.active, t.token_hash,
                    t.scopes, t.expires_at
             FROM api_tokens t JOIN users u ON u.site = t.site AND u.account_id = t.account_id
             WHERE t.site = $1 AND t.token_hash = $2",
        )
        .bind(site.0)
        .bind(digest.as_bytes())
        .fetch_optional(conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Arc::new(TokenOwner {
            user: Arc::new(Self::user_from_row(&row)?),
            token: Self::token_from_row(&row, stored_digest(row.try_get(5)?)?)?,
            version: None,
        })))
    }

    /// The user whose lower-cased email is `email_key`, with their token digests.
    pub async fn account_by_email(
        conn: &mut Conn<DB>,
        site: SiteKey,
        email_key: &str,
    ) -> Result<Option<Arc<Account>>> {
        let rows = sqlx::query(
            "SELECT u.account_id, u.email, u.display_name, u.admin, u.active, t.token_hash,
                    t.scopes, t.expires_at
             FROM users u
             LEFT JOIN api_tokens t ON t.site = u.site AND t.account_id = u.account_id
             WHERE u.site = $1 AND u.email_key = $2",
        )
        .bind(site.0)
        .bind(email_key)
        .fetch_all(conn)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut tokens = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(stored) = row.try_get::<Option<&[u8]>, _>(5)? {
                tokens.push(Self::token_from_row(row, stored_digest(stored)?)?);
            }
        }
        Ok(Some(Arc::new(Account {
            user: Arc::new(Self::user_from_row(first)?),
            tokens,
            version: None,
        })))
    }

    /// The user with this account id.
    pub async fn user(
        conn: &mut Conn<DB>,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT account_id, email, display_name, admin, active FROM users
             WHERE site = $1 AND account_id = $2",
        )
        .bind(site.0)
        .bind(account_id)
        .fetch_optional(conn)
        .await?;
        row.map(|row| Self::user_from_row(&row)).transpose()
    }

    /// Whether a user with this account id exists.
    pub async fn user_exists(conn: &mut Conn<DB>, site: SiteKey, account_id: &str) -> Result<bool> {
        let row =
            sqlx::query("SELECT EXISTS (SELECT 1 FROM users WHERE site = $1 AND account_id = $2)")
                .bind(site.0)
                .bind(account_id)
                .fetch_one(conn)
                .await?;
        row.try_get(0)
    }

    /// How many users there are.
    pub async fn user_count(conn: &mut Conn<DB>, site: SiteKey) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM users WHERE site = $1")
            .bind(site.0)
            .fetch_one(conn)
            .await?;
        Ok(row.try_get::<i64, _>(0)?.unsigned_abs())
    }

    /// The user's property keys in code-point order.
    pub async fn property_keys(
        conn: &mut Conn<DB>,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Arc<[String]>> {
        let rows = sqlx::query(
            "SELECT key FROM properties WHERE site = $1 AND account_id = $2 ORDER BY key",
        )
        .bind(site.0)
        .bind(account_id)
        .fetch_all(conn)
        .await?;
        rows.iter().map(|row| row.try_get(0)).collect()
    }

    /// One property's stored JSON text.
    pub async fn property(
        conn: &mut Conn<DB>,
        site: SiteKey,
        account_id: &str,
        key: &str,
    ) -> Result<Option<PropertyValue>> {
        let row = sqlx::query(
            "SELECT value FROM properties WHERE site = $1 AND account_id = $2 AND key = $3",
        )
        .bind(site.0)
        .bind(account_id)
        .bind(key)
        .fetch_optional(conn)
        .await?;
        row.map(|row| row.try_get(0).map(PropertyValue::from_stored))
            .transpose()
    }

    /// The first `most` users (active ones only, when `active_only`), by account id.
    pub async fn users(
        conn: &mut Conn<DB>,
        site: SiteKey,
        most: usize,
        active_only: bool,
    ) -> Result<Vec<User>> {
        let most = i64::try_from(most).unwrap_or(i64::MAX);
        let rows = sqlx::query(FIRST_USERS)
            .bind(site.0)
            .bind(most)
            .bind(active_only)
            .fetch_all(conn)
            .await?;
        rows.iter().map(Self::user_from_row).collect()
    }

    /// Changes a user; a unique violation means another account holds the new email.
    pub async fn update_user(
        conn: &mut Conn<DB>,
        site: SiteKey,
        account_id: &str,
        patch: &UserPatch,
    ) -> Result<PatchOutcome> {
        let new_key = patch.email.as_deref().map(email_key);
        let updated = sqlx::query(
            "UPDATE users SET
                 email = COALESCE($3, email),
                 email_key = COALESCE($4, email_key),
                 display_name = COALESCE($5, display_name),
                 admin = COALESCE($6, admin),
                 active = COALESCE($7, active)
             WHERE site = $1 AND account_id = $2",
        )
        .bind(site.0)
        .bind(account_id)
        .bind(patch.email.as_deref())
        .bind(new_key.as_deref())
        .bind(patch.display_name.as_deref())
        .bind(patch.admin)
        .bind(patch.active)
        .execute(conn)
        .await;
        match updated.map(|done| DB::affected(&done)) {
            Ok(0) => Ok(PatchOutcome::NoSuchUser),
            Ok(_) => Ok(PatchOutcome::Updated),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Ok(PatchOutcome::EmailTaken)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a user with their tokens and properties; whether they existed.
    pub async fn delete_user(conn: &mut Conn<DB>, site: SiteKey, account_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM users WHERE site = $1 AND account_id = $2")
            .bind(site.0)
            .bind(account_id)
            .execute(conn)
            .await?;
        Ok(DB::affected(&done) > 0)
    }

    /// Adds a token for a user; its new id, or `None` when there is no such user.
    pub async fn add_token(
        conn: &mut Conn<DB>,
        site: SiteKey,
        account_id: &str,
        digest: &TokenDigest,
        limits: &TokenLimits,
    ) -> Result<Option<String>> {
        let scopes = limits.scopes.as_ref().map(ToString::to_string);
        let row = sqlx::query(
            "INSERT INTO api_tokens (site, token_hash, account_id, id, scopes, expires_at)
             SELECT site, $2, account_id, $4, $5, $6 FROM users WHERE site = $1 AND account_id = $3
             RETURNING id",
        )
        .bind(site.0)
        .bind(digest.as_bytes())
        .bind(account_id)
        .bind(digest.token_id().as_str())
        .bind(scopes.as_deref())
        .bind(limits.expires_at)
        .fetch_optional(conn)
        .await;
        // Found, then deleted by a concurrent request before the row was checked against it.
        let row = match row {
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => return Ok(None),
            row => row?,
        };
        row.map(|row| row.try_get(0)).transpose()
    }

    /// What a user owns, from rows of the user LEFT JOINed to it: `None` when no row came back
    /// (no such user); a row whose first column is NULL stands for owning nothing.
    fn of_user<T>(
        rows: &[DB::Row],
        mut each: impl FnMut(String, &DB::Row) -> Result<T>,
    ) -> Result<Option<Vec<T>>> {
        if rows.is_empty() {
            return Ok(None);
        }
        let mut owned = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(first) = row.try_get::<Option<String>, _>(0)? {
                owned.push(each(first, row)?);
            }
        }
        Ok(Some(owned))
    }

    /// A user's properties by key, with their stored JSON text; `None` when there is no such
    /// user.
    pub async fn properties(
        conn: &mut Conn<DB>,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Option<Vec<(String, PropertyValue)>>> {
        let rows = sqlx::query(
            "SELECT p.key, p.value FROM users u
             LEFT JOIN properties p ON p.site = u.site AND p.account_id = u.account_id
             WHERE u.site = $1 AND u.account_id = $2 ORDER BY p.key",
        )
        .bind(site.0)
        .bind(account_id)
        .fetch_all(conn)
        .await?;
        Self::of_user(&rows, |key, row| {
            Ok((key, PropertyValue::from_stored(row.try_get(1)?)))
        })
    }

    /// A user's tokens by creation; `None` when there is no such user.
    pub async fn tokens(
        conn: &mut Conn<DB>,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Option<Vec<TokenInfo>>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT t.id, {}, t.scopes, t.expires_at FROM users u
             LEFT JOIN api_tokens t ON t.site = u.site AND t.account_id = u.account_id
             WHERE u.site = $1 AND u.account_id = $2 ORDER BY t.created_at, t.id",
            DB::CREATED_AT
        )))
        .bind(site.0)
        .bind(account_id)
        .fetch_all(conn)
        .await?;
        Self::of_user(&rows, |id, row| {
            Ok(TokenInfo {
                id,
                created_at: row.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                limits: TokenLimits {
                    scopes: row
                        .try_get::<Option<String>, _>(2)?
                        .map(|s| Scopes::parse(&s)),
                    expires_at: row.try_get(3)?,
                },
            })
        })
    }

    /// Revokes a user's token; whether it existed.
    pub async fn revoke_token(
        conn: &mut Conn<DB>,
        site: SiteKey,
        account_id: &str,
        id: &str,
    ) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM api_tokens WHERE site = $1 AND account_id = $2 AND id = $3")
                .bind(site.0)
                .bind(account_id)
                .bind(id)
                .execute(conn)
                .await?;
        Ok(DB::affected(&done) > 0)
    }

    /// Whether the database answers and holds the schema.
    pub async fn ready(conn: &mut Conn<DB>) -> Result<()> {
        sqlx::query("SELECT 1 FROM users LIMIT 1")
            .fetch_optional(conn)
            .await?;
        Ok(())
    }

    /// Deletes every property of a site, and with `everything` every user and token too; commits.
    pub async fn reset(mut tx: Transaction<'_, DB>, site: SiteKey, everything: bool) -> Result<()> {
        Self::delete_all(&mut tx, site, everything).await?;
        tx.commit().await
    }

    /// A site's whole state, read in `tx`, which must see one consistent view.
    pub async fn snapshot(mut tx: Transaction<'_, DB>, site: SiteKey) -> Result<Snapshot> {
        let users = sqlx::query(USERS).bind(site.0).fetch_all(&mut *tx).await?;
        let tokens = sqlx::query(
            "SELECT account_id, token_hash, scopes, expires_at FROM api_tokens
             WHERE site = $1 ORDER BY account_id, token_hash",
        )
        .bind(site.0)
        .fetch_all(&mut *tx)
        .await?;
        let properties = sqlx::query(
            "SELECT account_id, key, value FROM properties WHERE site = $1 ORDER BY account_id, key",
        )
        .bind(site.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut snapshot = Snapshot::default();
        for row in &users {
            snapshot.users.push((Self::user_from_row(row)?, Vec::new()));
        }
        for row in &tokens {
            let owner: &str = row.try_get(0)?;
            let scopes: Option<&str> = row.try_get(2)?;
            let token = TokenEntry {
                digest: stored_digest(row.try_get(1)?)?,
                limits: TokenLimits {
                    scopes: scopes.map(Scopes::parse),
                    expires_at: row.try_get(3)?,
                },
            };
            if let Ok(index) = snapshot
                .users
                .binary_search_by(|(user, _)| user.account_id.as_str().cmp(owner))
                && let Some((_, tokens)) = snapshot.users.get_mut(index)
            {
                tokens.push(token);
            }
        }
        for row in &properties {
            snapshot
                .properties
                .push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
        }
        Ok(snapshot)
    }

    /// Replaces a site's whole state with a snapshot; commits.
    pub async fn restore(
        mut tx: Transaction<'_, DB>,
        site: SiteKey,
        snapshot: &Snapshot,
    ) -> Result<()> {
        Self::delete_all(&mut tx, site, true).await?;
        for (user, tokens) in &snapshot.users {
            Self::insert_user(&mut tx, site, user).await?;
            for token in tokens {
                let scopes = token.limits.scopes.as_ref().map(ToString::to_string);
                sqlx::query(
                    "INSERT INTO api_tokens (site, token_hash, account_id, id, scopes, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(site.0)
                .bind(token.digest.as_bytes())
                .bind(user.account_id.as_str())
                .bind(token.digest.token_id().as_str())
                .bind(scopes.as_deref())
                .bind(token.limits.expires_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (account_id, key, value) in &snapshot.properties {
            sqlx::query(
                "INSERT INTO properties (site, account_id, key, value) VALUES ($1, $2, $3, $4)",
            )
            .bind(site.0)
            .bind(account_id.as_str())
            .bind(key.as_str())
            .bind(value.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Adds a seed to a site: missing users and tokens always, properties only when the site
    /// held no users and no properties. Commits, unless the seed clashes with another account:
    /// then `tx` rolls back and the report says why.
    pub async fn apply_seed(
        mut tx: Transaction<'_, DB>,
        site: SiteKey,
        seed: &SeedData,
    ) -> Result<SeedReport> {
        let report = Self::seed_into(&mut tx, site, seed).await?;
        if report.conflict.is_none() {
            tx.commit().await?;
        }
        Ok(report)
    }

    /// Makes a site, with a seed, unless `most` sites exist already; commits only a site made
    /// whole. `kept` is the seed as the site keeps it for resets (the snapshot format).
    pub async fn create_site(
        mut tx: Transaction<'_, DB>,
        id: CloudId,
        name: &SiteName,
        seed: &SeedData,
        kept: &str,
        most: u64,
    ) -> Result<CreatedSite> {
        let row = sqlx::query("SELECT COUNT(*) FROM sites")
            .fetch_one(&mut *tx)
            .await?;
        if row.try_get::<i64, _>(0)?.unsigned_abs() >= most {
            return Ok(CreatedSite::TooMany);
        }
        let id_text = id.to_string();
        let inserted = sqlx::query(
            "INSERT INTO sites (cloud_id, name, seed) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
             RETURNING site",
        )
        .bind(id_text.as_str())
        .bind(name.as_str())
        .bind(kept)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            let taken = sqlx::query("SELECT EXISTS (SELECT 1 FROM sites WHERE name = $1)")
                .bind(name.as_str())
                .fetch_one(&mut *tx)
                .await?;
            return Ok(if taken.try_get(0)? {
                CreatedSite::NameTaken
            } else {
                CreatedSite::IdTaken
            });
        };
        let site = Site {
            key: SiteKey(row.try_get(0)?),
            id,
            name: name.clone(),
        };
        let report = Self::seed_into(&mut tx, site.key, seed).await?;
        if report.conflict.is_some() {
            return Ok(CreatedSite::SeedConflict(report));
        }
        tx.commit().await?;
        Ok(CreatedSite::Created(site, report))
    }

    /// Deletes a site and everything of it; whether it existed. The default site stays.
    pub async fn delete_site(conn: &mut Conn<DB>, site: SiteKey) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sites WHERE site = $1 AND site <> 0")
            .bind(site.0)
            .execute(conn)
            .await?;
        Ok(DB::affected(&done) > 0)
    }

    /// The seed a site keeps for resets, if it was made with one.
    pub async fn site_seed(conn: &mut Conn<DB>, site: SiteKey) -> Result<Option<String>> {
        let row = sqlx::query("SELECT seed FROM sites WHERE site = $1")
            .bind(site.0)
            .fetch_optional(conn)
            .await?;
        Ok(match row {
            Some(row) => row.try_get(0)?,
            None => None,
        })
    }

    /// Every site, oldest first.
    pub async fn sites(conn: &mut Conn<DB>) -> Result<Vec<Site>> {
        let rows = sqlx::query("SELECT site, cloud_id, name FROM sites ORDER BY site")
            .fetch_all(conn)
            .await?;
        rows.iter().map(Self::site_from_row).collect()
    }

    /// The site with this name.
    pub async fn site_named(conn: &mut Conn<DB>, name: &str) -> Result<Option<Site>> {
        let row = sqlx::query("SELECT site, cloud_id, name FROM sites WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
        row.as_ref().map(Self::site_from_row).transpose()
    }

    /// The site with this cloudId.
    pub async fn site_with_id(conn: &mut Conn<DB>, id: CloudId) -> Result<Option<Site>> {
        let id = id.to_string();
        let row = sqlx::query("SELECT site, cloud_id, name FROM sites WHERE cloud_id = $1")
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?;
        row.as_ref().map(Self::site_from_row).transpose()
    }

    /// Adds a seed in `tx` without committing; a report with a conflict means `tx` must roll
    /// back.
    async fn seed_into(
        tx: &mut Transaction<'_, DB>,
        site: SiteKey,
        seed: &SeedData,
    ) -> Result<SeedReport> {
        let row = sqlx::query(
            "SELECT NOT EXISTS (SELECT 1 FROM users WHERE site = $1)
                AND NOT EXISTS (SELECT 1 FROM properties WHERE site = $1)",
        )
        .bind(site.0)
        .fetch_one(&mut **tx)
        .await?;
        let empty: bool = row.try_get(0)?;
        let mut report = SeedReport::default();
        for (index, user) in seed.users.iter().enumerate() {
            let inserted = Self::insert_user(tx, site, user).await?;
            if !inserted {
                if !Self::user_exists(tx, site, &user.account_id).await? {
                    // Not added, and not there: another account holds the email.
                    report.conflict = Some(SeedConflict::Email(index));
                    return Ok(report);
                }
                if seed.users_must_be_new {
                    report.conflict = Some(SeedConflict::Taken(index));
                    return Ok(report);
                }
            }
            report.users += u64::from(inserted);
        }
        for (owner, token) in &seed.tokens {
            // A seed's tokens name their owner by its place among the seed's users.
            let owner = *owner;
            let Some(user) = seed.users.get(owner) else {
                continue;
            };
            let (account_id, digest) = (user.account_id.as_str(), &token.digest);
            let scopes = token.limits.scopes.as_ref().map(ToString::to_string);
            let done = sqlx::query(
                "INSERT INTO api_tokens (site, token_hash, account_id, id, scopes, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(site.0)
            .bind(digest.as_bytes())
            .bind(account_id)
            .bind(digest.token_id().as_str())
            .bind(scopes.as_deref())
            .bind(token.limits.expires_at)
            .execute(&mut **tx)
            .await?;
            let inserted = DB::affected(&done);
            if inserted == 0 {
                let holder = sqlx::query(
                    "SELECT account_id FROM api_tokens WHERE site = $1 AND token_hash = $2",
                )
                .bind(site.0)
                .bind(digest.as_bytes())
                .fetch_one(&mut **tx)
                .await?;
                if holder.try_get::<&str, _>(0)? != account_id {
                    report.conflict = Some(SeedConflict::Token(owner));
                    return Ok(report);
                }
            }
            report.tokens += inserted;
        }
        if empty {
            for (account_id, key, value) in &seed.properties {
                let done = sqlx::query(
                    "INSERT INTO properties (site, account_id, key, value) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .bind(site.0)
                .bind(account_id.as_str())
                .bind(key.as_str())
                .bind(value.as_str())
                .execute(&mut **tx)
                .await?;
                report.properties += DB::affected(&done);
            }
        }
        Ok(report)
    }

    /// Adds a user unless its account id or email is taken in the site; whether it was added.
    async fn insert_user(conn: &mut Conn<DB>, site: SiteKey, user: &User) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO users (site, account_id, email, email_key, display_name, admin, active)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(site.0)
        .bind(user.account_id.as_str())
        .bind(user.email.as_str())
        .bind(&*email_key(&user.email))
        .bind(user.display_name.as_str())
        .bind(user.admin)
        .bind(user.active)
        .execute(conn)
        .await?;
        Ok(DB::affected(&done) > 0)
    }

    /// Deletes every property of a site, and with `everything` every token and user.
    async fn delete_all(conn: &mut Conn<DB>, site: SiteKey, everything: bool) -> Result<()> {
        // Tokens and properties go with their users.
        let statement = if everything {
            "DELETE FROM users WHERE site = $1"
        } else {
            "DELETE FROM properties WHERE site = $1"
        };
        sqlx::query(statement).bind(site.0).execute(conn).await?;
        Ok(())
    }

    fn site_from_row(row: &DB::Row) -> Result<Site> {
        let broken = |column: &str, source: String| sqlx::Error::ColumnDecode {
            index: column.into(),
            source: source.into(),
        };
        let id: &str = row.try_get(1)?;
        let name: &str = row.try_get(2)?;
        Ok(Site {
            key: SiteKey(row.try_get(0)?),
            id: CloudId::parse(id).map_err(|e| broken("cloud_id", e.to_string()))?,
            name: SiteName::parse(name).map_err(|e| broken("name", e.to_string()))?,
        })
    }

    /// A token's scopes and expiry, from columns 6 and 7.
    fn token_from_row(row: &DB::Row, digest: TokenDigest) -> Result<StoredToken> {
        let scopes: Option<String> = row.try_get(6)?;
        Ok(StoredToken {
            digest,
            scopes: scopes.map(|scopes| Arc::new(Scopes::parse(&scopes))),
            expires_at: row.try_get(7)?,
        })
    }

    pub(super) fn user_from_row(row: &DB::Row) -> Result<User> {
        Ok(User {
            account_id: row.try_get(0)?,
            email: row.try_get(1)?,
            display_name: row.try_get(2)?,
            admin: row.try_get(3)?,
            active: row.try_get(4)?,
        })
    }
}

/// A digest as stored; anything but 32 bytes is a broken row.
fn stored_digest(bytes: &[u8]) -> Result<TokenDigest> {
    TokenDigest::from_stored(bytes).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: "token_hash".into(),
        source: "stored token digest is not 32 bytes".into(),
    })
}
