//! The `edgedav:dav/storage` exports and the tree operations behind them.

use super::*;

impl st::Guest for Component {
    type Reader = FsReader;
    type Writer = FsWriter;

    fn stat(path: String) -> Result<Metadata, Error> {
        let s = store()?;
        s.metadata(&rel(&path)?).map_err(lookup_err)
    }

    fn list_members(path: String, cursor: Option<String>, limit: u32) -> Result<Page, Error> {
        let s = store()?;
        let dir = rel(&path)?;
        if s.stat(&dir, FOLLOW).map_err(lookup_err)?.type_ != DescriptorType::Directory {
            return Err(Error::NotACollection);
        }
        let mut names: Vec<String> = s
            .read_dir(&dir)
            .map_err(fs_err)?
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| {
                if name.starts_with(UPLOAD_PREFIX) {
                    s.remove_if_stale(&rel_child(&dir, name));
                }
                !is_reserved(name)
            })
            .filter(|name| cursor.as_ref().is_none_or(|after| name > after))
            .collect();
        names.sort_unstable();
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let mut entries = Vec::new();
        let mut names = names.into_iter().peekable();
        while entries.len() < limit {
            let Some(name) = names.next() else { break };
            // Members can vanish meanwhile, and symlinks may lead out of the
            // store (the runtime refuses to follow those): skip them.
            if let Ok(metadata) = s.metadata(&rel_child(&dir, &name)) {
                let has_properties = s.has_properties(&rules::path::child_path(&path, &name));
                entries.push(Entry {
                    name,
                    metadata,
                    has_properties,
                });
            }
        }
        let next = match names.peek() {
            Some(_) => entries.last().map(|e| e.name.clone()),
            None => None,
        };
        Ok(Page { entries, next })
    }

    fn open_read(path: String, offset: u64, length: Option<u64>) -> Result<st::Reader, Error> {
        let s = store()?;
        let fd = s
            .open(&rel(&path)?, OpenFlags::empty(), DescriptorFlags::READ)
            .map_err(lookup_err)?;
        if fd.get_type().map_err(fs_err)? == DescriptorType::Directory {
            return Err(Error::IsACollection);
        }
        Ok(st::Reader::new(FsReader {
            fd,
            position: RefCell::new(offset),
            remaining: RefCell::new(length.unwrap_or(u64::MAX)),
        }))
    }

    /// The descriptor's own stream when the range runs to the end of the
    /// file (a whole GET): wasi:filesystem streams run to the end, and the
    /// contract's stream closes at the end of its range. Other ranges are
    /// declined, and the handler reads them through `open-read`.
    fn open_read_stream(
        path: String,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Option<InputStream>, Error> {
        let s = store()?;
        let fd = s
            .open(&rel(&path)?, OpenFlags::empty(), DescriptorFlags::READ)
            .map_err(lookup_err)?;
        let stat = fd.stat().map_err(fs_err)?;
        if stat.type_ == DescriptorType::Directory {
            return Err(Error::IsACollection);
        }
        if length.is_some_and(|n| offset.saturating_add(n) < stat.size) {
            return Ok(None);
        }
        Ok(Some(fd.read_via_stream(offset).map_err(fs_err)?))
    }

    fn open_write(path: String, options: WriteOptions) -> Result<st::Writer, Error> {
        if path == "/" {
            return Err(Error::IsACollection);
        }
        let s = store()?;
        let target = rel(&path)?;
        match s.stat(&target, FOLLOW) {
            Ok(_) if options.create_only => return Err(Error::AlreadyExists),
            Ok(stat) if stat.type_ == DescriptorType::Directory => {
                return Err(Error::IsACollection);
            }
            Ok(stat) if options.offset.is_some_and(|offset| offset > stat.size) => {
                return Err(Error::Conflict("offset beyond the end of the file".into()));
            }
            Err(ErrorCode::NoEntry) if options.offset.is_some() => return Err(Error::NotFound),
            Err(ErrorCode::NoEntry) | Ok(_) => {}
            Err(e) => return Err(fs_err(e)),
        }
        s.check_parent(&target)?;
        let temp = rel_child(rel_parent(&target), &random_name());
        let fd = s
            .dir
            .open_at(
                NOFOLLOW,
                &temp,
                OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                DescriptorFlags::READ | DescriptorFlags::WRITE,
            )
            .map_err(fs_err)?;
        Ok(st::Writer::new(FsWriter {
            store: s,
            fd,
            temp,
            target,
            offset: options.offset,
            create_only: options.create_only,
            written: RefCell::new(0),
            committed: false,
        }))
    }

    fn create_collection(path: String) -> Result<(), Error> {
        if path == "/" {
            return Err(Error::AlreadyExists);
        }
        let s = store()?;
        s.dir
            .create_directory_at(&rel(&path)?)
            .map_err(|e| match e {
                ErrorCode::NoEntry => Error::ParentNotFound,
                e => fs_err(e),
            })
    }

    fn delete(path: String) -> Result<Vec<MemberError>, Error> {
        if path == "/" {
            return Err(forbidden("the root collection cannot be deleted"));
        }
        let s = store()?;
        let target = rel(&path)?;
        let mut errors = Vec::new();
        s.delete(&target, &path, &mut errors)?;
        Ok(errors)
    }

    fn copy(
        source: String,
        destination: String,
        recursive: bool,
        overwrite: bool,
    ) -> Result<Vec<MemberError>, Error> {
        let s = store()?;
        let (from, to) = match s.prepare_transfer(&source, &destination, overwrite)? {
            Ok(locations) => locations,
            Err(errors) => return Ok(errors),
        };
        let mut errors = Vec::new();
        s.copy_node(&from, &to, &source, &destination, recursive, &mut errors)?;
        Ok(errors)
    }

    fn rename(
        source: String,
        destination: String,
        overwrite: bool,
    ) -> Result<Vec<MemberError>, Error> {
        if source == "/" {
            return Err(forbidden("the root collection cannot be moved"));
        }
        let s = store()?;
        let (from, to) = match s.prepare_transfer(&source, &destination, overwrite)? {
            Ok(locations) => locations,
            Err(errors) => return Ok(errors),
        };
        s.dir.rename_at(&from, &s.dir, &to).map_err(fs_err)?;
        // The content has moved; its properties follow, member by member.
        let mut moved = vec![(source.clone(), destination.clone())];
        if s.stat(&to, NOFOLLOW).map_err(fs_err)?.type_ == DescriptorType::Directory {
            s.walk(&to, &destination, &mut |member| {
                moved.push((
                    rules::path::rebase(member, &destination, &source),
                    member.to_owned(),
                ));
            })
            .map_err(fs_err)?;
        }
        let mut errors = Vec::new();
        for (old, new) in moved {
            if let Err(e) = s.props_rename(&old, &new) {
                errors.push(MemberError {
                    path: new,
                    error: fs_err(e),
                });
            }
        }
        Ok(errors)
    }

    fn get_properties(path: String) -> Result<Vec<Property>, Error> {
        let s = store()?;
        s.stat(&rel(&path)?, FOLLOW).map_err(lookup_err)?;
        Ok(s.props_load(&path)
            .map_err(fs_err)?
            .into_iter()
            .map(property)
            .collect())
    }

    fn patch_properties(path: String, changes: Vec<PropertyChange>) -> Result<(), Error> {
        let s = store()?;
        s.stat(&rel(&path)?, FOLLOW).map_err(fs_err)?;
        let changes = changes.into_iter().map(|c| match c {
            PropertyChange::Set(p) => rules::props::Change::Set(StoredProperty {
                namespace: p.namespace,
                name: p.name,
                value: p.value,
            }),
            PropertyChange::Remove(n) => rules::props::Change::Remove {
                namespace: n.namespace,
                name: n.name,
            },
        });
        let _guard = s.mutex("props").map_err(Error::Io)?;
        let mut props = s.props_load(&path).map_err(fs_err)?;
        rules::props::apply(&mut props, changes);
        s.props_store(&path, props).map_err(fs_err)
    }

    fn space_usage(path: String) -> Result<Space, Error> {
        rel(&path)?;
        // wasi:filesystem has no statvfs.
        Ok(Space {
            used: None,
            available: None,
        })
    }
}

