//! Reading and writing content in chunks, published by one transaction.

use super::*;

pub struct SqlReader {
    pub(super) db: Rc<Db>,
    pub(super) content: i64,
    pub(super) position: Cell<u64>,
    pub(super) end: u64,
}

impl st::GuestReader for SqlReader {
    fn read(&self, max: u32) -> Result<Vec<u8>, Error> {
        let (index, within, available) = chunks::locate(self.position.get(), self.end, CHUNK);
        let n = available.min(u64::from(max));
        if n == 0 {
            return Ok(Vec::new());
        }
        let r = self.db.exec(
            "SELECT substr(data, ?, ?) FROM edgedav_chunks WHERE content = ? AND idx = ?",
            &[
                int(within as i64 + 1),
                int(n as i64),
                int(self.content),
                int(index as i64),
            ],
        )?;
        let data = r
            .rows
            .first()
            .map(|row| get_blob(row, 0))
            .unwrap_or_default();
        if data.is_empty() {
            return Err(Error::Io("the file changed while it was read".into()));
        }
        self.position.set(self.position.get() + data.len() as u64);
        Ok(data)
    }
}

/// An upload staged as chunks under a content id no node references yet.
pub struct SqlWriter {
    pub(super) db: Rc<Db>,
    pub(super) staging: i64,
    pub(super) path: String,
    pub(super) offset: Option<u64>,
    pub(super) create_only: bool,
    pub(super) content_type: Option<String>,
    /// Bytes not yet stored: less than one chunk.
    pub(super) pending: RefCell<Vec<u8>>,
    pub(super) next_chunk: Cell<u64>,
    pub(super) written: Cell<u64>,
    pub(super) committed: Cell<bool>,
}

impl SqlWriter {
    pub(super) fn store_chunk(&self, data: &[u8]) -> Result<(), Error> {
        self.db.exec(
            "INSERT INTO edgedav_chunks (content, idx, data) VALUES (?, ?, ?)",
            &[
                int(self.staging),
                int(self.next_chunk.get() as i64),
                Value::Blob(data.to_vec()),
            ],
        )?;
        self.next_chunk.set(self.next_chunk.get() + 1);
        Ok(())
    }

    pub(super) fn read_staged(&self, index: u64) -> Result<Vec<u8>, Error> {
        let r = self.db.exec(
            "SELECT data FROM edgedav_chunks WHERE content = ? AND idx = ?",
            &[int(self.staging), int(index as i64)],
        )?;
        r.rows
            .first()
            .map(|row| get_blob(row, 0))
            .ok_or_else(|| Error::Io("a staged chunk is missing".into()))
    }

    /// Publishes the staged content (inside the commit transaction, which
    /// makes the create-only check and the created-or-replaced answer
    /// atomic with it).
    pub(super) fn publish(&self, db: &Db) -> Result<Committed, Error> {
        let now = now_ns();
        let size = self.written.get();
        let existing = db.node(&self.path)?;
        if self.create_only && existing.is_some() {
            return Err(Error::AlreadyExists);
        }
        let created = existing.is_none();
        let node = match (self.offset, existing) {
            (_, Some(node)) if node.is_dir => return Err(Error::IsACollection),
            (None, Some(node)) => {
                // Point the file at the new content; drop the old one.
                db.exec(
                    "UPDATE edgedav_nodes SET content = ?, size = ?, modified_ns = ?, etag = ?, content_type = ?
                     WHERE path = ?",
                    &[
                        int(self.staging),
                        int(size as i64),
                        int(now),
                        text(&new_etag()),
                        self.content_type.as_deref().map_or(Value::Null, text),
                        text(&self.path),
                    ],
                )?;
                if let Some(old) = node.content {
                    db.delete_content(old)?;
                }
                db.node(&self.path)?.expect("updated just now")
            }
            (None, None) => {
                db.check_parent(&self.path)?;
                let node = Node {
                    path: self.path.clone(),
                    is_dir: false,
                    size,
                    modified_ns: now,
                    created_ns: now,
                    etag: new_etag(),
                    content_type: self.content_type.clone(),
                    content: Some(self.staging),
                };
                db.insert_node(&self.path, &node)?;
                node
            }
            (Some(_), None) => return Err(db.missing(&self.path)?),
            (Some(offset), Some(node)) => {
                if offset > node.size {
                    return Err(Error::Conflict("offset beyond the end of the file".into()));
                }
                let content = node.content.unwrap_or(0);
                let new_size = chunks::apply_piece(
                    offset,
                    size,
                    node.size,
                    CHUNK,
                    |j| self.read_staged(j),
                    |k| {
                        let r = db.exec(
                            "SELECT data FROM edgedav_chunks WHERE content = ? AND idx = ?",
                            &[int(content), int(k as i64)],
                        )?;
                        Ok(r.rows.first().map(|row| get_blob(row, 0)))
                    },
                    |k, data| {
                        db.exec(
                            "INSERT OR REPLACE INTO edgedav_chunks (content, idx, data) VALUES (?, ?, ?)",
                            &[int(content), int(k as i64), Value::Blob(data)],
                        )
                        .map(drop)
                    },
                )?;
                db.exec(
                    "UPDATE edgedav_nodes SET size = ?, modified_ns = ?, etag = ?, content = ? WHERE path = ?",
                    &[int(new_size as i64), int(now), text(&new_etag()), int(content), text(&self.path)],
                )?;
                db.delete_content(self.staging)?;
                db.node(&self.path)?.expect("updated just now")
            }
        };
        db.exec(
            "DELETE FROM edgedav_uploads WHERE content = ?",
            &[int(self.staging)],
        )?;
        Ok(Committed {
            metadata: node.metadata(),
            created,
        })
    }
}

impl st::GuestWriter for SqlWriter {
    fn write(&self, data: Vec<u8>) -> Result<(), Error> {
        let mut pending = self.pending.borrow_mut();
        pending.extend_from_slice(&data);
        let full = pending.len() / CHUNK as usize * CHUNK as usize;
        for chunk in pending[..full].chunks(CHUNK as usize) {
            self.store_chunk(chunk)?;
        }
        pending.drain(..full);
        self.written.set(self.written.get() + data.len() as u64);
        Ok(())
    }

    /// Declined (no wasi:io streams here): the handler reads the body and
    /// writes it here.
    fn append_from(
        &self,
        _source: &wasi::io::streams::InputStream,
    ) -> Result<Option<st::Appended>, Error> {
        Ok(None)
    }

    fn commit(this: st::Writer) -> Result<Committed, Error> {
        let w: SqlWriter = this.into_inner();
        let last = std::mem::take(&mut *w.pending.borrow_mut());
        if !last.is_empty() {
            w.store_chunk(&last)?;
        }
        let db = w.db.clone();
        let meta = db.transaction(|db| w.publish(db))?;
        w.committed.set(true);
        Ok(meta)
    }
}

impl Drop for SqlWriter {
    /// Discards an upload that was not committed.
    fn drop(&mut self) {
        if !self.committed.get() {
            let _ = self.db.delete_content(self.staging);
            let _ = self.db.exec(
                "DELETE FROM edgedav_uploads WHERE content = ?",
                &[int(self.staging)],
            );
        }
    }
}
