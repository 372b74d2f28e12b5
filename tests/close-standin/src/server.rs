//! The HTTP server: rmcp's Streamable HTTP service at `/mcp` behind Close-style authentication, plus the
//! switches rmcp does not offer.
//!
//! What rmcp does: the MCP lifecycle, JSON-RPC framing, Streamable HTTP (POST/GET/DELETE, sessions,
//! SSE priming, `MCP-Protocol-Version` checks), `tools/list` / `tools/call` dispatch into
//! [`CloseMcp`] (a [`rmcp::ServerHandler`]).
//!
//! What is written here, because Close differs or rmcp cannot be switched at run time:
//! * two origins, like Close's `mcp.close.com` and `api.close.com`: the MCP host `http://127.0.0.1:P`
//!   (`/mcp`, the protected-resource metadata, and a copy of the authorization-server metadata as Close
//!   serves it) and the issuer `http://127.0.0.1:Q` (the authorization server, `issuer.rs` / `oauth.rs`),
//!   each its own listener;
//! * authentication, scopes, 401/400/403 bodies (`auth.rs`), put in front of rmcp as an axum middleware that
//!   stores a [`Grant`] in the request extensions; rmcp hands the request's `http::request::Parts` to the
//!   handler, which reads the grant back;
//! * a bearer token whose grant lacks `mcp.read` gets 403 `insufficient_scope` on every JSON-RPC request
//!   except the lifecycle ones (`initialize`, `server/discover`, `ping`, notifications, responses) and
//!   on no GET / DELETE —
//!   like the MCP conformance suite's step-up scenario, where `initialize` passes and `tools/list` is
//!   refused. Close's behaviour is unknown (`close-mcp.md` §2.3);
//! * the organization: a token consented for the sandbox organization reads an empty dataset
//!   ([`Dataset::sandbox`]);
//! * added latency (same middleware);
//! * fault injection ([`crate::faults`]): a second middleware, inside the authentication one,
//!   that answers POSTs itself (307, 500, 429) or reshapes rmcp's response on its way out (broken JSON,
//!   a cut stream or body, a huge or late result), after the JSON collapse described below, so it sees
//!   what the client will see;
//! * the hostile-catalog switches `ignore_scope_filter` and `lying_annotations` (in the handler);
//! * the protocol eras ([`crate::era`]): rmcp 3.11 serves the 2026-07-28 stateless era next to the
//!   2025 one (it routes a request with the 2026 `_meta` or header past the sessions, validates
//!   headers and `_meta`, answers `server/discover`, maps -32022/-32020/-32602/-32601 to HTTP
//!   400/404); the handler adds the supported versions of the `protocol` switch, the discover and
//!   `tools/list` TTL, `logging/setLevel` refused at 2026, logging only with a `_meta` log level, no
//!   server ping at 2026, and the `input_required_tool` switch; `era::gate`, inside the fault
//!   middleware, refuses the era a mode does not speak before rmcp sees the request;
//! * JSON vs SSE at run time: rmcp fixes `json_response` at construction, so stateless mode builds two
//!   services and picks one per request. In session mode rmcp always answers with SSE; in JSON mode the
//!   stand-in then reads the SSE body up to the JSON-RPC response and returns that as `application/json`;
//! * session expiry: a [`SessionManager`] wrapper remembers issued session ids; [`StandIn::expire_sessions`]
//!   marks them expired (rmcp then answers 404, and the client must re-initialize) and closes them;
//! * `notifications/message` before a `tools/call` result in SSE mode: rmcp routes logging notifications
//!   of a session to the standalone GET stream, so in session mode the wrapper prepends one to the POST's
//!   stream; in stateless mode the handler sends it through rmcp's peer. Progress notifications and the
//!   server→client ping use rmcp's peer in both cases (rmcp routes them to the request's stream).

// rmcp marks MCP logging deprecated (SEP-2577, protocol 2026-07-28); the 2025 revisions Close speaks have it.
#![allow(deprecated)]

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use http_body_util::BodyExt;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ClientJsonRpcMessage,
    ClientRequest, ContentBlock, DiscoverResult, ErrorData, Implementation,
    InitializeRequestParams, InitializeResult, InputRequest, InputRequests, InputRequiredResult,
    ListToolsResult, LoggingLevel, LoggingMessageNotificationParam, Notification,
    PaginatedRequestParams, PingRequest, ProgressNotificationParam, ProtocolVersion,
    ServerCapabilities, ServerConfig, ServerJsonRpcMessage, ServerNotification, ServerRequest,
    SetLevelRequestMethod, SetLevelRequestParams, Tool, ToolAnnotations,
};
use rmcp::service::{PeerRequestOptions, RequestContext};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId, SessionManager,
};
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::{self, AuthConfig, AuthDecision, Grant, TokenTable};
use crate::catalog::{self, AnnotationStyle, Scope};
use crate::data::{Dataset, DatasetConfig};
use crate::era;
use crate::faults::{self, FaultState, FaultTarget, Faults, RateLimitFault};
use crate::issuer;
use crate::metadata;
use crate::oauth::{
    AuthorizationServer, ConsentOrganization, IssuedToken, SANDBOX_ORGANIZATION_NAME,
};
use crate::switches::{
    ConsentMode, Counters, CountersSnapshot, OAuthCountersSnapshot, OAuthSwitches, ProtocolMode,
    ResponseMode, Switches,
};
use crate::tools;

