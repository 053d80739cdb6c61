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
//! * **Blocking I/O** runs on tokio's blocking pool; reads and writes of file
//!   content use `tokio::fs`.

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

    fn delete(&self, path: &str) -> Result<Vec<MemberError>> {
        if path == "/" {
            return Err(forbidden("the root collection cannot be deleted"));
        }
        let full = self.resolve(path)?;
        let mut errors = Vec::new();
        if fs::symlink_metadata(&full)?.is_dir() {
            if self.remove_tree(&full, path, &mut errors)? {
                self.props.remove(path)?;
            }
        } else {
            fs::remove_file(&full)?;
            self.props.remove(path)?;
        }
        Ok(errors)
    }

    /// Removes `dir` and everything below it with their properties. A member
    /// that cannot be removed is recorded and keeps its ancestors. Fails only
    /// when `dir` itself cannot be listed; returns whether `dir` is gone.
    fn remove_tree(
        &self,
        dir: &Path,
        path: &str,
        errors: &mut Vec<MemberError>,
    ) -> io::Result<bool> {
        let mut complete = true;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let member = child_path(path, &name);
            let removed = if entry.file_type()?.is_dir() {
                self.remove_tree(&entry.path(), &member, errors)
            } else {
                fs::remove_file(entry.path()).map(|()| true)
            }
            .and_then(|removed| {
                if removed && !is_reserved(&name) {
                    self.props.remove(&member)?;
                }
                Ok(removed)
            });
            match removed {
                Ok(removed) => complete &= removed,
                Err(e) => {
                    errors.push(MemberError {
                        path: member,
                        error: e.into(),
                    });
                    complete = false;
                }
            }
        }
        if !complete {
            return Ok(false);
        }
        match fs::remove_dir(dir) {
            Ok(()) => Ok(true),
            Err(e) => {
                errors.push(MemberError {
                    path: path.to_owned(),
                    error: e.into(),
                });
                Ok(false)
            }
        }
    }

    /// Checks a copy or move; returns the source and destination locations
    /// with the destination's parent checked and an existing destination
    /// cleared (unless a file replaces a file). Member errors left by clearing
    /// are returned instead.
    fn prepare_transfer(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<std::result::Result<(PathBuf, PathBuf), Vec<MemberError>>> {
        check_transfer(source, destination)?;
        let (from, to) = (self.resolve(source)?, self.resolve(destination)?);
        let source_is_dir = fs::metadata(&from)?.is_dir();
        match fs::symlink_metadata(&to) {
            Ok(_) if !overwrite => return Err(Error::AlreadyExists),
            // A file replaces a file atomically by rename; its properties
            // are then replaced along with the content.
            Ok(meta) if !meta.is_dir() && !source_is_dir => {}
            Ok(_) => {
                let errors = self.delete(destination)?;
                if !errors.is_empty() {
                    return Ok(Err(errors));
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                check_parent(to.parent().expect("a non-root path has a parent"))?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Ok((from, to)))
    }

    fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> Result<Vec<MemberError>> {
        let (from, to) = match self.prepare_transfer(source, destination, overwrite)? {
            Ok(locations) => locations,
            Err(errors) => return Ok(errors),
        };
        let mut errors = Vec::new();
        self.copy_node(&from, &to, source, destination, recursive, &mut errors)?;
        Ok(errors)
    }

    /// Copies one resource with its properties and, if `recursive`, its
    /// members. Member errors name the destination member (as RFC 4918's
    /// multistatus examples do).
    fn copy_node(
        &self,
        from: &Path,
        to: &Path,
        source: &str,
        destination: &str,
        recursive: bool,
        errors: &mut Vec<MemberError>,
    ) -> Result<()> {
        if !fs::metadata(from)?.is_dir() {
            self.copy_file(from, to)?;
            return Ok(self.props.copy(source, destination)?);
        }
        fs::create_dir(to)?;
        self.props.copy(source, destination)?;
        if !recursive {
            return Ok(());
        }
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if is_reserved(&name) {
                continue;
            }
            let target = child_path(destination, &name);
            let copied = self.check_followable(&entry).and_then(|()| {
                self.copy_node(
                    &entry.path(),
                    &to.join(&name),
                    &child_path(source, &name),
                    &target,
                    true,
                    errors,
                )
            });
            if let Err(error) = copied {
                errors.push(MemberError {
                    path: target,
                    error,
                });
            }
        }
        Ok(())
    }

    /// Walks may follow a symlink only to a file inside the store; symlinked
    /// collections could loop.
    fn check_followable(&self, entry: &fs::DirEntry) -> Result<()> {
        if !entry.file_type()?.is_symlink() {
            return Ok(());
        }
        self.confine(&entry.path())?;
        if fs::metadata(entry.path())?.is_dir() {
            return Err(forbidden("symbolic links to collections are not followed"));
        }
        Ok(())
    }

    fn rename(&self, source: &str, destination: &str, overwrite: bool) -> Result<Vec<MemberError>> {
        if source == "/" {
            return Err(forbidden("the root collection cannot be moved"));
        }
        let (from, to) = match self.prepare_transfer(source, destination, overwrite)? {
            Ok(locations) => locations,
            Err(errors) => return Ok(errors),
        };
        fs::rename(&from, &to)?;
        // The content has moved; now its properties follow, member by member.
        let mut errors = Vec::new();
        let mut moved = vec![(source.to_owned(), destination.to_owned())];
        if fs::symlink_metadata(&to)?.is_dir() {
            walk(&to, destination, &mut |member| {
                let suffix = &member[destination.len()..];
                moved.push((format!("{source}{suffix}"), member.to_owned()));
            })?;
        }
        for (old, new) in moved {
            if let Err(e) = self.props.rename(&old, &new) {
                errors.push(MemberError {
                    path: new,
                    error: e.into(),
                });
            }
        }
        Ok(errors)
    }

    /// Copies a file's content through a staged file, so a failed copy
    /// leaves nothing at the destination.
    fn copy_file(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut staged = staging::stage(&self.uploads, to.parent().expect("a file has a parent"))?;
        let copied = File::open(from)
            .and_then(|mut source| io::copy(&mut source, &mut staged.file))
            .and_then(|_| fs::rename(&staged.path, to));
        if copied.is_err() {
            let _ = fs::remove_file(&staged.path);
        }
        copied
    }

    /// Bytes available to unprivileged users on the store's filesystem.
    fn available(&self) -> io::Result<u64> {
        let stats = rustix::fs::statvfs(&self.root)?;
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
}

/// Visits the contract path of every member below `dir` (not following
/// symlinks, skipping reserved and non-UTF-8 names).
fn walk(dir: &Path, path: &str, visit: &mut impl FnMut(&str)) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if is_reserved(&name) {
            continue;
        }
        let member = child_path(path, &name);
        visit(&member);
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &member, visit)?;
        }
    }
    Ok(())
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

