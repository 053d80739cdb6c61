//! Downloads whose bytes the server never reads.
//!
//! A guest answers a GET by splicing the store's stream
//! (`open-read-stream`) into its response body; a local file's chunks
//! reach the socket, which sends them from the file with `sendfile`
//! (`net::sendfile`), but each was first read into memory, because any
//! consumer of a stream may look at its bytes: the guest reading it, TLS,
//! HTTP/2. That read was a fifth of the server's samples in a 1 MiB GET.
//!
//! Here the host's `blocking-splice` (shadowing wasi-io's) tells the
//! source to hand out its chunks unread (`file_chunks::unread`) when, and
//! only while, it moves them from a stream the store opened into the
//! response body of a plain HTTP/1 connection: the one path on which the
//! socket is the only thing that meets them. Every other splice, read or
//! transport is as before. The response body is recognised by wrapping it
//! when the guest takes it (`outgoing-body.write`, shadowed too), and both
//! streams by weak handles, so a resource slot the guest frees and reuses
//! for another stream is never taken for them.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::io::streams::{Host as _, HostOutputStream, StreamError};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, OutputStream, Pollable, StreamResult};
use wasmtime_wasi_http::p2::body::HostOutgoingBody;

use crate::storage::Reader;
use crate::storage::stream::ReaderStream;

/// A request's mark that it came over plain HTTP/1 (no TLS, no HTTP/2),
/// set by the connection.
#[derive(Clone, Copy)]
pub struct PlainHttp1;

/// One request's streams that may splice unread chunks.
#[derive(Default)]
pub struct FileSplice {
    plain_http1: bool,
    /// The response body's stream: its resource and its life.
    response: Option<(u32, Weak<()>)>,
    /// Streams the store opened: their resources and unread flags.
    sources: Vec<(u32, Weak<AtomicBool>)>,
}

impl FileSplice {
    /// Starts a request (a warm instance's state is reused).
    pub fn reset(&mut self, plain_http1: bool) {
        *self = Self {
            plain_http1,
            ..Self::default()
        };
    }

    /// `reader` as the guest's input stream, in `table`.
    pub fn push_source(
        &mut self,
        table: &mut ResourceTable,
        reader: Reader,
    ) -> wasmtime::Result<Resource<DynInputStream>> {
        if !self.plain_http1 || !reader.sends_unread() {
            return Ok(table.push(Box::new(ReaderStream::new(reader)) as DynInputStream)?);
        }
        let (stream, flag) = ReaderStream::with_unread(reader);
        let id = table.push(Box::new(stream) as DynInputStream)?;
        self.sources.retain(|(_, flag)| flag.strong_count() > 0);
        self.sources.push((id.rep(), Arc::downgrade(&flag)));
        Ok(id)
    }

    /// The flag that makes `source` hand out unread chunks, when it is a
    /// stream the store opened and `dest` the response body.
    fn unread_flag(&self, dest: u32, source: u32) -> Option<Arc<AtomicBool>> {
        let (rep, live) = self.response.as_ref()?;
        if *rep != dest || live.strong_count() == 0 {
            return None;
        }
        let (_, flag) = self.sources.iter().find(|(rep, _)| *rep == source)?;
        flag.upgrade()
    }
}

/// What the shadowed functions need from a store's data.
pub struct SpliceView<'a> {
    pub table: &'a mut ResourceTable,
    pub splice: &'a mut FileSplice,
}

/// Shadows wasi-io's `blocking-splice` and wasi-http's `outgoing-body.write`
/// in `linker`, which must already define them.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> SpliceView<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance("wasi:io/streams@0.2.12")?.func_wrap_async(
        "[method]output-stream.blocking-splice",
        move |mut store: StoreContextMut<'_, T>,
              (dest, source, len): (Resource<DynOutputStream>, Resource<DynInputStream>, u64)| {
            Box::new(async move {
                let SpliceView { table, splice } = view(store.data_mut());
                let armed = splice.unread_flag(dest.rep(), source.rep()).map(Armed::new);
                let spliced = table.blocking_splice(dest, source, len).await;
                drop(armed);
                Ok((match spliced {
                    Ok(moved) => Ok(moved),
                    Err(e) => Err::<u64, StreamError>(table.convert_stream_error(e)?),
                },))
            })
        },
    )?;
    linker.instance("wasi:http/types@0.2.12")?.func_wrap(
        "[method]outgoing-body.write",
        move |mut store: StoreContextMut<'_, T>, (body,): (Resource<HostOutgoingBody>,)| {
            let SpliceView { table, splice } = view(store.data_mut());
            let Some(stream) = table.get_mut(&body)?.take_output_stream() else {
                return Ok((Err(()),));
            };
            // Recognised only when there is something to splice into it.
            if splice.sources.is_empty() {
                return Ok((Ok(table.push_child(stream, &body)?),));
            }
            let live = Arc::new(());
            let stream: DynOutputStream = Box::new(ResponseStream {
                inner: stream,
                _live: live.clone(),
            });
            let id = table.push_child(stream, &body)?;
            splice.response = Some((id.rep(), Arc::downgrade(&live)));
            Ok((Ok(id),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Sets a source's unread flag for as long as it lives: a splice that is
/// dropped half-way leaves it unset.
struct Armed(Arc<AtomicBool>);

impl Armed {
    fn new(flag: Arc<AtomicBool>) -> Self {
        flag.store(true, Relaxed);
        Self(flag)
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        self.0.store(false, Relaxed);
    }
}

/// The response body's stream, as wasi-http made it; its only addition is
/// a life that [`FileSplice`] can see end.
struct ResponseStream {
    inner: DynOutputStream,
    _live: Arc<()>,
}

#[async_trait::async_trait]
impl Pollable for ResponseStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[async_trait::async_trait]
impl OutputStream for ResponseStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn write_zeroes(&mut self, nelem: usize) -> StreamResult<()> {
        self.inner.write_zeroes(nelem)
    }

    async fn write_ready(&mut self) -> StreamResult<usize> {
        self.inner.write_ready().await
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}
