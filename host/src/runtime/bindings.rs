//! Host side of the `edgedav:dav` imports: generated bindings plus a thin
//! adapter from the generated `Host` traits to [`Backend`] and [`LockView`].
//!
//! The contract's `backend` world *exports* storage and locks, but the host
//! must *provide* them, so the bindings are generated for an inline world that
//! imports both interfaces from `wit/` (which this crate must not change).
//! The adapter works on a [`DavView`] borrowed from the store data rather than
//! on the store data itself, so this module does not depend on the runtime's
//! per-request state.

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::locks::LockView;
use crate::runtime::file_splice::FileSplice;
use crate::storage::{self, Backend, Reader, Writer};
use edgedav::dav::locks::{ActiveLock, LockError, LockRequest};
use edgedav::dav::storage::{
    Appended, Committed, Error, MemberError, Metadata, Page, Property, PropertyChange, Space,
    WriteOptions,
};
use wasmtime_wasi::p2::{DynInputStream, StreamError};

wasmtime::component::bindgen!({
    inline: "
        package edgedav:host;

        world host-imports {
            import edgedav:dav/storage@0.6.0;
            import edgedav:dav/locks@0.6.0;
        }
    ",
    path: "../wit",
    // Storage calls do I/O; resource-table lookups can fail, which traps.
    imports: { default: async | trappable },
    additional_derives: [PartialEq],
    with: {
        "edgedav:dav/storage.reader": crate::storage::Reader,
        "edgedav:dav/storage.writer": crate::storage::Writer,
        // `open-read-stream` hands out wasmtime-wasi's own stream type, so
        // the guest's `splice` into its response body works on it.
        "wasi:io": wasmtime_wasi::p2::bindings::io,
    },
});

/// What the `edgedav:dav` imports need from a store's data.
pub struct DavView<'a> {
    pub backend: &'a dyn Backend,
    pub locks: &'a LockView,
    pub table: &'a mut ResourceTable,
    pub splice: &'a mut FileSplice,
}

/// [`HasData`] marker that makes the linker hand a [`DavView`] to the imports.
struct Dav;

impl HasData for Dav {
    type Data<'a> = DavView<'a>;
}

/// Adds the storage and locks imports to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> DavView<'_>,
) -> wasmtime::Result<()> {
    // Interface by interface: the world's own `add_to_linker` would also
    // add `wasi:io`, which the WASI linker already provides.
    edgedav::dav::types::add_to_linker::<T, Dav>(linker, view)?;
    edgedav::dav::storage::add_to_linker::<T, Dav>(linker, view)?;
    edgedav::dav::locks::add_to_linker::<T, Dav>(linker, view)
}

type Answer<T, E = Error> = wasmtime::Result<Result<T, E>>;

/// The most `append-from` takes from its source per write: a request body
/// hands out hyper's frames, which are smaller.
const APPEND_CHUNK: usize = 1 << 20;

impl edgedav::dav::types::Host for DavView<'_> {}

