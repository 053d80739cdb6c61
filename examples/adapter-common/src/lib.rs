//! Rules shared by the edgedav storage adapters (`examples/fs-adapter`,
//! `examples/spin-adapter`), kept free of any WIT binding so they are
//! unit-tested natively.
//!
//! They mirror the native host (`host/src/storage/local.rs`,
//! `host/src/locks.rs`): the same path checks, the same lock conflict rules
//! and the same 3600-second timeout cap, so a client sees the same WebDAV
//! behaviour whichever binding serves it.

/// The longest lock timeout granted, in seconds (as the native host).
pub const MAX_TIMEOUT_SECS: u32 = 3600;

/// Splits a contract path (absolute, normalised) into its segments, refusing
/// anything a correct handler never sends: relative paths, NUL, empty, `.`
/// and `..` segments, and names `reserved` says belong to the backend.
pub fn segments(path: &str, reserved: impl Fn(&str) -> bool) -> Result<Vec<&str>, &'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("not an absolute path");
    };
    if path.contains('\0') {
        return Err("NUL in path");
    }
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for segment in rest.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err("path not normalised");
        }
        if reserved(segment) {
            return Err("path segment not allowed");
        }
        out.push(segment);
    }
    Ok(out)
}

/// Whether `ancestor` is a proper ancestor of `path` (both normalised).
pub fn is_ancestor(ancestor: &str, path: &str) -> bool {
    if ancestor == "/" {
        return path != "/";
    }
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether `path` is `root` or below it.
pub fn in_subtree(path: &str, root: &str) -> bool {
    path == root || is_ancestor(root, path)
}

/// The path of member `name` of collection `parent`.
pub fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The parent collection of a path; none for the root.
pub fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let cut = path.rfind('/')?;
    Some(if cut == 0 { "/" } else { &path[..cut] })
}

/// The last segment of a path (empty for the root).
pub fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// `path` (in the subtree of `from`) moved to the same place below `to`.
pub fn rebase(path: &str, from: &str, to: &str) -> String {
    let suffix = &path[from.len()..];
    if to == "/" && !suffix.is_empty() {
        suffix.to_owned()
    } else {
        format!("{to}{suffix}")
    }
}

/// Checks shared by copy and move, before anything is touched.
pub fn check_transfer(source: &str, destination: &str) -> Result<(), &'static str> {
    if destination == "/" {
        return Err("the root collection cannot be replaced");
    }
    if source == destination {
        return Err("source and destination are the same");
    }
    if is_ancestor(source, destination) {
        return Err("a collection cannot be copied or moved into itself");
    }
    // Replacing an ancestor of the source would delete the source first.
    if is_ancestor(destination, source) {
        return Err("the destination contains the source");
    }
    Ok(())
}

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `urn:uuid:` lock token (RFC 4122 version 4) from 16 random bytes.
pub fn uuid_urn(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

// ---------------------------------------------------------------- locks

/// A lock as the adapters store it: expiry as an absolute wall-clock time,
/// so any instance (they are created per request) can judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    pub token: String,
    pub root: String,
    pub exclusive: bool,
    pub deep: bool,
    pub owner: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub expires_ms: u64,
}

/// What a LOCK asks for.
#[derive(Debug, Clone, Copy)]
pub struct LockAsk<'a> {
    pub root: &'a str,
    pub exclusive: bool,
    pub deep: bool,
}

impl LockRecord {
    pub fn live(&self, now_ms: u64) -> bool {
        self.expires_ms > now_ms
    }

    /// Whether this lock and a requested one may not both be held: an
    /// exclusive lock conflicts with any other whose scope overlaps, a shared
    /// one with exclusive locks only.
    pub fn conflicts_with(&self, ask: LockAsk<'_>) -> bool {
        let exclusive = self.exclusive || ask.exclusive;
        let overlap = self.root == ask.root
            || (self.deep && is_ancestor(&self.root, ask.root))
            || (ask.deep && is_ancestor(ask.root, &self.root));
        exclusive && overlap
    }

    /// Taken on `path`, or deep on one of its ancestors.
    pub fn covers(&self, path: &str) -> bool {
        self.root == path || (self.deep && is_ancestor(&self.root, path))
    }

    /// Taken on `path` or on anything below it.
    pub fn within(&self, path: &str) -> bool {
        in_subtree(&self.root, path)
    }

    /// Seconds left, rounded up so a live lock never reports 0.
    pub fn seconds_left(&self, now_ms: u64) -> u32 {
        let left = self.expires_ms.saturating_sub(now_ms);
        u32::try_from(left.div_ceil(1000)).unwrap_or(u32::MAX)
    }
}

/// The timeout granted for a requested one, in seconds: at least 1, at most
/// [`MAX_TIMEOUT_SECS`]; an infinite request gets the cap.
pub fn granted_secs(requested: Option<u32>) -> u32 {
    requested
        .unwrap_or(MAX_TIMEOUT_SECS)
        .clamp(1, MAX_TIMEOUT_SECS)
}

