//! Loading connector components and running one call in a fresh, limited instance.
//!
//! # Cost model
//!
//! * **Compile** once per component per process (cranelift; hundreds of milliseconds), and cache the
//!   compiled code on disk under `<data-dir>/cache/<sha256>-<engine hash>.cwasm`, so the next process
//!   only deserializes it (milliseconds). The cache directory is the host's own (mode 0700): compiled
//!   code is trusted native code and must never come from elsewhere.
//! * **Pre-instantiate** once per component: imports are resolved against the [`Linker`] then, not per
//!   call.
//! * **Instantiate** per call (microseconds): every call gets a new [`Store`] with its own
//!   memory, its own outbound budget and its own deadline, so nothing leaks between calls or
//!   connections. Instances come from wasmtime's **pooling allocator** ([`Allocator::Pooling`]):
//!   slots for `2 × max_instances` instances reserved up front, each memory slot as large as the
//!   policy file allows (`memory_mib` ≤ 4096) with the per-connection limit still enforced by the
//!   [`wasmtime::ResourceLimiter`], and linear memories initialised copy-on-write from the
//!   component's data image. A slot is wiped (`madvise`) when its store drops, so a later call never
//!   sees an earlier one's memory. Where the pool cannot be reserved (a tight `ulimit -v`), the host
//!   falls back to allocating on demand and says so in its log.
//!
//! # What a guest gets
//!
//! `wasi:http` (through [`crate::wire::outbound`]), the `claribi:data-source/host` interface (through
//! [`crate::sandbox::host_api`]), clocks, randomness, and the parts of `wasi:cli`/`wasi:filesystem` that Rust's
//! standard library imports — backed by an empty context: no preopened directories, no environment
//! variables, no arguments, empty stdin, stdout discarded, stderr captured (4 KiB) for crash reports.
//! `wasi:sockets` is not linked at all: a component importing it fails to load.
//!
//! # Limits
//!
//! * memory: a [`wasmtime::ResourceLimiter`] refuses growth past the policy's `memory_mib`;
//! * time: an epoch ticker (10 ms) interrupts running guest code, which yields to the executor and
//!   traps once the call's deadline has passed; a timer around the whole call also stops a guest that
//!   waits in host I/O;
//! * concurrency: at most `max_concurrent_instances` instances exist at once (a semaphore).

use crate::sandbox::bindings::{guest, wit, DataSource, DataSourcePre};
use crate::errors::HostError;
use crate::sandbox::host_api::{HostApi, HostContext, HostView};
use crate::wire::outbound::{Outbound, OutboundContext};
use crate::policy::Limits;
use crate::sandbox::limits::{CallBudget, CallLimiter};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::cli::WasiCliView;
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// How often the epoch ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Everything a [`Store`] holds during one call.
pub struct CallState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Outbound,
    limiter: CallLimiter,
    budget: Arc<CallBudget>,
    ledger: crate::sandbox::http_budget::Ledger,
    /// The host interface's state.
    pub host: HostContext,
}

impl CallState {
    /// A call's state: the table's entry cap, the field size limit and randomness derived from the
    /// call's host memory budget (which the `wasi:http` wrappers charge).
    fn new(limits: Limits, outbound: Arc<OutboundContext>, host: HostContext, stderr: Option<MemoryOutputPipe>) -> CallState {
        let budget = outbound.budget.clone();
        let mut table = ResourceTable::new();
        table.set_max_capacity(crate::sandbox::http_budget::table_capacity(limits.host_memory_bytes));
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(64 * 1024);
        let mut wasi = wasmtime_wasi::WasiCtxBuilder::new();
        wasi.max_random_size(64 * 1024);
        if let Some(e) = stderr {
            wasi.stderr(e);
        }
        CallState {
            table,
            wasi: wasi.build(),
            http,
            hooks: Outbound::new(outbound),
            limiter: CallLimiter::new(limits.memory_bytes as usize),
            budget,
            ledger: Default::default(),
            host,
        }
    }