/// The contract's metadata (and so the ETag rule) of a file, from whichever
/// stat call looked at it.
fn metadata(stat: impl Into<Stat>) -> Metadata {
    let stat = stat.into();
    let (kind, size) = if stat.dir {
        (NodeKind::Collection, 0)
    } else {
        (NodeKind::File, stat.size)
    };
    let mtime_nanos =
        i128::from(stat.modified.seconds) * 1_000_000_000 + i128::from(stat.modified.nanoseconds);
    Metadata {
        kind,
        size,
        modified: stat.modified,
        created: stat.created,
        etag: etag(stat.ino, size, mtime_nanos),
        content_type: None,
    }
}

/// `INODE-SIZE-MTIME` in hex (a negative mtime as its two's complement,
/// as `{:x}` writes it): written without the fmt machinery, since a
/// listing makes one per member.
fn etag(ino: u64, size: u64, mtime_nanos: i128) -> String {
    fn hex(out: &mut String, n: u128) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 32];
        let mut start = buf.len();
        let mut n = n;
        loop {
            start -= 1;
            buf[start] = DIGITS[(n & 15) as usize];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        buf[start..].iter().for_each(|&b| out.push(char::from(b)));
    }
    let mut out = String::with_capacity(48);
    hex(&mut out, u128::from(ino));
    out.push('-');
    hex(&mut out, u128::from(size));
    out.push('-');
    hex(&mut out, mtime_nanos as u128);
    out
}

/// What [`metadata`] is made of.
struct Stat {
    dir: bool,
    size: u64,
    ino: u64,
    modified: Timestamp,
    created: Option<Timestamp>,
}

impl From<&fs::Metadata> for Stat {
    fn from(meta: &fs::Metadata) -> Self {
        Self {
            dir: meta.is_dir(),
            size: meta.len(),
            ino: meta.ino(),
            modified: Timestamp {
                seconds: meta.mtime(),
                nanoseconds: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
            },
            created: meta.created().ok().and_then(timestamp),
        }
    }
}

