//! The handler's view of its imports: Rust traits mirroring the `edgedav:dav`
//! storage and locks interfaces.
//!
//! The protocol logic is written against these traits rather than the
//! wit-bindgen types so that it runs natively under `cargo test` with the
//! in-memory implementation in [`crate::memory`], and inside the component
//! with the thin adapters in `component.rs`.

use std::any::Any;
use std::fmt;

use edgedav_rules::locks::Extent;

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanoseconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Collection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub kind: Kind,
    pub size: u64,
    pub modified: Timestamp,
    pub created: Option<Timestamp>,
    /// Opaque, unquoted.
    pub etag: String,
    pub content_type: Option<String>,
}

impl Metadata {
    pub fn is_collection(&self) -> bool {
        self.kind == Kind::Collection
    }

    /// The ETag as sent on the wire (a strong entity tag).
    pub fn quoted_etag(&self) -> String {
        ["\"", self.etag.as_str(), "\""].concat()
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub metadata: Metadata,
    /// False promises the member has no dead properties (the WIT
    /// `has-properties`): PROPFIND then skips `get_properties` for it.
    pub has_properties: bool,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub next: Option<String>,
}

/// Errors reported by a storage backend (the WIT `types.error` variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    NotFound,
    AlreadyExists,
    ParentNotFound,
    NotACollection,
    IsACollection,
    Conflict(String),
    NoSpace,
    TooLarge,
    Forbidden(String),
    Unsupported(String),
    /// A transient server condition (see the WIT docs): 503 + Retry-After.
    Unavailable(String),
    Io(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::AlreadyExists => f.write_str("already exists"),
            Self::ParentNotFound => f.write_str("parent collection not found"),
            Self::NotACollection => f.write_str("not a collection"),
            Self::IsACollection => f.write_str("is a collection"),
            Self::Conflict(m) => write!(f, "conflict: {m}"),
            Self::NoSpace => f.write_str("insufficient storage"),
            Self::TooLarge => f.write_str("too large"),
            Self::Forbidden(m) => write!(f, "forbidden: {m}"),
            Self::Unsupported(m) => write!(f, "unsupported: {m}"),
            Self::Unavailable(m) => write!(f, "temporarily unavailable: {m}"),
            Self::Io(m) => write!(f, "i/o error: {m}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberError {
    pub path: String,
    pub error: StorageError,
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub expected_size: Option<u64>,
    pub content_type: Option<String>,
    /// Partial update from this offset (see the WIT `write-options`).
    pub offset: Option<u64>,
    /// Create, never replace: commit fails with `AlreadyExists` when
    /// anything exists at the path then.
    pub create_only: bool,
}

/// What a successful commit did (the WIT `committed` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub metadata: Metadata,
    /// Created (true) or replaced (false), decided atomically at commit.
    pub created: bool,
}

/// A dead property: `value` is a self-contained XML fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub name: PropertyName,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PropertyName {
    pub namespace: String,
    pub name: String,
}

impl PropertyName {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyChange {
    Set(Property),
    Remove(PropertyName),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Space {
    pub used: Option<u64>,
    pub available: Option<u64>,
}

pub type StorageResult<T> = Result<T, StorageError>;

pub trait Reader {
    /// Up to `max` bytes; empty at the end of the range.
    fn read(&mut self, max: u32) -> StorageResult<Vec<u8>>;

    /// The binding's own stream of the range, when it offered one: an opaque
    /// source that a [`Sink`](crate::http::Sink) of the same binding can
    /// splice from without the bytes passing through this component. None:
    /// only `read` works.
    fn direct(&mut self) -> Option<&mut dyn Any> {
        None
    }
}

/// A range of a file opened for reading, with the metadata of the version
/// it reads (the contract's `open-read`): the reader keeps reading that
/// version if the path is replaced, so comparing `metadata.etag` with an
/// earlier [`Storage::stat`] tells whether the two describe the same bytes.
pub struct Opened {
    pub reader: Box<dyn Reader>,
    pub metadata: Metadata,
}

pub trait Writer {
    fn write(&mut self, data: &[u8]) -> StorageResult<()>;

