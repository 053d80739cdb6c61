//! edgedav's storage contract (`wit/dav.wit`) on a tree of plain files and
//! directories, written once.
//!
//! Two bindings keep a store this way and share this crate instead of
//! keeping copies: the native host's local-disk backend
//! (`host/src/storage/local`, Linux system calls with their fast paths) and
//! the wasi-filesystem adapter (`examples/fs-adapter`, a preopened
//! descriptor). Each implements the small synchronous [`Fs`] trait, the
//! primitives a filesystem offers; the algorithms over them live here:
//!
//! * [`tree`]: create, delete, copy and move, recursive, reporting the
//!   members that failed, carrying dead properties;
//! * [`listing`]: pages of a collection's members, and [`snapshot`] the
//!   names of big ones kept between pages;
//! * [`commit`]: what a write may do, publication that decides atomically
//!   whether it created the file, and partial updates;
//! * [`sidecar`]: dead properties in sidecar files;
//! * [`contract_conversions!`]: the conversions to a binding's generated
//!   types, written once.
//!
//! **The layout** is one, so a directory served by one binding can be served
//! by the other: file content in plain files, collections as directories,
//! the internal directory [`INTERNAL_DIR`] at the root (dead properties in
//! `.edgedav/props/<sha256(path)>`, see [`sidecar`]), files staged beside
//! their target under [`UPLOAD_PREFIX`]. Both names are refused as path
//! segments and never listed.
//!
//! **Paths** are contract paths (`/a/b`); [`resolve`] maps one to a location
//! in the store, a [`Path`] below [`Fs::root`], refusing reserved names and
//! anything not normalised, and asks the binding to confine it (symlinks
//! must not lead out of the store).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The shared rules this crate applies (re-exported for [`contract_conversions!`]).
pub use edgedav_rules as rules;

pub mod commit;
mod contract;
pub mod listing;
pub mod sidecar;
pub mod snapshot;
pub mod tree;

mod error;
pub use error::{Error, MemberError};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Name of the internal directory at the root.
pub const INTERNAL_DIR: &str = ".edgedav";
/// Prefix of files staged beside their target (reserved in paths).
pub const UPLOAD_PREFIX: &str = ".edgedav-upload-";

/// Whether a name belongs to the store, not to its users.
pub fn is_reserved(name: &str) -> bool {
    name == INTERNAL_DIR || name.starts_with(UPLOAD_PREFIX)
}

/// What a directory entry or a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    /// Only from lookups that do not follow symlinks.
    Symlink,
}

/// A lookup's answer: the kind of node and, for files, its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub size: u64,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Directory
    }
}

/// The filesystem primitives a binding offers; locations are paths below
/// [`Fs::root`] built by [`resolve`]. Errors are the contract's
/// ([`Error`]), mapped by the binding from its own.
pub trait Fs {
    /// The binding's metadata of a resource, as a listing reports it.
    type Meta;
    /// A collection opened by [`Fs::list`].
    type Listing;

    /// Where contract path `/` lives.
    fn root(&self) -> &Path;
    /// Refuses a location whose existing part leads, through symlinks, out
    /// of the store or into its internal directory. A binding whose runtime
    /// already confines every lookup (wasi-filesystem) has nothing to do.
    fn confine(&self, at: &Path) -> Result<()>;
    /// What is at a location, following a final symlink if `follow`.
    fn node(&self, at: &Path, follow: bool) -> Result<Node>;
    /// Opens a collection for listing (`not-a-collection` for a file) and
    /// reads the names in it, in no order (not `.` or `..`; reserved names
    /// included).
    fn list(&self, at: &Path) -> Result<(Self::Listing, Vec<String>)>;
    /// [`Fs::list`] of the collection at contract path `path`, located and
    /// confined as [`resolve`] does it. A binding that proves confinement
    /// in the call that opens the collection (the local store's `openat2`
    /// below the root) overrides it, saving [`Fs::confine`]'s lookups on
    /// every listing.
    fn list_path(&self, path: &str) -> Result<(PathBuf, Self::Listing, Vec<String>)>
    where
        Self: Sized,
    {
        list_resolved(self, path)
    }
    /// [`Fs::list_path`] without reading the names: for the later pages of
    /// a listing whose names are kept ([`Fs::snapshots`]).
    fn open_listing(&self, path: &str) -> Result<Self::Listing>
    where
        Self: Sized,
    {
        self.list_path(path).map(|(_, listing, _)| listing)
    }
    /// Where the binding keeps the names of big collections between the
    /// pages of a listing; none keeps none (every page reads them again).
    fn snapshots(&self) -> Option<&snapshot::Snapshots> {
        None
    }
    /// The metadata of member `name` of a listed collection; none when it
    /// vanished meanwhile or is a symlink leading out of the store.
    fn member(&self, listing: &Self::Listing, name: &str) -> Option<Self::Meta>;
    /// The entries of a directory (not `.` or `..`; reserved names
    /// included), with kinds that do not follow symlinks.
    fn read_dir(&self, at: &Path) -> Result<Vec<(String, Kind)>>;
    /// Whether a directory has any entry (reading no more than it must).
    fn has_entries(&self, at: &Path) -> Result<bool>;
    fn create_dir(&self, at: &Path) -> Result<()>;
    fn remove_file(&self, at: &Path) -> Result<()>;
    fn remove_dir(&self, at: &Path) -> Result<()>;
    /// Renames, replacing a file (or an empty directory) at `to`.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// Renames only if nothing is at `to`: otherwise `already-exists`,
    /// nothing changed, decided atomically where the filesystem can.
    fn rename_noreplace(&self, from: &Path, to: &Path) -> Result<()>;
    /// Copies a file's content to `to` through a staged file, synced to
    /// disk before it is renamed into place: a failed copy leaves nothing
    /// at `to`, a crash the old file or the whole copy.
    fn copy_file(&self, from: &Path, to: &Path) -> Result<()>;
    /// Replaces file `target` with a staged copy of it that has file
    /// `piece` written over it at `offset`, synced to disk before the
    /// rename: a crash leaves the old or the new file.
    fn patch_file(&self, target: &Path, piece: &Path, offset: u64) -> Result<()>;
    /// Removes those of the staged files `names` in `dir` that their writers
    /// left behind (best effort; the binding knows how to tell).
    fn sweep_staged(&self, dir: &Path, names: &[String]);
    /// The whole content of a small internal file.
    fn read_file(&self, at: &Path) -> Result<Vec<u8>>;
    /// Replaces a small internal file atomically (staged, synced to disk,
    /// then renamed).
    fn write_file(&self, at: &Path, bytes: &[u8]) -> Result<()>;
    /// Makes directory `at`'s entries durable (fsync), so that a power cut
    /// after the server answered cannot undo a name it created, replaced
    /// or removed there.
    fn sync_dir(&self, at: &Path) -> Result<()>;
    /// Runs `work` while no other work of the same section runs on this
    /// store (in this instance, and in others where the binding shares the
    /// store between them).
    fn exclusive<T>(&self, section: Section, work: impl FnOnce() -> Result<T>) -> Result<T>;
}

