//! A [`Backend`] on a local directory.
//!
//! * **Confinement.** Every contract path is mapped below the root segment by
//!   segment (`..`, `.`, NUL and reserved names are refused), then the longest
//!   existing prefix must have no symlink on the way (one `openat2`) or,
//!   canonicalised, stay inside the root and out of the internal directory,
//!   so a symlink cannot lead out of the store.
//!   Recursive walks (copy, delete) never follow symlinks to collections.
//!   This is defence in depth against a buggy handler, not a sandbox against a
//!   hostile local user racing renames on the same disk.
//! * **Reserved names.** `.edgedav` (the internal directory at the root) and
//!   `.edgedav-upload-*` (staged files beside a target) are refused as path
//!   segments and never listed.
//! * **Atomic uploads.** A writer stages into a locked file (see
//!   [`super::staging`]: `<root>/.edgedav/uploads/`, swept of what crashed
//!   writers leave); commit fsyncs it and renames it over the target, so
//!   readers see the old or the new content, never a mix. A writer dropped
//!   without a commit deletes its staged file.
//! * **Created or replaced** is decided by the rename itself: first
//!   `renameat2(RENAME_NOREPLACE)` (link + unlink where the filesystem lacks
//!   it), which fails with `EEXIST` when anything is at the target; a
//!   `create-only` commit then fails with `already-exists` having changed
//!   nothing, any other falls back to a plain rename and reports a
//!   replacement. So of concurrent creations exactly one reports `created`.
//! * **Partial updates** (`offset`) are applied at commit on a copy of the
//!   current file (staged, `copy_file_range` in the kernel, a reflink where
//!   the filesystem offers it), then renamed over it: a crash at any point
//!   leaves the old or the new file, never a half-applied piece. The price
//!   is a copy of the file per piece; partial commits are serialised in the
//!   process so two pieces applied at once do not lose one another.
//! * **Errors.** Out of file descriptors (`EMFILE`, `ENFILE`) and a
//!   read-only filesystem (`EROFS`) are `unavailable` (503, transient server
//!   conditions, not permissions). A name longer than the filesystem holds
//!   (`ENAMETOOLONG`) is `not-found` when looked up and
//!   `conflict("name too long")` (409) when created.
//! * **Dead properties** live in a sidecar store, `<root>/.edgedav/props/`,
//!   one JSON file per resource named by the hex SHA-256 of its path and
//!   holding the path (for humans and future clean-up) and its properties.
//!   Copy, rename and delete carry or remove the properties of every member of
//!   a subtree; a patch is applied in memory and published with one rename.
//!   Properties of resources deleted behind the server's back are orphaned,
//!   not reused.
//! * **Where the work runs.** Lookups, listing pages and content chunks are
//!   served on the calling thread (page-cache work, cheaper than a thread
//!   hand-off); what may take long (tree operations, fsyncs, copies) runs
//!   on tokio's blocking pool.
//!
//! Laid out by concern: this file maps paths and answers the contract;
//! [`tree`] deletes, copies and renames subtrees; [`files`] reads and
//! stages content and publishes it; [`sidecar`] keeps dead properties;
//! [`metadata`] turns a stat into the contract's metadata and ETag.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Seek, SeekFrom, Write as _};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rustix::fs::{Access, AtFlags, FileType, Mode, OFlags, Statx, StatxFlags, statx};

use super::props;
use super::staging::{self, Staged, UPLOAD_PREFIX};
use super::{
    Backend, Committed, Entry, Error, FileReader, FileWriter, MemberError, Metadata, NodeKind,
    Page, Property, PropertyChange, Reader, Result, Space, Timestamp, WriteOptions, Writer,
    check_transfer, name_too_long,
};
use edgedav_rules::path::child_path;

mod files;
mod metadata;
mod sidecar;
#[cfg(test)]
mod tests;
mod tree;

use self::files::{LocalReader, LocalWriter};
use self::metadata::metadata;
use self::sidecar::PropStore;

/// Name of the internal directory at the root.
const INTERNAL_DIR: &str = ".edgedav";
/// The most entries one `list-members` page holds, whatever the guest asks.
const MAX_PAGE: u32 = 1000;

/// A store rooted at a local directory. Cheap to clone.
#[derive(Clone)]
pub struct LocalBackend(Arc<Store>);

