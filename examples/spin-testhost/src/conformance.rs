//! `--conformance ADAPTER.wasm DIR`: runs the storage conformance suite
//! (`conformance/`) against a storage adapter component on its own (not
//! composed), calling its `edgedav:dav/storage` exports directly. The
//! filesystem adapter gets DIR preopened; the SQLite adapter gets
//! `DIR/adapter.sqlite` behind `spin:sqlite`. Prints each failed case and
//! exits non-zero when there is one.

use std::cell::RefCell;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use edgedav_conformance as c;
use wasmtime::component::{Component, HasSelf, Linker, ResourceAny};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx};
use wasmtime_wasi_http::WasiHttpCtx;

use crate::{DenyOutgoing, State};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "edgedav:dav/backend",
        exports: { default: async },
        with: { "wasi:io": wasmtime_wasi::p2::bindings::io },
    });
}

use bindings::edgedav::dav::types::{Error, Metadata, NodeKind};
use bindings::exports::edgedav::dav::storage::{
    self as st, MemberError, Property, PropertyChange, PropertyName, WriteOptions,
};

/// The adapter's exports, driven synchronously on the current runtime.
struct Adapter {
    store: RefCell<Store<State>>,
    backend: bindings::Backend,
}

type Call<T> = wasmtime::Result<Result<T, Error>>;

impl Adapter {
    fn storage(&self) -> &st::Guest {
        self.backend.edgedav_dav_storage()
    }

    /// Runs one call; a trap fails the whole run (never a case's answer).
    fn on<T>(&self, call: impl AsyncFnOnce(&mut Store<State>) -> Call<T>) -> c::Result<T> {
        let mut store = self.store.borrow_mut();
        block(call(&mut store))
            .unwrap_or_else(|trap| panic!("the adapter trapped: {trap:?}"))
            .map_err(error)
    }

    async fn open_write(
        &self,
        store: &mut Store<State>,
        path: &str,
        offset: Option<u64>,
        create_only: bool,
    ) -> Call<ResourceAny> {
        let options = WriteOptions {
            expected_size: None,
            content_type: None,
            offset,
            create_only,
        };
        self.storage()
            .call_open_write(store, &path.to_owned(), &options)
            .await
    }
}

fn block<F: Future>(future: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(future)
}

fn error(e: Error) -> c::Error {
    c::error_of!(e, Error)
}

fn meta(m: Metadata) -> c::Meta {
    c::meta_of!(m, NodeKind)
}

fn member_errors(errors: Vec<MemberError>) -> c::MemberErrors {
    errors
        .into_iter()
        .map(|e| (e.path, error(e.error)))
        .collect()
}

impl c::Store for Adapter {
    fn stat(&self, path: &str) -> c::Result<c::Meta> {
        self.on(async |s| self.storage().call_stat(s, &path.to_owned()).await)
            .map(meta)
    }

    fn list(&self, path: &str, cursor: Option<String>, limit: u32) -> c::Result<c::Page> {
        let page = self.on(async |s| {
            self.storage()
                .call_list_members(s, &path.to_owned(), cursor.as_deref(), limit)
                .await
        })?;
        let entries = page
            .entries
            .into_iter()
            .map(|e| (e.name, meta(e.metadata)))
            .collect();
        Ok((entries, page.next))
    }

    fn read_with(
        &self,
        path: &str,
        offset: u64,
        length: Option<u64>,
        between: &dyn Fn(),
    ) -> c::Result<(c::Meta, Vec<u8>)> {
        let (reader, opened) = self.on(async |s| {
            self.storage()
                .call_open_read(&mut *s, &path.to_owned(), offset, length)
                .await
        })?;
        between();
        self.on(async |s| {
            let mut out = Vec::new();
            let result = loop {
                match self
                    .storage()
                    .reader()
                    .call_read(&mut *s, reader, 64 * 1024)
                    .await?
                {
                    Ok(chunk) if chunk.is_empty() => break Ok((meta(opened), out)),
                    Ok(chunk) => out.extend_from_slice(&chunk),
                    Err(e) => break Err(e),
                }
            };
            reader.resource_drop_async(&mut *s).await?;
            Ok(result)
        })
    }

