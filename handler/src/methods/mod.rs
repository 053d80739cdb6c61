//! One module per WebDAV method; [`handle`] dispatches a request to them.

mod copymove;
mod delete;
mod get;
mod lock;
mod mkcol;
mod options;
mod propfind;
mod proppatch;
mod put;

use crate::backend::{Env, Metadata, StorageError, StorageResult};
use crate::error::{DavError, DavResult};
use crate::http::{Request, Response};
use crate::path::DavPath;

pub const ALLOW: &str =
    "OPTIONS, GET, HEAD, PUT, PATCH, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK";

/// Answers one request. Never panics on bad input: every failure becomes a
/// status.
pub fn handle<'a>(env: &'a Env<'a>, mut req: Request<'_>) -> Response<'a> {
    let result = match req.method.as_str() {
        "OPTIONS" => options::options(&req),
        "GET" => get::get(env, &req, true),
        "HEAD" => get::get(env, &req, false),
        "PUT" => put::put(env, &mut req),
        "PATCH" => put::patch(env, &mut req),
        "DELETE" => delete::delete(env, &req),
        "MKCOL" => mkcol::mkcol(env, &req),
        "COPY" => copymove::copy_or_move(env, &req, copymove::Mode::Copy),
        "MOVE" => copymove::copy_or_move(env, &req, copymove::Mode::Move),
        "PROPFIND" => propfind::propfind(env, &mut req),
        "PROPPATCH" => proppatch::proppatch(env, &mut req),
        "LOCK" => lock::lock(env, &mut req),
        "UNLOCK" => lock::unlock(env, &req),
        _ => Err(DavError::status(405, "method not supported")),
    };
    let response = result.unwrap_or_else(|e| e.into_response());
    // RFC 9110 §15.5.6: a 405 always says what is allowed.
    if response.status == 405 && response.get_header("Allow").is_none() {
        return response.header("Allow", ALLOW);
    }
    response
}

/// A lookup's answer, or `None` when nothing is there (including a path
/// below a file).
fn found<T>(answer: StorageResult<T>) -> DavResult<Option<T>> {
    match answer {
        Ok(found) => Ok(Some(found)),
        Err(StorageError::NotFound | StorageError::NotACollection) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A lookup's answer; 404 when nothing is there.
fn existing<T>(answer: StorageResult<T>) -> DavResult<T> {
    found(answer)?.ok_or_else(|| DavError::status(404, "not found"))
}

/// The resource's metadata, or `None` when nothing is there.
fn stat(env: &Env<'_>, path: &DavPath) -> DavResult<Option<Metadata>> {
    found(env.storage.stat(path.as_str()))
}

fn stat_existing(env: &Env<'_>, path: &DavPath) -> DavResult<Metadata> {
    existing(env.storage.stat(path.as_str()))
}

/// 409 unless the parent collection exists (RFC 4918 §9.3.1, §9.7.1).
fn require_parent(env: &Env<'_>, path: &DavPath) -> DavResult<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    match stat(env, &parent)? {
        Some(m) if m.is_collection() => Ok(()),
        _ => Err(DavError::status(409, "parent collection does not exist")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    Zero,
    One,
    Infinity,
}

fn depth(req: &Request<'_>, default: Depth) -> DavResult<Depth> {
    match req.header("Depth").map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("0") => Ok(Depth::Zero),
        Some("1") => Ok(Depth::One),
        Some("infinity") => Ok(Depth::Infinity),
        Some(_) => Err(DavError::bad_request("Depth must be 0, 1 or infinity")),
    }
}

fn request_path(req: &Request<'_>) -> DavResult<DavPath> {
    DavPath::from_target(&req.target)
}

/// Looks a header up by name, for the conditionals.
fn header_lookup<'r>(req: &'r Request<'_>) -> impl Fn(&str) -> Option<String> + 'r {
    |name| req.header_list(name)
}

#[cfg(test)]
mod propfind_tests;
#[cfg(test)]
mod tests;
