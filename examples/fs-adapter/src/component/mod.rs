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

mod content;
mod locks;
mod properties;
mod storage;
use self::content::*;

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
