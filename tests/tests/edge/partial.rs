//! Partial updates (PUT with `Content-Range` or the SabreDAV patch format), on the native host and the compositions.

use super::*;

/// Partial updates on any deployment: PUT with Content-Range and PATCH
/// with X-Update-Range, their error cases, and a file uploaded in pieces
/// that cross 256 KiB boundaries.
pub(super) fn partial_updates(s: &impl Dav) {
    let req = |method: &str, path: &str| s.req(method, path);
    let get = |path: &str| {
        let r = req("GET", path).exec();
        r.expect(&[200], "GET");
        r.body
    };
    let dav = req("OPTIONS", "/").exec().must_header("DAV");
    assert!(dav.contains("sabredav-partialupdate"), "DAV: {dav}");

    req("PUT", "/p.txt")
        .body("hello world")
        .exec()
        .expect(&[201], "PUT");
    let etag = req("HEAD", "/p.txt").exec().etag();
    req("PUT", "/p.txt")
        .header("Content-Range", "bytes 6-11/*")
        .body("there!")
        .exec()
        .expect(&[200, 204], "PUT Content-Range");
    assert_eq!(get("/p.txt"), b"hello there!");
    assert_ne!(
        req("HEAD", "/p.txt").exec().etag(),
        etag,
        "a partial update must change the ETag"
    );

    let patch = |range: &str, body: &str| {
        req("PATCH", "/p.txt")
            .header("Content-Type", PARTIAL)
            .header("X-Update-Range", range)
            .body(body.to_owned())
            .exec()
    };
    patch("append", " bye").expect(&[204], "PATCH append");
    assert_eq!(get("/p.txt"), b"hello there! bye");
    patch("bytes=0-4", "HELLO").expect(&[204], "PATCH bytes=0-4");
    assert_eq!(get("/p.txt"), b"HELLO there! bye");
    patch("bytes=-3", "BYE").expect(&[204], "PATCH bytes=-3");
    assert_eq!(get("/p.txt"), b"HELLO there! BYE");
    patch("bytes=13-", "bye!!").expect(&[204], "PATCH bytes=13- (extends the file)");
    assert_eq!(get("/p.txt"), b"HELLO there! bye!!");

    // Refusals change nothing.
    patch("bytes=100-", "x").expect(&[416], "PATCH past the end");
    req("PUT", "/p.txt")
        .header("Content-Range", "bytes 2-5/*")
        .body("abc")
        .exec()
        .expect(&[400], "PUT Content-Range with a short body");
    req("PATCH", "/p.txt")
        .header("Content-Type", "text/plain")
        .header("X-Update-Range", "append")
        .body("x")
        .exec()
        .expect(&[415], "PATCH without the partial-update type");
    req("PATCH", "/missing.txt")
        .header("Content-Type", PARTIAL)
        .header("X-Update-Range", "append")
        .body("x")
        .exec()
        .expect(&[404], "PATCH a missing file");
    req("PUT", "/new.txt")
        .header("Content-Range", "bytes 5-6/*")
        .body("xy")
        .exec()
        .expect(&[416], "PUT Content-Range past the end of a new file");
    assert_eq!(get("/p.txt"), b"HELLO there! bye!!");

    // A big file uploaded in pieces, as a client behind a body cap does.
    let data: Vec<u8> = (0..1_100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let piece = 300_000;
    req("PUT", "/big.bin")
        .body(data[..piece].to_vec())
        .exec()
        .expect(&[201], "first piece");
    let mut at = piece;
    while at < data.len() {
        let end = (at + piece).min(data.len());
        if at / piece % 2 == 1 {
            req("PUT", "/big.bin")
                .header(
                    "Content-Range",
                    format!("bytes {at}-{}/{}", end - 1, data.len()),
                )
                .body(data[at..end].to_vec())
                .exec()
                .expect(&[200, 204], "PUT piece");
        } else {
            req("PATCH", "/big.bin")
                .header("Content-Type", PARTIAL)
                .header("X-Update-Range", "append")
                .body(data[at..end].to_vec())
                .exec()
                .expect(&[204], "PATCH piece");
        }
        at = end;
    }
    assert!(
        get("/big.bin") == data,
        "the pieced upload differs from the original"
    );
    // Overwrite a span across a 256 KiB boundary in the middle.
    let mut expected = data.clone();
    let patch_bytes: Vec<u8> = vec![0xAB; 70_000];
    expected[240_000..310_000].copy_from_slice(&patch_bytes);
    req("PATCH", "/big.bin")
        .header("Content-Type", PARTIAL)
        .header("X-Update-Range", "bytes=240000-309999")
        .body(patch_bytes)
        .exec()
        .expect(&[204], "PATCH across a boundary");
    assert!(
        get("/big.bin") == expected,
        "the patched span landed wrongly"
    );
}

#[test]
fn native_host_partial_updates() {
    partial_updates(&Server::start());
}

#[test]
fn fs_composition_partial_updates() {
    let Some(env) = edge_env("fs_composition_partial_updates") else {
        return;
    };
    let w = Server::deploy(&env.fs());
    partial_updates(&w);
    let leftovers: Vec<_> = std::fs::read_dir(w.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".edgedav-upload-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staged pieces left behind: {leftovers:?}"
    );
}
