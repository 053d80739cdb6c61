//! LOCK and UNLOCK (RFC 4918 §9.10-9.11). Conflict detection and expiry
//! live in the lock table behind the `locks` import; this module parses the
//! request and renders the result.

use super::{Depth, depth, request_path, require_parent, stat};
use crate::backend::{
    ActiveLock, Env, LockError, LockRequest, LockScope, StorageError, WriteOptions,
};
use crate::conditions::Preconditions;
use crate::error::{DavError, DavResult};
use crate::http::{Request, Response};
use crate::path::DavPath;
use crate::props::lockdiscovery;
use crate::xml::{self, XmlWriter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    pub scope: LockScope,
    /// The content of `DAV:owner`, as a self-contained fragment.
    pub owner: Option<String>,
}

pub fn parse_lockinfo(body: &[u8]) -> DavResult<LockInfo> {
    let root = xml::parse(body)?;
    if !root.is_dav("lockinfo") {
        return Err(DavError::bad_request("expected a DAV:lockinfo element"));
    }
    let scope = root
        .child_dav("lockscope")
        .and_then(|s| s.elements().next())
        .ok_or_else(|| DavError::bad_request("lockinfo needs a lockscope"))?;
    let scope = if scope.is_dav("exclusive") {
        LockScope::Exclusive
    } else if scope.is_dav("shared") {
        LockScope::Shared
    } else {
        return Err(DavError::bad_request("unknown lock scope"));
    };
    let write = root
        .child_dav("locktype")
        .and_then(|t| t.elements().next())
        .is_some_and(|t| t.is_dav("write"));
    if !write {
        return Err(DavError::bad_request("only write locks are supported"));
    }
    let owner = root.child_dav("owner").map(|o| o.inner_fragment());
    Ok(LockInfo { scope, owner })
}

/// The first usable value of a `Timeout` header (RFC 4918 §10.7); `None`
/// asks for an infinite lock.
pub fn parse_timeout(header: Option<&str>) -> Option<u32> {
    header?.split(',').map(str::trim).find_map(|t| {
        if t.eq_ignore_ascii_case("infinite") {
            Some(None)
        } else {
            t.strip_prefix("Second-")
                .and_then(|s| s.parse::<u64>().ok())
                .map(|s| Some(s.min(u32::MAX as u64) as u32))
        }
    })?
}

fn lock_response<'a>(status: u16, lock: &ActiveLock) -> Response<'a> {
    let mut w = XmlWriter::new();
    w.open_dav("prop");
    w.open_dav("lockdiscovery");
    w.raw(&lockdiscovery(std::slice::from_ref(lock)));
    w.close_dav("lockdiscovery");
    w.close_dav("prop");
    Response::new(status)
        .header("Lock-Token", format!("<{}>", lock.token))
        .xml(w.finish())
}

fn href_of(root: &str) -> String {
    DavPath::from_target(root)
        .map(|p| p.href(false))
        .unwrap_or_else(|_| root.to_owned())
}

pub fn lock<'a>(env: &'a Env<'a>, req: &mut Request<'_>) -> DavResult<Response<'a>> {
    let path = request_path(req)?;
    let timeout = parse_timeout(req.header("Timeout"));
    let preconditions = Preconditions::new(env, req.header("If"), req.authority.as_deref())?;
    let body = req.read_body(env.config.max_xml_body)?;

    if body.iter().all(u8::is_ascii_whitespace) {
        // A refresh: the If header names the lock.
        let tokens = preconditions.tokens();
        if tokens.is_empty() {
            return Err(DavError::bad_request(
                "a LOCK without a body refreshes a lock named in the If header",
            ));
        }
        let lock = env
            .locks
            .covering(path.as_str())?
            .into_iter()
            .find(|l| tokens.contains(&l.token))
            .ok_or_else(|| {
                DavError::condition(412, "lock-token-matches-request-uri", Vec::new())
            })?;
        preconditions.check_if(&path)?;
        let refreshed = env.locks.refresh(&lock.token, timeout)?;
        return Ok(lock_response(200, &refreshed));
    }

    let info = parse_lockinfo(&body)?;
    let deep = match depth(req, Depth::Infinity)? {
        Depth::Zero => false,
        Depth::Infinity => true,
        Depth::One => return Err(DavError::bad_request("LOCK Depth must be 0 or infinity")),
    };
    let existing = stat(env, &path)?;
    if existing.is_none() {
        require_parent(env, &path)?;
    }
    preconditions.check_if(&path)?;
    let request = LockRequest {
        root: path.as_str().to_owned(),
        scope: info.scope,
        deep,
        owner: info.owner,
        timeout,
    };
    let lock = env.locks.acquire(&request).map_err(|e| match e {
        LockError::Conflict(locks) => DavError::condition(
            423,
            "no-conflicting-lock",
            locks.iter().map(|l| href_of(&l.root)).collect(),
        ),
        other => other.into(),
    })?;
    if existing.is_some() {
        return Ok(lock_response(200, &lock));
    }
    // Locking an unmapped URL creates an empty resource (RFC 4918 §7.3),
    // create-only: a PUT (or anything) that created the resource since the
    // stat above must not be replaced by an empty file. Then the lock holds
    // on the existing resource, as if it had been there all along: 200.
    let options = WriteOptions {
        create_only: true,
        ..WriteOptions::default()
    };
    let created = env
        .storage
        .open_write(path.as_str(), &options)
        .and_then(|w| w.commit());
    match created {
        Ok(_) => Ok(lock_response(201, &lock)),
        Err(StorageError::AlreadyExists) => Ok(lock_response(200, &lock)),
        Err(e) => {
            let _ = env.locks.release(&lock.token);
            Err(e.into())
        }
    }
}

