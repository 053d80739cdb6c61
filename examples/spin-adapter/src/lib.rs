//! `edgedav:dav` storage and locks on Spin's SQLite database
//! (`spin:sqlite/sqlite@3.0.0`, through spin-sdk 5.2's WASI 0.2 bindings): a
//! component that, plugged into the unchanged handler with `wac plug`, gives
//! a WebDAV server for Spin's HTTP trigger.
//!
//! **Why SQLite and not Spin's key-value store.** Key-value offers get, set,
//! delete and a listing of *every* key of a store (`get-keys`, or
//! `list-keys` without a prefix), and at most a compare-and-swap on one key.
//! A WebDAV store needs listings of one collection, commits that change
//! several records at once (content, metadata, the parent's index) and lock
//! acquisition that checks for conflicts and inserts in one step. SQLite
//! gives all of that: transactions (`BEGIN IMMEDIATE` serialises writers),
//! an index on `(parent, name)` for paged listings, and range scans over
//! `path` for subtrees, so no operation walks the whole store.
//!
//! **Schema** (tables prefixed `edgedav_`, created on first use):
//! * `nodes`: one row per file or collection, keyed by path, with parent,
//!   name, size, times, ETag, content type and a content id for files;
//! * `chunks`: file content as `(content, idx, data)` rows of at most
//!   [`chunks::CHUNK`] bytes, so big files stay within value and
//!   query-result limits;
//! * `props`: dead properties, keyed by `(path, namespace, name)`;
//! * `uploads`: content ids being staged (for cleaning up after crashes);
//! * `locks`: WebDAV locks with absolute expiry times.
//!
//! **Atomicity.** A writer stages chunks under a fresh content id that no
//! node references; commit, in one transaction, points the node at it and
//! deletes the old chunks (whole writes), or overwrites the affected chunks
//! of the current content and updates size and ETag (partial updates).
//! Delete, copy, move and property patches are single transactions, so they
//! are all-or-nothing (they never report member errors). Lock acquisition
//! checks conflicts and inserts in one transaction, and refresh and release
//! are single statements: locks are strongly consistent for every instance
//! using the same database.
//!
//! **Create-only, created or replaced.** The commit transaction reads the
//! node it replaces, so a `create-only` commit that finds one fails with
//! `already-exists` having changed nothing, and `created` is exact among
//! every instance sharing the database. Copy and move refuse overlapping
//! paths (`edgedav-rules`' `transfer::check`) before touching anything.
//! Names have no length limit of their own here (SQLite text holds far more
//! than the handler's 255-byte segments), so none is ever too long.
//!
//! **Limits.** Readers read the content current when they read each chunk:
//! a GET that races a commit can fail (the old chunks are gone) rather than
//! mix versions, except with a concurrent partial update, whose chunks are
//! overwritten in place. Space usage reports the database size only.

pub mod chunks;

#[cfg(target_arch = "wasm32")]
mod component;
