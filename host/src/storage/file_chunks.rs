//! Download chunks that remember where in their file they were read: the
//! local store's reader registers each chunk's buffer with the file and
//! the offset, for as long as the buffer lives ([`chunk`]), so that the
//! connection's socket can send the same bytes from the file
//! (`net::sendfile`) instead of copying them out of memory. Everything else
//! that meets the chunk (TLS, a guest reading it) sees the bytes in memory,
//! which are real.
//!
//! A chunk can also be *unread* ([`unread`]): registered the same way, but
//! its bytes were never read and its buffer is address space that holds
//! only zeros. Only a download spliced into the response body of a plain
//! HTTP/1 connection asks for one (`runtime::file_splice`), so the socket,
//! which sends it from the file, is the only thing that meets it; should
//! the file no longer have the bytes, the socket fails the connection
//! rather than send the zeros.
//!
//! Why an address identifies the chunk: an entry is removed before its
//! buffer is freed, so while it is registered no other allocation lies at
//! those addresses. The bytes are the file's at that offset when they were
//! read; edgedav never changes a published file in place (new content is a
//! new file), so the descriptor keeps them.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;

/// Chunks smaller than this are sent from memory: a small copy costs less
/// than a `sendfile` and the registration's lock.
pub const MIN_CHUNK: usize = 32 * 1024;

/// A registered buffer: where its bytes are in which file.
struct Span {
    end: usize,
    file: Arc<File>,
    offset: u64,
    unread: bool,
}

/// Where a registered slice's bytes are.
pub struct InFile {
    pub file: Arc<File>,
    /// The offset in `file` of the slice's first byte.
    pub offset: u64,
    /// The slice holds zeros, not the bytes: it must be sent from the file.
    pub unread: bool,
}

/// Registered buffers by start address.
static SPANS: Mutex<BTreeMap<usize, Span>> = Mutex::new(BTreeMap::new());

/// How many buffers are registered: a socket skips the lookup (and the
/// lock) when none is, as for every small response.
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

/// `data`, read from `file` at `offset`, as bytes that the socket sends
/// from the file.
pub fn chunk(data: Vec<u8>, file: &Arc<File>, offset: u64) -> Bytes {
    if data.len() < MIN_CHUNK {
        return Bytes::from(data);
    }
    register(data.as_ptr() as usize, data.len(), file, offset, false);
    Bytes::from_owner(Registered(data))
}

/// `len` bytes of `file` from `offset`, not read: bytes that only the
/// socket may meet (see the module's docs). None when the chunk is too
/// small to be worth it or too large for a slot, or every slot is taken:
/// the caller reads instead.
pub fn unread(file: &Arc<File>, offset: u64, len: usize) -> Option<Bytes> {
    if !(MIN_CHUNK..=SLOT).contains(&len) {
        return None;
    }
    let reserve = RESERVE.get_or_init(Reserve::map).as_ref()?;
    let slot = reserve.free().pop()?;
    let start = reserve.base + slot * SLOT;
    register(start, len, file, offset, true);
    Some(Bytes::from_owner(Unread { start, len, slot }))
}

/// Where the slice starting at `ptr` is in a file, if it lies in a
/// registered buffer.
pub fn file_of(ptr: *const u8) -> Option<InFile> {
    if REGISTERED.load(Relaxed) == 0 {
        return None;
    }
    let at = ptr as usize;
    let spans = spans();
    let (&start, span) = spans.range(..=at).next_back()?;
    (at < span.end).then(|| InFile {
        file: Arc::clone(&span.file),
        offset: span.offset + (at - start) as u64,
        unread: span.unread,
    })
}

fn register(start: usize, len: usize, file: &Arc<File>, offset: u64, unread: bool) {
    let span = Span {
        end: start + len,
        file: Arc::clone(file),
        offset,
        unread,
    };
    spans().insert(start, span);
    REGISTERED.fetch_add(1, Relaxed);
}

fn unregister(start: usize) {
    spans().remove(&start);
    REGISTERED.fetch_sub(1, Relaxed);
}

fn spans() -> MutexGuard<'static, BTreeMap<usize, Span>> {
    // Each operation leaves the map whole: a panic elsewhere while it was
    // held leaves nothing half-done in it.
    SPANS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A registered buffer's owner: unregisters it before it is freed.
