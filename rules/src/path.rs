//! Contract paths: absolute, normalised (`/`, `/a/b`), never ending in `/`.

/// Splits a contract path into its segments, refusing anything a correct
/// handler never sends (see [`below_root`]).
pub fn segments(path: &str, reserved: impl Fn(&str) -> bool) -> Result<Vec<&str>, &'static str> {
    let rest = below_root(path, reserved)?;
    Ok(if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    })
}

/// The part of a contract path below the root (`a/b` of `/a/b`, empty for
/// `/`), refusing relative paths, NUL, empty, `.` and `..` segments, and
/// names `reserved` says belong to the backend. Checked without collecting
/// the segments: a lookup can hand it to the system as it is.
pub fn below_root(path: &str, reserved: impl Fn(&str) -> bool) -> Result<&str, &'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("not an absolute path");
    };
    if path.contains('\0') {
        return Err("NUL in path");
    }
    if rest.is_empty() {
        return Ok(rest);
    }
    for segment in rest.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err("path not normalised");
        }
        if reserved(segment) {
            return Err("path segment not allowed");
        }
    }
    Ok(rest)
}

/// Whether the path is the root collection (`/`; also the empty path some
/// stores use for their root).
pub fn is_root(path: &str) -> bool {
    path.split('/').all(str::is_empty)
}

/// Whether `ancestor` is a proper ancestor of `path`.
pub fn is_ancestor(ancestor: &str, path: &str) -> bool {
    if is_root(ancestor) {
        return !is_root(path);
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
    let parent = if is_root(parent) { "" } else { parent };
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    path.push('/');
    path.push_str(name);
    path
}

/// The parent collection of a path; none for the root.
pub fn parent_of(path: &str) -> Option<&str> {
    if is_root(path) {
        return None;
    }
    let cut = path.rfind('/')?;
    Some(if cut == 0 { "/" } else { &path[..cut] })
}

/// The last segment of a path (empty for the root).
pub fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// `path` (`from` or below it) moved to the same place below `to`.
pub fn rebase(path: &str, from: &str, to: &str) -> String {
    let suffix = &path[from.len()..];
    if is_root(to) && !suffix.is_empty() {
        suffix.to_owned()
    } else {
        format!("{to}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments() {
        let none = |_: &str| false;
        assert_eq!(segments("/", none).unwrap(), Vec::<&str>::new());
        assert_eq!(segments("/a/b", none).unwrap(), ["a", "b"]);
        for bad in ["", "a", "/a/", "//a", "/a/./b", "/../x", "/a\0b"] {
            assert!(segments(bad, none).is_err(), "{bad:?}");
        }
        assert!(segments("/x/.edgedav", |s| s == ".edgedav").is_err());
        assert_eq!(below_root("/", none), Ok(""));
        assert_eq!(below_root("/a/b", none), Ok("a/b"));
        for bad in ["", "a", "/a/", "//a", "/a/./b", "/../x", "/a\0b"] {
            assert!(below_root(bad, none).is_err(), "{bad:?}");
        }
        assert!(below_root("/x/.edgedav/y", |s| s == ".edgedav").is_err());
    }

    #[test]
    fn ancestry() {
        assert!(is_root("/") && is_root(""));
        assert!(!is_root("/a"));
        assert!(is_ancestor("/", "/a"));
        assert!(!is_ancestor("/", "/"));
        assert!(is_ancestor("/a", "/a/b/c"));
        assert!(!is_ancestor("/a", "/ab"));
        assert!(!is_ancestor("/a", "/a"));
        assert!(in_subtree("/a", "/a") && in_subtree("/a/b", "/a") && !in_subtree("/ab", "/a"));
        assert!(in_subtree("/a", "/"));
    }

    #[test]
    fn parents_names_and_rebasing() {
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/"), None);
        assert_eq!(name_of("/a/b"), "b");
        assert_eq!(name_of("/"), "");
        assert_eq!(child_path("/", "x"), "/x");
        assert_eq!(child_path("/a", "x"), "/a/x");
        assert_eq!(rebase("/a/b/c", "/a", "/z"), "/z/b/c");
        assert_eq!(rebase("/a", "/a", "/z/y"), "/z/y");
        assert_eq!(rebase("/a/b", "/a", "/"), "/b");
    }
}
