//! A [`Backend`] wrapper that enforces a user's policy: per-path permissions,
//! quota (bytes and files) and the maximum upload size.
//!
//! Authorization lives here, in the host, and not in the component: every
//! request's component instance gets its user's home wrapped in a guard, so
//! whatever the handler asks, a refused operation comes back as a contract
//! error (`forbidden`, `no-space`, `too-large`) that the handler turns into
//! 403, 507 or 413. The guard works over any backend (it only calls the
//! [`Backend`] trait), so S3 homes get the same enforcement.
//!
//! Quota is checked before an upload starts (against the announced size the
//! handler passes as `expected-size`, from Content-Length or
//! X-Expected-Entity-Length) and enforced while it streams: a write that
//! would exceed it fails with `no-space`, the writer is dropped uncommitted
//! and nothing is published. Usage accounting is described in
//! [`crate::storage::quota`].

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    Backend, Committed, Error, FileWriter, MemberError, Metadata, NodeKind, Opened, Page, Property,
    PropertyChange, Result, Space, WriteOptions, Writer, check_transfer,
};
use crate::gate::perms::{PermSet, Permissions};
use crate::storage::quota::{Amount, Quota, Usage, measure};

/// What a user may do in their home.
#[derive(Debug, Clone)]
pub struct Policy {
    pub perms: Arc<Permissions>,
    pub quota: Quota,
    /// Largest file an upload may create, in bytes.
    pub max_upload: Option<u64>,
}

/// A user's view of their home.
pub struct Guarded {
    inner: Arc<dyn Backend>,
    policy: Arc<Policy>,
    /// Present when the home's usage is tracked (some user of the home
    /// has a quota).
    usage: Option<Arc<Usage>>,
}

impl Guarded {
    pub fn new(inner: Arc<dyn Backend>, policy: Arc<Policy>, usage: Option<Arc<Usage>>) -> Self {
        Self {
            inner,
            policy,
            usage,
        }
    }

