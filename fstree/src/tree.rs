//! Tree operations: create, delete, copy and move, recursive, carrying dead
//! properties and reporting the members that failed (RFC 4918's
//! multistatus), never touching anything when a precondition fails.
//!
//! Each is durable when it returns, as an upload is at its commit: the
//! directories whose entries it changed are synced ([`Fs::sync_dir`]), copies
//! are synced before they are renamed into place ([`Fs::copy_file`]), so a
//! power cut after the answer neither undoes it nor leaves an empty file
//! where a copy replaced a good one.

use std::path::{Path, PathBuf};

use edgedav_rules::path::{child_path, rebase};
use edgedav_rules::transfer;

use crate::{
    Error, Fs, Kind, MemberError, Result, Touched, check_parent, is_reserved, parent, resolve,
    sidecar,
};

pub fn create_collection(fs: &impl Fs, path: &str) -> Result<()> {
    if path == "/" {
        return Err(Error::AlreadyExists);
    }
    let at = resolve(fs, path)?;
    fs.create_dir(&at).map_err(|e| match e {
        Error::NotFound => Error::ParentNotFound,
        e => e,
    })?;
    let mut touched = Touched::default();
    touched.created(&at);
    touched.sync(fs)
}

/// Deletes a file, or a collection with everything below it, with their
/// properties. A member that cannot be removed is reported and keeps its
/// ancestors.
pub fn delete(fs: &impl Fs, path: &str) -> Result<Vec<MemberError>> {
    if path == "/" {
        return Err(Error::forbidden("the root collection cannot be deleted"));
    }
    let at = resolve(fs, path)?;
    let mut done = Done::new(fs);
    delete_at(fs, &at, path, &mut done)?;
    done.finish(fs)
}

/// What a tree operation has done so far: the members that failed, and the
/// directories to sync before it is answered.
struct Done {
    errors: Vec<MemberError>,
    touched: Touched,
    /// Whether the store holds any dead property: when it holds none (the
    /// usual case) there are none to carry or remove, member by member.
    properties: bool,
}

impl Done {
    fn new(fs: &impl Fs) -> Self {
        Self {
            errors: Vec::new(),
            touched: Touched::default(),
            properties: sidecar::any(fs),
        }
    }

    fn failed(&mut self, path: String, error: Error) {
        self.errors.push(MemberError { path, error });
    }

    fn remove_properties(&mut self, fs: &impl Fs, path: &str) -> Result<()> {
        if !self.properties {
            return Ok(());
        }
        sidecar::remove(fs, path, &mut self.touched)
    }

    fn copy_properties(&mut self, fs: &impl Fs, from: &str, to: &str) -> Result<()> {
        if !self.properties {
            return Ok(());
        }
        sidecar::copy(fs, from, to, &mut self.touched)
    }

    /// Makes what was done durable; the members that failed.
    fn finish(self, fs: &impl Fs) -> Result<Vec<MemberError>> {
        self.touched.sync(fs)?;
        Ok(self.errors)
    }
}

fn delete_at(fs: &impl Fs, at: &Path, path: &str, done: &mut Done) -> Result<()> {
    if fs.node(at, false)?.is_dir() {
        if remove_tree(fs, at, path, done)? {
            done.touched.dir(parent(at));
            done.remove_properties(fs, path)?;
        }
    } else {
        fs.remove_file(at)?;
        done.touched.dir(parent(at));
        done.remove_properties(fs, path)?;
    }
    Ok(())
}