// ---------------------------------------------------------------- properties

/// One dead property: (namespace, name, value).
pub type Prop = (String, String, String);

/// A change of a PROPPATCH.
pub enum PropChange {
    Set(Prop),
    Remove(String, String),
}

/// Applies changes in order to a resource's properties.
pub fn apply_changes(props: &mut Vec<Prop>, changes: Vec<PropChange>) {
    for change in changes {
        match change {
            PropChange::Set(new) => match props.iter_mut().find(|p| p.0 == new.0 && p.1 == new.1) {
                Some(old) => *old = new,
                None => props.push(new),
            },
            PropChange::Remove(ns, name) => props.retain(|p| !(p.0 == ns && p.1 == name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(root: &str, exclusive: bool, deep: bool) -> LockRecord {
        LockRecord {
            token: "t".into(),
            root: root.into(),
            exclusive,
            deep,
            owner: None,
            expires_ms: 10_000,
        }
    }

    fn ask(root: &str, exclusive: bool, deep: bool) -> LockAsk<'_> {
        LockAsk {
            root,
            exclusive,
            deep,
        }
    }

    #[test]
    fn path_segments() {
        let none = |_: &str| false;
        assert_eq!(segments("/", none).unwrap(), Vec::<&str>::new());
        assert_eq!(segments("/a/b", none).unwrap(), ["a", "b"]);
        for bad in ["", "a", "/a/", "//a", "/a/./b", "/../x", "/a\0b"] {
            assert!(segments(bad, none).is_err(), "{bad:?}");
        }
        assert!(segments("/x/.edgedav", |s| s == ".edgedav").is_err());
    }

    #[test]
    fn path_helpers() {
        assert!(is_ancestor("/", "/a"));
        assert!(!is_ancestor("/", "/"));
        assert!(is_ancestor("/a", "/a/b/c"));
        assert!(!is_ancestor("/a", "/ab"));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/"), None);
        assert_eq!(name_of("/a/b"), "b");
        assert_eq!(child_path("/", "x"), "/x");
        assert_eq!(child_path("/a", "x"), "/a/x");
        assert_eq!(rebase("/a/b/c", "/a", "/z"), "/z/b/c");
        assert_eq!(rebase("/a", "/a", "/z/y"), "/z/y");
        assert!(check_transfer("/a", "/a/b").is_err());
        assert!(check_transfer("/a", "/").is_err());
        assert!(check_transfer("/a/b", "/a").is_err());
        assert!(check_transfer("/a", "/ab").is_ok());
    }

    #[test]
    fn lock_conflicts() {
        // Shared locks coexist; exclusive ones do not.
        assert!(!lock("/a", false, false).conflicts_with(ask("/a", false, false)));
        assert!(lock("/a", false, false).conflicts_with(ask("/a", true, false)));
        // Depth decides overlap.
        assert!(!lock("/a", true, false).conflicts_with(ask("/a/b", true, false)));
        assert!(lock("/a", true, true).conflicts_with(ask("/a/b/c", false, false)));
        assert!(lock("/a/b", true, false).conflicts_with(ask("/", true, true)));
        assert!(!lock("/c", true, true).conflicts_with(ask("/cd", true, false)));
    }

    #[test]
    fn covering_within_and_timeouts() {
        assert!(lock("/", false, true).covers("/a/b"));
        assert!(!lock("/a", false, false).covers("/a/b"));
        assert!(lock("/a/b", false, false).within("/a"));
        assert!(!lock("/ab", false, false).within("/a"));
        assert_eq!(granted_secs(None), MAX_TIMEOUT_SECS);
        assert_eq!(granted_secs(Some(0)), 1);
        assert_eq!(granted_secs(Some(99_999)), MAX_TIMEOUT_SECS);
        let l = lock("/", true, false);
        assert_eq!(l.seconds_left(8_999), 2);
        assert_eq!(l.seconds_left(9_000), 1);
        assert!(!l.live(10_000));
    }

    #[test]
    fn property_changes_apply_in_order() {
        let p = |n: &str, v: &str| ("urn:x".to_owned(), n.to_owned(), v.to_owned());
        let mut props = vec![p("keep", "k")];
        apply_changes(
            &mut props,
            vec![
                PropChange::Set(p("a", "1")),
                PropChange::Set(p("b", "2")),
                PropChange::Set(p("a", "3")),
                PropChange::Remove("urn:x".into(), "b".into()),
            ],
        );
        assert_eq!(props, [p("keep", "k"), p("a", "3")]);
    }

    #[test]
    fn tokens() {
        let t = uuid_urn([0xff; 16]);
        assert_eq!(t, "urn:uuid:ffffffff-ffff-4fff-bfff-ffffffffffff");
    }
}
