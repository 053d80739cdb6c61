//! Hostile paths and bad input: traversal, oversized bodies, bad Depth.

use edgedav_tests::*;

const TRAVERSALS: &[&str] = &[
    "/../sentinel.txt",
    "/../../sentinel.txt",
    "/a/../../sentinel.txt",
    "/%2e%2e/sentinel.txt",
    "/%2E%2E/sentinel.txt",
    "/%2e%2e%2fsentinel.txt",
    "/..%2fsentinel.txt",
    "/.%2e/sentinel.txt",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/../../../../etc/passwd",
    "/..%5c..%5csentinel.txt",
];

#[test]
fn traversal_never_serves_files_outside_the_root() {
    let s = Server::start();
    s.create_dir("/a/");
    for t in TRAVERSALS {
        for method in ["GET", "PROPFIND"] {
            let r = s.raw_simple(method, t);
            let body = r.text();
            assert!(
                !body.contains(SENTINEL),
                "{method} {t} served the file outside the root"
            );
            assert!(
                !body.contains("root:x:0:0"),
                "{method} {t} served /etc/passwd"
            );
            assert!(
                [400, 403, 404].contains(&r.status),
                "{method} {t}: status {}, expected 400, 403 or 404\n{}",
                r.status,
                r.head
            );
        }
    }
}

#[test]
fn traversal_never_writes_outside_the_root() {
    let s = Server::start();
    let targets = [
        "/../escaped.txt",
        "/%2e%2e/escaped.txt",
        "/%2e%2e%2fescaped.txt",
        "/a/%2e%2e/%2e%2e/escaped.txt",
    ];
    for t in targets {
        let r = s.raw(&format!(
            "PUT {t} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 4\r\n\r\nevil",
            s.port
        ));
        assert!(r.status < 500, "PUT {t}: {}", r.status);
        assert!(
            !s.outside().join("escaped.txt").exists(),
            "PUT {t} wrote outside the root"
        );
        let r = s.raw_simple("MKCOL", &t.replace("escaped.txt", "escaped-dir"));
        assert!(r.status < 500, "MKCOL {t}: {}", r.status);
        assert!(
            !s.outside().join("escaped-dir").exists(),
            "MKCOL {t} created a directory outside the root"
        );
    }
    // DELETE must not reach the sentinel either.
    for t in TRAVERSALS {
        let r = s.raw_simple("DELETE", t);
        assert!(r.status < 500, "DELETE {t}: {}", r.status);
        assert!(
            s.outside().join("sentinel.txt").exists(),
            "DELETE {t} removed a file outside the root"
        );
    }
}

#[test]
fn traversal_in_destination_is_refused() {
    let s = Server::start();
    s.create("/src.txt", "evil");
    for dest in [
        "/../escaped.txt".to_string(),
        "/%2e%2e/escaped.txt".to_string(),
        format!("http://127.0.0.1:{}/%2e%2e/escaped.txt", s.port),
    ] {
        for method in ["COPY", "MOVE"] {
            let r = s.raw(&format!(
                "{method} /src.txt HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nDestination: {dest}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                s.port
            ));
            assert!(
                r.status < 500 || r.status == 502,
                "{method} to {dest}: {}",
                r.status
            );
            assert!(
                !s.outside().join("escaped.txt").exists(),
                "{method} to {dest} wrote outside the root"
            );
        }
    }
    // Copying the sentinel in through a hostile source.
    let r = s.raw(&format!(
        "COPY /%2e%2e/sentinel.txt HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nDestination: /stolen.txt\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        s.port
    ));
    assert!(
        [400, 403, 404].contains(&r.status),
        "COPY from outside: {}",
        r.status
    );
    let g = s.get("/stolen.txt");
    assert!(
        !g.text().contains(SENTINEL),
        "the sentinel was copied into the root"
    );
}

#[test]
fn dot_segments_inside_the_root_do_not_leak_either() {
    let s = Server::start();
    s.create_dir("/a/");
    s.create("/b.txt", "bee");
    // Whether a server resolves "/a/../b.txt" to "/b.txt" or refuses it, it
    // must not fail with a 5xx.
    let r = s.raw_simple("GET", "/a/../b.txt");
    assert!(
        [200, 400, 403, 404].contains(&r.status),
        "GET /a/../b.txt: {}",
        r.status
    );
    if r.status == 200 {
        assert_eq!(r.text(), "bee");
    }
}

