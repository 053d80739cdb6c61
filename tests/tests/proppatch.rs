//! PROPPATCH (RFC 4918 §9.2) and dead properties.

use edgedav_tests::*;

const Z: &str = "urn:example:z";
const MS: &str = "urn:schemas-microsoft-com:";

fn set_author_and_meta() -> &'static str {
    r#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:example:z">
  <D:set>
    <D:prop>
      <Z:author>Alice &amp; Bob</Z:author>
      <Z:meta><Z:tag level="1">x</Z:tag><Y:other xmlns:Y="urn:example:y">y</Y:other></Z:meta>
    </D:prop>
  </D:set>
</D:propertyupdate>"#
}

fn all_statuses(r: &Resp) -> Vec<(String, u16)> {
    let ms = r.multistatus();
    assert_eq!(
        ms.len(),
        1,
        "PROPPATCH answers for one resource:\n{}",
        r.text()
    );
    ms[0]
        .propstats
        .iter()
        .flat_map(|ps| {
            ps.props
                .iter()
                .map(move |p| (format!("{}{}", p.ns, p.name), ps.status))
        })
        .collect()
}

#[test]
fn proppatch_set_then_propfind_shows_values() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    let r = s.proppatch("/f.txt", set_author_and_meta());
    r.expect(&[207], "PROPPATCH set");
    let st = all_statuses(&r);
    assert!(st.contains(&(format!("{Z}author"), 200)), "{st:?}");
    assert!(st.contains(&(format!("{Z}meta"), 200)), "{st:?}");

    let p = s.props("/f.txt", &[(Z, "author"), (Z, "meta")]);
    assert_eq!(p.prop_ok(Z, "author").all_text(), "Alice & Bob");
    let meta = p.prop_ok(Z, "meta");
    let tag = meta
        .child(Z, "tag")
        .unwrap_or_else(|| panic!("Z:tag lost: {meta:?}"));
    assert_eq!(tag.all_text(), "x");
    assert_eq!(tag.attr("level"), Some("1"), "attribute lost: {tag:?}");
    let other = meta
        .child("urn:example:y", "other")
        .unwrap_or_else(|| panic!("child in another namespace lost: {meta:?}"));
    assert_eq!(other.all_text(), "y");

    // allprop includes dead properties.
    let r = s.propfind("/f.txt", "0", Some(ALLPROP));
    let ms = r.multistatus();
    assert_eq!(
        ms[0].prop_ok(Z, "author").all_text(),
        "Alice & Bob",
        "allprop lacks the dead property"
    );
    // propname lists them too.
    let r = s.propfind("/f.txt", "0", Some(PROPNAME));
    assert!(
        r.multistatus()[0].prop(Z, "author").is_some(),
        "propname lacks the dead property:\n{}",
        r.text()
    );
}

#[test]
fn proppatch_remove() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    s.proppatch("/f.txt", set_author_and_meta())
        .expect(&[207], "set");
    let r = s.proppatch(
        "/f.txt",
        r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:example:z"><D:remove><D:prop><Z:author/></D:prop></D:remove></D:propertyupdate>"#,
    );
    r.expect(&[207], "PROPPATCH remove");
    assert!(
        all_statuses(&r).contains(&(format!("{Z}author"), 200)),
        "{}",
        r.text()
    );
    let p = s.props("/f.txt", &[(Z, "author"), (Z, "meta")]);
    assert_eq!(
        p.prop(Z, "author").map(|x| x.0),
        Some(404),
        "removed property still there"
    );
    p.prop_ok(Z, "meta");
}

#[test]
fn proppatch_remove_missing_property_is_ok() {
    // RFC 4918 §14.23: removing a property that does not exist is not an error.
    let s = Handler::start();
    s.create("/f.txt", "x");
    let r = s.proppatch(
        "/f.txt",
        r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:example:z"><D:remove><D:prop><Z:never/></D:prop></D:remove></D:propertyupdate>"#,
    );
    r.expect(&[207], "PROPPATCH remove missing");
    assert_eq!(all_statuses(&r), vec![(format!("{Z}never"), 200)]);
}