impl From<&Statx> for Stat {
    fn from(stat: &Statx) -> Self {
        let time = |t: &rustix::fs::StatxTimestamp| Timestamp {
            seconds: t.tv_sec,
            nanoseconds: t.tv_nsec,
        };
        Self {
            dir: FileType::from_raw_mode(stat.stx_mode.into()) == FileType::Directory,
            size: stat.stx_size,
            ino: stat.stx_ino,
            modified: time(&stat.stx_mtime),
            created: StatxFlags::from_bits_retain(stat.stx_mask)
                .contains(StatxFlags::BTIME)
                .then(|| time(&stat.stx_btime)),
        }
    }
}

fn timestamp(time: SystemTime) -> Option<Timestamp> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    Some(Timestamp {
        seconds: since.as_secs().try_into().ok()?,
        nanoseconds: since.subsec_nanos(),
    })
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

/// Reads a chunk at a time on the calling thread (see [`LocalBackend::inline`]).
struct LocalReader {
    file: File,
    remaining: u64,
}

#[async_trait]
impl FileReader for LocalReader {
    async fn read(&mut self, max: u32) -> Result<Vec<u8>> {
        let want = self.remaining.min(max.into());
        // Into spare capacity: no zeroing of a buffer about to be filled.
        let mut buf = Vec::with_capacity(want as usize);
        let read = io::Read::read_to_end(&mut io::Read::take(&mut self.file, want), &mut buf)?;
        self.remaining = if read == 0 {
            0
        } else {
            self.remaining - read as u64
        };
        Ok(buf)
    }
}

/// How much of an upload is written before its writeback is started.
const WRITEBACK_STEP: u64 = 8 << 20;

/// An upload staged in a locked file (see [`staging`]), published at commit
/// by a rename: over the target for a whole write; for a partial update,
/// after the piece was applied on a staged copy of the current file.
///
/// Chunks are written on the calling thread (into the page cache, like the
/// reads of [`LocalReader`]); the commit, which waits for the disk, runs on
/// the blocking pool in one hand-off.
struct LocalWriter {
    store: Arc<Store>,
    file: File,
    /// Bytes written, and how many of them writeback was started for.
    written: u64,
    flushing: u64,
    temp: PathBuf,
    target: PathBuf,
    offset: Option<u64>,
    create_only: bool,
    committed: bool,
}

#[async_trait]
impl FileWriter for LocalWriter {
    async fn write(&mut self, data: Vec<u8>) -> Result<()> {
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
                    store.apply_piece(&temp, &target, offset)?;
                    false
                }
                None => publish(&temp, &target, create_only)?,
            };
            // Make the rename itself durable.
            File::open(target.parent().expect("a file has a parent"))?.sync_all()?;
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

impl Store {
    /// Applies the piece staged in `piece` at `offset` of `target` on a staged
    /// copy of it, then renames the copy over it (see the module docs).
    fn apply_piece(&self, piece: &Path, target: &Path, offset: u64) -> Result<()> {
        let _serial = lock(&self.updating);
        let mut current = File::open(target)?;
        let meta = current.metadata()?;
        if meta.is_dir() {
            return Err(Error::IsACollection);
        }
        if offset > meta.len() {
            return Err(Error::Conflict("offset beyond the end of the file".into()));
        }
        let parent = target.parent().expect("a file has a parent");
        let mut copy = staging::stage(&self.uploads, parent)?;
        let applied = (|| {
            io::copy(&mut current, &mut copy.file)?;
            copy.file.seek(SeekFrom::Start(offset))?;
            io::copy(&mut File::open(piece)?, &mut copy.file)?;
            copy.file.sync_all()?;
            fs::rename(&copy.path, target)
        })();
        if applied.is_err() {
            let _ = fs::remove_file(&copy.path);
        }
        Ok(applied?)
    }
}

/// Moves a staged file to `target`; returns whether that created the file
/// (see the module docs). With `create_only`, an existing target is
/// `already-exists` and nothing changes.
fn publish(staged: &Path, target: &Path, create_only: bool) -> Result<bool> {
    let gone = |e: io::Error| match e.kind() {
        // The collection went away meanwhile.
        ErrorKind::NotFound => Error::ParentNotFound,
        _ => e.into(),
    };
    match rename_noreplace(staged, target) {
        Ok(()) => return Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && create_only => {
            return Err(Error::AlreadyExists);
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(gone(e)),
    }
    fs::rename(staged, target).map_err(gone)?;
    Ok(false)
}

/// `rename` that fails with `EEXIST` instead of replacing: `renameat2` with
/// `RENAME_NOREPLACE`, or a hard link then an unlink where the filesystem
/// does not support that flag.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        other => Ok(other?),
    }
}

