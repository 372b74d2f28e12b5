use super::*;
use crate::http::TransportError;
use crate::testing::*;
use crate::{MemorySessionStore, NoAuth, NoLogger, StaticHeaders};
use serde_json::json;
use std::cell::Cell;

const ENDPOINT: &str = "https://mcp.example.com/mcp";

/// The 2025 era, pinned: these tests script `initialize` first. The probe with `server/discover`
/// (the default, `Auto`) and the 2026-07-28 era are tested in `modern_tests.rs`.
fn config() -> ClientConfig {
    let mut config = ClientConfig::new(ENDPOINT, "test-client", "0.1.0");
    config.protocol = ProtocolChoice::Legacy;
    config
}

fn body(request: &HttpRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

/// A server that initializes with `session` and accepts `notifications/initialized`.
fn handshake(
    http: ScriptedHttp,
    version: &'static str,
    session: Option<&'static str>,
) -> ScriptedHttp {
    http.then(initialize_ok(version, session)).then(accepted())
}

fn stored(store: &MemorySessionStore) -> Option<Session> {
    store.load().map(|s| serde_json::from_str(&s).unwrap())
}

#[test]
fn initialize_offers_2025_11_25_with_client_info_and_no_session_or_version_headers() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", Some("sess-1"));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let init = client.initialize().unwrap();
    assert_eq!(init.server_info.name, "test-server");

    let requests = http.requests();
    assert_eq!(requests.len(), 2);
    let init_request = &requests[0];
    assert_eq!(init_request.method, Method::Post);
    assert_eq!(init_request.url, ENDPOINT);
    assert_eq!(
        init_request.header("accept"),
        Some("application/json, text/event-stream")
    );
    assert_eq!(
        init_request.header("content-type"),
        Some("application/json")
    );
    assert_eq!(init_request.header("mcp-protocol-version"), None);
    assert_eq!(init_request.header("mcp-session-id"), None);
    let sent = body(init_request);
    assert_eq!(sent["jsonrpc"], "2.0");
    assert_eq!(sent["method"], "initialize");
    assert_eq!(sent["params"]["protocolVersion"], "2025-11-25");
    assert_eq!(
        sent["params"]["clientInfo"],
        json!({ "name": "test-client", "version": "0.1.0" })
    );
    assert_eq!(sent["params"]["capabilities"], json!({}));

    let initialized = &requests[1];
    assert_eq!(
        body(initialized),
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })
    );
    assert_eq!(initialized.header("mcp-session-id"), Some("sess-1"));
    assert_eq!(
        initialized.header("mcp-protocol-version"),
        Some("2025-11-25")
    );

    assert_eq!(
        stored(&store),
        Some(Session {
            endpoint: ENDPOINT.into(),
            session_id: Some("sess-1".into()),
            protocol_version: "2025-11-25".into(),
            tool_headers: None,
        })
    );
}

#[test]
fn initialize_accepts_the_two_older_supported_versions_and_uses_them_in_the_header() {
    for version in ["2025-06-18", "2025-03-26"] {
        let http =
            handshake(ScriptedHttp::new(), version, None).then(result(json!({ "tools": [] })));
        let store = MemorySessionStore::default();
        let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
        client.list_tools().unwrap();
        let requests = http.requests();
        assert_eq!(requests[2].header("mcp-protocol-version"), Some(version));
        assert_eq!(
            requests[2].header("mcp-session-id"),
            None,
            "a stateless server issued no session id"
        );
    }
}

#[test]
fn initialize_refuses_a_version_it_does_not_support() {
    for version in ["2024-11-05", "2026-07-28", "banana"] {
        let http = ScriptedHttp::new().then(initialize_ok(version, None));
        let store = MemorySessionStore::default();
        let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
        let err = client.initialize().unwrap_err();
        assert!(
            matches!(&err, McpError::Protocol(m) if m.contains(version)),
            "{version}: {err:?}"
        );
        assert_eq!(store.load(), None);
        assert_eq!(
            http.requests().len(),
            1,
            "no initialized notification after a refused version"
        );
    }
}

#[test]
fn the_initialized_notification_may_be_answered_with_200_and_a_json_or_empty_body() {
    for answer in [
        json_response(200, &json!({ "jsonrpc": "2.0" })),
        empty(200),
        empty(204),
    ] {
        let mut answer = Some(answer);
        let http = ScriptedHttp::new()
            .then(initialize_ok("2025-11-25", None))
            .then(move |_| Ok(answer.take().unwrap()));
        let store = MemorySessionStore::default();
        let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
        client.initialize().unwrap();
    }
}

