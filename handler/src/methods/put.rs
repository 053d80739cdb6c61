//! PUT (RFC 9110 §9.3.4, RFC 4918 §9.7) and partial updates: PUT with
//! `Content-Range`, and PATCH with `X-Update-Range` (the sabre/dav
//! convention), which let clients behind body-size caps upload big files in
//! pieces. The body streams into a storage writer that publishes only on
//! commit, so a failed upload never replaces or changes the stored content.

use super::{header_lookup, request_path, require_parent, stat};
use crate::backend::{Appended, Env, Metadata, WriteOptions, Writer};
use crate::conditions::{Outcome, Preconditions, Scope, http_conditions};
use crate::error::{DavError, DavResult};
use crate::http::{BodyReader, Request, Response};
use crate::path::DavPath;

/// Bytes read from the request per storage write.
const CHUNK: usize = 256 * 1024;

/// The media type sabre/dav requires on partial-update PATCH requests.
pub const PARTIAL_UPDATE_TYPE: &str = "application/x-sabredav-partialupdate";

/// Where a partial update starts and, when the client said, how many bytes
/// it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub offset: u64,
    pub length: Option<u64>,
}

/// `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`).
pub fn parse_content_range(value: &str) -> Option<Piece> {
    let spec = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = spec.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
    let total = total.trim();
    if end < start || (total != "*" && total.parse::<u64>().ok()? <= end) {
        return None;
    }
    Some(Piece {
        offset: start,
        length: Some(end - start + 1),
    })
}

/// `X-Update-Range`: `bytes=START-END`, `bytes=START-`, `bytes=-N` (the last
/// N bytes) or `append`, against the current size.
pub fn parse_update_range(value: &str, size: u64) -> Option<Piece> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("append") {
        return Some(Piece {
            offset: size,
            length: None,
        });
    }
    let (start, end) = value.strip_prefix("bytes=")?.split_once('-')?;
    match (start.trim(), end.trim()) {
        ("", n) => Some(Piece {
            offset: size.checked_sub(n.parse().ok()?)?,
            length: None,
        }),
        (s, "") => Some(Piece {
            offset: s.parse().ok()?,
            length: None,
        }),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().ok()?, e.parse().ok()?);
            (e >= s).then(|| Piece {
                offset: s,
                length: Some(e - s + 1),
            })
        }
    }
}

pub fn put<'a>(env: &'a Env<'a>, req: &mut Request<'_>) -> DavResult<Response<'a>> {
    let path = request_path(req)?;
    let existing = stat(env, &path)?;
    if existing.as_ref().is_some_and(Metadata::is_collection) {
        return Err(DavError::status(405, "cannot PUT to a collection"));
    }
    require_parent(env, &path)?;
    let piece = match req.header("Content-Range") {
        None => None,
        Some(v) => Some(
            parse_content_range(v)
                .ok_or_else(|| DavError::bad_request("malformed Content-Range"))?,
        ),
    };
    // A piece at 0 of a new file simply creates it.
    let piece = piece.filter(|p| p.offset > 0 || existing.is_some());
    upload(env, req, &path, existing.as_ref(), piece)
}

pub fn patch<'a>(env: &'a Env<'a>, req: &mut Request<'_>) -> DavResult<Response<'a>> {
    let path = request_path(req)?;
    let is_partial_update = req.header("Content-Type").is_some_and(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(PARTIAL_UPDATE_TYPE)
    });
    if !is_partial_update {
        return Err(DavError::status(
            415,
            format!("PATCH needs Content-Type: {PARTIAL_UPDATE_TYPE}"),
        ));
    }
    let existing = stat(env, &path)?.ok_or_else(|| DavError::status(404, "not found"))?;
    if existing.is_collection() {
        return Err(DavError::status(405, "cannot PATCH a collection"));
    }
    let range = req
        .header("X-Update-Range")
        .ok_or_else(|| DavError::bad_request("X-Update-Range header missing"))?;
    let piece = parse_update_range(range, existing.size)
        .ok_or_else(|| DavError::bad_request("malformed X-Update-Range"))?;
    upload(env, req, &path, Some(&existing), Some(piece))
}

/// The shared tail of PUT and PATCH: preconditions, then the body streamed
/// into a writer that is committed only when all of it arrived. The status
/// (201 created, 204 replaced) is what the commit reports, decided by the
/// store atomically with it, not by the stat made before the upload: of
/// concurrent PUTs creating one path, exactly one answers 201.
fn upload<'a>(
    env: &'a Env<'a>,
    req: &mut Request<'_>,
    path: &DavPath,
    existing: Option<&Metadata>,
    piece: Option<Piece>,
) -> DavResult<Response<'a>> {
    if let Some(p) = piece {
        let size = existing.map_or(0, |m| m.size);
        if existing.is_none() || p.offset > size {
            return Err(DavError::status(
                416,
                "a partial update must start within the existing file",
            )
            .with_header("Content-Range", format!("bytes */{size}")));
        }
    }
    if http_conditions(&header_lookup(req), existing, false) != Outcome::Proceed {
        return Err(DavError::status(412, "precondition failed"));
    }
    let scope = if existing.is_some() {
        Scope::Resource
    } else {
        Scope::Member
    };
    Preconditions::new(env, req.header("If"), req.authority.as_deref())?.check(path, scope)?;

    let announced = ["Content-Length", "X-Expected-Entity-Length"]
        .iter()
        .find_map(|h| req.header(h).and_then(|v| v.parse::<u64>().ok()));
    let options = WriteOptions {
        expected_size: match piece {
            None => announced,
            Some(p) => announced.map(|n| existing.map_or(0, |m| m.size).max(p.offset + n)),
        },
        content_type: req
            .header("Content-Type")
            .map(str::to_owned)
            .filter(|_| piece.is_none()),
        offset: piece.map(|p| p.offset),
        // `If-None-Match: *` (checked above against the stat) is also made
        // atomic: a file created meanwhile fails the commit, 412 as well.
        create_only: piece.is_none()
            && req.header("If-None-Match").is_some_and(|v| v.trim() == "*"),
    };
    let mut writer = env.storage.open_write(path.as_str(), &options)?;
    let received = move_body(&mut *req.body, &mut *writer)?;
    if let Some(expected) = piece.and_then(|p| p.length)
        && received != expected
    {
        // Dropping the writer discards the piece.
        return Err(DavError::bad_request(format!(
            "the range announces {expected} bytes but the body has {received}"
        )));
    }
    let committed = writer.commit()?;
    let status = if committed.created { 201 } else { 204 };
    Ok(Response::new(status)
        .header("ETag", committed.metadata.quoted_etag())
        .header("Content-Length", "0"))
}

