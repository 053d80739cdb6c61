//! Request bodies, and a tiny namespace-aware XML tree to check multistatus
//! responses.

// ---------------------------------------------------------------------------
// Request bodies

pub const DAV: &str = "DAV:";

/// `<propfind><prop>…</prop></propfind>` asking for the given properties.
pub fn propfind_prop(names: &[(&str, &str)]) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>"#,
    );
    for (i, (ns, name)) in names.iter().enumerate() {
        if *ns == DAV {
            s.push_str(&format!("<D:{name}/>"));
        } else {
            s.push_str(&format!(r#"<p{i}:{name} xmlns:p{i}="{ns}"/>"#));
        }
    }
    s.push_str("</D:prop></D:propfind>");
    s
}

pub const ALLPROP: &str =
    r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;
pub const PROPNAME: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>"#;

/// A `lockinfo` body for a write lock.
pub fn lockinfo(scope: &str, owner_href: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>{owner_href}</D:href></D:owner></D:lockinfo>"#
    )
}

// ---------------------------------------------------------------------------
// A tiny namespace-aware XML tree

/// An element with its resolved namespace, local name, attributes (by
/// qualified name as written), child elements and directly contained text.
#[derive(Debug, Clone, Default)]
pub struct Xml {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Xml>,
    pub text: String,
}

impl Xml {
    pub fn parse(s: &str) -> Result<Xml, String> {
        use quick_xml::events::Event;
        use quick_xml::name::ResolveResult;
        let mut r = quick_xml::reader::NsReader::from_str(s);
        let mut stack: Vec<Xml> = vec![Xml::default()];
        let start =
            |res: ResolveResult, e: &quick_xml::events::BytesStart| -> Result<Xml, String> {
                let ns = match res {
                    ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                    ResolveResult::Unbound => String::new(),
                    ResolveResult::Unknown(p) => {
                        return Err(format!(
                            "unknown namespace prefix {:?}",
                            String::from_utf8_lossy(&p)
                        ));
                    }
                };
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| e.to_string())?;
                    let v = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
                    attrs.push((String::from_utf8_lossy(a.key.as_ref()).into_owned(), v));
                }
                Ok(Xml {
                    ns,
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    attrs,
                    ..Default::default()
                })
            };
        loop {
            let (res, ev) = r.read_resolved_event().map_err(|e| e.to_string())?;
            match ev {
                Event::Start(e) => {
                    let x = start(res, &e)?;
                    stack.push(x);
                }
                Event::Empty(e) => {
                    let x = start(res, &e)?;
                    stack.last_mut().unwrap().children.push(x);
                }
                Event::End(_) => {
                    let x = stack.pop().unwrap();
                    stack
                        .last_mut()
                        .ok_or("unbalanced end tag")?
                        .children
                        .push(x);
                }
                Event::Text(t) => {
                    let t = t.unescape().map_err(|e| e.to_string())?;
                    stack.last_mut().unwrap().text.push_str(&t);
                }
                Event::CData(t) => {
                    stack
                        .last_mut()
                        .unwrap()
                        .text
                        .push_str(&String::from_utf8_lossy(&t));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if stack.len() != 1 {
            return Err("unclosed elements".into());
        }
        let mut doc = stack.pop().unwrap();
        let n = doc.children.len();
        if n != 1 {
            return Err(format!("{n} root elements"));
        }
        Ok(doc.children.remove(0))
    }

    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Xml> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Xml> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// First descendant (depth first, excluding self) with that name.
    pub fn find(&self, ns: &str, name: &str) -> Option<&Xml> {
        for c in &self.children {
            if c.is(ns, name) {
                return Some(c);
            }
            if let Some(x) = c.find(ns, name) {
                return Some(x);
            }
        }
        None
    }

    /// All descendants with that name.
    pub fn find_all<'a>(&'a self, ns: &str, name: &str) -> Vec<&'a Xml> {
        let mut out = Vec::new();
        fn walk<'a>(x: &'a Xml, ns: &str, name: &str, out: &mut Vec<&'a Xml>) {
            for c in &x.children {
                if c.is(ns, name) {
                    out.push(c);
                }
                walk(c, ns, name, out);
            }
        }
        walk(self, ns, name, &mut out);
        out
    }

    /// All text below this element, concatenated and trimmed.
    pub fn all_text(&self) -> String {
        fn walk(x: &Xml, out: &mut String) {
            out.push_str(&x.text);
            for c in &x.children {
                walk(c, out);
            }
        }
        let mut s = String::new();
        walk(self, &mut s);
        s.trim().to_string()
    }

    pub fn attr(&self, qname: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == qname)
            .map(|(_, v)| v.as_str())
    }
}

