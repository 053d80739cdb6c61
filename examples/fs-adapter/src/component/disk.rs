//! The filesystem primitives of [`edgedav_fstree::Fs`] on the preopened
//! directory's descriptor. Locations are paths relative to it
//! ([`wasi_path`]); the runtime confines every lookup to it (no escape by
//! `..` or symlinks), so confinement has nothing left to do here.

use super::*;

use fstree::{Fs, Kind, Node, Section};

type Result<T> = fstree::Result<T>;

impl Fs for Store {
    type Meta = Metadata;
    /// The collection's descriptor.
    type Listing = Descriptor;

    fn root(&self) -> &Path {
        &self.root
    }

    fn confine(&self, _at: &Path) -> Result<()> {
        Ok(())
    }

    fn node(&self, at: &Path, follow: bool) -> Result<Node> {
        let flags = if follow { FOLLOW } else { NOFOLLOW };
        let stat = self.stat(wasi_path(at), flags).map_err(fs_err)?;
        Ok(Node {
            kind: kind(stat.type_),
            size: stat.size,
        })
    }

    fn list(&self, at: &Path) -> Result<(Descriptor, Vec<String>)> {
        let dir = self.open_dir(wasi_path(at)).map_err(fs_err)?;
        let stream = dir.read_directory().map_err(fs_err)?;
        let mut names = Vec::new();
        while let Some(entry) = stream.read_directory_entry().map_err(fs_err)? {
            names.push(entry.name);
        }
        drop(stream);
        Ok((dir, names))
    }

    fn open_listing(&self, path: &str) -> Result<Descriptor> {
        let at = fstree::resolve(self, path)?;
        self.open_dir(wasi_path(&at))
            .map_err(|e| fs_err(e).looked_up())
    }

    fn snapshots(&self) -> Option<&fstree::snapshot::Snapshots> {
        Some(&self.snapshots)
    }

    /// Symlinks that lead out of the store fail here (the runtime refuses
    /// to follow them), so they are skipped.
    fn member(&self, dir: &Descriptor, name: &str) -> Option<Metadata> {
        metadata_at(dir, name).ok()
    }

    fn read_dir(&self, at: &Path) -> Result<Vec<(String, Kind)>> {
        Ok(self
            .read_dir(wasi_path(at))
            .map_err(fs_err)?
            .into_iter()
            .map(|(name, type_)| (name, kind(type_)))
            .collect())
    }

    fn has_entries(&self, at: &Path) -> Result<bool> {
        let dir = self.open_dir(wasi_path(at)).map_err(fs_err)?;
        let stream = dir.read_directory().map_err(fs_err)?;
        Ok(stream.read_directory_entry().map_err(fs_err)?.is_some())
    }

    fn create_dir(&self, at: &Path) -> Result<()> {
        self.dir.create_directory_at(wasi_path(at)).map_err(fs_err)
    }

    fn remove_file(&self, at: &Path) -> Result<()> {
        self.dir.unlink_file_at(wasi_path(at)).map_err(fs_err)
    }

    fn remove_dir(&self, at: &Path) -> Result<()> {
        self.dir.remove_directory_at(wasi_path(at)).map_err(fs_err)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.dir
            .rename_at(wasi_path(from), &self.dir, wasi_path(to))
            .map_err(fs_err)
    }

    /// A hard link, which fails with `exist` instead of replacing anything,
    /// then the removal of the old name. Where links are not supported, a
    /// lookup then a rename decide it (best effort, not atomic).
    fn rename_noreplace(&self, from: &Path, to: &Path) -> Result<()> {
        let (from, to) = (wasi_path(from), wasi_path(to));
        match self.dir.link_at(NOFOLLOW, from, &self.dir, to) {
            Ok(()) => {
                let _ = self.dir.unlink_file_at(from);
                Ok(())
            }
            Err(ErrorCode::NotPermitted | ErrorCode::Unsupported | ErrorCode::Access) => {
                if self.stat(to, NOFOLLOW).is_ok() {
                    return Err(fstree::Error::AlreadyExists);
                }
                self.dir.rename_at(from, &self.dir, to).map_err(fs_err)
            }
            Err(e) => Err(fs_err(e)),
        }
    }

    fn copy_file(&self, from: &Path, to: &Path) -> Result<()> {
        self.publish_copy(to, |copy| {
            let source = self.open(wasi_path(from), OpenFlags::empty(), DescriptorFlags::READ)?;
            copy_content(&source, copy, 0)?;
            copy.sync()
        })
    }

    fn patch_file(&self, target: &Path, piece: &Path, offset: u64) -> Result<()> {
        self.publish_copy(target, |copy| {
            let read = |at| self.open(wasi_path(at), OpenFlags::empty(), DescriptorFlags::READ);
            copy_content(&read(target)?, copy, 0)?;
            copy_content(&read(piece)?, copy, offset)?;
            copy.sync()
        })
    }

    fn sweep_staged(&self, dir: &Path, names: &[String]) {
        for name in names {
            self.remove_if_stale(&dir.join(name));
        }
    }

    fn read_file(&self, at: &Path) -> Result<Vec<u8>> {
        self.read_all(wasi_path(at)).map_err(fs_err)
    }

    /// Staged beside the file; one write in 64 also sweeps that directory
    /// of files staged by killed instances (the sidecar directory holds one
    /// file per resource: no listing per write).
    fn write_file(&self, at: &Path, bytes: &[u8]) -> Result<()> {
        if wasi::random::random::get_random_u64().is_multiple_of(64) {
            self.sweep(at.parent().unwrap_or(&self.root));
        }
        self.write_atomic(at, bytes).map_err(fs_err)
    }

    fn sync_dir(&self, at: &Path) -> Result<()> {
        self.open_dir(wasi_path(at))
            .and_then(|dir| dir.sync())
            .map_err(fs_err)
    }

    /// Serialised by a mutex file, since every instance (one per request
    /// under `wasmtime serve`) shares the store.
    fn exclusive<T>(&self, section: Section, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let name = match section {
            Section::Properties => "props",
            Section::Update => "update",
        };
        let _guard = self.mutex(name).map_err(fstree::Error::Io)?;
        work()
    }
}

impl Store {
    /// Writes a file staged beside `to` with `fill`, then renames it over
    /// `to`; on failure, removes it and leaves `to` as it was.
    fn publish_copy(
        &self,
        to: &Path,
        fill: impl FnOnce(&Descriptor) -> std::result::Result<(), ErrorCode>,
    ) -> Result<()> {
        let (staged, fd) = self.stage_beside(to).map_err(fs_err)?;
        let copied = fill(&fd).and_then(|()| {
            drop(fd);
            self.dir
                .rename_at(wasi_path(&staged), &self.dir, wasi_path(to))
        });
        if copied.is_err() {
            let _ = self.dir.unlink_file_at(wasi_path(&staged));
        }
        copied.map_err(fs_err)
    }
}

fn kind(type_: DescriptorType) -> Kind {
    match type_ {
        DescriptorType::Directory => Kind::Directory,
        DescriptorType::SymbolicLink => Kind::Symlink,
        _ => Kind::File,
    }
}
