//! What the AI engine sees: an MCP server (`claribi-host serve`) exposing the read tools of every
//! connected data source, over stdio or Streamable HTTP.
//!
//! * **Catalogue.** Each connection's tools, after the blocklist, named `<connection>__<tool>`
//!   (connection names never contain `__`), with a title and a description that say which data source
//!   and account they read, the vendor's input schema unchanged (JSON Schema 2020-12 `$schema` kept),
//!   and `readOnlyHint: true`. A connection that cannot list its tools (needs a reconnect, server down)
//!   contributes none, and says why in the log. Listings are cached for a minute.
//! * **Calls** go through [`HostService::call_tool`] — the same path as the CLI: blocklist, policy,
//!   limits, credentials, refresh.
//! * **Results** are engine-ready ([`crate::engine::results`]): the vendor's JSON as `structuredContent` and as
//!   text, a table view of list-like results in a second text block and in `_meta["claribi/table"]`,
//!   and a summary with a `claribi__next_rows` cursor when a result is larger than
//!   `--max-result-bytes`.
//! * **Errors**: an unknown or blocked tool is a JSON-RPC `invalid params` error; a tool that ran and
//!   failed is a result with `isError: true`, whose text is the host's one-line error and whose
//!   `structuredContent` is `{"error": {"kind", "message"}}` so an engine can act on the kind.
//! * Over HTTP the server listens on loopback only and accepts only loopback `Host` headers and, when a
//!   request carries one, its own `Origin` (DNS-rebinding protection).

pub mod results;

use crate::errors::{ConnectorError, HostError};
use crate::engine::results::Continuations;
use crate::service::{log_call, Content, HostService, ToolInfo, ToolOutput};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The separator between connection and tool in served tool names.
pub const SEPARATOR: &str = "__";
/// The host's own tool that continues a summarized result.
pub const NEXT_ROWS: &str = "claribi__next_rows";
const CACHE_TTL: Duration = Duration::from_secs(60);

/// How `serve` presents tools.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Results larger than this (bytes of JSON text) are summarized.
    pub max_result_bytes: usize,
    /// Serve tool names without the `<connection>__` prefix (allowed with exactly one connection; for
    /// conformance tests against a single upstream server).
    pub bare_names: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { max_result_bytes: 32 * 1024, bare_names: false }
    }
}

struct Listed {
    connection: String,
    /// "Data source `close`: Close CRM, account …. Read-only."
    source: Arc<str>,
    served_name: String,
    info: ToolInfo,
}

/// The MCP server handler.
#[derive(Clone)]
pub struct EngineServer {
    host: Arc<HostService>,
    options: EngineOptions,
    results: Arc<Continuations>,
    cache: Arc<Mutex<Option<(Instant, Arc<Vec<Listed>>)>>>,
}

impl EngineServer {
    /// A server over `host`.
    pub fn new(host: Arc<HostService>, options: EngineOptions) -> EngineServer {
        EngineServer { host, options, results: Arc::new(Continuations::default()), cache: Arc::default() }
    }