/// Name the stand-in reports in `serverInfo`.
pub const SERVER_NAME: &str = "close-mcp-standin";
/// API key accepted when the configuration does not list any.
pub const DEFAULT_API_KEY: &str = "close-standin-key";
/// How long a `tools/call` waits for the client to answer the server's ping.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start a stand-in.
#[derive(Clone, Debug)]
pub struct StandInConfig {
    /// Valid `Close-API-Key` values. Default: [`DEFAULT_API_KEY`].
    pub api_keys: Vec<String>,
    pub dataset: DatasetConfig,
    /// Initial switch values (changeable later through the handle).
    pub switches: Switches,
    /// Sessions required (rmcp stateful mode: `initialize` issues an `Mcp-Session-Id`, later requests
    /// must carry it) or not (stateless: no session ids at all). Fixed at start. Default true.
    pub sessions_required: bool,
    /// Port on 127.0.0.1; 0 picks a free one. Default 0.
    pub port: u16,
    /// Bearer tokens to accept; share the table with whatever issues tokens (the stand-in's own
    /// authorization server puts its tokens there too). Default: a new empty table.
    pub tokens: Option<Arc<TokenTable>>,
    /// Port of the authorization server (the issuer origin) on 127.0.0.1; 0 picks a free one. Default 0.
    pub as_port: u16,
    /// Initial authorization-server switches (changeable later through the handle).
    pub oauth: OAuthSwitches,
    /// Initial fault switches (changeable later through the handle). Default: none.
    pub faults: Faults,
}

impl Default for StandInConfig {
    fn default() -> Self {
        StandInConfig {
            api_keys: vec![DEFAULT_API_KEY.to_string()],
            dataset: DatasetConfig::default(),
            switches: Switches::default(),
            sessions_required: true,
            port: 0,
            tokens: None,
            as_port: 0,
            oauth: OAuthSwitches::default(),
            faults: Faults::default(),
        }
    }
}

/// State shared by the middleware, the MCP handler and the handle.
pub(crate) struct Shared {
    dataset: Arc<Dataset>,
    /// The consent page's second organization, with no records.
    sandbox: Arc<Dataset>,
    oauth: Arc<AuthorizationServer>,
    switches: Arc<RwLock<Switches>>,
    counters: Arc<Counters>,
    tokens: Arc<TokenTable>,
    auth: AuthConfig,
    base_url: String,
    sessions_required: bool,
    faults: Arc<FaultState>,
    budget: Arc<crate::budget::BudgetState>,
    /// `requestState` values of `input_required` results not yet answered (single use).
    pending_input: Mutex<PendingInput>,
}

/// The `requestState` values the stand-in issued and still accepts.
#[derive(Default)]
struct PendingInput {
    next: u64,
    states: HashSet<String>,
}

/// At most this many `requestState` values are remembered; the oldest are forgotten first (not
/// exactly: the set is cleared when full, which a test never reaches).
const PENDING_INPUT_LIMIT: usize = 10_000;

impl Shared {
    fn switches(&self) -> Switches {
        self.switches
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The dataset of the organization the request's token was consented for.
    fn dataset_for(&self, context: &RequestContext<RoleServer>) -> &Dataset {
        let tenant = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Tenant>());
        match tenant {
            Some(Tenant(id)) if *id == self.sandbox.organization.id => &self.sandbox,
            _ => &self.dataset,
        }
    }
}

/// Does this request use the 2026-07-28 stateless era (its `_meta` version, or the version rmcp
/// recorded for it)?
fn is_2026_request(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| era::is_2026_or_later(v.as_str()))
}

/// The organization a bearer token was consented for (request extension set by the auth middleware).
#[derive(Clone, Debug)]
struct Tenant(String);

// ---------------------------------------------------------------------------------------------------
// The MCP handler
// ---------------------------------------------------------------------------------------------------

/// The rmcp server handler: Close's catalog filtered by the caller's grant, tools answered from the dataset.
#[derive(Clone)]
pub struct CloseMcp {
    shared: Arc<Shared>,
}

/// The grant the auth middleware stored; read-only if it is somehow missing.
fn grant_of(context: &RequestContext<RoleServer>) -> Grant {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Grant>())
        .cloned()
        .unwrap_or_else(|| Grant::new(Scope::Read, "anonymous"))
}

fn text_result(value: &Value, structured: bool) -> CallToolResult {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    if structured {
        result.structured_content = Some(value.clone());
    }
    result
}

fn error_result(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_string())])
}

fn logging_notification(tool: &str) -> ServerNotification {
    ServerNotification::LoggingMessageNotification(Notification::new(
        LoggingMessageNotificationParam::new(
            LoggingLevel::Info,
            serde_json::json!({ "message": format!("Running tool {tool}"), "tool": tool }),
        )
        .with_logger(SERVER_NAME),
    ))
}

