//! Users' homes: which store a user sees as `/`.
//!
//! A home is a *backend spec* from the configuration. Every user gets a
//! backend rooted at their home, so the handler's paths (`/`, `/docs/a.txt`)
//! are relative to it and one user can never name another user's files.
//! Homes are opened once and shared by every user with the same home (see
//! [`HomeRegistry`]), which also keeps quota usage per home across config
//! reloads.
//!
//! Nothing outside this module depends on the kind of store.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::Backend;
use super::local::LocalBackend;
use super::s3::{S3Backend, S3Options};
use crate::storage::quota::Usage;

/// Where a user's files live: `home = { backend = "local", path = "…" }` or
/// `home = { backend = "s3", bucket = "…", prefix = "users/ann", endpoint =
/// "http://…", region = "…", path_style = true }` (credentials from the
/// standard AWS chain, as for `--s3-bucket`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum HomeSpec {
    /// A directory on the local file system, created if missing. A relative
    /// path is relative to the directory of the configuration file.
    Local { path: PathBuf },
    /// Keys below `prefix` in an S3 bucket.
    S3 {
        bucket: String,
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        endpoint: Option<String>,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        path_style: bool,
    },
}

/// Identifies the namespace a home's paths live in, for locks: two homes in
/// the same `store` share locks where their paths overlap (`prefix` + path
/// is the resource's name in the store).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockScope {
    /// The store: `local` (the prefix is then the directory), or
    /// `s3:BUCKET`.
    pub store: Arc<str>,
    /// The home's location in the store, without a trailing slash: `""` when
    /// the home is the store's root.
    pub prefix: Arc<str>,
}

/// What the store of an S3 home is called before its bucket's name.
const S3_STORE: &str = "s3:";

impl LockScope {
    /// The home's key in the cluster's database (usage, dead properties):
    /// its store and its location there.
    pub fn key(&self) -> String {
        format!("{}|{}", self.store, self.prefix)
    }

    /// Whether the home is in an S3 bucket (whose dead properties, in
    /// cluster mode, live in the cluster's database).
    pub fn is_s3(&self) -> bool {
        self.store.starts_with(S3_STORE)
    }
}

impl HomeSpec {
    /// Makes relative local paths relative to `base` (the config file's directory).
    pub fn resolve_relative(&mut self, base: &Path) {
        match self {
            HomeSpec::Local { path } => {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
            HomeSpec::S3 { .. } => {}
        }
    }

    /// Checks the spec without touching the store (for `check-config`).
    pub fn validate(&self) -> crate::error::Result<()> {
        match self {
            HomeSpec::Local { path } => {
                if path.as_os_str().is_empty() {
                    return Err("the home path is empty".into());
                }
                if path.is_file() {
                    return Err(crate::error::invalid!(
                        "{} is a file, not a directory",
                        path.display()
                    ));
                }
                Ok(())
            }
            HomeSpec::S3 { bucket, .. } if bucket.is_empty() => {
                Err("the S3 bucket is empty".into())
            }
            HomeSpec::S3 { .. } => Ok(()),
        }
    }

    /// Opens the store (creating a local directory if needed; checking that
    /// an S3 bucket can be listed).
    pub async fn open(&self) -> io::Result<(Arc<dyn Backend>, LockScope)> {
        match self {
            HomeSpec::Local { path } => {
                let backend = LocalBackend::open(path)?;
                let canonical = path.canonicalize()?;
                Ok((Arc::new(backend), local_scope(&canonical)))
            }
            HomeSpec::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                path_style,
            } => {
                let options = S3Options {
                    bucket: Some(bucket.clone()),
                    prefix: prefix.clone(),
                    endpoint: endpoint.clone(),
                    region: region.clone(),
                    path_style: *path_style,
                    log_requests: false,
                };
                let backend = S3Backend::connect(&options).await?;
                // The bucket names the store, not the endpoint: hosts of a
                // cluster may reach one bucket through different endpoints
                // (the nearest node of a replicated store) and must see one
                // another's locks and usage.
                let store = format!("{S3_STORE}{bucket}");
                let prefix = prefix.as_deref().unwrap_or("").trim_matches('/');
                let prefix = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("/{prefix}")
                };
                Ok((
                    Arc::new(backend),
                    LockScope {
                        store: Arc::from(store),
                        prefix: Arc::from(prefix),
                    },
                ))
            }
        }
    }
}

/// The lock scope of a local directory.
pub fn local_scope(canonical: &Path) -> LockScope {
    let prefix = canonical.to_string_lossy();
    LockScope {
        store: Arc::from("local"),
        prefix: Arc::from(prefix.trim_end_matches('/')),
    }
}

/// An opened home, shared by the users whose home it is.
pub struct Home {
    pub backend: Arc<dyn Backend>,
    pub scope: LockScope,
    /// Usage counters, once a user with a quota uses this home.
    pub usage: Mutex<Option<Arc<Usage>>>,
}

/// Opened homes by spec, kept across configuration reloads so a reload
/// neither re-opens stores nor loses quota usage.
#[derive(Default)]
pub struct HomeRegistry {
    homes: Mutex<HashMap<HomeSpec, Arc<Home>>>,
}

impl HomeRegistry {
    pub async fn open(&self, spec: &HomeSpec) -> io::Result<Arc<Home>> {
        if let Some(home) = self.lock().get(spec) {
            return Ok(home.clone());
        }
        // Opened without holding the lock (opening S3 takes a request);
        // should two users race here, the first one stored wins.
        let (backend, scope) = spec.open().await?;
        let home = Arc::new(Home {
            backend,
            scope,
            usage: Mutex::new(None),
        });
        Ok(self.lock().entry(spec.clone()).or_insert(home).clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<HomeSpec, Arc<Home>>> {
        self.homes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_unknown_keys() {
        #[derive(Deserialize)]
        struct W {
            home: HomeSpec,
        }
        let w: W = toml::from_str(r#"home = { backend = "local", path = "/srv/a" }"#).unwrap();
        assert_eq!(
            w.home,
            HomeSpec::Local {
                path: "/srv/a".into()
            }
        );
        assert!(
            toml::from_str::<W>(r#"home = { backend = "local", path = "/a", colour = 1 }"#)
                .is_err()
        );
        assert!(toml::from_str::<W>(r#"home = { backend = "ftp", path = "/a" }"#).is_err());
    }

    #[test]
    fn scopes() {
        assert_eq!(&*local_scope(Path::new("/")).prefix, "");
        assert_eq!(&*local_scope(Path::new("/srv/a")).prefix, "/srv/a");
    }
}
