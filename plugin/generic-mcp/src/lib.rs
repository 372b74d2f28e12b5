//! clariBI data-source connector for any MCP server that speaks Streamable HTTP.
//!
//! The component implements the `claribi:data-source/connector` interface (see `wit/data-source.wit`)
//! through `claribi-connector-sdk` with nothing vendor-specific: the operator names the endpoint,
//! OAuth follows the MCP authorization spec (2025-11-25, with the 2025-03-26 fallbacks) through
//! `mcp_client::oauth` — discovery decides the authorization server and the scopes (the 401
//! challenge's `scope`, else the resource's `scopes_supported`, else none) — and the account is the
//! server's own name. It is what the MCP conformance suite's client scenarios drive, and the proof
//! that `mcp-client` and the SDK are reusable beyond Close.
//!
//! So the [`McpServer`] vendor is the SDK's defaults ([`Wording::MCP_SERVER`] for its messages):
//! the secret `api-key` is sent as `Authorization: Bearer <key>`, or as `<header>: <key>` when the
//! operator binds the key to another header (the host reads the option [`OPTION_API_KEY_HEADER`]
//! and passes the header as `connection.api-key-header`); without a key, requests go out without
//! credentials (servers that need none).

use claribi_connector_sdk::types::{AuthMethod, ConnectorInfo};
use claribi_connector_sdk::{Vendor, Wording};

/// Connector id used in policy files and logs.
pub const CONNECTOR_ID: &str = "mcp";
/// Option naming the header the API key is bound to (default `Authorization: Bearer`); the host
/// reads it when the connection is made.
pub const OPTION_API_KEY_HEADER: &str = "api_key_header";
/// `clientInfo.name` and the `client_name` of a dynamic registration.
pub const CLIENT_NAME: &str = "claribi-mcp";

/// The connector for any MCP server.
pub struct McpServer;

impl Vendor for McpServer {
    fn info() -> ConnectorInfo {
        ConnectorInfo {
            id: CONNECTOR_ID.to_owned(),
            display_name: "MCP server".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description:
                "Reads what any MCP server (Streamable HTTP) offers through its tools; the operator \
                          names the server, and its authorization server is discovered."
                    .to_owned(),
            default_endpoint: String::new(),
            outbound_origins: Vec::new(),
            scopes: Vec::new(),
            auth_methods: vec![AuthMethod::Oauth, AuthMethod::ApiKey],
            api_key_headers: None,
        }
    }

    const CLIENT_NAME: &'static str = CLIENT_NAME;
    const CLIENT_TITLE: &'static str = "clariBI MCP connector";

    const WORDING: Wording = Wording::MCP_SERVER;

    const API_KEY_OPTIONAL: bool = true;
}

#[cfg(target_os = "wasi")]
claribi_connector_sdk::export_connector!(McpServer with_types_in claribi_connector_sdk::bindings);

#[cfg(test)]
mod tests;
