//! Writing objects: a multipart-upload assembler behind the `writer`
//! resource, also used for partial updates and for copies too big for one
//! CopyObject.
//!
//! The object is assembled from *data* (bytes written by the guest, or small
//! ranges read from the object being updated) and *copied ranges* of an
//! existing object (UploadPartCopy, which never passes through the host).
//! Data accumulates in one buffer of at most `part_size` bytes; a full buffer
//! becomes a part whose upload starts at once while more data arrives, with
//! at most [`PARTS_IN_FLIGHT`] parts uploading, so an upload holds at most
//! `(PARTS_IN_FLIGHT + 1) * part_size` bytes whatever its size. Content that
//! never fills a part goes as one PutObject. The multipart upload is created
//! on the first full part and aborted when the writer is dropped without a
//! successful commit (including after any failure), so nothing is visible
//! before CompleteMultipartUpload.
//!
//! S3 wants every part but the last to be at least [`MIN_PART`] long and a
//! copied part at most [`MAX_COPY_PART`]: a copied range that would follow a
//! shorter buffer first tops the buffer up with bytes read from the start of
//! that range, a short range that is not the last piece is read rather than
//! copied, and long ranges are split.

use std::time::SystemTime;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use memmap2::MmapMut;
use tokio::task::JoinSet;

use super::{S3Backend, copy_source, strip_quotes, timestamp};
use crate::storage::{Error, Metadata, NodeKind, Result};

/// Smallest part S3 accepts (except for the last one).
pub(super) const MIN_PART: u64 = 5 << 20;
/// Default size of a data part.
pub(super) const PART_SIZE: u64 = 8 << 20;
/// Largest part (and largest range one UploadPartCopy may copy).
pub(super) const MAX_COPY_PART: u64 = 5 << 30;
/// Most parts one multipart upload may have.
const MAX_PARTS: i32 = 10_000;
/// Largest object S3 stores.
pub(super) const MAX_OBJECT: u64 = 5 << 40;
/// Part uploads running at once for one writer.
pub(super) const PARTS_IN_FLIGHT: usize = 2;
/// Data parts after which the part size doubles, so an upload of unknown
/// length can reach S3's object limit within its 10,000 parts.
const PARTS_PER_DOUBLING: i32 = 2_000;

/// The existing object a partial update reads and copies from.
pub(super) struct Source {
    pub key: String,
    /// Its ETag (unquoted) when the update began: every read and copy is
    /// conditional on it, so a concurrent change fails the update.
    pub etag: String,
    pub size: u64,
}

/// A partial update in progress: the new bytes go at `offset` of `source`.
struct Patch {
    source: Source,
    offset: u64,
}

pub(super) struct Upload {
    s3: S3Backend,
    key: String,
    content_type: Option<String>,
    base_part_size: u64,
    buffer: PartBuffer,
    upload_id: Option<String>,
    next_part: i32,
    in_flight: JoinSet<Result<CompletedPart>>,
    parts: Vec<CompletedPart>,
    /// Bytes of the assembled object so far (buffered, uploading or copied).
    assembled: u64,
    /// Bytes given to [`Upload::write`].
    written: u64,
    patch: Option<Patch>,
    /// Publish only if no object is at the key (`If-None-Match: *`, see
    /// [`super`]'s docs on create-only commits).
    pub(super) create_only: bool,
    completed: bool,
}

/// What a part is made of.
enum PartSource {
    Data(Bytes),
    Copy {
        source: String,
        etag: Option<String>,
        start: u64,
        end: u64,
    },
}

impl Upload {
    pub(super) fn new(
        s3: S3Backend,
        key: String,
        content_type: Option<String>,
        expected_size: Option<u64>,
    ) -> Self {
        // Parts large enough for the announced size to fit in 9,000 parts,
        // rounded up to whole MiB.
        let base_part_size = expected_size
            .map(|size| size.div_ceil(9_000).next_multiple_of(1 << 20))
            .unwrap_or(0)
            .clamp(PART_SIZE, MAX_COPY_PART);
        Self {
            s3,
            key,
            content_type,
            base_part_size,
            buffer: PartBuffer::default(),
            upload_id: None,
            next_part: 1,
            in_flight: JoinSet::new(),
            parts: Vec::new(),
            assembled: 0,
            written: 0,
            patch: None,
            create_only: false,
            completed: false,
        }
    }

