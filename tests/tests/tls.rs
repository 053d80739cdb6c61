//! TLS bindings with HTTP/2 negotiated by ALPN (checked with `curl --http2`),
//! h2c on a plain binding, big downloads over each, and certificates
//! reloaded on SIGHUP.
//!
//! The certificates are self-signed, generated here with rcgen.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use edgedav_tests::*;

fn write_cert(dir: &Path, common_name: &str) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    // Write the key first: a reload must never see a new certificate with the old key.
    std::fs::write(dir.join("key.pem.new"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("cert.pem.new"), cert.pem()).unwrap();
    std::fs::rename(dir.join("key.pem.new"), dir.join("key.pem")).unwrap();
    std::fs::rename(dir.join("cert.pem.new"), dir.join("cert.pem")).unwrap();
}

/// Runs curl; returns (stdout, stderr).
fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl is needed for the TLS tests (apt-get install curl)");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Uploads `file` to `url` as user `u` (`flag` picks the HTTP version);
/// returns the status.
fn upload(flag: &str, file: &Path, url: &str) -> String {
    let file = file.to_str().unwrap();
    let args = ["-k", flag, "-u", "u:pw", "-T", file, "-o", "/dev/null"];
    curl(&[&args[..], &["-w", "%{http_code}", url]].concat()).0
}

fn start() -> Server {
    let hash = hash_password("pw");
    Server::start_config_with(
        &format!(
            r#"
[admin]
listen = "127.0.0.1:0"

[[bindings]]
listen = "127.0.0.1:0"
tls = {{ cert_file = "cert.pem", key_file = "key.pem" }}

[[bindings]]
listen = "127.0.0.1:0"

[[bindings]]
listen = "127.0.0.1:0"
tls = {{ cert_file = "cert.pem", key_file = "key.pem" }}
http2 = false

[[users]]
name = "u"
password_hash = "{hash}"
home = {{ backend = "local", path = "home" }}
"#
        ),
        |dir| write_cert(dir, "edgedav-one"),
    )
}

#[test]
fn tls_negotiates_http2_and_serves_webdav() {
    let s = start();
    let https = &s.urls[0];
    assert!(https.starts_with("https://"), "{https}");
    let version = |url: &str, flag: &str| {
        curl(&[
            "-k",
            flag,
            "-u",
            "u:pw",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            url,
        ])
        .0
    };
    assert_eq!(version(&format!("{https}/"), "--http2"), "2");
    assert_eq!(version(&format!("{https}/"), "--http1.1"), "1.1");
    // h2c with prior knowledge on the plain binding.
    assert_eq!(
        version(&format!("{}/", s.urls[1]), "--http2-prior-knowledge"),
        "2"
    );
    // A binding with http2 = false offers only HTTP/1.1.
    assert_eq!(version(&format!("{}/", s.urls[2]), "--http2"), "1.1");

    // WebDAV over HTTP/2 + TLS.
    let file = s.dir().join("upload.txt");
    std::fs::write(&file, "over h2").unwrap();
    assert_eq!(upload("--http2", &file, &format!("{https}/h2.txt")), "201");
    let (body, _) = curl(&["-k", "--http2", "-u", "u:pw", &format!("{https}/h2.txt")]);
    assert_eq!(body, "over h2");
    let (code, _) = curl(&[
        "-k",
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{https}/h2.txt"),
    ]);
    assert_eq!(code, "401", "no credentials over h2");
}

/// The server's count of body bytes sent from the file unread.
fn unread_bytes(s: &Server) -> f64 {
    s.metric("edgedav_bytes_sent_unread_total")
        .expect("the unread bytes counter")
}

/// A download big enough that the local store's chunks are sent from the
/// file on plain HTTP/1.1 (`net/sendfile.rs`), without being read
/// (`runtime/file_splice.rs`): over TLS and h2 the same chunks are read
/// and go through as bytes in memory, and every way gets the file.
#[test]
fn big_downloads_arrive_whole_over_every_protocol() {
    let s = start();
    let data = pseudo_random(3 << 20, 5);
    let file = s.dir().join("big.bin");
    std::fs::write(&file, &data).unwrap();
    let (https, plain) = (&s.urls[0], &s.urls[1]);
    assert_eq!(
        upload("--http1.1", &file, &format!("{https}/big.bin")),
        "201"
    );
    let got = s.dir().join("got.bin");
    for (base, flag) in [
        (https, "--http1.1"),
        (https, "--http2"),
        (plain, "--http1.1"),
        (plain, "--http2-prior-knowledge"),
    ] {
        let _ = std::fs::remove_file(&got);
        let unread_before = unread_bytes(&s);
        let (version, _) = curl(&[
            "-k",
            flag,
            "-u",
            "u:pw",
            "-o",
            got.to_str().unwrap(),
            "-w",
            "%{http_version}",
            &format!("{base}/big.bin"),
        ]);
        let expected = if flag == "--http1.1" { "1.1" } else { "2" };
        assert_eq!(version, expected, "{base} {flag}");
        assert!(
            std::fs::read(&got).unwrap() == data,
            "{base} {flag}: the download differs"
        );
        let unread = unread_bytes(&s) - unread_before;
        let plain_http1 = base == plain && flag == "--http1.1";
        let expected = if plain_http1 { data.len() as f64 } else { 0.0 };
        assert_eq!(unread, expected, "{base} {flag}: bytes sent unread");
    }
    // A range starts its chunks in the middle of the file.
    let _ = std::fs::remove_file(&got);
    let (code, _) = curl(&[
        "-u",
        "u:pw",
        "-r",
        "100001-2500000",
        "-o",
        got.to_str().unwrap(),
        "-w",
        "%{http_code}",
        &format!("{plain}/big.bin"),
    ]);
    assert_eq!(code, "206");
    assert!(std::fs::read(&got).unwrap() == data[100_001..=2_500_000]);
}

#[test]
fn sighup_reloads_the_certificate() {
    let s = start();
    let https = format!("{}/", s.urls[0]);
    let subject = || curl(&["-k", "-v", "-u", "u:pw", "-o", "/dev/null", &https]).1;
    assert!(subject().contains("CN=edgedav-one"), "{}", subject());

    write_cert(s.dir(), "edgedav-two");
    s.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = subject();
        if seen.contains("CN=edgedav-two") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "certificate not reloaded:\n{seen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(s.log().contains("configuration reloaded"), "{}", s.log());

    // A broken certificate is refused; the running one stays.
    std::fs::write(s.dir().join("cert.pem"), "not a certificate").unwrap();
    s.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.log().contains("reload refused") {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(subject().contains("CN=edgedav-two"));
}