    /// The tools of every usable connection (cached for a minute).
    async fn catalogue(&self) -> Result<Arc<Vec<Listed>>, HostError> {
        if let Some((at, list)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if at.elapsed() < CACHE_TTL {
                return Ok(list.clone());
            }
        }
        let connections = self.host.connections()?;
        let usable: Vec<_> = connections.iter().filter(|c| c.status.as_str() != "pending").collect();
        if self.options.bare_names && usable.len() != 1 {
            return Err(HostError::Usage(format!(
                "--bare-names needs exactly one connection, there are {}",
                usable.len()
            )));
        }
        // Every connection is listed at once: one slow or stuck connector costs the listing its own
        // deadline, not the sum of everyone's.
        let listings = futures::future::join_all(usable.iter().map(|c| self.host.list_tools(&c.name))).await;
        let mut out = Vec::new();
        for (c, listing) in usable.into_iter().zip(listings) {
            match listing {
                Ok(listing) => {
                    let source: Arc<str> = format!(
                        "Data source `{}`: {}{}. Read-only.",
                        c.name,
                        c.connector_name,
                        c.account.as_ref().map(|a| format!(", account {a}")).unwrap_or_default()
                    )
                    .into();
                    for info in listing.tools {
                        let served_name =
                            if self.options.bare_names { info.name.clone() } else { format!("{}{SEPARATOR}{}", c.name, info.name) };
                        out.push(Listed { connection: c.name.clone(), source: source.clone(), served_name, info });
                    }
                }
                Err(e) => tracing::warn!(connection = %c.name, "its tools are not served: {e}"),
            }
        }
        let list = Arc::new(out);
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    fn describe(&self, l: &Listed) -> Tool {
        let source = &l.source;
        let description = match &l.info.description {
            Some(d) if !d.trim().is_empty() => format!("{}\n\n{source}", d.trim()),
            _ => source.to_string(),
        };
        let schema: Map<String, Value> = match &l.info.input_schema {
            Value::Object(o) => o.clone(),
            _ => Map::from_iter([("type".to_string(), json!("object"))]),
        };
        let title = l.info.title.clone().unwrap_or_else(|| l.info.name.clone());
        let mut tool = Tool::new(l.served_name.clone(), description, Arc::new(schema));
        tool = tool.with_title(if self.options.bare_names { title.clone() } else { format!("{title} ({})", l.connection) });
        let mut a = ToolAnnotations::new();
        a.title = Some(title);
        a.read_only_hint = Some(true);
        a.destructive_hint = Some(false);
        a.idempotent_hint = Some(true);
        a.open_world_hint = Some(true);
        tool.with_annotations(a)
    }

    fn next_rows_tool(&self) -> Tool {
        let schema = json!({
            "type": "object",
            "properties": {"cursor": {"type": "string", "description": "The `continue.arguments.cursor` of a summarized result."}},
            "required": ["cursor"],
            "additionalProperties": false
        });
        let Value::Object(schema) = schema else { unreachable!("a literal object") };
        let mut a = ToolAnnotations::new();
        a.read_only_hint = Some(true);
        a.destructive_hint = Some(false);
        Tool::new(
            NEXT_ROWS,
            "Continue a result that was too large to return whole: returns the next rows of a summarized result. Pass the cursor from its `continue` field; each cursor works once, for 15 minutes.",
            Arc::new(schema),
        )
        .with_title("Next rows of a large result")
        .with_annotations(a)
    }

    async fn resolve(&self, served: &str) -> Result<(String, String), ErrorData> {
        let unknown = || ErrorData::invalid_params(format!("Unknown tool: {}", crate::errors::one_line(served)), None);
        if self.options.bare_names {
            let list = self.catalogue().await.map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            let l = list.iter().find(|l| l.served_name == served).ok_or_else(unknown)?;
            return Ok((l.connection.clone(), l.info.name.clone()));
        }
        let (conn, tool) = served.split_once(SEPARATOR).ok_or_else(unknown)?;
        if conn.is_empty() || tool.is_empty() {
            return Err(unknown());
        }
        Ok((conn.to_string(), tool.to_string()))
    }
}

fn error_result(e: &HostError) -> CallToolResult {
    let message = e.to_string();
    let mut r = CallToolResult::error(vec![ContentBlock::text(message.clone())]);
    let mut err = json!({"kind": e.kind(), "message": message});
    if let HostError::Connector(ConnectorError::RateLimited { retry_after_ms: Some(ms), .. }) = e {
        err["retry_after_ms"] = json!(ms);
    }
    r.structured_content = Some(json!({ "error": err }));
    r
}

fn vendor_json(out: &ToolOutput) -> Option<Value> {
    if let Some(v) = &out.structured_content {
        return Some(v.clone());
    }
    match out.content.as_slice() {
        [Content::Text { text }] => serde_json::from_str::<Value>(text).ok().filter(|v| v.is_object() || v.is_array()),
        _ => None,
    }
}

fn pass_through(out: &ToolOutput) -> Vec<ContentBlock> {
    out.content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(ContentBlock::text(text.clone())),
            Content::Image { data, mime_type } => Some(ContentBlock::image(data.clone(), mime_type.clone())),
            Content::Audio { .. } | Content::Other { .. } => serde_json::to_value(c)
                .ok()
                .and_then(|mut v| {
                    // `Content` serializes as {"type": "audio"|"other", ...}; an `other` carries MCP JSON.
                    if v["type"] == "other" {
                        v = v["value"].take();
                    }
                    serde_json::from_value::<ContentBlock>(v).ok()
                }),
        })
        .collect()
}

