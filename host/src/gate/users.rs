//! Configured users and their authentication.
//!
//! Passwords are stored as PHC strings of argon2id hashes (`edgedav
//! hash-password` prints one; [`password`] makes and verifies them). Which
//! logins actually run argon2, and how many at once, is [`login`]'s
//! business: it remembers outcomes (the users cache, recent failures) and
//! shares one verification among concurrent logins with the same
//! credentials. The users of a configuration generation, with those
//! tables, are rebuilt on every reload, so a reload (a changed password, a
//! removed user) forgets them.

mod login;
mod password;

use std::collections::HashMap;
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::cluster::usage::SharedUsage;
use crate::config::UserConfig;
use crate::gate::limits::Throttle;
use crate::gate::perms::Permissions;
use crate::runtime::Tenant;
use crate::storage::guard::Policy;
use crate::storage::home::{Home, HomeRegistry};
use crate::storage::quota::{self, Quota, Usage};

use login::Logins;
pub use password::{check_phc, hash_password};

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
    /// Whose warm instances answer this user's requests, and anonymous
    /// requests as this user (built once, not per request).
    pub tenant: Tenant,
    pub anonymous_tenant: Tenant,
}

/// The users of one configuration generation, with their login state.
pub struct Users {
    by_name: HashMap<String, Arc<User>>,
    logins: Logins,
}

impl Users {
    /// Opens every user's home (scanning the usage of homes with a quota
    /// the first time) and builds the table.
    pub async fn build(
        configs: &[UserConfig],
        homes: &HomeRegistry,
        cluster: Option<&Arc<Cluster>>,
    ) -> crate::error::Result<Users> {
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
                usage_of(&home, &config.name, cluster).await?;
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
                tenant: Tenant::new(format!("user:{}", config.name)),
                anonymous_tenant: Tenant::new(format!("anonymous:{}", config.name)),
            };
            by_name.insert(config.name.clone(), Arc::new(user));
        }
        // Made now, so the first login of an unknown name is not slower
        // than later ones; off the start-up path (an argon2 hash is tens
        // of milliseconds), and not at all when nobody can log in.
        if !by_name.is_empty() {
            tokio::task::spawn_blocking(password::dummy_hash);
        }
        Ok(Users {
            by_name,
            logins: Logins::new(),
        })
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
        if self.logins.check(name, hash, password).await {
            user.cloned()
        } else {
            None
        }
    }
}

/// The usage counters of a home, scanned the first time a user with a
/// quota needs them (in cluster mode, the first time any host of the
/// cluster needs them: they are kept in its database).
async fn usage_of(
    home: &Arc<Home>,
    user: &str,
    cluster: Option<&Arc<Cluster>>,
) -> crate::error::Result<Arc<Usage>> {
    if let Some(usage) = home.usage.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        return Ok(usage);
    }
    let started = std::time::Instant::now();
    let scanned = |e| format!("user {user:?}: the quota usage of the home: {e:?}");
    let usage = match cluster {
        Some(cluster) => {
            let scan = quota::measure(&*home.backend, "/");
            Usage::Shared(
                SharedUsage::open(cluster.clone(), home.scope.key(), scan)
                    .await
                    .map_err(scanned)?,
            )
        }
        None => Usage::scan(&*home.backend).await.map_err(scanned)?,
    };
    let usage = Arc::new(usage);
    let used = usage.used().await.map_err(scanned)?;
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
