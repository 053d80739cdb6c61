//! A [`Backend`] on an S3 bucket: AWS S3 or any S3-compatible store (Garage,
//! MinIO, Ceph RGW), through aws-sdk-s3 with the standard credential chain
//! (environment, profile, web identity, IMDS), an optional custom endpoint
//! and path-style addressing. Request checksums are only sent where S3
//! requires them (`WhenRequired`), which third-party stores accept.
//!
//! # Layout of the tree in the bucket
//!
//! Everything lives below the configured prefix (`P/`, or the whole bucket).
//! A file `/a/b.txt` is the object `P/a/b.txt`. A collection `/a` is the
//! prefix `P/a/`: it exists when a marker object `P/a/` exists (MKCOL writes
//! one) or when any key lies below it (an *implied* collection, as other S3
//! tools leave them). Should both `P/a` and keys under `P/a/` exist (possible
//! only when written by other tools), the file wins.
//!
//! The segment `.edgedav` is reserved (refused in paths, never listed): dead
//! properties live below it, see below.
//!
//! # Cost in S3 requests
//!
//! * `stat`: one ListObjectsV2 with prefix `P/a` and delimiter `/`, which
//!   shows both the object `P/a` and the prefix `P/a/`. Only when more than
//!   1,000 siblings sort between them (names that extend `a` with a character
//!   below `/`, like `a.txt` or `a-1`) does a collection cost a second,
//!   one-key listing of `P/a/`. The root costs nothing.
//! * `list-members`: one delimited ListObjectsV2 per page of up to 1,000
//!   members, starting after the collection's own marker so it takes no slot;
//!   every member's metadata comes from the listing (no HEAD per member). The
//!   storage cursor is S3's continuation token. An empty first page costs one
//!   more listing to tell an empty collection from a missing one. A
//!   collection holding dead properties of its members also lists
//!   `.edgedav/`, which takes one of the 1,000 slots. Each member's
//!   `has-properties` costs nothing when the collection holds no dead
//!   properties of its members, else one listing of `.edgedav/props/` per
//!   1,000 members that have some (see [`member_props`]; the knowledge
//!   travels in the storage cursor, `-` or `+` before S3's token).
//! * So a Depth-1 PROPFIND of a collection of n members costs at most
//!   `ceil(n/1000) + 1` requests (stat + pages) when no dead property is
//!   asked for; `allprop`, `propname` and non-live properties add the
//!   root's `get-properties` (below), and for the k members that have dead
//!   properties `ceil(k/1000)` listings and k `get-properties`.
//! * `open-read`: one GetObject with a `Range`, streamed chunk by chunk.
//! * `open-write` + `commit`: a stat of the target and a one-key listing of
//!   the parent, then one PutObject for up to one part (8 MiB by default),
//!   else CreateMultipartUpload, one UploadPart per part (uploaded while the
//!   body arrives, at most 2 in flight) and CompleteMultipartUpload; the
//!   commit stats the target once more (below).
//!
//! # Metadata
//!
//! Files: size, ETag (the object's ETag, unquoted) and `modified`
//! (LastModified) from the listing; the content type is left to the handler
//! (from the extension) since listings do not carry it. Collections have no
//! time in S3: their `modified` is the Unix epoch, and their ETag a hash of
//! their key, which does not change when members do.
//!
//! # Dead properties
//!
//! Stored in sidecar objects, one JSON document (`{"path", "properties"}`)
//! per resource, kept with the resource's parent collection: the properties
//! of `/a/b` are `P/a/.edgedav/props/b` and those of the root
//! `P/.edgedav/root-props`. So a collection's subtree (`P/a/…`) holds the
//! properties of all its members, and a recursive copy, move or delete of
//! the collection carries or removes them in the same walk over its keys;
//! the collection's own properties (one object in its parent's `.edgedav/`)
//! and a file's are copied, moved and deleted with it. Object metadata was
//! not used: it is capped at 2 KiB, and changing it rewrites the object
//! (changing its ETag for multipart objects). Limits: `get-properties` costs
//! one GetObject, plus a stat when the resource has none (to report a
//! missing resource); PROPPATCH is a read-modify-write serialised within
//! this process only (S3 offers no compare-and-swap that every store
//! honours), so concurrent PROPPATCHes of one resource through different
//! servers may lose one; properties of resources deleted by other tools are
//! orphaned and may reappear if a resource is created at the same path.
//!
//! # Writes
//!
//! See [`upload`]: bounded memory per upload, nothing visible before
//! PutObject / CompleteMultipartUpload, multipart uploads aborted on drop or
//! failure. A partial update (`offset`) copies the kept prefix and suffix of
//! the existing object server-side (UploadPartCopy, conditional on the ETag
//! seen when the update began, so a concurrent change fails it with a
//! conflict) and uploads only the new bytes; kept pieces shorter than S3's
//! 5 MiB minimum part are read and re-sent instead.
//!
//! # Created or replaced, create-only
//!
//! S3 has no rename and no atomic "create unless present" that every store
//! honours. A commit stats the target and publishes while holding a lock on
//! the key (striped, in this process): within one process, of concurrent
//! commits creating one key exactly one reports `created`, and a
//! `create-only` commit that finds anything at the path fails with
//! `already-exists` having published nothing. A `create-only` publication
//! also carries `If-None-Match: *`, which AWS S3 enforces across processes
//! and clients (a 412 there is `already-exists` too); Garage (2.x) ignores
//! it, so across several servers on Garage the guarantee is best effort.
//!
//! # Names
//!
//! A key longer than S3's 1,024 bytes (with room for the property sidecar)
//! cannot exist: looking one up is `not-found`, creating one is
//! `conflict("name too long")` (409).
//!
//! # Copy, move, delete
//!
//! A file is copied with CopyObject (UploadPartCopy parts above CopyObject's
//! 5 GiB limit), so content never passes through the host. Collections are
//! walked page by page (ListObjectsV2 without delimiter) and each key is
//! copied, 16 at a time; a move copies then deletes what was copied
//! (DeleteObjects, 1,000 keys per request). Moves are not atomic on S3: a
//! member that fails is reported and stays at the source, together with the
//! collection markers above it. Deletes likewise report failed members and
//! keep their ancestors' markers.

