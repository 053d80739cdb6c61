//! Whole-request tests against the in-memory backend.

use crate::backend::Locks;
use crate::testing::{Reply, Server};

const LOCKINFO_EXCLUSIVE: &str = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>litmus</D:owner></D:lockinfo>"#;
const LOCKINFO_SHARED: &str = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;

fn token(reply: &Reply) -> String {
    reply
        .header("Lock-Token")
        .expect("Lock-Token")
        .trim_matches(['<', '>'])
        .to_owned()
}

#[test]
fn options_advertises_class_2() {
    let s = Server::new();
    let r = s.send("OPTIONS", "/", &[], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("DAV"), Some("1, 2, sabredav-partialupdate"));
    assert!(r.header("Allow").unwrap().contains("PROPFIND"));
    let brew = s.send("BREW", "/", &[], "");
    assert_eq!(brew.status, 405);
    assert!(brew.header("Allow").is_some());
}

#[test]
fn put_get_ranges_and_conditionals() {
    let s = Server::new();
    assert_eq!(s.put("/a.txt", "hello world"), 201);
    assert_eq!(s.put("/a.txt", "hello world!"), 204);
    assert_eq!(s.put("/missing/a.txt", "x"), 409);
    let r = s.send("GET", "/a.txt", &[], "");
    assert_eq!((r.status, r.body.as_str()), (200, "hello world!"));
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    let etag = r.header("ETag").unwrap().to_owned();

    let r = s.send("GET", "/a.txt", &[("Range", "bytes=0-4")], "");
    assert_eq!((r.status, r.body.as_str()), (206, "hello"));
    assert_eq!(r.header("Content-Range"), Some("bytes 0-4/12"));
    let r = s.send("GET", "/a.txt", &[("Range", "bytes=-1")], "");
    assert_eq!(r.body, "!");
    let r = s.send("GET", "/a.txt", &[("Range", "bytes=0-0,6-10")], "");
    assert_eq!(r.status, 206);
    assert!(r.body.contains("Content-Range: bytes 6-10/12\r\n\r\nworld"));
    assert_eq!(
        r.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        r.body.len()
    );
    let r = s.send("GET", "/a.txt", &[("Range", "bytes=50-")], "");
    assert_eq!(
        (r.status, r.header("Content-Range")),
        (416, Some("bytes */12"))
    );
    let r = s.send(
        "GET",
        "/a.txt",
        &[("Range", "bytes=0-4"), ("If-Range", "\"stale\"")],
        "",
    );
    assert_eq!(r.status, 200);

    assert_eq!(
        s.send("GET", "/a.txt", &[("If-None-Match", &etag)], "")
            .status,
        304
    );
    assert_eq!(
        s.send("PUT", "/a.txt", &[("If-Match", "\"nope\"")], "x")
            .status,
        412
    );
    assert_eq!(
        s.send("PUT", "/a.txt", &[("If-Match", &etag)], "x").status,
        204
    );
    assert_eq!(
        s.send("PUT", "/b.txt", &[("If-None-Match", "*")], "x")
            .status,
        201
    );
    assert_eq!(
        s.send("PUT", "/b.txt", &[("If-None-Match", "*")], "x")
            .status,
        412
    );
    let head = s.send("HEAD", "/b.txt", &[], "");
    assert_eq!(
        (
            head.status,
            head.body.as_str(),
            head.header("Content-Length")
        ),
        (200, "", Some("1"))
    );
}

#[test]
fn collection_listing_is_escaped_html() {
    let s = Server::new();
    assert_eq!(s.send("MKCOL", "/d", &[], "").status, 201);
    assert_eq!(s.put("/d/a%3Cb%26c.txt", "x"), 201);
    let r = s.send("GET", "/d/", &[], "");
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("<a href=\"/d/a%3Cb%26c.txt\">a&lt;b&amp;c.txt</a>"),
        "{}",
        r.body
    );
}

