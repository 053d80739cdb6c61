//! Staged files of the local-disk backend: uploads in progress, copies and
//! property documents, written aside and published by one rename (or, for
//! an anonymous file, one link).
//!
//! * **Where.** In one per-store directory, `<root>/.edgedav/uploads/`, so
//!   finding what crashed writers left is one directory listing, not a walk
//!   of the tree, and staged bytes never sit in the user's collections. A
//!   rename only works within one filesystem: when the target's collection
//!   is on another filesystem than the staging directory (something mounted
//!   inside the store), the file is staged beside the target instead, under
//!   the reserved `.edgedav-upload-` prefix; those are swept when their
//!   collection is listed.
//! * **Ownership.** A writer holds `flock(LOCK_EX)` on its staged file for
//!   the file's whole life. The kernel releases the lock when the process
//!   dies, however it dies (`kill -9` included), so a staged file that can
//!   be locked with `LOCK_NB` belongs to no live writer, in this process or
//!   another one serving the same store.
//! * **Sweeping.** [`sweep`] removes the staged files no live writer owns,
//!   and that are older than [`MIN_AGE`] (which covers the instant between a
//!   writer creating its file and locking it). The backend sweeps the
//!   staging directory when it opens the store and again, from `open-write`,
//!   when [`SWEEP_INTERVAL`] has passed since.
//! * **Anonymous uploads.** Where the filesystem offers `O_TMPFILE`, a
//!   whole-file upload is staged as a file with no name in its target's
//!   collection ([`stage_anonymous`]) and linked into place at commit
//!   ([`link`], [`replace_with`]): nothing to name, lock or sweep, and a
//!   crashed writer leaves nothing behind (the kernel frees a file no name
//!   and no descriptor holds). Its publication changes one directory
//!   instead of two, and is cheaper even though the file is fsynced once
//!   more after its link (measured in README → Performance).
//! * **Recreated on demand.** If the store's directory is removed and
//!   re-created behind the server's back, the staging directory is made
//!   again when next needed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use edgedav_fstree::UPLOAD_PREFIX;
use rustix::fs::{AtFlags, CWD, FlockOperation, Mode, OFlags, flock};
use rustix::io::Errno;

/// A staged file younger than this is never swept.
pub const MIN_AGE: Duration = Duration::from_secs(60);
/// How often `open-write` sweeps the staging directory.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// A staged file, exclusively locked for as long as this value lives.
pub struct Staged {
    pub file: File,
    pub path: PathBuf,
}