mod content;
mod counter;
mod failure;
mod listing;
mod member_props;
mod options;
mod properties;
#[cfg(test)]
mod tests;
mod tree;
mod upload;

use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use bytes::Bytes;
use futures_util::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

// For the metrics endpoint and benchmarks; the backend itself only logs them.
#[allow(unused_imports)]
pub use counter::{RequestStats, request_stats, set_log_each};

use self::content::{S3Reader, S3Writer};
use self::failure::{Failure, failure};
use self::member_props::{Listed, MemberProps};
use self::upload::{MAX_COPY_PART, MAX_OBJECT, Source, Upload};
use super::props;
use super::{
    Backend, Committed, Entry, Error, FileReader, FileWriter, MemberError, Metadata, NodeKind,
    Opened, Page, Property, PropertyChange, Reader, Result, Space, Timestamp, WriteOptions, Writer,
    check_transfer, name_too_long,
};
use edgedav_rules::path::is_root;

pub use self::options::S3Options;

/// The reserved path segment under which dead properties live.
const RESERVED: &str = ".edgedav";
/// Below a collection's prefix: the properties of its members, by name.
const MEMBER_PROPS: &str = ".edgedav/props/";
/// Below the root prefix: the root's own properties.
const ROOT_PROPS: &str = ".edgedav/root-props";
/// The most keys one ListObjectsV2 or DeleteObjects request handles.
const MAX_KEYS: i32 = 1000;
/// S3's limit on key length, in bytes.
const MAX_KEY_LEN: usize = 1024;
/// Locks serialising commits in this process (keys share them by hash).
const COMMIT_STRIPES: usize = 64;
/// CopyObject requests run at once when copying a collection.
const COPY_CONCURRENCY: usize = 16;

/// Characters percent-encoded in `x-amz-copy-source` (all but unreserved
/// characters and `/`).
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// A store in an S3 bucket. Cheap to clone.
#[derive(Clone)]
pub struct S3Backend(Arc<Inner>);

struct Inner {
    client: Client,
    bucket: String,
    /// The key prefix of the root collection: empty or ending with `/`.
    root: String,
    /// Serialises property read-modify-write cycles in this process.
    patching: tokio::sync::Mutex<()>,
    /// Serialise commits to one key in this process (striped by key hash).
    committing: Vec<tokio::sync::Mutex<()>>,
}

