//! Downloads sent from the file: the plain-TCP socket sends a slice that
//! lies in a registered chunk of the local store
//! ([`file_chunks`](crate::storage::file_chunks)) with `sendfile` instead
//! of copying it from memory.
//!
//! A download goes from the store to hyper as `Bytes` (the guest splices
//! the store's stream into its response body, and wasi-http hands hyper the
//! same buffers), so a socket only ever sees memory: each byte was copied
//! from the page cache into a buffer, then from that buffer into the socket.
//! The second copy costs the most (the kernel copies into freshly allocated
//! socket pages); `sendfile` avoids it, handing the socket references to the
//! page cache's pages. On plain HTTP/1 the first copy is gone too: the
//! chunk was never read (`runtime::file_splice`), and its memory holds
//! zeros. A file that another program changes in place may send its newer
//! bytes of the same length, as with any server that uses `sendfile`; one
//! cut short sends what the buffer holds, or, for an unread chunk, fails
//! the connection.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, ready};

use rustix::net::{SendAncillaryBuffer, SendFlags};
use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;

use crate::metrics;
use crate::storage::file_chunks::{InFile, file_of};

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
        Some((0, at)) => {
            let mut len = bufs[0].len();
            for buf in &bufs[1..] {
                match file_of(buf.as_ptr()) {
                    Some(next)
                        if Arc::ptr_eq(&next.file, &at.file)
                            && next.offset == at.offset + len as u64
                            && next.unread == at.unread =>
                    {
                        len += buf.len();
                    }
                    _ => break,
                }
            }
            poll_sendfile(stream, cx, at, len, &bufs[0])
        }
        Some((first, _)) => poll_send_more(stream, cx, &bufs[..first]),
    }
}

/// Sends `len` bytes of `at`'s file from its offset. `in_memory` holds the
/// first of them and is written instead when the file no longer has them
/// (it was cut short since they were read) or cannot be sent from; an
/// unread chunk's memory holds zeros, so then the write fails instead.
fn poll_sendfile(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    at: InFile,
    len: usize,
    in_memory: &[u8],
) -> Poll<io::Result<usize>> {
    let mut offset = at.offset;
    let sent = ready!(poll_writing(stream, cx, |socket| {
        rustix::fs::sendfile(socket, &*at.file, Some(&mut offset), len)
    }));
    match sent {
        Ok(n) if n > 0 => {
            if at.unread {
                metrics::get()
                    .bytes_sent_unread
                    .fetch_add(n as u64, Relaxed);
            }
            Poll::Ready(Ok(n))
        }
        Ok(_) if at.unread => Poll::Ready(Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file was cut short while it was being sent",
        ))),
        Err(e) if at.unread => Poll::Ready(Err(e)),
        // None sent (cut short), or a failure, which the write below
        // reports again if it is the socket's.
        _ => Pin::new(stream).poll_write(cx, in_memory),
    }
}

/// Writes `bufs` with `MSG_MORE`: the kernel holds a last partial packet
/// for what is sent next.
fn poll_send_more(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    poll_writing(stream, cx, |socket| {
        let mut no_ancillary = SendAncillaryBuffer::default();
        rustix::net::sendmsg(socket, bufs, &mut no_ancillary, SendFlags::MORE)
    })
}

/// Runs the non-blocking write `op` on `stream` once it is writable, again
/// each time it would block.
fn poll_writing(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    mut op: impl FnMut(&TcpStream) -> rustix::io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        match stream.try_io(Interest::WRITABLE, || op(stream).map_err(io::Error::from)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return Poll::Ready(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    use bytes::Bytes;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    use crate::storage::file_chunks::{MIN_CHUNK, chunk, unread};

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

    /// `received` is `head` followed by `N` bytes `fill`.
    fn assert_head_then(received: &[u8], fill: u8) {
        let mut expected = b"head".to_vec();
        expected.extend(vec![fill; N]);
        assert!(
            received == expected,
            "{} bytes, not as expected",
            received.len()
        );
    }

    /// Both ends of a loopback connection: the client's, the server's.
    async fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (client, accepted) = tokio::join!(
            TcpStream::connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        (client.unwrap(), accepted.unwrap().0)
    }

    /// What the other end of a loopback connection receives when `parts`
    /// are written through [`poll_write_vectored`] until all are out.
    async fn sent(parts: &[&[u8]]) -> Vec<u8> {
        let (mut client, mut server) = connected().await;
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
        assert_head_then(&received, b'a');
    }

    #[tokio::test]
    async fn unread_chunks_go_out_from_their_file() {
        let scratch = Scratch::new();
        let (first, second) = (
            unread(&scratch.1, 0, MIN_CHUNK).unwrap(),
            unread(&scratch.1, MIN_CHUNK as u64, MIN_CHUNK).unwrap(),
        );
        let received = sent(&[b"head", &first, &second]).await;
        assert_head_then(&received, b'a');
    }

    #[tokio::test]
    async fn an_unread_chunk_of_a_file_cut_short_fails_the_write_instead_of_sending_zeros() {
        let scratch = Scratch::new();
        let bytes = unread(&scratch.1, 0, N).unwrap();
        scratch.1.set_len(0).unwrap();
        let (_client, mut server) = connected().await;
        let bufs = [IoSlice::new(&bytes)];
        let written = std::future::poll_fn(|cx| poll_write_vectored(&mut server, cx, &bufs)).await;
        assert_eq!(
            written.map_err(|e| e.kind()).unwrap_err(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
