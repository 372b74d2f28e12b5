//! The two protocol eras over real HTTP: the 2026-07-28 stateless era (server/discover, per-request
//! `_meta`, standard headers, caching hints, `resultType`, `input_required`), the 2025 initialize era,
//! and the `protocol` switch (Dual, Only2026, Only2025), in JSON and SSE modes, with and without
//! sessions, with OAuth and with faults.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::NaiveDate;
use close_standin::{
    s256_challenge, DatasetConfig, Grant, OAuthSwitches, ProtocolMode, RateLimitFault,
    ResponseMode, Scope, StandIn, StandInConfig, Switches,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

const KEY: &str = "test-key";
const V2026: &str = "2026-07-28";
const MODES: [ResponseMode; 2] = [ResponseMode::Json, ResponseMode::Sse];

fn config(protocol: ProtocolMode, mode: ResponseMode, sessions: bool) -> StandInConfig {
    StandInConfig {
        api_keys: vec![KEY.into()],
        dataset: DatasetConfig {
            seed: 42,
            anchor: NaiveDate::from_ymd_opt(2026, 3, 12).unwrap(),
        },
        switches: Switches {
            response_mode: mode,
            protocol,
            ..Switches::default()
        },
        sessions_required: sessions,
        ..StandInConfig::default()
    }
}

async fn start(protocol: ProtocolMode, mode: ResponseMode, sessions: bool) -> StandIn {
    StandIn::start(config(protocol, mode, sessions))
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    fn content_type(&self) -> String {
        self.header("content-type").unwrap_or_default()
    }
    fn is_sse(&self) -> bool {
        self.content_type().starts_with("text/event-stream")
    }
    /// Every JSON-RPC message in the body (one JSON document, or SSE `data:` events).
    fn messages(&self) -> Vec<Value> {
        if self.is_sse() {
            sse_messages(&self.body)
        } else if self.body.trim().is_empty() {
            vec![]
        } else {
            vec![serde_json::from_str(&self.body)
                .unwrap_or_else(|e| panic!("{e}: {} {}", self.status, self.body))]
        }
    }
    /// The JSON-RPC response (result or error) in the body.
    fn response(&self) -> Value {
        self.messages()
            .into_iter()
            .find(|m| m.get("result").is_some() || m.get("error").is_some())
            .unwrap_or_else(|| panic!("no response in {}: {}", self.status, self.body))
    }
    /// Asserts an HTTP status and a JSON-RPC error code (a one-line `application/json` body).
    fn assert_error(&self, status: u16, code: i64) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        let response = self.response();
        assert_eq!(response["error"]["code"], code, "{}", self.body);
        if status != 200 {
            assert!(
                self.content_type().starts_with("application/json"),
                "{:?}",
                self.headers
            );
            assert!(!self.body.trim().contains('\n'), "{}", self.body);
        }
        response
    }
}

fn sse_messages(body: &str) -> Vec<Value> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.trim_start())
                .collect();
            let data = data.join("\n");
            (!data.trim().is_empty()).then(|| serde_json::from_str(&data).expect("JSON event"))
        })
        .collect()
}

async fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<String>,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("127.0.0.1:{port}"));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = sender
        .send_request(
            req.body(Full::new(Bytes::from(body.unwrap_or_default())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn api_key() -> Vec<(&'static str, String)> {
    vec![("close-api-key", KEY.to_string())]
}

fn valid_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "eras-test", "version": "0"}
    })
}

