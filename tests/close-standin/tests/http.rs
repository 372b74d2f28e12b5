//! The stand-in over real HTTP: authentication, transport modes, sessions, switches and counters.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::NaiveDate;
use close_standin::{
    reference, DatasetConfig, Grant, ResponseMode, Scope, StandIn, StandInConfig, Switches,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

const KEY: &str = "test-key";

fn config(mode: ResponseMode, sessions: bool) -> StandInConfig {
    StandInConfig {
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
        ..StandInConfig::default()
    }
}

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
    fn is_sse(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
    }
    /// Every JSON-RPC message in the body (one JSON document, or SSE `data:` events).
    fn messages(&self) -> Vec<Value> {
        if self.is_sse() {
            sse_messages(&self.body)
        } else if self.body.trim().is_empty() {
            vec![]
        } else {
            vec![serde_json::from_str(&self.body).expect("JSON body")]
        }
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
    body: Option<&Value>,
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
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let resp = sender
        .send_request(req.body(Full::new(bytes)).unwrap())
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

/// A minimal MCP client over the stand-in's Streamable HTTP endpoint.
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

    async fn post(&self, body: &Value) -> Reply {
        send(self.port, "POST", "/mcp", &self.headers(), Some(body)).await
    }

    async fn initialize(&mut self) -> Reply {
        self.session = None;
        self.protocol = None;
        let reply = self
            .post(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        self.session = reply.header("mcp-session-id");
        self.protocol = Some("2025-11-25".into());
        let ack = self
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(ack.status, 202, "{}", ack.body);
        reply
    }

    /// Sends a request; returns the HTTP reply and the JSON-RPC response to it.
    async fn request(&mut self, method: &str, params: Value) -> (Reply, Value) {
        let id = self.next_id;
        self.next_id += 1;
        let reply = self
            .post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let response = reply
            .messages()
            .into_iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no response in {}: {}", reply.status, reply.body));
        (reply, response)
    }

    async fn call(&mut self, tool: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
            .await
            .1
    }

    async fn list_all_tools(&mut self) -> Vec<Value> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let (_, r) = self.request("tools/list", params).await;
            tools.extend(r["result"]["tools"].as_array().unwrap().iter().cloned());
            match r["result"]["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return tools,
            }
        }
    }
}

