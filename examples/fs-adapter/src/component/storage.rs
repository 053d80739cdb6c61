//! The `edgedav:dav/storage` exports: the tree semantics are
//! `edgedav_fstree`'s over this adapter's [`fstree::Fs`] (see `disk`);
//! what is left here are lookups and content.

use super::*;

use fstree::{commit, listing, sidecar, tree};

impl st::Guest for Component {
    type Reader = FsReader;
    type Writer = FsWriter;

    fn stat(path: String) -> Result<Metadata, Error> {
        let s = store()?;
        s.metadata(wasi_path(&fstree::resolve(&*s, &path)?))
            .map_err(lookup_err)
    }

    fn list_members(path: String, cursor: Option<String>, limit: u32) -> Result<Page, Error> {
        let s = store()?;
        Ok(contract_page(listing::list_members(
            &*s, &path, cursor, limit,
        )?))
    }

    fn open_read(
        path: String,
        offset: u64,
        length: Option<u64>,
    ) -> Result<(st::Reader, Metadata), Error> {
        let (fd, opened) = open_file(&path)?;
        let reader = st::Reader::new(FsReader {
            fd,
            position: RefCell::new(offset),
            remaining: RefCell::new(length.unwrap_or(u64::MAX)),
        });
        Ok((reader, opened))
    }

    /// The descriptor's own stream when the range runs to the end of the
    /// file (a whole GET): wasi:filesystem streams run to the end, and the
    /// contract's stream closes at the end of its range. Other ranges are
    /// declined, and the handler reads them through `open-read`.
    fn open_read_stream(
        path: String,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Option<(InputStream, Metadata)>, Error> {
        let (fd, opened) = open_file(&path)?;
        if length.is_some_and(|n| offset.saturating_add(n) < opened.size) {
            return Ok(None);
        }
        Ok(Some((fd.read_via_stream(offset).map_err(fs_err)?, opened)))
    }

    fn open_write(path: String, options: WriteOptions) -> Result<st::Writer, Error> {
        let s = store()?;
        let target = commit::check_write(&*s, &path, options.offset, options.create_only)?;
        let (staged, fd) = s.stage_beside(&target).map_err(fs_err)?;
        Ok(st::Writer::new(FsWriter {
            store: s,
            fd,
            staged,
            target,
            offset: options.offset,
            create_only: options.create_only,
            written: RefCell::new(0),
            committed: false,
        }))
    }

    fn create_collection(path: String) -> Result<(), Error> {
        Ok(tree::create_collection(&*store()?, &path)?)
    }

    fn delete(path: String) -> Result<Vec<MemberError>, Error> {
        contract_members(tree::delete(&*store()?, &path))
    }

    fn copy(
        source: String,
        destination: String,
        recursive: bool,
        overwrite: bool,
    ) -> Result<Vec<MemberError>, Error> {
        let s = store()?;
        contract_members(tree::copy(&*s, &source, &destination, recursive, overwrite))
    }

    fn rename(
        source: String,
        destination: String,
        overwrite: bool,
    ) -> Result<Vec<MemberError>, Error> {
        contract_members(tree::rename(&*store()?, &source, &destination, overwrite))
    }

    fn get_properties(path: String) -> Result<Vec<Property>, Error> {
        Ok(contract_properties(sidecar::get(&*store()?, &path)?))
    }

    fn patch_properties(path: String, changes: Vec<PropertyChange>) -> Result<(), Error> {
        Ok(sidecar::patch(&*store()?, &path, stored_changes(changes))?)
    }

    fn space_usage(path: String) -> Result<Space, Error> {
        fstree::resolve(&*store()?, &path)?;
        // wasi:filesystem has no statvfs.
        Ok(Space {
            used: None,
            available: None,
        })
    }
}

/// Opens a contract path for reading, with the metadata of the version
/// opened.
fn open_file(path: &str) -> Result<(Descriptor, Metadata), Error> {
    let s = store()?;
    let at = fstree::resolve(&*s, path)?;
    let fd = s
        .open(wasi_path(&at), OpenFlags::empty(), DescriptorFlags::READ)
        .map_err(lookup_err)?;
    let opened = metadata_of(&fd).map_err(fs_err)?;
    if opened.kind == NodeKind::Collection {
        return Err(Error::IsACollection);
    }
    Ok((fd, opened))
}