/// A 2026-07-28 request, built piece by piece so tests can break one piece at a time.
#[derive(Clone)]
struct Req {
    auth: Vec<(&'static str, String)>,
    id: Value,
    method: String,
    params: Value,
    /// `Some(meta)` replaces `params._meta`; `None` leaves `params` alone.
    meta: Option<Value>,
    version_header: Option<String>,
    method_header: Option<String>,
    name_header: Option<String>,
}

impl Req {
    /// A well-formed 2026 request: `_meta`, `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`.
    fn new(id: i64, method: &str, params: Value) -> Req {
        let name_header = match method {
            "tools/call" | "prompts/get" => params["name"].as_str().map(str::to_string),
            "resources/read" => params["uri"].as_str().map(str::to_string),
            _ => None,
        };
        Req {
            auth: api_key(),
            id: json!(id),
            method: method.to_string(),
            params,
            meta: Some(valid_meta()),
            version_header: Some(V2026.to_string()),
            method_header: Some(method.to_string()),
            name_header,
        }
    }
    fn meta(mut self, meta: Option<Value>) -> Req {
        self.meta = meta;
        self
    }
    fn version_header(mut self, v: Option<&str>) -> Req {
        self.version_header = v.map(str::to_string);
        self
    }
    fn method_header(mut self, v: Option<&str>) -> Req {
        self.method_header = v.map(str::to_string);
        self
    }
    fn name_header(mut self, v: Option<&str>) -> Req {
        self.name_header = v.map(str::to_string);
        self
    }
    fn auth(mut self, auth: Vec<(&'static str, String)>) -> Req {
        self.auth = auth;
        self
    }
    fn body(&self) -> Value {
        let mut params = self.params.clone();
        if let Some(meta) = &self.meta {
            if !params.is_object() {
                params = json!({});
            }
            let mut merged = params.get("_meta").cloned().unwrap_or(json!({}));
            for (k, v) in meta.as_object().unwrap() {
                merged[k] = v.clone();
            }
            params["_meta"] = merged;
        }
        json!({"jsonrpc": "2.0", "id": self.id, "method": self.method, "params": params})
    }
    async fn send(&self, s: &StandIn) -> Reply {
        let mut headers = self.auth.clone();
        headers.push(("content-type", "application/json".into()));
        headers.push(("accept", "application/json, text/event-stream".into()));
        if let Some(v) = &self.version_header {
            headers.push(("mcp-protocol-version", v.clone()));
        }
        if let Some(v) = &self.method_header {
            headers.push(("mcp-method", v.clone()));
        }
        if let Some(v) = &self.name_header {
            headers.push(("mcp-name", v.clone()));
        }
        send(
            s.port(),
            "POST",
            "/mcp",
            &headers,
            Some(self.body().to_string()),
        )
        .await
    }
}

/// Sends a well-formed 2026 request and returns the JSON-RPC response, asserting HTTP 200 and the id.
async fn call2026(s: &StandIn, id: i64, method: &str, params: Value) -> (Reply, Value) {
    let reply = Req::new(id, method, params).send(s).await;
    assert_eq!(reply.status, 200, "{method}: {}", reply.body);
    let response = reply.response();
    assert_eq!(response["id"], id, "{}", reply.body);
    (reply, response)
}

/// The tool's JSON text, asserting a complete, successful 2026 result.
fn tool_json(response: &Value) -> Value {
    let result = &response["result"];
    assert_eq!(result["resultType"], "complete", "{response}");
    assert_eq!(result["isError"], false, "{response}");
    serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap()
}

/// A 2025-era client: initialize (+ initialized), then requests with the session and version header.
struct Legacy {
    port: u16,
    auth: Vec<(&'static str, String)>,
    session: Option<String>,
    next_id: i64,
}

impl Legacy {
    fn new(s: &StandIn) -> Legacy {
        Legacy {
            port: s.port(),
            auth: api_key(),
            session: None,
            next_id: 1,
        }
    }
    fn headers(&self, initialized: bool) -> Vec<(&'static str, String)> {
        let mut h = self.auth.clone();
        h.push(("content-type", "application/json".into()));
        h.push(("accept", "application/json, text/event-stream".into()));
        if let Some(s) = &self.session {
            h.push(("mcp-session-id", s.clone()));
        }
        if initialized {
            h.push(("mcp-protocol-version", "2025-11-25".into()));
        }
        h
    }
    async fn initialize(&mut self) -> Reply {
        let reply = send(
            self.port,
            "POST",
            "/mcp",
            &self.headers(false),
            Some(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "legacy", "version": "0"}}})
                .to_string(),
            ),
        )
        .await;
        if reply.status == 200 {
            self.session = reply.header("mcp-session-id");
            let ack = send(
                self.port,
                "POST",
                "/mcp",
                &self.headers(true),
                Some(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string()),
            )
            .await;
            assert_eq!(ack.status, 202, "{}", ack.body);
        }
        reply
    }
    async fn request(&mut self, method: &str, params: Value) -> Reply {
        let id = self.next_id;
        self.next_id += 1;
        send(
            self.port,
            "POST",
            "/mcp",
            &self.headers(true),
            Some(
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
            ),
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------------
// server/discover
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn discover_names_versions_capabilities_server_info_and_cache_hints() {
    for (protocol, versions) in [
        (
            ProtocolMode::Dual,
            json!(["2025-03-26", "2025-06-18", "2025-11-25", V2026]),
        ),
        (ProtocolMode::Only2026, json!([V2026])),
    ] {
        for mode in MODES {
            for sessions in [true, false] {
                let s = start(protocol, mode, sessions).await;
                let (reply, response) = call2026(&s, 7, "server/discover", json!({})).await;
                let what = format!("{protocol} {mode} sessions={sessions}");
                assert_eq!(
                    reply.is_sse(),
                    mode == ResponseMode::Sse,
                    "{what}: {reply:?}"
                );
                assert_eq!(reply.header("mcp-session-id"), None, "{what}");
                let result = &response["result"];
                assert_eq!(result["supportedVersions"], versions, "{what}");
                assert!(
                    result["capabilities"]["tools"].is_object(),
                    "{what}: {result}"
                );
                assert_eq!(
                    result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
                    "close-mcp-standin",
                    "{what}"
                );
                assert!(result["instructions"].is_string(), "{what}");
                assert_eq!(result["ttlMs"], 60_000, "{what}");
                assert_eq!(result["cacheScope"], "private", "{what}");
                assert_eq!(result["resultType"], "complete", "{what}");
                let c = s.counters();
                assert_eq!(
                    (c.discover, c.requests_2026, c.initialize),
                    (1, 1, 0),
                    "{what}"
                );
                s.shutdown().await;
            }
        }
    }
}

#[tokio::test]
async fn client_info_is_optional_but_protocol_version_and_capabilities_are_required() {
    let s = start(ProtocolMode::Dual, ResponseMode::Json, true).await;
    let without_info = json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let r = Req::new(105, "server/discover", json!({}))
        .meta(Some(without_info))
        .send(&s)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.response()["result"]["supportedVersions"].is_array());

    // No _meta at all, on discover and on a request with the 2026 header.
    for method in ["server/discover", "tools/list"] {
        let r = Req::new(101, method, json!({})).meta(None).send(&s).await;
        let e = r.assert_error(400, -32602);
        assert_eq!(e["id"], 101, "{method}");
    }
    let missing_version = json!({"io.modelcontextprotocol/clientCapabilities": {}});
    let missing_caps = json!({"io.modelcontextprotocol/protocolVersion": V2026});
    for (id, meta) in [(102, missing_version), (104, missing_caps)] {
        for method in ["server/discover", "tools/list"] {
            let r = Req::new(id, method, json!({}))
                .meta(Some(meta.clone()))
                .send(&s)
                .await;
            let e = r.assert_error(400, -32602);
            assert_eq!(e["id"], id, "{method} {meta}");
        }
    }
    assert_eq!(s.counters().tools_list, 0);
    s.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------
// Headers, versions, removed methods
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_header_that_disagrees_with_the_body_is_400_header_mismatch() {
    for protocol in [ProtocolMode::Dual, ProtocolMode::Only2026] {
        let s = start(protocol, ResponseMode::Sse, true).await;
        let call = Req::new(
            31,
            "tools/call",
            json!({"name": "org_info", "arguments": {}}),
        );
        let cases = [
            ("no version header", call.clone().version_header(None)),
            (
                "header older than _meta",
                call.clone().version_header(Some("2025-11-25")),
            ),
            (
                "_meta older than header",
                call.clone().meta(Some(json!({
                    "io.modelcontextprotocol/protocolVersion": "2025-11-25",
                    "io.modelcontextprotocol/clientCapabilities": {}
                }))),
            ),
            ("no Mcp-Method", call.clone().method_header(None)),
            (
                "wrong Mcp-Method",
                call.clone().method_header(Some("tools/list")),
            ),
            ("no Mcp-Name", call.clone().name_header(None)),
            (
                "wrong Mcp-Name",
                call.clone().name_header(Some("org_users")),
            ),
            (
                "discover with a wrong Mcp-Method",
                Req::new(32, "server/discover", json!({})).method_header(Some("tools/list")),
            ),
        ];
        for (what, req) in cases {
            let r = req.send(&s).await;
            let e = r.assert_error(400, -32020);
            assert_eq!(e["id"], req.id, "{protocol}: {what}");
        }
        // Base64 sentinel form of Mcp-Name is decoded.
        let r = call
            .clone()
            .name_header(Some("=?base64?b3JnX2luZm8=?="))
            .send(&s)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let c = s.counters();
        assert_eq!(c.tool_calls_total, 1, "{protocol}");
        s.shutdown().await;
    }
}

#[tokio::test]
async fn an_unsupported_version_is_400_with_supported_and_requested() {
    for protocol in [ProtocolMode::Dual, ProtocolMode::Only2026] {
        for mode in MODES {
            let s = start(protocol, mode, true).await;
            let (_, discover) = call2026(&s, 1, "server/discover", json!({})).await;
            let advertised = discover["result"]["supportedVersions"].clone();
            let v999 = json!({
                "io.modelcontextprotocol/protocolVersion": "v999.0.0",
                "io.modelcontextprotocol/clientCapabilities": {}
            });
            for method in ["server/discover", "tools/list"] {
                let r = Req::new(301, method, json!({}))
                    .meta(Some(v999.clone()))
                    .version_header(Some("v999.0.0"))
                    .send(&s)
                    .await;
                let e = r.assert_error(400, -32022);
                assert_eq!(e["id"], 301);
                assert_eq!(
                    e["error"]["data"]["requested"], "v999.0.0",
                    "{protocol} {method}"
                );
                assert_eq!(
                    e["error"]["data"]["supported"], advertised,
                    "{protocol} {method}"
                );
            }
            // _meta says v999, the header says 2026-07-28: a mismatch, not a version question.
            let r = Req::new(302, "server/discover", json!({}))
                .meta(Some(v999))
                .send(&s)
                .await;
            r.assert_error(400, -32020);
            s.shutdown().await;
        }
    }
}

#[tokio::test]
async fn methods_the_2026_revision_removed_are_404_method_not_found() {
    for protocol in [ProtocolMode::Dual, ProtocolMode::Only2026] {
        let s = start(protocol, ResponseMode::Sse, true).await;
        for method in [
            "initialize",
            "ping",
            "logging/setLevel",
            "resources/subscribe",
            "unknown/method",
        ] {
            let r = Req::new(500, method, json!({})).send(&s).await;
            let e = r.assert_error(404, -32601);
            assert_eq!(e["id"], 500, "{protocol} {method}");
        }
        assert_eq!(s.counters().initialize, 0, "{protocol}");
        s.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------------
// tools/list and tools/call at 2026
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn stateless_requests_list_and_call_tools_in_json_and_sse_with_and_without_sessions() {
    for protocol in [ProtocolMode::Dual, ProtocolMode::Only2026] {
        for mode in MODES {
            for sessions in [true, false] {
                let what = format!("{protocol} {mode} sessions={sessions}");
                let s = start(protocol, mode, sessions).await;
                let (reply, list) = call2026(&s, 2, "tools/list", json!({})).await;
                assert_eq!(reply.is_sse(), mode == ResponseMode::Sse, "{what}");
                assert_eq!(reply.header("mcp-session-id"), None, "{what}");
                let result = &list["result"];
                assert_eq!(result["tools"].as_array().unwrap().len(), 66, "{what}");
                assert_eq!(result["ttlMs"], 60_000, "{what}");
                assert_eq!(result["cacheScope"], "private", "{what}");
                assert_eq!(result["resultType"], "complete", "{what}");

                let (reply, call) = call2026(
                    &s,
                    3,
                    "tools/call",
                    json!({"name": "org_info", "arguments": {}}),
                )
                .await;
                assert_eq!(reply.is_sse(), mode == ResponseMode::Sse, "{what}");
                assert_eq!(
                    tool_json(&call)["organization"]["id"],
                    s.dataset().organization.id,
                    "{what}"
                );
                // A tool error is a complete result too.
                let (_, bad) = call2026(
                    &s,
                    4,
                    "tools/call",
                    json!({"name": "fetch_lead", "arguments": {}}),
                )
                .await;
                assert_eq!(bad["result"]["isError"], true, "{what}");
                assert_eq!(bad["result"]["resultType"], "complete", "{what}");
                // Tools above the grant are unknown, as in the 2025 era.
                let (_, hidden) = call2026(
                    &s,
                    5,
                    "tools/call",
                    json!({"name": "delete_lead", "arguments": {"id": "lead_x"}}),
                )
                .await;
                assert_eq!(hidden["error"]["code"], -32602, "{what}");

                let c = s.counters();
                assert_eq!(c.requests_2026, 4, "{what}");
                assert_eq!((c.tools_list, c.tool_calls_total), (1, 3), "{what}");
                assert_eq!(c.initialize, 0, "{what}");
                assert_eq!(s.expire_sessions(), 0, "{what}");
                s.shutdown().await;
            }
        }
    }
}

#[tokio::test]
async fn the_listing_ttl_is_a_switch_and_every_tools_list_is_counted() {
    let s = start(ProtocolMode::Dual, ResponseMode::Json, true).await;
    s.set_list_ttl_ms(1_500);
    let (_, list) = call2026(&s, 1, "tools/list", json!({})).await;
    assert_eq!(list["result"]["ttlMs"], 1_500);
    let (_, discover) = call2026(&s, 2, "server/discover", json!({})).await;
    assert_eq!(discover["result"]["ttlMs"], 1_500);
    s.set_list_ttl_ms(0);
    let (_, list) = call2026(&s, 3, "tools/list", json!({})).await;
    assert_eq!(list["result"]["ttlMs"], 0);
    assert_eq!(list["result"]["cacheScope"], "private");
    // Pages carry the hints too.
    s.set_tools_page_size(Some(25));
    let (_, first) = call2026(&s, 4, "tools/list", json!({})).await;
    let cursor = first["result"]["nextCursor"].as_str().unwrap().to_string();
    let (_, second) = call2026(&s, 5, "tools/list", json!({"cursor": cursor})).await;
    assert_eq!(second["result"]["tools"].as_array().unwrap().len(), 25);
    assert_eq!(second["result"]["cacheScope"], "private");
    // A 2025 session on the same server counts in the same counter.
    let mut legacy = Legacy::new(&s);
    legacy.initialize().await;
    assert_eq!(legacy.request("tools/list", json!({})).await.status, 200);
    assert_eq!(s.counters().tools_list, 5);
    s.reset_counters();
    assert_eq!(s.counters().tools_list, 0);
    s.shutdown().await;
}

#[tokio::test]
async fn sse_calls_at_2026_send_progress_and_log_only_when_asked_and_never_a_server_request() {
    for sessions in [true, false] {
        let s = start(ProtocolMode::Dual, ResponseMode::Sse, sessions).await;
        s.set_server_ping_before_result(true);
        let plain = Req::new(
            7,
            "tools/call",
            json!({"name": "org_users", "arguments": {}, "_meta": {"progressToken": "p-1"}}),
        );
        let messages = plain.send(&s).await.messages();
        let result_at = messages.iter().position(|m| m["id"] == 7).expect("result");
        let progress: Vec<&Value> = messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .collect();
        assert!(!progress.is_empty(), "{messages:?}");
        assert!(progress
            .iter()
            .all(|m| m["params"]["progressToken"] == "p-1"));
        assert!(messages[..result_at]
            .iter()
            .any(|m| m["method"] == "notifications/progress"));
        assert!(
            !messages
                .iter()
                .any(|m| m["method"] == "notifications/message"),
            "no log without a logLevel: {messages:?}"
        );
        assert!(
            !messages
                .iter()
                .any(|m| m.get("method").is_some() && m.get("id").is_some()),
            "no server→client request: {messages:?}"
        );
        assert_eq!(messages[result_at]["result"]["isError"], false);

        let mut meta = valid_meta();
        meta["io.modelcontextprotocol/logLevel"] = json!("info");
        let logged = Req::new(
            8,
            "tools/call",
            json!({"name": "org_users", "arguments": {}}),
        )
        .meta(Some(meta))
        .send(&s)
        .await
        .messages();
        let result_at = logged.iter().position(|m| m["id"] == 8).expect("result");
        let log_at = logged
            .iter()
            .position(|m| m["method"] == "notifications/message")
            .expect("a log with a logLevel");
        assert!(log_at < result_at);
        assert_eq!(s.counters().server_pings_sent, 0, "sessions={sessions}");
        s.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------------
// The 2025 era in each mode
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn dual_mode_serves_2025_clients_as_before_next_to_2026_ones() {
    for mode in MODES {
        for sessions in [true, false] {
            let what = format!("{mode} sessions={sessions}");
            let s = start(ProtocolMode::Dual, mode, sessions).await;
            let mut legacy = Legacy::new(&s);
            let init = legacy.initialize().await;
            assert_eq!(init.status, 200, "{what}");
            assert_eq!(legacy.session.is_some(), sessions, "{what}");
            let info = &init.response()["result"];
            assert_eq!(info["protocolVersion"], "2025-11-25", "{what}");
            assert!(info.get("resultType").is_none(), "{what}: {info}");

            // A 2026 client on the same server at the same time.
            call2026(&s, 1, "server/discover", json!({})).await;

            let list = legacy.request("tools/list", json!({})).await;
            assert_eq!(list.status, 200, "{what}");
            let result = &list.response()["result"];
            assert_eq!(result["tools"].as_array().unwrap().len(), 66);
            for field in ["ttlMs", "cacheScope", "resultType"] {
                assert!(result.get(field).is_none(), "{what}: {field} in {result}");
            }
            let call = legacy
                .request("tools/call", json!({"name": "org_info", "arguments": {}}))
                .await;
            let result = &call.response()["result"];
            assert_eq!(result["isError"], false, "{what}");
            assert!(result.get("resultType").is_none(), "{what}");
            let ping = legacy.request("ping", json!({})).await;
            assert_eq!(ping.response()["result"], json!({}), "{what}");
            let set_level = legacy
                .request("logging/setLevel", json!({"level": "info"}))
                .await;
            assert_eq!(set_level.response()["result"], json!({}), "{what}");

            // Older initialize versions are still negotiated.
            let old = send(
                s.port(),
                "POST",
                "/mcp",
                &legacy.headers(false)[..3],
                Some(
                    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "old", "version": "0"}}})
                    .to_string(),
                ),
            )
            .await;
            assert_eq!(old.response()["result"]["protocolVersion"], "2025-06-18");

            let c = s.counters();
            assert_eq!(
                (c.initialize, c.requests_2026, c.era_refusals),
                (2, 1, 0),
                "{what}"
            );
            s.shutdown().await;
        }
    }
}

#[tokio::test]
async fn only_2026_refuses_the_initialize_era_with_400_unsupported_version() {
    for mode in MODES {
        for sessions in [true, false] {
            let what = format!("{mode} sessions={sessions}");
            let s = start(ProtocolMode::Only2026, mode, sessions).await;
            let mut legacy = Legacy::new(&s);
            let init = legacy.initialize().await;
            let e = init.assert_error(400, -32022);
            assert_eq!(e["id"], 0, "{what}");
            assert_eq!(
                e["error"]["data"],
                json!({"supported": [V2026], "requested": "2025-11-25"}),
                "{what}"
            );
            assert_eq!(init.header("mcp-session-id"), None, "{what}");

            // Requests without the 2026 _meta or header: no header means 2025-03-26.
            let bare = send(
                s.port(),
                "POST",
                "/mcp",
                &legacy.headers(false),
                Some(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}).to_string()),
            )
            .await;
            let e = bare.assert_error(400, -32022);
            assert_eq!(e["id"], 9);
            assert_eq!(e["error"]["data"]["requested"], "2025-03-26");
            let with_header = legacy
                .request("tools/call", json!({"name": "org_info"}))
                .await;
            let e = with_header.assert_error(400, -32022);
            assert_eq!(e["error"]["data"]["requested"], "2025-11-25");
            let note = send(
                s.port(),
                "POST",
                "/mcp",
                &legacy.headers(true),
                Some(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string()),
            )
            .await;
            let e = note.assert_error(400, -32022);
            assert_eq!(e["id"], Value::Null);
            // The session era's GET stream and DELETE do not exist.
            for method in ["GET", "DELETE"] {
                let mut headers = legacy.headers(true);
                headers.push(("mcp-session-id", "some-session".into()));
                let r = send(s.port(), method, "/mcp", &headers, None).await;
                assert_eq!(r.status, 405, "{what} {method}");
                assert_eq!(r.header("allow").as_deref(), Some("POST"));
            }

            // The 2026 era works.
            let (_, call) = call2026(
                &s,
                3,
                "tools/call",
                json!({"name": "org_info", "arguments": {}}),
            )
            .await;
            tool_json(&call);
            let c = s.counters();
            assert_eq!(c.initialize, 0, "{what}");
            assert_eq!(c.era_refusals, 6, "{what}");
            assert_eq!(c.tool_calls_total, 1, "{what}");
            s.shutdown().await;
        }
    }
}

