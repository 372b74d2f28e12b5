//! What an AI engine talks to: `claribi-host serve` over Streamable HTTP, in-process.
//!
//! [`Served`] starts one Close stand-in per connection (each with its own dataset, so each is a
//! different organization), a throw-away data directory, a [`HostService`] with the real Close
//! connector component connected to every stand-in, and the host's MCP server
//! ([`EngineServer`] + [`serve_http`]) on a free loopback port. Tests then drive it at [`Served::url`]
//! with an MCP client, exactly as an engine would, and compare its answers with what the stand-ins'
//! `reference` module computes from their datasets.

use crate::shared_cache;
use claribi_host::engine::{serve_http, EngineOptions, EngineServer};
use claribi_host::service::{builtin, ConnectOutcome, ConnectRequest, Credentials, HostConfig, HostService};
use claribi_host::zeroize::Zeroizing;
use close_standin::{DatasetConfig, ResponseMode, StandIn, StandInConfig, Switches};
use std::sync::Arc;

/// One Close connection to serve: its name, its stand-in and the scope its API key asks for.
pub struct Source {
    /// Connection name (the `<connection>` of `<connection>__<tool>`).
    pub name: String,
    /// The stand-in playing this organization.
    pub config: StandInConfig,
    /// `mcp.read`, `mcp.write_safe` or `mcp.write_destructive`.
    pub scope: String,
}

impl Source {
    /// A read-only connection to a stand-in with this dataset (JSON responses, everything else
    /// default).
    pub fn new(name: &str, dataset: DatasetConfig) -> Source {
        Source {
            name: name.into(),
            config: StandInConfig {
                dataset,
                switches: Switches { response_mode: ResponseMode::Json, ..Switches::default() },
                ..StandInConfig::default()
            },
            scope: "mcp.read".into(),
        }
    }

    /// The same connection with its API key asking for another scope.
    pub fn with_scope(mut self, scope: &str) -> Source {
        self.scope = scope.into();
        self
    }
}

/// A dataset as of `anchor` (`YYYY-MM-DD`), generated from `seed`.
pub fn dataset(seed: u64, anchor: &str) -> DatasetConfig {
    DatasetConfig { seed, anchor: anchor.parse().expect("an anchor date like 2026-11-18") }
}

/// Stand-ins, a host connected to each, and the host's MCP server on loopback.
pub struct Served {
    /// `(connection name, stand-in)`, in the order given.
    pub standins: Vec<(String, StandIn)>,
    /// What each `connect` established, in the same order.
    pub outcomes: Vec<ConnectOutcome>,
    /// The host's data directory (deleted on drop).
    pub dir: tempfile::TempDir,
    /// The host service behind the server.
    pub host: Arc<HostService>,
    /// `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Served {
    /// Start every source's stand-in, connect each with the built-in Close connector, and serve.
    /// Must run inside a multi-threaded Tokio runtime that outlives the returned value.
    pub async fn start(sources: Vec<Source>, options: EngineOptions) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = HostConfig::new(dir.path());
        cfg.cache_dir = Some(shared_cache());
        let host = Arc::new(HostService::open(cfg).expect("the host opens"));
        let mut standins = Vec::new();
        let mut outcomes = Vec::new();
        for s in sources {
            let standin = StandIn::start(s.config).await.expect("the stand-in starts");
            let outcome = host
                .connect(ConnectRequest {
                    name: s.name.clone(),
                    plugin: builtin::CLOSE.to_vec(),
                    endpoint: Some(standin.url()),
                    credentials: Credentials::ApiKey(Zeroizing::new(standin.api_key().to_string())),
                    scopes: vec![s.scope.clone()],
                    allow_origins: Some(vec![standin.base_url().trim_end_matches('/').to_string()]),
                    policy: None,
                    options: vec![],
                })
                .await
                .unwrap_or_else(|e| panic!("connecting `{}` fails: {e}", s.name));
            outcomes.push(outcome);
            standins.push((s.name, standin));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}/mcp", listener.local_addr().expect("bound"));
        let server = EngineServer::new(host.clone(), options);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = serve_http(server, listener, shutdown).await {
                panic!("the MCP server failed: {e}");
            }
        });
        Served { standins, outcomes, dir, host, url, stop: Some(stop), task: Some(task) }
    }

    /// The stand-in behind connection `name`.
    pub fn standin(&self, name: &str) -> &StandIn {
        &self.standins.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no connection `{name}`")).1
    }

    /// Stop the server and the stand-ins.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        for (_, s) in std::mem::take(&mut self.standins) {
            s.shutdown().await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
