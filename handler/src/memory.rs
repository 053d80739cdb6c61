//! In-memory storage and locks, so the protocol logic is tested natively
//! without a host. Deliberately simple: a map from path to node.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use crate::backend::*;

#[derive(Clone)]
struct Node {
    meta: Metadata,
    content: Vec<u8>,
    props: BTreeMap<PropertyName, String>,
}

#[derive(Default)]
pub struct MemoryStorage {
    nodes: RefCell<BTreeMap<String, Node>>,
    clock: Cell<i64>,
    /// `get_properties` calls so far, so tests can count host round trips.
    property_reads: Cell<u64>,
}

use edgedav_rules::locks::{Extent, granted_secs};
use edgedav_rules::path::{in_subtree, parent_of, rebase};

impl MemoryStorage {
    pub fn new() -> Self {
        let storage = Self::default();
        storage.insert("/", Kind::Collection, Vec::new());
        storage
    }

    /// How many times `get_properties` was called.
    pub fn property_reads(&self) -> u64 {
        self.property_reads.get()
    }

    fn insert(&self, path: &str, kind: Kind, content: Vec<u8>) -> Metadata {
        self.clock.set(self.clock.get() + 1);
        let t = Timestamp {
            seconds: 1_700_000_000 + self.clock.get(),
            nanoseconds: 0,
        };
        let meta = Metadata {
            kind,
            size: content.len() as u64,
            modified: t,
            created: Some(t),
            etag: format!("{:x}-{:x}", self.clock.get(), content.len()),
            content_type: None,
        };
        let props = self
            .nodes
            .borrow()
            .get(path)
            .map(|n| n.props.clone())
            .unwrap_or_default();
        self.nodes.borrow_mut().insert(
            path.to_owned(),
            Node {
                meta: meta.clone(),
                content,
                props,
            },
        );
        meta
    }

    /// Checks the parent of a path to be created.
    fn check_parent(&self, path: &str) -> StorageResult<()> {
        let parent = parent_of(path).ok_or(StorageError::AlreadyExists)?;
        match self.nodes.borrow().get(parent) {
            Some(n) if n.meta.kind == Kind::Collection => Ok(()),
            Some(_) => Err(StorageError::NotACollection),
            None => Err(StorageError::ParentNotFound),
        }
    }

    fn subtree(&self, root: &str) -> Vec<String> {
        self.nodes
            .borrow()
            .keys()
            .filter(|k| in_subtree(k, root))
            .cloned()
            .collect()
    }

    /// Checks a copy or move before anything changes: the source must exist
    /// and the destination must not overlap it (the WIT rule), then clears
    /// an existing destination when `overwrite` allows.
    fn prepare_transfer(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> StorageResult<()> {
        self.stat(source)?;
        edgedav_rules::transfer::check(source, destination)
            .map_err(|refusal| StorageError::Forbidden(refusal.reason().into()))?;
        self.check_parent(destination)?;
        if self.nodes.borrow().contains_key(destination) {
            if !overwrite {
                return Err(StorageError::AlreadyExists);
            }
            self.delete(destination)?;
        }
        Ok(())
    }
}

impl Storage for MemoryStorage {
    fn stat(&self, path: &str) -> StorageResult<Metadata> {
        self.nodes
            .borrow()
            .get(path)
            .map(|n| n.meta.clone())
            .ok_or(StorageError::NotFound)
    }

    fn list_members(&self, path: &str, cursor: Option<&str>, limit: u32) -> StorageResult<Page> {
        if self.stat(path)?.kind != Kind::Collection {
            return Err(StorageError::NotACollection);
        }
        let nodes = self.nodes.borrow();
        let mut entries: Vec<Entry> = nodes
            .iter()
            .filter(|(k, _)| k.as_str() != path && parent_of(k) == Some(path))
            .map(|(k, n)| Entry {
                name: k.rsplit('/').next().unwrap_or("").to_owned(),
                metadata: n.meta.clone(),
                has_properties: !n.props.is_empty(),
            })
            .filter(|e| cursor.is_none_or(|c| e.name.as_str() > c))
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let next =
            (entries.len() > limit as usize).then(|| entries[limit as usize - 1].name.clone());
        entries.truncate(limit as usize);
        Ok(Page { entries, next })
    }

