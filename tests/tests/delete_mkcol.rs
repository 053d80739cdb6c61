//! DELETE and MKCOL.

use edgedav_tests::*;

#[test]
fn delete_file_is_204_and_gone() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    s.delete("/f.txt").expect(&[200, 204], "DELETE file");
    s.get("/f.txt").expect(&[404], "deleted file");
    s.delete("/f.txt").expect(&[404], "DELETE again");
}

#[test]
fn delete_collection_is_recursive() {
    let s = Handler::start();
    s.create_dir("/c/");
    s.create_dir("/c/sub/");
    s.create_dir("/c/sub/deeper/");
    s.create("/c/a.txt", "a");
    s.create("/c/sub/b.txt", "b");
    s.create("/c/sub/deeper/c.txt", "c");
    s.delete("/c/").expect(&[200, 204], "DELETE collection");
    for p in [
        "/c/",
        "/c/a.txt",
        "/c/sub/",
        "/c/sub/b.txt",
        "/c/sub/deeper/c.txt",
    ] {
        s.get(p).expect(&[404], "member of a deleted collection");
    }
    s.propfind("/c/", "0", None)
        .expect(&[404], "PROPFIND deleted collection");
    // The name is free again.
    s.mkcol("/c/").expect(&[201], "MKCOL after DELETE");
}

#[test]
fn delete_collection_without_trailing_slash() {
    let s = Handler::start();
    s.create_dir("/d/");
    s.create("/d/x", "x");
    s.delete("/d")
        .expect(&[200, 204], "DELETE collection without slash");
    s.get("/d/x").expect(&[404], "member gone");
}

#[test]
fn delete_missing_is_404() {
    let s = Handler::start();
    s.delete("/nothing").expect(&[404], "DELETE missing");
    s.delete("/no/such/path/")
        .expect(&[404], "DELETE missing collection");
}

#[test]
fn delete_ignores_a_depth_infinity_header() {
    let s = Handler::start();
    s.create_dir("/c/");
    s.create("/c/x", "x");
    s.req("DELETE", "/c/")
        .header("Depth", "infinity")
        .exec()
        .expect(&[200, 204], "DELETE Depth infinity");
    s.get("/c/x").expect(&[404], "gone");
}

#[test]
fn delete_locked_file_needs_the_token() {
    let s = Handler::start();
    s.create("/l.txt", "x");
    let token = s.lock_ok("/l.txt", "exclusive", Some("0"));
    s.delete("/l.txt")
        .expect(&[423], "DELETE locked file without token");
    s.get("/l.txt").expect(&[200], "still there");
    s.req("DELETE", "/l.txt")
        .header("If", format!("(<{token}>)"))
        .exec()
        .expect(&[200, 204], "DELETE locked file with its token");
    s.get("/l.txt").expect(&[404], "gone");
    // The lock went with the resource: a new exclusive lock is possible.
    s.create("/l.txt", "again");
    s.lock_ok("/l.txt", "exclusive", Some("0"));
}

#[test]
fn delete_collection_with_a_locked_member_fails() {
    let s = Handler::start();
    s.create_dir("/c/");
    s.create("/c/locked.txt", "keep me");
    s.create("/c/free.txt", "free");
    let _token = s.lock_ok("/c/locked.txt", "exclusive", Some("0"));
    let r = s.delete("/c/");
    // RFC 4918 §9.6.1: either the whole request fails with 423, or a 207
    // names the locked member with 423 (§9.6.1, example in §9.6.2).
    r.expect(&[423, 207], "DELETE collection with a locked member");
    if r.status == 207 {
        let ms = r.multistatus();
        let m = find_response(&ms, "/c/locked.txt")
            .unwrap_or_else(|| panic!("207 does not name the locked member:\n{}", r.text()));
        assert_eq!(m.status, Some(423), "locked member status:\n{}", r.text());
    }
    assert_eq!(
        s.get("/c/locked.txt")
            .expect(&[200], "locked member survives")
            .text(),
        "keep me"
    );
}

#[test]
fn delete_collection_in_a_locked_collection_with_token() {
    let s = Handler::start();
    s.create_dir("/c/");
    s.create("/c/x.txt", "x");
    let token = s.lock_ok("/c/", "exclusive", Some("infinity"));
    s.delete("/c/x.txt")
        .expect(&[423], "DELETE member of a locked collection without token");
    s.req("DELETE", "/c/x.txt")
        .header("If", format!("(<{token}>)"))
        .exec()
        .expect(&[200, 204], "DELETE member with the collection's token");
}

// ---------------------------------------------------------------- MKCOL

#[test]
fn mkcol_creates_201() {
    let s = Handler::start();
    s.mkcol("/new/").expect(&[201], "MKCOL");
    let r = s.propfind("/new/", "0", None);
    r.expect(&[207], "PROPFIND new collection");
    assert!(
        r.multistatus()[0].is_collection(),
        "not a collection:\n{}",
        r.text()
    );
    s.mkcol("/new/nested")
        .expect(&[201], "MKCOL without trailing slash");
    assert!(s.propfind("/new/nested/", "0", None).multistatus()[0].is_collection());
}

#[test]
fn mkcol_existing_is_405() {
    let s = Handler::start();
    s.create_dir("/c/");
    s.mkcol("/c/")
        .expect(&[405], "MKCOL on an existing collection");
    s.create("/f", "x");
    s.mkcol("/f").expect(&[405], "MKCOL on an existing file");
    assert_eq!(s.get("/f").text(), "x");
    s.mkcol("/").expect(&[405], "MKCOL on the root");
}

#[test]
fn mkcol_missing_parent_is_409() {
    let s = Handler::start();
    s.mkcol("/a/b/c/")
        .expect(&[409], "MKCOL with missing parents");
    s.get("/a/")
        .expect(&[404], "no intermediate collection created");
}

#[test]
fn mkcol_below_a_file_is_409() {
    let s = Handler::start();
    s.create("/f", "x");
    s.mkcol("/f/sub/").expect(&[409], "MKCOL below a file");
}

#[test]
fn mkcol_with_a_body_is_415() {
    let s = Handler::start();
    s.req("MKCOL", "/withbody/")
        .header("Content-Type", "text/plain")
        .body("this is not an extended mkcol body")
        .exec()
        .expect(&[415], "MKCOL with a body");
    s.propfind("/withbody/", "0", None)
        .expect(&[404], "nothing created by a rejected MKCOL");
    s.req("MKCOL", "/withxml/")
        .header("Content-Type", "application/xml")
        .body(r#"<?xml version="1.0"?><x:foo xmlns:x="urn:x"/>"#)
        .exec()
        .expect(&[415], "MKCOL with an unknown XML body");
}