fn result_json(response: &Value) -> Value {
    assert_eq!(response["result"]["isError"], false, "{response}");
    serde_json::from_str(response["result"]["content"][0]["text"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn requests_without_credentials_get_close_style_401() {
    let s = StandIn::start(config(ResponseMode::Json, true))
        .await
        .unwrap();
    let r = send(
        s.port(),
        "POST",
        "/mcp",
        &[("content-type", "application/json".into())],
        Some(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"})),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(
        r.body.contains("\"error\": \"invalid_token\""),
        "{}",
        r.body
    );
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
        "{challenge}"
    );
    assert!(
        challenge.ends_with(&format!(
            "resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
            s.base_url()
        )),
        "{challenge}"
    );
    let wrong = send(
        s.port(),
        "POST",
        "/mcp",
        &[("close-api-key", "wrong".into())],
        Some(&json!({})),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(s.counters().unauthorized, 2);
    assert_eq!(s.counters().http_requests, 2);
    s.shutdown().await;
}

#[tokio::test]
async fn an_unknown_close_scope_is_refused_with_400_invalid_scope() {
    let s = StandIn::start(config(ResponseMode::Json, true))
        .await
        .unwrap();
    let r = send(
        s.port(),
        "POST",
        "/mcp",
        &[
            ("close-api-key", KEY.into()),
            ("close-scope", "mcp.admin".into()),
        ],
        Some(&json!({})),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.starts_with("{\"error\": \"invalid_scope\""),
        "{}",
        r.body
    );
    s.shutdown().await;
}

#[tokio::test]
async fn the_protected_resource_metadata_names_this_server() {
    let s = StandIn::start(config(ResponseMode::Json, true))
        .await
        .unwrap();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = send(s.port(), "GET", path, &[], None).await;
        assert_eq!(r.status, 200);
        let doc: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(doc["resource"], format!("{}/", s.base_url()));
        assert_eq!(doc["authorization_servers"], json!([s.issuer_url()]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    s.shutdown().await;
}

#[tokio::test]
async fn sse_sessions_list_the_read_catalog_by_default() {
    let s = StandIn::start(config(ResponseMode::Sse, true))
        .await
        .unwrap();
    let mut c = Client::new(&s, None);
    let init = c.initialize().await;
    assert!(init.is_sse());
    assert!(c.session.is_some());
    let info = &init.messages()[0]["result"];
    assert_eq!(info["serverInfo"]["name"], "close-mcp-standin");
    assert_eq!(info["protocolVersion"], "2025-11-25");
    assert!(info["capabilities"]["tools"].is_object());
    let tools = c.list_all_tools().await;
    assert_eq!(tools.len(), 66);
    assert!(tools.iter().all(|t| t.get("annotations").is_none()));
    assert_eq!(s.counters().initialize, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn json_mode_answers_application_json_even_with_sessions() {
    let s = StandIn::start(config(ResponseMode::Json, true))
        .await
        .unwrap();
    let mut c = Client::new(&s, Some("mcp.write_destructive"));
    let init = c.initialize().await;
    assert_eq!(
        init.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(c.session.is_some());
    let (reply, response) = c.request("tools/list", json!({})).await;
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(response["result"]["tools"].as_array().unwrap().len(), 116);
    s.shutdown().await;
}

#[tokio::test]
async fn stateless_mode_issues_no_session_and_switches_between_json_and_sse() {
    let s = StandIn::start(config(ResponseMode::Json, false))
        .await
        .unwrap();
    let mut c = Client::new(&s, None);
    let init = c.initialize().await;
    assert_eq!(init.header("mcp-session-id"), None);
    assert_eq!(
        init.header("content-type").as_deref(),
        Some("application/json")
    );
    let org = c.call("org_info", json!({})).await;
    assert_eq!(
        result_json(&org)["organization"]["name"],
        "Northwind Analytics"
    );
    s.set_response_mode(ResponseMode::Sse);
    let (reply, response) = c
        .request("tools/call", json!({"name": "org_info", "arguments": {}}))
        .await;
    assert!(reply.is_sse());
    assert_eq!(
        result_json(&response)["organization"]["id"],
        s.dataset().organization.id
    );
    assert_eq!(s.expire_sessions(), 0);
    s.shutdown().await;
}

#[tokio::test]
async fn tools_list_pages_with_an_opaque_cursor_and_rejects_a_bad_one() {
    let s = StandIn::start(config(ResponseMode::Json, true))
        .await
        .unwrap();
    s.set_tools_page_size(Some(25));
    s.set_annotations(true);
    let mut c = Client::new(&s, Some("mcp.write_safe"));
    c.initialize().await;
    let (_, first) = c.request("tools/list", json!({})).await;
    assert_eq!(first["result"]["tools"].as_array().unwrap().len(), 25);
    assert!(first["result"]["nextCursor"].is_string());
    let all = c.list_all_tools().await;
    assert_eq!(all.len(), 82);
    let create = all.iter().find(|t| t["name"] == "create_lead").unwrap();
    assert_eq!(create["annotations"]["readOnlyHint"], false);
    assert_eq!(create["annotations"]["destructiveHint"], false);
    let (_, bad) = c
        .request("tools/list", json!({"cursor": "not-a-cursor"}))
        .await;
    assert_eq!(bad["error"]["code"], -32602);
    s.shutdown().await;
}

#[tokio::test]
async fn tools_above_the_scope_are_unknown_and_write_tools_are_counted_but_refused() {
    let s = StandIn::start(config(ResponseMode::Json, true))
        .await
        .unwrap();
    let mut reader = Client::new(&s, Some("mcp.read"));
    reader.initialize().await;
    let hidden = reader.call("delete_lead", json!({"id": "lead_x"})).await;
    assert_eq!(hidden["error"]["code"], -32602);
    assert_eq!(hidden["error"]["message"], "Unknown tool: delete_lead");
    let missing = reader.call("no_such_tool", json!({})).await;
    assert_eq!(missing["error"]["message"], "Unknown tool: no_such_tool");

    let mut writer = Client::new(&s, Some("mcp.write_destructive"));
    writer.initialize().await;
    let before = s.dataset().leads.len();
    let refused = writer
        .call("delete_lead", json!({"id": s.dataset().leads[0].id}))
        .await;
    assert_eq!(refused["result"]["isError"], true);
    assert!(refused["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("does not modify data"));
    assert_eq!(s.dataset().leads.len(), before);
    let counters = s.counters();
    assert_eq!(counters.write_tool_calls, 2);
    assert_eq!(counters.calls_of("delete_lead"), 2);
    assert_eq!(counters.calls_of("no_such_tool"), 1);
    s.shutdown().await;
}

#[tokio::test]
async fn bad_arguments_come_back_as_tool_errors_naming_the_argument() {
    let s = StandIn::start(config(ResponseMode::Json, true))
        .await
        .unwrap();
    let mut c = Client::new(&s, None);
    c.initialize().await;
    let r = c
        .call("find_opportunities", json!({"status_type": "open"}))
        .await;
    assert_eq!(r["result"]["isError"], true);
    assert!(r["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("'status_type'"));
    let r = c.call("fetch_lead", json!({})).await;
    assert_eq!(
        r["result"]["content"][0]["text"],
        "Missing required argument 'id'"
    );
    let r = c.call("fetch_lead", json!({"id": "lead_missing"})).await;
    assert_eq!(r["result"]["isError"], true);
    s.shutdown().await;
}

#[tokio::test]
async fn sse_tool_calls_send_logging_and_progress_before_the_result() {
    for sessions in [true, false] {
        let s = StandIn::start(config(ResponseMode::Sse, sessions))
            .await
            .unwrap();
        let mut c = Client::new(&s, None);
        c.initialize().await;
        let reply = c
            .post(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": "org_users", "arguments": {}, "_meta": {"progressToken": "p-1"}}}))
            .await;
        assert!(reply.is_sse());
        let messages = reply.messages();
        let result_at = messages.iter().position(|m| m["id"] == 7).expect("result");
        let log_at = messages
            .iter()
            .position(|m| m["method"] == "notifications/message")
            .expect("logging notification");
        let progress_at = messages
            .iter()
            .position(|m| m["method"] == "notifications/progress")
            .expect("progress notification");
        assert!(
            log_at < result_at && progress_at < result_at,
            "sessions={sessions}: {messages:?}"
        );
        assert_eq!(messages[progress_at]["params"]["progressToken"], "p-1");
        s.shutdown().await;
    }
}

#[tokio::test]
async fn expired_sessions_answer_404_until_the_client_initializes_again() {
    let s = StandIn::start(config(ResponseMode::Json, true))
        .await
        .unwrap();
    let mut c = Client::new(&s, None);
    c.initialize().await;
    let old = c.session.clone().unwrap();
    assert_eq!(c.request("tools/list", json!({})).await.0.status, 200);
    assert_eq!(s.expire_sessions(), 1);
    let gone = c
        .post(&json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"}))
        .await;
    assert_eq!(gone.status, 404);
    c.initialize().await;
    assert_ne!(c.session.clone().unwrap(), old);
    assert_eq!(c.request("tools/list", json!({})).await.0.status, 200);
    assert_eq!(s.counters().initialize, 2);
    assert_eq!(s.counters().expired_session_hits, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn the_server_pings_before_the_result_and_waits_for_the_answer() {
    let s = StandIn::start(config(ResponseMode::Sse, true))
        .await
        .unwrap();
    s.set_server_ping_before_result(true);
    let mut c = Client::new(&s, None);
    c.initialize().await;
    // Stream the tools/call reply so the ping can be answered while it is open.
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", s.port()))
        .await
        .unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method("POST")
        .uri("/mcp")
        .header("host", format!("127.0.0.1:{}", s.port()));
    for (k, v) in c.headers() {
        req = req.header(k, v);
    }
    let body = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "org_info", "arguments": {}}});
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let mut body = resp.into_body();
    let mut text = String::new();
    let mut answered = false;
    let result = loop {
        let frame = tokio::time::timeout(Duration::from_secs(15), body.frame())
            .await
            .expect("stream stalled")
            .expect("stream ended")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        let messages = sse_messages(&text[..text.rfind("\n\n").map(|i| i + 2).unwrap_or(0)]);
        if let Some(ping) = messages.iter().find(|m| m["method"] == "ping") {
            if !answered {
                let ack = c
                    .post(&json!({"jsonrpc": "2.0", "id": ping["id"], "result": {}}))
                    .await;
                assert_eq!(ack.status, 202);
                answered = true;
            }
        }
        if let Some(r) = messages
            .iter()
            .find(|m| m["id"] == 5 && m.get("result").is_some())
        {
            break r.clone();
        }
    };
    assert!(answered);
    assert_eq!(result["result"]["isError"], false);
    let counters = s.counters();
    assert_eq!(
        (counters.server_pings_sent, counters.server_pings_answered),
        (1, 1)
    );
    s.shutdown().await;
}

#[tokio::test]
async fn bearer_tokens_from_the_token_table_carry_their_scope() {
    let s = StandIn::start(config(ResponseMode::Json, false))
        .await
        .unwrap();
    s.insert_token(
        "tok-1",
        Grant::new(Scope::WriteSafe, s.dataset().users[3].id.clone()),
    );
    let mut c = Client {
        port: s.port(),
        auth: vec![("authorization", "Bearer tok-1".into())],
        session: None,
        protocol: None,
        next_id: 1,
    };
    c.initialize().await;
    assert_eq!(c.list_all_tools().await.len(), 82);
    let info = result_json(&c.call("org_info", json!({})).await);
    assert_eq!(info["user"]["id"], s.dataset().users[3].id);
    assert_eq!(info["scope"], "mcp.write_safe");
    s.revoke_token("tok-1");
    assert_eq!(
        c.post(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
            .await
            .status,
        401
    );
    s.shutdown().await;
}

#[tokio::test]
async fn latency_and_structured_content_switches_take_effect_at_run_time() {
    let s = StandIn::start(config(ResponseMode::Json, false))
        .await
        .unwrap();
    let mut c = Client::new(&s, None);
    c.initialize().await;
    let plain = c.call("find_lead_statuses", json!({})).await;
    assert!(plain["result"].get("structuredContent").is_none());
    s.set_structured_content(true);
    s.set_latency_ms(150);
    let started = Instant::now();
    let structured = c.call("find_lead_statuses", json!({})).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        structured["result"]["structuredContent"],
        result_json(&structured)
    );
    s.shutdown().await;
}

#[tokio::test]
async fn answers_through_the_server_match_the_reference_functions() {
    let s = StandIn::start(config(ResponseMode::Json, true))
        .await
        .unwrap();
    let mut c = Client::new(&s, None);
    c.initialize().await;
    let ds = s.dataset();
    // Open pipeline per rep via aggregation.
    let agg = result_json(
        &c.call("aggregation", json!({"include_types": ["opportunity"], "aggregations": [{"type": "sum", "field": "value"}], "group_by": ["status_type", "user_id"]}))
            .await,
    );
    let from_tool: std::collections::BTreeMap<String, i64> = agg["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["group"]["status_type"] == "active")
        .map(|r| {
            (
                r["group"]["user_id"].as_str().unwrap().to_string(),
                r["values"]["sum(value)"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(from_tool, reference::open_pipeline_value_per_user(ds));
    // Deals in Proposal, via find_opportunities.
    let proposal = ds
        .opportunity_status_by_label("Sales", "Proposal")
        .unwrap()
        .id
        .clone();
    let page = result_json(
        &c.call("find_opportunities", json!({"status_ids": [proposal]}))
            .await,
    );
    assert_eq!(
        page["total_results"],
        reference::opportunities_by_status(ds, &proposal).len()
    );
    s.shutdown().await;
}
