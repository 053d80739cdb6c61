//! The sorted names of big collections being listed, kept between the pages
//! of one listing.
//!
//! A page is at most [`MAX_PAGE`](crate::listing::MAX_PAGE) members, and a
//! page after the first used to read and sort the whole collection again to
//! find where the cursor left off: a Depth-1 PROPFIND of 100,000 files read
//! 100 times 100,000 directory entries (4 s of server CPU, seven tenths of
//! it system time; 0.4 s with the names kept). A binding that offers
//! [`Snapshots`] keeps the first page's sorted names instead, and later
//! pages read none. The listing is then as of its first page: a member
//! removed since is skipped as before (its lookup fails), one created since
//! is not listed.
//!
//! Bounded: a few collections per store, so many bytes of names per store
//! and in the whole process, for a minute since last use, dropped after
//! their last page. A cursor whose names are gone (evicted, not kept for
//! want of room, another process, a restart) still works, the old way: it
//! holds the last name listed.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Collections a store keeps at once.
const MAX_KEPT: usize = 4;
/// Bytes of names a store keeps at once (a name costs its length and 4
/// bytes).
const MAX_BYTES: usize = 16 << 20;
/// Bytes of names all stores of the process keep at once (there is one per
/// user home: many users listing big folders at once get the old way).
const MAX_PROCESS_BYTES: usize = 64 << 20;
/// Bytes of names kept now, in the whole process.
static PROCESS_BYTES: AtomicUsize = AtomicUsize::new(0);
/// How long names are kept after their last page was served.
const IDLE: Duration = Duration::from_secs(60);

/// The names a store keeps for the listings in progress.
#[derive(Default)]
pub struct Snapshots(Mutex<Kept>);

#[derive(Default)]
struct Kept {
    snapshots: Vec<Snapshot>,
    next_id: u64,
}

impl Kept {
    fn bytes(&self) -> usize {
        self.snapshots.iter().map(|s| s.names.bytes).sum()
    }
}

struct Snapshot {
    id: u64,
    /// The contract path of the collection.
    path: String,
    names: Arc<Names>,
    used: Instant,
}

/// Sorted names in one buffer: one allocation, not one per name.
pub(crate) struct Names {
    text: String,
    ends: Vec<u32>,
    /// What they count for in the budgets ([`Names::cost`]).
    bytes: usize,
}

impl Names {
    /// What `names` count for in the budgets: each its length and 4 bytes
    /// (its end in the buffer).
    fn cost(names: &[String]) -> usize {
        names.iter().map(|name| name.len() + 4).sum()
    }

    /// `sorted` must be sorted; None when they are too many bytes to keep
    /// (for a store, or with what the process keeps already).
    fn new(sorted: &[String]) -> Option<Self> {
        let bytes = Self::cost(sorted);
        if bytes > MAX_BYTES {
            return None;
        }
        // Taken from the process's budget; given back on drop.
        PROCESS_BYTES
            .fetch_update(Relaxed, Relaxed, |kept| {
                (kept + bytes <= MAX_PROCESS_BYTES).then_some(kept + bytes)
            })
            .ok()?;
        let mut text = String::with_capacity(bytes - 4 * sorted.len());
        let mut ends = Vec::with_capacity(sorted.len());
        for name in sorted {
            text.push_str(name);
            // Within MAX_BYTES, so within u32.
            ends.push(text.len() as u32);
        }
        Some(Self { text, ends, bytes })
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1] as usize,
        };
        Some(&self.text[start..end])
    }
}

impl Drop for Names {
    /// Gives its bytes back to the process's budget.
    fn drop(&mut self) {
        PROCESS_BYTES.fetch_sub(self.bytes, Relaxed);
    }
}

/// Where a listing left off: the last name listed and, when its names are
/// kept, which snapshot and the index of the next name in it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Cursor<'a> {
    pub(crate) kept: Option<(u64, usize)>,
    pub(crate) after: &'a str,
}

impl<'a> Cursor<'a> {
    /// A name cannot hold `/`, so a cursor starting with one is ours:
    /// `/ID/INDEX/NAME`; anything else is a plain name.
    pub(crate) fn parse(cursor: &'a str) -> Self {
        let kept = cursor.strip_prefix('/').and_then(|rest| {
            let mut parts = rest.splitn(3, '/');
            let id = u64::from_str_radix(parts.next()?, 16).ok()?;
            let index = parts.next()?.parse().ok()?;
            Some(((id, index), parts.next()?))
        });
        match kept {
            Some((kept, after)) => Self {
                kept: Some(kept),
                after,
            },
            None => Self {
                kept: None,
                after: cursor,
            },
        }
    }

    pub(crate) fn format(id: u64, index: usize, after: &str) -> String {
        format!("/{id:x}/{index}/{after}")
    }
}

