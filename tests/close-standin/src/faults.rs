//! Fault injection: a misbehaving or hostile Close, to test that the connector and the host fail safely.
//!
//! Nothing here imitates a documented behaviour of Close. Close's REST API does answer 429 with a single
//! IETF-draft `RateLimit: limit=…, remaining=…, reset=…` header (`close-mcp.md` §5), and the rate-limit
//! fault copies that header; whether `mcp.close.com` passes such 429s through to MCP clients is unknown
//! (§6), so the body is a stand-in guess in the Python `json.dumps` spacing of Close's other errors
//! (`{"error": "rate_limited", …}`). Everything else is a plain fault of the kinds a proxy, a broken
//! deployment or a hostile server produces.
//!
//! The switches ([`Faults`]) are changed at run time through the `set_*` methods on
//! [`StandIn`](crate::StandIn) or given in [`StandInConfig::faults`](crate::StandInConfig::faults). They
//! act on `POST /mcp` only (GET and DELETE are untouched), after authentication and the `latency_ms`
//! delay: a request without valid credentials still gets Close's 401, so OAuth discovery keeps working
//! while the faults are on. In order:
//!
//! 1. [`Faults::redirect_to`]: every POST is answered `307 Temporary Redirect`, `Location: <url>`, empty
//!    body.
//! 2. [`Faults::fail_every_nth`]: every Nth POST (counted from when the switch was set, whatever the
//!    JSON-RPC method, notifications included) is answered HTTP 500,
//!    `{"error": "internal_error", "error_description": "…"}`.
//! 3. [`Faults::rate_limit`]: the next `times` `tools/call` POSTs are answered HTTP 429 with
//!    `RateLimit: limit=<limit>, remaining=0, reset=<reset_secs>`, `Retry-After: <reset_secs>` and
//!    `{"error": "rate_limited", "error_description": "…"}`. The switch counts down: each 429 decrements
//!    `times`, and at 0 the switch turns itself off.
//!
//! A `tools/call` of a write tool that one of these three answers in the handler's place still counts in
//! [`CountersSnapshot::write_tool_calls`](crate::CountersSnapshot::write_tool_calls), so a test that
//! the host never sends a write call holds whatever fault is on.
//!
//! The other faults reshape the response to a JSON-RPC request (never a 202 to a notification, never an
//! error status), in both response modes and with or without sessions. In JSON mode "the response" is
//! the `application/json` body; in SSE mode it is the event whose data is the JSON-RPC response (the
//! priming event, notifications and server requests before it pass untouched). The first three apply
//! only to requests chosen by [`Faults::target`]; when several apply, the first of this list wins:
//!
//! 4. [`Faults::truncated_sse`]: SSE: the stream ends cleanly (final chunk, `Connection: close`) right
//!    before the response event. JSON: `Content-Length` announces the whole body, the first half is sent,
//!    then the connection is closed.
//! 5. [`Faults::malformed_json`]: the response text is replaced by its first half (cut at a character
//!    boundary), which stops mid-object and so is never valid JSON. JSON: that is the whole body (with a
//!    matching `Content-Length`). SSE: that is the event's `data:`.
//! 6. [`Faults::huge_result_bytes`] (`tools/call` results only, whatever the target): the result's
//!    `content` gets one more text block of exactly that many filler bytes (ASCII, nothing to escape),
//!    generated lazily as the client reads; the body is chunked (no `Content-Length`), so a size cap has
//!    to cut the stream while it flows. Capped at [`HUGE_RESULT_MAX_BYTES`].
//!
//! 7. [`Faults::slow_ms`] adds to any of them: the status and headers go out at once, and the JSON body
//!    (or, in SSE mode, the response event, after the events before it) follows that much later, the
//!    connection held open meanwhile. `latency_ms` instead delays before the request is handled.
//!
//! Every fault sent is counted per kind in [`FaultCountersSnapshot`]
//! ([`CountersSnapshot::faults_injected`](crate::CountersSnapshot::faults_injected)).
//!
//! The hostile-catalog switches (`ignore_scope_filter`, `lying_annotations`) live in
//! [`Switches`](crate::Switches), since the MCP handler applies them.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::auth::python_json;
use crate::catalog;
use crate::switches::Counters;