/// Removes directory `at` and everything below it with their properties.
/// Fails only when `at` itself cannot be listed; returns whether it is gone.
fn remove_tree(fs: &impl Fs, at: &Path, path: &str, done: &mut Done) -> Result<bool> {
    let mut complete = true;
    for (name, kind) in fs.read_dir(at)? {
        let member = child_path(path, &name);
        let member_at = at.join(&name);
        let removed = if kind == Kind::Directory {
            remove_tree(fs, &member_at, &member, done)
        } else {
            fs.remove_file(&member_at).map(|()| true)
        }
        .and_then(|removed| {
            if removed {
                // Kept durable only if `at` stays (a member failed).
                done.touched.dir(at);
                if !is_reserved(&name) {
                    done.remove_properties(fs, &member)?;
                }
            }
            Ok(removed)
        });
        match removed {
            Ok(removed) => complete &= removed,
            Err(error) => {
                done.failed(member, error);
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
            done.failed(path.to_owned(), error);
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
    let mut done = Done::new(fs);
    let Some((from, to)) = prepare_transfer(fs, source, destination, overwrite, &mut done)? else {
        return done.finish(fs);
    };
    copy_node(fs, &from, &to, source, destination, recursive, &mut done)?;
    done.finish(fs)
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
    let mut done = Done::new(fs);
    let Some((from, to)) = prepare_transfer(fs, source, destination, overwrite, &mut done)? else {
        return done.finish(fs);
    };
    fs.rename(&from, &to)?;
    done.touched.dir(parent(&from));
    done.touched.dir(parent(&to));
    let is_dir = fs.node(&to, false)?.is_dir();
    if is_dir {
        // Its `..` entry changed with its parent.
        done.touched.dir(&to);
    }
    if !done.properties {
        return done.finish(fs);
    }
    // The content has moved; now its properties follow, member by member.
    let mut moved = vec![(source.to_owned(), destination.to_owned())];
    if is_dir {
        walk(fs, &to, destination, &mut |member| {
            moved.push((rebase(member, destination, source), member.to_owned()));
        })?;
    }
    for (old, new) in moved {
        if let Err(error) = sidecar::rename(fs, &old, &new, &mut done.touched) {
            done.failed(new, error);
        }
    }
    done.finish(fs)
}

/// Checks a copy or move (the overlap rule first, before anything is
/// touched) and returns the source and destination locations, with the
/// destination's parent checked and an existing destination cleared (unless
/// a file replaces a file, atomically by rename, its properties replaced
/// with its content). None when clearing left members, which are in `done`.
fn prepare_transfer(
    fs: &impl Fs,
    source: &str,
    destination: &str,
    overwrite: bool,
    done: &mut Done,
) -> Result<Option<(PathBuf, PathBuf)>> {
    transfer::check(source, destination).map_err(|r| Error::forbidden(r.reason()))?;
    let (from, to) = (resolve(fs, source)?, resolve(fs, destination)?);
    let source_is_dir = fs.node(&from, true)?.is_dir();
    match fs.node(&to, false) {
        Ok(_) if !overwrite => return Err(Error::AlreadyExists),
        Ok(node) if !node.is_dir() && !source_is_dir => {}
        Ok(_) => {
            delete_at(fs, &to, destination, done)?;
            if !done.errors.is_empty() {
                return Ok(None);
            }
        }
        Err(Error::NotFound) => check_parent(fs, &to)?,
        Err(e) => return Err(e),
    }
    Ok(Some((from, to)))
}

/// Copies one resource with its properties and, if `recursive`, its
/// members, touching the directories it changes (`to`'s parent included).
/// Member errors name the destination member (as RFC 4918's multistatus
/// examples do).
fn copy_node(
    fs: &impl Fs,
    from: &Path,
    to: &Path,
    source: &str,
    destination: &str,
    recursive: bool,
    done: &mut Done,
) -> Result<()> {
    if !fs.node(from, true)?.is_dir() {
        fs.copy_file(from, to)?;
        done.touched.dir(parent(to));
        return done.copy_properties(fs, source, destination);
    }
    fs.create_dir(to)?;
    done.touched.created(to);
    done.copy_properties(fs, source, destination)?;
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
                done,
            )
        });
        if let Err(error) = copied {
            done.failed(target, error);
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
