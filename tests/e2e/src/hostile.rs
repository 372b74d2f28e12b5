//! Helpers for the hostile-connector tests (`tests/hostile_plugin.rs`): the hostile components, a
//! [`Fixture`] whose host resolves chosen names to chosen addresses, local HTTP servers that count
//! every connection made to them, and the check that the host still serves a normal Close call.

use crate::Fixture;
use claribi_host::errors::HostError;
use claribi_host::wire::outbound::FixedResolver;
use claribi_host::policy::{Grant, Limits, Policy};
use claribi_host::service::{ConnectOutcome, ConnectRequest, Credentials, HostConfig, HostService};
use claribi_host::zeroize::Zeroizing;
use close_standin::{StandIn, StandInConfig};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Path of the hostile connector component (`tests/hostile-plugin`, built by `build.rs`).
pub const HOSTILE_PLUGIN_WASM: &str = env!("HOSTILE_PLUGIN_WASM");
/// Path of the component that imports `wasi:sockets` (`tests/hostile-sockets`).
pub const HOSTILE_SOCKETS_WASM: &str = env!("HOSTILE_SOCKETS_WASM");

/// The API key every hostile connection is created with (long enough for the host to scan for it).
pub const HOSTILE_KEY: &str = "hk_live_9f3a61c0d2b84e7f";

/// The hostile connector's bytes.
pub fn hostile_component() -> Vec<u8> {
    std::fs::read(HOSTILE_PLUGIN_WASM).unwrap_or_else(|e| panic!("cannot read {HOSTILE_PLUGIN_WASM}: {e}"))
}

/// The sockets-importing component's bytes.
pub fn sockets_component() -> Vec<u8> {
    std::fs::read(HOSTILE_SOCKETS_WASM).unwrap_or_else(|e| panic!("cannot read {HOSTILE_SOCKETS_WASM}: {e}"))
}

/// The tight limits the hostile tests run under: 32 MiB, 2 s, 64 KiB of responses, 5 requests, 8 MiB
/// of host memory.
pub fn tight_limits() -> Limits {
    Limits {
        memory_bytes: 32 * 1024 * 1024,
        call_timeout: Duration::from_secs(2),
        max_response_bytes: 64 * 1024,
        max_requests_per_call: 5,
        host_memory_bytes: 8 * 1024 * 1024,
    }
}

/// A Close stand-in and a host whose resolver answers `names` (name → address) itself, falling
/// back to the system for anything else.
pub async fn fixture_resolving(names: &[(&str, IpAddr)]) -> Fixture {
    fixture_with(names, HostConfig::new(std::path::Path::new("")).max_instances).await
}

/// [`fixture_resolving`] with a host that runs at most `max_instances` instances at once.
pub async fn fixture_with(names: &[(&str, IpAddr)], max_instances: usize) -> Fixture {
    let standin = StandIn::start(StandInConfig::default()).await.expect("the stand-in starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for (name, ip) in names {
        map.entry(name.to_ascii_lowercase()).or_default().push(*ip);
    }
    let mut cfg = HostConfig::new(dir.path());
    cfg.cache_dir = Some(crate::shared_cache());
    cfg.resolver = Arc::new(FixedResolver(map));
    cfg.max_instances = max_instances;
    let host = HostService::open(cfg).expect("the host opens");
    Fixture { standin, dir, host }
}

/// A connect request for the hostile component: endpoint `endpoint`, the grant `grant` (which must
/// include the endpoint's origin) and `limits`, authenticated with [`HOSTILE_KEY`].
pub fn hostile_request(name: &str, endpoint: &str, grant: &[String], limits: Limits) -> ConnectRequest {
    ConnectRequest {
        name: name.into(),
        plugin: hostile_component(),
        endpoint: Some(endpoint.into()),
        credentials: Credentials::ApiKey(Zeroizing::new(HOSTILE_KEY.into())),
        scopes: vec![],
        allow_origins: None,
        policy: Some(Policy { connection_urls: true, grant: Grant::parse_list(grant).expect("a valid grant"), limits, tools: Default::default() }),
        options: vec![],
    }
}

