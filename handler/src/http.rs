//! Transport-neutral request and response values.
//!
//! The protocol code never touches wasi:http directly: `component.rs` turns a
//! wasi:http request into a [`Request`] and streams a [`Response`] back, and the
//! native tests build them by hand.

use std::any::Any;

use crate::backend::{Reader, Storage, StorageError};
use crate::error::DavError;

/// The request body, read in chunks.
pub trait BodyReader {
    /// Next chunk of at most `max` bytes; `None` at the end.
    fn read(&mut self, max: usize) -> Result<Option<Vec<u8>>, DavError>;

    /// The body's own stream, unread, as an opaque source that a storage
    /// [`Writer`](crate::backend::Writer) may drain without the bytes passing
    /// through this component. None: only `read` works.
    fn direct(&mut self) -> Option<&mut dyn Any> {
        None
    }
}

impl BodyReader for &[u8] {
    fn read(&mut self, max: usize) -> Result<Option<Vec<u8>>, DavError> {
        if self.is_empty() {
            return Ok(None);
        }
        let n = max.min(self.len());
        let (head, tail) = self.split_at(n);
        *self = tail;
        Ok(Some(head.to_vec()))
    }
}

pub struct Request<'b> {
    pub method: String,
    /// The request target as sent: path and optional query, still percent-encoded.
    pub target: String,
    /// `Host` / `:authority` of the request, used to check same-server Destinations.
    pub authority: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Box<dyn BodyReader + 'b>,
}

impl Request<'_> {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// All values of a header joined with commas, as RFC 9110 allows for lists.
    pub fn header_list(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// Whether the client announced a body (so MKCOL can refuse one).
    pub fn has_body(&self) -> bool {
        self.header("Transfer-Encoding").is_some()
            || self
                .header("Content-Length")
                .is_some_and(|v| v.trim() != "0")
    }

    /// Reads the whole body, refusing more than `limit` bytes (XML bodies only).
    pub fn read_body(&mut self, limit: usize) -> Result<Vec<u8>, DavError> {
        if let Some(len) = self
            .header("Content-Length")
            .and_then(|v| v.parse::<u64>().ok())
            && len > limit as u64
        {
            return Err(DavError::status(413, "request body too large"));
        }
        let mut out = Vec::new();
        while let Some(chunk) = self.body.read(64 * 1024)? {
            out.extend_from_slice(&chunk);
            if out.len() > limit {
                return Err(DavError::status(413, "request body too large"));
            }
        }
        Ok(out)
    }
}

/// A piece of a response body, produced only when the body is written so that
/// large files and listings stream.
pub enum Part<'a> {
    Bytes(Vec<u8>),
    /// A byte range of a stored file, opened when reached (the parts of a
    /// multipart/byteranges body); `etag` is the version the response
    /// describes, and a range of any other version cuts the body short.
    File {
        path: String,
        etag: String,
        offset: u64,
        length: u64,
    },
    /// A reader opened before the response was committed to, so that a
    /// refusal (permissions, a vanished file) still becomes a status.
    Reader {
        reader: Box<dyn Reader>,
        path: String,
        length: u64,
    },
    /// Chunks generated on demand (multistatus and HTML listings).
    Generated(Box<dyn ChunkSource + 'a>),
}

pub trait ChunkSource {
    /// The next chunk; `None` at the end.
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, DavError>;
}

/// Where a response body goes.
pub trait Sink {
    fn write(&mut self, data: &[u8]) -> Result<(), String>;

    /// Moves up to `max` bytes from `source` (a [`Reader::direct`]) and says
    /// how many (0: the source is exhausted); None when this sink cannot use
    /// that source, and the caller then reads and writes.
    fn splice(&mut self, _source: &mut dyn Any, _max: u64) -> Option<Result<u64, String>> {
        None
    }
}

pub struct Response<'a> {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<Part<'a>>,
}

/// Size of the chunks moved from storage to the client.
const CHUNK: u32 = 64 * 1024;

/// Generated chunks smaller than this are gathered into one write.
const GATHER: usize = 64 * 1024;