/// Largest [`Faults::huge_result_bytes`] honoured (1 GiB); larger values are capped to it.
pub const HUGE_RESULT_MAX_BYTES: u64 = 1 << 30;
/// Largest request body read while a fault is on (16 MiB); a larger one is answered 413.
pub const FAULT_REQUEST_BODY_LIMIT: usize = 16 << 20;
/// How long a half-sent body waits before the connection is closed (so the half reaches the client).
const FLUSH_PAUSE: Duration = Duration::from_millis(20);
/// Size of the chunks the huge result is streamed in.
const FILLER_CHUNK: usize = 64 << 10;

/// Which requests the response-shaping faults (`truncated_sse`, `malformed_json`, `slow_ms`) hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FaultTarget {
    /// Every JSON-RPC request, `initialize` included. Default.
    #[default]
    All,
    /// `tools/call` only (a client can still initialize and list tools).
    ToolsCall,
    /// `tools/list` only.
    ToolsList,
}

impl FaultTarget {
    fn matches(self, incoming: &Incoming) -> bool {
        match self {
            FaultTarget::All => true,
            FaultTarget::ToolsCall => incoming.has_method("tools/call"),
            FaultTarget::ToolsList => incoming.has_method("tools/list"),
        }
    }
}

impl fmt::Display for FaultTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultTarget::All => "all",
            FaultTarget::ToolsCall => "tools_call",
            FaultTarget::ToolsList => "tools_list",
        })
    }
}

impl FromStr for FaultTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '/'], "_")
            .as_str()
        {
            "all" => Ok(FaultTarget::All),
            "tools_call" => Ok(FaultTarget::ToolsCall),
            "tools_list" => Ok(FaultTarget::ToolsList),
            other => Err(format!(
                "unknown fault target '{}' (expected all, tools_call or tools_list)",
                catalog::truncate(other, 40)
            )),
        }
    }
}

/// HTTP 429 for the next `times` `tools/call` requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitFault {
    /// `limit=` of the `RateLimit` header.
    pub limit: u32,
    /// `reset=` of the `RateLimit` header and the `Retry-After` value, in seconds.
    pub reset_secs: u32,
    /// How many `tools/call` requests still get 429 (counts down; 0 = off).
    pub times: u32,
}

impl RateLimitFault {
    pub fn new(limit: u32, reset_secs: u32, times: u32) -> Self {
        RateLimitFault {
            limit,
            reset_secs,
            times,
        }
    }
}

/// Fault switches for `POST /mcp` (all off by default). See the [module docs](self) for what each sends.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Faults {
    /// Replace the JSON-RPC response (JSON body or SSE event data) by syntactically broken JSON.
    pub malformed_json: bool,
    /// End the SSE stream before the response event (JSON mode: close the connection half-way through
    /// the body).
    pub truncated_sse: bool,
    /// Which requests `malformed_json`, `truncated_sse` and `slow_ms` hit. Default all.
    pub target: FaultTarget,
    /// Answer every Nth POST HTTP 500 (`None` or `Some(0)` = off).
    pub fail_every_nth: Option<u32>,
    /// Answer the next `times` `tools/call` requests HTTP 429.
    pub rate_limit: Option<RateLimitFault>,
    /// Add a text block of this many bytes to every `tools/call` result (capped at
    /// [`HUGE_RESULT_MAX_BYTES`]).
    pub huge_result_bytes: Option<u64>,
    /// Hold the response body (SSE: the response event) back this long after the headers (`None` or
    /// `Some(0)` = off).
    pub slow_ms: Option<u64>,
    /// Answer every POST `307 Temporary Redirect` to this URL.
    pub redirect_to: Option<String>,
}

impl Faults {
    /// No fault on (the default).
    pub fn none() -> Self {
        Faults::default()
    }

    /// Is any fault on?
    pub fn any(&self) -> bool {
        let mut normalized = self.clone();
        normalized.normalize();
        normalized.target = FaultTarget::All;
        normalized != Faults::default()
    }

