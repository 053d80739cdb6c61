//! PROPFIND (RFC 4918 §9.1): the body is streamed, one storage page of
//! members per chunk, so a listing of any size needs bounded memory.

use super::{Depth, depth, request_path, stat_existing};
use crate::backend::{Env, Metadata, Property, PropertyName};
use crate::conditions::Preconditions;
use crate::error::{DavError, DavResult};
use crate::http::{ChunkSource, Part, Request, Response};
use crate::multistatus::{self, status_line};
use crate::path::DavPath;
use crate::props::{ALLPROP, is_live, live_value};
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
    let stream = Walk {
        env,
        selection,
        depth,
        root: Some((path, meta)),
        pending: Vec::new(),
        emitted: 0,
        done: false,
    };
    let mut response = Response::new(207).header("Content-Type", "application/xml; charset=utf-8");
    response.body.push(Part::Generated(Box::new(stream)));
    Ok(response)
}

/// Members fetched per storage call (and so per chunk of output).
const PAGE: u32 = 1000;

/// Walks the requested tree depth-first, a page of members at a time.
struct Walk<'a> {
    env: &'a Env<'a>,
    selection: Selection,
    depth: Depth,
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
            self.resource(&mut w, &path, &meta);
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
            self.resource(&mut w, &child, &entry.metadata);
            if self.depth == Depth::Infinity && entry.metadata.is_collection() {
                self.pending.push((child, None));
            }
        }
        Ok(Some(w.finish()))
    }
}

impl Walk<'_> {
    /// One `DAV:response` with the selected properties of a resource.
    fn resource(&mut self, w: &mut XmlWriter, path: &DavPath, meta: &Metadata) {
        self.emitted += 1;
        let env = self.env;
        let needs_dead = match &self.selection {
            Selection::Prop(names) => names.iter().any(|n| !is_live(n) || n.name == "displayname"),
            _ => true,
        };
        let dead: Vec<Property> = if needs_dead {
            env.storage
                .get_properties(path.as_str())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let dead_value = |name: &PropertyName| {
            dead.iter()
                .find(|p| &p.name == name)
                .map(|p| p.value.clone())
        };
        let mut found: Vec<(PropertyName, Option<String>)> = Vec::new();
        let mut missing: Vec<PropertyName> = Vec::new();
        let lookup = |name: &PropertyName, found: &mut Vec<_>, missing: &mut Vec<_>| {
            let value = dead_value(name).or_else(|| {
                if is_live(name) {
                    live_value(env, path, meta, &name.name)
                } else {
                    None
                }
            });
            match value {
                Some(v) => found.push((name.clone(), Some(v))),
                None => missing.push(name.clone()),
            }
        };
        match &self.selection {
            Selection::Prop(names) => {
                for name in names {
                    lookup(name, &mut found, &mut missing);
                }
            }
            Selection::AllProp(include) => {
                for live in ALLPROP {
                    let name = PropertyName::new(DAV, live);
                    if let Some(v) = dead_value(&name).or_else(|| live_value(env, path, meta, live))
                    {
                        found.push((name, Some(v)));
                    }
                }
                for p in &dead {
                    if !found.iter().any(|(n, _)| n == &p.name) {
                        found.push((p.name.clone(), Some(p.value.clone())));
                    }
                }
                for name in include {
                    if !found.iter().any(|(n, _)| n == name) {
                        lookup(name, &mut found, &mut missing);
                    }
                }
            }
            Selection::PropName => {
                for live in ALLPROP {
                    if live_value(env, path, meta, live).is_some() {
                        found.push((PropertyName::new(DAV, live), None));
                    }
                }
                for p in &dead {
                    if !found.iter().any(|(n, _)| n == &p.name) {
                        found.push((p.name.clone(), None));
                    }
                }
            }
        }
        w.open_dav("response");
        w.text_element_dav("href", &path.href(meta.is_collection()));
        if !found.is_empty() {
            propstat(w, found.iter().map(|(n, v)| (n, v.as_deref())), 200);
        }
        if !missing.is_empty() {
            propstat(w, missing.iter().map(|n| (n, None)), 404);
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
    w.open_dav("propstat");
    w.open_dav("prop");
    for (name, value) in props {
        w.property(&name.namespace, &name.name, value);
    }
    w.close_dav("prop");
    w.text_element_dav("status", &status_line(status));
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
