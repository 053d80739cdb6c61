//! PROPFIND against the in-memory backend: what it costs in storage and lock
//! calls, and that the per-walk lock set gives each resource its own locks.

use crate::testing::Server;

const SHARED_LOCK: &str = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;

/// The `DAV:response` elements of a multistatus body, by href.
fn responses(body: &str) -> Vec<(String, String)> {
    body.split("<D:response>")
        .skip(1)
        .map(|r| {
            let href = r
                .split("<D:href>")
                .nth(1)
                .and_then(|h| h.split("</D:href>").next())
                .expect("href");
            (
                href.to_owned(),
                r.split("</D:response>").next().unwrap().to_owned(),
            )
        })
        .collect()
}

fn set_property(s: &Server, target: &str, value: &str) {
    let body = format!(
        r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:p xmlns:x="urn:x">{value}</x:p></D:prop></D:set></D:propertyupdate>"#
    );
    assert_eq!(s.send("PROPPATCH", target, &[], &body).status, 207);
}

#[test]
fn propfind_reads_dead_properties_only_of_members_that_have_them() {
    let s = Server::new();
    s.expect("MKCOL", "/c", 201);
    s.expect("MKCOL", "/c/dir", 201);
    for name in ["a", "b", "c", "d"] {
        s.expect("PUT", &format!("/c/{name}"), 201);
    }
    set_property(&s, "/c/b", "bee");
    set_property(&s, "/c/dir", "dee");

    let before = s.storage.property_reads();
    let r = s.send("PROPFIND", "/c/", &[("Depth", "1")], "");
    assert_eq!(r.status, 207);
    // The root (whose `stat` says nothing about its properties) and the two
    // members that have some: not one call per member.
    assert_eq!(s.storage.property_reads() - before, 3);
    let found = responses(&r.body);
    assert_eq!(found.len(), 6);
    for (href, response) in &found {
        let value = match href.as_str() {
            "/c/b" => Some("bee"),
            "/c/dir/" => Some("dee"),
            _ => None,
        };
        match value {
            Some(v) => assert!(response.contains(&format!(">{v}</p>")), "{response}"),
            None => assert!(!response.contains("urn:x"), "{response}"),
        }
    }

    // Named properties that are all live need no dead ones at all; a dead
    // one is read where it can exist.
    let before = s.storage.property_reads();
    let live = r#"<propfind xmlns="DAV:"><prop><getetag/><resourcetype/></prop></propfind>"#;
    let r = s.send("PROPFIND", "/c/", &[("Depth", "1")], live);
    assert_eq!(r.status, 207);
    assert_eq!(s.storage.property_reads() - before, 0);
    // An empty value is an empty element; a collection's is not empty.
    assert!(r.body.contains("<D:resourcetype/>"), "{}", r.body);
    assert!(
        r.body
            .contains("<D:resourcetype><D:collection/></D:resourcetype>"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("<D:resourcetype></D:resourcetype>"));
    let dead = r#"<propfind xmlns="DAV:"><prop><p xmlns="urn:x"/></prop></propfind>"#;
    let r = s.send("PROPFIND", "/c/", &[("Depth", "1")], dead);
    assert_eq!(s.storage.property_reads() - before, 3);
    assert_eq!(r.body.matches("HTTP/1.1 404").count(), 4, "{}", r.body);
}

#[test]
fn lockdiscovery_of_each_member_is_its_own() {
    let mut s = Server::new();
    s.config.depth_infinity_limit = 100;
    for dir in ["/top", "/top/c", "/top/c/deep", "/top/c/deep/inner"] {
        s.expect("MKCOL", dir, 201);
    }
    for file in [
        "/top/c/one",
        "/top/c/free",
        "/top/c/deep/x",
        "/top/c/deep/inner/y",
    ] {
        s.expect("PUT", file, 201);
    }
    let lock = |target: &str, depth: &str| {
        let r = s.send("LOCK", target, &[("Depth", depth)], SHARED_LOCK);
        assert_eq!(r.status, 200, "{}", r.body);
        r.header("Lock-Token")
            .unwrap()
            .trim_matches(['<', '>'])
            .to_owned()
    };
    let above = lock("/top", "infinity"); // deep, on an ancestor of the walk's root
    let on_root = lock("/top/c", "0"); // on the root only
    let deep = lock("/top/c/deep", "infinity"); // deep, on a member
    let one = lock("/top/c/one", "0"); // on one member only

    let walk = s.send("PROPFIND", "/top/c/", &[("Depth", "infinity")], "");
    assert_eq!(walk.status, 207);
    let found = responses(&walk.body);
    assert_eq!(found.len(), 7);
    let expected: &[(&str, &[&str])] = &[
        ("/top/c/", &[&above, &on_root]),
        ("/top/c/one", &[&above, &one]),
        ("/top/c/free", &[&above]),
        ("/top/c/deep/", &[&above, &deep]),
        ("/top/c/deep/x", &[&above, &deep]),
        ("/top/c/deep/inner/", &[&above, &deep]),
        ("/top/c/deep/inner/y", &[&above, &deep]),
    ];
    for (href, tokens) in expected {
        let (_, response) = found.iter().find(|(h, _)| h == href).expect(href);
        assert_eq!(
            response.matches("<D:activelock>").count(),
            tokens.len(),
            "{href}: {response}"
        );
        for token in *tokens {
            assert!(response.contains(*token), "{href} lacks {token}");
        }
    }
    // Each response is what a Depth 0 PROPFIND of that resource alone (one
    // `covering` call for it) answers.
    for (href, response) in &found {
        let alone = s.send("PROPFIND", href, &[("Depth", "0")], "");
        assert_eq!(responses(&alone.body), [(href.clone(), response.clone())]);
    }
}

#[test]
fn a_failing_lock_store_is_a_server_error() {
    let s = Server::new();
    s.expect("MKCOL", "/c", 201);
    s.expect("PUT", "/c/f", 201);
    s.locks.fail_with("lock store unreachable");
    for body in [
        "",
        r#"<propfind xmlns="DAV:"><prop><lockdiscovery/></prop></propfind>"#,
    ] {
        for depth in ["0", "1"] {
            let r = s.send("PROPFIND", "/c/", &[("Depth", depth)], body);
            assert_eq!(r.status, 500, "{}", r.body);
            assert!(r.body.contains("lock store unreachable"));
        }
    }
    // Properties that need no locks are still served.
    let etag = r#"<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>"#;
    assert_eq!(
        s.send("PROPFIND", "/c/", &[("Depth", "1")], etag).status,
        207
    );
    // Changes, which check locks first, fail the same way and change nothing.
    assert_eq!(s.send("PUT", "/c/f", &[], "new").status, 500);
    assert_eq!(s.send("DELETE", "/c", &[], "").status, 500);
    assert_eq!(
        s.send("MOVE", "/c/f", &[("Destination", "/c/g")], "")
            .status,
        500
    );
    assert_eq!(s.get("/c/f").body, "x");
}
