//! Hostile load: per-address connection caps answered with 503, deadlines
//! that trickled bytes do not extend (first request, keep-alive), the
//! instance queue and its per-address share, the minimum request-body rate,
//! early refusals the client can read, and a shutdown bounded by its grace
//! that logs what it cuts.
//!
//! Limits are set small through the configuration file so the tests stay
//! small. Raw sockets show what a client really sees; a second client
//! address is 127.0.0.2 (Linux routes all of 127/8 to loopback).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::time::{Duration, Instant};

use edgedav_tests::*;

/// `u:pw`.
const AUTH: &str = "Authorization: Basic dTpwdw==";
/// The longest any server-side deadline in these tests may take to act.
const BOUND: Duration = Duration::from_secs(10);

/// A server with an admin listener, one binding with `binding` settings,
/// `[sandbox]` settings and user `u` (password `pw`) whose home is
/// `{dir}/home`.
fn start(sandbox: &str, binding: &str) -> Server {
    start_with(sandbox, binding, |_| {})
}

fn start_with(sandbox: &str, binding: &str, prepare: impl FnOnce(&std::path::Path)) -> Server {
    let hash = hash_password("pw");
    Server::start_config_with(
        &format!(
            r#"
[server]
shutdown_grace = "1s"

[sandbox]
{sandbox}

[admin]
listen = "127.0.0.1:0"

[[bindings]]
listen = "127.0.0.1:0"
{binding}

[[users]]
name = "u"
password_hash = "{hash}"
home = {{ backend = "local", path = "{{dir}}/home" }}
"#
        ),
        |dir| {
            std::fs::create_dir_all(dir.join("home")).unwrap();
            prepare(dir);
        },
    )
}

fn connect(s: &Server) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(BOUND)).unwrap();
    c
}

/// `GET url` as `u`, from another client address: 127.0.0.2.
fn get_from_second_address(url: String) -> reqwest::blocking::Response {
    Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
        .get(url)
        .basic_auth("u", Some("pw"))
        .send()
        .unwrap()
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n\r\n")
}

/// Reads until the server closes `c`; how long that took. Fails if the
/// server sends anything or keeps it open past [`BOUND`].
fn closed_by_server(c: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 512];
    match c.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!(
            "expected a close, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("not closed within {BOUND:?}: {e}"),
    }
    started.elapsed()
}

/// Starts a PUT of `len` bytes with `Expect: 100-continue` and waits for
/// the `100 Continue`: the guest is then reading the body, i.e. the upload
/// holds an instance. Sends one byte of the body.
fn upload_holding_an_instance(s: &Server, path: &str, len: usize) -> TcpStream {
    let mut c = connect(s);
    write!(
        c,
        "PUT {path} HTTP/1.1\r\nHost: x\r\n{AUTH}\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 100"), "{line:?}");
    reader.read_line(&mut line).unwrap();
    c.write_all(b"x").unwrap();
    c
}

#[test]
fn one_address_at_its_connection_cap_gets_503_while_another_is_served() {
    let s = start("", "max_connections_per_ip = 4");
    // Four idle connections: the address's whole share (accepted in order).
    let held: Vec<TcpStream> = (0..4).map(|_| connect(&s)).collect();
    let mut fifth = connect(&s);
    fifth.write_all(get_request("/").as_bytes()).unwrap();
    let r = read_raw_response(&mut BufReader::new(&fifth), false).unwrap();
    assert_eq!(r.status, 503, "{}", r.head);
    let head = r.head.to_ascii_lowercase();
    assert!(head.contains("retry-after: "), "{}", r.head);
    assert!(head.contains("connection: close"), "{}", r.head);
    closed_by_server(&mut fifth);

    // Another address is served.
    let r = get_from_second_address(s.url("/"));
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        s.metric("edgedav_connections_rejected_total{reason=\"max_connections_per_ip\"}"),
        Some(1.0)
    );
    drop(held);
}

