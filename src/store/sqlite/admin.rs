//! Administration on sqlite: users, tokens, reset and snapshots. Not on any hot path.

use sqlx::Row;

use super::{SqliteStore, insert_user, user_from_row};
use crate::credentials::TokenDigest;
use crate::domain::{User, email_key};
use crate::store::admin::{PatchOutcome, Snapshot, TokenInfo, UserPatch};
use crate::store::stored_digest;

impl SqliteStore {
    pub(in crate::store) async fn users(&self) -> sqlx::Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT account_id, email, display_name, admin, active FROM users ORDER BY account_id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub(in crate::store) async fn update_user(
        &self,
        account_id: &str,
        patch: &UserPatch,
    ) -> sqlx::Result<PatchOutcome> {
        let updated = sqlx::query(
            "UPDATE users SET
                 email = COALESCE($2, email),
                 email_key = COALESCE($3, email_key),
                 display_name = COALESCE($4, display_name),
                 admin = COALESCE($5, admin),
                 active = COALESCE($6, active)
             WHERE account_id = $1",
        )
        .bind(account_id)
        .bind(patch.email.as_deref())
        .bind(patch.email.as_deref().map(email_key))
        .bind(patch.display_name.as_deref())
        .bind(patch.admin)
        .bind(patch.active)
        .execute(&self.writer)
        .await;
        self.forget();
        match updated {
            Ok(done) if done.rows_affected() == 0 => Ok(PatchOutcome::NoSuchUser),
            Ok(_) => Ok(PatchOutcome::Updated),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Ok(PatchOutcome::EmailTaken)
            }
            Err(e) => Err(e),
        }
    }

    pub(in crate::store) async fn delete_user(&self, account_id: &str) -> sqlx::Result<bool> {
        let done = sqlx::query("DELETE FROM users WHERE account_id = $1")
            .bind(account_id)
            .execute(&self.writer)
            .await?;
        self.forget();
        Ok(done.rows_affected() > 0)
    }

    pub(in crate::store) async fn add_token(
        &self,
        account_id: &str,
        digest: &TokenDigest,
    ) -> sqlx::Result<Option<String>> {
        let id = sqlx::query_scalar(
            "INSERT INTO api_tokens (token_hash, account_id, id)
             SELECT $1, account_id, $3 FROM users WHERE account_id = $2
             RETURNING id",
        )
        .bind(digest.as_bytes())
        .bind(account_id)
        .bind(crate::store::new_token_id()?)
        .fetch_optional(&self.writer)
        .await?;
        self.forget();
        Ok(id)
    }

    pub(in crate::store) async fn tokens(
        &self,
        account_id: &str,
    ) -> sqlx::Result<Option<Vec<TokenInfo>>> {
        let rows = sqlx::query(
            "SELECT t.id, CAST(t.created_at AS TEXT) FROM users u
             LEFT JOIN api_tokens t ON t.account_id = u.account_id
             WHERE u.account_id = $1 ORDER BY t.created_at, t.id",
        )
        .bind(account_id)
        .fetch_all(&self.reader)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut tokens = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(id) = row.try_get::<Option<String>, _>(0)? {
                tokens.push(TokenInfo {
                    id,
                    created_at: row.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                });
            }
        }
        Ok(Some(tokens))
    }

    pub(in crate::store) async fn revoke_token(
        &self,
        account_id: &str,
        id: &str,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .execute(&self.writer)
            .await?;
        self.forget();
        Ok(done.rows_affected() > 0)
    }

    pub(in crate::store) async fn reset(&self, everything: bool) -> sqlx::Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM properties")
            .execute(&mut *tx)
            .await?;
        if everything {
            sqlx::query("DELETE FROM api_tokens")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM users").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.forget();
        Ok(())
    }

    pub(in crate::store) async fn snapshot(&self) -> sqlx::Result<Snapshot> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let users = sqlx::query(
            "SELECT account_id, email, display_name, admin, active FROM users ORDER BY account_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let tokens = sqlx::query(
            "SELECT account_id, token_hash FROM api_tokens ORDER BY account_id, token_hash",
        )
        .fetch_all(&mut *tx)
        .await?;
        let properties =
            sqlx::query("SELECT account_id, key, value FROM properties ORDER BY account_id, key")
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        let mut snapshot = Snapshot::default();
        for row in &users {
            snapshot.users.push((user_from_row(row)?, Vec::new()));
        }
        for row in &tokens {
            let owner: String = row.try_get(0)?;
            let digest = stored_digest(row.try_get(1)?)?;
            if let Ok(index) = snapshot
                .users
                .binary_search_by(|(user, _)| user.account_id.as_str().cmp(&owner))
            {
                snapshot.users[index].1.push(digest);
            }
        }
        for row in &properties {
            snapshot
                .properties
                .push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
        }
        Ok(snapshot)
    }

    pub(in crate::store) async fn restore(&self, snapshot: &Snapshot) -> sqlx::Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM properties")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM api_tokens")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users").execute(&mut *tx).await?;
        for (user, digests) in &snapshot.users {
            insert_user(&mut tx, user).await?;
            for digest in digests {
                sqlx::query(
                    "INSERT INTO api_tokens (token_hash, account_id, id) VALUES ($1, $2, $3)",
                )
                .bind(digest.as_bytes())
                .bind(&user.account_id)
                .bind(crate::store::new_token_id()?)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (account_id, key, value) in &snapshot.properties {
            sqlx::query("INSERT INTO properties (account_id, key, value) VALUES ($1, $2, $3)")
                .bind(account_id)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.forget();
        Ok(())
    }

    pub(in crate::store) async fn ready(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1 FROM users LIMIT 1")
            .fetch_optional(&self.reader)
            .await?;
        Ok(())
    }
}
