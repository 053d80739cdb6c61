//! The component: `edgedav:dav` exports over Spin's SQLite (see the crate
//! docs for the design).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use edgedav_rules as rules;
use spin_sdk::sqlite3::{Connection, QueryResult, RowResult, Value};

use crate::chunks::{self, CHUNK};

wit_bindgen::generate!({
    path: "../../wit",
    inline: r#"
        package edgedav:spin-adapter;

        world adapter {
            import wasi:random/random@0.2.6;
            export edgedav:dav/types@0.4.0;
            export edgedav:dav/storage@0.4.0;
            export edgedav:dav/locks@0.4.0;
        }
    "#,
    world: "edgedav:spin-adapter/adapter",
    generate_all,
});

use exports::edgedav::dav::locks::{self as lk, ActiveLock, LockError, LockRequest, Scope};
use exports::edgedav::dav::storage::{
    self as st, Committed, Entry, MemberError, Page, Property, PropertyChange, Space, WriteOptions,
};
use exports::edgedav::dav::types::{Error, Metadata, NodeKind, Timestamp};

struct Component;

export!(Component);

/// The SQLite database label (`sqlite_databases` in spin.toml); override
/// with the `EDGEDAV_SQLITE_DATABASE` variable.
const DEFAULT_DATABASE: &str = "default";
/// The most entries one `list-members` page holds, whatever the guest asks.
const MAX_PAGE: u32 = 1000;
/// Staged uploads older than this are taken to be abandoned and removed.
const STALE_UPLOAD_MS: i64 = 24 * 3600 * 1000;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS edgedav_nodes (
        path TEXT PRIMARY KEY NOT NULL,
        parent TEXT NOT NULL,
        name TEXT NOT NULL,
        is_dir INTEGER NOT NULL,
        size INTEGER NOT NULL,
        modified_ns INTEGER NOT NULL,
        created_ns INTEGER NOT NULL,
        etag TEXT NOT NULL,
        content_type TEXT,
        content INTEGER
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS edgedav_nodes_by_parent ON edgedav_nodes (parent, name)",
    "CREATE TABLE IF NOT EXISTS edgedav_chunks (
        content INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (content, idx)
    )",
    "CREATE TABLE IF NOT EXISTS edgedav_props (
        path TEXT NOT NULL,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (path, namespace, name)
    )",
    "CREATE TABLE IF NOT EXISTS edgedav_uploads (
        content INTEGER PRIMARY KEY NOT NULL,
        started_ms INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS edgedav_locks (
        token TEXT PRIMARY KEY NOT NULL,
        root TEXT NOT NULL,
        exclusive INTEGER NOT NULL,
        deep INTEGER NOT NULL,
        owner TEXT,
        expires_ms INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS edgedav_locks_by_root ON edgedav_locks (root)",
];

const NODE_COLUMNS: &str =
    "path, is_dir, size, modified_ns, created_ns, etag, content_type, content";
const LOCK_COLUMNS: &str = "token, root, exclusive, deep, owner, expires_ms";

// ---------------------------------------------------------------- values

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn int(n: i64) -> Value {
    Value::Integer(n)
}

fn get_int(row: &RowResult, i: usize) -> i64 {
    match row.values.get(i) {
        Some(Value::Integer(n)) => *n,
        _ => 0,
    }
}

