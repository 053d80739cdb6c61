//! WebDAV round trips and big listings, run against each composition.

use super::*;

pub(super) fn propfind_one(w: &Server, path: &str, ns: &str, name: &str) -> Resp {
    w.req("PROPFIND", path)
        .header("Depth", "0")
        .body(propfind_prop(&[(ns, name)]))
        .exec()
}

/// WebDAV round trips any storage binding must get right.
pub(super) fn dav_round_trips(w: &Server) {
    w.req("MKCOL", "/docs").exec().expect(&[201], "MKCOL");
    w.req("MKCOL", "/docs").exec().expect(&[405], "MKCOL again");
    w.req("MKCOL", "/no/such")
        .exec()
        .expect(&[409], "MKCOL with a missing parent");
    w.req("PUT", "/docs/a.txt")
        .body("alpha")
        .exec()
        .expect(&[201], "PUT");
    w.req("PUT", "/docs/a.txt/x")
        .body("x")
        .exec()
        .expect(&[409], "PUT below a file");
    w.req("MKCOL", "/docs/sub")
        .exec()
        .expect(&[201], "MKCOL sub");
    w.req("PUT", "/docs/sub/b.txt")
        .body("beta")
        .exec()
        .expect(&[201], "PUT sub/b.txt");
    assert_eq!(w.req("GET", "/docs/a.txt").exec().body, b"alpha");
    let patch = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:edge"><D:set><D:prop><Z:color>blue</Z:color></D:prop></D:set></D:propertyupdate>"#;
    w.req("PROPPATCH", "/docs/sub/b.txt")
        .body(patch)
        .exec()
        .expect(&[207], "PROPPATCH");

    let listing = w.req("PROPFIND", "/docs").header("Depth", "1").exec();
    listing.expect(&[207], "PROPFIND Depth 1");
    let mut paths: Vec<String> = listing
        .multistatus()
        .iter()
        .map(|r| r.path().trim_end_matches('/').to_owned())
        .collect();
    paths.sort();
    assert_eq!(paths, ["/docs", "/docs/a.txt", "/docs/sub"]);

    w.req("COPY", "/docs")
        .header("Destination", format!("{}/copy", w.base))
        .exec()
        .expect(&[201], "COPY");
    assert_eq!(w.req("GET", "/copy/sub/b.txt").exec().body, b"beta");
    let r = propfind_one(w, "/copy/sub/b.txt", "urn:edge", "color");
    assert_eq!(
        r.multistatus()[0].prop_ok("urn:edge", "color").all_text(),
        "blue",
        "COPY carries dead properties"
    );
    // The copy is independent of the original.
    w.req("PUT", "/copy/a.txt")
        .body("changed")
        .exec()
        .expect(&[204], "PUT over the copy");
    assert_eq!(w.req("GET", "/docs/a.txt").exec().body, b"alpha");

    w.req("MOVE", "/copy")
        .header("Destination", format!("{}/docs", w.base))
        .header("Overwrite", "F")
        .exec()
        .expect(&[412], "MOVE onto an existing collection without overwrite");
    w.req("MOVE", "/copy")
        .header("Destination", format!("{}/moved", w.base))
        .exec()
        .expect(&[201], "MOVE");
    w.req("GET", "/copy/a.txt")
        .exec()
        .expect(&[404], "GET the moved source");
    assert_eq!(w.req("GET", "/moved/a.txt").exec().body, b"changed");
    let r = propfind_one(w, "/moved/sub/b.txt", "urn:edge", "color");
    assert_eq!(
        r.multistatus()[0].prop_ok("urn:edge", "color").all_text(),
        "blue",
        "MOVE carries dead properties"
    );
    // MOVE with overwrite replaces the destination, properties included.
    w.req("MOVE", "/moved/a.txt")
        .header("Destination", format!("{}/docs/sub/b.txt", w.base))
        .exec()
        .expect(&[204], "MOVE over an existing file");
    assert_eq!(w.req("GET", "/docs/sub/b.txt").exec().body, b"changed");
    let r = propfind_one(w, "/docs/sub/b.txt", "urn:edge", "color");
    assert_ne!(
        r.multistatus()[0].prop("urn:edge", "color").map(|p| p.0),
        Some(200),
        "the replaced file's property survived"
    );

    w.req("DELETE", "/moved")
        .exec()
        .expect(&[204], "DELETE a collection");
    w.req("GET", "/moved/sub/b.txt")
        .exec()
        .expect(&[404], "GET below a deleted collection");
    // A new resource at a deleted path inherits nothing.
    w.req("PUT", "/moved")
        .body("new")
        .exec()
        .expect(&[201], "PUT where a collection was");
    let r = propfind_one(w, "/moved", "urn:edge", "color");
    assert_ne!(
        r.multistatus()[0].prop("urn:edge", "color").map(|p| p.0),
        Some(200)
    );
}

/// A collection with more members than one listing page (1000) is listed whole.
pub(super) fn big_listing(w: &Server) {
    const N: usize = 1005;
    w.req("MKCOL", "/many").exec().expect(&[201], "MKCOL");
    std::thread::scope(|scope| {
        for t in 0..4 {
            scope.spawn(move || {
                for i in (t..N).step_by(4) {
                    w.req("PUT", &format!("/many/f{i:04}"))
                        .body(format!("{i}"))
                        .exec()
                        .expect(&[201], "PUT");
                }
            });
        }
    });
    let r = w
        .req("PROPFIND", "/many")
        .header("Depth", "1")
        .body(propfind_prop(&[(DAV, "getcontentlength")]))
        .exec();
    r.expect(&[207], "PROPFIND Depth 1");
    let mut names: Vec<String> = r
        .multistatus()
        .iter()
        .map(|m| m.path())
        .filter(|p| p.trim_end_matches('/') != "/many")
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), N, "members listed once each");
    assert_eq!(names[0], "/many/f0000");
    assert_eq!(names[N - 1], format!("/many/f{:04}", N - 1));
}

#[test]
fn fs_composition_round_trips_and_big_listings() {
    let Some(env) = edge_env("fs_composition_round_trips_and_big_listings") else {
        return;
    };
    let w = Server::deploy(&env.fs());
    dav_round_trips(&w);
    big_listing(&w);
}