impl Inner {
    fn new(client: Client, bucket: String, root: String) -> Self {
        Self {
            client,
            bucket,
            root,
            patching: tokio::sync::Mutex::new(()),
            committing: (0..COMMIT_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        tracing::info!(bucket = %self.bucket, "S3 backend closed after {}", request_stats());
    }
}

impl S3Backend {
    /// Builds the client and checks that the bucket can be listed.
    pub async fn connect(options: &S3Options) -> io::Result<Self> {
        let bucket = options
            .bucket
            .clone()
            .ok_or_else(|| io::Error::other("no S3 bucket given"))?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(options.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .interceptor(counter::RequestCounter);
        if shared.region().is_none() {
            config = config.region(Region::new("us-east-1"));
        }
        if let Some(endpoint) = &options.endpoint {
            config = config.endpoint_url(endpoint);
        }
        let root = match options.prefix.as_deref().map(|p| p.trim_matches('/')) {
            None | Some("") => String::new(),
            Some(prefix) => format!("{prefix}/"),
        };
        let backend = Self(Arc::new(Inner::new(
            Client::from_conf(config.build()),
            bucket,
            root,
        )));
        let inner = &backend.0;
        inner
            .client
            .list_objects_v2()
            .bucket(&inner.bucket)
            .prefix(&inner.root)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| io::Error::other(failure("ListObjectsV2", e).text))?;
        tracing::info!(bucket = %inner.bucket, prefix = %inner.root, "serving an S3 bucket");
        Ok(backend)
    }

    // ------------------------------------------------------------ keys

    /// The object key of a path (the root prefix for the root), refusing
    /// what every store refuses (`edgedav_rules::path::below_root`).
    pub(super) fn key(&self, path: &str) -> Result<String> {
        let below = edgedav_rules::path::below_root(path, |s| s == RESERVED).map_err(forbidden)?;
        let root = &self.0.root;
        let mut key = String::with_capacity(root.len() + 1 + below.len());
        key.push_str(root);
        if !root.is_empty() && !root.ends_with('/') && !below.is_empty() {
            key.push('/');
        }
        key.push_str(below);
        // Leave room for the property sidecar (`.edgedav/props/`).
        if key.len() + MEMBER_PROPS.len() + 1 > MAX_KEY_LEN {
            return Err(name_too_long());
        }
        Ok(key)
    }

    /// The lock that serialises commits to `key` in this process.
    pub(super) fn commit_lock(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let hash = Sha256::digest(key.as_bytes());
        let stripe = usize::from(hash[0]) % self.0.committing.len();
        &self.0.committing[stripe]
    }

    /// The prefix of a collection's members.
    pub(super) fn dir(&self, path: &str) -> Result<String> {
        let key = self.key(path)?;
        Ok(if is_root(path) {
            key
        } else {
            format!("{key}/")
        })
    }

    /// The key of the object holding a resource's dead properties.
    pub(super) fn props_key(&self, path: &str) -> Result<String> {
        if is_root(path) {
            return Ok(format!("{}{ROOT_PROPS}", self.0.root));
        }
        self.key(path)?;
        let (parent, name) = split_parent(path);
        Ok(format!("{}{MEMBER_PROPS}{name}", self.dir(parent)?))
    }

    /// The contract path an object key belongs to (for member errors):
    /// markers name their collection, property objects their resource.
    pub(super) fn path_of(&self, key: &str) -> String {
        let relative = key.strip_prefix(&self.0.root).unwrap_or(key);
        let segments: Vec<&str> = relative.split('/').filter(|s| !s.is_empty()).collect();
        let segments = match segments.iter().position(|s| *s == RESERVED) {
            Some(i) if segments.get(i + 1) == Some(&"props") => {
                [&segments[..i], &segments[i + 2..]].concat()
            }
            Some(i) => segments[..i].to_vec(),
            None => segments,
        };
        format!("/{}", segments.join("/"))
    }
}

#[async_trait]
impl Backend for S3Backend {
    async fn stat(&self, path: &str) -> Result<Metadata> {
        self.lookup(path).await?.ok_or(Error::NotFound)
    }

    async fn list_members(&self, path: &str, cursor: Option<String>, limit: u32) -> Result<Page> {
        let dir = self.dir(path).map_err(absent)?;
        let max_keys = limit.clamp(1, MAX_KEYS as u32) as i32;
        let (known, token) = match cursor {
            Some(cursor) => {
                let (props, token) = member_props::decode(&cursor)?;
                (Some(props), Some(token))
            }
            None => (None, None),
        };
        let first = known.is_none();
        // The collection's own marker sorts first: skip it so it takes no slot.
        let start_after = (first && !dir.is_empty()).then_some(dir.as_str());
        let listing = self.list(&dir, true, max_keys, start_after, token).await?;
        if first && listing.objects.is_empty() && listing.prefixes.is_empty() && !is_root(path) {
            match self.lookup(path).await? {
                Some(meta) if meta.kind == NodeKind::Collection => {}
                Some(_) => return Err(Error::NotACollection),
                None => return Err(Error::NotFound),
            }
        }
        let mut entries = self.merge_members(&dir, &listing);
        let props = match known {
            Some(props) => props,
            None => self.first_member_props(&dir, &listing),
        };
        let props = self
            .mark_member_props(&dir, props, first, &listing, &mut entries)
            .await?;
        Ok(Page {
            entries,
            next: listing
                .next
                .map(|token| member_props::encode(&props, &token)),
        })
    }

    async fn open_read(&self, path: &str, offset: u64, length: Option<u64>) -> Result<Opened> {
        if is_root(path) {
            self.key(path)?;
            return Err(Error::IsACollection);
        }
        let key = self.key(path).map_err(absent)?;
        let empty = || {
            Box::new(S3Reader {
                body: None,
                pending: Bytes::new(),
            }) as Reader
        };
        // Nothing to read: the object's metadata is all there is to give.
        let nothing = async || match self.lookup(path).await? {
            Some(meta) if meta.kind == NodeKind::File => Ok((empty(), meta)),
            Some(_) => Err(Error::IsACollection),
            None => Err(Error::NotFound),
        };
        if length == Some(0) {
            return nothing().await;
        }
        let range = match (offset, length) {
            (0, None) => None,
            (start, None) => Some(format!("bytes={start}-")),
            (start, Some(length)) => Some(format!(
                "bytes={start}-{}",
                start.saturating_add(length - 1)
            )),
        };
        let inner = &self.0;
        match inner
            .client
            .get_object()
            .bucket(&inner.bucket)
            .key(&key)
            .set_range(range)
            .send()
            .await
        {
            Ok(output) => {
                let metadata = opened_metadata(&output);
                let reader = Box::new(S3Reader {
                    body: Some(output.body),
                    pending: Bytes::new(),
                });
                Ok((reader, metadata))
            }
            Err(e) => {
                let failure = failure("GetObject", e);
                if failure.status == Some(416) || failure.code.as_deref() == Some("InvalidRange") {
                    // Past the end: nothing to read, as from a file.
                    nothing().await
                } else if failure.is_not_found() {
                    match self.lookup(path).await? {
                        Some(meta) if meta.kind == NodeKind::Collection => {
                            Err(Error::IsACollection)
                        }
                        _ => Err(Error::NotFound),
                    }
                } else {
                    Err(failure.into_error())
                }
            }
        }
    }

    async fn open_write(&self, path: &str, options: WriteOptions) -> Result<Writer> {
        let key = self.key(path)?;
        if is_root(path) {
            return Err(Error::IsACollection);
        }
        let existing = self.lookup(path).await?;
        if options.create_only && existing.is_some() {
            return Err(Error::AlreadyExists);
        }
        if existing
            .as_ref()
            .is_some_and(|m| m.kind == NodeKind::Collection)
        {
            return Err(Error::IsACollection);
        }
        self.check_parent(path).await?;
        if options.expected_size.is_some_and(|size| size > MAX_OBJECT) {
            return Err(Error::TooLarge);
        }
        let mut upload = Upload::new(
            self.clone(),
            key.clone(),
            options.content_type,
            options.expected_size,
        );
        upload.create_only = options.create_only;
        if let Some(offset) = options.offset {
            let existing = existing.ok_or(Error::NotFound)?;
            if offset > existing.size {
                return Err(Error::Conflict("offset beyond the end of the file".into()));
            }
            let source = Source {
                key,
                etag: existing.etag,
                size: existing.size,
            };
            upload.start_patch(source, offset).await?;
        }
        Ok(Box::new(S3Writer {
            s3: self.clone(),
            path: path.to_owned(),
            partial: options.offset.is_some(),
            upload,
        }))
    }

    async fn create_collection(&self, path: &str) -> Result<()> {
        let dir = self.dir(path)?;
        if is_root(path) || self.lookup(path).await?.is_some() {
            return Err(Error::AlreadyExists);
        }
        self.check_parent(path).await?;
        self.put_empty(&dir).await
    }

    async fn delete(&self, path: &str) -> Result<Vec<MemberError>> {
        if is_root(path) {
            return Err(forbidden("the root collection cannot be deleted"));
        }
        let meta = self.lookup(path).await?.ok_or(Error::NotFound)?;
        let props = self.props_key(path)?;
        if meta.kind == NodeKind::File {
            let key = self.key(path)?;
            let mut failed = self.delete_keys(vec![key.clone(), props]).await;
            if let Some(i) = failed.iter().position(|(k, _)| *k == key) {
                return Err(failed.swap_remove(i).1);
            }
            return Ok(self.member_errors(failed));
        }
        let mut failed = self.delete_tree(&self.dir(path)?).await?;
        if failed.is_empty() {
            failed.extend(self.delete_keys(vec![props]).await);
        }
        Ok(self.member_errors(failed))
    }

    async fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> Result<Vec<MemberError>> {
        let (meta, replacing) = match self
            .prepare_transfer(source, destination, overwrite)
            .await?
        {
            Ok(ready) => ready,
            Err(errors) => return Ok(errors),
        };
        if meta.kind == NodeKind::Collection {
            return self
                .transfer_collection(source, destination, recursive, false)
                .await;
        }
        self.copy_object(&self.key(source)?, &self.key(destination)?, meta.size)
            .await?;
        Ok(
            match self.copy_properties(source, destination, replacing).await {
                Ok(()) => Vec::new(),
                Err(error) => vec![MemberError {
                    path: destination.to_owned(),
                    error,
                }],
            },
        )
    }

    async fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<Vec<MemberError>> {
        if is_root(source) {
            return Err(forbidden("the root collection cannot be moved"));
        }
        let (meta, replacing) = match self
            .prepare_transfer(source, destination, overwrite)
            .await?
        {
            Ok(ready) => ready,
            Err(errors) => return Ok(errors),
        };
        if meta.kind == NodeKind::Collection {
            return self
                .transfer_collection(source, destination, true, true)
                .await;
        }
        let key = self.key(source)?;
        self.copy_object(&key, &self.key(destination)?, meta.size)
            .await?;
        let mut errors = Vec::new();
        let mut remove = vec![key];
        match self.copy_properties(source, destination, replacing).await {
            Ok(()) => remove.push(self.props_key(source)?),
            Err(error) => errors.push(MemberError {
                path: destination.to_owned(),
                error,
            }),
        }
        errors.extend(self.member_errors(self.delete_keys(remove).await));
        Ok(errors)
    }

    /// One GetObject; no properties object is an empty list, whether or
    /// not the resource exists (the contract allows it; the handler has
    /// looked the resource up already), which saves a request per PROPFIND.
    async fn get_properties(&self, path: &str) -> Result<Vec<Property>> {
        Ok(self
            .load_properties(path)
            .await
            .map_err(absent)?
            .unwrap_or_default())
    }

    async fn patch_properties(&self, path: &str, changes: Vec<PropertyChange>) -> Result<()> {
        self.lookup(path).await?.ok_or(Error::NotFound)?;
        let _guard = self.0.patching.lock().await;
        let mut properties = self.load_properties(path).await?.unwrap_or_default();
        props::apply(&mut properties, changes);
        self.store_properties(path, properties).await
    }

    async fn space_usage(&self, path: &str) -> Result<Space> {
        self.key(path)?;
        // S3 has neither a capacity nor a cheap way to sum a prefix.
        Ok(Space {
            used: None,
            available: None,
        })
    }
}

fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", utf8_percent_encode(key, COPY_SOURCE))
}

/// The version a GetObject answered with: its ETag, its whole size (from
/// `Content-Range` when a range was asked) and its date, to the second.
fn opened_metadata(output: &GetObjectOutput) -> Metadata {
    let size = match output.content_range.as_deref() {
        Some(range) => range
            .rsplit('/')
            .next()
            .and_then(|total| total.parse().ok()),
        None => output.content_length.and_then(|n| u64::try_from(n).ok()),
    };
    Metadata {
        kind: NodeKind::File,
        size: size.unwrap_or_default(),
        modified: object_date(output.last_modified.as_ref()),
        created: None,
        etag: strip_quotes(output.e_tag.as_deref().unwrap_or_default()),
        content_type: None,
    }
}

/// An object's date as the contract's timestamp (the epoch when S3 gave none).
fn object_date(date: Option<&DateTime>) -> Timestamp {
    date.map_or(
        Timestamp {
            seconds: 0,
            nanoseconds: 0,
        },
        |t| Timestamp {
            seconds: t.secs(),
            nanoseconds: t.subsec_nanos(),
        },
    )
}

fn strip_quotes(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

fn timestamp(time: SystemTime) -> Timestamp {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: since.as_secs() as i64,
        nanoseconds: since.subsec_nanos(),
    }
}

/// A path's parent and last segment (`/` and the name for top-level paths).
fn split_parent(path: &str) -> (&str, &str) {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => ("/", path),
    }
}

/// Whether a listed name can be a member: one segment, not reserved.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".." && name != RESERVED
}

/// For a lookup: a name too long to exist is not found.
fn absent(e: Error) -> Error {
    if e == name_too_long() {
        Error::NotFound
    } else {
        e
    }
}

fn forbidden(reason: &str) -> Error {
    Error::Forbidden(reason.to_owned())
}