#[test]
fn nul_and_invalid_encodings_are_4xx() {
    let s = Server::start();
    for t in ["/a%00b", "/%ff%fe.txt", "/bad%zz", "/x%"] {
        let r = s.raw_simple("GET", t);
        assert!((400..500).contains(&r.status), "GET {t}: {}", r.status);
    }
}

#[test]
fn internal_store_is_not_reachable() {
    let s = Server::start();
    s.create("/f.txt", "x");
    s.proppatch(
        "/f.txt",
        r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:p>v</Z:p></D:prop></D:set></D:propertyupdate>"#,
    )
    .expect(&[207], "PROPPATCH");
    // README: dead properties live under <root>/.edgedav/props.
    for p in [
        "/.edgedav",
        "/.edgedav/",
        "/.edgedav/props",
        "/.edgedav/props/",
    ] {
        s.get(p).expect(&[403, 404], "GET internal store");
        s.propfind(p, "1", None)
            .expect(&[403, 404], "PROPFIND internal store");
    }
    s.put("/.edgedav/props/evil", "x")
        .expect(&[403, 404, 409], "PUT into the internal store");
    s.delete("/.edgedav/")
        .expect(&[403, 404], "DELETE the internal store");
    s.mkcol("/.edgedav/")
        .expect(&[403, 405], "MKCOL the internal store");
    s.copy_move("COPY", "/f.txt", "/.edgedav/x", &[])
        .expect(&[403, 404, 409], "COPY into the internal store");
    // Dead properties still work afterwards.
    s.props("/f.txt", &[("urn:z", "p")]).prop_ok("urn:z", "p");
}

#[test]
fn oversized_xml_bodies_are_refused() {
    let s = Server::start();
    s.create("/f.txt", "x");
    let mut big =
        String::from(r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop>"#);
    let mut i = 0;
    while big.len() < 2 * 1024 * 1024 {
        big.push_str(&format!("<Z:p{i}/>"));
        i += 1;
    }
    big.push_str("</D:prop></D:propfind>");
    s.propfind("/f.txt", "0", Some(&big))
        .expect(&[400, 413], "2 MiB PROPFIND");

    let mut big = String::from(
        r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:big>"#,
    );
    big.push_str(&"a".repeat(2 * 1024 * 1024));
    big.push_str("</Z:big></D:prop></D:set></D:propertyupdate>");
    s.proppatch("/f.txt", &big)
        .expect(&[400, 413, 507], "2 MiB PROPPATCH");
    let mut big = lockinfo("exclusive", "me");
    big.push_str(&" ".repeat(2 * 1024 * 1024));
    s.req("LOCK", "/f.txt")
        .body(big)
        .exec()
        .expect(&[400, 413], "2 MiB LOCK");
    // The server is still fine.
    s.propfind("/f.txt", "0", None)
        .expect(&[207], "PROPFIND after oversized bodies");
}

#[test]
fn unknown_depth_is_400() {
    let s = Server::start();
    s.create_dir("/c/");
    for d in ["2", "foo", "-1", ""] {
        s.propfind("/c/", d, None)
            .expect(&[400], &format!("PROPFIND Depth {d:?}"));
    }
    s.create("/c/f", "x");
    s.req("COPY", "/c/")
        .header("Destination", s.url("/d/"))
        .header("Depth", "bogus")
        .exec()
        .expect(&[400], "COPY with a bad Depth");
    s.req("LOCK", "/c/")
        .header("Depth", "1")
        .header("Content-Type", "application/xml")
        .body(lockinfo("exclusive", "me"))
        .exec()
        .expect(&[400], "LOCK Depth 1");
}

#[test]
fn unicode_names_round_trip() {
    let s = Server::start();
    s.create_dir("/%C3%BCber%20dir/");
    s.create(
        "/%C3%BCber%20dir/%E2%9C%93%20ok%20%2B%20100%25.txt",
        "unicode",
    );
    let r = s.propfind("/%C3%BCber%20dir/", "1", None);
    r.expect(&[207], "PROPFIND unicode collection");
    let ms = r.multistatus();
    let f = find_response(&ms, "/über dir/✓ ok + 100%.txt")
        .unwrap_or_else(|| panic!("unicode member missing:\n{}", r.text()));
    assert_eq!(f.prop_ok(DAV, "displayname").all_text(), "✓ ok + 100%.txt");
    assert!(
        !f.href.contains(' '),
        "href not percent-encoded: {}",
        f.href
    );
    assert_eq!(
        s.get("/%C3%BCber%20dir/%E2%9C%93%20ok%20%2B%20100%25.txt")
            .text(),
        "unicode"
    );
}