/// One `DAV:response` of a multistatus.
#[derive(Debug, Clone)]
pub struct MsResponse {
    /// The href as sent.
    pub href: String,
    /// Status of a response without propstat (e.g. a failed member of a DELETE).
    pub status: Option<u16>,
    pub propstats: Vec<PropStat>,
    pub xml: Xml,
}

#[derive(Debug, Clone)]
pub struct PropStat {
    pub status: u16,
    /// The children of `DAV:prop`.
    pub props: Vec<Xml>,
}

/// The code of a `HTTP/1.1 207 Multi-Status` status line.
pub fn status_code(line: &str) -> u16 {
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"))
}

impl MsResponse {
    pub fn from_xml(x: &Xml) -> MsResponse {
        let href = x
            .child(DAV, "href")
            .map(|h| h.all_text())
            .unwrap_or_else(|| panic!("response without href: {x:?}"));
        let status = x.child(DAV, "status").map(|s| status_code(&s.all_text()));
        let propstats = x
            .children_named(DAV, "propstat")
            .map(|ps| PropStat {
                status: status_code(
                    &ps.child(DAV, "status")
                        .expect("propstat without status")
                        .all_text(),
                ),
                props: ps
                    .child(DAV, "prop")
                    .map(|p| p.children.clone())
                    .unwrap_or_default(),
            })
            .collect();
        MsResponse {
            href,
            status,
            propstats,
            xml: x.clone(),
        }
    }

    /// The href as a decoded path (scheme and authority removed).
    pub fn path(&self) -> String {
        href_path(&self.href)
    }

    /// The property and the status of the propstat that holds it.
    pub fn prop(&self, ns: &str, name: &str) -> Option<(u16, &Xml)> {
        self.propstats.iter().find_map(|ps| {
            ps.props
                .iter()
                .find(|p| p.is(ns, name))
                .map(|p| (ps.status, p))
        })
    }

    /// The property, which must be in a 200 propstat.
    pub fn prop_ok(&self, ns: &str, name: &str) -> &Xml {
        match self.prop(ns, name) {
            Some((200, p)) => p,
            Some((s, _)) => panic!(
                "{ns}{name} of {} has status {s}:\n{:#?}",
                self.href, self.propstats
            ),
            None => panic!(
                "{ns}{name} missing for {}:\n{:#?}",
                self.href, self.propstats
            ),
        }
    }

    pub fn is_collection(&self) -> bool {
        self.prop_ok(DAV, "resourcetype")
            .child(DAV, "collection")
            .is_some()
    }
}

/// Finds the response for `path` (compared decoded, ignoring a trailing slash).
pub fn find_response<'a>(ms: &'a [MsResponse], path: &str) -> Option<&'a MsResponse> {
    let want = percent_decode(path);
    let want = want.trim_end_matches('/');
    ms.iter().find(|r| r.path().trim_end_matches('/') == want)
}

/// `http://host:port/a%20b` → `/a b`; `/a%20b` → `/a b`.
pub fn href_path(href: &str) -> String {
    let p = match href.find("://") {
        Some(i) => {
            let rest = &href[i + 3..];
            match rest.find('/') {
                Some(j) => &rest[j..],
                None => "/",
            }
        }
        None => href,
    };
    percent_decode(p)
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