struct Store {
    /// Canonical root directory.
    root: PathBuf,
    /// `<root>/.edgedav`, out of bounds for contract paths.
    internal: PathBuf,
    /// `<root>/.edgedav/uploads`, where files are staged.
    uploads: PathBuf,
    props: PropStore,
    /// When the staging directory was last swept.
    last_sweep: Mutex<Instant>,
    /// Serialises partial-update commits (see the module docs).
    updating: Mutex<()>,
}

impl LocalBackend {
    /// Opens (creating it if needed) a store at `root`.
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        let internal = root.join(INTERNAL_DIR);
        let uploads = internal.join("uploads");
        fs::create_dir_all(&uploads)?;
        let props = PropStore::open(internal.join("props"), uploads.clone())?;
        let swept = staging::sweep(&uploads, None);
        if swept > 0 {
            tracing::info!(root = %root.display(), swept, "removed uploads left by a crash");
        }
        Ok(Self(Arc::new(Store {
            root,
            internal,
            uploads,
            props,
            last_sweep: Mutex::new(Instant::now()),
            updating: Mutex::new(()),
        })))
    }

    /// Runs a cheap lookup on the calling thread. A stat, an open, a
    /// listing page or a read of one chunk is served from the page cache in
    /// microseconds, less than a hand-off to the blocking pool and back
    /// costs (measured: thread hand-offs were a third of a 4 KiB GET's CPU),
    /// so only work that may take long (trees, fsyncs, copies) goes to
    /// [`Self::blocking`].
    fn inline<T>(&self, work: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        work(&self.0)
    }

    /// Runs blocking filesystem work off the async worker threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| Error::Io(format!("storage task failed: {e}")))?
    }
}

#[async_trait]
impl Backend for LocalBackend {
    async fn stat(&self, path: &str) -> Result<Metadata> {
        self.inline(|s| Ok(metadata(&fs::metadata(s.resolve(path)?).map_err(lookup)?)))
    }

    async fn list_members(&self, path: &str, cursor: Option<String>, limit: u32) -> Result<Page> {
        self.inline(|s| s.list_members(path, cursor, limit))
    }

    async fn open_read(&self, path: &str, offset: u64, length: Option<u64>) -> Result<Reader> {
        self.inline(|s| {
            let mut file = File::open(s.resolve(path)?).map_err(lookup)?;
            if file.metadata()?.is_dir() {
                return Err(Error::IsACollection);
            }
            if offset > 0 {
                file.seek(SeekFrom::Start(offset))?;
            }
            let remaining = length.unwrap_or(u64::MAX);
            Ok(Box::new(LocalReader { file, remaining }) as Reader)
        })
    }

    async fn open_write(&self, path: &str, options: WriteOptions) -> Result<Writer> {
        self.inline(|_| Store::open_write(&self.0, path, options))
    }

    async fn create_collection(&self, path: &str) -> Result<()> {
        let path = path.to_owned();
        self.blocking(move |s| {
            if path == "/" {
                return Err(Error::AlreadyExists);
            }
            fs::create_dir(s.resolve(&path)?).map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::ParentNotFound,
                _ => e.into(),
            })
        })
        .await
    }

    async fn delete(&self, path: &str) -> Result<Vec<MemberError>> {
        let path = path.to_owned();
        self.blocking(move |s| s.delete(&path)).await
    }

    async fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> Result<Vec<MemberError>> {
        let (source, destination) = (source.to_owned(), destination.to_owned());
        self.blocking(move |s| s.copy(&source, &destination, recursive, overwrite))
            .await
    }

    async fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<Vec<MemberError>> {
        let (source, destination) = (source.to_owned(), destination.to_owned());
        self.blocking(move |s| s.rename(&source, &destination, overwrite))
            .await
    }

    async fn get_properties(&self, path: &str) -> Result<Vec<Property>> {
        self.inline(|s| {
            fs::metadata(s.resolve(path)?).map_err(lookup)?;
            Ok(s.props.load(path)?)
        })
    }

    async fn patch_properties(&self, path: &str, changes: Vec<PropertyChange>) -> Result<()> {
        let path = path.to_owned();
        self.blocking(move |s| {
            fs::metadata(s.resolve(&path)?)?;
            Ok(s.props.patch(&path, changes)?)
        })
        .await
    }

    async fn space_usage(&self, path: &str) -> Result<Space> {
        let path = path.to_owned();
        self.blocking(move |s| {
            s.resolve(&path)?;
            // Without a user quota (the per-user guard answers those), the
            // figures are the filesystem's that holds the root, as `df`
            // shows them: cheap, and used + available is what the disk offers.
            let stats = rustix::fs::statvfs(&s.root).map_err(io::Error::from)?;
            let used = stats.f_blocks.saturating_sub(stats.f_bfree);
            Ok(Space {
                used: Some(used.saturating_mul(stats.f_frsize)),
                available: Some(s.available()?),
            })
        })
        .await
    }
}

