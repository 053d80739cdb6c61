//! Conversions between SQLite values and the contract's types.

use super::*;

pub(super) fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

pub(super) fn int(n: i64) -> Value {
    Value::Integer(n)
}

pub(super) fn get_int(row: &RowResult, i: usize) -> i64 {
    match row.values.get(i) {
        Some(Value::Integer(n)) => *n,
        _ => 0,
    }
}

pub(super) fn get_text(row: &RowResult, i: usize) -> Option<String> {
    match row.values.get(i) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

pub(super) fn get_blob(row: &RowResult, i: usize) -> Vec<u8> {
    match row.values.get(i) {
        Some(Value::Blob(b)) => b.clone(),
        Some(Value::Text(s)) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

pub(super) fn db_err(e: spin_sdk::sqlite3::Error) -> Error {
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

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(super) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// A fresh positive 62-bit id for staged or stored content.
pub(super) fn new_content_id() -> i64 {
    (wasi::random::random::get_random_u64() >> 2) as i64
}

pub(super) fn new_etag() -> String {
    format!("{:016x}", wasi::random::random::get_random_u64())
}

pub(super) fn forbidden(reason: &str) -> Error {
    Error::Forbidden(reason.to_owned())
}

pub(super) fn check_path(path: &str) -> Result<(), Error> {
    rules::path::segments(path, |_| false)
        .map(drop)
        .map_err(forbidden)
}

/// Proper ancestors of a path, root first.
pub(super) fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = path;
    while let Some(parent) = rules::path::parent_of(p) {
        out.push(parent.to_owned());
        p = parent;
    }
    out.reverse();
    out
}

pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// SQL for "`column` is `root` or below it", appending its parameters.
pub(super) fn subtree(column: &str, root: &str, params: &mut Vec<Value>) -> String {
    if root == "/" {
        return "1".to_owned();
    }
    params.push(text(root));
    params.push(text(&format!("{root}/")));
    // '0' is the character after '/': the range holds exactly `root/...`.
    params.push(text(&format!("{root}0")));
    format!("({column} = ? OR ({column} >= ? AND {column} < ?))")
}
