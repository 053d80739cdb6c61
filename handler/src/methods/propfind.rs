//! PROPFIND (RFC 4918 §9.1): the body is streamed, one storage page of
//! members per chunk, so a listing of any size needs bounded memory.

use super::{Depth, depth, request_path, stat_existing};
use crate::backend::{ActiveLock, Env, Metadata, Property, PropertyName};
use crate::conditions::Preconditions;
use crate::error::{DavError, DavResult};
use crate::http::{ChunkSource, Part, Request, Response};
use crate::multistatus::{self, write_status_line};
use crate::path::DavPath;
use crate::props::{ALLPROP, Live, LiveProp, Resource, live_value};
use crate::xml::{self, DAV, Element, XmlWriter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// `allprop`, with the extra properties of an `include`.
    AllProp(Vec<PropertyName>),
    PropName,
    Prop(Vec<PropertyName>),
}

pub fn parse_body(body: &[u8]) -> DavResult<Selection> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Selection::AllProp(Vec::new()));
    }
    let root = xml::parse(body)?;
    if !root.is_dav("propfind") {
        return Err(DavError::bad_request("expected a DAV:propfind element"));
    }
    let names = |e: &Element| {
        e.elements()
            .map(|p| PropertyName::new(&p.namespace, &p.name))
            .collect::<Vec<_>>()
    };
    if root.child_dav("allprop").is_some() {
        return Ok(Selection::AllProp(
            root.child_dav("include").map(names).unwrap_or_default(),
        ));
    }
    if root.child_dav("propname").is_some() {
        return Ok(Selection::PropName);
    }
    match root.child_dav("prop") {
        Some(prop) => Ok(Selection::Prop(names(prop))),
        None => Err(DavError::bad_request(
            "propfind needs allprop, propname or prop",
        )),
    }
}

pub fn propfind<'a>(env: &'a Env<'a>, req: &mut Request<'_>) -> DavResult<Response<'a>> {
    let path = request_path(req)?;
    let depth = depth(req, Depth::Infinity)?;
    let body = req.read_body(env.config.max_xml_body)?;
    let selection = parse_body(&body)?;
    let meta = stat_existing(env, &path)?;
    // Only a collection can refuse Depth infinity (RFC 4918 §9.1.1); on a
    // file it means the same as Depth 0, and a missing resource is a 404.
    if meta.is_collection() && depth == Depth::Infinity && env.config.depth_infinity_limit == 0 {
        return Err(DavError::condition(
            403,
            "propfind-finite-depth",
            Vec::new(),
        ));
    }
    Preconditions::new(env, req.header("If"), req.authority.as_deref())?.check_if(&path)?;
    let locks = if selection.wants(&PropertyName::new(DAV, "lockdiscovery")) {
        walk_locks(env, &path, meta.is_collection() && depth != Depth::Zero)?
    } else {
        Vec::new()
    };
    let live = selection.named().iter().map(LiveProp::of).collect();
    let stream = Walk {
        env,
        selection,
        live,
        depth,
        locks,
        root: Some((path, meta)),
        pending: Vec::new(),
        emitted: 0,
        done: false,
    };
    let mut response = Response::new(207).header("Content-Type", "application/xml; charset=utf-8");
    response.body.push(Part::Generated(Box::new(stream)));
    Ok(response)
}

impl Selection {
    /// The properties asked for by name: `prop`'s, or `allprop`'s `include`.
    fn named(&self) -> &[PropertyName] {
        match self {
            Self::AllProp(names) | Self::Prop(names) => names,
            Self::PropName => &[],
        }
    }

    /// Whether the value of a property may be written: named, or part of
    /// `allprop` (whose live set includes every property worth a lookup).
    fn wants(&self, name: &PropertyName) -> bool {
        match self {
            Self::AllProp(_) => true,
            Self::PropName => false,
            Self::Prop(names) => names.contains(name),
        }
    }

    /// Whether dead properties may be written (`displayname` too: a stored
    /// value wins over the name-derived one).
    fn wants_dead(&self) -> bool {
        match self {
            Self::Prop(names) => names
                .iter()
                .any(|n| LiveProp::of(n).is_none_or(|p| p == LiveProp::DisplayName)),
            Self::AllProp(_) | Self::PropName => true,
        }
    }
}

/// Every lock that can cover a resource of the walk, in two calls instead of
/// one per resource: deep locks above the root, and locks at or below it
/// (only those on the root when the walk does not go below it).
fn walk_locks(env: &Env<'_>, root: &DavPath, below: bool) -> DavResult<Vec<ActiveLock>> {
    let mut locks = env.locks.covering(root.as_str())?;
    if !below {
        return Ok(locks);
    }
    // Locks on the root itself come from `within` (a lock store may present
    // the same lock with a different token on each call).
    locks.retain(|l| l.root != root.as_str());
    locks.extend(env.locks.within(root.as_str())?);
    Ok(locks)
}