    /// Disjoint borrows for the `wasi:http` wrappers: the budget, the wasi-http view, the ledger.
    pub(crate) fn split_live(&mut self) -> (&CallBudget, WasiHttpCtxView<'_>, &mut crate::sandbox::http_budget::Ledger) {
        (&*self.budget, WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }, &mut self.ledger)
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// The epoch callback's verdict when the deadline has passed.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("call deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// A loaded, pre-instantiated connector component.
pub struct LoadedPlugin {
    /// SHA-256 of the component bytes (hex).
    pub digest: String,
    /// What the connector says about itself.
    pub info: wit::ConnectorInfo,
    pre: DataSourcePre<CallState>,
    /// How long compiling (or loading from the cache) took.
    pub load_time: Duration,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
}

/// The engine, the linker, the compile cache and the loaded components of this process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache_dir: Option<PathBuf>,
    loaded: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
    /// Per component digest: held while it is compiled and described, so that concurrent first calls
    /// compile it once (the others wait, then find it loaded); other components load meanwhile.
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    instances: Arc<tokio::sync::Semaphore>,
    /// Per connection, at most half of `instances`, so one busy (or hostile) connection cannot take
    /// every slot from the others.
    per_connection: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    per_connection_max: usize,
    ticker_stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How instances get their memory, tables and stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// Slots reserved once, reused per call (the default).
    Pooling,
    /// `mmap` per instance (wasmtime's default; the benchmark's baseline).
    OnDemand,
}

/// The pooling allocator's sizes for `max_instances` concurrent calls.
fn pooling_config(max_instances: usize) -> wasmtime::PoolingAllocationConfig {
    // Twice the semaphore's bound: a store is dropped just after its permit, and loading a component
    // (describe) runs an instance too.
    let slots = u32::try_from(max_instances.max(1).saturating_mul(2).saturating_add(2)).unwrap_or(u32::MAX);
    let mut p = wasmtime::PoolingAllocationConfig::new();
    p.total_component_instances(slots)
        // A Rust wasip2 component is one main module plus wit-component's small shim and fixup
        // modules; third-party components get room beyond that.
        .total_core_instances(slots.saturating_mul(16))
        .max_core_instances_per_component(16)
        .total_memories(slots.saturating_mul(2))
        .max_memories_per_component(2)
        .total_tables(slots.saturating_mul(8))
        .max_tables_per_component(8)
        .max_tables_per_module(4)
        .total_stacks(slots)
        // The largest memory a policy may grant (`memory_mib` ≤ 4096); the limiter holds each call to
        // its connection's own.
        .max_memory_size(4096 * 1024 * 1024);
    p
}

