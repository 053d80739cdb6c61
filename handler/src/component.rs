//! The component glue: wasi:http in and out, `edgedav:dav` imports behind
//! the [`crate::backend`] traits. No protocol decisions are made here.

use std::any::Any;
use std::sync::OnceLock;

use crate::backend::{self as b, Config, Env};
use crate::error::DavError;
use crate::http::{BodyReader, Request, Sink};

wit_bindgen::generate!({
    path: "../wit",
    world: "edgedav:dav/handler",
    generate_all,
});

use edgedav::dav::{locks, storage, types};
use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

struct Component;

export!(Component);

impl Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = match request.method() {
            Method::Get => "GET".to_owned(),
            Method::Head => "HEAD".to_owned(),
            Method::Post => "POST".to_owned(),
            Method::Put => "PUT".to_owned(),
            Method::Delete => "DELETE".to_owned(),
            Method::Connect => "CONNECT".to_owned(),
            Method::Options => "OPTIONS".to_owned(),
            Method::Trace => "TRACE".to_owned(),
            Method::Patch => "PATCH".to_owned(),
            Method::Other(m) => m,
        };
        let headers: Vec<(String, String)> = {
            let fields = request.headers();
            fields
                .entries()
                .into_iter()
                .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
                .collect()
        };
        let authority = request.authority().or_else(|| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                .map(|(_, v)| v.clone())
        });
        let target = request.path_with_query().unwrap_or_else(|| "/".to_owned());
        let req = Request {
            method,
            target,
            authority,
            headers,
            body: Box::new(WasiBody {
                opened: None,
                request,
            }),
        };

        // The environment is fixed for an instance's life, and a warm
        // instance answers many requests: read once.
        static CONFIG: OnceLock<Config> = OnceLock::new();
        let env = Env {
            storage: &WitStorage,
            locks: &WitLocks,
            config: CONFIG.get_or_init(config_from_env),
        };
        let mut response = crate::handle(&env, req);

        let fields = response_fields(std::mem::take(&mut response.headers));
        let outgoing = OutgoingResponse::new(fields);
        // A new response is a 200 already: one host call fewer for most.
        if response.status != 200 {
            let _ = outgoing.set_status_code(response.status);
        }
        let Ok(body) = outgoing.body() else { return };
        ResponseOutparam::set(response_out, Ok(outgoing));
        let Ok(stream) = body.write() else { return };
        let mut sink = WasiSink { stream };
        match response.write_body(&WitStorage, &mut sink) {
            Ok(()) => {
                // No flush first: each write was queued for the host when
                // it was made (`check-write` allowed it), and waiting for the
                // host to take the last one cost ~3 % of a small GET's CPU.
                drop(sink);
                let _ = OutgoingBody::finish(body, None);
            }
            Err(e) => {
                // Dropping the body unfinished tells the host the response is
                // incomplete, so the client sees an aborted transfer.
                eprintln!("edgedav: response body aborted: {e}");
            }
        }
    }
}

/// The response's header fields, in one host call; should one be refused,
/// one call each, skipping what is refused rather than trapping. The
/// headers are moved, not copied: the body does not need them.
fn response_fields(headers: Vec<(String, String)>) -> Fields {
    let list: Vec<(String, Vec<u8>)> = headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect();
    Fields::from_list(&list).unwrap_or_else(|_| {
        let fields = Fields::new();
        for (name, value) in list {
            let _ = fields.append(&name, &value);
        }
        fields
    })
}

fn config_from_env() -> Config {
    let mut config = Config::default();
    if let Some(limit) = std::env::var("EDGEDAV_DEPTH_INFINITY_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.depth_infinity_limit = limit;
    }
    if let Some(max) = std::env::var("EDGEDAV_MAX_XML_BODY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.max_xml_body = max;
    }
    config
}

/// The request body, opened when first read: most requests have none, and
/// opening one costs host calls. Fields drop in order: the stream (a child
/// of the body) first, the request last.
struct WasiBody {
    /// Not opened yet; then the stream and its body, or none.
    opened: Option<Option<(InputStream, IncomingBody)>>,
    request: IncomingRequest,
}

impl WasiBody {
    /// The body's stream, opened on first use; none when there is no body.
    fn stream(&mut self) -> Option<&mut InputStream> {
        let request = &self.request;
        let opened = self.opened.get_or_insert_with(|| {
            let body = request.consume().ok()?;
            Some((body.stream().ok()?, body))
        });
        opened.as_mut().map(|(stream, _)| stream)
    }
}

impl BodyReader for WasiBody {
    fn direct(&mut self) -> Option<&mut dyn Any> {
        self.stream().map(|stream| stream as &mut dyn Any)
    }

