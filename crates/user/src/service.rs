//! The user service's logic, in domain types: accounts, sign-in, token pairs, Google sign-in.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use studio_auth::{Caller, Role};
use studio_core::id::UserId;
use studio_core::{Error, ErrorCode};

use crate::google::{Google, GoogleIdentity};
use crate::keys::KeyRing;
use crate::password::{Passwords, MAX_LEN, MIN_LEN};
use crate::repo::{is_unique_violation, Repo};
use crate::settings::AuthSettings;
use crate::tokens;
use crate::verification::Verifier;

/// A validated email: trimmed, at most 254 characters (RFC 5321), one `@`, a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub display: String,
    /// Lowercased: the unique key.
    pub normalized: String,
}

impl Email {
    pub fn parse(field: &str, value: &str) -> Result<Email, Error> {
        let email = value.trim();
        let bad = || Error::invalid(field, "must be an email address like ada@example.com");
        if email.is_empty() || email.len() > 254 || email.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let (local, domain) = email.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(bad());
        }
        Ok(Email {
            display: email.to_owned(),
            normalized: email.to_lowercase(),
        })
    }
}

/// An account as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// `password`, `google`.
    pub sign_in_methods: Vec<String>,
    /// Whether the owner of the address proved it (a verification link, or Google).
    pub email_verified: bool,
}

/// A fresh access token and refresh token.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub expires_in_s: i64,
    pub refresh_token: String,
    pub refresh_expires_in_s: i64,
    pub user: Account,
}

/// A started Google sign-in.
#[derive(Debug, Clone)]
pub struct GoogleStart {
    pub authorization_url: String,
    pub state: String,
    /// The secret the starting client keeps and presents to finish.
    pub binding: String,
    pub expires_in_s: i64,
}

/// The user service.
#[derive(Debug, Clone)]
pub struct UserService {
    pub(crate) repo: Repo,
    keys: Arc<KeyRing>,
    passwords: Passwords,
    auth: AuthSettings,
    google: Option<Google>,
    validation: Arc<jsonwebtoken::Validation>,
    throttle: Arc<crate::throttle::SignInThrottle>,
    /// Email verification; `None` when `[user.mail]` is absent.
    pub(crate) verifier: Option<Verifier>,
}

pub(crate) fn db(err: sqlx::Error) -> Error {
    tracing::error!(error = %err, "database error");
    Error::internal()
}

fn account(row: crate::repo::UserRow) -> Account {
    let mut methods = Vec::new();
    if row.password_hash.is_some() {
        methods.push("password".to_owned());
    }
    if row.has_google {
        methods.push("google".to_owned());
    }
    Account {
        id: UserId(row.id),
        email: row.email,
        display_name: row.display_name,
        role: Role::parse(&row.role).unwrap_or(Role::User),
        created_at: row.created_at,
        sign_in_methods: methods,
        email_verified: row.email_verified,
    }
}

impl UserService {
    pub fn new(
        repo: Repo,
        keys: Arc<KeyRing>,
        passwords: Passwords,
        auth: AuthSettings,
        google: Option<Google>,
        verifier: Option<Verifier>,
    ) -> Self {
        let validation = Arc::new(studio_auth::validation(&auth.issuer, &auth.audience, 5));
        let throttle = Arc::new(crate::throttle::SignInThrottle::new(
            auth.max_sign_in_failures,
            std::time::Duration::from_secs(auth.sign_in_failure_window_s),
        ));
        UserService {
            throttle,
            repo,
            keys,
            passwords,
            auth,
            google,
            validation,
            verifier,
        }
    }

