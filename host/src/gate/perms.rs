//! Per-path permissions of a user, on the model of SFTPGo.
//!
//! A user's `permissions` table maps directories of their home to sets of
//! permissions; the entry of the longest configured directory that contains
//! a path applies (a directory's entry covers the directory and everything
//! below it). `/` defaults to every permission when it is not configured.
//! `read_only` keeps only `list` and `download` everywhere.
//!
//! As in SFTPGo, listing a collection is checked against the collection
//! itself, and every other operation against the *parent* of the entry it
//! touches: creating, replacing, deleting or renaming `/docs/a.txt` needs the
//! permission in `/docs`. So a user allowed everything in `/inbox` but
//! nothing in `/` cannot delete or rename `/inbox` itself.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// One permission, as written in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Every permission below.
    #[serde(rename = "*")]
    All,
    /// List the members of a collection (PROPFIND Depth 1, GET of a collection).
    List,
    /// Read the content of files.
    Download,
    /// Create new files.
    Upload,
    /// Replace existing files (needs `upload` too) and change their properties.
    Overwrite,
    /// Delete files and collections.
    Delete,
    /// Move files and collections (checked on the source and the destination).
    Rename,
    /// Create collections (MKCOL).
    CreateDirs,
}

/// A set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PermSet(u8);

impl PermSet {
    pub const LIST: PermSet = PermSet(1);
    pub const DOWNLOAD: PermSet = PermSet(2);
    pub const UPLOAD: PermSet = PermSet(4);
    pub const OVERWRITE: PermSet = PermSet(8);
    pub const DELETE: PermSet = PermSet(16);
    pub const RENAME: PermSet = PermSet(32);
    pub const CREATE_DIRS: PermSet = PermSet(64);
    pub const ALL: PermSet = PermSet(127);
    pub const READ: PermSet = PermSet(1 | 2);
    pub const NONE: PermSet = PermSet(0);

    pub fn contains(self, other: PermSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersects(self, other: PermSet) -> bool {
        self.0 & other.0 != 0
    }

    fn and(self, other: PermSet) -> PermSet {
        PermSet(self.0 & other.0)
    }

    pub const fn or(self, other: PermSet) -> PermSet {
        PermSet(self.0 | other.0)
    }

    pub fn from_list(list: &[Permission]) -> PermSet {
        PermSet(list.iter().fold(0, |acc, p| acc | PermSet::from(*p).0))
    }
}

impl From<Permission> for PermSet {
    fn from(p: Permission) -> Self {
        match p {
            Permission::All => PermSet::ALL,
            Permission::List => PermSet::LIST,
            Permission::Download => PermSet::DOWNLOAD,
            Permission::Upload => PermSet::UPLOAD,
            Permission::Overwrite => PermSet::OVERWRITE,
            Permission::Delete => PermSet::DELETE,
            Permission::Rename => PermSet::RENAME,
            Permission::CreateDirs => PermSet::CREATE_DIRS,
        }
    }
}

impl fmt::Display for PermSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (PermSet::LIST, "list"),
            (PermSet::DOWNLOAD, "download"),
            (PermSet::UPLOAD, "upload"),
            (PermSet::OVERWRITE, "overwrite"),
            (PermSet::DELETE, "delete"),
            (PermSet::RENAME, "rename"),
            (PermSet::CREATE_DIRS, "create_dirs"),
        ];
        let list: Vec<&str> = names
            .iter()
            .filter(|(p, _)| self.contains(*p))
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&list.join("+"))
    }
}

/// A user's effective permissions.
#[derive(Debug, Clone)]
pub struct Permissions {
    /// (directory, permissions), longest directory first.
    rules: Vec<(String, PermSet)>,
    /// Applied on top of every rule (read-only users keep list and download).
    mask: PermSet,
}

impl Permissions {
    /// Everything everywhere (the zero-config server).
    pub fn all() -> Self {
        Self {
            rules: vec![("/".into(), PermSet::ALL)],
            mask: PermSet::ALL,
        }
    }

    /// Reading only (anonymous access).
    pub fn read_only(mut self) -> Self {
        self.mask = self.mask.and(PermSet::READ);
        self
    }