    /// Turns the "off" spellings into `None` and caps the huge result.
    fn normalize(&mut self) {
        if self.fail_every_nth == Some(0) {
            self.fail_every_nth = None;
        }
        if self.rate_limit.is_some_and(|r| r.times == 0) {
            self.rate_limit = None;
        }
        if let Some(n) = &mut self.huge_result_bytes {
            *n = (*n).min(HUGE_RESULT_MAX_BYTES);
        }
        if self.slow_ms == Some(0) {
            self.slow_ms = None;
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------------------------------

/// Faults sent, per kind (atomic; part of [`Counters`]).
#[derive(Debug, Default)]
pub struct FaultCounters {
    malformed_json: AtomicU64,
    truncated: AtomicU64,
    internal_errors: AtomicU64,
    rate_limited: AtomicU64,
    huge_results: AtomicU64,
    slowed: AtomicU64,
    redirects: AtomicU64,
}

/// How many faults of each kind were sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCountersSnapshot {
    /// Responses replaced by broken JSON.
    pub malformed_json: u64,
    /// Responses cut off (SSE stream ended before the response event, or JSON body half sent).
    pub truncated: u64,
    /// HTTP 500s from `fail_every_nth`.
    pub internal_errors: u64,
    /// HTTP 429s from `rate_limit`.
    pub rate_limited: u64,
    /// `tools/call` results that carried the huge extra block.
    pub huge_results: u64,
    /// Responses held back by `slow_ms`.
    pub slowed: u64,
    /// HTTP 307s from `redirect_to`.
    pub redirects: u64,
}

impl FaultCountersSnapshot {
    /// All faults sent, of any kind.
    pub fn total(&self) -> u64 {
        self.malformed_json
            + self.truncated
            + self.internal_errors
            + self.rate_limited
            + self.huge_results
            + self.slowed
            + self.redirects
    }
}

impl FaultCounters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> FaultCountersSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FaultCountersSnapshot {
            malformed_json: get(&self.malformed_json),
            truncated: get(&self.truncated),
            internal_errors: get(&self.internal_errors),
            rate_limited: get(&self.rate_limited),
            huge_results: get(&self.huge_results),
            slowed: get(&self.slowed),
            redirects: get(&self.redirects),
        }
    }

