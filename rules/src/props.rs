//! Dead properties (RFC 4918 §15) and PROPPATCH application; with the
//! `sidecar` feature, the JSON form the file and object stores keep them in.

/// One dead property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub namespace: String,
    pub name: String,
    /// The property's XML content, as the handler serialised it.
    pub value: String,
}

/// One change of a PROPPATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set(Property),
    Remove { namespace: String, name: String },
}

/// Applies changes in order (RFC 4918 §9.2): a set replaces a property of
/// the same name or adds it, a remove drops it.
pub fn apply(properties: &mut Vec<Property>, changes: impl IntoIterator<Item = Change>) {
    for change in changes {
        match change {
            Change::Set(new) => match properties
                .iter_mut()
                .find(|p| p.namespace == new.namespace && p.name == new.name)
            {
                Some(old) => *old = new,
                None => properties.push(new),
            },
            Change::Remove { namespace, name } => {
                properties.retain(|p| !(p.namespace == namespace && p.name == name))
            }
        }
    }
}

/// The stored form of a resource's dead properties: one JSON document per
/// resource, `{"path": …, "properties": [{"namespace", "name", "value"}]}`,
/// in a file named by [`sidecar::file_name`] (local disk, fs adapter) or an
/// object beside the resource (S3). `path` lets a sidecar be traced back.
#[cfg(feature = "sidecar")]
pub mod sidecar {
    use serde::{Deserialize, Serialize};
    use sha2::{Digest, Sha256};

    use super::Property;

    #[derive(Serialize, Deserialize)]
    struct Document<T> {
        path: String,
        properties: Vec<T>,
    }

    #[derive(Serialize, Deserialize)]
    struct Stored {
        namespace: String,
        name: String,
        value: String,
    }

    pub fn encode(path: &str, properties: Vec<Property>) -> Vec<u8> {
        let document = Document {
            path: path.to_owned(),
            properties: properties
                .into_iter()
                .map(|p| Stored {
                    namespace: p.namespace,
                    name: p.name,
                    value: p.value,
                })
                .collect(),
        };
        serde_json::to_vec(&document).expect("strings always serialise")
    }

    pub fn decode(bytes: &[u8]) -> Result<Vec<Property>, serde_json::Error> {
        let document: Document<Stored> = serde_json::from_slice(bytes)?;
        Ok(document
            .properties
            .into_iter()
            .map(|p| Property {
                namespace: p.namespace,
                name: p.name,
                value: p.value,
            })
            .collect())
    }

    /// The sidecar's file name: the lowercase hex SHA-256 of the resource's
    /// path (flat, fixed-length, and free of any character a path holds).
    pub fn file_name(path: &str) -> String {
        crate::hex(&Sha256::digest(path.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, value: &str) -> Property {
        Property {
            namespace: "urn:x".into(),
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn changes_apply_in_order() {
        let mut props = vec![p("keep", "k")];
        apply(
            &mut props,
            [
                Change::Set(p("a", "1")),
                Change::Set(p("b", "2")),
                Change::Set(p("a", "3")),
                Change::Remove {
                    namespace: "urn:x".into(),
                    name: "b".into(),
                },
            ],
        );
        assert_eq!(props, [p("keep", "k"), p("a", "3")]);
    }

    #[cfg(feature = "sidecar")]
    #[test]
    fn sidecars_round_trip_in_the_stored_form() {
        let bytes = sidecar::encode("/a b", vec![p("n", "<x>1</x>")]);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"path":"/a b","properties":[{"namespace":"urn:x","name":"n","value":"<x>1</x>"}]}"#
        );
        assert_eq!(sidecar::decode(&bytes).unwrap(), [p("n", "<x>1</x>")]);
        assert!(sidecar::decode(b"{").is_err());
        assert_eq!(
            sidecar::file_name("/"),
            "8a5edab282632443219e051e4ade2d1d5bbc671c781051bf1437897cbdfea0f1"
        );
    }
}