#[test]
fn mkcol_and_delete() {
    let s = Server::new();
    assert_eq!(s.send("MKCOL", "/c/", &[], "").status, 201);
    assert_eq!(s.send("MKCOL", "/c/", &[], "").status, 405);
    assert_eq!(s.send("MKCOL", "/x/y/", &[], "").status, 409);
    assert_eq!(s.send("MKCOL", "/b/", &[], "junk").status, 415);
    assert_eq!(s.put("/c/f", "1"), 201);
    assert_eq!(s.send("PUT", "/c", &[], "1").status, 405);
    assert_eq!(s.send("DELETE", "/c/", &[], "").status, 204);
    assert_eq!(s.send("GET", "/c/f", &[], "").status, 404);
    assert_eq!(s.send("DELETE", "/c/", &[], "").status, 404);
    assert_eq!(s.send("DELETE", "/", &[], "").status, 403);
}

#[test]
fn copy_and_move() {
    let s = Server::new();
    s.send("MKCOL", "/src", &[], "");
    s.put("/src/f", "data");
    s.send("MKCOL", "/src/sub", &[], "");
    let dest = |p: &str| format!("http://localhost{p}");
    let r = s.send("COPY", "/src/", &[("Destination", &dest("/dst/"))], "");
    assert_eq!(r.status, 201);
    assert_eq!(s.send("GET", "/dst/f", &[], "").body, "data");
    assert_eq!(
        s.send(
            "COPY",
            "/src/",
            &[("Destination", &dest("/dst/")), ("Overwrite", "F")],
            ""
        )
        .status,
        412
    );
    assert_eq!(
        s.send("COPY", "/src/", &[("Destination", &dest("/dst/"))], "")
            .status,
        204
    );
    assert_eq!(
        s.send(
            "COPY",
            "/src/",
            &[("Destination", &dest("/shallow")), ("Depth", "0")],
            ""
        )
        .status,
        201
    );
    assert_eq!(s.send("GET", "/shallow/f", &[], "").status, 404);
    assert_eq!(
        s.send("COPY", "/src/f", &[("Destination", &dest("/nope/f"))], "")
            .status,
        409
    );
    assert_eq!(
        s.send(
            "COPY",
            "/src/f",
            &[("Destination", "http://elsewhere/f")],
            ""
        )
        .status,
        502
    );
    assert_eq!(s.send("COPY", "/src/f", &[], "").status, 400);
    assert_eq!(
        s.send("COPY", "/src/f", &[("Destination", &dest("/src/f"))], "")
            .status,
        403
    );
    assert_eq!(
        s.send("MOVE", "/src/", &[("Destination", &dest("/src/sub/x"))], "")
            .status,
        403
    );
    assert_eq!(
        s.send("MOVE", "/src/", &[("Destination", &dest("/moved"))], "")
            .status,
        201
    );
    assert_eq!(s.send("GET", "/src/f", &[], "").status, 404);
    assert_eq!(s.send("GET", "/moved/f", &[], "").body, "data");
    assert_eq!(
        s.send("MOVE", "/nothing", &[("Destination", &dest("/x"))], "")
            .status,
        404
    );
}

