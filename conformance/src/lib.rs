//! The storage conformance suite: one table of cases, written against the
//! contract's documented behaviour (`wit/dav.wit`), that every
//! implementation of `edgedav:dav/storage` passes.
//!
//! An implementation's tests wrap it in [`Store`] (a synchronous mirror of
//! the contract with its own small types, so the suite depends on no
//! binding) and assert that [`run`] reports nothing. Each case works below
//! its own collection, so all cases share one empty store. Adding a backend
//! means passing this suite; a third-party implementation of the contract
//! can be checked the same way.

mod cases;

pub use cases::CASES;
pub use edgedav_rules::props::{Change, Property};

/// The contract's error variants, without their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    NotFound,
    AlreadyExists,
    ParentNotFound,
    NotACollection,
    IsACollection,
    Conflict,
    NoSpace,
    TooLarge,
    Forbidden,
    Unsupported,
    Unavailable,
    Io,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Collection,
}

/// What the suite checks of a resource's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    pub etag: String,
}

/// One page of a listing: names with their metadata, and the cursor of the
/// next page.
pub type Page = (Vec<(String, Meta)>, Option<String>);

/// A member a recursive operation could not process.
pub type MemberErrors = Vec<(String, Error)>;

/// The contract, synchronously. Writes take their content whole (the
/// implementation writes it in chunks as it likes) and say whether the
/// commit created the file.
pub trait Store {
    fn stat(&self, path: &str) -> Result<Meta>;
    fn list(&self, path: &str, cursor: Option<String>, limit: u32) -> Result<Page>;
    /// The whole range read through `open-read`, with the metadata the
    /// opening gave; `between` runs after the opening and before the first
    /// read (another client's change, in a case).
    fn read_with(
        &self,
        path: &str,
        offset: u64,
        length: Option<u64>,
        between: &dyn Fn(),
    ) -> Result<(Meta, Vec<u8>)>;

    /// The whole range read through `open-read`.
    fn read(&self, path: &str, offset: u64, length: Option<u64>) -> Result<Vec<u8>> {
        self.read_with(path, offset, length, &|| {})
            .map(|(_, content)| content)
    }
    /// `open-write`, one or more `write`s of `chunks`, `commit`.
    fn write(
        &self,
        path: &str,
        chunks: &[&[u8]],
        offset: Option<u64>,
        create_only: bool,
    ) -> Result<bool>;
    /// `open-write` (a partial update with `offset`) and `write`, then the
    /// writer dropped without a commit.
    fn abandon_write(&self, path: &str, content: &[u8], offset: Option<u64>) -> Result<()>;
    fn create_collection(&self, path: &str) -> Result<()>;
    fn delete(&self, path: &str) -> Result<MemberErrors>;
    fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> Result<MemberErrors>;
    fn rename(&self, source: &str, destination: &str, overwrite: bool) -> Result<MemberErrors>;
    fn get_properties(&self, path: &str) -> Result<Vec<Property>>;
    fn patch_properties(&self, path: &str, changes: Vec<Change>) -> Result<()>;
}

/// Runs every case; returns one line per failed case (empty: conformant).
pub fn run(store: &dyn Store) -> Vec<String> {
    CASES
        .iter()
        .filter_map(|(name, case)| case(store).err().map(|why| format!("{name}: {why}")))
        .collect()
}

/// A binding's storage error (an enum with the contract's variant names, as
/// every binding generates) as an [`Error`]: `error_of!(e, Error)`.
#[macro_export]
macro_rules! error_of {
    ($error:expr, $Binding:ident) => {
        match $error {
            $Binding::NotFound => $crate::Error::NotFound,
            $Binding::AlreadyExists => $crate::Error::AlreadyExists,
            $Binding::ParentNotFound => $crate::Error::ParentNotFound,
            $Binding::NotACollection => $crate::Error::NotACollection,
            $Binding::IsACollection => $crate::Error::IsACollection,
            $Binding::Conflict(_) => $crate::Error::Conflict,
            $Binding::NoSpace => $crate::Error::NoSpace,
            $Binding::TooLarge => $crate::Error::TooLarge,
            $Binding::Forbidden(_) => $crate::Error::Forbidden,
            $Binding::Unsupported(_) => $crate::Error::Unsupported,
            $Binding::Unavailable(_) => $crate::Error::Unavailable,
            $Binding::Io(_) => $crate::Error::Io,
        }
    };
}

/// A binding's metadata record as a [`Meta`]: `meta_of!(m, NodeKind)` with
/// the binding's enum of the two kinds.
#[macro_export]
macro_rules! meta_of {
    ($meta:expr, $Kind:ident) => {{
        let meta = $meta;
        $crate::Meta {
            kind: match meta.kind {
                $Kind::File => $crate::Kind::File,
                $Kind::Collection => $crate::Kind::Collection,
            },
            size: meta.size,
            etag: meta.etag,
        }
    }};
}