    fn require(&self, held: PermSet, needed: PermSet, what: &str, path: &str) -> Result<()> {
        if held.contains(needed) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "permission denied: {what} {path} needs {needed}"
            )))
        }
    }

    /// The metadata at `path`, or `None` when nothing is there.
    async fn existing(&self, path: &str) -> Result<Option<Metadata>> {
        match self.inner.stat(path).await {
            Ok(meta) => Ok(Some(meta)),
            Err(Error::NotFound | Error::NotACollection) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What is stored at each of `paths`, when quota is tracked.
    async fn measure_all(&self, paths: &[&str]) -> Result<Option<Amount>> {
        if self.usage.is_none() {
            return Ok(None);
        }
        let mut total = Amount::default();
        for path in paths {
            let amount = measure(&*self.inner, path).await?;
            total.bytes += amount.bytes;
            total.files += amount.files;
        }
        Ok(Some(total))
    }

    /// The `result` of an operation on `paths`, which measured `before` it
    /// (`None`: not counted). When it succeeded, the paths are measured
    /// again and the change applied to the usage. The change is done by
    /// then: a failure to count it (the cluster's database gone meanwhile)
    /// is logged, not reported as the operation's.
    async fn account<T>(
        &self,
        before: Option<Amount>,
        paths: &[&str],
        result: Result<T>,
    ) -> Result<T> {
        if let (Ok(_), Some(usage), Some(before)) = (&result, &self.usage, before)
            && let Ok(Some(after)) = self.measure_all(paths).await
        {
            let counted = usage
                .apply(
                    i128::from(after.bytes) - i128::from(before.bytes),
                    i128::from(after.files) - i128::from(before.files),
                )
                .await;
            if let Err(e) = counted {
                tracing::warn!(error = ?e, "quota usage not updated after a change");
            }
        }
        result
    }

    /// Checks what a destination that may exist requires of the user.
    fn require_replaceable(&self, destination: &str, existing: &Option<Metadata>) -> Result<()> {
        let Some(meta) = existing else { return Ok(()) };
        let held = self.policy.perms.for_entry(destination);
        self.require(held, PermSet::OVERWRITE, "replacing", destination)?;
        if matches!(meta.kind, NodeKind::Collection) {
            self.require(held, PermSet::DELETE, "replacing", destination)?;
            self.require_below(destination, PermSet::DELETE, "replacing")?;
        }
        Ok(())
    }

    fn require_below(&self, path: &str, needed: PermSet, what: &str) -> Result<()> {
        if self.policy.perms.restricted_below(path, needed) {
            Err(Error::Forbidden(format!(
                "permission denied: {what} {path} would reach a directory without {needed}"
            )))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Backend for Guarded {
    async fn stat(&self, path: &str) -> Result<Metadata> {
        self.inner.stat(path).await
    }

    async fn list_members(&self, path: &str, cursor: Option<String>, limit: u32) -> Result<Page> {
        let held = self.policy.perms.in_dir(path);
        self.require(held, PermSet::LIST, "listing", path)?;
        self.inner.list_members(path, cursor, limit).await
    }

    async fn open_read(&self, path: &str, offset: u64, length: Option<u64>) -> Result<Opened> {
        let held = self.policy.perms.for_entry(path);
        self.require(held, PermSet::DOWNLOAD, "reading", path)?;
        self.inner.open_read(path, offset, length).await
    }

    async fn open_write(&self, path: &str, options: WriteOptions) -> Result<Writer> {
        let existing = self.existing(path).await?;
        let held = self.policy.perms.for_entry(path);
        self.require(held, PermSet::UPLOAD, "uploading", path)?;
        let old_size = match &existing {
            // The backend refuses this; let it say so.
            Some(meta) if matches!(meta.kind, NodeKind::Collection) => {
                return self.inner.open_write(path, options).await;
            }
            Some(meta) => {
                self.require(held, PermSet::OVERWRITE, "replacing", path)?;
                Some(meta.size)
            }
            None => None,
        };
        // A partial update (`offset`) rewrites the file from there on.
        let offset = options.offset.unwrap_or(0);
        // `expected_size` is the size of the whole file once written.
        if let (Some(max), Some(expected)) = (self.policy.max_upload, options.expected_size)
            && expected > max
        {
            return Err(Error::TooLarge);
        }
        // A new file takes a file slot for as long as it is being written.
        let mut reserved = Amount::default();
        if let Some(usage) = &self.usage {
            let growth = options
                .expected_size
                .map_or(0, |size| size.saturating_sub(old_size.unwrap_or(0)));
            let new_file = u64::from(old_size.is_none());
            let growth = Amount {
                bytes: growth,
                files: new_file,
            };
            let slot = Amount {
                bytes: 0,
                files: new_file,
            };
            if !usage.fits(growth, &self.policy.quota).await?
                || !usage.try_reserve(slot, &self.policy.quota).await?
            {
                return Err(Error::NoSpace);
            }
            reserved.files = new_file;
        }
        let writer = match self.inner.open_write(path, options).await {
            Ok(writer) => writer,
            Err(e) => {
                if let Some(usage) = &self.usage {
                    usage.release(reserved);
                }
                return Err(e);
            }
        };
        Ok(Box::new(GuardedWriter {
            inner: Some(writer),
            usage: self.usage.clone(),
            policy: self.policy.clone(),
            old_size,
            offset,
            written: 0,
            reserved,
        }))
    }

    async fn create_collection(&self, path: &str) -> Result<()> {
        let held = self.policy.perms.for_entry(path);
        self.require(held, PermSet::CREATE_DIRS, "creating", path)?;
        self.inner.create_collection(path).await
    }

    async fn delete(&self, path: &str) -> Result<Vec<MemberError>> {
        let held = self.policy.perms.for_entry(path);
        self.require(held, PermSet::DELETE, "deleting", path)?;
        self.require_below(path, PermSet::DELETE, "deleting")?;
        let before = self.measure_all(&[path]).await?;
        let result = self.inner.delete(path).await;
        self.account(before, &[path], result).await
    }

    async fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> Result<Vec<MemberError>> {
        check_transfer(source, destination)?;
        let perms = &self.policy.perms;
        let source_meta = self.inner.stat(source).await?;
        self.require(
            perms.for_entry(source),
            PermSet::DOWNLOAD,
            "copying",
            source,
        )?;
        let source_is_dir = matches!(source_meta.kind, NodeKind::Collection);
        if source_is_dir && recursive {
            self.require(perms.in_dir(source), PermSet::LIST, "copying", source)?;
            self.require_below(source, PermSet::DOWNLOAD, "copying")?;
        }
        let held = perms.for_entry(destination);
        self.require(held, PermSet::UPLOAD, "copying to", destination)?;
        if source_is_dir {
            self.require(held, PermSet::CREATE_DIRS, "copying to", destination)?;
        }
        let existing = self.existing(destination).await?;
        if overwrite {
            self.require_replaceable(destination, &existing)?;
        }
        let before = self.measure_all(&[destination]).await?;
        if let (Some(usage), Some(before)) = (&self.usage, before) {
            let incoming = if source_is_dir && !recursive {
                Amount::default()
            } else {
                measure(&*self.inner, source).await?
            };
            let growth = Amount {
                bytes: incoming.bytes.saturating_sub(before.bytes),
                files: incoming.files.saturating_sub(before.files),
            };
            if !usage.fits(growth, &self.policy.quota).await? {
                return Err(Error::NoSpace);
            }
        }
        let result = self
            .inner
            .copy(source, destination, recursive, overwrite)
            .await;
        self.account(before, &[destination], result).await
    }

    async fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<Vec<MemberError>> {
        check_transfer(source, destination)?;
        let perms = &self.policy.perms;
        self.require(perms.for_entry(source), PermSet::RENAME, "moving", source)?;
        self.require_below(source, PermSet::RENAME, "moving")?;
        self.require(
            perms.for_entry(destination),
            PermSet::RENAME,
            "moving to",
            destination,
        )?;
        let existing = self.existing(destination).await?;
        if overwrite {
            self.require_replaceable(destination, &existing)?;
        }
        // Only a replaced destination changes usage; measuring both ends
        // before and after also accounts for partial moves.
        let measured = if existing.is_some() {
            self.measure_all(&[source, destination]).await?
        } else {
            None
        };
        let result = self.inner.rename(source, destination, overwrite).await;
        self.account(measured, &[source, destination], result).await
    }

    async fn get_properties(&self, path: &str) -> Result<Vec<Property>> {
        self.inner.get_properties(path).await
    }

    async fn patch_properties(&self, path: &str, changes: Vec<PropertyChange>) -> Result<()> {
        // Clients set properties (Windows: timestamps) right after creating a
        // file, so uploading is enough.
        let held = self.policy.perms.for_entry(path);
        if !held.intersects(PermSet::UPLOAD.or(PermSet::OVERWRITE)) {
            return Err(Error::Forbidden(format!(
                "permission denied: changing properties of {path} needs upload or overwrite"
            )));
        }
        self.inner.patch_properties(path, changes).await
    }

    async fn space_usage(&self, path: &str) -> Result<Space> {
        let Some(usage) = &self.usage else {
            return self.inner.space_usage(path).await;
        };
        let used = usage.used().await?.bytes;
        let available = match self.policy.quota.max_bytes {
            Some(max) => Some(max.saturating_sub(used)),
            None => self.inner.space_usage(path).await?.available,
        };
        Ok(Space {
            used: Some(used),
            available,
        })
    }
}

/// An upload checked against the maximum size and the quota as it streams.
struct GuardedWriter {
    /// Taken by `commit`.
    inner: Option<Writer>,
    usage: Option<Arc<Usage>>,
    policy: Arc<Policy>,
    /// Size of the file being replaced.
    old_size: Option<u64>,
    /// Where the writing starts (0 unless a partial update); the file's
    /// size once written is `max(old_size, offset + written)`, so up to
    /// `old_size - offset` bytes may be written without reserving quota.
    offset: u64,
    written: u64,
    reserved: Amount,
}

#[async_trait]
impl FileWriter for GuardedWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        let written = self.written.saturating_add(data.len() as u64);
        let end = self.offset.saturating_add(written);
        if self.policy.max_upload.is_some_and(|max| end > max) {
            return Err(Error::TooLarge);
        }
        if let Some(usage) = &self.usage {
            let needed = end.saturating_sub(self.old_size.unwrap_or(0));
            let more = needed.saturating_sub(self.reserved.bytes);
            if more > 0 {
                // Ahead by a step where reserving is costly; near the quota,
                // just what is needed.
                let ahead = more.max(usage.reservation_step());
                let mut granted = 0;
                for ask in [ahead, more] {
                    let amount = Amount {
                        bytes: ask,
                        files: 0,
                    };
                    if usage.try_reserve(amount, &self.policy.quota).await? {
                        granted = ask;
                        break;
                    }
                    if ask == more {
                        break;
                    }
                }
                if granted == 0 {
                    return Err(Error::NoSpace);
                }
                self.reserved.bytes += granted;
            }
        }
        self.written = written;
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| Error::Io("writer already committed".into()))?;
        inner.write(data).await
    }

    async fn commit(mut self: Box<Self>) -> Result<Committed> {
        let inner = self
            .inner
            .take()
            .ok_or_else(|| Error::Io("writer already committed".into()))?;
        let committed = inner.commit().await?;
        if let Some(usage) = &self.usage {
            let reserved = std::mem::take(&mut self.reserved);
            // The commit, not the stat made when the upload began, says
            // whether a file was added (another writer may have won).
            let old_size = if committed.created {
                0
            } else {
                self.old_size.unwrap_or(0)
            };
            usage
                .settle(
                    reserved,
                    i128::from(committed.metadata.size) - i128::from(old_size),
                    i128::from(committed.created),
                )
                .await?;
        }
        Ok(committed)
    }
}

impl Drop for GuardedWriter {
    /// An upload dropped without a commit gives its reservation back; the
    /// inner writer, dropped with it, discards its content.
    fn drop(&mut self) {
        if let Some(usage) = &self.usage {
            usage.release(self.reserved);
        }
    }
}

/// Refuses everything: the storage of requests that may not touch any store
/// (OPTIONS before authentication).
pub struct DenyAll;

#[async_trait]
impl Backend for DenyAll {
    async fn stat(&self, _path: &str) -> Result<Metadata> {
        Err(denied())
    }
    async fn list_members(&self, _: &str, _: Option<String>, _: u32) -> Result<Page> {
        Err(denied())
    }
    async fn open_read(&self, _: &str, _: u64, _: Option<u64>) -> Result<Opened> {
        Err(denied())
    }
    async fn open_write(&self, _: &str, _: WriteOptions) -> Result<Writer> {
        Err(denied())
    }
    async fn create_collection(&self, _: &str) -> Result<()> {
        Err(denied())
    }
    async fn delete(&self, _: &str) -> Result<Vec<MemberError>> {
        Err(denied())
    }
    async fn copy(&self, _: &str, _: &str, _: bool, _: bool) -> Result<Vec<MemberError>> {
        Err(denied())
    }
    async fn rename(&self, _: &str, _: &str, _: bool) -> Result<Vec<MemberError>> {
        Err(denied())
    }
    async fn get_properties(&self, _: &str) -> Result<Vec<Property>> {
        Err(denied())
    }
    async fn patch_properties(&self, _: &str, _: Vec<PropertyChange>) -> Result<()> {
        Err(denied())
    }
    async fn space_usage(&self, _: &str) -> Result<Space> {
        Err(denied())
    }
}

fn denied() -> Error {
    Error::Forbidden("authentication required".into())
}

#[cfg(test)]
mod tests;
