//! The SQLite schema and the node table: lookups, parents, subtrees.

use super::*;

pub(super) struct Db {
    pub(super) conn: Connection,
}

thread_local! {
    static DB: RefCell<Option<Rc<Db>>> = const { RefCell::new(None) };
}

pub(super) fn db() -> Result<Rc<Db>, Error> {
    if let Some(db) = DB.with(|d| d.borrow().clone()) {
        return Ok(db);
    }
    let label =
        std::env::var("EDGEDAV_SQLITE_DATABASE").unwrap_or_else(|_| DEFAULT_DATABASE.to_owned());
    let conn = Connection::open(&label).map_err(|e| {
        Error::Io(format!(
            "opening SQLite database {label:?} (listed in sqlite_databases?): {e:?}"
        ))
    })?;
    let db = Rc::new(Db { conn });
    db.init()?;
    DB.with(|d| *d.borrow_mut() = Some(db.clone()));
    Ok(db)
}

#[derive(Clone)]
pub(super) struct Node {
    pub(super) path: String,
    pub(super) is_dir: bool,
    pub(super) size: u64,
    pub(super) modified_ns: i64,
    pub(super) created_ns: i64,
    pub(super) etag: String,
    pub(super) content_type: Option<String>,
    pub(super) content: Option<i64>,
}

impl Node {
    pub(super) fn from_row(row: &RowResult) -> Node {
        Node {
            path: get_text(row, 0).unwrap_or_default(),
            is_dir: get_int(row, 1) != 0,
            size: get_int(row, 2) as u64,
            modified_ns: get_int(row, 3),
            created_ns: get_int(row, 4),
            etag: get_text(row, 5).unwrap_or_default(),
            content_type: get_text(row, 6),
            content: match row.values.get(7) {
                Some(Value::Integer(n)) => Some(*n),
                _ => None,
            },
        }
    }

    pub(super) fn metadata(&self) -> Metadata {
        let ts = |ns: i64| Timestamp {
            seconds: ns.div_euclid(1_000_000_000),
            nanoseconds: ns.rem_euclid(1_000_000_000) as u32,
        };
        Metadata {
            kind: if self.is_dir {
                NodeKind::Collection
            } else {
                NodeKind::File
            },
            size: if self.is_dir { 0 } else { self.size },
            modified: ts(self.modified_ns),
            created: Some(ts(self.created_ns)),
            etag: self.etag.clone(),
            content_type: self.content_type.clone(),
        }
    }
}

impl Db {
    pub(super) fn exec(&self, sql: &str, params: &[Value]) -> Result<QueryResult, Error> {
        self.conn.execute(sql, params).map_err(db_err)
    }

    pub(super) fn init(&self) -> Result<(), Error> {
        if self
            .exec("SELECT 1 FROM edgedav_nodes WHERE path = '/'", &[])
            .is_ok_and(|r| !r.rows.is_empty())
        {
            return Ok(());
        }
        for statement in SCHEMA {
            self.exec(statement, &[])?;
        }
        let now = now_ns();
        self.exec(
            "INSERT OR IGNORE INTO edgedav_nodes (path, parent, name, is_dir, size, modified_ns, created_ns, etag)
             VALUES ('/', '', '', 1, 0, ?, ?, ?)",
            &[int(now), int(now), text(&new_etag())],
        )?;
        Ok(())
    }

