//! PUT, GET and HEAD: creation and replacement, streaming, ranges, validators,
//! conditional requests and collection listings.

use edgedav_tests::*;

// ---------------------------------------------------------------- PUT

#[test]
fn put_creates_201_then_overwrite_is_200_or_204() {
    let s = Handler::start();
    s.put("/a.txt", "first").expect(&[201], "PUT new file");
    assert_eq!(s.get("/a.txt").expect(&[200], "GET").text(), "first");
    // RFC 4918 §9.7.1: an existing resource modified → 200 or 204.
    s.put("/a.txt", "second!")
        .expect(&[200, 204], "PUT over an existing file");
    let g = s.get("/a.txt");
    g.expect(&[200], "GET after overwrite");
    assert_eq!(g.text(), "second!");
    assert_eq!(g.must_header("Content-Length"), "7");
}

#[test]
fn put_empty_file() {
    let s = Handler::start();
    s.put("/empty", Vec::new()).expect(&[201], "PUT empty");
    let g = s.get("/empty");
    g.expect(&[200], "GET empty");
    assert!(g.body.is_empty());
    assert_eq!(g.must_header("Content-Length"), "0");
}

#[test]
fn put_with_missing_parent_is_409() {
    let s = Handler::start();
    s.put("/no/such/dir/f.txt", "x")
        .expect(&[409], "PUT below a missing collection");
    s.get("/no").expect(&[404], "nothing was created");
}

#[test]
fn put_below_a_file_is_409() {
    let s = Handler::start();
    s.create("/file", "x");
    s.put("/file/child.txt", "y")
        .expect(&[409], "PUT below a file");
}

#[test]
fn put_chunked_with_expected_entity_length() {
    let s = Server::start();
    let data = pseudo_random(300_000, 7);
    // A body from a reader has no known length: reqwest sends it chunked.
    let body = Body::new(std::io::Cursor::new(data.clone()));
    s.http("PUT", "/chunked.bin")
        .header("X-Expected-Entity-Length", data.len().to_string())
        .body(body)
        .exec()
        .expect(&[201], "chunked PUT");
    let g = s.get("/chunked.bin");
    g.expect(&[200], "GET chunked upload");
    assert_eq!(g.body.len(), data.len());
    assert!(g.body == data, "content differs after a chunked upload");
}

#[test]
fn put_5_mib_round_trips_exactly() {
    let s = Server::start();
    let data = pseudo_random(5 * 1024 * 1024, 42);
    s.put("/big.bin", data.clone()).expect(&[201], "PUT 5 MiB");
    let g = s.get("/big.bin");
    g.expect(&[200], "GET 5 MiB");
    assert_eq!(
        g.must_header("Content-Length"),
        (5 * 1024 * 1024).to_string()
    );
    assert!(
        g.body == data,
        "5 MiB body differs (got {} bytes)",
        g.body.len()
    );
    // And a chunked upload of the same size replaces it.
    let data2 = pseudo_random(5 * 1024 * 1024, 43);
    s.http("PUT", "/big.bin")
        .body(Body::new(std::io::Cursor::new(data2.clone())))
        .exec()
        .expect(&[200, 204], "chunked PUT over 5 MiB");
    assert!(
        s.get("/big.bin").body == data2,
        "chunked 5 MiB overwrite differs"
    );
}

#[test]
fn an_upload_that_breaks_off_is_400_and_leaves_the_old_content() {
    let s = Server::start();
    s.put("/doc.bin", "old content").expect(&[201], "first PUT");
    // A body announced as 1 MB of which 300 KB arrive before the client
    // stops sending: the server sees the body end early.
    let answer = put_broken_off(s.port, "/doc.bin", 1_000_000, 300_000);
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "a body that breaks off: {answer:?}"
    );
    assert_eq!(s.get("/doc.bin").text(), "old content");
    // The writer was dropped before the answer: nothing staged is left.
    let staging = s.root().join(".edgedav/uploads");
    let staged: Vec<_> = std::fs::read_dir(&staging)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(staged.is_empty(), "left staged: {staged:?}");
    let open = s.open_files_below(&s.root());
    assert!(open.is_empty(), "files still open: {open:?}");
}

