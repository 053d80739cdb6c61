//! GET and HEAD (RFC 9110 §9.3.1-2): conditionals, ranges, and for
//! collections the web interface ([`crate::webui`]).

use super::{existing, header_lookup, request_path, stat_existing};
use crate::backend::{Env, Metadata, Opened, StorageError};
use crate::conditions::{Outcome, Preconditions, http_conditions, parse_http_date};
use crate::date::http_date;
use crate::error::{DavError, DavResult};
use crate::http::{Part, Request, Response};
use crate::path::DavPath;
use crate::props::content_type;
use crate::range::{self, ByteRange, RangeRequest};
use crate::webui;

/// How many times a GET looks a file up again after finding it replaced
/// between the lookup and the opening, before it answers 503.
const ATTEMPTS: usize = 3;

/// The file's headers come from a lookup and its bytes from an opening
/// after it; should the path be replaced in between, the opened version's
/// ETag differs, and the answer starts over, so no client gets one
/// version's bytes under another's length and validators.
pub fn get<'a>(env: &'a Env<'a>, req: &Request<'_>, with_body: bool) -> DavResult<Response<'a>> {
    for _ in 0..ATTEMPTS {
        if let Some(response) = answer(env, req, with_body)? {
            return Ok(response);
        }
    }
    Err(
        DavError::status(503, "the file was replaced each time it was opened")
            .with_header("Retry-After", "1"),
    )
}

/// One attempt of [`get`]: none when the file was replaced meanwhile.
fn answer<'a>(
    env: &'a Env<'a>,
    req: &Request<'_>,
    with_body: bool,
) -> DavResult<Option<Response<'a>>> {
    let path = request_path(req)?;
    let mut whole = open_whole(env, req, &path, with_body)?;
    let meta = match &whole {
        Some(opened) => opened.metadata.clone(),
        None => stat_existing(env, &path)?,
    };
    // The interface's script and style carry their own validators, so they
    // are answered before the collection's conditionals are evaluated.
    if meta.is_collection()
        && let Some(asset) = webui::asset(req, with_body)
    {
        return Ok(Some(asset));
    }
    Preconditions::new(env, req.header("If"), req.authority.as_deref())?.check_if(&path)?;
    let validators = |r: Response<'a>| {
        r.header("ETag", meta.quoted_etag())
            .header("Last-Modified", http_date(meta.modified))
    };
    match http_conditions(&header_lookup(req), Some(&meta), true) {
        Outcome::Proceed => {}
        Outcome::NotModified => return Ok(Some(validators(Response::new(304)))),
        Outcome::PreconditionFailed => return Err(DavError::status(412, "precondition failed")),
    }
    if meta.is_collection() {
        return webui::listing(env, path, with_body).map(Some);
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
                let range = ByteRange {
                    start: 0,
                    length: meta.size,
                };
                let Some(part) = body(env, &path, &meta, range, whole.take())? else {
                    return Ok(None);
                };
                r.body.push(part);
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
                let Some(part) = body(env, &path, &meta, r, None)? else {
                    return Ok(None);
                };
                resp.body.push(part);
            }
            resp
        }
        RangeRequest::Partial(ranges) => multipart(response, &path, &meta, &content_type, &ranges),
    };
    Ok(Some(if with_body {
        response
    } else {
        response.without_body()
    }))
}

/// The headers a GET can answer without sending the whole file: a range, or
/// a condition (which often ends in 304 or 412).
const NARROWING: [&str; 7] = [
    "Range",
    "If-Range",
    "If",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
];

/// A GET that will send the whole file opens it at once: the opening gives
/// the metadata, so one storage call (on S3 one request) does the work of
/// a lookup and an opening, and what is described is what is sent. Other
/// requests look up first (an S3 download opened for a 304 would be
/// dropped half-read). None: look up first, also for a collection.
fn open_whole(
    env: &Env<'_>,
    req: &Request<'_>,
    path: &DavPath,
    with_body: bool,
) -> DavResult<Option<Opened>> {
    if !with_body || NARROWING.iter().any(|name| req.header(name).is_some()) {
        return Ok(None);
    }
    match env.storage.open_read(path.as_str(), 0, None) {
        Err(StorageError::IsACollection) => Ok(None),
        opened => existing(opened).map(Some),
    }
}

