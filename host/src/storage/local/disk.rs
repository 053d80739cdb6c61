//! The filesystem primitives of [`edgedav_fstree::Fs`] on Linux, for the
//! tree algorithms shared with the wasi-filesystem adapter. Locations are
//! absolute paths below the canonical root, looked up relative to the
//! root's descriptor (a walk of the path inside the store only); the fast
//! paths live here: confinement proved by one `openat2`, listings that
//! `statx` each member relative to the open collection,
//! `renameat2(RENAME_NOREPLACE)`, copies in the kernel (`copy_file_range`,
//! reflinks where the filesystem has them), copies and property documents
//! staged in the store's locked staging directory.

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use edgedav_fstree::{self as fstree, Fs, Kind, Node, Section};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, StatxFlags, statx};
use rustix::io::Errno;

use super::metadata::metadata;
use super::{Metadata, Store, lock, staging};

type Result<T> = fstree::Result<T>;

impl Store {
    /// Opens the location of `path` with `flags` in one system call that
    /// proves its confinement too: `openat2` below the root's descriptor,
    /// refusing every symlink, so what it opens is inside the store (what
    /// [`Fs::confine`] proves with a call of its own before a second walk
    /// opens the path). `None` when that call cannot tell (a symlink on the
    /// way, a kernel without `openat2`): the caller then resolves and
    /// confines the general way.
    pub(super) fn open_beneath(&self, path: &str, flags: OFlags) -> Result<Option<File>> {
        use rustix::fs::{ResolveFlags, openat2};
        let relative = match fstree::below_root(path)? {
            "" => ".",
            below => below,
        };
        match openat2(
            &self.root_fd,
            relative,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH,
        ) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::LOOP | Errno::XDEV | Errno::NOSYS | Errno::AGAIN) => Ok(None),
            Err(e) => Err(fstree::Error::from(io::Error::from(e)).looked_up()),
        }
    }

    /// The collection at contract path `path` and its location, open for
    /// listing: by the one `openat2` that proves confinement too, else
    /// resolved and confined the general way.
    fn open_collection(&self, path: &str) -> Result<(PathBuf, OwnedFd)> {
        if let Some(dir) = self.open_beneath(path, OFlags::RDONLY | OFlags::DIRECTORY)? {
            return Ok((fstree::locate(self, path)?, dir.into()));
        }
        let at = fstree::resolve(self, path)?;
        let fd = self.open_dir(&at).map_err(fstree::Error::looked_up)?;
        Ok((at, fd))
    }

    /// A location as a directory descriptor and a path relative to it: the
    /// root's descriptor and the rest of the path for a location below the
    /// root (a lookup then walks only the path inside the store), else the
    /// working directory and the location itself.
    pub(super) fn anchored<'a>(&'a self, at: &'a Path) -> (BorrowedFd<'a>, &'a Path) {
        match at.strip_prefix(&self.root) {
            Ok(inside) if inside.as_os_str().is_empty() => (self.root_fd.as_fd(), Path::new(".")),
            Ok(inside) => (self.root_fd.as_fd(), inside),
            Err(_) => (CWD, at),
        }
    }

    /// Opens a directory for reading its entries.
    fn open_dir(&self, at: &Path) -> Result<OwnedFd> {
        let (dir, path) = self.anchored(at);
        rustix::fs::openat(
            dir,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)
    }
}

impl Fs for Store {
    type Meta = Metadata;
    type Listing = Listing;

    fn root(&self) -> &Path {
        &self.root
    }