impl edgedav::dav::storage::Host for DavView<'_> {
    async fn stat(&mut self, path: String) -> Answer<Metadata> {
        Ok(self.backend.stat(&path).await)
    }

    async fn list_members(
        &mut self,
        path: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Answer<Page> {
        Ok(self.backend.list_members(&path, cursor, limit).await)
    }

    async fn open_read(
        &mut self,
        path: String,
        offset: u64,
        length: Option<u64>,
    ) -> Answer<(Resource<Reader>, Metadata)> {
        match self.backend.open_read(&path, offset, length).await {
            Ok((reader, metadata)) => Ok(Ok((self.table.push(reader)?, metadata))),
            Err(e) => Ok(Err(e)),
        }
    }

    /// Every backend offers the stream: its reader behind a
    /// [`ReaderStream`](crate::storage::stream::ReaderStream).
    async fn open_read_stream(
        &mut self,
        path: String,
        offset: u64,
        length: Option<u64>,
    ) -> Answer<Option<(Resource<DynInputStream>, Metadata)>> {
        match self.backend.open_read(&path, offset, length).await {
            Ok((reader, metadata)) => {
                let stream = self.splice.push_source(self.table, reader)?;
                Ok(Ok(Some((stream, metadata))))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    async fn open_write(
        &mut self,
        path: String,
        options: WriteOptions,
    ) -> Answer<Resource<Writer>> {
        match self.backend.open_write(&path, options).await {
            Ok(writer) => Ok(Ok(self.table.push(writer)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn create_collection(&mut self, path: String) -> Answer<()> {
        Ok(self.backend.create_collection(&path).await)
    }

    async fn delete(&mut self, path: String) -> Answer<Vec<MemberError>> {
        Ok(self.backend.delete(&path).await)
    }

    async fn copy(
        &mut self,
        source: String,
        destination: String,
        recursive: bool,
        overwrite: bool,
    ) -> Answer<Vec<MemberError>> {
        Ok(self
            .backend
            .copy(&source, &destination, recursive, overwrite)
            .await)
    }

    async fn rename(
        &mut self,
        source: String,
        destination: String,
        overwrite: bool,
    ) -> Answer<Vec<MemberError>> {
        Ok(self.backend.rename(&source, &destination, overwrite).await)
    }

    async fn get_properties(&mut self, path: String) -> Answer<Vec<Property>> {
        Ok(self.backend.get_properties(&path).await)
    }

    async fn patch_properties(&mut self, path: String, changes: Vec<PropertyChange>) -> Answer<()> {
        Ok(self.backend.patch_properties(&path, changes).await)
    }

    async fn space_usage(&mut self, path: String) -> Answer<Space> {
        Ok(self.backend.space_usage(&path).await)
    }
}

impl edgedav::dav::storage::HostReader for DavView<'_> {
    async fn read(&mut self, reader: Resource<Reader>, max: u32) -> Answer<Vec<u8>> {
        let reader = self.table.get_mut(&reader)?;
        Ok(reader.read(max.min(storage::MAX_READ_CHUNK)).await)
    }

    async fn drop(&mut self, reader: Resource<Reader>) -> wasmtime::Result<()> {
        self.table.delete(reader)?;
        Ok(())
    }
}

impl edgedav::dav::storage::HostWriter for DavView<'_> {
    async fn write(&mut self, writer: Resource<Writer>, data: Vec<u8>) -> Answer<()> {
        Ok(self.table.get_mut(&writer)?.write(data.into()).await)
    }

    /// Every backend drains the stream: each chunk the source hands out
    /// (hyper's own buffer, for a request body) goes to the writer as is.
    async fn append_from(
        &mut self,
        writer: Resource<Writer>,
        source: Resource<DynInputStream>,
    ) -> Answer<Option<Appended>> {
        let mut appended = 0u64;
        loop {
            let source = self.table.get_mut(&source)?;
            let chunk = match source.read(APPEND_CHUNK) {
                Ok(chunk) if chunk.is_empty() => {
                    source.ready().await;
                    continue;
                }
                Ok(chunk) => chunk,
                Err(StreamError::Closed) => return Ok(Ok(Some(Appended::All(appended)))),
                Err(StreamError::LastOperationFailed(e)) => {
                    return Ok(Ok(Some(Appended::SourceFailed(e.to_string()))));
                }
                Err(StreamError::Trap(e)) => return Err(e),
            };
            appended += chunk.len() as u64;
            if let Err(e) = self.table.get_mut(&writer)?.write(chunk).await {
                return Ok(Err(e));
            }
        }
    }

    async fn commit(&mut self, writer: Resource<Writer>) -> Answer<Committed> {
        Ok(self.table.delete(writer)?.commit().await)
    }

    /// Dropping a writer that was not committed discards its content (see
    /// [`storage::FileWriter`]).
    async fn drop(&mut self, writer: Resource<Writer>) -> wasmtime::Result<()> {
        self.table.delete(writer)?;
        Ok(())
    }
}

impl edgedav::dav::locks::Host for DavView<'_> {
    async fn acquire(&mut self, request: LockRequest) -> Answer<ActiveLock, LockError> {
        Ok(self.locks.acquire(request).await)
    }

    async fn refresh(
        &mut self,
        token: String,
        timeout: Option<u32>,
    ) -> Answer<ActiveLock, LockError> {
        Ok(self.locks.refresh(&token, timeout).await)
    }

    async fn release(&mut self, token: String) -> Answer<(), LockError> {
        Ok(self.locks.release(&token).await)
    }

    async fn covering(&mut self, path: String) -> Answer<Vec<ActiveLock>, LockError> {
        Ok(self.locks.covering(&path).await)
    }

    async fn within(&mut self, path: String) -> Answer<Vec<ActiveLock>, LockError> {
        Ok(self.locks.within(&path).await)
    }
}