#[test]
fn propfind_depths_and_selections() {
    let s = Server::new();
    s.send("MKCOL", "/d", &[], "");
    s.put("/d/f.txt", "abc");
    let r = s.send("PROPFIND", "/d/", &[("Depth", "1")], "");
    assert_eq!(r.status, 207);
    assert!(r.body.contains("<D:href>/d/</D:href>"));
    assert!(r.body.contains("<D:href>/d/f.txt</D:href>"));
    assert!(
        r.body
            .contains("<D:resourcetype><D:collection/></D:resourcetype>")
    );
    assert!(
        r.body
            .contains("<D:getcontentlength>3</D:getcontentlength>")
    );
    assert!(r.body.contains("<D:supportedlock>"));
    assert!(
        r.body.contains("<D:getetag>\""),
        "ETags are written with plain quotes: {}",
        r.body
    );
    assert_eq!(
        s.send("PROPFIND", "/d/", &[], "").status,
        403,
        "infinity refused by default"
    );
    assert_eq!(s.send("PROPFIND", "/d/", &[("Depth", "2")], "").status, 400);
    assert_eq!(
        s.send("PROPFIND", "/nope", &[("Depth", "0")], "").status,
        404
    );
    assert_eq!(
        s.send("PROPFIND", "/d/", &[("Depth", "0")], "<propfind")
            .status,
        400
    );

    let body = r#"<propfind xmlns="DAV:"><prop><getcontentlength/><x:nope xmlns:x="urn:x"/><quota-available-bytes/></prop></propfind>"#;
    let r = s.send("PROPFIND", "/d/f.txt", &[("Depth", "0")], body);
    assert!(
        r.body
            .contains("<D:getcontentlength>3</D:getcontentlength>")
    );
    assert!(
        r.body.contains(
            "<nope xmlns=\"urn:x\"/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status>"
        ),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<D:quota-available-bytes>1073741824</D:quota-available-bytes>")
    );

    let r = s.send(
        "PROPFIND",
        "/d/f.txt",
        &[("Depth", "0")],
        r#"<propfind xmlns="DAV:"><propname/></propfind>"#,
    );
    assert!(r.body.contains("<D:getetag/>"));
}

#[test]
fn propfind_pages_through_large_collections() {
    let mut s = Server::new();
    s.config.depth_infinity_limit = 10_000;
    s.send("MKCOL", "/big", &[], "");
    for i in 0..2500 {
        s.put(&format!("/big/{i:04}"), "");
    }
    s.send("MKCOL", "/big/sub", &[], "");
    s.put("/big/sub/deep", "");
    let r = s.send("PROPFIND", "/big/", &[("Depth", "1")], "");
    assert_eq!(r.body.matches("<D:response>").count(), 2502);
    // Three pages of listing: every member exactly once.
    for i in 0..2500 {
        let href = format!("<D:href>/big/{i:04}</D:href>");
        assert_eq!(r.body.matches(&href).count(), 1, "{href}");
    }
    let r = s.send("PROPFIND", "/big/", &[("Depth", "infinity")], "");
    assert_eq!(r.body.matches("<D:response>").count(), 2503);
    assert!(r.body.contains("/big/sub/deep"));
    assert!(r.body.trim_end().ends_with("</D:multistatus>"));
}

#[test]
fn proppatch_is_atomic_and_round_trips_xml() {
    let s = Server::new();
    s.put("/p", "x");
    let set = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="http://example.com/ns"><D:set><D:prop><Z:author><Z:name>Ada &amp; co</Z:name></Z:author><Win32LastModifiedTime xmlns="urn:schemas-microsoft-com:">Wed, 01 Jan 2025 00:00:00 GMT</Win32LastModifiedTime></D:prop></D:set></D:propertyupdate>"#;
    let r = s.send("PROPPATCH", "/p", &[], set);
    assert_eq!(r.status, 207);
    assert!(r.body.contains("HTTP/1.1 200 OK"));
    let r = s.send(
        "PROPFIND",
        "/p",
        &[("Depth", "0")],
        r#"<propfind xmlns="DAV:"><prop><author xmlns="http://example.com/ns"/></prop></propfind>"#,
    );
    assert!(r.body.contains("<author xmlns=\"http://example.com/ns\"><name xmlns=\"http://example.com/ns\">Ada &amp; co</name></author>"), "{}", r.body);

    let mixed = r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:getetag>x</D:getetag><a xmlns="urn:a">1</a></D:prop></D:set></D:propertyupdate>"#;
    let r = s.send("PROPPATCH", "/p", &[], mixed);
    assert!(r.body.contains("403 Forbidden") && r.body.contains("424 Failed Dependency"));
    let r = s.send(
        "PROPFIND",
        "/p",
        &[("Depth", "0")],
        r#"<propfind xmlns="DAV:"><prop><a xmlns="urn:a"/></prop></propfind>"#,
    );
    assert!(
        r.body.contains("404 Not Found"),
        "failed PROPPATCH must change nothing"
    );

    let rm = r#"<D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop><Z:author xmlns:Z="http://example.com/ns"/></D:prop></D:remove></D:propertyupdate>"#;
    assert_eq!(s.send("PROPPATCH", "/p", &[], rm).status, 207);
    let r = s.send("PROPFIND", "/p", &[("Depth", "0")], "");
    assert!(!r.body.contains("author"));
    assert!(r.body.contains("Win32LastModifiedTime"));
    // Dead properties follow a MOVE.
    s.send("MOVE", "/p", &[("Destination", "/q")], "");
    assert!(
        s.send("PROPFIND", "/q", &[("Depth", "0")], "")
            .body
            .contains("Win32LastModifiedTime")
    );
}

