//! PROPFIND (RFC 4918 §9.1) and the quota properties of RFC 4331.

use edgedav_tests::*;

const ALL_LIVE: [&str; 9] = [
    "creationdate",
    "displayname",
    "getcontentlength",
    "getcontenttype",
    "getetag",
    "getlastmodified",
    "lockdiscovery",
    "resourcetype",
    "supportedlock",
];

fn check_file_props(r: &MsResponse, len: u64, etag: &str) {
    assert_eq!(
        r.prop_ok(DAV, "getcontentlength").all_text(),
        len.to_string()
    );
    let lm = r.prop_ok(DAV, "getlastmodified").all_text();
    assert!(
        parse_http_date(&lm).is_some(),
        "getlastmodified is not an HTTP date: {lm:?}"
    );
    assert_eq!(
        r.prop_ok(DAV, "getetag").all_text(),
        etag,
        "getetag differs from the ETag header"
    );
    assert!(!r.is_collection(), "a file has collection resourcetype");
    let cd = r.prop_ok(DAV, "creationdate").all_text();
    // RFC 3339 date-time, e.g. 2024-01-02T03:04:05Z
    assert!(
        cd.len() >= 20 && cd.as_bytes()[4] == b'-' && cd.contains('T'),
        "creationdate {cd:?}"
    );
    assert!(
        r.prop_ok(DAV, "getcontenttype")
            .all_text()
            .starts_with("text/plain")
    );
    r.prop_ok(DAV, "lockdiscovery");
    let sl = r.prop_ok(DAV, "supportedlock");
    let entries = sl.find_all(DAV, "lockentry");
    let has = |scope: &str| {
        entries.iter().any(|e| {
            e.child(DAV, "lockscope")
                .and_then(|s| s.child(DAV, scope))
                .is_some()
                && e.child(DAV, "locktype")
                    .and_then(|t| t.child(DAV, "write"))
                    .is_some()
        })
    };
    assert!(
        has("exclusive"),
        "supportedlock lacks exclusive write: {sl:?}"
    );
    assert!(has("shared"), "supportedlock lacks shared write: {sl:?}");
}

#[test]
fn propfind_depth_0_on_root() {
    let s = Handler::start();
    s.create("/a.txt", "x");
    let r = s.propfind("/", "0", Some(ALLPROP));
    r.expect(&[207], "PROPFIND / Depth 0");
    let ct = r.must_header("Content-Type");
    assert!(ct.contains("xml"), "Content-Type {ct:?}");
    let ms = r.multistatus();
    assert_eq!(ms.len(), 1, "{}", r.text());
    assert_eq!(ms[0].path(), "/");
    assert!(
        ms[0].is_collection(),
        "root is not a collection:\n{}",
        r.text()
    );
    let lm = ms[0].prop_ok(DAV, "getlastmodified").all_text();
    assert!(parse_http_date(&lm).is_some(), "getlastmodified {lm:?}");
    ms[0].prop_ok(DAV, "lockdiscovery");
    ms[0].prop_ok(DAV, "supportedlock");
}

#[test]
fn propfind_depth_1_on_root() {
    let s = Handler::start();
    s.create("/a.txt", "hello");
    s.create_dir("/d/");
    s.create("/d/inner.txt", "not listed at depth 1");
    let r = s.propfind("/", "1", Some(ALLPROP));
    r.expect(&[207], "PROPFIND / Depth 1");
    let ms = r.multistatus();
    assert_eq!(ms.len(), 3, "expected /, /a.txt, /d/:\n{}", r.text());
    let a = find_response(&ms, "/a.txt").expect("a.txt listed");
    assert_eq!(a.prop_ok(DAV, "getcontentlength").all_text(), "5");
    assert!(!a.is_collection());
    assert_eq!(a.prop_ok(DAV, "displayname").all_text(), "a.txt");
    let d = find_response(&ms, "/d/").expect("d/ listed");
    assert!(d.is_collection(), "d is not a collection");
    assert!(
        d.href.ends_with('/'),
        "collection href should end with a slash: {}",
        d.href
    );
    assert_eq!(d.prop_ok(DAV, "displayname").all_text(), "d");
    assert!(
        find_response(&ms, "/d/inner.txt").is_none(),
        "Depth 1 went deeper"
    );
}

#[test]
fn propfind_on_a_file_shows_all_live_properties() {
    let s = Handler::start();
    s.create("/f.txt", "12345");
    let etag = s.head("/f.txt").etag();
    for depth in ["0", "1"] {
        let r = s.propfind("/f.txt", depth, Some(ALLPROP));
        r.expect(&[207], "PROPFIND file");
        let ms = r.multistatus();
        assert_eq!(ms.len(), 1, "Depth {depth} on a file:\n{}", r.text());
        assert_eq!(ms[0].path(), "/f.txt");
        check_file_props(&ms[0], 5, &etag);
        assert_eq!(ms[0].prop_ok(DAV, "displayname").all_text(), "f.txt");
    }
}

