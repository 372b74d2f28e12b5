//! A minimal connector: Acme CRM's hosted MCP server, with OAuth (the MCP authorization spec's
//! discovery and scopes) and API keys sent in `X-Acme-Key` (declared, so the host binds the key to it).

use claribi_connector_sdk::types::{ApiKeyHeaders, AuthMethod, ConnectorInfo};
use claribi_connector_sdk::{Vendor, Wording};

/// The Acme CRM connector.
pub struct Acme;

impl Vendor for Acme {
    fn info() -> ConnectorInfo {
        ConnectorInfo {
            id: "acme".into(),
            display_name: "Acme CRM".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reads accounts and deals from Acme CRM through Acme's hosted MCP server."
                .into(),
            default_endpoint: "https://mcp.acme.example/mcp".into(),
            outbound_origins: vec![
                "https://mcp.acme.example".into(),
                "https://auth.acme.example".into(),
            ],
            scopes: vec!["read".into()],
            auth_methods: vec![AuthMethod::Oauth, AuthMethod::ApiKey],
            api_key_headers: Some(ApiKeyHeaders { key: "x-acme-key".into(), scope: None }),
        }
    }

    const CLIENT_NAME: &'static str = "claribi-acme";
    const CLIENT_TITLE: &'static str = "clariBI Acme CRM connector";

    const WORDING: Wording = Wording {
        server: "Acme",
        the_server: "Acme",
        the_server_short: "Acme",
        vendor: "Acme ",
        authorization_server: "Acme's authorization server",
        authorization_request: "to Acme's authorization server",
        api_key: "the API key",
        tool_scope: "",
    };
}

#[cfg(target_os = "wasi")]
claribi_connector_sdk::export_connector!(Acme with_types_in claribi_connector_sdk::bindings);
