//! The `edgedav:dav/storage` exports.

use super::*;

impl st::Guest for Component {
    type Reader = SqlReader;
    type Writer = SqlWriter;

    fn stat(path: String) -> Result<Metadata, Error> {
        Ok(db()?.existing(&path)?.metadata())
    }

    fn list_members(path: String, cursor: Option<String>, limit: u32) -> Result<Page, Error> {
        let db = db()?;
        if !db.existing(&path)?.is_dir {
            return Err(Error::NotACollection);
        }
        let limit = limit.clamp(1, MAX_PAGE);
        // One more than asked, to know whether another page follows. Whether
        // a member has dead properties comes with it, from the properties'
        // primary key (an index lookup per member, in the same query).
        let r = db.exec(
            &format!(
                "SELECT {NODE_COLUMNS}, name,
                   EXISTS (SELECT 1 FROM edgedav_props WHERE edgedav_props.path = edgedav_nodes.path)
                 FROM edgedav_nodes
                 WHERE parent = ? AND name > ? ORDER BY name LIMIT ?"
            ),
            &[
                text(&path),
                text(cursor.as_deref().unwrap_or("")),
                int(i64::from(limit) + 1),
            ],
        )?;
        let mut entries: Vec<Entry> = r
            .rows
            .iter()
            .map(|row| Entry {
                name: get_text(row, 8).unwrap_or_default(),
                metadata: Node::from_row(row).metadata(),
                has_properties: get_int(row, 9) != 0,
            })
            .collect();
        let next = if entries.len() > limit as usize {
            entries.truncate(limit as usize);
            entries.last().map(|e| e.name.clone())
        } else {
            None
        };
        Ok(Page { entries, next })
    }

    fn open_read(
        path: String,
        offset: u64,
        length: Option<u64>,
    ) -> Result<(st::Reader, Metadata), Error> {
        let db = db()?;
        let node = db.existing(&path)?;
        if node.is_dir {
            return Err(Error::IsACollection);
        }
        let end = match length {
            Some(n) => node.size.min(offset.saturating_add(n)),
            None => node.size,
        };
        // The reader is bound to this version's content, never rewritten
        // in place (a replacement is new content).
        let opened = node.metadata();
        let reader = st::Reader::new(SqlReader {
            db,
            content: node.content.unwrap_or(0),
            position: Cell::new(offset.min(end)),
            end,
        });
        Ok((reader, opened))
    }

    /// Declined: content lives in SQLite rows, not in a host stream; the
    /// handler reads through `open-read`.
    fn open_read_stream(
        _path: String,
        _offset: u64,
        _length: Option<u64>,
    ) -> Result<Option<(wasi::io::streams::InputStream, Metadata)>, Error> {
        Ok(None)
    }

    fn open_write(path: String, options: WriteOptions) -> Result<st::Writer, Error> {
        if path == "/" {
            return Err(Error::IsACollection);
        }
        let db = db()?;
        check_path(&path)?;
        match db.node(&path)? {
            Some(_) if options.create_only => return Err(Error::AlreadyExists),
            Some(node) if node.is_dir => return Err(Error::IsACollection),
            Some(node) if options.offset.is_some_and(|offset| offset > node.size) => {
                return Err(Error::Conflict("offset beyond the end of the file".into()));
            }
            Some(_) => {}
            None if options.offset.is_some() => return Err(db.missing(&path)?),
            None => {}
        }
        db.check_parent(&path)?;
        db.collect_stale_uploads()?;
        let staging = new_content_id();
        db.exec(
            "INSERT INTO edgedav_uploads (content, started_ms) VALUES (?, ?)",
            &[int(staging), int(now_ms())],
        )?;
        Ok(st::Writer::new(SqlWriter {
            db,
            staging,
            path,
            offset: options.offset,
            create_only: options.create_only,
            content_type: options.content_type,
            pending: RefCell::new(Vec::new()),
            next_chunk: Cell::new(0),
            written: Cell::new(0),
            committed: Cell::new(false),
        }))
    }

    fn create_collection(path: String) -> Result<(), Error> {
        if path == "/" {
            return Err(Error::AlreadyExists);
        }
        check_path(&path)?;
        db()?.transaction(|db| {
            if db.node(&path)?.is_some() {
                return Err(Error::AlreadyExists);
            }
            db.check_parent(&path)?;
            let now = now_ns();
            let node = Node {
                path: path.clone(),
                is_dir: true,
                size: 0,
                modified_ns: now,
                created_ns: now,
                etag: new_etag(),
                content_type: None,
                content: None,
            };
            db.insert_node(&path, &node)
        })
    }

    fn delete(path: String) -> Result<Vec<MemberError>, Error> {
        if path == "/" {
            return Err(forbidden("the root collection cannot be deleted"));
        }
        db()?.transaction(|db| {
            db.existing(&path)?;
            db.delete_subtree(&path)?;
            Ok(Vec::new())
        })
    }