impl Snapshots {
    /// Keeps the sorted names of the collection at `path`; its id, or None
    /// when they are too big to keep.
    pub(crate) fn keep(&self, path: &str, sorted: &[String]) -> Option<u64> {
        let bytes = Names::cost(sorted);
        let mut kept = self.lock();
        let now = Instant::now();
        kept.snapshots.retain(|s| now.duration_since(s.used) < IDLE);
        // Room first (the least recently used goes first), so what this
        // store gives back counts for the process's budget.
        while !kept.snapshots.is_empty()
            && (kept.snapshots.len() >= MAX_KEPT || kept.bytes() + bytes > MAX_BYTES)
        {
            let oldest = (0..kept.snapshots.len()).min_by_key(|&i| kept.snapshots[i].used)?;
            kept.snapshots.swap_remove(oldest);
        }
        let names = Arc::new(Names::new(sorted)?);
        // Ids start from the clock, so a cursor from before a restart is
        // unlikely to name a new snapshot (and is checked against it anyway).
        if kept.next_id == 0 {
            kept.next_id = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1);
        }
        let id = kept.next_id;
        kept.next_id = kept.next_id.wrapping_add(1);
        kept.snapshots.push(Snapshot {
            id,
            path: path.to_owned(),
            names,
            used: now,
        });
        Some(id)
    }

    /// The kept names `cursor` continues, if they are still kept, are those
    /// of `path`, and hold the cursor's last name just before its index.
    pub(crate) fn resume(&self, path: &str, cursor: &Cursor<'_>) -> Option<Arc<Names>> {
        let (id, index) = cursor.kept?;
        let mut kept = self.lock();
        let snapshot = kept
            .snapshots
            .iter_mut()
            .find(|s| s.id == id && s.path == path)?;
        if index == 0 || snapshot.names.get(index - 1) != Some(cursor.after) {
            return None;
        }
        snapshot.used = Instant::now();
        Some(snapshot.names.clone())
    }

    /// Drops the names of a listing whose last page was served.
    pub(crate) fn done(&self, id: u64) {
        self.lock().snapshots.retain(|s| s.id != id);
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i:05}")).collect()
    }

    #[test]
    fn cursors_round_trip_and_plain_names_stay_names() {
        let c = Cursor::format(0xabc, 1000, "a/b name");
        assert_eq!(
            Cursor::parse(&c),
            Cursor {
                kept: Some((0xabc, 1000)),
                after: "a/b name"
            }
        );
        assert_eq!(
            Cursor::parse("f00999"),
            Cursor {
                kept: None,
                after: "f00999"
            }
        );
        // Ours in form but not in content: the whole string is the name.
        assert_eq!(Cursor::parse("/zz/1/x").kept, None);
    }

    #[test]
    fn kept_names_resume_only_where_the_cursor_left_off() {
        let snapshots = Snapshots::default();
        let sorted = names(3000);
        let id = snapshots.keep("/big", &sorted).unwrap();
        let cursor = Cursor::format(id, 1000, "f00999");
        let kept = snapshots.resume("/big", &Cursor::parse(&cursor)).unwrap();
        assert_eq!(kept.len(), 3000);
        assert_eq!(kept.get(1000), Some("f01000"));
        // Another collection, another last name, an unknown id: not these.
        assert!(
            snapshots
                .resume("/other", &Cursor::parse(&cursor))
                .is_none()
        );
        let wrong = Cursor::format(id, 1000, "f01000");
        assert!(snapshots.resume("/big", &Cursor::parse(&wrong)).is_none());
        let unknown = Cursor::format(id + 1, 1000, "f00999");
        assert!(snapshots.resume("/big", &Cursor::parse(&unknown)).is_none());
        snapshots.done(id);
        assert!(snapshots.resume("/big", &Cursor::parse(&cursor)).is_none());
    }

    #[test]
    fn kept_names_are_bounded() {
        let snapshots = Snapshots::default();
        let ids: Vec<u64> = (0..MAX_KEPT + 2)
            .map(|i| snapshots.keep(&format!("/d{i}"), &names(10)).unwrap())
            .collect();
        assert_eq!(snapshots.lock().snapshots.len(), MAX_KEPT);
        // The oldest went first.
        let first = Cursor::format(ids[0], 1, "f00000");
        assert!(snapshots.resume("/d0", &Cursor::parse(&first)).is_none());
        let last = Cursor::format(ids[MAX_KEPT + 1], 1, "f00000");
        let d_last = format!("/d{}", MAX_KEPT + 1);
        assert!(snapshots.resume(&d_last, &Cursor::parse(&last)).is_some());
        // Names beyond the byte budget are not kept at all.
        let huge = vec!["x".repeat(1 << 20); 17];
        assert!(snapshots.keep("/huge", &huge).is_none());
    }
}
