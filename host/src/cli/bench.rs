//! `claribi-host bench`: what a connector call costs, printed as figures (never a pass/fail test).
//! Run it from a release build, as users run the host: `cargo run --release -p claribi-host -- bench`
//! (a dev build prints a warning first).
//!
//! Measured against the embedded Close stand-in on loopback, in one process:
//!
//! * **compile**: cranelift compilation of the Close connector component (no cache);
//! * **cached load**: deserializing the compiled code from the on-disk cache;
//! * **instantiate**: a fresh instance from the pre-instantiated component, with the pooling allocator
//!   the host uses and with wasmtime's on-demand allocator (the baseline, same run);
//! * **call-tool latency** (p50/p99), interleaved call by call so that both sides see the same machine:
//!   `find_opportunities` through the whole host path (prepared state, blocklist, policy, fresh
//!   instance, guest MCP client over `wasi:http`, the send hook) versus a native Rust client — the
//!   *same* `mcp-client` library compiled natively over a plain HTTP transport, doing the same request
//!   and JSON parsing against the same stand-in — and the **engine path**: that native client calling
//!   the host's MCP server (`serve --http`, in process, results not summarized) versus calling the
//!   stand-in directly;
//! * **large result**: a 5 MB result (the stand-in's `huge_result_bytes` fault) through the component
//!   and natively: throughput and the growth of the process's peak memory;
//! * **peak memory**: the process's peak resident set (VmHWM).
//!
//! `host/bench/` holds the harness outside Rust: the official MCP Python SDK client as the anchor, and
//! the concurrency sweep through `serve --http`.

use claribi_host::errors::HostError;
use claribi_host::sandbox::runtime::{Allocator, Runtime};
use claribi_host::service::{builtin, ConnectRequest, Credentials, HostConfig, HostService};
use close_standin::{Faults, ResponseMode, StandIn, StandInConfig, Switches};
use mcp_client::http::{BodyReader, HttpClient, HttpRequest, HttpResponse, Method, TransportError};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const ARGS: &str = r#"{"status_type":"active","sort_by":"largest_value"}"#;
/// The large result's extra text block.
const LARGE_BYTES: u64 = 5_000_000;

/// Run the benchmark.
pub async fn run(iterations: usize) -> Result<(), HostError> {
    let iterations = iterations.max(10);
    if cfg!(debug_assertions) {
        println!("warning      a dev build: these are not the figures users see; run `cargo run --release -p claribi-host -- bench`");
    }
    let start = |faults: Faults| {
        StandIn::start(StandInConfig {
            switches: Switches { response_mode: ResponseMode::Json, ..Switches::default() },
            faults,
            ..StandInConfig::default()
        })
    };
    let standin = start(Faults::none()).await.map_err(|e| HostError::Usage(format!("cannot start the Close stand-in: {e}")))?;
    let large = start(Faults { huge_result_bytes: Some(LARGE_BYTES), ..Faults::none() })
        .await
        .map_err(|e| HostError::Usage(format!("cannot start the Close stand-in: {e}")))?;
    let dir = tempfile::tempdir().map_err(|e| HostError::Storage(e.to_string()))?;
    let result = bench(&standin, &large, dir.path(), iterations).await;
    standin.shutdown().await;
    large.shutdown().await;
    result
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (percentile(&v, 0.50), percentile(&v, 0.99))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0)))
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    let profile = if cfg!(debug_assertions) { "dev build" } else { "release build" };
    format!("{cpu}, {cores} cores, {mem}, {} {}, {profile}", std::env::consts::OS, std::env::consts::ARCH)
}

/// The process's peak resident set, in KiB.
fn peak_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn peak_rss() -> String {
    peak_rss_kib().map(|kb| format!("{:.1} MiB", kb as f64 / 1024.0)).unwrap_or_else(|| "n/a".into())
}

async fn connect(host: &HostService, name: &str, standin: &StandIn) -> Result<(), HostError> {
    host.connect(ConnectRequest {
        name: name.into(),
        plugin: builtin::CLOSE.to_vec(),
        endpoint: Some(standin.url()),
        credentials: Credentials::ApiKey(Zeroizing::new(standin.api_key().to_string())),
        scopes: vec!["mcp.read".into()],
        allow_origins: Some(vec![standin.base_url().trim_end_matches('/').to_string()]),
        policy: None,
        options: vec![],
    })
    .await
    .map(|_| ())
}

