//! Password hashing with argon2id (RFC 9106), off the async runtime.
//!
//! Hashes run on Tokio's blocking pool behind a semaphore (one per CPU by default): each takes
//! `memory_kib` of RAM, so unbounded concurrency would let a burst of sign-ins exhaust memory.
//! An unknown email still costs one verification against a fixed hash, so response time does not
//! tell which emails have accounts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::settings::PasswordSettings;

/// Shortest accepted password, in characters (NIST SP 800-63B §5.1.1.2 asks for at least 8).
pub const MIN_LEN: usize = 8;
/// Longest accepted password, in characters; bounds hashing work per request.
pub const MAX_LEN: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("argon2: {0}")]
    Hash(String),
    #[error("hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    argon: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
    busy: Arc<Busy>,
    /// A real hash of a random password, verified when the account does not exist.
    decoy: Arc<String>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    pub fn new(settings: &PasswordSettings) -> Result<Passwords, PasswordError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let decoy = argon
            .hash_password(b"decoy password for unknown accounts", &salt)
            .map_err(|e| PasswordError::Hash(e.to_string()))?
            .to_string();
        let permits = settings.max_concurrent.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        Ok(Passwords {
            argon: Arc::new(argon),
            permits: Arc::new(Semaphore::new(permits.max(1))),
            busy: Arc::default(),
            decoy: Arc::new(decoy),
        })
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let permit = self.permit().await;
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = hashing(permit);
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `hash`; `None` verifies against the decoy and returns false.
    /// A stored hash with other parameters still verifies (they are in the PHC string).
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        let permit = self.permit().await;
        let argon = self.argon.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.as_str().to_owned());
        tokio::task::spawn_blocking(move || {
            let _permit = hashing(permit);
            let parsed =
                PasswordHash::new(&hash).map_err(|e| PasswordError::Hash(e.to_string()))?;
            let ok = argon.verify_password(password.as_bytes(), &parsed).is_ok();
            Ok(ok && known)
        })
        .await?
    }
}

impl Passwords {
    /// A hashing slot. It moves into the blocking task and is released when the hash ends, not
    /// when the caller stops waiting: a cancelled sign-in (the client hung up) keeps its slot
    /// until its hash is done, so the cap holds (security review M5).
    async fn permit(&self) -> (OwnedSemaphorePermit, Arc<Busy>) {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closes");
        (permit, self.busy.clone())
    }
}

/// Hashes running now, and the most that ever ran at once.
#[derive(Debug, Default)]
struct Busy {
    running: AtomicUsize,
    peak: AtomicUsize,
}

/// One hash in progress: holds its slot and is counted in [`Busy`] until dropped.
struct Hashing {
    _permit: OwnedSemaphorePermit,
    busy: Arc<Busy>,
}

fn hashing((permit, busy): (OwnedSemaphorePermit, Arc<Busy>)) -> Hashing {
    let now = busy.running.fetch_add(1, Ordering::SeqCst) + 1;
    busy.peak.fetch_max(now, Ordering::SeqCst);
    Hashing {
        _permit: permit,
        busy,
    }
}

impl Drop for Hashing {
    fn drop(&mut self) {
        self.busy.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancelled_callers_keep_their_slot_until_the_hash_ends() {
        let passwords = Passwords::new(&PasswordSettings {
            max_concurrent: Some(1),
            ..PasswordSettings::default()
        })
        .unwrap();
        let hash = passwords.hash("correct horse".to_owned()).await.unwrap();
        passwords.busy.peak.store(0, Ordering::SeqCst);
        for _ in 0..16 {
            let verify = passwords.verify("guess".to_owned(), Some(hash.clone()));
            // The caller gives up after 1 ms, as a client that hangs up does.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(1), verify).await;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let peak = passwords.busy.peak.load(Ordering::SeqCst);
        assert!(peak <= 1, "{peak} hashes at once");
        assert_eq!(passwords.busy.running.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() {
        let passwords = Passwords::new(&PasswordSettings::default()).unwrap();
        let hash = passwords.hash("correct horse".to_owned()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(passwords
            .verify("correct horse".to_owned(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!passwords
            .verify("wrong horse".to_owned(), Some(hash))
            .await
            .unwrap());
        assert!(!passwords
            .verify("decoy password for unknown accounts".to_owned(), None)
            .await
            .unwrap());
    }
}