/// Members fetched per storage call (and so per chunk of output).
const PAGE: u32 = 1000;

/// Bytes of output per member to reserve: a file's `DAV:response` with the
/// usual properties is 300-400 bytes.
const RESPONSE_SIZE_HINT: usize = 512;

/// Walks the requested tree depth-first, a page of members at a time.
struct Walk<'a> {
    env: &'a Env<'a>,
    selection: Selection,
    /// Which of [`Selection::named`] are live properties, decided once.
    live: Vec<Option<LiveProp>>,
    depth: Depth,
    /// The locks that may cover walked resources (see [`walk_locks`]);
    /// empty when `lockdiscovery` is not written.
    locks: Vec<ActiveLock>,
    root: Option<(DavPath, Metadata)>,
    /// Collections still to list, with the cursor of their next page.
    pending: Vec<(DavPath, Option<String>)>,
    emitted: u64,
    done: bool,
}

impl ChunkSource for Walk<'_> {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, DavError> {
        if self.done {
            return Ok(None);
        }
        if let Some((path, meta)) = self.root.take() {
            let mut w = multistatus::begin();
            // The root comes from `stat`, which says nothing about its
            // dead properties.
            let href = path.href(meta.is_collection());
            self.resource(&mut w, &href, &path, &meta, true);
            if meta.is_collection() && self.depth != Depth::Zero {
                self.pending.push((path, None));
            }
            return Ok(Some(w.take()));
        }
        let mut w = XmlWriter::fragment();
        let Some((dir, cursor)) = self.pending.pop() else {
            w.close_dav("multistatus");
            self.done = true;
            return Ok(Some(w.finish()));
        };
        let page = match self
            .env
            .storage
            .list_members(dir.as_str(), cursor.as_deref(), PAGE)
        {
            Ok(page) => page,
            Err(e) => {
                // Report the collection that could not be listed and go on.
                multistatus::status_response(&mut w, &dir.href(true), DavError::from(e).status);
                return Ok(Some(w.finish()));
            }
        };
        if let Some(next) = page.next {
            self.pending.push((dir.clone(), Some(next)));
        }
        // One allocation for the page's output instead of a doubling (and,
        // in the guest, a copy) every few members.
        w.reserve(page.entries.len() * RESPONSE_SIZE_HINT);
        let dir_href = dir.href(true);
        let mut href = String::new();
        for entry in page.entries {
            let child = dir.join(&entry.name);
            if self.depth == Depth::Infinity && self.emitted >= self.env.config.depth_infinity_limit
            {
                // Too many results: say so once and stop (RFC 4918 §9.1 allows a 507 for the request URI).
                multistatus::status_response(
                    &mut w,
                    &child.href(entry.metadata.is_collection()),
                    507,
                );
                w.close_dav("multistatus");
                self.done = true;
                return Ok(Some(w.finish()));
            }
            href.clear();
            href.push_str(&dir_href);
            href.extend(DavPath::member_href_pieces(
                &entry.name,
                entry.metadata.is_collection(),
            ));
            self.resource(&mut w, &href, &child, &entry.metadata, entry.has_properties);
            if self.depth == Depth::Infinity && entry.metadata.is_collection() {
                self.pending.push((child, None));
            }
        }
        Ok(Some(w.finish()))
    }
}

/// A property found on a resource, borrowed from the request, the resource
/// or its dead properties.
struct Found<'a> {
    namespace: &'a str,
    name: &'a str,
    /// `None` for `propname`, which lists names only.
    value: Option<Value<'a>>,
}

enum Value<'a> {
    Live(LiveProp, Live<'a>),
    Dead(&'a str),
}

impl<'a> Found<'a> {
    fn dead(p: &'a Property) -> Self {
        Self {
            namespace: &p.name.namespace,
            name: &p.name.name,
            value: Some(Value::Dead(&p.value)),
        }
    }

    fn is(&self, name: &PropertyName) -> bool {
        self.namespace == name.namespace && self.name == name.name
    }

    fn write(&self, w: &mut XmlWriter) {
        match &self.value {
            None => w.property(self.namespace, self.name, None),
            Some(Value::Dead(value)) => w.property(self.namespace, self.name, Some(value)),
            Some(Value::Live(prop, live)) => live.write_as(*prop, w),
        }
    }
}

/// A property by name (`live` when it is a live one): dead first (a stored
/// `displayname` wins over the live one), then live.
fn lookup<'a>(
    env: &Env<'_>,
    r: &Resource<'a>,
    dead: &'a [Property],
    namespace: &'a str,
    name: &'a str,
    live: Option<LiveProp>,
) -> Option<Found<'a>> {
    if let Some(p) = dead
        .iter()
        .find(|p| p.name.namespace == namespace && p.name.name == name)
    {
        return Some(Found::dead(p));
    }
    let prop = live?;
    live_value(env, r, prop).map(|live| Found {
        namespace,
        name,
        value: Some(Value::Live(prop, live)),
    })
}