impl ServerHandler for CloseMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_logging().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")).with_title("Close MCP (local stand-in)"))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
            .with_instructions("Local stand-in for Close CRM's MCP server (https://mcp.close.com/mcp) over a generated dataset.")
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Owned(era::supported_versions(self.shared.switches().protocol))
    }

    async fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        // Only2025 never gets here: the era gate answers -32601 first.
        Counters::bump(&self.shared.counters.discover);
        Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        )
        .with_ttl_ms(self.shared.switches().list_ttl_ms)
        .with_cache_scope(CacheScope::Private))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        Counters::bump(&self.shared.counters.initialize);
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // 2026-07-28 removed logging/setLevel (the level travels in each request's _meta).
        if is_2026_request(&context) {
            return Err(ErrorData::method_not_found::<SetLevelRequestMethod>());
        }
        Ok(())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Counters::bump(&self.shared.counters.tools_list);
        let grant = grant_of(&context);
        let switches = self.shared.switches();
        let cursor = request.and_then(|r| r.cursor);
        let scope = if switches.ignore_scope_filter {
            Scope::WriteDestructive
        } else {
            grant.scope
        };
        let (tools, next) = catalog::list_page_styled(
            scope,
            AnnotationStyle::from_switches(switches.annotations, switches.lying_annotations),
            switches.tools_page_size,
            cursor.as_deref(),
        )
        .map_err(|_| ErrorData::invalid_params("Invalid cursor", None))?;
        let mut tools: Vec<Tool> = tools.into_iter().map(|t| changed_tool(t, &switches)).collect();
        if next.is_none() {
            tools.extend(switches.extra_tools.iter().map(|name| extra_tool(name)));
        }
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        if is_2026_request(&context) {
            result.ttl_ms = Some(switches.list_ttl_ms);
            result.cache_scope = Some(CacheScope::Private);
        }
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let shared = &self.shared;
        let name = request.name.to_string();
        let grant = grant_of(&context);
        let spec = catalog::catalog().get(&name);
        shared
            .counters
            .count_tool_call(&name, spec.is_some_and(|s| s.is_write()));
        let switches = shared.switches();
        let sse = switches.response_mode == ResponseMode::Sse;
        let progress = context.meta.get_progress_token();
        let stateless_era = is_2026_request(&context);

        // 2025 session mode gets this notification from the session manager wrapper instead; a 2026
        // request gets it only when its _meta asks for a log level.
        let log = if stateless_era {
            context.meta.log_level().is_some()
        } else {
            !shared.sessions_required
        };
        if sse && log {
            let _ = context
                .peer
                .send_notification(logging_notification(&name))
                .await;
        }
        if switches.extra_tools.contains(&name) {
            return Ok(text_result(&serde_json::json!({ "extra_tool": name }), switches.structured_content).into());
        }
        let Some(spec) =
            spec.filter(|s| switches.ignore_scope_filter || grant.scope.includes(s.scope()))
        else {
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {}", catalog::truncate(&name, 100)),
                None,
            ));
        };
        if stateless_era && input_required_applies(&switches, &name) {
            match self.input_round(&request) {
                InputRound::Ask(result) => {
                    Counters::bump(&shared.counters.input_required_sent);
                    return Ok(CallToolResponse::InputRequired(result));
                }
                InputRound::Refuse(error) => return Err(error),
                InputRound::Answered => {}
            }
        }
        if sse {
            if let Some(token) = &progress {
                let _ = context
                    .peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), 0.0)
                            .with_total(1.0)
                            .with_message(format!("Running {name}")),
                    )
                    .await;
            }
        }

        let mut result = if spec.is_write() {
            error_result("The stand-in does not modify data: write tools are counted and refused.")
        } else {
            match catalog::validate_arguments(spec, request.arguments.as_ref()).and_then(|args| {
                tools::call_read_tool(shared.dataset_for(&context), &grant, &name, &args)
            }) {
                Ok(value) => text_result(&value, switches.structured_content),
                Err(message) => error_result(&message),
            }
        };

        // The 2026 era has no server→client requests.
        if sse && shared.sessions_required && !stateless_era && switches.server_ping_before_result {
            Counters::bump(&shared.counters.server_pings_sent);
            let ping = ServerRequest::PingRequest(PingRequest::default());
            let answer = match context
                .peer
                .send_request_with_option(ping, PeerRequestOptions::with_timeout(PING_TIMEOUT))
                .await
            {
                Ok(handle) => handle.await_response().await.map(|_| ()),
                Err(e) => Err(e),
            };
            match answer {
                Ok(()) => Counters::bump(&shared.counters.server_pings_answered),
                Err(e) => {
                    result =
                        error_result(&format!("The client did not answer the server's ping: {e}"))
                }
            }
        }
        if sse {
            if let Some(token) = &progress {
                let _ = context
                    .peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), 1.0)
                            .with_total(1.0)
                            .with_message("Done"),
                    )
                    .await;
            }
        }
        Ok(result.into())
    }
}

/// Does the `input_required_tool` switch name this tool?
fn input_required_applies(switches: &Switches, tool: &str) -> bool {
    switches
        .input_required_tool
        .as_deref()
        .is_some_and(|t| t == "*" || t == tool)
}

/// What a `tools/call` under the `input_required_tool` switch gets.
enum InputRound {
    /// The first round: an `input_required` result.
    Ask(InputRequiredResult),
    /// A retry with a `requestState` the stand-in did not issue (or already answered).
    Refuse(ErrorData),
    /// A retry with an issued `requestState` and `inputResponses`: run the tool.
    Answered,
}

/// The confirmation the `input_required` result asks for.
fn confirmation_request(tool: &str) -> Option<InputRequest> {
    serde_json::from_value(serde_json::json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": format!("Confirm running {} on your Close organization", catalog::truncate(tool, 100)),
            "requestedSchema": {
                "type": "object",
                "properties": {"confirm": {"type": "boolean", "title": "Confirm"}},
                "required": ["confirm"]
            }
        }
    }))
    .ok()
}

impl CloseMcp {
    fn input_round(&self, request: &CallToolRequestParams) -> InputRound {
        let mut pending = self
            .shared
            .pending_input
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(state) = &request.request_state {
            return if pending.states.remove(state) && request.input_responses.is_some() {
                InputRound::Answered
            } else {
                InputRound::Refuse(ErrorData::invalid_params(
                    "Unknown, used or unanswered requestState",
                    None,
                ))
            };
        }
        if pending.states.len() >= PENDING_INPUT_LIMIT {
            pending.states.clear();
        }
        pending.next = pending.next.wrapping_add(1);
        let state = format!("close-standin-mrtr-{}", pending.next);
        pending.states.insert(state.clone());
        let requests: Option<InputRequests> = confirmation_request(&request.name)
            .map(|r| [("confirm".to_string(), r)].into_iter().collect());
        InputRound::Ask(InputRequiredResult::new(requests, Some(state)))
    }
}

// ---------------------------------------------------------------------------------------------------
// Session manager wrapper: remembers sessions (for expiry) and adds the SSE logging notification
// ---------------------------------------------------------------------------------------------------

/// Wraps rmcp's [`LocalSessionManager`].
pub(crate) struct StandInSessions {
    inner: Arc<LocalSessionManager>,
    issued: Mutex<Vec<SessionId>>,
    expired: Mutex<HashSet<String>>,
    switches: Arc<RwLock<Switches>>,
    counters: Arc<Counters>,
}