    /// Appends everything a request body's own stream (the opaque source of
    /// [`BodyReader::direct`](crate::http::BodyReader::direct)) gives, without
    /// the bytes passing through this component. None: the binding declined,
    /// nothing was read, and the caller reads and writes.
    fn append_from(&mut self, _source: &mut dyn Any) -> Option<StorageResult<Appended>> {
        None
    }

    fn commit(self: Box<Self>) -> StorageResult<Committed>;
}

/// How [`Writer::append_from`] ended.
#[derive(Debug, PartialEq)]
pub enum Appended {
    /// The source closed after this many bytes, all appended.
    All(u64),
    /// Reading the source failed (the client's body broke off).
    SourceFailed(String),
}

pub trait Storage {
    fn stat(&self, path: &str) -> StorageResult<Metadata>;
    fn list_members(&self, path: &str, cursor: Option<&str>, limit: u32) -> StorageResult<Page>;
    fn open_read(&self, path: &str, offset: u64, length: Option<u64>) -> StorageResult<Opened>;
    fn open_write(&self, path: &str, options: &WriteOptions)
    -> StorageResult<Box<dyn Writer + '_>>;
    fn create_collection(&self, path: &str) -> StorageResult<()>;
    fn delete(&self, path: &str) -> StorageResult<Vec<MemberError>>;
    fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> StorageResult<Vec<MemberError>>;
    fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> StorageResult<Vec<MemberError>>;
    fn get_properties(&self, path: &str) -> StorageResult<Vec<Property>>;
    fn patch_properties(&self, path: &str, changes: &[PropertyChange]) -> StorageResult<()>;
    fn space_usage(&self, path: &str) -> StorageResult<Space>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    Exclusive,
    Shared,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveLock {
    pub token: String,
    pub root: String,
    pub scope: LockScope,
    pub deep: bool,
    pub owner: Option<String>,
    /// Seconds left; `None` is infinite.
    pub timeout: Option<u32>,
}

impl ActiveLock {
    /// Whether the lock covers `path` (both normalised contract paths): it
    /// was taken on it, or it is deep and taken on an ancestor. The one
    /// statement of the rule `Locks::covering` answers.
    pub fn covers(&self, path: &str) -> bool {
        self.extent().covers(path)
    }

    /// The lock's reach, for the shared lock rules.
    pub fn extent(&self) -> Extent<'_> {
        Extent {
            root: &self.root,
            deep: self.deep,
            exclusive: self.scope == LockScope::Exclusive,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    pub root: String,
    pub scope: LockScope,
    pub deep: bool,
    pub owner: Option<String>,
    pub timeout: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    Conflict(Vec<ActiveLock>),
    NoSuchLock,
    Forbidden,
    Io(String),
}

pub trait Locks {
    fn acquire(&self, request: &LockRequest) -> Result<ActiveLock, LockError>;
    fn refresh(&self, token: &str, timeout: Option<u32>) -> Result<ActiveLock, LockError>;
    fn release(&self, token: &str) -> Result<(), LockError>;
    /// Locks on `path` and deep locks on its ancestors.
    fn covering(&self, path: &str) -> Result<Vec<ActiveLock>, LockError>;
    /// Locks on `path` or anywhere below it.
    fn within(&self, path: &str) -> Result<Vec<ActiveLock>, LockError>;
}

/// What a request is served with.
pub struct Env<'a> {
    pub storage: &'a dyn Storage,
    pub locks: &'a dyn Locks,
    pub config: &'a Config,
}

/// Settings the host passes in (through environment variables in the
/// component, see `component.rs`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Maximum number of responses a `Depth: infinity` PROPFIND may produce;
    /// 0 refuses such requests with `DAV:propfind-finite-depth`.
    pub depth_infinity_limit: u64,
    /// Largest XML request body accepted, in bytes.
    pub max_xml_body: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            depth_infinity_limit: 0,
            max_xml_body: 1 << 20,
        }
    }
}
