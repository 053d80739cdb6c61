//! Reading and writing file content: the reader, the staged writer and
//! its atomic publication (see the module docs of [`super`]).

use super::*;

/// Reads a chunk at a time on the calling thread (see [`LocalBackend::inline`]).
pub(super) struct LocalReader {
    /// Shared with the chunks read, which a socket may send from it.
    pub(super) file: Arc<File>,
    /// Where the next chunk starts in the file.
    pub(super) position: u64,
    pub(super) remaining: u64,
}

#[async_trait]
impl FileReader for LocalReader {
    async fn read_chunk(&mut self, max: u32) -> Result<Bytes> {
        let at = self.position;
        let data = self.read(max).await?;
        Ok(file_chunks::chunk(data, &self.file, at))
    }

    async fn read(&mut self, max: u32) -> Result<Vec<u8>> {
        let want = self.remaining.min(max.into()) as usize;
        // Into spare capacity, so a buffer about to be filled is not zeroed
        // first, and in one `pread` when the file has the bytes: std's
        // `read_to_end` probes from 8 KiB up, five system calls per 128 KiB.
        // At `position`, which chunks left unread move on too.
        let mut buf = Vec::with_capacity(want);
        while buf.len() < want {
            let at = self.position + buf.len() as u64;
            match rustix::io::pread(&self.file, rustix::buffer::spare_capacity(&mut buf), at) {
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
        self.position += buf.len() as u64;
        Ok(buf)
    }

    fn sends_unread(&self) -> bool {
        // A small range is read: a copy costs less than a `sendfile`.
        self.remaining >= file_chunks::MIN_CHUNK as u64
    }

    fn next_unread(&mut self, max: u32) -> Option<Bytes> {
        let want = self.remaining.min(max.into()) as usize;
        if want == 0 {
            return Some(Bytes::new());
        }
        // Sent from the file by `sendfile`, which stops where the file
        // ends: should it have been cut short, the connection fails.
        let chunk = file_chunks::unread(&self.file, self.position, want)?;
        self.remaining -= want as u64;
        self.position += want as u64;
        Some(chunk)
    }
}

/// How much of an upload is written before its writeback is started.
pub(super) const WRITEBACK_STEP: u64 = 8 << 20;

/// An upload: written into its staged file as it comes, published at
/// commit (see [`Staging`]).
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
    pub(super) staging: Staging,
    pub(super) target: PathBuf,
    pub(super) create_only: bool,
    /// Whether the staged file became the target (nothing to discard).
    pub(super) published: bool,
}

/// What an upload is staged in, and so how its commit publishes it.
pub(super) enum Staging {
    /// A whole file, in an anonymous file in the target's collection (see
    /// [`staging::stage_anonymous`]), linked into place.
    Anonymous,
    /// A whole file, in a named and locked staged file (see
    /// [`staging::stage`]), renamed into place.
    Named(PathBuf),
    /// A piece to write at an offset of the target (a partial update), in a
    /// named staged file; a staged copy of the target with the piece applied
    /// is renamed into place.
    Piece(PathBuf, u64),
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

    async fn commit(self: Box<Self>) -> Result<Committed> {
        let (meta, created) = tokio::task::spawn_blocking(move || self.publish())
            .await
            .map_err(|e| Error::Io(format!("storage task failed: {e}")))??;
        Ok(Committed {
            metadata: metadata(&meta),
            created,
        })
    }
}

impl LocalWriter {
    /// Makes the upload durable and puts it in place (on the blocking pool):
    /// the target's metadata, and whether the target was created.
    fn publish(mut self) -> Result<(fs::Metadata, bool)> {
        self.file.sync_all()?;
        let (store, target) = (&*self.store, &self.target);
        let created = match &self.staging {
            Staging::Anonymous => {
                let created = commit::publish_with(
                    || Ok(staging::link(&self.file, target)?),
                    || Ok(staging::replace_with(&self.file, target)?),
                    self.create_only,
                )?;
                // Linking raised the file's link count from 0, a change of
                // its inode that the collection's fsync does not write: on
                // an ext4 without a journal the name would reach the disk
                // before it, and after a power cut name a file the kernel
                // calls deleted.
                self.file.sync_all()?;
                created
            }
            Staging::Named(temp) => commit::publish(store, temp, target, self.create_only)?,
            Staging::Piece(piece, offset) => {
                commit::apply_piece(store, piece, target, *offset)?;
                false
            }
        };
        // Make the new name durable.
        File::open(parent(target))?.sync_all()?;
        // A whole file's staged file is now the target; a piece went into a
        // copy of it.
        let meta = match self.staging {
            Staging::Piece(..) => fs::metadata(target)?,
            Staging::Anonymous | Staging::Named(_) => {
                self.published = true;
                self.file.metadata()?
            }
        };
        Ok((meta, created))
    }
}

impl Drop for LocalWriter {
    /// Discards an upload that was not published, and the staged piece of a
    /// partial update (one unlink, cheap enough to do inline).
    /// (An anonymous file needs nothing: the kernel frees it on close.)
    fn drop(&mut self) {
        match &self.staging {
            Staging::Named(temp) if !self.published => {
                let _ = fs::remove_file(temp);
            }
            Staging::Piece(piece, _) => {
                let _ = fs::remove_file(piece);
            }
            Staging::Anonymous | Staging::Named(_) => {}
        }
    }
}
