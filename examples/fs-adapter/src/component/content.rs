//! Reading and writing file content: staged writes published by one rename.

use super::*;

pub struct FsReader {
    pub(super) fd: Descriptor,
    pub(super) position: RefCell<u64>,
    pub(super) remaining: RefCell<u64>,
}

impl st::GuestReader for FsReader {
    fn read(&self, max: u32) -> Result<Vec<u8>, Error> {
        let want = (*self.remaining.borrow()).min(u64::from(max));
        if want == 0 {
            return Ok(Vec::new());
        }
        let position = *self.position.borrow();
        let (chunk, _eof) = self.fd.read(want, position).map_err(fs_err)?;
        let n = chunk.len() as u64;
        *self.position.borrow_mut() += n;
        *self.remaining.borrow_mut() = if n == 0 {
            0
        } else {
            *self.remaining.borrow() - n
        };
        Ok(chunk)
    }
}

/// An upload staged in a hidden file beside its target.
pub struct FsWriter {
    pub(super) store: Rc<Store>,
    pub(super) fd: Descriptor,
    pub(super) temp: String,
    pub(super) target: String,
    pub(super) offset: Option<u64>,
    pub(super) create_only: bool,
    pub(super) written: RefCell<u64>,
    pub(super) committed: bool,
}

impl st::GuestWriter for FsWriter {
    fn write(&self, data: Vec<u8>) -> Result<(), Error> {
        let at = *self.written.borrow();
        write_all(&self.fd, &data, at).map_err(fs_err)?;
        *self.written.borrow_mut() += data.len() as u64;
        Ok(())
    }

    fn commit(this: st::Writer) -> Result<Committed, Error> {
        let mut w: FsWriter = this.into_inner();
        w.fd.sync().map_err(fs_err)?;
        let s = w.store.clone();
        let created = match w.offset {
            Some(offset) => {
                s.apply_piece(&w.fd, &w.target, offset)?;
                false
            }
            None => s.publish(&w.temp, &w.target, w.create_only)?,
        };
        // The staged file is gone (published) or no longer needed (a piece).
        w.committed = w.offset.is_none();
        Ok(Committed {
            metadata: s.metadata(&w.target).map_err(fs_err)?,
            created,
        })
    }
}

impl Store {
    /// Moves a staged file to `target`; returns whether that created it. A
    /// hard link fails with `exist` instead of replacing anything, so the
    /// create-or-replace decision is atomic: a create-only commit then fails
    /// with `already-exists` having changed nothing, any other falls back to
    /// a rename that replaces. Where links are not supported, a stat then a
    /// rename decide it (best effort).
    pub(super) fn publish(
        &self,
        temp: &str,
        target: &str,
        create_only: bool,
    ) -> Result<bool, Error> {
        let gone = |e| match e {
            // The collection went away (and took the upload with it).
            ErrorCode::NoEntry => Error::ParentNotFound,
            e => fs_err(e),
        };
        match self.dir.link_at(NOFOLLOW, temp, &self.dir, target) {
            Ok(()) => {
                let _ = self.dir.unlink_file_at(temp);
                return Ok(true);
            }
            Err(ErrorCode::Exist) if create_only => return Err(Error::AlreadyExists),
            Err(ErrorCode::Exist) => {}
            Err(ErrorCode::NotPermitted | ErrorCode::Unsupported | ErrorCode::Access) => {
                let exists = self.stat(target, NOFOLLOW).is_ok();
                if exists && create_only {
                    return Err(Error::AlreadyExists);
                }
                self.dir.rename_at(temp, &self.dir, target).map_err(gone)?;
                return Ok(!exists);
            }
            Err(e) => return Err(gone(e)),
        }
        self.dir.rename_at(temp, &self.dir, target).map_err(gone)?;
        Ok(false)
    }

    /// Applies a staged piece at `offset` of `target` on a staged copy of
    /// it, then renames the copy over it: a crash leaves the old or the new
    /// file, never a half-applied piece.
    pub(super) fn apply_piece(
        &self,
        piece: &Descriptor,
        target: &str,
        offset: u64,
    ) -> Result<(), Error> {
        let current = self
            .open(target, OpenFlags::empty(), DescriptorFlags::READ)
            .map_err(fs_err)?;
        let stat = current.stat().map_err(fs_err)?;
        if stat.type_ == DescriptorType::Directory {
            return Err(Error::IsACollection);
        }
        if offset > stat.size {
            return Err(Error::Conflict("offset beyond the end of the file".into()));
        }
        let copy = rel_child(rel_parent(target), &random_name());
        let applied = (|| {
            let fd = self.dir.open_at(
                NOFOLLOW,
                &copy,
                OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                DescriptorFlags::WRITE,
            )?;
            copy_content(&current, &fd, 0)?;
            copy_content(piece, &fd, offset)?;
            fd.sync()?;
            drop(fd);
            self.dir.rename_at(&copy, &self.dir, target)
        })();
        if applied.is_err() {
            let _ = self.dir.unlink_file_at(&copy);
        }
        applied.map_err(fs_err)
    }

    /// Removes a staged file not modified for [`STAGED_STALE`]: left by an
    /// instance that was killed (WASI offers no file locks to tell).
    pub(super) fn remove_if_stale(&self, rel: &str) {
        let Ok(stat) = self.dir.stat_at(NOFOLLOW, rel) else {
            return;
        };
        let modified = stat.data_modification_timestamp.map_or(0, |t| t.seconds);
        let now = now_ms() / 1000;
        if now.saturating_sub(modified) > STAGED_STALE.as_secs() {
            let _ = self.dir.unlink_file_at(rel);
        }
    }

    /// Sweeps the stale staged files of an internal directory.
    pub(super) fn sweep(&self, dir: &str) {
        if let Ok(entries) = self.read_dir(dir) {
            for (name, _) in entries {
                if name.starts_with(UPLOAD_PREFIX) {
                    self.remove_if_stale(&rel_child(dir, &name));
                }
            }
        }
    }
}

impl Drop for FsWriter {
    /// Discards an upload that was not committed.
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.store.dir.unlink_file_at(&self.temp);
        }
    }
}
