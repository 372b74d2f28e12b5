//! `claribi-host bench`: what a connector call costs, printed as figures (never a pass/fail test).
//!
//! Measured against the embedded Close stand-in on loopback, in one process:
//!
//! * **compile**: cranelift compilation of the Close connector component (no cache);
//! * **cached load**: deserializing the compiled code from the on-disk cache;
//! * **instantiate**: a fresh instance from the pre-instantiated component;
//! * **call-tool latency** (p50/p99): `find_opportunities` through the whole host path (blocklist,
//!   policy, fresh instance, guest MCP client over `wasi:http`, the send hook) versus a native Rust
//!   client — the *same* `mcp-client` library compiled natively over a plain HTTP transport, doing the
//!   same request and JSON parsing against the same stand-in;
//! * **peak memory**: the process's peak resident set (VmHWM).

use claribi_host::errors::HostError;
use claribi_host::service::{builtin, ConnectRequest, Credentials, HostConfig, HostService};
use close_standin::{ResponseMode, StandIn, StandInConfig, Switches};
use mcp_client::http::{BodyReader, HttpClient, HttpRequest, HttpResponse, Method, TransportError};
use std::io::Read;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const ARGS: &str = r#"{"status_type":"active","sort_by":"largest_value"}"#;

/// Run the benchmark.
pub async fn run(iterations: usize) -> Result<(), HostError> {
    let iterations = iterations.max(10);
    let standin = StandIn::start(StandInConfig {
        switches: Switches { response_mode: ResponseMode::Json, ..Switches::default() },
        ..StandInConfig::default()
    })
    .await
    .map_err(|e| HostError::Usage(format!("cannot start the Close stand-in: {e}")))?;
    let dir = tempfile::tempdir().map_err(|e| HostError::Storage(e.to_string()))?;
    let result = bench(&standin, dir.path(), iterations).await;
    standin.shutdown().await;
    result
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (percentile(&v, 0.50), percentile(&v, 0.99))
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
    format!("{cpu}, {cores} cores, {mem}, {} {}", std::env::consts::OS, std::env::consts::ARCH)
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string()))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.1} MiB", kb as f64 / 1024.0))
        .unwrap_or_else(|| "n/a".into())
}

async fn bench(standin: &StandIn, data_dir: &std::path::Path, iterations: usize) -> Result<(), HostError> {
    println!("machine      {}", machine());
    println!("component    builtin:close, {} bytes", builtin::CLOSE.len());

    // Compile without a cache, three times.
    let runtime = claribi_host::sandbox::runtime::Runtime::new(None, 4)?;
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
    let cached = claribi_host::sandbox::runtime::Runtime::new(Some(cache.clone()), 4)?;
    cached.compile(builtin::CLOSE, &digest)?;
    let mut loads = vec![];
    for _ in 0..10 {
        let fresh = claribi_host::sandbox::runtime::Runtime::new(Some(cache.clone()), 4)?;
        let t = Instant::now();
        let (_, from_cache) = fresh.compile(builtin::CLOSE, &digest)?;
        loads.push(t.elapsed());
        if !from_cache {
            return Err(HostError::Storage("the compile cache was not used".into()));
        }
    }
    let (p50, _) = summary(loads);
    println!("cached load  {} (median of 10, deserialize from the on-disk cache)", ms(p50));

    // Instantiation.
    let plugin = runtime.load(builtin::CLOSE).await?;
    let times = runtime.time_instantiation(&plugin, iterations).await?;
    let (p50, p99) = summary(times);
    println!("instantiate  p50 {}  p99 {}  ({iterations} fresh instances from the pre-instantiated component)", ms(p50), ms(p99));

    // Calls through the host.
    let mut cfg = HostConfig::new(data_dir);
    cfg.cache_dir = Some(cache);
    let host = HostService::open(cfg)?;
    host.connect(ConnectRequest {
        name: "bench".into(),
        plugin: builtin::CLOSE.to_vec(),
        endpoint: Some(standin.url()),
        credentials: Credentials::ApiKey(Zeroizing::new(standin.api_key().to_string())),
        scopes: vec!["mcp.read".into()],
        allow_origins: Some(vec![standin.base_url().trim_end_matches('/').to_string()]),
        policy: None,
        options: vec![],
    })
    .await?;
    let mut bytes = 0;
    for _ in 0..5 {
        let out = host.call_tool("bench", "find_opportunities", ARGS).await?;
        bytes = serde_json::to_vec(&out).map(|v| v.len()).unwrap_or(0);
    }
    let mut host_times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let out = host.call_tool("bench", "find_opportunities", ARGS).await?;
        host_times.push(t.elapsed());
        std::hint::black_box(out);
    }

    // The same requests from a native client.
    let url = standin.url();
    let key = standin.api_key().to_string();
    let native_times = tokio::task::spawn_blocking(move || native_calls(&url, &key, iterations))
        .await
        .map_err(|e| HostError::Storage(format!("native benchmark task failed: {e}")))??;

    let (h50, h99) = summary(host_times);
    let (n50, n99) = summary(native_times);
    println!("call-tool    find_opportunities, {bytes} bytes of result, {iterations} calls each, JSON responses");
    println!("  component  p50 {}  p99 {}", ms(h50), ms(h99));
    println!("  native     p50 {}  p99 {}", ms(n50), ms(n99));
    println!(
        "  overhead   p50 +{} ({:.2}x)",
        ms(h50.saturating_sub(n50)),
        h50.as_secs_f64() / n50.as_secs_f64().max(1e-9)
    );
    println!("peak memory  {} (whole process: stand-in, host, both clients)", peak_rss());
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

fn native_calls(url: &str, key: &str, iterations: usize) -> Result<Vec<Duration>, HostError> {
    let http = UreqClient { agent: ureq::AgentBuilder::new().build() };
    let auth = mcp_client::StaticHeaders(vec![
        ("Close-API-Key".into(), key.to_string()),
        ("Close-Scope".into(), "mcp.read".into()),
    ]);
    let store = mcp_client::MemorySessionStore::default();
    let mut client = mcp_client::McpClient::new(
        mcp_client::ClientConfig::new(url, "claribi-bench-native", env!("CARGO_PKG_VERSION")),
        &http,
        &auth,
        &store,
        &mcp_client::NoLogger,
    )
    .map_err(|e| HostError::Usage(format!("native client: {e}")))?;
    let args: serde_json::Map<String, serde_json::Value> = serde_json::from_str(ARGS).unwrap_or_default();
    let mut call = || -> Result<(), HostError> {
        let r = client.call_tool("find_opportunities", args.clone()).map_err(|e| HostError::Usage(format!("native client: {e}")))?;
        // The same JSON handling the connector does: parse the text block into a JSON document.
        for block in r.content.iter() {
            if let Some(text) = block.as_text() {
                let v: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| HostError::Usage(format!("native client: {e}")))?;
                std::hint::black_box(v);
            }
        }
        Ok(())
    };
    for _ in 0..5 {
        call()?;
    }
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        call()?;
        times.push(t.elapsed());
    }
    Ok(times)
}
