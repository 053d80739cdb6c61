//! DELETE (RFC 4918 §9.6): recursive, with a 207 naming members that could
//! not be removed.

use super::{Depth, depth, header_lookup, request_path, stat_existing};
use crate::backend::Env;
use crate::conditions::{Outcome, Preconditions, Scope, http_conditions};
use crate::error::{DavError, DavResult};
use crate::http::{Request, Response};
use crate::multistatus;

pub fn delete<'a>(env: &'a Env<'a>, req: &Request<'_>) -> DavResult<Response<'a>> {
    let path = request_path(req)?;
    if path.is_root() {
        return Err(DavError::status(
            403,
            "the root collection cannot be deleted",
        ));
    }
    let meta = stat_existing(env, &path)?;
    if meta.is_collection() && depth(req, Depth::Infinity)? != Depth::Infinity {
        return Err(DavError::bad_request(
            "DELETE of a collection requires Depth: infinity",
        ));
    }
    if http_conditions(&header_lookup(req), Some(&meta), false) != Outcome::Proceed {
        return Err(DavError::status(412, "precondition failed"));
    }
    Preconditions::new(env, req.header("If"), req.authority.as_deref())?
        .check(&path, Scope::Tree)?;
    let locks = env.locks.within(path.as_str())?;
    let failed = env.storage.delete(path.as_str())?;
    if !failed.is_empty() {
        return Ok(multistatus::member_errors(&failed));
    }
    // Locks die with the resources they were on.
    for lock in locks {
        let _ = env.locks.release(&lock.token);
    }
    Ok(Response::new(204))
}