impl StandInSessions {
    fn new(switches: Arc<RwLock<Switches>>, counters: Arc<Counters>) -> Self {
        StandInSessions {
            inner: Arc::new(LocalSessionManager::default()),
            issued: Mutex::new(Vec::new()),
            expired: Mutex::new(HashSet::new()),
            switches,
            counters,
        }
    }

    /// Expires every session issued so far; returns how many.
    fn expire_all(&self) -> usize {
        let ids: Vec<SessionId> =
            std::mem::take(&mut *self.issued.lock().unwrap_or_else(|e| e.into_inner()));
        {
            let mut expired = self.expired.lock().unwrap_or_else(|e| e.into_inner());
            expired.extend(ids.iter().map(|id| id.to_string()));
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let inner = self.inner.clone();
            let to_close = ids.clone();
            rt.spawn(async move {
                for id in to_close {
                    let _ = inner.close_session(&id).await;
                }
            });
        }
        ids.len()
    }

    fn is_expired(&self, id: &SessionId) -> bool {
        self.expired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id.as_ref())
    }
}

fn is_tool_call(message: &ClientJsonRpcMessage) -> Option<String> {
    match message {
        ClientJsonRpcMessage::Request(r) => match &r.request {
            ClientRequest::CallToolRequest(c) => Some(c.params.name.to_string()),
            _ => None,
        },
        _ => None,
    }
}

impl SessionManager for StandInSessions {
    type Error = <LocalSessionManager as SessionManager>::Error;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.inner.create_session().await?;
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.clone());
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        if self.is_expired(id) {
            Counters::bump(&self.counters.expired_session_hits);
            return Ok(false);
        }
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| s != id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let sse = self
            .switches
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .response_mode
            == ResponseMode::Sse;
        let prefix: Vec<ServerSseMessage> = match is_tool_call(&message) {
            Some(tool) if sse => vec![ServerSseMessage::from_message(
                ServerJsonRpcMessage::notification(logging_notification(&tool)),
            )],
            _ => vec![],
        };
        let stream = self.inner.create_stream(id, message).await?;
        Ok(futures::stream::iter(prefix).chain(stream))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }
}

// ---------------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------------

enum Transport {
    Stateful(StreamableHttpService<CloseMcp, StandInSessions>),
    Stateless {
        json: StreamableHttpService<CloseMcp, NeverSessionManager>,
        sse: StreamableHttpService<CloseMcp, NeverSessionManager>,
    },
}

struct App {
    shared: Arc<Shared>,
    transport: Transport,
}

/// Authentication, latency and counting in front of `/mcp`.
async fn guard(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let shared = &app.shared;
    Counters::bump(&shared.counters.http_requests);
    let latency = shared.switches().latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(org) = auth::organization_of(req.headers(), &shared.tokens) {
        req.extensions_mut().insert(Tenant(org));
    }
    match auth::authenticate(req.headers(), &shared.auth) {
        AuthDecision::Granted(grant) => {
            req.extensions_mut().insert(grant);
            next.run(req).await
        }
        AuthDecision::InsufficientScope(grant) => {
            let (mut req, lifecycle) = lifecycle_only(req).await;
            if lifecycle {
                req.extensions_mut().insert(grant);
                next.run(req).await
            } else {
                Counters::bump(&shared.counters.insufficient_scope);
                auth::insufficient_scope_response(&shared.base_url)
            }
        }
        AuthDecision::Unauthorized(description) => {
            Counters::bump(&shared.counters.unauthorized);
            auth::unauthorized_response(description, &shared.base_url)
        }
        AuthDecision::InvalidScope(value) => auth::invalid_scope_response(&value),
    }
}

/// Largest POST body the insufficient-scope check reads.
const LIFECYCLE_BODY_LIMIT: usize = 4 << 20;

/// Does the request carry only lifecycle messages (`initialize`, `ping`, notifications, responses), or
/// no JSON-RPC at all (GET, DELETE)? Returns the request rebuilt around the body it had to read.
async fn lifecycle_only(req: Request) -> (Request, bool) {
    if req.method() != Method::POST {
        return (req, true);
    }
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, LIFECYCLE_BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return (Request::from_parts(parts, Body::empty()), false),
    };
    let lifecycle = is_lifecycle_body(&bytes);
    (Request::from_parts(parts, Body::from(bytes)), lifecycle)
}

fn is_lifecycle_body(body: &[u8]) -> bool {
    fn lifecycle(message: &Value) -> bool {
        match message.get("method").and_then(Value::as_str) {
            None => message.get("method").is_none() && message.get("id").is_some(),
            Some(m) => {
                m == "initialize"
                    || m == "server/discover"
                    || m == "ping"
                    || m.starts_with("notifications/")
            }
        }
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(batch)) => !batch.is_empty() && batch.iter().all(lifecycle),
        Ok(message) => lifecycle(&message),
        Err(_) => false,
    }
}

async fn mcp_endpoint(State(app): State<Arc<App>>, req: Request) -> Response {
    let is_post = req.method() == Method::POST;
    let switches = app.shared.switches();
    let mode = switches.response_mode;
    let req = match era::gate(req, &switches, &app.shared.counters).await {
        Ok(req) => req,
        Err(refusal) => return refusal,
    };
    match &app.transport {
        Transport::Stateful(service) => {
            let response = service.handle(req).await;
            let is_sse = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if is_post
                && mode == ResponseMode::Json
                && is_sse
                && response.status() == StatusCode::OK
            {
                collapse_sse_to_json(response).await
            } else {
                response.map(Body::new)
            }
        }
        Transport::Stateless { json, sse } => {
            let service = if mode == ResponseMode::Json {
                json
            } else {
                sse
            };
            service.handle(req).await.map(Body::new)
        }
    }
}