#[test]
fn an_initialize_answer_without_server_info_is_a_protocol_error() {
    let http = ScriptedHttp::new().then(result(json!({ "protocolVersion": "2025-11-25" })));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert!(matches!(client.initialize(), Err(McpError::Protocol(_))));
}

#[test]
fn a_session_id_with_control_characters_is_refused() {
    let http = ScriptedHttp::new().then(initialize_ok("2025-11-25", Some("bad id\r\nx")));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert!(matches!(client.initialize(), Err(McpError::Protocol(_))));
}

#[test]
fn later_requests_carry_the_session_id_the_negotiated_version_and_the_auth_headers() {
    let http = handshake(ScriptedHttp::new(), "2025-06-18", Some("abc"))
        .then(result(json!({ "tools": [] })));
    let store = MemorySessionStore::default();
    let auth = StaticHeaders(vec![("X-Api-Key".into(), "k".into())]);
    let mut client = McpClient::new(config(), &http, &auth, &store, &NoLogger).unwrap();
    client.list_tools().unwrap();
    let requests = http.requests();
    for request in &requests {
        assert_eq!(request.header("x-api-key"), Some("k"));
    }
    let list = &requests[2];
    assert_eq!(list.header("mcp-session-id"), Some("abc"));
    assert_eq!(list.header("mcp-protocol-version"), Some("2025-06-18"));
    assert_eq!(
        list.header("accept"),
        Some("application/json, text/event-stream")
    );
    assert_eq!(body(list)["method"], "tools/list");
    assert_eq!(body(list).get("params"), None);
}

#[test]
fn a_stored_session_is_reused_without_initializing_again() {
    let store = MemorySessionStore::default();
    {
        let http = handshake(ScriptedHttp::new(), "2025-11-25", Some("s-1"));
        let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
        client.initialize().unwrap();
    }
    let http = ScriptedHttp::new().then(result(json!({ "tools": [] })));
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.list_tools().unwrap();
    let requests = http.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("mcp-session-id"), Some("s-1"));
}

#[test]
fn a_stored_session_for_another_endpoint_or_garbage_is_ignored() {
    for stored_value in [
        r#"{"endpoint":"https://other.example/mcp","sessionId":"x","protocolVersion":"2025-11-25"}"#,
        "not json",
        r#"{"endpoint":"https://mcp.example.com/mcp","protocolVersion":"1999-01-01"}"#,
    ] {
        let store = MemorySessionStore::default();
        store.save(Some(stored_value));
        let http = handshake(ScriptedHttp::new(), "2025-11-25", Some("new"))
            .then(result(json!({ "tools": [] })));
        let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
        client.list_tools().unwrap();
        assert_eq!(http.requests().len(), 3, "{stored_value}");
        assert_eq!(stored(&store).unwrap().session_id.as_deref(), Some("new"));
    }
}

#[test]
fn a_404_on_a_request_with_a_session_reinitializes_once_and_replays_the_request() {
    let store = MemorySessionStore::default();
    store.save(Some(
        &json!({ "endpoint": ENDPOINT, "sessionId": "old", "protocolVersion": "2025-11-25" })
            .to_string(),
    ));
    let http = ScriptedHttp::new()
        .then(|_| Ok(empty(404)))
        .then(initialize_ok("2025-11-25", Some("new")))
        .then(accepted())
        .then(result(json!({ "tools": [] })));
    let logger = RecordingLogger::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &logger).unwrap();
    client.list_tools().unwrap();
    let requests = http.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[0].header("mcp-session-id"), Some("old"));
    assert_eq!(body(&requests[1])["method"], "initialize");
    assert_eq!(requests[1].header("mcp-session-id"), None);
    assert_eq!(body(&requests[3])["method"], "tools/list");
    assert_eq!(requests[3].header("mcp-session-id"), Some("new"));
    assert_eq!(stored(&store).unwrap().session_id.as_deref(), Some("new"));
    assert!(logger.0.borrow().iter().any(|(_, m)| m.contains("expired")));
}