/// The hex SHA-256 of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl Runtime {
    /// A runtime caching compiled code under `cache_dir` (`None`: no disk cache), allowing at most
    /// `max_instances` concurrent instances.
    pub fn new(cache_dir: Option<PathBuf>, max_instances: usize) -> Result<Runtime, HostError> {
        match Self::with_allocator(cache_dir.clone(), max_instances, Allocator::Pooling) {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::warn!("cannot reserve the instance pool ({e}); instances are allocated on demand");
                Self::with_allocator(cache_dir, max_instances, Allocator::OnDemand)
            }
        }
    }

    /// [`Runtime::new`] with a chosen allocator (the benchmark compares the two).
    pub fn with_allocator(cache_dir: Option<PathBuf>, max_instances: usize, allocator: Allocator) -> Result<Runtime, HostError> {
        let mut config = Config::new();
        if allocator == Allocator::Pooling {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling_config(max_instances)));
        }
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Guest code may use 1 MiB of native stack; the fiber it runs on has 4 MiB, so a host function
        // called from the deepest guest frame (a log line, an HTTP request) still has 3 MiB. With the
        // two equal, a guest recursing to the limit and then calling the host would overflow the
        // host's stack and abort the process (see wasmtime's `Config::max_wasm_stack`).
        config.max_wasm_stack(1024 * 1024);
        config.async_stack_size(4 * 1024 * 1024);
        let engine = Engine::new(&config).map_err(|e| HostError::Storage(format!("cannot create the wasm engine: {e}")))?;
        let linker = Self::linker(&engine).map_err(|e| HostError::Storage(format!("cannot link host interfaces: {e}")))?;
        if let Some(dir) = &cache_dir {
            create_private_dir(dir).map_err(HostError::Storage)?;
        }
        // The epoch ticker: a thread holding only a weak reference to the engine.
        let weak = engine.weak();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::Builder::new()
            .name("claribi-epoch".into())
            .spawn(move || {
                while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| HostError::Storage(format!("cannot start the epoch thread: {e}")))?;
        Ok(Runtime {
            engine,
            linker,
            cache_dir,
            loaded: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
            instances: Arc::new(tokio::sync::Semaphore::new(max_instances.max(1))),
            per_connection: Mutex::new(HashMap::new()),
            per_connection_max: (max_instances / 2).max(1),
            ticker_stop: stop,
        })
    }

    fn linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
        use wasmtime_wasi::p2::bindings::{cli, filesystem, random};
        let mut l = Linker::<CallState>::new(engine);
        // io, clocks, random, stdin/stdout/stderr
        wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(&mut l)?;
        // What Rust std on wasip2 also imports, backed by the empty WasiCtx.
        filesystem::types::add_to_linker::<CallState, wasmtime_wasi::filesystem::WasiFilesystem>(&mut l, |t| {
            t.filesystem()
        })?;
        filesystem::preopens::add_to_linker::<CallState, wasmtime_wasi::filesystem::WasiFilesystem>(&mut l, |t| {
            t.filesystem()
        })?;
        cli::environment::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(&mut l, |t| t.cli())?;
        cli::exit::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(&mut l, |t| t.cli())?;
        cli::terminal_input::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(&mut l, |t| t.cli())?;
        cli::terminal_output::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(&mut l, |t| t.cli())?;
        cli::terminal_stdin::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(&mut l, |t| t.cli())?;
        cli::terminal_stdout::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(&mut l, |t| t.cli())?;
        cli::terminal_stderr::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(&mut l, |t| t.cli())?;
        random::insecure::add_to_linker::<CallState, wasmtime_wasi::random::WasiRandom>(&mut l, |t| {
            t.wasi.random()
        })?;
        random::insecure_seed::add_to_linker::<CallState, wasmtime_wasi::random::WasiRandom>(&mut l, |t| {
            t.wasi.random()
        })?;
        // wasi:http, through our hooks, with what allocates on the host counted against the call.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut l)?;
        crate::sandbox::http_budget::add_to_linker(&mut l)?;
        // claribi:data-source/host
        crate::sandbox::bindings::claribi::data_source::types::add_to_linker::<CallState, HostApi>(&mut l, |s| HostView {
            ctx: &mut s.host,
            table: &mut s.table,
        })?;
        crate::sandbox::bindings::claribi::data_source::host::add_to_linker::<CallState, HostApi>(&mut l, |s| HostView {
            ctx: &mut s.host,
            table: &mut s.table,
        })?;
        Ok(l)
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn cache_key(&self, digest: &str) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("{digest}-{:016x}", h.finish())
    }

    /// Compile (or load from the cache) a component. Returns the component and whether it came from
    /// the cache.
    pub fn compile(&self, bytes: &[u8], digest: &str) -> Result<(Component, bool), HostError> {
        if let Some(dir) = &self.cache_dir {
            let path = dir.join(format!("{}.cwasm", self.cache_key(digest)));
            if path.exists() {
                // SAFETY: the file was written by `Component::serialize` of this engine configuration
                // into the host's private cache directory (0700), keyed by the component's digest and
                // the engine's compatibility hash; it is never taken from anywhere else.
                match unsafe { Component::deserialize_file(&self.engine, &path) } {
                    Ok(c) => return Ok((c, true)),
                    Err(e) => {
                        tracing::warn!("discarding unusable compile cache entry {}: {e}", path.display());
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
            let component = self.compile_fresh(bytes)?;
            if let Ok(serialized) = component.serialize() {
                let tmp = dir.join(format!(".{}.{}.tmp", self.cache_key(digest), std::process::id()));
                if write_private(&tmp, &serialized).is_ok() {
                    let _ = std::fs::rename(&tmp, &path);
                }
            }
            return Ok((component, false));
        }
        Ok((self.compile_fresh(bytes)?, false))
    }

    fn compile_fresh(&self, bytes: &[u8]) -> Result<Component, HostError> {
        if !bytes.starts_with(b"\0asm") {
            return Err(HostError::InvalidPlugin(
                "the file is not WebAssembly (it lacks the \\0asm header); give a .wasm component built for wasm32-wasip2".into(),
            ));
        }
        if bytes.starts_with(b"\0asm") && bytes.len() >= 8 && bytes[4..8] == [1, 0, 0, 0] {
            return Err(HostError::InvalidPlugin(
                "this is a core wasm module, not a component; build the connector with `cargo build --target wasm32-wasip2`".into(),
            ));
        }
        Component::new(&self.engine, bytes).map_err(|e| {
            HostError::InvalidPlugin(format!("the file is not a loadable WebAssembly component: {}", root_cause(&e)))
        })
    }

    /// The component with this digest, if this process loaded it already (its bytes were hashed then).
    pub fn loaded(&self, digest: &str) -> Option<Arc<LoadedPlugin>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(digest).cloned()
    }

    /// Load a component: compile (once per process), pre-instantiate, and ask it to describe itself.
    pub async fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedPlugin>, HostError> {
        let digest = digest(bytes);
        if let Some(p) = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(&digest) {
            return Ok(p.clone());
        }
        let gate = self.loading.lock().unwrap_or_else(|p| p.into_inner()).entry(digest.clone()).or_default().clone();
        let _loading = gate.lock().await;
        if let Some(p) = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(&digest) {
            return Ok(p.clone());
        }
        let started = Instant::now();
        let (component, from_cache) = self.compile(bytes, &digest)?;
        let load_time = started.elapsed();
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            HostError::InvalidPlugin(format!(
                "the component does not fit the claribi:data-source world: {} (a connector may import only wasi:http, the claribi host interface and what Rust std needs; wasi:sockets is never provided)",
                full_chain(&e)
            ))
        })?;
        let pre = DataSourcePre::new(instance_pre).map_err(|e| {
            if let Some(old) = older_contract(&component, &self.engine) {
                return HostError::OldContract(old);
            }
            HostError::InvalidPlugin(format!("the component does not export claribi:data-source/connector: {}", full_chain(&e)))
        })?;
        let mut plugin = LoadedPlugin {
            digest: digest.clone(),
            info: wit::ConnectorInfo {
                id: String::new(),
                display_name: String::new(),
                version: String::new(),
                description: String::new(),
                default_endpoint: String::new(),
                outbound_origins: vec![],
                scopes: vec![],
                auth_methods: vec![],
                api_key_headers: None,
            },
            pre,
            load_time,
            from_cache,
        };
        let limits = Limits { call_timeout: Duration::from_secs(10), ..Limits::default() };
        let outbound = Arc::new(OutboundContext::detached("(loading)", limits));
        let ctx = HostContext::detached(outbound.budget.clone());
        let (info, _) = self
            .invoke(&plugin, "(loading)", ctx, limits, outbound, |b, s| {
                Box::pin(async move { b.claribi_data_source_connector().call_describe(s).await })
            })
            .await?;
        validate_info(&info)?;
        plugin.info = info;
        let plugin = Arc::new(plugin);
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert(digest, plugin.clone());
        Ok(plugin)
    }

    /// Run one export of `plugin` in a fresh instance under `limits`. `outbound` carries the grant and
    /// the credentials; `None` means the call may not make any request at all.
    pub async fn invoke<R: Send + 'static>(
        &self,
        plugin: &LoadedPlugin,
        connection: &str,
        host: HostContext,
        limits: Limits,
        outbound: Arc<OutboundContext>,
        f: impl for<'a> FnOnce(&'a DataSource, &'a mut Store<CallState>) -> CallFuture<'a, R> + Send,
    ) -> Result<(R, HostContext), HostError> {
        // A slot for this connection, then one on the host; waiting counts against the call's time.
        let own = {
            let mut map = self.per_connection.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(connection.to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_connection_max)))
                .clone()
        };
        let waited = Instant::now();
        let slots = async {
            let a = own.acquire_owned().await?;
            let b = self.instances.clone().acquire_owned().await?;
            Ok::<_, tokio::sync::AcquireError>((a, b))
        };
        let _permits = match tokio::time::timeout(limits.call_timeout, slots).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(HostError::Storage("the runtime is shutting down".into())),
            Err(_) => {
                return Err(HostError::Busy { connection: connection.to_string(), waited_ms: waited.elapsed().as_millis() })
            }
        };
        let limit_ms = limits.call_timeout.as_millis();
        // Starting with less than a tenth of the time left would only end in a misleading deadline.
        let left = limits.call_timeout.saturating_sub(waited.elapsed());
        if left < limits.call_timeout / 10 {
            return Err(HostError::Busy { connection: connection.to_string(), waited_ms: waited.elapsed().as_millis() });
        }
        let limits = Limits { call_timeout: left, ..limits };
        let stderr = MemoryOutputPipe::new(4096);
        let state = CallState::new(limits, outbound.clone(), host, Some(stderr.clone()));
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // One guest-to-host copy (a log line, a tool result) is bounded before any host function runs.
        store.set_hostcall_fuel(usize::try_from(limits.max_response_bytes.saturating_mul(2)).unwrap_or(usize::MAX).clamp(4 << 20, 128 << 20));
        store.set_max_component_handles(2 * crate::sandbox::http_budget::table_capacity(limits.host_memory_bytes));
        let deadline = Instant::now() + limits.call_timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let pre = plugin.pre.clone();
        let run = async {
            let bindings = pre.instantiate_async(&mut store).await?;
            f(&bindings, &mut store).await
        };
        let outcome = tokio::time::timeout(limits.call_timeout + Duration::from_millis(250), run).await;
        match outcome {
            Err(_) => Err(HostError::Deadline { connection: connection.to_string(), limit_ms }),
            Ok(Ok(r)) => Ok((r, store.into_data().host)),
            Ok(Err(e)) => {
                let state = store.data();
                if let Some(detail) = outbound.budget.exceeded() {
                    return Err(HostError::HostMemory { connection: connection.to_string(), detail });
                }
                if state.limiter.memory_denied {
                    return Err(HostError::MemoryLimit {
                        connection: connection.to_string(),
                        limit_mib: limits.memory_bytes / (1024 * 1024),
                    });
                }
                if e.downcast_ref::<DeadlineExceeded>().is_some() {
                    return Err(HostError::Deadline { connection: connection.to_string(), limit_ms });
                }
                if let Some(failure) = state.host.host_failure() {
                    return Err(HostError::Storage(failure));
                }
                let mut detail = root_cause(&e);
                if detail.contains("fuel allocated for hostcalls has been exhausted") {
                    let mib = (limits.max_response_bytes.saturating_mul(2)).clamp(4 << 20, 128 << 20) / (1024 * 1024);
                    return Err(HostError::HostMemory {
                        connection: connection.to_string(),
                        detail: format!(
                            "the connector passed the host more than {mib} MiB at once (a log line, a value, a result; twice max_response_bytes)"
                        ),
                    });
                }
                if let Some(panic) = panic_message(&String::from_utf8_lossy(&stderr.contents())) {
                    detail = format!("{detail}; {panic}");
                }
                Err(HostError::Crashed { connection: connection.to_string(), detail: state.host.mask(&detail) })
            }
        }
    }
}