async fn bench(standin: &StandIn, large: &StandIn, data_dir: &std::path::Path, iterations: usize) -> Result<(), HostError> {
    println!("machine      {}", machine());
    println!("component    builtin:close, {} bytes", builtin::CLOSE.len());

    // Compile without a cache, three times.
    let runtime = Runtime::new(None, 4)?;
    let digest = claribi_host::sandbox::runtime::digest(builtin::CLOSE);
    let mut compiles = vec![];
    for _ in 0..3 {
        let t = Instant::now();
        runtime.compile(builtin::CLOSE, &digest)?;
        compiles.push(t.elapsed());
    }
    compiles.sort();
    println!("compile      {} (median of 3, cranelift, no cache)", ms(compiles[1]));

    // Cached load: compile once into a cache, then load from it.
    let cache = data_dir.join("bench-cache");
    let cached = Runtime::new(Some(cache.clone()), 4)?;
    cached.compile(builtin::CLOSE, &digest)?;
    let mut loads = vec![];
    for _ in 0..10 {
        let fresh = Runtime::new(Some(cache.clone()), 4)?;
        let t = Instant::now();
        let (_, from_cache) = fresh.compile(builtin::CLOSE, &digest)?;
        loads.push(t.elapsed());
        if !from_cache {
            return Err(HostError::Storage("the compile cache was not used".into()));
        }
    }
    let (p50, _) = summary(loads);
    println!("cached load  {} (median of 10, deserialize from the on-disk cache)", ms(p50));

    // Instantiation: the host's pooling allocator, and on demand (the baseline), alternating runs.
    let on_demand = Runtime::with_allocator(Some(cache.clone()), 4, Allocator::OnDemand)?;
    let pooled = runtime.load(builtin::CLOSE).await?;
    let unpooled = on_demand.load(builtin::CLOSE).await?;
    let (mut pool_times, mut demand_times) = (vec![], vec![]);
    for _ in 0..5 {
        pool_times.extend(runtime.time_instantiation(&pooled, iterations / 5 + 1).await?);
        demand_times.extend(on_demand.time_instantiation(&unpooled, iterations / 5 + 1).await?);
    }
    let (p50, p99) = summary(pool_times);
    let (d50, d99) = summary(demand_times);
    println!("instantiate  {} fresh instances each, from the pre-instantiated component", iterations / 5 * 5 + 5);
    println!("  pooling    p50 {}  p99 {}  (the host's allocator: slots reused, memory copy-on-write)", us(p50), us(p99));
    println!("  on demand  p50 {}  p99 {}  ({:.1}x the pooled p50)", us(d50), us(d99), ratio(d50, p50));
    drop(on_demand);

    // Calls through the host, natively, and through the host's MCP server, interleaved.
    let mut cfg = HostConfig::new(data_dir);
    cfg.cache_dir = Some(cache);
    // CLARIBI_BENCH_POSTGRES=1: the calls below on a fresh PostgreSQL database (the tests' server),
    // as a replica of a fleet keeps its store.
    let database = match std::env::var("CLARIBI_BENCH_POSTGRES").as_deref() {
        Ok("1") => Some(claribi_host::vault::store::postgres::testing::TestDatabase::try_create().map_err(HostError::Usage)?),
        _ => None,
    };
    cfg.database = database.as_ref().map(|d| d.url.clone());
    println!(
        "store        {}",
        match &cfg.database {
            Some(url) => format!("PostgreSQL, a fresh database at {} (CLARIBI_BENCH_POSTGRES=1)", claribi_host::vault::store::postgres::redacted(url)),
            None => "SQLite in the bench's data directory (CLARIBI_BENCH_POSTGRES=1: PostgreSQL)".into(),
        }
    );
    let host = Arc::new(HostService::open(cfg)?);
    connect(&host, "bench", standin).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| HostError::Usage(format!("cannot listen: {e}")))?;
    let serve_url = format!("http://{}/mcp", listener.local_addr().map_err(|e| HostError::Usage(e.to_string()))?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = claribi_host::engine::EngineServer::new(
        host.clone(),
        claribi_host::engine::EngineOptions { max_result_bytes: 64 << 20, bare_names: true },
    );
    let serving = tokio::spawn(claribi_host::engine::serve_http(server, listener, async {
        let _ = stop_rx.await;
    }));

    let http = UreqClient { agent: ureq::AgentBuilder::new().build() };
    let (direct_parts, serve_parts) = (NativeParts::new(standin.api_key()), NativeParts::new(""));
    let mut direct = NativeClient::new(&http, &standin.url(), &direct_parts)?;
    let mut through_serve = NativeClient::new(&http, &serve_url, &serve_parts)?;
    let mut bytes = 0;
    for _ in 0..5 {
        let out = host.call_tool("bench", "find_opportunities", ARGS).await?;
        bytes = out.approximate_bytes();
        tokio::task::block_in_place(|| direct.call())?;
        tokio::task::block_in_place(|| through_serve.call())?;
    }
    let (mut component, mut native, mut served) = (vec![], vec![], vec![]);
    for _ in 0..iterations {
        let t = Instant::now();
        let out = host.call_tool("bench", "find_opportunities", ARGS).await?;
        component.push(t.elapsed());
        std::hint::black_box(out);
        native.push(tokio::task::block_in_place(|| direct.call())?);
        served.push(tokio::task::block_in_place(|| through_serve.call())?);
    }
    let (h50, h99) = summary(component);
    let (n50, n99) = summary(native);
    let (s50, s99) = summary(served);
    println!("call-tool    find_opportunities, {bytes} bytes of result, {iterations} calls each, interleaved, JSON responses");
    println!("  component  p50 {}  p99 {}", ms(h50), ms(h99));
    println!("  native     p50 {}  p99 {}", ms(n50), ms(n99));
    println!(
        "  ratio      p50 {:.2}x (+{})  p99 {:.2}x",
        ratio(h50, n50),
        ms(h50.saturating_sub(n50)),
        ratio(h99, n99)
    );
    println!("engine path  the same native MCP client, to the stand-in directly and through `serve --http`");
    println!("  direct     p50 {}  p99 {}", ms(n50), ms(n99));
    println!("  via serve  p50 {}  p99 {}", ms(s50), ms(s99));
    println!("  added      p50 +{}  ({:.2}x)", ms(s50.saturating_sub(n50)), ratio(s50, n50));
    // What a call costs the store: each operation is one statement or transaction (a round trip
    // with a networked database).
    let counted = 20u64;
    let before = host.store().operations();
    for _ in 0..counted {
        host.call_tool("bench", "find_opportunities", ARGS).await?;
    }
    let direct_ops = host.store().operations() - before;
    let before = host.store().operations();
    for _ in 0..counted {
        tokio::task::block_in_place(|| through_serve.call())?;
    }
    let served_ops = host.store().operations() - before;
    println!(
        "store ops    per call: {:.1} direct, {:.1} via serve (statements or transactions on the store; the rate budget takes 2, the audit trail 1)",
        direct_ops as f64 / counted as f64,
        served_ops as f64 / counted as f64
    );
    let _ = stop_tx.send(());
    let _ = serving.await;

    // A 5 MB result.
    connect(&host, "large", large).await?;
    let large_parts = NativeParts::new(large.api_key());
    let mut large_native = NativeClient::new(&http, &large.url(), &large_parts)?;
    let before = peak_rss_kib().unwrap_or(0);
    let mut large_bytes = 0;
    let (mut lc, mut ln) = (vec![], vec![]);
    let rounds = (iterations / 10).clamp(5, 20);
    for i in 0..rounds + 2 {
        let t = Instant::now();
        let out = host.call_tool("large", "find_opportunities", ARGS).await?;
        let took = t.elapsed();
        large_bytes = out.approximate_bytes();
        drop(out);
        let native_took = tokio::task::block_in_place(|| large_native.call())?;
        if i >= 2 {
            lc.push(took);
            ln.push(native_took);
        }
    }
    let grew = peak_rss_kib().unwrap_or(0).saturating_sub(before) as f64 * 1024.0;
    let (l50, _) = summary(lc);
    let (m50, _) = summary(ln);
    let mbps = |d: Duration| large_bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9);
    println!("large result {large_bytes} bytes, {rounds} calls each, interleaved");
    println!("  component  p50 {}  {:.0} MB/s", ms(l50), mbps(l50));
    println!("  native     p50 {}  {:.0} MB/s", ms(m50), mbps(m50));
    println!("  throughput {:.2}x native", mbps(l50) / mbps(m50).max(1e-9));
    println!("  peak memory grew {:.1} MiB over these calls ({:.1}x the result)", grew / 1048576.0, grew / large_bytes.max(1) as f64);
    println!("peak memory  {} (whole process: stand-ins, host, serve, native clients)", peak_rss());
    Ok(())
}

