//! Rate limiting (429 + Retry-After under a bounded burst), the defender
//! (a ban after failed logins, as 403 or a dropped connection), trusted
//! proxies' X-Forwarded-For, and per-user bandwidth limits (which a guest
//! CPU-time deadline does not cut short).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use edgedav_tests::*;

fn user(name: &str, hash: &str, extra: &str) -> String {
    format!(
        r#"
[[users]]
name = "{name}"
password_hash = "{hash}"
home = {{ backend = "local", path = "{{dir}}/homes/{name}" }}
{extra}
"#
    )
}

#[test]
fn a_burst_beyond_the_rate_limit_gets_429_with_retry_after() {
    let hash = hash_password("pw");
    let s = Server::start_config(&format!(
        r#"
[[bindings]]
listen = "127.0.0.1:0"
rate_limit = {{ requests_per_second = 2, burst = 5 }}

[[bindings]]
listen = "127.0.0.1:0"
rate_limit = {{ requests_per_second = 1, burst = 2 }}
trusted_proxies = ["127.0.0.1"]
{}"#,
        user("u", &hash, "")
    ));
    // A bounded burst: 20 requests as fast as possible.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..20 {
        let r = s.req_as("u", "pw", "GET", "/").exec();
        if r.status == 429 {
            retry_after = r.header("Retry-After");
        }
        statuses.push(r.status);
    }
    assert!(
        statuses[..5].iter().all(|s| *s == 200),
        "the burst passes: {statuses:?}"
    );
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited >= 10, "most of the rest is refused: {statuses:?}");
    let retry: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        s.req_as("u", "pw", "GET", "/").exec().status,
        200,
        "tokens refill"
    );

    // Behind a trusted proxy each forwarded client has its own bucket...
    let proxied = &s.urls[1];
    for i in 0..6 {
        let r = s
            .client()
            .get(format!("{proxied}/"))
            .basic_auth("u", Some("pw"))
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "client 203.0.113.{i}");
    }
    // ...while one forwarded client is limited.
    let codes: Vec<u16> = (0..6)
        .map(|_| {
            s.client()
                .get(format!("{proxied}/"))
                .basic_auth("u", Some("pw"))
                .header("X-Forwarded-For", "198.51.100.7")
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert!(codes.contains(&429), "{codes:?}");
    // The first binding does not trust anyone: a forged header changes nothing.
    std::thread::sleep(Duration::from_millis(2600));
    let codes: Vec<u16> = (0..10)
        .map(|i| {
            s.req_as("u", "pw", "GET", "/")
                .header("X-Forwarded-For", format!("192.0.2.{i}"))
                .exec()
                .status
        })
        .collect();
    assert!(
        codes.contains(&429),
        "forged X-Forwarded-For must not dodge the limit: {codes:?}"
    );
}

#[test]
fn repeated_failed_logins_get_the_ip_banned() {
    let hash = hash_password("pw");
    let s = Server::start_config(&format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[[bindings]]
listen = "127.0.0.1:0"
defender = {{ max_failures = 3, window = "1m", ban_time = "3s", action = "forbid" }}

[[bindings]]
listen = "127.0.0.1:0"
defender = {{ max_failures = 2, window = "1m", ban_time = "1h", action = "drop" }}
{}"#,
        user("u", &hash, "")
    ));
    // Good logins are not failures.
    for _ in 0..5 {
        assert_eq!(s.req_as("u", "pw", "GET", "/").exec().status, 200);
    }
    for attempt in 1..=3 {
        let r = s.req_as("u", "wrong", "GET", "/").exec();
        assert_eq!(r.status, 401, "failure {attempt}");
    }
    // Banned: even the right password is refused.
    let r = s.req_as("u", "pw", "GET", "/").exec();
    assert_eq!(r.status, 403, "banned: {}", r.text());
    assert_eq!(s.req("OPTIONS", "/").exec().status, 403);
    let metrics = s
        .client()
        .get(format!("{}/metrics", s.admin.as_ref().unwrap()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("edgedav_bans_total 1"), "{metrics}");
    assert!(metrics.contains("edgedav_banned_ips 1"), "{metrics}");
    // The ban ends.
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(s.req_as("u", "pw", "GET", "/").exec().status, 200);

    // With action = "drop" a banned client's connections are closed unanswered.
    let dropping = &s.urls[1];
    let port: u16 = dropping.rsplit(':').next().unwrap().parse().unwrap();
    for _ in 0..2 {
        let r = s
            .client()
            .get(format!("{dropping}/"))
            .basic_auth("u", Some("bad"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
    }
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dTpwdw==\r\n\r\n");
    let mut buf = Vec::new();
    let read = conn.read_to_end(&mut buf);
    assert!(
        read.is_err() || buf.is_empty(),
        "a banned client got an answer: {:?}",
        String::from_utf8_lossy(&buf)
    );
}

#[test]
fn bandwidth_limits_slow_transfers_without_tripping_the_cpu_deadline() {
    let hash = hash_password("pw");
    let s = Server::start_config(&format!(
        r#"
[sandbox]
max_cpu_time = "1s"

[[bindings]]
listen = "127.0.0.1:0"
{}{}"#,
        user(
            "slow",
            &hash,
            "upload_bandwidth = \"100KiB\"\ndownload_bandwidth = \"100KiB\""
        ),
        user("fast", &hash, "")
    ));
    let body = vec![b'z'; 300 * 1024];

    let started = Instant::now();
    s.req_as("slow", "pw", "PUT", "/f")
        .body(body.clone())
        .exec()
        .expect(&[201], "slow PUT");
    let up = started.elapsed();
    let started = Instant::now();
    let r = s.req_as("slow", "pw", "GET", "/f").exec();
    let down = started.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body.len(),
        body.len(),
        "the whole file, past the 1 s CPU deadline"
    );
    // 100 KiB pass at once, the other 200 KiB at 100 KiB/s.
    assert!(up >= Duration::from_millis(1700), "upload took {up:?}");
    assert!(
        down >= Duration::from_millis(1700),
        "download took {down:?}"
    );
    assert!(up < Duration::from_secs(10) && down < Duration::from_secs(10));

    // Another user is not slowed down.
    let started = Instant::now();
    s.req_as("fast", "pw", "PUT", "/f")
        .body(body.clone())
        .exec()
        .expect(&[201], "fast PUT");
    assert_eq!(
        s.req_as("fast", "pw", "GET", "/f").exec().body.len(),
        body.len()
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn connection_limit_and_idle_and_header_timeouts() {
    let hash = hash_password("pw");
    let s = Server::start_config(&format!(
        r#"
[[bindings]]
listen = "127.0.0.1:0"
max_connections = 2
idle_timeout = "1s"
header_read_timeout = "1s"
{}"#,
        user("u", &hash, "")
    ));
    let open = || {
        let c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c
    };
    let closed_within = |mut c: TcpStream, limit: Duration| {
        let started = Instant::now();
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).unwrap_or(0);
        assert_eq!(
            n,
            0,
            "expected the server to close: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        let took = started.elapsed();
        assert!(took < limit, "closed after {took:?}");
        took
    };
    // Two connections fill the binding; a third is answered 503 and closed.
    let first = open();
    let second = open();
    let third = open();
    let refused = read_raw_response(&mut std::io::BufReader::new(&third), false).unwrap();
    assert_eq!(refused.status, 503, "{}", refused.head);
    closed_within(third, Duration::from_millis(500));
    // A connection that sends nothing is closed by the timeouts.
    let took = closed_within(first, Duration::from_secs(4));
    assert!(took >= Duration::from_millis(700), "{took:?}");
    // A client that starts a request and stalls is closed too.
    let mut stalled = second;
    stalled.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    closed_within(stalled, Duration::from_secs(4));
    // Free slots again.
    assert_eq!(s.req_as("u", "pw", "GET", "/").exec().status, 200);
}