impl Store {
    /// Maps a contract path to a location in the store, or refuses it.
    fn resolve(&self, path: &str) -> Result<PathBuf> {
        if !path.starts_with('/') || path.contains('\0') {
            return Err(forbidden("not an absolute path"));
        }
        let mut full = self.root.clone();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            if segment == "." || segment == ".." || is_reserved(segment) {
                return Err(forbidden("path segment not allowed"));
            }
            full.push(segment);
        }
        self.confine(&full)?;
        Ok(full)
    }

    /// Refuses a location whose existing part resolves (through symlinks)
    /// outside the root or into the internal directory.
    ///
    /// The root is canonical and `full` was built from checked segments, so
    /// only a symlink can lead elsewhere. The usual case, no symlink on the
    /// way, is proved by one `openat2(RESOLVE_NO_SYMLINKS)` of the longest
    /// existing prefix; only when that meets a symlink (or the kernel lacks
    /// `openat2`) is the prefix canonicalised, a `readlink` per segment.
    fn confine(&self, full: &Path) -> Result<()> {
        use rustix::fs::{CWD, Mode, OFlags, ResolveFlags, openat2};
        use rustix::io::Errno;
        let mut probe = full;
        loop {
            match openat2(
                CWD,
                probe,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::NO_SYMLINKS,
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::NOENT | Errno::NOTDIR) => match probe.parent() {
                    Some(parent) if parent.starts_with(&self.root) => probe = parent,
                    _ => return Ok(()),
                },
                Err(_) => break,
            }
        }
        loop {
            if let Ok(real) = probe.canonicalize() {
                return if real.starts_with(&self.root) && !real.starts_with(&self.internal) {
                    Ok(())
                } else {
                    Err(forbidden("path leads outside the store"))
                };
            }
            match probe.parent() {
                Some(parent) if parent.starts_with(&self.root) => probe = parent,
                _ => return Ok(()),
            }
        }
    }

    fn list_members(&self, path: &str, cursor: Option<String>, limit: u32) -> Result<Page> {
        let dir = self.resolve(path)?;
        // Members are looked up relative to the open collection, one path
        // segment each instead of a walk from the root. Opening it also
        // tells a file (ENOTDIR: not a collection) from a missing path.
        let dir_fd = rustix::fs::open(
            &dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| lookup(e.into()))?;
        // Read through the descriptor just opened, not by path again.
        let mut listing = rustix::fs::Dir::new(dir_fd).map_err(io::Error::from)?;
        let mut staged_here = false;
        let mut names: Vec<String> = listing
            .by_ref()
            .filter_map(|entry| entry.ok()?.file_name().to_str().ok().map(str::to_owned))
            .filter(|name| name != "." && name != "..")
            .filter(|name| {
                staged_here |= name.starts_with(UPLOAD_PREFIX);
                !is_reserved(name)
            })
            .filter(|name| cursor.as_ref().is_none_or(|after| name > after))
            .collect();
        let dir_fd = listing.fd().map_err(io::Error::from)?;
        names.sort_unstable();
        if staged_here {
            // Files staged beside their target (see `staging`), or left by
            // older versions: swept when their collection is listed.
            staging::sweep(&dir, Some(UPLOAD_PREFIX));
        }

        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let mut entries = Vec::with_capacity(limit.min(names.len()));
        // A store without any dead property (the usual case) answers for
        // every member at once, instead of a lookup per member.
        let any_properties = self.props.any().unwrap_or(true);
        let mut names = names.into_iter().peekable();
        while entries.len() < limit {
            let Some(name) = names.next() else { break };
            // Members can vanish meanwhile, and symlinks may lead out of the store.
            if let Some(metadata) = self.member_metadata(dir_fd, &dir, &name) {
                // Dead properties exist iff the sidecar does: one lookup, no
                // read. When that cannot be told, say they may (true).
                let has_properties =
                    any_properties && self.props.has(&child_path(path, &name)).unwrap_or(true);
                entries.push(Entry {
                    name,
                    metadata,
                    has_properties,
                });
            }
        }
        let next = match names.peek() {
            Some(_) => entries.last().map(|entry| entry.name.clone()),
            None => None,
        };
        Ok(Page { entries, next })
    }

    fn member_metadata(&self, dir_fd: BorrowedFd<'_>, dir: &Path, name: &str) -> Option<Metadata> {
        let stat = statx(
            dir_fd,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::BASIC_STATS | StatxFlags::BTIME,
        )
        .ok()?;
        if FileType::from_raw_mode(stat.stx_mode.into()) != FileType::Symlink {
            return Some(metadata(&stat));
        }
        let member = dir.join(name);
        self.confine(&member).ok()?;
        fs::metadata(member).ok().map(|meta| metadata(&meta))
    }

    fn open_write(self: &Arc<Self>, path: &str, options: WriteOptions) -> Result<Writer> {
        if path == "/" {
            return Err(Error::IsACollection);
        }
        let target = self.resolve(path)?;
        match fs::metadata(&target) {
            Ok(_) if options.create_only => return Err(Error::AlreadyExists),
            Ok(meta) if meta.is_dir() => return Err(Error::IsACollection),
            Ok(meta) if options.offset.is_some_and(|offset| offset > meta.len()) => {
                return Err(Error::Conflict("offset beyond the end of the file".into()));
            }
            Err(e) if e.kind() == ErrorKind::NotFound && options.offset.is_some() => {
                return Err(Error::NotFound);
            }
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        let parent = target.parent().expect("a non-root path has a parent");
        check_parent(parent)?;
        if options
            .expected_size
            .is_some_and(|size| size > self.available().unwrap_or(u64::MAX))
        {
            return Err(Error::NoSpace);
        }
        self.sweep_now_and_then();
        let Staged { file, path: temp } = staging::stage(&self.uploads, parent)?;
        Ok(Box::new(LocalWriter {
            store: self.clone(),
            file,
            written: 0,
            flushing: 0,
            temp,
            target,
            offset: options.offset,
            create_only: options.create_only,
            committed: false,
        }))
    }

    /// Sweeps the staging directory when [`staging::SWEEP_INTERVAL`] has
    /// passed since the last sweep.
    fn sweep_now_and_then(&self) {
        let mut last = lock(&self.last_sweep);
        if last.elapsed() >= staging::SWEEP_INTERVAL {
            *last = Instant::now();
            drop(last);
            staging::sweep(&self.uploads, None);
        }
    }

    /// Bytes available to unprivileged users on the store's filesystem.
    fn available(&self) -> io::Result<u64> {
        let stats = rustix::fs::statvfs(&self.root)?;
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
}

/// The parent of a new resource must be an existing collection.
fn check_parent(parent: &Path) -> Result<()> {
    match fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::NotACollection),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::ParentNotFound),
        Err(e) => Err(e.into()),
    }
}

