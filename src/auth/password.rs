//! Password hashing with argon2id (m = 19456 KiB, t = 2, p = 1, OWASP's minimum). Hashing is
//! CPU-heavy, so it runs on the blocking pool behind a semaphore: when every slot is busy for
//! longer than the queue timeout the caller gets 503 `AUTH_BUSY` instead of an unbounded queue.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordVerifier, Version};
use tokio::sync::Semaphore;

use crate::error::Error;

/// Hashes and verifies passwords with bounded concurrency.
#[derive(Clone)]
pub struct PasswordHasher {
    /// Hashing slots; one per concurrent argon2 computation.
    slots: Arc<Semaphore>,
    /// How long a caller waits for a slot before `AUTH_BUSY`.
    queue_timeout: Duration,
    /// A real hash of a random password, verified against when the account does not exist so
    /// that unknown and known emails take the same time.
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes synchronously (callers on the async executor use [`PasswordHasher::hash`]).
pub fn hash_blocking(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("argon2 hash: {e}")))
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

impl PasswordHasher {
    /// `concurrency` slots; callers wait at most `queue_timeout` for one.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Result<Self, Error> {
        let dummy = hash_blocking(&crate::auth::random_token())?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_timeout,
            dummy_hash: dummy.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                metrics::counter!("hub_auth_busy_total").increment(1);
                Error::Unavailable {
                    code: "AUTH_BUSY",
                    message: "authentication is saturated; retry shortly".into(),
                    retry_after: 1,
                }
            })?
            .map_err(|_| Error::Internal("hash semaphore closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("hash task: {e}")))
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, Error> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Verifies `password` against `hash`, or against a dummy hash when the account is
    /// unknown (`hash = None`), so both paths cost the same. Returns false for `None`.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, Error> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = self.run(move || verify_blocking(&password, &hash)).await?;
        Ok(known && ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_match() {
        let h = PasswordHasher::new(2, Duration::from_secs(5)).unwrap();
        let hash = h.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h
            .verify("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!h.verify("wrong".into(), Some(hash)).await.unwrap());
        assert!(!h.verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn saturated_hasher_answers_auth_busy() {
        let h = PasswordHasher::new(1, Duration::from_millis(10)).unwrap();
        let hold = h.slots.clone().acquire_owned().await.unwrap();
        let err = h.hash("x".into()).await.unwrap_err();
        assert!(matches!(
            err,
            Error::Unavailable {
                code: "AUTH_BUSY",
                ..
            }
        ));
        drop(hold);
        assert!(h.hash("x".into()).await.is_ok());
    }
}