    /// Starts a partial update of `source` (the object at this upload's key)
    /// at `offset`: the kept prefix is copied (or, when short, read) now.
    pub(super) async fn start_patch(&mut self, source: Source, offset: u64) -> Result<()> {
        let (key, etag) = (source.key.clone(), source.etag.clone());
        self.patch = Some(Patch { source, offset });
        self.append_range(&key, Some(&etag), 0, offset, false).await
    }

    /// Copies a whole object of `size` bytes (for copies above the
    /// single-request limit).
    pub(super) async fn copy_all(
        &mut self,
        source: &str,
        etag: Option<&str>,
        size: u64,
    ) -> Result<()> {
        self.append_range(source, etag, 0, size, true).await
    }

    fn part_size(&self) -> u64 {
        let doublings = ((self.next_part - 1) / PARTS_PER_DOUBLING).min(10) as u32;
        (self.base_part_size << doublings).min(MAX_COPY_PART)
    }

    pub(super) async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.written += data.len() as u64;
        self.append_data(data).await
    }

    async fn append_data(&mut self, mut data: &[u8]) -> Result<()> {
        if self.assembled + data.len() as u64 > MAX_OBJECT {
            return Err(Error::TooLarge);
        }
        while !data.is_empty() {
            let part_size = self.part_size() as usize;
            if self.buffer.len() >= part_size {
                self.flush_buffer().await?;
                continue;
            }
            let take = (part_size - self.buffer.len()).min(data.len());
            self.buffer.extend(&data[..take], part_size)?;
            self.assembled += take as u64;
            data = &data[take..];
            if self.buffer.len() >= part_size {
                self.flush_buffer().await?;
            }
        }
        Ok(())
    }

    /// Appends bytes `start..end` of the object `source`, copied server-side
    /// where S3's part rules allow and read otherwise. `last` says nothing
    /// will follow (the final part may be short).
    async fn append_range(
        &mut self,
        source: &str,
        etag: Option<&str>,
        mut start: u64,
        end: u64,
        last: bool,
    ) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        if !self.buffer.is_empty() {
            let buffered = self.buffer.len() as u64;
            if buffered < MIN_PART {
                // The buffer would be a part shorter than S3 allows before
                // the copied one: top it up from the start of the range.
                let take = (MIN_PART - buffered).min(end - start);
                self.read_into_buffer(source, etag, start, start + take)
                    .await?;
                start += take;
                if start == end {
                    return Ok(());
                }
            }
            self.flush_buffer().await?;
        }
        let length = end - start;
        if length < MIN_PART && !last {
            // Too short to be a part of its own: read it (less than 5 MiB).
            return self.read_into_buffer(source, etag, start, end).await;
        }
        let pieces = length.div_ceil(MAX_COPY_PART);
        let piece = length.div_ceil(pieces);
        while start < end {
            let stop = (start + piece).min(end);
            self.spawn_part(PartSource::Copy {
                source: source.to_owned(),
                etag: etag.map(str::to_owned),
                start,
                end: stop,
            })
            .await?;
            self.assembled += stop - start;
            start = stop;
        }
        Ok(())
    }

    async fn read_into_buffer(
        &mut self,
        source: &str,
        etag: Option<&str>,
        start: u64,
        end: u64,
    ) -> Result<()> {
        let mut request = self
            .s3
            .0
            .client
            .get_object()
            .bucket(&self.s3.0.bucket)
            .key(source)
            .range(format!("bytes={}-{}", start, end - 1));
        if let Some(etag) = etag {
            request = request.if_match(format!("\"{etag}\""));
        }
        let output = request
            .send()
            .await
            .map_err(|e| super::failure("GetObject", e).changed_meanwhile())?;
        let mut body = output.body;
        let wanted = (end - start) as usize;
        let part_size = self.part_size() as usize;
        self.buffer.reserve(wanted, part_size)?;
        let before = self.buffer.len();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::Io(format!("S3 GetObject body: {e}")))?;
            self.buffer.extend(&chunk, part_size)?;
        }
        let read = self.buffer.len() - before;
        if read != wanted {
            return Err(Error::Conflict(format!(
                "the file changed during the update (read {read} of {wanted} bytes)"
            )));
        }
        self.assembled += read as u64;
        Ok(())
    }

    async fn flush_buffer(&mut self) -> Result<()> {
        let data = self.buffer.take();
        self.spawn_part(PartSource::Data(data)).await
    }

    /// Starts uploading one part, after waiting for a free slot.
    async fn spawn_part(&mut self, part: PartSource) -> Result<()> {
        if self.next_part > MAX_PARTS {
            return Err(Error::TooLarge);
        }
        let upload_id = self.upload_id().await?;
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.join_one().await?;
        }
        let number = self.next_part;
        self.next_part += 1;
        let s3 = self.s3.clone();
        let key = self.key.clone();
        self.in_flight.spawn(async move {
            let inner = &s3.0;
            let etag = match part {
                PartSource::Data(data) => inner
                    .client
                    .upload_part()
                    .bucket(&inner.bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .content_length(data.len() as i64)
                    .body(ByteStream::from(data))
                    .send()
                    .await
                    .map_err(|e| super::failure("UploadPart", e).into_error())?
                    .e_tag
                    .unwrap_or_default(),
                PartSource::Copy {
                    source,
                    etag,
                    start,
                    end,
                } => {
                    let mut request = inner
                        .client
                        .upload_part_copy()
                        .bucket(&inner.bucket)
                        .key(&key)
                        .upload_id(&upload_id)
                        .part_number(number)
                        .copy_source(copy_source(&inner.bucket, &source))
                        .copy_source_range(format!("bytes={}-{}", start, end - 1));
                    if let Some(etag) = etag {
                        request = request.copy_source_if_match(format!("\"{etag}\""));
                    }
                    request
                        .send()
                        .await
                        .map_err(|e| super::failure("UploadPartCopy", e).changed_meanwhile())?
                        .copy_part_result
                        .and_then(|r| r.e_tag)
                        .unwrap_or_default()
                }
            };
            Ok(CompletedPart::builder()
                .part_number(number)
                .e_tag(etag)
                .build())
        });
        Ok(())
    }

    async fn join_one(&mut self) -> Result<()> {
        match self.in_flight.join_next().await {
            Some(Ok(Ok(part))) => {
                self.parts.push(part);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(Error::Io(format!("part upload task failed: {e}"))),
            None => Ok(()),
        }
    }

    /// The multipart upload's id, creating the upload on first use.
    async fn upload_id(&mut self) -> Result<String> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let inner = &self.s3.0;
        let output = inner
            .client
            .create_multipart_upload()
            .bucket(&inner.bucket)
            .key(&self.key)
            .set_content_type(self.content_type.clone())
            .send()
            .await
            .map_err(|e| super::failure("CreateMultipartUpload", e).into_error())?;
        let id = output
            .upload_id
            .ok_or_else(|| Error::Io("S3 CreateMultipartUpload: no upload id".into()))?;
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    /// Publishes the object (see the module docs); returns its metadata.
    pub(super) async fn commit(mut self) -> Result<Metadata> {
        if let Some(patch) = self.patch.take() {
            let tail = patch.offset + self.written;
            let Source { key, etag, size } = patch.source;
            self.append_range(&key, Some(&etag), tail, size, true)
                .await?;
        }
        let inner = self.s3.0.clone();
        let if_none_match = self.create_only.then(|| "*".to_owned());
        let create_only = self.create_only;
        // A store that honours the condition refuses an existing key.
        let refused = move |failure: super::Failure| {
            let precondition = failure.status == Some(412)
                || failure.code.as_deref() == Some("PreconditionFailed");
            if create_only && precondition {
                Error::AlreadyExists
            } else {
                failure.into_error()
            }
        };
        let etag = match self.upload_id.clone() {
            None => {
                let data = self.buffer.take();
                inner
                    .client
                    .put_object()
                    .bucket(&inner.bucket)
                    .key(&self.key)
                    .set_content_type(self.content_type.clone())
                    .set_if_none_match(if_none_match)
                    .content_length(data.len() as i64)
                    .body(ByteStream::from(data))
                    .send()
                    .await
                    .map_err(|e| refused(super::failure("PutObject", e)))?
                    .e_tag
            }
            Some(upload_id) => {
                if !self.buffer.is_empty() {
                    self.flush_buffer().await?;
                }
                while !self.in_flight.is_empty() {
                    self.join_one().await?;
                }
                let mut parts = std::mem::take(&mut self.parts);
                parts.sort_by_key(|p| p.part_number);
                inner
                    .client
                    .complete_multipart_upload()
                    .bucket(&inner.bucket)
                    .key(&self.key)
                    .upload_id(upload_id)
                    .set_if_none_match(if_none_match)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| refused(super::failure("CompleteMultipartUpload", e)))?
                    .e_tag
            }
        };
        self.completed = true;
        Ok(Metadata {
            kind: NodeKind::File,
            size: self.assembled,
            modified: timestamp(SystemTime::now()),
            created: None,
            etag: strip_quotes(etag.as_deref().unwrap_or_default()),
            content_type: None,
        })
    }
}

