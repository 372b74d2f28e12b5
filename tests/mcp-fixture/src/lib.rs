//! A stand-in for the MCP conformance suite's reference server, used to test our server through a real
//! upstream.
//!
//! The official suite (`@modelcontextprotocol/conformance`) tests a *server* by calling test tools
//! with fixed names and checking what comes back. `claribi-host serve` has no tools of its own: it
//! serves the tools of its connections. So `host/tests/engine_conformance.rs` connects one connection
//! (`builtin:mcp`, the generic MCP connector) to this fixture and serves it with `--bare-names`; the
//! suite's calls then travel suite → `serve` → host → connector component → this fixture and back.
//!
//! The fixture offers the tools of the server scenarios that apply to a read-only, tools-only
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
//! | `json_schema_2020_12_tool` | `json-schema-2020-12` | (listing) the suite's complete 2020-12 schema: `$schema`, `$defs` with `$anchor`, `$ref`, `allOf`/`anyOf`, `if`/`then`/`else`, `additionalProperties: false` |
//! | `test_tool_with_progress` | `tools-call-with-progress` | progress 0, 50 and 100 of 100 when the call carries a progress token, then one text block |
//! | `test_missing_capability` | `server-stateless` | error -32021 (`requiredCapabilities: {"sampling": {}}`) unless the client declared sampling |
//! | `test_streaming_elicitation` | `server-stateless` | one text block (the suite checks that no request travels on the response stream) |
//! | `test_logging_tool` | `server-stateless` | one log message only when the request asked for a log level, then one text block |
//! | `test_header_tool` | `http-custom-header-server-validation` | echoes its `region` argument, which is annotated `x-mcp-header: Region` |
//! | `test_reconnection` | `server-sse-polling` | one text block (SEP-1699 lets a server close its stream mid-call; `serve` answers on it instead) |
//!
//! Not offered, because a read-only data connector cannot pass them on (see the README): tools that
//! ask the client for sampling, elicitation or roots (in a request or in an `input_required` result),
//! or log while the 2025 era's `logging/setLevel` is in force; and prompts, resources and completion,
//! which `serve` does not offer.
//!
//! Every tool is annotated `readOnlyHint: true`. Authentication is ignored (the connector sends
//! `Authorization: Bearer <key>`; any key will do). Streamable HTTP at `/mcp` on 127.0.0.1, rmcp's
//! defaults (sessions for the initialize era, stateless requests for 2026-07-28, SSE answers,
//! loopback `Host` check).
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
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock, ErrorData, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ResourceContents, ServerCapabilities, ServerConfig,
    Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
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
/// The `x-mcp-header` name of `test_header_tool`'s `region` argument (sent as `Mcp-Param-Region`).
pub const REGION_HEADER: &str = "Region";

/// The names of the tools, in listing order.
pub const TOOL_NAMES: [&str; 13] = [
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_error_handling",
    "json_schema_2020_12_tool",
    "test_tool_with_progress",
    "test_missing_capability",
    "test_streaming_elicitation",
    "test_logging_tool",
    "test_header_tool",
    "test_reconnection",
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

/// The input schema of `json_schema_2020_12_tool`, exactly as the suite's `json-schema-2020-12`
/// scenario expects to find it: every keyword must survive the trip through `serve`.
pub fn json_schema_2020_12() -> Value {
    json!({
        "$schema": JSON_SCHEMA_2020_12,
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    })
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
        ("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", object(json_schema_2020_12())),
        (
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100 when the call carries a progress token, then returns one text block.",
            no_arguments(),
        ),
        (
            "test_missing_capability",
            "Needs the client's sampling capability: a client that did not declare it gets error -32021.",
            no_arguments(),
        ),
        ("test_streaming_elicitation", "Diagnostic: returns one text block on the response stream.", no_arguments()),
        ("test_logging_tool", "Diagnostic: logs one line only when the request asks for a log level.", no_arguments()),
        (
            "test_header_tool",
            "Echoes its region argument, which clients mirror into the Mcp-Param-Region header.",
            object(json!({
                "type": "object",
                "properties": {"region": {"type": "string", "x-mcp-header": REGION_HEADER}},
                "required": ["region"]
            })),
        ),
        ("test_reconnection", "Returns one text block.", no_arguments()),
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

/// The result of calling `name`, or `None` for a tool the fixture does not have. This is the whole
/// answer of the tools that depend only on their arguments; for the others
/// ([`FixtureServer::call_tool`] adds what depends on the request) it is the result a client gets
/// that declared every capability and asked for neither progress nor logs.
pub fn call(name: &str, arguments: &Map<String, Value>) -> Option<CallToolResult> {
    let text = |t: &str| CallToolResult::success(vec![ContentBlock::text(t)]);
    Some(match name {
        "test_simple_text" => text(SIMPLE_TEXT),
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
        "json_schema_2020_12_tool" => text(&format!("Received: {}", Value::Object(arguments.clone()))),
        "test_tool_with_progress" => text("Progress test completed."),
        "test_missing_capability" => text("Success"),
        "test_streaming_elicitation" => text("Streaming complete"),
        "test_logging_tool" => text("Logging evaluated"),
        "test_header_tool" => text(&format!("Region: {}", arguments.get("region").and_then(Value::as_str).unwrap_or(""))),
        "test_reconnection" => text("Reconnection test completed successfully"),
        _ => return None,
    })
}

/// `{"sampling": {}}`: what `test_missing_capability` needs.
pub fn sampling_capability() -> ClientCapabilities {
    serde_json::from_value(json!({"sampling": {}})).unwrap_or_default()
}

/// `test_missing_capability`: -32021 unless the request (or, in the initialize era, the session)
/// declared sampling.
fn check_sampling(context: &RequestContext<RoleServer>) -> Result<(), ErrorData> {
    match context.client_capabilities() {
        Some(c) if c.sampling.is_some() => Ok(()),
        _ => Err(ErrorData::missing_required_client_capability(sampling_capability())),
    }
}

/// `test_tool_with_progress`: 0, 50 and 100 of 100, 50 ms apart, for the request's progress token.
async fn report_progress(context: &RequestContext<RoleServer>) {
    let Some(token) = context.meta.get_progress_token() else { return };
    for (i, step) in [0.0, 50.0, 100.0].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let param = ProgressNotificationParam::new(token.clone(), step).with_total(100.0).with_message(format!("Completed step {step} of 100"));
        let _ = context.peer.notify_progress(param).await;
    }
}

/// `test_logging_tool`: one log line, only for a request that carries a log level.
#[allow(deprecated)] // Logging is deprecated by 2026-07-28; the suite checks that it stays silent unasked.
async fn log_if_asked(context: &RequestContext<RoleServer>) {
    use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
    if context.meta.log_level().is_some() {
        let line = LoggingMessageNotificationParam::new(LoggingLevel::Info, json!("Diagnostic trace logging activated"));
        let _ = context.peer.notify_logging_message(line).await;
    }
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

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        match request.name.as_ref() {
            "test_missing_capability" => check_sampling(&context)?,
            "test_tool_with_progress" => report_progress(&context).await,
            "test_logging_tool" => log_if_asked(&context).await,
            _ => {}
        }
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