pub fn unlock<'a>(env: &'a Env<'a>, req: &Request<'_>) -> DavResult<Response<'a>> {
    let path = request_path(req)?;
    let token = req
        .header("Lock-Token")
        .and_then(|v| v.strip_prefix('<')?.strip_suffix('>'))
        .ok_or_else(|| DavError::bad_request("Lock-Token header missing or malformed"))?;
    if !env
        .locks
        .covering(path.as_str())?
        .iter()
        .any(|l| l.token == token)
    {
        return Err(DavError::condition(
            409,
            "lock-token-matches-request-uri",
            Vec::new(),
        ));
    }
    env.locks.release(token)?;
    Ok(Response::new(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lockinfo() {
        let info = parse_lockinfo(
            br#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>mailto:a@b</D:href></D:owner></D:lockinfo>"#,
        )
        .unwrap();
        assert_eq!(info.scope, LockScope::Shared);
        assert_eq!(
            info.owner.as_deref(),
            Some("<href xmlns=\"DAV:\">mailto:a@b</href>")
        );
        let no_type = br#"<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope></lockinfo>"#;
        assert_eq!(parse_lockinfo(no_type).unwrap_err().status, 400);
    }

    #[test]
    fn parses_timeouts() {
        assert_eq!(parse_timeout(Some("Second-60")), Some(60));
        assert_eq!(parse_timeout(Some("Infinite, Second-4100000000")), None);
        assert_eq!(parse_timeout(Some("Bogus, Second-5")), Some(5));
        assert_eq!(parse_timeout(None), None);
    }
}

#[cfg(test)]
mod race_tests {
    use super::*;
    use crate::backend::{Config, Locks, Storage};
    use crate::memory::{MemoryLocks, MemoryStorage};
    use crate::testing::{Interposed, store};
    use std::cell::Cell;

    #[test]
    fn lock_null_creation_never_replaces_a_concurrent_put() {
        // A PUT of `uploaded` lands just before the first `open-write`: in
        // the window between LOCK's stat and its creation of the lock-null
        // resource.
        let raced = Cell::new(false);
        let storage = Interposed {
            inner: MemoryStorage::new(),
            before: |call, inner: &MemoryStorage| {
                if call == "open_write" && !raced.replace(true) {
                    store(inner, "/new.txt", b"uploaded");
                }
            },
        };
        let locks = MemoryLocks::default();
        let config = Config::default();
        let env = Env {
            storage: &storage,
            locks: &locks,
            config: &config,
        };
        let body = br#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
        let mut req = Request {
            method: "LOCK".into(),
            target: "/new.txt".into(),
            authority: Some("localhost".into()),
            headers: vec![("Content-Length".into(), body.len().to_string())],
            body: Box::new(&body[..]),
        };
        let response = lock(&env, &mut req).expect("LOCK succeeds");
        assert_eq!(
            response.status, 200,
            "the resource exists: it is locked, not created"
        );
        let mut reader = storage.open_read("/new.txt", 0, None).unwrap().reader;
        assert_eq!(reader.read(100).unwrap(), b"uploaded");
        assert_eq!(locks.covering("/new.txt").unwrap().len(), 1);
    }
}