    /// The root is canonical and locations are built from checked segments,
    /// so only a symlink can lead elsewhere. The usual case, no symlink on
    /// the way, is proved by one `openat2(RESOLVE_NO_SYMLINKS)` of the
    /// longest existing prefix; only when that meets a symlink (or the
    /// kernel lacks `openat2`) is the prefix canonicalised, a `readlink` per
    /// segment.
    fn confine(&self, at: &Path) -> Result<()> {
        use rustix::fs::{ResolveFlags, openat2};
        let mut probe = at;
        loop {
            let (dir, path) = self.anchored(probe);
            match openat2(
                dir,
                path,
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
                    Err(fstree::Error::forbidden("path leads outside the store"))
                };
            }
            match probe.parent() {
                Some(parent) if parent.starts_with(&self.root) => probe = parent,
                _ => return Ok(()),
            }
        }
    }

    fn node(&self, at: &Path, follow: bool) -> Result<Node> {
        let flags = if follow {
            AtFlags::empty()
        } else {
            AtFlags::SYMLINK_NOFOLLOW
        };
        let (dir, path) = self.anchored(at);
        let stat = statx(dir, path, flags, StatxFlags::TYPE | StatxFlags::SIZE).map_err(errno)?;
        Ok(Node {
            kind: kind(FileType::from_raw_mode(stat.stx_mode.into())),
            size: stat.stx_size,
        })
    }

    /// Opening the collection also tells a file (`ENOTDIR`: not a
    /// collection) from a missing path; its members are then looked up
    /// relative to it, one path segment each instead of a walk from the root.
    fn list(&self, at: &Path) -> Result<(Listing, Vec<String>)> {
        let fd = self.open_dir(at)?;
        listing(at.to_path_buf(), fd)
    }

    /// One `openat2` both opens the collection and proves it is confined
    /// (see [`Store::open_beneath`]): two system calls fewer per listing
    /// than [`Fs::confine`] then [`Fs::list`], which remain the way when
    /// that call cannot tell.
    fn list_path(&self, path: &str) -> Result<(PathBuf, Listing, Vec<String>)> {
        let (at, fd) = self.open_collection(path)?;
        let (listing, names) = listing(at.clone(), fd)?;
        Ok((at, listing, names))
    }

    fn open_listing(&self, path: &str) -> Result<Listing> {
        let (dir, fd) = self.open_collection(path)?;
        Ok(Listing { dir, fd })
    }

    fn snapshots(&self) -> Option<&fstree::snapshot::Snapshots> {
        Some(&self.snapshots)
    }

    fn member(&self, listing: &Listing, name: &str) -> Option<Metadata> {
        let stat = statx(
            &listing.fd,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::BASIC_STATS | StatxFlags::BTIME,
        )
        .ok()?;
        if FileType::from_raw_mode(stat.stx_mode.into()) != FileType::Symlink {
            return Some(metadata(&stat));
        }
        let member = listing.dir.join(name);
        self.confine(&member).ok()?;
        fs::metadata(member).ok().map(|meta| metadata(&meta))
    }

    /// Names that are not UTF-8 cannot be contract paths: skipped (a
    /// directory holding one cannot be deleted and reports so).
    fn read_dir(&self, at: &Path) -> Result<Vec<(String, Kind)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(at)? {
            let entry = entry?;
            if let Ok(name) = entry.file_name().into_string() {
                let kind = entry.file_type()?;
                out.push((name, file_kind(&kind)));
            }
        }
        Ok(out)
    }

    fn has_entries(&self, at: &Path) -> Result<bool> {
        for entry in rustix::fs::Dir::new(self.open_dir(at)?).map_err(errno)? {
            let name = entry.map_err(errno)?;
            let name = name.file_name().to_bytes();
            if !is_self_or_parent(name) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn create_dir(&self, at: &Path) -> Result<()> {
        Ok(fs::create_dir(at)?)
    }

    fn remove_file(&self, at: &Path) -> Result<()> {
        Ok(fs::remove_file(at)?)
    }

    fn remove_dir(&self, at: &Path) -> Result<()> {
        Ok(fs::remove_dir(at)?)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        Ok(fs::rename(from, to)?)
    }

    /// `renameat2` with `RENAME_NOREPLACE`, or a hard link then an unlink
    /// where the filesystem does not support that flag.
    fn rename_noreplace(&self, from: &Path, to: &Path) -> Result<()> {
        use rustix::fs::{RenameFlags, renameat_with};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                fs::hard_link(from, to)?;
                Ok(fs::remove_file(from)?)
            }
            other => other.map_err(errno),
        }
    }

    fn copy_file(&self, from: &Path, to: &Path) -> Result<()> {
        let mut staged = staging::stage(&self.uploads, super::parent(to))?;
        let copied = File::open(from)
            .and_then(|mut source| io::copy(&mut source, &mut staged.file))
            .and_then(|_| staged.file.sync_all())
            .and_then(|()| fs::rename(&staged.path, to));
        if copied.is_err() {
            let _ = fs::remove_file(&staged.path);
        }
        Ok(copied?)
    }

    fn patch_file(&self, target: &Path, piece: &Path, offset: u64) -> Result<()> {
        let mut copy = staging::stage(&self.uploads, super::parent(target))?;
        let applied = (|| {
            io::copy(&mut File::open(target)?, &mut copy.file)?;
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

    /// Files staged beside their target (see [`staging`]), or left by older
    /// versions: the ones no live writer holds are swept.
    fn sweep_staged(&self, dir: &Path, _names: &[String]) {
        staging::sweep(dir, Some(fstree::UPLOAD_PREFIX));
    }

    fn read_file(&self, at: &Path) -> Result<Vec<u8>> {
        let (dir, path) = self.anchored(at);
        let fd = rustix::fs::openat(dir, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(errno)?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut File::from(fd), &mut bytes)?;
        Ok(bytes)
    }

    fn write_file(&self, at: &Path, bytes: &[u8]) -> Result<()> {
        let mut staged = staging::stage(&self.uploads, super::parent(at))?;
        let written = staged
            .file
            .write_all(bytes)
            .and_then(|()| staged.file.sync_all())
            .and_then(|()| fs::rename(&staged.path, at));
        if written.is_err() {
            let _ = fs::remove_file(&staged.path);
        }
        Ok(written?)
    }

    fn sync_dir(&self, at: &Path) -> Result<()> {
        rustix::fs::fsync(self.open_dir(at)?).map_err(errno)
    }

    /// Serialised within the process: the store belongs to one server.
    fn exclusive<T>(&self, section: Section, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let _serial = lock(match section {
            Section::Properties => &self.patching,
            Section::Update => &self.updating,
        });
        work()
    }
}

/// Reads the names in the open collection `fd` (at `dir`) through the
/// descriptor, not by path again, into one buffer: nothing is allocated per
/// entry but the name kept.
fn listing(dir: PathBuf, fd: OwnedFd) -> Result<(Listing, Vec<String>)> {
    let mut buf = Vec::with_capacity(LISTING_BUFFER);
    let mut entries = rustix::fs::RawDir::new(&fd, buf.spare_capacity_mut());
    let mut names = Vec::new();
    while let Some(entry) = entries.next() {
        let entry = entry.map_err(errno)?;
        let name = entry.file_name().to_bytes();
        if is_self_or_parent(name) {
            continue;
        }
        // Names that are not UTF-8 cannot be contract paths.
        if let Ok(name) = std::str::from_utf8(name) {
            names.push(name.to_owned());
        }
    }
    Ok((Listing { dir, fd }, names))
}

/// A collection open for listing (see [`Store::list`]).
pub(super) struct Listing {
    dir: PathBuf,
    /// The open collection, read to its end.
    fd: OwnedFd,
}

/// Bytes of directory entries read per `getdents64` call (about 1,000 names
/// of a dozen characters).
const LISTING_BUFFER: usize = 32 * 1024;

/// The entries every directory lists for itself and its parent.
fn is_self_or_parent(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

fn kind(file_type: FileType) -> Kind {
    match file_type {
        FileType::Directory => Kind::Directory,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::File,
    }
}

fn file_kind(file_type: &fs::FileType) -> Kind {
    if file_type.is_dir() {
        Kind::Directory
    } else if file_type.is_symlink() {
        Kind::Symlink
    } else {
        Kind::File
    }
}

fn errno(e: Errno) -> fstree::Error {
    io::Error::from(e).into()
}
