//! LOCK and UNLOCK (RFC 4918 §9.10, §9.11).

use edgedav_tests::*;

fn activelocks(r: &Resp) -> Vec<Xml> {
    let x = r.xml();
    assert!(
        x.is(DAV, "prop"),
        "LOCK body is not DAV:prop:\n{}",
        r.text()
    );
    let ld = x
        .child(DAV, "lockdiscovery")
        .unwrap_or_else(|| panic!("no lockdiscovery:\n{}", r.text()));
    ld.children_named(DAV, "activelock").cloned().collect()
}

fn timeout_secs(al: &Xml) -> Option<u64> {
    let t = al.child(DAV, "timeout")?.all_text();
    t.strip_prefix("Second-").and_then(|n| n.parse().ok())
}

#[test]
fn exclusive_lock_returns_token_and_lockdiscovery() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    let r = s.lock("/f.txt", "exclusive", Some("0"));
    r.expect(&[200], "LOCK existing file");
    let token = r.lock_token();
    assert!(
        token.contains(':'),
        "lock token is not an absolute URI: {token}"
    );
    assert!(r.must_header("Content-Type").contains("xml"));
    let locks = activelocks(&r);
    assert_eq!(locks.len(), 1, "{}", r.text());
    let al = &locks[0];
    assert!(
        al.child(DAV, "lockscope")
            .and_then(|x| x.child(DAV, "exclusive"))
            .is_some(),
        "{al:?}"
    );
    assert!(
        al.child(DAV, "locktype")
            .and_then(|x| x.child(DAV, "write"))
            .is_some(),
        "{al:?}"
    );
    assert_eq!(
        al.child(DAV, "depth").map(|d| d.all_text()).as_deref(),
        Some("0")
    );
    assert_eq!(
        al.child(DAV, "locktoken")
            .and_then(|t| t.child(DAV, "href"))
            .map(|h| h.all_text()),
        Some(token.clone()),
        "locktoken differs from the Lock-Token header"
    );
    let owner = al
        .child(DAV, "owner")
        .map(|o| o.all_text())
        .unwrap_or_default();
    assert!(
        owner.contains("mailto:tester@example.org"),
        "owner not echoed: {al:?}"
    );
    let secs = timeout_secs(al).unwrap_or_else(|| panic!("timeout is not Second-N: {al:?}"));
    assert!(secs > 0 && secs <= 600, "asked for 600 s, got {secs}");
    let root = al
        .child(DAV, "lockroot")
        .and_then(|r| r.child(DAV, "href"))
        .map(|h| href_path(&h.all_text()));
    assert_eq!(root.as_deref(), Some("/f.txt"), "lockroot");

    // PROPFIND shows the same lock.
    let p = s.props("/f.txt", &[(DAV, "lockdiscovery")]);
    let ld = p.prop_ok(DAV, "lockdiscovery");
    assert!(
        ld.find_all(DAV, "href")
            .iter()
            .any(|h| h.all_text() == token),
        "PROPFIND lockdiscovery lacks the token: {ld:?}"
    );
}

#[test]
fn second_exclusive_lock_is_423() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    s.lock_ok("/f.txt", "exclusive", Some("0"));
    s.lock("/f.txt", "exclusive", Some("0"))
        .expect(&[423], "second exclusive lock");
    s.lock("/f.txt", "shared", Some("0"))
        .expect(&[423], "shared lock on an exclusively locked file");
}

#[test]
fn shared_locks_coexist() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    let t1 = s.lock_ok("/f.txt", "shared", Some("0"));
    let t2 = s.lock_ok("/f.txt", "shared", Some("0"));
    assert_ne!(t1, t2, "two locks with the same token");
    s.lock("/f.txt", "exclusive", Some("0"))
        .expect(&[423], "exclusive over shared locks");
    let p = s.props("/f.txt", &[(DAV, "lockdiscovery")]);
    let n = p
        .prop_ok(DAV, "lockdiscovery")
        .children_named(DAV, "activelock")
        .count();
    assert_eq!(n, 2, "lockdiscovery should show both shared locks");
    // Either token allows writing.
    s.req("PUT", "/f.txt")
        .header("If", format!("(<{t2}>)"))
        .body("y")
        .exec()
        .expect(&[200, 204], "PUT with a shared lock token");
}

