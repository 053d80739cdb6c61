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
//! worker thread.
//!
//! The guest runs in the task of the connection it answers (see [`guest`]).
//!
//! **Sandbox limits.** Each instance's linear memory is capped (a pooling
//! slot of that size plus a `StoreLimits` cap), and each request has an
//! execution deadline counted in *CPU time* (see [`cpu`]): the time the
//! guest's future spends being polled, checked by the epoch callback at
//! every tick, which traps the guest once the deadline is used up. Time
//! spent waiting in host calls (for the client's body, for storage, for a
//! throttled transfer) does not count, so long streaming transfers are fine
//! while a guest that spins is cut off after the deadline. A trap answers 500, a deadline 503 (when
//! the response has not started yet), both logged and counted; other
//! requests are unaffected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use tokio::sync::oneshot;
use tracing::{debug, error, warn};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use self::bindings::DavView;
use self::file_splice::{FileSplice, PlainHttp1, SpliceView};
use crate::locks::LockView;
use crate::metrics::{self, ComponentError};
use crate::runtime::admission::Slot;
use crate::storage::Backend;

pub mod admission;
pub mod bindings;
mod cpu;
pub mod file_splice;
mod guest;

mod warm;

use cpu::{CpuClock, Timed};
pub use warm::Tenant;
use warm::WarmPool;

/// The handler built from `handler/` by the build script.
const EMBEDDED_HANDLER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/edgedav_handler.wasm"));

/// [`EMBEDDED_HANDLER`] compiled to native code by the build script with
/// [`codegen::config`] (empty when cross-compiling).
const PRECOMPILED_HANDLER: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/edgedav_handler.cwasm"));

/// Code settings, shared with the build script (which includes the file).
mod codegen;

/// How often the ticker advances the engine's epoch, i.e. the longest a guest
/// runs before yielding to other tasks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Settings the guest reads from its environment.
pub struct GuestSettings {
    /// Most entries a `Depth: infinity` PROPFIND may return; 0 refuses it.
    pub depth_infinity_limit: u32,
}

/// Resource limits of every instance.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Linear memory one instance may use, in bytes.
    pub max_memory: u64,
    /// Guest CPU time one request may use; none: unlimited.
    pub max_cpu_time: Option<Duration>,
    /// Instances alive at once.
    pub max_instances: u32,
    /// Whether an instance may answer further requests of the same tenant
    /// (see [`warm`]).
    pub instance_reuse: bool,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            max_memory: 128 << 20,
            max_cpu_time: Some(Duration::from_secs(10)),
            max_instances: 1000,
            instance_reuse: true,
        }
    }
}

/// The storage and locks one request's instance is bound to: the user's
/// home (guarded by their permissions and quota) and their lock view.
pub struct StorageBinding {
    pub backend: Arc<dyn Backend>,
    pub locks: LockView,
    /// Whose instances may answer the request; none: a fresh instance.
    pub tenant: Option<Tenant>,
}

/// A compiled, pre-linked handler and the state every instance shares.
pub struct Runtime {
    pre: ProxyPre<RequestState>,
    settings: GuestSettings,
    limits: SandboxLimits,
    warm: Arc<WarmPool<Warm>>,
}

/// An instance between two requests of its tenant.
struct Warm {
    store: Store<RequestState>,
    proxy: Proxy,
    /// Requests it has answered.
    uses: u32,
}

/// The error a guest is stopped with when its CPU-time deadline is used up.
#[derive(Debug)]
struct DeadlineExceeded(Duration);

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the guest used up its CPU-time deadline of {:?}", self.0)
    }
}

impl std::error::Error for DeadlineExceeded {}

