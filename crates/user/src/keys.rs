//! Signing keys: Ed25519 key pairs kept in Postgres with the private half sealed
//! (ChaCha20-Poly1305, RFC 8439) under the key-encryption key from settings.
//!
//! The newest unretired key signs. The JWKS publishes every unretired key plus keys retired less
//! than one access-token lifetime ago, so tokens signed just before a rotation still verify.
//! Each replica reloads the ring every [`RELOAD_EVERY`], so a rotation on one replica reaches the
//! others within that time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::EncodingKey;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use sqlx::PgPool;
use tokio::sync::RwLock;

/// How often a replica rereads the keys from Postgres.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);

/// The key-encryption key.
#[derive(Clone)]
pub struct Kek(Arc<LessSafeKey>);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([REDACTED])")
    }
}

impl Kek {
    /// Parses 32 bytes in standard base64.
    pub fn parse(base64: &str) -> Result<Kek, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(base64.trim())
            .map_err(|_| "must be base64 (openssl rand -base64 32)".to_owned())?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| format!("must decode to 32 bytes, got {}", bytes.len()))?;
        Ok(Kek(Arc::new(LessSafeKey::new(key))))
    }

    /// `nonce ‖ ciphertext ‖ tag`, with `kid` as associated data so a sealed key cannot be moved
    /// to another row.
    pub(crate) fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Crypto("no randomness"))?;
        let mut sealed = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| KeyError::Crypto("seal failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub(crate) fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::Crypto("sealed key too short"));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Crypto("bad nonce"))?;
        let mut buf = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| KeyError::WrongKek(kid.to_owned()))?;
        Ok(plain.to_vec())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("crypto: {0}")]
    Crypto(&'static str),
    #[error(
        "signing key {0} does not open with user.auth.key_encryption_key (was the key changed?)"
    )]
    WrongKek(String),
}

/// The key that signs new tokens.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

struct Ring {
    current: SigningKey,
    jwks: jsonwebtoken::jwk::JwkSet,
    loaded: Instant,
}

/// The signing keys of this service, reloaded from Postgres every [`RELOAD_EVERY`].
pub struct KeyRing {
    pool: PgPool,
    kek: Kek,
    /// Keys retired less than this long ago stay in the JWKS (the access-token lifetime).
    publish_retired_for: chrono::Duration,
    ring: RwLock<Ring>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").finish_non_exhaustive()
    }
}

impl KeyRing {
    /// The key-encryption key, for other secrets kept at rest.
    pub(crate) fn kek(&self) -> &Kek {
        &self.kek
    }

    /// Loads the keys, creating the first one on an empty table.
    pub async fn load(
        pool: PgPool,
        kek: Kek,
        publish_retired_for: chrono::Duration,
    ) -> Result<KeyRing, KeyError> {
        let ring = read(&pool, &kek, publish_retired_for).await?;
        let ring = match ring {
            Some(ring) => ring,
            None => {
                insert_new_key(&pool, &kek).await?;
                read(&pool, &kek, publish_retired_for)
                    .await?
                    .ok_or(KeyError::Crypto("the new key is not readable"))?
            }
        };
        Ok(KeyRing {
            pool,
            kek,
            publish_retired_for,
            ring: RwLock::new(ring),
        })
    }

    /// The key to sign with now.
    pub async fn current(&self) -> Result<SigningKey, KeyError> {
        self.reload_if_stale().await?;
        Ok(self.ring.read().await.current.clone())
    }

    /// The public keys verifiers accept (RFC 7517 JWK Set).
    pub async fn jwks(&self) -> Result<jsonwebtoken::jwk::JwkSet, KeyError> {
        self.reload_if_stale().await?;
        Ok(self.ring.read().await.jwks.clone())
    }

    /// Makes a new key current and retires the others; returns its `kid`.
    pub async fn rotate(&self) -> Result<String, KeyError> {
        let kid = insert_new_key(&self.pool, &self.kek).await?;
        sqlx::query!(
            "UPDATE signing_keys SET retired_at = now() WHERE kid <> $1 AND retired_at IS NULL",
            kid
        )
        .execute(&self.pool)
        .await?;
        self.reload().await?;
        tracing::info!(%kid, "signing key rotated");
        Ok(kid)
    }

    async fn reload_if_stale(&self) -> Result<(), KeyError> {
        if self.ring.read().await.loaded.elapsed() >= RELOAD_EVERY {
            self.reload().await?;
        }
        Ok(())
    }

    async fn reload(&self) -> Result<(), KeyError> {
        if let Some(ring) = read(&self.pool, &self.kek, self.publish_retired_for).await? {
            *self.ring.write().await = ring;
        }
        Ok(())
    }
}

async fn insert_new_key(pool: &PgPool, kek: &Kek) -> Result<String, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Crypto("keygen failed"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| KeyError::Crypto("generated key unreadable"))?;
    let mut tag = [0u8; 6];
    rng.fill(&mut tag)
        .map_err(|_| KeyError::Crypto("no randomness"))?;
    let kid = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%d"),
        tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let sealed = kek.seal(&kid, pkcs8.as_ref())?;
    sqlx::query!(
        "INSERT INTO signing_keys (kid, sealed_private, public_key) VALUES ($1, $2, $3)",
        kid,
        sealed,
        pair.public_key().as_ref()
    )
    .execute(pool)
    .await?;
    Ok(kid)
}

async fn read(
    pool: &PgPool,
    kek: &Kek,
    publish_retired_for: chrono::Duration,
) -> Result<Option<Ring>, KeyError> {
    let since = chrono::Utc::now() - publish_retired_for;
    let rows = sqlx::query!(
        r#"SELECT kid, sealed_private, public_key, retired_at
           FROM signing_keys
           WHERE retired_at IS NULL OR retired_at > $1
           ORDER BY created_at DESC, kid DESC"#,
        since
    )
    .fetch_all(pool)
    .await?;
    let Some(newest) = rows.iter().find(|r| r.retired_at.is_none()) else {
        return Ok(None);
    };
    let private = kek.open(&newest.kid, &newest.sealed_private)?;
    let current = SigningKey {
        kid: newest.kid.clone(),
        encoding: EncodingKey::from_ed_der(&private),
    };
    let keys = rows
        .iter()
        .map(|r| studio_auth::ed25519_jwk(&r.kid, &r.public_key))
        .collect();
    Ok(Some(Ring {
        current,
        jwks: jsonwebtoken::jwk::JwkSet { keys },
        loaded: Instant::now(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_kek_and_kid() {
        let kek = Kek::parse(crate::settings::DEVELOPMENT_KEK).unwrap();
        let sealed = kek.seal("k1", b"secret key").unwrap();
        assert_eq!(kek.open("k1", &sealed).unwrap(), b"secret key");
        assert!(kek.open("k2", &sealed).is_err());
        let other = Kek::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        assert!(other.open("k1", &sealed).is_err());
        assert!(Kek::parse("c2hvcnQ=").is_err());
    }
}
