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
            export edgedav:dav/types@0.6.0;
            export edgedav:dav/storage@0.6.0;
            export edgedav:dav/locks@0.6.0;
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

mod content;
mod database;
mod locks;
mod storage;
mod values;
use self::{content::*, database::*, values::*};

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
