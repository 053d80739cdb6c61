//! Unit tests of the S3 backend that need no server (the end-to-end tests
//! and the conformance suite run against Garage).

use super::*;

#[test]
fn parents_and_ancestors() {
    assert_eq!(split_parent("/a"), ("/", "a"));
    assert_eq!(split_parent("/a/b/c"), ("/a/b", "c"));
    assert!(valid_name("x.txt"));
    assert!(!valid_name(""));
    assert!(!valid_name(".edgedav"));
    assert!(!valid_name("a/b"));
}

/// A backend whose client is never used (no request is sent).
fn offline(root: &str) -> S3Backend {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("test"))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        )
        .build();
    S3Backend(Arc::new(Inner::new(
        Client::from_conf(config),
        "bucket".into(),
        root.into(),
    )))
}

#[test]
fn keys_of_paths() {
    let s = offline("p/");
    assert_eq!(s.key("/").unwrap(), "p/");
    assert_eq!(s.key("/a/b c").unwrap(), "p/a/b c");
    assert_eq!(s.dir("/").unwrap(), "p/");
    assert_eq!(s.dir("/a").unwrap(), "p/a/");
    assert_eq!(s.props_key("/").unwrap(), "p/.edgedav/root-props");
    assert_eq!(s.props_key("/a").unwrap(), "p/.edgedav/props/a");
    assert_eq!(s.props_key("/a/b").unwrap(), "p/a/.edgedav/props/b");

    let bare = offline("");
    assert_eq!(bare.key("/").unwrap(), "");
    assert_eq!(bare.dir("/").unwrap(), "");
    assert_eq!(bare.key("/a/b").unwrap(), "a/b");
    assert_eq!(bare.dir("/a/b").unwrap(), "a/b/");
    assert_eq!(bare.props_key("/a").unwrap(), ".edgedav/props/a");
    assert_eq!(bare.props_key("/").unwrap(), ".edgedav/root-props");

    for bad in [
        "relative",
        "/a/../b",
        "/./a",
        "/.edgedav",
        "/a/.edgedav/props/b",
        "/a\0b",
        "/a/",
        "//a",
    ] {
        assert!(matches!(s.key(bad), Err(Error::Forbidden(_))), "{bad}");
    }
    // S3 keys have at most 1,024 bytes, property keys included.
    let long = format!("/{}", "x".repeat(1000));
    assert!(s.key(&long).is_ok());
    assert!(s.props_key(&long).unwrap().len() <= MAX_KEY_LEN);
    let too_long = format!("/{}", "x".repeat(1010));
    assert_eq!(s.key(&too_long), Err(name_too_long()));
}

#[test]
fn paths_of_keys() {
    let s = offline("p/");
    for (key, path) in [
        ("p/", "/"),
        ("p/a", "/a"),
        ("p/a/", "/a"),
        ("p/a/b/", "/a/b"),
        ("p/a/.edgedav/props/b", "/a/b"),
        ("p/.edgedav/props/a", "/a"),
        ("p/.edgedav/root-props", "/"),
    ] {
        assert_eq!(s.path_of(key), path, "{key}");
    }
    // Every key maps back to the path it was made from.
    for path in ["/a", "/a/b", "/x y/z"] {
        assert_eq!(s.path_of(&s.key(path).unwrap()), path);
        assert_eq!(s.path_of(&s.dir(path).unwrap()), path);
        assert_eq!(s.path_of(&s.props_key(path).unwrap()), path);
    }
}

#[test]
fn collection_etags_differ_by_path() {
    let s = offline("p/");
    let a = s.collection_meta("p/a/");
    assert_eq!(a.etag, s.collection_meta("p/a/").etag);
    assert_ne!(a.etag, s.collection_meta("p/b/").etag);
    assert!(matches!(a.kind, NodeKind::Collection));
}

#[test]
fn copy_sources_are_percent_encoded() {
    assert_eq!(
        copy_source("b", "dir/a b+c%d&é.txt"),
        "b/dir/a%20b%2Bc%25d%26%C3%A9.txt"
    );
    assert_eq!(copy_source("b", "x-y_z.~/"), "b/x-y_z.~/");
}