#[test]
fn put_on_locked_file_needs_the_token() {
    let s = Handler::start();
    s.create("/f.txt", "orig");
    let token = s.lock_ok("/f.txt", "exclusive", Some("0"));
    s.put("/f.txt", "no token")
        .expect(&[423], "PUT without token");
    assert_eq!(s.get("/f.txt").text(), "orig");
    s.req("PUT", "/f.txt")
        .header("If", format!("(<{token}>)"))
        .body("with token")
        .exec()
        .expect(&[200, 204], "PUT with untagged token");
    assert_eq!(s.get("/f.txt").text(), "with token");
    s.req("PUT", "/f.txt")
        .header("If", format!("<{}> (<{token}>)", s.url("/f.txt")))
        .body("tagged")
        .exec()
        .expect(&[200, 204], "PUT with tagged token");
    assert_eq!(s.get("/f.txt").text(), "tagged");
    // Reading does not need the token.
    s.get("/f.txt").expect(&[200], "GET locked file");
    s.propfind("/f.txt", "0", None)
        .expect(&[207], "PROPFIND locked file");
}

#[test]
fn lock_refresh() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    let token = s.lock_ok("/f.txt", "exclusive", Some("0"));
    let r = s
        .req("LOCK", "/f.txt")
        .header("If", format!("(<{token}>)"))
        .header("Timeout", "Second-300")
        .exec();
    r.expect(&[200], "LOCK refresh");
    let locks = activelocks(&r);
    assert_eq!(locks.len(), 1, "{}", r.text());
    let secs =
        timeout_secs(&locks[0]).unwrap_or_else(|| panic!("no Second-N timeout:\n{}", r.text()));
    assert!(
        secs > 0 && secs <= 300,
        "refresh asked for 300 s, got {secs}"
    );
    assert!(
        r.text().contains(&token),
        "refresh response lacks the token:\n{}",
        r.text()
    );
}

#[test]
fn lock_refresh_with_unknown_token_fails() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    s.lock_ok("/f.txt", "exclusive", Some("0"));
    s.req("LOCK", "/f.txt")
        .header("If", "(<urn:uuid:00000000-0000-0000-0000-000000000000>)")
        .exec()
        .expect(&[412], "LOCK refresh with an unknown token");
}

#[test]
fn lock_timeout_is_capped() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    for asked in ["Second-999999", "Infinite"] {
        let r = s
            .req("LOCK", "/f.txt")
            .header("Timeout", asked)
            .header("Content-Type", "application/xml")
            .body(lockinfo("shared", "me"))
            .exec();
        r.expect(&[200], "LOCK with a long timeout");
        let locks = activelocks(&r);
        let secs = timeout_secs(&locks[0])
            .unwrap_or_else(|| panic!("{asked}: timeout not Second-N:\n{}", r.text()));
        assert!(secs <= 3600, "{asked}: granted {secs} s, cap is 3600");
    }
}

#[test]
fn lock_on_unmapped_url_creates_an_empty_file() {
    let s = Handler::start();
    let r = s.lock("/new.txt", "exclusive", Some("0"));
    r.expect(&[201], "LOCK on an unmapped URL");
    let token = r.lock_token();
    let g = s.get("/new.txt");
    g.expect(&[200], "GET the locked empty resource");
    assert!(g.body.is_empty());
    let p = s.props(
        "/new.txt",
        &[(DAV, "getcontentlength"), (DAV, "resourcetype")],
    );
    assert_eq!(p.prop_ok(DAV, "getcontentlength").all_text(), "0");
    assert!(!p.is_collection());
    s.put("/new.txt", "x")
        .expect(&[423], "PUT without token on the new locked file");
    s.req("PUT", "/new.txt")
        .header("If", format!("(<{token}>)"))
        .body("x")
        .exec()
        .expect(&[200, 204, 201], "PUT with token");
}

#[test]
fn lock_on_unmapped_url_with_missing_parent_is_409() {
    let s = Handler::start();
    s.lock("/no/parent.txt", "exclusive", Some("0"))
        .expect(&[409], "LOCK below a missing collection");
}

#[test]
fn unlock() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    let token = s.lock_ok("/f.txt", "exclusive", Some("0"));
    s.req("UNLOCK", "/f.txt")
        .header("Lock-Token", format!("<{token}>"))
        .exec()
        .expect(&[204], "UNLOCK");
    s.put("/f.txt", "free")
        .expect(&[200, 204], "PUT after UNLOCK");
    let p = s.props("/f.txt", &[(DAV, "lockdiscovery")]);
    assert!(
        p.prop_ok(DAV, "lockdiscovery")
            .find(DAV, "activelock")
            .is_none(),
        "lock still listed after UNLOCK"
    );
    s.lock_ok("/f.txt", "exclusive", Some("0"));
}