/// The body part of `range`: the file `opened` already, or opened now,
/// before the status is sent, so a refused read is a status. None when
/// what opened is not the version `meta` describes.
fn body<'a>(
    env: &Env<'_>,
    path: &DavPath,
    meta: &Metadata,
    range: ByteRange,
    opened: Option<Opened>,
) -> DavResult<Option<Part<'a>>> {
    let opened = match opened {
        Some(opened) => opened,
        None => env
            .storage
            .open_read(path.as_str(), range.start, Some(range.length))?,
    };
    Ok((opened.metadata.etag == meta.etag).then(|| Part::Reader {
        reader: opened.reader,
        path: path.as_str().to_owned(),
        length: range.length,
    }))
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
            etag: meta.etag.clone(),
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

#[cfg(test)]
mod race_tests {
    use crate::backend::{Config, Env, Storage};
    use crate::memory::{MemoryLocks, MemoryStorage};
    use crate::testing::{Exchanged, Interposed, exchange, store};
    use std::cell::Cell;

    /// GET `/f` (with `headers`) on a store where `/f` holds `old` and a
    /// writer stores a new version just before each of the first `replaced`
    /// openings; with the quoted ETag of the version stored last.
    fn get_while_replaced(replaced: usize, headers: &[(&str, &str)]) -> (Exchanged, String) {
        let inner = MemoryStorage::new();
        store(&inner, "/f", b"old");
        let openings = Cell::new(0);
        let storage = Interposed {
            inner,
            before: |call, inner: &MemoryStorage| {
                if call == "open_read" && openings.get() < replaced {
                    openings.set(openings.get() + 1);
                    let version = format!("version {} of the file", openings.get());
                    store(inner, "/f", version.as_bytes());
                }
            },
        };
        let (locks, config) = (MemoryLocks::default(), Config::default());
        let env = Env {
            storage: &storage,
            locks: &locks,
            config: &config,
        };
        let seen = exchange(&env, "GET", "/f", headers, b"");
        (seen, storage.inner.stat("/f").unwrap().quoted_etag())
    }

    #[test]
    fn a_file_replaced_before_it_is_opened_is_answered_as_the_new_version() {
        let (seen, last_etag) = get_while_replaced(1, &[]);
        assert_eq!(seen.status, 200);
        assert_eq!(seen.header("Content-Length"), Some("21"));
        assert_eq!(seen.header("ETag"), Some(last_etag.as_str()));
        assert_eq!(seen.body.unwrap(), b"version 1 of the file");
    }

    #[test]
    fn a_range_of_a_replaced_file_is_taken_from_the_new_version() {
        let (seen, last_etag) = get_while_replaced(2, &[("Range", "bytes=0-6")]);
        assert_eq!(seen.status, 206);
        assert_eq!(seen.header("Content-Range"), Some("bytes 0-6/21"));
        assert_eq!(seen.header("ETag"), Some(last_etag.as_str()));
        assert_eq!(seen.body.unwrap(), b"version");
    }

    #[test]
    fn a_file_replaced_at_every_opening_is_a_503_to_retry() {
        // A range is looked up before it is opened; a whole file is not.
        let (seen, _) = get_while_replaced(usize::MAX, &[("Range", "bytes=0-6")]);
        assert_eq!(seen.status, 503);
        assert_eq!(seen.header("Retry-After"), Some("1"));
        let (seen, _) = get_while_replaced(usize::MAX, &[]);
        assert_eq!(seen.status, 200);
        assert_eq!(seen.body.unwrap(), b"version 1 of the file");
    }

    #[test]
    fn a_whole_file_is_one_storage_call_and_a_conditional_get_two() {
        let inner = MemoryStorage::new();
        store(&inner, "/f", b"content");
        let calls = std::cell::RefCell::new(Vec::new());
        let storage = Interposed {
            inner,
            before: |call, _: &MemoryStorage| calls.borrow_mut().push(call),
        };
        let (locks, config) = (MemoryLocks::default(), Config::default());
        let env = Env {
            storage: &storage,
            locks: &locks,
            config: &config,
        };
        let get = |headers: &[(&str, &str)]| {
            calls.borrow_mut().clear();
            assert_eq!(exchange(&env, "GET", "/f", headers, b"").status, 200);
            calls.borrow().clone()
        };
        assert_eq!(get(&[]), ["open_read"]);
        let stale = ("If-None-Match", "\"other\"");
        assert_eq!(get(&[stale]), ["stat", "open_read"]);
    }

    #[test]
    fn ranges_of_a_file_replaced_mid_response_cut_the_body_short() {
        // Multipart ranges are opened as the body is written, after the
        // status: a replaced file can only abort the transfer.
        let (seen, _) = get_while_replaced(1, &[("Range", "bytes=0-0,2-2")]);
        assert_eq!(seen.status, 206);
        assert!(seen.body.unwrap_err().contains("replaced"));
    }
}