/// Shape a successful call for the engine.
pub fn engine_result(results: &Continuations, out: &ToolOutput, max_bytes: usize) -> CallToolResult {
    let Some(vendor) = vendor_json(out) else {
        // Not JSON (images, audio, prose): pass the blocks through as the vendor sent them.
        return CallToolResult::success(pass_through(out));
    };
    let shaped = results.shape(vendor, max_bytes);
    let mut content = vec![ContentBlock::text(shaped.text)];
    // Images, audio and resources that came with the JSON pass through beside it.
    content.extend(pass_through(&ToolOutput {
        structured_content: None,
        content: out.content.iter().filter(|c| !matches!(c, Content::Text { .. })).cloned().collect(),
    }));
    let mut meta = Map::new();
    if let Some(t) = shaped.table {
        content.push(ContentBlock::text(format!("clariBI table view (columns with types, rows, pagination): {t}")));
        meta.insert("claribi/table".into(), t);
    }
    meta.insert("claribi/summarized".into(), Value::Bool(shaped.summarized));
    let mut r = CallToolResult::success(content);
    r.structured_content = Some(shaped.structured);
    r.meta = serde_json::from_value(Value::Object(meta)).ok();
    r
}

impl ServerHandler for EngineServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("claribi-host", env!("CARGO_PKG_VERSION")).with_title("clariBI data sources"))
            .with_instructions(
                "Read-only tools of the data sources connected to clariBI. Tool names are <connection>__<tool>; each description names its data source and account. \
                 Results carry the vendor's JSON as structuredContent; list results add a typed table view; results too large to return whole come summarized \
                 with a claribi__next_rows cursor. Money values from Close are in cents.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let list = self.catalogue().await.map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let mut tools: Vec<Tool> = list.iter().map(|l| self.describe(l)).collect();
        tools.push(self.next_rows_tool());
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let served = request.name.to_string();
        let args = Value::Object(request.arguments.unwrap_or_default());
        if served == NEXT_ROWS {
            let started = Instant::now();
            let cursor = args.get("cursor").and_then(Value::as_str).unwrap_or("");
            let page = self.results.next(cursor, self.options.max_result_bytes).ok_or_else(|| {
                HostError::Usage("that cursor is unknown, used up or expired; call the original tool again".into())
            });
            // The same one line per call as every connector call, so nothing is missing from the log.
            log_call("claribi", NEXT_ROWS, started, &page.as_ref().map(|p| p.text.len()));
            let result = match page {
                Ok(page) => {
                    let mut r = CallToolResult::success(vec![ContentBlock::text(page.text)]);
                    r.structured_content = Some(page.structured);
                    r
                }
                Err(e) => error_result(&e),
            };
            return Ok(CallToolResponse::Complete(result));
        }
        let (connection, tool) = match self.resolve(&served).await {
            Ok(resolved) => resolved,
            Err(e) => {
                let name: String = crate::errors::one_line(&served).chars().take(200).collect();
                let unknown = HostError::Connector(ConnectorError::UnknownTool { message: format!("no served tool named `{name}`") });
                log_call("", &name, Instant::now(), &Err::<usize, _>(unknown));
                return Err(e);
            }
        };
        let result = match self.host.call_tool(&connection, &tool, &args.to_string()).await {
            Ok(out) => engine_result(&self.results, &out, self.options.max_result_bytes),
            Err(HostError::Blocked { .. } | HostError::NoSuchConnection(_)) => {
                return Err(ErrorData::invalid_params(format!("Unknown tool: {}", crate::errors::one_line(&served)), None));
            }
            Err(e @ HostError::Connector(ConnectorError::UnknownTool { .. })) => {
                return Err(ErrorData::invalid_params(e.to_string(), None));
            }
            Err(e) => error_result(&e),
        };
        Ok(CallToolResponse::Complete(result))
    }
}