#[test]
fn exclusive_locks_guard_writes() {
    let s = Server::new();
    s.put("/l", "x");
    let r = s.send("LOCK", "/l", &[("Depth", "0")], LOCKINFO_EXCLUSIVE);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<D:owner>litmus</D:owner>"));
    let t = token(&r);
    assert_eq!(s.send("LOCK", "/l", &[], LOCKINFO_EXCLUSIVE).status, 423);
    assert_eq!(s.send("LOCK", "/l", &[], LOCKINFO_SHARED).status, 423);
    let locked = s.send("PUT", "/l", &[], "y");
    assert_eq!(locked.status, 423);
    assert!(locked.body.contains("lock-token-submitted"));
    assert_eq!(s.send("DELETE", "/l", &[], "").status, 423);
    assert_eq!(
        s.send("MOVE", "/l", &[("Destination", "/m")], "").status,
        423
    );
    let with = format!("(<{t}>)");
    assert_eq!(s.send("PUT", "/l", &[("If", &with)], "y").status, 204);
    // Valid token, wrong entity tag: the If header is false.
    assert_eq!(
        s.send("PUT", "/l", &[("If", &format!("(<{t}> [\"bad\"])"))], "y")
            .status,
        412
    );
    // A true If header that submits no valid token: the lock wins (litmus cond_put_corrupt_token).
    assert_eq!(
        s.send(
            "PUT",
            "/l",
            &[("If", &format!("(<{t}x>) (Not <DAV:no-lock>)"))],
            "y"
        )
        .status,
        423
    );
    // A false If header fails first, even on a locked resource (litmus fail_cond_put).
    assert_eq!(
        s.send("PUT", "/l", &[("If", "(<DAV:no-lock> [\"x\"])")], "y")
            .status,
        412
    );
    // The If header applies to reads too.
    assert_eq!(
        s.send("GET", "/l", &[("If", "([\"stale\"])")], "").status,
        412
    );
    assert_eq!(
        s.send(
            "PROPFIND",
            "/l",
            &[("If", "([\"stale\"])"), ("Depth", "0")],
            ""
        )
        .status,
        412
    );
    assert_eq!(
        s.send(
            "PUT",
            "/l",
            &[("If", &format!("(<{t}>) (Not <DAV:no-lock>)"))],
            "y"
        )
        .status,
        204
    );
    let refresh = s.send(
        "LOCK",
        "/l",
        &[("If", &with), ("Timeout", "Second-100")],
        "",
    );
    assert_eq!(refresh.status, 200);
    assert!(refresh.body.contains("Second-100"));
    let disc = s.send(
        "PROPFIND",
        "/l",
        &[("Depth", "0")],
        r#"<propfind xmlns="DAV:"><prop><lockdiscovery/></prop></propfind>"#,
    );
    assert!(disc.body.contains(&t));
    assert_eq!(
        s.send("UNLOCK", "/l", &[("Lock-Token", "<urn:uuid:wrong>")], "")
            .status,
        409
    );
    assert_eq!(s.send("UNLOCK", "/l", &[], "").status, 400);
    assert_eq!(
        s.send("UNLOCK", "/l", &[("Lock-Token", &format!("<{t}>"))], "")
            .status,
        204
    );
    assert_eq!(
        s.send("PUT", "/l", &[("If", &with)], "z").status,
        412,
        "stale token: If is false"
    );
    assert_eq!(
        s.send("PUT", "/l", &[("If", "(<DAV:no-lock>)")], "z")
            .status,
        412
    );
}

