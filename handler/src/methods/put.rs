//! PUT (RFC 9110 §9.3.4, RFC 4918 §9.7): streams the body into a storage
//! writer that publishes only on commit, so a failed upload never replaces
//! the previous content.

use super::{header_lookup, request_path, require_parent, stat};
use crate::backend::{Env, WriteOptions};
use crate::conditions::{Outcome, Preconditions, Scope, http_conditions};
use crate::error::{DavError, DavResult};
use crate::http::{Request, Response};

/// Bytes read from the request per storage write.
const CHUNK: usize = 256 * 1024;

pub fn put<'a>(env: &'a Env<'a>, req: &mut Request<'_>) -> DavResult<Response<'a>> {
    let path = request_path(req)?;
    if req.header("Content-Range").is_some() {
        return Err(DavError::bad_request("partial PUT with Content-Range is not supported"));
    }
    let existing = stat(env, &path)?;
    if existing.as_ref().is_some_and(|m| m.is_collection()) {
        return Err(DavError::status(405, "cannot PUT to a collection"));
    }
    require_parent(env, &path)?;
    if http_conditions(&header_lookup(req), existing.as_ref(), false) != Outcome::Proceed {
        return Err(DavError::status(412, "precondition failed"));
    }
    let scope = if existing.is_some() { Scope::Resource } else { Scope::Member };
    Preconditions::new(env, req.header("If"), req.authority.as_deref())?.check(&path, scope)?;

    let expected_size = ["Content-Length", "X-Expected-Entity-Length"]
        .iter()
        .find_map(|h| req.header(h).and_then(|v| v.parse::<u64>().ok()));
    let options = WriteOptions { expected_size, content_type: req.header("Content-Type").map(str::to_owned) };
    let mut writer = env.storage.open_write(path.as_str(), &options)?;
    while let Some(chunk) = req.body.read(CHUNK)? {
        writer.write(&chunk)?;
    }
    let meta = writer.commit()?;
    let status = if existing.is_some() { 204 } else { 201 };
    Ok(Response::new(status).header("ETag", meta.quoted_etag()).header("Content-Length", "0"))
}
