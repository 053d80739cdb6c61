//! `edgedav:dav` storage and locks on `wasi:filesystem`: a component that,
//! plugged into the unchanged handler with `wac plug`, gives a WebDAV server
//! that runs under stock `wasmtime serve --dir HOST::GUEST`.
//!
//! * **Root.** The preopened directory named by `EDGEDAV_ROOT`, or the only
//!   preopened directory. Every contract path is checked segment by segment
//!   (no `.`, `..`, NUL or reserved names) and resolved relative to that
//!   directory's descriptor, so the runtime's capability rules (no escape by
//!   `..` or symlinks) confine it as well.
//! * **The tree is the native host's.** Paths, the layout, recursive
//!   delete/copy/move, listings, publication, partial updates and dead
//!   properties are `edgedav-fstree`'s, shared with the native local-disk
//!   backend; this crate offers its filesystem primitives on the root
//!   descriptor (`component/disk.rs`). So a directory served by `edgedav
//!   serve` can be served by this adapter and back: file content in plain
//!   files, collections as directories, dead properties in
//!   `<root>/.edgedav/props/<sha256(path)>`.
//! * **Atomic commits.** A writer stages into a hidden
//!   `.edgedav-upload-<random>` file beside its target; the commit renames
//!   it without replacing (a hard link, `link-at`, which fails rather than
//!   replace anything, then removal of the staged name) or, when something
//!   is at the target, over it. So the commit decides atomically whether it
//!   created the file, and a `create-only` commit fails with
//!   `already-exists` having changed nothing. An uncommitted writer removes
//!   its file when dropped.
//! * **Crash leftovers.** WASI has no file locks, so a staged file of a
//!   killed instance is recognised by age: one not modified for an hour (a
//!   live writer modifies its file with every chunk) is removed where it is
//!   met: when its collection is listed, when the lock table is saved
//!   (`.edgedav/`), and on one property write in 64 (`.edgedav/props/`).
//! * **Errors.** A read-only store is `unavailable` (503, a server
//!   condition); a name too long for the filesystem is `not-found` when
//!   looked up and `conflict("name too long")` (409) when created. Copy and
//!   move refuse overlapping paths (`edgedav-rules`' `transfer::check`)
//!   before touching anything.
//! * **Locks** live in `<root>/.edgedav/locks.json` with absolute expiry
//!   times, so they are shared by every instance (`wasmtime serve` creates
//!   one per request) and survive restarts. Acquire, refresh and release are
//!   read-modify-write cycles serialised by a mutex file created with
//!   `O_EXCL` (`.edgedav/locks.mutex`; taken over when older than 10 s, so a
//!   killed instance cannot wedge the table), and publish the new table with
//!   one rename, so readers never see a half-written table. The same mutex
//!   scheme serialises property patches and partial updates.
//! * **Not supported:** space usage (WASI has no statvfs: both figures are
//!   unknown), creation times, stored content types.

#[cfg(target_arch = "wasm32")]
mod component;