/// Serve over stdio until the client closes it.
pub async fn serve_stdio(server: EngineServer) -> Result<(), HostError> {
    use rmcp::ServiceExt;
    let running = server
        .serve(rmcp::transport::io::stdio())
        .await
        .map_err(|e| HostError::Usage(format!("cannot start the MCP server on stdio: {e}")))?;
    running.waiting().await.map_err(|e| HostError::Usage(format!("the MCP session on stdio failed: {e}")))?;
    Ok(())
}

/// Serve Streamable HTTP on `listener` at `/mcp` until `shutdown` resolves. Only loopback `Host`
/// headers are accepted.
pub async fn serve_http(
    server: EngineServer,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), HostError> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    let addr = listener.local_addr().map_err(|e| HostError::Usage(e.to_string()))?;
    let ct = tokio_util::sync::CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default().with_cancellation_token(ct.clone());
    config.allowed_hosts = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "[::1]".into(),
        format!("localhost:{}", addr.port()),
        format!("127.0.0.1:{}", addr.port()),
        format!("[::1]:{}", addr.port()),
    ];
    // A request that carries an Origin must come from this server's own origin (MCP transport
    // security); requests without one (non-browser clients) pass.
    config.allowed_origins = vec![
        format!("http://localhost:{}", addr.port()),
        format!("http://127.0.0.1:{}", addr.port()),
        format!("http://[::1]:{}", addr.port()),
    ];
    let service = StreamableHttpService::new(move || Ok(server.clone()), Arc::new(LocalSessionManager::default()), config);
    let router = axum::Router::new().nest_service("/mcp", service);
    let stop = ct.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop.cancel();
        })
        .await
        .map_err(|e| HostError::Usage(format!("the MCP HTTP server failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_results_become_structured_content_with_a_table() {
        let out = ToolOutput {
            structured_content: None,
            content: vec![Content::Text { text: r#"{"data":[{"id":"a","value":1}],"has_more":false}"#.into() }],
        };
        let r = engine_result(&Continuations::default(), &out, 10_000);
        assert_eq!(r.structured_content.as_ref().unwrap()["data"][0]["id"], "a");
        assert_eq!(r.content.len(), 2);
        assert_eq!(r.is_error, Some(false));
        let meta = serde_json::to_value(&r.meta).unwrap();
        assert_eq!(meta["claribi/table"]["columns"][1]["type"], "integer");
    }

    #[test]
    fn blocks_beside_json_are_kept() {
        let out = ToolOutput {
            structured_content: Some(serde_json::json!({"id": "a"})),
            content: vec![
                Content::Text { text: "{\"id\":\"a\"}".into() },
                Content::Image { data: "aGk=".into(), mime_type: "image/png".into() },
            ],
        };
        let r = engine_result(&Continuations::default(), &out, 10_000);
        let v = serde_json::to_value(&r.content).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1]["type"], "image");
    }

    #[test]
    fn non_json_results_pass_through() {
        let out = ToolOutput {
            structured_content: None,
            content: vec![
                Content::Text { text: "plain words".into() },
                Content::Image { data: "aGk=".into(), mime_type: "image/png".into() },
            ],
        };
        let r = engine_result(&Continuations::default(), &out, 10_000);
        assert!(r.structured_content.is_none());
        let v = serde_json::to_value(&r.content).unwrap();
        assert_eq!(v[0]["text"], "plain words");
        assert_eq!(v[1]["type"], "image");
        assert_eq!(v[1]["mimeType"], "image/png");
    }

    #[test]
    fn errors_carry_their_kind() {
        let r = error_result(&HostError::Connector(ConnectorError::RateLimited { retry_after_ms: Some(1000), message: "slow".into() }));
        assert_eq!(r.is_error, Some(true));
        let s = r.structured_content.unwrap();
        assert_eq!(s["error"]["kind"], "rate-limited");
        assert_eq!(s["error"]["retry_after_ms"], 1000);
    }
}