struct Registered(Vec<u8>);

impl AsRef<[u8]> for Registered {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        unregister(self.0.as_ptr() as usize);
    }
}

/// The largest unread chunk, and the address space each one takes.
const SLOT: usize = 1 << 20;
/// Unread chunks that can be in flight at once: 4 GiB of address space,
/// none of it memory. A download holds two or three.
const SLOTS: usize = 4096;

/// The address space unread chunks lie in: mapped once, read-only and
/// without memory behind it (every page is the kernel's shared zero page),
/// never written and never unmapped.
struct Reserve {
    base: usize,
    free: Mutex<Vec<usize>>,
}

static RESERVE: OnceLock<Option<Reserve>> = OnceLock::new();

impl Reserve {
    fn map() -> Option<Self> {
        // SAFETY: a new anonymous mapping at an address the kernel picks
        // aliases nothing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SLOT * SLOTS,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        (base != libc::MAP_FAILED).then(|| Self {
            base: base as usize,
            free: Mutex::new((0..SLOTS).rev().collect()),
        })
    }

    fn free(&self) -> MutexGuard<'_, Vec<usize>> {
        self.free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An unread chunk's owner: its slot of the reserve.
struct Unread {
    start: usize,
    len: usize,
    slot: usize,
}

impl AsRef<[u8]> for Unread {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the slot lies in the reserve, which is mapped readable
        // for the rest of the process's life and never written: a valid,
        // immutable (all-zero) slice.
        unsafe { std::slice::from_raw_parts(self.start as *const u8, self.len) }
    }
}

impl Drop for Unread {
    fn drop(&mut self) {
        unregister(self.start);
        if let Some(reserve) = RESERVE.get().and_then(Option::as_ref) {
            reserve.free().push(self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry only keeps the file: any one will do.
    fn a_file() -> Arc<File> {
        Arc::new(File::open("/dev/null").unwrap())
    }

    #[test]
    fn a_chunk_is_found_from_any_of_its_bytes_until_dropped() {
        // An offset no other test uses: once this buffer is freed, another
        // test's chunk may be registered at its address.
        const AT: u64 = 0xed6e_da70;
        let bytes = chunk(vec![b'a'; 2 * MIN_CHUNK], &a_file(), AT);
        let found = file_of(bytes.as_ptr()).expect("registered");
        assert_eq!((found.offset, found.unread), (AT, false));
        // A slice from the middle, as after a partial write or a split.
        let tail = bytes.slice(1000..);
        assert_eq!(
            file_of(tail.as_ptr()).expect("registered").offset,
            AT + 1000
        );
        let at = bytes.as_ptr();
        drop(bytes);
        assert!(file_of(tail.as_ptr()).is_some(), "a slice keeps it");
        drop(tail);
        let after = file_of(at).map(|found| found.offset);
        assert_ne!(after, Some(AT), "unregistered with its buffer");
    }

    #[test]
    fn small_chunks_and_other_memory_are_not_registered() {
        let small = chunk(vec![b'a'; MIN_CHUNK - 1], &a_file(), 0);
        assert!(file_of(small.as_ptr()).is_none());
        let other = vec![0u8; 2 * MIN_CHUNK];
        assert!(file_of(other.as_ptr()).is_none());
    }

    #[test]
    fn an_unread_chunk_is_registered_as_unread_until_dropped() {
        const AT: u64 = 0x0dd_f11e;
        let file = a_file();
        let bytes = unread(&file, AT, 2 * MIN_CHUNK).expect("a slot");
        assert_eq!(bytes.len(), 2 * MIN_CHUNK);
        let found = file_of(bytes.slice(10..).as_ptr()).expect("registered");
        assert_eq!((found.offset, found.unread), (AT + 10, true));
        let at = bytes.as_ptr();
        drop(bytes);
        assert!(
            file_of(at).is_none_or(|found| found.offset != AT),
            "unregistered"
        );
    }

    #[test]
    fn unread_chunks_are_only_for_sizes_worth_a_sendfile() {
        assert!(unread(&a_file(), 0, MIN_CHUNK - 1).is_none());
        assert!(unread(&a_file(), 0, SLOT + 1).is_none());
    }
}
