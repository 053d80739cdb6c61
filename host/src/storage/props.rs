//! The stored form of a resource's dead properties, shared by the backends
//! that keep them in a sidecar (a JSON file on local disk, a JSON object on
//! S3), and the in-order application of a PROPPATCH to them.

use serde::{Deserialize, Serialize};

use super::{Property, PropertyChange};

/// On-store form of one resource's dead properties. `path` names the
/// resource, so a sidecar can be traced back to it.
#[derive(Serialize, Deserialize)]
struct PropFile {
    path: String,
    properties: Vec<StoredProperty>,
}

#[derive(Serialize, Deserialize)]
struct StoredProperty {
    namespace: String,
    name: String,
    value: String,
}

pub fn encode(path: &str, properties: Vec<Property>) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&PropFile {
        path: path.to_owned(),
        properties: properties
            .into_iter()
            .map(|p| StoredProperty {
                namespace: p.namespace,
                name: p.name,
                value: p.value,
            })
            .collect(),
    })
}

pub fn decode(bytes: &[u8]) -> serde_json::Result<Vec<Property>> {
    let stored: PropFile = serde_json::from_slice(bytes)?;
    Ok(stored
        .properties
        .into_iter()
        .map(|p| Property {
            namespace: p.namespace,
            name: p.name,
            value: p.value,
        })
        .collect())
}

/// Applies the changes in order: a set replaces a property of the same name
/// or adds it, a remove drops it.
pub fn apply(properties: &mut Vec<Property>, changes: Vec<PropertyChange>) {
    for change in changes {
        match change {
            PropertyChange::Set(new) => match properties
                .iter_mut()
                .find(|p| p.namespace == new.namespace && p.name == new.name)
            {
                Some(old) => *old = new,
                None => properties.push(new),
            },
            PropertyChange::Remove(name) => {
                properties.retain(|p| !(p.namespace == name.namespace && p.name == name.name))
            }
        }
    }
}