#[test]
fn a_second_404_after_reinitializing_is_an_error_and_the_session_is_forgotten() {
    let store = MemorySessionStore::default();
    store.save(Some(
        &json!({ "endpoint": ENDPOINT, "sessionId": "old", "protocolVersion": "2025-11-25" })
            .to_string(),
    ));
    let http = ScriptedHttp::new()
        .then(|_| Ok(empty(404)))
        .then(initialize_ok("2025-11-25", Some("new")))
        .then(accepted())
        .then(|_| Ok(empty(404)));
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.list_tools().unwrap_err();
    assert!(matches!(err, McpError::Http { status: 404, .. }), "{err:?}");
    assert_eq!(http.remaining(), 0);
    assert_eq!(store.load(), None);
}

#[test]
fn a_404_without_a_session_id_is_a_plain_http_error() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None).then(|_| {
        Ok(response(
            404,
            &[("Content-Type", "text/plain")],
            vec![b"no such path".to_vec()],
        ))
    });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.list_tools().unwrap_err();
    assert_eq!(
        err,
        McpError::Http {
            status: 404,
            message: "no such path".into()
        }
    );
}

fn tool(name: &str) -> Value {
    json!({ "name": name, "inputSchema": { "type": "object" } })
}

#[test]
fn tools_list_follows_next_cursor_to_the_end() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None)
        .then(result(
            json!({ "tools": [tool("a"), tool("b")], "nextCursor": "p2" }),
        ))
        .then(result(json!({ "tools": [tool("c")], "nextCursor": "p3" })))
        .then(result(json!({ "tools": [tool("d")], "nextCursor": null })));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let tools = client.list_tools().unwrap();
    assert_eq!(
        tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>(),
        vec!["a", "b", "c", "d"]
    );
    let bodies = http.bodies();
    assert_eq!(bodies[3]["params"], json!({ "cursor": "p2" }));
    assert_eq!(bodies[4]["params"], json!({ "cursor": "p3" }));
}

#[test]
fn a_repeated_cursor_stops_pagination_with_a_protocol_error() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None)
        .then(result(json!({ "tools": [tool("a")], "nextCursor": "x" })))
        .then(result(json!({ "tools": [tool("b")], "nextCursor": "y" })))
        .then(result(json!({ "tools": [tool("c")], "nextCursor": "x" })));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.list_tools().unwrap_err();
    assert!(
        matches!(&err, McpError::Protocol(m) if m.contains("loop")),
        "{err:?}"
    );
}

#[test]
fn pagination_stops_after_the_page_limit() {
    let mut http = handshake(ScriptedHttp::new(), "2025-11-25", None);
    for page in 0..5 {
        http = http.then(result(
            json!({ "tools": [], "nextCursor": format!("c{page}") }),
        ));
    }
    let store = MemorySessionStore::default();
    let mut cfg = config();
    cfg.max_pages = 5;
    let mut client = McpClient::new(cfg, &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.list_tools().unwrap_err();
    assert!(
        matches!(&err, McpError::Protocol(m) if m.contains("5 pages")),
        "{err:?}"
    );
}

#[test]
fn a_malformed_tool_is_skipped_and_logged_but_the_others_are_kept() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None).then(result(
        json!({ "tools": [tool("good"), { "name": "bad", "inputSchema": null }, 42] }),
    ));
    let store = MemorySessionStore::default();
    let logger = RecordingLogger::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &logger).unwrap();
    let tools = client.list_tools().unwrap();
    assert_eq!(tools.len(), 1);
    assert!(logger
        .0
        .borrow()
        .iter()
        .any(|(l, m)| *l == LogLevel::Warn && m.contains("`bad`")));
}

#[test]
fn a_tools_list_result_without_a_tools_array_is_a_protocol_error() {
    let http =
        handshake(ScriptedHttp::new(), "2025-11-25", None).then(result(json!({ "tools": "many" })));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert!(matches!(client.list_tools(), Err(McpError::Protocol(_))));
}

fn sse_event(message: &Value) -> String {
    format!("event: message\ndata: {message}\n\n")
}

