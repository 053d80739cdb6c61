//! COPY and MOVE (RFC 4918 §9.8-9.9).

use super::{Depth, depth, header_lookup, request_path, require_parent, stat, stat_existing};
use crate::backend::Env;
use crate::conditions::{Outcome, Preconditions, Scope, http_conditions};
use crate::error::{DavError, DavResult};
use crate::http::{Request, Response};
use crate::multistatus;
use crate::path::parse_destination;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Copy,
    Move,
}

pub fn copy_or_move<'a>(
    env: &'a Env<'a>,
    req: &Request<'_>,
    mode: Mode,
) -> DavResult<Response<'a>> {
    let source = request_path(req)?;
    let destination = req
        .header("Destination")
        .ok_or_else(|| DavError::bad_request("Destination header missing"))?;
    let destination = parse_destination(destination, req.authority.as_deref())?;
    let overwrite = match req
        .header("Overwrite")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("T") => true,
        Some("F") => false,
        Some(_) => return Err(DavError::bad_request("Overwrite must be T or F")),
    };
    // Overlapping paths (the contract's rule, `edgedav_rules::transfer`) are
    // refused before storage is asked anything: moving `/a/b` onto its
    // ancestor `/a` would first delete `/a` (and so the source), and copying
    // a tree into itself never ends.
    edgedav_rules::transfer::check(source.as_str(), destination.as_str())
        .map_err(|refusal| DavError::status(403, refusal.reason()))?;
    let meta = stat_existing(env, &source)?;
    let recursive = match (mode, depth(req, Depth::Infinity)?) {
        (_, Depth::Infinity) => true,
        (Mode::Copy, Depth::Zero) => false,
        _ if !meta.is_collection() => true,
        _ => {
            return Err(DavError::bad_request(
                "Depth must be infinity (or 0 for COPY)",
            ));
        }
    };
    if http_conditions(&header_lookup(req), Some(&meta), false) != Outcome::Proceed {
        return Err(DavError::status(412, "precondition failed"));
    }
    require_parent(env, &destination)?;
    let existing = stat(env, &destination)?;
    if existing.is_some() && !overwrite {
        return Err(DavError::status(
            412,
            "destination exists and Overwrite is F",
        ));
    }

    let preconditions = Preconditions::new(env, req.header("If"), req.authority.as_deref())?;
    preconditions.check_if(&source)?;
    if mode == Mode::Move {
        preconditions.check_locks(&source, Scope::Tree)?;
    }
    preconditions.check_locks(
        &destination,
        if existing.is_some() {
            Scope::Tree
        } else {
            Scope::Member
        },
    )?;

    let moved_locks = if mode == Mode::Move {
        env.locks.within(source.as_str())?
    } else {
        Vec::new()
    };
    let failed = match mode {
        Mode::Copy => {
            env.storage
                .copy(source.as_str(), destination.as_str(), recursive, overwrite)?
        }
        Mode::Move => env
            .storage
            .rename(source.as_str(), destination.as_str(), overwrite)?,
    };
    if !failed.is_empty() {
        return Ok(multistatus::member_errors(&failed));
    }
    // Locks stay with their URLs (RFC 4918 §7.7): the moved-away source loses them.
    for lock in moved_locks {
        let _ = env.locks.release(&lock.token);
    }
    let status = if existing.is_some() { 204 } else { 201 };
    Ok(Response::new(status).header("Content-Length", "0"))
}
