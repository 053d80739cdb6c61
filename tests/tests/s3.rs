//! End-to-end tests of the S3 backend against a real S3 server (Garage).
//!
//! They need a running S3 store, given by the environment that
//! `scripts/garage.sh`'s `garage_start` exports: `EDGEDAV_S3_ENDPOINT`,
//! `EDGEDAV_S3_BUCKET`, `EDGEDAV_S3_REGION`, and the credentials in
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`. Without
//! `EDGEDAV_S3_ENDPOINT` every test here prints a loud SKIPPED notice and
//! passes. `scripts/s3-tests.sh` starts Garage and runs them.
//!
//! Each test serves its own key prefix of the bucket, so tests run in
//! parallel and never see each other's objects. The server runs with
//! `--s3-log-requests`, so its log counts the S3 requests it makes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use edgedav_tests::*;

// ---------------------------------------------------------------- setup

struct S3Env {
    endpoint: String,
    bucket: String,
    region: String,
}

/// The S3 store to test against, or `None` (after a loud notice) when the
/// environment names none.
fn s3_env(test: &str) -> Option<S3Env> {
    match std::env::var("EDGEDAV_S3_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(S3Env {
            endpoint,
            bucket: std::env::var("EDGEDAV_S3_BUCKET").unwrap_or_else(|_| "edgedav".into()),
            region: std::env::var("EDGEDAV_S3_REGION").unwrap_or_else(|_| "garage".into()),
        }),
        _ => {
            let notice = format!(
                "\n\
                 ************************************************************************\n\
                 *** SKIPPED s3::{test}: EDGEDAV_S3_ENDPOINT is not set, so there is no\n\
                 *** S3 server to test against. Run scripts/s3-tests.sh (it starts a\n\
                 *** local Garage), or `source scripts/garage.sh && garage_start` first.\n\
                 ************************************************************************\n\n"
            );
            skip(&notice);
            None
        }
    }
}

/// A server on the S3 backend, serving a fresh prefix of the bucket.
struct S3Server {
    server: Server,
}

impl std::ops::Deref for S3Server {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

fn start(env: &S3Env, test: &str) -> S3Server {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("e2e/{test}-{}-{nanos}", std::process::id());
    let server = Server::start_with(&[
        "--s3-bucket",
        &env.bucket,
        "--s3-prefix",
        &prefix,
        "--s3-endpoint",
        &env.endpoint,
        "--s3-region",
        &env.region,
        "--s3-path-style",
        "--s3-log-requests",
    ]);
    S3Server { server }
}

impl S3Server {
    /// The S3 requests the server has logged so far, as (total, operations).
    fn s3_requests(&self) -> (u64, Vec<String>) {
        let log = self.log();
        let mut total = 0;
        let mut operations = Vec::new();
        for line in log.lines().filter(|l| l.contains("s3 request")) {
            if let Some(n) = field(line, "total") {
                total = total.max(n.parse().unwrap_or(0));
            }
            if let Some(op) = field(line, "operation") {
                operations.push(op.to_owned());
            }
        }
        (total, operations)
    }
}

/// `name=value` (text logs) or `"name":value` (JSON logs) in a log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line
        .find(&format!(" {name}="))
        .map(|i| i + name.len() + 2)
        .or_else(|| {
            line.find(&format!("\"{name}\":"))
                .map(|i| i + name.len() + 3)
        })?;
    let rest = line[start..].trim_start_matches('"');
    let end = rest.find([' ', '"', ',', '}']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Percent-encodes a path segment.
fn enc(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Deterministic content: byte `i` of a stream, computable at any offset.
fn content_byte(seed: u64, i: u64) -> u8 {
    let mut x = (i / 8).wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    x.to_le_bytes()[(i % 8) as usize]
}

fn content(seed: u64, start: u64, len: u64) -> Vec<u8> {
    (start..start + len)
        .map(|i| content_byte(seed, i))
        .collect()
}

/// A `Read` of `len` bytes of [`content_byte`].
struct Generated {
    seed: u64,
    pos: u64,
    len: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.len - self.pos) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = content_byte(self.seed, self.pos + i as u64);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn big_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(1800))
        .build()
        .unwrap()
}

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------- listing

/// A Depth-1 PROPFIND lists every member of a collection of more than 1,000
/// keys (three S3 pages), with metadata from the listing: the S3 requests it
/// costs stay within ceil(n/1000) + 1.
#[test]
fn s3_propfind_paginates_past_1000_keys() {
    let Some(env) = s3_env("s3_propfind_paginates_past_1000_keys") else {
        return;
    };
    let s = start(&env, "pagination");
    const FILES: usize = 2_050;
    s.create_dir("/big/");
    for d in ["sub-a", "sub b", "sub-ü"] {
        s.create_dir(&format!("/big/{}/", enc(d)));
    }
    let names: Vec<String> = (0..FILES)
        .map(|i| match i % 3 {
            0 => format!("file-{i:05}.txt"),
            1 => format!("file {i:05} +%&é.bin"),
            _ => format!("f{i:05}"),
        })
        .collect();
    // PUT in parallel (the store, not the client, is what is being tested).
    std::thread::scope(|scope| {
        for chunk in names.chunks(FILES.div_ceil(8)) {
            let s = &s;
            scope.spawn(move || {
                for name in chunk {
                    let body = format!("content of {name}");
                    s.put(&format!("/big/{}", enc(name)), body)
                        .expect(&[201], "PUT member");
                }
            });
        }
    });

    let props = [
        (DAV, "resourcetype"),
        (DAV, "getcontentlength"),
        (DAV, "getlastmodified"),
        (DAV, "getetag"),
        (DAV, "getcontenttype"),
    ];
    let (before, _) = s.s3_requests();
    let started = Instant::now();
    let r = s.propfind("/big/", "1", Some(&propfind_prop(&props)));
    r.expect(&[207], "PROPFIND Depth 1");
    let elapsed = started.elapsed();
    let (after, operations) = s.s3_requests();
    let ms = r.multistatus();

    let n = FILES + 3;
    assert_eq!(ms.len(), n + 1, "every member and the collection itself");
    let mut listed: Vec<String> = ms.iter().map(|m| m.path()).collect();
    listed.sort();
    let mut expected: Vec<String> = names.iter().map(|n| format!("/big/{n}")).collect();
    expected.extend(["/big/", "/big/sub-a/", "/big/sub b/", "/big/sub-ü/"].map(String::from));
    expected.sort();
    assert_eq!(listed, expected);
    for m in &ms {
        let path = m.path();
        let is_dir = path.ends_with('/');
        let rt = m.prop_ok(DAV, "resourcetype");
        assert_eq!(rt.child(DAV, "collection").is_some(), is_dir, "{path}");
        assert!(!m.prop_ok(DAV, "getetag").all_text().is_empty(), "{path}");
        m.prop_ok(DAV, "getlastmodified");
        if !is_dir {
            let name = path.rsplit('/').next().unwrap();
            let len = format!("content of {name}").len();
            assert_eq!(
                m.prop_ok(DAV, "getcontentlength").all_text(),
                len.to_string(),
                "{path}"
            );
        }
    }
    let requests = after - before;
    let bound = n.div_ceil(1000) as u64 + 1;
    eprintln!(
        "PROPFIND Depth 1 of {n} members: {requests} S3 requests ({:?}), {elapsed:?}",
        &operations[operations.len() - requests as usize..]
    );
    assert!(
        requests <= bound,
        "{requests} S3 requests for {n} members, more than {bound}"
    );

    // The ETag of a member is the same in GET, PROPFIND Depth 0 and the listing.
    let one = format!("/big/{}", enc(&names[1]));
    let get = s.get(&one);
    get.expect(&[200], "GET member");
    assert_eq!(get.text(), format!("content of {}", names[1]));
    let etag = get.must_header("ETag");
    let depth0 = s.props(&one, &[(DAV, "getetag")]);
    assert_eq!(depth0.prop_ok(DAV, "getetag").all_text(), etag);
    let listed = ms
        .iter()
        .find(|m| m.path() == format!("/big/{}", names[1]))
        .unwrap();
    assert_eq!(listed.prop_ok(DAV, "getetag").all_text(), etag);

    // allprop: no request per member for its dead properties, only for the
    // members that have some. The root's own `get-properties` costs one
    // GetObject (the one request over the issue's ceil(n/1000) + 1).
    let root_props = 1;
    let allprop = |with_props: &[(String, &str)]| {
        let (before, _) = s.s3_requests();
        let r = s.propfind("/big/", "1", None);
        r.expect(&[207], "allprop PROPFIND Depth 1");
        let (after, operations) = s.s3_requests();
        let ms = r.multistatus();
        assert_eq!(ms.len(), n + 1);
        for m in &ms {
            let expected = with_props
                .iter()
                .find(|(path, _)| m.path() == *path)
                .map(|(_, value)| value.to_string());
            let found = match m.prop(Z, "tag") {
                Some((200, p)) => Some(p.all_text()),
                _ => None,
            };
            assert_eq!(found, expected, "{}", m.path());
        }
        let requests = after - before;
        eprintln!(
            "allprop PROPFIND Depth 1 of {n} members, {} with dead properties: {requests} S3 requests ({:?})",
            with_props.len(),
            &operations[operations.len() - requests as usize..]
        );
        requests
    };
    let requests = allprop(&[]);
    let bound = n.div_ceil(1000) as u64 + 1 + root_props;
    assert!(
        requests <= bound,
        "{requests} S3 requests, more than {bound}"
    );

    // Two members with properties: one on the first page, one on the last.
    let with_props = [
        ("/big/sub b/".to_owned(), "on a collection"),
        (format!("/big/{}", names[FILES - 1]), "on the last page"),
    ];
    set_prop(&s, &format!("/big/{}/", enc("sub b")), with_props[0].1);
    set_prop(
        &s,
        &format!("/big/{}", enc(&names[FILES - 1])),
        with_props[1].1,
    );
    let requests = allprop(&with_props);
    // Plus one listing of the property objects (of up to 1,000 members) and
    // one GetObject per member that has properties.
    let bound = n.div_ceil(1000) as u64 + 1 + root_props + 1 + with_props.len() as u64;
    assert!(
        requests <= bound,
        "{requests} S3 requests, more than {bound}"
    );
}

// ---------------------------------------------------------------- big files

/// A 1 GiB PUT streams into a multipart upload and a GET streams it back,
/// each with the server's resident memory growing by less than 64 MiB; Range
/// GETs on it return the right bytes, across part boundaries.
/// `EDGEDAV_S3_BIG_MIB` changes the size.
#[test]
fn s3_big_upload_and_download_with_bounded_memory() {
    let Some(env) = s3_env("s3_big_upload_and_download_with_bounded_memory") else {
        return;
    };
    let s = start(&env, "big");
    let mib: u64 = std::env::var("EDGEDAV_S3_BIG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let size = mib * MIB;
    let seed = 42;
    let client = big_client();
    let url = s.url("/big.bin");
    // Warm up (first request, allocator pools) before measuring.
    s.put("/warm.txt", "warm").expect(&[201], "PUT warm-up");

    let rss_before = s.status_kib("VmRSS");
    s.reset_peak_rss();
    let (requests_before, _) = s.s3_requests();
    let started = Instant::now();
    let r = client
        .put(&url)
        .body(Body::sized(
            Generated {
                seed,
                pos: 0,
                len: size,
            },
            size,
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "PUT {mib} MiB: {:?}", r.text());
    let put_time = started.elapsed();
    let put_peak = s.status_kib("VmHWM");
    let put_growth = put_peak.saturating_sub(rss_before);
    let (_, operations) = s.s3_requests();
    let operations = &operations[requests_before as usize..];
    let parts = operations.iter().filter(|o| *o == "UploadPart").count() as u64;
    eprintln!(
        "PUT {mib} MiB: {put_time:?}, RSS before {} MiB, peak {} MiB, growth {} MiB, {} S3 requests ({parts} UploadPart)",
        rss_before / 1024,
        put_peak / 1024,
        put_growth / 1024,
        operations.len()
    );
    assert_eq!(parts, size.div_ceil(8 * MIB), "one UploadPart per 8 MiB");
    assert!(
        !operations.iter().any(|o| o == "PutObject"),
        "a big body is not one PutObject"
    );
    assert!(
        put_growth < 64 * 1024,
        "RSS grew by {put_growth} KiB during the PUT"
    );

    let head = s.head("/big.bin");
    head.expect(&[200], "HEAD");
    assert_eq!(head.must_header("Content-Length"), size.to_string());

    let rss_before = s.status_kib("VmRSS");
    s.reset_peak_rss();
    let started = Instant::now();
    let mut r = client.get(&url).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut buf = vec![0u8; MIB as usize];
    let mut pos = 0u64;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            if *b != content_byte(seed, pos + i as u64) {
                panic!("GET: byte {} differs", pos + i as u64);
            }
        }
        pos += n as u64;
    }
    let get_time = started.elapsed();
    assert_eq!(pos, size, "GET returned the whole file");
    let get_peak = s.status_kib("VmHWM");
    let get_growth = get_peak.saturating_sub(rss_before);
    eprintln!(
        "GET {mib} MiB: {get_time:?}, RSS before {} MiB, peak {} MiB, growth {} MiB",
        rss_before / 1024,
        get_peak / 1024,
        get_growth / 1024
    );
    assert!(
        get_growth < 64 * 1024,
        "RSS grew by {get_growth} KiB during the GET"
    );

    // Ranges, including ones across the 8 MiB part boundaries.
    let part = 8 * MIB;
    for (start, end) in [
        (0, 0),
        (part - 100, part + 99),
        (3 * part - 1, 3 * part),
        (size / 2, size / 2 + 4 * MIB),
    ] {
        let r = s
            .req("GET", "/big.bin")
            .header("Range", format!("bytes={start}-{end}"))
            .exec();
        r.expect(&[206], "Range GET");
        assert_eq!(
            r.must_header("Content-Range"),
            format!("bytes {start}-{end}/{size}")
        );
        assert!(
            r.body == content(seed, start, end - start + 1),
            "bytes {start}-{end}"
        );
    }
    let r = s
        .req("GET", "/big.bin")
        .header("Range", "bytes=-1000")
        .exec();
    r.expect(&[206], "suffix Range GET");
    assert!(
        r.body == content(seed, size - 1000, 1000),
        "last 1000 bytes"
    );
}

// ---------------------------------------------------------------- ranges

#[test]
fn s3_range_gets() {
    let Some(env) = s3_env("s3_range_gets") else {
        return;
    };
    let s = start(&env, "ranges");
    let body: Vec<u8> = (0..100u8).collect();
    s.create("/r.bin", body.clone());
    let range = |spec: &str| s.req("GET", "/r.bin").header("Range", spec).exec();

    for (spec, start, end) in [
        ("bytes=0-4", 0, 4),
        ("bytes=10-", 10, 99),
        ("bytes=-5", 95, 99),
        ("bytes=95-200", 95, 99),
        ("bytes=99-99", 99, 99),
    ] {
        let r = range(spec);
        r.expect(&[206], spec);
        assert_eq!(
            r.must_header("Content-Range"),
            format!("bytes {start}-{end}/100"),
            "{spec}"
        );
        assert_eq!(r.body, &body[start..=end], "{spec}");
    }
    range("bytes=100-").expect(&[416], "range past the end");
    let r = range("bytes=0-1,50-51");
    r.expect(&[206], "two ranges");
    let ct = r.must_header("Content-Type");
    assert!(ct.starts_with("multipart/byteranges"), "{ct}");
    let text = r.body.clone();
    assert!(text.windows(2).any(|w| w == [0, 1]) && text.windows(2).any(|w| w == [50, 51]));

    // An empty file and a range on it.
    s.create("/empty", Vec::new());
    let r = s.get("/empty");
    r.expect(&[200], "GET empty");
    assert!(r.body.is_empty());
    s.req("GET", "/empty")
        .header("Range", "bytes=0-1")
        .exec()
        .expect(&[416, 200], "range of an empty file");
}

/// A download asks S3 once: the object's GetObject answer describes the
/// version it sends. A revalidation asks only for the metadata (a listing),
/// never starts a download it would drop.
#[test]
fn s3_downloads_are_one_request() {
    let Some(env) = s3_env("s3_downloads_are_one_request") else {
        return;
    };
    let s = start(&env, "downloads");
    s.create("/f.txt", "content");
    let operations_of = |request: &dyn Fn() -> u16| {
        let (before, _) = s.s3_requests();
        let status = request();
        let (_, operations) = s.s3_requests();
        (status, operations[before as usize..].to_vec())
    };
    let (status, operations) = operations_of(&|| {
        let r = s.get("/f.txt");
        assert_eq!(r.body, b"content");
        r.status
    });
    assert_eq!((status, operations), (200, vec!["GetObject".to_owned()]));
    let etag = s.head("/f.txt").must_header("ETag");
    let (status, operations) = operations_of(&|| {
        s.req("GET", "/f.txt")
            .header("If-None-Match", etag.as_str())
            .exec()
            .status
    });
    assert_eq!(status, 304);
    assert!(
        !operations.iter().any(|o| o == "GetObject"),
        "a 304 opened a download: {operations:?}"
    );
}

// ---------------------------------------------------------------- copy/move

const Z: &str = "urn:example:z";

fn set_prop(s: &Server, path: &str, value: &str) {
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="{Z}"><D:set><D:prop><Z:tag>{value}</Z:tag></D:prop></D:set></D:propertyupdate>"#
    );
    s.proppatch(path, &body).expect(&[207], "PROPPATCH");
}

fn get_prop(s: &Server, path: &str) -> Option<String> {
    let r = s.props(path, &[(Z, "tag")]);
    match r.prop(Z, "tag") {
        Some((200, p)) => Some(p.all_text()),
        _ => None,
    }
}

/// COPY and MOVE of a collection carry every member with its content and
/// dead properties; DELETE removes the properties with the members.
#[test]
fn s3_copy_and_move_collection() {
    let Some(env) = s3_env("s3_copy_and_move_collection") else {
        return;
    };
    let s = start(&env, "copymove");
    s.create_dir("/src/");
    s.create_dir("/src/sub/");
    s.create_dir("/src/sub/deeper/");
    s.create_dir("/src/empty/");
    s.create("/src/a.txt", "A");
    s.create("/src/sub/b.txt", "B");
    s.create("/src/sub/deeper/c.txt", "C");
    // A member big enough to be a multipart object (ETag "…-N").
    let big = content(7, 0, 9 * MIB);
    s.create("/src/sub/big.bin", big.clone());
    set_prop(&s, "/src/", "src");
    set_prop(&s, "/src/a.txt", "a");
    set_prop(&s, "/src/sub/", "sub");
    set_prop(&s, "/src/sub/deeper/c.txt", "c");

    let tree = [
        ("/", None, Some("src")),
        ("/a.txt", Some("A"), Some("a")),
        ("/sub/", None, Some("sub")),
        ("/sub/b.txt", Some("B"), None),
        ("/sub/deeper/", None, None),
        ("/sub/deeper/c.txt", Some("C"), Some("c")),
        ("/empty/", None, None),
    ];
    let check = |root: &str| {
        for (rel, body, prop) in tree {
            let path = format!("{root}{rel}");
            match body {
                Some(b) => assert_eq!(
                    s.get(&path).expect(&[200], "GET copied file").text(),
                    b,
                    "{path}"
                ),
                None => {
                    let ms = s.propfind(&path, "0", None);
                    ms.expect(&[207], "PROPFIND copied collection");
                }
            }
            assert_eq!(
                get_prop(&s, &path).as_deref(),
                prop,
                "dead property of {path}"
            );
        }
        let got = s.get(&format!("{root}/sub/big.bin"));
        got.expect(&[200], "GET big member");
        assert!(got.body == big, "{root}/sub/big.bin content");
    };

    s.copy_move("COPY", "/src/", "/dst/", &[])
        .expect(&[201], "COPY collection");
    check("/dst");
    check("/src");
    s.copy_move("COPY", "/src/", "/dst/", &[("Overwrite", "F")])
        .expect(&[412], "COPY onto existing, Overwrite F");
    s.create("/dst/extra.txt", "extra");
    s.copy_move("COPY", "/src/", "/dst/", &[])
        .expect(&[204], "COPY onto existing");
    check("/dst");
    s.get("/dst/extra.txt")
        .expect(&[404], "the replaced collection lost its extra member");

    // Depth 0: the collection and its properties, no members.
    s.copy_move("COPY", "/src/", "/shallow/", &[("Depth", "0")])
        .expect(&[201], "COPY Depth 0");
    assert_eq!(get_prop(&s, "/shallow/").as_deref(), Some("src"));
    let listing = s.propfind("/shallow/", "1", None);
    assert_eq!(
        listing.multistatus().len(),
        1,
        "no members:\n{}",
        listing.text()
    );

    s.copy_move("MOVE", "/dst/", "/moved/", &[])
        .expect(&[201], "MOVE collection");
    s.propfind("/dst/", "0", None)
        .expect(&[404], "MOVE source is gone");
    s.get("/dst/a.txt")
        .expect(&[404], "MOVE source member is gone");
    check("/moved");

    // DELETE removes the members' properties: a new resource at the same
    // path does not inherit them.
    s.delete("/moved/").expect(&[204], "DELETE collection");
    s.propfind("/moved/", "0", None).expect(&[404], "deleted");
    s.create_dir("/moved/");
    s.create("/moved/a.txt", "new");
    assert_eq!(get_prop(&s, "/moved/").as_deref(), None);
    assert_eq!(get_prop(&s, "/moved/a.txt").as_deref(), None);

    // A file copied over a file replaces its properties too.
    s.create("/p1.txt", "one");
    s.create("/p2.txt", "two");
    set_prop(&s, "/p2.txt", "two");
    s.copy_move("COPY", "/p1.txt", "/p2.txt", &[])
        .expect(&[204], "COPY file over file");
    assert_eq!(s.get("/p2.txt").text(), "one");
    assert_eq!(get_prop(&s, "/p2.txt"), None);
    s.copy_move("MOVE", "/src/a.txt", "/p2.txt", &[])
        .expect(&[204], "MOVE file over file");
    assert_eq!(get_prop(&s, "/p2.txt").as_deref(), Some("a"));
    s.get("/src/a.txt").expect(&[404], "moved file is gone");
}

// ---------------------------------------------------------------- aborts

/// Sends a PUT announcing `announced` bytes, sends `sent` of them, and drops
/// the connection.
fn interrupted_put(s: &Server, path: &str, announced: u64, sent: u64) {
    let mut stream = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {announced}\r\n\r\n",
        s.port
    )
    .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut left = sent;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stream.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    stream.flush().unwrap();
    // Give the server time to upload what it has, then hang up.
    std::thread::sleep(Duration::from_secs(2));
    drop(stream);
}

/// An upload interrupted mid-body leaves the previous content in place, and
/// its multipart upload is aborted.
#[test]
fn s3_interrupted_upload_keeps_previous_object() {
    let Some(env) = s3_env("s3_interrupted_upload_keeps_previous_object") else {
        return;
    };
    let s = start(&env, "abort");
    let v1 = content(1, 0, 20 * MIB);
    s.create("/keep.bin", v1.clone());
    s.create("/small.txt", "version 1");
    let etag = s.head("/keep.bin").must_header("ETag");

    let (before, _) = s.s3_requests();
    interrupted_put(&s, "/keep.bin", 30 * MIB, 17 * MIB);
    interrupted_put(&s, "/small.txt", 1000, 10);
    interrupted_put(&s, "/new.bin", 30 * MIB, 17 * MIB);

    // The abort runs in the background once the server sees the hang-up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let aborts = loop {
        let (_, operations) = s.s3_requests();
        let aborts = operations[before as usize..]
            .iter()
            .filter(|o| *o == "AbortMultipartUpload")
            .count();
        if aborts >= 2 || Instant::now() > deadline {
            break aborts;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (_, operations) = s.s3_requests();
    let operations = &operations[before as usize..];
    assert!(
        operations.iter().any(|o| o == "UploadPart"),
        "parts were uploaded before the hang-up: {operations:?}"
    );
    assert_eq!(
        aborts, 2,
        "both multipart uploads were aborted: {operations:?}"
    );
    assert!(
        !operations
            .iter()
            .any(|o| o == "CompleteMultipartUpload" || o == "PutObject"),
        "{operations:?}"
    );

    let got = s.get("/keep.bin");
    got.expect(&[200], "GET after the interrupted upload");
    assert_eq!(got.must_header("ETag"), etag);
    assert!(got.body == v1, "previous content intact");
    assert_eq!(s.get("/small.txt").text(), "version 1");
    s.get("/new.bin")
        .expect(&[404], "an interrupted new file does not appear");
}

// ---------------------------------------------------------------- partial updates

/// PUT with Content-Range and PATCH append update big objects in place:
/// the kept ranges are copied server-side (UploadPartCopy) or, when short,
/// re-sent; the result is byte-exact.
#[test]
fn s3_partial_updates() {
    let Some(env) = s3_env("s3_partial_updates") else {
        return;
    };
    let s = start(&env, "partial");
    let size = 12 * MIB;
    let mut expected = content(3, 0, size);
    s.create("/f.bin", expected.clone());

    let mut update = |offset: u64, data: &[u8], expect_copy: bool| {
        let (before, _) = s.s3_requests();
        let end = offset + data.len() as u64 - 1;
        let r = s
            .req("PUT", "/f.bin")
            .header("Content-Range", format!("bytes {offset}-{end}/*"))
            .body(data.to_vec())
            .exec();
        r.expect(&[200, 204], "PUT Content-Range");
        let (_, operations) = s.s3_requests();
        let copied = operations[before as usize..]
            .iter()
            .any(|o| o == "UploadPartCopy");
        assert_eq!(
            copied,
            expect_copy,
            "UploadPartCopy for an update at {offset}: {:?}",
            &operations[before as usize..]
        );
        let end = (offset as usize + data.len()).min(expected.len());
        let offset = offset as usize;
        expected.splice(offset..end, data.iter().copied());
        let got = s.get("/f.bin");
        got.expect(&[200], "GET after a partial update");
        assert_eq!(got.body.len(), expected.len());
        assert!(got.body == expected, "content after an update at {offset}");
    };
    // A few bytes in the middle: prefix and suffix copied server-side.
    update(6 * MIB, b"0123456789", true);
    // Near the start: the short prefix is re-sent, the suffix copied.
    update(100, &[7u8; 1000], true);
    // Across the end: the file grows.
    update(size - 10, &[9u8; 100], true);
    // A small file: read and rewritten in one PutObject.
    s.create("/small.txt", "hello world");
    let r = s
        .req("PUT", "/small.txt")
        .header("Content-Range", "bytes 6-10/*")
        .body("WORLD")
        .exec();
    r.expect(&[200, 204], "PUT Content-Range on a small file");
    assert_eq!(s.get("/small.txt").text(), "hello WORLD");
    // Append with PATCH (sabre/dav partial update).
    let r = s
        .req("PATCH", "/small.txt")
        .header("Content-Type", "application/x-sabredav-partialupdate")
        .header("X-Update-Range", "append")
        .body("!")
        .exec();
    r.expect(&[200, 204], "PATCH append");
    assert_eq!(s.get("/small.txt").text(), "hello WORLD!");
}

// ---------------------------------------------------------------- per-user homes

/// Two users whose homes are prefixes of the same bucket, from a config
/// file: each sees only their own keys, with quota accounting on S3 too.
#[test]
fn users_with_s3_homes_are_isolated() {
    let Some(env) = s3_env("users_with_s3_homes_are_isolated") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let base = format!("e2e/homes-{}-{nanos}", std::process::id());
    let home = |user: &str| {
        format!(
            "{{ backend = \"s3\", bucket = \"{}\", prefix = \"{base}/{user}\", endpoint = \"{}\", region = \"{}\", path_style = true }}",
            env.bucket, env.endpoint, env.region
        )
    };
    let config = format!(
        "[[bindings]]\nlisten = \"127.0.0.1:0\"\n\n\
         [[users]]\nname = \"ann\"\npassword_hash = \"{}\"\nhome = {}\nquota_bytes = \"1KiB\"\n\n\
         [[users]]\nname = \"ben\"\npassword_hash = \"{}\"\nhome = {}\n",
        hash_password("ann-pw"),
        home("ann"),
        hash_password("ben-pw"),
        home("ben"),
    );
    let s = Server::start_config(&config);
    let ann = |m: &str, p: &str| s.req_as("ann", "ann-pw", m, p);
    let ben = |m: &str, p: &str| s.req_as("ben", "ben-pw", m, p);

    ann("PUT", "/note.txt")
        .body("ann's note")
        .exec()
        .expect(&[201], "ann PUT");
    assert_eq!(ann("GET", "/note.txt").exec().text(), "ann's note");
    assert_eq!(
        ben("GET", "/note.txt").exec().status,
        404,
        "ben must not see ann's file"
    );
    let listing = ben("PROPFIND", "/").header("Depth", "1").exec();
    listing.expect(&[207], "ben PROPFIND");
    assert!(!listing.text().contains("note.txt"), "{}", listing.text());
    ben("PUT", "/note.txt")
        .body("ben's")
        .exec()
        .expect(&[201], "ben PUT");
    assert_eq!(ann("GET", "/note.txt").exec().text(), "ann's note");
    assert_eq!(ben("GET", "/note.txt").exec().text(), "ben's");
    // Ann's quota holds on S3: 2 KiB more does not fit in 1 KiB.
    let big = vec![b'x'; 2048];
    assert_eq!(ann("PUT", "/big.bin").body(big).exec().status, 507);
    assert_eq!(
        ann("GET", "/big.bin").exec().status,
        404,
        "nothing committed"
    );
}
