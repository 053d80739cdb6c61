//! The web interface against the in-memory backend: hostile names are
//! escaped in text, attributes and URLs; every page carries its security
//! headers; the assets are served by query string on any collection.

use super::CONTENT_SECURITY_POLICY;
use super::listing::human_size;
use crate::testing::Server;

/// Hostile names, percent-encoded as a client sends them, and how each must
/// appear: as link text, as an attribute value, and in the href.
const HOSTILE: [(&str, &str, &str); 7] = [
    (
        "%3Cscript%3Ealert(1)",
        "&lt;script&gt;alert(1)",
        "%3Cscript%3Ealert(1)",
    ),
    (
        "%22dq%22%20'sq'.txt",
        "&quot;dq&quot; &apos;sq&apos;.txt",
        "%22dq%22%20&apos;sq&apos;.txt",
    ),
    ("a%26b", "a&amp;b", "a%26b"),
    ("%23%25%26", "#%&amp;", "%23%25%26"),
    (
        "%C3%BCnicode-%E2%9C%93",
        "ünicode-✓",
        "%C3%BCnicode-%E2%9C%93",
    ),
    (
        "with%20spaces%20.txt",
        "with spaces .txt",
        "with%20spaces%20.txt",
    ),
    (
        "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
        "&lt;img src=x onerror=alert(1)&gt;",
        "%3Cimg%20src=x%20onerror=alert(1)%3E",
    ),
];

#[test]
fn hostile_file_names_are_escaped_in_text_attributes_and_urls() {
    let s = Server::new();
    s.expect("MKCOL", "/d", 201);
    for (encoded, _, _) in HOSTILE {
        s.expect("PUT", &format!("/d/{encoded}"), 201);
    }
    let r = s.get("/d/");
    assert_eq!(r.status, 200);
    for (_, text, href) in HOSTILE {
        let row = format!("data-name=\"{text}\" data-size=\"1\"");
        assert!(r.body.contains(&row), "no attribute {row}:\n{}", r.body);
        let link = format!("<a href=\"/d/{href}\">{text}</a>");
        assert!(r.body.contains(&link), "no link {link}:\n{}", r.body);
    }
    // Nothing a name holds becomes markup: the page's only tags are its own.
    assert_eq!(r.body.matches("<script").count(), 1, "{}", r.body);
    assert!(!r.body.contains("<img"), "{}", r.body);
}

#[test]
fn hostile_collection_names_are_escaped_in_the_title_crumbs_and_links() {
    let s = Server::new();
    s.expect("MKCOL", "/a%20b%20%C3%BC%20%23%25%26", 201);
    s.expect("MKCOL", "/a%20b%20%C3%BC%20%23%25%26/%3Cb%3E%22'", 201);
    s.expect("PUT", "/a%20b%20%C3%BC%20%23%25%26/%3Cb%3E%22'/f", 201);
    let r = s.get("/a%20b%20%C3%BC%20%23%25%26/%3Cb%3E%22'/");
    assert_eq!(r.status, 200);
    for expected in [
        "<title>Index of /a b ü #%&amp;/&lt;b&gt;&quot;&apos;</title>",
        "<a href=\"/a%20b%20%C3%BC%20%23%25%26/\">a b ü #%&amp;</a>/",
        "<a href=\"/a%20b%20%C3%BC%20%23%25%26/%3Cb%3E%22&apos;/\">&lt;b&gt;&quot;&apos;</a>/",
        "<a class=\"up\" href=\"/a%20b%20%C3%BC%20%23%25%26/\">",
        "data-collection=\"/a%20b%20%C3%BC%20%23%25%26/%3Cb%3E%22&apos;/\"",
        "<a href=\"/a%20b%20%C3%BC%20%23%25%26/%3Cb%3E%22&apos;/f\">f</a>",
    ] {
        assert!(r.body.contains(expected), "no {expected}:\n{}", r.body);
    }
    // The directory listing of the parent links the hostile folder as a folder.
    let parent = s.get("/a%20b%20%C3%BC%20%23%25%26/");
    assert!(
        parent
            .body
            .contains("<tr class=\"dir\" data-name=\"&lt;b&gt;&quot;&apos;\" data-size=\"0\""),
        "{}",
        parent.body
    );
}

