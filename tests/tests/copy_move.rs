//! COPY and MOVE (RFC 4918 §9.8, §9.9).

use edgedav_tests::*;

fn tree(s: &impl Dav, root: &str) {
    s.create_dir(&format!("{root}/"));
    s.create_dir(&format!("{root}/sub/"));
    s.create(&format!("{root}/top.txt"), "top");
    s.create(&format!("{root}/sub/deep.txt"), "deep");
}

// ---------------------------------------------------------------- COPY

#[test]
fn copy_file_new_is_201_overwrite_is_204() {
    let s = Handler::start();
    s.create("/src.txt", "source");
    s.copy_move("COPY", "/src.txt", "/dst.txt", &[])
        .expect(&[201], "COPY to a new name");
    assert_eq!(s.get("/dst.txt").text(), "source");
    assert_eq!(
        s.get("/src.txt").expect(&[200], "source stays").text(),
        "source"
    );

    s.put("/src.txt", "changed")
        .expect(&[200, 204], "change source");
    s.copy_move("COPY", "/src.txt", "/dst.txt", &[])
        .expect(&[204], "COPY over an existing file");
    assert_eq!(s.get("/dst.txt").text(), "changed");
    s.copy_move("COPY", "/src.txt", "/dst.txt", &[("Overwrite", "T")])
        .expect(&[204], "COPY Overwrite: T");
}

#[test]
fn copy_overwrite_f_on_existing_is_412() {
    let s = Handler::start();
    s.create("/src.txt", "source");
    s.create("/dst.txt", "precious");
    s.copy_move("COPY", "/src.txt", "/dst.txt", &[("Overwrite", "F")])
        .expect(&[412], "COPY Overwrite: F onto an existing file");
    assert_eq!(s.get("/dst.txt").text(), "precious");
    s.copy_move("COPY", "/src.txt", "/new.txt", &[("Overwrite", "F")])
        .expect(&[201], "COPY Overwrite: F to a new name");
}

#[test]
fn copy_without_destination_is_400() {
    let s = Handler::start();
    s.create("/src.txt", "x");
    s.req("COPY", "/src.txt")
        .exec()
        .expect(&[400], "COPY without Destination");
    s.req("MOVE", "/src.txt")
        .exec()
        .expect(&[400], "MOVE without Destination");
    s.get("/src.txt").expect(&[200], "source untouched");
}

#[test]
fn copy_to_another_server_is_502() {
    let s = Handler::start();
    s.create("/src.txt", "x");
    s.req("COPY", "/src.txt")
        .header("Destination", "http://other-server.invalid/dst.txt")
        .exec()
        .expect(&[502], "COPY to another host");
    s.req("MOVE", "/src.txt")
        .header("Destination", "http://other-server.invalid/dst.txt")
        .exec()
        .expect(&[502], "MOVE to another host");
    s.get("/src.txt").expect(&[200], "source untouched");
}

#[test]
fn copy_destination_as_path_only() {
    let s = Handler::start();
    s.create("/src.txt", "x");
    s.req("COPY", "/src.txt")
        .header("Destination", "/by-path.txt")
        .exec()
        .expect(&[201], "COPY with a path-only Destination");
    assert_eq!(s.get("/by-path.txt").text(), "x");
}

#[test]
fn copy_percent_encoded_names() {
    let s = Handler::start();
    // "my file é.txt" → "copy ✓ ü.txt"
    s.create("/my%20file%20%C3%A9.txt", "unicode");
    s.copy_move(
        "COPY",
        "/my%20file%20%C3%A9.txt",
        "/copy%20%E2%9C%93%20%C3%BC.txt",
        &[],
    )
    .expect(&[201], "COPY encoded names");
    assert_eq!(
        s.get("/copy%20%E2%9C%93%20%C3%BC.txt")
            .expect(&[200], "GET copy")
            .text(),
        "unicode"
    );
    let r = s.propfind("/", "1", None);
    r.expect(&[207], "PROPFIND /");
    let ms = r.multistatus();
    assert!(
        find_response(&ms, "/copy ✓ ü.txt").is_some(),
        "decoded name not listed:\n{}",
        r.text()
    );
    assert!(
        find_response(&ms, "/my file é.txt").is_some(),
        "decoded name not listed:\n{}",
        r.text()
    );
    // An encoded collection name as destination, path-only form.
    s.create_dir("/a%20dir/");
    s.req("COPY", "/my%20file%20%C3%A9.txt")
        .header("Destination", "/a%20dir/%C3%A9%20x.txt")
        .exec()
        .expect(&[201], "COPY into an encoded collection name");
    assert_eq!(s.get("/a%20dir/%C3%A9%20x.txt").text(), "unicode");
}

#[test]
fn copy_collection_depth_infinity_by_default() {
    let s = Handler::start();
    tree(&s, "/c");
    s.copy_move("COPY", "/c/", "/c2/", &[])
        .expect(&[201], "COPY collection");
    assert_eq!(
        s.get("/c2/top.txt").expect(&[200], "copied member").text(),
        "top"
    );
    assert_eq!(
        s.get("/c2/sub/deep.txt")
            .expect(&[200], "copied deep member")
            .text(),
        "deep"
    );
    s.get("/c/sub/deep.txt").expect(&[200], "source untouched");
    s.copy_move("COPY", "/c/", "/c3/", &[("Depth", "infinity")])
        .expect(&[201], "COPY Depth infinity");
    s.get("/c3/sub/deep.txt")
        .expect(&[200], "copied deep member");
}

