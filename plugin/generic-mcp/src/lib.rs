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
//! So the [`McpServer`] vendor is the SDK's defaults ([`Wording::MCP_SERVER`] for its messages),
//! except for API keys: the secret `api-key` is sent as `Authorization: Bearer <key>`, or as
//! `<header>: <key>` when the option [`OPTION_API_KEY_HEADER`] names another header; without a key,
//! requests go out without credentials (servers that need none).

use claribi_connector_sdk::mcp_client::error::one_line;
use claribi_connector_sdk::types::{AuthMethod, Connection, ConnectorInfo, Error};
use claribi_connector_sdk::{Vendor, Wording};

/// Connector id used in policy files and logs.
pub const CONNECTOR_ID: &str = "mcp";
/// Option naming the header the API key is sent in (default `Authorization: Bearer`).
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
        }
    }

    const CLIENT_NAME: &'static str = CLIENT_NAME;
    const CLIENT_TITLE: &'static str = "clariBI MCP connector";

    const WORDING: Wording = Wording::MCP_SERVER;

    const API_KEY_OPTIONAL: bool = true;

    /// `Authorization: Bearer <key>`, or `<header>: <key>` for the option `api_key_header`.
    fn api_key_headers(key: &str, connection: &Connection) -> Result<Vec<(String, String)>, Error> {
        Ok(match api_key_header(&connection.options)? {
            None => vec![("Authorization".to_owned(), format!("Bearer {key}"))],
            Some(header) => vec![(header, key.to_owned())],
        })
    }
}

/// The header named by the option `api_key_header`: `None` for the default (`Authorization:
/// Bearer`), an error for a name that is not an HTTP token or that the client sets itself.
pub fn api_key_header(options: &[(String, String)]) -> Result<Option<String>, Error> {
    let Some(name) = options
        .iter()
        .find(|(k, _)| k.trim() == OPTION_API_KEY_HEADER)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if name.eq_ignore_ascii_case("authorization") {
        return Ok(None);
    }
    let token = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let reserved = [
        "accept",
        "content-type",
        "content-length",
        "host",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    ]
    .iter()
    .any(|r| name.eq_ignore_ascii_case(r));
    if !token || reserved || name.len() > 100 {
        return Err(Error::Protocol(format!(
            "The option {OPTION_API_KEY_HEADER} (`{}`) is not a header the API key can be sent in; reconnect with another.",
            one_line(name, 60)
        )));
    }
    Ok(Some(name.to_owned()))
}

#[cfg(target_os = "wasi")]
claribi_connector_sdk::export_connector!(McpServer with_types_in claribi_connector_sdk::bindings);

#[cfg(test)]
mod tests;
