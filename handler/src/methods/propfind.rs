//! PROPFIND (RFC 4918 §9.1): the body is streamed, one storage page of
//! members per chunk, so a listing of any size needs bounded memory.

use super::{Depth, depth, request_path, stat_existing};
use crate::backend::{ActiveLock, Entry, Env, Metadata, Property, PropertyName};
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
        listing: None,
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

/// Members fetched per storage call.
const PAGE: u32 = 1000;

/// Bytes of XML per chunk of output: a page of members goes out in several
/// chunks small enough for the CPU's cache (a page of 1,000 files is 700
/// KiB with `allprop`), and no buffer, in the guest or the host, grows to
/// a page.
const CHUNK: usize = 64 * 1024;

/// Room reserved past [`CHUNK`] for the member that crosses it (one of
/// `allprop` is about 700 bytes), so that member does not grow the buffer
/// by a copy of everything written before it.
const CROSSING: usize = 4 * 1024;

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
    /// The page being written, when a chunk filled up before its end.
    listing: Option<Listing>,
    emitted: u64,
    done: bool,
}

/// A page of a collection's members, and what their hrefs start with.
struct Listing {
    dir: DavPath,
    href: String,
    entries: std::vec::IntoIter<Entry>,
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
        w.reserve(CHUNK + CROSSING);
        while w.len() < CHUNK && !self.done {
            let Some(mut listing) = self.listing.take().or_else(|| self.next_listing(&mut w))
            else {
                continue;
            };
            self.write_members(&mut w, &mut listing);
            if listing.entries.len() > 0 {
                self.listing = Some(listing);
            }
        }
        Ok(Some(w.finish()))
    }
}

impl Walk<'_> {
    /// The next page of the collections still to list. None when there is
    /// none (the multistatus is then closed) or when listing failed (the
    /// collection is then reported with its status, and the walk goes on).
    fn next_listing(&mut self, w: &mut XmlWriter) -> Option<Listing> {
        let Some((dir, cursor)) = self.pending.pop() else {
            w.close_dav("multistatus");
            self.done = true;
            return None;
        };
        match self
            .env
            .storage
            .list_members(dir.as_str(), cursor.as_deref(), PAGE)
        {
            Ok(page) => {
                if let Some(next) = page.next {
                    self.pending.push((dir.clone(), Some(next)));
                }
                Some(Listing {
                    href: dir.href(true),
                    dir,
                    entries: page.entries.into_iter(),
                })
            }
            Err(e) => {
                multistatus::status_response(w, &dir.href(true), DavError::from(e).status);
                None
            }
        }
    }

    /// Writes members of `listing` until the chunk is full or the page ends.
    fn write_members(&mut self, w: &mut XmlWriter, listing: &mut Listing) {
        let mut href = String::new();
        while w.len() < CHUNK {
            let Some(entry) = listing.entries.next() else {
                return;
            };
            let child = listing.dir.join(&entry.name);
            if self.depth == Depth::Infinity && self.emitted >= self.env.config.depth_infinity_limit
            {
                // Too many results: say so once and stop (RFC 4918 §9.1 allows a 507 for the request URI).
                multistatus::status_response(w, &child.href(entry.metadata.is_collection()), 507);
                w.close_dav("multistatus");
                self.done = true;
                return;
            }
            href.clear();
            href.push_str(&listing.href);
            href.extend(DavPath::member_href_pieces(
                &entry.name,
                entry.metadata.is_collection(),
            ));
            self.resource(w, &href, &child, &entry.metadata, entry.has_properties);
            if self.depth == Depth::Infinity && entry.metadata.is_collection() {
                self.pending.push((child, None));
            }
        }
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

    /// The name alone, for `propname`.
    fn name(namespace: &'a str, name: &'a str) -> Self {
        Self {
            namespace,
            name,
            value: None,
        }
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
        w.open_dav("response");
        w.open_dav("href");
        w.raw(href);
        w.close_dav("href");
        let lookup = |namespace, name, live| lookup(env, &r, &dead, namespace, name, live);
        // Found properties are written as they are looked up; only the
        // missing ones are collected (rarely any), for the 404 propstat.
        let mut found = FoundProps { w, open: false };
        let mut missing: Vec<&PropertyName> = Vec::new();
        match &self.selection {
            Selection::Prop(names) => {
                for (name, &live) in names.iter().zip(&self.live) {
                    match lookup(&name.namespace, &name.name, live) {
                        Some(f) => found.write(&f),
                        None => missing.push(name),
                    }
                }
            }
            Selection::AllProp(include) => {
                for &live in ALLPROP {
                    if let Some(f) = lookup(DAV, live.name(), Some(live)) {
                        found.write(&f);
                    }
                }
                // A dead property named like one of `allprop`'s live ones
                // was written in its place above.
                for p in dead.iter().filter(|p| !in_allprop(&p.name)) {
                    found.write(&Found::dead(p));
                }
                let mut included: Vec<&PropertyName> = Vec::new();
                for (name, &live) in include.iter().zip(&self.live) {
                    let written = dead.iter().any(|p| p.name == *name)
                        || included.contains(&name)
                        || allprop_has(env, &r, name);
                    if !written {
                        match lookup(&name.namespace, &name.name, live) {
                            Some(f) => {
                                found.write(&f);
                                included.push(name);
                            }
                            None => missing.push(name),
                        }
                    }
                }
            }
            Selection::PropName => {
                for &live in ALLPROP {
                    if live_value(env, &r, live).is_some() {
                        found.write(&Found::name(DAV, live.name()));
                    }
                }
                for p in dead.iter().filter(|p| !allprop_has(env, &r, &p.name)) {
                    found.write(&Found::name(&p.name.namespace, &p.name.name));
                }
            }
        }
        let w = found.close();
        if !missing.is_empty() {
            propstat(w, missing.iter().map(|n| (*n, None)), 404);
        }
        w.close_dav("response");
    }
}

