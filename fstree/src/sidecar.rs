//! Dead properties in sidecar files: one per resource that has any, in
//! `.edgedav/props/`, named by the hex SHA-256 of the resource's path and
//! holding the path (for humans and clean-up) and its properties as JSON
//! (`edgedav_rules::props::sidecar`). Copy, move and delete carry or remove
//! them member by member; a patch is applied in memory and published with
//! one atomic replacement. Properties of resources deleted behind the
//! server's back are orphaned, not reused (the next resource of that path
//! would inherit them only if created outside the server).

use std::path::{Path, PathBuf};

use edgedav_rules::props::{self, Change, Property, sidecar};

use crate::{Error, Fs, INTERNAL_DIR, Result, Section, Touched, resolve};

/// The sidecar directory.
pub fn dir(fs: &impl Fs) -> PathBuf {
    dir_at(fs.root())
}

/// The sidecar directory of the store rooted at `root`.
pub fn dir_at(root: &Path) -> PathBuf {
    root.join(INTERNAL_DIR).join("props")
}

fn file(fs: &impl Fs, path: &str) -> PathBuf {
    dir(fs).join(sidecar::file_name(path))
}

/// A resource's dead properties (`not-found` if it does not exist).
pub fn get(fs: &impl Fs, path: &str) -> Result<Vec<Property>> {
    fs.node(&resolve(fs, path)?, true)
        .map_err(Error::looked_up)?;
    load(fs, path)
}

/// Applies the changes in order and publishes them at once, durably;
/// patches of one store are serialised so two at once do not lose one
/// another's changes.
pub fn patch(fs: &impl Fs, path: &str, changes: impl IntoIterator<Item = Change>) -> Result<()> {
    fs.node(&resolve(fs, path)?, true)?;
    let mut touched = Touched::default();
    fs.exclusive(Section::Properties, || {
        let mut properties = load(fs, path)?;
        props::apply(&mut properties, changes);
        store(fs, path, properties, &mut touched)
    })?;
    touched.sync(fs)
}

/// Whether any resource has dead properties (any sidecar exists). When that
/// cannot be told, they may (true).
pub fn any(fs: &impl Fs) -> bool {
    fs.has_entries(&dir(fs)).unwrap_or(true)
}

/// Whether a resource may have dead properties: its sidecar exists (one
/// lookup, no read). When that cannot be told, it may (true).
pub fn has(fs: &impl Fs, path: &str) -> bool {
    !matches!(fs.node(&file(fs, path), false), Err(Error::NotFound))
}

fn load(fs: &impl Fs, path: &str) -> Result<Vec<Property>> {
    let bytes = match fs.read_file(&file(fs, path)) {
        Err(Error::NotFound) => return Ok(Vec::new()),
        read => read?,
    };
    sidecar::decode(&bytes).map_err(|e| Error::Io(format!("properties of {path}: {e}")))
}

/// Replaces a resource's properties atomically (none: removes its sidecar).
/// The sidecar directory is `touched`: its new or removed name is durable
/// with the operation's other changes.
fn store(fs: &impl Fs, path: &str, properties: Vec<Property>, touched: &mut Touched) -> Result<()> {
    if properties.is_empty() {
        return remove(fs, path, touched);
    }
    let bytes = sidecar::encode(path, properties);
    let at = file(fs, path);
    match fs.write_file(&at, &bytes) {
        // The directory is made again if it was removed (with the internal
        // directory, say) while the server ran.
        Err(Error::NotFound) => {
            make_dir(fs)?;
            fs.write_file(&at, &bytes)?;
        }
        written => written?,
    }
    touched.dir(&dir(fs));
    Ok(())
}

/// Makes the sidecar directory, and the internal one above it, where they
/// are missing: durably, since sidecars are synced into it.
pub fn make_dir(fs: &impl Fs) -> Result<()> {
    let mut touched = Touched::default();
    for made in [fs.root().join(INTERNAL_DIR), dir(fs)] {
        match fs.create_dir(&made) {
            Ok(()) => touched.created(&made),
            Err(Error::AlreadyExists) => {}
            Err(e) => return Err(e),
        }
    }
    touched.sync(fs)
}

/// Removes a resource's sidecar, if it has one. Durably (the directory is
/// `touched`): a power cut must not hand the properties of a deleted
/// resource to the next one of its path.
pub(crate) fn remove(fs: &impl Fs, path: &str, touched: &mut Touched) -> Result<()> {
    match fs.remove_file(&file(fs, path)) {
        Ok(()) => {
            touched.dir(&dir(fs));
            Ok(())
        }
        Err(Error::NotFound) => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) fn copy(fs: &impl Fs, from: &str, to: &str, touched: &mut Touched) -> Result<()> {
    store(fs, to, load(fs, from)?, touched)
}

pub(crate) fn rename(fs: &impl Fs, from: &str, to: &str, touched: &mut Touched) -> Result<()> {
    copy(fs, from, to, touched)?;
    remove(fs, from, touched)
}
