//! The MCP client proper: opening a session in either era (see [`crate::protocol`]), request/response
//! matching over JSON or SSE answers (with the 2025 stream resumption), multi round-trip requests
//! ([`crate::input_required`]), the routing headers of 2026-07-28 ([`crate::headers`]), and the
//! `tools/*` methods.

use crate::error::{one_line, reason_phrase, summarize_error_body, McpError, MAX_MESSAGE_CHARS};
use crate::headers::{self, ParamHeader};
use crate::http::{HttpClient, HttpRequest, HttpResponse, Method, ReadError};
use crate::input_required::{self, Round};
use crate::protocol::{self, judge_discover, Discovery, Era, ProtocolChoice, ServerHello};
use crate::rate_limit::{parse_ratelimit, parse_retry_after, secs_to_ms};
use crate::sse::SseParser;
use crate::url::HttpUrl;
use crate::{www_authenticate, AuthProvider, LogLevel, Logger, SessionStore};
use rmcp::model::{
    ClientCapabilities, ContentBlock, Implementation, InitializeRequestParams, InitializeResult,
    ProtocolVersion, Tool,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};

/// The protocol version offered in `initialize` (the legacy era).
pub const PROTOCOL_VERSION: &str = protocol::LEGACY_VERSION;

/// Every version this client speaks: 2026-07-28 through `server/discover`, the others through
/// `initialize`.
pub const SUPPORTED_PROTOCOL_VERSIONS: [&str; 4] = protocol::SUPPORTED_VERSIONS;

/// Settings of one client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// The MCP endpoint, e.g. `https://mcp.close.com/mcp`.
    pub endpoint: String,
    /// `clientInfo.name` sent in `initialize` and in every 2026-07-28 request's `_meta`.
    pub client_name: String,
    /// `clientInfo.version`.
    pub client_version: String,
    /// `clientInfo.title`, optional.
    pub client_title: Option<String>,
    /// Which era to speak. Default [`ProtocolChoice::Auto`]: probe with `server/discover`.
    pub protocol: ProtocolChoice,
    /// The most bytes read from one response body (JSON or event stream). Default 16 MiB.
    pub max_response_bytes: usize,
    /// The largest single SSE event (or line). Default 8 MiB.
    pub max_event_bytes: usize,
    /// A 429 whose reset is at most this far away is waited out and the request retried once.
    /// Default 5 s; zero disables the retry.
    pub max_rate_limit_wait: std::time::Duration,
    /// The longest `retry:` wait honoured before resuming an event stream that ended early (2025
    /// era). Default 5 s; a server asking for longer gets an error instead.
    pub max_resume_wait: std::time::Duration,
    /// How many times one answer's event stream is resumed. Default 3.
    pub max_resumes: usize,
    /// The most `tools/list` pages followed. Default 1000.
    pub max_pages: usize,
}

impl ClientConfig {
    pub fn new(
        endpoint: impl Into<String>,
        client_name: impl Into<String>,
        client_version: impl Into<String>,
    ) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            client_name: client_name.into(),
            client_version: client_version.into(),
            client_title: None,
            protocol: ProtocolChoice::Auto,
            max_response_bytes: 16 * 1024 * 1024,
            max_event_bytes: 8 * 1024 * 1024,
            max_rate_limit_wait: std::time::Duration::from_secs(5),
            max_resume_wait: std::time::Duration::from_secs(5),
            max_resumes: 3,
            max_pages: 1000,
        }
    }
}

/// What survives between calls: enough to skip opening a session next time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The endpoint the session belongs to (a session is never reused for another endpoint).
    pub endpoint: String,
    /// `Mcp-Session-Id`, when the server issued one (2026-07-28 and stateless servers do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The protocol version in use (`2026-07-28` means the stateless era).
    pub protocol_version: String,
    /// What the last complete `tools/list` said about `x-mcp-header` annotations (2026-07-28 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_headers: Option<ToolHeaders>,
}

impl Session {
    /// The session's era.
    pub fn era(&self) -> Era {
        Era::of(&self.protocol_version).unwrap_or(Era::Legacy)
    }
}

/// The `Mcp-Param-*` mapping of every tool that has one, and the tools left out of the listing
/// because their annotations break the rules (they are never called).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ToolHeaders {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<ParamHeader>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refused: BTreeMap<String, String>,
}

/// Every tool of a server, with the caching hints of its listing (2026-07-28).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolList {
    pub tools: Vec<Tool>,
    /// How long the listing may be reused, in milliseconds: the smallest `ttlMs` of its pages.
    pub ttl_ms: Option<u64>,
    /// `public` or `private`; `private` when any page said so.
    pub cache_scope: Option<String>,
}

/// One content block of a tool result: an MCP block `rmcp` understands, or anything else as sent.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // results are few and short-lived; boxing would only burden callers
pub enum ToolContent {
    Block(ContentBlock),
    Other(Value),
}

impl ToolContent {
    /// The text of a `text` block.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ToolContent::Block(ContentBlock::Text(t)) => Some(&t.text),
            _ => None,
        }
    }

    /// The block as MCP JSON.
    pub fn to_json(&self) -> Value {
        match self {
            ToolContent::Block(b) => serde_json::to_value(b).unwrap_or(Value::Null),
            ToolContent::Other(v) => v.clone(),
        }
    }
}

/// A `tools/call` result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallResult {
    pub content: Vec<ToolContent>,
    /// `structuredContent`, when present and not `null`.
    pub structured_content: Option<Value>,
    pub is_error: bool,
}

impl ToolCallResult {
    /// The text blocks joined with a space, as one line of at most `max_chars` characters.
    pub fn text_summary(&self, max_chars: usize) -> String {
        let texts: Vec<&str> = self
            .content
            .iter()
            .filter_map(ToolContent::as_text)
            .collect();
        one_line(&texts.join(" "), max_chars)
    }
}

