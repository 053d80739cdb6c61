//! Building `207 Multi-Status` bodies (RFC 4918 §13).

use crate::backend::MemberError;
use crate::error::storage_status;
use crate::http::Response;
use crate::path::DavPath;
use crate::xml::XmlWriter;

/// Writes the content of a `DAV:status` element.
pub fn write_status_line(w: &mut XmlWriter, status: u16) {
    w.raw("HTTP/1.1 ");
    w.number(u64::from(status));
    w.raw(" ");
    w.raw(reason(status));
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        207 => "Multi-Status",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        423 => "Locked",
        424 => "Failed Dependency",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        507 => "Insufficient Storage",
        _ => "",
    }
}

/// Opens a multistatus document.
pub fn begin() -> XmlWriter {
    let mut w = XmlWriter::new();
    w.open_dav("multistatus");
    w
}

/// One `DAV:response` carrying only a status.
pub fn status_response(w: &mut XmlWriter, href: &str, status: u16) {
    w.open_dav("response");
    w.text_element_dav("href", href);
    w.open_dav("status");
    write_status_line(w, status);
    w.close_dav("status");
    w.close_dav("response");
}

/// 207 listing the members a recursive operation failed on.
pub fn member_errors(errors: &[MemberError]) -> Response<'static> {
    let mut w = begin();
    for e in errors {
        let href = DavPath::from_target(&e.path)
            .map(|p| p.href(false))
            .unwrap_or_else(|_| e.path.clone());
        status_response(&mut w, &href, storage_status(&e.error));
    }
    w.close_dav("multistatus");
    Response::new(207).xml(w.finish())
}
