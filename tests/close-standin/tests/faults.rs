//! Fault injection over real HTTP: broken JSON, cut streams, 500s, 429s, huge and slow results,
//! redirects, and the hostile catalog, in JSON and SSE modes, with and without sessions.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::NaiveDate;
use close_standin::{
    DatasetConfig, FaultTarget, Faults, RateLimitFault, ResponseMode, StandIn, StandInConfig,
    Switches,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "test-key";

const MODES: [(ResponseMode, bool); 4] = [
    (ResponseMode::Json, true),
    (ResponseMode::Json, false),
    (ResponseMode::Sse, true),
    (ResponseMode::Sse, false),
];

async fn start(mode: ResponseMode, sessions: bool, faults: Faults) -> StandIn {
    StandIn::start(StandInConfig {
        api_keys: vec![KEY.into()],
        dataset: DatasetConfig {
            seed: 42,
            anchor: NaiveDate::from_ymd_opt(2026, 3, 12).unwrap(),
        },
        switches: Switches {
            response_mode: mode,
            ..Switches::default()
        },
        sessions_required: sessions,
        faults,
        ..StandInConfig::default()
    })
    .await
    .unwrap()
}

/// A response whose body has not been read yet.
struct Open {
    status: u16,
    headers: http::HeaderMap,
    body: Incoming,
    sent: Instant,
    headers_after: Duration,
}

impl Open {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    /// The whole body, or the error that cut it.
    async fn text(self) -> Result<String, hyper::Error> {
        let bytes = self.body.collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

async fn open(port: u16, headers: &[(&'static str, String)], body: &Value) -> Open {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method("POST")
        .uri("/mcp")
        .header("host", format!("127.0.0.1:{port}"));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let sent = Instant::now();
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    Open {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        headers_after: sent.elapsed(),
        sent,
        body: resp.into_body(),
    }
}

/// The data of each SSE event (priming events with empty data left out).
fn sse_data(body: &str) -> Vec<String> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.trim_start())
                .collect();
            let data = data.join("\n");
            (!data.trim().is_empty()).then_some(data)
        })
        .collect()
}

/// A minimal MCP client.
struct Client {
    port: u16,
    auth: Vec<(&'static str, String)>,
    session: Option<String>,
    protocol: Option<String>,
    next_id: i64,
}

impl Client {
    fn new(standin: &StandIn, scope: Option<&str>) -> Client {
        let mut auth = vec![("close-api-key", KEY.to_string())];
        if let Some(s) = scope {
            auth.push(("close-scope", s.to_string()));
        }
        Client {
            port: standin.port(),
            auth,
            session: None,
            protocol: None,
            next_id: 1,
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = self.auth.clone();
        h.push(("content-type", "application/json".into()));
        h.push(("accept", "application/json, text/event-stream".into()));
        if let Some(s) = &self.session {
            h.push(("mcp-session-id", s.clone()));
        }
        if let Some(p) = &self.protocol {
            h.push(("mcp-protocol-version", p.clone()));
        }
        h
    }

    async fn open(&self, body: &Value) -> Open {
        open(self.port, &self.headers(), body).await
    }

    fn request_body(&mut self, method: &str, params: Value) -> (i64, Value) {
        let id = self.next_id;
        self.next_id += 1;
        (
            id,
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
    }

    async fn open_request(&mut self, method: &str, params: Value) -> Open {
        let (_, body) = self.request_body(method, params);
        self.open(&body).await
    }

    async fn open_call(&mut self, tool: &str, args: Value) -> Open {
        self.open_request("tools/call", json!({"name": tool, "arguments": args}))
            .await
    }

    async fn initialize(&mut self) {
        self.session = None;
        self.protocol = None;
        let init = self
            .open(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}))
            .await;
        assert_eq!(init.status, 200);
        self.session = init.header("mcp-session-id");
        let body = init.text().await.unwrap();
        assert!(
            body.contains("\"serverInfo\""),
            "initialize answered {body}"
        );
        self.protocol = Some("2025-11-25".into());
        let ack = self
            .open(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(ack.status, 202);
    }

    /// A request whose response must come through intact; returns the JSON-RPC response.
    async fn request(&mut self, method: &str, params: Value) -> Value {
        let (id, body) = self.request_body(method, params);
        let reply = self.open(&body).await;
        assert_eq!(reply.status, 200);
        let sse = reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let text = reply.text().await.unwrap();
        let messages: Vec<Value> = if sse {
            sse_data(&text)
                .iter()
                .map(|d| serde_json::from_str(d).unwrap())
                .collect()
        } else {
            vec![serde_json::from_str(&text).unwrap()]
        };
        messages
            .into_iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no response in {text}"))
    }

    async fn list_tools(&mut self) -> Vec<Value> {
        self.request("tools/list", json!({})).await["result"]["tools"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn is_broken_json(text: &str) -> bool {
    text.trim_start().starts_with('{') && serde_json::from_str::<Value>(text).is_err()
}

// ---------------------------------------------------------------------------------------------------
// malformed_json
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_breaks_tool_call_responses_in_every_mode_and_leaves_the_rest_alone() {
    for (mode, sessions) in MODES {
        let s = start(
            mode,
            sessions,
            Faults {
                malformed_json: true,
                target: FaultTarget::ToolsCall,
                ..Faults::default()
            },
        )
        .await;
        let mut c = Client::new(&s, None);
        c.initialize().await;
        assert_eq!(c.list_tools().await.len(), 66);
        let reply = c
            .open_request(
                "tools/call",
                json!({"name": "org_users", "arguments": {}, "_meta": {"progressToken": "p"}}),
            )
            .await;
        assert_eq!(reply.status, 200);
        let content_type = reply.header("content-type").unwrap();
        let text = reply.text().await.unwrap();
        if mode == ResponseMode::Json {
            assert_eq!(content_type, "application/json");
            assert!(is_broken_json(&text), "{mode} {sessions}: {text}");
        } else {
            assert!(content_type.starts_with("text/event-stream"));
            let events = sse_data(&text);
            let (last, before) = events.split_last().unwrap();
            assert!(is_broken_json(last), "{mode} {sessions}: {text}");
            assert!(!before.is_empty(), "{mode} {sessions}: {text}");
            for data in before {
                let note: Value = serde_json::from_str(data).unwrap();
                assert!(note["method"]
                    .as_str()
                    .unwrap()
                    .starts_with("notifications/"));
            }
        }
        assert_eq!(s.counters().faults_injected.malformed_json, 1);
        s.set_malformed_json(false);
        let fine = c
            .request("tools/call", json!({"name": "org_info", "arguments": {}}))
            .await;
        assert_eq!(fine["result"]["isError"], false);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn malformed_json_aimed_at_everything_breaks_initialize_too() {
    let s = start(ResponseMode::Json, false, Faults::default()).await;
    s.set_malformed_json(true);
    let c = Client::new(&s, None);
    let init = c
        .open(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}))
        .await;
    assert_eq!(init.status, 200);
    let content_length: usize = init.header("content-length").unwrap().parse().unwrap();
    let text = init.text().await.unwrap();
    assert_eq!(content_length, text.len());
    assert!(is_broken_json(&text), "{text}");
    s.set_fault_target(FaultTarget::ToolsList);
    let mut c = Client::new(&s, None);
    c.initialize().await;
    let list = c
        .open_request("tools/list", json!({}))
        .await
        .text()
        .await
        .unwrap();
    assert!(is_broken_json(&list));
    assert_eq!(s.counters().faults_injected.malformed_json, 2);
    s.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------
// truncated_sse
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn truncated_sse_ends_the_stream_cleanly_after_the_notifications() {
    for sessions in [true, false] {
        let s = start(ResponseMode::Sse, sessions, Faults::default()).await;
        s.set_truncated_sse(true);
        s.set_fault_target(FaultTarget::ToolsCall);
        let mut c = Client::new(&s, None);
        c.initialize().await;
        let reply = c
            .open_request(
                "tools/call",
                json!({"name": "org_users", "arguments": {}, "_meta": {"progressToken": "p"}}),
            )
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection").as_deref(), Some("close"));
        let text = tokio::time::timeout(Duration::from_secs(10), reply.text())
            .await
            .expect("the stream ends")
            .expect("and ends cleanly");
        let messages: Vec<Value> = sse_data(&text)
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert!(
            messages
                .iter()
                .any(|m| m["method"] == "notifications/message"),
            "sessions={sessions}: {text}"
        );
        assert!(messages.iter().all(|m| m.get("result").is_none()), "{text}");
        assert_eq!(s.counters().faults_injected.truncated, 1);
        s.set_truncated_sse(false);
        let fine = c
            .request("tools/call", json!({"name": "org_info", "arguments": {}}))
            .await;
        assert_eq!(fine["result"]["isError"], false);
        s.shutdown().await;
    }
}

/// Sends one POST over a raw socket and reads until the server closes the connection.
async fn raw_post(port: u16, headers: &[(&'static str, String)], body: &Value) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let body = body.to_string();
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn truncated_json_bodies_promise_more_than_they_send() {
    for sessions in [true, false] {
        let s = start(ResponseMode::Json, sessions, Faults::default()).await;
        let mut c = Client::new(&s, None);
        c.initialize().await;
        s.set_truncated_sse(true);
        let (_, body) = c.request_body("tools/call", json!({"name": "org_info", "arguments": {}}));
        let raw = raw_post(s.port(), &c.headers(), &body).await;
        let (head, received) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let promised: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_string)
            })
            .expect("a Content-Length")
            .parse()
            .unwrap();
        assert!(
            !received.is_empty()
                && received.len() <= promised / 2
                && received.len() + 4 > promised / 2,
            "sessions={sessions}: {} of {promised} bytes: {received}",
            received.len()
        );
        assert!(received.starts_with('{'));
        // A regular HTTP client sees an incomplete message.
        let cut = c.open_call("org_info", json!({})).await;
        assert!(cut.text().await.is_err());
        assert_eq!(s.counters().faults_injected.truncated, 2);
        s.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------------
// fail_every_nth, rate_limit, redirect_to
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_nth_post_fails_with_a_short_json_500() {
    for (mode, sessions) in MODES {
        let s = start(mode, sessions, Faults::default()).await;
        let mut c = Client::new(&s, None);
        c.initialize().await;
        s.set_fail_every_nth(Some(3));
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let reply = c.open_request("tools/list", json!({})).await;
            statuses.push(reply.status);
            if reply.status == 500 {
                assert_eq!(
                    reply.header("content-type").as_deref(),
                    Some("application/json")
                );
                let body: Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
                assert_eq!(body["error"], "internal_error");
            }
        }
        assert_eq!(
            statuses,
            [200, 200, 500, 200, 200, 500],
            "{mode} {sessions}"
        );
        assert_eq!(s.counters().faults_injected.internal_errors, 2);
        assert_eq!(s.counters().tools_list, 4);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn rate_limits_answer_429_with_close_headers_then_recover() {
    let s = start(ResponseMode::Sse, true, Faults::default()).await;
    let mut c = Client::new(&s, None);
    c.initialize().await;
    s.set_rate_limit(Some(RateLimitFault::new(100, 7, 2)));
    assert_eq!(c.list_tools().await.len(), 66);
    let first = c.open_call("delete_lead", json!({"id": "lead_x"})).await;
    assert_eq!(first.status, 429);
    assert_eq!(
        first.header("ratelimit").as_deref(),
        Some("limit=100, remaining=0, reset=7")
    );
    assert_eq!(first.header("retry-after").as_deref(), Some("7"));
    let body = first.text().await.unwrap();
    assert!(body.starts_with("{\"error\": \"rate_limited\", "), "{body}");
    assert_eq!(s.faults().rate_limit.map(|r| r.times), Some(1));
    assert_eq!(c.open_call("org_info", json!({})).await.status, 429);
    assert_eq!(s.faults().rate_limit, None);
    let fine = c
        .request("tools/call", json!({"name": "org_info", "arguments": {}}))
        .await;
    assert_eq!(fine["result"]["isError"], false);
    let counters = s.counters();
    assert_eq!(counters.faults_injected.rate_limited, 2);
    assert_eq!(counters.write_tool_calls, 1);
    assert_eq!(counters.tool_calls_total, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn redirects_answer_every_post_with_307_but_not_unauthenticated_requests() {
    let s = start(ResponseMode::Json, true, Faults::default()).await;
    let mut c = Client::new(&s, Some("mcp.write_destructive"));
    c.initialize().await;
    let elsewhere = "http://127.0.0.1:9/mcp".to_string();
    s.set_redirect_to(Some(elsewhere.clone()));
    for body in [
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "delete_lead", "arguments": {"id": "lead_x"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ] {
        let reply = c.open(&body).await;
        assert_eq!(reply.status, 307);
        assert_eq!(reply.header("location"), Some(elsewhere.clone()));
        assert_eq!(reply.text().await.unwrap(), "");
    }
    let anonymous = open(
        s.port(),
        &[("content-type", "application/json".into())],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    let counters = s.counters();
    assert_eq!(counters.faults_injected.redirects, 2);
    assert_eq!(counters.write_tool_calls, 1);
    assert_eq!(counters.tool_calls_total, 0);
    s.set_redirect_to(Some("bad\nurl".into()));
    assert_eq!(c.open_request("tools/list", json!({})).await.status, 500);
    s.clear_faults();
    assert_eq!(s.faults(), Faults::default());
    assert_eq!(c.list_tools().await.len(), 116);
    s.reset_counters();
    assert_eq!(s.counters().faults_injected.total(), 0);
    s.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------
// huge_result_bytes, slow_ms
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn huge_results_carry_an_extra_block_of_exactly_the_size_asked() {
    const SIZE: u64 = 3 << 20;
    for (mode, sessions) in MODES {
        let s = start(mode, sessions, Faults::default()).await;
        let mut c = Client::new(&s, None);
        c.initialize().await;
        s.set_huge_result_bytes(Some(SIZE));
        assert_eq!(c.list_tools().await.len(), 66);
        let probe = c.open_call("org_info", json!({})).await;
        assert_eq!(probe.header("content-length"), None, "{mode} {sessions}");
        drop(probe);
        let r = c
            .request("tools/call", json!({"name": "org_info", "arguments": {}}))
            .await;
        let content = r["result"]["content"].as_array().unwrap();
        assert_eq!(content.len(), 2);
        let info: Value = serde_json::from_str(content[0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(info["organization"]["name"], "Northwind Analytics");
        assert_eq!(content[1]["type"], "text");
        assert_eq!(content[1]["text"].as_str().unwrap().len() as u64, SIZE);
        assert_eq!(r["result"]["isError"], false);
        assert!(s.counters().faults_injected.huge_results >= 1);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_client_can_cut_a_gigabyte_result_while_it_flows() {
    for mode in [ResponseMode::Json, ResponseMode::Sse] {
        let s = start(mode, true, Faults::default()).await;
        let mut c = Client::new(&s, None);
        c.initialize().await;
        s.set_huge_result_bytes(Some(u64::MAX));
        assert_eq!(s.faults().huge_result_bytes, Some(1 << 30));
        let started = Instant::now();
        let mut reply = c.open_call("org_info", json!({})).await;
        let mut read = 0usize;
        while read < 4 << 20 {
            let frame = tokio::time::timeout(Duration::from_secs(10), reply.body.frame())
                .await
                .expect("the result flows")
                .expect("and does not end")
                .unwrap();
            read += frame.into_data().map(|d| d.len()).unwrap_or(0);
        }
        drop(reply);
        assert!(started.elapsed() < Duration::from_secs(10));
        s.set_huge_result_bytes(None);
        let fine = c
            .request("tools/call", json!({"name": "org_info", "arguments": {}}))
            .await;
        assert_eq!(fine["result"]["content"].as_array().unwrap().len(), 1);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn slow_json_responses_send_the_headers_at_once_and_the_body_later() {
    for sessions in [true, false] {
        let s = start(ResponseMode::Json, sessions, Faults::default()).await;
        let mut c = Client::new(&s, None);
        c.initialize().await;
        s.set_slow_ms(Some(600));
        s.set_fault_target(FaultTarget::ToolsCall);
        let reply = c.open_call("org_info", json!({})).await;
        assert_eq!(reply.status, 200);
        assert!(
            reply.headers_after < Duration::from_millis(400),
            "headers after {:?}",
            reply.headers_after
        );
        let sent = reply.sent;
        let text = reply.text().await.unwrap();
        assert!(sent.elapsed() >= Duration::from_millis(600));
        let r: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(r["result"]["isError"], false);
        let started = Instant::now();
        c.list_tools().await;
        assert!(started.elapsed() < Duration::from_millis(600));
        assert_eq!(s.counters().faults_injected.slowed, 1);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn slow_sse_responses_send_the_notifications_at_once_and_the_result_later() {
    for sessions in [true, false] {
        let s = start(ResponseMode::Sse, sessions, Faults::default()).await;
        let mut c = Client::new(&s, None);
        c.initialize().await;
        s.set_slow_ms(Some(600));
        let mut reply = c.open_call("org_info", json!({})).await;
        let mut text = String::new();
        let mut first_event_after = None;
        let result = loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), reply.body.frame())
                .await
                .expect("stream stalled")
                .expect("stream ended")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
            let complete = &text[..text.rfind("\n\n").map(|i| i + 2).unwrap_or(0)];
            let messages: Vec<Value> = sse_data(complete)
                .iter()
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            if first_event_after.is_none() && !messages.is_empty() {
                first_event_after = Some(reply.sent.elapsed());
            }
            if let Some(r) = messages.into_iter().find(|m| m.get("result").is_some()) {
                break r;
            }
        };
        let first = first_event_after.unwrap();
        assert!(
            first < Duration::from_millis(400),
            "first event after {first:?}"
        );
        assert!(reply.sent.elapsed() >= Duration::from_millis(600));
        assert_eq!(result["result"]["isError"], false);
        assert_eq!(s.counters().faults_injected.slowed, 1);
        s.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------------
// The hostile catalog
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_hostile_catalog_lists_and_accepts_every_tool_at_read_scope() {
    let s = start(ResponseMode::Json, true, Faults::default()).await;
    let mut c = Client::new(&s, Some("mcp.read"));
    c.initialize().await;
    let hidden = c
        .request(
            "tools/call",
            json!({"name": "delete_lead", "arguments": {"id": "x"}}),
        )
        .await;
    assert_eq!(hidden["error"]["message"], "Unknown tool: delete_lead");

    s.set_ignore_scope_filter(true);
    s.set_lying_annotations(true);
    let tools = c.list_tools().await;
    assert_eq!(tools.len(), 116);
    for tool in &tools {
        assert_eq!(tool["annotations"]["readOnlyHint"], true, "{tool}");
        assert_eq!(tool["annotations"]["destructiveHint"], false, "{tool}");
    }
    let leads = s.dataset().leads.len();
    let lead = s.dataset().leads[0].id.clone();
    let deleted = c
        .request(
            "tools/call",
            json!({"name": "delete_lead", "arguments": {"id": lead}}),
        )
        .await;
    assert_eq!(deleted["result"]["isError"], true);
    assert!(deleted["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("does not modify data"));
    assert_eq!(s.dataset().leads.len(), leads);
    assert_eq!(s.counters().write_tool_calls, 2);

    s.set_lying_annotations(false);
    s.set_annotations(true);
    let honest = c.list_tools().await;
    let delete = honest.iter().find(|t| t["name"] == "delete_lead").unwrap();
    assert_eq!(delete["annotations"]["destructiveHint"], true);
    s.set_ignore_scope_filter(false);
    assert_eq!(c.list_tools().await.len(), 66);
    s.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_binary_takes_fault_flags_and_documents_them() {
    let exe = env!("CARGO_BIN_EXE_close-standin");
    let help = std::process::Command::new(exe)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for flag in [
        "--malformed-json",
        "--truncated-sse",
        "--fault-target",
        "--fail-every-nth",
        "--rate-limit",
        "--huge-result-bytes",
        "--slow-ms",
        "--redirect-to",
        "--ignore-scope-filter",
        "--lying-annotations",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }

    let mut child = std::process::Command::new(exe)
        .args([
            "--port",
            "0",
            "--as-port",
            "0",
            "--api-key",
            KEY,
            "--mode",
            "json",
            "--sessions",
            "optional",
            "--rate-limit",
            "1",
            "--rate-limit-limit",
            "20",
            "--rate-limit-reset",
            "3",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let port: u16 = url
        .trim()
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/mcp")
        .parse()
        .unwrap_or_else(|_| panic!("unexpected URL line {url:?}"));
    let mut c = Client {
        port,
        auth: vec![("close-api-key", KEY.into())],
        session: None,
        protocol: None,
        next_id: 1,
    };
    c.initialize().await;
    let limited = c.open_call("org_info", json!({})).await;
    let status = limited.status;
    let header = limited.header("ratelimit");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 429);
    assert_eq!(header.as_deref(), Some("limit=20, remaining=0, reset=3"));
}
