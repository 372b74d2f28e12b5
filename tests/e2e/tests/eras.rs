//! The Close connector against a stand-in that speaks both MCP eras, only 2026-07-28 (a server that has
//! moved on), or only the 2025 initialize era — in JSON and SSE, with an API key and with OAuth — and
//! the host's listing cache driven by the server's `ttlMs`.

use close_standin::{ProtocolMode, ResponseMode, StandInConfig, Switches};
use e2e::claribi_host::service::{builtin, ConnectRequest, Credentials, OAuthFlow};
use e2e::{catalog_read_tools, Fixture};
use serde_json::json;
use std::time::Duration;

const MODES: [ResponseMode; 2] = [ResponseMode::Json, ResponseMode::Sse];
const PROTOCOLS: [ProtocolMode; 3] = [ProtocolMode::Dual, ProtocolMode::Only2026, ProtocolMode::Only2025];

async fn fixture(protocol: ProtocolMode, mode: ResponseMode) -> Fixture {
    Fixture::with_config(StandInConfig {
        switches: Switches { response_mode: mode, protocol, ..Switches::default() },
        ..StandInConfig::default()
    })
    .await
}

/// The era the connection's stored session speaks (read from the store, as another process would).
fn stored_era(f: &Fixture, name: &str) -> String {
    let c = f.host.connection(name).unwrap();
    let store = e2e::claribi_host::vault::store::Store::open(f.dir.path()).unwrap();
    let state = store.state(&c.id, "mcp-session").unwrap().expect("a session is stored");
    let v: serde_json::Value = serde_json::from_str(&state).unwrap();
    v["protocolVersion"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_close_connector_speaks_whichever_era_the_server_speaks() {
    for protocol in PROTOCOLS {
        for mode in MODES {
            let what = format!("{protocol:?}/{mode}");
            let f = fixture(protocol, mode).await;
            let out = f.connect("close").await.unwrap_or_else(|e| panic!("{what}: {e}"));
            let org = f.standin.dataset().organization.clone();
            assert!(out.account.as_deref().unwrap_or("").contains(&org.name), "{what}: {:?}", out.account);
            let listing = f.host.list_tools("close").await.unwrap();
            assert_eq!(listing.tools.len(), catalog_read_tools().len(), "{what}");
            let v = f.call_json("close", "org_info", json!({})).await.unwrap();
            assert_eq!(v["organization"]["id"], org.id, "{what}");
            let c = f.standin.counters();
            match protocol {
                ProtocolMode::Only2025 => {
                    assert_eq!(stored_era(&f, "close"), "2025-11-25", "{what}");
                    assert!(c.initialize >= 1, "{what}: {c:?}");
                    assert_eq!(c.requests_2026, 1, "{what}: the one discover probe, refused; then the 2025 session");
                }
                _ => {
                    assert_eq!(stored_era(&f, "close"), "2026-07-28", "{what}");
                    assert_eq!(c.initialize, 0, "{what}: no handshake in the stateless era");
                    assert!(c.requests_2026 >= 3, "{what}: {c:?}");
                    assert_eq!(c.era_refusals, 0, "{what}: the client never spoke 2025 to it");
                }
            }
            // One probe per session, not per call: later calls reuse what the first one learned.
            let discovers = f.standin.counters().discover;
            f.call_json("close", "org_users", json!({})).await.unwrap();
            f.call_json("close", "org_info", json!({})).await.unwrap();
            assert_eq!(f.standin.counters().discover, discovers, "{what}: no probe per call");
            assert_eq!(f.standin.counters().write_tool_calls, 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_moves_to_2026_keeps_its_connections_working() {
    for mode in MODES {
        let f = fixture(ProtocolMode::Only2025, mode).await;
        f.connect("close").await.unwrap();
        f.call_json("close", "org_info", json!({})).await.unwrap();
        assert_eq!(stored_era(&f, "close"), "2025-11-25");
        // Close upgrades: the 2025 session is refused with -32022 from now on.
        f.standin.set_protocol(ProtocolMode::Only2026);
        let v = f.call_json("close", "org_info", json!({})).await.unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(v["organization"]["id"], f.standin.dataset().organization.id);
        assert!(f.standin.counters().era_refusals >= 1, "{mode}: the old session was refused once");
        assert_eq!(stored_era(&f, "close"), "2026-07-28", "{mode}");
        // And back (a rollback at the vendor): the 2026 requests are refused, the client falls back.
        f.standin.set_protocol(ProtocolMode::Only2025);
        f.call_json("close", "org_users", json!({})).await.unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(stored_era(&f, "close"), "2025-11-25", "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_works_against_a_server_that_speaks_only_2026() {
    for mode in MODES {
        let f = fixture(ProtocolMode::Only2026, mode).await;
        let request = ConnectRequest {
            name: "close".into(),
            plugin: builtin::CLOSE.to_vec(),
            endpoint: Some(f.standin.url()),
            credentials: Credentials::OAuth(OAuthFlow::headless()),
            scopes: vec![],
            allow_origins: Some(vec![f.origin(), f.standin.issuer_url()]),
            policy: None,
            options: vec![],
        };
        let out = f.host.connect(request).await.unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(out.granted_scopes.contains(&"mcp.read".to_string()), "{mode}: {:?}", out.granted_scopes);
        let v = f.call_json("close", "org_info", json!({})).await.unwrap();
        assert_eq!(v["organization"]["id"], f.standin.dataset().organization.id);
        assert_eq!(f.standin.oauth_counters().token_exchanges, 1);
        assert_eq!(f.standin.counters().initialize, 0, "{mode}");
        assert!(f.standin.counters().unauthorized >= 1, "{mode}: the probe met Close's 401 challenge");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_era_can_be_pinned_per_connection() {
    let f = fixture(ProtocolMode::Dual, ResponseMode::Sse).await;
    let mut request = f.request("close", f.standin.api_key(), "mcp.read");
    request.options = vec![("protocol_version".into(), "2025-11-25".into())];
    f.host.connect(request).await.unwrap();
    f.call_json("close", "org_info", json!({})).await.unwrap();
    assert_eq!(stored_era(&f, "close"), "2025-11-25");
    assert_eq!(f.standin.counters().discover, 0, "a pinned 2025 connection does not probe");

    let mut bad = f.request("close-bad", f.standin.api_key(), "mcp.read");
    bad.options = vec![("protocol_version".into(), "2024-11-05".into())];
    let err = f.host.connect(bad).await.unwrap_err().to_string();
    assert!(err.contains("protocol_version") && err.contains("2026-07-28") && !err.contains('\n'), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_are_reused_for_the_servers_ttl_and_never_longer() {
    let f = fixture(ProtocolMode::Dual, ResponseMode::Json).await;
    f.standin.set_list_ttl_ms(2000);
    f.connect("close").await.unwrap();
    let base = f.standin.counters().tools_list;
    let first = f.host.list_tools("close").await.unwrap();
    assert_eq!(first.ttl_ms, Some(2000));
    assert_eq!(first.cache_scope.as_deref(), Some("private"));
    let after_first = f.standin.counters().tools_list;
    assert!(after_first <= base + 1);
    for _ in 0..5 {
        f.host.list_tools("close").await.unwrap();
        f.call_json("close", "org_info", json!({})).await.unwrap();
    }
    let listed = f.standin.counters().tools_list;
    assert!(listed - base <= 1, "within the TTL the listing is the host's: {} upstream listings", listed - base);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    f.host.list_tools("close").await.unwrap();
    assert_eq!(f.standin.counters().tools_list, listed + 1, "past the TTL the server is asked again");

    // A server that says "do not cache" is asked every time.
    f.standin.set_list_ttl_ms(0);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    f.host.list_tools("close").await.unwrap();
    let now = f.standin.counters().tools_list;
    f.host.list_tools("close").await.unwrap();
    f.host.list_tools("close").await.unwrap();
    assert_eq!(f.standin.counters().tools_list, now + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_asking_for_input_is_declined_and_the_engine_gets_the_final_result() {
    let f = fixture(ProtocolMode::Dual, ResponseMode::Sse).await;
    f.connect("close").await.unwrap();
    f.standin.set_input_required_tool(Some("org_info".into()));
    let v = f.call_json("close", "org_info", json!({})).await.unwrap();
    assert_eq!(v["organization"]["id"], f.standin.dataset().organization.id);
    assert_eq!(f.standin.counters().input_required_sent, 1);
}
