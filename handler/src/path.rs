//! URL paths to storage paths and back.
//!
//! Every path a backend sees is produced here: percent-decoded, normalised
//! and free of `.`/`..` segments, so no request can name anything outside
//! the store's root.
//!
//! A segment may be at most [`MAX_SEGMENT`] (255) bytes once percent-decoded:
//! that is the longest file name local disks take (ext4's `NAME_MAX`), so a
//! longer one would only fail in storage as a 500. A request URL with a longer
//! segment is answered 414 URI Too Long; a `Destination` naming one is 400.
//! The length of a whole path is left to the backend (S3, for one, allows
//! 1024-byte keys).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::error::{DavError, DavResult};
use crate::xml::is_xml_char;

/// A normalised storage path: `/` or `/a/b` (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DavPath {
    path: String,
}

/// Characters left unescaped in hrefs: RFC 3986 unreserved plus a few
/// sub-delimiters that are safe in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// The longest path segment accepted, in bytes after percent-decoding.
pub const MAX_SEGMENT: usize = 255;

impl DavPath {
    pub fn root() -> Self {
        Self { path: "/".into() }
    }

    /// Parses the path of a request target (`/a%20b/c?query`).
    pub fn from_target(target: &str) -> DavResult<Self> {
        let path = target.split('?').next().unwrap_or("");
        if path.contains('#') {
            // A fragment never belongs in a request target; ignoring it would
            // act on a different resource than the client named.
            return Err(DavError::bad_request(
                "request target must not contain a fragment",
            ));
        }
        if !path.starts_with('/') {
            return Err(DavError::bad_request(
                "request target must be an absolute path",
            ));
        }
        // Written as it is checked, without a string per segment.
        let mut normal = String::with_capacity(path.len());
        for raw in path.split('/') {
            let segment = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| DavError::bad_request("path is not valid UTF-8"))?;
            match segment.as_ref() {
                "" | "." => {}
                ".." => return Err(DavError::bad_request("path must not contain '..'")),
                // A name is written into PROPFIND XML (href, displayname):
                // one that XML cannot carry would break the whole listing.
                s if s.contains(['/', '\\'])
                    || s.chars().any(|c| c.is_ascii_control() || !is_xml_char(c)) =>
                {
                    return Err(DavError::bad_request(
                        "path segment contains '/', '\\' or a control character",
                    ));
                }
                s if s.len() > MAX_SEGMENT => {
                    return Err(DavError::status(
                        414,
                        format!("path segment longer than {MAX_SEGMENT} bytes"),
                    ));
                }
                s => {
                    normal.push('/');
                    normal.push_str(s);
                }
            }
        }
        if normal.is_empty() {
            normal.push('/');
        }
        Ok(Self { path: normal })
    }

    pub fn as_str(&self) -> &str {
        &self.path
    }

    pub fn is_root(&self) -> bool {
        self.path == "/"
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path.split('/').filter(|s| !s.is_empty())
    }

    /// The last segment, or "" for the root.
    pub fn name(&self) -> &str {
        // A byte loop rather than `rsplit`: a name is a few bytes, and the
        // `memrchr` behind `rsplit` costs more to set up than this takes
        // (a PROPFIND asks each member's name twice).
        let start = self
            .path
            .bytes()
            .rposition(|b| b == b'/')
            .map_or(0, |i| i + 1);
        &self.path[start..]
    }

    pub fn parent(&self) -> Option<Self> {
        if self.is_root() {
            return None;
        }
        let cut = self.path.rfind('/').unwrap_or(0);
        Some(if cut == 0 {
            Self::root()
        } else {
            Self {
                path: self.path[..cut].to_owned(),
            }
        })
    }

    pub fn join(&self, name: &str) -> Self {
        let parent = if self.is_root() {
            ""
        } else {
            self.path.as_str()
        };
        let mut path = String::with_capacity(parent.len() + 1 + name.len());
        path.push_str(parent);
        path.push('/');
        path.push_str(name);
        Self { path }
    }

    /// The URL path for this resource, percent-encoded (so it holds no XML
    /// markup either); collections get a trailing slash.
    pub fn href(&self, collection: bool) -> String {
        let mut href = String::from("/");
        let mut segments = self.segments().peekable();
        while let Some(segment) = segments.next() {
            let more = segments.peek().is_some();
            href.extend(Self::member_href_pieces(segment, collection || more));
        }
        href
    }

    /// What follows a collection's href for its member called `name`: the
    /// encoded name, and a slash for a collection (a listing encodes its
    /// collection's href once, not once per member).
    pub fn member_href_pieces(name: &str, collection: bool) -> impl Iterator<Item = &str> {
        utf8_percent_encode(name, SEGMENT).chain(collection.then_some("/"))
    }
}