    pub(crate) fn reset(&self) {
        for c in [
            &self.malformed_json,
            &self.truncated,
            &self.internal_errors,
            &self.rate_limited,
            &self.huge_results,
            &self.slowed,
            &self.redirects,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// State shared by the middleware and the handle
// ---------------------------------------------------------------------------------------------------

/// The fault switches and the POST count `fail_every_nth` works on.
pub(crate) struct FaultState {
    faults: RwLock<Faults>,
    /// POSTs since `fail_every_nth` was last set.
    posts: AtomicU64,
    counters: Arc<Counters>,
}

impl FaultState {
    pub(crate) fn new(mut faults: Faults, counters: Arc<Counters>) -> Self {
        faults.normalize();
        FaultState {
            faults: RwLock::new(faults),
            posts: AtomicU64::new(0),
            counters,
        }
    }

    pub(crate) fn get(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the switches; `rearm_nth` restarts the POST count of `fail_every_nth`.
    pub(crate) fn update(&self, rearm_nth: bool, f: impl FnOnce(&mut Faults)) {
        let mut faults = self.faults.write().unwrap_or_else(|e| e.into_inner());
        f(&mut faults);
        faults.normalize();
        if rearm_nth {
            self.posts.store(0, Ordering::Relaxed);
        }
    }

    /// Takes one 429 from the rate-limit switch, if it is on (counting it down).
    fn take_rate_limit(&self) -> Option<RateLimitFault> {
        let mut faults = self.faults.write().unwrap_or_else(|e| e.into_inner());
        let current = faults.rate_limit?;
        let left = current.times.saturating_sub(1);
        faults.rate_limit = (left > 0).then_some(RateLimitFault {
            times: left,
            ..current
        });
        Some(current)
    }
}

// ---------------------------------------------------------------------------------------------------
// The middleware
// ---------------------------------------------------------------------------------------------------

/// What the POST carried: JSON-RPC methods, whether it has requests (an id), write-tool calls.
#[derive(Debug, Default, PartialEq, Eq)]
struct Incoming {
    methods: Vec<String>,
    has_request: bool,
    write_calls: u64,
}

impl Incoming {
    fn parse(body: &[u8]) -> Incoming {
        let mut incoming = Incoming::default();
        let mut add = |message: &Value| {
            let Some(method) = message.get("method").and_then(Value::as_str) else {
                return;
            };
            if message.get("id").is_some_and(|id| !id.is_null()) {
                incoming.has_request = true;
            }
            if method == "tools/call" {
                let name = message
                    .get("params")
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if catalog::catalog().get(name).is_some_and(|s| s.is_write()) {
                    incoming.write_calls += 1;
                }
            }
            if incoming.methods.len() < 100 {
                incoming.methods.push(catalog::truncate(method, 100));
            }
        };
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(batch)) => batch.iter().for_each(&mut add),
            Ok(message) => add(&message),
            Err(_) => {}
        }
        incoming
    }

    fn has_method(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }
}

/// The middleware around rmcp's `/mcp` service (inside authentication).
pub(crate) async fn inject(
    State(state): State<Arc<FaultState>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let n = state
        .posts
        .fetch_add(1, Ordering::Relaxed)
        .saturating_add(1);
    let faults = state.get();
    if !faults.any() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, FAULT_REQUEST_BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return payload_too_large(),
    };
    let incoming = Incoming::parse(&bytes);
    let counters = &state.counters;
    let intercepted = || {
        for _ in 0..incoming.write_calls {
            Counters::bump(&counters.write_tool_calls);
        }
    };

    if let Some(url) = &faults.redirect_to {
        intercepted();
        FaultCounters::bump(&counters.faults.redirects);
        return redirect(url);
    }
    if let Some(nth) = faults.fail_every_nth.filter(|&nth| nth > 0) {
        if n % u64::from(nth) == 0 {
            intercepted();
            FaultCounters::bump(&counters.faults.internal_errors);
            return internal_error(n, nth);
        }
    }
    if incoming.has_method("tools/call") {
        if let Some(limit) = state.take_rate_limit() {
            intercepted();
            FaultCounters::bump(&counters.faults.rate_limited);
            return rate_limited(limit);
        }
    }

    let plan = Plan::for_request(&faults, &incoming);
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    match plan {
        Some(plan) => plan.apply(response, counters.clone()).await,
        None => response,
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn payload_too_large() -> Response {
    json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        python_json(&[
            ("error", "request_too_large"),
            (
                "error_description",
                "stand-in: request bodies above 16 MiB are refused while a fault is on",
            ),
        ]),
    )
}

fn redirect(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(location) => {
            let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            python_json(&[
                ("error", "internal_error"),
                (
                    "error_description",
                    "stand-in: redirect_to is not a valid Location header value",
                ),
            ]),
        ),
    }
}

fn internal_error(n: u64, nth: u32) -> Response {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        python_json(&[
            ("error", "internal_error"),
            (
                "error_description",
                &format!("stand-in fault: request {n} failed on purpose (fail_every_nth = {nth})"),
            ),
        ]),
    )
}

fn rate_limited(limit: RateLimitFault) -> Response {
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        python_json(&[
            ("error", "rate_limited"),
            (
                "error_description",
                &format!(
                    "API call count exceeded for this period; retry in {} seconds",
                    limit.reset_secs
                ),
            ),
        ]),
    );
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "limit={}, remaining=0, reset={}",
        limit.limit, limit.reset_secs
    )) {
        headers.insert("ratelimit", v);
    }
    headers.insert(header::RETRY_AFTER, HeaderValue::from(limit.reset_secs));
    response
}

// ---------------------------------------------------------------------------------------------------
// Reshaping the response
// ---------------------------------------------------------------------------------------------------