    fn open_read(&self, path: &str, offset: u64, length: Option<u64>) -> StorageResult<Opened> {
        let nodes = self.nodes.borrow();
        let node = nodes.get(path).ok_or(StorageError::NotFound)?;
        if node.meta.kind == Kind::Collection {
            return Err(StorageError::IsACollection);
        }
        let start = (offset as usize).min(node.content.len());
        let end = length.map_or(node.content.len(), |l| {
            (start + l as usize).min(node.content.len())
        });
        Ok(Opened {
            reader: Box::new(MemoryReader {
                data: node.content[start..end].to_vec(),
                pos: 0,
            }),
            metadata: node.meta.clone(),
        })
    }

    fn open_write(
        &self,
        path: &str,
        options: &WriteOptions,
    ) -> StorageResult<Box<dyn Writer + '_>> {
        self.check_parent(path)?;
        let existing = self.stat(path).ok();
        if options.create_only && existing.is_some() {
            return Err(StorageError::AlreadyExists);
        }
        if existing
            .as_ref()
            .is_some_and(|m| m.kind == Kind::Collection)
        {
            return Err(StorageError::IsACollection);
        }
        if let Some(offset) = options.offset {
            let size = existing.ok_or(StorageError::NotFound)?.size;
            if offset > size {
                return Err(StorageError::Conflict(
                    "offset beyond the end of the file".into(),
                ));
            }
        }
        Ok(Box::new(MemoryWriter {
            storage: self,
            path: path.to_owned(),
            offset: options.offset,
            create_only: options.create_only,
            data: Vec::new(),
        }))
    }

    fn create_collection(&self, path: &str) -> StorageResult<()> {
        if self.nodes.borrow().contains_key(path) {
            return Err(StorageError::AlreadyExists);
        }
        self.check_parent(path)?;
        self.insert(path, Kind::Collection, Vec::new());
        Ok(())
    }

    fn delete(&self, path: &str) -> StorageResult<Vec<MemberError>> {
        self.stat(path)?;
        for key in self.subtree(path) {
            self.nodes.borrow_mut().remove(&key);
        }
        Ok(Vec::new())
    }

    fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> StorageResult<Vec<MemberError>> {
        self.prepare_transfer(source, destination, overwrite)?;
        let keys = if recursive {
            self.subtree(source)
        } else {
            vec![source.to_owned()]
        };
        for key in keys {
            let node = self.nodes.borrow()[&key].clone();
            let target = rebase(&key, source, destination);
            self.insert(&target, node.meta.kind, node.content);
            self.nodes
                .borrow_mut()
                .get_mut(&target)
                .expect("just inserted")
                .props = node.props;
        }
        Ok(Vec::new())
    }

    fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> StorageResult<Vec<MemberError>> {
        self.prepare_transfer(source, destination, overwrite)?;
        for key in self.subtree(source) {
            let node = self.nodes.borrow_mut().remove(&key).expect("listed");
            self.nodes
                .borrow_mut()
                .insert(rebase(&key, source, destination), node);
        }
        Ok(Vec::new())
    }

    fn get_properties(&self, path: &str) -> StorageResult<Vec<Property>> {
        self.property_reads.set(self.property_reads.get() + 1);
        let nodes = self.nodes.borrow();
        let node = nodes.get(path).ok_or(StorageError::NotFound)?;
        Ok(node
            .props
            .iter()
            .map(|(name, value)| Property {
                name: name.clone(),
                value: value.clone(),
            })
            .collect())
    }

