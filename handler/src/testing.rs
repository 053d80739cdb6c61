//! The handler answering whole requests against the in-memory backend: for
//! the unit tests of the methods and of the web interface, and (with the
//! `testing` feature) for the protocol tests of `tests/`, which run the
//! same requests in-process instead of through a server process.

use crate::backend::{
    Config, Env, MemberError, Metadata, Opened, Page, Property, PropertyChange, Space, Storage,
    StorageResult, WriteOptions, Writer,
};
use crate::http::{Request, Response};
use crate::memory::{MemoryLocks, MemoryStorage};

pub struct Server {
    pub storage: MemoryStorage,
    pub locks: MemoryLocks,
    pub config: Config,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
}

/// What a client of [`exchange`] got.
pub struct Exchanged {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, or why it was cut short.
    pub body: Result<Vec<u8>, String>,
}

impl Exchanged {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
}

fn header_in<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    pub fn new() -> Self {
        Self {
            storage: MemoryStorage::new(),
            locks: MemoryLocks::default(),
            config: Config::default(),
        }
    }

    pub fn send(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let (status, headers, body) = self.respond(method, target, headers, body.as_bytes());
        Reply {
            status,
            headers,
            body: String::from_utf8(body).expect("utf-8 body"),
        }
    }

    /// The status, headers and body bytes of one whole request.
    pub fn respond(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let got = exchange(&self.env(), method, target, headers, body);
        (got.status, got.headers, got.body.expect("body"))
    }

    /// What the handler runs against: this server's store, locks and
    /// settings.
    pub fn env(&self) -> Env<'_> {
        Env {
            storage: &self.storage,
            locks: &self.locks,
            config: &self.config,
        }
    }

    pub fn put(&self, target: &str, body: &str) -> u16 {
        self.send("PUT", target, &[], body).status
    }

    pub fn get(&self, target: &str) -> Reply {
        self.send("GET", target, &[], "")
    }

    /// MKCOL without a body, PUT with the one-byte body `x`.
    pub fn expect(&self, method: &str, target: &str, status: u16) {
        let body = if method == "PUT" { "x" } else { "" };
        let reply = self.send(method, target, &[], body);
        assert_eq!(reply.status, status, "{method} {target}: {}", reply.body);
    }
}

/// A request as a client sends it to `localhost`, with `Content-Length`
/// when it has a body.
pub fn request<'b>(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &'b [u8],
) -> Request<'b> {
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    if !body.is_empty() {
        all.push(("Content-Length".into(), body.len().to_string()));
    }
    Request {
        method: method.into(),
        target: target.into(),
        authority: Some("localhost".into()),
        headers: all,
        body: Box::new(body),
    }
}

/// One whole request to the handler in `env`.
pub fn exchange(
    env: &Env<'_>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Exchanged {
    let response: Response<'_> = crate::handle(env, request(method, target, headers, body));
    let (status, headers) = (response.status, response.headers.clone());
    let mut out = Vec::new();
    let body = response.write_body(env.storage, &mut out).map(|()| out);
    Exchanged {
        status,
        headers,
        body,
    }
}

/// A store that calls `before` ahead of each storage call, with the call's
/// name and the store underneath: how a unit test puts another client's
/// change between two calls of one request.
pub struct Interposed<F> {
    pub inner: MemoryStorage,
    pub before: F,
}

impl<F: Fn(&'static str, &MemoryStorage)> Interposed<F> {
    fn on(&self, call: &'static str) -> &MemoryStorage {
        (self.before)(call, &self.inner);
        &self.inner
    }
}

impl<F: Fn(&'static str, &MemoryStorage)> Storage for Interposed<F> {
    fn stat(&self, path: &str) -> StorageResult<Metadata> {
        self.on("stat").stat(path)
    }
    fn list_members(&self, path: &str, cursor: Option<&str>, limit: u32) -> StorageResult<Page> {
        self.on("list_members").list_members(path, cursor, limit)
    }
    fn open_read(&self, path: &str, offset: u64, length: Option<u64>) -> StorageResult<Opened> {
        self.on("open_read").open_read(path, offset, length)
    }
    fn open_write(
        &self,
        path: &str,
        options: &WriteOptions,
    ) -> StorageResult<Box<dyn Writer + '_>> {
        self.on("open_write").open_write(path, options)
    }
    fn create_collection(&self, path: &str) -> StorageResult<()> {
        self.on("create_collection").create_collection(path)
    }
    fn delete(&self, path: &str) -> StorageResult<Vec<MemberError>> {
        self.on("delete").delete(path)
    }
    fn copy(&self, s: &str, d: &str, r: bool, o: bool) -> StorageResult<Vec<MemberError>> {
        self.on("copy").copy(s, d, r, o)
    }
    fn rename(&self, s: &str, d: &str, o: bool) -> StorageResult<Vec<MemberError>> {
        self.on("rename").rename(s, d, o)
    }
    fn get_properties(&self, path: &str) -> StorageResult<Vec<Property>> {
        self.on("get_properties").get_properties(path)
    }
    fn patch_properties(&self, path: &str, changes: &[PropertyChange]) -> StorageResult<()> {
        self.on("patch_properties").patch_properties(path, changes)
    }
    fn space_usage(&self, path: &str) -> StorageResult<Space> {
        self.on("space_usage").space_usage(path)
    }
}

/// Stores `content` at `path` as a whole write does.
pub fn store(storage: &MemoryStorage, path: &str, content: &[u8]) {
    let mut writer = storage
        .open_write(path, &WriteOptions::default())
        .expect("open-write");
    writer.write(content).expect("write");
    writer.commit().expect("commit");
}
