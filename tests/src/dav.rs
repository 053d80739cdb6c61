//! What a test talks WebDAV to, and the requests it sends, written once for
//! both kinds of target: the real server process ([`Server`], for wiring,
//! auth, limits, TLS, clients and the deployments) and the handler in this
//! process over its in-memory store ([`Handler`], for protocol semantics:
//! the same requests and answers, milliseconds instead of a process each).

use super::*;

/// One whole request, as a test builds it.
pub struct Request {
    pub method: String,
    /// Absolute path, possibly percent-encoded.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A WebDAV endpoint: sends requests, and knows its URLs (for
/// `Destination`). The helpers every test uses are written here once.
pub trait Dav {
    /// Sends a whole request and reads the whole response.
    fn send(&self, request: Request) -> Resp;

    /// Absolute URL of `path` (which starts with `/` and may be
    /// percent-encoded).
    fn url(&self, path: &str) -> String;

    /// A request with any method, to be completed with headers and a body
    /// and sent with [`Req::exec`].
    fn req(&self, method: &str, path: &str) -> Req<'_>
    where
        Self: Sized,
    {
        assert!(path.starts_with('/'), "paths start with /: {path:?}");
        Req {
            dav: self,
            request: Request {
                method: method.to_owned(),
                path: path.to_owned(),
                headers: Vec::new(),
                body: Vec::new(),
            },
        }
    }

    fn get(&self, path: &str) -> Resp
    where
        Self: Sized,
    {
        self.req("GET", path).exec()
    }

    fn head(&self, path: &str) -> Resp
    where
        Self: Sized,
    {
        self.req("HEAD", path).exec()
    }

    fn put(&self, path: &str, body: impl Into<Vec<u8>>) -> Resp
    where
        Self: Sized,
    {
        self.req("PUT", path).body(body).exec()
    }

    fn delete(&self, path: &str) -> Resp
    where
        Self: Sized,
    {
        self.req("DELETE", path).exec()
    }

    fn mkcol(&self, path: &str) -> Resp
    where
        Self: Sized,
    {
        self.req("MKCOL", path).exec()
    }

    /// PUT that must create (201) — for test setup.
    fn create(&self, path: &str, body: impl Into<Vec<u8>>)
    where
        Self: Sized,
    {
        self.put(path, body).expect(&[201], "setup PUT");
    }

    /// MKCOL that must succeed (201) — for test setup.
    fn create_dir(&self, path: &str)
    where
        Self: Sized,
    {
        self.mkcol(path).expect(&[201], "setup MKCOL");
    }

    /// PROPFIND with a Depth and an optional body.
    fn propfind(&self, path: &str, depth: &str, body: Option<&str>) -> Resp
    where
        Self: Sized,
    {
        let mut rb = self.req("PROPFIND", path).header("Depth", depth);
        if let Some(b) = body {
            rb = rb
                .header("Content-Type", "application/xml; charset=utf-8")
                .body(b);
        }
        rb.exec()
    }

    /// PROPFIND Depth 0 of the given properties (`(namespace, name)`), which
    /// must answer 207 with exactly one response.
    fn props(&self, path: &str, names: &[(&str, &str)]) -> MsResponse
    where
        Self: Sized,
    {
        let r = self.propfind(path, "0", Some(&propfind_prop(names)));
        r.expect(&[207], "PROPFIND prop");
        let mut ms = r.multistatus();
        assert_eq!(
            ms.len(),
            1,
            "one response expected for Depth 0:\n{}",
            r.text()
        );
        ms.remove(0)
    }

    /// PROPPATCH with a raw `propertyupdate` body.
    fn proppatch(&self, path: &str, body: &str) -> Resp
    where
        Self: Sized,
    {
        self.req("PROPPATCH", path)
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(body)
            .exec()
    }

    /// LOCK with a `lockinfo` body (scope `exclusive` or `shared`), an
    /// optional Depth header and a Timeout of 600 s.
    fn lock(&self, path: &str, scope: &str, depth: Option<&str>) -> Resp
    where
        Self: Sized,
    {
        let mut rb = self
            .req("LOCK", path)
            .header("Timeout", "Second-600")
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(lockinfo(scope, "mailto:tester@example.org"));
        if let Some(d) = depth {
            rb = rb.header("Depth", d);
        }
        rb.exec()
    }

    /// LOCK that must succeed; returns the lock token (without `<>`).
    fn lock_ok(&self, path: &str, scope: &str, depth: Option<&str>) -> String
    where
        Self: Sized,
    {
        let r = self.lock(path, scope, depth);
        r.expect(&[200, 201], "LOCK");
        r.lock_token()
    }

    /// COPY or MOVE to a path of this endpoint (sent as an absolute URI).
    fn copy_move(&self, method: &str, from: &str, to: &str, extra: &[(&str, &str)]) -> Resp
    where
        Self: Sized,
    {
        let mut rb = self.req(method, from).header("Destination", self.url(to));
        for (k, v) in extra {
            rb = rb.header(k, v);
        }
        rb.exec()
    }
}

/// A request being built (see [`Dav::req`]).
pub struct Req<'a> {
    dav: &'a dyn Dav,
    request: Request,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: impl AsRef<str>) -> Self {
        (self.request.headers).push((name.to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.request.body = body.into();
        self
    }

    pub fn exec(self) -> Resp {
        self.dav.send(self.request)
    }
}

/// The handler in this process over a fresh in-memory store (see the
/// module docs).
pub struct Handler(edgedav_handler::testing::Server);

impl Handler {
    pub fn start() -> Handler {
        Handler(edgedav_handler::testing::Server::new())
    }
}

impl Dav for Handler {
    fn send(&self, request: Request) -> Resp {
        let headers: Vec<(&str, &str)> = (request.headers.iter())
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let (status, reply_headers, body) =
            (self.0).respond(&request.method, &request.path, &headers, &request.body);
        let mut map = HeaderMap::new();
        for (name, value) in reply_headers {
            map.append(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                value.parse().expect("header value"),
            );
        }
        let body = if request.method == "HEAD" {
            Vec::new()
        } else {
            body
        };
        Resp {
            what: format!("{} {} (in-process)", request.method, request.path),
            status,
            version: reqwest::Version::HTTP_11,
            headers: map,
            body,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://localhost{path}")
    }
}
