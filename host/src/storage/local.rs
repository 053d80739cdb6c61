//! A [`Backend`] on a local directory.
//!
//! * **Confinement.** Every contract path is mapped below the root segment by
//!   segment (`..`, `.`, NUL and reserved names are refused), then the longest
//!   existing prefix is canonicalised and must stay inside the root and out of
//!   the internal directory, so a symlink cannot lead out of the store.
//!   Recursive walks (copy, delete) never follow symlinks to collections.
//!   This is defence in depth against a buggy handler, not a sandbox against a
//!   hostile local user racing renames on the same disk.
//! * **Reserved names.** `.edgedav` (the internal directory at the root) and
//!   `.edgedav-upload-*` (uploads in progress) are refused as path segments
//!   and never listed.
//! * **Atomic uploads.** A writer writes into `.edgedav-upload-<uuid>` beside
//!   the target; commit fsyncs it and renames it over the target, so readers
//!   see the old or the new content, never a mix. A writer dropped without a
//!   commit deletes its temporary file. Files left by a crash stay hidden and
//!   go away with their collection.
//! * **Dead properties** live in a sidecar store, `<root>/.edgedav/props/`,
//!   one JSON file per resource named by the hex SHA-256 of its path and
//!   holding the path (for humans and future clean-up) and its properties.
//!   Copy, rename and delete carry or remove the properties of every member of
//!   a subtree; a patch is applied in memory and published with one rename.
//!   Properties of resources deleted behind the server's back are orphaned,
//!   not reused.
//! * **Blocking I/O** runs on tokio's blocking pool; reads and writes of file
//!   content use `tokio::fs`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::props;
use super::{
    Backend, Entry, Error, FileReader, FileWriter, MemberError, Metadata, NodeKind, Page, Property,
    PropertyChange, Reader, Result, Space, Timestamp, WriteOptions, Writer,
};

/// Name of the internal directory at the root.
const INTERNAL_DIR: &str = ".edgedav";
/// Prefix of uploads in progress.
const UPLOAD_PREFIX: &str = ".edgedav-upload-";
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
    props: PropStore,
}

impl LocalBackend {
    /// Opens (creating it if needed) a store at `root`.
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        let internal = root.join(INTERNAL_DIR);
        let props = PropStore::open(internal.join("props"))?;
        Ok(Self(Arc::new(Store {
            root,
            internal,
            props,
        })))
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
        let path = path.to_owned();
        self.blocking(move |s| Ok(metadata(&fs::metadata(s.resolve(&path)?)?)))
            .await
    }

    async fn list_members(&self, path: &str, cursor: Option<String>, limit: u32) -> Result<Page> {
        let path = path.to_owned();
        self.blocking(move |s| s.list_members(&path, cursor, limit))
            .await
    }

    async fn open_read(&self, path: &str, offset: u64, length: Option<u64>) -> Result<Reader> {
        let path = path.to_owned();
        self.blocking(move |s| {
            let mut file = File::open(s.resolve(&path)?)?;
            if file.metadata()?.is_dir() {
                return Err(Error::IsACollection);
            }
            file.seek(SeekFrom::Start(offset))?;
            let remaining = length.unwrap_or(u64::MAX);
            Ok(Box::new(LocalReader {
                file: file.into(),
                remaining,
            }) as Reader)
        })
        .await
    }

    async fn open_write(&self, path: &str, options: WriteOptions) -> Result<Writer> {
        let path = path.to_owned();
        self.blocking(move |s| s.open_write(&path, options)).await
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
        let path = path.to_owned();
        self.blocking(move |s| {
            fs::metadata(s.resolve(&path)?)?;
            Ok(s.props.load(&path)?)
        })
        .await
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
    fn confine(&self, full: &Path) -> Result<()> {
        let mut probe = full;
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
        if !fs::metadata(&dir)?.is_dir() {
            return Err(Error::NotACollection);
        }
        let mut names: Vec<String> = fs::read_dir(&dir)?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| !is_reserved(name))
            .filter(|name| cursor.as_ref().is_none_or(|after| name > after))
            .collect();
        names.sort_unstable();

        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let mut entries = Vec::new();
        let mut names = names.into_iter().peekable();
        while entries.len() < limit {
            let Some(name) = names.next() else { break };
            // Members can vanish meanwhile, and symlinks may lead out of the store.
            if let Some(metadata) = self.member_metadata(&dir.join(&name)) {
                entries.push(Entry { name, metadata });
            }
        }
        let next = match names.peek() {
            Some(_) => entries.last().map(|entry| entry.name.clone()),
            None => None,
        };
        Ok(Page { entries, next })
    }

    fn member_metadata(&self, member: &Path) -> Option<Metadata> {
        let meta = fs::symlink_metadata(member).ok()?;
        if !meta.is_symlink() {
            return Some(metadata(&meta));
        }
        self.confine(member).ok()?;
        fs::metadata(member).ok().map(|meta| metadata(&meta))
    }

    fn open_write(&self, path: &str, options: WriteOptions) -> Result<Writer> {
        if path == "/" {
            return Err(Error::IsACollection);
        }
        let target = self.resolve(path)?;
        match fs::metadata(&target) {
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
        let temp = upload_path(parent);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        Ok(Box::new(LocalWriter {
            file: file.into(),
            temp,
            target,
            offset: options.offset,
            committed: false,
        }))
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
        if destination == "/" {
            return Err(forbidden("the root collection cannot be replaced"));
        }
        if source == destination {
            return Err(forbidden("source and destination are the same"));
        }
        if is_ancestor(source, destination) {
            return Err(forbidden(
                "a collection cannot be copied or moved into itself",
            ));
        }
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
            copy_file(from, to)?;
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

/// Copies a file's content through a temporary file, so a failed copy leaves
/// nothing at the destination.
fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    let temp = upload_path(to.parent().expect("a copied file has a parent"));
    let copied = fs::copy(from, &temp).and_then(|_| fs::rename(&temp, to));
    if copied.is_err() {
        let _ = fs::remove_file(&temp);
    }
    copied
}

fn upload_path(dir: &Path) -> PathBuf {
    dir.join(format!("{UPLOAD_PREFIX}{}", uuid::Uuid::new_v4()))
}

fn is_reserved(name: &str) -> bool {
    name == INTERNAL_DIR || name.starts_with(UPLOAD_PREFIX)
}

/// Whether `ancestor` is a proper ancestor of `path` (both normalised).
fn is_ancestor(ancestor: &str, path: &str) -> bool {
    if ancestor == "/" {
        return path != "/";
    }
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.starts_with('/'))
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

fn forbidden(reason: &str) -> Error {
    Error::Forbidden(reason.to_owned())
}

fn metadata(meta: &fs::Metadata) -> Metadata {
    let (kind, size) = if meta.is_dir() {
        (NodeKind::Collection, 0)
    } else {
        (NodeKind::File, meta.len())
    };
    let mtime_nanos = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    Metadata {
        kind,
        size,
        modified: Timestamp {
            seconds: meta.mtime(),
            nanoseconds: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        },
        created: meta.created().ok().and_then(timestamp),
        etag: format!("{:x}-{:x}-{:x}", meta.ino(), size, mtime_nanos),
        content_type: None,
    }
}

fn timestamp(time: SystemTime) -> Option<Timestamp> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    Some(Timestamp {
        seconds: since.as_secs().try_into().ok()?,
        nanoseconds: since.subsec_nanos(),
    })
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            ErrorKind::NotFound => Error::NotFound,
            ErrorKind::AlreadyExists => Error::AlreadyExists,
            ErrorKind::NotADirectory => Error::NotACollection,
            ErrorKind::IsADirectory => Error::IsACollection,
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Error::NoSpace,
            ErrorKind::FileTooLarge => Error::TooLarge,
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
                Error::Forbidden(e.to_string())
            }
            _ => Error::Io(e.to_string()),
        }
    }
}