#[test]
fn a_server_ping_on_the_stream_is_answered_and_the_response_is_still_read() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", Some("s"))
        .then(|request| {
            let id = request_id(request);
            let ping = json!({ "jsonrpc": "2.0", "id": "srv-1", "method": "ping" });
            let progress = json!({ "jsonrpc": "2.0", "method": "notifications/progress", "params": { "progress": 1 } });
            let answer = json!({ "jsonrpc": "2.0", "id": id, "result": { "tools": [] } });
            let stream = format!(
                "id: e0\nretry: 1000\ndata: \n\n: keepalive\n{}{}{}",
                sse_event(&ping),
                sse_event(&progress),
                sse_event(&answer)
            );
            let (a, b) = stream.split_at(stream.len() / 2);
            Ok(sse_response(&[a, b]))
        })
        .then(accepted());
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.list_tools().unwrap();
    let requests = http.requests();
    assert_eq!(requests.len(), 4);
    let pong = body(&requests[3]);
    assert_eq!(
        pong,
        json!({ "jsonrpc": "2.0", "id": "srv-1", "result": {} })
    );
    assert_eq!(requests[3].header("mcp-session-id"), Some("s"));
    assert_eq!(
        requests[3].header("mcp-protocol-version"),
        Some("2025-11-25")
    );
}

#[test]
fn any_other_server_request_on_the_stream_is_answered_with_method_not_found() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None)
        .then(|request| {
            let id = request_id(request);
            let sampling = json!({ "jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage", "params": {} });
            let answer = json!({ "jsonrpc": "2.0", "id": id, "result": { "tools": [] } });
            Ok(sse_response(&[&sse_event(&sampling), &sse_event(&answer)]))
        })
        .then(accepted());
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.list_tools().unwrap();
    let answer = &http.bodies()[3];
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["error"]["code"], -32601);
}

#[test]
fn reading_stops_at_our_response_even_if_the_stream_goes_on() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None).then(|request| {
        let answer =
            json!({ "jsonrpc": "2.0", "id": request_id(request), "result": { "tools": [] } });
        // After our response comes garbage that must never be read.
        Ok(sse_response(&[&sse_event(&answer), "data: {not json\n\n"]))
    });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.list_tools().unwrap();
}

#[test]
fn a_response_with_the_same_id_of_another_json_type_is_not_ours() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None).then(|request| {
        let id = request_id(request);
        let as_string = json!({ "jsonrpc": "2.0", "id": id.to_string(), "result": { "tools": [tool("wrong")] } });
        let other_event = "event: endpoint\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        let real = json!({ "jsonrpc": "2.0", "id": id, "result": { "tools": [tool("right")] } });
        Ok(sse_response(&[&sse_event(&as_string), other_event, &sse_event(&real)]))
    });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let tools = client.list_tools().unwrap();
    assert_eq!(tools[0].name, "right");
}

#[test]
fn a_stream_that_ends_before_our_response_without_an_event_id_is_a_protocol_error() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None)
        .then(|_| Ok(sse_response(&["retry: 10\ndata: \n\n"])));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.list_tools().unwrap_err();
    assert!(
        matches!(&err, McpError::Protocol(m) if m.contains("closed the event stream")),
        "{err:?}"
    );
    assert_eq!(http.remaining(), 0);
}

#[test]
fn a_stream_closed_early_is_resumed_with_get_and_last_event_id_after_the_retry_wait() {
    let closed_at = std::rc::Rc::new(Cell::new(None::<std::time::Instant>));
    let (c1, c2) = (closed_at.clone(), closed_at.clone());
    let call_id = std::rc::Rc::new(std::cell::RefCell::new(Value::Null));
    let (i1, i2) = (call_id.clone(), call_id.clone());
    let http = handshake(ScriptedHttp::new(), "2025-03-26", Some("sess-9"))
        .then(move |request| {
            *i1.borrow_mut() = request_id(request);
            c1.set(Some(std::time::Instant::now()));
            Ok(sse_response(&["id: event-1\nretry: 60\ndata: \n\n"]))
        })
        .then(move |request| {
            let waited = c2.get().unwrap().elapsed();
            assert!(waited >= std::time::Duration::from_millis(60), "resumed after {waited:?}");
            assert_eq!(request.method, Method::Get);
            assert_eq!(request.header("last-event-id"), Some("event-1"));
            assert_eq!(request.header("mcp-session-id"), Some("sess-9"));
            assert_eq!(request.header("accept"), Some("text/event-stream"));
            let answer = json!({ "jsonrpc": "2.0", "id": i2.borrow().clone(), "result": { "content": [{ "type": "text", "text": "resumed" }] } });
            Ok(sse_response(&["id: event-2\nretry: 60\ndata: \n\n", &sse_event(&answer)]))
        });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let result = client.call_tool("test_reconnection", Map::new()).unwrap();
    assert_eq!(result.text_summary(100), "resumed");
    assert_eq!(http.remaining(), 0);
}