/// A blocking HTTP transport for the native baseline.
struct UreqClient {
    agent: ureq::Agent,
}

struct UreqBody(Box<dyn Read + Send + Sync>);

impl BodyReader for UreqBody {
    fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        let mut buf = vec![0u8; 16 * 1024];
        match self.0.read(&mut buf) {
            Ok(0) => Ok(None),
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(e) => Err(TransportError::Unavailable(e.to_string())),
        }
    }
}

impl HttpClient for UreqClient {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut req = self.agent.request(request.method.as_str(), &request.url);
        for (k, v) in &request.headers {
            req = req.set(k, v);
        }
        let resp = match request.method {
            Method::Get => req.call(),
            _ => req.send_bytes(&request.body),
        };
        let resp = match resp {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(TransportError::Unavailable(e.to_string())),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .flat_map(|n| resp.all(&n).into_iter().map(move |v| (n.clone(), v.to_string())).collect::<Vec<_>>())
            .collect();
        Ok(HttpResponse { status, headers, body: Box::new(UreqBody(Box::new(resp.into_reader()))) })
    }
}

/// The native baseline: the connector's own `mcp-client`, compiled natively, over [`UreqClient`].
struct NativeClient<'a> {
    client: mcp_client::McpClient<'a>,
    args: serde_json::Map<String, serde_json::Value>,
}

