//! Download chunks that remember where in their file they were read: the
//! local store's reader registers each chunk's buffer with the file and
//! the offset, for as long as the buffer lives ([`chunk`]), so that the
//! connection's socket can send the same bytes from the file
//! (`net::sendfile`) instead of copying them out of memory. Everything else
//! that meets the chunk (TLS, a guest reading it) sees the bytes in memory,
//! which are real.
//!
//! Why an address identifies the chunk: an entry is removed before its
//! buffer is freed, so while it is registered no other allocation lies at
//! those addresses. The bytes are the file's at that offset when they were
//! read; edgedav never changes a published file in place (new content is a
//! new file), so the descriptor keeps them.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

/// Chunks smaller than this are sent from memory: a small copy costs less
/// than a `sendfile` and the registration's lock.
pub const MIN_CHUNK: usize = 32 * 1024;

/// A registered buffer: where its bytes are in which file.
struct Span {
    end: usize,
    file: Arc<File>,
    offset: u64,
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
    let start = data.as_ptr() as usize;
    let span = Span {
        end: start + data.len(),
        file: Arc::clone(file),
        offset,
    };
    spans().insert(start, span);
    REGISTERED.fetch_add(1, Relaxed);
    Bytes::from_owner(Registered(data))
}

/// Where the slice starting at `ptr` is in a file, if it lies in a
/// registered buffer: the file and the offset of `ptr`'s byte in it.
pub fn file_of(ptr: *const u8) -> Option<(Arc<File>, u64)> {
    if REGISTERED.load(Relaxed) == 0 {
        return None;
    }
    let at = ptr as usize;
    let spans = spans();
    let (&start, span) = spans.range(..=at).next_back()?;
    (at < span.end).then(|| (Arc::clone(&span.file), span.offset + (at - start) as u64))
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
        spans().remove(&(self.0.as_ptr() as usize));
        REGISTERED.fetch_sub(1, Relaxed);
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
        let (_, offset) = file_of(bytes.as_ptr()).expect("registered");
        assert_eq!(offset, AT);
        // A slice from the middle, as after a partial write or a split.
        let tail = bytes.slice(1000..);
        assert_eq!(file_of(tail.as_ptr()).expect("registered").1, AT + 1000);
        let at = bytes.as_ptr();
        drop(bytes);
        assert!(file_of(tail.as_ptr()).is_some(), "a slice keeps it");
        drop(tail);
        let after = file_of(at).map(|(_, offset)| offset);
        assert_ne!(after, Some(AT), "unregistered with its buffer");
    }

    #[test]
    fn small_chunks_and_other_memory_are_not_registered() {
        let small = chunk(vec![b'a'; MIN_CHUNK - 1], &a_file(), 0);
        assert!(file_of(small.as_ptr()).is_none());
        let other = vec![0u8; 2 * MIN_CHUNK];
        assert!(file_of(other.as_ptr()).is_none());
    }
}
