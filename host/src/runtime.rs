//! Runs the handler component: one fresh instance per HTTP request.
//!
//! Per-request instances keep requests isolated from each other; what makes
//! them cheap is done once, up front: the component is compiled once, its
//! imports are resolved once into a [`ProxyPre`], and instances come from the
//! pooling allocator (with copy-on-write memory images). This follows
//! `wasmtime serve`.
//!
//! Guests are interrupted by epochs from a single ticker thread per engine
//! (a ticker per request would collapse throughput): at every tick a running
//! guest yields to tokio, so a busy guest cannot starve other requests on its
//! worker thread. No request is cut short yet; long streaming transfers are
//! legitimate.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tracing::{debug, error, warn};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::bindings::{self, DavView};
use crate::locks::LockTable;
use crate::storage::Backend;

/// The handler built from `handler/` by the build script.
pub const EMBEDDED_HANDLER: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/edgedav_handler.wasm"));

/// How often the ticker advances the engine's epoch, i.e. the longest a guest
/// runs before yielding to other tasks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Settings the guest reads from its environment.
pub struct GuestSettings {
    /// Most entries a `Depth: infinity` PROPFIND may return; 0 refuses it.
    pub depth_infinity_limit: u32,
}

/// A compiled, pre-linked handler and the state every instance shares.
pub struct Runtime {
    pre: ProxyPre<RequestState>,
    backend: Arc<dyn Backend>,
    locks: Arc<LockTable>,
    settings: GuestSettings,
}

impl Runtime {
    /// Compiles `component` and links it against WASI, wasi:http, storage
    /// and locks.
    pub fn new(
        component: &[u8],
        backend: Arc<dyn Backend>,
        locks: Arc<LockTable>,
        settings: GuestSettings,
    ) -> wasmtime::Result<Self> {
        let engine = Engine::new(&engine_config())?;
        start_epoch_ticker(&engine);
        let component = Component::new(&engine, component).context("compiling the component")?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::add_to_linker(&mut linker, RequestState::dav)?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .context("the component imports something edgedav does not provide")?;
        let pre = ProxyPre::new(instance_pre).context(
            "the component does not export wasi:http/incoming-handler@0.2.x; \
             is it a wasi:http handler?",
        )?;
        Ok(Self {
            pre,
            backend,
            locks,
            settings,
        })
    }

    /// Answers one request; a guest that fails or traps yields a 500 and
    /// affects no other request.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<HyperOutgoingBody> {
        debug!(method = %request.method(), uri = %request.uri(), "request");
        match self.dispatch(request).await {
            Ok(response) => response,
            Err(e) => {
                error!("request failed: {e:?}");
                internal_error()
            }
        }
    }

    async fn dispatch(
        &self,
        request: Request<Incoming>,
    ) -> wasmtime::Result<Response<HyperOutgoingBody>> {
        let mut store = Store::new(self.pre.engine(), self.request_state());
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);

        let (sender, receiver) = oneshot::channel();
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let response = store.data_mut().http().new_response_outparam(sender)?;

        // The guest keeps running after it has set the response, to stream
        // the body, so it runs in its own task.
        let pre = self.pre.clone();
        let guest = tokio::spawn(async move {
            let handled = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, request, response)
                    .await
            };
            if let Err(e) = handled.await {
                error!("handler failed: {e:?}");
            }
        });

        // Until the response is set, a client that goes away (dropping this
        // future) takes the guest down with it.
        let mut abandoned = AbortOnDrop(Some(guest.abort_handle()));
        let outcome = receiver.await;
        abandoned.0 = None;
        match outcome {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(wasmtime::format_err!(
                "the handler answered with error {code:?}"
            )),
            // The task logged why.
            Err(_) => Err(wasmtime::format_err!("the handler did not set a response")),
        }
    }

    fn request_state(&self) -> RequestState {
        let wasi = WasiCtx::builder()
            .env(
                "EDGEDAV_DEPTH_INFINITY_LIMIT",
                self.settings.depth_infinity_limit.to_string(),
            )
            // Our stdout carries the listening line only; guest output goes to stderr.
            .stdout(std::io::stderr())
            .inherit_stderr()
            .build();
        RequestState {
            wasi,
            http: WasiHttpCtx::new(),
            hooks: DenyOutgoing,
            table: ResourceTable::new(),
            backend: self.backend.clone(),
            locks: self.locks.clone(),
        }
    }
}

/// Aborts a task when dropped, unless emptied first.
struct AbortOnDrop(Option<AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

fn engine_config() -> Config {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        // Concurrent requests; each instance of a Rust component holds a few
        // core instances and tables but one memory.
        .total_component_instances(1000)
        .total_core_instances(3000)
        .total_tables(3000)
        .total_memories(1000)
        .total_stacks(1000)
        // The handler streams; it never needs a large heap.
        .max_memory_size(128 << 20);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
        .epoch_interruption(true);
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is gone.
fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("edgedav-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}

fn internal_error() -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(b"internal server error\n"))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// The data of one request's store.
struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: DenyOutgoing,
    table: ResourceTable,
    backend: Arc<dyn Backend>,
    locks: Arc<LockTable>,
}

impl RequestState {
    fn dav(&mut self) -> DavView<'_> {
        DavView {
            backend: &*self.backend,
            locks: &self.locks,
            table: &mut self.table,
        }
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The handler serves requests; it has no business making any.
struct DenyOutgoing;

type OutgoingIo = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

impl WasiHttpHooks for DenyOutgoing {
    fn send_request(
        &mut self,
        request: hyper::http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _io: OutgoingIo,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(hyper::http::Response<WasiBody>, OutgoingIo)>,
            > + Send,
    > {
        warn!(uri = %request.uri(), "refused an outgoing request from the handler");
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
