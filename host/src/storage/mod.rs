//! Storage backends behind the `edgedav:dav/storage` interface.
//!
//! [`Backend`] mirrors the WIT interface one to one and speaks its types (the
//! contract's error variant is this layer's error type), so the bindings stay
//! a thin adapter and another store (S3, say) only has to implement this trait.
//! The traits are object-safe: the runtime holds an `Arc<dyn Backend>` and
//! keeps open readers and writers as boxed trait objects in each request's
//! resource table.

#[cfg(test)]
mod conformance;
pub mod file_chunks;
pub mod guard;
pub mod home;
pub mod local;
pub mod props;
pub mod quota;
pub mod s3;
mod staging;
pub mod stream;

use async_trait::async_trait;
use bytes::Bytes;

pub use crate::runtime::bindings::edgedav::dav::storage::{
    Committed, Entry, MemberError, Page, Property, PropertyChange, Space, WriteOptions,
};
pub use crate::runtime::bindings::edgedav::dav::types::{Error, Metadata, NodeKind, Timestamp};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The host never hands out more than this many bytes per `reader.read`,
/// whatever the guest asks for, so one call cannot make the host allocate
/// unbounded memory.
pub const MAX_READ_CHUNK: u32 = 1 << 20;

/// A range of a file being read and the metadata of the version it reads
/// (see the contract's `open-read`).
pub type Opened = (Reader, Metadata);

/// A hierarchical store of files and collections with dead properties.
///
/// Paths are absolute and normalised by the handler; implementations must
/// still confine them to their store.
#[async_trait]
pub trait Backend: Send + Sync {
    async fn stat(&self, path: &str) -> Result<Metadata>;
    async fn list_members(&self, path: &str, cursor: Option<String>, limit: u32) -> Result<Page>;
    async fn open_read(&self, path: &str, offset: u64, length: Option<u64>) -> Result<Opened>;
    async fn open_write(&self, path: &str, options: WriteOptions) -> Result<Writer>;
    async fn create_collection(&self, path: &str) -> Result<()>;
    async fn delete(&self, path: &str) -> Result<Vec<MemberError>>;
    async fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> Result<Vec<MemberError>>;
    async fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<Vec<MemberError>>;
    async fn get_properties(&self, path: &str) -> Result<Vec<Property>>;
    async fn patch_properties(&self, path: &str, changes: Vec<PropertyChange>) -> Result<()>;
    async fn space_usage(&self, path: &str) -> Result<Space>;
}

/// A byte range of a file being read.
#[async_trait]
pub trait FileReader: Send {
    /// Up to `max` bytes; empty once the range is exhausted.
    async fn read(&mut self, max: u32) -> Result<Vec<u8>>;

    /// The same bytes as [`FileReader::read`], as the buffer a download
    /// hands hyper. The local store's say where in its file they are
    /// ([`file_chunks`]), so the socket can send them from the file.
    async fn read_chunk(&mut self, max: u32) -> Result<Bytes> {
        self.read(max).await.map(Bytes::from)
    }

    /// Whether [`FileReader::next_unread`] may hand out chunks: only the
    /// local store's reader can, and only for a range worth a `sendfile`.
    fn sends_unread(&self) -> bool {
        false
    }

    /// The next chunk, up to `max` bytes, without reading it: bytes that
    /// only the socket may meet, which sends them from the file
    /// ([`file_chunks::unread`]); empty once the range is exhausted. None
    /// when this reader cannot, or not for this chunk: then it is read.
    fn next_unread(&mut self, _max: u32) -> Option<Bytes> {
        None
    }
}

/// Content being written. Dropping it without [`FileWriter::commit`] must
/// discard everything written, leaving the previous content in place.
#[async_trait]
pub trait FileWriter: Send {
    async fn write(&mut self, data: Bytes) -> Result<()>;
    /// Atomically publishes the content at the path and says whether that
    /// created the file or replaced one (decided atomically with the
    /// publication). With `create-only`, fails with `already-exists` and
    /// changes nothing when anything is at the path.
    async fn commit(self: Box<Self>) -> Result<Committed>;
}

/// The contract's overlap rule for copy and rename (`edgedav_rules::transfer`),
/// as this layer's error: `forbidden`, nothing touched.
pub fn check_transfer(source: &str, destination: &str) -> Result<()> {
    edgedav_rules::transfer::check(source, destination)
        .map_err(|refusal| Error::Forbidden(refusal.reason().to_owned()))
}

/// The name a store cannot hold (longer than its limit): a 409 on create
/// (the WIT `conflict("name too long")`); read paths answer `not-found`.
pub fn name_too_long() -> Error {
    Error::Conflict("name too long".to_owned())
}

/// The host type behind the `reader` resource.
pub type Reader = Box<dyn FileReader>;
/// The host type behind the `writer` resource.
pub type Writer = Box<dyn FileWriter>;
