//! What apps need of storage: apps, grants (which account, which sites, which scopes), codes and
//! tokens. Written once for both dialects, as `sql.rs` is; reached through [`Store::oauth`].
//! PostgreSQL caches nothing of it; SQLite keeps known access tokens in its cache and drops them
//! at any revocation, since a revoked token must fail at the next request on every instance.
//!
//! Longer than most files, and one idea, as `sql.rs` is: every statement of one area, over the
//! bounds one `impl` block states once.

use std::marker::PhantomData;
use std::sync::Arc;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Result, Row, Type};
use sqlx::{Postgres, Sqlite, SqlitePool, Transaction};

use super::Store;
use super::postgres::{PostgresStore, leased};
use super::sql::{Dialect, connection};
use super::sqlite::{Changing, SqliteStore};
use crate::credentials::TokenDigest;
use crate::domain::{AppKind, CloudId, Scopes, SiteKey, SiteName, User};

/// An app as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    /// Its client id.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// OAuth 2.0 app or service account.
    pub kind: AppKind,
    /// The digest of its client secret.
    pub secret: TokenDigest,
    /// Where the authorization-code flow may send users back (OAuth 2.0 apps).
    pub callback_url: Option<String>,
    /// The scopes it may ask for.
    pub scopes: Scopes,
    /// Whether a `login_hint` grants at once, without the consent page.
    pub auto_consent: bool,
    /// A service account's own account id.
    pub account_id: Option<String>,
}

/// A grant: an app acting for an account on some sites, with some scopes.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Its id.
    pub id: String,
    /// The app's client id.
    pub client_id: String,
    /// The account the app acts for.
    pub account_id: String,
    /// What it may do.
    pub scopes: Scopes,
    /// The sites it covers.
    pub sites: Vec<SiteKey>,
    /// When its refresh tokens end, whatever their use (ms since the epoch).
    pub ends_at: i64,
}

/// What an access token gives on a site: the user it acts for, the grant's scopes, and when
/// the token ends (ms since the Unix epoch).
#[derive(Debug, Clone)]
pub struct Access {
    /// The user.
    pub user: Arc<User>,
    /// The grant's scopes.
    pub scopes: Arc<Scopes>,
    /// When the token ends.
    pub expires_at: i64,
}

/// A site a grant covers, as `accessible-resources` shows it.
#[derive(Debug, Clone)]
pub struct GrantedSite {
    /// The site's cloudId.
    pub id: CloudId,
    /// The site's name.
    pub name: SiteName,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// The family's newest token, now spent: the grant it belongs to.
    Rotated(String),
    /// A spent token within the leeway: tolerated, the grant it belongs to.
    Tolerated(String),
    /// Unknown, expired, or spent past the leeway (the family is revoked then).
    Refused,
}

/// The database an [`OAuthStore`] runs on.
#[derive(Debug, Clone, Copy)]
enum Pools<'a> {
    Sqlite {
        reader: &'a SqlitePool,
        writer: &'a SqlitePool,
        store: &'a SqliteStore,
    },
    Postgres(&'a PostgresStore),
}

/// The OAuth part of a [`Store`].
#[derive(Debug, Clone, Copy)]
pub struct OAuthStore<'a>(Pools<'a>);

impl Store {
    /// The apps' storage.
    pub fn oauth(&self) -> OAuthStore<'_> {
        OAuthStore(match self {
            Store::Sqlite(store) => {
                let (reader, writer) = store.pools();
                Pools::Sqlite {
                    reader,
                    writer,
                    store,
                }
            }
            Store::Postgres(store) => Pools::Postgres(store),
        })
    }
}

/// Runs one of [`OAuthSql`]'s functions on a connection: from the readers or the writer on
/// SQLite (whose writes go through its one writer), from the pool on PostgreSQL.
macro_rules! run {
    ($store:expr, $side:ident, $function:ident($($arg:expr),*)) => {
        match $store.0 {
            Pools::Sqlite { reader, writer, .. } => {
                let pool = if run!(@writes $side) { writer } else { reader };
                let mut conn = connection(pool).await?;
                Ok(OAuthSql::<Sqlite>::$function(&mut *conn, $($arg),*).await?)
            }
            Pools::Postgres(store) => {
                let _turn = store.admit()?;
                Ok(leased!(store, |conn| OAuthSql::<Postgres>::$function(conn, $($arg),*))?)
            }
        }
    };
    (@writes read) => { false };
    (@writes write) => { true };
}

