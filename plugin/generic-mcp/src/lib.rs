//! clariBI data-source connector for any MCP server that speaks Streamable HTTP.
//!
//! The component implements the `claribi:data-source/connector` interface (see `wit/data-source.wit`)
//! with nothing vendor-specific: the operator names the endpoint, OAuth follows the MCP authorization
//! spec (2025-11-25, with the 2025-03-26 fallbacks) through `mcp_client::oauth` — discovery decides
//! the authorization server and the scopes (the 401 challenge's `scope`, else the resource's
//! `scopes_supported`, else none) — and an API key is sent as `Authorization: Bearer` unless the option
//! `api_key_header` names another header. It is what the MCP conformance suite's client scenarios
//! drive, and the proof that `mcp-client` is reusable beyond Close.
//!
//! Every export runs in a fresh instance: the MCP session is kept with `host.set-state` under
//! [`connector::STATE_MCP_SESSION`], the API key is read with `host.get-secret("api-key")`, and the
//! OAuth tokens, registration and authorization in progress are kept under the keys of
//! `mcp_client::oauth::keys`.

pub mod connector;
pub mod convert;

wit_bindgen::generate!({
    path: "../../wit",
    world: "claribi:data-source/data-source",
    additional_derives: [PartialEq],
    // Reuse the `wasip2` crate's types for the wasi imports, so that `mcp-client`'s `wasi:http`
    // code and these bindings share one set of resource types.
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
});

pub use claribi::data_source::types;

#[cfg(target_os = "wasi")]
mod component {
    use super::claribi::data_source::host;
    use super::connector::{self, Host, McpConnector};
    use super::exports::claribi::data_source::connector::Guest;
    use super::types::{
        Account, AuthorizationRequest, Connection, ConnectorInfo, Error, Tool, ToolResult,
    };
    use mcp_client::oauth::{HeldLock, OAuthHost};
    use mcp_client::wasi_http::WasiHttpClient;
    use mcp_client::{LogLevel, Logger};

    /// The real host, through the generated `host` imports.
    struct WitHost;

    impl OAuthHost for WitHost {
        fn secret(&self, key: &str) -> Option<String> {
            host::get_secret(key)
        }
        fn update_secrets(&self, changes: &[(&str, Option<&str>)]) -> Result<(), String> {
            let changes: Vec<(String, Option<String>)> = changes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect();
            host::update_secrets(&changes)
        }
        fn state(&self, key: &str) -> Option<String> {
            host::get_state(key)
        }
        fn set_state(&self, key: &str, value: Option<&str>) {
            host::set_state(key, value)
        }
        fn shared_state(&self, key: &str) -> Option<String> {
            host::get_shared_state(key)
        }
        fn set_shared_state(&self, key: &str, value: Option<&str>) {
            host::set_shared_state(key, value)
        }
        fn lock_credentials(&self) -> Box<dyn HeldLock + '_> {
            // Dropping the resource releases the lock.
            Box::new(host::lock_credentials())
        }
    }

    impl Logger for WitHost {
        fn log(&self, level: LogLevel, message: &str) {
            let level = match level {
                LogLevel::Debug => host::LogLevel::Debug,
                LogLevel::Info => host::LogLevel::Info,
                LogLevel::Warn => host::LogLevel::Warn,
                LogLevel::Error => host::LogLevel::Error,
            };
            host::log(level, message)
        }
    }

    impl Host for WitHost {
        fn connection(&self) -> Connection {
            host::get_connection()
        }
    }

    fn with_connector<T>(
        f: impl FnOnce(&McpConnector<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let http = WasiHttpClient::default();
        let connector = McpConnector::new(&WitHost, &http);
        f(&connector)
    }

    struct Component;

    impl Guest for Component {
        fn describe() -> ConnectorInfo {
            connector::describe()
        }

        fn begin_authorization(redirect_uri: String) -> Result<AuthorizationRequest, Error> {
            with_connector(|c| c.begin_authorization(&redirect_uri))
        }

        fn complete_authorization(callback_url: String) -> Result<Account, Error> {
            with_connector(|c| c.complete_authorization(&callback_url))
        }

        fn check_connection() -> Result<Account, Error> {
            with_connector(|c| c.check_connection())
        }

        fn list_tools() -> Result<Vec<Tool>, Error> {
            with_connector(|c| c.list_tools())
        }

        fn call_tool(name: String, arguments: String) -> Result<ToolResult, Error> {
            with_connector(|c| c.call_tool(&name, &arguments))
        }

        fn disconnect() -> Result<(), Error> {
            with_connector(|c| c.disconnect())
        }
    }

    crate::export!(Component with_types_in crate);
}
