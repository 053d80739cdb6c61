//! `edgedav:dav` storage and locks on `wasi:filesystem`: a component that,
//! plugged into the unchanged handler with `wac plug`, gives a WebDAV server
//! that runs under stock `wasmtime serve --dir HOST::GUEST`.
//!
//! * **Root.** The preopened directory named by `EDGEDAV_ROOT`, or the only
//!   preopened directory. Every contract path is checked segment by segment
//!   (no `.`, `..`, NUL or reserved names) and resolved relative to that
//!   directory's descriptor, so the runtime's capability rules (no escape by
//!   `..` or symlinks) confine it as well.
//! * **Layout**, compatible with the native host's local-disk backend: file
//!   content in plain files, collections as directories, dead properties in
//!   the sidecar `<root>/.edgedav/props/<sha256(path)>` (JSON with the path
//!   and its properties), uploads in progress in hidden
//!   `.edgedav-upload-<random>` files. A directory served by `edgedav serve`
//!   can be served by this adapter and back.
//! * **Atomic commits.** A writer stages into a hidden file beside its
//!   target; commit renames it over the target. An uncommitted writer
//!   removes its file when dropped. A partial update (`offset`) is staged the
//!   same way and copied into the target in place at commit (as the native
//!   host does): an aborted piece changes nothing, but a crash during the
//!   copy can leave it half applied.
//! * **Locks** live in `<root>/.edgedav/locks.json` with absolute expiry
//!   times, so they are shared by every instance (`wasmtime serve` creates
//!   one per request) and survive restarts. Acquire, refresh and release are
//!   read-modify-write cycles serialised by a mutex file created with
//!   `O_EXCL` (`.edgedav/locks.mutex`; taken over when older than 10 s, so a
//!   killed instance cannot wedge the table), and publish the new table with
//!   one rename, so readers never see a half-written table. The same mutex
//!   scheme serialises property patches.
//! * **Not supported:** space usage (WASI has no statvfs: both figures are
//!   unknown), creation times, stored content types.

#[cfg(target_arch = "wasm32")]
mod component;