#[test]
fn proppatch_set_and_remove_in_order() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    // Instructions are processed in document order: set, remove, set again.
    let r = s.proppatch(
        "/f.txt",
        r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:example:z">
<D:set><D:prop><Z:a>1</Z:a><Z:b>1</Z:b></D:prop></D:set>
<D:remove><D:prop><Z:a/></D:prop></D:remove>
<D:set><D:prop><Z:b>2</Z:b></D:prop></D:set>
</D:propertyupdate>"#,
    );
    r.expect(&[207], "PROPPATCH mixed");
    let p = s.props("/f.txt", &[(Z, "a"), (Z, "b")]);
    assert_eq!(p.prop(Z, "a").map(|x| x.0), Some(404));
    assert_eq!(p.prop_ok(Z, "b").all_text(), "2");
}

#[test]
fn proppatch_is_atomic() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    let r = s.proppatch(
        "/f.txt",
        r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:example:z">
<D:set><D:prop><Z:first>1</Z:first></D:prop></D:set>
<D:set><D:prop><D:getetag>"forged"</D:getetag></D:prop></D:set>
<D:set><D:prop><Z:second>2</Z:second></D:prop></D:set>
</D:propertyupdate>"#,
    );
    r.expect(&[207], "PROPPATCH with a protected property");
    let st = all_statuses(&r);
    let of = |k: &str| st.iter().find(|(n, _)| n == k).map(|(_, s)| *s);
    // RFC 4918 §9.2.1: 403 for a protected property (409 also seen), 424 for the others.
    assert!(
        matches!(of("DAV:getetag"), Some(403) | Some(409)),
        "getetag status: {st:?}"
    );
    assert_eq!(of(&format!("{Z}first")), Some(424), "{st:?}");
    assert_eq!(of(&format!("{Z}second")), Some(424), "{st:?}");
    let p = s.props("/f.txt", &[(Z, "first"), (Z, "second")]);
    assert_eq!(
        p.prop(Z, "first").map(|x| x.0),
        Some(404),
        "a failed PROPPATCH applied Z:first"
    );
    assert_eq!(
        p.prop(Z, "second").map(|x| x.0),
        Some(404),
        "a failed PROPPATCH applied Z:second"
    );
    assert_ne!(s.head("/f.txt").etag(), "\"forged\"");
}

#[test]
fn proppatch_protected_live_properties() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    for prop in [
        "getcontentlength",
        "resourcetype",
        "lockdiscovery",
        "supportedlock",
    ] {
        let body = format!(
            r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:{prop}>1</D:{prop}></D:prop></D:set></D:propertyupdate>"#
        );
        let r = s.proppatch("/f.txt", &body);
        r.expect(&[207], "PROPPATCH protected");
        let st = all_statuses(&r);
        assert!(
            matches!(st.as_slice(), [(_, 403)] | [(_, 409)]),
            "{prop}: {st:?}"
        );
    }
}

#[test]
fn proppatch_windows_properties() {
    let s = Handler::start();
    s.create("/doc.txt", "x");
    // What the Windows WebDAV redirector sends after an upload.
    let r = s.proppatch(
        "/doc.txt",
        r#"<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32CreationTime>Mon, 20 Nov 2023 10:00:00 GMT</Z:Win32CreationTime><Z:Win32LastAccessTime>Mon, 20 Nov 2023 10:00:01 GMT</Z:Win32LastAccessTime><Z:Win32LastModifiedTime>Mon, 20 Nov 2023 10:00:02 GMT</Z:Win32LastModifiedTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>"#,
    );
    r.expect(&[207], "PROPPATCH Win32 properties");
    let st = all_statuses(&r);
    assert_eq!(st.len(), 4, "{st:?}");
    assert!(
        st.iter().all(|(_, code)| *code == 200),
        "Win32 properties refused: {st:?}"
    );
    let p = s.props("/doc.txt", &[(MS, "Win32FileAttributes")]);
    assert_eq!(p.prop_ok(MS, "Win32FileAttributes").all_text(), "00000020");
}