/// The JSON-RPC message in one SSE event's data, if it is a response or an error.
fn response_in_event(event: &str) -> Option<String> {
    let data: Vec<&str> = event
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return None;
    }
    let data = data.join("\n");
    let value: Value = serde_json::from_str(&data).ok()?;
    let is_response = value.get("id").is_some()
        && (value.get("result").is_some() || value.get("error").is_some())
        && value.get("method").is_none();
    is_response.then_some(data)
}

/// Reads an rmcp SSE reply until the JSON-RPC response and returns it as `application/json`, keeping
/// the other headers (notably `Mcp-Session-Id`).
async fn collapse_sse_to_json(
    response: http::Response<
        http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>,
    >,
) -> Response {
    let (mut parts, mut body) = response.into_parts();
    let mut buffer = String::new();
    let mut found = None;
    'read: while let Some(frame) = body.frame().await {
        let Ok(frame) = frame;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.push_str(&String::from_utf8_lossy(&data));
        let normalized = buffer.replace("\r\n", "\n").replace('\r', "\n");
        buffer = normalized;
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(json) = response_in_event(&event) {
                found = Some(json);
                break 'read;
            }
        }
    }
    let Some(json) = found else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "stand-in: the SSE stream ended without a JSON-RPC response",
        )
            .into_response();
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CACHE_CONTROL);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json))
}

async fn protected_resource(State(app): State<Arc<App>>) -> Response {
    let shared = &app.shared;
    Json(metadata::protected_resource(
        &shared.base_url,
        shared.oauth.issuer(),
        &shared.oauth.switches(),
    ))
    .into_response()
}

/// Close serves the authorization server's metadata from the MCP host too (`close-mcp.md` §2.1).
async fn authorization_server_metadata(State(app): State<Arc<App>>) -> Response {
    let oauth = &app.shared.oauth;
    issuer::json_response(
        StatusCode::OK,
        &metadata::authorization_server(oauth.issuer(), &oauth.switches()),
    )
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

fn rmcp_config(ct: &CancellationToken, stateful: bool, json: bool) -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default()
        .with_legacy_session_mode(stateful)
        .with_json_response(json)
        .with_cancellation_token(ct.clone())
}

/// A listed tool with the change [`Switches::tool_changes`] names for it, if any.
fn changed_tool(mut tool: Tool, switches: &Switches) -> Tool {
    let Some(change) = switches.tool_changes.get(tool.name.as_ref()) else { return tool };
    if let Some(d) = &change.description {
        tool.description = Some(d.clone().into());
    }
    if let Some(p) = &change.add_property {
        let mut schema = (*tool.input_schema).clone();
        if let Some(serde_json::Value::Object(props)) = schema.get_mut("properties") {
            props.insert(p.clone(), serde_json::json!({ "type": "string", "description": "Free text." }));
        } else {
            schema.insert("properties".into(), serde_json::json!({ p.clone(): { "type": "string" } }));
        }
        tool.input_schema = std::sync::Arc::new(schema);
    }
    if let Some(r) = change.read_only_hint {
        let mut a = tool.annotations.clone().unwrap_or_default();
        a.read_only_hint = Some(r);
        tool.annotations = Some(a);
    }
    tool
}

/// An extra read tool ([`Switches::extra_tools`]).
fn extra_tool(name: &str) -> Tool {
    let schema = serde_json::json!({ "type": "object", "properties": {} });
    let serde_json::Value::Object(schema) = schema else { unreachable!() };
    let mut tool = Tool::new(name.to_string(), format!("A read tool the vendor added: {name}."), std::sync::Arc::new(schema));
    tool.annotations = Some(ToolAnnotations::new().read_only(true));
    tool
}

// ---------------------------------------------------------------------------------------------------
// The handle
// ---------------------------------------------------------------------------------------------------