/// The dead-property sidecar store (see the module docs).
struct PropStore {
    dir: PathBuf,
    /// `dir`, open: existence checks look up one name in it.
    dir_fd: OwnedFd,
    /// Where property documents are staged (the store's staging directory).
    staging: PathBuf,
    /// Serialises read-modify-write patches.
    patching: Mutex<()>,
}

impl PropStore {
    fn open(dir: PathBuf, staging: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        let dir_fd = rustix::fs::open(
            &dir,
            // Readable, not O_PATH: `any` lists it.
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            dir,
            dir_fd,
            staging,
            patching: Mutex::new(()),
        })
    }

    fn file(&self, path: &str) -> PathBuf {
        self.dir.join(props::file_name(path))
    }

    /// Whether any resource has dead properties (any sidecar exists): one
    /// read of the sidecar directory's first entries.
    fn any(&self) -> io::Result<bool> {
        for entry in rustix::fs::Dir::read_from(&self.dir_fd)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `path` has dead properties (its sidecar exists).
    fn has(&self, path: &str) -> io::Result<bool> {
        match rustix::fs::accessat(
            &self.dir_fd,
            props::file_name(path),
            Access::EXISTS,
            AtFlags::empty(),
        ) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn load(&self, path: &str) -> io::Result<Vec<Property>> {
        let bytes = match fs::read(self.file(path)) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            read => read?,
        };
        Ok(props::decode(&bytes)?)
    }

    /// Replaces a resource's properties atomically (temp file + rename).
    fn store(&self, path: &str, properties: Vec<Property>) -> io::Result<()> {
        if properties.is_empty() {
            return self.remove(path);
        }
        let bytes = props::encode(path, properties);
        // The directory is made again if it was removed (with the root, say)
        // while the server ran.
        fs::create_dir_all(&self.dir)?;
        let mut staged = staging::stage(&self.staging, &self.dir)?;
        let written = staged
            .file
            .write_all(&bytes)
            .and_then(|()| fs::rename(&staged.path, self.file(path)));
        if written.is_err() {
            let _ = fs::remove_file(&staged.path);
        }
        written
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        match fs::remove_file(self.file(path)) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn copy(&self, from: &str, to: &str) -> io::Result<()> {
        self.store(to, self.load(from)?)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.copy(from, to)?;
        self.remove(from)
    }

    /// Applies all changes in order, then publishes them at once.
    fn patch(&self, path: &str, changes: Vec<PropertyChange>) -> io::Result<()> {
        let _guard = self
            .patching
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut properties = self.load(path)?;
        props::apply(&mut properties, changes);
        self.store(path, properties)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::edgedav::dav::storage::PropertyName;

    /// ETags are what clients cache: the hand-written hex must match the
    /// `{:x}` form earlier versions answered.
    #[test]
    fn etags_keep_their_form() {
        for (ino, size, mtime) in [
            (0, 0, 0),
            (0x9ee0b2, 4096, 1_796_000_000_123_456_789),
            (u64::MAX, u64::MAX, i128::from(i64::MAX) * 1_000_000_000),
            (1, 2, -1_500_000_000),
        ] {
            assert_eq!(
                etag(ino, size, mtime),
                format!("{ino:x}-{size:x}-{mtime:x}")
            );
        }
    }

    /// A scratch store under the system temp directory, removed on drop.
    struct Scratch {
        dir: PathBuf,
        backend: LocalBackend,
    }

    impl Scratch {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("edgedav-test-{}", uuid::Uuid::new_v4()));
            let backend = LocalBackend::open(&dir.join("root")).unwrap();
            Self { dir, backend }
        }

        fn root(&self) -> PathBuf {
            self.dir.join("root")
        }

        async fn put(&self, path: &str, content: &[u8]) -> Metadata {
            let mut writer = self.backend.open_write(path, no_options()).await.unwrap();
            writer.write(content.to_vec()).await.unwrap();
            writer.commit().await.unwrap().metadata
        }

        async fn get(&self, path: &str) -> Vec<u8> {
            let mut reader = self.backend.open_read(path, 0, None).await.unwrap();
            let mut content = Vec::new();
            loop {
                let chunk = reader.read(3).await.unwrap();
                if chunk.is_empty() {
                    return content;
                }
                content.extend(chunk);
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn no_options() -> WriteOptions {
        WriteOptions {
            expected_size: None,
            content_type: None,
            offset: None,
            create_only: false,
        }
    }

    fn prop(name: &str, value: &str) -> Property {
        Property {
            namespace: "urn:test".into(),
            name: name.into(),
            value: value.into(),
        }
    }

    fn names(page: &Page) -> Vec<&str> {
        page.entries.iter().map(|e| e.name.as_str()).collect()
    }

    #[tokio::test]
    async fn dot_dot_and_reserved_names_are_refused() {
        let s = Scratch::new();
        for path in [
            "/../etc/passwd",
            "/a/../../x",
            "/.edgedav/props",
            "/.edgedav-upload-x",
            "relative",
            "/a\0b",
        ] {
            assert!(
                matches!(s.backend.stat(path).await, Err(Error::Forbidden(_))),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn symlinks_out_of_the_root_are_refused() {
        let s = Scratch::new();
        let outside = s.dir.join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(&outside, s.root().join("escape")).unwrap();
        std::os::unix::fs::symlink(s.root().join(".edgedav"), s.root().join("internal")).unwrap();
        for path in [
            "/escape",
            "/escape/secret",
            "/escape/new",
            "/internal/props",
        ] {
            assert!(
                matches!(s.backend.stat(path).await, Err(Error::Forbidden(_))),
                "{path}"
            );
        }
        assert!(matches!(
            s.backend.open_write("/escape/new", no_options()).await,
            Err(Error::Forbidden(_))
        ));
        // Neither link is listed.
        let page = s.backend.list_members("/", None, 10).await.unwrap();
        assert!(page.entries.is_empty());
    }

    #[tokio::test]
    async fn writes_publish_only_on_commit() {
        let s = Scratch::new();
        let first = s.put("/f.txt", b"old content").await;
        assert_eq!(first.size, 11);

        let mut writer = s.backend.open_write("/f.txt", no_options()).await.unwrap();
        writer.write(b"new".to_vec()).await.unwrap();
        drop(writer);
        assert_eq!(s.get("/f.txt").await, b"old content");
        let leftovers: Vec<_> = fs::read_dir(s.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            2,
            "only f.txt and .edgedav remain: {leftovers:?}"
        );

        let second = s.put("/f.txt", b"new").await;
        assert_eq!(s.get("/f.txt").await, b"new");
        assert_ne!(first.etag, second.etag);
    }

    #[tokio::test]
    async fn partial_updates_apply_in_place_on_commit() {
        let s = Scratch::new();
        s.put("/f", b"hello world").await;
        let at = |offset| WriteOptions {
            offset: Some(offset),
            ..no_options()
        };
        let mut writer = s.backend.open_write("/f", at(6)).await.unwrap();
        writer.write(b"there!".to_vec()).await.unwrap();
        drop(writer);
        assert_eq!(
            s.get("/f").await,
            b"hello world",
            "an aborted piece changes nothing"
        );
        let mut writer = s.backend.open_write("/f", at(6)).await.unwrap();
        writer.write(b"there!".to_vec()).await.unwrap();
        assert_eq!(writer.commit().await.unwrap().metadata.size, 12);
        assert_eq!(s.get("/f").await, b"hello there!");
        assert!(matches!(
            s.backend.open_write("/f", at(13)).await,
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            s.backend.open_write("/nope", at(0)).await,
            Err(Error::NotFound)
        ));
    }

    #[tokio::test]
    async fn write_errors() {
        let s = Scratch::new();
        s.put("/file", b"x").await;
        s.backend.create_collection("/dir").await.unwrap();
        let open = |path: &'static str| s.backend.open_write(path, no_options());
        assert!(matches!(
            open("/missing/f").await,
            Err(Error::ParentNotFound)
        ));
        assert!(matches!(open("/file/f").await, Err(Error::NotACollection)));
        assert!(matches!(open("/dir").await, Err(Error::IsACollection)));
        assert!(matches!(
            s.backend.create_collection("/dir").await,
            Err(Error::AlreadyExists)
        ));
        assert!(matches!(
            s.backend.create_collection("/a/b").await,
            Err(Error::ParentNotFound)
        ));
    }

    #[tokio::test]
    async fn ranges_and_listing_pages() {
        let s = Scratch::new();
        s.put("/b", b"0123456789").await;
        let mut reader = s.backend.open_read("/b", 2, Some(5)).await.unwrap();
        assert_eq!(reader.read(100).await.unwrap(), b"23456");
        assert!(reader.read(100).await.unwrap().is_empty());

        s.put("/a", b"").await;
        s.backend.create_collection("/c").await.unwrap();
        let first = s.backend.list_members("/", None, 2).await.unwrap();
        assert_eq!(names(&first), ["a", "b"]);
        let second = s.backend.list_members("/", first.next, 2).await.unwrap();
        assert_eq!(names(&second), ["c"]);
        assert_eq!(second.next, None);
        assert!(matches!(
            second.entries[0].metadata.kind,
            NodeKind::Collection
        ));
        assert!(matches!(
            s.backend.list_members("/a", None, 2).await,
            Err(Error::NotACollection)
        ));
    }

    #[tokio::test]
    async fn listing_says_which_members_have_dead_properties() {
        let s = Scratch::new();
        s.backend.create_collection("/d").await.unwrap();
        s.backend.create_collection("/d/c").await.unwrap();
        s.put("/d/a", b"").await;
        s.put("/d/b", b"").await;
        for path in ["/d/b", "/d/c"] {
            s.backend
                .patch_properties(path, vec![PropertyChange::Set(prop("p", "v"))])
                .await
                .unwrap();
        }
        let flags = |page: Page| -> Vec<(String, bool)> {
            page.entries
                .into_iter()
                .map(|e| (e.name, e.has_properties))
                .collect()
        };
        let page = s.backend.list_members("/d", None, 10).await.unwrap();
        assert_eq!(
            flags(page),
            [("a".into(), false), ("b".into(), true), ("c".into(), true)]
        );
        let page = s.backend.list_members("/", None, 10).await.unwrap();
        assert_eq!(flags(page), [("d".into(), false)]);

        // Removing the last property removes the sidecar, and the promise.
        let name = PropertyName {
            namespace: "urn:test".into(),
            name: "p".into(),
        };
        s.backend
            .patch_properties("/d/b", vec![PropertyChange::Remove(name)])
            .await
            .unwrap();
        let page = s.backend.list_members("/d", None, 10).await.unwrap();
        assert!(!page.entries[1].has_properties);
    }

    #[tokio::test]
    async fn copy_and_rename_carry_dead_properties() {
        let s = Scratch::new();
        s.backend.create_collection("/src").await.unwrap();
        s.put("/src/f", b"data").await;
        s.backend
            .patch_properties("/src", vec![PropertyChange::Set(prop("dir", "d"))])
            .await
            .unwrap();
        s.backend
            .patch_properties("/src/f", vec![PropertyChange::Set(prop("file", "f"))])
            .await
            .unwrap();

        assert!(
            s.backend
                .copy("/src", "/copy", true, false)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.get("/copy/f").await, b"data");
        assert_eq!(
            s.backend.get_properties("/copy").await.unwrap(),
            [prop("dir", "d")]
        );
        assert_eq!(
            s.backend.get_properties("/copy/f").await.unwrap(),
            [prop("file", "f")]
        );
        assert!(matches!(
            s.backend.copy("/src", "/copy", true, false).await,
            Err(Error::AlreadyExists)
        ));

        assert!(
            s.backend
                .rename("/src", "/moved", false)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(s.backend.stat("/src").await, Err(Error::NotFound)));
        assert_eq!(
            s.backend.get_properties("/moved/f").await.unwrap(),
            [prop("file", "f")]
        );

        // A new resource at the old path does not inherit anything.
        s.backend.create_collection("/src").await.unwrap();
        assert!(s.backend.get_properties("/src").await.unwrap().is_empty());

        // Overwriting replaces the destination, properties included.
        s.put("/other", b"other").await;
        s.backend
            .patch_properties("/other", vec![PropertyChange::Set(prop("x", "y"))])
            .await
            .unwrap();
        assert!(
            s.backend
                .rename("/moved/f", "/other", true)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.get("/other").await, b"data");
        assert_eq!(
            s.backend.get_properties("/other").await.unwrap(),
            [prop("file", "f")]
        );
    }

    #[tokio::test]
    async fn shallow_copy_and_recursive_delete() {
        let s = Scratch::new();
        s.backend.create_collection("/d").await.unwrap();
        s.backend.create_collection("/d/e").await.unwrap();
        s.put("/d/e/f", b"f").await;
        s.backend
            .patch_properties("/d/e/f", vec![PropertyChange::Set(prop("p", "v"))])
            .await
            .unwrap();

        s.backend
            .copy("/d", "/shallow", false, false)
            .await
            .unwrap();
        assert!(
            s.backend
                .list_members("/shallow", None, 10)
                .await
                .unwrap()
                .entries
                .is_empty()
        );

        assert!(s.backend.delete("/d").await.unwrap().is_empty());
        assert!(matches!(s.backend.stat("/d").await, Err(Error::NotFound)));
        assert!(matches!(s.backend.delete("/d").await, Err(Error::NotFound)));
        assert!(matches!(
            s.backend.delete("/").await,
            Err(Error::Forbidden(_))
        ));
        // The member's properties went with it.
        assert_eq!(
            fs::read_dir(s.root().join(".edgedav/props"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn patches_apply_in_order() {
        let s = Scratch::new();
        s.put("/f", b"").await;
        let remove = |name: &str| {
            PropertyChange::Remove(PropertyName {
                namespace: "urn:test".into(),
                name: name.into(),
            })
        };
        let changes = vec![
            PropertyChange::Set(prop("a", "1")),
            PropertyChange::Set(prop("b", "2")),
            PropertyChange::Set(prop("a", "3")),
            remove("b"),
        ];
        s.backend.patch_properties("/f", changes).await.unwrap();
        assert_eq!(
            s.backend.get_properties("/f").await.unwrap(),
            [prop("a", "3")]
        );
        assert!(matches!(
            s.backend.get_properties("/nope").await,
            Err(Error::NotFound)
        ));
        let space = s.backend.space_usage("/").await.unwrap();
        assert!(space.available.is_some());
    }

    fn create_only() -> WriteOptions {
        WriteOptions {
            create_only: true,
            ..no_options()
        }
    }

    #[tokio::test]
    async fn commits_report_created_or_replaced() {
        let s = Scratch::new();
        let mut w = s.backend.open_write("/f", no_options()).await.unwrap();
        w.write(b"one".to_vec()).await.unwrap();
        assert!(w.commit().await.unwrap().created);
        let mut w = s.backend.open_write("/f", no_options()).await.unwrap();
        w.write(b"two".to_vec()).await.unwrap();
        assert!(!w.commit().await.unwrap().created);
        assert_eq!(s.get("/f").await, b"two");
    }

    #[tokio::test]
    async fn create_only_never_replaces() {
        let s = Scratch::new();
        s.put("/f", b"kept").await;
        s.backend.create_collection("/d").await.unwrap();
        for path in ["/f", "/d"] {
            assert!(matches!(
                s.backend.open_write(path, create_only()).await,
                Err(Error::AlreadyExists)
            ));
        }
        // The path was free when the writer opened, taken when it commits.
        let mut w = s.backend.open_write("/new", create_only()).await.unwrap();
        w.write(b"late".to_vec()).await.unwrap();
        s.put("/new", b"first").await;
        assert!(matches!(w.commit().await, Err(Error::AlreadyExists)));
        assert_eq!(s.get("/new").await, b"first");
        assert_eq!(
            fs::read_dir(s.root().join(".edgedav/uploads"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creations_have_exactly_one_winner() {
        let s = Scratch::new();
        for (path, options) in [("/only", create_only()), ("/any", no_options())] {
            let mut writers = Vec::new();
            for i in 0..16u8 {
                let mut w = s.backend.open_write(path, options.clone()).await.unwrap();
                w.write(vec![i; 1000]).await.unwrap();
                writers.push(w);
            }
            let commits = writers.into_iter().map(|w| tokio::spawn(w.commit()));
            let mut created = 0;
            for commit in commits {
                match commit.await.unwrap() {
                    Ok(c) => created += usize::from(c.created),
                    Err(Error::AlreadyExists) if options.create_only => {}
                    Err(e) => panic!("{path}: {e:?}"),
                }
            }
            assert_eq!(created, 1, "{path}");
            assert_eq!(s.get(path).await.len(), 1000);
        }
    }

    #[tokio::test]
    async fn overlapping_copies_and_moves_change_nothing() {
        let s = Scratch::new();
        s.backend.create_collection("/a").await.unwrap();
        s.backend.create_collection("/a/b").await.unwrap();
        s.put("/a/b/f", b"data").await;
        for (from, to) in [("/a", "/a/b"), ("/a/b", "/a"), ("/a", "/a"), ("/a/b", "/")] {
            for overwrite in [true, false] {
                assert!(
                    matches!(
                        s.backend.copy(from, to, true, overwrite).await,
                        Err(Error::Forbidden(_))
                    ),
                    "copy {from} {to}"
                );
                assert!(
                    matches!(
                        s.backend.rename(from, to, overwrite).await,
                        Err(Error::Forbidden(_))
                    ),
                    "rename {from} {to}"
                );
            }
        }
        assert_eq!(s.get("/a/b/f").await, b"data");
    }

    #[tokio::test]
    async fn start_up_sweeps_only_abandoned_uploads() {
        let s = Scratch::new();
        let uploads = s.root().join(".edgedav/uploads");
        let stale = uploads.join("crashed");
        fs::write(&stale, b"left by kill -9").unwrap();
        let old = SystemTime::now() - staging::MIN_AGE * 2;
        File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        // A live writer, its file just as old.
        let mut live = s.backend.open_write("/f", no_options()).await.unwrap();
        live.write(b"live".to_vec()).await.unwrap();
        let live_file = fs::read_dir(&uploads)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| *p != stale)
            .unwrap();
        File::options()
            .write(true)
            .open(&live_file)
            .unwrap()
            .set_modified(old)
            .unwrap();

        let _reopened = LocalBackend::open(&s.root()).unwrap();
        assert!(!stale.exists(), "an abandoned upload is swept");
        assert!(live_file.exists(), "a live writer's upload is kept");
        assert!(live.commit().await.unwrap().created);
        assert_eq!(s.get("/f").await, b"live");
    }

    #[tokio::test]
    async fn partial_updates_replace_the_file_whole() {
        let s = Scratch::new();
        s.put("/f", b"hello world").await;
        let mut before = File::open(s.root().join("f")).unwrap();
        let mut writer = s
            .backend
            .open_write(
                "/f",
                WriteOptions {
                    offset: Some(6),
                    ..no_options()
                },
            )
            .await
            .unwrap();
        writer.write(b"there".to_vec()).await.unwrap();
        let committed = writer.commit().await.unwrap();
        assert!(!committed.created);
        assert_eq!(s.get("/f").await, b"hello there");
        // The old file was never written to: the piece went to a copy that
        // replaced it, so a crash could not have left a mix.
        let mut old = String::new();
        io::Read::read_to_string(&mut before, &mut old).unwrap();
        assert_eq!(old, "hello world");
        assert_eq!(
            fs::read_dir(s.root().join(".edgedav/uploads"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn names_too_long_are_not_found_or_conflicts() {
        let s = Scratch::new();
        let long = format!("/{}", "n".repeat(300));
        assert!(matches!(s.backend.stat(&long).await, Err(Error::NotFound)));
        assert!(matches!(
            s.backend.open_read(&long, 0, None).await,
            Err(Error::NotFound)
        ));
        assert!(matches!(
            s.backend.get_properties(&long).await,
            Err(Error::NotFound)
        ));
        assert_eq!(
            s.backend.open_write(&long, no_options()).await.err(),
            Some(name_too_long())
        );
        assert_eq!(
            s.backend.create_collection(&long).await.err(),
            Some(name_too_long())
        );
    }

    #[test]
    fn server_conditions_are_unavailable() {
        use rustix::io::Errno;
        for errno in [Errno::MFILE, Errno::NFILE, Errno::ROFS] {
            let e = io::Error::from_raw_os_error(errno.raw_os_error());
            assert!(matches!(Error::from(e), Error::Unavailable(_)), "{errno:?}");
        }
        let denied = io::Error::from_raw_os_error(Errno::ACCESS.raw_os_error());
        assert!(matches!(Error::from(denied), Error::Forbidden(_)));
    }

    #[tokio::test]
    async fn properties_survive_the_internal_directory_going_away() {
        let s = Scratch::new();
        s.put("/f", b"").await;
        fs::remove_dir_all(s.root().join(".edgedav")).unwrap();
        s.backend
            .patch_properties("/f", vec![PropertyChange::Set(prop("a", "1"))])
            .await
            .unwrap();
        assert_eq!(
            s.backend.get_properties("/f").await.unwrap(),
            [prop("a", "1")]
        );
        s.put("/g", b"uploads work again too").await;
    }
}
