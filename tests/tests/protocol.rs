//! Transport: HTTP/2 prior knowledge (h2c), keep-alive, concurrency, unknown methods.

use edgedav_tests::*;
use std::io::{BufReader, Write};
use std::net::TcpStream;

#[test]
fn http2_prior_knowledge() {
    let s = Server::start();
    let c = Client::builder().http2_prior_knowledge().build().unwrap();
    let r = c
        .request(reqwest::Method::OPTIONS, s.url("/"))
        .send()
        .expect("h2c OPTIONS");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert!(r.status().is_success(), "h2c OPTIONS: {}", r.status());
    assert!(r.headers().get("dav").is_some(), "no DAV header over h2");

    let data = pseudo_random(200_000, 9);
    let r = c
        .put(s.url("/h2.bin"))
        .body(data.clone())
        .send()
        .expect("h2c PUT");
    assert_eq!(r.status().as_u16(), 201);
    let r = c.get(s.url("/h2.bin")).send().expect("h2c GET");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.bytes().unwrap().to_vec() == data, "h2c body differs");

    let m = reqwest::Method::from_bytes(b"PROPFIND").unwrap();
    let r = Resp::read(
        "h2c PROPFIND".into(),
        c.request(m, s.url("/"))
            .header("Depth", "1")
            .send()
            .expect("h2c PROPFIND"),
    );
    r.expect(&[207], "h2c PROPFIND");
    assert!(find_response(&r.multistatus(), "/h2.bin").is_some());
}

#[test]
fn http2_concurrent_streams() {
    let s = Server::start();
    let c = Client::builder().http2_prior_knowledge().build().unwrap();
    std::thread::scope(|sc| {
        for t in 0..8 {
            let c = c.clone();
            let s = &s;
            sc.spawn(move || {
                for i in 0..10 {
                    let path = format!("/s{t}-{i}.txt");
                    let r = c.put(s.url(&path)).body(path.clone()).send().unwrap();
                    assert_eq!(r.status().as_u16(), 201, "PUT {path}");
                    let r = c.get(s.url(&path)).send().unwrap();
                    assert_eq!(r.text().unwrap(), path);
                }
            });
        }
    });
}

#[test]
fn keep_alive_many_requests_on_one_connection() {
    let s = Server::start();
    s.create("/k.txt", "keep-alive");
    let sock = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut w = sock.try_clone().unwrap();
    let mut r = BufReader::new(sock);
    for i in 0..50 {
        let req = match i % 3 {
            0 => format!("GET /k.txt HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", s.port),
            1 => format!(
                "PROPFIND /k.txt HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nDepth: 0\r\nContent-Length: 0\r\n\r\n",
                s.port
            ),
            _ => format!(
                "PUT /k{i}.txt HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 3\r\n\r\nabc",
                s.port
            ),
        };
        w.write_all(req.as_bytes()).unwrap();
        let resp = read_raw_response(&mut r, false)
            .unwrap_or_else(|e| panic!("request {i} on the same connection: {e}"));
        let want = [200, 207, 201][i % 3];
        assert_eq!(resp.status, want, "request {i}: {}", resp.head);
        assert!(
            !resp.head.to_ascii_lowercase().contains("connection: close"),
            "server closed the connection after request {i}"
        );
        if i % 3 == 0 {
            assert_eq!(resp.text(), "keep-alive");
        }
    }
}

#[test]
fn keep_alive_after_an_error_with_an_unread_body() {
    // A request refused before its body is read must not desynchronise the
    // connection: the next request on it still gets its own answer.
    let s = Server::start();
    let sock = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut w = sock.try_clone().unwrap();
    let mut r = BufReader::new(sock);
    let body = "x".repeat(10_000);
    w.write_all(
        format!(
            "PUT /missing/parent.txt HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n{body}",
            s.port,
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let first = read_raw_response(&mut r, false).unwrap();
    assert_eq!(first.status, 409, "{}", first.head);
    if first
        .head
        .to_ascii_lowercase()
        .contains("connection: close")
    {
        return; // closing is a correct way to handle it
    }
    w.write_all(format!("OPTIONS / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", s.port).as_bytes())
        .unwrap();
    let second = read_raw_response(&mut r, false).unwrap();
    assert!(
        [200, 204].contains(&second.status),
        "second request: {}",
        second.head
    );
}

#[test]
fn many_requests_on_one_client() {
    let s = Server::start();
    for i in 0..100 {
        let p = format!("/m{}.txt", i % 20);
        let r = s.put(&p, format!("{i}"));
        r.expect(&[201, 200, 204], "PUT in a loop");
        assert_eq!(s.get(&p).text(), format!("{i}"));
    }
}

#[test]
fn concurrent_clients() {
    let s = Server::start();
    s.create_dir("/c/");
    std::thread::scope(|sc| {
        for t in 0..6 {
            let s = &s;
            sc.spawn(move || {
                for i in 0..15 {
                    let p = format!("/c/t{t}-{i}");
                    s.put(&p, p.clone()).expect(&[201], "concurrent PUT");
                    assert_eq!(s.get(&p).text(), p);
                    s.propfind(&p, "0", None)
                        .expect(&[207], "concurrent PROPFIND");
                }
            });
        }
    });
    let r = s.propfind("/c/", "1", None);
    assert_eq!(r.multistatus().len(), 1 + 6 * 15);
}

#[test]
fn concurrent_exclusive_locks_only_one_wins() {
    let s = Server::start();
    s.create("/race.txt", "x");
    let wins = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for _ in 0..8 {
            let (s, wins) = (&s, &wins);
            sc.spawn(move || {
                let r = s.lock("/race.txt", "exclusive", Some("0"));
                r.expect(&[200, 423], "racing LOCK");
                if r.status == 200 {
                    wins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(
        wins.into_inner(),
        1,
        "exactly one exclusive lock must be granted"
    );
}

#[test]
fn unknown_method_is_405_or_501() {
    let s = Server::start();
    s.req("FROBNICATE", "/")
        .exec()
        .expect(&[405, 501], "unknown method");
    // Methods of other DAV extensions that are not implemented.
    s.req("REPORT", "/").exec().expect(&[405, 501], "REPORT");
    s.req("SEARCH", "/").exec().expect(&[405, 501], "SEARCH");
}

#[test]
fn post_is_not_allowed_on_files() {
    let s = Server::start();
    s.create("/f.txt", "x");
    s.req("POST", "/f.txt")
        .body("data")
        .exec()
        .expect(&[405, 501], "POST");
    assert_eq!(s.get("/f.txt").text(), "x");
}