static NO_LOGGER: mcp_client::NoLogger = mcp_client::NoLogger;

/// What a native client borrows: its headers and its session.
struct NativeParts {
    auth: mcp_client::StaticHeaders,
    store: mcp_client::MemorySessionStore,
}

impl NativeParts {
    /// With an API key, Close's headers (the stand-in); without, none (serve on loopback).
    fn new(key: &str) -> NativeParts {
        let headers = if key.is_empty() {
            vec![]
        } else {
            vec![("Close-API-Key".into(), key.to_string()), ("Close-Scope".into(), "mcp.read".into())]
        };
        NativeParts { auth: mcp_client::StaticHeaders(headers), store: mcp_client::MemorySessionStore::default() }
    }
}

impl<'a> NativeClient<'a> {
    /// A client of `url`.
    fn new(http: &'a UreqClient, url: &str, parts: &'a NativeParts) -> Result<NativeClient<'a>, HostError> {
        let client = mcp_client::McpClient::new(
            mcp_client::ClientConfig::new(url, "claribi-bench-native", env!("CARGO_PKG_VERSION")),
            http,
            &parts.auth,
            &parts.store,
            &NO_LOGGER,
        )
        .map_err(|e| HostError::Usage(format!("native client: {e}")))?;
        Ok(NativeClient { client, args: serde_json::from_str(ARGS).unwrap_or_default() })
    }

    /// One call, timed; the same JSON handling the connector does (the text block parsed).
    fn call(&mut self) -> Result<Duration, HostError> {
        let t = Instant::now();
        let r = self
            .client
            .call_tool("find_opportunities", self.args.clone())
            .map_err(|e| HostError::Usage(format!("native client: {e}")))?;
        for block in r.content.iter() {
            if let Some(text) = block.as_text() {
                if text.starts_with('{') || text.starts_with('[') {
                    let v: serde_json::Value =
                        serde_json::from_str(text).map_err(|e| HostError::Usage(format!("native client: {e}")))?;
                    std::hint::black_box(v);
                }
            }
        }
        Ok(t.elapsed())
    }
}

