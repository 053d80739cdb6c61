//! Live properties (RFC 4918 §15, RFC 4331) computed from storage metadata
//! and the lock table.

use crate::backend::{ActiveLock, Env, LockScope, Metadata, PropertyName, Timestamp};
use crate::date::{http_date_bytes, rfc3339_bytes};
use crate::path::DavPath;
use crate::xml::{DAV, XmlWriter};

/// Live properties returned by `allprop` and `propname`, in output order.
pub const ALLPROP: &[&str] = &[
    "creationdate",
    "displayname",
    "getcontentlength",
    "getcontenttype",
    "getetag",
    "getlastmodified",
    "lockdiscovery",
    "resourcetype",
    "supportedlock",
];

/// Live properties only returned when asked for by name.
const ON_REQUEST: &[&str] = &["quota-available-bytes", "quota-used-bytes"];

/// Whether a property is computed by the server (and so cannot be set or
/// removed with PROPPATCH). `displayname` is writable: a stored value wins
/// over the name-derived default.
pub fn is_protected(name: &PropertyName) -> bool {
    name.namespace == DAV
        && (ALLPROP.contains(&name.name.as_str()) || ON_REQUEST.contains(&name.name.as_str()))
        && name.name != "displayname"
}

pub fn is_live(name: &PropertyName) -> bool {
    name.namespace == DAV
        && (ALLPROP.contains(&name.name.as_str()) || ON_REQUEST.contains(&name.name.as_str()))
}

/// What a live property is computed from: the resource and the locks that
/// may cover it.
pub struct Resource<'a> {
    pub path: &'a DavPath,
    pub meta: &'a Metadata,
    /// A superset of the locks covering the resource (those of a whole
    /// PROPFIND walk, fetched once); `lockdiscovery` keeps the covering ones.
    pub locks: &'a [ActiveLock],
}

