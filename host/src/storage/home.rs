//! Users' homes: which store a user sees as `/`.
//!
//! A home is a *backend spec* from the configuration. Every user gets a
//! backend rooted at their home, so the handler's paths (`/`, `/docs/a.txt`)
//! are relative to it and one user can never name another user's files.
//! Homes are opened once and shared by every user with the same home (see
//! [`HomeRegistry`]), which also keeps quota usage per home across config
//! reloads.
//!
//! The S3 backend adds its own variant to [`HomeSpec`] (a bucket and a key
//! prefix) and an arm in [`HomeSpec::open`] and [`HomeSpec::lock_scope`];
//! nothing else in the host depends on the kind of store.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::Backend;
use super::local::LocalBackend;
use crate::quota::Usage;

/// Where a user's files live (`home = { backend = "local", path = "…" }`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum HomeSpec {
    /// A directory on the local file system, created if missing. A relative
    /// path is relative to the directory of the configuration file.
    Local { path: PathBuf },
    // S3 { … }: added by the S3 backend (bucket, key prefix, endpoint, …).
}

/// Identifies the namespace a home's paths live in, for locks: two homes in
/// the same `store` share locks where their paths overlap (`prefix` + path
/// is the resource's name in the store).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockScope {
    /// The store (`local`, or an S3 endpoint and bucket).
    pub store: Arc<str>,
    /// The home's location in the store, without a trailing slash: `""` when
    /// the home is the store's root.
    pub prefix: Arc<str>,
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
        }
    }

    /// Checks the spec without touching the store (for `check-config`).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            HomeSpec::Local { path } => {
                if path.as_os_str().is_empty() {
                    return Err("the home path is empty".into());
                }
                if path.is_file() {
                    return Err(format!("{} is a file, not a directory", path.display()));
                }
                Ok(())
            }
        }
    }

    /// Opens the store (creating a local directory if needed).
    pub fn open(&self) -> io::Result<(Arc<dyn Backend>, LockScope)> {
        match self {
            HomeSpec::Local { path } => {
                let backend = LocalBackend::open(path)?;
                let canonical = path.canonicalize()?;
                Ok((Arc::new(backend), local_scope(&canonical)))
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
    pub fn open(&self, spec: &HomeSpec) -> io::Result<Arc<Home>> {
        let mut homes = self.homes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(home) = homes.get(spec) {
            return Ok(home.clone());
        }
        let (backend, scope) = spec.open()?;
        let home = Arc::new(Home {
            backend,
            scope,
            usage: Mutex::new(None),
        });
        homes.insert(spec.clone(), home.clone());
        Ok(home)
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
