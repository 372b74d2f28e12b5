//! Shared fixture for the end-to-end tests: a Close stand-in, a throw-away data directory, and a
//! [`HostService`] loaded with the real Close connector component (`builtin:close`).
//!
//! Tests compare what comes through the component with what the stand-in's dataset holds or its
//! `reference` module computes, never with numbers written into the test.

use claribi_host::errors::HostError;
use claribi_host::service::{builtin, ConnectOutcome, ConnectRequest, Credentials, HostConfig, HostService, ToolOutput};
use claribi_host::zeroize::Zeroizing;
use close_standin::{ResponseMode, StandIn, StandInConfig, Switches};
use serde_json::Value;
use std::path::PathBuf;

pub use claribi_host;
pub use close_standin;

pub mod engine;
pub mod hostile;

/// Compiled components are cached here across tests (keyed by digest, so always correct).
pub fn shared_cache() -> PathBuf {
    std::env::temp_dir().join(format!("claribi-e2e-cache-{}", std::process::id()))
}

/// One stand-in, one data directory, one host.
pub struct Fixture {
    /// The Close stand-in.
    pub standin: StandIn,
    /// The host's data directory (deleted on drop).
    pub dir: tempfile::TempDir,
    /// The host service.
    pub host: HostService,
}

impl Fixture {
    /// A stand-in with the given response mode and default everything else.
    pub async fn start(mode: ResponseMode) -> Fixture {
        Fixture::with_config(StandInConfig {
            switches: Switches { response_mode: mode, ..Switches::default() },
            ..StandInConfig::default()
        })
        .await
    }

    /// A stand-in with a full configuration.
    pub async fn with_config(config: StandInConfig) -> Fixture {
        let standin = StandIn::start(config).await.expect("the stand-in starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let host = Self::open_host(dir.path());
        Fixture { standin, dir, host }
    }

    /// Open (again) a host on a data directory.
    pub fn open_host(dir: &std::path::Path) -> HostService {
        let mut cfg = HostConfig::new(dir);
        cfg.cache_dir = Some(shared_cache());
        HostService::open(cfg).expect("the host opens")
    }

    /// `http://127.0.0.1:PORT`, the stand-in's origin.
    pub fn origin(&self) -> String {
        self.standin.base_url().trim_end_matches('/').to_string()
    }

    /// A connect request for the stand-in with the given key and scope, granting its origin.
    pub fn request(&self, name: &str, key: &str, scope: &str) -> ConnectRequest {
        ConnectRequest {
            name: name.into(),
            plugin: builtin::CLOSE.to_vec(),
            endpoint: Some(self.standin.url()),
            credentials: Credentials::ApiKey(Zeroizing::new(key.to_string())),
            scopes: vec![scope.into()],
            allow_origins: Some(vec![self.origin()]),
            policy: None,
            options: vec![],
        }
    }

    /// Connect `name` with the stand-in's key and `mcp.read`.
    pub async fn connect(&self, name: &str) -> Result<ConnectOutcome, HostError> {
        self.host.connect(self.request(name, self.standin.api_key(), "mcp.read")).await
    }

    /// Call a tool and return its structured JSON (the text block's JSON when there is no
    /// `structuredContent`).
    pub async fn call_json(&self, connection: &str, tool: &str, args: Value) -> Result<Value, HostError> {
        let out = self.host.call_tool(connection, tool, &args.to_string()).await?;
        Ok(json_of(&out))
    }
}

/// The JSON a tool result carries.
pub fn json_of(out: &ToolOutput) -> Value {
    if let Some(v) = &out.structured_content {
        return v.clone();
    }
    for c in &out.content {
        if let claribi_host::service::Content::Text { text } = c {
            if let Ok(v) = serde_json::from_str(text) {
                return v;
            }
        }
    }
    panic!("the result carries no JSON: {out:?}")
}

/// The catalog fixture (Close's 116 tools with their scopes), read independently of the stand-in.
pub fn catalog() -> Vec<(String, String)> {
    let text = include_str!("../../close-standin/data/close-mcp-tools.json");
    let v: Value = serde_json::from_str(text).expect("catalog JSON");
    v.as_array()
        .expect("catalog is an array")
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["scope"].as_str().unwrap().to_string()))
        .collect()
}

/// Tool names of the catalog whose scope is a write scope.
pub fn catalog_write_tools() -> Vec<String> {
    catalog().into_iter().filter(|(_, s)| s.starts_with("mcp.write")).map(|(n, _)| n).collect()
}

/// Tool names of the catalog that are read tools (`mcp.read`, or scope unknown).
pub fn catalog_read_tools() -> Vec<String> {
    catalog().into_iter().filter(|(_, s)| !s.starts_with("mcp.write")).map(|(n, _)| n).collect()
}