#[test]
fn resuming_is_bounded_and_refuses_waits_longer_than_configured() {
    let long = handshake(ScriptedHttp::new(), "2025-11-25", Some("s"))
        .then(|_| Ok(sse_response(&["id: e1\nretry: 600000\ndata: \n\n"])));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &long, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.list_tools().unwrap_err();
    assert!(matches!(&err, McpError::Protocol(m) if m.contains("600000 ms")), "{err:?}");

    let mut http = handshake(ScriptedHttp::new(), "2025-11-25", Some("s"));
    for _ in 0..4 {
        http = http.then(|_| Ok(sse_response(&["id: e1\nretry: 1\ndata: \n\n"])));
    }
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.list_tools().unwrap_err();
    assert!(matches!(&err, McpError::Protocol(m) if m.contains("closed the event stream")), "{err:?}");
    assert_eq!(http.requests().len(), 2 + 1 + 3, "one POST and three resumes");
}

#[test]
fn an_answer_larger_than_the_cap_is_refused() {
    for sse in [false, true] {
        let http = handshake(ScriptedHttp::new(), "2025-11-25", None).then(move |request| {
            let big = json!({ "jsonrpc": "2.0", "id": request_id(request), "result": { "tools": [], "pad": "x".repeat(5000) } });
            Ok(if sse { sse_response(&[&sse_event(&big)]) } else { json_response(200, &big) })
        });
        let store = MemorySessionStore::default();
        let mut cfg = config();
        cfg.max_response_bytes = 4096;
        let mut client = McpClient::new(cfg, &http, &NoAuth, &store, &NoLogger).unwrap();
        let err = client.list_tools().unwrap_err();
        assert!(
            matches!(&err, McpError::Protocol(m) if m.contains("4096 bytes")),
            "{err:?}"
        );
    }
}

#[test]
fn an_oversized_sse_event_is_refused() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None)
        .then(|_| Ok(sse_response(&[&format!("data: {}", "y".repeat(3000))])));
    let store = MemorySessionStore::default();
    let mut cfg = config();
    cfg.max_event_bytes = 1024;
    let mut client = McpClient::new(cfg, &http, &NoAuth, &store, &NoLogger).unwrap();
    assert!(matches!(client.list_tools(), Err(McpError::Protocol(m)) if m.contains("1024 bytes")));
}

#[test]
fn a_json_rpc_error_becomes_its_code_and_message() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None).then(|request| {
        Ok(rpc_error(
            request,
            -32602,
            "Unknown tool: nope\nsecond line",
        ))
    });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.call_tool("nope", Map::new()).unwrap_err();
    assert_eq!(
        err,
        McpError::JsonRpc {
            code: -32602,
            message: "Unknown tool: nope second line".into(),
            data: None
        }
    );
}

#[test]
fn an_error_without_an_id_on_our_stream_is_taken_as_ours() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None)
        .then(|_| Ok(json_response(200, &json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32700, "message": "Parse error" } }))));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert!(matches!(
        client.list_tools(),
        Err(McpError::JsonRpc { code: -32700, .. })
    ));
}