fn is_reserved(name: &str) -> bool {
    name == INTERNAL_DIR || name.starts_with(UPLOAD_PREFIX)
}

fn forbidden(reason: &str) -> Error {
    Error::Forbidden(reason.to_owned())
}

/// Locks a mutex, ignoring poisoning (the data it guards stays valid).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The error of looking a path up: a name too long to exist is not found.
fn lookup(e: io::Error) -> Error {
    match rustix::io::Errno::from_io_error(&e) {
        Some(rustix::io::Errno::NAMETOOLONG) => Error::NotFound,
        _ => e.into(),
    }
}

impl From<io::Error> for Error {
    /// The contract error of an I/O failure (see the module docs).
    fn from(e: io::Error) -> Self {
        use rustix::io::Errno;
        match Errno::from_io_error(&e) {
            Some(Errno::MFILE | Errno::NFILE) => {
                return Error::Unavailable(format!("out of file descriptors: {e}"));
            }
            Some(Errno::ROFS) => {
                return Error::Unavailable(format!("the store is read-only: {e}"));
            }
            Some(Errno::NAMETOOLONG) => return name_too_long(),
            _ => {}
        }
        match e.kind() {
            ErrorKind::NotFound => Error::NotFound,
            ErrorKind::AlreadyExists => Error::AlreadyExists,
            ErrorKind::NotADirectory => Error::NotACollection,
            ErrorKind::IsADirectory => Error::IsACollection,
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Error::NoSpace,
            ErrorKind::FileTooLarge => Error::TooLarge,
            ErrorKind::PermissionDenied => Error::Forbidden(e.to_string()),
            _ => Error::Io(e.to_string()),
        }
    }
}
