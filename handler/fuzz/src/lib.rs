//! Invariants shared by the fuzz targets.

use edgedav_handler::path::{DavPath, MAX_SEGMENT};

/// What every path handed to a backend must satisfy (see `path.rs`): a
/// normalised absolute path with no `.`/`..` or separator inside a segment,
/// no segment over the length limit, whose hrefs parse back to itself.
pub fn check_path(p: &DavPath) {
    let s = p.as_str();
    assert!(s.starts_with('/'), "{s:?}");
    assert_eq!(p.is_root(), s == "/");
    if !p.is_root() {
        for segment in s[1..].split('/') {
            assert!(!segment.is_empty(), "empty segment in {s:?}");
            assert!(segment != "." && segment != "..", "{s:?}");
            assert!(!segment.contains(['\\', '\0']), "{s:?}");
            assert!(segment.len() <= MAX_SEGMENT, "{s:?}");
        }
        let parent = p.parent().expect("a parent");
        assert!(edgedav_rules::path::is_ancestor(parent.as_str(), s));
        assert_eq!(&parent.join(p.name()), p);
    }
    for collection in [false, true] {
        let href = p.href(collection);
        assert_eq!(
            DavPath::from_target(&href).as_ref(),
            Ok(p),
            "href {href:?} does not lead back"
        );
    }
}