#[test]
fn propfind_named_live_properties() {
    let s = Handler::start();
    s.create("/f.txt", "12345");
    let etag = s.head("/f.txt").etag();
    let names: Vec<(&str, &str)> = ALL_LIVE.iter().map(|n| (DAV, *n)).collect();
    let r = s.props("/f.txt", &names);
    check_file_props(&r, 5, &etag);
    // Only what was asked for comes back.
    let total: usize = r.propstats.iter().map(|p| p.props.len()).sum();
    assert_eq!(total, ALL_LIVE.len(), "{:#?}", r.propstats);
}

#[test]
fn propfind_without_body_is_allprop() {
    let s = Handler::start();
    s.create("/f.txt", "abc");
    let etag = s.head("/f.txt").etag();
    let r = s.propfind("/f.txt", "0", None);
    r.expect(&[207], "PROPFIND without body");
    check_file_props(&r.multistatus()[0], 3, &etag);
    // An empty body with Content-Length: 0 is the same.
    let r = s
        .req("PROPFIND", "/f.txt")
        .header("Depth", "0")
        .header("Content-Length", "0")
        .exec();
    r.expect(&[207], "PROPFIND with an empty body");
    check_file_props(&r.multistatus()[0], 3, &etag);
}

#[test]
fn propfind_propname() {
    let s = Handler::start();
    s.create("/f.txt", "abc");
    let r = s.propfind("/f.txt", "0", Some(PROPNAME));
    r.expect(&[207], "PROPFIND propname");
    let ms = r.multistatus();
    for n in [
        "getcontentlength",
        "getlastmodified",
        "getetag",
        "resourcetype",
        "displayname",
    ] {
        let (st, p) = ms[0]
            .prop(DAV, n)
            .unwrap_or_else(|| panic!("propname lacks {n}:\n{}", r.text()));
        assert_eq!(st, 200);
        assert!(
            p.children.is_empty() && p.text.trim().is_empty(),
            "propname returned a value for {n}: {p:?}"
        );
    }
}

#[test]
fn propfind_unknown_property_is_404_in_its_propstat() {
    let s = Handler::start();
    s.create("/f.txt", "abc");
    let r = s.props(
        "/f.txt",
        &[(DAV, "getcontentlength"), ("urn:example:nope", "missing")],
    );
    assert_eq!(r.prop(DAV, "getcontentlength").map(|p| p.0), Some(200));
    assert_eq!(
        r.prop("urn:example:nope", "missing").map(|p| p.0),
        Some(404),
        "unknown property: {:#?}",
        r.propstats
    );
}

#[test]
fn propfind_depth_infinity_is_403_finite_depth() {
    let s = Handler::start();
    s.create_dir("/a/");
    let r = s.propfind("/", "infinity", Some(ALLPROP));
    r.expect(&[403], "PROPFIND Depth infinity");
    let x = r.xml();
    assert!(x.is(DAV, "error"), "body is not DAV:error:\n{}", r.text());
    assert!(
        x.child(DAV, "propfind-finite-depth").is_some(),
        "no propfind-finite-depth:\n{}",
        r.text()
    );
}

#[test]
fn propfind_depth_infinity_when_enabled() {
    let s = Server::start_with(&["--depth-infinity-limit", "1000"]);
    s.create_dir("/a/");
    s.create_dir("/a/b/");
    s.create_dir("/a/b/c/");
    s.create("/a/b/c/deep.txt", "deep");
    s.create("/top.txt", "top");
    let r = s.propfind("/", "infinity", Some(ALLPROP));
    r.expect(
        &[207],
        "PROPFIND Depth infinity with --depth-infinity-limit",
    );
    let ms = r.multistatus();
    for p in [
        "/",
        "/a/",
        "/a/b/",
        "/a/b/c/",
        "/a/b/c/deep.txt",
        "/top.txt",
    ] {
        assert!(
            find_response(&ms, p).is_some(),
            "{p} missing from Depth infinity:\n{}",
            r.text()
        );
    }
    assert_eq!(ms.len(), 6, "{}", r.text());
}

