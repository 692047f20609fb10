//! Email verification for password accounts: a mail with a single-use link when an account is
//! registered (and on request), and the check of the token the link carries.
//!
//! The token is 32 random bytes (base64url); only its SHA-256 is stored, bound to the address it
//! was sent to, so it verifies that address and nothing else. Google sign-in marks an address
//! verified on its own (Google's `email_verified`), and only then may it link a password account
//! without revoking it (security review H4).

use chrono::Utc;
use sqlx::{Postgres, Transaction};
use studio_auth::Caller;
use studio_core::id::UserId;
use studio_core::{Error, ErrorCode};

use crate::mail::outbox::{self, Outbox};
use crate::mail::Mail;
use crate::repo::Repo;
use crate::service::{db, Email, UserService};
use crate::settings::MailSettings;
use crate::tokens;

/// The mail side of verification: the settings and the outbox that delivers.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub settings: MailSettings,
    pub outbox: Outbox,
}

/// "24 hours", "90 minutes": how long a link works, for the mail's text.
fn lifetime(seconds: i64) -> String {
    if seconds % 3600 == 0 {
        let hours = seconds / 3600;
        format!("{hours} hour{}", if hours == 1 { "" } else { "s" })
    } else {
        format!("{} minutes", (seconds + 59) / 60)
    }
}

impl Verifier {
    /// Stores a new token for `email` of `user` and enqueues its mail, inside `tx`. The caller
    /// wakes the outbox after committing.
    pub async fn enqueue(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        user: UserId,
        email: &Email,
    ) -> Result<(), sqlx::Error> {
        let token = tokens::random_secret();
        let expires_at = Utc::now() + chrono::Duration::seconds(self.settings.verification_ttl_s);
        sqlx::query!(
            r#"INSERT INTO email_verifications (token_hash, user_id, email_normalized, expires_at)
               VALUES ($1, $2, $3, $4)"#,
            tokens::refresh_hash(&token),
            user.0,
            email.normalized,
            expires_at
        )
        .execute(&mut **tx)
        .await?;
        let link = self.settings.verify_url.replace("{token}", &token);
        let mail = Mail {
            to: email.display.clone(),
            subject: "Verify your email address for Studio".to_owned(),
            text: format!(
                "Someone, hopefully you, created a Studio account with this address.\n\
                 Open this link within {} to verify it:\n\n{link}\n\n\
                 If it was not you, ignore this mail: without the link the address stays \
                 unverified.\n",
                lifetime(self.settings.verification_ttl_s)
            ),
        };
        outbox::enqueue(tx, "verification", &mail).await?;
        Ok(())
    }
}

impl UserService {
    fn verifier(&self) -> Result<&Verifier, Error> {
        self.verifier.as_ref().ok_or_else(|| {
            Error::new(
                ErrorCode::FailedPrecondition,
                "email is not configured on this server (user.mail); addresses cannot be verified",
            )
        })
    }

    /// Verifies the address a verification link was sent to; returns that address.
    ///
    /// Presenting a spent token again answers the same while the account stays verified (mail
    /// scanners open links before people do).
    ///
    /// Errors: `InvalidArgument` naming `token` when it is unknown, expired, or was sent to an
    /// address the account no longer has.
    pub async fn verify_email(&self, token: &str) -> Result<String, Error> {
        let refused = |why: &str| {
            Error::invalid(
                "token",
                format!("this verification link {why}; sign in and ask for a new one"),
            )
        };
        let hash = tokens::refresh_hash(token.trim());
        let mut tx = self.repo.pool.begin().await.map_err(db)?;
        let row = sqlx::query!(
            r#"SELECT v.user_id, v.email_normalized AS sent_to, v.expires_at, v.used_at,
                      u.email, u.email_normalized AS current, u.email_verified_at
               FROM email_verifications v JOIN users u ON u.id = v.user_id
               WHERE v.token_hash = $1 FOR UPDATE OF v, u"#,
            hash
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or_else(|| refused("is unknown"))?;
        if row.sent_to != row.current {
            return Err(refused("was sent to another address"));
        }
        if row.used_at.is_some() {
            return match row.email_verified_at {
                Some(_) => Ok(row.email),
                None => Err(refused("was already used")),
            };
        }
        if row.expires_at <= Utc::now() {
            return Err(refused("has expired"));
        }
        sqlx::query!(
            "UPDATE email_verifications SET used_at = now() WHERE token_hash = $1",
            hash
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        Repo::mark_verified(&mut *tx, row.user_id)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        metrics::counter!("user_email_verified_total").increment(1);
        tracing::info!(user_id = %row.user_id, "email verified");
        Ok(row.email)
    }

    /// Sends the caller a new verification mail; returns the new link's lifetime in seconds.
    ///
    /// Errors: `FailedPrecondition` when mail is not configured or the address is already
    /// verified; `ResourceExhausted` within `user.mail.resend_after_s` of the last mail;
    /// `NotFound` when the account was deleted.
    pub async fn resend_verification(&self, caller: Caller) -> Result<i64, Error> {
        let verifier = self.verifier()?;
        let mut tx = self.repo.pool.begin().await.map_err(db)?;
        // The row lock makes two concurrent requests send one mail.
        let user = sqlx::query!(
            r#"SELECT email, email_verified_at,
                      (SELECT max(created_at) FROM email_verifications v WHERE v.user_id = u.id) AS last_sent
               FROM users u WHERE id = $1 FOR UPDATE"#,
            caller.user_id.0
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::not_found("user"))?;
        if user.email_verified_at.is_some() {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                "email: this address is already verified",
            )
            .with_field("email"));
        }
        if let Some(last) = user.last_sent {
            let since = (Utc::now() - last).num_seconds();
            let wait = verifier.settings.resend_after_s - since;
            if wait > 0 {
                return Err(Error::new(
                    ErrorCode::ResourceExhausted,
                    format!(
                        "a verification mail went out {since} s ago; ask again in {wait} s (user.mail.resend_after_s)"
                    ),
                ));
            }
        }
        let email = Email::parse("email", &user.email)?;
        verifier
            .enqueue(&mut tx, caller.user_id, &email)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        verifier.outbox.wake();
        Ok(verifier.settings.verification_ttl_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_as_hours_or_minutes() {
        assert_eq!(lifetime(86_400), "24 hours");
        assert_eq!(lifetime(3_600), "1 hour");
        assert_eq!(lifetime(5_400), "90 minutes");
        assert_eq!(lifetime(300), "5 minutes");
    }
}
