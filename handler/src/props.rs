//! Live properties (RFC 4918 §15, RFC 4331) computed from storage metadata
//! and the lock table.

use crate::backend::{ActiveLock, Env, LockScope, Metadata, PropertyName, Timestamp};
use crate::date::{http_date_bytes, rfc3339_bytes};
use crate::path::DavPath;
use crate::xml::{DAV, XmlWriter};

/// Declares the live properties: the enum, their names and their tags
/// (written whole, `<D:name>` and `</D:name>`, not piece by piece).
macro_rules! live_properties {
    ($($variant:ident = $name:literal,)*) => {
        /// A live property of the DAV: namespace.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum LiveProp {
            $($variant,)*
        }

        impl LiveProp {
            /// The property called `name` in DAV:, if live.
            fn named(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$variant),)*
                    _ => None,
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            fn open_tag(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!("<D:", $name, ">"),)*
                }
            }

            fn close_tag(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!("</D:", $name, ">"),)*
                }
            }
        }
    };
}

live_properties! {
    CreationDate = "creationdate",
    DisplayName = "displayname",
    GetContentLength = "getcontentlength",
    GetContentType = "getcontenttype",
    GetEtag = "getetag",
    GetLastModified = "getlastmodified",
    LockDiscovery = "lockdiscovery",
    ResourceType = "resourcetype",
    SupportedLock = "supportedlock",
    QuotaAvailableBytes = "quota-available-bytes",
    QuotaUsedBytes = "quota-used-bytes",
}

/// Live properties returned by `allprop` and `propname`, in output order
/// (the quota ones are only returned when asked for by name).
pub const ALLPROP: &[LiveProp] = &[
    LiveProp::CreationDate,
    LiveProp::DisplayName,
    LiveProp::GetContentLength,
    LiveProp::GetContentType,
    LiveProp::GetEtag,
    LiveProp::GetLastModified,
    LiveProp::LockDiscovery,
    LiveProp::ResourceType,
    LiveProp::SupportedLock,
];

impl LiveProp {
    /// The live property `name` is, if any.
    pub fn of(name: &PropertyName) -> Option<Self> {
        if name.namespace == DAV {
            Self::named(&name.name)
        } else {
            None
        }
    }
}

/// Whether a property is computed by the server (and so cannot be set or
/// removed with PROPPATCH). `displayname` is writable: a stored value wins
/// over the name-derived default.
pub fn is_protected(name: &PropertyName) -> bool {
    LiveProp::of(name).is_some_and(|p| p != LiveProp::DisplayName)
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

/// The live property `prop` of a resource, or `None` when it does not apply
/// to it (e.g. `getcontentlength` on a collection). Only the quota
/// properties call the store.
pub fn live_value<'a>(env: &Env<'_>, r: &Resource<'a>, prop: LiveProp) -> Option<Live<'a>> {
    let file = !r.meta.is_collection();
    Some(match prop {
        LiveProp::CreationDate => Live::Created(r.meta.created.unwrap_or(r.meta.modified)),
        LiveProp::DisplayName => Live::Text(r.path.name()),
        LiveProp::GetContentLength if file => Live::Number(r.meta.size),
        LiveProp::GetContentType if file => Live::ContentType(r.path, r.meta),
        LiveProp::GetContentLength | LiveProp::GetContentType => return None,
        LiveProp::GetEtag => Live::ETag(&r.meta.etag),
        LiveProp::GetLastModified => Live::Modified(r.meta.modified),
        LiveProp::ResourceType if file => Live::Markup(""),
        LiveProp::ResourceType => Live::Markup("<D:collection/>"),
        LiveProp::LockDiscovery => Live::Locks(r.locks, r.path.as_str()),
        LiveProp::SupportedLock => Live::Markup(SUPPORTED_LOCK),
        LiveProp::QuotaAvailableBytes | LiveProp::QuotaUsedBytes => {
            let space = env.storage.space_usage(r.path.as_str()).ok()?;
            Live::Number(if prop == LiveProp::QuotaUsedBytes {
                space.used
            } else {
                space.available
            }?)
        }
    })
}

impl Live<'_> {
    /// Writes the property `prop` with this value.
    pub fn write_as(&self, prop: LiveProp, w: &mut XmlWriter) {
        w.raw(prop.open_tag());
        let start = w.len();
        self.write(w);
        // Without content (a file's resourcetype, no locks): `<D:x/>`, half
        // the bytes of an open and a close tag, in every listed member.
        if w.len() == start {
            w.end_empty();
        } else {
            w.raw(prop.close_tag());
        }
    }

    /// Writes the property's content.
    fn write(&self, w: &mut XmlWriter) {
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
        [guess, charset].concat()
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
    let extension = match name.bytes().rposition(|b| b == b'.') {
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
    fn live_properties_are_named_and_tagged_alike() {
        for prop in ALLPROP
            .iter()
            .chain(&[LiveProp::QuotaAvailableBytes, LiveProp::QuotaUsedBytes])
        {
            assert_eq!(
                LiveProp::of(&PropertyName::new(DAV, prop.name())),
                Some(*prop)
            );
            assert_eq!(prop.open_tag(), format!("<D:{}>", prop.name()));
            assert_eq!(prop.close_tag(), format!("</D:{}>", prop.name()));
        }
        assert_eq!(LiveProp::of(&PropertyName::new("urn:x", "getetag")), None);
        assert_eq!(LiveProp::of(&PropertyName::new(DAV, "unknown")), None);
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
