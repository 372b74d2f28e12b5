//! What is this connector's own, natively: its description, anonymous connections, and the header
//! an API key goes in. The flow itself (with the same defaults and wording) is tested in
//! `claribi-connector-sdk`.

use super::*;
use claribi_connector_sdk::mcp_client::testing::*;
use claribi_connector_sdk::types::Error;
use claribi_connector_sdk::testing::FakeHost;
use claribi_connector_sdk::Connector;
use serde_json::json;

const ENDPOINT: &str = "http://localhost:3001/mcp";
const KEY: &str = "sk-test-0123456789";

type McpConnector<'a> = Connector<'a, McpServer>;

#[test]
fn describe_names_a_generic_mcp_connector_without_endpoint_origins_or_scopes() {
    let info = McpServer::info();
    assert_eq!(info.id, "mcp");
    assert_eq!(info.display_name, "MCP server");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.default_endpoint, "");
    assert!(info.outbound_origins.is_empty());
    assert!(info.scopes.is_empty());
    assert_eq!(
        info.auth_methods,
        vec![AuthMethod::Oauth, AuthMethod::ApiKey]
    );
}

#[test]
fn check_connection_tolerates_a_200_json_answer_to_the_notification_and_names_the_server() {
    let host = FakeHost::new(ENDPOINT, AuthMethod::ApiKey);
    let http = ScriptedHttp::new()
        .then(discover_refused())
        .then(initialize_ok("2025-11-25", None))
        .then(|_| {
            Ok(json_response(
                200,
                &json!({ "jsonrpc": "2.0", "result": {} }),
            ))
        });
    let account = McpConnector::new(&host, &http).check_connection().unwrap();
    assert_eq!(account.display_name.as_deref(), Some("test-server 1.0.0"));
    let requests = http.requests();
    assert_eq!(requests.len(), 3, "the discover probe, initialize, initialized: no GET stream is opened");
    assert!(requests.iter().all(|r| r.header("authorization").is_none()));
    let init: serde_json::Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(init["params"]["clientInfo"]["name"], CLIENT_NAME);
    assert_eq!(
        init["params"]["clientInfo"]["title"],
        "clariBI MCP connector"
    );
    assert_eq!(init["params"]["protocolVersion"], "2025-11-25");
}

#[test]
fn an_api_key_goes_in_the_header_the_connection_binds_it_to() {
    // The host binds the key to a header (the option `api_key_header`, read by the host) and says
    // which in `connection.api-key-header`; the key there is a placeholder the host replaces.
    let cases: Vec<(&str, &str, String)> = vec![
        ("authorization", "authorization", format!("Bearer {KEY}")),
        ("x-api-key", "x-api-key", KEY.to_owned()),
    ];
    for (bound, header, value) in cases {
        let mut host = FakeHost::new(ENDPOINT, AuthMethod::ApiKey).with_api_key(KEY);
        host.connection.api_key_header = bound.into();
        let http = ScriptedHttp::new()
            .then(discover_refused())
        .then(initialize_ok("2025-11-25", None))
            .then(accepted())
            .then(result(json!({ "tools": [] })));
        McpConnector::new(&host, &http).list_tools().unwrap();
        for request in http.requests() {
            assert_eq!(request.header(header), Some(value.as_str()), "{bound}");
        }
    }
}

#[test]
fn without_credentials_a_401_asks_for_authorization() {
    let host = FakeHost::new(ENDPOINT, AuthMethod::ApiKey);
    let http =
        ScriptedHttp::new().then(|_| Ok(response(401, &[("WWW-Authenticate", "Bearer")], vec![])));
    let err = McpConnector::new(&host, &http)
        .check_connection()
        .unwrap_err();
    assert_eq!(
        err,
        Error::Unauthorized(
            "The MCP server requires authorization (HTTP 401). Reconnect with OAuth or an API key."
                .into()
        )
    );
}