pub(super) fn property(p: StoredProperty) -> Property {
    Property {
        namespace: p.namespace,
        name: p.name,
        value: p.value,
    }
}

impl Store {
    /// Deletes a file, or a collection with everything below it, with their
    /// properties. Member failures are recorded and keep their ancestors.
    pub(super) fn delete(
        &self,
        target: &str,
        path: &str,
        errors: &mut Vec<MemberError>,
    ) -> Result<(), Error> {
        if self.stat(target, NOFOLLOW).map_err(fs_err)?.type_ == DescriptorType::Directory {
            if self.remove_tree(target, path, errors).map_err(fs_err)? {
                self.props_remove(path).map_err(fs_err)?;
            }
        } else {
            self.dir.unlink_file_at(target).map_err(fs_err)?;
            self.props_remove(path).map_err(fs_err)?;
        }
        Ok(())
    }

    /// Removes `dir` and everything below it; fails only when `dir` itself
    /// cannot be listed; returns whether `dir` is gone.
    pub(super) fn remove_tree(
        &self,
        dir: &str,
        path: &str,
        errors: &mut Vec<MemberError>,
    ) -> Result<bool, ErrorCode> {
        let mut complete = true;
        for (name, kind) in self.read_dir(dir)? {
            let member = rules::path::child_path(path, &name);
            let member_rel = rel_child(dir, &name);
            let removed = if kind == DescriptorType::Directory {
                self.remove_tree(&member_rel, &member, errors)
            } else {
                self.dir.unlink_file_at(&member_rel).map(|()| true)
            }
            .and_then(|removed| {
                if removed && !is_reserved(&name) {
                    self.props_remove(&member)?;
                }
                Ok(removed)
            });
            match removed {
                Ok(removed) => complete &= removed,
                Err(e) => {
                    errors.push(MemberError {
                        path: member,
                        error: fs_err(e),
                    });
                    complete = false;
                }
            }
        }
        if !complete {
            return Ok(false);
        }
        match self.dir.remove_directory_at(dir) {
            Ok(()) => Ok(true),
            Err(e) => {
                errors.push(MemberError {
                    path: path.to_owned(),
                    error: fs_err(e),
                });
                Ok(false)
            }
        }
    }