#[test]
fn copy_collection_depth_0_copies_only_the_collection() {
    let s = Handler::start();
    tree(&s, "/c");
    s.copy_move("COPY", "/c/", "/empty/", &[("Depth", "0")])
        .expect(&[201], "COPY Depth 0");
    let r = s.propfind("/empty/", "1", None);
    r.expect(&[207], "PROPFIND copy");
    let ms = r.multistatus();
    assert_eq!(ms.len(), 1, "Depth 0 copy has members:\n{}", r.text());
    assert!(ms[0].is_collection());
    s.get("/empty/top.txt").expect(&[404], "member not copied");
}

#[test]
fn copy_file_over_a_collection_replaces_it() {
    let s = Handler::start();
    s.create("/f.txt", "file");
    tree(&s, "/c");
    s.copy_move("COPY", "/f.txt", "/c", &[])
        .expect(&[204], "COPY file over a collection");
    assert_eq!(s.get("/c").expect(&[200], "GET replaced").text(), "file");
    s.get("/c/top.txt").expect(&[404], "old members are gone");
}

#[test]
fn copy_collection_over_a_collection_replaces_it() {
    let s = Handler::start();
    tree(&s, "/a");
    s.create_dir("/b/");
    s.create("/b/old.txt", "old");
    s.copy_move("COPY", "/a/", "/b/", &[])
        .expect(&[204], "COPY collection over a collection");
    s.get("/b/top.txt").expect(&[200], "new member");
    // RFC 4918 §9.8.4: the destination is deleted before the copy.
    s.get("/b/old.txt")
        .expect(&[404], "old member of the overwritten collection");
}

#[test]
fn copy_onto_itself_is_403() {
    let s = Handler::start();
    s.create("/self.txt", "x");
    s.copy_move("COPY", "/self.txt", "/self.txt", &[])
        .expect(&[403], "COPY onto itself");
    s.copy_move("MOVE", "/self.txt", "/self.txt", &[])
        .expect(&[403], "MOVE onto itself");
    assert_eq!(s.get("/self.txt").expect(&[200], "still there").text(), "x");
}

#[test]
fn copy_collection_into_itself_is_refused() {
    let s = Handler::start();
    tree(&s, "/c");
    let r = s.copy_move("COPY", "/c/", "/c/sub/inner/", &[]);
    // Copying a collection below itself would never end: 403 (or 409/502
    // in some servers; RFC 4918 names 403 for source = destination).
    r.expect(&[403, 409], "COPY collection into itself");
    s.copy_move("MOVE", "/c/", "/c/sub/inner/", &[])
        .expect(&[403, 409], "MOVE collection into itself");
    s.get("/c/top.txt").expect(&[200], "source untouched");
}

#[test]
fn copy_missing_source_is_404() {
    let s = Handler::start();
    s.copy_move("COPY", "/ghost", "/x", &[])
        .expect(&[404], "COPY missing source");
    s.copy_move("MOVE", "/ghost", "/x", &[])
        .expect(&[404], "MOVE missing source");
}

#[test]
fn copy_with_missing_destination_parent_is_409() {
    let s = Handler::start();
    s.create("/src.txt", "x");
    s.copy_move("COPY", "/src.txt", "/no/such/dst.txt", &[])
        .expect(&[409], "COPY to a missing parent");
    s.copy_move("MOVE", "/src.txt", "/no/such/dst.txt", &[])
        .expect(&[409], "MOVE to a missing parent");
    s.get("/src.txt").expect(&[200], "source untouched");
}

#[test]
fn copy_to_a_locked_destination_needs_the_token() {
    let s = Handler::start();
    s.create("/src.txt", "new");
    s.create("/dst.txt", "old");
    let token = s.lock_ok("/dst.txt", "exclusive", Some("0"));
    s.copy_move("COPY", "/src.txt", "/dst.txt", &[])
        .expect(&[423], "COPY onto a locked file");
    assert_eq!(s.get("/dst.txt").text(), "old");
    let iff = format!("<{}> (<{token}>)", s.url("/dst.txt"));
    s.copy_move("COPY", "/src.txt", "/dst.txt", &[("If", iff.as_str())])
        .expect(&[204], "COPY onto a locked file with its token");
    assert_eq!(s.get("/dst.txt").text(), "new");
}

#[test]
fn copy_into_a_locked_collection_needs_the_token() {
    let s = Handler::start();
    s.create("/src.txt", "x");
    s.create_dir("/locked/");
    let token = s.lock_ok("/locked/", "exclusive", Some("infinity"));
    s.copy_move("COPY", "/src.txt", "/locked/new.txt", &[])
        .expect(&[423], "COPY into a locked collection");
    s.get("/locked/new.txt").expect(&[404], "not created");
    let iff = format!("<{}> (<{token}>)", s.url("/locked/"));
    s.copy_move(
        "COPY",
        "/src.txt",
        "/locked/new.txt",
        &[("If", iff.as_str())],
    )
    .expect(&[201], "COPY into a locked collection with the token");
}