impl Runtime {
    /// Time `n` instantiations of `plugin` in fresh stores (no export is called). For benchmarks.
    pub async fn time_instantiation(&self, plugin: &LoadedPlugin, n: usize) -> Result<Vec<Duration>, HostError> {
        let limits = Limits::default();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let outbound = Arc::new(OutboundContext::detached("(bench)", limits));
            let host = HostContext::detached(outbound.budget.clone());
            let state = CallState::new(limits, outbound, host, None);
            let mut store = Store::new(&self.engine, state);
            store.limiter(|s| &mut s.limiter);
            store.set_epoch_deadline(u64::MAX / 2);
            let t = Instant::now();
            let instance = plugin
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| HostError::Crashed { connection: "(bench)".into(), detail: root_cause(&e) })?;
            out.push(t.elapsed());
            drop(instance);
        }
        Ok(out)
    }
}

/// The `claribi:data-source` version a component was built for, when it is an older one than this
/// host runs (its `connector` export names another package version).
fn older_contract(component: &Component, engine: &Engine) -> Option<String> {
    let ty = component.component_type();
    let names: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
    names.iter().find_map(|n| n.strip_prefix("claribi:data-source/connector@").filter(|v| *v != CONTRACT_VERSION).map(str::to_string))
}

/// The `claribi:data-source` version this host runs.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// The innermost message of an error chain, one line.
pub fn root_cause(e: &wasmtime::Error) -> String {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        // `Trap` displays as "wasm trap: …" already.
        return crate::errors::one_line(&trap.to_string());
    }
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        msg = cause.to_string();
    }
    crate::errors::one_line(&msg)
}

