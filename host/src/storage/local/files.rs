//! Reading and writing file content: the reader, the staged writer and
//! its atomic publication (see the module docs of [`super`]).

use super::*;

/// Reads a chunk at a time on the calling thread (see [`LocalBackend::inline`]).
pub(super) struct LocalReader {
    pub(super) file: File,
    pub(super) remaining: u64,
}

#[async_trait]
impl FileReader for LocalReader {
    async fn read(&mut self, max: u32) -> Result<Vec<u8>> {
        let want = self.remaining.min(max.into()) as usize;
        // Into spare capacity, so a buffer about to be filled is not zeroed
        // first, and in one `read` when the file has the bytes: std's
        // `read_to_end` probes from 8 KiB up, five system calls per 128 KiB.
        let mut buf = Vec::with_capacity(want);
        while buf.len() < want {
            match rustix::io::read(&self.file, rustix::buffer::spare_capacity(&mut buf)) {
                Ok(0) => break,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(io::Error::from(e).into()),
            }
        }
        // A short chunk is the end of the file: nothing more to hand out.
        self.remaining = if buf.len() < want {
            0
        } else {
            self.remaining - want as u64
        };
        Ok(buf)
    }
}

/// How much of an upload is written before its writeback is started.
pub(super) const WRITEBACK_STEP: u64 = 8 << 20;

/// An upload staged in a locked file (see [`staging`]), published at commit
/// by a rename: over the target for a whole write; for a partial update,
/// after the piece was applied on a staged copy of the current file.
///
/// Chunks are written on the calling thread (into the page cache, like the
/// reads of [`LocalReader`]); the commit, which waits for the disk, runs on
/// the blocking pool in one hand-off.
pub(super) struct LocalWriter {
    pub(super) store: Arc<Store>,
    pub(super) file: File,
    /// Bytes written, and how many of them writeback was started for.
    pub(super) written: u64,
    pub(super) flushing: u64,
    pub(super) temp: PathBuf,
    pub(super) target: PathBuf,
    pub(super) offset: Option<u64>,
    pub(super) create_only: bool,
    pub(super) committed: bool,
}

#[async_trait]
impl FileWriter for LocalWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        io::Write::write_all(&mut self.file, &data)?;
        self.written += data.len() as u64;
        if self.written - self.flushing >= WRITEBACK_STEP {
            // Start writing what is written to disk now, without waiting,
            // so the fsync at commit has little left to do: a large upload
            // then commits in about the time its last step takes, not in
            // the time its whole size takes to reach the disk.
            let (start, length) = (self.flushing, self.written - self.flushing);
            // SAFETY: a plain syscall on a file descriptor we own.
            unsafe {
                libc::sync_file_range(
                    std::os::fd::AsRawFd::as_raw_fd(&self.file),
                    i64::try_from(start).unwrap_or(i64::MAX),
                    i64::try_from(length).unwrap_or(i64::MAX),
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.flushing = self.written;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<Committed> {
        let file = self.file.try_clone()?;
        let (store, temp, target) = (self.store.clone(), self.temp.clone(), self.target.clone());
        let (offset, create_only) = (self.offset, self.create_only);
        let (meta, created) = tokio::task::spawn_blocking(move || {
            file.sync_all()?;
            let created = match offset {
                Some(offset) => {
                    commit::apply_piece(&*store, &temp, &target, offset)?;
                    false
                }
                None => commit::publish(&*store, &temp, &target, create_only)?,
            };
            // Make the rename itself durable.
            File::open(parent(&target))?.sync_all()?;
            Ok::<_, Error>((fs::metadata(&target)?, created))
        })
        .await
        .map_err(|e| Error::Io(format!("storage task failed: {e}")))??;
        self.committed = offset.is_none();
        Ok(Committed {
            metadata: metadata(&meta),
            created,
        })
    }
}

impl Drop for LocalWriter {
    /// Discards an upload that was not published, and the staged piece of a
    /// partial update (one unlink, cheap enough to do inline).
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}
