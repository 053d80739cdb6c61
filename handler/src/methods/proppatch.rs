//! PROPPATCH (RFC 4918 §9.2): all changes apply or none do.

use super::propfind::propstat;
use super::{request_path, stat_existing};
use crate::backend::{Env, Property, PropertyChange, PropertyName};
use crate::conditions::{Preconditions, Scope};
use crate::error::{DavError, DavResult, storage_status};
use crate::http::{Request, Response};
use crate::multistatus;
use crate::props::is_protected;
use crate::xml;

/// The changes of a `DAV:propertyupdate`, in document order.
pub fn parse_body(body: &[u8]) -> DavResult<Vec<PropertyChange>> {
    let root = xml::parse(body)?;
    if !root.is_dav("propertyupdate") {
        return Err(DavError::bad_request(
            "expected a DAV:propertyupdate element",
        ));
    }
    let mut changes = Vec::new();
    for op in root.elements() {
        let set = if op.is_dav("set") {
            true
        } else if op.is_dav("remove") {
            false
        } else {
            return Err(DavError::bad_request(
                "propertyupdate may hold only set and remove",
            ));
        };
        for prop in op.elements().filter(|e| e.is_dav("prop")) {
            for p in prop.elements() {
                let name = PropertyName::new(&p.namespace, &p.name);
                changes.push(if set {
                    PropertyChange::Set(Property {
                        name,
                        value: p.inner_fragment(),
                    })
                } else {
                    PropertyChange::Remove(name)
                });
            }
        }
    }
    if changes.is_empty() {
        return Err(DavError::bad_request("propertyupdate changes nothing"));
    }
    Ok(changes)
}

fn change_name(c: &PropertyChange) -> &PropertyName {
    match c {
        PropertyChange::Set(p) => &p.name,
        PropertyChange::Remove(n) => n,
    }
}

pub fn proppatch<'a>(env: &'a Env<'a>, req: &mut Request<'_>) -> DavResult<Response<'a>> {
    let path = request_path(req)?;
    stat_existing(env, &path)?;
    Preconditions::new(env, req.header("If"), req.authority.as_deref())?
        .check(&path, Scope::Resource)?;
    let body = req.read_body(env.config.max_xml_body)?;
    let changes = parse_body(&body)?;

    // Protected properties fail with 403; everything else then fails with
    // 424 because the request is atomic.
    let statuses: Vec<u16> = if changes.iter().any(|c| is_protected(change_name(c))) {
        changes
            .iter()
            .map(|c| {
                if is_protected(change_name(c)) {
                    403
                } else {
                    424
                }
            })
            .collect()
    } else {
        let status = match env.storage.patch_properties(path.as_str(), &changes) {
            Ok(()) => 200,
            Err(e) => storage_status(&e),
        };
        vec![status; changes.len()]
    };

    let mut w = multistatus::begin();
    w.open_dav("response");
    w.text_element_dav("href", &path.href(false));
    let mut seen: Vec<u16> = Vec::new();
    for &status in &statuses {
        if seen.contains(&status) {
            continue;
        }
        seen.push(status);
        let mut names: Vec<&PropertyName> = Vec::new();
        for (c, _) in changes.iter().zip(&statuses).filter(|(_, s)| **s == status) {
            if !names.contains(&change_name(c)) {
                names.push(change_name(c));
            }
        }
        propstat(&mut w, names.into_iter().map(|n| (n, None)), status);
    }
    w.close_dav("response");
    w.close_dav("multistatus");
    Ok(Response::new(207).xml(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_document_order_and_values() {
        let changes = parse_body(
            br#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">
                <D:remove><D:prop><Z:a/></D:prop></D:remove>
                <D:set><D:prop><Z:a>v<Z:b/></Z:a><n xmlns="">x</n></D:prop></D:set>
            </D:propertyupdate>"#,
        )
        .unwrap();
        assert_eq!(
            changes[0],
            PropertyChange::Remove(PropertyName::new("urn:z", "a"))
        );
        assert_eq!(
            changes[1],
            PropertyChange::Set(Property {
                name: PropertyName::new("urn:z", "a"),
                value: "v<b xmlns=\"urn:z\"/>".into()
            })
        );
        assert_eq!(
            changes[2],
            PropertyChange::Set(Property {
                name: PropertyName::new("", "n"),
                value: "x".into()
            })
        );
    }

    #[test]
    fn rejects_bad_updates() {
        assert_eq!(
            parse_body(b"<propertyupdate xmlns='DAV:'/>")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            parse_body(b"<propertyupdate xmlns='DAV:'><foo/></propertyupdate>")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            parse_body(b"<propfind xmlns='DAV:'/>").unwrap_err().status,
            400
        );
    }
}