    fn read(&mut self, max: usize) -> Result<Option<Vec<u8>>, DavError> {
        let Some(stream) = self.stream() else {
            return Ok(None);
        };
        loop {
            match stream.blocking_read(max as u64) {
                Ok(chunk) if chunk.is_empty() => continue,
                Ok(chunk) => return Ok(Some(chunk)),
                Err(StreamError::Closed) => return Ok(None),
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(DavError::bad_request(format!(
                        "reading the request body failed: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
    }
}

struct WasiSink {
    stream: OutputStream,
}

impl Sink for WasiSink {
    /// Splices a storage stream into the body: the host moves the bytes.
    fn splice(&mut self, source: &mut dyn Any, max: u64) -> Option<Result<u64, String>> {
        let source = source.downcast_mut::<InputStream>()?;
        Some(match self.stream.blocking_splice(source, max) {
            Ok(moved) => Ok(moved),
            Err(StreamError::Closed) => Ok(0),
            Err(e) => Err(format!("{e:?}")),
        })
    }

    fn write(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            let permitted = loop {
                match self.stream.check_write() {
                    Ok(0) => self.stream.subscribe().block(),
                    Ok(n) => break n,
                    Err(e) => return Err(format!("{e:?}")),
                }
            };
            let n = data.len().min(permitted as usize);
            self.stream
                .write(&data[..n])
                .map_err(|e| format!("{e:?}"))?;
            data = &data[n..];
        }
        Ok(())
    }
}

impl From<types::Error> for b::StorageError {
    fn from(e: types::Error) -> Self {
        use types::Error as E;
        match e {
            E::NotFound => Self::NotFound,
            E::AlreadyExists => Self::AlreadyExists,
            E::ParentNotFound => Self::ParentNotFound,
            E::NotACollection => Self::NotACollection,
            E::IsACollection => Self::IsACollection,
            E::Conflict(m) => Self::Conflict(m),
            E::NoSpace => Self::NoSpace,
            E::TooLarge => Self::TooLarge,
            E::Forbidden(m) => Self::Forbidden(m),
            E::Unsupported(m) => Self::Unsupported(m),
            E::Unavailable(m) => Self::Unavailable(m),
            E::Io(m) => Self::Io(m),
        }
    }
}

fn timestamp(t: types::Timestamp) -> b::Timestamp {
    b::Timestamp {
        seconds: t.seconds,
        nanoseconds: t.nanoseconds,
    }
}

impl From<types::Metadata> for b::Metadata {
    fn from(m: types::Metadata) -> Self {
        Self {
            kind: match m.kind {
                types::NodeKind::File => b::Kind::File,
                types::NodeKind::Collection => b::Kind::Collection,
            },
            size: m.size,
            modified: timestamp(m.modified),
            created: m.created.map(timestamp),
            etag: m.etag,
            content_type: m.content_type,
        }
    }
}

fn member_errors(errors: Vec<storage::MemberError>) -> Vec<b::MemberError> {
    errors
        .into_iter()
        .map(|e| b::MemberError {
            path: e.path,
            error: e.error.into(),
        })
        .collect()
}

/// `edgedav:dav/storage` as a [`b::Storage`].
struct WitStorage;

struct WitReader(storage::Reader);
struct WitWriter(storage::Writer);
/// A range the binding offered as a stream (`open-read-stream`).
struct WitStream(InputStream);

impl b::Reader for WitReader {
    fn read(&mut self, max: u32) -> b::StorageResult<Vec<u8>> {
        Ok(self.0.read(max)?)
    }
}

impl b::Reader for WitStream {
    fn read(&mut self, max: u32) -> b::StorageResult<Vec<u8>> {
        match self.0.blocking_read(u64::from(max)) {
            Ok(chunk) => Ok(chunk),
            Err(StreamError::Closed) => Ok(Vec::new()),
            Err(StreamError::LastOperationFailed(e)) => {
                Err(b::StorageError::Io(e.to_debug_string()))
            }
        }
    }

    fn direct(&mut self) -> Option<&mut dyn Any> {
        Some(&mut self.0)
    }
}

impl b::Writer for WitWriter {
    fn write(&mut self, data: &[u8]) -> b::StorageResult<()> {
        Ok(self.0.write(data)?)
    }

    fn append_from(&mut self, source: &mut dyn Any) -> Option<b::StorageResult<b::Appended>> {
        let source = source.downcast_mut::<InputStream>()?;
        Some(match self.0.append_from(source) {
            Ok(None) => return None,
            Ok(Some(storage::Appended::All(n))) => Ok(b::Appended::All(n)),
            Ok(Some(storage::Appended::SourceFailed(why))) => Ok(b::Appended::SourceFailed(why)),
            Err(e) => Err(e.into()),
        })
    }

    fn commit(self: Box<Self>) -> b::StorageResult<b::Committed> {
        let committed = storage::Writer::commit(self.0)?;
        Ok(b::Committed {
            metadata: committed.metadata.into(),
            created: committed.created,
        })
    }
}

impl b::Storage for WitStorage {
    fn stat(&self, path: &str) -> b::StorageResult<b::Metadata> {
        Ok(storage::stat(path)?.into())
    }

    fn list_members(
        &self,
        path: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> b::StorageResult<b::Page> {
        let page = storage::list_members(path, cursor, limit)?;
        Ok(b::Page {
            entries: page
                .entries
                .into_iter()
                .map(|e| b::Entry {
                    name: e.name,
                    metadata: e.metadata.into(),
                    has_properties: e.has_properties,
                })
                .collect(),
            next: page.next,
        })
    }

    fn open_read(
        &self,
        path: &str,
        offset: u64,
        length: Option<u64>,
    ) -> b::StorageResult<b::Opened> {
        // The stream first: with it the body is spliced host-side.
        if let Some((stream, metadata)) = storage::open_read_stream(path, offset, length)? {
            return Ok(b::Opened {
                reader: Box::new(WitStream(stream)),
                metadata: metadata.into(),
            });
        }
        let (reader, metadata) = storage::open_read(path, offset, length)?;
        Ok(b::Opened {
            reader: Box::new(WitReader(reader)),
            metadata: metadata.into(),
        })
    }

    fn open_write(
        &self,
        path: &str,
        options: &b::WriteOptions,
    ) -> b::StorageResult<Box<dyn b::Writer + '_>> {
        let options = storage::WriteOptions {
            expected_size: options.expected_size,
            content_type: options.content_type.clone(),
            offset: options.offset,
            create_only: options.create_only,
        };
        Ok(Box::new(WitWriter(storage::open_write(path, &options)?)))
    }

    fn create_collection(&self, path: &str) -> b::StorageResult<()> {
        Ok(storage::create_collection(path)?)
    }

    fn delete(&self, path: &str) -> b::StorageResult<Vec<b::MemberError>> {
        Ok(member_errors(storage::delete(path)?))
    }

    fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> b::StorageResult<Vec<b::MemberError>> {
        Ok(member_errors(storage::copy(
            source,
            destination,
            recursive,
            overwrite,
        )?))
    }

    fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> b::StorageResult<Vec<b::MemberError>> {
        Ok(member_errors(storage::rename(
            source,
            destination,
            overwrite,
        )?))
    }

    fn get_properties(&self, path: &str) -> b::StorageResult<Vec<b::Property>> {
        Ok(storage::get_properties(path)?
            .into_iter()
            .map(|p| b::Property {
                name: b::PropertyName {
                    namespace: p.namespace,
                    name: p.name,
                },
                value: p.value,
            })
            .collect())
    }

    fn patch_properties(&self, path: &str, changes: &[b::PropertyChange]) -> b::StorageResult<()> {
        let changes: Vec<storage::PropertyChange> = changes
            .iter()
            .map(|c| match c {
                b::PropertyChange::Set(p) => storage::PropertyChange::Set(storage::Property {
                    namespace: p.name.namespace.clone(),
                    name: p.name.name.clone(),
                    value: p.value.clone(),
                }),
                b::PropertyChange::Remove(n) => {
                    storage::PropertyChange::Remove(storage::PropertyName {
                        namespace: n.namespace.clone(),
                        name: n.name.clone(),
                    })
                }
            })
            .collect();
        Ok(storage::patch_properties(path, &changes)?)
    }

    fn space_usage(&self, path: &str) -> b::StorageResult<b::Space> {
        let s = storage::space_usage(path)?;
        Ok(b::Space {
            used: s.used,
            available: s.available,
        })
    }
}

/// `edgedav:dav/locks` as a [`b::Locks`].
struct WitLocks;

fn active_lock(l: locks::ActiveLock) -> b::ActiveLock {
    b::ActiveLock {
        token: l.token,
        root: l.root,
        scope: match l.scope {
            locks::Scope::Exclusive => b::LockScope::Exclusive,
            locks::Scope::Shared => b::LockScope::Shared,
        },
        deep: l.deep,
        owner: l.owner,
        timeout: l.timeout,
    }
}

impl From<locks::LockError> for b::LockError {
    fn from(e: locks::LockError) -> Self {
        match e {
            locks::LockError::Conflict(ls) => {
                Self::Conflict(ls.into_iter().map(active_lock).collect())
            }
            locks::LockError::NoSuchLock => Self::NoSuchLock,
            locks::LockError::Forbidden => Self::Forbidden,
            locks::LockError::Io(m) => Self::Io(m),
        }
    }
}

impl b::Locks for WitLocks {
    fn acquire(&self, r: &b::LockRequest) -> Result<b::ActiveLock, b::LockError> {
        let request = locks::LockRequest {
            root: r.root.clone(),
            scope: match r.scope {
                b::LockScope::Exclusive => locks::Scope::Exclusive,
                b::LockScope::Shared => locks::Scope::Shared,
            },
            deep: r.deep,
            owner: r.owner.clone(),
            timeout: r.timeout,
        };
        Ok(active_lock(locks::acquire(&request)?))
    }

    fn refresh(&self, token: &str, timeout: Option<u32>) -> Result<b::ActiveLock, b::LockError> {
        Ok(active_lock(locks::refresh(token, timeout)?))
    }

    fn release(&self, token: &str) -> Result<(), b::LockError> {
        Ok(locks::release(token)?)
    }

    fn covering(&self, path: &str) -> Result<Vec<b::ActiveLock>, b::LockError> {
        Ok(locks::covering(path)?
            .into_iter()
            .map(active_lock)
            .collect())
    }

    fn within(&self, path: &str) -> Result<Vec<b::ActiveLock>, b::LockError> {
        Ok(locks::within(path)?.into_iter().map(active_lock).collect())
    }
}
