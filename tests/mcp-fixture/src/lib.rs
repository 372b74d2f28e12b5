//! A stand-in for the MCP conformance suite's reference server, used to test our server through a real
//! upstream.
//!
//! The official suite (`@modelcontextprotocol/conformance`) tests a *server* by calling test tools
//! with fixed names and checking what comes back. `claribi-host serve` has no tools of its own: it
//! serves the tools of its connections. So `host/tests/engine_conformance.rs` connects one connection
//! (`builtin:mcp`, the generic MCP connector) to this fixture and serves it with `--bare-names`; the
//! suite's calls then travel suite → `serve` → host → connector component → this fixture and back.
//!
//! The fixture offers exactly the tools of the server scenarios that apply to a read-only, tools-only
//! server, each answering as the suite's scenario description asks:
//!
//! | tool | scenario | answer |
//! |------|----------|--------|
//! | `test_simple_text` | `tools-call-simple-text` | one text block |
//! | `test_image_content` | `tools-call-image` | a 1×1 red PNG |
//! | `test_audio_content` | `tools-call-audio` | a tiny `audio/wav` |
//! | `test_embedded_resource` | `tools-call-embedded-resource` | a `text/plain` resource |
//! | `test_multiple_content_types` | `tools-call-mixed-content` | text, image and a JSON resource |
//! | `test_error_handling` | `tools-call-error` | a result with `isError: true` |
//! | `json_schema_2020_12_tool` | `json-schema-2020-12` | (listing only) an input schema with `$schema` 2020-12, `$defs`, `$ref`, `additionalProperties: false` |
//!
//! Not offered, because `serve` cannot pass them on (see the README): tools that log or report progress
//! while they run, ask the client for sampling or elicitation, or close their SSE stream mid-call.
//!
//! Every tool is annotated `readOnlyHint: true` and takes no arguments. Authentication is ignored
//! (the connector sends `Authorization: Bearer <key>`; any key will do). Streamable HTTP at `/mcp` on
//! 127.0.0.1, rmcp's defaults (sessions, SSE answers, loopback `Host` check).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let fixture = mcp_fixture::Fixture::start().await?;
//! println!("{}", fixture.url()); // http://127.0.0.1:PORT/mcp
//! fixture.shutdown().await;
//! # Ok(())
//! # }
//! ```

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData, Implementation, ListToolsResult,
    PaginatedRequestParams, ResourceContents, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The server's name in `initialize`.
pub const SERVER_NAME: &str = "mcp-fixture";

/// A 1×1 red PNG.
pub const RED_PIXEL_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// A WAV file: 8 kHz, mono, 8-bit PCM, 8 samples of silence.
pub const SILENT_WAV: &str = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";
/// The text of `test_simple_text`.
pub const SIMPLE_TEXT: &str = "This is a simple text response for testing.";
/// The text of `test_error_handling`'s error result.
pub const ERROR_TEXT: &str = "This tool intentionally returns an error for testing";
/// The `$schema` of `json_schema_2020_12_tool`'s input schema.
pub const JSON_SCHEMA_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// The names of the tools, in listing order.
pub const TOOL_NAMES: [&str; 7] = [
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_error_handling",
    "json_schema_2020_12_tool",
];

fn object(v: Value) -> Arc<Map<String, Value>> {
    match v {
        Value::Object(o) => Arc::new(o),
        _ => unreachable!("schemas are object literals"),
    }
}

fn no_arguments() -> Arc<Map<String, Value>> {
    object(json!({"type": "object", "properties": {}}))
}

/// The tools, as listed.
pub fn tools() -> Vec<Tool> {
    let described = [
        ("test_simple_text", "Returns one text block.", no_arguments()),
        ("test_image_content", "Returns a 1x1 red PNG image.", no_arguments()),
        ("test_audio_content", "Returns a short silent WAV clip.", no_arguments()),
        ("test_embedded_resource", "Returns an embedded text/plain resource.", no_arguments()),
        ("test_multiple_content_types", "Returns text, an image and an embedded JSON resource.", no_arguments()),
        ("test_error_handling", "Always fails: returns a result with isError true.", no_arguments()),
        (
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            object(json!({
                "$schema": JSON_SCHEMA_2020_12,
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
                    }
                },
                "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
                "additionalProperties": false
            })),
        ),
    ];
    described
        .into_iter()
        .map(|(name, description, schema)| {
            let mut a = ToolAnnotations::new();
            a.read_only_hint = Some(true);
            a.destructive_hint = Some(false);
            Tool::new(name, description, schema).with_annotations(a)
        })
        .collect()
}

/// The result of calling `name`, or `None` for a tool the fixture does not have.
pub fn call(name: &str, arguments: &Map<String, Value>) -> Option<CallToolResult> {
    Some(match name {
        "test_simple_text" => CallToolResult::success(vec![ContentBlock::text(SIMPLE_TEXT)]),
        "test_image_content" => CallToolResult::success(vec![ContentBlock::image(RED_PIXEL_PNG, "image/png")]),
        "test_audio_content" => CallToolResult::success(vec![ContentBlock::audio(SILENT_WAV, "audio/wav")]),
        "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::resource(
            ResourceContents::text("This is an embedded resource content.", "test://embedded-resource")
                .with_mime_type("text/plain"),
        )]),
        "test_multiple_content_types" => CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(RED_PIXEL_PNG, "image/png"),
            ContentBlock::resource(
                ResourceContents::text(r#"{"test":"data","value":123}"#, "test://mixed-content-resource")
                    .with_mime_type("application/json"),
            ),
        ]),
        "test_error_handling" => CallToolResult::error(vec![ContentBlock::text(ERROR_TEXT)]),
        "json_schema_2020_12_tool" => CallToolResult::success(vec![ContentBlock::text(format!(
            "Received: {}",
            Value::Object(arguments.clone())
        ))]),
        _ => return None,
    })
}

/// The rmcp server handler.
#[derive(Clone, Default)]
pub struct FixtureServer;

impl ServerHandler for FixtureServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")).with_title("MCP conformance fixture"))
            .with_instructions("The MCP conformance suite's test tools, for testing an MCP server that proxies them.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.unwrap_or_default();
        call(&request.name, &arguments)
            .map(CallToolResponse::Complete)
            .ok_or_else(|| ErrorData::invalid_params(format!("Unknown tool: {}", request.name), None))
    }
}

/// A running fixture. Dropping it stops the server; [`Fixture::shutdown`] also waits for that.
pub struct Fixture {
    addr: SocketAddr,
    ct: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Fixture {
    /// Serve on 127.0.0.1, on a free port.
    pub async fn start() -> std::io::Result<Fixture> {
        Fixture::start_on(0).await
    }

    /// Serve on 127.0.0.1:`port` (0: any free port).
    pub async fn start_on(port: u16) -> std::io::Result<Fixture> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let ct = CancellationToken::new();
        let config = StreamableHttpServerConfig::default().with_cancellation_token(ct.clone());
        let service =
            StreamableHttpService::new(|| Ok(FixtureServer), Arc::new(LocalSessionManager::default()), config);
        let router = axum::Router::new().nest_service("/mcp", service);
        let stop = ct.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        });
        Ok(Fixture { addr, ct, task: Some(task) })
    }

    /// The MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// The origin, `http://127.0.0.1:PORT` (what a connection's policy must allow).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving and wait until the server has stopped.
    pub async fn shutdown(mut self) {
        self.ct.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.ct.cancel();
    }
}
