//! The probe with `server/discover`, the 2026-07-28 era, and the fallback to `initialize`.

use super::*;
use crate::http::TransportError;
use crate::testing::*;
use crate::{MemorySessionStore, NoAuth, NoLogger};
use serde_json::json;

const ENDPOINT: &str = "https://mcp.example.com/mcp";

fn config(protocol: ProtocolChoice) -> ClientConfig {
    let mut config = ClientConfig::new(ENDPOINT, "test-client", "0.1.0");
    config.protocol = protocol;
    config
}

fn body(request: &HttpRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

type Step = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse, TransportError>>;

/// A 2026-07-28 server's answer to `server/discover`.
fn discover_modern() -> Step {
    Box::new(|request: &HttpRequest| {
        assert_eq!(request_method(request), "server/discover");
        Ok(rpc_result(
            request,
            json!({"resultType": "complete", "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}},
                   "ttlMs": 0, "cacheScope": "private",
                   "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "modern-server", "version": "2.0"}}}),
        ))
    })
}

/// An HTTP 400 with a JSON-RPC error (how 2026-07-28 servers, and the 2025 TypeScript SDK, refuse).
fn http_400(code: i64, message: &'static str, data: Option<Value>, id_null: bool) -> Step {
    Box::new(move |request: &HttpRequest| {
        let id = if id_null { Value::Null } else { request_id(request) };
        let mut error = json!({"code": code, "message": message});
        if let Some(d) = &data {
            error["data"] = d.clone();
        }
        Ok(json_response(400, &json!({"jsonrpc": "2.0", "id": id, "error": error})))
    })
}

fn tool(name: &str, schema: Value) -> Value {
    json!({"name": name, "inputSchema": schema})
}

fn assert_modern(request: &HttpRequest, method: &str) {
    assert_eq!(request.header("mcp-protocol-version"), Some("2026-07-28"));
    assert_eq!(request.header("mcp-method"), Some(method));
    assert_eq!(request.header("mcp-session-id"), None);
    let sent = body(request);
    assert_eq!(sent["method"], method);
    let meta = &sent["params"]["_meta"];
    assert_eq!(meta["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
    assert_eq!(meta["io.modelcontextprotocol/clientCapabilities"], json!({}));
    assert_eq!(meta["io.modelcontextprotocol/clientInfo"], json!({"name": "test-client", "version": "0.1.0"}));
}

#[test]
fn auto_probes_with_server_discover_and_speaks_2026_07_28_without_a_handshake() {
    let http = ScriptedHttp::new()
        .then(discover_modern())
        .then(|r| {
            assert_modern(r, "tools/list");
            Ok(rpc_result(r, json!({"resultType": "complete", "tools": [tool("find_leads", json!({"type": "object"}))], "ttlMs": 60000, "cacheScope": "private"})))
        });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    let listing = client.list_tools_with_hints().unwrap();
    assert_eq!(listing.tools[0].name, "find_leads");
    assert_eq!(listing.ttl_ms, Some(60000));
    assert_eq!(listing.cache_scope.as_deref(), Some("private"));
    let requests = http.requests();
    assert_modern(&requests[0], "server/discover");
    assert!(requests.iter().all(|r| request_method(r) != "initialize"));
    let session: Session = serde_json::from_str(&store.load().unwrap()).unwrap();
    assert_eq!(session.protocol_version, "2026-07-28");
    assert_eq!(session.session_id, None);
}

#[test]
fn open_reports_the_server_from_discover_meta() {
    let http = ScriptedHttp::new().then(discover_modern());
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    let hello = client.open().unwrap();
    assert_eq!(hello.protocol_version, "2026-07-28");
    assert_eq!(hello.server_info.unwrap().name, "modern-server");
    assert!(hello.capabilities.tools.is_some());
}

#[test]
fn auto_falls_back_to_initialize_for_each_way_a_2025_server_refuses_discover() {
    let refusals: Vec<(&str, Step)> = vec![
        ("TypeScript SDK: 400 -32000 with a null id", http_400(-32000, "Bad Request: Unsupported protocol version: 2026-07-28", None, true)),
        ("unknown method", Box::new(|r: &HttpRequest| Ok(rpc_error(r, -32601, "Method not found")))),
        ("an empty result", Box::new(|r: &HttpRequest| Ok(rpc_result(r, json!({}))))),
        ("404 without a body", Box::new(|_: &HttpRequest| Ok(empty(404)))),
        ("-32022 listing 2025 only", http_400(-32022, "Unsupported protocol version", Some(json!({"supported": ["2025-11-25"], "requested": "2026-07-28"})), false)),
    ];
    for (why, refusal) in refusals {
        let http = ScriptedHttp::new()
            .then(refusal)
            .then(|r| {
                assert_eq!(request_method(r), "initialize");
                assert_eq!(r.header("mcp-protocol-version"), None);
                Ok(rpc_result(r, initialize_result("2025-11-25")))
            })
            .then(accepted())
            .then(|r| {
                assert_eq!(r.header("mcp-protocol-version"), Some("2025-11-25"));
                assert_eq!(r.header("mcp-method"), None);
                assert!(body(r)["params"].get("_meta").is_none());
                Ok(rpc_result(r, json!({"tools": []})))
            });
        let store = MemorySessionStore::default();
        let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
        client.list_tools().unwrap_or_else(|e| panic!("{why}: {e}"));
        assert_eq!(http.remaining(), 0, "{why}");
        assert_eq!(client.session().unwrap().protocol_version, "2025-11-25", "{why}");
    }
}

#[test]
fn a_refused_version_that_the_server_lists_is_asked_again_once() {
    let http = ScriptedHttp::new()
        .then(http_400(-32022, "Unsupported protocol version", Some(json!({"supported": ["2026-07-28"], "requested": "2026-07-28"})), false))
        .then(discover_modern())
        .then(|r| {
            assert_modern(r, "tools/list");
            Ok(rpc_result(r, json!({"tools": []})))
        });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.list_tools().unwrap();
    let ids: Vec<Value> = http.bodies().iter().map(|b| b["id"].clone()).collect();
    assert_ne!(ids[0], ids[1], "the retry is a new request");

    let twice = ScriptedHttp::new()
        .then(http_400(-32022, "x", Some(json!({"supported": ["2026-07-28"]})), false))
        .then(http_400(-32022, "x", Some(json!({"supported": ["2026-07-28"]})), false));
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &twice, &NoAuth, &store, &NoLogger).unwrap();
    assert!(matches!(client.open(), Err(McpError::Protocol(m)) if m.contains("twice")));
}

#[test]
fn credentials_asked_for_by_discover_are_an_error_not_a_fallback() {
    let http = ScriptedHttp::new().then(|_| {
        Ok(response(401, &[("WWW-Authenticate", "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource\"")], vec![]))
    });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    assert!(matches!(client.open(), Err(McpError::Unauthorized { www_authenticate: Some(_), .. })));
    assert_eq!(http.requests().len(), 1);
}

#[test]
fn pinned_2026_refuses_a_2025_server_and_pinned_2025_never_probes() {
    let http = ScriptedHttp::new().then(|r| Ok(rpc_error(r, -32601, "Method not found")));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(ProtocolChoice::Modern), &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.open().unwrap_err();
    assert!(matches!(&err, McpError::Protocol(m) if m.contains("does not speak MCP 2026-07-28") && m.contains("auto")), "{err}");

    let http = ScriptedHttp::new().then(initialize_ok("2025-11-25", None)).then(accepted());
    let mut client = McpClient::new(config(ProtocolChoice::Legacy), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.open().unwrap();
    assert_eq!(request_method(&http.requests()[0]), "initialize");
}

#[test]
fn a_stored_session_is_reused_only_in_the_era_the_connection_chose() {
    let store = MemorySessionStore::default();
    let modern = Session { endpoint: ENDPOINT.into(), session_id: None, protocol_version: "2026-07-28".into(), tool_headers: None };
    store.save(Some(&serde_json::to_string(&modern).unwrap()));
    // Auto reuses it: the first request is the call itself.
    let http = ScriptedHttp::new().then(|r| {
        assert_modern(r, "tools/list");
        Ok(rpc_result(r, json!({"tools": []})))
    });
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.list_tools().unwrap();
    // Pinned to 2025, it is dropped and initialize runs.
    let http = ScriptedHttp::new()
        .then(initialize_ok("2025-11-25", None))
        .then(accepted())
        .then(result(json!({"tools": []})));
    let mut client = McpClient::new(config(ProtocolChoice::Legacy), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.list_tools().unwrap();
    assert_eq!(request_method(&http.requests()[0]), "initialize");
}

#[test]
fn a_server_that_stops_accepting_the_version_gets_a_new_session_and_the_request_again() {
    let store = MemorySessionStore::default();
    let modern = Session { endpoint: ENDPOINT.into(), session_id: None, protocol_version: "2026-07-28".into(), tool_headers: None };
    store.save(Some(&serde_json::to_string(&modern).unwrap()));
    let http = ScriptedHttp::new()
        .then(http_400(-32022, "Unsupported protocol version", Some(json!({"supported": ["2025-11-25"], "requested": "2026-07-28"})), false))
        .then(http_400(-32022, "Unsupported protocol version", Some(json!({"supported": ["2025-11-25"], "requested": "2026-07-28"})), false))
        .then(initialize_ok("2025-11-25", Some("s-2")))
        .then(accepted())
        .then(|r| {
            assert_eq!(r.header("mcp-session-id"), Some("s-2"));
            Ok(rpc_result(r, json!({"tools": []})))
        });
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.list_tools().unwrap();
    assert_eq!(http.remaining(), 0);
    let saved: Session = serde_json::from_str(&store.load().unwrap()).unwrap();
    assert_eq!(saved.protocol_version, "2025-11-25");
}

fn header_tools() -> Value {
    json!({"tools": [
        tool("valid_tool", json!({"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "query": {"type": "string"}}})),
        tool("invalid_number_header", json!({"type": "object", "properties": {"n": {"type": "number", "x-mcp-header": "N"}}})),
        tool("héllo tool", json!({"type": "object"})),
    ]})
}

#[test]
fn tools_calls_carry_mcp_name_and_the_annotated_arguments_as_headers() {
    let http = ScriptedHttp::new()
        .then(discover_modern())
        .then(|r| Ok(rpc_result(r, header_tools())))
        .then(|r| {
            assert_modern(r, "tools/call");
            assert_eq!(r.header("mcp-name"), Some("valid_tool"));
            assert_eq!(r.header("mcp-param-region"), Some("=?base64?IHVzLXdlc3Qx?="));
            assert!(r.headers.iter().all(|(k, _)| !k.eq_ignore_ascii_case("mcp-param-query")));
            Ok(rpc_result(r, json!({"content": [{"type": "text", "text": "ok"}]})))
        })
        .then(|r| {
            assert_eq!(r.header("mcp-name"), Some("=?base64?aMOpbGxvIHRvb2w=?="));
            Ok(rpc_result(r, json!({"content": []})))
        });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    let names: Vec<String> = client.list_tools().unwrap().iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, ["valid_tool", "héllo tool"], "the tool with a broken annotation is left out");
    let args = json!({"region": " us-west1", "query": "SELECT 1"}).as_object().unwrap().clone();
    client.call_tool("valid_tool", args).unwrap();
    client.call_tool("héllo tool", Map::new()).unwrap();
    let err = client.call_tool("invalid_number_header", Map::new()).unwrap_err();
    assert!(matches!(&err, McpError::Protocol(m) if m.contains("not called") && m.contains("number")), "{err}");
    assert_eq!(http.remaining(), 0);
}

#[test]
fn a_call_in_a_session_that_has_not_listed_the_tools_lists_them_first() {
    let store = MemorySessionStore::default();
    let modern = Session { endpoint: ENDPOINT.into(), session_id: None, protocol_version: "2026-07-28".into(), tool_headers: None };
    store.save(Some(&serde_json::to_string(&modern).unwrap()));
    let http = ScriptedHttp::new()
        .then(|r| {
            assert_modern(r, "tools/list");
            Ok(rpc_result(r, header_tools()))
        })
        .then(|r| {
            assert_eq!(r.header("mcp-param-region"), Some("eu"));
            Ok(rpc_result(r, json!({"content": []})))
        })
        .then(|r| {
            assert_eq!(r.header("mcp-param-region"), Some("us"));
            Ok(rpc_result(r, json!({"content": []})))
        });
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.call_tool("valid_tool", json!({"region": "eu"}).as_object().unwrap().clone()).unwrap();
    // The mapping was stored with the session: a later instance does not list again.
    let mut later = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    later.call_tool("valid_tool", json!({"region": "us"}).as_object().unwrap().clone()).unwrap();
    assert_eq!(http.remaining(), 0);
}

#[test]
fn input_required_results_are_answered_with_a_new_id_and_the_state_echoed() {
    let http = ScriptedHttp::new()
        .then(discover_modern())
        .then(|r| Ok(rpc_result(r, json!({"tools": [tool("test_mrtr_echo_state", json!({"type": "object"}))]}))))
        .then(|r| {
            assert!(body(r)["params"].get("inputResponses").is_none());
            Ok(rpc_result(r, json!({"resultType": "input_required",
                "inputRequests": {"confirm": {"method": "elicitation/create", "params": {"message": "Sure?"}}},
                "requestState": "{\"step\": 1}"})))
        })
        .then(|r| {
            let params = &body(r)["params"];
            assert_eq!(params["name"], "test_mrtr_echo_state");
            assert_eq!(params["requestState"], "{\"step\": 1}");
            assert_eq!(params["inputResponses"], json!({"confirm": {"action": "decline"}}));
            assert_modern(r, "tools/call");
            Ok(rpc_result(r, json!({"resultType": "input_required", "inputRequests": {"roots": {"method": "roots/list"}}})))
        })
        .then(|r| {
            let params = &body(r)["params"];
            assert!(params.get("requestState").is_none(), "no state was sent this round");
            assert_eq!(params["inputResponses"], json!({"roots": {"roots": []}}));
            Ok(rpc_result(r, json!({"resultType": "complete", "content": [{"type": "text", "text": "done"}]})))
        });
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    let result = client.call_tool("test_mrtr_echo_state", Map::new()).unwrap();
    assert_eq!(result.text_summary(100), "done");
    let ids: Vec<Value> = http.bodies()[2..].iter().map(|b| b["id"].clone()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
}

#[test]
fn input_rounds_are_bounded_and_sampling_is_refused() {
    let mut http = ScriptedHttp::new()
        .then(discover_modern())
        .then(|r| Ok(rpc_result(r, json!({"tools": []}))));
    for _ in 0..=input_required::MAX_ROUNDS {
        http = http.then(|r| Ok(rpc_result(r, json!({"resultType": "input_required", "requestState": "again"}))));
    }
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.call_tool("loop", Map::new()).unwrap_err();
    assert!(matches!(&err, McpError::Protocol(m) if m.contains("rounds")), "{err}");
    assert_eq!(http.remaining(), 0);

    let http = ScriptedHttp::new()
        .then(discover_modern())
        .then(|r| Ok(rpc_result(r, json!({"tools": []}))))
        .then(|r| Ok(rpc_result(r, json!({"resultType": "input_required", "inputRequests": {"s": {"method": "sampling/createMessage", "params": {}}}}))));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    let err = client.call_tool("llm", Map::new()).unwrap_err();
    assert!(err.to_string().contains("sampling/createMessage"), "{err}");
}

#[test]
fn listing_hints_take_the_shortest_ttl_and_private_wins() {
    let http = ScriptedHttp::new()
        .then(discover_modern())
        .then(|r| Ok(rpc_result(r, json!({"tools": [], "nextCursor": "2", "ttlMs": 300000, "cacheScope": "public"}))))
        .then(|r| Ok(rpc_result(r, json!({"tools": [], "ttlMs": 5000, "cacheScope": "private"}))));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    let listing = client.list_tools_with_hints().unwrap();
    assert_eq!((listing.ttl_ms, listing.cache_scope.as_deref()), (Some(5000), Some("private")));

    let http = ScriptedHttp::new()
        .then(discover_modern())
        .then(|r| Ok(rpc_result(r, json!({"tools": [], "ttlMs": -1, "cacheScope": "everyone"}))));
    let store = MemorySessionStore::default();
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    let listing = client.list_tools_with_hints().unwrap();
    assert_eq!((listing.ttl_ms, listing.cache_scope), (None, None), "malformed hints are ignored");
}

#[test]
fn a_modern_session_has_nothing_to_terminate() {
    let store = MemorySessionStore::default();
    let modern = Session { endpoint: ENDPOINT.into(), session_id: None, protocol_version: "2026-07-28".into(), tool_headers: None };
    store.save(Some(&serde_json::to_string(&modern).unwrap()));
    let http = ScriptedHttp::new();
    let mut client = McpClient::new(config(ProtocolChoice::Auto), &http, &NoAuth, &store, &NoLogger).unwrap();
    client.terminate_session().unwrap();
    assert!(http.requests().is_empty());
    assert_eq!(store.load(), None);
}
