//! Reading and writing file content: writes staged beside their target and
//! published by `edgedav_fstree::commit`.

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

/// The most one splice of [`FsWriter::append_from`] moves (a request body
/// hands out smaller frames).
const SPLICE_CHUNK: u64 = 1 << 20;

/// An upload staged in a hidden file beside its target.
pub struct FsWriter {
    pub(super) store: Rc<Store>,
    pub(super) fd: Descriptor,
    pub(super) staged: PathBuf,
    pub(super) target: PathBuf,
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

    /// Splices the source into the staged file through the host's own file
    /// stream, so the bytes pass through neither this component nor the
    /// handler.
    fn append_from(&self, source: &InputStream) -> Result<Option<st::Appended>, Error> {
        let start = *self.written.borrow();
        let sink = self.fd.write_via_stream(start).map_err(fs_err)?;
        let mut appended = 0;
        let outcome = loop {
            match sink.blocking_splice(source, SPLICE_CHUNK) {
                Ok(n) => appended += n,
                // The sink closes only after a failure, seen below first:
                // this is the end of the source.
                Err(StreamError::Closed) => break st::Appended::All(appended),
                // A failed write closes the file stream; a sink still open
                // means the source failed.
                Err(StreamError::LastOperationFailed(e)) if sink.check_write().is_ok() => {
                    break st::Appended::SourceFailed(e.to_debug_string());
                }
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(match filesystem_error_code(&e) {
                        Some(code) => fs_err(code).into(),
                        None => Error::Io(e.to_debug_string()),
                    });
                }
            }
        };
        *self.written.borrow_mut() = start + appended;
        Ok(Some(outcome))
    }

    fn commit(this: st::Writer) -> Result<Committed, Error> {
        let mut w: FsWriter = this.into_inner();
        w.fd.sync().map_err(fs_err)?;
        let s = w.store.clone();
        let created = match w.offset {
            Some(offset) => {
                fstree::commit::apply_piece(&*s, &w.staged, &w.target, offset)?;
                false
            }
            None => fstree::commit::publish(&*s, &w.staged, &w.target, w.create_only)?,
        };
        // Its name, durable before the answer.
        fstree::Fs::sync_dir(&*s, w.target.parent().unwrap_or(&s.root))?;
        // The staged file is gone (published) or no longer needed (a piece).
        w.committed = w.offset.is_none();
        Ok(Committed {
            metadata: s.metadata(wasi_path(&w.target)).map_err(fs_err)?,
            created,
        })
    }
}

impl Drop for FsWriter {
    /// Discards an upload that was not committed.
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.store.dir.unlink_file_at(wasi_path(&self.staged));
        }
    }
}

impl Store {
    /// Removes a staged file not modified for [`STAGED_STALE`]: left by an
    /// instance that was killed (WASI offers no file locks to tell).
    pub(super) fn remove_if_stale(&self, at: &Path) {
        let Ok(stat) = self.dir.stat_at(NOFOLLOW, wasi_path(at)) else {
            return;
        };
        let modified = stat.data_modification_timestamp.map_or(0, |t| t.seconds);
        let now = now_ms() / 1000;
        if now.saturating_sub(modified) > STAGED_STALE.as_secs() {
            let _ = self.dir.unlink_file_at(wasi_path(at));
        }
    }

    /// Sweeps the stale staged files of a directory.
    pub(super) fn sweep(&self, dir: &Path) {
        if let Ok(entries) = self.read_dir(wasi_path(dir)) {
            for (name, _) in entries {
                if name.starts_with(UPLOAD_PREFIX) {
                    self.remove_if_stale(&dir.join(name));
                }
            }
        }
    }
}