struct LocalReader {
    file: tokio::fs::File,
    remaining: u64,
}

#[async_trait]
impl FileReader for LocalReader {
    async fn read(&mut self, max: u32) -> Result<Vec<u8>> {
        let want = self.remaining.min(max.into());
        let mut buf = vec![0; want as usize];
        let read = self.file.read(&mut buf).await?;
        buf.truncate(read);
        self.remaining = if read == 0 {
            0
        } else {
            self.remaining - read as u64
        };
        Ok(buf)
    }
}

/// An upload staged in a hidden temporary file beside its target.
///
/// A whole-file write is published by renaming the temporary file over the
/// target, atomically. A partial update (`offset`) is applied at commit by
/// copying the staged piece into the target in place: an aborted piece
/// changes nothing and the file is never copied whole (uploading a big file
/// in pieces stays linear), but a crash during that copy can leave the piece
/// half-applied.
struct LocalWriter {
    file: tokio::fs::File,
    temp: PathBuf,
    target: PathBuf,
    offset: Option<u64>,
    committed: bool,
}

#[async_trait]
impl FileWriter for LocalWriter {
    async fn write(&mut self, data: Vec<u8>) -> Result<()> {
        Ok(self.file.write_all(&data).await?)
    }

    async fn commit(mut self: Box<Self>) -> Result<Metadata> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        let (temp, target, offset) = (self.temp.clone(), self.target.clone(), self.offset);
        let meta = tokio::task::spawn_blocking(move || {
            if let Some(offset) = offset {
                let mut piece = File::open(&temp)?;
                let mut file = OpenOptions::new().write(true).open(&target)?;
                file.seek(io::SeekFrom::Start(offset))?;
                io::copy(&mut piece, &mut file)?;
                file.sync_all()?;
                fs::remove_file(&temp)?;
                return Ok::<_, Error>(file.metadata()?);
            }
            fs::rename(&temp, &target).map_err(|e| match e.kind() {
                // The collection went away (and took the upload with it).
                ErrorKind::NotFound => Error::ParentNotFound,
                _ => e.into(),
            })?;
            // Make the rename itself durable.
            File::open(target.parent().expect("a file has a parent"))?.sync_all()?;
            Ok::<_, Error>(fs::metadata(&target)?)
        })
        .await
        .map_err(|e| Error::Io(format!("storage task failed: {e}")))??;
        self.committed = true;
        Ok(metadata(&meta))
    }
}

impl Drop for LocalWriter {
    /// Discards an upload that was not committed (one unlink, cheap enough to
    /// do inline).
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// The dead-property sidecar store (see the module docs).
struct PropStore {
    dir: PathBuf,
    /// Serialises read-modify-write patches.
    patching: Mutex<()>,
}

impl PropStore {
    fn open(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            patching: Mutex::new(()),
        })
    }

    fn file(&self, path: &str) -> PathBuf {
        let digest = Sha256::digest(path.as_bytes());
        self.dir.join(
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )
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
        let temp = upload_path(&self.dir);
        let written = fs::write(&temp, props::encode(path, properties)?)
            .and_then(|()| fs::rename(&temp, self.file(path)));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
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
            writer.commit().await.unwrap()
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
        assert_eq!(writer.commit().await.unwrap().size, 12);
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
}
