//! Sending requests and reading responses, through reqwest or a raw socket.

use super::*;

/// Sends a request and reads the whole response.
pub trait Exec {
    fn exec(self) -> Resp;
}

impl Exec for RequestBuilder {
    fn exec(self) -> Resp {
        let (client, req) = self.build_split();
        let req = req.expect("request builds");
        let what = format!("{} {}", req.method(), req.url());
        match client.execute(req) {
            Ok(r) => Resp::read(what, r),
            Err(e) => panic!("{what}: request failed: {e:?}"),
        }
    }
}

/// A complete response.
#[derive(Debug)]
pub struct Resp {
    /// `METHOD URL`, for messages.
    pub what: String,
    pub status: u16,
    pub version: reqwest::Version,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn read(what: String, r: reqwest::blocking::Response) -> Resp {
        let status = r.status().as_u16();
        let version = r.version();
        let headers = r.headers().clone();
        let body = r
            .bytes()
            .unwrap_or_else(|e| panic!("{what}: reading body failed: {e:?}"))
            .to_vec();
        Resp {
            what,
            status,
            version,
            headers,
            body,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The header's value, if present (several values are joined with ", ").
    pub fn header(&self, name: &str) -> Option<String> {
        let vals: Vec<String> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if vals.is_empty() {
            None
        } else {
            Some(vals.join(", "))
        }
    }

    /// The header's value; panics with context when absent.
    pub fn must_header(&self, name: &str) -> String {
        self.header(name).unwrap_or_else(|| {
            panic!(
                "{}: no {name} header; status {}, headers {:?}",
                self.what, self.status, self.headers
            )
        })
    }

    /// Panics unless the status is one of `allowed`.
    pub fn expect(&self, allowed: &[u16], context: &str) -> &Resp {
        if !allowed.contains(&self.status) {
            panic!(
                "{context}: {} answered {}, expected one of {:?}\nheaders: {:?}\nbody:\n{}",
                self.what,
                self.status,
                allowed,
                self.headers,
                tail(&self.text(), 3000)
            );
        }
        self
    }

    pub fn xml(&self) -> Xml {
        Xml::parse(&self.text())
            .unwrap_or_else(|e| panic!("{}: body is not XML ({e}):\n{}", self.what, self.text()))
    }

    /// The responses of a 207 multistatus body.
    pub fn multistatus(&self) -> Vec<MsResponse> {
        let x = self.xml();
        assert!(
            x.is(DAV, "multistatus"),
            "{}: root element is not DAV:multistatus:\n{}",
            self.what,
            self.text()
        );
        x.children_named(DAV, "response")
            .map(MsResponse::from_xml)
            .collect()
    }

    /// The token of the `Lock-Token` header, without the angle brackets.
    pub fn lock_token(&self) -> String {
        let h = self.must_header("Lock-Token");
        let t = h.trim();
        assert!(
            t.starts_with('<') && t.ends_with('>'),
            "Lock-Token is not a Coded-URL: {h:?}"
        );
        t[1..t.len() - 1].to_string()
    }

    /// The `ETag` header (with its quotes).
    pub fn etag(&self) -> String {
        self.must_header("ETag")
    }
}

/// A response read from a raw socket.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one HTTP/1.1 response (Content-Length, chunked or until close).
pub fn read_raw_response<R: BufRead>(r: &mut R, head_only: bool) -> Result<RawResp, String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection closed in the head: {head:?}"));
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head.push_str(&line);
    }
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        // no body
    } else if header("Transfer-Encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|e| format!("bad chunk size {size:?}: {e}"))?;
            if size == 0 {
                // trailers
                loop {
                    let mut l = String::new();
                    let n = r.read_line(&mut l).map_err(|e| e.to_string())?;
                    if n == 0 || l == "\r\n" || l == "\n" {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size];
            r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            body.extend_from_slice(&chunk);
            let mut crlf = String::new();
            r.read_line(&mut crlf).map_err(|e| e.to_string())?;
        }
    } else if let Some(len) = header("Content-Length") {
        let len: usize = len
            .parse()
            .map_err(|e| format!("bad Content-Length: {e}"))?;
        body.resize(len, 0);
        r.read_exact(&mut body).map_err(|e| e.to_string())?;
    } else {
        r.read_to_end(&mut body).map_err(|e| e.to_string())?;
    }
    Ok(RawResp { status, head, body })
}

/// Sends a PUT of `path` announcing `announced` bytes, sends `sent` of them
/// (fewer) and stops sending, and returns whatever the server answers before
/// it closes: a body that breaks off, as a client that gives up mid-upload.
pub fn put_broken_off(port: u16, path: &str, announced: usize, sent: usize) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {announced}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    stream
        .write_all(&pseudo_random(sent, 5))
        .expect("send part of the body");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("stop sending");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    answer
}