#[test]
fn copy_does_not_copy_the_lock() {
    let s = Handler::start();
    s.create("/src.txt", "x");
    let _t = s.lock_ok("/src.txt", "exclusive", Some("0"));
    // COPY only reads the source: no token needed.
    s.copy_move("COPY", "/src.txt", "/dst.txt", &[])
        .expect(&[201], "COPY a locked source");
    // RFC 4918 §7.6: locks are not copied.
    s.put("/dst.txt", "y")
        .expect(&[200, 204], "PUT on the copy without a token");
}

// ---------------------------------------------------------------- MOVE

#[test]
fn move_file() {
    let s = Handler::start();
    s.create("/a.txt", "moving");
    s.copy_move("MOVE", "/a.txt", "/b.txt", &[])
        .expect(&[201], "MOVE to a new name");
    s.get("/a.txt").expect(&[404], "source gone after MOVE");
    assert_eq!(s.get("/b.txt").text(), "moving");

    s.create("/c.txt", "other");
    s.copy_move("MOVE", "/b.txt", "/c.txt", &[])
        .expect(&[204], "MOVE over an existing file");
    assert_eq!(s.get("/c.txt").text(), "moving");
    s.get("/b.txt").expect(&[404], "source gone");
}

#[test]
fn move_overwrite_f_on_existing_is_412() {
    let s = Handler::start();
    s.create("/a.txt", "a");
    s.create("/b.txt", "b");
    s.copy_move("MOVE", "/a.txt", "/b.txt", &[("Overwrite", "F")])
        .expect(&[412], "MOVE Overwrite: F onto an existing file");
    assert_eq!(s.get("/a.txt").text(), "a");
    assert_eq!(s.get("/b.txt").text(), "b");
}

#[test]
fn move_collection() {
    let s = Handler::start();
    tree(&s, "/c");
    s.copy_move("MOVE", "/c/", "/moved/", &[])
        .expect(&[201], "MOVE collection");
    s.get("/c/").expect(&[404], "source collection gone");
    s.get("/c/sub/deep.txt")
        .expect(&[404], "source member gone");
    assert_eq!(
        s.get("/moved/sub/deep.txt")
            .expect(&[200], "moved member")
            .text(),
        "deep"
    );
    assert_eq!(s.get("/moved/top.txt").text(), "top");
}

#[test]
fn move_collection_over_existing_collection() {
    let s = Handler::start();
    tree(&s, "/a");
    s.create_dir("/b/");
    s.create("/b/old.txt", "old");
    s.copy_move("MOVE", "/a/", "/b/", &[])
        .expect(&[204], "MOVE over an existing collection");
    s.get("/b/sub/deep.txt").expect(&[200], "moved member");
    s.get("/b/old.txt")
        .expect(&[404], "overwritten collection's member");
    s.get("/a/").expect(&[404], "source gone");
}

#[test]
fn move_with_percent_encoded_names() {
    let s = Handler::start();
    s.create("/with%20space.txt", "sp");
    s.req("MOVE", "/with%20space.txt")
        .header("Destination", s.url("/%E6%97%A5%E6%9C%AC%20%23hash.txt"))
        .exec()
        .expect(&[201], "MOVE to a unicode name with # and space");
    assert_eq!(
        s.get("/%E6%97%A5%E6%9C%AC%20%23hash.txt")
            .expect(&[200], "GET")
            .text(),
        "sp"
    );
    s.get("/with%20space.txt").expect(&[404], "source gone");
}

#[test]
fn move_locked_source_needs_the_token() {
    let s = Handler::start();
    s.create("/a.txt", "a");
    let token = s.lock_ok("/a.txt", "exclusive", Some("0"));
    s.copy_move("MOVE", "/a.txt", "/b.txt", &[])
        .expect(&[423], "MOVE a locked file without token");
    s.get("/a.txt").expect(&[200], "not moved");
    let iff = format!("(<{token}>)");
    s.copy_move("MOVE", "/a.txt", "/b.txt", &[("If", iff.as_str())])
        .expect(&[201], "MOVE a locked file with its token");
    s.get("/b.txt").expect(&[200], "moved");
    // RFC 4918 §7.7: a lock does not move with the resource.
    s.put("/b.txt", "free")
        .expect(&[200, 204], "PUT on the moved file without a token");
}

#[test]
fn move_to_locked_destination_is_423() {
    let s = Handler::start();
    s.create("/a.txt", "a");
    s.create("/b.txt", "b");
    let _t = s.lock_ok("/b.txt", "exclusive", Some("0"));
    s.copy_move("MOVE", "/a.txt", "/b.txt", &[])
        .expect(&[423], "MOVE onto a locked file");
    assert_eq!(s.get("/b.txt").text(), "b");
    s.get("/a.txt").expect(&[200], "source untouched");
}