/// Why one exchange failed.
enum Failure {
    /// HTTP 404 on a request that carried a session id: the session is gone.
    SessionGone,
    Error(McpError),
}

impl From<McpError> for Failure {
    fn from(e: McpError) -> Self {
        Failure::Error(e)
    }
}

/// How one request is framed on the wire.
#[derive(Clone, Copy)]
enum Framing<'r> {
    /// `initialize`: no session headers yet.
    Handshake,
    /// Inside a legacy session: `Mcp-Session-Id` (when issued) and `MCP-Protocol-Version`.
    Session,
    /// 2026-07-28: `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`, and the request
    /// metadata in `params._meta`.
    Modern {
        method: &'r str,
        name: Option<&'r str>,
        params: &'r [(String, String)],
    },
}

/// How an answer's event stream ended.
enum StreamEnd {
    /// The response (or an error) arrived.
    Answer(Result<Value, McpError>),
    /// The stream closed first; the last event id and `retry:` seen, for resuming.
    Closed {
        last_event_id: Option<String>,
        retry_ms: Option<u64>,
    },
}

/// How many characters of a tool's error text are kept.
const MAX_TOOL_ERROR_CHARS: usize = 1000;
/// How much of an error response body is read to describe it.
const ERROR_BODY_PREFIX: usize = 4096;
/// The longest session id accepted.
const MAX_SESSION_ID_LEN: usize = 1024;
/// The largest stored session (the host keeps state values of up to 64 KiB); a larger header
/// mapping is not stored and is learned again by listing the tools.
const MAX_STORED_SESSION: usize = 48 * 1024;
/// The wait before resuming a stream whose server gave no `retry:`.
const DEFAULT_RESUME_WAIT_MS: u64 = 1000;

/// A blocking MCP client over Streamable HTTP. Cheap to create; create one per call.
pub struct McpClient<'a> {
    config: ClientConfig,
    http: &'a dyn HttpClient,
    auth: &'a dyn AuthProvider,
    store: &'a dyn SessionStore,
    log: &'a dyn Logger,
    session: Option<Session>,
    store_consulted: bool,
    next_id: u64,
}

