//! Dead properties in the contract's types over the shared rules
//! (`edgedav_rules::props`): the JSON form the S3 backend stores
//! (an object beside each resource) and PROPPATCH application.

use edgedav_rules::props::{self as rules, sidecar};

use super::{Property, PropertyChange};

pub fn encode(path: &str, properties: Vec<Property>) -> Vec<u8> {
    sidecar::encode(path, properties.into_iter().map(to_rules).collect())
}

pub fn decode(bytes: &[u8]) -> serde_json::Result<Vec<Property>> {
    Ok(sidecar::decode(bytes)?
        .into_iter()
        .map(from_rules)
        .collect())
}

/// Applies the changes in order (see [`rules::apply`]).
pub fn apply(properties: &mut Vec<Property>, changes: Vec<PropertyChange>) {
    let mut stored: Vec<_> = properties.drain(..).map(to_rules).collect();
    rules::apply(
        &mut stored,
        changes.into_iter().map(|change| match change {
            PropertyChange::Set(p) => rules::Change::Set(to_rules(p)),
            PropertyChange::Remove(n) => rules::Change::Remove {
                namespace: n.namespace,
                name: n.name,
            },
        }),
    );
    properties.extend(stored.into_iter().map(from_rules));
}

fn to_rules(p: Property) -> rules::Property {
    rules::Property {
        namespace: p.namespace,
        name: p.name,
        value: p.value,
    }
}

fn from_rules(p: rules::Property) -> Property {
    Property {
        namespace: p.namespace,
        name: p.name,
        value: p.value,
    }
}
