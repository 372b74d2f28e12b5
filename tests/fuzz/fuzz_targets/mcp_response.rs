//! JSON-RPC messages from a server: whatever body answers a `tools/call` (as JSON or as an event
//! stream), the client returns a result or an error, never panics. `@ID@` in the input is replaced by
//! the request's id, so the fuzzer can reach the paths behind a matching response.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_client::testing::{accepted, discover_refused, initialize_ok, request_id, response, ScriptedHttp};
use mcp_client::{ClientConfig, McpClient, MemorySessionStore, NoAuth, NoLogger};

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let sse = data[0] & 1 == 1;
    let template = String::from_utf8_lossy(&data[1..]).to_string();
    let http = ScriptedHttp::new()
        .then(discover_refused())
        .then(initialize_ok("2025-11-25", Some("s-1")))
        .then(accepted())
        .then(move |req| {
            let body = template.replace("@ID@", &request_id(req).to_string());
            let ct = if sse { "text/event-stream" } else { "application/json" };
            Ok(response(200, &[("content-type", ct)], vec![body.into_bytes()]))
        });
    let store = MemorySessionStore::default();
    let Ok(mut client) = McpClient::new(ClientConfig::new("https://mcp.example.com/mcp", "fuzz", "0"), &http, &NoAuth, &store, &NoLogger)
    else {
        return;
    };
    let _ = client.call_tool("t", serde_json::Map::new());
});