impl<'a> McpClient<'a> {
    /// A client for `config.endpoint`. Fails if the endpoint is not an absolute `http(s)` URL.
    pub fn new(
        config: ClientConfig,
        http: &'a dyn HttpClient,
        auth: &'a dyn AuthProvider,
        store: &'a dyn SessionStore,
        log: &'a dyn Logger,
    ) -> Result<Self, McpError> {
        HttpUrl::parse(&config.endpoint)
            .map_err(|e| McpError::protocol(format!("invalid MCP endpoint: {e}")))?;
        Ok(McpClient {
            config,
            http,
            auth,
            store,
            log,
            session: None,
            store_consulted: false,
            next_id: first_request_id(),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The session in use, if one has been loaded or established.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Opens a session now (dropping any stored one) in the era of [`ClientConfig::protocol`]:
    /// `server/discover` for 2026-07-28, with the fallback to `initialize` under `Auto`.
    pub fn open(&mut self) -> Result<ServerHello, McpError> {
        self.session = None;
        self.store_consulted = true;
        if self.config.protocol == ProtocolChoice::Legacy {
            return self.initialize().map(hello_from_initialize);
        }
        let mut retried = false;
        loop {
            let outcome = self
                .exchange("server/discover", None, self.modern_framing("server/discover", None, &[]))
                .map(|(result, _)| result)
                .map_err(|f| match f {
                    Failure::Error(e) => e,
                    Failure::SessionGone => McpError::Http { status: 404, message: "Not Found".to_owned() },
                });
            match judge_discover(outcome, retried) {
                Discovery::Modern(hello) => {
                    self.session = Some(Session {
                        endpoint: self.config.endpoint.clone(),
                        session_id: None,
                        protocol_version: protocol::MODERN_VERSION.to_owned(),
                        tool_headers: None,
                    });
                    self.save_session();
                    self.log(
                        LogLevel::Info,
                        &format!("MCP server speaks {} (server/discover){}", protocol::MODERN_VERSION, server_label(&hello)),
                    );
                    return Ok(hello);
                }
                Discovery::Retry => {
                    self.log(LogLevel::Debug, "server/discover refused the version it lists; asking once more");
                    retried = true;
                }
                Discovery::Legacy(why) if self.config.protocol == ProtocolChoice::Auto => {
                    self.log(LogLevel::Debug, &format!("falling back to initialize: {why}"));
                    return self.initialize().map(hello_from_initialize);
                }
                Discovery::Legacy(why) => {
                    return Err(McpError::protocol(format!(
                        "the server does not speak MCP {} ({why}); set the connection's protocol_version to auto",
                        protocol::MODERN_VERSION
                    )))
                }
                Discovery::Failed(e) => return Err(e),
            }
        }
    }

    /// Runs the legacy `initialize` handshake now (dropping any stored session) and stores the new
    /// session. [`open`](Self::open) chooses between this and `server/discover`.
    pub fn initialize(&mut self) -> Result<InitializeResult, McpError> {
        self.session = None;
        self.store_consulted = true;
        let mut client_info = Implementation::new(
            self.config.client_name.clone(),
            self.config.client_version.clone(),
        );
        client_info.title = self.config.client_title.clone();
        let params = InitializeRequestParams::new(ClientCapabilities::default(), client_info)
            .with_protocol_version(ProtocolVersion::V_2025_11_25);
        let params = serde_json::to_value(params)
            .map_err(|e| McpError::protocol(format!("cannot encode initialize: {e}")))?;
        let (result, session_id) = match self.exchange("initialize", Some(params), Framing::Handshake) {
            Ok(answer) => answer,
            Err(Failure::Error(e)) => return Err(e),
            Err(Failure::SessionGone) => {
                return Err(McpError::Http {
                    status: 404,
                    message: "Not Found".to_owned(),
                })
            }
        };
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| McpError::protocol("the initialize result has no protocolVersion"))?
            .to_owned();
        if Era::of(&version) != Some(Era::Legacy) {
            return Err(McpError::protocol(format!(
                "the server chose MCP protocol version `{}` in initialize, which this client does not support there",
                one_line(&version, 40)
            )));
        }
        let init: InitializeResult = serde_json::from_value(result)
            .map_err(|e| McpError::protocol(format!("malformed initialize result: {e}")))?;
        if let Some(id) = &session_id {
            if !valid_session_id(id) {
                return Err(McpError::protocol(
                    "the server issued an invalid Mcp-Session-Id",
                ));
            }
        }
        self.session = Some(Session {
            endpoint: self.config.endpoint.clone(),
            session_id,
            protocol_version: version.clone(),
            tool_headers: None,
        });
        if let Err(e) = self.send_notification("notifications/initialized", None) {
            self.session = None;
            return Err(e);
        }
        self.save_session();
        self.log(
            LogLevel::Info,
            &format!(
                "MCP session initialized (protocol {version}, server {} {}{})",
                one_line(&init.server_info.name, 60),
                one_line(&init.server_info.version, 30),
                if self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.session_id.is_some())
                {
                    ", with session id"
                } else {
                    ""
                }
            ),
        );
        Ok(init)
    }

    /// Makes sure a session exists: reuses the stored one, or opens one.
    pub fn ensure_session(&mut self) -> Result<(), McpError> {
        if self.session.is_some() {
            return Ok(());
        }
        if !self.store_consulted {
            self.store_consulted = true;
            if let Some(session) = self.load_session() {
                self.log(
                    LogLevel::Debug,
                    &format!(
                        "reusing the stored MCP session (protocol {})",
                        session.protocol_version
                    ),
                );
                self.session = Some(session);
                return Ok(());
            }
        }
        self.open().map(|_| ())
    }

    /// Sends a request and returns its final `result`.
    ///
    /// * A session that has expired (HTTP 404), or a protocol version the server no longer accepts
    ///   (-32022), is opened afresh once and the request replayed.
    /// * A rate limit (HTTP 429) whose reset is at most `ClientConfig::max_rate_limit_wait` away is
    ///   waited out and the request sent once more; a longer one, or a second 429, is the error.
    /// * A result asking for input (`resultType: input_required`) is answered as
    ///   [`crate::input_required`] describes and the request sent again, at most
    ///   [`input_required::MAX_ROUNDS`] times.
    pub fn request(&mut self, method: &str, params: Option<Value>) -> Result<Value, McpError> {
        self.ensure_session()?;
        let mut reopened = false;
        let mut rate_limit_retried = false;
        let mut rounds = 0usize;
        let mut params = params;
        loop {
            let param_headers = self.param_headers(method, params.as_ref());
            let name = headers::name_of(method, params.as_ref());
            let framing = match self.era() {
                Era::Modern => self.modern_framing(method, name.as_deref(), &param_headers),
                Era::Legacy => Framing::Session,
            };
            match self.exchange(method, params.clone(), framing) {
                Ok((result, _)) => match input_required::classify(&result)? {
                    Round::Complete => return Ok(result),
                    Round::Retry(retry) => {
                        if !matches!(method, "tools/call" | "prompts/get" | "resources/read") {
                            return Err(McpError::protocol(format!(
                                "the server asked for input to answer {method}, which MCP allows only for tools/call, prompts/get and resources/read"
                            )));
                        }
                        rounds += 1;
                        if rounds > input_required::MAX_ROUNDS {
                            return Err(McpError::protocol(format!(
                                "the server still asked for input after {} rounds of {method}",
                                input_required::MAX_ROUNDS
                            )));
                        }
                        self.log(
                            LogLevel::Info,
                            &format!(
                                "the server asked for input to {method} ({} request(s)); answering and sending it again",
                                retry.input_responses.len()
                            ),
                        );
                        params = Some(retry.apply(params.unwrap_or_else(|| json!({}))));
                    }
                },
                Err(Failure::Error(McpError::RateLimited { retry_after_ms: Some(ms), .. }))
                    if !rate_limit_retried && u128::from(ms) <= self.config.max_rate_limit_wait.as_millis() =>
                {
                    self.log(
                        LogLevel::Info,
                        &format!("rate limited (HTTP 429); retrying {method} once after the {ms} ms reset"),
                    );
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    rate_limit_retried = true;
                }
                Err(Failure::Error(e)) if !reopened && protocol::is_version_rejection(&e) => {
                    self.log(
                        LogLevel::Info,
                        &format!("the server no longer accepts this session's protocol version ({e}); opening a new session"),
                    );
                    self.forget_session();
                    self.open()?;
                    reopened = true;
                }
                Err(Failure::Error(e)) => return Err(e),
                Err(Failure::SessionGone) if !reopened => {
                    self.log(
                        LogLevel::Info,
                        "the MCP session has expired (HTTP 404); opening a new one",
                    );
                    self.forget_session();
                    self.open()?;
                    reopened = true;
                }
                Err(Failure::SessionGone) => {
                    self.forget_session();
                    return Err(McpError::Http {
                        status: 404,
                        message: "the MCP session was not found, again right after opening a new one".to_owned(),
                    });
                }
            }
        }
    }

    /// Sends a notification (no answer expected).
    pub fn notify(&mut self, method: &str, params: Option<Value>) -> Result<(), McpError> {
        self.ensure_session()?;
        self.send_notification(method, params)
    }

    /// Every tool, following `nextCursor` to the end. Tools that do not parse are skipped (and logged).
    pub fn list_tools(&mut self) -> Result<Vec<Tool>, McpError> {
        self.list_tools_with_hints().map(|l| l.tools)
    }

    /// Every tool with the listing's caching hints. Under 2026-07-28, a tool whose `x-mcp-header`
    /// annotations break the rules is left out (and logged), and the header mapping of the others is
    /// kept with the session for [`call_tool`](Self::call_tool).
    pub fn list_tools_with_hints(&mut self) -> Result<ToolList, McpError> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        let mut ttl_ms: Option<u64> = None;
        let mut cache_scope: Option<String> = None;
        for _ in 0..self.config.max_pages {
            let params = cursor.as_ref().map(|c| json!({ "cursor": c }));
            let result = self.request("tools/list", params)?;
            let page = self.parse_tools_page(result, &mut tools)?;
            if let Some(t) = page.ttl_ms {
                ttl_ms = Some(ttl_ms.map_or(t, |m| m.min(t)));
            }
            match page.cache_scope.as_deref() {
                Some("private") => cache_scope = Some("private".to_owned()),
                Some("public") if cache_scope.is_none() => cache_scope = Some("public".to_owned()),
                _ => {}
            }
            match page.next {
                None => {
                    let tools = self.check_header_annotations(tools);
                    return Ok(ToolList { tools, ttl_ms, cache_scope });
                }
                Some(c) => {
                    if !seen.insert(c.clone()) {
                        return Err(McpError::protocol("tools/list returned a cursor it had returned before (a pagination loop)"));
                    }
                    cursor = Some(c);
                }
            }
        }
        Err(McpError::protocol(format!(
            "tools/list did not end after {} pages",
            self.config.max_pages
        )))
    }