/// Writes what `source` generates, gathering small chunks (a multistatus's
/// head, a short page, its tail) into one write: each write costs the sink
/// host calls, and one that finds the body's buffer full a wait for the
/// client. A chunk that would overflow the gathered bytes goes out by
/// itself, uncopied.
fn write_gathered(
    mut source: Box<dyn ChunkSource + '_>,
    sink: &mut dyn Sink,
) -> Result<(), String> {
    let mut gathered: Vec<u8> = Vec::new();
    while let Some(chunk) = source.next_chunk().map_err(|e| e.to_string())? {
        if gathered.len() + chunk.len() <= GATHER {
            if gathered.is_empty() {
                gathered = chunk;
            } else {
                gathered.extend_from_slice(&chunk);
            }
            continue;
        }
        if !gathered.is_empty() {
            sink.write(&gathered)?;
            gathered.clear();
        }
        if chunk.len() >= GATHER {
            sink.write(&chunk)?;
        } else {
            gathered = chunk;
        }
    }
    if gathered.is_empty() {
        Ok(())
    } else {
        sink.write(&gathered)
    }
}

impl<'a> Response<'a> {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn bytes(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers
            .push(("Content-Type".into(), content_type.into()));
        self.headers
            .push(("Content-Length".into(), body.len().to_string()));
        self.body.push(Part::Bytes(body));
        self
    }

    pub fn xml(self, body: Vec<u8>) -> Self {
        self.bytes("application/xml; charset=utf-8", body)
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Drops the body, keeping the headers (HEAD).
    pub fn without_body(mut self) -> Self {
        self.body.clear();
        self
    }

    /// Writes the body to `sink`, reading stored ranges chunk by chunk. An error
    /// after the first byte can only cut the body short; the caller then aborts
    /// the response so the client sees a truncated transfer, not a complete one.
    pub fn write_body(self, storage: &dyn Storage, sink: &mut dyn Sink) -> Result<(), String> {
        for part in self.body {
            match part {
                Part::Bytes(bytes) => sink.write(&bytes)?,
                Part::File {
                    path,
                    etag,
                    offset,
                    length,
                } => {
                    let opened = storage
                        .open_read(&path, offset, Some(length))
                        .map_err(|e| e.to_string())?;
                    if opened.metadata.etag != etag {
                        return Err(format!("{path}: replaced while its ranges were sent"));
                    }
                    copy(opened.reader, &path, length, sink)?;
                }
                Part::Reader {
                    reader,
                    path,
                    length,
                } => copy(reader, &path, length, sink)?,
                Part::Generated(source) => write_gathered(source, sink)?,
            }
        }
        Ok(())
    }
}

/// Moves `length` bytes from a storage reader to the sink: spliced when the
/// sink can take the reader's own stream, else chunk by chunk.
fn copy(
    mut reader: Box<dyn Reader>,
    path: &str,
    length: u64,
    sink: &mut dyn Sink,
) -> Result<(), String> {
    let mut left = length;
    while left > 0 {
        let spliced = reader.direct().and_then(|source| sink.splice(source, left));
        let moved = match spliced {
            Some(moved) => moved?,
            None => {
                let chunk = reader
                    .read(CHUNK.min(left.min(u32::MAX as u64) as u32))
                    .map_err(|e: StorageError| e.to_string())?;
                sink.write(&chunk)?;
                chunk.len() as u64
            }
        };
        if moved == 0 {
            return Err(format!("{path}: file ended {left} bytes early"));
        }
        left = left.saturating_sub(moved);
    }
    Ok(())
}

/// Collects a body in memory (tests and small responses).
impl Sink for Vec<u8> {
    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        self.extend_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStorage;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A range offered both ways: its chunks are the "direct" source that
    /// [`SplicingSink`] takes, and `read` hands them out too, counting calls.
    struct Direct {
        chunks: Vec<Vec<u8>>,
        reads: Rc<Cell<usize>>,
    }

    impl Direct {
        fn new(chunks: &[&[u8]]) -> (Self, Rc<Cell<usize>>) {
            let reads = Rc::new(Cell::new(0));
            let chunks = chunks.iter().map(|c| c.to_vec()).collect();
            let reader = Self {
                chunks,
                reads: reads.clone(),
            };
            (reader, reads)
        }
    }