#[tokio::test]
async fn switching_to_only_2026_at_run_time_refuses_open_2025_sessions() {
    let s = start(ProtocolMode::Dual, ResponseMode::Json, true).await;
    let mut legacy = Legacy::new(&s);
    legacy.initialize().await;
    assert_eq!(legacy.request("tools/list", json!({})).await.status, 200);
    s.set_protocol(ProtocolMode::Only2026);
    legacy
        .request("tools/list", json!({}))
        .await
        .assert_error(400, -32022);
    let (_, discover) = call2026(&s, 1, "server/discover", json!({})).await;
    assert_eq!(discover["result"]["supportedVersions"], json!([V2026]));
    s.set_protocol(ProtocolMode::Dual);
    assert_eq!(legacy.request("tools/list", json!({})).await.status, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn only_2025_answers_discover_with_method_not_found_and_serves_the_initialize_era() {
    for mode in MODES {
        for sessions in [true, false] {
            let what = format!("{mode} sessions={sessions}");
            let s = start(ProtocolMode::Only2025, mode, sessions).await;
            let r = Req::new(11, "server/discover", json!({})).send(&s).await;
            assert_eq!(r.is_sse(), mode == ResponseMode::Sse, "{what}");
            let e = r.assert_error(200, -32601);
            assert_eq!(e["id"], 11, "{what}");
            // Even without the 2026 headers and _meta (a bare probe).
            let bare = Req::new(12, "server/discover", json!({}))
                .meta(None)
                .version_header(None)
                .method_header(None)
                .send(&s)
                .await;
            bare.assert_error(200, -32601);

            // Other 2026 requests: rmcp's answer with only the 2025 versions supported.
            let r = Req::new(13, "tools/list", json!({})).send(&s).await;
            let e = r.assert_error(400, -32022);
            assert_eq!(
                e["error"]["data"]["supported"],
                json!(["2025-03-26", "2025-06-18", "2025-11-25"])
            );
            assert_eq!(e["error"]["data"]["requested"], V2026);

            let mut legacy = Legacy::new(&s);
            let init = legacy.initialize().await;
            assert_eq!(init.status, 200, "{what}");
            assert_eq!(init.response()["result"]["protocolVersion"], "2025-11-25");
            let list = legacy.request("tools/list", json!({})).await;
            assert_eq!(
                list.response()["result"]["tools"].as_array().unwrap().len(),
                66
            );
            let c = s.counters();
            assert_eq!(
                (c.discover, c.era_refusals, c.tools_list),
                (0, 2, 1),
                "{what}"
            );
            s.shutdown().await;
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// input_required (SEP-2322)
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_input_required_switch_asks_for_input_and_honours_the_echoed_state_once() {
    for mode in MODES {
        let s = start(ProtocolMode::Dual, mode, true).await;
        s.set_input_required_tool(Some("org_info".into()));
        let args = json!({"name": "org_info", "arguments": {}});
        let (_, first) = call2026(&s, 1, "tools/call", args.clone()).await;
        let result = &first["result"];
        assert_eq!(result["resultType"], "input_required", "{mode}: {result}");
        assert!(result.get("content").is_none(), "{result}");
        let ask = &result["inputRequests"]["confirm"];
        assert_eq!(ask["method"], "elicitation/create", "{result}");
        assert_eq!(ask["params"]["mode"], "form");
        assert!(ask["params"]["requestedSchema"]["properties"]["confirm"].is_object());
        let state = result["requestState"].as_str().unwrap().to_string();

        // Another tool is not affected.
        let (_, other) = call2026(
            &s,
            2,
            "tools/call",
            json!({"name": "org_users", "arguments": {}}),
        )
        .await;
        tool_json(&other);

        // The retry with the state and the responses completes, once.
        let mut retry = args.clone();
        retry["requestState"] = json!(state);
        retry["inputResponses"] =
            json!({"confirm": {"action": "accept", "content": {"confirm": true}}});
        let (_, done) = call2026(&s, 3, "tools/call", retry.clone()).await;
        assert_eq!(
            tool_json(&done)["organization"]["id"],
            s.dataset().organization.id
        );
        let (_, again) = call2026(&s, 4, "tools/call", retry).await;
        assert_eq!(again["error"]["code"], -32602, "{again}");
        let mut forged = args.clone();
        forged["requestState"] = json!("forged");
        forged["inputResponses"] = json!({});
        let (_, forged) = call2026(&s, 5, "tools/call", forged).await;
        assert_eq!(forged["error"]["code"], -32602);

        // "*" covers every tool; the 2025 era is answered ordinarily.
        s.set_input_required_tool(Some("*".into()));
        let (_, any) = call2026(
            &s,
            6,
            "tools/call",
            json!({"name": "org_users", "arguments": {}}),
        )
        .await;
        assert_eq!(any["result"]["resultType"], "input_required");
        let mut legacy = Legacy::new(&s);
        legacy.initialize().await;
        let old = legacy.request("tools/call", args.clone()).await;
        assert_eq!(old.response()["result"]["isError"], false, "{}", old.body);
        assert_eq!(s.counters().input_required_sent, 2, "{mode}");
        s.set_input_required_tool(None);
        let (_, off) = call2026(&s, 7, "tools/call", args).await;
        tool_json(&off);
        s.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------------
// Authentication in the 2026 era
// ---------------------------------------------------------------------------------------------------

const VERIFIER: &str = "eras-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz-0123";
const REDIRECT: &str = "http://127.0.0.1:49152/callback";

fn form(pairs: &[(&str, &str)]) -> String {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    f.finish()
}

/// Registration, authorization (auto-approve), code exchange: the token response.
async fn oauth_tokens(s: &StandIn) -> Value {
    let r = send(
        s.as_port(),
        "POST",
        "/oauth2/register/",
        &[("content-type", "application/json".into())],
        Some(
            json!({"client_name": "eras", "redirect_uris": [REDIRECT],
                   "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                   "token_endpoint_auth_method": "none", "application_type": "native"})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let client: Value = serde_json::from_str(&r.body).unwrap();
    let client = client["client_id"].as_str().unwrap().to_string();
    let challenge = s256_challenge(VERIFIER);
    let resource = s.resource_url();
    let query = form(&[
        ("response_type", "code"),
        ("client_id", &client),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "s"),
        ("resource", &resource),
        ("scope", "mcp.read offline_access"),
    ]);
    let r = send(
        s.as_port(),
        "GET",
        &format!("/oauth2/authorize/?{query}"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let location = url::Url::parse(&r.header("location").unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let r = send(
        s.as_port(),
        "POST",
        "/oauth2/token/",
        &[("content-type", "application/x-www-form-urlencoded".into())],
        Some(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", VERIFIER),
            ("resource", &resource),
        ])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut tokens: Value = serde_json::from_str(&r.body).unwrap();
    tokens["client_id"] = json!(client);
    tokens
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

#[tokio::test]
async fn every_2026_request_carries_credentials_and_gets_the_401_challenge_without() {
    for protocol in [ProtocolMode::Dual, ProtocolMode::Only2026] {
        for mode in MODES {
            let what = format!("{protocol} {mode}");
            let s = StandIn::start(StandInConfig {
                oauth: OAuthSwitches {
                    access_token_ttl_secs: 1,
                    ..OAuthSwitches::default()
                },
                ..config(protocol, mode, true)
            })
            .await
            .unwrap();
            for method in ["server/discover", "tools/list"] {
                let r = Req::new(1, method, json!({})).auth(vec![]).send(&s).await;
                assert_eq!(r.status, 401, "{what} {method}: {}", r.body);
                let challenge = r.header("www-authenticate").unwrap();
                assert!(
                    challenge.contains(&format!(
                        "resource_metadata=\"{}\"",
                        s.resource_metadata_url()
                    )),
                    "{challenge}"
                );
            }
            let tokens = oauth_tokens(&s).await;
            let access = tokens["access_token"].as_str().unwrap().to_string();
            for (id, method, params) in [
                (2, "server/discover", json!({})),
                (3, "tools/list", json!({})),
                (
                    4,
                    "tools/call",
                    json!({"name": "org_info", "arguments": {}}),
                ),
            ] {
                let r = Req::new(id, method, params)
                    .auth(bearer(&access))
                    .send(&s)
                    .await;
                assert_eq!(r.status, 200, "{what} {method}: {}", r.body);
                assert_eq!(r.response()["result"]["resultType"], "complete", "{what}");
            }
            // The token expires: 401 on the next request; a refreshed token works.
            tokio::time::sleep(Duration::from_millis(1_100)).await;
            let r = Req::new(5, "tools/list", json!({}))
                .auth(bearer(&access))
                .send(&s)
                .await;
            assert_eq!(r.status, 401, "{what}");
            let refreshed = send(
                s.as_port(),
                "POST",
                "/oauth2/token/",
                &[("content-type", "application/x-www-form-urlencoded".into())],
                Some(form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                    ("client_id", tokens["client_id"].as_str().unwrap()),
                    ("resource", &s.resource_url()),
                ])),
            )
            .await;
            assert_eq!(refreshed.status, 200, "{}", refreshed.body);
            let fresh: Value = serde_json::from_str(&refreshed.body).unwrap();
            let r = Req::new(6, "tools/list", json!({}))
                .auth(bearer(fresh["access_token"].as_str().unwrap()))
                .send(&s)
                .await;
            assert_eq!(r.status, 200, "{what}: {}", r.body);
            assert!(s.counters().unauthorized >= 3, "{what}");
            s.shutdown().await;
        }
    }
}

#[tokio::test]
async fn a_token_without_mcp_read_passes_discover_but_not_tools_list() {
    let s = start(ProtocolMode::Only2026, ResponseMode::Json, true).await;
    s.set_grant_without_read(true);
    let tokens = oauth_tokens(&s).await;
    assert_eq!(tokens["scope"], "offline_access");
    let access = tokens["access_token"].as_str().unwrap();
    let r = Req::new(1, "server/discover", json!({}))
        .auth(bearer(access))
        .send(&s)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = Req::new(2, "tools/list", json!({}))
        .auth(bearer(access))
        .send(&s)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("insufficient_scope"));
    // A token-table grant carries its scope in the 2026 era too.
    s.insert_token(
        "tok-safe",
        Grant::new(Scope::WriteSafe, s.dataset().users[3].id.clone()),
    );
    let r = Req::new(3, "tools/list", json!({}))
        .auth(bearer("tok-safe"))
        .send(&s)
        .await;
    assert_eq!(
        r.response()["result"]["tools"].as_array().unwrap().len(),
        82
    );
    s.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------
// Faults in the 2026 era
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn faults_apply_to_2026_requests_in_both_response_modes() {
    for mode in MODES {
        let s = start(ProtocolMode::Only2026, mode, true).await;
        let call = Req::new(
            1,
            "tools/call",
            json!({"name": "org_info", "arguments": {}}),
        );

        s.set_rate_limit(Some(RateLimitFault::new(100, 2, 1)));
        let r = call.send(&s).await;
        assert_eq!(r.status, 429, "{mode}");
        assert_eq!(r.header("retry-after").as_deref(), Some("2"));
        assert_eq!(call.send(&s).await.status, 200);

        s.set_fail_every_nth(Some(1));
        assert_eq!(call.send(&s).await.status, 500, "{mode}");
        s.set_fail_every_nth(None);

        s.set_malformed_json(true);
        let r = call.send(&s).await;
        assert_eq!(r.status, 200);
        let data = if r.is_sse() {
            r.body
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .next_back()
                .unwrap()
                .to_string()
        } else {
            r.body.clone()
        };
        assert!(
            serde_json::from_str::<Value>(&data).is_err(),
            "{mode}: {data}"
        );
        s.set_malformed_json(false);

        s.set_huge_result_bytes(Some(100_000));
        let r = call.send(&s).await;
        let result = &r.response()["result"];
        assert_eq!(result["resultType"], "complete");
        let blocks = result["content"].as_array().unwrap();
        assert_eq!(
            blocks.last().unwrap()["text"].as_str().unwrap().len(),
            100_000,
            "{mode}"
        );
        s.set_huge_result_bytes(None);

        s.set_slow_ms(Some(200));
        let started = Instant::now();
        let r = call.send(&s).await;
        assert!(started.elapsed() >= Duration::from_millis(200));
        tool_json(&r.response());
        s.set_slow_ms(None);

        // The era refusals are answers too, which the faults leave alone unless they hit them.
        s.set_redirect_to(Some("http://127.0.0.1:1/elsewhere".into()));
        let r = call.send(&s).await;
        assert_eq!(r.status, 307);
        s.set_redirect_to(None);

        let f = s.counters().faults_injected;
        assert_eq!(
            (
                f.rate_limited,
                f.internal_errors,
                f.malformed_json,
                f.huge_results,
                f.slowed,
                f.redirects
            ),
            (1, 1, 1, 1, 1, 1),
            "{mode}"
        );
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_cut_stream_or_body_hits_2026_answers_too() {
    for mode in MODES {
        let s = start(ProtocolMode::Dual, mode, false).await;
        s.set_truncated_sse(true);
        // The client sees a cut body: hyper reports the error, so send by hand.
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", s.port()))
            .await
            .unwrap();
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let req = Req::new(1, "tools/list", json!({}));
        let builder = http::Request::builder()
            .method("POST")
            .uri("/mcp")
            .header("host", format!("127.0.0.1:{}", s.port()))
            .header("close-api-key", KEY)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", V2026)
            .header("mcp-method", "tools/list");
        let resp = sender
            .send_request(
                builder
                    .body(Full::new(Bytes::from(req.body().to_string())))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await;
        match body {
            Err(_) => {}
            Ok(collected) => {
                let text = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
                assert!(!text.contains("\"tools\""), "{mode}: {text}");
            }
        }
        assert_eq!(s.counters().faults_injected.truncated, 1, "{mode}");
        s.shutdown().await;
    }
}
