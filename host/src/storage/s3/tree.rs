//! Tree operations on S3: parents, collection markers, copies (CopyObject,
//! 16 at a time), moves as copy-then-delete, and deletes in batches of
//! 1,000 keys, reporting the members that failed (see the module docs).

use super::*;

impl S3Backend {
    /// The parent of a new resource must be an existing collection.
    pub(super) async fn check_parent(&self, path: &str) -> Result<()> {
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

    pub(super) async fn put_empty(&self, key: &str) -> Result<()> {
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
    pub(super) async fn copy_object(&self, from: &str, to: &str, size: u64) -> Result<()> {
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
    pub(super) async fn copy_objects(
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
    pub(super) async fn delete_keys(&self, keys: Vec<String>) -> Vec<(String, Error)> {
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

    pub(super) fn member_errors(&self, failed: Vec<(String, Error)>) -> Vec<MemberError> {
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

    /// Checks a copy or move and clears the way: returns the source's
    /// metadata and whether a file at the destination is being replaced in
    /// place, or the member errors left by clearing the destination.
    pub(super) async fn prepare_transfer(
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
    pub(super) async fn transfer_collection(
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
    pub(super) async fn delete_tree(&self, dir: &str) -> Result<Vec<(String, Error)>> {
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
