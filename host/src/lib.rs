//! # claribi-host — load data-source connectors, hold their secrets, enforce their policy
//!
//! clariBI's AI engine reads vendor systems (Close CRM first) through *connectors*: WebAssembly
//! components implementing the `claribi:data-source` WIT world (`wit/data-source.wit`). This crate
//! loads them at run time with wasmtime, runs every call in a fresh sandboxed instance, and is the
//! only thing that touches the network, the disk and the secrets on their behalf.
//!
//! A security reviewer can follow the enforcement path by file name:
//!
//! | concern | module |
//! |---|---|
//! | the one path every operation takes | [`service`] |
//! | receiving the OAuth redirect (loopback listener, headless) | [`authorize`] |
//! | which tools may reach the engine (write-tool blocklist) | [`blocklist`] |
//! | which upstream tools a request body calls (the blocklist on the wire) | [`upstream_calls`] |
//! | which origins, how much memory/time/bytes/requests | [`policy`] |
//! | every outgoing request (grant, credentials, DNS/IP, byte cap) | [`outbound`] |
//! | loopback/private/metadata address ranges | [`addresses`] |
//! | instances, limits, traps, compile cache | [`runtime`] |
//! | what a connector may ask of the host | [`host_api`] |
//! | secrets at rest (AEAD, master key, rotation, credential lock) | [`secrets`] |
//! | the database | [`store`] |
//! | errors as data | [`errors`] |
//! | what the engine sees: MCP server, catalogue, results | [`engine`], [`results`] |
//! | who may call `serve --http` (engine tokens), TLS, the audit trail | [`engine::access`], [`engine::tls`], [`vault::store::AuditEntry`] |
//! | the vendor's rate budget, shared by every process on the store | [`policy::rate_budget`], [`wire::outbound::rate`] |
//! | the web console (Data Sources, Settings, Explore, Dashboard) | [`console`] |
//!
//! # Worked example
//!
//! ```no_run
//! # async fn example() -> Result<(), claribi_host::errors::HostError> {
//! use claribi_host::service::{ConnectRequest, Credentials, HostConfig, HostService, builtin};
//! use zeroize::Zeroizing;
//!
//! let host = HostService::open(HostConfig::new("/tmp/claribi-example"))?;
//! host.connect(ConnectRequest {
//!     name: "close".into(),
//!     plugin: builtin::CLOSE.to_vec(),
//!     endpoint: Some("http://127.0.0.1:8811/mcp".into()),
//!     credentials: Credentials::ApiKey(Zeroizing::new("demo-key".into())),
//!     scopes: vec!["mcp.read".into()],
//!     allow_origins: Some(vec!["http://127.0.0.1:8811".into()]),
//!     policy: None,
//!     options: vec![],
//! }).await?;
//! let listing = host.list_tools("close").await?;          // write tools already filtered out
//! let result = host.call_tool("close", "org_info", "{}").await?;
//! println!("{} tools; org: {:?}", listing.tools.len(), result.structured_content);
//! # Ok(()) }
//! ```

pub mod console;
pub mod engine;
pub mod errors;
pub mod oauth;
pub mod policy;
pub mod sandbox;
pub mod service;
pub mod text;
pub mod vault;
pub mod wire;

pub use zeroize;