#[test]
fn put_if_match_wrong_etag_is_412_and_right_etag_succeeds() {
    let s = Handler::start();
    s.create("/m.txt", "original");
    s.req("PUT", "/m.txt")
        .header("If-Match", "\"definitely-not-the-etag\"")
        .body("changed")
        .exec()
        .expect(&[412], "PUT with a wrong If-Match");
    assert_eq!(
        s.get("/m.txt").text(),
        "original",
        "a failed precondition changed the file"
    );
    let etag = s.head("/m.txt").etag();
    s.req("PUT", "/m.txt")
        .header("If-Match", etag.as_str())
        .body("changed")
        .exec()
        .expect(&[200, 204], "PUT with the right If-Match");
    assert_eq!(s.get("/m.txt").text(), "changed");
}

#[test]
fn put_if_match_on_missing_resource_is_412() {
    let s = Handler::start();
    s.req("PUT", "/nope.txt")
        .header("If-Match", "*")
        .body("x")
        .exec()
        .expect(&[412], "If-Match: * on a missing resource");
    s.get("/nope.txt").expect(&[404], "not created");
}

#[test]
fn put_if_none_match_star_on_existing_is_412() {
    let s = Handler::start();
    s.create("/n.txt", "keep");
    s.req("PUT", "/n.txt")
        .header("If-None-Match", "*")
        .body("overwrite")
        .exec()
        .expect(&[412], "If-None-Match: * on an existing file");
    assert_eq!(s.get("/n.txt").text(), "keep");
    s.req("PUT", "/fresh.txt")
        .header("If-None-Match", "*")
        .body("new")
        .exec()
        .expect(&[201], "If-None-Match: * on a new file");
}

#[test]
fn put_on_a_collection_is_405_or_409() {
    let s = Handler::start();
    s.create_dir("/dir/");
    s.put("/dir", "x")
        .expect(&[405, 409], "PUT on a collection");
    s.put("/dir/", "x")
        .expect(&[405, 409], "PUT on a collection (trailing slash)");
    let r = s.propfind("/dir/", "0", None);
    r.expect(&[207], "collection still there");
    assert!(
        r.multistatus()[0].is_collection(),
        "the collection was replaced"
    );
}

#[test]
fn put_changes_the_etag() {
    let s = Handler::start();
    s.create("/e.txt", "one");
    let e1 = s.head("/e.txt").etag();
    s.put("/e.txt", "two").expect(&[200, 204], "overwrite");
    let e2 = s.head("/e.txt").etag();
    assert_ne!(e1, e2, "ETag did not change with the content");
}

// ---------------------------------------------------------------- GET / HEAD

#[test]
fn get_and_head_headers() {
    let s = Handler::start();
    s.create("/h.txt", "hello world");
    let g = s.get("/h.txt");
    g.expect(&[200], "GET");
    assert_eq!(g.text(), "hello world");
    assert_eq!(g.must_header("Content-Length"), "11");
    let etag = g.etag();
    assert!(
        etag.starts_with('"') || etag.starts_with("W/\""),
        "ETag is not a quoted entity-tag: {etag:?}"
    );
    assert!(
        etag.ends_with('"'),
        "ETag is not a quoted entity-tag: {etag:?}"
    );
    let lm = g.must_header("Last-Modified");
    assert!(
        parse_http_date(&lm).is_some(),
        "Last-Modified is not an HTTP date: {lm:?}"
    );
    assert!(
        g.must_header("Content-Type").starts_with("text/plain"),
        "{:?}",
        g.header("Content-Type")
    );

    let h = s.head("/h.txt");
    h.expect(&[200], "HEAD");
    assert!(h.body.is_empty(), "HEAD has a body");
    assert_eq!(h.must_header("Content-Length"), "11");
    assert_eq!(h.etag(), etag, "HEAD and GET ETag differ");
    assert_eq!(h.must_header("Last-Modified"), lm);
    assert!(h.must_header("Content-Type").starts_with("text/plain"));
}

#[test]
fn content_type_from_extension() {
    let s = Handler::start();
    for (name, ct) in [
        ("/p.html", "text/html"),
        ("/p.txt", "text/plain"),
        ("/p.png", "image/png"),
        ("/p.json", "application/json"),
        ("/p.pdf", "application/pdf"),
    ] {
        s.create(name, "x");
        let g = s.head(name);
        g.expect(&[200], "HEAD");
        let got = g.must_header("Content-Type");
        assert!(
            got.starts_with(ct),
            "{name}: Content-Type {got:?}, expected {ct}"
        );
    }
    s.create("/noext", "x");
    s.head("/noext").must_header("Content-Type");
}