#[test]
fn shared_and_collection_locks() {
    let s = Server::new();
    s.send("MKCOL", "/c", &[], "");
    s.put("/c/f", "x");
    let a = s.send("LOCK", "/c/f", &[], LOCKINFO_SHARED);
    let b = s.send("LOCK", "/c/f", &[], LOCKINFO_SHARED);
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(s.put("/c/f", "y"), 423);
    // Holding one of the shared locks is enough to write.
    assert_eq!(
        s.send("PUT", "/c/f", &[("If", &format!("(<{}>)", token(&b)))], "y")
            .status,
        204
    );
    s.send(
        "UNLOCK",
        "/c/f",
        &[("Lock-Token", a.header("Lock-Token").unwrap())],
        "",
    );
    s.send(
        "UNLOCK",
        "/c/f",
        &[("Lock-Token", b.header("Lock-Token").unwrap())],
        "",
    );

    let r = s.send("LOCK", "/c/", &[], LOCKINFO_EXCLUSIVE);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<D:depth>infinity</D:depth>"));
    let t = token(&r);
    assert_eq!(s.put("/c/f", "y"), 423);
    assert_eq!(s.put("/c/new", "y"), 423);
    assert_eq!(
        s.send("PUT", "/c/new", &[("If", &format!("(<{t}>)"))], "y")
            .status,
        201
    );
    let tagged = format!("<http://localhost/c/> (<{t}>)");
    assert_eq!(s.send("PUT", "/c/f", &[("If", &tagged)], "y").status, 204);
    // Refresh through a member URL.
    assert_eq!(
        s.send("LOCK", "/c/f", &[("If", &format!("(<{t}>)"))], "")
            .status,
        200
    );
    assert_eq!(
        s.send("DELETE", "/c/", &[("If", &format!("(<{t}>)"))], "")
            .status,
        204
    );
    assert!(
        s.locks.covering("/c").unwrap().is_empty(),
        "locks go with deleted resources"
    );

    let r = s.send("LOCK", "/unmapped", &[], LOCKINFO_EXCLUSIVE);
    assert_eq!(r.status, 201);
    assert_eq!(s.send("GET", "/unmapped", &[], "").status, 200);
    assert_eq!(
        s.send("LOCK", "/no/parent", &[], LOCKINFO_EXCLUSIVE).status,
        409
    );
}

#[test]
fn bad_input_is_a_4xx() {
    let s = Server::new();
    assert_eq!(s.send("GET", "/../etc/passwd", &[], "").status, 400);
    assert_eq!(s.send("GET", "/%2e%2e/x", &[], "").status, 400);
    assert_eq!(s.send("PUT", "/x", &[("If", "garbage")], "1").status, 400);
    assert_eq!(s.send("PROPPATCH", "/", &[], "<nope").status, 400);
    assert_eq!(
        s.send("LOCK", "/", &[], "<lockinfo xmlns='DAV:'/>").status,
        400
    );
    let big = format!(
        "<propfind xmlns='DAV:'><prop>{}</prop></propfind>",
        "<a/>".repeat(300_000)
    );
    assert_eq!(s.send("PROPFIND", "/", &[("Depth", "0")], &big).status, 413);
    assert_eq!(
        s.send(
            "COPY",
            "/",
            &[("Destination", "/x"), ("Overwrite", "maybe")],
            ""
        )
        .status,
        400
    );
}