#[test]
fn proppatch_on_a_collection() {
    let s = Handler::start();
    s.create_dir("/c/");
    s.proppatch("/c/", set_author_and_meta())
        .expect(&[207], "PROPPATCH collection");
    assert_eq!(
        s.props("/c/", &[(Z, "author")])
            .prop_ok(Z, "author")
            .all_text(),
        "Alice & Bob"
    );
}

#[test]
fn dead_properties_follow_copy_and_move() {
    let s = Handler::start();
    s.create("/a.txt", "x");
    s.proppatch("/a.txt", set_author_and_meta())
        .expect(&[207], "set");
    s.copy_move("COPY", "/a.txt", "/b.txt", &[])
        .expect(&[201], "COPY");
    assert_eq!(
        s.props("/b.txt", &[(Z, "author")])
            .prop_ok(Z, "author")
            .all_text(),
        "Alice & Bob"
    );
    s.copy_move("MOVE", "/b.txt", "/c.txt", &[])
        .expect(&[201], "MOVE");
    let p = s.props("/c.txt", &[(Z, "author"), (Z, "meta")]);
    assert_eq!(p.prop_ok(Z, "author").all_text(), "Alice & Bob");
    assert!(p.prop_ok(Z, "meta").child(Z, "tag").is_some());
    // The source of the COPY keeps its own.
    s.props("/a.txt", &[(Z, "author")]).prop_ok(Z, "author");
}

#[test]
fn dead_properties_follow_collection_copy_and_move() {
    let s = Handler::start();
    s.create_dir("/c/");
    s.create("/c/m.txt", "x");
    s.proppatch("/c/", set_author_and_meta())
        .expect(&[207], "set on collection");
    s.proppatch("/c/m.txt", set_author_and_meta())
        .expect(&[207], "set on member");
    s.copy_move("COPY", "/c/", "/d/", &[])
        .expect(&[201], "COPY collection");
    s.props("/d/", &[(Z, "author")]).prop_ok(Z, "author");
    s.props("/d/m.txt", &[(Z, "author")]).prop_ok(Z, "author");
    s.copy_move("MOVE", "/d/", "/e/", &[])
        .expect(&[201], "MOVE collection");
    s.props("/e/", &[(Z, "author")]).prop_ok(Z, "author");
    s.props("/e/m.txt", &[(Z, "author")]).prop_ok(Z, "author");
}

#[test]
fn dead_properties_do_not_survive_delete() {
    let s = Handler::start();
    s.create("/a.txt", "x");
    s.proppatch("/a.txt", set_author_and_meta())
        .expect(&[207], "set");
    s.delete("/a.txt").expect(&[204, 200], "DELETE");
    s.create("/a.txt", "new");
    let p = s.props("/a.txt", &[(Z, "author")]);
    assert_eq!(
        p.prop(Z, "author").map(|x| x.0),
        Some(404),
        "stale dead property on a new resource"
    );
}

#[test]
fn proppatch_missing_resource_is_404() {
    let s = Handler::start();
    s.proppatch("/nope", set_author_and_meta())
        .expect(&[404], "PROPPATCH missing");
}

#[test]
fn proppatch_malformed_is_400() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    s.proppatch("/f.txt", "<D:propertyupdate xmlns:D=\"DAV:\"><D:set>")
        .expect(&[400], "malformed PROPPATCH");
    s.proppatch(
        "/f.txt",
        r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#,
    )
    .expect(&[400], "PROPPATCH with a non-propertyupdate body");
}

#[test]
fn proppatch_locked_resource_needs_the_token() {
    let s = Handler::start();
    s.create("/f.txt", "x");
    let token = s.lock_ok("/f.txt", "exclusive", Some("0"));
    s.proppatch("/f.txt", set_author_and_meta())
        .expect(&[423], "PROPPATCH locked without token");
    s.req("PROPPATCH", "/f.txt")
        .header("If", format!("(<{token}>)"))
        .header("Content-Type", "application/xml")
        .body(set_author_and_meta())
        .exec()
        .expect(&[207], "PROPPATCH locked with token");
    s.props("/f.txt", &[(Z, "author")]).prop_ok(Z, "author");
}