    fn patch_properties(&self, path: &str, changes: &[PropertyChange]) -> StorageResult<()> {
        let mut nodes = self.nodes.borrow_mut();
        let node = nodes.get_mut(path).ok_or(StorageError::NotFound)?;
        for change in changes {
            match change {
                PropertyChange::Set(p) => {
                    node.props.insert(p.name.clone(), p.value.clone());
                }
                PropertyChange::Remove(name) => {
                    node.props.remove(name);
                }
            }
        }
        Ok(())
    }

    fn space_usage(&self, _path: &str) -> StorageResult<Space> {
        let used = self
            .nodes
            .borrow()
            .values()
            .map(|n| n.content.len() as u64)
            .sum();
        Ok(Space {
            used: Some(used),
            available: Some(1 << 30),
        })
    }
}

struct MemoryReader {
    data: Vec<u8>,
    pos: usize,
}

impl Reader for MemoryReader {
    fn read(&mut self, max: u32) -> StorageResult<Vec<u8>> {
        let end = (self.pos + max as usize).min(self.data.len());
        let chunk = self.data[self.pos..end].to_vec();
        self.pos = end;
        Ok(chunk)
    }
}

struct MemoryWriter<'s> {
    storage: &'s MemoryStorage,
    path: String,
    offset: Option<u64>,
    create_only: bool,
    data: Vec<u8>,
}

impl Writer for MemoryWriter<'_> {
    fn write(&mut self, data: &[u8]) -> StorageResult<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn commit(self: Box<Self>) -> StorageResult<Committed> {
        let existed = self.storage.nodes.borrow().contains_key(&self.path);
        if existed && self.create_only {
            return Err(StorageError::AlreadyExists);
        }
        if !existed && self.offset.is_some() {
            return Err(StorageError::NotFound);
        }
        self.storage.check_parent(&self.path)?;
        let content = match self.offset {
            None => self.data,
            Some(offset) => {
                let mut content = self.storage.nodes.borrow()[&self.path].content.clone();
                let start = offset as usize;
                let end = (start + self.data.len()).min(content.len());
                content.splice(start..end, self.data);
                content
            }
        };
        Ok(Committed {
            metadata: self.storage.insert(&self.path, Kind::File, content),
            created: !existed,
        })
    }
}

/// A lock table without expiry.
#[derive(Default)]
pub struct MemoryLocks {
    locks: RefCell<Vec<ActiveLock>>,
    next: Cell<u32>,
    /// When set, `covering` and `within` fail with this `io` error (a
    /// broken lock store, for tests).
    failure: RefCell<Option<String>>,
}

impl MemoryLocks {
    /// Makes every later `covering` and `within` call fail with `io(message)`.
    pub fn fail_with(&self, message: &str) {
        *self.failure.borrow_mut() = Some(message.to_owned());
    }

    fn check_failure(&self) -> Result<(), LockError> {
        match &*self.failure.borrow() {
            Some(m) => Err(LockError::Io(m.clone())),
            None => Ok(()),
        }
    }
}

impl Locks for MemoryLocks {
    fn acquire(&self, request: &LockRequest) -> Result<ActiveLock, LockError> {
        let requested = Extent {
            root: &request.root,
            deep: request.deep,
            exclusive: request.scope == LockScope::Exclusive,
        };
        let conflicts: Vec<ActiveLock> = self
            .locks
            .borrow()
            .iter()
            .filter(|l| l.extent().conflicts_with(&requested))
            .cloned()
            .collect();
        if !conflicts.is_empty() {
            return Err(LockError::Conflict(conflicts));
        }
        self.next.set(self.next.get() + 1);
        let lock = ActiveLock {
            token: format!("urn:uuid:00000000-0000-0000-0000-{:012}", self.next.get()),
            root: request.root.clone(),
            scope: request.scope,
            deep: request.deep,
            owner: request.owner.clone(),
            timeout: Some(granted_secs(request.timeout)),
        };
        self.locks.borrow_mut().push(lock.clone());
        Ok(lock)
    }

