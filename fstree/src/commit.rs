//! Writing content: what a write may do, its atomic publication, and
//! partial updates. The binding stages the content (where, and how a
//! crashed writer's file is found, is its business); these rules decide
//! what the staged file becomes.

use std::path::{Path, PathBuf};

use crate::{Error, Fs, Result, Section, check_parent, resolve};

/// Checks a write of `path` before anything is staged and returns the
/// target's location. A `create_only` write fails when anything is there;
/// a partial one (`offset`) needs an existing file at least that long;
/// the parent must be an existing collection.
pub fn check_write(
    fs: &impl Fs,
    path: &str,
    offset: Option<u64>,
    create_only: bool,
) -> Result<PathBuf> {
    if path == "/" {
        return Err(Error::IsACollection);
    }
    let target = resolve(fs, path)?;
    match fs.node(&target, true) {
        Ok(_) if create_only => return Err(Error::AlreadyExists),
        Ok(node) if node.is_dir() => return Err(Error::IsACollection),
        Ok(node) if offset.is_some_and(|offset| offset > node.size) => {
            return Err(beyond_the_end());
        }
        Err(Error::NotFound) if offset.is_some() => return Err(Error::NotFound),
        Err(Error::NotFound) | Ok(_) => {}
        Err(e) => return Err(e),
    }
    check_parent(fs, &target)?;
    Ok(target)
}

/// Moves a staged file to `target`; returns whether that created the file
/// (the rule is [`publish_with`]'s).
pub fn publish(fs: &impl Fs, staged: &Path, target: &Path, create_only: bool) -> Result<bool> {
    publish_with(
        || fs.rename_noreplace(staged, target),
        || fs.rename(staged, target),
        create_only,
    )
}

/// Publishes staged content with `place`, which puts it at the target
/// only if nothing is there (else `already-exists`), or `replace`, which
/// puts it over what is there; returns whether that created the file.
/// Placing decides it atomically: so of concurrent creations exactly one
/// reports `created`, and a `create_only` commit fails with
/// `already-exists` having changed nothing; any other then replaces what
/// is there. A binding whose staged content has no name of its own (an
/// anonymous file, linked into place) publishes through this.
pub fn publish_with(
    place: impl FnOnce() -> Result<()>,
    replace: impl FnOnce() -> Result<()>,
    create_only: bool,
) -> Result<bool> {
    let gone = |e| match e {
        // The collection went away meanwhile (and took the upload with it).
        Error::NotFound => Error::ParentNotFound,
        e => e,
    };
    match place() {
        Ok(()) => return Ok(true),
        Err(Error::AlreadyExists) if create_only => return Err(Error::AlreadyExists),
        Err(Error::AlreadyExists) => {}
        Err(e) => return Err(gone(e)),
    }
    replace().map_err(gone)?;
    Ok(false)
}

/// Applies the staged `piece` at `offset` of file `target` (see
/// [`Fs::patch_file`]). Partial updates of a store are serialised, so two
/// pieces applied at once do not lose one another.
pub fn apply_piece(fs: &impl Fs, piece: &Path, target: &Path, offset: u64) -> Result<()> {
    fs.exclusive(Section::Update, || {
        let node = fs.node(target, true)?;
        if node.is_dir() {
            return Err(Error::IsACollection);
        }
        if offset > node.size {
            return Err(beyond_the_end());
        }
        fs.patch_file(target, piece, offset)
    })
}

fn beyond_the_end() -> Error {
    Error::Conflict("offset beyond the end of the file".into())
}