/// Moves the request body into `writer` and says how many bytes it had:
/// drained by the binding when it can (the bytes never enter this
/// component), else read and written here. A body that breaks off is a 400
/// and the writer, dropped uncommitted by the caller, publishes nothing.
fn move_body(body: &mut dyn BodyReader, writer: &mut dyn Writer) -> DavResult<u64> {
    if let Some(appended) = body.direct().and_then(|source| writer.append_from(source)) {
        return match appended? {
            Appended::All(received) => Ok(received),
            Appended::SourceFailed(why) => Err(DavError::bad_request(format!(
                "reading the request body failed: {why}"
            ))),
        };
    }
    let mut received = 0u64;
    while let Some(chunk) = body.read(CHUNK)? {
        received += chunk.len() as u64;
        writer.write(&chunk)?;
    }
    Ok(received)
}

#[cfg(test)]
mod tests {
    use std::any::Any;

    use super::*;
    use crate::backend::{Committed, StorageError, StorageResult};

    /// A body whose own stream is a marker a [`Drainer`] recognises.
    struct Direct(Stream);
    struct Stream;

    impl BodyReader for Direct {
        fn read(&mut self, _max: usize) -> Result<Option<Vec<u8>>, DavError> {
            panic!("read, though the writer drains the stream");
        }
        fn direct(&mut self) -> Option<&mut dyn Any> {
            Some(&mut self.0)
        }
    }

    /// A writer that drains a [`Stream`] with a fixed outcome, or declines
    /// (`None`) and collects what is written.
    struct Drainer(Option<StorageResult<Appended>>, Vec<u8>);

    impl Writer for Drainer {
        fn write(&mut self, data: &[u8]) -> StorageResult<()> {
            self.1.extend_from_slice(data);
            Ok(())
        }
        fn append_from(&mut self, source: &mut dyn Any) -> Option<StorageResult<Appended>> {
            source.downcast_mut::<Stream>()?;
            self.0.take()
        }
        fn commit(self: Box<Self>) -> StorageResult<Committed> {
            unreachable!()
        }
    }

    #[test]
    fn a_body_is_drained_by_the_writer_when_it_can() {
        let mut all = Drainer(Some(Ok(Appended::All(7))), Vec::new());
        assert_eq!(move_body(&mut Direct(Stream), &mut all).unwrap(), 7);

        let broken = Some(Ok(Appended::SourceFailed("cut".into())));
        let e = move_body(&mut Direct(Stream), &mut Drainer(broken, Vec::new())).unwrap_err();
        assert_eq!(e.status, 400);

        let full = Some(Err(StorageError::NoSpace));
        let e = move_body(&mut Direct(Stream), &mut Drainer(full, Vec::new())).unwrap_err();
        assert_eq!(e.status, 507);

        // Declined (or a body without a stream): read and written here.
        let mut declined = Drainer(None, Vec::new());
        let mut body: &[u8] = b"hello";
        assert_eq!(move_body(&mut body, &mut declined).unwrap(), 5);
        assert_eq!(declined.1, b"hello");
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-9/100"),
            Some(Piece {
                offset: 0,
                length: Some(10)
            })
        );
        assert_eq!(
            parse_content_range("bytes 10-19/*"),
            Some(Piece {
                offset: 10,
                length: Some(10)
            })
        );
        assert_eq!(parse_content_range("bytes 10-9/*"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
    }

    #[test]
    fn update_ranges() {
        assert_eq!(
            parse_update_range("append", 7),
            Some(Piece {
                offset: 7,
                length: None
            })
        );
        assert_eq!(
            parse_update_range("bytes=2-3", 7),
            Some(Piece {
                offset: 2,
                length: Some(2)
            })
        );
        assert_eq!(
            parse_update_range("bytes=5-", 7),
            Some(Piece {
                offset: 5,
                length: None
            })
        );
        assert_eq!(
            parse_update_range("bytes=-2", 7),
            Some(Piece {
                offset: 5,
                length: None
            })
        );
        assert_eq!(parse_update_range("bytes=-9", 7), None);
        assert_eq!(parse_update_range("bytes=3-2", 7), None);
        assert_eq!(parse_update_range("lines=1-2", 7), None);
    }
}
