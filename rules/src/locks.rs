//! Lock rules (RFC 4918 §6, §7): which locks conflict, which cover a path,
//! and the timeout a lock is granted. The lock stores differ (a host's
//! in-memory table, a JSON file, SQLite rows); these rules do not.

use crate::path::{in_subtree, is_ancestor};

/// The longest lock timeout granted, in seconds; a request for an infinite
/// timeout gets this, so a crashed client cannot lock a resource forever.
pub const MAX_TIMEOUT_SECS: u32 = 3600;

/// The timeout granted for a requested one, in seconds: at least 1, at most
/// [`MAX_TIMEOUT_SECS`]; none (infinite) gets the cap.
pub fn granted_secs(requested: Option<u32>) -> u32 {
    requested
        .unwrap_or(MAX_TIMEOUT_SECS)
        .clamp(1, MAX_TIMEOUT_SECS)
}

/// What a lock reaches: the resource it is taken on, whether it reaches the
/// whole subtree (depth infinity), and whether it is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent<'a> {
    pub root: &'a str,
    pub deep: bool,
    pub exclusive: bool,
}

impl Extent<'_> {
    /// Whether two locks may not both be held: an exclusive lock conflicts
    /// with any other whose reach overlaps, a shared one with exclusive
    /// locks only.
    pub fn conflicts_with(&self, other: &Extent<'_>) -> bool {
        let overlap = self.root == other.root
            || (self.deep && is_ancestor(self.root, other.root))
            || (other.deep && is_ancestor(other.root, self.root));
        (self.exclusive || other.exclusive) && overlap
    }

    /// Taken on `path`, or deep on one of its ancestors.
    pub fn covers(&self, path: &str) -> bool {
        self.root == path || (self.deep && is_ancestor(self.root, path))
    }

    /// Taken on `path` or on anything below it.
    pub fn within(&self, path: &str) -> bool {
        in_subtree(self.root, path)
    }
}

/// A lock as the guest adapters store it: expiry as an absolute wall-clock
/// time, so any instance (they are created per request) can judge it.
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

impl LockRecord {
    pub fn extent(&self) -> Extent<'_> {
        Extent {
            root: &self.root,
            deep: self.deep,
            exclusive: self.exclusive,
        }
    }

    pub fn live(&self, now_ms: u64) -> bool {
        self.expires_ms > now_ms
    }

    /// Seconds left, rounded up so a live lock never reports 0.
    pub fn seconds_left(&self, now_ms: u64) -> u32 {
        let left = self.expires_ms.saturating_sub(now_ms);
        u32::try_from(left.div_ceil(1000)).unwrap_or(u32::MAX)
    }
}

/// A `urn:uuid:` lock token (RFC 4122 version 4) from 16 random bytes.
pub fn uuid_urn(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::hex(&b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent(root: &str, exclusive: bool, deep: bool) -> Extent<'_> {
        Extent {
            root,
            deep,
            exclusive,
        }
    }

    #[test]
    fn conflicts() {
        let x = |a: Extent<'_>, b: Extent<'_>| {
            assert_eq!(a.conflicts_with(&b), b.conflicts_with(&a), "symmetric");
            a.conflicts_with(&b)
        };
        // Shared locks coexist; exclusive ones do not.
        assert!(!x(extent("/a", false, false), extent("/a", false, false)));
        assert!(x(extent("/a", false, false), extent("/a", true, false)));
        // Depth decides overlap.
        assert!(!x(extent("/a", true, false), extent("/a/b", true, false)));
        assert!(x(extent("/a", true, true), extent("/a/b/c", false, false)));
        assert!(x(extent("/a/b", true, false), extent("/", true, true)));
        assert!(!x(extent("/c", true, true), extent("/cd", true, false)));
    }

    #[test]
    fn covering_and_within() {
        assert!(extent("/", false, true).covers("/a/b"));
        assert!(!extent("/a", false, false).covers("/a/b"));
        assert!(extent("/a", false, false).covers("/a"));
        assert!(extent("/a/b", false, false).within("/a"));
        assert!(!extent("/ab", false, false).within("/a"));
    }

    #[test]
    fn timeouts() {
        assert_eq!(granted_secs(None), MAX_TIMEOUT_SECS);
        assert_eq!(granted_secs(Some(0)), 1);
        assert_eq!(granted_secs(Some(99_999)), MAX_TIMEOUT_SECS);
        let l = LockRecord {
            token: "t".into(),
            root: "/".into(),
            exclusive: true,
            deep: false,
            owner: None,
            expires_ms: 10_000,
        };
        assert_eq!(l.seconds_left(8_999), 2);
        assert_eq!(l.seconds_left(9_000), 1);
        assert!(l.live(9_999) && !l.live(10_000));
    }

    #[test]
    fn tokens() {
        let t = uuid_urn([0xff; 16]);
        assert_eq!(t, "urn:uuid:ffffffff-ffff-4fff-bfff-ffffffffffff");
    }
}
