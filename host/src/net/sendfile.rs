//! Downloads sent from the file: chunks of the local store that the plain
//! TCP socket sends with `sendfile` instead of from memory.
//!
//! A download goes from the store to hyper as `Bytes` (the guest splices
//! the store's stream into its response body, and wasi-http hands hyper the
//! same buffers), so a socket only ever sees memory: each byte was copied
//! from the page cache into a buffer, then from that buffer into the socket.
//! The second copy costs the most (the kernel copies into freshly allocated
//! socket pages); `sendfile` avoids it, handing the socket references to the
//! page cache's pages.
//!
//! So a chunk the local store reads is registered here with the file and
//! the offset it was read at, for as long as its buffer lives ([`chunk`]).
//! When the connection's socket is asked to write a slice that lies in a
//! registered buffer ([`poll_write_vectored`]), it sends the same bytes from
//! the file. Everything else that meets the chunk (TLS, a guest reading it)
//! sees the bytes in memory, which are real.
//!
//! Why an address identifies the chunk: an entry is removed before its
//! buffer is freed, so while it is registered no other allocation lies at
//! those addresses. The bytes are the file's at that offset when they were
//! read; edgedav never changes a published file in place (new content is a
//! new file), so the descriptor keeps them. A file that another program
//! changes in place may send its newer bytes of the same length, as with
//! any server that uses `sendfile`; one cut short sends what the buffer
//! holds.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use rustix::net::{SendAncillaryBuffer, SendFlags};
use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;

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
fn file_of(ptr: *const u8) -> Option<(Arc<File>, u64)> {
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

/// Writes `bufs` to `stream` as `writev` would, except that a slice lying
/// in a registered chunk (and the slices after it that continue it in the
/// same file) goes out by `sendfile`, and the slices before such a slice
/// go out on their own with `MSG_MORE`: a response's head then leaves in
/// one packet with the start of its body instead of alone (measured: alone,
/// it cost a 1 MiB download more than `sendfile` saved).
pub fn poll_write_vectored(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let mut in_files = bufs
        .iter()
        .enumerate()
        .filter_map(|(i, buf)| file_of(buf.as_ptr()).map(|at| (i, at)));
    match in_files.next() {
        None => Pin::new(stream).poll_write_vectored(cx, bufs),
        Some((0, (file, offset))) => {
            let mut len = bufs[0].len();
            for buf in &bufs[1..] {
                match file_of(buf.as_ptr()) {
                    Some((next, at)) if Arc::ptr_eq(&next, &file) && at == offset + len as u64 => {
                        len += buf.len();
                    }
                    _ => break,
                }
            }
            poll_sendfile(stream, cx, &file, offset, len, &bufs[0])
        }
        Some((first, _)) => poll_send_more(stream, cx, &bufs[..first]),
    }
}

/// Sends `len` bytes of `file` from `offset`. `in_memory` holds the first
/// of them and is written instead when the file no longer has them (it was
/// cut short since they were read) or cannot be sent from.
fn poll_sendfile(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    file: &File,
    mut offset: u64,
    len: usize,
    in_memory: &[u8],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        let socket = &*stream;
        let sent = socket.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(socket, file, Some(&mut offset), len).map_err(io::Error::from)
        });
        match sent {
            Ok(0) => break,
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // A failure of the socket comes back from the write below.
            Err(_) => break,
        }
    }
    Pin::new(stream).poll_write(cx, in_memory)
}