/// What happens to the response to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rewrite {
    Truncate,
    Malform,
    Huge(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    rewrite: Option<Rewrite>,
    delay: Option<Duration>,
}

impl Plan {
    fn for_request(faults: &Faults, incoming: &Incoming) -> Option<Plan> {
        if !incoming.has_request {
            return None;
        }
        let targeted = faults.target.matches(incoming);
        let rewrite = if faults.truncated_sse && targeted {
            Some(Rewrite::Truncate)
        } else if faults.malformed_json && targeted {
            Some(Rewrite::Malform)
        } else {
            faults
                .huge_result_bytes
                .filter(|_| incoming.has_method("tools/call"))
                .map(|n| Rewrite::Huge(n.min(HUGE_RESULT_MAX_BYTES)))
        };
        let delay = faults
            .slow_ms
            .filter(|&ms| ms > 0 && targeted)
            .map(Duration::from_millis);
        (rewrite.is_some() || delay.is_some()).then_some(Plan { rewrite, delay })
    }

    async fn apply(self, response: Response, counters: Arc<Counters>) -> Response {
        if response.status() != StatusCode::OK {
            return response;
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            self.apply_sse(response, counters)
        } else if content_type.starts_with("application/json") {
            self.apply_json(response, counters).await
        } else {
            response
        }
    }

    /// JSON mode: the body is the response.
    async fn apply_json(self, response: Response, counters: Arc<Counters>) -> Response {
        let (mut parts, body) = response.into_parts();
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) if is_response(text) => text.to_string(),
            _ => return Response::from_parts(parts, Body::from(bytes)),
        };
        let mut pieces = Vec::new();
        if let Some(delay) = self.delay {
            FaultCounters::bump(&counters.faults.slowed);
            pieces.push(Piece::Sleep(delay));
        }
        parts.headers.remove(header::CONTENT_LENGTH);
        match self.rewrite {
            Some(Rewrite::Truncate) => {
                FaultCounters::bump(&counters.faults.truncated);
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                parts
                    .headers
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                pieces.push(Piece::Bytes(bytes.slice(..half(&text))));
                // A pause, so hyper flushes the half before the failed body closes the connection.
                pieces.push(Piece::Sleep(FLUSH_PAUSE));
                pieces.push(Piece::Abort);
            }
            Some(Rewrite::Malform) => {
                FaultCounters::bump(&counters.faults.malformed_json);
                let broken = broken_json(&text);
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(broken.len()));
                pieces.push(Piece::Bytes(Bytes::from(broken)));
            }
            Some(Rewrite::Huge(n)) => match huge_parts(&text) {
                Some((prefix, suffix)) => {
                    FaultCounters::bump(&counters.faults.huge_results);
                    pieces.push(Piece::Bytes(Bytes::from(prefix)));
                    pieces.push(Piece::Filler(n));
                    pieces.push(Piece::Bytes(Bytes::from(suffix)));
                }
                None => {
                    parts
                        .headers
                        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                    pieces.push(Piece::Bytes(bytes));
                }
            },
            None => {
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                pieces.push(Piece::Bytes(bytes));
            }
        }
        let (emitter, body) = Emitter::channel();
        tokio::spawn(async move {
            for piece in pieces {
                if !emitter.emit(piece).await {
                    return;
                }
            }
        });
        Response::from_parts(parts, body)
    }

    /// SSE mode: the events before the response pass as they come; the response event is reshaped.
    fn apply_sse(self, response: Response, counters: Arc<Counters>) -> Response {
        let (mut parts, body) = response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        if self.rewrite == Some(Rewrite::Truncate) {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let (emitter, out) = Emitter::channel();
        tokio::spawn(self.rewrite_sse(body, emitter, counters));
        Response::from_parts(parts, out)
    }

    async fn rewrite_sse(self, mut body: Body, out: Emitter, counters: Arc<Counters>) {
        let mut buffer: Vec<u8> = Vec::new();
        let mut handled = false;
        loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                _ = out.tx.closed() => return,
            };
            let data = match frame {
                None => {
                    if !buffer.is_empty() {
                        out.emit(Piece::Bytes(Bytes::from(buffer))).await;
                    }
                    return;
                }
                Some(Err(_)) => {
                    out.emit(Piece::Abort).await;
                    return;
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
            };
            if handled {
                if !out.emit(Piece::Bytes(data)).await {
                    return;
                }
                continue;
            }
            buffer.extend_from_slice(&data);
            normalize_newlines(&mut buffer);
            while let Some(end) = find(&buffer, b"\n\n") {
                let event: Vec<u8> = buffer.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&event).into_owned();
                let Some(json) = response_data(&text) else {
                    if !out.emit(Piece::Bytes(Bytes::from(event))).await {
                        return;
                    }
                    continue;
                };
                handled = true;
                if let Some(delay) = self.delay {
                    FaultCounters::bump(&counters.faults.slowed);
                    if !out.emit(Piece::Sleep(delay)).await {
                        return;
                    }
                }
                let pieces = match self.rewrite {
                    Some(Rewrite::Truncate) => {
                        FaultCounters::bump(&counters.faults.truncated);
                        // Dropping rmcp's stream ends ours cleanly before the response.
                        return;
                    }
                    Some(Rewrite::Malform) => {
                        FaultCounters::bump(&counters.faults.malformed_json);
                        vec![Piece::Bytes(Bytes::from(format!(
                            "{}data: {}\n\n",
                            event_fields(&text),
                            broken_json(&json)
                        )))]
                    }
                    Some(Rewrite::Huge(n)) => match huge_parts(&json) {
                        Some((prefix, suffix)) => {
                            FaultCounters::bump(&counters.faults.huge_results);
                            vec![
                                Piece::Bytes(Bytes::from(format!(
                                    "{}data: {prefix}",
                                    event_fields(&text)
                                ))),
                                Piece::Filler(n),
                                Piece::Bytes(Bytes::from(format!("{suffix}\n\n"))),
                            ]
                        }
                        None => vec![Piece::Bytes(Bytes::from(event))],
                    },
                    None => vec![Piece::Bytes(Bytes::from(event))],
                };
                for piece in pieces {
                    if !out.emit(piece).await {
                        return;
                    }
                }
                if !buffer.is_empty()
                    && !out
                        .emit(Piece::Bytes(Bytes::from(std::mem::take(&mut buffer))))
                        .await
                {
                    return;
                }
                break;
            }
        }
    }
}

