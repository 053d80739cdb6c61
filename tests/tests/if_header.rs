//! The If header (RFC 4918 §10.4): tagged and untagged lists, Not, ETags.

use edgedav_tests::*;

fn put_if(s: &Handler, path: &str, iff: &str, body: &str) -> Resp {
    s.req("PUT", path)
        .header("If", iff)
        .body(body.to_string())
        .exec()
}

#[test]
fn untagged_list_with_etag() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    let etag = s.head("/f.txt").etag();
    put_if(&s, "/f.txt", &format!("([{etag}])"), "1")
        .expect(&[200, 204], "If with the current ETag");
    put_if(&s, "/f.txt", "([\"stale\"])", "2").expect(&[412], "If with a stale ETag");
    assert_eq!(s.get("/f.txt").text(), "1");
}

#[test]
fn untagged_list_with_token_and_etag() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    let etag = s.head("/f.txt").etag();
    let token = s.lock_ok("/f.txt", "exclusive", Some("0"));
    put_if(&s, "/f.txt", &format!("(<{token}> [\"stale\"])"), "no")
        .expect(&[412], "token and a stale ETag");
    put_if(&s, "/f.txt", &format!("(<{token}> [{etag}])"), "yes")
        .expect(&[200, 204], "token and the ETag");
    assert_eq!(s.get("/f.txt").text(), "yes");
}

#[test]
fn not_condition() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    // DAV:no-lock never matches a state token, so "Not <DAV:no-lock>" is true.
    put_if(&s, "/f.txt", "(Not <DAV:no-lock>)", "1").expect(&[200, 204], "(Not <DAV:no-lock>)");
    put_if(&s, "/f.txt", "(<DAV:no-lock>)", "2").expect(&[412], "(<DAV:no-lock>)");
    let etag = s.head("/f.txt").etag();
    put_if(&s, "/f.txt", &format!("(Not [{etag}])"), "3").expect(&[412], "(Not [current etag])");
    put_if(&s, "/f.txt", "(Not [\"stale\"])", "4").expect(&[200, 204], "(Not [stale etag])");
    assert_eq!(s.get("/f.txt").text(), "4");
}

#[test]
fn lists_are_ored() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    let etag = s.head("/f.txt").etag();
    put_if(&s, "/f.txt", &format!("([\"stale\"]) ([{etag}])"), "1")
        .expect(&[200, 204], "second list true");
    put_if(&s, "/f.txt", "([\"a\"]) ([\"b\"])", "2").expect(&[412], "both lists false");
}

#[test]
fn lock_token_with_not_no_lock_submits_the_token() {
    // The classic litmus form: (<token>) (Not <DAV:no-lock>) — true, and it
    // submits the token.
    let s = Handler::start();
    s.create("/f.txt", "x");
    let token = s.lock_ok("/f.txt", "exclusive", Some("0"));
    put_if(
        &s,
        "/f.txt",
        &format!("(<{token}>) (Not <DAV:no-lock>)"),
        "ok",
    )
    .expect(&[200, 204], "litmus form");
    // A true If that does not name the lock's token is not enough.
    put_if(&s, "/f.txt", "(Not <DAV:no-lock>)", "no").expect(&[423], "true If without the token");
}

#[test]
fn tagged_lists() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    s.create("/other.txt", "o");
    let etag = s.head("/f.txt").etag();
    let oetag = s.head("/other.txt").etag();
    let url = s.url("/f.txt");
    put_if(&s, "/f.txt", &format!("<{url}> ([{etag}])"), "1")
        .expect(&[200, 204], "tagged, absolute URI");
    let etag = s.head("/f.txt").etag();
    put_if(&s, "/f.txt", &format!("</f.txt> ([{etag}])"), "2")
        .expect(&[200, 204], "tagged, path only");
    put_if(&s, "/f.txt", &format!("<{url}> ([\"stale\"])"), "3")
        .expect(&[412], "tagged, stale ETag");
    // A tagged list about another resource is evaluated against that resource.
    put_if(
        &s,
        "/f.txt",
        &format!("<{}> ([{oetag}])", s.url("/other.txt")),
        "4",
    )
    .expect(&[200, 204], "tagged list about another resource, true");
    put_if(
        &s,
        "/f.txt",
        &format!("<{}> ([\"stale\"])", s.url("/other.txt")),
        "5",
    )
    .expect(&[412], "tagged list about another resource, false");
    assert_eq!(s.get("/f.txt").text(), "4");
}