#[test]
fn unlock_wrong_token_is_409_and_malformed_is_400() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    let token = s.lock_ok("/f.txt", "exclusive", Some("0"));
    s.req("UNLOCK", "/f.txt")
        .header(
            "Lock-Token",
            "<urn:uuid:00000000-0000-0000-0000-000000000000>",
        )
        .exec()
        .expect(&[409], "UNLOCK with a wrong token");
    s.req("UNLOCK", "/f.txt")
        .header("Lock-Token", "not-a-coded-url")
        .exec()
        .expect(&[400], "UNLOCK with a malformed Lock-Token");
    s.req("UNLOCK", "/f.txt")
        .exec()
        .expect(&[400], "UNLOCK without Lock-Token");
    s.put("/f.txt", "y").expect(&[423], "still locked");
    // The token of a lock on another resource does not unlock this one.
    s.create("/g.txt", "x");
    s.req("UNLOCK", "/g.txt")
        .header("Lock-Token", format!("<{token}>"))
        .exec()
        .expect(&[409], "UNLOCK with the token of another resource's lock");
}

#[test]
fn depth_infinity_lock_covers_members() {
    let s = Handler::start();
    s.create_dir("/c/");
    s.create_dir("/c/sub/");
    s.create("/c/sub/existing.txt", "x");
    let token = s.lock_ok("/c/", "exclusive", Some("infinity"));
    s.put("/c/new.txt", "x")
        .expect(&[423], "PUT new member of a locked collection");
    s.put("/c/sub/existing.txt", "y")
        .expect(&[423], "PUT existing deep member");
    s.mkcol("/c/sub/newdir/")
        .expect(&[423], "MKCOL in a locked collection");
    s.lock("/c/sub/existing.txt", "exclusive", Some("0"))
        .expect(&[423], "exclusive lock inside a deep lock");
    s.req("PUT", "/c/new.txt")
        .header("If", format!("(<{token}>)"))
        .body("x")
        .exec()
        .expect(&[201], "PUT new member with the collection's token");
    s.req("PUT", "/c/sub/existing.txt")
        .header("If", format!("<{}> (<{token}>)", s.url("/c/")))
        .body("z")
        .exec()
        .expect(
            &[200, 204],
            "PUT deep member with the token tagged to the lock root",
        );
    assert_eq!(s.get("/c/sub/existing.txt").text(), "z");
}

#[test]
fn lock_without_depth_is_infinity() {
    let s = Handler::start();
    s.create_dir("/c/");
    let r = s.lock("/c/", "exclusive", None);
    r.expect(&[200], "LOCK collection without Depth");
    let locks = activelocks(&r);
    assert_eq!(
        locks[0]
            .child(DAV, "depth")
            .map(|d| d.all_text().to_ascii_lowercase())
            .as_deref(),
        Some("infinity"),
        "{}",
        r.text()
    );
    s.put("/c/x.txt", "x")
        .expect(&[423], "PUT into a collection locked without Depth");
}

#[test]
fn depth_0_lock_on_a_collection() {
    let s = Handler::start();
    s.create_dir("/c/");
    s.create("/c/member.txt", "x");
    let _t = s.lock_ok("/c/", "exclusive", Some("0"));
    // A new member changes the locked collection: token needed.
    s.put("/c/new.txt", "x")
        .expect(&[423], "add a member to a depth-0 locked collection");
    // Changing an existing member's content does not change the collection.
    s.put("/c/member.txt", "y").expect(
        &[200, 204],
        "PUT an existing member of a depth-0 locked collection",
    );
}

#[test]
fn lock_in_a_collection_with_a_locked_member_conflicts() {
    let s = Handler::start();
    s.create_dir("/c/");
    s.create("/c/m.txt", "x");
    s.lock_ok("/c/m.txt", "exclusive", Some("0"));
    s.lock("/c/", "exclusive", Some("infinity"))
        .expect(&[423, 207], "deep lock over a locked member");
    // A depth-0 lock on the collection does not cover the member.
    s.lock_ok("/c/", "exclusive", Some("0"));
}

#[test]
fn lock_malformed_body_is_400() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    s.req("LOCK", "/f.txt")
        .header("Content-Type", "application/xml")
        .body("<D:lockinfo xmlns:D=\"DAV:\"><D:lockscope>")
        .exec()
        .expect(&[400], "LOCK with malformed XML");
    s.put("/f.txt", "y")
        .expect(&[200, 204], "no lock was taken");
}

#[test]
fn lock_without_body_or_if_is_400() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    // No body means refresh, which needs an If header naming the lock.
    s.req("LOCK", "/f.txt")
        .exec()
        .expect(&[400, 412], "LOCK without body and without If");
}