/// The whole error chain, outermost first, joined with `: ` (one line) — for load errors, where
/// wasmtime's outer context names the import that is missing.
pub fn full_chain(e: &wasmtime::Error) -> String {
    let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        if !out.iter().any(|o| o.contains(&p)) {
            out.push(p);
        }
    }
    crate::errors::one_line(&out.join(": "))
}

/// The panic message in a guest's captured stderr: the `panicked at` line and what follows it, up to
/// Rust's `note:` line.
pub fn panic_message(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines().skip_while(|l| !l.contains("panicked"));
    let head = lines.next()?.trim().to_string();
    let rest: Vec<&str> = lines.take_while(|l| !l.starts_with("note:")).map(str::trim).filter(|l| !l.is_empty()).collect();
    Some(if rest.is_empty() { head } else { format!("{head} {}", rest.join(" ")) })
}

fn validate_info(info: &wit::ConnectorInfo) -> Result<(), HostError> {
    let id_ok = !info.id.is_empty()
        && info.id.len() <= 64
        && info.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(HostError::InvalidPlugin(format!(
            "connector id `{}` must be 1-64 characters of a-z, 0-9, - and _",
            crate::errors::one_line(&info.id)
        )));
    }
    if info.display_name.trim().is_empty() || info.display_name.len() > 128 {
        return Err(HostError::InvalidPlugin("connector display name must be 1-128 characters".into()));
    }
    for o in &info.outbound_origins {
        crate::policy::OriginPattern::parse(o)
            .map_err(|e| HostError::InvalidPlugin(format!("connector declares a bad outbound origin: {e}")))?;
    }
    Ok(())
}

/// Write a file readable only by this user.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Create a directory readable only by this user.
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// The exports of the connector interface, re-exported for callers of [`Runtime::invoke`].
pub use guest::Guest as ConnectorExports;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_keep_the_line_after_panicked_at() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:5:9:\nboom: the key was sk_123\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(panic_message(stderr).unwrap(), "thread '<unnamed>' panicked at src/lib.rs:5:9: boom: the key was sk_123");
        assert!(panic_message("nothing here").is_none());
    }

    #[test]
    fn load_errors_keep_the_outer_context() {
        let e = wasmtime::Error::msg("resource implementation is missing").context("component imports instance `wasi:sockets/tcp@0.2.12`");
        let s = full_chain(&e);
        assert!(s.starts_with("component imports instance `wasi:sockets/tcp@0.2.12`"), "{s}");
        assert!(s.ends_with("resource implementation is missing"), "{s}");
    }
}