#[test]
fn partial_updates() {
    let s = Server::new();
    let patch = |range: &str, body: &str| {
        s.send(
            "PATCH",
            "/big",
            &[
                ("Content-Type", "application/x-sabredav-partialupdate"),
                ("X-Update-Range", range),
            ],
            body,
        )
    };
    assert_eq!(patch("append", "x").status, 404);
    assert_eq!(
        s.send("PUT", "/big", &[("Content-Range", "bytes 0-4/*")], "hello")
            .status,
        201
    );
    assert_eq!(
        s.send(
            "PUT",
            "/big",
            &[("Content-Range", "bytes 5-10/11")],
            " world"
        )
        .status,
        204
    );
    assert_eq!(s.send("GET", "/big", &[], "").body, "hello world");
    assert_eq!(patch("append", "!").status, 204);
    assert_eq!(patch("bytes=0-4", "HELLO").status, 204);
    assert_eq!(patch("bytes=-1", "?").status, 204);
    assert_eq!(s.send("GET", "/big", &[], "").body, "HELLO world?");
    // A piece whose body does not match its range changes nothing.
    assert_eq!(patch("bytes=0-4", "abc").status, 400);
    assert_eq!(
        s.send("PUT", "/big", &[("Content-Range", "bytes 0-4/*")], "abc")
            .status,
        400
    );
    assert_eq!(s.send("GET", "/big", &[], "").body, "HELLO world?");
    let past_end = s.send("PUT", "/big", &[("Content-Range", "bytes 20-21/*")], "ab");
    assert_eq!(
        (past_end.status, past_end.header("Content-Range")),
        (416, Some("bytes */12"))
    );
    assert_eq!(
        s.send("PATCH", "/big", &[("X-Update-Range", "append")], "x")
            .status,
        415
    );
    assert_eq!(
        s.send("PUT", "/big", &[("Content-Range", "bytes x-1/*")], "ab")
            .status,
        400
    );
}

#[test]
fn copy_and_move_refuse_overlapping_paths() {
    let s = Server::new();
    s.send("MKCOL", "/a", &[], "");
    s.send("MKCOL", "/a/b", &[], "");
    s.put("/a/b/f", "inner");
    s.put("/a/file.txt", "outer");
    let intact = |s: &Server| {
        assert_eq!(s.send("GET", "/a/b/f", &[], "").body, "inner");
        assert_eq!(s.send("GET", "/a/file.txt", &[], "").body, "outer");
    };
    for method in ["MOVE", "COPY"] {
        for (source, destination) in [
            // Destination is an ancestor of the source.
            ("/a/b", "/a"),
            ("/a/b/", "http://localhost/a/"),
            ("/a/b/f", "/a"),
            ("/a/file.txt", "/"),
            // Destination is below the source, a collection or a file.
            ("/a", "/a/b/new"),
            ("/a/file.txt", "/a/file.txt/x"),
            // The same resource, spelled differently.
            ("/a/b", "/a/./b/"),
        ] {
            for overwrite in [None, Some("T"), Some("F")] {
                let mut headers = vec![("Destination", destination)];
                headers.extend(overwrite.map(|o| ("Overwrite", o)));
                let r = s.send(method, source, &headers, "");
                assert_eq!(
                    r.status, 403,
                    "{method} {source} -> {destination} ({overwrite:?}): {}",
                    r.body
                );
                intact(&s);
            }
        }
    }
    // Siblings sharing a name prefix do not overlap.
    assert_eq!(
        s.send("COPY", "/a/b", &[("Destination", "/a/bb")], "")
            .status,
        201
    );
}

#[test]
fn long_path_segments_are_refused_before_storage() {
    let s = Server::new();
    let longest = "a".repeat(255);
    assert_eq!(s.put(&format!("/{longest}"), "x"), 201);
    assert_eq!(s.send("GET", &format!("/{longest}"), &[], "").body, "x");
    // 255 bytes once decoded, though the URL spells them in 765 characters.
    let encoded = "%C3%BC".repeat(127) + "b";
    assert_eq!(s.put(&format!("/{encoded}"), "y"), 201);

    let too_long = [
        format!("/{}", "a".repeat(256)),
        format!("/dir/{}/x", "b".repeat(1000)),
        format!("/{}", "%C3%BC".repeat(128)),
    ];
    for target in &too_long {
        for method in [
            "GET",
            "HEAD",
            "PUT",
            "PATCH",
            "DELETE",
            "MKCOL",
            "COPY",
            "MOVE",
            "PROPFIND",
            "PROPPATCH",
            "LOCK",
            "UNLOCK",
            "OPTIONS",
        ] {
            let r = s.send(method, target, &[("Destination", "/elsewhere")], "");
            assert_eq!(r.status, 414, "{method} {}", &target[..20]);
        }
    }
    for method in ["COPY", "MOVE"] {
        for destination in &too_long {
            let r = s.send(
                method,
                &format!("/{longest}"),
                &[("Destination", destination)],
                "",
            );
            assert_eq!(r.status, 400, "{method}: {}", r.body);
            assert!(r.body.contains("255 bytes"), "{}", r.body);
        }
    }
    assert_eq!(s.send("GET", &format!("/{longest}"), &[], "").body, "x");
}

