//! Tree operations: create, delete, copy and move, recursive, carrying dead
//! properties and reporting the members that failed (RFC 4918's
//! multistatus), never touching anything when a precondition fails.

use std::path::{Path, PathBuf};

use edgedav_rules::path::{child_path, rebase};
use edgedav_rules::transfer;

use crate::{Error, Fs, Kind, MemberError, Result, check_parent, is_reserved, resolve, sidecar};

pub fn create_collection(fs: &impl Fs, path: &str) -> Result<()> {
    if path == "/" {
        return Err(Error::AlreadyExists);
    }
    fs.create_dir(&resolve(fs, path)?).map_err(|e| match e {
        Error::NotFound => Error::ParentNotFound,
        e => e,
    })
}

/// Deletes a file, or a collection with everything below it, with their
/// properties. A member that cannot be removed is reported and keeps its
/// ancestors.
pub fn delete(fs: &impl Fs, path: &str) -> Result<Vec<MemberError>> {
    if path == "/" {
        return Err(Error::forbidden("the root collection cannot be deleted"));
    }
    let at = resolve(fs, path)?;
    let mut errors = Vec::new();
    delete_at(fs, &at, path, &mut errors)?;
    Ok(errors)
}

fn delete_at(fs: &impl Fs, at: &Path, path: &str, errors: &mut Vec<MemberError>) -> Result<()> {
    if fs.node(at, false)?.is_dir() {
        if remove_tree(fs, at, path, errors)? {
            sidecar::remove(fs, path)?;
        }
    } else {
        fs.remove_file(at)?;
        sidecar::remove(fs, path)?;
    }
    Ok(())
}

/// Removes directory `at` and everything below it with their properties.
/// Fails only when `at` itself cannot be listed; returns whether it is gone.
fn remove_tree(fs: &impl Fs, at: &Path, path: &str, errors: &mut Vec<MemberError>) -> Result<bool> {
    let mut complete = true;
    for (name, kind) in fs.read_dir(at)? {
        let member = child_path(path, &name);
        let member_at = at.join(&name);
        let removed = if kind == Kind::Directory {
            remove_tree(fs, &member_at, &member, errors)
        } else {
            fs.remove_file(&member_at).map(|()| true)
        }
        .and_then(|removed| {
            if removed && !is_reserved(&name) {
                sidecar::remove(fs, &member)?;
            }
            Ok(removed)
        });
        match removed {
            Ok(removed) => complete &= removed,
            Err(error) => {
                errors.push(MemberError {
                    path: member,
                    error,
                });
                complete = false;
            }
        }
    }
    if !complete {
        return Ok(false);
    }
    match fs.remove_dir(at) {
        Ok(()) => Ok(true),
        Err(error) => {
            errors.push(MemberError {
                path: path.to_owned(),
                error,
            });
            Ok(false)
        }
    }
}

/// Copies a resource with its properties and, if `recursive`, its members.
pub fn copy(
    fs: &impl Fs,
    source: &str,
    destination: &str,
    recursive: bool,
    overwrite: bool,
) -> Result<Vec<MemberError>> {
    let (from, to) = match prepare_transfer(fs, source, destination, overwrite)? {
        Ok(locations) => locations,
        Err(errors) => return Ok(errors),
    };
    let mut errors = Vec::new();
    copy_node(fs, &from, &to, source, destination, recursive, &mut errors)?;
    Ok(errors)
}

/// Moves a resource with everything below it and their properties.
pub fn rename(
    fs: &impl Fs,
    source: &str,
    destination: &str,
    overwrite: bool,
) -> Result<Vec<MemberError>> {
    if source == "/" {
        return Err(Error::forbidden("the root collection cannot be moved"));
    }
    let (from, to) = match prepare_transfer(fs, source, destination, overwrite)? {
        Ok(locations) => locations,
        Err(errors) => return Ok(errors),
    };
    fs.rename(&from, &to)?;
    // The content has moved; now its properties follow, member by member.
    let mut moved = vec![(source.to_owned(), destination.to_owned())];
    if fs.node(&to, false)?.is_dir() {
        walk(fs, &to, destination, &mut |member| {
            moved.push((rebase(member, destination, source), member.to_owned()));
        })?;
    }
    let mut errors = Vec::new();
    for (old, new) in moved {
        if let Err(error) = sidecar::rename(fs, &old, &new) {
            errors.push(MemberError { path: new, error });
        }
    }
    Ok(errors)
}

/// Checks a copy or move (the overlap rule first, before anything is
/// touched) and returns the source and destination locations, with the
/// destination's parent checked and an existing destination cleared (unless
/// a file replaces a file, atomically by rename, its properties replaced
/// with its content). Member errors left by clearing are returned instead.
#[allow(clippy::type_complexity)]
fn prepare_transfer(
    fs: &impl Fs,
    source: &str,
    destination: &str,
    overwrite: bool,
) -> Result<Result<(PathBuf, PathBuf), Vec<MemberError>>> {
    transfer::check(source, destination).map_err(|r| Error::forbidden(r.reason()))?;
    let (from, to) = (resolve(fs, source)?, resolve(fs, destination)?);
    let source_is_dir = fs.node(&from, true)?.is_dir();
    match fs.node(&to, false) {
        Ok(_) if !overwrite => return Err(Error::AlreadyExists),
        Ok(node) if !node.is_dir() && !source_is_dir => {}
        Ok(_) => {
            let mut errors = Vec::new();
            delete_at(fs, &to, destination, &mut errors)?;
            if !errors.is_empty() {
                return Ok(Err(errors));
            }
        }
        Err(Error::NotFound) => check_parent(fs, &to)?,
        Err(e) => return Err(e),
    }
    Ok(Ok((from, to)))
}

/// Copies one resource with its properties and, if `recursive`, its
/// members. Member errors name the destination member (as RFC 4918's
/// multistatus examples do).
fn copy_node(
    fs: &impl Fs,
    from: &Path,
    to: &Path,
    source: &str,
    destination: &str,
    recursive: bool,
    errors: &mut Vec<MemberError>,
) -> Result<()> {
    if !fs.node(from, true)?.is_dir() {
        fs.copy_file(from, to)?;
        return sidecar::copy(fs, source, destination);
    }
    fs.create_dir(to)?;
    sidecar::copy(fs, source, destination)?;
    if !recursive {
        return Ok(());
    }
    for (name, kind) in fs.read_dir(from)? {
        if is_reserved(&name) {
            continue;
        }
        let target = child_path(destination, &name);
        let member_from = from.join(&name);
        let copied = followable(fs, &member_from, kind).and_then(|()| {
            copy_node(
                fs,
                &member_from,
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
fn followable(fs: &impl Fs, at: &Path, kind: Kind) -> Result<()> {
    if kind != Kind::Symlink {
        return Ok(());
    }
    fs.confine(at)?;
    if fs.node(at, true)?.is_dir() {
        return Err(Error::forbidden(
            "symbolic links to collections are not followed",
        ));
    }
    Ok(())
}

/// Visits the contract path of every member below directory `at` (not
/// following symlinks, skipping reserved names).
fn walk(fs: &impl Fs, at: &Path, path: &str, visit: &mut impl FnMut(&str)) -> Result<()> {
    for (name, kind) in fs.read_dir(at)? {
        if is_reserved(&name) {
            continue;
        }
        let member = child_path(path, &name);
        visit(&member);
        if kind == Kind::Directory {
            walk(fs, &at.join(&name), &member, visit)?;
        }
    }
    Ok(())
}