    /// Calls a tool; a result with `isError: true` becomes [`McpError::ToolFailed`].
    pub fn call_tool(
        &mut self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<ToolCallResult, McpError> {
        let result = self.call_tool_result(name, arguments)?;
        if result.is_error {
            let text = result.text_summary(MAX_TOOL_ERROR_CHARS);
            return Err(McpError::ToolFailed(if text.is_empty() {
                "the tool reported an error without a message".to_owned()
            } else {
                text
            }));
        }
        Ok(result)
    }

    /// Calls a tool and returns its result as sent, `isError` included. Under 2026-07-28 the tool's
    /// `Mcp-Param-*` headers are sent (the tools are listed first when the session does not know
    /// them yet), and a tool left out of the listing for its annotations is refused.
    pub fn call_tool_result(
        &mut self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<ToolCallResult, McpError> {
        self.ensure_session()?;
        if self.era() == Era::Modern {
            if self.session.as_ref().is_some_and(|s| s.tool_headers.is_none()) {
                self.list_tools()?;
            }
            let refused = self
                .session
                .as_ref()
                .and_then(|s| s.tool_headers.as_ref())
                .and_then(|h| h.refused.get(name).cloned());
            if let Some(reason) = refused {
                return Err(McpError::protocol(format!(
                    "the server's tool `{}` is not called: {reason}",
                    one_line(name, 80)
                )));
            }
        }
        let result = self.request(
            "tools/call",
            Some(json!({ "name": name, "arguments": arguments })),
        )?;
        parse_call_result(result)
    }

    /// Ends the session at the server (`DELETE` with the session id; 404/405 count as done) and
    /// forgets it. A 2026-07-28 session has nothing to end.
    pub fn terminate_session(&mut self) -> Result<(), McpError> {
        if self.session.is_none() && !self.store_consulted {
            self.store_consulted = true;
            self.session = self.load_session();
        }
        let has_id = self
            .session
            .as_ref()
            .is_some_and(|s| s.session_id.is_some() && s.era() == Era::Legacy);
        if !has_id {
            self.forget_session();
            return Ok(());
        }
        let response = self.send(Method::Delete, Vec::new(), Framing::Session, None);
        self.forget_session();
        let response = response?;
        match response.status {
            200..=299 | 404 | 405 => Ok(()),
            _ => Err(self.http_error(response)),
        }
    }

    /// Forgets the session here and in the store.
    pub fn forget_session(&mut self) {
        self.session = None;
        self.store.save(None);
    }

    // ---------------------------------------------------------------------------------------------

    fn log(&self, level: LogLevel, message: &str) {
        self.log.log(level, message);
    }

    fn era(&self) -> Era {
        self.session.as_ref().map(Session::era).unwrap_or(Era::Legacy)
    }

    fn modern_framing<'r>(&self, method: &'r str, name: Option<&'r str>, params: &'r [(String, String)]) -> Framing<'r> {
        Framing::Modern { method, name, params }
    }

    /// The `Mcp-Param-*` headers of a modern `tools/call`.
    fn param_headers(&self, method: &str, params: Option<&Value>) -> Vec<(String, String)> {
        if method != "tools/call" || self.era() != Era::Modern {
            return Vec::new();
        }
        let (Some(name), Some(arguments)) = (
            params.and_then(|p| p.get("name")).and_then(Value::as_str),
            params.and_then(|p| p.get("arguments")).and_then(Value::as_object),
        ) else {
            return Vec::new();
        };
        self.session
            .as_ref()
            .and_then(|s| s.tool_headers.as_ref())
            .and_then(|h| h.params.get(name))
            .map(|mapping| headers::param_values(mapping, arguments))
            .unwrap_or_default()
    }