/// Whether `name` is one of the live properties `allprop` writes.
fn in_allprop(name: &PropertyName) -> bool {
    LiveProp::of(name).is_some_and(|l| ALLPROP.contains(&l))
}

/// Whether `name` is one of `allprop`'s live properties and the resource
/// has it (a collection has no `getcontentlength`), so `allprop` and
/// `propname` list it among the live ones.
fn allprop_has(env: &Env<'_>, r: &Resource<'_>, name: &PropertyName) -> bool {
    LiveProp::of(name).is_some_and(|l| ALLPROP.contains(&l) && live_value(env, r, l).is_some())
}

/// The `DAV:propstat` of a resource's found properties (status 200), opened
/// at the first one: properties are written as they are found, with no list
/// of them per member.
struct FoundProps<'w> {
    w: &'w mut XmlWriter,
    open: bool,
}

impl<'w> FoundProps<'w> {
    fn write(&mut self, found: &Found<'_>) {
        if !self.open {
            self.w.open_dav("propstat");
            self.w.open_dav("prop");
            self.open = true;
        }
        found.write(self.w);
    }

    /// Closes the propstat, if any property was found.
    fn close(self) -> &'w mut XmlWriter {
        if self.open {
            self.w.close_dav("prop");
            close_propstat(self.w, 200);
        }
        self.w
    }
}

/// A `DAV:propstat` grouping properties that share a status.
pub fn propstat<'n>(
    w: &mut XmlWriter,
    props: impl Iterator<Item = (&'n PropertyName, Option<&'n str>)>,
    status: u16,
) {
    w.open_dav("propstat");
    w.open_dav("prop");
    for (name, value) in props {
        w.property(&name.namespace, &name.name, value);
    }
    w.close_dav("prop");
    close_propstat(w, status);
}

/// The status of a propstat whose `DAV:prop` is closed, and its end.
fn close_propstat(w: &mut XmlWriter, status: u16) {
    w.open_dav("status");
    write_status_line(w, status);
    w.close_dav("status");
    w.close_dav("propstat");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Server, request};

    #[test]
    fn a_listing_goes_out_in_bounded_chunks() {
        let s = Server::new();
        s.expect("MKCOL", "/c", 201);
        for i in 0..1500 {
            s.expect("PUT", &format!("/c/{i:04}"), 201);
        }
        let env = s.env();
        let mut req = request("PROPFIND", "/c/", &[("Depth", "1")], b"");
        let mut response = propfind(&env, &mut req).expect("propfind");
        let Some(Part::Generated(mut walk)) = response.body.pop() else {
            panic!("a multistatus is generated");
        };
        let (mut body, mut sizes, mut capacities) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(chunk) = walk.next_chunk().expect("chunk") {
            sizes.push(chunk.len());
            capacities.push(chunk.capacity());
            body.extend(chunk);
        }
        // Two pages of members (1,000 and 500), each cut into chunks of
        // CHUNK bytes and the member that crossed it.
        assert!(sizes.len() > 10, "{sizes:?}");
        assert!(sizes.iter().all(|&n| n < CHUNK + 1024), "{sizes:?}");
        // No chunk's buffer grew (by a copy) for the member that crossed.
        assert!(
            capacities.iter().all(|&c| c <= CHUNK + CROSSING),
            "{capacities:?}"
        );
        let body = String::from_utf8(body).expect("utf-8");
        assert_eq!(body.matches("<D:response>").count(), 1501);
        for i in 0..1500 {
            let href = format!("<D:href>/c/{i:04}</D:href>");
            assert_eq!(body.matches(&href).count(), 1, "{href}");
        }
        assert!(
            xml::parse(body.as_bytes())
                .expect("well-formed")
                .is_dav("multistatus")
        );
    }

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
