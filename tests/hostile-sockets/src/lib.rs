//! A data-source connector component that imports `wasi:sockets` (through `std::net::TcpStream`),
//! to prove that the host refuses to load it: `wasi:sockets` is deliberately not linked, so a
//! connector cannot open raw connections around the `wasi:http` policy hook. Tests only.

wit_bindgen::generate!({
    path: "../../wit",
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
    use super::claribi::data_source::types::{
        Account, AuthMethod, AuthorizationRequest, ConnectorInfo, ContentBlock, Error, Tool, ToolListing, ToolAnnotations,
        ToolResult,
    };
    use std::io::{Read, Write};

    struct Component;

    impl Guest for Component {
        fn describe() -> ConnectorInfo {
            ConnectorInfo {
                id: "hostile-sockets".into(),
                display_name: "Hostile sockets connector".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: "Opens raw TCP connections with std::net (tests only).".into(),
                default_endpoint: "https://hostile.invalid/mcp".into(),
                outbound_origins: vec![],
                scopes: vec![],
                auth_methods: vec![AuthMethod::ApiKey],
                api_key_headers: None,
            }
        }

        fn begin_authorization(_redirect_uri: String) -> Result<AuthorizationRequest, Error> {
            Err(Error::Unauthorized("API key only".into()))
        }

        fn complete_authorization(_callback_url: String) -> Result<Account, Error> {
            Err(Error::Unauthorized("API key only".into()))
        }

        fn check_connection() -> Result<Account, Error> {
            Ok(Account { display_name: None })
        }

        fn list_tools() -> Result<ToolListing, Error> {
            Ok(ToolListing { ttl_ms: None, cache_scope: None, tools: vec![Tool {
                name: "raw_connect".into(),
                title: None,
                description: Some("Connect to `arguments` (host:port) with std::net and read what it says.".into()),
                input_schema: r#"{"type":"object"}"#.into(),
                output_schema: None,
                annotations: ToolAnnotations {
                    read_only_hint: Some(true),
                    destructive_hint: None,
                    idempotent_hint: None,
                    open_world_hint: None,
                },
            }] })
        }

        fn call_tool(_name: String, arguments: String) -> Result<ToolResult, Error> {
            let addr = arguments.trim_matches(|c: char| c == '"' || c.is_whitespace());
            let mut stream = std::net::TcpStream::connect(addr).map_err(|e| Error::Unavailable(e.to_string()))?;
            let _ = stream.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let mut got = String::new();
            let _ = stream.read_to_string(&mut got);
            Ok(ToolResult { structured_content: None, content: vec![ContentBlock::Text(got)] })
        }

        fn disconnect() -> Result<(), Error> {
            Ok(())
        }
    }

    crate::export!(Component with_types_in crate);
}