/// A PROPPATCH setting one property whose value nests `levels` elements.
fn nested_proppatch(levels: usize) -> String {
    format!(
        r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><v xmlns="urn:x">{}{}</v></D:prop></D:set></D:propertyupdate>"#,
        "<n>".repeat(levels),
        "</n>".repeat(levels)
    )
}

#[test]
fn deeply_nested_xml_is_a_400() {
    let s = Server::new();
    s.put("/p", "x");
    for levels in [2_000, 100_000] {
        let body = nested_proppatch(levels);
        assert!(body.len() < s.config.max_xml_body, "under the body cap");
        let r = s.send("PROPPATCH", "/p", &[], &body);
        assert_eq!(r.status, 400, "{levels} levels");
        assert!(r.body.contains("nested deeper than 64"), "{}", r.body);

        let owner = format!("{}x{}", "<o>".repeat(levels), "</o>".repeat(levels));
        let lock = LOCKINFO_EXCLUSIVE.replace("litmus", &owner);
        let r = s.send("LOCK", "/p", &[], &lock);
        assert_eq!(r.status, 400, "LOCK owner of {levels} levels");
    }
    assert_eq!(s.put("/p", "unlocked"), 204, "no lock was taken");
    let r = s.send("PROPFIND", "/p", &[("Depth", "0")], "");
    assert!(!r.body.contains("urn:x"), "no property was set");

    // Values nested as deep as the limit allows still round-trip: the
    // property element is level 4, so 60 levels fit below it.
    assert_eq!(
        s.send("PROPPATCH", "/p", &[], &nested_proppatch(61)).status,
        400
    );
    assert_eq!(
        s.send("PROPPATCH", "/p", &[], &nested_proppatch(60)).status,
        207
    );
    let r = s.send(
        "PROPFIND",
        "/p",
        &[("Depth", "0")],
        r#"<propfind xmlns="DAV:"><prop><v xmlns="urn:x"/></prop></propfind>"#,
    );
    let value = format!(
        r#"<v xmlns="urn:x"><n xmlns="urn:x">{}<n/>{}</v>"#,
        "<n>".repeat(58),
        "</n>".repeat(59)
    );
    assert!(r.body.contains(&value), "{}", r.body);
}

#[test]
fn propfind_infinity_is_refused_only_on_collections() {
    let s = Server::new();
    s.send("MKCOL", "/d", &[], "");
    s.put("/d/f.txt", "abc");
    for depth in [None, Some("infinity")] {
        let headers: Vec<_> = depth.map(|d| ("Depth", d)).into_iter().collect();
        let r = s.send("PROPFIND", "/d/f.txt", &headers, "");
        assert_eq!(r.status, 207, "{depth:?}: {}", r.body);
        assert!(r.body.contains("<D:href>/d/f.txt</D:href>"));
        assert_eq!(r.body.matches("<D:response>").count(), 1);
        assert_eq!(s.send("PROPFIND", "/nope", &headers, "").status, 404);
        assert_eq!(s.send("PROPFIND", "/d/f.txt/x", &headers, "").status, 404);
        let r = s.send("PROPFIND", "/d/", &headers, "");
        assert_eq!(r.status, 403);
        assert!(r.body.contains("propfind-finite-depth"), "{}", r.body);
    }
}