    /// Under 2026-07-28: drops the tools whose annotations break the rules and records the mapping of
    /// the others with the session.
    fn check_header_annotations(&mut self, tools: Vec<Tool>) -> Vec<Tool> {
        if self.era() != Era::Modern {
            return tools;
        }
        let mut found = ToolHeaders::default();
        let mut kept = Vec::with_capacity(tools.len());
        for tool in tools {
            match headers::param_headers(&tool.input_schema) {
                Ok(mapping) => {
                    if !mapping.is_empty() {
                        found.params.insert(tool.name.to_string(), mapping);
                    }
                    kept.push(tool);
                }
                Err(reason) => {
                    self.log(
                        LogLevel::Warn,
                        &format!("leaving out the server's tool `{}`: {reason}", one_line(&tool.name, 80)),
                    );
                    found.refused.insert(tool.name.to_string(), reason);
                }
            }
        }
        if let Some(session) = self.session.as_mut() {
            session.tool_headers = Some(found);
        }
        self.save_session();
        kept
    }

    fn load_session(&self) -> Option<Session> {
        let raw = self.store.load()?;
        let session: Session = match serde_json::from_str(&raw) {
            Ok(s) => s,
            Err(_) => {
                self.log(
                    LogLevel::Warn,
                    "the stored MCP session is unreadable; opening a new one",
                );
                return None;
            }
        };
        if session.endpoint != self.config.endpoint {
            self.log(
                LogLevel::Debug,
                "the stored MCP session belongs to another endpoint; opening a new one",
            );
            return None;
        }
        if !self.config.protocol.allows(&session.protocol_version)
            || (session.era() == Era::Modern && session.session_id.is_some())
            || session
                .session_id
                .as_deref()
                .is_some_and(|id| !valid_session_id(id))
        {
            return None;
        }
        Some(session)
    }

