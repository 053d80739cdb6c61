//! Configured users, password verification and the users cache.
//!
//! Passwords are stored as PHC strings of argon2id hashes (`edgedav
//! hash-password` prints one). argon2 is deliberately slow (tens of
//! milliseconds and ~19 MiB per check with the default parameters), so a
//! WebDAV client that sends its credentials with every request would cost a
//! full hash each time. The **users cache** remembers, per user, a SHA-256
//! digest of the stored hash and the password that last verified; a request
//! whose password has that digest is accepted without running argon2. The
//! cache lives inside [`Users`], which is rebuilt on every configuration
//! reload, so a reload (a changed password, a removed user) invalidates it.
//!
//! Comparisons of secrets are constant-time (`subtle`), unknown user names
//! cost one argon2 verification like known ones (no timing oracle for which
//! names exist), and argon2 runs on the blocking pool with a bound on
//! concurrent verifications, so a burst of bad logins cannot exhaust memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::config::UserConfig;
use crate::limits::Throttle;
use crate::perms::Permissions;
use crate::quota::{Quota, Usage};
use crate::storage::guard::Policy;
use crate::storage::home::{Home, HomeRegistry};

/// One configured user, with their opened home.
pub struct User {
    pub name: Arc<str>,
    password_hash: Option<String>,
    pub home: Arc<Home>,
    pub policy: Arc<Policy>,
    /// The same policy, read-only (for anonymous access as this user).
    pub read_only_policy: Arc<Policy>,
    /// Usage of the home, when the user has a quota.
    pub usage: Option<Arc<Usage>>,
    pub upload: Option<Arc<Throttle>>,
    pub download: Option<Arc<Throttle>>,
}

/// The users of one configuration generation, with their cache.
pub struct Users {
    by_name: HashMap<String, Arc<User>>,
    /// User name → digest of (stored hash, password) that verified.
    cache: Mutex<HashMap<String, [u8; 32]>>,
    /// Bounds concurrent argon2 verifications.
    verifying: Semaphore,
}

impl Users {
    /// Opens every user's home (scanning the usage of homes with a quota
    /// the first time) and builds the table.
    pub async fn build(configs: &[UserConfig], homes: &HomeRegistry) -> Result<Users, String> {
        let mut by_name = HashMap::new();
        let mut opened = Vec::new();
        for config in configs {
            let home = homes
                .open(&config.home)
                .await
                .map_err(|e| format!("user {:?}: opening the home: {e}", config.name))?;
            let quota = Quota {
                max_bytes: config.quota_bytes.map(|s| s.0),
                max_files: config.quota_files,
            };
            // Scan the homes that someone has a quota on, first: every user
            // of such a home must keep its usage up to date, with a quota
            // or not.
            if quota.is_limited() {
                usage_of(&home, &config.name).await?;
            }
            opened.push((config, home, quota));
        }
        for (config, home, quota) in opened {
            let usage = home.usage.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let perms = Arc::new(Permissions::new(&config.permissions, config.read_only));
            let policy = Policy {
                perms,
                quota,
                max_upload: config.max_upload_size.map(|s| s.0),
            };
            let read_only_policy = Policy {
                perms: Arc::new((*policy.perms).clone().read_only()),
                ..policy.clone()
            };
            let user = User {
                name: Arc::from(config.name.as_str()),
                password_hash: config.password_hash.clone(),
                home,
                policy: Arc::new(policy),
                read_only_policy: Arc::new(read_only_policy),
                usage,
                upload: config
                    .upload_bandwidth
                    .map(|b| Arc::new(Throttle::new(b.0))),
                download: config
                    .download_bandwidth
                    .map(|b| Arc::new(Throttle::new(b.0))),
            };
            by_name.insert(config.name.clone(), Arc::new(user));
        }
        // Made now, so the first login of an unknown name is not slower
        // than later ones.
        let _ = dummy_hash();
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Users {
            by_name,
            cache: Mutex::new(HashMap::new()),
            verifying: Semaphore::new(parallel * 2),
        })
    }

    /// No users (the zero-config server).
    pub fn empty() -> Users {
        Users {
            by_name: HashMap::new(),
            cache: Mutex::new(HashMap::new()),
            verifying: Semaphore::new(1),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.by_name.get(name).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// The user if `password` is theirs.
    pub async fn authenticate(&self, name: &str, password: &str) -> Option<Arc<User>> {
        let user = self.by_name.get(name);
        let hash = user.and_then(|u| u.password_hash.as_deref());
        let digest = cache_digest(hash.unwrap_or(""), password);
        if let (Some(user), Some(cached)) = (user, self.cached(name))
            && hash.is_some()
            && bool::from(cached.ct_eq(&digest))
        {
            return Some(user.clone());
        }
        // Unknown users (and users without a password) are checked against
        // a dummy hash, so they cost the same as known ones.
        let phc = hash.map_or_else(|| dummy_hash().to_owned(), str::to_owned);
        let password = password.to_owned();
        let _permit = self.verifying.acquire().await.ok()?;
        crate::metrics::get()
            .password_verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let verified = tokio::task::spawn_blocking(move || verify(&phc, &password))
            .await
            .unwrap_or(false);
        if !verified || hash.is_none() {
            return None;
        }
        let user = user?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), digest);
        Some(user.clone())
    }

    fn cached(&self, name: &str) -> Option<[u8; 32]> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }
}

/// The usage counters of a home, scanned the first time a user with a
/// quota needs them.
async fn usage_of(home: &Arc<Home>, user: &str) -> Result<Arc<Usage>, String> {
    if let Some(usage) = home.usage.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        return Ok(usage);
    }
    let started = std::time::Instant::now();
    let usage = Arc::new(
        Usage::scan(&*home.backend)
            .await
            .map_err(|e| format!("user {user:?}: scanning the home for its quota: {e:?}"))?,
    );
    let used = usage.used();
    tracing::info!(
        user,
        bytes = used.bytes,
        files = used.files,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "scanned home usage"
    );
    let mut slot = home.usage.lock().unwrap_or_else(|p| p.into_inner());
    Ok(slot.get_or_insert(usage).clone())
}

fn cache_digest(hash: &str, password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(hash.as_bytes());
    hasher.update([0]);
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of a random password, with the default parameters.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&uuid::Uuid::new_v4().to_string()))
}

/// A PHC argon2id hash of `password` with a random salt and the default
/// parameters (m=19 MiB, t=2, p=1).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Checks that `hash` is a PHC string of an argon2id hash.
pub fn check_phc(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash).map_err(|e| {
        format!("not a PHC hash string ({e}); make one with `edgedav hash-password`")
    })?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "the algorithm is {}, expected argon2id; make one with `edgedav hash-password`",
            parsed.algorithm
        ));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("the hash string has no salt or no hash".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify() {
        let hash = hash_password("correct horse");
        assert!(hash.starts_with("$argon2id$v=19$"));
        check_phc(&hash).unwrap();
        assert!(verify(&hash, "correct horse"));
        assert!(!verify(&hash, "correct horse "));
        assert!(check_phc("$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2g").is_err());
        assert!(check_phc("hunter2").is_err());
    }
}
