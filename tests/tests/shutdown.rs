//! Graceful shutdown: SIGTERM stops accepting, lets in-flight requests
//! finish within `shutdown_grace`, then exits; an upload cut off by the
//! deadline is discarded, so the file is either the old one or the new one,
//! never a mix, and no temporary file is left behind.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use edgedav_tests::*;

const OLD: &[u8] = b"the old content, complete";
const NEW_LEN: usize = 256 * 1024;

fn start() -> Server {
    let hash = hash_password("pw");
    Server::start_config_with(
        &format!(
            r#"
[server]
shutdown_grace = "1500ms"

[[bindings]]
listen = "127.0.0.1:0"

[[users]]
name = "u"
password_hash = "{hash}"
home = {{ backend = "local", path = "{{dir}}/home" }}
"#
        ),
        |dir| {
            std::fs::create_dir_all(dir.join("home")).unwrap();
            std::fs::write(dir.join("home/f.bin"), OLD).unwrap();
        },
    )
}

/// Starts a PUT of NEW_LEN bytes and sends the first half of the body.
fn start_upload(s: &Server) -> TcpStream {
    // Log in once first, so the upload's login is a users-cache hit.
    assert_eq!(s.req_as("u", "pw", "GET", "/f.bin").exec().body, OLD);
    let mut conn = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "PUT /f.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dTpwdw==\r\nContent-Length: {NEW_LEN}\r\n\r\n"
    )
    .unwrap();
    conn.write_all(&vec![b'N'; NEW_LEN / 2]).unwrap();
    conn.flush().unwrap();
    // Let the server authenticate and start streaming into storage.
    std::thread::sleep(Duration::from_millis(500));
    conn
}

fn leftovers(s: &Server) -> Vec<String> {
    std::fs::read_dir(s.dir().join("home"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".edgedav" && n != "f.bin")
        .collect()
}

#[test]
fn an_upload_cut_off_by_shutdown_leaves_the_old_file() {
    let mut s = start();
    let _conn = start_upload(&s);
    let started = Instant::now();
    s.signal(libc::SIGTERM);

    // New connections are refused while the upload drains.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(("127.0.0.1", s.port)).is_err(),
        "still accepting after SIGTERM"
    );

    // The client never sends the rest: the server gives up after the grace period.
    let status = s
        .wait_exit(Duration::from_secs(10))
        .expect("the server exits");
    assert!(status.success(), "{status:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(8),
        "{took:?}"
    );

    assert_eq!(
        std::fs::read(s.dir().join("home/f.bin")).unwrap(),
        OLD,
        "old content intact"
    );
    assert!(
        leftovers(&s).is_empty(),
        "temporary files left: {:?}",
        leftovers(&s)
    );
    assert!(s.log().contains("gave up waiting"), "{}", s.log());
}

#[test]
fn an_upload_that_finishes_within_the_grace_period_is_committed() {
    let mut s = start();
    let mut conn = start_upload(&s);
    s.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    conn.write_all(&vec![b'N'; NEW_LEN - NEW_LEN / 2]).unwrap();
    let response = read_raw_response(&mut BufReader::new(&conn), false).unwrap();
    assert_eq!(response.status, 204, "{}", response.head);

    let status = s
        .wait_exit(Duration::from_secs(10))
        .expect("the server exits");
    assert!(status.success(), "{status:?}");
    assert_eq!(
        std::fs::read(s.dir().join("home/f.bin")).unwrap(),
        vec![b'N'; NEW_LEN]
    );
    assert!(leftovers(&s).is_empty(), "{:?}", leftovers(&s));
}

#[test]
fn sigterm_with_nothing_in_flight_exits_at_once() {
    let mut s = start();
    assert_eq!(s.req_as("u", "pw", "GET", "/f.bin").exec().body, OLD);
    let started = Instant::now();
    s.signal(libc::SIGTERM);
    let status = s
        .wait_exit(Duration::from_secs(5))
        .expect("the server exits");
    assert!(status.success());
    // An idle keep-alive connection does not hold the shutdown up.
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
}