    fn refresh(&self, token: &str, timeout: Option<u32>) -> Result<ActiveLock, LockError> {
        let mut locks = self.locks.borrow_mut();
        let lock = locks
            .iter_mut()
            .find(|l| l.token == token)
            .ok_or(LockError::NoSuchLock)?;
        lock.timeout = Some(granted_secs(timeout));
        Ok(lock.clone())
    }

    fn release(&self, token: &str) -> Result<(), LockError> {
        let mut locks = self.locks.borrow_mut();
        let before = locks.len();
        locks.retain(|l| l.token != token);
        if locks.len() == before {
            Err(LockError::NoSuchLock)
        } else {
            Ok(())
        }
    }

    fn covering(&self, path: &str) -> Result<Vec<ActiveLock>, LockError> {
        self.check_failure()?;
        Ok(self
            .locks
            .borrow()
            .iter()
            .filter(|l| l.covers(path))
            .cloned()
            .collect())
    }

    fn within(&self, path: &str) -> Result<Vec<ActiveLock>, LockError> {
        self.check_failure()?;
        Ok(self
            .locks
            .borrow()
            .iter()
            .filter(|l| l.extent().within(path))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(
        s: &MemoryStorage,
        path: &str,
        data: &[u8],
        create_only: bool,
    ) -> StorageResult<Committed> {
        let options = WriteOptions {
            create_only,
            ..WriteOptions::default()
        };
        let mut w = s.open_write(path, &options)?;
        w.write(data)?;
        w.commit()
    }

    fn content(s: &MemoryStorage, path: &str) -> Vec<u8> {
        s.open_read(path, 0, None)
            .unwrap()
            .reader
            .read(u32::MAX)
            .unwrap()
    }

    #[test]
    fn commit_reports_created_or_replaced() {
        let s = MemoryStorage::new();
        assert!(write(&s, "/f", b"one", false).unwrap().created);
        assert!(!write(&s, "/f", b"two", false).unwrap().created);
        assert_eq!(content(&s, "/f"), b"two");
    }

    #[test]
    fn create_only_never_replaces() {
        let s = MemoryStorage::new();
        write(&s, "/f", b"kept", false).unwrap();
        s.create_collection("/d").unwrap();
        for path in ["/f", "/d"] {
            assert_eq!(write(&s, path, b"", true), Err(StorageError::AlreadyExists));
        }
        assert_eq!(content(&s, "/f"), b"kept");

        // Two writers opened while the path was free: the first commit
        // creates, the second finds it taken and changes nothing.
        let options = WriteOptions {
            create_only: true,
            ..WriteOptions::default()
        };
        let mut first = s.open_write("/new", &options).unwrap();
        let mut second = s.open_write("/new", &options).unwrap();
        first.write(b"first").unwrap();
        second.write(b"second").unwrap();
        assert!(first.commit().unwrap().created);
        assert_eq!(second.commit(), Err(StorageError::AlreadyExists));
        assert_eq!(content(&s, "/new"), b"first");
    }

    #[test]
    fn overlapping_copy_and_rename_are_refused_with_nothing_changed() {
        let s = MemoryStorage::new();
        s.create_collection("/a").unwrap();
        s.create_collection("/a/b").unwrap();
        write(&s, "/a/b/f", b"data", false).unwrap();
        let before = s.subtree("/");
        for (from, to) in [("/a", "/a/b"), ("/a/b", "/a"), ("/a", "/a"), ("/a/b", "/")] {
            for overwrite in [true, false] {
                assert!(
                    matches!(
                        s.copy(from, to, true, overwrite),
                        Err(StorageError::Forbidden(_))
                    ),
                    "copy {from} {to}"
                );
                assert!(
                    matches!(
                        s.rename(from, to, overwrite),
                        Err(StorageError::Forbidden(_))
                    ),
                    "rename {from} {to}"
                );
            }
        }
        assert_eq!(s.subtree("/"), before);
        assert_eq!(content(&s, "/a/b/f"), b"data");
    }
}
