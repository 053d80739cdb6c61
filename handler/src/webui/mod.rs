//! The web interface a browser gets for a collection: a listing rendered on
//! the server (usable without JavaScript) that a small script enhances with
//! sorting, uploads, new folders, rename and delete over plain WebDAV
//! requests (PUT, MKCOL, MOVE, DELETE).
//!
//! It lives in the component, so it is the same on the native host,
//! `wasmtime serve` and Spin. The script and style sheet are served by the
//! component too, as `?edgedav-ui=app.js` / `?edgedav-ui=app.css` on the
//! collection being viewed: a query string never names a stored resource, so
//! no file a user stores can clash with or shadow them, and the request goes
//! to the very path the user is already allowed to list, so per-user homes
//! and per-path permissions apply to it unchanged. The page allows nothing
//! but those same-origin resources (`Content-Security-Policy`), so a hostile
//! file name, escaped anyway, could not run script even if it slipped
//! through.

mod listing;
#[cfg(test)]
mod tests;

use crate::backend::Env;
use crate::error::DavResult;
use crate::http::{Part, Request, Response};
use crate::path::DavPath;

/// The query parameter that selects an asset instead of the listing.
const ASSET_PARAM: &str = "edgedav-ui";

/// Only the page's own script and style sheet; no inline code, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: [Asset; 2] = [
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("app.css"),
    },
];

/// The HTML listing of the collection at `path`, streamed page by page.
pub fn listing<'a>(env: &'a Env<'a>, path: DavPath, with_body: bool) -> DavResult<Response<'a>> {
    let response = secured(Response::new(200))
        .header("Content-Type", "text/html; charset=utf-8")
        .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .header("Referrer-Policy", "same-origin");
    Ok(if with_body {
        let mut r = response;
        r.body
            .push(Part::Generated(Box::new(listing::Listing::new(env, path)?)));
        r
    } else {
        response
    })
}

/// The asset a request on a collection asks for with `?edgedav-ui=NAME`, or
/// `None` when the query does not name one (then the listing is served). An
/// unknown name is a 404 rather than the listing, so a typo is visible.
pub fn asset<'a>(req: &Request<'_>, with_body: bool) -> Option<Response<'a>> {
    let (_, query) = req.target.split_once('?')?;
    let name = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(ASSET_PARAM)?.strip_prefix('='))?;
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return Some(secured(Response::new(404)));
    };
    let etag = format!("\"ui-{:016x}\"", fnv1a(asset.body.as_bytes()));
    let cached = req
        .header_list("If-None-Match")
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let response = secured(Response::new(if cached { 304 } else { 200 })).header("ETag", etag);
    Some(if cached {
        response
    } else if with_body {
        response.bytes(asset.content_type, asset.body.as_bytes().to_vec())
    } else {
        response
            .header("Content-Type", asset.content_type)
            .header("Content-Length", asset.body.len().to_string())
    })
}

/// Headers every web-interface response carries: no content sniffing, and
/// revalidation on every use, so a listing refreshed after an upload is never
/// a stale copy and a new version of the script is picked up at once (the
/// ETag makes the revalidation of an unchanged asset a cheap 304).
fn secured<'a>(response: Response<'a>) -> Response<'a> {
    response
        .header("X-Content-Type-Options", "nosniff")
        .header("Cache-Control", "no-cache")
}

/// Text made safe for HTML element content and double- or single-quoted
/// attribute values.
fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// FNV-1a, for the assets' ETags: stable across builds of the same text.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
