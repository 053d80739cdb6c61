//! Harness for the end-to-end tests in `tests/tests/`.
//!
//! [`Server::start`] runs the real `edgedav` binary on a fresh temporary root
//! and a free port on 127.0.0.1; the process is killed when the [`Server`] is
//! dropped. Requests go through reqwest (blocking) or, for what reqwest would
//! normalise away (`..` segments), through [`Server::raw`] on a plain socket.
//! [`Handler::start`] runs the handler in this process over its in-memory
//! store instead, for protocol semantics; both are a [`Dav`], whose
//! requests and helpers the tests share.
//! [`Xml`] is a tiny namespace-aware DOM, enough to check multistatus bodies.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use reqwest::blocking::{Body, Client, RequestBuilder};
pub use reqwest::header::HeaderMap;

mod dav;
mod ext4;
mod http;
mod postgres;
mod server;
mod xml;

pub use self::dav::*;
pub use self::ext4::*;
pub use self::http::*;
pub use self::postgres::*;
pub use self::server::*;
pub use self::xml::*;

/// Deterministic pseudo-random bytes (xorshift), for large bodies.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// An HTTP date `secs` seconds from now (negative: in the past).
pub fn http_date_from_now(secs: i64) -> String {
    let now = std::time::SystemTime::now();
    let t = if secs >= 0 {
        now + Duration::from_secs(secs as u64)
    } else {
        now - Duration::from_secs((-secs) as u64)
    };
    httpdate::fmt_http_date(t)
}

pub fn parse_http_date(s: &str) -> Option<std::time::SystemTime> {
    httpdate::parse_http_date(s).ok()
}

/// Reports a test that cannot run here (its server or tools are missing).
/// The notice goes straight to stderr, which the harness does not capture,
/// so it shows even for a passing test. Under `EDGEDAV_REQUIRE_ALL=1` (set
/// by `scripts/test.sh`, which provides everything) a skip is a failure.
pub fn skip(notice: &str) {
    if std::env::var_os("EDGEDAV_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("EDGEDAV_REQUIRE_ALL=1 but this test would be skipped: {notice}");
    }
    // One write, so notices of tests running in parallel do not interleave.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_resolves_namespaces() {
        let x = Xml::parse(
            r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/a%20b</d:href>
<d:propstat><d:prop><x:p xmlns:x="urn:x" a="1">v &amp; w</x:p><getetag xmlns="DAV:">"e"</getetag></d:prop>
<d:status>HTTP/1.1 200 OK</d:status></d:propstat>
<d:propstat><d:prop><y:q xmlns:y="urn:y"/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>
</d:response></d:multistatus>"#,
        )
        .unwrap();
        assert!(x.is(DAV, "multistatus"));
        let r = MsResponse::from_xml(x.child(DAV, "response").unwrap());
        assert_eq!(r.path(), "/a b");
        assert_eq!(r.prop("urn:x", "p").unwrap().0, 200);
        assert_eq!(r.prop("urn:x", "p").unwrap().1.all_text(), "v & w");
        assert_eq!(r.prop("urn:x", "p").unwrap().1.attr("a"), Some("1"));
        assert_eq!(r.prop_ok(DAV, "getetag").all_text(), "\"e\"");
        assert_eq!(r.prop("urn:y", "q").unwrap().0, 404);
    }

    #[test]
    fn xml_rejects_garbage() {
        assert!(Xml::parse("<a><b></a>").is_err());
        assert!(Xml::parse("<a>").is_err());
        assert!(Xml::parse("<p:a/>").is_err());
    }

    #[test]
    fn hrefs_and_decoding() {
        assert_eq!(href_path("http://127.0.0.1:1/x/%E2%9C%93/"), "/x/✓/");
        assert_eq!(href_path("http://h"), "/");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("100%25"), "100%");
    }

    #[test]
    fn raw_responses() {
        let mut r = std::io::Cursor::new(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        );
        let a = read_raw_response(&mut r, false).unwrap();
        assert_eq!((a.status, a.text().as_str()), (200, "abcde"));
        let b = read_raw_response(&mut r, false).unwrap();
        assert_eq!(b.status, 204);
    }
}