/// Writes `bufs` with `MSG_MORE`: the kernel holds a last partial packet
/// for what is sent next.
fn poll_send_more(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        let socket = &*stream;
        let sent = socket.try_io(Interest::WRITABLE, || {
            let mut no_ancillary = SendAncillaryBuffer::default();
            rustix::net::sendmsg(socket, bufs, &mut no_ancillary, SendFlags::MORE)
                .map_err(io::Error::from)
        });
        match sent {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            sent => return Poll::Ready(sent),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    const N: usize = 2 * MIN_CHUNK;

    /// A file of `N` bytes `a`, removed when dropped.
    struct Scratch(PathBuf, Arc<File>);

    impl Scratch {
        fn new() -> Self {
            let path =
                std::env::temp_dir().join(format!("edgedav-sendfile-{}", uuid::Uuid::new_v4()));
            std::fs::write(&path, vec![b'a'; N]).unwrap();
            let file = File::options().read(true).write(true).open(&path).unwrap();
            Self(path, Arc::new(file))
        }

        /// The chunk of its first `len` bytes at `offset`, read from it.
        fn chunk(&self, offset: u64, len: usize) -> Bytes {
            let mut data = vec![0; len];
            self.1.read_exact_at(&mut data, offset).unwrap();
            chunk(data, &self.1, offset)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// What the other end of a loopback connection receives when `parts`
    /// are written through [`poll_write_vectored`] until all are out.
    async fn sent(parts: &[&[u8]]) -> Vec<u8> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (client, accepted) = tokio::join!(
            TcpStream::connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        let (mut client, mut server) = (client.unwrap(), accepted.unwrap().0);
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let write = async {
            let (mut part, mut skip) = (0, 0);
            while part < parts.len() {
                let mut bufs = vec![IoSlice::new(&parts[part][skip..])];
                bufs.extend(parts[part + 1..].iter().map(|p| IoSlice::new(p)));
                let mut n = std::future::poll_fn(|cx| poll_write_vectored(&mut server, cx, &bufs))
                    .await
                    .unwrap();
                assert!(n > 0);
                while part < parts.len() && n >= parts[part].len() - skip {
                    n -= parts[part].len() - skip;
                    (part, skip) = (part + 1, 0);
                }
                skip += n;
            }
        };
        let mut received = vec![0; total];
        let (_, read) = tokio::join!(write, client.read_exact(&mut received));
        read.unwrap();
        received
    }

    #[test]
    fn a_chunk_is_found_from_any_of_its_bytes_until_dropped() {
        let scratch = Scratch::new();
        let bytes = scratch.chunk(100, N - 100);
        let (_, offset) = file_of(bytes.as_ptr()).expect("registered");
        assert_eq!(offset, 100);
        // A slice from the middle, as after a partial write or a split.
        let tail = bytes.slice(1000..);
        assert_eq!(file_of(tail.as_ptr()).expect("registered").1, 1100);
        let at = bytes.as_ptr();
        drop(bytes);
        assert!(file_of(tail.as_ptr()).is_some(), "a slice keeps it");
        drop(tail);
        assert!(file_of(at).is_none(), "unregistered with its buffer");
    }

    #[test]
    fn small_chunks_and_other_memory_are_not_registered() {
        let scratch = Scratch::new();
        let small = scratch.chunk(0, MIN_CHUNK - 1);
        assert!(file_of(small.as_ptr()).is_none());
        let other = vec![0u8; N];
        assert!(file_of(other.as_ptr()).is_none());
    }

    #[tokio::test]
    async fn chunks_go_out_from_their_file_in_order_with_the_memory_around_them() {
        let scratch = Scratch::new();
        let (first, second) = (
            scratch.chunk(0, MIN_CHUNK),
            scratch.chunk(MIN_CHUNK as u64, MIN_CHUNK),
        );
        // Changed in place after the read: what arrives is the file's, so
        // it was sent from the file, not from the buffers.
        scratch.1.write_all_at(&vec![b'b'; N], 0).unwrap();
        let received = sent(&[b"head", &first, &second, b"tail"]).await;
        let mut expected = b"head".to_vec();
        expected.extend(vec![b'b'; N]);
        expected.extend(b"tail");
        assert!(
            received == expected,
            "{} bytes, not as expected",
            received.len()
        );
    }

    #[tokio::test]
    async fn a_file_cut_short_sends_the_bytes_read() {
        let scratch = Scratch::new();
        let bytes = scratch.chunk(0, N);
        scratch.1.set_len(0).unwrap();
        let received = sent(&[b"head", &bytes]).await;
        let mut expected = b"head".to_vec();
        expected.extend(vec![b'a'; N]);
        assert!(
            received == expected,
            "{} bytes, not as expected",
            received.len()
        );
    }
}