    /// Checks a copy or move and returns the source and destination, with the
    /// destination's parent checked and an existing destination cleared
    /// (unless a file replaces a file). Member errors left by clearing are
    /// returned instead.
    #[allow(clippy::type_complexity)]
    pub(super) fn prepare_transfer(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<Result<(String, String), Vec<MemberError>>, Error> {
        rules::transfer::check(source, destination).map_err(|r| forbidden(r.reason()))?;
        let (from, to) = (rel(source)?, rel(destination)?);
        let source_is_dir =
            self.stat(&from, FOLLOW).map_err(fs_err)?.type_ == DescriptorType::Directory;
        match self.stat(&to, NOFOLLOW) {
            Ok(_) if !overwrite => return Err(Error::AlreadyExists),
            // A file replaces a file atomically by rename; its properties
            // are then replaced along with the content.
            Ok(stat) if stat.type_ != DescriptorType::Directory && !source_is_dir => {}
            Ok(_) => {
                let mut errors = Vec::new();
                self.delete(&to, destination, &mut errors)?;
                if !errors.is_empty() {
                    return Ok(Err(errors));
                }
            }
            Err(ErrorCode::NoEntry) => self.check_parent(&to)?,
            Err(e) => return Err(fs_err(e)),
        }
        Ok(Ok((from, to)))
    }

    /// Copies one resource with its properties and, if `recursive`, its
    /// members. Member errors name the destination member.
    pub(super) fn copy_node(
        &self,
        from: &str,
        to: &str,
        source: &str,
        destination: &str,
        recursive: bool,
        errors: &mut Vec<MemberError>,
    ) -> Result<(), Error> {
        if self.stat(from, FOLLOW).map_err(fs_err)?.type_ != DescriptorType::Directory {
            self.copy_file(from, to).map_err(fs_err)?;
            return self.props_copy(source, destination).map_err(fs_err);
        }
        self.dir.create_directory_at(to).map_err(fs_err)?;
        self.props_copy(source, destination).map_err(fs_err)?;
        if !recursive {
            return Ok(());
        }
        for (name, kind) in self.read_dir(from).map_err(fs_err)? {
            if is_reserved(&name) {
                continue;
            }
            let target = rules::path::child_path(destination, &name);
            let member_from = rel_child(from, &name);
            // Walks follow a symlink only to a file; symlinked collections could loop.
            let followable = match kind {
                DescriptorType::SymbolicLink => match self.stat(&member_from, FOLLOW) {
                    Ok(s) if s.type_ == DescriptorType::Directory => {
                        Err(forbidden("symbolic links to collections are not followed"))
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(fs_err(e)),
                },
                _ => Ok(()),
            };
            let copied = followable.and_then(|()| {
                self.copy_node(
                    &member_from,
                    &rel_child(to, &name),
                    &rules::path::child_path(source, &name),
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

    /// Visits the contract path of every member below `dir` (not following
    /// symlinks, skipping reserved names).
    pub(super) fn walk(
        &self,
        dir: &str,
        path: &str,
        visit: &mut impl FnMut(&str),
    ) -> Result<(), ErrorCode> {
        for (name, kind) in self.read_dir(dir)? {
            if is_reserved(&name) {
                continue;
            }
            let member = rules::path::child_path(path, &name);
            visit(&member);
            if kind == DescriptorType::Directory {
                self.walk(&rel_child(dir, &name), &member, visit)?;
            }
        }
        Ok(())
    }
}