/// Connect the hostile component as `name`, with `home` as its endpoint; the grant is `home`'s origin
/// plus `extra`.
pub async fn connect_hostile(
    host: &HostService,
    name: &str,
    home: &TestServer,
    extra: &[String],
    limits: Limits,
) -> Result<ConnectOutcome, HostError> {
    let mut grant = vec![home.origin()];
    grant.extend(extra.iter().cloned());
    host.connect(hostile_request(name, &home.url("/mcp"), &grant, limits)).await
}

/// Call a tool on the Close connection `close` (connected with [`Fixture::connect`]) and check that
/// it answers with the stand-in's organization: the host still serves normal connections.
pub async fn assert_close_still_serves(f: &Fixture) {
    let org = f
        .call_json("close", "org_info", serde_json::json!({}))
        .await
        .unwrap_or_else(|e| panic!("after the escape, a normal Close call failed: {e}"));
    assert_eq!(org["organization"]["id"], f.standin.dataset().organization.id, "the Close call answered: {org}");
}

/// What a [`TestServer`] does with each request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// `200 OK` with the body `ok`.
    Ok,
    /// `/hop/N` answers `302` to `/hop/N+1` while `N < hops`, then `302` to `then`.
    RedirectChain { hops: usize, then: String },
    /// `200 OK` with a chunked body that never ends.
    EndlessBody,
    /// Accept the connection, read the request, never answer.
    Silent,
}

/// What a [`TestServer`] saw.
#[derive(Default)]
pub struct Seen {
    connections: AtomicUsize,
    requests: Mutex<Vec<String>>,
}

/// A local HTTP/1.1 server that counts every connection and records every request (head and body,
/// as text). Stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Listen on `ip` (a loopback address) on a free port.
    pub async fn start(ip: &str, behaviour: Behaviour) -> TestServer {
        let listener = TcpListener::bind((ip, 0)).await.unwrap_or_else(|e| panic!("cannot listen on {ip}: {e}"));
        let addr = listener.local_addr().expect("local address");
        let seen = Arc::new(Seen::default());
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection task.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                seen2.connections.fetch_add(1, Ordering::SeqCst);
                connections.spawn(serve(stream, behaviour.clone(), seen2.clone()));
                while connections.try_join_next().is_some() {}
            }
        });
        TestServer { addr, seen, task }
    }

    /// `http://ip:port` (the form a grant takes).
    pub fn origin(&self) -> String {
        match self.addr {
            SocketAddr::V4(a) => format!("http://{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("http://[{}]:{}", a.ip(), a.port()),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `origin` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::SeqCst)
    }

    /// Requests received so far (head and body, as text).
    pub fn requests(&self) -> Vec<String> {
        self.seen.requests.lock().unwrap().clone()
    }
}

async fn serve(mut stream: TcpStream, behaviour: Behaviour, seen: Arc<Seen>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // The head.
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                if !buf.is_empty() {
                    seen.requests.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
                }
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
        })
        .unwrap_or(0)
        .min(1024 * 1024);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    seen.requests.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    match behaviour {
        Behaviour::Ok => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        }
        Behaviour::RedirectChain { hops, then } => {
            let n: usize = path.strip_prefix("/hop/").and_then(|n| n.parse().ok()).unwrap_or(0);
            let location = if n < hops { format!("/hop/{}", n + 1) } else { then };
            let answer = format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
        Behaviour::EndlessBody => {
            if stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            let data = vec![b'x'; 16 * 1024];
            let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
            frame.extend_from_slice(&data);
            frame.extend_from_slice(b"\r\n");
            // Bounded all the same: 1 GiB, far past any cap the tests set.
            for _ in 0..(1 << 16) {
                if stream.write_all(&frame).await.is_err() {
                    return;
                }
            }
        }
        Behaviour::Silent => {
            // Hold the connection open, silent, until the peer goes away (or the server stops).
            let _ = stream.read(&mut chunk).await;
        }
    }
    let _ = stream.shutdown().await;
}