/// Parses a `Destination` header: an absolute URI on this server or an
/// absolute path. Another authority is answered 502 (RFC 4918 §9.8.5).
pub fn parse_destination(value: &str, authority: Option<&str>) -> DavResult<DavPath> {
    let value = value.trim();
    let path = if let Some(rest) = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
    {
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if let Some(authority) = authority
            && !same_authority(host, authority)
        {
            return Err(DavError::status(502, "Destination is on another server"));
        }
        path
    } else if value.starts_with('/') {
        value
    } else if value.contains("://") {
        return Err(DavError::status(502, "Destination uses another scheme"));
    } else {
        return Err(DavError::bad_request(
            "Destination must be an absolute URI or path",
        ));
    };
    DavPath::from_target(path).map_err(|e| match e.status {
        // A header is not the request URI: its flaws are the request's, 400.
        414 => DavError::bad_request(format!("Destination {}", e.message)),
        _ => e,
    })
}

/// Compares authorities ignoring case and a default port.
fn same_authority(a: &str, b: &str) -> bool {
    let strip = |s: &str| {
        let s = s.rsplit('@').next().unwrap_or(s).to_ascii_lowercase();
        s.strip_suffix(":80")
            .or_else(|| s.strip_suffix(":443"))
            .map(str::to_owned)
            .unwrap_or(s)
    };
    strip(a) == strip(b)
}

/// Resolves an href found in a request body or `If` header to a path; hrefs
/// on other servers give `None`.
pub fn path_from_href(href: &str, authority: Option<&str>) -> Option<DavPath> {
    parse_destination(href, authority).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_href_is_its_collection_href_and_its_encoded_name() {
        let root = DavPath::root();
        for parent in [root.clone(), root.join("a"), root.join("a b").join("ü#%")] {
            for name in ["f.txt", "a b", "ü&<>\"#?", "100%", "x;y=z"] {
                for collection in [false, true] {
                    let member = parent.href(true)
                        + &DavPath::member_href_pieces(name, collection).collect::<String>();
                    assert_eq!(member, parent.join(name).href(collection), "{name}");
                }
            }
        }
    }

    #[test]
    fn normalises_and_decodes() {
        assert_eq!(
            DavPath::from_target("/a//b/./c%20d/?x=1").unwrap().as_str(),
            "/a/b/c d"
        );
        assert_eq!(DavPath::from_target("/").unwrap().as_str(), "/");
        assert_eq!(DavPath::from_target("").unwrap_err().status, 400);
    }

    #[test]
    fn refuses_traversal() {
        for bad in [
            "/frag/#ment",
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/a/%2E%2E",
            "/a%2fb",
            "/a%00b",
            "/a%01b",
            "/a%0Ab",
            "/a%7Fb",
            "/a%EF%BF%BEb",
            "/%ff",
        ] {
            assert_eq!(DavPath::from_target(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn hrefs_round_trip() {
        let p = DavPath::from_target("/dir/a%3Cb%26c.txt").unwrap();
        assert_eq!(p.as_str(), "/dir/a<b&c.txt");
        assert_eq!(p.href(false), "/dir/a%3Cb%26c.txt");
        assert_eq!(DavPath::root().href(true), "/");
        assert_eq!(DavPath::from_target("/ü").unwrap().href(true), "/%C3%BC/");
    }

    #[test]
    fn parents() {
        let p = DavPath::from_target("/a/b").unwrap();
        assert_eq!(p.parent().unwrap().as_str(), "/a");
        assert_eq!(p.parent().unwrap().parent().unwrap(), DavPath::root());
    }

    #[test]
    fn destinations() {
        let host = Some("example.com:8080");
        assert_eq!(
            parse_destination("http://example.com:8080/x%20y", host)
                .unwrap()
                .as_str(),
            "/x y"
        );
        assert_eq!(parse_destination("/x", host).unwrap().as_str(), "/x");
        assert_eq!(
            parse_destination("http://other/x", host)
                .unwrap_err()
                .status,
            502
        );
        assert_eq!(parse_destination("x", host).unwrap_err().status, 400);
        assert_eq!(
            parse_destination("http://EXAMPLE.com:8080", host).unwrap(),
            DavPath::root()
        );
    }
}