#[test]
fn get_range_first_bytes_is_206() {
    let s = Handler::start();
    s.create("/r.txt", "hello world");
    let r = s.req("GET", "/r.txt").header("Range", "bytes=0-4").exec();
    r.expect(&[206], "Range bytes=0-4");
    assert_eq!(r.text(), "hello");
    assert_eq!(r.must_header("Content-Range"), "bytes 0-4/11");
    assert_eq!(r.must_header("Content-Length"), "5");
}

#[test]
fn get_range_open_and_suffix() {
    let s = Handler::start();
    s.create("/r.txt", "hello world");
    let r = s.req("GET", "/r.txt").header("Range", "bytes=-3").exec();
    r.expect(&[206], "suffix range");
    assert_eq!(r.text(), "rld");
    assert_eq!(r.must_header("Content-Range"), "bytes 8-10/11");

    let r = s.req("GET", "/r.txt").header("Range", "bytes=6-").exec();
    r.expect(&[206], "open range");
    assert_eq!(r.text(), "world");
    assert_eq!(r.must_header("Content-Range"), "bytes 6-10/11");

    // A last-byte-pos past the end is clamped.
    let r = s.req("GET", "/r.txt").header("Range", "bytes=6-100").exec();
    r.expect(&[206], "range past the end");
    assert_eq!(r.text(), "world");
}

#[test]
fn get_range_in_a_large_file() {
    let s = Handler::start();
    let data = pseudo_random(1_000_000, 3);
    s.create("/big", data.clone());
    let r = s
        .req("GET", "/big")
        .header("Range", "bytes=500000-500999")
        .exec();
    r.expect(&[206], "range in a large file");
    assert!(r.body == data[500_000..501_000], "wrong bytes");
    assert_eq!(
        r.must_header("Content-Range"),
        "bytes 500000-500999/1000000"
    );
}

/// Ranges of a file of several MiB, starting inside a page and crossing the
/// chunks a download is read in, and the whole file.
#[test]
fn large_ranges_arrive_byte_for_byte() {
    let s = Server::start();
    let size = 3 * 1024 * 1024 + 4321;
    let data = pseudo_random(size, 9);
    std::fs::write(s.root().join("large.bin"), &data).unwrap();
    for (range, from, to) in [
        ("bytes=4097-1500000", 4097, 1_500_001),
        ("bytes=-700000", size - 700_000, size),
        ("bytes=1048500-", 1_048_500, size),
    ] {
        let r = s.req("GET", "/large.bin").header("Range", range).exec();
        r.expect(&[206], range);
        assert!(r.body == data[from..to], "{range}: wrong bytes");
    }
    let whole = s.get("/large.bin");
    whole.expect(&[200], "GET of the whole file");
    assert!(whole.body == data, "the whole file differs");
}

