//! The component: `edgedav:dav` exports over `wasi:filesystem` imports (see
//! the crate docs for the design).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgedav_fstree::{self as fstree, INTERNAL_DIR, UPLOAD_PREFIX};
use edgedav_rules as rules;
use serde::{Deserialize, Serialize};

wit_bindgen::generate!({
    path: "../../wit",
    inline: r#"
        package edgedav:fs-adapter;

        world adapter {
            import wasi:filesystem/preopens@0.2.6;
            import wasi:random/random@0.2.6;
            export edgedav:dav/types@0.6.0;
            export edgedav:dav/storage@0.6.0;
            export edgedav:dav/locks@0.6.0;
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
    filesystem_error_code,
};
use wasi::io::streams::{InputStream, StreamError};

mod content;
mod disk;
mod locks;
mod storage;
use self::content::*;

struct Component;

export!(Component);

const LOCK_TABLE: &str = ".edgedav/locks.json";
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

// ---------------------------------------------------------------- the store

/// The root directory, opened once per instance.
struct Store {
    dir: Descriptor,
    /// The root's location for `edgedav_fstree`: the empty path, so
    /// locations are relative paths ([`wasi_path`]).
    root: PathBuf,
    /// The names of big collections between the pages of their listings
    /// (an instance answers a whole listing).
    snapshots: fstree::snapshot::Snapshots,
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
    let store = Rc::new(Store {
        dir,
        root: PathBuf::new(),
        snapshots: Default::default(),
    });
    store.init()?;
    STORE.with(|s| *s.borrow_mut() = Some(store.clone()));
    Ok(store)
}

/// The contract error of a filesystem error.
fn fs_err(e: ErrorCode) -> fstree::Error {
    use fstree::Error as E;
    match e {
        ErrorCode::NoEntry => E::NotFound,
        ErrorCode::Exist => E::AlreadyExists,
        ErrorCode::NotDirectory => E::NotACollection,
        ErrorCode::IsDirectory => E::IsACollection,
        ErrorCode::InsufficientSpace | ErrorCode::Quota => E::NoSpace,
        ErrorCode::FileTooLarge => E::TooLarge,
        ErrorCode::Access | ErrorCode::NotPermitted => E::Forbidden(format!("{e:?}")),
        // A server condition, not a permission: 503.
        ErrorCode::ReadOnly => E::Unavailable("the store is read-only".into()),
        ErrorCode::NameTooLong => E::NameTooLong,
        _ => E::Io(format!("{e:?}")),
    }
}

/// The error of looking a path up: a name too long to exist is not found.
fn lookup_err(e: ErrorCode) -> Error {
    fs_err(e).looked_up().into()
}

edgedav_fstree::contract_conversions!();

/// A location of `edgedav_fstree` (relative to the root descriptor; built
/// from UTF-8 contract paths) as a wasi-filesystem path.
fn wasi_path(at: &Path) -> &str {
    match at.to_str().expect("locations are built from UTF-8 paths") {
        "" => ".",
        path => path,
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
        Ok(fstree::sidecar::make_dir(self)?)
    }

    fn stat(&self, rel: &str, flags: PathFlags) -> Result<DescriptorStat, ErrorCode> {
        if rel == "." {
            self.dir.stat()
        } else {
            self.dir.stat_at(flags, rel)
        }
    }

    fn metadata(&self, rel: &str) -> Result<Metadata, ErrorCode> {
        if rel == "." {
            return metadata_of(&self.dir);
        }
        metadata_at(&self.dir, rel)
    }

    fn open(
        &self,
        rel: &str,
        open: OpenFlags,
        flags: DescriptorFlags,
    ) -> Result<Descriptor, ErrorCode> {
        self.dir.open_at(FOLLOW, rel, open, flags)
    }

    /// Creates a new staged file beside `at`, for writing.
    fn stage_beside(&self, at: &Path) -> Result<(PathBuf, Descriptor), ErrorCode> {
        let staged = at.with_file_name(random_name());
        let fd = self.dir.open_at(
            NOFOLLOW,
            wasi_path(&staged),
            OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
            DescriptorFlags::READ | DescriptorFlags::WRITE,
        )?;
        Ok((staged, fd))
    }

    /// A directory, open for reading its entries.
    fn open_dir(&self, rel: &str) -> Result<Descriptor, ErrorCode> {
        self.open(rel, OpenFlags::DIRECTORY, DescriptorFlags::READ)
    }

    /// Names in a directory (not `.`/`..`), reserved ones included.
    fn read_dir(&self, rel: &str) -> Result<Vec<(String, DescriptorType)>, ErrorCode> {
        let dir = self.open_dir(rel)?;
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

    /// Replaces a small file atomically: a file staged beside it, renamed over it.
    fn write_atomic(&self, at: &Path, bytes: &[u8]) -> Result<(), ErrorCode> {
        let (staged, fd) = self.stage_beside(at)?;
        let written = write_all(&fd, bytes, 0)
            .and_then(|()| fd.sync())
            .and_then(|()| {
                self.dir
                    .rename_at(wasi_path(&staged), &self.dir, wasi_path(at))
            });
        if written.is_err() {
            let _ = self.dir.unlink_file_at(wasi_path(&staged));
        }
        written
    }

    // ------------------------------------------------------------ mutex

    /// Takes the named mutex file (created with `O_EXCL`); released on drop.
    fn mutex(&self, name: &str) -> Result<MutexGuard<'_>, String> {
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
                    return Ok(MutexGuard { store: self, path });
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

struct MutexGuard<'a> {
    store: &'a Store,
    path: String,
}

impl Drop for MutexGuard<'_> {
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

/// The metadata of `rel` below directory `dir`, following a final symlink.
fn metadata_at(dir: &Descriptor, rel: &str) -> Result<Metadata, ErrorCode> {
    let stat = dir.stat_at(FOLLOW, rel)?;
    let hash = dir.metadata_hash_at(FOLLOW, rel)?;
    Ok(metadata(&stat, hash))
}

/// The metadata of an open descriptor: the version it reads, whatever its
/// path holds by now.
fn metadata_of(fd: &Descriptor) -> Result<Metadata, ErrorCode> {
    Ok(metadata(&fd.stat()?, fd.metadata_hash()?))
}

fn metadata(stat: &DescriptorStat, hash: wasi::filesystem::types::MetadataHashValue) -> Metadata {
    let hash = hash.lower ^ hash.upper.rotate_left(32);
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