/// Creates a locked staged file in `dir` (created if missing), or beside
/// `target` when `dir` is on another filesystem than `target`'s collection.
pub fn stage(dir: &Path, target_dir: &Path) -> io::Result<Staged> {
    let same_fs = match (fs::metadata(dir), fs::metadata(target_dir)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        (Err(e), _) if e.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(dir)?;
            fs::metadata(dir)?.dev() == fs::metadata(target_dir)?.dev()
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let path = if same_fs {
        dir.join(uuid::Uuid::new_v4().to_string())
    } else {
        beside(target_dir)
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    if let Err(e) = flock(&file, FlockOperation::LockExclusive) {
        let _ = fs::remove_file(&path);
        return Err(e.into());
    }
    Ok(Staged { file, path })
}

/// A fresh name for a file staged in the collection `dir` itself, under
/// the reserved [`UPLOAD_PREFIX`] (so listings hide and sweep it).
fn beside(dir: &Path) -> PathBuf {
    dir.join(format!("{UPLOAD_PREFIX}{}", uuid::Uuid::new_v4()))
}

/// Opens an anonymous file (`O_TMPFILE`) in the collection `dir` (open,
/// as `dir_fd`, or the working directory) for an upload to publish with
/// [`link`] or [`replace_with`]. `None` when the filesystem or kernel has
/// no such files: the caller then stages a named file with [`stage`].
pub fn stage_anonymous(dir_fd: impl std::os::fd::AsFd, dir: &Path) -> io::Result<Option<File>> {
    match rustix::fs::openat(
        dir_fd,
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o666),
    ) {
        Ok(fd) => Ok(Some(File::from(fd))),
        // Unsupported by the filesystem (`EOPNOTSUPP`), or by a kernel that
        // reads the flag as `O_DIRECTORY` alone (`EISDIR`, `EINVAL`).
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Gives an anonymous file the name `to`; `AlreadyExists` if it is taken.
/// (Through `/proc/self/fd`: linking the descriptor itself, with
/// `AT_EMPTY_PATH`, needs a capability the server should not hold.)
pub fn link(file: &File, to: &Path) -> io::Result<()> {
    let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(file));
    Ok(rustix::fs::linkat(
        CWD,
        proc.as_str(),
        CWD,
        to,
        AtFlags::SYMLINK_FOLLOW,
    )?)
}

/// Puts an anonymous file in place of what is at `to`, atomically: linked
/// beside it under [`UPLOAD_PREFIX`] (locked, so no sweep takes it), then
/// renamed over it; the link is removed if the rename fails.
pub fn replace_with(file: &File, to: &Path) -> io::Result<()> {
    let temp = beside(to.parent().unwrap_or(Path::new("/")));
    flock(file, FlockOperation::LockExclusive)?;
    link(file, &temp)?;
    let renamed = fs::rename(&temp, to);
    if renamed.is_err() {
        let _ = fs::remove_file(&temp);
    }
    renamed
}

/// Whether anonymous staging works in `dir`: an anonymous file can be
/// made there and linked (which also needs `/proc` mounted).
pub fn anonymous_works(dir: &Path) -> bool {
    let Ok(Some(file)) = stage_anonymous(CWD, dir) else {
        return false;
    };
    let probe = dir.join(uuid::Uuid::new_v4().to_string());
    let linked = link(&file, &probe).is_ok();
    if linked {
        let _ = fs::remove_file(&probe);
    }
    linked
}

/// Removes the staged files in `dir` that no live writer owns and that are
/// older than [`MIN_AGE`]; with `prefix`, only names starting with it.
/// Returns how many were removed. Best effort: failures are skipped.
pub fn sweep(dir: &Path, prefix: Option<&str>) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if prefix.is_some_and(|p| !name.to_string_lossy().starts_with(p)) {
            continue;
        }
        if is_abandoned(&entry.path()) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether a staged file is old enough and lockable (no live owner). The
/// lock taken to find out is released when the file is closed.
fn is_abandoned(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let old = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age >= MIN_AGE);
    old && file.metadata().is_ok_and(|m| m.is_file())
        && flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes a file look `age` old.
    fn age(path: &Path, age: Duration) {
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn sweep_removes_only_unowned_stale_files() {
        let dir = std::env::temp_dir().join(format!("edgedav-staging-{}", uuid::Uuid::new_v4()));
        let uploads = dir.join("uploads");
        fs::create_dir_all(&dir).unwrap();
        // A crashed writer's file: stale and unlocked (its lock died with it).
        let crashed = stage(&uploads, &dir).unwrap();
        let crashed_path = crashed.path.clone();
        drop(crashed.file);
        age(&crashed_path, MIN_AGE * 2);
        // A live writer's file, just as old but still locked.
        let live = stage(&uploads, &dir).unwrap();
        age(&live.path, MIN_AGE * 2);
        // A fresh unlocked file: maybe a writer between create and lock.
        let fresh = stage(&uploads, &dir).unwrap();
        let fresh_path = fresh.path.clone();
        drop(fresh.file);

        assert_eq!(sweep(&uploads, None), 1);
        assert!(!crashed_path.exists(), "the crashed writer's file is swept");
        assert!(live.path.exists(), "a live writer's file is kept");
        assert!(fresh_path.exists(), "a fresh file is kept");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_staging_directory_is_recreated_on_demand() {
        let dir = std::env::temp_dir().join(format!("edgedav-staging-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        let staged = stage(&dir.join("a/uploads"), &dir).unwrap();
        assert!(staged.path.starts_with(dir.join("a/uploads")));
        fs::remove_dir_all(&dir).unwrap();
    }
}
