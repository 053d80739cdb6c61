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

mod counter;
mod member_props;
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
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use bytes::Bytes;
use futures_util::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

// For the metrics endpoint and benchmarks; the backend itself only logs them.
#[allow(unused_imports)]
pub use counter::{RequestStats, request_stats};

use self::member_props::{Listed, MemberProps};
use self::upload::{MAX_COPY_PART, MAX_OBJECT, Source, Upload};
use super::props;
use super::{
    Backend, Committed, Entry, Error, FileReader, FileWriter, MemberError, Metadata, NodeKind,
    Page, Property, PropertyChange, Reader, Result, Space, Timestamp, WriteOptions, Writer,
    check_transfer, name_too_long,
};
use edgedav_rules::path::is_root;

/// How `edgedav serve` reaches an S3 bucket.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct S3Options {
    /// Serve this S3 bucket instead of a local directory (`--root` is then
    /// ignored). Credentials come from the standard AWS chain
    /// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profile, IMDS…).
    #[arg(id = "s3_bucket", long = "s3-bucket", value_name = "NAME")]
    pub bucket: Option<String>,
    /// Serve only the keys below this prefix of the bucket.
    #[arg(
        id = "s3_prefix",
        long = "s3-prefix",
        value_name = "P",
        requires = "s3_bucket"
    )]
    pub prefix: Option<String>,
    /// Endpoint of an S3-compatible store, e.g. `http://127.0.0.1:3900`
    /// (default: AWS, or `AWS_ENDPOINT_URL`).
    #[arg(
        id = "s3_endpoint",
        long = "s3-endpoint",
        value_name = "URL",
        requires = "s3_bucket"
    )]
    pub endpoint: Option<String>,
    /// Region (default: from the AWS configuration, else us-east-1).
    #[arg(
        id = "s3_region",
        long = "s3-region",
        value_name = "R",
        requires = "s3_bucket"
    )]
    pub region: Option<String>,
    /// Use path-style addressing (ENDPOINT/BUCKET/KEY), which most
    /// S3-compatible stores need.
    #[arg(id = "s3_path_style", long = "s3-path-style", requires = "s3_bucket")]
    pub path_style: bool,
    /// Log every S3 request with the running count (for tests and
    /// benchmarks).
    #[arg(
        id = "s3_log_requests",
        long = "s3-log-requests",
        requires = "s3_bucket"
    )]
    pub log_requests: bool,
}

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
        counter::set_log_each(options.log_requests);
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

    /// The object key of a path (the root prefix for the root).
    fn key(&self, path: &str) -> Result<String> {
        if !path.starts_with('/') || path.contains('\0') {
            return Err(forbidden("not an absolute path"));
        }
        let mut key = self.0.root.clone();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            if segment == "." || segment == ".." || segment == RESERVED {
                return Err(forbidden("path segment not allowed"));
            }
            if !key.is_empty() && !key.ends_with('/') {
                key.push('/');
            }
            key.push_str(segment);
        }
        // Leave room for the property sidecar (`.edgedav/props/`).
        if key.len() + MEMBER_PROPS.len() + 1 > MAX_KEY_LEN {
            return Err(name_too_long());
        }
        Ok(key)
    }

    /// The lock that serialises commits to `key` in this process.
    fn commit_lock(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let hash = Sha256::digest(key.as_bytes());
        let stripe = usize::from(hash[0]) % self.0.committing.len();
        &self.0.committing[stripe]
    }

    /// The prefix of a collection's members.
    fn dir(&self, path: &str) -> Result<String> {
        let key = self.key(path)?;
        Ok(if is_root(path) {
            key
        } else {
            format!("{key}/")
        })
    }

    /// The key of the object holding a resource's dead properties.
    fn props_key(&self, path: &str) -> Result<String> {
        if is_root(path) {
            return Ok(format!("{}{ROOT_PROPS}", self.0.root));
        }
        self.key(path)?;
        let (parent, name) = split_parent(path);
        Ok(format!("{}{MEMBER_PROPS}{name}", self.dir(parent)?))
    }

    /// A page's members, from its objects (files) and common prefixes
    /// (collections), in name order; `has_properties` is set later.
    fn merge_members(&self, dir: &str, listing: &Listing) -> Vec<Entry> {
        let files = listing.objects.iter().filter_map(|o| {
            let name = o.key.strip_prefix(dir)?;
            valid_name(name).then(|| (name.to_owned(), o.metadata()))
        });
        let collections = listing.prefixes.iter().filter_map(|p| {
            let name = p.strip_prefix(dir)?.strip_suffix('/')?;
            valid_name(name).then(|| (name.to_owned(), self.collection_meta(p)))
        });
        // Merge the two sorted sequences by name; a file hides a collection
        // of the same name (as in `stat`).
        let mut entries: Vec<Entry> = Vec::new();
        let mut files = files.peekable();
        let mut collections = collections.peekable();
        loop {
            let next = match (files.peek(), collections.peek()) {
                (None, None) => break,
                (Some(_), None) => files.next(),
                (None, Some(_)) => collections.next(),
                (Some((f, _)), Some((c, _))) => {
                    if f == c {
                        collections.next();
                        files.next()
                    } else if f.as_bytes() < c.as_bytes() {
                        files.next()
                    } else {
                        collections.next()
                    }
                }
            };
            if let Some((name, metadata)) = next {
                entries.push(Entry {
                    name,
                    metadata,
                    has_properties: false,
                });
            }
        }
        entries
    }

    /// What the first page of a collection's listing says of its members'
    /// dead properties (see [`member_props`]): none when it has passed the
    /// place of `.edgedav/` without showing it; otherwise they are listed.
    fn first_member_props(&self, dir: &str, listing: &Listing) -> MemberProps {
        let reserved = format!("{dir}{RESERVED}/");
        let shown = listing.prefixes.contains(&reserved);
        let passed =
            !listing.truncated || listing.last_key().is_some_and(|k| k >= reserved.as_str());
        if passed && !shown {
            MemberProps::None
        } else {
            MemberProps::Listed(Listed::default())
        }
    }

    /// Sets `has_properties` of a page's members, listing their property
    /// objects when the names carried in the cursor do not reach far
    /// enough (and always on the `first` page, when there may be some), and
    /// returns what the next page's cursor carries.
    async fn mark_member_props(
        &self,
        dir: &str,
        props: MemberProps,
        first: bool,
        listing: &Listing,
        entries: &mut [Entry],
    ) -> Result<MemberProps> {
        let MemberProps::Listed(mut listed) = props else {
            return Ok(MemberProps::None);
        };
        let prefix = format!("{dir}{MEMBER_PROPS}");
        let last = entries.iter().map(|e| e.name.as_str()).max().unwrap_or("");
        // The first listing starts at the beginning and may also show that
        // there are none at all.
        let mut from_start = first;
        while from_start || listed.needs_more(last) {
            let start_after = match (from_start, &listed.after) {
                (false, Some(after)) => Some(format!("{prefix}{after}")),
                _ => None,
            };
            from_start = false;
            let page = self
                .list(&prefix, false, MAX_KEYS, start_after.as_deref(), None)
                .await?;
            let names: Vec<String> = page
                .objects
                .iter()
                .filter_map(|o| o.key.strip_prefix(&prefix))
                .filter(|name| valid_name(name))
                .map(str::to_owned)
                .collect();
            // Where the next property listing starts: after the last key
            // seen. An empty page that says it is truncated ends the listing
            // too, so a misbehaving store cannot make this loop forever.
            let stopped_at = page
                .objects
                .last()
                .and_then(|o| o.key.strip_prefix(&prefix))
                .filter(|_| page.truncated)
                .map(str::to_owned);
            listed.extend(names, stopped_at);
        }
        if listed.pending.is_empty() && listed.after.is_none() {
            return Ok(MemberProps::None);
        }
        listed.mark(entries);
        if let Some(last_key) = listing.last_key() {
            listed.pass(last_key.strip_prefix(dir).unwrap_or(last_key));
        }
        Ok(MemberProps::Listed(listed))
    }

    /// The contract path an object key belongs to (for member errors):
    /// markers name their collection, property objects their resource.
    fn path_of(&self, key: &str) -> String {
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

    fn collection_meta(&self, dir: &str) -> Metadata {
        let digest = Sha256::digest(format!("{}\0{dir}", self.0.bucket).as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Metadata {
            kind: NodeKind::Collection,
            size: 0,
            modified: Timestamp {
                seconds: 0,
                nanoseconds: 0,
            },
            created: None,
            etag: format!("dir-{hex}"),
            content_type: None,
        }
    }

    // ------------------------------------------------------------ listing

    /// One ListObjectsV2 request.
    async fn list(
        &self,
        prefix: &str,
        delimited: bool,
        max_keys: i32,
        start_after: Option<&str>,
        token: Option<String>,
    ) -> Result<Listing> {
        let inner = &self.0;
        let output = inner
            .client
            .list_objects_v2()
            .bucket(&inner.bucket)
            .prefix(prefix)
            .max_keys(max_keys)
            .set_delimiter(delimited.then(|| "/".to_owned()))
            .set_start_after(start_after.map(str::to_owned))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| failure("ListObjectsV2", e).into_error())?;
        let objects = output
            .contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| {
                Some(Object {
                    key: o.key?,
                    size: o.size.unwrap_or(0).max(0) as u64,
                    etag: strip_quotes(o.e_tag.as_deref().unwrap_or_default()),
                    modified: o
                        .last_modified
                        .map(|t| Timestamp {
                            seconds: t.secs(),
                            nanoseconds: t.subsec_nanos(),
                        })
                        .unwrap_or(Timestamp {
                            seconds: 0,
                            nanoseconds: 0,
                        }),
                })
            })
            .collect();
        let prefixes = output
            .common_prefixes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.prefix)
            .collect();
        let truncated = output.is_truncated.unwrap_or(false);
        Ok(Listing {
            objects,
            prefixes,
            next: if truncated {
                output.next_continuation_token
            } else {
                None
            },
            truncated,
        })
    }

    /// The resource at `path`, if any (see the module docs for the cost).
    async fn lookup(&self, path: &str) -> Result<Option<Metadata>> {
        let key = self.key(path).map_err(absent)?;
        if is_root(path) {
            return Ok(Some(self.collection_meta(&key)));
        }
        let dir = format!("{key}/");
        let listing = self.list(&key, true, MAX_KEYS, None, None).await?;
        if let Some(object) = listing.objects.first().filter(|o| o.key == key) {
            return Ok(Some(object.metadata()));
        }
        if listing.prefixes.contains(&dir) {
            return Ok(Some(self.collection_meta(&dir)));
        }
        let last = [
            listing.objects.last().map(|o| o.key.as_str()),
            listing.prefixes.last().map(String::as_str),
        ]
        .into_iter()
        .flatten()
        .max();
        if listing.truncated && last.is_some_and(|last| last < dir.as_str()) {
            let below = self.list(&dir, false, 1, None, None).await?;
            if !below.objects.is_empty() {
                return Ok(Some(self.collection_meta(&dir)));
            }
        }
        Ok(None)
    }

    /// The parent of a new resource must be an existing collection.
    async fn check_parent(&self, path: &str) -> Result<()> {
        let (parent, _) = split_parent(path);
        if is_root(parent) {
            return Ok(());
        }
        let dir = self.dir(parent)?;
        if !self
            .list(&dir, false, 1, None, None)
            .await?
            .objects
            .is_empty()
        {
            return Ok(());
        }
        match self.lookup(parent).await? {
            Some(meta) if meta.kind == NodeKind::Collection => Ok(()),
            Some(_) => Err(Error::NotACollection),
            None => Err(Error::ParentNotFound),
        }
    }

    // ------------------------------------------------------------ objects

    async fn put_empty(&self, key: &str) -> Result<()> {
        let inner = &self.0;
        inner
            .client
            .put_object()
            .bucket(&inner.bucket)
            .key(key)
            .content_length(0)
            .body(ByteStream::from_static(b""))
            .send()
            .await
            .map_err(|e| failure("PutObject", e).into_error())?;
        Ok(())
    }

    /// Copies one object server-side; `NotFound` when the source is missing.
    async fn copy_object(&self, from: &str, to: &str, size: u64) -> Result<()> {
        if size > MAX_COPY_PART {
            let mut upload = Upload::new(self.clone(), to.to_owned(), None, Some(size));
            upload.copy_all(from, None, size).await?;
            upload.commit().await?;
            return Ok(());
        }
        let inner = &self.0;
        inner
            .client
            .copy_object()
            .bucket(&inner.bucket)
            .copy_source(copy_source(&inner.bucket, from))
            .key(to)
            .send()
            .await
            .map_err(|e| failure("CopyObject", e).into_error())?;
        Ok(())
    }

    /// Copies many objects, [`COPY_CONCURRENCY`] at a time; returns each
    /// `(from, to)` with its outcome.
    async fn copy_objects(
        &self,
        items: Vec<(String, String, u64)>,
    ) -> Vec<(String, String, Result<()>)> {
        futures_util::stream::iter(items)
            .map(|(from, to, size)| async move {
                let copied = self.copy_object(&from, &to, size).await;
                (from, to, copied)
            })
            .buffer_unordered(COPY_CONCURRENCY)
            .collect()
            .await
    }

    /// Deletes keys (DeleteObjects, 1,000 per request); returns the keys
    /// that could not be deleted with the reason.
    async fn delete_keys(&self, keys: Vec<String>) -> Vec<(String, Error)> {
        let inner = &self.0;
        let mut failed = Vec::new();
        for batch in keys.chunks(MAX_KEYS as usize) {
            let objects: Vec<ObjectIdentifier> = batch
                .iter()
                .filter_map(|key| ObjectIdentifier::builder().key(key).build().ok())
                .collect();
            let delete = match Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
            {
                Ok(delete) => delete,
                Err(e) => {
                    let error = Error::Io(format!("S3 DeleteObjects: {e}"));
                    failed.extend(batch.iter().map(|k| (k.clone(), error.clone())));
                    continue;
                }
            };
            match inner
                .client
                .delete_objects()
                .bucket(&inner.bucket)
                .delete(delete)
                .send()
                .await
            {
                Ok(output) => {
                    for error in output.errors.unwrap_or_default() {
                        let code = error.code.unwrap_or_default();
                        if code == "NoSuchKey" {
                            continue;
                        }
                        let reason = format!(
                            "S3 DeleteObjects: {code}: {}",
                            error.message.unwrap_or_default()
                        );
                        let error_value = if code == "AccessDenied" {
                            Error::Forbidden(reason)
                        } else {
                            Error::Io(reason)
                        };
                        failed.push((error.key.unwrap_or_default(), error_value));
                    }
                }
                Err(e) => {
                    let error = failure("DeleteObjects", e).into_error();
                    failed.extend(batch.iter().map(|k| (k.clone(), error.clone())));
                }
            }
        }
        failed
    }

    fn member_errors(&self, failed: Vec<(String, Error)>) -> Vec<MemberError> {
        let mut seen = BTreeSet::new();
        failed
            .into_iter()
            .filter_map(|(key, error)| {
                let path = self.path_of(&key);
                seen.insert(path.clone())
                    .then_some(MemberError { path, error })
            })
            .collect()
    }

    // ------------------------------------------------------------ properties

    async fn load_properties(&self, path: &str) -> Result<Option<Vec<Property>>> {
        let inner = &self.0;
        let output = match inner
            .client
            .get_object()
            .bucket(&inner.bucket)
            .key(self.props_key(path)?)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let failure = failure("GetObject", e);
                return if failure.is_not_found() {
                    Ok(None)
                } else {
                    Err(failure.into_error())
                };
            }
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| Error::Io(format!("S3 GetObject body: {e}")))?
            .into_bytes();
        let properties = props::decode(&bytes)
            .map_err(|e| Error::Io(format!("corrupt property object for {path}: {e}")))?;
        Ok(Some(properties))
    }

    async fn store_properties(&self, path: &str, properties: Vec<Property>) -> Result<()> {
        let key = self.props_key(path)?;
        if properties.is_empty() {
            let failed = self.delete_keys(vec![key]).await;
            return match failed.into_iter().next() {
                Some((_, error)) => Err(error),
                None => Ok(()),
            };
        }
        let body = props::encode(path, properties);
        let inner = &self.0;
        inner
            .client
            .put_object()
            .bucket(&inner.bucket)
            .key(key)
            .content_type("application/json")
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| failure("PutObject", e).into_error())?;
        Ok(())
    }

    /// Gives `to` the dead properties of `from` (removing those `to` had when
    /// `replacing` an existing resource).
    async fn copy_properties(&self, from: &str, to: &str, replacing: bool) -> Result<()> {
        let (from_key, to_key) = (self.props_key(from)?, self.props_key(to)?);
        match self.copy_object(&from_key, &to_key, 0).await {
            Ok(()) => Ok(()),
            Err(Error::NotFound) if replacing => match self.delete_keys(vec![to_key]).await.pop() {
                Some((_, error)) => Err(error),
                None => Ok(()),
            },
            Err(Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    // ------------------------------------------------------------ trees

    /// Checks a copy or move and clears the way: returns the source's
    /// metadata and whether a file at the destination is being replaced in
    /// place, or the member errors left by clearing the destination.
    async fn prepare_transfer(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<std::result::Result<(Metadata, bool), Vec<MemberError>>> {
        check_transfer(source, destination)?;
        self.key(destination)?;
        let meta = self.lookup(source).await?.ok_or(Error::NotFound)?;
        let replacing = match self.lookup(destination).await? {
            Some(_) if !overwrite => return Err(Error::AlreadyExists),
            // A file replaces a file in place (CopyObject overwrites).
            Some(existing) if existing.kind == NodeKind::File && meta.kind == NodeKind::File => {
                true
            }
            Some(_) => {
                let errors = self.delete(destination).await?;
                if !errors.is_empty() {
                    return Ok(Err(errors));
                }
                false
            }
            None => {
                self.check_parent(destination).await?;
                false
            }
        };
        Ok(Ok((meta, replacing)))
    }

    /// Copies a collection (its marker, its properties and, if `recursive`,
    /// every key below it); with `remove`, deletes what was copied (a move).
    async fn transfer_collection(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        remove: bool,
    ) -> Result<Vec<MemberError>> {
        let (from_dir, to_dir) = (self.dir(source)?, self.dir(destination)?);
        self.put_empty(&to_dir).await?;
        let mut failed: Vec<(String, Error)> = Vec::new();
        // Source keys that could not be copied: their ancestors must stay.
        let mut kept: Vec<String> = Vec::new();
        if let Err(e) = self.copy_properties(source, destination, false).await {
            failed.push((self.props_key(destination)?, e));
            kept.push(self.props_key(source)?);
        }
        if !recursive {
            return Ok(self.member_errors(failed));
        }
        let mut markers = vec![from_dir.clone()];
        let mut start_after: Option<String> = None;
        loop {
            let listing = match self
                .list(&from_dir, false, MAX_KEYS, start_after.as_deref(), None)
                .await
            {
                Ok(listing) => listing,
                Err(e) => {
                    failed.push((to_dir.clone(), e));
                    kept.push(from_dir.clone());
                    break;
                }
            };
            start_after = listing.objects.last().map(|o| o.key.clone());
            let items = listing
                .objects
                .into_iter()
                .filter(|o| o.key != from_dir)
                .map(|o| {
                    let to = format!("{to_dir}{}", &o.key[from_dir.len()..]);
                    (o.key, to, o.size)
                })
                .collect();
            let mut copied = Vec::new();
            for (from, to, outcome) in self.copy_objects(items).await {
                match outcome {
                    Ok(()) if from.ends_with('/') => markers.push(from),
                    Ok(()) => copied.push(from),
                    Err(e) => {
                        failed.push((to, e));
                        kept.push(from);
                    }
                }
            }
            if remove {
                for (key, error) in self.delete_keys(copied).await {
                    kept.push(key.clone());
                    failed.push((key, error));
                }
            }
            if !listing.truncated || start_after.is_none() {
                break;
            }
        }
        if remove {
            let markers = markers
                .into_iter()
                .filter(|marker| !kept.iter().any(|k| k.starts_with(marker.as_str())))
                .collect();
            failed.extend(self.delete_keys(markers).await);
            if kept.is_empty() {
                failed.extend(self.delete_keys(vec![self.props_key(source)?]).await);
            }
        }
        Ok(self.member_errors(failed))
    }

    /// Deletes every key below `dir` (page by page), then the collection
    /// markers that no longer have a failed member below them.
    async fn delete_tree(&self, dir: &str) -> Result<Vec<(String, Error)>> {
        let mut failed = Vec::new();
        let mut markers = Vec::new();
        let mut start_after: Option<String> = None;
        let mut first = true;
        loop {
            let listing = match self
                .list(dir, false, MAX_KEYS, start_after.as_deref(), None)
                .await
            {
                Ok(listing) => listing,
                // Nothing was deleted yet: the whole delete fails.
                Err(e) if first => return Err(e),
                Err(e) => {
                    failed.push((dir.to_owned(), e));
                    break;
                }
            };
            first = false;
            start_after = listing.objects.last().map(|o| o.key.clone());
            let (page_markers, keys): (Vec<String>, Vec<String>) = listing
                .objects
                .into_iter()
                .map(|o| o.key)
                .partition(|k| k.ends_with('/'));
            markers.extend(page_markers);
            failed.extend(self.delete_keys(keys).await);
            if !listing.truncated || start_after.is_none() {
                break;
            }
        }
        let markers = markers
            .into_iter()
            .filter(|m| !failed.iter().any(|(k, _)| k.starts_with(m.as_str())))
            .collect();
        failed.extend(self.delete_keys(markers).await);
        Ok(failed)
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

    async fn open_read(&self, path: &str, offset: u64, length: Option<u64>) -> Result<Reader> {
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
        if length == Some(0) {
            return match self.lookup(path).await? {
                Some(meta) if meta.kind == NodeKind::File => Ok(empty()),
                Some(_) => Err(Error::IsACollection),
                None => Err(Error::NotFound),
            };
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
            Ok(output) => Ok(Box::new(S3Reader {
                body: Some(output.body),
                pending: Bytes::new(),
            })),
            Err(e) => {
                let failure = failure("GetObject", e);
                if failure.status == Some(416) || failure.code.as_deref() == Some("InvalidRange") {
                    // Past the end: nothing to read, as from a file.
                    Ok(empty())
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

/// One page of ListObjectsV2.
struct Listing {
    objects: Vec<Object>,
    prefixes: Vec<String>,
    /// The continuation token, when truncated.
    next: Option<String>,
    truncated: bool,
}

impl Listing {
    /// The greatest key or common prefix of the page (each list is sorted).
    fn last_key(&self) -> Option<&str> {
        let object = self.objects.last().map(|o| o.key.as_str());
        let prefix = self.prefixes.last().map(String::as_str);
        object.max(prefix)
    }
}

struct Object {
    key: String,
    size: u64,
    etag: String,
    modified: Timestamp,
}

impl Object {
    fn metadata(&self) -> Metadata {
        Metadata {
            kind: NodeKind::File,
            size: self.size,
            modified: self.modified,
            created: None,
            etag: self.etag.clone(),
            content_type: None,
        }
    }
}

/// Streams a GetObject body.
struct S3Reader {
    body: Option<ByteStream>,
    pending: Bytes,
}

#[async_trait]
impl FileReader for S3Reader {
    async fn read(&mut self, max: u32) -> Result<Vec<u8>> {
        let max = max as usize;
        let mut out = Vec::new();
        while out.len() < max {
            if self.pending.is_empty() {
                let Some(body) = self.body.as_mut() else {
                    break;
                };
                match body.next().await {
                    Some(Ok(chunk)) => self.pending = chunk,
                    Some(Err(e)) => return Err(Error::Io(format!("S3 GetObject body: {e}"))),
                    None => {
                        self.body = None;
                        break;
                    }
                }
                continue;
            }
            if out.is_empty() {
                out.reserve(max.min(self.pending.len().max(64 << 10)));
            }
            let take = (max - out.len()).min(self.pending.len());
            out.extend_from_slice(&self.pending.split_to(take));
        }
        Ok(out)
    }
}

/// The `writer` resource: an [`Upload`] to `path`.
struct S3Writer {
    s3: S3Backend,
    path: String,
    partial: bool,
    upload: Upload,
}

#[async_trait]
impl FileWriter for S3Writer {
    async fn write(&mut self, data: Vec<u8>) -> Result<()> {
        self.upload.write(&data).await
    }

    /// Publishes under the key's commit lock (see the module docs on
    /// created or replaced).
    async fn commit(self: Box<Self>) -> Result<Committed> {
        let S3Writer {
            s3,
            path,
            partial,
            upload,
        } = *self;
        let key = s3.key(&path)?;
        let _serial = s3.commit_lock(&key).lock().await;
        let existed = match s3.lookup(&path).await? {
            Some(_) if upload.create_only => return Err(Error::AlreadyExists),
            Some(meta) if meta.kind == NodeKind::Collection => return Err(Error::IsACollection),
            found => found.is_some(),
        };
        let metadata = upload.commit().await?;
        Ok(Committed {
            metadata,
            created: !existed && !partial,
        })
    }
}

/// An S3 failure with what the callers need to tell cases apart.
struct Failure {
    status: Option<u16>,
    code: Option<String>,
    text: String,
}

fn failure<E>(operation: &str, error: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    Failure {
        status: error.raw_response().map(|r| r.status().as_u16()),
        code: error.code().map(str::to_owned),
        text: format!("S3 {operation}: {}", DisplayErrorContext(&error)),
    }
}

impl Failure {
    fn is_not_found(&self) -> bool {
        matches!(self.code.as_deref(), Some("NoSuchKey" | "NotFound"))
            || (self.status == Some(404) && self.code.as_deref() != Some("NoSuchBucket"))
    }

    fn into_error(self) -> Error {
        if self.is_not_found() {
            return Error::NotFound;
        }
        match (self.status, self.code.as_deref()) {
            (_, Some("EntityTooLarge")) | (Some(413), _) => Error::TooLarge,
            (_, Some("QuotaExceeded")) | (Some(507), _) => Error::NoSpace,
            (_, Some("AccessDenied")) | (Some(403), _) => Error::Forbidden(self.text),
            (Some(412), _) => Error::Conflict(self.text),
            _ => Error::Io(self.text),
        }
    }

    /// For reads and copies made against an ETag: a failed precondition
    /// means the object changed since.
    fn changed_meanwhile(self) -> Error {
        if self.status == Some(412) || self.code.as_deref() == Some("PreconditionFailed") {
            Error::Conflict("the file changed during the update".into())
        } else {
            self.into_error()
        }
    }
}

fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", utf8_percent_encode(key, COPY_SOURCE))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_and_ancestors() {
        assert_eq!(split_parent("/a"), ("/", "a"));
        assert_eq!(split_parent("/a/b/c"), ("/a/b", "c"));
        assert!(valid_name("x.txt"));
        assert!(!valid_name(""));
        assert!(!valid_name(".edgedav"));
        assert!(!valid_name("a/b"));
    }

    /// A backend whose client is never used (no request is sent).
    fn offline(root: &str) -> S3Backend {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("test"))
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .build_https(),
            )
            .build();
        S3Backend(Arc::new(Inner::new(
            Client::from_conf(config),
            "bucket".into(),
            root.into(),
        )))
    }

    #[test]
    fn keys_of_paths() {
        let s = offline("p/");
        assert_eq!(s.key("/").unwrap(), "p/");
        assert_eq!(s.key("/a/b c").unwrap(), "p/a/b c");
        assert_eq!(s.dir("/").unwrap(), "p/");
        assert_eq!(s.dir("/a").unwrap(), "p/a/");
        assert_eq!(s.props_key("/").unwrap(), "p/.edgedav/root-props");
        assert_eq!(s.props_key("/a").unwrap(), "p/.edgedav/props/a");
        assert_eq!(s.props_key("/a/b").unwrap(), "p/a/.edgedav/props/b");

        let bare = offline("");
        assert_eq!(bare.key("/").unwrap(), "");
        assert_eq!(bare.dir("/").unwrap(), "");
        assert_eq!(bare.key("/a/b").unwrap(), "a/b");
        assert_eq!(bare.dir("/a/b").unwrap(), "a/b/");
        assert_eq!(bare.props_key("/a").unwrap(), ".edgedav/props/a");
        assert_eq!(bare.props_key("/").unwrap(), ".edgedav/root-props");

        for bad in [
            "relative",
            "/a/../b",
            "/./a",
            "/.edgedav",
            "/a/.edgedav/props/b",
            "/a\0b",
        ] {
            assert!(matches!(s.key(bad), Err(Error::Forbidden(_))), "{bad}");
        }
        // S3 keys have at most 1,024 bytes, property keys included.
        let long = format!("/{}", "x".repeat(1000));
        assert!(s.key(&long).is_ok());
        assert!(s.props_key(&long).unwrap().len() <= MAX_KEY_LEN);
        let too_long = format!("/{}", "x".repeat(1010));
        assert_eq!(s.key(&too_long), Err(name_too_long()));
    }

    #[test]
    fn paths_of_keys() {
        let s = offline("p/");
        for (key, path) in [
            ("p/", "/"),
            ("p/a", "/a"),
            ("p/a/", "/a"),
            ("p/a/b/", "/a/b"),
            ("p/a/.edgedav/props/b", "/a/b"),
            ("p/.edgedav/props/a", "/a"),
            ("p/.edgedav/root-props", "/"),
        ] {
            assert_eq!(s.path_of(key), path, "{key}");
        }
        // Every key maps back to the path it was made from.
        for path in ["/a", "/a/b", "/x y/z"] {
            assert_eq!(s.path_of(&s.key(path).unwrap()), path);
            assert_eq!(s.path_of(&s.dir(path).unwrap()), path);
            assert_eq!(s.path_of(&s.props_key(path).unwrap()), path);
        }
    }

    #[test]
    fn collection_etags_differ_by_path() {
        let s = offline("p/");
        let a = s.collection_meta("p/a/");
        assert_eq!(a.etag, s.collection_meta("p/a/").etag);
        assert_ne!(a.etag, s.collection_meta("p/b/").etag);
        assert!(matches!(a.kind, NodeKind::Collection));
    }

    #[test]
    fn copy_sources_are_percent_encoded() {
        assert_eq!(
            copy_source("b", "dir/a b+c%d&é.txt"),
            "b/dir/a%20b%2Bc%25d%26%C3%A9.txt"
        );
        assert_eq!(copy_source("b", "x-y_z.~/"), "b/x-y_z.~/");
    }
}