#[test]
fn token_of_another_resource_in_a_tagged_list_is_412() {
    let s = Handler::start();
    s.create("/a.txt", "a");
    s.create("/b.txt", "b");
    let ta = s.lock_ok("/a.txt", "exclusive", Some("0"));
    // The token of /a.txt's lock does not match any lock of /b.txt.
    put_if(
        &s,
        "/b.txt",
        &format!("<{}> (<{ta}>)", s.url("/b.txt")),
        "x",
    )
    .expect(&[412], "wrong resource for the token");
}

#[test]
fn false_if_fails_every_method_with_412() {
    // RFC 4918 §10.4.1: the If header applies to every method; when it is
    // false the request fails with 412, reads included.
    let s = Handler::start();
    s.create("/f.txt", "x");
    s.create_dir("/c/");
    let mut wrong = Vec::new();
    let mut check = |what: &str, r: Resp| {
        if r.status != 412 {
            wrong.push(format!("{what}: {}", r.status));
        }
    };
    let iff = "([\"stale\"])";
    check("GET", s.req("GET", "/f.txt").header("If", iff).exec());
    check("HEAD", s.req("HEAD", "/f.txt").header("If", iff).exec());
    check(
        "PROPFIND",
        s.req("PROPFIND", "/f.txt")
            .header("Depth", "0")
            .header("If", iff)
            .exec(),
    );
    check(
        "PUT",
        s.req("PUT", "/f.txt").header("If", iff).body("y").exec(),
    );
    check(
        "PROPPATCH",
        s.req("PROPPATCH", "/f.txt").header("If", iff).body(
            r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:a>1</Z:a></D:prop></D:set></D:propertyupdate>"#,
        ).exec(),
    );
    check(
        "COPY",
        s.req("COPY", "/f.txt")
            .header("Destination", s.url("/g.txt"))
            .header("If", iff)
            .exec(),
    );
    check(
        "MOVE",
        s.req("MOVE", "/f.txt")
            .header("Destination", s.url("/h.txt"))
            .header("If", iff)
            .exec(),
    );
    check("MKCOL", s.req("MKCOL", "/c/new/").header("If", iff).exec());
    check(
        "LOCK",
        s.req("LOCK", "/f.txt")
            .header("If", iff)
            .body(lockinfo("exclusive", "me"))
            .exec(),
    );
    check("DELETE", s.req("DELETE", "/f.txt").header("If", iff).exec());
    assert!(
        wrong.is_empty(),
        "methods that did not answer 412 to a false If: {wrong:?}"
    );
    assert_eq!(s.get("/f.txt").expect(&[200], "untouched").text(), "x");
    s.get("/g.txt").expect(&[404], "no copy made");
}

#[test]
fn unknown_token_on_unlocked_resource_is_412() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    put_if(
        &s,
        "/f.txt",
        "(<urn:uuid:00000000-0000-0000-0000-000000000000>)",
        "x",
    )
    .expect(&[412], "unknown token");
}

#[test]
fn malformed_if_is_400() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    for bad in ["garbage", "(<urn:x>", "<http://x/> garbage", "()"] {
        put_if(&s, "/f.txt", bad, "x").expect(&[400], &format!("malformed If {bad:?}"));
    }
    assert_eq!(s.get("/f.txt").text(), "x");
}