    fn save_session(&self) {
        let Some(session) = &self.session else { return };
        let Ok(mut json) = serde_json::to_string(session) else { return };
        if json.len() > MAX_STORED_SESSION {
            // Too many annotated tools to keep: store the session without them (they are listed
            // again when a call needs them).
            let mut lean = session.clone();
            lean.tool_headers = None;
            let Ok(lean) = serde_json::to_string(&lean) else { return };
            json = lean;
        }
        self.store.save(Some(&json));
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    fn headers(
        &self,
        method: Method,
        framing: Framing<'_>,
        last_event_id: Option<&str>,
    ) -> Result<Vec<(String, String)>, McpError> {
        let mut headers: Vec<(String, String)> = Vec::with_capacity(8);
        match method {
            Method::Post => {
                headers.push((
                    "Accept".into(),
                    "application/json, text/event-stream".into(),
                ));
                headers.push(("Content-Type".into(), "application/json".into()));
            }
            Method::Get => headers.push(("Accept".into(), "text/event-stream".into())),
            Method::Delete => {}
        }
        match framing {
            Framing::Handshake => {}
            Framing::Session => {
                if let Some(session) = &self.session {
                    if let Some(id) = &session.session_id {
                        headers.push(("Mcp-Session-Id".into(), id.clone()));
                    }
                    headers.push((
                        "MCP-Protocol-Version".into(),
                        session.protocol_version.clone(),
                    ));
                }
            }
            Framing::Modern { method, name, params } => {
                headers.push(("MCP-Protocol-Version".into(), protocol::MODERN_VERSION.into()));
                headers.push((headers::MCP_METHOD.into(), method.to_owned()));
                if let Some(name) = name {
                    headers.push((headers::MCP_NAME.into(), name.to_owned()));
                }
                headers.extend(params.iter().cloned());
            }
        }
        if let Some(id) = last_event_id {
            headers.push(("Last-Event-ID".into(), id.to_owned()));
        }
        headers.extend(self.auth.headers()?);
        Ok(headers)
    }

    /// Sends one HTTP request to the endpoint. On a 401 the auth provider may refresh its
    /// credentials once, and the request is sent again.
    fn send(
        &self,
        method: Method,
        body: Vec<u8>,
        framing: Framing<'_>,
        last_event_id: Option<&str>,
    ) -> Result<HttpResponse, McpError> {
        let mut auth_retried = false;
        loop {
            let request = HttpRequest {
                method,
                url: self.config.endpoint.clone(),
                headers: self.headers(method, framing, last_event_id)?,
                body: body.clone(),
            };
            let response = self.http.send(request)?;
            if response.status == 401 && !auth_retried {
                let challenge = response.header_joined("www-authenticate");
                if self.auth.on_unauthorized(challenge.as_deref())? {
                    auth_retried = true;
                    self.log(
                        LogLevel::Info,
                        "HTTP 401: retrying once with renewed credentials",
                    );
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// Posts one request and waits for its answer. Returns the `result` and the `Mcp-Session-Id`
    /// response header.
    fn exchange(
        &mut self,
        method: &str,
        params: Option<Value>,
        framing: Framing<'_>,
    ) -> Result<(Value, Option<String>), Failure> {
        let id = self.take_id();
        let params = match framing {
            Framing::Modern { .. } => Some(protocol::with_request_meta(params, &self.client_info())),
            _ => params,
        };
        let mut message = json!({ "jsonrpc": "2.0", "id": id, "method": method });
        if let Some(params) = params {
            message["params"] = params;
        }
        let body = serde_json::to_vec(&message)
            .map_err(|e| McpError::protocol(format!("cannot encode {method}: {e}")))?;
        let carried_session = matches!(framing, Framing::Session)
            && self
                .session
                .as_ref()
                .is_some_and(|s| s.session_id.is_some());
        let mut response = self.send(Method::Post, body, framing, None)?;
        let status = response.status;
        if status == 404 && carried_session {
            return Err(Failure::SessionGone);
        }
        if !(200..300).contains(&status) {
            return Err(Failure::Error(self.http_error(response)));
        }
        let session_id = response.header("mcp-session-id").map(str::to_owned);
        let id = Value::from(id);
        let media_type = response.media_type();
        let outcome = match media_type.as_deref() {
            Some("application/json") => self.read_json_answer(&mut response, &id, method)?,
            Some("text/event-stream") => {
                let mut end = self.read_sse_answer(&mut response, &id, method)?;
                let mut resumes = 0usize;
                loop {
                    match end {
                        StreamEnd::Answer(outcome) => break outcome,
                        StreamEnd::Closed { last_event_id, retry_ms } => {
                            end = self.resume(method, &id, last_event_id, retry_ms, &mut resumes, framing)?;
                        }
                    }
                }
            }
            None if status == 202 || status == 204 => {
                return Err(McpError::protocol(format!(
                    "the server accepted {method} but sent no answer (HTTP {status})"
                ))
                .into())
            }
            other => {
                return Err(McpError::protocol(format!(
                    "unexpected content type `{}` in the answer to {method}",
                    one_line(other.unwrap_or("none"), 60)
                ))
                .into())
            }
        };
        Ok((outcome?, session_id))
    }

    /// Resumes an answer's event stream the server closed early (MCP 2025-11-25: GET with
    /// `Last-Event-ID`, after the `retry:` wait). Only inside a legacy session, only when the stream
    /// had an event id, at most [`ClientConfig::max_resumes`] times.
    fn resume(
        &self,
        method: &str,
        id: &Value,
        last_event_id: Option<String>,
        retry_ms: Option<u64>,
        resumes: &mut usize,
        framing: Framing<'_>,
    ) -> Result<StreamEnd, McpError> {
        let closed = || McpError::protocol(format!("the server closed the event stream before answering {method}"));
        let Some(last_event_id) = last_event_id else { return Err(closed()) };
        if !matches!(framing, Framing::Session) || *resumes >= self.config.max_resumes {
            return Err(closed());
        }
        *resumes += 1;
        let wait = retry_ms.unwrap_or(DEFAULT_RESUME_WAIT_MS);
        if u128::from(wait) > self.config.max_resume_wait.as_millis() {
            return Err(McpError::protocol(format!(
                "the server closed the event stream before answering {method} and asks to resume in {wait} ms, longer than this client waits"
            )));
        }
        self.log(
            LogLevel::Info,
            &format!("the event stream of {method} closed before its answer; resuming in {wait} ms"),
        );
        std::thread::sleep(std::time::Duration::from_millis(wait));
        let mut response = self.send(Method::Get, Vec::new(), Framing::Session, Some(&last_event_id))?;
        if !(200..300).contains(&response.status) {
            return Err(self.http_error(response));
        }
        if response.media_type().as_deref() != Some("text/event-stream") {
            return Err(McpError::protocol(format!(
                "the server resumed the answer to {method} without an event stream"
            )));
        }
        self.read_sse_answer(&mut response, id, method)
    }

    fn client_info(&self) -> Value {
        let mut info = json!({ "name": self.config.client_name, "version": self.config.client_version });
        if let Some(title) = &self.config.client_title {
            info["title"] = json!(title);
        }
        info
    }

    fn read_json_answer(
        &self,
        response: &mut HttpResponse,
        id: &Value,
        method: &str,
    ) -> Result<Result<Value, McpError>, McpError> {
        let bytes = response
            .read_to_end(self.config.max_response_bytes)
            .map_err(|e| self.read_error(e, method))?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|_| McpError::protocol(format!("the answer to {method} is not valid JSON")))?;
        let messages = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        for message in messages {
            if let Some(outcome) = self.handle_incoming(message, id, method)? {
                return Ok(outcome);
            }
        }
        Err(McpError::protocol(format!(
            "the JSON answer to {method} does not contain its response"
        )))
    }

    fn read_sse_answer(
        &self,
        response: &mut HttpResponse,
        id: &Value,
        method: &str,
    ) -> Result<StreamEnd, McpError> {
        let mut parser = SseParser::new(self.config.max_event_bytes);
        let mut total = 0usize;
        loop {
            let chunk = match response.body.read_chunk() {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    return Ok(StreamEnd::Closed {
                        last_event_id: parser.last_event_id().map(str::to_owned),
                        retry_ms: parser.retry_ms(),
                    })
                }
                Err(e) => return Err(e.into()),
            };
            total += chunk.len();
            if total > self.config.max_response_bytes {
                return Err(McpError::protocol(format!(
                    "the answer to {method} exceeds {} bytes",
                    self.config.max_response_bytes
                )));
            }
            let events = parser
                .feed(&chunk)
                .map_err(|e| McpError::protocol(e.to_string()))?;
            for event in events {
                if !event.is_message() {
                    self.log(
                        LogLevel::Debug,
                        &format!(
                            "skipping an SSE event of type `{}`",
                            one_line(event.event.as_deref().unwrap_or(""), 40)
                        ),
                    );
                    continue;
                }
                let value: Value = serde_json::from_str(&event.data).map_err(|_| {
                    McpError::protocol(format!(
                        "an event in the answer to {method} is not valid JSON"
                    ))
                })?;
                let messages = match value {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                for message in messages {
                    if let Some(outcome) = self.handle_incoming(message, id, method)? {
                        return Ok(StreamEnd::Answer(outcome));
                    }
                }
            }
        }
    }

    fn read_error(&self, e: ReadError, method: &str) -> McpError {
        match e {
            ReadError::Transport(t) => t.into(),
            ReadError::TooLarge { limit } => {
                McpError::protocol(format!("the answer to {method} exceeds {limit} bytes"))
            }
        }
    }

    /// Handles one message from the server. Returns the outcome when it is the response to `id`;
    /// answers server requests and logs notifications otherwise.
    fn handle_incoming(
        &self,
        message: Value,
        id: &Value,
        method: &str,
    ) -> Result<Option<Result<Value, McpError>>, McpError> {
        let Value::Object(mut object) = message else {
            return Err(McpError::protocol(format!(
                "a message in the answer to {method} is not a JSON object"
            )));
        };
        if let Some(server_method) = object.get("method") {
            let Some(server_method) = server_method.as_str() else {
                return Err(McpError::protocol(
                    "a message from the server has a non-string method",
                ));
            };
            match object.get("id") {
                Some(request_id) if !request_id.is_null() => {
                    self.answer_server_request(server_method, request_id)
                }
                _ => self.log(
                    LogLevel::Debug,
                    &format!("server notification {}", one_line(server_method, 80)),
                ),
            }
            return Ok(None);
        }
        let is_response = object.contains_key("result") || object.contains_key("error");
        if !is_response {
            return Err(McpError::protocol(format!(
                "a message in the answer to {method} is not JSON-RPC"
            )));
        }
        let ours = match object.get("id") {
            Some(v) if v == id => true,
            // An error that could not be tied to a request (e.g. a parse error) on our own stream.
            None | Some(Value::Null) => object.contains_key("error"),
            Some(_) => false,
        };
        if !ours {
            self.log(LogLevel::Debug, "ignoring a response to another request");
            return Ok(None);
        }
        if let Some(error) = object.get("error") {
            return Ok(Some(Err(parse_rpc_error(error)?)));
        }
        match object.remove("result") {
            Some(result) => Ok(Some(Ok(result))),
            None => Err(McpError::protocol(format!(
                "the response to {method} has neither result nor error"
            ))),
        }
    }

    /// Answers a request the server sent on a stream: `ping` gets `{}`, anything else -32601.
    fn answer_server_request(&self, server_method: &str, request_id: &Value) {
        let answer = if server_method == "ping" {
            json!({ "jsonrpc": "2.0", "id": request_id, "result": {} })
        } else {
            json!({ "jsonrpc": "2.0", "id": request_id, "error": { "code": -32601, "message": "Method not found" } })
        };
        self.log(
            LogLevel::Debug,
            &format!(
                "answering the server's {} request",
                one_line(server_method, 80)
            ),
        );
        if self.era() == Era::Modern {
            // 2026-07-28 has no server-to-client requests; there is no session to answer in.
            self.log(LogLevel::Warn, &format!("ignoring the server's {} request (not part of MCP 2026-07-28)", one_line(server_method, 80)));
            return;
        }
        let Ok(body) = serde_json::to_vec(&answer) else {
            return;
        };
        match self.send(Method::Post, body, Framing::Session, None) {
            Ok(response) if (200..300).contains(&response.status) => {}
            Ok(response) => self.log(
                LogLevel::Warn,
                &format!(
                    "the server refused our answer to its {} request (HTTP {})",
                    one_line(server_method, 80),
                    response.status
                ),
            ),
            Err(e) => self.log(
                LogLevel::Warn,
                &format!("could not answer the server's request: {e}"),
            ),
        }
    }

    fn send_notification(&self, method: &str, params: Option<Value>) -> Result<(), McpError> {
        let modern = self.era() == Era::Modern && self.session.is_some();
        let params = if modern { Some(protocol::with_request_meta(params, &self.client_info())) } else { params };
        let mut message = json!({ "jsonrpc": "2.0", "method": method });
        if let Some(params) = params {
            message["params"] = params;
        }
        let body = serde_json::to_vec(&message)
            .map_err(|e| McpError::protocol(format!("cannot encode {method}: {e}")))?;
        let framing = if modern { self.modern_framing(method, None, &[]) } else { Framing::Session };
        let response = self.send(Method::Post, body, framing, None)?;
        match response.status {
            202 | 204 => Ok(()),
            // Some servers answer 200 (empty or JSON); the body means nothing for a notification.
            200..=299 => {
                self.log(
                    LogLevel::Debug,
                    &format!("the server answered {method} with HTTP {}", response.status),
                );
                Ok(())
            }
            _ => Err(self.http_error(response)),
        }
    }

    /// Turns an HTTP error status into an [`McpError`], reading at most a few KiB of the body.
    fn http_error(&self, mut response: HttpResponse) -> McpError {
        let status = response.status;
        let www_authenticate = response.header_joined("www-authenticate");
        let media_type = response.media_type();
        let ratelimit = response.header("ratelimit").and_then(parse_ratelimit);
        let retry_after = response
            .header("retry-after")
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let legacy_reset = ["ratelimit-reset", "x-rate-limit-reset", "x-ratelimit-reset"]
            .iter()
            .find_map(|h| response.header(h))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9);
        let body = response.read_prefix(ERROR_BODY_PREFIX);
        let detail = summarize_error_body(media_type.as_deref(), &body);
        let rpc_error = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").filter(|e| e.is_object()).cloned())
            .and_then(|e| parse_rpc_error(&e).ok());
        let with_detail = |prefix: String| match &detail {
            Some(d) => format!("{prefix}: {d}"),
            None => prefix,
        };
        match status {
            401 => McpError::Unauthorized {
                www_authenticate,
                message: with_detail("HTTP 401".to_owned()),
            },
            403 => {
                let bearer = www_authenticate
                    .as_deref()
                    .and_then(www_authenticate::bearer);
                let body_json: Option<Value> = serde_json::from_slice(&body).ok();
                let header_says =
                    bearer.as_ref().and_then(|b| b.error.as_deref()) == Some("insufficient_scope");
                let body_says = body_json
                    .as_ref()
                    .and_then(|v| v.get("error"))
                    .and_then(Value::as_str)
                    == Some("insufficient_scope");
                if header_says || body_says {
                    let mut required = bearer.as_ref().map(|b| b.scopes()).unwrap_or_default();
                    if required.is_empty() {
                        if let Some(scope) = body_json
                            .as_ref()
                            .and_then(|v| v.get("scope"))
                            .and_then(Value::as_str)
                        {
                            required = www_authenticate::split_scopes(scope);
                        }
                    }
                    let message = if required.is_empty() {
                        "HTTP 403 insufficient_scope".to_owned()
                    } else {
                        one_line(
                            &format!("HTTP 403 insufficient_scope: needs {}", required.join(" ")),
                            MAX_MESSAGE_CHARS,
                        )
                    };
                    McpError::InsufficientScope {
                        required,
                        www_authenticate,
                        message,
                    }
                } else {
                    McpError::Http {
                        status,
                        message: detail.unwrap_or_else(|| reason_phrase(status).to_owned()),
                    }
                }
            }
            429 => {
                let retry_after_ms = retry_after
                    .or_else(|| ratelimit.and_then(|r| r.reset_secs).map(secs_to_ms))
                    .or_else(|| legacy_reset.map(secs_to_ms));
                let mut message = detail
                    .clone()
                    .unwrap_or_else(|| "too many requests".to_owned());
                if let Some(limit) = ratelimit.and_then(|r| r.limit) {
                    message.push_str(&format!(" (limit {limit} per window)"));
                }
                McpError::RateLimited {
                    retry_after_ms,
                    limit: ratelimit,
                    message: one_line(&message, MAX_MESSAGE_CHARS),
                }
            }
            // MCP 2026-07-28 answers request errors with a 4xx and a JSON-RPC error body
            // (-32022 with the versions it speaks, -32601, -32602, ...).
            400..=499 if rpc_error.is_some() => rpc_error.unwrap_or(McpError::Http { status, message: String::new() }),
            _ => McpError::Http {
                status,
                message: detail.unwrap_or_else(|| reason_phrase(status).to_owned()),
            },
        }
    }

    /// Parses one `tools/list` page into `tools`; returns the next cursor and the caching hints.
    fn parse_tools_page(&self, result: Value, tools: &mut Vec<Tool>) -> Result<Page, McpError> {
        let Value::Object(mut result) = result else {
            return Err(McpError::protocol("the tools/list result is not an object"));
        };
        let next = match result.remove("nextCursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if c.is_empty() => None,
            Some(Value::String(c)) => Some(c),
            Some(_) => {
                return Err(McpError::protocol(
                    "tools/list returned a nextCursor that is not a string",
                ))
            }
        };
        // Caching hints (2026-07-28); a malformed hint is ignored, never trusted.
        let ttl_ms = result.get("ttlMs").and_then(Value::as_u64);
        let cache_scope = match result.get("cacheScope").and_then(Value::as_str) {
            Some(s @ ("public" | "private")) => Some(s.to_owned()),
            _ => None,
        };
        let Some(Value::Array(items)) = result.remove("tools") else {
            return Err(McpError::protocol(
                "the tools/list result has no tools array",
            ));
        };
        for item in items {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .map(|n| one_line(n, 80));
            match serde_json::from_value::<Tool>(item) {
                Ok(tool) => tools.push(tool),
                Err(e) => self.log(
                    LogLevel::Warn,
                    &format!(
                        "skipping malformed tool `{}`: {}",
                        name.unwrap_or_default(),
                        one_line(&e.to_string(), 120)
                    ),
                ),
            }
        }
        Ok(Page { next, ttl_ms, cache_scope })
    }
}

/// One `tools/list` page, read.
struct Page {
    next: Option<String>,
    ttl_ms: Option<u64>,
    cache_scope: Option<String>,
}

/// The [`ServerHello`] of a legacy session.
fn hello_from_initialize(init: InitializeResult) -> ServerHello {
    ServerHello {
        protocol_version: init.protocol_version.to_string(),
        server_info: Some(init.server_info),
        capabilities: init.capabilities,
        instructions: init.instructions,
    }
}

/// ` (server <name> <version>)` for a log line, when the server named itself.
fn server_label(hello: &ServerHello) -> String {
    match &hello.server_info {
        Some(info) => format!(", server {} {}", one_line(&info.name, 60), one_line(&info.version, 30)),
        None => String::new(),
    }
}

fn parse_rpc_error(error: &Value) -> Result<McpError, McpError> {
    let code = error.get("code").and_then(|c| {
        c.as_i64()
            .or_else(|| c.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
    });
    let message = error.get("message").and_then(Value::as_str);
    match (code, message) {
        (Some(code), Some(message)) => Ok(McpError::JsonRpc {
            code,
            message: one_line(message, MAX_MESSAGE_CHARS),
            data: error.get("data").cloned(),
        }),
        _ => Err(McpError::protocol(
            "the server sent a malformed JSON-RPC error object",
        )),
    }
}

/// Parses a `tools/call` result leniently: unknown content blocks are kept as JSON.
pub fn parse_call_result(result: Value) -> Result<ToolCallResult, McpError> {
    let Value::Object(mut result) = result else {
        return Err(McpError::protocol("the tools/call result is not an object"));
    };
    let content = match result.remove("content") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match ContentBlock::deserialize(&item) {
                Ok(block) => ToolContent::Block(block),
                Err(_) => ToolContent::Other(item),
            })
            .collect(),
        Some(_) => {
            return Err(McpError::protocol(
                "the tools/call result has a content member that is not an array",
            ))
        }
    };
    let structured_content = match result.remove("structuredContent") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    };
    let is_error = match result.get("isError") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(McpError::protocol(
                "the tools/call result has an isError member that is not a boolean",
            ))
        }
    };
    Ok(ToolCallResult {
        content,
        structured_content,
        is_error,
    })
}

/// Visible ASCII only (0x21–0x7E), as the transport spec requires; it goes into a header.
fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SESSION_ID_LEN
        && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// A random first request id, so that ids stay unique within a session that outlives this instance.
fn first_request_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    1 + hasher.finish() % 1_000_000_000_000
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod modern_tests;
