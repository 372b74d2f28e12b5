//! A connector built for `claribi:data-source@0.1.0`, the contract a host before 0.2.0 ran: it was
//! handed the real API key by `get-secret`. Its WIT (`wit/data-source.wit`) is that version, kept
//! verbatim. A 0.2.0 host must refuse to load it and tell the operator how to move a connection pinned
//! to it (`claribi-host upgrade`). Tests only.

wit_bindgen::generate!({
    path: "wit",
    world: "claribi:data-source/data-source",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
});

#[cfg(target_os = "wasi")]
mod component {
    use super::exports::claribi::data_source::connector::Guest;
    use super::claribi::data_source::types::{Account, AuthMethod, AuthorizationRequest, ConnectorInfo, Error, Tool, ToolResult};

    struct Component;

    impl Guest for Component {
        fn describe() -> ConnectorInfo {
            ConnectorInfo {
                id: "close".into(),
                display_name: "Close CRM (built for claribi:data-source 0.1.0)".into(),
                version: "0.0.1".into(),
                description: "A connector of the old contract (tests only).".into(),
                default_endpoint: "https://mcp.close.com/mcp".into(),
                outbound_origins: vec![],
                scopes: vec!["mcp.read".into()],
                auth_methods: vec![AuthMethod::ApiKey],
            }
        }

        fn begin_authorization(_redirect_uri: String) -> Result<AuthorizationRequest, Error> {
            Err(Error::Unauthorized("API key only".into()))
        }

        fn complete_authorization(_callback_url: String) -> Result<Account, Error> {
            Err(Error::Unauthorized("API key only".into()))
        }

        fn check_connection() -> Result<Account, Error> {
            Ok(Account { granted_scopes: vec![], display_name: None, credential_origins: vec![] })
        }

        fn list_tools() -> Result<Vec<Tool>, Error> {
            Ok(vec![])
        }

        fn call_tool(name: String, _arguments: String) -> Result<ToolResult, Error> {
            Err(Error::UnknownTool(name))
        }

        fn disconnect() -> Result<(), Error> {
            Ok(())
        }
    }

    super::export!(Component with_types_in super);
}