#[test]
fn listing_pages_carry_the_security_headers_and_no_inline_code() {
    let s = Server::new();
    s.expect("MKCOL", "/d", 201);
    for method in ["GET", "HEAD"] {
        for target in ["/", "/d/", "/d"] {
            let r = s.send(method, target, &[("Accept", "text/html")], "");
            assert_eq!(r.status, 200, "{method} {target}");
            assert_eq!(
                r.header("Content-Security-Policy"),
                Some(CONTENT_SECURITY_POLICY),
                "{method} {target}"
            );
            assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
            assert_eq!(r.header("Cache-Control"), Some("no-cache"));
            assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
        }
    }
    let csp = CONTENT_SECURITY_POLICY;
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp} lacks {directive}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    // The script and style come from the collection by query string, and
    // the page holds no inline code for the policy to block.
    let page = s.get("/d/").body;
    assert!(page.contains("<script src=\"?edgedav-ui=app.js\" defer></script>"));
    assert!(page.contains("<link rel=\"stylesheet\" href=\"?edgedav-ui=app.css\">"));
    assert!(!page.contains("<style"), "{page}");
    let handler = page.split(" on").skip(1).find(|rest| {
        let name = rest.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        name.len() < rest.len() && name.starts_with('=')
    });
    assert_eq!(handler, None, "an event handler attribute:\n{page}");
}

#[test]
fn assets_are_served_on_any_collection_and_revalidated_by_etag() {
    let s = Server::new();
    s.expect("MKCOL", "/d", 201);
    s.expect("PUT", "/d/f.txt", 201);
    for (target, content_type, marker) in [
        (
            "/?edgedav-ui=app.js",
            "text/javascript; charset=utf-8",
            "'use strict';",
        ),
        (
            "/d/?edgedav-ui=app.css",
            "text/css; charset=utf-8",
            "--accent",
        ),
        (
            "/d?x=1&edgedav-ui=app.js",
            "text/javascript; charset=utf-8",
            "XMLHttpRequest",
        ),
    ] {
        let r = s.get(target);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.header("Content-Type"), Some(content_type), "{target}");
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
        assert!(r.body.contains(marker), "{target}");
        assert_eq!(
            r.header("Content-Length"),
            Some(r.body.len().to_string().as_str())
        );
        let etag = r.header("ETag").expect("ETag").to_owned();
        let again = s.send("GET", target, &[("If-None-Match", &etag)], "");
        assert_eq!((again.status, again.body.as_str()), (304, ""), "{target}");
        let head = s.send("HEAD", target, &[], "");
        assert_eq!((head.status, head.body.as_str()), (200, ""));
        assert_eq!(head.header("Content-Length"), r.header("Content-Length"));
    }
    assert_eq!(s.get("/?edgedav-ui=nope.js").status, 404);
    // The parameter means nothing elsewhere: a file is served as itself, and
    // a look-alike parameter still gets the listing.
    assert_eq!(s.get("/d/f.txt?edgedav-ui=app.js").body, "x");
    let listing = s.get("/d/?edgedav-uix=app.js");
    assert!(
        listing.body.starts_with("<!DOCTYPE html>"),
        "{}",
        listing.body
    );
}

#[test]
fn large_collections_are_listed_whole_across_storage_pages() {
    let s = Server::new();
    s.expect("MKCOL", "/many", 201);
    const N: usize = 2345;
    for i in 0..N {
        s.expect("PUT", &format!("/many/f{i:04}"), 201);
    }
    let body = s.get("/many/").body;
    assert_eq!(body.matches("<tr class=\"file\"").count(), N);
    for i in [0, 999, 1000, 2000, N - 1] {
        assert!(body.contains(&format!("data-name=\"f{i:04}\"")), "f{i:04}");
    }
    assert!(body.ends_with("</tbody>\n</table>\n</body></html>\n"));
}

#[test]
fn sizes_are_readable() {
    assert_eq!(human_size(0), "0 B");
    assert_eq!(human_size(1023), "1023 B");
    assert_eq!(human_size(1536), "1.5 KiB");
    assert_eq!(human_size(5 << 30), "5.0 GiB");
    assert_eq!(human_size(u64::MAX), "16.0 EiB");
}