/// A running stand-in. Dropping it stops the server too; [`StandIn::shutdown`] waits for that.
pub struct StandIn {
    shared: Arc<Shared>,
    sessions: Option<Arc<StandInSessions>>,
    addr: SocketAddr,
    as_addr: SocketAddr,
    ct: CancellationToken,
    task: Option<JoinHandle<()>>,
    as_task: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Generates the dataset, binds `127.0.0.1:<config.port>` (MCP) and `127.0.0.1:<config.as_port>`
    /// (authorization server) and serves until shut down.
    pub async fn start(config: StandInConfig) -> anyhow::Result<StandIn> {
        let dataset = Arc::new(Dataset::generate(config.dataset));
        let sandbox = Arc::new(dataset.sandbox(SANDBOX_ORGANIZATION_NAME));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let as_listener = tokio::net::TcpListener::bind(("127.0.0.1", config.as_port))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot bind the authorization server on 127.0.0.1:{}: {e}",
                    config.as_port
                )
            })?;
        let as_addr = as_listener.local_addr()?;
        let base_url = format!("http://127.0.0.1:{}", addr.port());
        let issuer = format!("http://127.0.0.1:{}", as_addr.port());
        let switches = Arc::new(RwLock::new(config.switches.clone()));
        let counters = Arc::new(Counters::default());
        let tokens = config.tokens.clone().unwrap_or_default();
        let api_keys = if config.api_keys.is_empty() {
            vec![DEFAULT_API_KEY.to_string()]
        } else {
            config.api_keys.clone()
        };
        let user_id = dataset
            .users
            .first()
            .map(|u| u.id.clone())
            .unwrap_or_default();
        let oauth = Arc::new(AuthorizationServer::new(
            issuer,
            metadata::resource_identifier(&base_url),
            user_id.clone(),
            vec![
                ConsentOrganization {
                    id: dataset.organization.id.clone(),
                    name: dataset.organization.name.clone(),
                },
                ConsentOrganization {
                    id: sandbox.organization.id.clone(),
                    name: sandbox.organization.name.clone(),
                },
            ],
            tokens.clone(),
            config.oauth.clone(),
        ));
        let shared = Arc::new(Shared {
            auth: AuthConfig {
                api_keys,
                api_key_principal: user_id,
                tokens: tokens.clone(),
            },
            dataset,
            sandbox,
            oauth: oauth.clone(),
            switches: switches.clone(),
            counters: counters.clone(),
            tokens,
            base_url,
            sessions_required: config.sessions_required,
            faults: Arc::new(FaultState::new(config.faults.clone(), counters.clone())),
            budget: Arc::default(),
            pending_input: Mutex::new(PendingInput::default()),
        });
        let ct = CancellationToken::new();
        let handler = CloseMcp {
            shared: shared.clone(),
        };
        let factory = move || Ok(handler.clone());
        let (transport, sessions) = if config.sessions_required {
            let sessions = Arc::new(StandInSessions::new(switches, counters));
            (
                Transport::Stateful(StreamableHttpService::new(
                    factory,
                    sessions.clone(),
                    rmcp_config(&ct, true, false),
                )),
                Some(sessions),
            )
        } else {
            let never = Arc::new(NeverSessionManager::default());
            let json = StreamableHttpService::new(
                factory.clone(),
                never.clone(),
                rmcp_config(&ct, false, true),
            );
            let sse = StreamableHttpService::new(factory, never, rmcp_config(&ct, false, false));
            (Transport::Stateless { json, sse }, None)
        };
        let app = Arc::new(App {
            shared: shared.clone(),
            transport,
        });
        let router = Router::new()
            .route(
                "/mcp",
                any(mcp_endpoint)
                    .layer(middleware::from_fn_with_state(
                        shared.faults.clone(),
                        faults::inject,
                    ))
                    .layer(middleware::from_fn_with_state(
                        shared.budget.clone(),
                        crate::budget::enforce,
                    ))
                    .layer(middleware::from_fn_with_state(app.clone(), guard)),
            )
            .route(
                "/.well-known/oauth-protected-resource",
                get(protected_resource),
            )
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(protected_resource),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                get(authorization_server_metadata),
            )
            .fallback(not_found)
            .with_state(app);
        let rest = Arc::new(crate::rest::Rest {
            auth: shared.auth.clone(),
            counters: shared.counters.clone(),
            leads: shared.dataset.leads.iter().map(|l| (l.id.clone(), l.name.clone())).collect(),
        });
        let router = router.merge(crate::rest::router(rest.clone()));
        let serve_ct = ct.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { serve_ct.cancelled().await })
                .await;
        });
        let as_router = issuer::router(oauth).merge(crate::rest::router(rest));
        let as_ct = ct.clone();
        let as_task = tokio::spawn(async move {
            let _ = axum::serve(as_listener, as_router)
                .with_graceful_shutdown(async move { as_ct.cancelled().await })
                .await;
        });
        Ok(StandIn {
            shared,
            sessions,
            addr,
            as_addr,
            ct,
            task: Some(task),
            as_task: Some(as_task),
        })
    }

    /// `http://127.0.0.1:<port>/mcp`
    pub fn url(&self) -> String {
        format!("{}/mcp", self.shared.base_url)
    }
    /// `http://127.0.0.1:<port>` (no trailing slash): the MCP host.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The dataset the server answers from.
    pub fn dataset(&self) -> &Dataset {
        &self.shared.dataset
    }
    pub fn dataset_arc(&self) -> Arc<Dataset> {
        self.shared.dataset.clone()
    }
    /// The valid API keys.
    pub fn api_keys(&self) -> &[String] {
        &self.shared.auth.api_keys
    }
    /// The first valid API key.
    pub fn api_key(&self) -> &str {
        self.shared
            .auth
            .api_keys
            .first()
            .map(String::as_str)
            .unwrap_or(DEFAULT_API_KEY)
    }
    pub fn sessions_required(&self) -> bool {
        self.shared.sessions_required
    }

    /// Current switches.
    pub fn switches(&self) -> Switches {
        self.shared.switches()
    }
    /// Replaces all switches at once.
    pub fn set_switches(&self, switches: Switches) {
        *self
            .shared
            .switches
            .write()
            .unwrap_or_else(|e| e.into_inner()) = switches;
    }
    fn update(&self, f: impl FnOnce(&mut Switches)) {
        f(&mut self
            .shared
            .switches
            .write()
            .unwrap_or_else(|e| e.into_inner()));
    }
    pub fn set_response_mode(&self, mode: ResponseMode) {
        self.update(|s| s.response_mode = mode);
    }
    /// `None` (or `Some(0)`) = all tools in one page.
    pub fn set_tools_page_size(&self, size: Option<usize>) {
        self.update(|s| s.tools_page_size = size);
    }
    pub fn set_latency_ms(&self, ms: u64) {
        self.update(|s| s.latency_ms = ms);
    }
    pub fn set_annotations(&self, on: bool) {
        self.update(|s| s.annotations = on);
    }
    pub fn set_structured_content(&self, on: bool) {
        self.update(|s| s.structured_content = on);
    }
    pub fn set_server_ping_before_result(&self, on: bool) {
        self.update(|s| s.server_ping_before_result = on);
    }
    /// A hostile server: list all 116 tools and accept write-tool calls whatever the granted scope.
    pub fn set_ignore_scope_filter(&self, on: bool) {
        self.update(|s| s.ignore_scope_filter = on);
    }
    /// A hostile server: annotate every tool `readOnlyHint: true, destructiveHint: false`.
    pub fn set_lying_annotations(&self, on: bool) {
        self.update(|s| s.lying_annotations = on);
    }
    /// Which protocol eras are spoken (see [`crate::era`]); applies to requests that arrive afterwards
    /// (2025 sessions opened before `Only2026` keep their id but every request on them is refused).
    pub fn set_protocol(&self, mode: ProtocolMode) {
        self.update(|s| s.protocol = mode);
    }
    /// `ttlMs` of 2026-07-28 `tools/list` and `server/discover` results.
    pub fn set_list_ttl_ms(&self, ttl_ms: u64) {
        self.update(|s| s.list_ttl_ms = ttl_ms);
    }
    /// Answer 2026-07-28 calls of `tool` (`"*"`: any tool) with `resultType: "input_required"`
    /// (`None` = off).
    pub fn set_input_required_tool(&self, tool: Option<String>) {
        self.update(|s| s.input_required_tool = tool);
    }
    /// List `tool` with a changed definition from now on (`None`: as the catalog has it).
    pub fn set_tool_change(&self, tool: &str, change: Option<crate::switches::ToolChange>) {
        self.update(|s| match change {
            Some(c) => {
                s.tool_changes.insert(tool.to_string(), c);
            }
            None => {
                s.tool_changes.remove(tool);
            }
        });
    }
    /// Add a read tool to the listing (after the catalog's).
    pub fn add_extra_tool(&self, tool: &str) {
        self.update(|s| s.extra_tools.push(tool.to_string()));
    }

    // ---- faults (see `crate::faults`) -----------------------------------------------------------

    /// Current fault switches (the rate limit's `times` is what is left of it).
    pub fn faults(&self) -> Faults {
        self.shared.faults.get()
    }
    /// Replaces all fault switches at once (restarting the `fail_every_nth` count).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults.update(true, |f| *f = faults);
    }
    /// Turns every fault off.
    pub fn clear_faults(&self) {
        self.set_faults(Faults::default());
    }
    pub fn set_malformed_json(&self, on: bool) {
        self.shared.faults.update(false, |f| f.malformed_json = on);
    }
    pub fn set_truncated_sse(&self, on: bool) {
        self.shared.faults.update(false, |f| f.truncated_sse = on);
    }
    /// Which requests `malformed_json`, `truncated_sse` and `slow_ms` hit.
    pub fn set_fault_target(&self, target: FaultTarget) {
        self.shared.faults.update(false, |f| f.target = target);
    }
    /// Every Nth POST from now on gets HTTP 500 (`None` or `Some(0)` = off).
    pub fn set_fail_every_nth(&self, nth: Option<u32>) {
        self.shared.faults.update(true, |f| f.fail_every_nth = nth);
    }
    /// Keep a rate budget on `POST /mcp` (`None` = off; see [`crate::budget`]). Setting it starts
    /// its counts afresh.
    pub fn set_rate_budget(&self, budget: Option<crate::budget::RateBudget>) {
        self.shared.budget.set(budget);
    }
    /// What the rate budget admitted and refused since it was set.
    pub fn rate_budget_counts(&self) -> crate::budget::BudgetCounts {
        self.shared.budget.counts()
    }
    /// The next `times` `tools/call` requests get HTTP 429 (`None` = off).
    pub fn set_rate_limit(&self, rate_limit: Option<RateLimitFault>) {
        self.shared
            .faults
            .update(false, |f| f.rate_limit = rate_limit);
    }
    /// Add a text block of that many bytes to `tools/call` results (capped at
    /// [`faults::HUGE_RESULT_MAX_BYTES`]; `None` = off).
    pub fn set_huge_result_bytes(&self, bytes: Option<u64>) {
        self.shared
            .faults
            .update(false, |f| f.huge_result_bytes = bytes);
    }
    /// Hold the response body (SSE: the response event) back that long after the headers.
    pub fn set_slow_ms(&self, ms: Option<u64>) {
        self.shared.faults.update(false, |f| f.slow_ms = ms);
    }
    /// Answer every POST `307 Temporary Redirect` to `url` (`None` = off).
    pub fn set_redirect_to(&self, url: Option<String>) {
        self.shared.faults.update(false, |f| f.redirect_to = url);
    }

    /// Makes every session issued so far answer HTTP 404 (the client must re-initialize). Returns how
    /// many sessions were expired; 0 in stateless mode.
    pub fn expire_sessions(&self) -> usize {
        self.sessions.as_ref().map(|s| s.expire_all()).unwrap_or(0)
    }

    pub fn counters(&self) -> CountersSnapshot {
        self.shared.counters.snapshot()
    }
    /// Resets the MCP counters and the authorization-server counters.
    pub fn reset_counters(&self) {
        self.shared.counters.reset();
        self.shared.oauth.reset_counters();
    }

    /// The bearer-token table (shared with whatever issues tokens).
    pub fn tokens(&self) -> Arc<TokenTable> {
        self.shared.tokens.clone()
    }
    /// Accept `Authorization: Bearer <token>` with `grant` from now on.
    pub fn insert_token(&self, token: impl Into<String>, grant: Grant) {
        self.shared.tokens.insert(token, grant);
    }
    pub fn revoke_token(&self, token: &str) {
        self.shared.tokens.remove(token);
    }

    // ---- the authorization server ---------------------------------------------------------------

    /// The authorization server's issuer, `http://127.0.0.1:<as_port>` (no trailing slash).
    pub fn issuer_url(&self) -> String {
        self.shared.oauth.issuer().to_string()
    }
    /// Base URL of the authorization server's origin (the same string as [`StandIn::issuer_url`]; the
    /// endpoints are under it, see [`crate::metadata`]).
    pub fn as_base_url(&self) -> String {
        self.issuer_url()
    }
    pub fn as_port(&self) -> u16 {
        self.as_addr.port()
    }
    pub fn as_addr(&self) -> SocketAddr {
        self.as_addr
    }
    /// The protected resource's identifier: `http://127.0.0.1:<port>/` (with the slash, like Close's
    /// `https://mcp.close.com/`); the value `resource` must have at the authorization server.
    pub fn resource_url(&self) -> String {
        metadata::resource_identifier(&self.shared.base_url)
    }
    /// `<base_url>/.well-known/oauth-protected-resource`, the URL in the 401 challenge.
    pub fn resource_metadata_url(&self) -> String {
        auth::resource_metadata_url(&self.shared.base_url)
    }
    /// The authorization endpoint, `<issuer>/oauth2/authorize/`.
    pub fn authorization_endpoint(&self) -> String {
        format!("{}{}", self.issuer_url(), metadata::AUTHORIZE_PATH)
    }
    /// The token endpoint, `<issuer>/oauth2/token/`.
    pub fn token_endpoint(&self) -> String {
        format!("{}{}", self.issuer_url(), metadata::TOKEN_PATH)
    }
    /// The registration endpoint, `<issuer>/oauth2/register/`.
    pub fn registration_endpoint(&self) -> String {
        format!("{}{}", self.issuer_url(), metadata::REGISTER_PATH)
    }
    /// The revocation endpoint, `<issuer>/oauth2/revoke/`.
    pub fn revocation_endpoint(&self) -> String {
        format!("{}{}", self.issuer_url(), metadata::REVOKE_PATH)
    }
    /// The organizations offered on the consent page: the dataset's, then "Northwind Sandbox".
    pub fn consent_organizations(&self) -> Vec<ConsentOrganization> {
        self.shared.oauth.organizations().to_vec()
    }
    /// The sandbox organization's (empty) dataset.
    pub fn sandbox_dataset(&self) -> &Dataset {
        &self.shared.sandbox
    }

    /// Current authorization-server switches.
    pub fn oauth_switches(&self) -> OAuthSwitches {
        self.shared.oauth.switches()
    }
    /// Replaces all authorization-server switches at once.
    pub fn set_oauth_switches(&self, switches: OAuthSwitches) {
        self.shared.oauth.update_switches(|s| *s = switches);
    }
    pub fn set_consent(&self, mode: ConsentMode) {
        self.shared.oauth.update_switches(|s| s.consent = mode);
    }
    pub fn set_access_token_ttl_secs(&self, secs: u64) {
        self.shared
            .oauth
            .update_switches(|s| s.access_token_ttl_secs = secs);
    }
    pub fn set_code_ttl_secs(&self, secs: u64) {
        self.shared
            .oauth
            .update_switches(|s| s.code_ttl_secs = secs);
    }
    pub fn set_grant_without_read(&self, on: bool) {
        self.shared
            .oauth
            .update_switches(|s| s.grant_without_read = on);
    }
    pub fn set_advertise_s256(&self, on: bool) {
        self.shared.oauth.update_switches(|s| s.advertise_s256 = on);
    }
    pub fn set_offline_access_supported(&self, on: bool) {
        self.shared
            .oauth
            .update_switches(|s| s.offline_access_supported = on);
    }
    pub fn set_resource_required(&self, on: bool) {
        self.shared
            .oauth
            .update_switches(|s| s.resource_required = on);
    }
    pub fn set_prm_issuer_trailing_slash(&self, on: bool) {
        self.shared
            .oauth
            .update_switches(|s| s.prm_issuer_trailing_slash = on);
    }

    /// The user revokes the app in Close: every access and refresh token the authorization server
    /// issued dies (tokens put into the table by hand stay), and so do unexchanged codes and open
    /// consent pages. Returns how many live grants were revoked.
    pub fn revoke_all_grants(&self) -> usize {
        self.shared.oauth.revoke_all()
    }
    pub fn oauth_counters(&self) -> OAuthCountersSnapshot {
        self.shared.oauth.counters()
    }
    /// Resets the authorization-server counters only ([`StandIn::reset_counters`] resets both).
    pub fn reset_oauth_counters(&self) {
        self.shared.oauth.reset_counters();
    }
    /// Registered OAuth clients.
    pub fn registered_clients(&self) -> usize {
        self.shared.oauth.registered_clients()
    }
    /// Grants whose current refresh token is usable (one per live grant with `offline_access`).
    pub fn live_refresh_tokens(&self) -> usize {
        self.shared.oauth.live_refresh_tokens()
    }
    /// Access tokens issued by the authorization server that are unexpired and unrevoked.
    pub fn live_access_tokens(&self) -> usize {
        self.shared.oauth.live_access_tokens()
    }
    /// Is `token` usable now: an access token accepted by the MCP endpoint's table (unexpired, not
    /// revoked; hand-inserted ones included), or the current refresh token of a live grant?
    pub fn is_token_active(&self, token: &str) -> bool {
        match self.shared.oauth.token_info(token) {
            Some(info) => info.active,
            None => matches!(
                self.shared.tokens.lookup(token),
                auth::TokenStatus::Active(_)
            ),
        }
    }
    /// What the authorization server knows about a token it issued.
    pub fn token_info(&self, token: &str) -> Option<IssuedToken> {
        self.shared.oauth.token_info(token)
    }

    /// Stops both servers and waits (up to 5 s each) for them to finish.
    pub async fn shutdown(mut self) {
        self.ct.cancel();
        for task in [self.task.take(), self.as_task.take()]
            .into_iter()
            .flatten()
        {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.ct.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sse_event_with_a_response_is_recognised() {
        assert_eq!(response_in_event("id: 0\nretry: 3000\ndata: \n\n"), None);
        assert_eq!(response_in_event("data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n"), None);
        let r = response_in_event(
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
        );
        assert_eq!(
            r.as_deref(),
            Some("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}")
        );
    }

    #[test]
    fn only_lifecycle_messages_pass_without_mcp_read() {
        let yes: [&[u8]; 6] = [
            br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#,
            br#"{"jsonrpc":"2.0","id":0,"method":"server/discover","params":{}}"#,
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            br#"[{"jsonrpc":"2.0","method":"notifications/cancelled","params":{}}]"#,
        ];
        for body in yes {
            assert!(is_lifecycle_body(body), "{}", String::from_utf8_lossy(body));
        }
        let no: [&[u8]; 5] = [
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            br#"[{"jsonrpc":"2.0","id":0,"method":"initialize"},{"jsonrpc":"2.0","id":1,"method":"tools/call"}]"#,
            b"[]",
            b"not json",
            br#"{"jsonrpc":"2.0","method":7,"id":1}"#,
        ];
        for body in no {
            assert!(
                !is_lifecycle_body(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
