//! OPTIONS: advertises the DAV classes and methods; answered without
//! touching storage so that clients can probe before they authenticate.

use super::ALLOW;
use super::put::PARTIAL_UPDATE_TYPE;
use crate::error::DavResult;
use crate::http::{Request, Response};

pub fn options<'a>(_req: &Request<'_>) -> DavResult<Response<'a>> {
    Ok(Response::new(200)
        // sabredav-partialupdate: PATCH with X-Update-Range (see put.rs).
        .header("DAV", "1, 2, sabredav-partialupdate")
        .header("Allow", ALLOW)
        .header("Accept-Patch", PARTIAL_UPDATE_TYPE)
        .header("MS-Author-Via", "DAV")
        .header("Accept-Ranges", "bytes")
        .header("Content-Length", "0"))
}