impl OAuthStore<'_> {
    /// Adds an app; `false` when its client id is taken.
    pub async fn add_app(&self, app: &AppRecord, now: i64) -> super::Result<bool> {
        run!(self, write, add_app(app, now))
    }

    /// Every app, oldest first.
    pub async fn apps(&self) -> super::Result<Vec<AppRecord>> {
        run!(self, read, apps())
    }

    /// The app with this client id.
    pub async fn app(&self, client_id: &str) -> super::Result<Option<AppRecord>> {
        // No client id has control characters (PostgreSQL cannot even compare NUL).
        if client_id.chars().any(char::is_control) {
            return Ok(None);
        }
        run!(self, read, app(client_id))
    }

    /// Deletes an app with its grants, codes and tokens; whether it existed.
    pub async fn delete_app(&self, client_id: &str) -> super::Result<bool> {
        let revoking = self.revoking();
        let deleted: super::Result<bool> = run!(self, write, delete_app(client_id));
        Self::revoked(revoking, true);
        deleted
    }

    /// An app's grants, each with its sites: one per consent or service-account token request,
    /// each a refresh-token family.
    pub async fn grants_of(&self, client_id: &str) -> super::Result<Vec<Grant>> {
        run!(self, read, grants_of(client_id))
    }

    /// Deletes one of an app's grants with its codes and tokens; whether it existed.
    pub async fn delete_grant(&self, client_id: &str, grant_id: &str) -> super::Result<bool> {
        let revoking = self.revoking();
        let deleted: super::Result<bool> = run!(self, write, delete_grant(client_id, grant_id));
        Self::revoked(revoking, true);
        deleted
    }

    /// Forgets what can no longer be used: `client_id`'s grants a minute past their end (each of
    /// a service account's tokens is one; no access token outlives its grant), and `grant_id`'s
    /// expired access tokens. Refresh tokens
    /// stay, spent ones too, so that reusing one is still told from not knowing it.
    pub async fn forget_ended(
        &self,
        client_id: &str,
        grant_id: &str,
        now: i64,
    ) -> super::Result<()> {
        run!(self, write, forget_ended(client_id, grant_id, now))
    }

    /// Forgets a grant that has no tokens and never will (its one code spent on a refused
    /// exchange). No token of it can be held, so nothing held is dropped.
    pub async fn forget_unused_grant(&self, grant_id: &str) -> super::Result<()> {
        run!(self, write, delete_unused_grant(grant_id))
    }

    /// Forgets the grants whose code expired a minute ago unexchanged: a consent's grant gets
    /// tokens only through its one code, so such a grant can never be used.
    pub async fn forget_unexchanged(&self, now: i64) -> super::Result<()> {
        run!(self, write, forget_unexchanged(now))
    }

    /// A change that may revoke tokens is about to run: on SQLite, one whose end the cache
    /// hears of even when its caller stops waiting.
    fn revoking(&self) -> Option<Changing<'_>> {
        match self.0 {
            Pools::Sqlite { store, .. } => Some(store.changing()),
            Pools::Postgres(_) => None,
        }
    }

    /// The change is over; `revoked` when tokens may have been revoked, which the SQLite cache
    /// must then forget.
    fn revoked(revoking: Option<Changing<'_>>, revoked: bool) {
        if let Some(changing) = revoking {
            changing.done(revoked);
        }
    }

    /// Records a grant with its sites, all or nothing: a site deleted meanwhile must not leave
    /// the grant without it.
    pub async fn add_grant(&self, grant: &Grant) -> super::Result<()> {
        match self.0 {
            Pools::Sqlite { store, .. } => {
                let tx = store.begin_immediate().await?;
                Ok(OAuthSql::<Sqlite>::add_grant(tx, grant).await?)
            }
            Pools::Postgres(store) => {
                let _turn = store.admit()?;
                // A lease that holds a transaction is never finished: it goes back to the pool.
                let mut lease = store.lease().await?;
                let tx = sqlx::Connection::begin(&mut *lease).await?;
                Ok(OAuthSql::<Postgres>::add_grant(tx, grant).await?)
            }
        }
    }

    /// Records an authorization code for a grant.
    pub async fn add_code(
        &self,
        code: &TokenDigest,
        grant_id: &str,
        redirect_uri: &str,
        expires_at: i64,
    ) -> super::Result<()> {
        run!(
            self,
            write,
            add_code(code, grant_id, redirect_uri, expires_at)
        )
    }

    /// Spends a code: its grant and redirect URI, if it is known and not expired. A code is
    /// found at most once; an expired one takes its grant, which never had tokens, with it.
    pub async fn take_code(
        &self,
        code: &TokenDigest,
        now: i64,
    ) -> super::Result<Option<(Grant, String)>> {
        let taken: super::Result<Option<(String, String)>> =
            run!(self, write, take_code(code, now));
        let taken = taken?;
        match taken {
            Some((grant_id, redirect_uri)) => Ok(self
                .grant(&grant_id)
                .await?
                .map(|grant| (grant, redirect_uri))),
            None => Ok(None),
        }
    }

    /// A grant by id.
    pub async fn grant(&self, grant_id: &str) -> super::Result<Option<Grant>> {
        run!(self, read, grant(grant_id))
    }

    /// Records a token of a grant (`access` or `refresh`).
    pub async fn add_token(
        &self,
        token: &TokenDigest,
        grant_id: &str,
        kind: &str,
        expires_at: i64,
    ) -> super::Result<()> {
        run!(self, write, add_token(token, grant_id, kind, expires_at))
    }

    /// Presents `client_id`'s refresh token: rotates the family's newest, tolerates a spent one within
    /// `leeway_ms`, and revokes the whole grant for one spent before that.
    pub async fn refresh(
        &self,
        token: &TokenDigest,
        client_id: &str,
        now: i64,
        leeway_ms: i64,
    ) -> super::Result<Refresh> {
        let revoking = self.revoking();
        let refresh: super::Result<Refresh> =
            run!(self, write, refresh(token, client_id, now, leeway_ms));
        // A refused refresh may have revoked its family.
        Self::revoked(revoking, matches!(refresh, Ok(Refresh::Refused)));
        refresh
    }

    /// What an access token gives on `site`; `None` when the token is unknown, expired, or its
    /// grant does not cover the site. SQLite keeps known tokens in its cache, dropped whenever
    /// one may have been revoked; PostgreSQL asks every time.
    pub async fn access(
        &self,
        site: SiteKey,
        token: &TokenDigest,
        now: i64,
    ) -> super::Result<Option<Arc<Access>>> {
        let found = match self.0 {
            Pools::Sqlite { reader, store, .. } => {
                let read = move || async move {
                    let mut conn = connection(reader).await?;
                    OAuthSql::<Sqlite>::access(&mut *conn, site, token, now).await
                };
                store.access_through_cache(site, token, read).await?
            }
            Pools::Postgres(store) => {
                let _turn = store.admit()?;
                leased!(store, |conn| OAuthSql::<Postgres>::access(
                    conn, site, token, now
                ))?
            }
        };
        Ok(found.filter(|access| access.expires_at > now))
    }

    /// The grant an unexpired access token belongs to.
    pub async fn grant_of_access(
        &self,
        token: &TokenDigest,
        now: i64,
    ) -> super::Result<Option<Grant>> {
        let grant_id: super::Result<Option<String>> = run!(self, read, grant_of_access(token, now));
        let grant_id = grant_id?;
        match grant_id {
            Some(grant_id) => self.grant(&grant_id).await,
            None => Ok(None),
        }
    }

    /// The sites a grant covers, by name.
    pub async fn granted_sites(&self, grant_id: &str) -> super::Result<Vec<GrantedSite>> {
        run!(self, read, granted_sites(grant_id))
    }

    /// Every site's user whose account id is `account_id` or whose email key is `email_key`.
    pub async fn accounts(
        &self,
        account_id: &str,
        email_key: &str,
    ) -> super::Result<Vec<(SiteKey, User)>> {
        run!(self, read, accounts(account_id, email_key))
    }
}