impl Walk<'_> {
    /// One `DAV:response` with the selected properties of a resource, whose
    /// href (percent-encoded) is `href`. `has_properties` false promises it
    /// has no dead properties.
    fn resource(
        &mut self,
        w: &mut XmlWriter,
        href: &str,
        path: &DavPath,
        meta: &Metadata,
        has_properties: bool,
    ) {
        self.emitted += 1;
        let env = self.env;
        let dead: Vec<Property> = if has_properties && self.selection.wants_dead() {
            env.storage
                .get_properties(path.as_str())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let r = Resource {
            path,
            meta,
            locks: &self.locks,
        };
        let lookup = |namespace, name, live| lookup(env, &r, &dead, namespace, name, live);
        let mut found: Vec<Found<'_>> = Vec::with_capacity(ALLPROP.len() + dead.len());
        let mut missing: Vec<&PropertyName> = Vec::new();
        match &self.selection {
            Selection::Prop(names) => {
                for (name, &live) in names.iter().zip(&self.live) {
                    match lookup(&name.namespace, &name.name, live) {
                        Some(f) => found.push(f),
                        None => missing.push(name),
                    }
                }
            }
            Selection::AllProp(include) => {
                found.extend(
                    ALLPROP
                        .iter()
                        .filter_map(|&live| lookup(DAV, live.name(), Some(live))),
                );
                for p in &dead {
                    if !found.iter().any(|f| f.is(&p.name)) {
                        found.push(Found::dead(p));
                    }
                }
                for (name, &live) in include.iter().zip(&self.live) {
                    if !found.iter().any(|f| f.is(name)) {
                        match lookup(&name.namespace, &name.name, live) {
                            Some(f) => found.push(f),
                            None => missing.push(name),
                        }
                    }
                }
            }
            Selection::PropName => {
                for &live in ALLPROP {
                    if live_value(env, &r, live).is_some() {
                        found.push(Found {
                            namespace: DAV,
                            name: live.name(),
                            value: None,
                        });
                    }
                }
                for p in &dead {
                    if !found.iter().any(|f| f.is(&p.name)) {
                        found.push(Found {
                            namespace: &p.name.namespace,
                            name: &p.name.name,
                            value: None,
                        });
                    }
                }
            }
        }
        w.open_dav("response");
        w.open_dav("href");
        w.raw(href);
        w.close_dav("href");
        if !found.is_empty() {
            propstat_with(w, 200, |w| found.iter().for_each(|f| f.write(w)));
        }
        if !missing.is_empty() {
            propstat(w, missing.iter().map(|n| (*n, None)), 404);
        }
        w.close_dav("response");
    }
}

/// A `DAV:propstat` grouping properties that share a status.
pub fn propstat<'n>(
    w: &mut XmlWriter,
    props: impl Iterator<Item = (&'n PropertyName, Option<&'n str>)>,
    status: u16,
) {
    propstat_with(w, status, |w| {
        for (name, value) in props {
            w.property(&name.namespace, &name.name, value);
        }
    });
}

/// A `DAV:propstat` whose properties `write_props` writes.
fn propstat_with(w: &mut XmlWriter, status: u16, write_props: impl FnOnce(&mut XmlWriter)) {
    w.open_dav("propstat");
    w.open_dav("prop");
    write_props(w);
    w.close_dav("prop");
    w.open_dav("status");
    write_status_line(w, status);
    w.close_dav("status");
    w.close_dav("propstat");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selections() {
        assert_eq!(parse_body(b"").unwrap(), Selection::AllProp(vec![]));
        assert_eq!(
            parse_body(b"<propfind xmlns='DAV:'><allprop/><include><x xmlns='urn:a'/></include></propfind>").unwrap(),
            Selection::AllProp(vec![PropertyName::new("urn:a", "x")])
        );
        assert_eq!(
            parse_body(b"<D:propfind xmlns:D='DAV:'><D:propname/></D:propfind>").unwrap(),
            Selection::PropName
        );
        assert_eq!(
            parse_body(b"<propfind xmlns='DAV:'><prop><getetag/><z xmlns=''/></prop></propfind>")
                .unwrap(),
            Selection::Prop(vec![
                PropertyName::new(DAV, "getetag"),
                PropertyName::new("", "z")
            ])
        );
        assert_eq!(
            parse_body(b"<propfind xmlns='DAV:'/>").unwrap_err().status,
            400
        );
        assert_eq!(parse_body(b"<prop xmlns='DAV:'/>").unwrap_err().status, 400);
        assert_eq!(
            parse_body(b"<propfind xmlns='DAV:'><prop>")
                .unwrap_err()
                .status,
            400
        );
    }
}