/// A file cut short by another process while it is being downloaded ends
/// the connection: the client gets fewer bytes than announced, never bytes
/// that are not the file's, and the server goes on.
#[test]
fn a_file_cut_short_while_it_downloads_ends_the_connection() {
    use std::io::{Read, Write};
    let s = Server::start();
    // Far more than the socket buffers on both ends hold, so most of it is
    // still to be sent when the file shrinks (sparse: made at once).
    let size: u64 = 128 << 20;
    let path = s.root().join("cut.bin");
    std::fs::File::create(&path).unwrap().set_len(size).unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    write!(
        stream,
        "GET /cut.bin HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        s.port
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the head: {got:?}");
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {size}")), "{head}");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let body = (got.len() - head_end + rest.len()) as u64;
    assert!(body < size, "the whole announced body arrived: {body}");
    assert!(
        got[head_end..].iter().chain(&rest).all(|&b| b == 0),
        "bytes that are not the file's"
    );
    s.put("/after.txt", "fine")
        .expect(&[201], "PUT after the cut");
    assert_eq!(s.get("/after.txt").text(), "fine");
}

#[test]
fn get_unsatisfiable_range_is_416() {
    let s = Handler::start();
    s.create("/r.txt", "hello world");
    let r = s
        .req("GET", "/r.txt")
        .header("Range", "bytes=100-200")
        .exec();
    r.expect(&[416], "unsatisfiable range");
    assert_eq!(r.must_header("Content-Range"), "bytes */11");
}

#[test]
fn get_if_none_match_is_304() {
    let s = Handler::start();
    s.create("/c.txt", "cache me");
    let etag = s.get("/c.txt").etag();
    let r = s
        .req("GET", "/c.txt")
        .header("If-None-Match", etag.as_str())
        .exec();
    r.expect(&[304], "If-None-Match with the ETag");
    assert!(r.body.is_empty());
    let r = s
        .req("HEAD", "/c.txt")
        .header("If-None-Match", etag.as_str())
        .exec();
    r.expect(&[304], "HEAD If-None-Match with the ETag");
    let r = s
        .req("GET", "/c.txt")
        .header("If-None-Match", "\"other\"")
        .exec();
    r.expect(&[200], "If-None-Match with another ETag");
    assert_eq!(r.text(), "cache me");
}

#[test]
fn get_if_modified_since() {
    let s = Handler::start();
    s.create("/c.txt", "cache me");
    let lm = s.get("/c.txt").must_header("Last-Modified");
    s.req("GET", "/c.txt")
        .header("If-Modified-Since", lm.as_str())
        .exec()
        .expect(&[304], "If-Modified-Since = Last-Modified");
    // RFC 9110 §13.1.3: not modified since a later date → 304.
    s.req("GET", "/c.txt")
        .header("If-Modified-Since", http_date_from_now(86_400).as_str())
        .exec()
        .expect(&[304], "If-Modified-Since in the future");
    let r = s
        .req("GET", "/c.txt")
        .header("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")
        .exec();
    r.expect(&[200], "If-Modified-Since in the past");
    assert_eq!(r.text(), "cache me");
}

#[test]
fn if_unmodified_since_in_the_past_is_412() {
    let s = Handler::start();
    s.create("/u.txt", "data");
    s.req("GET", "/u.txt")
        .header("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")
        .exec()
        .expect(&[412], "GET If-Unmodified-Since in the past");
    s.req("PUT", "/u.txt")
        .header("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")
        .body("new")
        .exec()
        .expect(&[412], "PUT If-Unmodified-Since in the past");
    assert_eq!(s.get("/u.txt").text(), "data");
    s.req("GET", "/u.txt")
        .header("If-Unmodified-Since", http_date_from_now(86_400).as_str())
        .exec()
        .expect(&[200], "If-Unmodified-Since in the future");
}

#[test]
fn if_range() {
    let s = Handler::start();
    s.create("/r.txt", "hello world");
    let etag = s.get("/r.txt").etag();
    let r = s
        .req("GET", "/r.txt")
        .header("Range", "bytes=0-4")
        .header("If-Range", etag.as_str())
        .exec();
    r.expect(&[206], "If-Range with the current ETag");
    assert_eq!(r.text(), "hello");
    let r = s
        .req("GET", "/r.txt")
        .header("Range", "bytes=0-4")
        .header("If-Range", "\"stale\"")
        .exec();
    r.expect(&[200], "If-Range with a stale ETag");
    assert_eq!(r.text(), "hello world");
}

#[test]
fn get_collection_is_an_escaped_html_listing() {
    let s = Handler::start();
    s.create_dir("/dir/");
    s.create("/dir/a%3Cb%26c.txt", "x");
    s.create_dir("/dir/sub/");
    let r = s.get("/dir/");
    r.expect(&[200], "GET on a collection");
    assert!(
        r.must_header("Content-Type").starts_with("text/html"),
        "{:?}",
        r.header("Content-Type")
    );
    let html = r.text();
    assert!(
        html.contains("a&lt;b&amp;c.txt"),
        "listing lacks the escaped name:\n{html}"
    );
    assert!(
        !html.contains("a<b&c.txt"),
        "listing contains the unescaped name:\n{html}"
    );
    // `<` must be percent-encoded in the href; `&` may be too, or else
    // escaped as an HTML entity.
    let lower = html.to_ascii_lowercase();
    assert!(
        lower.contains("a%3cb%26c.txt") || lower.contains("a%3cb&amp;c.txt"),
        "listing lacks the percent-encoded href:\n{html}"
    );
    assert!(
        html.contains("sub"),
        "listing lacks the sub-collection:\n{html}"
    );
    // The file named a<b&c.txt really exists under that name.
    assert_eq!(
        s.get("/dir/a%3Cb%26c.txt").expect(&[200], "GET").text(),
        "x"
    );
}

#[test]
fn get_root_listing() {
    let s = Handler::start();
    s.create("/hello.txt", "x");
    let r = s.get("/");
    r.expect(&[200], "GET /");
    assert!(r.text().contains("hello.txt"), "{}", r.text());
}

#[test]
fn get_and_head_missing_are_404() {
    let s = Handler::start();
    s.get("/missing.txt").expect(&[404], "GET missing");
    s.head("/missing.txt").expect(&[404], "HEAD missing");
    s.get("/missing/dir/")
        .expect(&[404], "GET missing collection");
}
