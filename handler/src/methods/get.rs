//! GET and HEAD (RFC 9110 §9.3.1-2): conditionals, ranges, and for
//! collections the web interface ([`crate::webui`]).

use super::{header_lookup, request_path, stat_existing};
use crate::backend::{Env, Metadata};
use crate::conditions::{Outcome, Preconditions, http_conditions, parse_http_date};
use crate::date::http_date;
use crate::error::{DavError, DavResult};
use crate::http::{Part, Request, Response};
use crate::path::DavPath;
use crate::props::content_type;
use crate::range::{self, ByteRange, RangeRequest};
use crate::webui;

pub fn get<'a>(env: &'a Env<'a>, req: &Request<'_>, with_body: bool) -> DavResult<Response<'a>> {
    let path = request_path(req)?;
    let meta = stat_existing(env, &path)?;
    // The interface's script and style carry their own validators, so they
    // are answered before the collection's conditionals are evaluated.
    if meta.is_collection()
        && let Some(asset) = webui::asset(req, with_body)
    {
        return Ok(asset);
    }
    Preconditions::new(env, req.header("If"), req.authority.as_deref())?.check_if(&path)?;
    let validators = |r: Response<'a>| {
        r.header("ETag", meta.quoted_etag())
            .header("Last-Modified", http_date(meta.modified))
    };
    match http_conditions(&header_lookup(req), Some(&meta), true) {
        Outcome::Proceed => {}
        Outcome::NotModified => return Ok(validators(Response::new(304))),
        Outcome::PreconditionFailed => return Err(DavError::status(412, "precondition failed")),
    }
    if meta.is_collection() {
        return webui::listing(env, path, with_body);
    }
    let ranges = if if_range_holds(req, &meta) {
        range::parse(req.header("Range"), meta.size)
    } else {
        RangeRequest::Full
    };
    let content_type = content_type(&path, &meta);
    let response = validators(Response::new(200)).header("Accept-Ranges", "bytes");
    let response = match ranges {
        RangeRequest::Full => {
            let mut r = response
                .header("Content-Type", content_type)
                .header("Content-Length", meta.size.to_string());
            if meta.size > 0 && with_body {
                r.body.push(open(
                    env,
                    &path,
                    ByteRange {
                        start: 0,
                        length: meta.size,
                    },
                )?);
            }
            r
        }
        RangeRequest::Unsatisfiable => {
            return Err(DavError::status(416, "range not satisfiable")
                .with_header("Content-Range", format!("bytes */{}", meta.size)));
        }
        RangeRequest::Partial(ranges) if ranges.len() == 1 => {
            let r = ranges[0];
            let mut resp = response;
            resp.status = 206;
            let mut resp = resp
                .header("Content-Type", content_type)
                .header("Content-Range", r.content_range(meta.size))
                .header("Content-Length", r.length.to_string());
            if with_body {
                resp.body.push(open(env, &path, r)?);
            }
            resp
        }
        RangeRequest::Partial(ranges) => multipart(response, &path, &meta, &content_type, &ranges),
    };
    Ok(if with_body {
        response
    } else {
        response.without_body()
    })
}

/// Opens a range before the status is sent, so a refused read is a status.
fn open<'a>(env: &Env<'_>, path: &DavPath, range: ByteRange) -> DavResult<Part<'a>> {
    let reader = env
        .storage
        .open_read(path.as_str(), range.start, Some(range.length))?;
    Ok(Part::Reader {
        reader,
        path: path.as_str().to_owned(),
        length: range.length,
    })
}

/// `If-Range`: a strong ETag or the exact Last-Modified date (RFC 9110 §13.1.5).
fn if_range_holds(req: &Request<'_>, meta: &Metadata) -> bool {
    match req.header("If-Range") {
        None => true,
        Some(v) if v.starts_with('"') => v == meta.quoted_etag(),
        Some(v) => parse_http_date(v) == Some(meta.modified.seconds),
    }
}

/// A `multipart/byteranges` body; its length is known up front.
fn multipart<'a>(
    mut response: Response<'a>,
    path: &DavPath,
    meta: &Metadata,
    content_type: &str,
    ranges: &[ByteRange],
) -> Response<'a> {
    let boundary = format!(
        "edgedav-{}",
        meta.etag.replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    let mut length = 0u64;
    let mut body = Vec::new();
    for r in ranges {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            r.content_range(meta.size)
        );
        length += head.len() as u64 + r.length;
        body.push(Part::Bytes(head.into_bytes()));
        body.push(Part::File {
            path: path.as_str().to_owned(),
            offset: r.start,
            length: r.length,
        });
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    length += tail.len() as u64;
    body.push(Part::Bytes(tail.into_bytes()));
    response.status = 206;
    response.body = body;
    response
        .header(
            "Content-Type",
            format!("multipart/byteranges; boundary={boundary}"),
        )
        .header("Content-Length", length.to_string())
}
