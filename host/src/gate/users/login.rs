//! Logins of [`super::Users`]: which password checks actually run argon2,
//! and how many at once.
//!
//! A verification costs tens of milliseconds and 19 MiB of working memory
//! ([`super::password`]), and clients repeat their credentials: a WebDAV
//! client sends them with every request, often over many connections at
//! once, and a misconfigured one repeats a wrong password just as often.
//! So:
//!
//! * **Remembered outcomes.** The password that last verified for each user
//!   is remembered (the users cache), and so is every failure for
//!   [`FAILURE_TTL`] (at most [`FAILURES_KEPT`] of them): repeating
//!   credentials, right or wrong, costs no verification. Both tables live
//!   in the [`super::Users`] of one configuration generation, so a reload
//!   (a changed password, a removed user) forgets them.
//! * **One verification per credentials.** Concurrent logins with the same
//!   user and password share one verification (single flight): the first
//!   runs it, the others await its outcome.
//! * **Few at a time.** At most [`MAX_CONCURRENT`] verifications (no more
//!   than the cores) run at once, each on the blocking pool, holding its
//!   slot until argon2 returns even if the login is abandoned; the others
//!   wait, and look at the remembered outcomes again when their turn
//!   comes. A burst of logins therefore costs at most that many working
//!   memories.
//!
//! Credentials are known by a SHA-256 digest under a random key of the
//! generation, so the tables hold no plain fast hash of any password.
//! Unknown users (and users without a password) are checked against a
//! dummy hash, so they cost the same as known ones, with the same caches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OnceCell, Semaphore};

use super::password;

/// Most verifications running at once: each holds 19 MiB, so two keep a
/// burst's peak near 40 MiB, and still verify dozens of distinct
/// credentials a second (the rest is answered from the tables).
pub const MAX_CONCURRENT: usize = 2;
/// How long a failed verification is remembered.
pub const FAILURE_TTL: Duration = Duration::from_secs(60);
/// Most failures remembered; when full, the one that expires first goes.
pub const FAILURES_KEPT: usize = 1024;

/// Keyed digest of a user name and a password.
type Digest = [u8; 32];

/// The login state of one configuration generation.
pub struct Logins {
    key: [u8; 32],
    /// User name → digest of the password that last verified.
    verified: Mutex<HashMap<String, Digest>>,
    /// Digest of failed credentials → when the failure is forgotten.
    failed: Mutex<HashMap<Digest, Instant>>,
    /// Verifications in progress, by the digest of their credentials.
    flights: Mutex<HashMap<Digest, Arc<OnceCell<bool>>>>,
    /// Slots for running verifications.
    slots: Arc<Semaphore>,
}

impl Logins {
    pub fn new() -> Logins {
        let mut key = [0; 32];
        for half in key.chunks_mut(16) {
            half.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Logins {
            key,
            verified: Mutex::default(),
            failed: Mutex::default(),
            flights: Mutex::default(),
            slots: Arc::new(Semaphore::new(cores.clamp(1, MAX_CONCURRENT))),
        }
    }

    /// Whether `password` verifies against `hash`, the stored hash of user
    /// `name` (`None` for an unknown user or one without a password, which
    /// never verifies).
    pub async fn check(&self, name: &str, hash: Option<&str>, password: &str) -> bool {
        let digest = self.digest(name, password);
        if let Some(known) = self.remembered(name, &digest) {
            return known;
        }
        let flight = lock(&self.flights).entry(digest).or_default().clone();
        let verified = *flight
            .get_or_init(|| self.verify(name, hash, password, digest))
            .await;
        // The outcome is remembered now; later logins need not join.
        let mut flights = lock(&self.flights);
        if flights
            .get(&digest)
            .is_some_and(|current| Arc::ptr_eq(current, &flight))
        {
            flights.remove(&digest);
        }
        verified
    }

    /// Runs one verification when a slot is free, and remembers its outcome.
    async fn verify(&self, name: &str, hash: Option<&str>, password: &str, digest: Digest) -> bool {
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            return false;
        };
        // Another flight with these credentials may have ended meanwhile.
        if let Some(known) = self.remembered(name, &digest) {
            return known;
        }
        crate::metrics::get()
            .password_verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let phc = hash.map_or_else(|| password::dummy_hash().to_owned(), str::to_owned);
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            password::verify(&phc, &password)
        })
        .await
        .unwrap_or(false);
        let verified = matched && hash.is_some();
        if verified {
            lock(&self.verified).insert(name.to_owned(), digest);
        } else {
            self.remember_failure(digest);
        }
        verified
    }

    /// The remembered outcome for these credentials, if any.
    fn remembered(&self, name: &str, digest: &Digest) -> Option<bool> {
        if lock(&self.verified)
            .get(name)
            .is_some_and(|known| bool::from(known.ct_eq(digest)))
        {
            return Some(true);
        }
        let mut failed = lock(&self.failed);
        match failed.get(digest) {
            Some(&until) if Instant::now() < until => Some(false),
            Some(_) => {
                failed.remove(digest);
                None
            }
            None => None,
        }
    }

    fn remember_failure(&self, digest: Digest) {
        let now = Instant::now();
        let mut failed = lock(&self.failed);
        if failed.len() >= FAILURES_KEPT {
            failed.retain(|_, until| *until > now);
        }
        if failed.len() >= FAILURES_KEPT
            && let Some(first) = failed
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(d, _)| *d)
        {
            failed.remove(&first);
        }
        failed.insert(digest, now + FAILURE_TTL);
    }

    /// SHA-256 of the key, the length-prefixed name, and the password.
    fn digest(&self, name: &str, password: &str) -> Digest {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap hash (8 KiB, one pass), so the tests are quick.
    fn cheap_hash(password: &str) -> String {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(8, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_logins_get_their_outcomes_and_leave_no_flight() {
        let logins = Arc::new(Logins::new());
        let hash = cheap_hash("right");
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let (logins, hash) = (logins.clone(), hash.clone());
                let password = if i % 2 == 0 { "right" } else { "wrong" };
                tokio::spawn(async move { (i, logins.check("u", Some(&hash), password).await) })
            })
            .collect();
        for task in tasks {
            let (i, verified) = task.await.unwrap();
            assert_eq!(verified, i % 2 == 0, "login {i}");
        }
        assert!(logins.check("u", Some(&hash), "right").await);
        assert!(!logins.check("u", Some(&hash), "wrong").await);
        assert!(!logins.check("nobody", None, "right").await);
        // Outcomes are remembered per credentials; no flight is left over.
        assert_eq!(lock(&logins.verified).len(), 1);
        assert_eq!(lock(&logins.failed).len(), 2);
        assert!(lock(&logins.flights).is_empty());
    }

    #[test]
    fn failures_kept_are_bounded() {
        let logins = Logins::new();
        for i in 0..FAILURES_KEPT + 10 {
            logins.remember_failure(logins.digest("u", &i.to_string()));
        }
        assert_eq!(lock(&logins.failed).len(), FAILURES_KEPT);
        let last = logins.digest("u", &(FAILURES_KEPT + 9).to_string());
        assert_eq!(logins.remembered("u", &last), Some(false));
        assert_eq!(logins.remembered("u", &logins.digest("u", "new")), None);
        assert_ne!(logins.digest("ab", "c"), logins.digest("a", "bc"));
    }
}