    impl Reader for Direct {
        fn read(&mut self, _max: u32) -> Result<Vec<u8>, StorageError> {
            self.reads.set(self.reads.get() + 1);
            Ok(if self.chunks.is_empty() {
                Vec::new()
            } else {
                self.chunks.remove(0)
            })
        }

        fn direct(&mut self) -> Option<&mut dyn Any> {
            Some(&mut self.chunks)
        }
    }

    /// Splices from a [`Direct`] source, at most `max` bytes per call.
    #[derive(Default)]
    struct SplicingSink(Vec<u8>);

    impl Sink for SplicingSink {
        fn write(&mut self, data: &[u8]) -> Result<(), String> {
            self.0.extend_from_slice(data);
            Ok(())
        }

        fn splice(&mut self, source: &mut dyn Any, max: u64) -> Option<Result<u64, String>> {
            let chunks = source.downcast_mut::<Vec<Vec<u8>>>()?;
            if chunks.is_empty() {
                return Some(Ok(0));
            }
            let mut chunk = chunks.remove(0);
            if chunk.len() as u64 > max {
                chunks.insert(0, chunk.split_off(max as usize));
            }
            self.0.extend_from_slice(&chunk);
            Some(Ok(chunk.len() as u64))
        }
    }

    fn write(reader: Direct, length: u64, sink: &mut dyn Sink) -> Result<(), String> {
        let mut response = Response::new(200);
        response.body.push(Part::Reader {
            reader: Box::new(reader),
            path: "/f".into(),
            length,
        });
        response.write_body(&MemoryStorage::default(), sink)
    }

    #[test]
    fn a_direct_source_is_spliced_and_stops_at_the_range_end() {
        let (reader, reads) = Direct::new(&[b"hello ", b"world, and more"]);
        let mut sink = SplicingSink::default();
        write(reader, 11, &mut sink).unwrap();
        assert_eq!(sink.0, b"hello world");
        assert_eq!(reads.get(), 0, "spliced, never read");
    }

    #[test]
    fn a_direct_source_that_ends_early_cuts_the_body_short() {
        let (reader, _) = Direct::new(&[b"abc"]);
        let err = write(reader, 10, &mut SplicingSink::default()).unwrap_err();
        assert!(err.contains("7 bytes early"), "{err}");
    }

    /// Records each write on its own.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl Sink for Writes {
        fn write(&mut self, data: &[u8]) -> Result<(), String> {
            self.0.push(data.to_vec());
            Ok(())
        }
    }

    struct Chunks(std::vec::IntoIter<Vec<u8>>);

    impl ChunkSource for Chunks {
        fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, DavError> {
            Ok(self.0.next())
        }
    }

    #[test]
    fn small_generated_chunks_are_written_together() {
        let sizes = [100, 200, GATHER + 5, 10, 20, GATHER - 40, 50];
        let chunks: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| vec![i as u8; n])
            .collect();
        let mut response = Response::new(207);
        response.body.push(Part::Generated(Box::new(Chunks(
            chunks.clone().into_iter(),
        ))));
        let mut sink = Writes::default();
        response
            .write_body(&MemoryStorage::default(), &mut sink)
            .unwrap();
        let lengths: Vec<usize> = sink.0.iter().map(Vec::len).collect();
        // Gathered up to GATHER; the big chunk alone; a chunk that would
        // overflow what is gathered starts the next write.
        assert_eq!(lengths, [300, GATHER + 5, 30 + GATHER - 40, 50]);
        assert_eq!(sink.0.concat(), chunks.concat(), "every byte, in order");
    }

    #[test]
    fn a_sink_that_cannot_splice_reads_instead() {
        let (reader, reads) = Direct::new(&[b"ab", b"c"]);
        let mut sink = Vec::new();
        write(reader, 3, &mut sink).unwrap();
        assert_eq!(sink, b"abc");
        assert_eq!(reads.get(), 2);
    }
}
