//! GET and HEAD (RFC 9110 §9.3.1-2): conditionals, ranges, and an HTML
//! listing for collections.

use super::{header_lookup, request_path, stat_existing};
use crate::backend::{Env, Metadata, Page};
use crate::conditions::{Outcome, Preconditions, http_conditions, parse_http_date};
use crate::error::{DavError, DavResult};
use crate::http::{ChunkSource, Part, Request, Response};
use crate::path::DavPath;
use crate::props::{content_type, http_date};
use crate::range::{self, ByteRange, RangeRequest};

pub fn get<'a>(env: &'a Env<'a>, req: &Request<'_>, with_body: bool) -> DavResult<Response<'a>> {
    let path = request_path(req)?;
    let meta = stat_existing(env, &path)?;
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
        let response = Response::new(200).header("Content-Type", "text/html; charset=utf-8");
        return Ok(if with_body {
            let mut r = response;
            r.body
                .push(Part::Generated(Box::new(Listing::new(env, path)?)));
            r
        } else {
            response
        });
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

/// Listing pages fetched per chunk of HTML.
const PAGE: u32 = 1000;

/// Streams a collection listing as HTML, one storage page per chunk.
struct Listing<'a> {
    env: &'a Env<'a>,
    path: DavPath,
    /// The next page, fetched ahead: the first one before the status is
    /// sent, so a collection that cannot be listed gets an error status.
    page: Option<Page>,
    state: ListingState,
}

enum ListingState {
    Head,
    Rows,
    Done,
}

impl<'a> Listing<'a> {
    fn new(env: &'a Env<'a>, path: DavPath) -> DavResult<Self> {
        let page = env.storage.list_members(path.as_str(), None, PAGE)?;
        Ok(Self {
            env,
            path,
            page: Some(page),
            state: ListingState::Head,
        })
    }
}

fn escape_html(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

impl ChunkSource for Listing<'_> {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, DavError> {
        match self.state {
            ListingState::Head => {
                self.state = ListingState::Rows;
                let title = escape_html(&format!("Index of {}", self.path.as_str()));
                let mut html = format!(
                    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n"
                );
                if let Some(parent) = self.path.parent() {
                    html.push_str(&format!(
                        "<tr><td><a href=\"{}\">../</a></td><td></td><td></td></tr>\n",
                        parent.href(true)
                    ));
                }
                Ok(Some(html.into_bytes()))
            }
            ListingState::Rows => {
                let page = match self.page.take() {
                    Some(page) => page,
                    None => return Ok(None),
                };
                let mut html = String::new();
                for entry in &page.entries {
                    let dir = entry.metadata.is_collection();
                    let href = self.path.join(&entry.name).href(dir);
                    let name = escape_html(&entry.name);
                    let slash = if dir { "/" } else { "" };
                    let size = if dir {
                        String::new()
                    } else {
                        entry.metadata.size.to_string()
                    };
                    html.push_str(&format!(
                        "<tr><td><a href=\"{href}\">{name}{slash}</a></td><td>{size}</td><td>{}</td></tr>\n",
                        http_date(entry.metadata.modified)
                    ));
                }
                match page.next {
                    Some(cursor) => {
                        self.page = Some(self.env.storage.list_members(
                            self.path.as_str(),
                            Some(&cursor),
                            PAGE,
                        )?);
                    }
                    None => {
                        self.state = ListingState::Done;
                        html.push_str("</table>\n</body></html>\n");
                    }
                }
                Ok(Some(html.into_bytes()))
            }
            ListingState::Done => Ok(None),
        }
    }
}