impl Runtime {
    /// Compiles `component`, or loads the embedded handler when it is
    /// `None` (see [`load_component`]), and links it against WASI,
    /// wasi:http, storage and locks.
    pub fn new(
        component: Option<&[u8]>,
        settings: GuestSettings,
        limits: SandboxLimits,
    ) -> wasmtime::Result<Self> {
        let engine = Engine::new(&engine_config(&limits))?;
        start_epoch_ticker(&engine);
        let component = load_component(&engine, component)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::add_to_linker(&mut linker, RequestState::dav)?;
        file_splice::add_to_linker(&mut linker, RequestState::splice)?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .context("the component imports something edgedav does not provide")?;
        let pre = ProxyPre::new(instance_pre).context(
            "the component does not export wasi:http/incoming-handler@0.2.x; \
             is it a wasi:http handler?",
        )?;
        Ok(Self {
            pre,
            settings,
            limits,
            warm: Arc::default(),
        })
    }

    /// Answers one request with an instance bound to `storage`, in the pool
    /// slot `slot` (held until the instance is gone); a guest that fails,
    /// traps or runs out of time yields a 5xx and affects no other request.
    pub async fn handle<B>(
        &self,
        request: Request<B>,
        storage: StorageBinding,
        slot: Slot,
    ) -> Response<HyperOutgoingBody>
    where
        B: hyper::body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    {
        debug!(method = %request.method(), uri = %request.uri(), "request");
        match self.dispatch(request, storage, slot).await {
            Ok(response) => response,
            Err(kind) => failure_response(kind),
        }
    }

    async fn dispatch<B>(
        &self,
        request: Request<B>,
        storage: StorageBinding,
        slot: Slot,
    ) -> Result<Response<HyperOutgoingBody>, ComponentError>
    where
        B: hyper::body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    {
        let cpu = Arc::new(CpuClock::new(self.limits.max_cpu_time));
        let tenant = storage
            .tenant
            .clone()
            .filter(|_| self.limits.instance_reuse);
        let (mut store, warm_proxy, uses) = match tenant.as_ref().and_then(|t| self.warm.take(t)) {
            Some(Warm {
                mut store,
                proxy,
                uses,
            }) => {
                store.data_mut().rebind(storage, cpu.clone());
                (store, Some(proxy), uses)
            }
            None => (self.new_store(storage, cpu.clone()), None, 0),
        };
        store.set_epoch_deadline(1);
        let plain_http1 = request.extensions().get::<PlainHttp1>().is_some();
        store.data_mut().splice.reset(plain_http1);

        let (sender, receiver) = oneshot::channel();
        let prepared = (|| -> wasmtime::Result<_> {
            let request = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, request)?;
            let response = store.data_mut().http().new_response_outparam(sender)?;
            Ok((request, response))
        })();
        let (request, response) = prepared.map_err(|e| {
            error!("preparing the request for the guest failed: {e:?}");
            ComponentError::NoResponse
        })?;