/// The statements, for one database.
struct OAuthSql<DB>(PhantomData<DB>);

type Conn<DB> = <DB as Database>::Connection;

const APP_COLUMNS: &str =
    "client_id, name, kind, secret_hash, callback_url, scopes, auto_consent, account_id";

impl<DB> OAuthSql<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'a> &'a str: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> &'a [u8]: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<String>: Decode<'a, DB> + Type<DB>,
    for<'a> Option<i64>: Decode<'a, DB> + Type<DB>,
    for<'a> String: Decode<'a, DB> + Type<DB>,
    for<'a> bool: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
{
    async fn add_app(conn: &mut Conn<DB>, app: &AppRecord, now: i64) -> Result<bool> {
        let scopes = app.scopes.to_string();
        let done = sqlx::query(
            "INSERT INTO apps (client_id, name, kind, secret_hash, callback_url, scopes,
                               auto_consent, account_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(app.client_id.as_str())
        .bind(app.name.as_str())
        .bind(app.kind.as_str())
        .bind(app.secret.as_bytes())
        .bind(app.callback_url.as_deref())
        .bind(scopes.as_str())
        .bind(app.auto_consent)
        .bind(app.account_id.as_deref())
        .bind(now)
        .execute(conn)
        .await?;
        Ok(DB::affected(&done) > 0)
    }

    async fn apps(conn: &mut Conn<DB>) -> Result<Vec<AppRecord>> {
        let statement = format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, client_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
            .fetch_all(conn)
            .await?;
        rows.iter().map(Self::app_from_row).collect()
    }

    async fn app(conn: &mut Conn<DB>, client_id: &str) -> Result<Option<AppRecord>> {
        let statement = format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(client_id)
            .fetch_optional(conn)
            .await?;
        row.as_ref().map(Self::app_from_row).transpose()
    }

    async fn delete_app(conn: &mut Conn<DB>, client_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM apps WHERE client_id = $1")
            .bind(client_id)
            .execute(conn)
            .await?;
        Ok(DB::affected(&done) > 0)
    }

    async fn add_grant(mut tx: Transaction<'_, DB>, grant: &Grant) -> Result<()> {
        let scopes = grant.scopes.to_string();
        sqlx::query(
            "INSERT INTO oauth_grants (grant_id, client_id, account_id, scopes, ends_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(grant.id.as_str())
        .bind(grant.client_id.as_str())
        .bind(grant.account_id.as_str())
        .bind(scopes.as_str())
        .bind(grant.ends_at)
        .execute(&mut *tx)
        .await?;
        for site in &grant.sites {
            sqlx::query("INSERT INTO oauth_grant_sites (grant_id, site) VALUES ($1, $2)")
                .bind(grant.id.as_str())
                .bind(site.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    async fn add_code(
        conn: &mut Conn<DB>,
        code: &TokenDigest,
        grant_id: &str,
        redirect_uri: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, grant_id, redirect_uri, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(code.as_bytes())
        .bind(grant_id)
        .bind(redirect_uri)
        .bind(expires_at)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn take_code(
        conn: &mut Conn<DB>,
        code: &TokenDigest,
        now: i64,
    ) -> Result<Option<(String, String)>> {
        // Deleted whether expired or not: a code is tried once.
        let row = sqlx::query(
            "DELETE FROM oauth_codes WHERE code_hash = $1 RETURNING grant_id, redirect_uri, expires_at",
        )
        .bind(code.as_bytes())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (grant_id, expires_at): (String, i64) = (row.try_get(0)?, row.try_get(2)?);
        if expires_at <= now {
            // Its grant had no tokens yet and, its one code spent, never will.
            Self::delete_unused_grant(conn, &grant_id).await?;
            return Ok(None);
        }
        Ok(Some((grant_id, row.try_get(1)?)))
    }

    async fn delete_unused_grant(conn: &mut Conn<DB>, grant_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM oauth_grants WHERE grant_id = $1")
            .bind(grant_id)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn grant(conn: &mut Conn<DB>, grant_id: &str) -> Result<Option<Grant>> {
        let rows = sqlx::query(
            "SELECT g.grant_id, g.client_id, g.account_id, g.scopes, g.ends_at, s.site
             FROM oauth_grants g LEFT JOIN oauth_grant_sites s ON s.grant_id = g.grant_id
             WHERE g.grant_id = $1 ORDER BY s.site",
        )
        .bind(grant_id)
        .fetch_all(conn)
        .await?;
        Ok(Self::grants_from_rows(&rows)?.pop())
    }

    async fn grants_of(conn: &mut Conn<DB>, client_id: &str) -> Result<Vec<Grant>> {
        let rows = sqlx::query(
            "SELECT g.grant_id, g.client_id, g.account_id, g.scopes, g.ends_at, s.site
             FROM oauth_grants g LEFT JOIN oauth_grant_sites s ON s.grant_id = g.grant_id
             WHERE g.client_id = $1 ORDER BY g.grant_id, s.site",
        )
        .bind(client_id)
        .fetch_all(conn)
        .await?;
        Self::grants_from_rows(&rows)
    }

    /// Grants from rows of a grant joined with its sites, ordered by grant.
    fn grants_from_rows(rows: &[DB::Row]) -> Result<Vec<Grant>> {
        let mut grants: Vec<Grant> = Vec::new();
        for row in rows {
            let id: &str = row.try_get(0)?;
            if grants.last().is_none_or(|grant| grant.id != id) {
                grants.push(Grant {
                    id: id.to_owned(),
                    client_id: row.try_get(1)?,
                    account_id: row.try_get(2)?,
                    scopes: Scopes::parse(row.try_get(3)?),
                    ends_at: row.try_get(4)?,
                    sites: Vec::new(),
                });
            }
            if let (Some(grant), Some(site)) =
                (grants.last_mut(), row.try_get::<Option<i64>, _>(5)?)
            {
                grant.sites.push(SiteKey(site));
            }
        }
        Ok(grants)
    }

    async fn delete_grant(conn: &mut Conn<DB>, client_id: &str, grant_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM oauth_grants WHERE grant_id = $1 AND client_id = $2")
            .bind(grant_id)
            .bind(client_id)
            .execute(conn)
            .await?;
        Ok(DB::affected(&done) > 0)
    }

    async fn forget_ended(
        conn: &mut Conn<DB>,
        client_id: &str,
        grant_id: &str,
        now: i64,
    ) -> Result<()> {
        // A minute after their end, so that a request still making a token for one (on an
        // access lifetime shorter than its wait for the database) never loses it.
        sqlx::query(
            "DELETE FROM oauth_grants
             WHERE client_id = $1 AND ends_at <= $2 - 60000 AND grant_id <> $3",
        )
        .bind(client_id)
        .bind(now)
        .bind(grant_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "DELETE FROM oauth_tokens WHERE grant_id = $1 AND kind = 'access' AND expires_at <= $2",
        )
        .bind(grant_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn forget_unexchanged(conn: &mut Conn<DB>, now: i64) -> Result<()> {
        // A minute's grace, as for ended grants: an instance whose clock is behind may still
        // take a code this one sees expired.
        sqlx::query(
            "DELETE FROM oauth_grants WHERE grant_id IN
             (SELECT grant_id FROM oauth_codes WHERE expires_at <= $1 - 60000)",
        )
        .bind(now)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn add_token(
        conn: &mut Conn<DB>,
        token: &TokenDigest,
        grant_id: &str,
        kind: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth_tokens (token_hash, grant_id, kind, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token.as_bytes())
        .bind(grant_id)
        .bind(kind)
        .bind(expires_at)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn refresh(
        conn: &mut Conn<DB>,
        token: &TokenDigest,
        client_id: &str,
        now: i64,
        leeway_ms: i64,
    ) -> Result<Refresh> {
        // One statement decides who spends the newest token: concurrent refreshes with it see
        // it spent, within the leeway. Only its own app may spend it, or revoke its family.
        let rotated = sqlx::query(
            "UPDATE oauth_tokens SET rotated_at = $2
             WHERE token_hash = $1 AND kind = 'refresh' AND rotated_at IS NULL AND expires_at > $2
               AND EXISTS (SELECT 1 FROM oauth_grants AS g
                           WHERE g.grant_id = oauth_tokens.grant_id AND g.client_id = $3)
             RETURNING grant_id",
        )
        .bind(token.as_bytes())
        .bind(now)
        .bind(client_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = rotated {
            return Ok(Refresh::Rotated(row.try_get(0)?));
        }
        let spent = sqlx::query(
            "SELECT grant_id, rotated_at FROM oauth_tokens
             WHERE token_hash = $1 AND kind = 'refresh' AND rotated_at IS NOT NULL
               AND EXISTS (SELECT 1 FROM oauth_grants AS g
                           WHERE g.grant_id = oauth_tokens.grant_id AND g.client_id = $2)",
        )
        .bind(token.as_bytes())
        .bind(client_id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = spent else {
            return Ok(Refresh::Refused);
        };
        let grant_id: String = row.try_get(0)?;
        let rotated_at: Option<i64> = row.try_get(1)?;
        if rotated_at.is_some_and(|at| now - at <= leeway_ms) {
            return Ok(Refresh::Tolerated(grant_id));
        }
        // Reused past the leeway: the whole family goes, and the user must consent again.
        sqlx::query("DELETE FROM oauth_grants WHERE grant_id = $1")
            .bind(grant_id.as_str())
            .execute(&mut *conn)
            .await?;
        Ok(Refresh::Refused)
    }

    async fn access(
        conn: &mut Conn<DB>,
        site: SiteKey,
        token: &TokenDigest,
        now: i64,
    ) -> Result<Option<Arc<Access>>> {
        let row = sqlx::query(
            "SELECT u.account_id, u.email, u.display_name, u.admin, u.active, g.scopes,
                    t.expires_at
             FROM oauth_tokens t
             JOIN oauth_grants g ON g.grant_id = t.grant_id
             JOIN oauth_grant_sites s ON s.grant_id = g.grant_id AND s.site = $1
             JOIN users u ON u.site = $1 AND u.account_id = g.account_id
             WHERE t.token_hash = $2 AND t.kind = 'access' AND t.expires_at > $3",
        )
        .bind(site.0)
        .bind(token.as_bytes())
        .bind(now)
        .fetch_optional(conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = User {
            account_id: row.try_get(0)?,
            email: row.try_get(1)?,
            display_name: row.try_get(2)?,
            admin: row.try_get(3)?,
            active: row.try_get(4)?,
        };
        Ok(Some(Arc::new(Access {
            user: Arc::new(user),
            scopes: Arc::new(Scopes::parse(row.try_get(5)?)),
            expires_at: row.try_get(6)?,
        })))
    }

    async fn grant_of_access(
        conn: &mut Conn<DB>,
        token: &TokenDigest,
        now: i64,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT grant_id FROM oauth_tokens
             WHERE token_hash = $1 AND kind = 'access' AND expires_at > $2",
        )
        .bind(token.as_bytes())
        .bind(now)
        .fetch_optional(conn)
        .await?;
        row.map(|row| row.try_get(0)).transpose()
    }

    async fn granted_sites(conn: &mut Conn<DB>, grant_id: &str) -> Result<Vec<GrantedSite>> {
        let rows = sqlx::query(
            "SELECT s.cloud_id, s.name FROM oauth_grant_sites g JOIN sites s ON s.site = g.site
             WHERE g.grant_id = $1 ORDER BY s.site",
        )
        .bind(grant_id)
        .fetch_all(conn)
        .await?;
        let broken = |column: &str, source: String| sqlx::Error::ColumnDecode {
            index: column.into(),
            source: source.into(),
        };
        rows.iter()
            .map(|row| {
                let id: &str = row.try_get(0)?;
                let name: &str = row.try_get(1)?;
                Ok(GrantedSite {
                    id: CloudId::parse(id).map_err(|e| broken("cloud_id", e.to_string()))?,
                    name: SiteName::parse(name).map_err(|e| broken("name", e.to_string()))?,
                })
            })
            .collect()
    }

    async fn accounts(
        conn: &mut Conn<DB>,
        account_id: &str,
        email_key: &str,
    ) -> Result<Vec<(SiteKey, User)>> {
        let rows = sqlx::query(
            "SELECT site, account_id, email, display_name, admin, active FROM users
             WHERE account_id = $1 OR email_key = $2 ORDER BY site",
        )
        .bind(account_id)
        .bind(email_key)
        .fetch_all(conn)
        .await?;
        rows.iter()
            .map(|row| {
                let user = User {
                    account_id: row.try_get(1)?,
                    email: row.try_get(2)?,
                    display_name: row.try_get(3)?,
                    admin: row.try_get(4)?,
                    active: row.try_get(5)?,
                };
                Ok((SiteKey(row.try_get(0)?), user))
            })
            .collect()
    }

    fn app_from_row(row: &DB::Row) -> Result<AppRecord> {
        let kind: &str = row.try_get(2)?;
        let kind = AppKind::parse(kind).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "kind".into(),
            source: format!("unknown app kind {kind:?}").into(),
        })?;
        let secret: &[u8] = row.try_get(3)?;
        let secret = TokenDigest::from_stored(secret).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "secret_hash".into(),
            source: "stored secret digest is not 32 bytes".into(),
        })?;
        Ok(AppRecord {
            client_id: row.try_get(0)?,
            name: row.try_get(1)?,
            kind,
            secret,
            callback_url: row.try_get(4)?,
            scopes: Scopes::parse(row.try_get(5)?),
            auto_consent: row.try_get(6)?,
            account_id: row.try_get(7)?,
        })
    }
}
