//! The one implementation every clariBI data-source connector for an MCP server goes through.
//!
//! A connector is a `wasm32-wasip2` component implementing `claribi:data-source/connector`
//! (`wit/data-source.wit`). Everything that does not depend on the vendor lives here:
//!
//! * [`bindings`]: the WIT bindings, generated once, and the `export_connector!` macro;
//! * [`host`]: the [`Host`] the flow runs against, and the real one over the WIT `host` imports
//!   (secrets, state, the credential lock, logging);
//! * [`convert`]: tools, results and content blocks from `mcp-client` to WIT, and the error mapping
//!   (which `McpError` becomes which WIT `error` case);
//! * [`Connector`]: the flow of every export — `check-connection`, `list-tools`, `call-tool`,
//!   `begin-authorization`/`complete-authorization` (OAuth through `mcp_client::oauth`) and
//!   `disconnect` — with the MCP session kept in the host's state between instances.
//!
//! Credentials never reach a connector: every secret the host gives a connector that is a credential
//! (the API key, tokens, a client secret, the redirect's code) is a placeholder, which the flow uses as
//! if it were the value; the host attaches the value on the wire, only where it belongs. The flow works
//! unchanged with placeholders (refresh single-flight included: a refreshed token has a new one).
//!
//! What a vendor adds is a [`Vendor`]: its description, its client names, the words of its
//! messages ([`Wording`]), and where it departs from a plain MCP server — how an API key is sent,
//! which OAuth scopes to ask for and accept, where else its authorization-server metadata lives,
//! which scopes its credentials hold, how a scope problem is worded, and how the account is named.
//! Every one of those has a default that suits a server known only by its endpoint.
//!
//! The protocol and OAuth themselves are `mcp-client`'s, re-exported as [`mcp_client`].
//!
//! # Writing a connector
//!
//! A crate with `crate-type = ["cdylib", "rlib"]` that depends on this one, a [`Vendor`], and one
//! line exporting it (`cargo build --target wasm32-wasip2` then produces the component). This is
//! `examples/acme.rs`, which `cargo test` builds:
//!
//! ```ignore
#![doc = include_str!("../examples/acme.rs")]
//! ```
//!
//! (`export_connector!(Acme)` works too: the types default to `claribi_connector_sdk::bindings`.)
//!
//! Test the vendor natively (feature `test-util`): a [`Connector`] over
//! `testing::FakeHost` and `mcp_client::testing::ScriptedHttp`, e.g.
//!
//! ```ignore
//! let mut host = FakeHost::new("https://mcp.acme.example/mcp", AuthMethod::ApiKey).with_api_key("k-123");
//! host.connection.api_key_header = "x-acme-key".into(); // the host binds the key to the declared header
//! // A 2025 server: it refuses the `server/discover` probe, so the client falls back to `initialize`.
//! let http = ScriptedHttp::new().then(discover_refused()).then(initialize_ok("2025-11-25", None)).then(accepted());
//! let account = Connector::<Acme>::new(&host, &http).check_connection()?;
//! assert_eq!(http.requests()[0].header("x-acme-key"), Some("k-123"));
//! ```
//!
//! Nothing in a vendor depends on the MCP revision: the client speaks 2026-07-28 and the 2025
//! revisions alike (the connection option `protocol_version` can pin one).
//!
//! `plugin/close` (a vendor with its own headers, scope policy, metadata location and account) and
//! `plugin/generic-mcp` (any MCP server: the defaults) are complete examples.

pub mod bindings;
#[cfg(target_os = "wasi")]
mod component;
mod connector;
pub mod convert;
pub mod host;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod vendor;

pub use bindings::claribi::data_source::types;
pub use bindings::export_connector;
pub use connector::{Connector, Session, SECRET_ACCESS_TOKEN, SECRET_API_KEY, STATE_MCP_SESSION};
pub use host::Host;
pub use mcp_client;
pub use vendor::{CredentialKind, Vendor, Wording};
