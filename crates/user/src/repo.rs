//! Postgres access for the user service (sqlx, checked at compile time against the migrations).

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// A user row with how they can sign in.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub password_hash: Option<String>,
    pub has_google: bool,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

/// The state of a presented refresh token, read under a row lock.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub family_revoked: bool,
    /// When the sign-in that started the family happened.
    pub family_created_at: DateTime<Utc>,
    /// The token this one was exchanged for, sealed; kept for the reuse grace window.
    pub successor_sealed: Option<Vec<u8>>,
}

/// A pending external sign-in.
#[derive(Debug, Clone)]
pub struct OAuthState {
    pub pkce_verifier: String,
    pub redirect_uri: String,
    pub expires_at: DateTime<Utc>,
    /// SHA-256 of the secret the starting client keeps.
    pub binding_hash: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub pool: PgPool,
}

/// Whether `err` is a unique-constraint violation (SQLSTATE 23505).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

impl Repo {
    pub async fn insert_user(
        tx: &mut Transaction<'_, Postgres>,
        id: Uuid,
        email: &str,
        email_normalized: &str,
        display_name: &str,
        password_hash: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            r#"INSERT INTO users (id, email, email_normalized, display_name, password_hash)
               VALUES ($1, $2, $3, $4, $5)"#,
            id,
            email,
            email_normalized,
            display_name,
            password_hash
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn user_by_email(
        &self,
        email_normalized: &str,
    ) -> Result<Option<UserRow>, sqlx::Error> {
        sqlx::query_as!(
            UserRow,
            r#"SELECT id, email, display_name, role, password_hash, created_at,
                      EXISTS (SELECT 1 FROM oauth_links l WHERE l.user_id = u.id) AS "has_google!",
                      email_verified_at IS NOT NULL AS "email_verified!"
               FROM users u WHERE email_normalized = $1"#,
            email_normalized
        )
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn user_by_id(
        executor: impl sqlx::PgExecutor<'_>,
        id: Uuid,
    ) -> Result<Option<UserRow>, sqlx::Error> {
        sqlx::query_as!(
            UserRow,
            r#"SELECT id, email, display_name, role, password_hash, created_at,
                      EXISTS (SELECT 1 FROM oauth_links l WHERE l.user_id = u.id) AS "has_google!",
                      email_verified_at IS NOT NULL AS "email_verified!"
               FROM users u WHERE id = $1"#,
            id
        )
        .fetch_optional(executor)
        .await
    }

    /// Marks the account's address verified (keeping the first time it was).
    pub async fn mark_verified(
        executor: impl sqlx::PgExecutor<'_>,
        id: Uuid,
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now() WHERE id = $1",
            id
        )
        .execute(executor)
        .await?;
        Ok(())
    }

    pub async fn insert_family(
        tx: &mut Transaction<'_, Postgres>,
        family_id: Uuid,
        user_id: Uuid,
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO refresh_families (id, user_id) VALUES ($1, $2)",
            family_id,
            user_id
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn insert_refresh(
        tx: &mut Transaction<'_, Postgres>,
        token_hash: &[u8],
        family_id: Uuid,
        user_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            r#"INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)
               VALUES ($1, $2, $3, $4)"#,
            token_hash,
            family_id,
            user_id,
            expires_at
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Reads a refresh token and locks its row until the transaction ends, so two concurrent
    /// refreshes with one token are serialised.
    pub async fn lock_refresh(
        tx: &mut Transaction<'_, Postgres>,
        token_hash: &[u8],
    ) -> Result<Option<RefreshRow>, sqlx::Error> {
        sqlx::query_as!(
            RefreshRow,
            r#"SELECT t.family_id, t.user_id, t.expires_at, t.used_at,
                      (f.revoked_at IS NOT NULL) AS "family_revoked!",
                      f.created_at AS family_created_at, t.successor_sealed
               FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
               WHERE t.token_hash = $1
               FOR UPDATE OF t"#,
            token_hash
        )
        .fetch_optional(&mut **tx)
        .await
    }

    /// Spends the token, keeping its `successor` (sealed) for the reuse grace window.
    pub async fn mark_used(
        tx: &mut Transaction<'_, Postgres>,
        token_hash: &[u8],
        successor_sealed: &[u8],
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "UPDATE refresh_tokens SET used_at = now(), successor_sealed = $2 WHERE token_hash = $1",
            token_hash,
            successor_sealed
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Revokes a family unless it is revoked already; returns whether this call revoked it.
    pub async fn revoke_family(
        executor: impl sqlx::PgExecutor<'_>,
        family_id: Uuid,
        reason: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query!(
            r#"UPDATE refresh_families SET revoked_at = now(), revoked_reason = $2
               WHERE id = $1 AND revoked_at IS NULL"#,
            family_id,
            reason
        )
        .execute(executor)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a user's password, so only their linked identities sign them in.
    pub async fn drop_password(
        executor: impl sqlx::PgExecutor<'_>,
        user_id: Uuid,
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "UPDATE users SET password_hash = NULL, updated_at = now() WHERE id = $1",
            user_id
        )
        .execute(executor)
        .await?;
        Ok(())
    }

    /// Revokes every live refresh family of a user; returns how many.
    pub async fn revoke_families_of(
        executor: impl sqlx::PgExecutor<'_>,
        user_id: Uuid,
        reason: &str,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query!(
            r#"UPDATE refresh_families SET revoked_at = now(), revoked_reason = $2
               WHERE user_id = $1 AND revoked_at IS NULL"#,
            user_id,
            reason
        )
        .execute(executor)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn family_of(&self, token_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
        let row = sqlx::query!(
            "SELECT family_id FROM refresh_tokens WHERE token_hash = $1",
            token_hash
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.family_id))
    }

    pub async fn insert_oauth_state(
        &self,
        state: &str,
        provider: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
        expires_at: DateTime<Utc>,
        binding_hash: &[u8],
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            r#"INSERT INTO oauth_states
                   (state, provider, pkce_verifier, redirect_uri, expires_at, binding_hash)
               VALUES ($1, $2, $3, $4, $5, $6)"#,
            state,
            provider,
            pkce_verifier,
            redirect_uri,
            expires_at,
            binding_hash
        )
        .execute(&self.pool)
        .await?;
        // Expired states are useless; drop them while we are here.
        sqlx::query!("DELETE FROM oauth_states WHERE expires_at < now() - interval '1 hour'")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes a pending sign-in: it can be finished once.
    pub async fn take_oauth_state(
        &self,
        state: &str,
        provider: &str,
    ) -> Result<Option<OAuthState>, sqlx::Error> {
        sqlx::query_as!(
            OAuthState,
            r#"DELETE FROM oauth_states WHERE state = $1 AND provider = $2
               RETURNING pkce_verifier, redirect_uri, expires_at, binding_hash"#,
            state,
            provider
        )
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn user_by_link(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<Uuid>, sqlx::Error> {
        let row = sqlx::query!(
            "SELECT user_id FROM oauth_links WHERE provider = $1 AND subject = $2",
            provider,
            subject
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.user_id))
    }

    pub async fn insert_link(
        tx: &mut Transaction<'_, Postgres>,
        provider: &str,
        subject: &str,
        user_id: Uuid,
        email: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            r#"INSERT INTO oauth_links (provider, subject, user_id, email) VALUES ($1, $2, $3, $4)
               ON CONFLICT (provider, subject) DO NOTHING"#,
            provider,
            subject,
            user_id,
            email
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