#[test]
fn malformed_or_hostile_answers_are_protocol_errors_never_panics() {
    type Answer = Box<dyn Fn(&HttpRequest) -> HttpResponse>;
    let answers: Vec<Answer> = vec![
        Box::new(|_| {
            response(
                200,
                &[("Content-Type", "application/json")],
                vec![b"{\"jsonrpc\":".to_vec()],
            )
        }),
        Box::new(|_| {
            response(
                200,
                &[("Content-Type", "application/json")],
                vec![b"[1,2,3]".to_vec()],
            )
        }),
        Box::new(|_| {
            response(
                200,
                &[("Content-Type", "application/json")],
                vec!["[".repeat(100_000).into_bytes()],
            )
        }),
        Box::new(|_| json_response(200, &json!("hello"))),
        Box::new(|_| {
            json_response(
                200,
                &json!({ "jsonrpc": "2.0", "id": 999_999_999_999_999u64, "result": {} }),
            )
        }),
        Box::new(|r| json_response(200, &json!({ "jsonrpc": "2.0", "id": request_id(r) }))),
        Box::new(|r| {
            json_response(
                200,
                &json!({ "jsonrpc": "2.0", "id": request_id(r), "error": "boom" }),
            )
        }),
        Box::new(|r| {
            json_response(
                200,
                &json!({ "jsonrpc": "2.0", "id": request_id(r), "method": 5 }),
            )
        }),
        Box::new(|r| rpc_result(r, json!([]))),
        Box::new(|_| sse_response(&["data: {broken\n\n"])),
        Box::new(|_| {
            response(
                200,
                &[("Content-Type", "text/html")],
                vec![b"<html></html>".to_vec()],
            )
        }),
        Box::new(|_| response(200, &[], vec![b"{}".to_vec()])),
        Box::new(|_| empty(202)),
    ];
    for (i, answer) in answers.into_iter().enumerate() {
        let http = handshake(ScriptedHttp::new(), "2025-11-25", None).then(move |r| Ok(answer(r)));
        let store = MemorySessionStore::default();
        let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
        let err = client.list_tools().unwrap_err();
        assert!(matches!(err, McpError::Protocol(_)), "case {i}: {err:?}");
    }
}

