//! The filesystem composition under stock `wasmtime serve`: files, sidecars, locks, big files.

use super::*;
use crate::locks::{lock_race, locks_hold_across_instances_and_restarts};

#[test]
fn fs_files_collections_and_sidecar_properties_live_in_the_preopened_directory() {
    let Some(env) =
        edge_env("fs_files_collections_and_sidecar_properties_live_in_the_preopened_directory")
    else {
        return;
    };
    let w = Server::deploy(&env.fs());
    let root = w.root();

    w.req("MKCOL", "/docs").exec().expect(&[201], "MKCOL");
    assert!(root.join("docs").is_dir());
    w.req("PUT", "/docs/a.txt")
        .body("alpha")
        .exec()
        .expect(&[201], "PUT");
    assert_eq!(std::fs::read(root.join("docs/a.txt")).unwrap(), b"alpha");
    let got = w.req("GET", "/docs/a.txt").exec();
    got.expect(&[200], "GET");
    assert_eq!(got.body, b"alpha");
    // No upload leftovers beside the file.
    let names: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["a.txt"]);

    let patch = r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:edge"><D:set><D:prop><Z:color>blue</Z:color></D:prop></D:set></D:propertyupdate>"#;
    w.req("PROPPATCH", "/docs/a.txt")
        .body(patch)
        .exec()
        .expect(&[207], "PROPPATCH");
    let props = || {
        std::fs::read_dir(root.join(".edgedav/props"))
            .unwrap()
            .count()
    };
    assert_eq!(props(), 1, "one sidecar file per resource with properties");
    let find = w
        .req("PROPFIND", "/docs/a.txt")
        .header("Depth", "0")
        .body(propfind_prop(&[("urn:edge", "color")]))
        .exec();
    find.expect(&[207], "PROPFIND");
    assert_eq!(
        find.multistatus()[0]
            .prop_ok("urn:edge", "color")
            .all_text(),
        "blue"
    );

    // COPY carries the property, MOVE moves it, DELETE removes it.
    w.req("COPY", "/docs")
        .header("Destination", format!("{}/copy", w.base))
        .exec()
        .expect(&[201], "COPY");
    assert_eq!(props(), 2);
    w.req("MOVE", "/copy")
        .header("Destination", format!("{}/moved", w.base))
        .exec()
        .expect(&[201], "MOVE");
    let find = w
        .req("PROPFIND", "/moved/a.txt")
        .header("Depth", "0")
        .body(propfind_prop(&[("urn:edge", "color")]))
        .exec();
    assert_eq!(
        find.multistatus()[0]
            .prop_ok("urn:edge", "color")
            .all_text(),
        "blue"
    );
    w.req("DELETE", "/moved").exec().expect(&[204], "DELETE");
    w.req("DELETE", "/docs").exec().expect(&[204], "DELETE");
    assert_eq!(props(), 0, "DELETE leaves orphaned properties");

    // The internal directory is out of bounds.
    for path in ["/.edgedav/locks.json", "/.edgedav", "/x/.edgedav-upload-1"] {
        let r = w.req("GET", path).exec();
        assert!(
            r.status == 403 || r.status == 404,
            "GET {path} answered {}",
            r.status
        );
    }
    w.req("PUT", "/.edgedav/evil")
        .body("x")
        .exec()
        .expect(&[403, 404, 409], "PUT into the internal directory");
}

#[test]
fn fs_sidecar_is_shared_with_the_native_host() {
    let Some(env) = edge_env("fs_sidecar_is_shared_with_the_native_host") else {
        return;
    };
    let mut w = Server::deploy(&env.fs());
    w.req("PUT", "/shared.txt")
        .body("data")
        .exec()
        .expect(&[201], "PUT");
    let patch = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:edge"><D:set><D:prop><Z:tag>from-wasmtime</Z:tag></D:prop></D:set></D:propertyupdate>"#;
    w.req("PROPPATCH", "/shared.txt")
        .body(patch)
        .exec()
        .expect(&[207], "PROPPATCH");
    // The native host on the same directory sees the property.
    w.redeploy(&Deployment::Native);
    let r = w.propfind(
        "/shared.txt",
        "0",
        Some(&propfind_prop(&[("urn:edge", "tag")])),
    );
    r.expect(&[207], "native PROPFIND");
    assert_eq!(
        r.multistatus()[0].prop_ok("urn:edge", "tag").all_text(),
        "from-wasmtime"
    );
}

#[test]
fn fs_locks_hold_across_instances_and_restarts() {
    let Some(env) = edge_env("fs_locks_hold_across_instances_and_restarts") else {
        return;
    };
    let mut w = Server::deploy(&env.fs());
    locks_hold_across_instances_and_restarts(&mut w);
    assert!(w.root().join(".edgedav/locks.json").is_file());
}

#[test]
fn fs_concurrent_exclusive_locks_are_granted_once() {
    let Some(env) = edge_env("fs_concurrent_exclusive_locks_are_granted_once") else {
        return;
    };
    let w = Server::deploy(&env.fs());
    lock_race(&w);
    // No mutex file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(w.root().join(".edgedav"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".mutex") || n.starts_with(".edgedav-upload-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn fs_big_files_round_trip() {
    let Some(env) = edge_env("fs_big_files_round_trip") else {
        return;
    };
    let w = Server::deploy(&env.fs());
    let data: Vec<u8> = (0..6 * 1024 * 1024 + 123)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    w.req("PUT", "/big.bin")
        .body(data.clone())
        .exec()
        .expect(&[201], "PUT 6 MiB");
    let got = w.req("GET", "/big.bin").exec();
    got.expect(&[200], "GET");
    assert!(got.body == data, "6 MiB differ after a round trip");
    let r = w
        .req("GET", "/big.bin")
        .header("Range", "bytes=4194300-4194309")
        .exec();
    r.expect(&[206], "ranged GET");
    assert_eq!(r.body, &data[4_194_300..4_194_310]);
}

#[test]
fn fs_an_upload_that_breaks_off_is_400_and_leaves_the_old_content() {
    let Some(env) = edge_env("fs_an_upload_that_breaks_off_is_400_and_leaves_the_old_content")
    else {
        return;
    };
    let w = Server::deploy(&env.fs());
    w.req("PUT", "/doc.bin")
        .body("old content")
        .exec()
        .expect(&[201], "first PUT");
    // 300 KB of a body announced as 1 MB, then the client stops sending.
    let answer = put_broken_off(w.port, "/doc.bin", 1_000_000, 300_000);
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "a body that breaks off: {answer:?}"
    );
    let got = w.req("GET", "/doc.bin").exec();
    got.expect(&[200], "GET");
    assert_eq!(got.body, b"old content");
    let names: Vec<String> = std::fs::read_dir(w.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != ".edgedav")
        .collect();
    assert_eq!(names, ["doc.bin"], "nothing staged is left beside it");
}

/// What the adapter answered is on the disk, as on the native host
/// (`tests/tests/crash.rs`): its commits and tree operations sync through
/// wasi's `descriptor.sync`, read back from a journal-less ext4 image.
#[test]
fn fs_answered_changes_are_on_the_disk() {
    let test = "fs_answered_changes_are_on_the_disk";
    let Some(env) = edge_env(test) else {
        return;
    };
    let Some(disk) = Ext4Image::mount(test) else {
        return;
    };
    let w = Server::deploy_in(&env.fs(), &disk.mount_point());
    let scratch = w.dir().file_name().unwrap().to_str().unwrap().to_owned();
    answered_changes_are_on_the_disk(&disk, &w, &format!("/{scratch}/root"), |method, path| {
        w.http(method, path)
    });
}
