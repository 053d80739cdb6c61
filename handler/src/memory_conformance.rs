//! The in-memory store against the storage conformance suite
//! (`conformance/`), the same table of cases every backend passes.

use edgedav_conformance as c;

use crate::backend::{self as b, Storage};
use crate::memory::MemoryStorage;

struct Memory(MemoryStorage);

fn error(e: b::StorageError) -> c::Error {
    use b::StorageError as E;
    c::error_of!(e, E)
}

fn meta(m: b::Metadata) -> c::Meta {
    use b::Kind as K;
    c::meta_of!(m, K)
}

fn member_errors(errors: Vec<b::MemberError>) -> c::MemberErrors {
    errors
        .into_iter()
        .map(|e| (e.path, error(e.error)))
        .collect()
}

impl Memory {
    fn writer(
        &self,
        path: &str,
        offset: Option<u64>,
        create_only: bool,
    ) -> c::Result<Box<dyn b::Writer + '_>> {
        let options = b::WriteOptions {
            offset,
            create_only,
            ..Default::default()
        };
        self.0.open_write(path, &options).map_err(error)
    }
}

impl c::Store for Memory {
    fn stat(&self, path: &str) -> c::Result<c::Meta> {
        self.0.stat(path).map(meta).map_err(error)
    }

    fn list(&self, path: &str, cursor: Option<String>, limit: u32) -> c::Result<c::Page> {
        let page = self
            .0
            .list_members(path, cursor.as_deref(), limit)
            .map_err(error)?;
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
        let mut opened = self.0.open_read(path, offset, length).map_err(error)?;
        between();
        let mut out = Vec::new();
        loop {
            let chunk = opened.reader.read(64 * 1024).map_err(error)?;
            if chunk.is_empty() {
                return Ok((meta(opened.metadata), out));
            }
            out.extend_from_slice(&chunk);
        }
    }

    fn write(
        &self,
        path: &str,
        chunks: &[&[u8]],
        offset: Option<u64>,
        create_only: bool,
    ) -> c::Result<bool> {
        let mut writer = self.writer(path, offset, create_only)?;
        for chunk in chunks {
            writer.write(chunk).map_err(error)?;
        }
        Ok(writer.commit().map_err(error)?.created)
    }

    fn abandon_write(&self, path: &str, content: &[u8], offset: Option<u64>) -> c::Result<()> {
        self.writer(path, offset, false)?
            .write(content)
            .map_err(error)
    }

    fn create_collection(&self, path: &str) -> c::Result<()> {
        self.0.create_collection(path).map_err(error)
    }

    fn delete(&self, path: &str) -> c::Result<c::MemberErrors> {
        self.0.delete(path).map(member_errors).map_err(error)
    }

    fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> c::Result<c::MemberErrors> {
        self.0
            .copy(source, destination, recursive, overwrite)
            .map(member_errors)
            .map_err(error)
    }

    fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> c::Result<c::MemberErrors> {
        self.0
            .rename(source, destination, overwrite)
            .map(member_errors)
            .map_err(error)
    }

    fn get_properties(&self, path: &str) -> c::Result<Vec<c::Property>> {
        let properties = self.0.get_properties(path).map_err(error)?;
        Ok(properties
            .into_iter()
            .map(|p| c::Property {
                namespace: p.name.namespace,
                name: p.name.name,
                value: p.value,
            })
            .collect())
    }

    fn patch_properties(&self, path: &str, changes: Vec<c::Change>) -> c::Result<()> {
        let changes: Vec<b::PropertyChange> = changes
            .into_iter()
            .map(|change| match change {
                c::Change::Set(p) => b::PropertyChange::Set(b::Property {
                    name: b::PropertyName::new(&p.namespace, &p.name),
                    value: p.value,
                }),
                c::Change::Remove { namespace, name } => {
                    b::PropertyChange::Remove(b::PropertyName::new(&namespace, &name))
                }
            })
            .collect();
        self.0.patch_properties(path, &changes).map_err(error)
    }
}

#[test]
fn the_memory_store_conforms() {
    let failures = c::run(&Memory(MemoryStorage::new()));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