        let (pre, pool) = (self.pre.clone(), self.warm.clone());
        let mut held = InSlot { store, _slot: slot };
        let run = async move {
            let store = &mut held.store;
            let proxy = match warm_proxy {
                Some(proxy) => proxy,
                None => {
                    let started = Instant::now();
                    match pre.instantiate_async(&mut *store).await {
                        Ok(proxy) => {
                            metrics::get().instantiated(started.elapsed());
                            proxy
                        }
                        Err(e) => {
                            error!("instantiating the component failed: {e:?}");
                            metrics::get().component_error(ComponentError::Instantiation);
                            return Some(ComponentError::Instantiation);
                        }
                    }
                }
            };
            let handled = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut *store, request, response)
                .await;
            let cpu = store.data().cpu.used();
            match handled {
                Ok(()) => {
                    debug!(cpu_ms = cpu.as_secs_f64() * 1e3, "guest finished");
                    let uses = uses + 1;
                    if let Some(tenant) = tenant
                        && uses < warm::MAX_USES
                        && store.data().reusable()
                    {
                        let InSlot { store, _slot } = held;
                        pool.put(tenant, Warm { store, proxy, uses });
                    }
                    None
                }
                Err(e) => {
                    let kind = classify(&e);
                    error!(
                        kind = kind.label(),
                        cpu_ms = cpu.as_secs_f64() * 1e3,
                        "handler failed: {e:?}"
                    );
                    metrics::get().component_error(kind);
                    Some(kind)
                }
            }
        };
        guest::answer(Box::pin(Timed::new(cpu, run)), receiver).await
    }

    /// A store for a fresh instance, with its limits and deadline.
    fn new_store(&self, storage: StorageBinding, cpu: Arc<CpuClock>) -> Store<RequestState> {
        let mut store = Store::new(self.pre.engine(), self.request_state(storage, cpu));
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_callback(|ctx| {
            let clock = &ctx.data().cpu;
            if clock.exceeded() {
                let limit = clock.limit().unwrap_or_default();
                return Err(DeadlineExceeded(limit).into());
            }
            // Let other tasks run; the clock stops while the guest waits.
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        store
    }

    fn request_state(&self, storage: StorageBinding, cpu: Arc<CpuClock>) -> RequestState {
        let wasi = WasiCtx::builder()
            .env(
                "EDGEDAV_DEPTH_INFINITY_LIMIT",
                self.settings.depth_infinity_limit.to_string(),
            )
            // Our stdout carries the listening line only; guest output goes to stderr.
            .stdout(std::io::stderr())
            .inherit_stderr()
            .build();
        let memory = usize::try_from(self.limits.max_memory).unwrap_or(usize::MAX);
        RequestState {
            wasi,
            http: WasiHttpCtx::new(),
            hooks: DenyOutgoing,
            table: ResourceTable::new(),
            backend: storage.backend,
            locks: storage.locks,
            limits: MemoryLimit {
                limits: StoreLimitsBuilder::new().memory_size(memory).build(),
                grown_to: 0,
            },
            cpu,
            splice: FileSplice::default(),
        }
    }
}

/// What kind of failure ended a guest.
fn classify(e: &wasmtime::Error) -> ComponentError {
    if e.downcast_ref::<DeadlineExceeded>().is_some() {
        ComponentError::Deadline
    } else if e.downcast_ref::<wasmtime::Trap>().is_some() {
        ComponentError::Trap
    } else {
        ComponentError::NoResponse
    }
}

/// A store and the pool slot it occupies. Fields drop in order: the
/// instance is gone before the slot is free for the next request.
struct InSlot {
    store: Store<RequestState>,
    _slot: Slot,
}

fn engine_config(limits: &SandboxLimits) -> Config {
    // Idle warm instances hold slots beyond the concurrent requests.
    let idle = if limits.instance_reuse {
        warm::MAX_IDLE as u32
    } else {
        0
    };
    let instances = limits.max_instances.saturating_add(idle);
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        // Concurrent requests; each instance of a Rust component holds a few
        // core instances and tables but one memory.
        .total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(3))
        .total_tables(instances.saturating_mul(3))
        .total_memories(instances)
        .total_stacks(instances)
        // The handler streams; it never needs a large heap.
        .max_memory_size(usize::try_from(limits.max_memory).unwrap_or(usize::MAX));
    // Resetting a used slot with madvise makes the kernel unmap its pages
    // and shoot down the TLB of every CPU running a worker thread; the next
    // request then faults them back in. With the PAGEMAP_SCAN ioctl (Linux
    // 6.7+) only the pages the request dirtied are found and restored with
    // memcpy, and stay resident, up to these amounts per slot (beyond them,
    // madvise as before). Without it, keeping memory resident would memset
    // the whole amount on every request, so the default stays.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pooling
            .pagemap_scan(wasmtime::Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
            .table_keep_resident(KEEP_RESIDENT_TABLE);
    }
    let mut config = codegen::config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    // For `perf`: name the guest's functions in /tmp/perf-PID.map (a
    // developer's switch, documented with the benchmark).
    if std::env::var_os("EDGEDAV_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// Linear memory a pooling slot keeps resident between requests: a request
/// of the handler dirties its stack, data and a small heap.
const KEEP_RESIDENT_MEMORY: usize = 4 << 20;

/// Table memory a slot keeps resident: all of a table of the default 20,000
/// elements.
const KEEP_RESIDENT_TABLE: usize = 256 << 10;

/// Compiles `wasm`; without one, loads the build script's precompiled copy
/// of the embedded handler, which takes milliseconds instead of seconds
/// (and leaves the embedded bytes untouched, out of memory). A copy this
/// engine cannot run (compiled for other CPU features, say) is compiled
/// anew.
fn load_component(engine: &Engine, wasm: Option<&[u8]>) -> wasmtime::Result<Component> {
    let wasm = match wasm {
        Some(wasm) => wasm,
        None => match precompiled_handler(engine) {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::info!(
                    "compiling the embedded handler: its precompiled copy does not fit this engine: {e:#}"
                );
                EMBEDDED_HANDLER
            }
        },
    };
    Component::new(engine, wasm).context("compiling the component")
}

fn precompiled_handler(engine: &Engine) -> wasmtime::Result<Component> {
    // SAFETY: the bytes are part of this binary, written by the build
    // script's `Engine::precompile_component`; `deserialize` checks that the
    // wasmtime version and the engine's settings match.
    unsafe { Component::deserialize(engine, PRECOMPILED_HANDLER) }
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

/// The answer when the guest did not answer: 503 when it ran out of time or
/// could not be started (capacity), 500 otherwise. (The access layer gives
/// every 503 its `Retry-After`.)
fn failure_response(kind: ComponentError) -> Response<HyperOutgoingBody> {
    let (status, text): (_, &'static [u8]) = match kind {
        ComponentError::Deadline => (
            StatusCode::SERVICE_UNAVAILABLE,
            b"the request took too long to process\n",
        ),
        ComponentError::Instantiation => (StatusCode::SERVICE_UNAVAILABLE, b"server busy\n"),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            b"internal server error\n",
        ),
    };
    let body = Full::new(Bytes::from_static(text))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

/// The data of one request's store.
struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: DenyOutgoing,
    table: ResourceTable,
    backend: Arc<dyn Backend>,
    locks: LockView,
    limits: MemoryLimit,
    cpu: Arc<CpuClock>,
    splice: FileSplice,
}

impl RequestState {
    /// Binds a warm instance's state to the next request.
    fn rebind(&mut self, storage: StorageBinding, cpu: Arc<CpuClock>) {
        self.backend = storage.backend;
        self.locks = storage.locks;
        self.cpu = cpu;
    }

    /// Whether the instance ended its request clean enough to answer
    /// another: nothing left in the resource table, a small heap.
    fn reusable(&self) -> bool {
        self.table.is_empty() && self.limits.grown_to <= warm::MAX_WARM_MEMORY
    }

    fn dav(&mut self) -> DavView<'_> {
        DavView {
            backend: &*self.backend,
            locks: &self.locks,
            table: &mut self.table,
            splice: &mut self.splice,
        }
    }

    fn splice(&mut self) -> SpliceView<'_> {
        SpliceView {
            table: &mut self.table,
            splice: &mut self.splice,
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

/// The store's limits, remembering how far linear memory has grown (a warm
/// instance keeps its memory).
struct MemoryLimit {
    limits: StoreLimits,
    grown_to: usize,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.grown_to = self.grown_to.max(desired);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The handler serves requests; it has no business making any.
struct DenyOutgoing;

type OutgoingIo = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

impl WasiHttpHooks for DenyOutgoing {
    /// The default rule, without the default's new closure (an allocation)
    /// for every header field the guest sets.
    fn is_forbidden_header(&mut self, name: &hyper::http::HeaderName) -> bool {
        wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.contains(name)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The guest may not set the fields that frame the connection.
    #[test]
    fn connection_fields_stay_forbidden_to_the_guest() {
        use hyper::http::header;
        let mut hooks = DenyOutgoing;
        for name in [header::CONNECTION, header::TRANSFER_ENCODING, header::HOST] {
            assert!(hooks.is_forbidden_header(&name), "{name}");
        }
        assert!(!hooks.is_forbidden_header(&header::CONTENT_TYPE));
    }

    /// The build script and the host agree on the engine settings, so the
    /// host starts without compiling the handler.
    #[test]
    fn the_precompiled_handler_fits_the_engine() {
        let engine = Engine::new(&engine_config(&SandboxLimits::default())).unwrap();
        precompiled_handler(&engine).unwrap();
    }
}
