//! OPTIONS: advertises the DAV classes and methods; answered without
//! touching storage so that clients can probe before they authenticate.

use super::ALLOW;
use crate::error::DavResult;
use crate::http::{Request, Response};

pub fn options<'a>(_req: &Request<'_>) -> DavResult<Response<'a>> {
    Ok(Response::new(200)
        .header("DAV", "1, 2")
        .header("Allow", ALLOW)
        .header("MS-Author-Via", "DAV")
        .header("Accept-Ranges", "bytes")
        .header("Content-Length", "0"))
}
