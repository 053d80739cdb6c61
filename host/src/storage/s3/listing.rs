//! Listing the bucket: one ListObjectsV2 page turned into members (with
//! what `member_props` knows of their dead properties), and lookups.

use super::*;

impl S3Backend {
    /// A page's members, from its objects (files) and common prefixes
    /// (collections), in name order; `has_properties` is set later.
    pub(super) fn merge_members(&self, dir: &str, listing: &Listing) -> Vec<Entry> {
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
    pub(super) fn first_member_props(&self, dir: &str, listing: &Listing) -> MemberProps {
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
    pub(super) async fn mark_member_props(
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

    pub(super) fn collection_meta(&self, dir: &str) -> Metadata {
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
    pub(super) async fn list(
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
                    modified: object_date(o.last_modified.as_ref()),
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
    pub(super) async fn lookup(&self, path: &str) -> Result<Option<Metadata>> {
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
}

/// One page of ListObjectsV2.
pub(super) struct Listing {
    pub(super) objects: Vec<Object>,
    pub(super) prefixes: Vec<String>,
    /// The continuation token, when truncated.
    pub(super) next: Option<String>,
    pub(super) truncated: bool,
}

impl Listing {
    /// The greatest key or common prefix of the page (each list is sorted).
    fn last_key(&self) -> Option<&str> {
        let object = self.objects.last().map(|o| o.key.as_str());
        let prefix = self.prefixes.last().map(String::as_str);
        object.max(prefix)
    }
}

pub(super) struct Object {
    pub(super) key: String,
    pub(super) size: u64,
    pub(super) etag: String,
    pub(super) modified: Timestamp,
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
