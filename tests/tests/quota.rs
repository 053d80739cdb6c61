//! Quotas (bytes and files) and the maximum upload size: refused before an
//! upload starts when its size is announced, and while it streams when it is
//! not, with nothing left behind; usage reported in the quota properties and
//! kept across restarts (scan on start).

use std::io::Cursor;

use edgedav_tests::*;

const QUOTA_PROPS: &[(&str, &str)] = &[(DAV, "quota-used-bytes"), (DAV, "quota-available-bytes")];

fn start() -> Server {
    let hash = hash_password("pw");
    Server::start_config(&format!(
        r#"
[[bindings]]
listen = "127.0.0.1:0"

[[users]]
name = "q"
password_hash = "{hash}"
home = {{ backend = "local", path = "{{dir}}/home" }}
quota_bytes = 1000
quota_files = 4
max_upload_size = 600
"#
    ))
}

fn put(s: &Server, path: &str, len: usize, byte: u8) -> Resp {
    s.req_as("q", "pw", "PUT", path)
        .body(vec![byte; len])
        .exec()
}

/// A PUT whose length is not announced (chunked transfer coding).
fn put_chunked(s: &Server, path: &str, len: usize, expected: Option<u64>) -> Resp {
    let mut rb = s
        .req_as("q", "pw", "PUT", path)
        .body(Body::new(Cursor::new(vec![b'c'; len])));
    if let Some(expected) = expected {
        rb = rb.header("X-Expected-Entity-Length", expected.to_string());
    }
    rb.exec()
}

fn quota(s: &Server) -> (u64, u64) {
    let r = s
        .req_as("q", "pw", "PROPFIND", "/")
        .header("Depth", "0")
        .body(propfind_prop(QUOTA_PROPS))
        .exec();
    r.expect(&[207], "PROPFIND quota");
    let ms = r.multistatus();
    let used = ms[0]
        .prop_ok(DAV, "quota-used-bytes")
        .all_text()
        .parse()
        .unwrap();
    let available = ms[0]
        .prop_ok(DAV, "quota-available-bytes")
        .all_text()
        .parse()
        .unwrap();
    (used, available)
}

/// Files in the home other than the internal directory, including any
/// upload left half-written.
fn home_files(s: &Server) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(s.dir().join("home"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".edgedav")
        .collect();
    names.sort();
    names
}

#[test]
fn quota_and_max_size_refusals_leave_nothing_behind() {
    let mut s = start();
    assert_eq!(quota(&s), (0, 1000));

    put(&s, "/a", 500, b'a').expect(&[201], "within quota");
    assert_eq!(quota(&s), (500, 500));

    // Announced too large for the upload limit: 413 before any byte is stored.
    let r = put(&s, "/big", 700, b'b');
    assert_eq!(r.status, 413, "{}", r.text());
    // Announced larger than what is left of the quota: 507.
    let r = put(&s, "/b", 600, b'b');
    assert_eq!(r.status, 507, "{}", r.text());
    assert_eq!(home_files(&s), ["a"]);

    put(&s, "/b", 400, b'b').expect(&[201], "fits exactly");
    assert_eq!(quota(&s), (900, 100));

    // Not announced: refused while streaming, nothing committed.
    let r = put_chunked(&s, "/c", 200, None);
    assert_eq!(r.status, 507, "{}", r.text());
    let r = put_chunked(&s, "/c", 650, None);
    assert!(r.status == 413 || r.status == 507, "{}", r.status);
    // Announced with X-Expected-Entity-Length (chunked uploads, e.g. macOS).
    let r = put_chunked(&s, "/c", 200, Some(200));
    assert_eq!(r.status, 507, "{}", r.text());
    assert_eq!(home_files(&s), ["a", "b"], "no partial or temporary files");

    // Replacing a file counts only the growth.
    put(&s, "/a", 550, b'A').expect(&[204], "replace with +50 bytes");
    assert_eq!(quota(&s), (950, 50));
    // A failed replacement keeps the old content (+60 bytes, 50 left).
    let r = put(&s, "/b", 460, b'X');
    assert_eq!(r.status, 507);
    let content = s.req_as("q", "pw", "GET", "/b").exec().body;
    assert_eq!(content, vec![b'b'; 400]);

    // Files quota: two more files fit (4 in all), a third does not.
    put(&s, "/d", 10, b'd').expect(&[201], "3rd file");
    put(&s, "/e", 10, b'e').expect(&[201], "4th file");
    let r = put(&s, "/f", 1, b'f');
    assert_eq!(r.status, 507, "5th file: {}", r.text());
    let r = s
        .req_as("q", "pw", "COPY", "/d")
        .header("Destination", s.url("/g"))
        .exec();
    assert_eq!(r.status, 507, "COPY past the files quota: {}", r.text());
    assert_eq!(quota(&s), (970, 30));

    // Usage survives a restart (the home is scanned on start).
    s.restart();
    assert_eq!(quota(&s), (970, 30));
    assert_eq!(put(&s, "/f", 1, b'f').status, 507);

    // Deleting frees space and files.
    s.req_as("q", "pw", "DELETE", "/a")
        .exec()
        .expect(&[204], "DELETE");
    assert_eq!(quota(&s), (420, 580));
    put(&s, "/f", 500, b'f').expect(&[201], "fits again");
    s.req_as("q", "pw", "MKCOL", "/dir/")
        .exec()
        .expect(&[201], "MKCOL");
    s.req_as("q", "pw", "MOVE", "/f")
        .header("Destination", s.url("/dir/f"))
        .exec()
        .expect(&[201], "MOVE");
    assert_eq!(quota(&s), (920, 80));
    s.req_as("q", "pw", "DELETE", "/dir/")
        .exec()
        .expect(&[204], "DELETE a collection");
    assert_eq!(quota(&s), (420, 580));
    assert_eq!(home_files(&s), ["b", "d", "e"]);
}
