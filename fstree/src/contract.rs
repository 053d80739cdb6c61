//! Conversions to and from a binding's generated types of the contract.
//!
//! Each binding generates its own Rust types from `wit/dav.wit` (the host
//! with wasmtime's bindgen, the adapter with wit-bindgen), so the same
//! conversions would be written once per binding; [`contract_conversions!`]
//! writes them once for all.

/// Expands, in a module where the contract's generated `Error`, `Page`,
/// `Entry`, `MemberError`, `Property` and `PropertyChange` are in scope, to
/// `From<edgedav_fstree::Error> for Error` (the contract error each
/// variant stands for) and to the functions `contract_page`,
/// `contract_members`, `contract_properties` and `stored_changes`.
#[macro_export]
macro_rules! contract_conversions {
    () => {
        impl From<$crate::Error> for Error {
            fn from(e: $crate::Error) -> Self {
                use $crate::Error as E;
                match e {
                    E::NotFound => Error::NotFound,
                    E::AlreadyExists => Error::AlreadyExists,
                    E::ParentNotFound => Error::ParentNotFound,
                    E::NotACollection => Error::NotACollection,
                    E::IsACollection => Error::IsACollection,
                    E::Conflict(reason) => Error::Conflict(reason),
                    E::NoSpace => Error::NoSpace,
                    E::TooLarge => Error::TooLarge,
                    E::Forbidden(reason) => Error::Forbidden(reason),
                    E::Unavailable(reason) => Error::Unavailable(reason),
                    E::Io(reason) => Error::Io(reason),
                    E::NameTooLong => Error::Conflict("name too long".to_owned()),
                }
            }
        }

        /// A listing page in the contract's types.
        fn contract_page(page: $crate::listing::Page<Metadata>) -> Page {
            Page {
                entries: page
                    .entries
                    .into_iter()
                    .map(|e| Entry {
                        name: e.name,
                        metadata: e.metadata,
                        has_properties: e.has_properties,
                    })
                    .collect(),
                next: page.next,
            }
        }

        /// A tree operation's outcome in the contract's types.
        fn contract_members(
            result: $crate::Result<Vec<$crate::MemberError>>,
        ) -> Result<Vec<MemberError>, Error> {
            Ok(result?
                .into_iter()
                .map(|m| MemberError {
                    path: m.path,
                    error: m.error.into(),
                })
                .collect())
        }

        /// Stored dead properties in the contract's types.
        fn contract_properties(stored: Vec<$crate::rules::props::Property>) -> Vec<Property> {
            stored
                .into_iter()
                .map(|p| Property {
                    namespace: p.namespace,
                    name: p.name,
                    value: p.value,
                })
                .collect()
        }

        /// PROPPATCH changes in the stored form.
        fn stored_changes(
            changes: Vec<PropertyChange>,
        ) -> impl Iterator<Item = $crate::rules::props::Change> {
            changes.into_iter().map(|change| match change {
                PropertyChange::Set(p) => {
                    $crate::rules::props::Change::Set($crate::rules::props::Property {
                        namespace: p.namespace,
                        name: p.name,
                        value: p.value,
                    })
                }
                PropertyChange::Remove(n) => $crate::rules::props::Change::Remove {
                    namespace: n.namespace,
                    name: n.name,
                },
            })
        }
    };
}
