//! The component: `edgedav:dav` exports over `wasi:filesystem` imports (see
//! the crate docs for the design).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgedav_rules as rules;
use edgedav_rules::props::{Property as StoredProperty, sidecar};
use serde::{Deserialize, Serialize};

wit_bindgen::generate!({
    path: "../../wit",
    inline: r#"
        package edgedav:fs-adapter;

        world adapter {
            import wasi:filesystem/preopens@0.2.6;
            import wasi:random/random@0.2.6;
            export edgedav:dav/types@0.4.0;
            export edgedav:dav/storage@0.4.0;
            export edgedav:dav/locks@0.4.0;
        }
    "#,
    world: "edgedav:fs-adapter/adapter",
    generate_all,
});

use exports::edgedav::dav::locks::{self as lk, ActiveLock, LockError, LockRequest, Scope};
use exports::edgedav::dav::storage::{
    self as st, Committed, Entry, MemberError, Page, Property, PropertyChange, Space, WriteOptions,
};
use exports::edgedav::dav::types::{Error, Metadata, NodeKind, Timestamp};
use wasi::filesystem::preopens::get_directories;
use wasi::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorStat, DescriptorType, ErrorCode, OpenFlags, PathFlags,
};
use wasi::io::streams::InputStream;

struct Component;

export!(Component);

/// Name of the internal directory at the root.
const INTERNAL_DIR: &str = ".edgedav";
/// Prefix of uploads in progress (and of staged internal files).
const UPLOAD_PREFIX: &str = ".edgedav-upload-";
const PROPS_DIR: &str = ".edgedav/props";
const LOCK_TABLE: &str = ".edgedav/locks.json";
/// The most entries one `list-members` page holds, whatever the guest asks.
const MAX_PAGE: u32 = 1000;
/// Bytes moved per call when copying file content.
const COPY_CHUNK: u64 = 1 << 20;
/// A mutex file older than this is taken to be left by a killed instance.
const MUTEX_STALE: Duration = Duration::from_secs(10);
/// How long to wait for a mutex before giving up.
const MUTEX_WAIT: Duration = Duration::from_secs(15);
/// A staged file not modified for this long is taken to be left by a killed
/// instance (a live writer modifies its file with every chunk) and removed
/// where it is met (see the crate docs).
const STAGED_STALE: Duration = Duration::from_secs(3600);

fn is_reserved(name: &str) -> bool {
    name == INTERNAL_DIR || name.starts_with(UPLOAD_PREFIX)
}

// ---------------------------------------------------------------- the store

/// The root directory, opened once per instance.
struct Store {
    dir: Descriptor,
}

thread_local! {
    static STORE: RefCell<Option<Rc<Store>>> = const { RefCell::new(None) };
}

fn store() -> Result<Rc<Store>, Error> {
    if let Some(s) = STORE.with(|s| s.borrow().clone()) {
        return Ok(s);
    }
    let wanted = std::env::var("EDGEDAV_ROOT").ok();
    let mut dirs = get_directories();
    let trim = |s: &str| s.trim_end_matches('/').to_owned();
    let index = match &wanted {
        Some(w) => dirs.iter().position(|(_, name)| trim(name) == trim(w)),
        None if dirs.len() == 1 => Some(0),
        None => None,
    };
    let Some(index) = index else {
        let names: Vec<String> = dirs.iter().map(|(_, n)| n.clone()).collect();
        return Err(Error::Io(format!(
            "no store directory: preopen exactly one with `--dir HOST::GUEST`, or set \
             EDGEDAV_ROOT to one of the preopened directories {names:?} (EDGEDAV_ROOT={wanted:?})"
        )));
    };
    let (dir, _) = dirs.swap_remove(index);
    let store = Rc::new(Store { dir });
    store.init()?;
    STORE.with(|s| *s.borrow_mut() = Some(store.clone()));
    Ok(store)
}

fn fs_err(e: ErrorCode) -> Error {
    match e {
        ErrorCode::NoEntry => Error::NotFound,
        ErrorCode::Exist => Error::AlreadyExists,
        ErrorCode::NotDirectory => Error::NotACollection,
        ErrorCode::IsDirectory => Error::IsACollection,
        ErrorCode::InsufficientSpace | ErrorCode::Quota => Error::NoSpace,
        ErrorCode::FileTooLarge => Error::TooLarge,
        ErrorCode::Access | ErrorCode::NotPermitted => Error::Forbidden(format!("{e:?}")),
        // A server condition, not a permission: 503.
        ErrorCode::ReadOnly => Error::Unavailable("the store is read-only".into()),
        ErrorCode::NameTooLong => Error::Conflict("name too long".into()),
        _ => Error::Io(format!("{e:?}")),
    }
}