    fn write(
        &self,
        path: &str,
        chunks: &[&[u8]],
        offset: Option<u64>,
        create_only: bool,
    ) -> c::Result<bool> {
        self.on(async |s| {
            let writer = match self.open_write(&mut *s, path, offset, create_only).await? {
                Ok(writer) => writer,
                Err(e) => return Ok(Err(e)),
            };
            for chunk in chunks {
                if let Err(e) = self
                    .storage()
                    .writer()
                    .call_write(&mut *s, writer, chunk)
                    .await?
                {
                    writer.resource_drop_async(&mut *s).await?;
                    return Ok(Err(e));
                }
            }
            let committed = self.storage().writer().call_commit(&mut *s, writer).await?;
            Ok(committed.map(|c| c.created))
        })
    }

    fn abandon_write(&self, path: &str, content: &[u8], offset: Option<u64>) -> c::Result<()> {
        self.on(async |s| {
            let writer = match self.open_write(&mut *s, path, offset, false).await? {
                Ok(writer) => writer,
                Err(e) => return Ok(Err(e)),
            };
            let written = self
                .storage()
                .writer()
                .call_write(&mut *s, writer, content)
                .await?;
            writer.resource_drop_async(&mut *s).await?;
            Ok(written)
        })
    }

    fn create_collection(&self, path: &str) -> c::Result<()> {
        self.on(async |s| {
            self.storage()
                .call_create_collection(s, &path.to_owned())
                .await
        })
    }

    fn delete(&self, path: &str) -> c::Result<c::MemberErrors> {
        self.on(async |s| self.storage().call_delete(s, &path.to_owned()).await)
            .map(member_errors)
    }

    fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> c::Result<c::MemberErrors> {
        self.on(async |s| {
            self.storage()
                .call_copy(
                    s,
                    &source.to_owned(),
                    &destination.to_owned(),
                    recursive,
                    overwrite,
                )
                .await
        })
        .map(member_errors)
    }

    fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> c::Result<c::MemberErrors> {
        self.on(async |s| {
            self.storage()
                .call_rename(s, &source.to_owned(), &destination.to_owned(), overwrite)
                .await
        })
        .map(member_errors)
    }

    fn get_properties(&self, path: &str) -> c::Result<Vec<c::Property>> {
        let properties = self.on(async |s| {
            self.storage()
                .call_get_properties(s, &path.to_owned())
                .await
        })?;
        Ok(properties
            .into_iter()
            .map(|p| c::Property {
                namespace: p.namespace,
                name: p.name,
                value: p.value,
            })
            .collect())
    }

    fn patch_properties(&self, path: &str, changes: Vec<c::Change>) -> c::Result<()> {
        let changes: Vec<PropertyChange> = changes
            .into_iter()
            .map(|change| match change {
                c::Change::Set(p) => PropertyChange::Set(Property {
                    namespace: p.namespace,
                    name: p.name,
                    value: p.value,
                }),
                c::Change::Remove { namespace, name } => {
                    PropertyChange::Remove(PropertyName { namespace, name })
                }
            })
            .collect();
        self.on(async |s| {
            self.storage()
                .call_patch_properties(s, &path.to_owned(), &changes)
                .await
        })
    }
}

/// Instantiates the adapter over `dir` and runs the suite; the failed cases.
pub fn run(adapter: &Path, dir: &Path) -> wasmtime::Result<Vec<String>> {
    let engine = Engine::new(&Config::new())?;
    let component = Component::from_file(&engine, adapter)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    crate::bindings::spin::sqlite::sqlite::add_to_linker::<State, HasSelf<State>>(
        &mut linker,
        |s| s,
    )?;
    let wasi = WasiCtx::builder()
        .inherit_stderr()
        .preopened_dir(dir, "/data", FsPerms::ReadWrite)?
        .build();
    let state = State {
        wasi,
        http: WasiHttpCtx::new(),
        hooks: DenyOutgoing,
        table: Default::default(),
        database: Arc::new(dir.join("adapter.sqlite")),
    };
    let mut store = Store::new(&engine, state);
    let backend = block(bindings::Backend::instantiate_async(
        &mut store, &component, &linker,
    ))?;
    let adapter = Adapter {
        store: RefCell::new(store),
        backend,
    };
    Ok(c::run(&adapter))
}