fn get_text(row: &RowResult, i: usize) -> Option<String> {
    match row.values.get(i) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

fn get_blob(row: &RowResult, i: usize) -> Vec<u8> {
    match row.values.get(i) {
        Some(Value::Blob(b)) => b.clone(),
        Some(Value::Text(s)) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

fn db_err(e: spin_sdk::sqlite3::Error) -> Error {
    match e {
        spin_sdk::sqlite3::Error::DatabaseFull => Error::NoSpace,
        // Another connection holds the write lock past SQLite's busy
        // timeout: transient, worth a retry (503).
        spin_sdk::sqlite3::Error::Io(m) if m.contains("database is locked") => {
            Error::Unavailable(format!("sqlite: {m}"))
        }
        e => Error::Io(format!("sqlite: {e:?}")),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// A fresh positive 62-bit id for staged or stored content.
fn new_content_id() -> i64 {
    (wasi::random::random::get_random_u64() >> 2) as i64
}

fn new_etag() -> String {
    format!("{:016x}", wasi::random::random::get_random_u64())
}

fn forbidden(reason: &str) -> Error {
    Error::Forbidden(reason.to_owned())
}

fn check_path(path: &str) -> Result<(), Error> {
    rules::path::segments(path, |_| false)
        .map(drop)
        .map_err(forbidden)
}

/// Proper ancestors of a path, root first.
fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = path;
    while let Some(parent) = rules::path::parent_of(p) {
        out.push(parent.to_owned());
        p = parent;
    }
    out.reverse();
    out
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// SQL for "`column` is `root` or below it", appending its parameters.
fn subtree(column: &str, root: &str, params: &mut Vec<Value>) -> String {
    if root == "/" {
        return "1".to_owned();
    }
    params.push(text(root));
    params.push(text(&format!("{root}/")));
    // '0' is the character after '/': the range holds exactly `root/...`.
    params.push(text(&format!("{root}0")));
    format!("({column} = ? OR ({column} >= ? AND {column} < ?))")
}

// ---------------------------------------------------------------- the database

struct Db {
    conn: Connection,
}

thread_local! {
    static DB: RefCell<Option<Rc<Db>>> = const { RefCell::new(None) };
}

fn db() -> Result<Rc<Db>, Error> {
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
struct Node {
    path: String,
    is_dir: bool,
    size: u64,
    modified_ns: i64,
    created_ns: i64,
    etag: String,
    content_type: Option<String>,
    content: Option<i64>,
}

impl Node {
    fn from_row(row: &RowResult) -> Node {
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

    fn metadata(&self) -> Metadata {
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
    fn exec(&self, sql: &str, params: &[Value]) -> Result<QueryResult, Error> {
        self.conn.execute(sql, params).map_err(db_err)
    }

    fn init(&self) -> Result<(), Error> {
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
    fn transaction<T>(&self, work: impl FnOnce(&Db) -> Result<T, Error>) -> Result<T, Error> {
        self.exec("BEGIN IMMEDIATE", &[])?;
        let result = work(self).and_then(|value| self.exec("COMMIT", &[]).map(|_| value));
        if result.is_err() {
            let _ = self.exec("ROLLBACK", &[]);
        }
        result
    }

    fn node(&self, path: &str) -> Result<Option<Node>, Error> {
        let r = self.exec(
            &format!("SELECT {NODE_COLUMNS} FROM edgedav_nodes WHERE path = ?"),
            &[text(path)],
        )?;
        Ok(r.rows.first().map(Node::from_row))
    }

    /// The error for a path that does not exist: `not-a-collection` when an
    /// ancestor is a file (as a filesystem reports), else `not-found`.
    fn missing(&self, path: &str) -> Result<Error, Error> {
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

    fn existing(&self, path: &str) -> Result<Node, Error> {
        check_path(path)?;
        match self.node(path)? {
            Some(node) => Ok(node),
            None => Err(self.missing(path)?),
        }
    }

    /// The parent of a new resource must be an existing collection.
    fn check_parent(&self, path: &str) -> Result<(), Error> {
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

    fn delete_content(&self, content: i64) -> Result<(), Error> {
        self.exec(
            "DELETE FROM edgedav_chunks WHERE content = ?",
            &[int(content)],
        )?;
        Ok(())
    }

    /// Deletes a resource and everything below it (inside a transaction).
    fn delete_subtree(&self, path: &str) -> Result<(), Error> {
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
    fn prepare_transfer(
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

    fn insert_node(&self, path: &str, node: &Node) -> Result<(), Error> {
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
    fn collect_stale_uploads(&self) -> Result<(), Error> {
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

// ---------------------------------------------------------------- storage

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

    fn open_read(path: String, offset: u64, length: Option<u64>) -> Result<st::Reader, Error> {
        let db = db()?;
        let node = db.existing(&path)?;
        if node.is_dir {
            return Err(Error::IsACollection);
        }
        let end = match length {
            Some(n) => node.size.min(offset.saturating_add(n)),
            None => node.size,
        };
        Ok(st::Reader::new(SqlReader {
            db,
            content: node.content.unwrap_or(0),
            position: Cell::new(offset.min(end)),
            end,
        }))
    }

    /// Declined: content lives in SQLite rows, not in a host stream; the
    /// handler reads through `open-read`.
    fn open_read_stream(
        _path: String,
        _offset: u64,
        _length: Option<u64>,
    ) -> Result<Option<wasi::io::streams::InputStream>, Error> {
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
fn numbered(cond: &str, first: usize) -> String {
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

// ---------------------------------------------------------------- reader, writer

pub struct SqlReader {
    db: Rc<Db>,
    content: i64,
    position: Cell<u64>,
    end: u64,
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
    db: Rc<Db>,
    staging: i64,
    path: String,
    offset: Option<u64>,
    create_only: bool,
    content_type: Option<String>,
    /// Bytes not yet stored: less than one chunk.
    pending: RefCell<Vec<u8>>,
    next_chunk: Cell<u64>,
    written: Cell<u64>,
    committed: Cell<bool>,
}

impl SqlWriter {
    fn store_chunk(&self, data: &[u8]) -> Result<(), Error> {
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

    fn read_staged(&self, index: u64) -> Result<Vec<u8>, Error> {
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
    fn publish(&self, db: &Db) -> Result<Committed, Error> {
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

// ---------------------------------------------------------------- locks

fn lock_record(row: &RowResult) -> rules::locks::LockRecord {
    rules::locks::LockRecord {
        token: get_text(row, 0).unwrap_or_default(),
        root: get_text(row, 1).unwrap_or_default(),
        exclusive: get_int(row, 2) != 0,
        deep: get_int(row, 3) != 0,
        owner: get_text(row, 4),
        expires_ms: get_int(row, 5).max(0) as u64,
    }
}

fn active(l: &rules::locks::LockRecord, now: i64) -> ActiveLock {
    ActiveLock {
        token: l.token.clone(),
        root: l.root.clone(),
        scope: if l.exclusive {
            Scope::Exclusive
        } else {
            Scope::Shared
        },
        deep: l.deep,
        owner: l.owner.clone(),
        timeout: Some(l.seconds_left(now as u64)),
    }
}

fn lock_err(e: Error) -> LockError {
    LockError::Io(format!("{e:?}"))
}

impl Db {
    fn locks_where(
        &self,
        cond: &str,
        mut params: Vec<Value>,
        now: i64,
    ) -> Result<Vec<rules::locks::LockRecord>, Error> {
        params.push(int(now));
        let r = self.exec(
            &format!("SELECT {LOCK_COLUMNS} FROM edgedav_locks WHERE ({cond}) AND expires_ms > ?"),
            &params,
        )?;
        Ok(r.rows.iter().map(lock_record).collect())
    }

    /// Live locks taken on `path` or deep on one of its ancestors.
    fn covering(&self, path: &str, now: i64) -> Result<Vec<rules::locks::LockRecord>, Error> {
        let ancestors = ancestors(path);
        let mut params = vec![text(path)];
        params.extend(ancestors.iter().map(|a| text(a)));
        let cond = if ancestors.is_empty() {
            "root = ?".to_owned()
        } else {
            format!(
                "root = ? OR (deep = 1 AND root IN ({}))",
                placeholders(ancestors.len())
            )
        };
        self.locks_where(&cond, params, now)
    }

    /// Live locks taken on `path` or below it.
    fn within(&self, path: &str, now: i64) -> Result<Vec<rules::locks::LockRecord>, Error> {
        let mut params = Vec::new();
        let cond = subtree("root", path, &mut params);
        self.locks_where(&cond, params, now)
    }
}

/// The live locks a query selected, or an `io` error when the database
/// failed (the handler answers 500): answering "no locks" would let writes
/// through locked resources.
fn select_locks(
    query: impl FnOnce(&Db, i64) -> Result<Vec<rules::locks::LockRecord>, Error>,
) -> Result<Vec<ActiveLock>, LockError> {
    let now = now_ms();
    let db = db().map_err(lock_err)?;
    let locks = query(&db, now).map_err(lock_err)?;
    Ok(locks.iter().map(|l| active(l, now)).collect())
}

impl lk::Guest for Component {
    fn acquire(request: LockRequest) -> Result<ActiveLock, LockError> {
        let db = db().map_err(lock_err)?;
        let exclusive = matches!(request.scope, Scope::Exclusive);
        let result = db.transaction(|db| {
            let now = now_ms();
            db.exec(
                "DELETE FROM edgedav_locks WHERE expires_ms <= ?",
                &[int(now)],
            )?;
            let ask = rules::locks::Extent {
                root: &request.root,
                exclusive,
                deep: request.deep,
            };
            // Candidates: locks on the root or its ancestors, and (for a deep
            // request) locks below it; the shared rules decide.
            let mut candidates = db.covering(&request.root, now)?;
            candidates.extend(
                db.within(&request.root, now)?
                    .into_iter()
                    .filter(|l| l.root != request.root),
            );
            let conflicts: Vec<ActiveLock> = candidates
                .iter()
                .filter(|l| l.extent().conflicts_with(&ask))
                .map(|l| active(l, now))
                .collect();
            if !conflicts.is_empty() {
                return Ok(Err(LockError::Conflict(conflicts)));
            }
            let bytes: [u8; 16] = wasi::random::random::get_random_bytes(16)
                .try_into()
                .expect("16 random bytes");
            let lock = rules::locks::LockRecord {
                token: rules::locks::uuid_urn(bytes),
                root: request.root.clone(),
                exclusive,
                deep: request.deep,
                owner: request.owner.clone(),
                expires_ms: now as u64
                    + u64::from(rules::locks::granted_secs(request.timeout)) * 1000,
            };
            db.exec(
                &format!("INSERT INTO edgedav_locks ({LOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"),
                &[
                    text(&lock.token),
                    text(&lock.root),
                    int(exclusive as i64),
                    int(lock.deep as i64),
                    lock.owner.as_deref().map_or(Value::Null, text),
                    int(lock.expires_ms as i64),
                ],
            )?;
            Ok(Ok(active(&lock, now)))
        });
        result.map_err(lock_err)?
    }

    fn refresh(token: String, timeout: Option<u32>) -> Result<ActiveLock, LockError> {
        let db = db().map_err(lock_err)?;
        let now = now_ms();
        let expires = now + i64::from(rules::locks::granted_secs(timeout)) * 1000;
        // One statement: atomic without a transaction.
        let r = db
            .exec(
                &format!(
                    "UPDATE edgedav_locks SET expires_ms = ? WHERE token = ? AND expires_ms > ? RETURNING {LOCK_COLUMNS}"
                ),
                &[int(expires), text(&token), int(now)],
            )
            .map_err(lock_err)?;
        match r.rows.first() {
            Some(row) => Ok(active(&lock_record(row), now)),
            None => Err(LockError::NoSuchLock),
        }
    }

    fn release(token: String) -> Result<(), LockError> {
        let db = db().map_err(lock_err)?;
        let r = db
            .exec(
                "DELETE FROM edgedav_locks WHERE token = ? AND expires_ms > ? RETURNING token",
                &[text(&token), int(now_ms())],
            )
            .map_err(lock_err)?;
        if r.rows.is_empty() {
            Err(LockError::NoSuchLock)
        } else {
            Ok(())
        }
    }

    fn covering(path: String) -> Result<Vec<ActiveLock>, LockError> {
        select_locks(|db, now| db.covering(&path, now))
    }

    fn within(path: String) -> Result<Vec<ActiveLock>, LockError> {
        select_locks(|db, now| db.within(&path, now))
    }
}