/// The value of a live property, written straight into the response by
/// [`Live::write`] (no string per property and resource).
pub enum Live<'a> {
    /// Text, escaped when written.
    Text(&'a str),
    /// Markup written as is.
    Markup(&'static str),
    Number(u64),
    /// RFC 3339 (`creationdate`).
    Created(Timestamp),
    /// RFC 1123 (`getlastmodified`).
    Modified(Timestamp),
    ETag(&'a str),
    ContentType(&'a DavPath, &'a Metadata),
    /// The locks of the set that cover the path.
    Locks(&'a [ActiveLock], &'a str),
}

/// The live property `name` of a resource, or `None` when it does not apply
/// to it (e.g. `getcontentlength` on a collection). Only the quota
/// properties call the store.
pub fn live_value<'a>(env: &Env<'_>, r: &Resource<'a>, name: &str) -> Option<Live<'a>> {
    let file = !r.meta.is_collection();
    Some(match name {
        "creationdate" => Live::Created(r.meta.created.unwrap_or(r.meta.modified)),
        "displayname" => Live::Text(r.path.name()),
        "getcontentlength" if file => Live::Number(r.meta.size),
        "getcontenttype" if file => Live::ContentType(r.path, r.meta),
        "getetag" => Live::ETag(&r.meta.etag),
        "getlastmodified" => Live::Modified(r.meta.modified),
        "resourcetype" if file => Live::Markup(""),
        "resourcetype" => Live::Markup("<D:collection/>"),
        "lockdiscovery" => Live::Locks(r.locks, r.path.as_str()),
        "supportedlock" => Live::Markup(SUPPORTED_LOCK),
        "quota-available-bytes" | "quota-used-bytes" => {
            let space = env.storage.space_usage(r.path.as_str()).ok()?;
            Live::Number(if name == "quota-used-bytes" {
                space.used
            } else {
                space.available
            }?)
        }
        _ => return None,
    })
}

impl Live<'_> {
    /// Writes the property's content.
    pub fn write(&self, w: &mut XmlWriter) {
        match *self {
            Self::Text(text) => w.text(text),
            Self::Markup(markup) => w.raw(markup),
            Self::Number(n) => w.number(n),
            Self::Created(t) => w.raw_bytes(&rfc3339_bytes(t)),
            Self::Modified(t) => w.raw_bytes(&http_date_bytes(t)),
            Self::ETag(etag) => {
                w.raw("\"");
                w.text(etag);
                w.raw("\"");
            }
            Self::ContentType(path, meta) => match &meta.content_type {
                Some(stored) => w.text(stored),
                None => {
                    let (guess, charset) = guessed_type(path);
                    w.text(guess);
                    w.raw(charset);
                }
            },
            Self::Locks(locks, path) => {
                for lock in locks.iter().filter(|l| l.covers(path)) {
                    activelock(w, lock);
                }
            }
        }
    }
}

const SUPPORTED_LOCK: &str = "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>";

/// The content of `DAV:lockdiscovery` for a set of locks.
pub fn lockdiscovery(locks: &[ActiveLock]) -> String {
    let mut w = XmlWriter::fragment();
    for lock in locks {
        activelock(&mut w, lock);
    }
    String::from_utf8(w.finish()).unwrap_or_default()
}

fn activelock(w: &mut XmlWriter, lock: &ActiveLock) {
    w.open_dav("activelock");
    w.open_dav("locktype");
    w.empty_dav("write");
    w.close_dav("locktype");
    w.open_dav("lockscope");
    w.empty_dav(match lock.scope {
        LockScope::Exclusive => "exclusive",
        LockScope::Shared => "shared",
    });
    w.close_dav("lockscope");
    w.text_element_dav("depth", if lock.deep { "infinity" } else { "0" });
    if let Some(owner) = &lock.owner {
        w.open_dav("owner");
        w.raw(owner);
        w.close_dav("owner");
    }
    let timeout = lock
        .timeout
        .map_or_else(|| "Infinite".to_owned(), |s| format!("Second-{s}"));
    w.text_element_dav("timeout", &timeout);
    w.open_dav("locktoken");
    w.text_element_dav("href", &lock.token);
    w.close_dav("locktoken");
    w.open_dav("lockroot");
    let root = DavPath::from_target(&lock.root)
        .map(|p| p.href(false))
        .unwrap_or_else(|_| lock.root.clone());
    w.text_element_dav("href", &root);
    w.close_dav("lockroot");
    w.close_dav("activelock");
}

/// The stored content type, or one guessed from the extension.
pub fn content_type(path: &DavPath, meta: &Metadata) -> String {
    meta.content_type.clone().unwrap_or_else(|| {
        let (guess, charset) = guessed_type(path);
        format!("{guess}{charset}")
    })
}

thread_local! {
    /// The last extension looked up, and its type.
    static LAST_GUESS: std::cell::RefCell<(String, &'static str)> =
        const { std::cell::RefCell::new((String::new(), "")) };
}

/// The type guessed from the extension, and the charset suffix text types
/// get.
fn guessed_type(path: &DavPath) -> (&'static str, &'static str) {
    let name = path.name();
    // As `Path::extension`: a leading dot starts a name, not an extension.
    let extension = match name.rfind('.') {
        Some(dot) if dot > 0 => &name[dot + 1..],
        _ => "",
    };
    let guess = LAST_GUESS.with_borrow_mut(|(last, guess)| {
        // A listing's members mostly share an extension: one lookup each run.
        if last.as_str() != extension || guess.is_empty() {
            last.clear();
            last.push_str(extension);
            *guess = mime_guess::from_ext(extension)
                .first_raw()
                .unwrap_or("application/octet-stream");
        }
        *guess
    });
    let charset = if guess.starts_with("text/") {
        "; charset=utf-8"
    } else {
        ""
    };
    (guess, charset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessed_types_follow_mime_guess() {
        let names = [
            "a.txt", "b.TXT", ".txt", "README", "x.png", "y.png", "z.", "a.b.html", "a.txt",
        ];
        for name in names {
            let path = DavPath::from_target(&format!("/d/{name}")).unwrap();
            let expected = mime_guess::from_path(name)
                .first_raw()
                .unwrap_or("application/octet-stream");
            assert_eq!(guessed_type(&path).0, expected, "{name}");
        }
    }

    #[test]
    fn protection() {
        assert!(is_protected(&PropertyName::new(DAV, "getetag")));
        assert!(!is_protected(&PropertyName::new(DAV, "displayname")));
        assert!(!is_protected(&PropertyName::new("urn:x", "getetag")));
    }

    #[test]
    fn lock_xml() {
        let lock = ActiveLock {
            token: "urn:uuid:1".into(),
            root: "/a b".into(),
            scope: LockScope::Shared,
            deep: false,
            owner: Some("<href xmlns=\"DAV:\">me</href>".into()),
            timeout: Some(60),
        };
        let xml = lockdiscovery(&[lock]);
        assert!(xml.contains("<D:shared/>"));
        assert!(xml.contains("<D:depth>0</D:depth>"));
        assert!(xml.contains("<D:timeout>Second-60</D:timeout>"));
        assert!(xml.contains("<D:lockroot><D:href>/a%20b</D:href></D:lockroot>"));
        assert!(xml.contains("<D:owner><href xmlns=\"DAV:\">me</href></D:owner>"));
    }
}