/// One step of a reshaped body.
enum Piece {
    Bytes(Bytes),
    /// Wait (the connection stays open).
    Sleep(Duration),
    /// That many filler bytes, generated chunk by chunk as the client reads.
    Filler(u64),
    /// Fail the body: the server closes the connection mid-message.
    Abort,
}

/// Writes a response body from a task, through a small channel (so the huge result is generated only as
/// fast as the client reads, and stops when the client goes away).
struct Emitter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Emitter {
    fn channel() -> (Emitter, Body) {
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (Emitter { tx }, Body::from_stream(stream))
    }

    /// Sends one piece; false when the client is gone (or the body was aborted).
    async fn emit(&self, piece: Piece) -> bool {
        match piece {
            Piece::Bytes(bytes) => bytes.is_empty() || self.tx.send(Ok(bytes)).await.is_ok(),
            Piece::Sleep(delay) => tokio::select! {
                _ = tokio::time::sleep(delay) => true,
                _ = self.tx.closed() => false,
            },
            Piece::Filler(mut left) => {
                while left > 0 {
                    let take = left.min(FILLER_CHUNK as u64) as usize;
                    if self.tx.send(Ok(FILLER.slice(..take))).await.is_err() {
                        return false;
                    }
                    left -= take as u64;
                }
                true
            }
            Piece::Abort => {
                let _ = self
                    .tx
                    .send(Err(std::io::Error::other(
                        "stand-in fault: connection closed mid-body",
                    )))
                    .await;
                false
            }
        }
    }
}