    /// Builds the rules from a configured table; directories must be
    /// normalised absolute paths (see [`normalise_dir`]).
    pub fn new(table: &BTreeMap<String, Vec<Permission>>, read_only: bool) -> Self {
        let mut rules: Vec<(String, PermSet)> = table
            .iter()
            .map(|(dir, list)| (dir.clone(), PermSet::from_list(list)))
            .collect();
        if !rules.iter().any(|(dir, _)| dir == "/") {
            rules.push(("/".into(), PermSet::ALL));
        }
        rules.sort_by_key(|(dir, _)| std::cmp::Reverse(dir.len()));
        Self {
            rules,
            mask: if read_only {
                PermSet::READ
            } else {
                PermSet::ALL
            },
        }
    }

    /// The permissions that hold in directory `dir`.
    pub fn in_dir(&self, dir: &str) -> PermSet {
        self.rules
            .iter()
            .find(|(rule, _)| covers(rule, dir))
            .map_or(PermSet::NONE, |(_, set)| *set)
            .and(self.mask)
    }

    /// The permissions that hold for an entry (file or collection) at `path`:
    /// those of its parent directory.
    pub fn for_entry(&self, path: &str) -> PermSet {
        self.in_dir(parent(path))
    }

    /// Whether a recursive operation on `path` (deleting, copying or moving
    /// a collection with its members) would reach an entry without `needed`:
    /// the collection's own members are judged by the permissions in `path`,
    /// deeper ones by any rule below it.
    pub fn restricted_below(&self, path: &str, needed: PermSet) -> bool {
        !self.in_dir(path).contains(needed)
            || self.rules.iter().any(|(rule, set)| {
                rule != path && covers(path, rule) && !set.and(self.mask).contains(needed)
            })
    }
}

/// Whether directory `dir` is `path` or one of its ancestors.
fn covers(dir: &str, path: &str) -> bool {
    edgedav_rules::path::in_subtree(path, dir)
}

/// The parent of a normalised path (`/` for `/` itself).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Normalises a configured directory: absolute, no `.`/`..`/empty segments,
/// no trailing slash.
pub fn normalise_dir(dir: &str) -> crate::error::Result<String> {
    if !dir.starts_with('/') {
        return Err(crate::error::invalid!(
            "{dir:?} is not an absolute path (start it with /)"
        ));
    }
    let mut out = String::new();
    for segment in dir.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(crate::error::invalid!("{dir:?} contains . or .. segments"));
        }
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms(entries: &[(&str, &[Permission])], read_only: bool) -> Permissions {
        let table = entries
            .iter()
            .map(|(d, l)| (d.to_string(), l.to_vec()))
            .collect();
        Permissions::new(&table, read_only)
    }

    #[test]
    fn longest_directory_wins() {
        use Permission::*;
        let p = perms(
            &[
                ("/", &[List, Download]),
                ("/inbox", &[All]),
                ("/inbox/locked", &[List]),
            ],
            false,
        );
        assert_eq!(p.in_dir("/"), PermSet::READ);
        assert_eq!(p.in_dir("/other"), PermSet::READ);
        assert_eq!(p.in_dir("/inboxes"), PermSet::READ);
        assert_eq!(p.in_dir("/inbox"), PermSet::ALL);
        assert_eq!(p.in_dir("/inbox/a/b"), PermSet::ALL);
        assert_eq!(p.in_dir("/inbox/locked/x"), PermSet::LIST);
        // Entries are judged by their parent.
        assert_eq!(p.for_entry("/inbox"), PermSet::READ);
        assert_eq!(p.for_entry("/inbox/f"), PermSet::ALL);
        assert!(p.restricted_below("/inbox", PermSet::DELETE));
        assert!(!p.restricted_below("/inbox/locked", PermSet::LIST));
        assert!(p.restricted_below("/inbox/locked", PermSet::DELETE));
        assert!(!p.restricted_below("/inbox/open", PermSet::DELETE));
        assert!(p.restricted_below("/", PermSet::DELETE));
    }

    #[test]
    fn defaults_and_read_only() {
        let p = perms(&[], false);
        assert_eq!(p.in_dir("/x"), PermSet::ALL);
        let p = perms(&[], true);
        assert_eq!(p.in_dir("/x"), PermSet::READ);
        assert_eq!(Permissions::all().read_only().in_dir("/"), PermSet::READ);
    }

    #[test]
    fn paths() {
        assert_eq!(parent("/"), "/");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert!(normalise_dir("//a/./b/").is_err());
        assert_eq!(normalise_dir("/a//b/").unwrap(), "/a/b");
        assert_eq!(normalise_dir("/").unwrap(), "/");
        assert!(normalise_dir("a").is_err());
        assert!(normalise_dir("/a/../b").is_err());
        assert_eq!(PermSet::READ.to_string(), "list+download");
    }
}