/// A part being assembled, in an anonymous memory mapping of its own: its
/// pages go back to the operating system as soon as the part is uploaded.
/// (From the heap, glibc keeps freed blocks of this size in its arenas:
/// measured, that grew the host's RSS by some 30 MiB more per upload.)
/// Untouched capacity costs address space, not memory.
#[derive(Default)]
struct PartBuffer {
    map: Option<MmapMut>,
    len: usize,
}

impl PartBuffer {
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes room for `additional` more bytes; a new mapping has at least
    /// `capacity` bytes.
    fn reserve(&mut self, additional: usize, capacity: usize) -> Result<()> {
        let needed = self.len + additional;
        if self.map.as_ref().is_some_and(|map| map.len() >= needed) {
            return Ok(());
        }
        let mut map = MmapMut::map_anon(needed.max(capacity).max(1))
            .map_err(|e| Error::Io(format!("allocating an upload buffer: {e}")))?;
        if let Some(old) = &self.map {
            map[..self.len].copy_from_slice(&old[..self.len]);
        }
        self.map = Some(map);
        Ok(())
    }

    fn extend(&mut self, data: &[u8], capacity: usize) -> Result<()> {
        self.reserve(data.len(), capacity)?;
        let map = self.map.as_mut().expect("room was reserved");
        map[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
        Ok(())
    }

    /// The content, leaving the buffer empty (and unmapped).
    fn take(&mut self) -> Bytes {
        let len = std::mem::take(&mut self.len);
        match self.map.take() {
            Some(map) if len > 0 => Bytes::from_owner(map).slice(..len),
            _ => Bytes::new(),
        }
    }
}

impl Drop for Upload {
    /// Aborts an upload that was not completed: in-flight parts are
    /// cancelled (dropping the JoinSet aborts its tasks) and the multipart
    /// upload is aborted in the background.
    fn drop(&mut self) {
        self.in_flight.abort_all();
        if self.completed {
            return;
        }
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(key = %self.key, "cannot abort an S3 multipart upload outside the runtime");
            return;
        };
        let s3 = self.s3.clone();
        let key = std::mem::take(&mut self.key);
        runtime.spawn(async move {
            let inner = &s3.0;
            let aborted = inner
                .client
                .abort_multipart_upload()
                .bucket(&inner.bucket)
                .key(&key)
                .upload_id(&upload_id)
                .send()
                .await;
            match aborted {
                Ok(_) => tracing::debug!(%key, "aborted an unfinished S3 multipart upload"),
                Err(e) => tracing::warn!(
                    %key,
                    %upload_id,
                    error = %super::failure("AbortMultipartUpload", e).text,
                    "could not abort an S3 multipart upload; a bucket lifecycle rule \
                     (AbortIncompleteMultipartUpload) will have to clean it up"
                ),
            }
        });
    }
}