/// One filler chunk: readable ASCII that needs no JSON escaping.
static FILLER: LazyLock<Bytes> = LazyLock::new(|| {
    let pattern = b"close-standin huge result filler. ";
    Bytes::from(
        pattern
            .iter()
            .copied()
            .cycle()
            .take(FILLER_CHUNK)
            .collect::<Vec<u8>>(),
    )
});

/// Is `text` one JSON-RPC response (or error)?
fn is_response(text: &str) -> bool {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => {
            value.get("id").is_some()
                && (value.get("result").is_some() || value.get("error").is_some())
                && value.get("method").is_none()
        }
        Err(_) => false,
    }
}

/// The data of one SSE event, if it is a JSON-RPC response.
fn response_data(event: &str) -> Option<String> {
    let data: Vec<&str> = event
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return None;
    }
    let data = data.join("\n");
    is_response(&data).then_some(data)
}

/// The event's other fields (`id:`, `event:`, `retry:`), each with its newline.
fn event_fields(event: &str) -> String {
    event
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with("data:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Index of the middle of `text`, moved back to a character boundary (at least 1 for a non-empty text).
fn half(text: &str) -> usize {
    let mut cut = text.len() / 2;
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    if cut == 0 {
        text.chars().next().map(char::len_utf8).unwrap_or(0)
    } else {
        cut
    }
}

/// The first half of a JSON-RPC response: it stops mid-object, so it is never valid JSON.
fn broken_json(json: &str) -> String {
    let json = json.trim();
    let broken = &json[..half(json)];
    if broken.len() >= json.len() || serde_json::from_str::<Value>(broken).is_ok() {
        // Not an object after all (cannot happen for a JSON-RPC response); a fixed broken one then.
        return "{\"jsonrpc\": \"2.0\", \"result\": {".to_string();
    }
    broken.to_string()
}

/// The response split around an extra text block's (empty) text: `prefix` ends with the opening quote of
/// that text, `suffix` starts with its closing quote. `None` unless it is a result with a `content` array.
fn huge_parts(json: &str) -> Option<(String, String)> {
    let value: Value = serde_json::from_str(json).ok()?;
    let message = value.as_object()?;
    let result = message.get("result")?.as_object()?;
    let content = result.get("content")?.as_array()?;
    let key = |k: &str| Value::from(k).to_string();
    let mut prefix = String::from("{");
    for (k, v) in message.iter().filter(|(k, _)| k.as_str() != "result") {
        prefix.push_str(&format!("{}:{},", key(k), v));
    }
    prefix.push_str("\"result\":{\"content\":[");
    for block in content {
        prefix.push_str(&block.to_string());
        prefix.push(',');
    }
    prefix.push_str("{\"type\":\"text\",\"text\":\"");
    let mut suffix = String::from("\"}]");
    for (k, v) in result.iter().filter(|(k, _)| k.as_str() != "content") {
        suffix.push_str(&format!(",{}:{}", key(k), v));
    }
    suffix.push_str("}}");
    Some((prefix, suffix))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// CRLF → LF (rmcp writes LF; other line ends are left alone).
fn normalize_newlines(buffer: &mut Vec<u8>) {
    if find(buffer, b"\r\n").is_some() {
        let mut out = Vec::with_capacity(buffer.len());
        let mut i = 0;
        while i < buffer.len() {
            if buffer[i] == b'\r' && buffer.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            out.push(buffer[i]);
            i += 1;
        }
        *buffer = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_targets_parse_from_their_names() {
        assert_eq!("all".parse::<FaultTarget>(), Ok(FaultTarget::All));
        assert_eq!(
            "tools/call".parse::<FaultTarget>(),
            Ok(FaultTarget::ToolsCall)
        );
        assert_eq!(
            " Tools-List ".parse::<FaultTarget>(),
            Ok(FaultTarget::ToolsList)
        );
        assert!("everything".parse::<FaultTarget>().is_err());
        for target in [
            FaultTarget::All,
            FaultTarget::ToolsCall,
            FaultTarget::ToolsList,
        ] {
            assert_eq!(target.to_string().parse::<FaultTarget>(), Ok(target));
        }
    }

    #[test]
    fn off_spellings_count_as_no_fault() {
        assert!(!Faults::none().any());
        let off = Faults {
            target: FaultTarget::ToolsCall,
            fail_every_nth: Some(0),
            rate_limit: Some(RateLimitFault::new(100, 1, 0)),
            slow_ms: Some(0),
            ..Faults::default()
        };
        assert!(!off.any());
        assert!(Faults {
            huge_result_bytes: Some(0),
            ..Faults::default()
        }
        .any());
        let mut huge = Faults {
            huge_result_bytes: Some(u64::MAX),
            ..Faults::default()
        };
        huge.normalize();
        assert_eq!(huge.huge_result_bytes, Some(HUGE_RESULT_MAX_BYTES));
    }

    #[test]
    fn the_rate_limit_switch_counts_itself_down_and_off() {
        let state = FaultState::new(
            Faults {
                rate_limit: Some(RateLimitFault::new(100, 2, 2)),
                ..Faults::default()
            },
            Arc::default(),
        );
        assert_eq!(state.take_rate_limit().map(|r| r.times), Some(2));
        assert_eq!(state.get().rate_limit.map(|r| r.times), Some(1));
        assert!(state.take_rate_limit().is_some());
        assert_eq!(state.get().rate_limit, None);
        assert_eq!(state.take_rate_limit(), None);
    }

    #[test]
    fn broken_json_is_never_valid_json() {
        for json in [
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":"x","result":{"content":[{"type":"text","text":"héllo wörld ✓✓✓"}]}}"#,
            "{}",
            r#"{"a":"ééééééééé"}"#,
        ] {
            let broken = broken_json(json);
            assert!(!broken.is_empty());
            assert!(json.starts_with(&broken) || broken.starts_with('{'));
            assert!(serde_json::from_str::<Value>(&broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn the_huge_block_splits_a_result_around_an_empty_text() {
        let json = r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"{\"a\": 1}"}],"isError":false}}"#;
        let (prefix, suffix) = huge_parts(json).unwrap();
        let whole: Value = serde_json::from_str(&format!("{prefix}abc{suffix}")).unwrap();
        assert_eq!(whole["id"], 3);
        assert_eq!(whole["result"]["isError"], false);
        assert_eq!(whole["result"]["content"][0]["text"], "{\"a\": 1}");
        assert_eq!(
            whole["result"]["content"][1],
            serde_json::json!({"type": "text", "text": "abc"})
        );
        assert!(
            huge_parts(r#"{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"x"}}"#).is_none()
        );
        assert!(huge_parts("not json").is_none());
        assert!(
            FILLER.iter().all(|b| b.is_ascii_graphic() || *b == b' ') && !FILLER.contains(&b'"')
        );
    }

    #[test]
    fn incoming_requests_are_classified_without_trusting_them() {
        let call = Incoming::parse(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_lead"}}"#,
        );
        assert!(call.has_request && call.has_method("tools/call"));
        assert_eq!(call.write_calls, 1);
        let note = Incoming::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(!note.has_request);
        let batch = Incoming::parse(
            br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":7}}]"#,
        );
        assert!(batch.has_method("tools/list") && batch.has_method("tools/call"));
        assert_eq!(batch.write_calls, 0);
        for junk in [&b"not json"[..], b"", b"[]", b"{\"method\": 5}", b"null"] {
            assert_eq!(Incoming::parse(junk), Incoming::default());
        }
    }

    #[test]
    fn sse_events_with_responses_are_recognised_and_keep_their_fields() {
        let event = "id: 4\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        assert_eq!(
            response_data(event).as_deref(),
            Some("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}")
        );
        assert_eq!(event_fields(event), "id: 4\nevent: message\n");
        assert_eq!(response_data("id: 0\nretry: 3000\ndata: \n\n"), None);
        assert_eq!(
            response_data("data: {\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":9}\n\n"),
            None
        );
        let mut crlf = b"data: x\r\n\r\nrest\r".to_vec();
        normalize_newlines(&mut crlf);
        assert_eq!(crlf, b"data: x\n\nrest\r");
    }
}
