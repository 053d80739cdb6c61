//! OPTIONS: compliance classes, allowed methods and the Microsoft hint.

use edgedav_tests::*;

fn tokens(v: &str) -> Vec<String> {
    v.split(',')
        .map(|t| t.trim().to_ascii_uppercase())
        .collect()
}

#[test]
fn options_on_root_advertises_class_1_and_2() {
    let s = Server::start();
    let r = s.req("OPTIONS", "/").exec();
    r.expect(&[200, 204], "OPTIONS /");
    let dav = tokens(&r.must_header("DAV"));
    assert!(
        dav.contains(&"1".into()),
        "DAV header lacks class 1: {dav:?}"
    );
    assert!(
        dav.contains(&"2".into()),
        "DAV header lacks class 2: {dav:?}"
    );
    assert_eq!(r.must_header("MS-Author-Via").trim(), "DAV");
}

fn allow(s: &Server, path: &str) -> Vec<String> {
    let r = s.req("OPTIONS", path).exec();
    r.expect(&[200, 204], "OPTIONS");
    tokens(&r.must_header("Allow"))
}

#[test]
fn options_allow_lists_the_dav_methods() {
    let s = Server::start();
    s.create("/f.txt", "x");
    s.create_dir("/dir/");
    let (root, file, dir) = (allow(&s, "/"), allow(&s, "/f.txt"), allow(&s, "/dir/"));
    // Every resource supports these.
    for (what, a) in [("/", &root), ("/f.txt", &file), ("/dir/", &dir)] {
        for m in [
            "OPTIONS",
            "GET",
            "HEAD",
            "PROPFIND",
            "PROPPATCH",
            "LOCK",
            "UNLOCK",
        ] {
            assert!(
                a.contains(&m.to_string()),
                "Allow of {what} lacks {m}: {a:?}"
            );
        }
    }
    for m in ["PUT", "DELETE", "COPY", "MOVE"] {
        assert!(
            file.contains(&m.to_string()),
            "Allow of a file lacks {m}: {file:?}"
        );
    }
    for m in ["DELETE", "COPY", "MOVE"] {
        assert!(
            dir.contains(&m.to_string()),
            "Allow of a collection lacks {m}: {dir:?}"
        );
    }
    // MKCOL is listed somewhere: everywhere, on collections, or on an
    // unmapped URL (where it can succeed).
    let r = s.req("OPTIONS", "/unmapped/").exec();
    let unmapped = r.header("Allow").map(|a| tokens(&a)).unwrap_or_default();
    assert!(
        [&root, &file, &dir, &unmapped]
            .iter()
            .any(|a| a.contains(&"MKCOL".to_string())),
        "no Allow lists MKCOL: {root:?} {file:?} {dir:?} {unmapped:?}"
    );
}

#[test]
fn options_star() {
    // `OPTIONS *` asks about the server as a whole (RFC 9110 §9.3.7).
    let s = Server::start();
    let r = s.raw_simple("OPTIONS", "*");
    assert!(
        [200, 204].contains(&r.status),
        "OPTIONS * answered {}:\n{}",
        r.status,
        r.head
    );
    assert!(
        r.head.to_ascii_lowercase().contains("\ndav:"),
        "no DAV header:\n{}",
        r.head
    );
}