    /// Runs `work` in one write transaction: committed if it succeeds, rolled
    /// back otherwise. `BEGIN IMMEDIATE` takes the write lock up front, so
    /// the checks `work` makes hold until the commit.
    pub(super) fn transaction<T>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.exec("BEGIN IMMEDIATE", &[])?;
        let result = work(self).and_then(|value| self.exec("COMMIT", &[]).map(|_| value));
        if result.is_err() {
            let _ = self.exec("ROLLBACK", &[]);
        }
        result
    }

    pub(super) fn node(&self, path: &str) -> Result<Option<Node>, Error> {
        let r = self.exec(
            &format!("SELECT {NODE_COLUMNS} FROM edgedav_nodes WHERE path = ?"),
            &[text(path)],
        )?;
        Ok(r.rows.first().map(Node::from_row))
    }

    /// The error for a path that does not exist: `not-a-collection` when an
    /// ancestor is a file (as a filesystem reports), else `not-found`.
    pub(super) fn missing(&self, path: &str) -> Result<Error, Error> {
        let ancestors = ancestors(path);
        if ancestors.is_empty() {
            return Ok(Error::NotFound);
        }
        let params: Vec<Value> = ancestors.iter().map(|a| text(a)).collect();
        let r = self.exec(
            &format!(
                "SELECT is_dir FROM edgedav_nodes WHERE path IN ({}) ORDER BY length(path) DESC LIMIT 1",
                placeholders(params.len())
            ),
            &params,
        )?;
        Ok(match r.rows.first() {
            Some(row) if get_int(row, 0) == 0 => Error::NotACollection,
            _ => Error::NotFound,
        })
    }

    pub(super) fn existing(&self, path: &str) -> Result<Node, Error> {
        check_path(path)?;
        match self.node(path)? {
            Some(node) => Ok(node),
            None => Err(self.missing(path)?),
        }
    }

    /// The parent of a new resource must be an existing collection.
    pub(super) fn check_parent(&self, path: &str) -> Result<(), Error> {
        let parent = rules::path::parent_of(path).ok_or(Error::AlreadyExists)?;
        match self.node(parent)? {
            Some(node) if node.is_dir => Ok(()),
            Some(_) => Err(Error::NotACollection),
            None => Err(match self.missing(parent)? {
                Error::NotACollection => Error::NotACollection,
                _ => Error::ParentNotFound,
            }),
        }
    }

    pub(super) fn delete_content(&self, content: i64) -> Result<(), Error> {
        self.exec(
            "DELETE FROM edgedav_chunks WHERE content = ?",
            &[int(content)],
        )?;
        Ok(())
    }

    /// Deletes a resource and everything below it (inside a transaction).
    pub(super) fn delete_subtree(&self, path: &str) -> Result<(), Error> {
        let mut params = Vec::new();
        let nodes = subtree("path", path, &mut params);
        self.exec(
            &format!(
                "DELETE FROM edgedav_chunks WHERE content IN
                 (SELECT content FROM edgedav_nodes WHERE content IS NOT NULL AND {nodes})"
            ),
            &params,
        )?;
        self.exec(&format!("DELETE FROM edgedav_props WHERE {nodes}"), &params)?;
        self.exec(&format!("DELETE FROM edgedav_nodes WHERE {nodes}"), &params)?;
        Ok(())
    }

    /// Checks a copy or move inside its transaction and clears an existing
    /// destination. Returns the source node.
    pub(super) fn prepare_transfer(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<Node, Error> {
        check_path(destination)?;
        rules::transfer::check(source, destination).map_err(|r| forbidden(r.reason()))?;
        let node = self.existing(source)?;
        match self.node(destination)? {
            Some(_) if !overwrite => return Err(Error::AlreadyExists),
            Some(_) => self.delete_subtree(destination)?,
            None => self.check_parent(destination)?,
        }
        Ok(node)
    }

    pub(super) fn insert_node(&self, path: &str, node: &Node) -> Result<(), Error> {
        let parent = rules::path::parent_of(path).unwrap_or("");
        self.exec(
            &format!(
                "INSERT INTO edgedav_nodes (parent, name, {NODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            &[
                text(parent),
                text(rules::path::name_of(path)),
                text(path),
                int(node.is_dir as i64),
                int(node.size as i64),
                int(node.modified_ns),
                int(node.created_ns),
                text(&node.etag),
                node.content_type.as_deref().map_or(Value::Null, text),
                node.content.map_or(Value::Null, int),
            ],
        )?;
        Ok(())
    }

    /// Removes staged uploads abandoned by instances that died.
    pub(super) fn collect_stale_uploads(&self) -> Result<(), Error> {
        let r = self.exec(
            "SELECT content FROM edgedav_uploads WHERE started_ms < ? LIMIT 16",
            &[int(now_ms() - STALE_UPLOAD_MS)],
        )?;
        for row in &r.rows {
            let content = get_int(row, 0);
            self.delete_content(content)?;
            self.exec(
                "DELETE FROM edgedav_uploads WHERE content = ?",
                &[int(content)],
            )?;
        }
        Ok(())
    }
}
