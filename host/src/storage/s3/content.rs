//! Reading an object (a ranged GetObject streamed chunk by chunk) and
//! writing one (an [`Upload`] committed under the path's stripe lock).

use super::*;

/// Streams a GetObject body.
pub(super) struct S3Reader {
    pub(super) body: Option<ByteStream>,
    pub(super) pending: Bytes,
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
pub(super) struct S3Writer {
    pub(super) s3: S3Backend,
    pub(super) path: String,
    pub(super) partial: bool,
    pub(super) upload: Upload,
}

#[async_trait]
impl FileWriter for S3Writer {
    async fn write(&mut self, data: Bytes) -> Result<()> {
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