#[test]
fn propfind_depth_infinity_over_the_limit_is_refused_or_truncated() {
    let s = Server::start_with(&["--depth-infinity-limit", "3"]);
    s.create_dir("/a/");
    for i in 0..5 {
        s.create(&format!("/a/f{i}"), "x");
    }
    // 7 resources, limit 3: either a refusal (403 propfind-finite-depth, or
    // 507), or a 207 whose listing is cut short and says so with a response
    // of status 507 (RFC 4918 §11.5, as Apache does for truncated listings).
    let r = s.propfind("/", "infinity", None);
    r.expect(&[403, 507, 207], "PROPFIND Depth infinity over the limit");
    match r.status {
        403 => assert!(
            r.xml().child(DAV, "propfind-finite-depth").is_some(),
            "{}",
            r.text()
        ),
        207 => {
            let ms = r.multistatus();
            assert!(
                ms.len() < 7,
                "the limit of 3 was not applied: {} responses",
                ms.len()
            );
            assert!(
                ms.iter().any(|m| m.status == Some(507)),
                "a truncated listing must carry a 507 response:\n{}",
                r.text()
            );
            let complete = ms.iter().filter(|m| m.status != Some(507)).count();
            assert!(
                complete <= 3,
                "{complete} entries returned with a limit of 3"
            );
        }
        _ => {}
    }
}

#[test]
fn propfind_malformed_xml_is_400() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    for body in [
        "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:getetag></D:propfind>",
        "this is not xml",
        "<?xml version=\"1.0\"?><D:propfind xmlns:D=\"DAV:\"><D:prop>",
    ] {
        s.propfind("/f.txt", "0", Some(body))
            .expect(&[400], "PROPFIND malformed body");
    }
}

#[test]
fn propfind_wrong_root_element_is_400() {
    let s = Handler::start();
    let body = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"/>"#;
    s.propfind("/", "0", Some(body))
        .expect(&[400], "PROPFIND with a non-propfind body");
}

#[test]
fn propfind_missing_resource_is_404() {
    let s = Handler::start();
    s.propfind("/nope", "0", None)
        .expect(&[404], "PROPFIND missing");
    s.propfind("/nope/", "1", Some(ALLPROP))
        .expect(&[404], "PROPFIND missing collection");
}

#[test]
fn propfind_quota_properties() {
    let s = Handler::start();
    s.create("/f.txt", "0123456789");
    let r = s.props(
        "/",
        &[(DAV, "quota-available-bytes"), (DAV, "quota-used-bytes")],
    );
    let avail = r.prop_ok(DAV, "quota-available-bytes").all_text();
    let used = r.prop_ok(DAV, "quota-used-bytes").all_text();
    assert!(
        avail.parse::<u64>().is_ok(),
        "quota-available-bytes {avail:?}"
    );
    assert!(used.parse::<u64>().is_ok(), "quota-used-bytes {used:?}");
}

#[test]
fn propfind_does_not_list_internal_files() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    // Creates the dead-property store if there is one.
    s.proppatch(
        "/f.txt",
        r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:p>v</Z:p></D:prop></D:set></D:propertyupdate>"#,
    )
    .expect(&[207], "PROPPATCH");
    let r = s.propfind("/", "1", None);
    r.expect(&[207], "PROPFIND /");
    let ms = r.multistatus();
    let paths: Vec<String> = ms.iter().map(|m| m.path()).collect();
    assert_eq!(paths.len(), 2, "only / and /f.txt expected, got {paths:?}");
    assert!(
        !r.text().contains(".edgedav"),
        "internal store listed:\n{}",
        r.text()
    );
    assert!(
        !s.get("/").text().contains(".edgedav"),
        "internal store in the HTML listing"
    );
}

#[test]
fn propfind_depth_1_lists_2500_members() {
    let s = Server::start();
    s.create_dir("/many/");
    const N: usize = 2500;
    // The first 100 members go through PUT; the rest are dropped straight
    // into the served directory (as a user copying files there would), which
    // keeps this test fast against a debug build.
    for i in 0..100 {
        s.create(&format!("/many/file-{i:05}.txt"), "x");
    }
    for i in 100..N {
        std::fs::write(s.root().join("many").join(format!("file-{i:05}.txt")), "x").unwrap();
    }
    let r = s.propfind(
        "/many/",
        "1",
        Some(&propfind_prop(&[
            (DAV, "getcontentlength"),
            (DAV, "resourcetype"),
        ])),
    );
    r.expect(&[207], "PROPFIND Depth 1 on 2,500 members");
    let ms = r.multistatus();
    assert_eq!(ms.len(), N + 1, "expected {} responses", N + 1);
    let mut names: Vec<String> = ms.iter().map(|m| m.path()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), N + 1, "duplicate hrefs in the listing");
    for i in [0, 1, 999, 1000, 1001, 2048, N - 1] {
        assert!(
            find_response(&ms, &format!("/many/file-{i:05}.txt")).is_some(),
            "file-{i:05}.txt missing"
        );
    }
}