/// The error of looking a path up: a name too long to exist is not found.
fn lookup_err(e: ErrorCode) -> Error {
    match e {
        ErrorCode::NameTooLong => Error::NotFound,
        e => fs_err(e),
    }
}

fn forbidden(reason: &str) -> Error {
    Error::Forbidden(reason.to_owned())
}

/// A contract path as a path relative to the root descriptor (`.` for the root).
fn rel(path: &str) -> Result<String, Error> {
    let segments = rules::path::segments(path, is_reserved).map_err(forbidden)?;
    Ok(if segments.is_empty() {
        ".".to_owned()
    } else {
        segments.join("/")
    })
}

fn rel_parent(rel: &str) -> &str {
    match rel.rfind('/') {
        Some(cut) => &rel[..cut],
        None => ".",
    }
}

fn rel_child(rel: &str, name: &str) -> String {
    if rel == "." {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

fn random_name() -> String {
    format!(
        "{UPLOAD_PREFIX}{}",
        rules::hex(&wasi::random::random::get_random_bytes(16))
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const FOLLOW: PathFlags = PathFlags::SYMLINK_FOLLOW;
const NOFOLLOW: PathFlags = PathFlags::empty();

impl Store {
    /// Creates the internal directories.
    fn init(&self) -> Result<(), Error> {
        for dir in [INTERNAL_DIR, PROPS_DIR] {
            match self.dir.create_directory_at(dir) {
                Ok(()) | Err(ErrorCode::Exist) => {}
                Err(e) => return Err(fs_err(e)),
            }
        }
        Ok(())
    }

    fn stat(&self, rel: &str, flags: PathFlags) -> Result<DescriptorStat, ErrorCode> {
        if rel == "." {
            self.dir.stat()
        } else {
            self.dir.stat_at(flags, rel)
        }
    }

    fn metadata(&self, rel: &str) -> Result<Metadata, ErrorCode> {
        let stat = self.stat(rel, FOLLOW)?;
        let hash = if rel == "." {
            self.dir.metadata_hash()?
        } else {
            self.dir.metadata_hash_at(FOLLOW, rel)?
        };
        Ok(metadata(&stat, hash.lower ^ hash.upper.rotate_left(32)))
    }

    fn open(
        &self,
        rel: &str,
        open: OpenFlags,
        flags: DescriptorFlags,
    ) -> Result<Descriptor, ErrorCode> {
        self.dir.open_at(FOLLOW, rel, open, flags)
    }

    /// The parent of a new resource must be an existing collection.
    fn check_parent(&self, rel: &str) -> Result<(), Error> {
        match self.stat(rel_parent(rel), FOLLOW) {
            Ok(s) if s.type_ == DescriptorType::Directory => Ok(()),
            Ok(_) => Err(Error::NotACollection),
            Err(ErrorCode::NoEntry) => Err(Error::ParentNotFound),
            Err(e) => Err(fs_err(e)),
        }
    }

    /// Names in a directory (not `.`/`..`), reserved ones included.
    fn read_dir(&self, rel: &str) -> Result<Vec<(String, DescriptorType)>, ErrorCode> {
        let dir = self.open(rel, OpenFlags::DIRECTORY, DescriptorFlags::READ)?;
        let stream = dir.read_directory()?;
        let mut out = Vec::new();
        while let Some(entry) = stream.read_directory_entry()? {
            out.push((entry.name, entry.type_));
        }
        Ok(out)
    }

    fn read_all(&self, rel: &str) -> Result<Vec<u8>, ErrorCode> {
        let fd = self.open(rel, OpenFlags::empty(), DescriptorFlags::READ)?;
        let mut out = Vec::new();
        loop {
            let (chunk, eof) = fd.read(COPY_CHUNK, out.len() as u64)?;
            out.extend_from_slice(&chunk);
            if eof || chunk.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Writes a small file atomically: a staged file in `dir_rel`, renamed over `rel`.
    fn write_atomic(&self, dir_rel: &str, rel: &str, bytes: &[u8]) -> Result<(), ErrorCode> {
        let temp = rel_child(dir_rel, &random_name());
        let written = (|| {
            let fd = self.dir.open_at(
                NOFOLLOW,
                &temp,
                OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                DescriptorFlags::WRITE,
            )?;
            write_all(&fd, bytes, 0)?;
            drop(fd);
            self.dir.rename_at(&temp, &self.dir, rel)
        })();
        if written.is_err() {
            let _ = self.dir.unlink_file_at(&temp);
        }
        written
    }

    fn remove_file_if_present(&self, rel: &str) -> Result<(), ErrorCode> {
        match self.dir.unlink_file_at(rel) {
            Ok(()) | Err(ErrorCode::NoEntry) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Copies a file's content through a staged file, so a failed copy leaves
    /// nothing at the destination.
    fn copy_file(&self, from: &str, to: &str) -> Result<(), ErrorCode> {
        let temp = rel_child(rel_parent(to), &random_name());
        let copied = (|| {
            let src = self.open(from, OpenFlags::empty(), DescriptorFlags::READ)?;
            let dst = self.dir.open_at(
                NOFOLLOW,
                &temp,
                OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                DescriptorFlags::WRITE,
            )?;
            copy_content(&src, &dst, 0)?;
            drop(dst);
            self.dir.rename_at(&temp, &self.dir, to)
        })();
        if copied.is_err() {
            let _ = self.dir.unlink_file_at(&temp);
        }
        copied
    }

    // ------------------------------------------------------------ mutex

    /// Takes the named mutex file (created with `O_EXCL`); released on drop.
    fn mutex(self: &Rc<Self>, name: &str) -> Result<MutexGuard, String> {
        let path = format!("{INTERNAL_DIR}/{name}.mutex");
        let start = SystemTime::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match self.dir.open_at(
                NOFOLLOW,
                &path,
                OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                DescriptorFlags::WRITE,
            ) {
                Ok(_) => {
                    return Ok(MutexGuard {
                        store: self.clone(),
                        path,
                    });
                }
                Err(ErrorCode::Exist) => {}
                Err(e) => return Err(format!("taking {path}: {e:?}")),
            }
            // Held by another instance; take it over if it was left behind.
            if let Ok(stat) = self.dir.stat_at(NOFOLLOW, &path) {
                let modified = stat.data_modification_timestamp.map_or(0, |t| t.seconds);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                if now.saturating_sub(modified) > MUTEX_STALE.as_secs() {
                    let _ = self.dir.unlink_file_at(&path);
                    continue;
                }
            }
            if start.elapsed().unwrap_or_default() > MUTEX_WAIT {
                return Err(format!("timed out waiting for {path}"));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

struct MutexGuard {
    store: Rc<Store>,
    path: String,
}

impl Drop for MutexGuard {
    fn drop(&mut self) {
        let _ = self.store.dir.unlink_file_at(&self.path);
    }
}

fn write_all(fd: &Descriptor, mut data: &[u8], mut offset: u64) -> Result<(), ErrorCode> {
    while !data.is_empty() {
        let n = fd.write(data, offset)?;
        if n == 0 {
            return Err(ErrorCode::Io);
        }
        data = &data[n as usize..];
        offset += n;
    }
    Ok(())
}

/// Copies all of `src` into `dst` at `at`.
fn copy_content(src: &Descriptor, dst: &Descriptor, at: u64) -> Result<(), ErrorCode> {
    let mut pos = 0u64;
    loop {
        let (chunk, eof) = src.read(COPY_CHUNK, pos)?;
        write_all(dst, &chunk, at + pos)?;
        pos += chunk.len() as u64;
        if eof || chunk.is_empty() {
            return Ok(());
        }
    }
}

fn metadata(stat: &DescriptorStat, hash: u64) -> Metadata {
    let (kind, size) = if stat.type_ == DescriptorType::Directory {
        (NodeKind::Collection, 0)
    } else {
        (NodeKind::File, stat.size)
    };
    let modified = stat.data_modification_timestamp.map_or(
        Timestamp {
            seconds: 0,
            nanoseconds: 0,
        },
        |t| Timestamp {
            seconds: t.seconds as i64,
            nanoseconds: t.nanoseconds,
        },
    );
    let mtime_nanos =
        i128::from(modified.seconds) * 1_000_000_000 + i128::from(modified.nanoseconds);
    Metadata {
        kind,
        size,
        modified,
        created: None,
        etag: format!("{hash:x}-{size:x}-{mtime_nanos:x}"),
        content_type: None,
    }
}

// ---------------------------------------------------------------- storage

impl st::Guest for Component {
    type Reader = FsReader;
    type Writer = FsWriter;

    fn stat(path: String) -> Result<Metadata, Error> {
        let s = store()?;
        s.metadata(&rel(&path)?).map_err(lookup_err)
    }

    fn list_members(path: String, cursor: Option<String>, limit: u32) -> Result<Page, Error> {
        let s = store()?;
        let dir = rel(&path)?;
        if s.stat(&dir, FOLLOW).map_err(lookup_err)?.type_ != DescriptorType::Directory {
            return Err(Error::NotACollection);
        }
        let mut names: Vec<String> = s
            .read_dir(&dir)
            .map_err(fs_err)?
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| {
                if name.starts_with(UPLOAD_PREFIX) {
                    s.remove_if_stale(&rel_child(&dir, name));
                }
                !is_reserved(name)
            })
            .filter(|name| cursor.as_ref().is_none_or(|after| name > after))
            .collect();
        names.sort_unstable();
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let mut entries = Vec::new();
        let mut names = names.into_iter().peekable();
        while entries.len() < limit {
            let Some(name) = names.next() else { break };
            // Members can vanish meanwhile, and symlinks may lead out of the
            // store (the runtime refuses to follow those): skip them.
            if let Ok(metadata) = s.metadata(&rel_child(&dir, &name)) {
                let has_properties = s.has_properties(&rules::path::child_path(&path, &name));
                entries.push(Entry {
                    name,
                    metadata,
                    has_properties,
                });
            }
        }
        let next = match names.peek() {
            Some(_) => entries.last().map(|e| e.name.clone()),
            None => None,
        };
        Ok(Page { entries, next })
    }

    fn open_read(path: String, offset: u64, length: Option<u64>) -> Result<st::Reader, Error> {
        let s = store()?;
        let fd = s
            .open(&rel(&path)?, OpenFlags::empty(), DescriptorFlags::READ)
            .map_err(lookup_err)?;
        if fd.get_type().map_err(fs_err)? == DescriptorType::Directory {
            return Err(Error::IsACollection);
        }
        Ok(st::Reader::new(FsReader {
            fd,
            position: RefCell::new(offset),
            remaining: RefCell::new(length.unwrap_or(u64::MAX)),
        }))
    }

    /// The descriptor's own stream when the range runs to the end of the
    /// file (a whole GET): wasi:filesystem streams run to the end, and the
    /// contract's stream closes at the end of its range. Other ranges are
    /// declined, and the handler reads them through `open-read`.
    fn open_read_stream(
        path: String,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Option<InputStream>, Error> {
        let s = store()?;
        let fd = s
            .open(&rel(&path)?, OpenFlags::empty(), DescriptorFlags::READ)
            .map_err(lookup_err)?;
        let stat = fd.stat().map_err(fs_err)?;
        if stat.type_ == DescriptorType::Directory {
            return Err(Error::IsACollection);
        }
        if length.is_some_and(|n| offset.saturating_add(n) < stat.size) {
            return Ok(None);
        }
        Ok(Some(fd.read_via_stream(offset).map_err(fs_err)?))
    }

    fn open_write(path: String, options: WriteOptions) -> Result<st::Writer, Error> {
        if path == "/" {
            return Err(Error::IsACollection);
        }
        let s = store()?;
        let target = rel(&path)?;
        match s.stat(&target, FOLLOW) {
            Ok(_) if options.create_only => return Err(Error::AlreadyExists),
            Ok(stat) if stat.type_ == DescriptorType::Directory => {
                return Err(Error::IsACollection);
            }
            Ok(stat) if options.offset.is_some_and(|offset| offset > stat.size) => {
                return Err(Error::Conflict("offset beyond the end of the file".into()));
            }
            Err(ErrorCode::NoEntry) if options.offset.is_some() => return Err(Error::NotFound),
            Err(ErrorCode::NoEntry) | Ok(_) => {}
            Err(e) => return Err(fs_err(e)),
        }
        s.check_parent(&target)?;
        let temp = rel_child(rel_parent(&target), &random_name());
        let fd = s
            .dir
            .open_at(
                NOFOLLOW,
                &temp,
                OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                DescriptorFlags::READ | DescriptorFlags::WRITE,
            )
            .map_err(fs_err)?;
        Ok(st::Writer::new(FsWriter {
            store: s,
            fd,
            temp,
            target,
            offset: options.offset,
            create_only: options.create_only,
            written: RefCell::new(0),
            committed: false,
        }))
    }

    fn create_collection(path: String) -> Result<(), Error> {
        if path == "/" {
            return Err(Error::AlreadyExists);
        }
        let s = store()?;
        s.dir
            .create_directory_at(&rel(&path)?)
            .map_err(|e| match e {
                ErrorCode::NoEntry => Error::ParentNotFound,
                e => fs_err(e),
            })
    }

    fn delete(path: String) -> Result<Vec<MemberError>, Error> {
        if path == "/" {
            return Err(forbidden("the root collection cannot be deleted"));
        }
        let s = store()?;
        let target = rel(&path)?;
        let mut errors = Vec::new();
        s.delete(&target, &path, &mut errors)?;
        Ok(errors)
    }

    fn copy(
        source: String,
        destination: String,
        recursive: bool,
        overwrite: bool,
    ) -> Result<Vec<MemberError>, Error> {
        let s = store()?;
        let (from, to) = match s.prepare_transfer(&source, &destination, overwrite)? {
            Ok(locations) => locations,
            Err(errors) => return Ok(errors),
        };
        let mut errors = Vec::new();
        s.copy_node(&from, &to, &source, &destination, recursive, &mut errors)?;
        Ok(errors)
    }

    fn rename(
        source: String,
        destination: String,
        overwrite: bool,
    ) -> Result<Vec<MemberError>, Error> {
        if source == "/" {
            return Err(forbidden("the root collection cannot be moved"));
        }
        let s = store()?;
        let (from, to) = match s.prepare_transfer(&source, &destination, overwrite)? {
            Ok(locations) => locations,
            Err(errors) => return Ok(errors),
        };
        s.dir.rename_at(&from, &s.dir, &to).map_err(fs_err)?;
        // The content has moved; its properties follow, member by member.
        let mut moved = vec![(source.clone(), destination.clone())];
        if s.stat(&to, NOFOLLOW).map_err(fs_err)?.type_ == DescriptorType::Directory {
            s.walk(&to, &destination, &mut |member| {
                moved.push((
                    rules::path::rebase(member, &destination, &source),
                    member.to_owned(),
                ));
            })
            .map_err(fs_err)?;
        }
        let mut errors = Vec::new();
        for (old, new) in moved {
            if let Err(e) = s.props_rename(&old, &new) {
                errors.push(MemberError {
                    path: new,
                    error: fs_err(e),
                });
            }
        }
        Ok(errors)
    }

    fn get_properties(path: String) -> Result<Vec<Property>, Error> {
        let s = store()?;
        s.stat(&rel(&path)?, FOLLOW).map_err(lookup_err)?;
        Ok(s.props_load(&path)
            .map_err(fs_err)?
            .into_iter()
            .map(property)
            .collect())
    }

    fn patch_properties(path: String, changes: Vec<PropertyChange>) -> Result<(), Error> {
        let s = store()?;
        s.stat(&rel(&path)?, FOLLOW).map_err(fs_err)?;
        let changes = changes.into_iter().map(|c| match c {
            PropertyChange::Set(p) => rules::props::Change::Set(StoredProperty {
                namespace: p.namespace,
                name: p.name,
                value: p.value,
            }),
            PropertyChange::Remove(n) => rules::props::Change::Remove {
                namespace: n.namespace,
                name: n.name,
            },
        });
        let _guard = s.mutex("props").map_err(Error::Io)?;
        let mut props = s.props_load(&path).map_err(fs_err)?;
        rules::props::apply(&mut props, changes);
        s.props_store(&path, props).map_err(fs_err)
    }

    fn space_usage(path: String) -> Result<Space, Error> {
        rel(&path)?;
        // wasi:filesystem has no statvfs.
        Ok(Space {
            used: None,
            available: None,
        })
    }
}

fn property(p: StoredProperty) -> Property {
    Property {
        namespace: p.namespace,
        name: p.name,
        value: p.value,
    }
}

impl Store {
    /// Deletes a file, or a collection with everything below it, with their
    /// properties. Member failures are recorded and keep their ancestors.
    fn delete(&self, target: &str, path: &str, errors: &mut Vec<MemberError>) -> Result<(), Error> {
        if self.stat(target, NOFOLLOW).map_err(fs_err)?.type_ == DescriptorType::Directory {
            if self.remove_tree(target, path, errors).map_err(fs_err)? {
                self.props_remove(path).map_err(fs_err)?;
            }
        } else {
            self.dir.unlink_file_at(target).map_err(fs_err)?;
            self.props_remove(path).map_err(fs_err)?;
        }
        Ok(())
    }

    /// Removes `dir` and everything below it; fails only when `dir` itself
    /// cannot be listed; returns whether `dir` is gone.
    fn remove_tree(
        &self,
        dir: &str,
        path: &str,
        errors: &mut Vec<MemberError>,
    ) -> Result<bool, ErrorCode> {
        let mut complete = true;
        for (name, kind) in self.read_dir(dir)? {
            let member = rules::path::child_path(path, &name);
            let member_rel = rel_child(dir, &name);
            let removed = if kind == DescriptorType::Directory {
                self.remove_tree(&member_rel, &member, errors)
            } else {
                self.dir.unlink_file_at(&member_rel).map(|()| true)
            }
            .and_then(|removed| {
                if removed && !is_reserved(&name) {
                    self.props_remove(&member)?;
                }
                Ok(removed)
            });
            match removed {
                Ok(removed) => complete &= removed,
                Err(e) => {
                    errors.push(MemberError {
                        path: member,
                        error: fs_err(e),
                    });
                    complete = false;
                }
            }
        }
        if !complete {
            return Ok(false);
        }
        match self.dir.remove_directory_at(dir) {
            Ok(()) => Ok(true),
            Err(e) => {
                errors.push(MemberError {
                    path: path.to_owned(),
                    error: fs_err(e),
                });
                Ok(false)
            }
        }
    }

    /// Checks a copy or move and returns the source and destination, with the
    /// destination's parent checked and an existing destination cleared
    /// (unless a file replaces a file). Member errors left by clearing are
    /// returned instead.
    #[allow(clippy::type_complexity)]
    fn prepare_transfer(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<Result<(String, String), Vec<MemberError>>, Error> {
        rules::transfer::check(source, destination).map_err(|r| forbidden(r.reason()))?;
        let (from, to) = (rel(source)?, rel(destination)?);
        let source_is_dir =
            self.stat(&from, FOLLOW).map_err(fs_err)?.type_ == DescriptorType::Directory;
        match self.stat(&to, NOFOLLOW) {
            Ok(_) if !overwrite => return Err(Error::AlreadyExists),
            // A file replaces a file atomically by rename; its properties
            // are then replaced along with the content.
            Ok(stat) if stat.type_ != DescriptorType::Directory && !source_is_dir => {}
            Ok(_) => {
                let mut errors = Vec::new();
                self.delete(&to, destination, &mut errors)?;
                if !errors.is_empty() {
                    return Ok(Err(errors));
                }
            }
            Err(ErrorCode::NoEntry) => self.check_parent(&to)?,
            Err(e) => return Err(fs_err(e)),
        }
        Ok(Ok((from, to)))
    }

    /// Copies one resource with its properties and, if `recursive`, its
    /// members. Member errors name the destination member.
    fn copy_node(
        &self,
        from: &str,
        to: &str,
        source: &str,
        destination: &str,
        recursive: bool,
        errors: &mut Vec<MemberError>,
    ) -> Result<(), Error> {
        if self.stat(from, FOLLOW).map_err(fs_err)?.type_ != DescriptorType::Directory {
            self.copy_file(from, to).map_err(fs_err)?;
            return self.props_copy(source, destination).map_err(fs_err);
        }
        self.dir.create_directory_at(to).map_err(fs_err)?;
        self.props_copy(source, destination).map_err(fs_err)?;
        if !recursive {
            return Ok(());
        }
        for (name, kind) in self.read_dir(from).map_err(fs_err)? {
            if is_reserved(&name) {
                continue;
            }
            let target = rules::path::child_path(destination, &name);
            let member_from = rel_child(from, &name);
            // Walks follow a symlink only to a file; symlinked collections could loop.
            let followable = match kind {
                DescriptorType::SymbolicLink => match self.stat(&member_from, FOLLOW) {
                    Ok(s) if s.type_ == DescriptorType::Directory => {
                        Err(forbidden("symbolic links to collections are not followed"))
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(fs_err(e)),
                },
                _ => Ok(()),
            };
            let copied = followable.and_then(|()| {
                self.copy_node(
                    &member_from,
                    &rel_child(to, &name),
                    &rules::path::child_path(source, &name),
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

    /// Visits the contract path of every member below `dir` (not following
    /// symlinks, skipping reserved names).
    fn walk(&self, dir: &str, path: &str, visit: &mut impl FnMut(&str)) -> Result<(), ErrorCode> {
        for (name, kind) in self.read_dir(dir)? {
            if is_reserved(&name) {
                continue;
            }
            let member = rules::path::child_path(path, &name);
            visit(&member);
            if kind == DescriptorType::Directory {
                self.walk(&rel_child(dir, &name), &member, visit)?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- reader, writer

pub struct FsReader {
    fd: Descriptor,
    position: RefCell<u64>,
    remaining: RefCell<u64>,
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
    store: Rc<Store>,
    fd: Descriptor,
    temp: String,
    target: String,
    offset: Option<u64>,
    create_only: bool,
    written: RefCell<u64>,
    committed: bool,
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
    fn publish(&self, temp: &str, target: &str, create_only: bool) -> Result<bool, Error> {
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
    fn apply_piece(&self, piece: &Descriptor, target: &str, offset: u64) -> Result<(), Error> {
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
    fn remove_if_stale(&self, rel: &str) {
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
    fn sweep(&self, dir: &str) {
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

// ---------------------------------------------------------------- dead properties

/// A resource's sidecar, in the native host's format and naming
/// (`edgedav_rules::props::sidecar`), so both serve the same directory.
fn props_file(path: &str) -> String {
    format!("{PROPS_DIR}/{}", sidecar::file_name(path))
}

impl Store {
    /// Whether a resource may have dead properties: its sidecar exists (one
    /// stat, no read). When that cannot be told, it may (true).
    fn has_properties(&self, path: &str) -> bool {
        !matches!(
            self.stat(&props_file(path), NOFOLLOW),
            Err(ErrorCode::NoEntry)
        )
    }

    fn props_load(&self, path: &str) -> Result<Vec<StoredProperty>, ErrorCode> {
        let bytes = match self.read_all(&props_file(path)) {
            Err(ErrorCode::NoEntry) => return Ok(Vec::new()),
            read => read?,
        };
        sidecar::decode(&bytes).map_err(|_| ErrorCode::Io)
    }

    /// Replaces a resource's properties atomically (staged file + rename).
    fn props_store(&self, path: &str, properties: Vec<StoredProperty>) -> Result<(), ErrorCode> {
        if properties.is_empty() {
            return self.props_remove(path);
        }
        let bytes = sidecar::encode(path, properties);
        // The property directory holds one file per resource: sweep it on
        // one store in 64, so a crash's leftovers go without a listing per
        // request.
        if wasi::random::random::get_random_u64().is_multiple_of(64) {
            self.sweep(PROPS_DIR);
        }
        self.write_atomic(PROPS_DIR, &props_file(path), &bytes)
    }

    fn props_remove(&self, path: &str) -> Result<(), ErrorCode> {
        self.remove_file_if_present(&props_file(path))
    }

    fn props_copy(&self, from: &str, to: &str) -> Result<(), ErrorCode> {
        self.props_store(to, self.props_load(from)?)
    }

    fn props_rename(&self, from: &str, to: &str) -> Result<(), ErrorCode> {
        self.props_copy(from, to)?;
        self.props_remove(from)
    }
}

// ---------------------------------------------------------------- locks

#[derive(Serialize, Deserialize, Default)]
struct LockTable {
    locks: Vec<StoredLock>,
}

#[derive(Serialize, Deserialize, Clone)]
struct StoredLock {
    token: String,
    root: String,
    exclusive: bool,
    deep: bool,
    owner: Option<String>,
    expires_ms: u64,
}

impl From<&StoredLock> for rules::locks::LockRecord {
    fn from(l: &StoredLock) -> Self {
        rules::locks::LockRecord {
            token: l.token.clone(),
            root: l.root.clone(),
            exclusive: l.exclusive,
            deep: l.deep,
            owner: l.owner.clone(),
            expires_ms: l.expires_ms,
        }
    }
}

fn active(l: &StoredLock, now: u64) -> ActiveLock {
    let record = rules::locks::LockRecord::from(l);
    ActiveLock {
        token: l.token.clone(),
        root: l.root.clone(),
        scope: if l.exclusive {
            Scope::Exclusive
        } else {
            Scope::Shared
        },
        deep: l.deep,
        owner: l.owner.clone(),
        timeout: Some(record.seconds_left(now)),
    }
}

impl Store {
    /// The live locks (expired ones dropped).
    fn lock_table(&self, now: u64) -> Result<LockTable, String> {
        let mut table: LockTable = match self.read_all(LOCK_TABLE) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{LOCK_TABLE}: {e}"))?
            }
            Err(ErrorCode::NoEntry) => LockTable::default(),
            Err(e) => return Err(format!("{LOCK_TABLE}: {e:?}")),
        };
        table.locks.retain(|l| l.expires_ms > now);
        Ok(table)
    }

    fn save_locks(&self, table: &LockTable) -> Result<(), String> {
        let bytes = serde_json::to_vec(table).map_err(|e| e.to_string())?;
        // A small directory: sweeping it here costs one listing.
        self.sweep(INTERNAL_DIR);
        self.write_atomic(INTERNAL_DIR, LOCK_TABLE, &bytes)
            .map_err(|e| format!("{LOCK_TABLE}: {e:?}"))
    }

    /// Live locks matching `keep`. A table that cannot be read is an `io`
    /// error (the handler answers 500): answering "no locks" would let
    /// writes through locked resources.
    fn select(
        &self,
        keep: impl Fn(&rules::locks::LockRecord) -> bool,
    ) -> Result<Vec<ActiveLock>, LockError> {
        let now = now_ms();
        let table = self.lock_table(now).map_err(LockError::Io)?;
        Ok(table
            .locks
            .iter()
            .filter(|l| keep(&rules::locks::LockRecord::from(*l)))
            .map(|l| active(l, now))
            .collect())
    }
}

fn lock_store() -> Result<Rc<Store>, LockError> {
    store().map_err(|e| LockError::Io(format!("{e:?}")))
}

impl lk::Guest for Component {
    fn acquire(request: LockRequest) -> Result<ActiveLock, LockError> {
        let s = lock_store()?;
        let _guard = s.mutex("locks").map_err(LockError::Io)?;
        let now = now_ms();
        let mut table = s.lock_table(now).map_err(LockError::Io)?;
        let ask = rules::locks::Extent {
            root: &request.root,
            exclusive: matches!(request.scope, Scope::Exclusive),
            deep: request.deep,
        };
        let conflicts: Vec<ActiveLock> = table
            .locks
            .iter()
            .filter(|l| {
                rules::locks::LockRecord::from(*l)
                    .extent()
                    .conflicts_with(&ask)
            })
            .map(|l| active(l, now))
            .collect();
        if !conflicts.is_empty() {
            return Err(LockError::Conflict(conflicts));
        }
        let bytes: [u8; 16] = wasi::random::random::get_random_bytes(16)
            .try_into()
            .expect("16 random bytes");
        let lock = StoredLock {
            token: rules::locks::uuid_urn(bytes),
            root: request.root,
            exclusive: matches!(request.scope, Scope::Exclusive),
            deep: request.deep,
            owner: request.owner,
            expires_ms: now + u64::from(rules::locks::granted_secs(request.timeout)) * 1000,
        };
        let granted = active(&lock, now);
        table.locks.push(lock);
        s.save_locks(&table).map_err(LockError::Io)?;
        Ok(granted)
    }

    fn refresh(token: String, timeout: Option<u32>) -> Result<ActiveLock, LockError> {
        let s = lock_store()?;
        let _guard = s.mutex("locks").map_err(LockError::Io)?;
        let now = now_ms();
        let mut table = s.lock_table(now).map_err(LockError::Io)?;
        let lock = table
            .locks
            .iter_mut()
            .find(|l| l.token == token)
            .ok_or(LockError::NoSuchLock)?;
        lock.expires_ms = now + u64::from(rules::locks::granted_secs(timeout)) * 1000;
        let refreshed = active(lock, now);
        s.save_locks(&table).map_err(LockError::Io)?;
        Ok(refreshed)
    }

    fn release(token: String) -> Result<(), LockError> {
        let s = lock_store()?;
        let _guard = s.mutex("locks").map_err(LockError::Io)?;
        let mut table = s.lock_table(now_ms()).map_err(LockError::Io)?;
        let before = table.locks.len();
        table.locks.retain(|l| l.token != token);
        if table.locks.len() == before {
            return Err(LockError::NoSuchLock);
        }
        s.save_locks(&table).map_err(LockError::Io)
    }

    fn covering(path: String) -> Result<Vec<ActiveLock>, LockError> {
        lock_store()?.select(|l| l.extent().covers(&path))
    }

    fn within(path: String) -> Result<Vec<ActiveLock>, LockError> {
        lock_store()?.select(|l| l.extent().within(&path))
    }
}
