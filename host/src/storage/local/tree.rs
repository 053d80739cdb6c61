//! The tree operations of the local store: recursive delete, copy and
//! rename, carrying dead properties and reporting members that failed.

use super::*;

impl Store {
    pub(super) fn delete(&self, path: &str) -> Result<Vec<MemberError>> {
        if path == "/" {
            return Err(forbidden("the root collection cannot be deleted"));
        }
        let full = self.resolve(path)?;
        let mut errors = Vec::new();
        if fs::symlink_metadata(&full)?.is_dir() {
            if self.remove_tree(&full, path, &mut errors)? {
                self.props.remove(path)?;
            }
        } else {
            fs::remove_file(&full)?;
            self.props.remove(path)?;
        }
        Ok(errors)
    }

    /// Removes `dir` and everything below it with their properties. A member
    /// that cannot be removed is recorded and keeps its ancestors. Fails only
    /// when `dir` itself cannot be listed; returns whether `dir` is gone.
    pub(super) fn remove_tree(
        &self,
        dir: &Path,
        path: &str,
        errors: &mut Vec<MemberError>,
    ) -> io::Result<bool> {
        let mut complete = true;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let member = child_path(path, &name);
            let removed = if entry.file_type()?.is_dir() {
                self.remove_tree(&entry.path(), &member, errors)
            } else {
                fs::remove_file(entry.path()).map(|()| true)
            }
            .and_then(|removed| {
                if removed && !is_reserved(&name) {
                    self.props.remove(&member)?;
                }
                Ok(removed)
            });
            match removed {
                Ok(removed) => complete &= removed,
                Err(e) => {
                    errors.push(MemberError {
                        path: member,
                        error: e.into(),
                    });
                    complete = false;
                }
            }
        }
        if !complete {
            return Ok(false);
        }
        match fs::remove_dir(dir) {
            Ok(()) => Ok(true),
            Err(e) => {
                errors.push(MemberError {
                    path: path.to_owned(),
                    error: e.into(),
                });
                Ok(false)
            }
        }
    }

    /// Checks a copy or move; returns the source and destination locations
    /// with the destination's parent checked and an existing destination
    /// cleared (unless a file replaces a file). Member errors left by clearing
    /// are returned instead.
    pub(super) fn prepare_transfer(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<std::result::Result<(PathBuf, PathBuf), Vec<MemberError>>> {
        check_transfer(source, destination)?;
        let (from, to) = (self.resolve(source)?, self.resolve(destination)?);
        let source_is_dir = fs::metadata(&from)?.is_dir();
        match fs::symlink_metadata(&to) {
            Ok(_) if !overwrite => return Err(Error::AlreadyExists),
            // A file replaces a file atomically by rename; its properties
            // are then replaced along with the content.
            Ok(meta) if !meta.is_dir() && !source_is_dir => {}
            Ok(_) => {
                let errors = self.delete(destination)?;
                if !errors.is_empty() {
                    return Ok(Err(errors));
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                check_parent(to.parent().expect("a non-root path has a parent"))?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Ok((from, to)))
    }

    pub(super) fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> Result<Vec<MemberError>> {
        let (from, to) = match self.prepare_transfer(source, destination, overwrite)? {
            Ok(locations) => locations,
            Err(errors) => return Ok(errors),
        };
        let mut errors = Vec::new();
        self.copy_node(&from, &to, source, destination, recursive, &mut errors)?;
        Ok(errors)
    }

    /// Copies one resource with its properties and, if `recursive`, its
    /// members. Member errors name the destination member (as RFC 4918's
    /// multistatus examples do).
    pub(super) fn copy_node(
        &self,
        from: &Path,
        to: &Path,
        source: &str,
        destination: &str,
        recursive: bool,
        errors: &mut Vec<MemberError>,
    ) -> Result<()> {
        if !fs::metadata(from)?.is_dir() {
            self.copy_file(from, to)?;
            return Ok(self.props.copy(source, destination)?);
        }
        fs::create_dir(to)?;
        self.props.copy(source, destination)?;
        if !recursive {
            return Ok(());
        }
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if is_reserved(&name) {
                continue;
            }
            let target = child_path(destination, &name);
            let copied = self.check_followable(&entry).and_then(|()| {
                self.copy_node(
                    &entry.path(),
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
    pub(super) fn check_followable(&self, entry: &fs::DirEntry) -> Result<()> {
        if !entry.file_type()?.is_symlink() {
            return Ok(());
        }
        self.confine(&entry.path())?;
        if fs::metadata(entry.path())?.is_dir() {
            return Err(forbidden("symbolic links to collections are not followed"));
        }
        Ok(())
    }

    pub(super) fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<Vec<MemberError>> {
        if source == "/" {
            return Err(forbidden("the root collection cannot be moved"));
        }
        let (from, to) = match self.prepare_transfer(source, destination, overwrite)? {
            Ok(locations) => locations,
            Err(errors) => return Ok(errors),
        };
        fs::rename(&from, &to)?;
        // The content has moved; now its properties follow, member by member.
        let mut errors = Vec::new();
        let mut moved = vec![(source.to_owned(), destination.to_owned())];
        if fs::symlink_metadata(&to)?.is_dir() {
            walk(&to, destination, &mut |member| {
                let suffix = &member[destination.len()..];
                moved.push((format!("{source}{suffix}"), member.to_owned()));
            })?;
        }
        for (old, new) in moved {
            if let Err(e) = self.props.rename(&old, &new) {
                errors.push(MemberError {
                    path: new,
                    error: e.into(),
                });
            }
        }
        Ok(errors)
    }

    /// Copies a file's content through a staged file, so a failed copy
    /// leaves nothing at the destination.
    pub(super) fn copy_file(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut staged = staging::stage(&self.uploads, to.parent().expect("a file has a parent"))?;
        let copied = File::open(from)
            .and_then(|mut source| io::copy(&mut source, &mut staged.file))
            .and_then(|_| fs::rename(&staged.path, to));
        if copied.is_err() {
            let _ = fs::remove_file(&staged.path);
        }
        copied
    }
}

/// Visits the contract path of every member below `dir` (not following
/// symlinks, skipping reserved and non-UTF-8 names).
fn walk(dir: &Path, path: &str, visit: &mut impl FnMut(&str)) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if is_reserved(&name) {
            continue;
        }
        let member = child_path(path, &name);
        visit(&member);
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &member, visit)?;
        }
    }
    Ok(())
}