#[test]
fn the_first_request_has_a_deadline_that_trickled_bytes_do_not_extend() {
    let s = start(
        "",
        "header_read_timeout = \"1s\"\nidle_timeout = \"1m\"\nkeepalive_timeout = \"1m\"",
    );
    let silent = connect(&s);
    let trickle = |bytes: &'static [u8]| {
        let mut c = connect(&s);
        let mut writer = c.try_clone().unwrap();
        // Trickles one byte every 200 ms (longer than the deadline), until
        // the server closes the connection.
        let thread = std::thread::spawn(move || {
            for b in bytes {
                if writer.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let took = closed_by_server(&mut c);
        let _ = c.shutdown(Shutdown::Both);
        thread.join().unwrap();
        took
    };
    let mut silent = silent;
    let took = closed_by_server(&mut silent);
    assert!(took >= Duration::from_millis(500), "{took:?}");
    let took = trickle(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1234567890\r\n\r\n");
    assert!(took < Duration::from_secs(5), "HTTP/1 headers: {took:?}");
    let took = trickle(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(took < Duration::from_secs(4), "h2 preface: {took:?}");
    assert!(
        s.metric("edgedav_connections_timed_out_total{reason=\"first_request\"}")
            .is_some_and(|n| n >= 3.0),
        "connections timed out before their first request: {:?}",
        s.metric("edgedav_connections_timed_out_total{reason=\"first_request\"}")
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_keepalive_timeout() {
    let s = start(
        "",
        "header_read_timeout = \"30s\"\nidle_timeout = \"1m\"\nkeepalive_timeout = \"1s\"",
    );
    let mut c = connect(&s);
    // Two requests on one connection: it is kept alive between them...
    for _ in 0..2 {
        c.write_all(get_request("/").as_bytes()).unwrap();
        let r = read_raw_response(&mut BufReader::new(&c), false).unwrap();
        assert_eq!(r.status, 200, "{}", r.head);
    }
    // ...and closed once idle for keepalive_timeout, well before the
    // header timeout.
    let took = closed_by_server(&mut c);
    assert!(took >= Duration::from_millis(500), "{took:?}");
}

#[test]
fn a_request_waits_for_an_instance_and_gets_503_with_retry_after_when_none_frees() {
    let s = start(
        "max_instances = 2\ninstance_wait = \"3s\"",
        "min_body_rate = 0",
    );
    let mut first = upload_holding_an_instance(&s, "/a", 3);
    let second = upload_holding_an_instance(&s, "/b", 3);

    // The pool is full: a GET from another address waits in the queue...
    let base = s.url("/");
    let get = std::thread::spawn(move || get_from_second_address(base).status().as_u16());
    let queued = Instant::now();
    while s.metric("edgedav_instance_queue") != Some(1.0) {
        assert!(queued.elapsed() < BOUND, "the GET never queued");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...and is served when an upload ends.
    first.write_all(b"yz").unwrap();
    let r = read_raw_response(&mut BufReader::new(&first), false).unwrap();
    assert_eq!(r.status, 201, "{}", r.head);
    assert_eq!(get.join().unwrap(), 200);

    // With both instances held for longer than instance_wait: 503, Retry-After.
    let _third = upload_holding_an_instance(&s, "/c", 3);
    let started = Instant::now();
    let r = get_from_second_address(s.url("/"));
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(2500), "{waited:?}");
    assert_eq!(
        s.metric("edgedav_requests_refused_total{reason=\"instances_busy\"}"),
        Some(1.0)
    );
    drop(second);
}

#[test]
fn one_address_cannot_hold_more_than_its_share_of_instances() {
    let s = start(
        "max_instances = 4\nmax_instances_per_ip = 1",
        "min_body_rate = 0",
    );
    let _upload = upload_holding_an_instance(&s, "/a", 3);
    // The same address is refused at once...
    let r = s.req_as("u", "pw", "GET", "/").exec();
    assert_eq!(r.status, 503);
    assert!(r.header("Retry-After").is_some());
    // ...another is served.
    let r = get_from_second_address(s.url("/"));
    assert_eq!(r.status().as_u16(), 200);
}

/// A small body (here a PROPFIND's XML) is read before an instance is taken
/// for it: a client that trickles one ties up a connection, not one of the
/// instances every client shares.
#[test]
fn a_small_body_trickling_in_holds_no_instance() {
    let s = start(
        "max_instances = 1\ninstance_wait = \"1s\"",
        "min_body_rate = 0",
    );
    let body = r#"<?xml version="1.0"?><propfind xmlns="DAV:"><allprop/></propfind>"#;
    let mut slow = connect(&s);
    write!(
        slow,
        "PROPFIND / HTTP/1.1\r\nHost: x\r\n{AUTH}\r\nDepth: 0\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    // The server has read what was sent of the body...
    let sent = Instant::now();
    while s.metric("edgedav_bytes_received_total") != Some(10.0) {
        assert!(sent.elapsed() < BOUND, "the body was never read");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...and the only instance is free for another client meanwhile
    // (instead of a 503 after `instance_wait`).
    let r = get_from_second_address(s.url("/"));
    assert_eq!(r.status().as_u16(), 200);
    slow.write_all(&body.as_bytes()[10..]).unwrap();
    let r = read_raw_response(&mut BufReader::new(&slow), false).unwrap();
    assert_eq!(r.status, 207, "{}", r.head);
}

#[test]
fn a_body_slower_than_min_body_rate_is_cut_with_408() {
    let s = start(
        "",
        "min_body_rate = \"1KiB\"\nmin_body_rate_grace = \"1s\"\nidle_timeout = \"1m\"",
    );
    let mut c = connect(&s);
    write!(
        c,
        "PUT /slow HTTP/1.1\r\nHost: x\r\n{AUTH}\r\nContent-Length: 100\r\n\r\n"
    )
    .unwrap();
    let mut writer = c.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..100 {
            if writer.write_all(b"s").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let started = Instant::now();
    let r = read_raw_response(&mut BufReader::new(&c), false).unwrap();
    assert_eq!(r.status, 408, "{}", r.head);
    assert!(started.elapsed() < BOUND);
    let _ = c.shutdown(Shutdown::Both);
    trickle.join().unwrap();
    // Nothing was committed.
    assert_eq!(s.req_as("u", "pw", "GET", "/slow").exec().status, 404);
    assert_eq!(
        s.metric("edgedav_requests_refused_total{reason=\"min_body_rate\"}"),
        Some(1.0)
    );
    // A body at a normal pace is not affected.
    s.req_as("u", "pw", "PUT", "/fast")
        .body(vec![b'f'; 256 * 1024])
        .exec()
        .expect(&[201], "PUT at full speed");
}

fn big_propfind() -> String {
    let mut big = String::from(r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>"#);
    big.push_str(&" ".repeat(2 * 1024 * 1024));
    big.push_str("</D:prop></D:propfind>");
    big
}

#[test]
fn a_body_refused_before_it_is_read_still_lets_the_client_read_the_status() {
    let s = start("", "");
    let big = big_propfind();
    for i in 0..20 {
        // 413: the handler refuses by Content-Length, reading nothing.
        let r = s
            .req_as("u", "pw", "PROPFIND", "/")
            .header("Depth", "0")
            .body(big.clone())
            .send()
            .unwrap_or_else(|e| panic!("round {i}: PROPFIND: {e:?}"));
        assert_eq!(r.status().as_u16(), 413, "round {i}");
        // 401: the host refuses before any instance sees the body.
        let r = s
            .http("PUT", "/f")
            .body(big.clone())
            .send()
            .unwrap_or_else(|e| panic!("round {i}: PUT: {e:?}"));
        assert_eq!(r.status().as_u16(), 401, "round {i}");
    }
}

#[test]
fn a_refusal_to_a_client_expecting_100_continue_sends_no_100() {
    let s = start("", "");
    let mut c = connect(&s);
    write!(
        c,
        "PROPFIND / HTTP/1.1\r\nHost: x\r\n{AUTH}\r\nDepth: 0\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        4 << 20
    )
    .unwrap();
    let r = read_raw_response(&mut BufReader::new(&c), false).unwrap();
    assert_eq!(r.status, 413, "{}", r.head);
    // The connection is closed rather than waiting for the body.
    closed_by_server(&mut c);
}

/// The access log says `aborted=false` of responses sent whole, whether
/// the connection stays open or closes after them.
#[test]
fn responses_sent_whole_are_not_logged_as_aborted() {
    let mut s = start_with("", "", |dir| {
        std::fs::write(dir.join("home/small"), b"hello").unwrap();
    });
    let mut c = connect(&s);
    c.write_all(get_request("/small").as_bytes()).unwrap();
    let mut reader = BufReader::new(c.try_clone().unwrap());
    let r = read_raw_response(&mut reader, false).unwrap();
    assert_eq!(r.status, 200, "{}", r.head);
    write!(
        c,
        "MKCOL /made/ HTTP/1.1\r\nHost: x\r\n{AUTH}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let r = read_raw_response(&mut reader, false).unwrap();
    assert_eq!(r.status, 201, "{}", r.head);
    // The log is complete once the server has exited.
    s.signal(libc::SIGTERM);
    assert!(s.wait_exit(BOUND).expect("the server exits").success());
    let log = s.log();
    let lines: Vec<_> = log
        .lines()
        .filter(|l| l.contains("edgedav::access") && l.contains(" path=/"))
        .collect();
    for (method, path) in [("GET", "/small"), ("MKCOL", "/made/")] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("method={method} path={path} "))
                    && l.contains("aborted=false")),
            "{method} {path} not logged as sent whole: {lines:#?}"
        );
    }
}

#[test]
fn shutdown_is_bounded_by_the_grace_and_logs_the_requests_it_cuts() {
    let mut s = start_with("", "", |dir| {
        std::fs::write(dir.join("home/big"), vec![b'b'; 32 << 20]).unwrap();
    });
    // A download the client does not read: stuck on a full socket.
    let mut download = connect(&s);
    download.write_all(get_request("/big").as_bytes()).unwrap();
    let mut head = [0u8; 12];
    download.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // An upload half sent.
    let mut upload = upload_holding_an_instance(&s, "/up", 1000);
    upload.flush().unwrap();

    let started = Instant::now();
    s.signal(libc::SIGTERM);
    let status = s.wait_exit(BOUND).expect("the server exits");
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    // The grace is 1 s.
    assert!(took < Duration::from_millis(2500), "exit took {took:?}");
    let log = s.log();
    let access = |method: &str| {
        log.lines()
            .filter(|l| l.contains("edgedav::access") && l.contains(&format!("method={method}")))
            .collect::<Vec<_>>()
    };
    let gets = access("GET");
    assert!(
        gets.iter()
            .any(|l| l.contains("path=/big") && l.contains("aborted=true")),
        "{log}"
    );
    let puts = access("PUT");
    assert!(
        puts.iter()
            .any(|l| l.contains("path=/up") && l.contains("aborted=true")),
        "{log}"
    );
    assert!(!s.dir().join("home/up").exists());
}

#[test]
fn check_config_refuses_bad_overload_settings() {
    let dir = tempfile::tempdir().unwrap();
    let hash = hash_password("pw");
    for (setting, section, key) in [
        (
            "max_connections_per_ip = 0",
            "[[bindings]]",
            "bindings[0].max_connections_per_ip",
        ),
        (
            "keepalive_timeout = \"0s\"",
            "[[bindings]]",
            "bindings[0].keepalive_timeout",
        ),
        (
            "min_body_rate = \"fast\"",
            "[[bindings]]",
            "bindings[0].min_body_rate",
        ),
        (
            "max_instances_per_ip = 0",
            "[sandbox]",
            "sandbox.max_instances_per_ip",
        ),
        ("instance_wait = -1", "[sandbox]", "sandbox.instance_wait"),
    ] {
        let text = format!(
            "[sandbox]\n{sandbox}\n[[bindings]]\nlisten = \"127.0.0.1:0\"\n{binding}\n\
             [[users]]\nname = \"u\"\npassword_hash = \"{hash}\"\n\
             home = {{ backend = \"local\", path = \"home\" }}\n",
            sandbox = if section == "[sandbox]" { setting } else { "" },
            binding = if section == "[[bindings]]" {
                setting
            } else {
                ""
            },
        );
        let file = dir.path().join("edgedav.toml");
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new(binary())
            .arg("check-config")
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{setting}: {stderr}");
        assert!(stderr.contains(key), "{setting}: {stderr}");
    }
}