/// The read-modify-write cycles a store serialises (see [`Fs::exclusive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Property patches ([`sidecar::patch`]).
    Properties,
    /// Partial updates of file content ([`commit::apply_piece`]).
    Update,
}

/// The segments of a contract path below the store's root, or why the path
/// is refused (malformed, or naming a reserved file).
pub fn segments(path: &str) -> Result<Vec<&str>> {
    rules::path::segments(path, is_reserved).map_err(Error::forbidden)
}

/// A contract path below the store's root as one relative path (`a/b`,
/// empty for the root), checked as [`segments`] checks it.
pub fn below_root(path: &str) -> Result<&str> {
    rules::path::below_root(path, is_reserved).map_err(Error::forbidden)
}

/// Maps a contract path to its location in the store, or refuses it.
pub fn resolve(fs: &impl Fs, path: &str) -> Result<PathBuf> {
    let at = locate(fs, path)?;
    fs.confine(&at)?;
    Ok(at)
}

/// A contract path's location in the store, not yet confined: for a
/// binding that proves confinement in the call that uses it.
pub fn locate(fs: &impl Fs, path: &str) -> Result<PathBuf> {
    let mut at = fs.root().to_path_buf();
    at.extend(segments(path)?);
    Ok(at)
}

/// [`Fs::list_path`] the general way: [`resolve`], then [`Fs::list`].
pub fn list_resolved<F: Fs>(fs: &F, path: &str) -> Result<(PathBuf, F::Listing, Vec<String>)> {
    let at = resolve(fs, path)?;
    let (listing, names) = fs.list(&at).map_err(Error::looked_up)?;
    Ok((at, listing, names))
}

/// The parent location of a non-root location.
fn parent(at: &Path) -> &Path {
    at.parent().expect("a location below the root has a parent")
}

/// The directories whose entries an operation changed, each synced once
/// ([`Fs::sync_dir`]) when the operation ends, before it is answered: a
/// recursive one then syncs a directory once, not once per member.
#[derive(Default)]
pub(crate) struct Touched(BTreeSet<PathBuf>);

impl Touched {
    pub(crate) fn dir(&mut self, at: &Path) {
        if !self.0.contains(at) {
            self.0.insert(at.to_owned());
        }
    }

    /// A new directory: its own entries (`.`, `..`, what was put in it)
    /// and its name in its parent.
    pub(crate) fn created(&mut self, at: &Path) {
        self.dir(at);
        self.dir(parent(at));
    }

    /// Makes the changes durable. A directory removed since it was touched
    /// has nothing left to sync.
    pub(crate) fn sync(self, fs: &impl Fs) -> Result<()> {
        self.0.iter().try_for_each(|at| match fs.sync_dir(at) {
            Err(Error::NotFound) => Ok(()),
            synced => synced,
        })
    }
}

/// The parent of a new resource must be an existing collection.
pub fn check_parent(fs: &impl Fs, at: &Path) -> Result<()> {
    match fs.node(parent(at), true) {
        Ok(node) if node.is_dir() => Ok(()),
        Ok(_) => Err(Error::NotACollection),
        Err(Error::NotFound) => Err(Error::ParentNotFound),
        Err(e) => Err(e),
    }
}