#[test]
fn a_401_keeps_the_www_authenticate_challenge_for_oauth_discovery() {
    let http = ScriptedHttp::new().then(|_| {
        Ok(response(
            401,
            &[
                ("Content-Type", "application/json"),
                ("WWW-Authenticate", r#"Bearer error="invalid_token", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource""#),
            ],
            vec![br#"{"error": "invalid_token"}"#.to_vec()],
        ))
    });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.initialize().unwrap_err();
    assert!(
        matches!(&err, McpError::Unauthorized { message, .. } if message == "HTTP 401: invalid_token"),
        "{err:?}"
    );
    assert_eq!(
        err.resource_metadata().as_deref(),
        Some("https://mcp.example.com/.well-known/oauth-protected-resource")
    );
}

struct RefreshingAuth {
    token: Cell<u32>,
}

impl AuthProvider for RefreshingAuth {
    fn headers(&self) -> Result<Vec<(String, String)>, McpError> {
        Ok(vec![(
            "Authorization".into(),
            format!("Bearer t{}", self.token.get()),
        )])
    }
    fn on_unauthorized(&self, www_authenticate: Option<&str>) -> Result<bool, McpError> {
        assert_eq!(www_authenticate, Some("Bearer error=\"invalid_token\""));
        self.token.set(self.token.get() + 1);
        Ok(true)
    }
}

#[test]
fn a_401_lets_the_auth_provider_renew_credentials_and_the_request_is_sent_once_more() {
    let unauthorized = |_: &HttpRequest| {
        Ok(response(
            401,
            &[("WWW-Authenticate", "Bearer error=\"invalid_token\"")],
            vec![],
        ))
    };
    let http = ScriptedHttp::new()
        .then(unauthorized)
        .then(initialize_ok("2025-11-25", None))
        .then(accepted());
    let store = MemorySessionStore::default();
    let auth = RefreshingAuth {
        token: Cell::new(1),
    };
    let mut client = McpClient::new(config(), &http, &auth, &store, &NoLogger).unwrap();
    client.initialize().unwrap();
    let requests = http.requests();
    assert_eq!(requests[0].header("authorization"), Some("Bearer t1"));
    assert_eq!(requests[1].header("authorization"), Some("Bearer t2"));

    // A second 401 in a row is final.
    let http = ScriptedHttp::new().then(unauthorized).then(unauthorized);
    let mut client = McpClient::new(config(), &http, &auth, &store, &NoLogger).unwrap();
    assert!(matches!(
        client.initialize(),
        Err(McpError::Unauthorized { .. })
    ));
}

#[test]
fn a_403_insufficient_scope_reports_the_required_scopes() {
    let http = ScriptedHttp::new().then(|_| {
        Ok(response(
            403,
            &[(
                "WWW-Authenticate",
                r#"Bearer error="insufficient_scope", scope="mcp.read mcp.write_safe""#,
            )],
            vec![],
        ))
    });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.initialize().unwrap_err();
    assert!(
        matches!(&err, McpError::InsufficientScope { required, .. } if required == &["mcp.read", "mcp.write_safe"]),
        "{err:?}"
    );

    let http = ScriptedHttp::new().then(|_| {
        Ok(json_response(
            403,
            &json!({ "error": "insufficient_scope", "scope": "mcp.read" }),
        ))
    });
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert!(
        matches!(client.initialize(), Err(McpError::InsufficientScope { required, .. }) if required == ["mcp.read"])
    );

    let http = ScriptedHttp::new().then(|_| {
        Ok(json_response(
            403,
            &json!({ "message": "Forbidden for this plan" }),
        ))
    });
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert_eq!(
        client.initialize().unwrap_err(),
        McpError::Http {
            status: 403,
            message: "Forbidden for this plan".into()
        }
    );
}

#[test]
fn a_429_reports_retry_after_in_milliseconds_from_retry_after_or_the_ratelimit_reset() {
    type Headers = Vec<(&'static str, &'static str)>;
    let cases: Vec<(Headers, Option<u64>)> = vec![
        (
            vec![
                ("Retry-After", "3"),
                ("RateLimit", "limit=100, remaining=0, reset=1"),
            ],
            Some(3000),
        ),
        (
            vec![("RateLimit", "limit=100, remaining=0, reset=1")],
            Some(1000),
        ),
        (vec![("X-Rate-Limit-Reset", "2.5")], Some(2500)),
        (vec![], None),
    ];
    for (headers, expected) in cases {
        let http = ScriptedHttp::new().then(move |_| {
            Ok(response(
                429,
                &headers,
                vec![br#"{"error": "Rate limit exceeded for leads"}"#.to_vec()],
            ))
        });
        let store = MemorySessionStore::default();
        let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
        match client.initialize().unwrap_err() {
            McpError::RateLimited {
                retry_after_ms,
                message,
                ..
            } => {
                assert_eq!(retry_after_ms, expected);
                assert!(
                    message.starts_with("Rate limit exceeded for leads"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn other_http_errors_carry_the_status_and_a_short_message_never_the_body() {
    let long_body = format!("{{\"message\": \"{}\"}}", "z".repeat(10_000));
    let http = ScriptedHttp::new().then(move |_| {
        Ok(response(
            502,
            &[("Content-Type", "application/json")],
            vec![long_body.clone().into_bytes()],
        ))
    });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    match client.initialize().unwrap_err() {
        McpError::Http {
            status: 502,
            message,
        } => assert!(message.chars().count() <= 201, "{}", message.len()),
        other => panic!("{other:?}"),
    }
    let http = ScriptedHttp::new().then(|_| Ok(empty(503)));
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert_eq!(
        client.initialize().unwrap_err(),
        McpError::Http {
            status: 503,
            message: "Service Unavailable".into()
        }
    );
}

#[test]
fn transport_failures_become_denied_or_unavailable() {
    let http =
        ScriptedHttp::new().then(|_| Err(TransportError::Denied("origin not granted".into())));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert_eq!(
        client.initialize().unwrap_err(),
        McpError::Denied("origin not granted".into())
    );
    let http =
        ScriptedHttp::new().then(|_| Err(TransportError::Unavailable("connection refused".into())));
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert_eq!(
        client.initialize().unwrap_err(),
        McpError::Unavailable("connection refused".into())
    );
}

#[test]
fn an_auth_provider_error_stops_the_request_before_it_is_sent() {
    struct Missing;
    impl AuthProvider for Missing {
        fn headers(&self) -> Result<Vec<(String, String)>, McpError> {
            Err(McpError::Unauthorized {
                www_authenticate: None,
                message: "no key".into(),
            })
        }
    }
    let http = ScriptedHttp::new();
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &Missing, &store, &NoLogger).unwrap();
    assert!(matches!(
        client.initialize(),
        Err(McpError::Unauthorized { .. })
    ));
    assert!(http.requests().is_empty());
}

#[test]
fn call_tool_sends_name_and_arguments_and_returns_content_and_structured_content() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None).then(result(json!({
        "content": [
            { "type": "text", "text": "{\"id\":1}" },
            { "type": "image", "data": "aGk=", "mimeType": "image/png" },
            { "type": "resource_link", "uri": "https://x/1", "name": "one" },
            { "type": "hologram", "beam": true }
        ],
        "structuredContent": { "id": 1 }
    })));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    let mut args = Map::new();
    args.insert("query".into(), json!("acme"));
    let result = client.call_tool("search", args).unwrap();
    assert_eq!(
        http.bodies()[2]["params"],
        json!({ "name": "search", "arguments": { "query": "acme" } })
    );
    assert_eq!(result.structured_content, Some(json!({ "id": 1 })));
    assert_eq!(result.content[0].as_text(), Some("{\"id\":1}"));
    assert!(matches!(
        result.content[1],
        ToolContent::Block(ContentBlock::Image(_))
    ));
    assert!(matches!(
        result.content[2],
        ToolContent::Block(ContentBlock::ResourceLink(_))
    ));
    assert_eq!(
        result.content[3],
        ToolContent::Other(json!({ "type": "hologram", "beam": true }))
    );
    assert_eq!(result.content[2].to_json()["uri"], "https://x/1");
}

#[test]
fn a_tool_result_with_is_error_becomes_tool_failed_with_its_text() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None).then(result(
        json!({ "content": [{ "type": "text", "text": "Lead not\nfound" }], "isError": true }),
    ));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert_eq!(
        client.call_tool("fetch_lead", Map::new()).unwrap_err(),
        McpError::ToolFailed("Lead not found".into())
    );
}

#[test]
fn terminate_session_sends_delete_with_the_session_and_forgets_it() {
    let store = MemorySessionStore::default();
    store.save(Some(
        &json!({ "endpoint": ENDPOINT, "sessionId": "s9", "protocolVersion": "2025-06-18" })
            .to_string(),
    ));
    let http = ScriptedHttp::new().then(|_| Ok(empty(405)));
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.terminate_session().unwrap();
    let requests = http.requests();
    assert_eq!(requests[0].method, Method::Delete);
    assert_eq!(requests[0].header("mcp-session-id"), Some("s9"));
    assert_eq!(
        requests[0].header("mcp-protocol-version"),
        Some("2025-06-18")
    );
    assert_eq!(store.load(), None);
}

#[test]
fn request_ids_are_unique_within_a_call() {
    let http = handshake(ScriptedHttp::new(), "2025-11-25", None)
        .then(result(json!({ "tools": [], "nextCursor": "a" })))
        .then(result(json!({ "tools": [] })));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.list_tools().unwrap();
    let ids: Vec<Value> = http
        .bodies()
        .iter()
        .filter_map(|b| b.get("id").cloned())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| id.is_u64()));
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
}

#[test]
fn an_invalid_endpoint_is_refused_up_front() {
    let http = ScriptedHttp::new();
    let store = MemorySessionStore::default();
    let cfg = ClientConfig::new("mcp.example.com", "c", "1");
    assert!(matches!(
        McpClient::new(cfg, &http, &NoAuth, &store, &NoLogger),
        Err(McpError::Protocol(_))
    ));
}

#[test]
fn a_short_rate_limit_is_waited_out_and_retried_once() {
    let limited = || {
        move |_: &HttpRequest| {
            Ok(response(429, &[("RateLimit", "limit=100, remaining=0, reset=0")], vec![b"{}".to_vec()]))
        }
    };
    // One 429 with a reset of 0 s: retried, and the retry succeeds.
    let http = ScriptedHttp::new()
        .then(initialize_ok("2025-11-25", None))
        .then(accepted())
        .then(limited())
        .then(result(json!({ "tools": [] })));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert!(client.list_tools().unwrap().is_empty());
    assert_eq!(http.remaining(), 0);

    // Two in a row: one retry only, then the error.
    let http = ScriptedHttp::new()
        .then(initialize_ok("2025-11-25", None))
        .then(accepted())
        .then(limited())
        .then(limited())
        .then(result(json!({ "tools": [] })));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert!(matches!(client.list_tools().unwrap_err(), McpError::RateLimited { retry_after_ms: Some(0), .. }));
    assert_eq!(http.remaining(), 1, "no third attempt");

    // A reset beyond the configured wait is not waited for.
    let http = ScriptedHttp::new()
        .then(initialize_ok("2025-11-25", None))
        .then(accepted())
        .then(move |_: &HttpRequest| {
            Ok(response(429, &[("RateLimit", "limit=100, remaining=0, reset=30")], vec![b"{}".to_vec()]))
        })
        .then(result(json!({ "tools": [] })));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert!(matches!(client.list_tools().unwrap_err(), McpError::RateLimited { retry_after_ms: Some(30_000), .. }));
    assert_eq!(http.remaining(), 1);
}
