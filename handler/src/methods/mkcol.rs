//! MKCOL (RFC 4918 §9.3).

use super::{request_path, require_parent, stat};
use crate::backend::Env;
use crate::conditions::{Preconditions, Scope};
use crate::error::{DavError, DavResult};
use crate::http::{Request, Response};

pub fn mkcol<'a>(env: &'a Env<'a>, req: &Request<'_>) -> DavResult<Response<'a>> {
    let path = request_path(req)?;
    if stat(env, &path)?.is_some() {
        return Err(DavError::status(
            405,
            "a resource already exists at this URL",
        ));
    }
    if req.has_body() {
        return Err(DavError::status(415, "MKCOL with a body is not supported"));
    }
    require_parent(env, &path)?;
    Preconditions::new(env, req.header("If"), req.authority.as_deref())?
        .check(&path, Scope::Member)?;
    env.storage.create_collection(path.as_str())?;
    Ok(Response::new(201).header("Content-Length", "0"))
}