    /// Creates an account and signs it in; with `[user.mail]` set, a verification mail goes to
    /// the address (through the outbox, committed with the account).
    ///
    /// Errors: `InvalidArgument` naming `email`, `password` or `display_name`; `AlreadyExists`
    /// when the email has an account.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
    ) -> Result<TokenPair, Error> {
        let email = Email::parse("email", email)?;
        let chars = password.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&chars) {
            return Err(Error::invalid(
                "password",
                format!("must be {MIN_LEN} to {MAX_LEN} characters long"),
            ));
        }
        let display_name = display_name.trim();
        if display_name.chars().count() > 100 || display_name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "display_name",
                "must be at most 100 characters, without control characters",
            ));
        }
        let hash = self
            .passwords
            .hash(password.to_owned())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                Error::internal()
            })?;
        let id = UserId::new();
        let mut tx = self.repo.pool.begin().await.map_err(db)?;
        Repo::insert_user(
            &mut tx,
            id.0,
            &email.display,
            &email.normalized,
            display_name,
            Some(&hash),
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::new(
                    ErrorCode::AlreadyExists,
                    "email: an account with this email exists; sign in instead",
                )
                .with_field("email")
            } else {
                db(e)
            }
        })?;
        if let Some(verifier) = &self.verifier {
            verifier.enqueue(&mut tx, id, &email).await.map_err(db)?;
        }
        let pair = self.issue(&mut tx, id, None).await?;
        tx.commit().await.map_err(db)?;
        if let Some(verifier) = &self.verifier {
            verifier.outbox.wake();
        }
        tracing::info!(user_id = %id, "account registered");
        Ok(pair)
    }

    /// Signs in with email and password. `Unauthenticated` for an unknown email or a wrong
    /// password alike, after the same amount of hashing work.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<TokenPair, Error> {
        let refused = || Error::unauthenticated("wrong email or password");
        let email = Email::parse("email", email).map_err(|_| refused())?;
        if password.chars().count() > MAX_LEN {
            return Err(refused());
        }
        if let Err(wait) = self.throttle.check(&email.normalized) {
            metrics::counter!("user_sign_in_throttled_total").increment(1);
            return Err(Error::new(
                ErrorCode::ResourceExhausted,
                format!(
                    "too many wrong passwords for this account; try again in {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
        let user = self
            .repo
            .user_by_email(&email.normalized)
            .await
            .map_err(db)?;
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = self
            .passwords
            .verify(password.to_owned(), hash)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "password verification failed");
                Error::internal()
            })?;
        let Some(user) = user.filter(|_| ok) else {
            metrics::counter!("user_sign_in_failures_total").increment(1);
            self.throttle.failed(&email.normalized);
            return Err(refused());
        };
        self.throttle.succeeded(&email.normalized);
        let mut tx = self.repo.pool.begin().await.map_err(db)?;
        let pair = self.issue(&mut tx, UserId(user.id), None).await?;
        tx.commit().await.map_err(db)?;
        Ok(pair)
    }

    /// Exchanges a refresh token for a new pair; the presented token is spent.
    ///
    /// A spent token presented again revokes its whole family (every token descended from the
    /// same sign-in), unless it comes within `reuse_grace_s` of its first use: then it answers
    /// the same successor refresh token (with a fresh access token), so two tabs refreshing at
    /// once share one new pair, and whichever of a thief and the owner comes second later
    /// revokes the family (security review L8). A family older than `max_session_age_s` is
    /// refused: the user signs in again.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let refused = || {
            Error::unauthenticated("refresh token is invalid, expired or revoked; sign in again")
        };
        let hash = tokens::refresh_hash(refresh_token.trim());
        let mut tx = self.repo.pool.begin().await.map_err(db)?;
        let Some(row) = Repo::lock_refresh(&mut tx, &hash).await.map_err(db)? else {
            return Err(refused());
        };
        let now = Utc::now();
        if row.family_revoked || row.expires_at <= now {
            return Err(refused());
        }
        if (now - row.family_created_at).num_seconds() >= self.auth.max_session_age_s {
            return Err(Error::unauthenticated(format!(
                "this session began more than {} days ago (user.auth.max_session_age_s); sign in again",
                self.auth.max_session_age_s / 86_400
            )));
        }
        if let Some(used_at) = row.used_at {
            let within_grace = (now - used_at).num_seconds() < self.auth.reuse_grace_s;
            if within_grace {
                let replayed = self.replay(&mut tx, &hash, &row).await?;
                tx.commit().await.map_err(db)?;
                return replayed.ok_or_else(refused);
            }
            Repo::revoke_family(&mut *tx, row.family_id, "reuse")
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            metrics::counter!("user_refresh_reuse_total").increment(1);
            tracing::warn!(user_id = %row.user_id, family_id = %row.family_id, "refresh token reused; family revoked");
            return Err(refused());
        }
        let session = Some((row.family_id, row.family_created_at));
        let pair = self.issue(&mut tx, UserId(row.user_id), session).await?;
        let sealed = self
            .keys
            .kek()
            .seal(&successor_aad(&hash), pair.refresh_token.as_bytes())
            .map_err(|e| {
                tracing::error!(error = %e, "sealing the successor token failed");
                Error::internal()
            })?;
        Repo::mark_used(&mut tx, &hash, &sealed).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(pair)
    }

    /// The successor of the spent token `hash`, with a fresh access token, while that successor
    /// is itself unspent; `None` otherwise.
    async fn replay(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        hash: &[u8],
        row: &crate::repo::RefreshRow,
    ) -> Result<Option<TokenPair>, Error> {
        let Some(sealed) = &row.successor_sealed else {
            return Ok(None);
        };
        let successor = self
            .keys
            .kek()
            .open(&successor_aad(hash), sealed)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some(successor) = successor else {
            tracing::error!(family_id = %row.family_id, "a sealed successor token does not open");
            return Ok(None);
        };
        let next = Repo::lock_refresh(tx, &tokens::refresh_hash(&successor))
            .await
            .map_err(db)?;
        let now = Utc::now();
        let Some(next) = next.filter(|n| n.used_at.is_none() && n.expires_at > now) else {
            return Ok(None);
        };
        let (user, access_token) = self.access(tx, UserId(row.user_id)).await?;
        metrics::counter!("user_refresh_replayed_total").increment(1);
        Ok(Some(TokenPair {
            access_token,
            expires_in_s: self.auth.access_ttl_s,
            refresh_token: successor,
            refresh_expires_in_s: (next.expires_at - now).num_seconds(),
            user,
        }))
    }

    /// Revokes the family of `refresh_token`. Unknown tokens are accepted silently.
    pub async fn sign_out(&self, refresh_token: &str) -> Result<(), Error> {
        let hash = tokens::refresh_hash(refresh_token.trim());
        if let Some(family) = self.repo.family_of(&hash).await.map_err(db)? {
            Repo::revoke_family(&self.repo.pool, family, "sign-out")
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    /// The account of a verified caller. `NotFound` if it was deleted since the token was issued.
    pub async fn me(&self, caller: Caller) -> Result<Account, Error> {
        Repo::user_by_id(&self.repo.pool, caller.user_id.0)
            .await
            .map_err(db)?
            .map(account)
            .ok_or_else(|| Error::not_found("user"))
    }

    /// Verifies an access token against this service's own keys.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, Error> {
        let set = self.keys.jwks().await.map_err(|e| {
            tracing::error!(error = %e, "signing keys unavailable");
            Error::internal()
        })?;
        studio_auth::verify_with_set(token, &set, &self.validation).map_err(|e| {
            tracing::debug!(error = %e, "access token refused");
            Error::from(e)
        })
    }

    /// Makes a new signing key current. `PermissionDenied` unless the caller is an admin.
    pub async fn rotate_signing_key(&self, caller: Caller) -> Result<String, Error> {
        if caller.role != Role::Admin {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                "rotating signing keys needs the admin role",
            ));
        }
        self.keys.rotate().await.map_err(|e| {
            tracing::error!(error = %e, "key rotation failed");
            Error::internal()
        })
    }

    /// The public keys (JWKS) for verifiers.
    pub async fn jwks(&self) -> Result<jsonwebtoken::jwk::JwkSet, Error> {
        self.keys.jwks().await.map_err(|e| {
            tracing::error!(error = %e, "signing keys unavailable");
            Error::internal()
        })
    }

    /// Starts Google sign-in; returns (authorization URL, state, lifetime in seconds).
    /// `FailedPrecondition` when Google sign-in is not configured; `InvalidArgument` for a
    /// redirect URI that is not registered.
    /// Starts Google sign-in: the authorization URL to send the browser to, the `state` Google
    /// sends back, a `binding` secret the starting client keeps (in `sessionStorage`) and must
    /// present to finish, and the seconds the sign-in stays open. Only the binding's SHA-256 is
    /// stored.
    pub async fn start_google(&self, redirect_uri: &str) -> Result<GoogleStart, Error> {
        let google = self.google()?;
        let start = google.start(redirect_uri)?;
        let expires_at = Utc::now() + chrono::Duration::seconds(google.state_ttl_s());
        let binding = tokens::random_secret();
        self.repo
            .insert_oauth_state(
                &start.state,
                "google",
                start.pkce_verifier.expose_secret(),
                redirect_uri,
                expires_at,
                &tokens::refresh_hash(&binding),
            )
            .await
            .map_err(db)?;
        Ok(GoogleStart {
            authorization_url: start.authorization_url,
            state: start.state,
            binding,
            expires_in_s: google.state_ttl_s(),
        })
    }

    /// Finishes Google sign-in: checks that `binding` is the secret of the client that started
    /// it (so a link carrying someone else's code and state signs no one in: login CSRF,
    /// security review M6), exchanges the code (with the PKCE verifier), reads the userinfo,
    /// then signs in the linked account, links an account with the same verified email, or
    /// creates one. A state is spent by its first finish, right or wrong.
    pub async fn finish_google(
        &self,
        code: &str,
        state: &str,
        binding: &str,
    ) -> Result<TokenPair, Error> {
        let google = self.google()?;
        let refused = || Error::unauthenticated("sign-in state is unknown or expired; start again");
        let pending = self
            .repo
            .take_oauth_state(state, "google")
            .await
            .map_err(db)?
            .filter(|p| p.expires_at > Utc::now())
            .ok_or_else(refused)?;
        let presented = tokens::refresh_hash(binding.trim());
        // Digests of a random secret: comparing them tells a guesser nothing.
        let bound = pending.binding_hash.as_deref() == Some(presented.as_slice());
        if !bound {
            metrics::counter!("user_google_unbound_finishes_total").increment(1);
            return Err(Error::unauthenticated(
                "this sign-in was started in another browser; start again here",
            ));
        }
        let identity = google
            .exchange(code, &pending.pkce_verifier, &pending.redirect_uri)
            .await?;
        let user_id = self.link_or_create(&identity).await?;
        let mut tx = self.repo.pool.begin().await.map_err(db)?;
        let pair = self.issue(&mut tx, user_id, None).await?;
        tx.commit().await.map_err(db)?;
        Ok(pair)
    }

    fn google(&self) -> Result<&Google, Error> {
        self.google.as_ref().ok_or_else(|| {
            Error::new(
                ErrorCode::FailedPrecondition,
                "Google sign-in is not configured on this server (user.google)",
            )
        })
    }

    async fn link_or_create(&self, identity: &GoogleIdentity) -> Result<UserId, Error> {
        if let Some(id) = self
            .repo
            .user_by_link("google", &identity.subject)
            .await
            .map_err(db)?
        {
            return Ok(UserId(id));
        }
        if !identity.email_verified {
            return Err(Error::unauthenticated(
                "Google did not verify this account's email; verify it with Google first",
            ));
        }
        let email = Email::parse("email", &identity.email)
            .map_err(|_| Error::unauthenticated("Google returned no usable email"))?;
        let mut tx = self.repo.pool.begin().await.map_err(db)?;
        let existing = self
            .repo
            .user_by_email(&email.normalized)
            .await
            .map_err(db)?;
        let id = match existing {
            // Google has verified that this person owns the address. A password account whose
            // owner never proved the address (its link unused) may have been registered in
            // someone else's name: it is adopted without its password, and every session the
            // password opened is revoked, so it cannot be kept (account pre-hijacking,
            // security review H4). A verified one is the same person's and keeps its password.
            Some(user) if user.password_hash.is_some() && !user.email_verified => {
                Repo::drop_password(&mut *tx, user.id).await.map_err(db)?;
                let revoked =
                    Repo::revoke_families_of(&mut *tx, user.id, "adopted by google sign-in")
                        .await
                        .map_err(db)?;
                Repo::mark_verified(&mut *tx, user.id).await.map_err(db)?;
                tracing::warn!(
                    user = %user.id,
                    revoked,
                    "google sign-in adopted a password account whose address was never verified; its password and sessions are revoked"
                );
                UserId(user.id)
            }
            Some(user) => {
                Repo::mark_verified(&mut *tx, user.id).await.map_err(db)?;
                UserId(user.id)
            }
            None => {
                let id = UserId::new();
                Repo::insert_user(
                    &mut tx,
                    id.0,
                    &email.display,
                    &email.normalized,
                    identity.name.trim(),
                    None,
                )
                .await
                .map_err(db)?;
                Repo::mark_verified(&mut *tx, id.0).await.map_err(db)?;
                id
            }
        };
        Repo::insert_link(
            &mut tx,
            "google",
            &identity.subject,
            id.0,
            &email.normalized,
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    /// Signs an access token for `user_id` (read in `tx`).
    async fn access(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        user_id: UserId,
    ) -> Result<(Account, String), Error> {
        let user = Repo::user_by_id(&mut **tx, user_id.0)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::unauthenticated("the account no longer exists"))?;
        let user = account(user);
        let key = self.keys.current().await.map_err(|e| {
            tracing::error!(error = %e, "signing key unavailable");
            Error::internal()
        })?;
        let access_token = tokens::access_token(
            &key,
            &self.auth.issuer,
            &self.auth.audience,
            user_id,
            user.role,
            Utc::now().timestamp(),
            self.auth.access_ttl_s,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "signing failed");
            Error::internal()
        })?;
        Ok((user, access_token))
    }

    /// Signs an access token and stores a new refresh token, in the `session` (family id and
    /// when it began) or a new one. The refresh token expires after `refresh_ttl_s`, or when
    /// the session reaches `max_session_age_s`, whichever is first.
    async fn issue(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        user_id: UserId,
        session: Option<(uuid::Uuid, DateTime<Utc>)>,
    ) -> Result<TokenPair, Error> {
        let (user, access_token) = self.access(tx, user_id).await?;
        let now = Utc::now();
        let (family, began) = match session {
            Some(session) => session,
            None => {
                let family = uuid::Uuid::now_v7();
                Repo::insert_family(tx, family, user_id.0)
                    .await
                    .map_err(db)?;
                (family, now)
            }
        };
        let expires_at = (now + chrono::Duration::seconds(self.auth.refresh_ttl_s))
            .min(began + chrono::Duration::seconds(self.auth.max_session_age_s));
        let refresh_token = tokens::new_refresh_token();
        Repo::insert_refresh(
            tx,
            &tokens::refresh_hash(&refresh_token),
            family,
            user_id.0,
            expires_at,
        )
        .await
        .map_err(db)?;
        Ok(TokenPair {
            access_token,
            expires_in_s: self.auth.access_ttl_s,
            refresh_token,
            refresh_expires_in_s: (expires_at - now).num_seconds(),
            user,
        })
    }
}

/// The associated data sealing a spent token's successor: the spent token's digest, so a
/// sealed successor cannot be moved to another row.
fn successor_aad(spent_hash: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "successor:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(spent_hash)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_normalised() {
        let email = Email::parse("email", "  Ada@Example.COM ").unwrap();
        assert_eq!(email.normalized, "ada@example.com");
        assert_eq!(email.display, "Ada@Example.COM");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.d",
        ] {
            let err = Email::parse("email", bad).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("email"), "{bad}");
        }
    }
}