    fn copy(
        source: String,
        destination: String,
        recursive: bool,
        overwrite: bool,
    ) -> Result<Vec<MemberError>, Error> {
        db()?.transaction(|db| {
            let root = db.prepare_transfer(&source, &destination, overwrite)?;
            let nodes = if root.is_dir && recursive {
                let mut params = Vec::new();
                let cond = subtree("path", &source, &mut params);
                let r = db.exec(&format!("SELECT {NODE_COLUMNS} FROM edgedav_nodes WHERE {cond} ORDER BY path"), &params)?;
                r.rows.iter().map(Node::from_row).collect()
            } else {
                vec![root]
            };
            let now = now_ns();
            for node in nodes {
                let target = rules::path::rebase(&node.path, &source, &destination);
                let content = match node.content {
                    Some(old) if !node.is_dir => {
                        let new = new_content_id();
                        db.exec(
                            "INSERT INTO edgedav_chunks (content, idx, data)
                             SELECT ?, idx, data FROM edgedav_chunks WHERE content = ?",
                            &[int(new), int(old)],
                        )?;
                        Some(new)
                    }
                    _ => None,
                };
                let copy = Node { modified_ns: now, created_ns: now, etag: new_etag(), content, ..node.clone() };
                db.insert_node(&target, &copy)?;
            }
            // Dead properties travel with the copy.
            let shift = source.chars().count() as i64 + 1;
            let mut params = vec![text(&destination), int(shift)];
            let cond = if recursive { subtree("path", &source, &mut params) } else {
                params.push(text(&source));
                "path = ?".to_owned()
            };
            db.exec(
                &format!(
                    "INSERT INTO edgedav_props (path, namespace, name, value)
                     SELECT ? || substr(path, ?), namespace, name, value FROM edgedav_props WHERE {cond}"
                ),
                &params,
            )?;
            Ok(Vec::new())
        })
    }

    fn rename(
        source: String,
        destination: String,
        overwrite: bool,
    ) -> Result<Vec<MemberError>, Error> {
        if source == "/" {
            return Err(forbidden("the root collection cannot be moved"));
        }
        db()?.transaction(|db| {
            db.prepare_transfer(&source, &destination, overwrite)?;
            let shift = source.chars().count() as i64 + 1;
            let parent = rules::path::parent_of(&destination).unwrap_or("/");
            let mut params = vec![
                text(&destination),
                int(shift),
                text(&source),
                text(parent),
                text(rules::path::name_of(&destination)),
            ];
            let cond = subtree("path", &source, &mut params);
            db.exec(
                &format!(
                    "UPDATE edgedav_nodes SET
                        path = ?1 || substr(path, ?2),
                        parent = CASE WHEN path = ?3 THEN ?4 ELSE ?1 || substr(parent, ?2) END,
                        name = CASE WHEN path = ?3 THEN ?5 ELSE name END
                     WHERE {}",
                    numbered(&cond, 6)
                ),
                &params,
            )?;
            let mut params = vec![text(&destination), int(shift)];
            let cond = subtree("path", &source, &mut params);
            db.exec(
                &format!(
                    "UPDATE edgedav_props SET path = ?1 || substr(path, ?2) WHERE {}",
                    numbered(&cond, 3)
                ),
                &params,
            )?;
            Ok(Vec::new())
        })
    }

    fn get_properties(path: String) -> Result<Vec<Property>, Error> {
        let db = db()?;
        db.existing(&path)?;
        let r = db.exec(
            "SELECT namespace, name, value FROM edgedav_props WHERE path = ? ORDER BY rowid",
            &[text(&path)],
        )?;
        Ok(r.rows
            .iter()
            .map(|row| Property {
                namespace: get_text(row, 0).unwrap_or_default(),
                name: get_text(row, 1).unwrap_or_default(),
                value: get_text(row, 2).unwrap_or_default(),
            })
            .collect())
    }

    fn patch_properties(path: String, changes: Vec<PropertyChange>) -> Result<(), Error> {
        db()?.transaction(|db| {
            db.existing(&path)?;
            for change in changes {
                match change {
                    PropertyChange::Set(p) => db.exec(
                        "INSERT INTO edgedav_props (path, namespace, name, value) VALUES (?, ?, ?, ?)
                         ON CONFLICT (path, namespace, name) DO UPDATE SET value = excluded.value",
                        &[text(&path), text(&p.namespace), text(&p.name), text(&p.value)],
                    )?,
                    PropertyChange::Remove(n) => db.exec(
                        "DELETE FROM edgedav_props WHERE path = ? AND namespace = ? AND name = ?",
                        &[text(&path), text(&n.namespace), text(&n.name)],
                    )?,
                };
            }
            Ok(())
        })
    }

    fn space_usage(path: String) -> Result<Space, Error> {
        check_path(&path)?;
        let db = db()?;
        // The database's size, when the backend answers the pragmas.
        let pragma = |name: &str| {
            db.exec(&format!("PRAGMA {name}"), &[])
                .ok()
                .and_then(|r| r.rows.first().map(|row| get_int(row, 0)))
        };
        let used = match (pragma("page_count"), pragma("page_size")) {
            (Some(count), Some(size)) => Some((count * size) as u64),
            _ => None,
        };
        Ok(Space {
            used,
            available: None,
        })
    }
}

/// Renumbers the `?` placeholders of a condition from `first` on, for use
/// after explicitly numbered ones.
pub(super) fn numbered(cond: &str, first: usize) -> String {
    let mut out = String::new();
    let mut n = first;
    for c in cond.chars() {
        if c == '?' {
            out.push_str(&format!("?{n}"));
            n += 1;
        } else {
            out.push(c);
        }
    }
    out
}
