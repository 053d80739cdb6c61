//! The host's backends against the storage conformance suite
//! (`conformance/`): local disk, the policy guard over it (with and without
//! a quota being counted), and S3 on the Garage that the test command
//! starts. The suite is the same table of cases the handler's in-memory
//! store and the adapters pass.

use std::future::Future;
use std::sync::Arc;

use edgedav_conformance as c;

use super::guard::{Guarded, Policy};
use super::local::LocalBackend;
use super::s3::{S3Backend, S3Options};
use super::{Backend, Error, MemberError, Metadata, NodeKind, Property, PropertyChange};
use crate::gate::perms::Permissions;
use crate::runtime::bindings::edgedav::dav::storage::{PropertyName, WriteOptions};
use crate::storage::quota::{Quota, Usage};

/// A backend driven synchronously, as the suite drives every store.
struct Blocking {
    backend: Arc<dyn Backend>,
    runtime: tokio::runtime::Runtime,
}

impl Blocking {
    fn new(runtime: tokio::runtime::Runtime, backend: Arc<dyn Backend>) -> Self {
        Self { backend, runtime }
    }

    fn on<T>(&self, future: impl Future<Output = super::Result<T>>) -> c::Result<T> {
        self.runtime.block_on(future).map_err(error)
    }

    fn options(offset: Option<u64>, create_only: bool) -> WriteOptions {
        WriteOptions {
            expected_size: None,
            content_type: None,
            offset,
            create_only,
        }
    }
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

impl c::Store for Blocking {
    fn stat(&self, path: &str) -> c::Result<c::Meta> {
        self.on(self.backend.stat(path)).map(meta)
    }

    fn list(&self, path: &str, cursor: Option<String>, limit: u32) -> c::Result<c::Page> {
        let page = self.on(self.backend.list_members(path, cursor, limit))?;
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
        let (mut reader, opened) = self.on(self.backend.open_read(path, offset, length))?;
        between();
        self.on(async {
            let mut out = Vec::new();
            loop {
                let chunk = reader.read(64 * 1024).await?;
                if chunk.is_empty() {
                    return Ok((meta(opened), out));
                }
                out.extend_from_slice(&chunk);
            }
        })
    }

    fn write(
        &self,
        path: &str,
        chunks: &[&[u8]],
        offset: Option<u64>,
        create_only: bool,
    ) -> c::Result<bool> {
        self.on(async {
            let options = Self::options(offset, create_only);
            let mut writer = self.backend.open_write(path, options).await?;
            for chunk in chunks {
                writer.write(chunk.to_vec().into()).await?;
            }
            Ok(writer.commit().await?.created)
        })
    }

    fn abandon_write(&self, path: &str, content: &[u8], offset: Option<u64>) -> c::Result<()> {
        self.on(async {
            let options = Self::options(offset, false);
            let mut writer = self.backend.open_write(path, options).await?;
            writer.write(content.to_vec().into()).await
        })
    }

    fn create_collection(&self, path: &str) -> c::Result<()> {
        self.on(self.backend.create_collection(path))
    }

    fn delete(&self, path: &str) -> c::Result<c::MemberErrors> {
        self.on(self.backend.delete(path)).map(member_errors)
    }

    fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> c::Result<c::MemberErrors> {
        self.on(self.backend.copy(source, destination, recursive, overwrite))
            .map(member_errors)
    }

    fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> c::Result<c::MemberErrors> {
        self.on(self.backend.rename(source, destination, overwrite))
            .map(member_errors)
    }

    fn get_properties(&self, path: &str) -> c::Result<Vec<c::Property>> {
        let properties = self.on(self.backend.get_properties(path))?;
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
        let changes = changes
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
        self.on(self.backend.patch_properties(path, changes))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// An empty directory for a store, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("edgedav-conformance-{}", uuid::Uuid::new_v4()));
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn conforms(store: &Blocking) {
    let failures = c::run(store);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn local_disk_conforms() {
    let dir = Scratch::new();
    conforms(&Blocking::new(
        runtime(),
        Arc::new(LocalBackend::open(&dir.0).unwrap()),
    ));
}

/// The guard passes everything through when the policy allows it, and its
/// quota accounting follows every kind of change.
#[test]
fn the_policy_guard_conforms() {
    for quota in [
        Quota::default(),
        Quota {
            max_bytes: Some(1 << 30),
            max_files: Some(1_000_000),
        },
    ] {
        let dir = Scratch::new();
        let rt = runtime();
        let inner: Arc<dyn Backend> = Arc::new(LocalBackend::open(&dir.0).unwrap());
        let usage = quota
            .is_limited()
            .then(|| rt.block_on(Usage::scan(&*inner)).map(Arc::new).unwrap());
        let policy = Policy {
            perms: Arc::new(Permissions::all()),
            quota,
            max_upload: None,
        };
        let guarded = Guarded::new(inner, Arc::new(policy), usage);
        conforms(&Blocking::new(rt, Arc::new(guarded)));
    }
}

/// On the S3 server the test command starts (`scripts/garage.sh` exports
/// its address), below a fresh prefix.
#[test]
fn s3_conforms() {
    let Some(endpoint) = std::env::var_os("EDGEDAV_S3_ENDPOINT") else {
        assert!(
            std::env::var_os("EDGEDAV_REQUIRE_ALL").is_none_or(|v| v != "1"),
            "EDGEDAV_REQUIRE_ALL=1 but EDGEDAV_S3_ENDPOINT is not set"
        );
        eprintln!(
            "*** SKIPPED s3_conforms: no S3 server (source scripts/garage.sh; garage_start) ***"
        );
        return;
    };
    let env = |name: &str| std::env::var(name).ok();
    let options = S3Options {
        bucket: env("EDGEDAV_S3_BUCKET"),
        prefix: Some(format!("conformance-{}", uuid::Uuid::new_v4())),
        endpoint: endpoint.into_string().ok(),
        region: env("EDGEDAV_S3_REGION"),
        path_style: true,
        log_requests: false,
    };
    let rt = runtime();
    let backend = rt.block_on(S3Backend::connect(&options)).unwrap();
    conforms(&Blocking::new(rt, Arc::new(backend)));
}
