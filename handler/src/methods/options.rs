//! OPTIONS: advertises the DAV classes and methods; answered without
//! touching storage so that clients can probe before they authenticate.

use super::put::PARTIAL_UPDATE_TYPE;
use super::{ALLOW, request_path};
use crate::error::DavResult;
use crate::http::{Request, Response};

pub fn options<'a>(req: &Request<'_>) -> DavResult<Response<'a>> {
    // A path is still checked (an over-long segment is 414 here as for every
    // method); `OPTIONS *` names the server, not a path.
    if req.target.starts_with('/') {
        request_path(req)?;
    }
    Ok(Response::new(200)
        // sabredav-partialupdate: PATCH with X-Update-Range (see put.rs).
        .header("DAV", "1, 2, sabredav-partialupdate")
        .header("Allow", ALLOW)
        .header("Accept-Patch", PARTIAL_UPDATE_TYPE)
        .header("MS-Author-Via", "DAV")
        .header("Accept-Ranges", "bytes")
        .header("Content-Length", "0"))
}
