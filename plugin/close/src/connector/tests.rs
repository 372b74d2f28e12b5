use super::*;
use mcp_client::testing::*;
use mcp_client::{HttpRequest, Method, TransportError};
use serde_json::json;
use std::cell::RefCell;
use std::collections::HashMap;

const KEY: &str = "api_3xampleSECRETkey";

struct FakeHost {
    connection: Connection,
    secrets: HashMap<String, String>,
    state: RefCell<HashMap<String, String>>,
    logs: RefCell<Vec<(LogLevel, String)>>,
}

impl FakeHost {
    fn new() -> Self {
        FakeHost {
            connection: Connection {
                name: "close-test".into(),
                id: "conn-1".into(),
                endpoint: "https://mcp.close.com/mcp".into(),
                auth_method: AuthMethod::ApiKey,
                scopes: vec![],
                options: vec![],
            },
            secrets: HashMap::from([(SECRET_API_KEY.to_owned(), KEY.to_owned())]),
            state: RefCell::default(),
            logs: RefCell::default(),
        }
    }

    fn assert_no_secret_logged(&self) {
        for (_, line) in self.logs.borrow().iter() {
            assert!(
                !line.contains(KEY),
                "a log line contains the API key: {line}"
            );
            assert!(!line.contains('\n'), "a log line spans lines: {line}");
        }
    }
}

impl Host for FakeHost {
    fn connection(&self) -> Connection {
        self.connection.clone()
    }
    fn secret(&self, key: &str) -> Option<String> {
        self.secrets.get(key).cloned()
    }
    fn state(&self, key: &str) -> Option<String> {
        self.state.borrow().get(key).cloned()
    }
    fn set_state(&self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.state.borrow_mut().insert(key.to_owned(), v.to_owned()),
            None => self.state.borrow_mut().remove(key),
        };
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }
}

fn handshake(http: ScriptedHttp) -> ScriptedHttp {
    http.then(initialize_ok("2025-11-25", Some("sess-42")))
        .then(accepted())
}

fn org_info() -> impl FnMut(&HttpRequest) -> Result<mcp_client::HttpResponse, TransportError> {
    result(json!({
        "content": [{ "type": "text", "text": "{\"organization\":{\"id\":\"orga_123\",\"name\":\"Acme Corp\"}}" }]
    }))
}

fn store_session(host: &FakeHost) {
    host.set_state(
        STATE_MCP_SESSION,
        Some(&json!({ "endpoint": "https://mcp.close.com/mcp", "sessionId": "sess-42", "protocolVersion": "2025-11-25" }).to_string()),
    );
}

#[test]
fn describe_names_close_its_endpoint_origins_scope_and_auth_methods() {
    let info = describe();
    assert_eq!(info.id, "close");
    assert_eq!(info.display_name, "Close CRM");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.default_endpoint, "https://mcp.close.com/mcp");
    assert_eq!(
        info.outbound_origins,
        vec![
            "https://mcp.close.com",
            "https://api.close.com",
            "https://app.close.com"
        ]
    );
    assert_eq!(info.scopes, vec!["mcp.read"]);
    assert_eq!(
        info.auth_methods,
        vec![AuthMethod::ApiKey, AuthMethod::Oauth]
    );
    assert!(!info.description.is_empty());
}

#[test]
fn check_connection_initializes_calls_org_info_and_reports_the_organization() {
    let host = FakeHost::new();
    let http = handshake(ScriptedHttp::new()).then(org_info());
    let account = CloseConnector::new(&host, &http)
        .check_connection()
        .unwrap();
    assert_eq!(
        account,
        Account {
            granted_scopes: vec!["mcp.read".into()],
            display_name: Some("Acme Corp (orga_123)".into()),
            credential_origins: vec!["https://mcp.close.com".into()],
        }
    );
    let requests = http.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.url, "https://mcp.close.com/mcp");
        assert_eq!(request.header("close-api-key"), Some(KEY));
        assert_eq!(request.header("close-scope"), Some("mcp.read"));
    }
    let call: Value = serde_json::from_slice(&requests[2].body).unwrap();
    assert_eq!(
        call["params"],
        json!({ "name": "org_info", "arguments": {} })
    );
    assert_eq!(requests[2].header("mcp-session-id"), Some("sess-42"));
    let session: Value = serde_json::from_str(&host.state(STATE_MCP_SESSION).unwrap()).unwrap();
    assert_eq!(session["sessionId"], "sess-42");
    host.assert_no_secret_logged();
}

#[test]
fn check_connection_always_starts_a_fresh_session() {
    let host = FakeHost::new();
    store_session(&host);
    let http = handshake(ScriptedHttp::new()).then(org_info());
    CloseConnector::new(&host, &http)
        .check_connection()
        .unwrap();
    assert_eq!(request_method(&http.requests()[0]), "initialize");
}

#[test]
fn the_connections_first_scope_is_sent_and_reported() {
    let mut host = FakeHost::new();
    host.connection.scopes = vec!["mcp.write_safe".into(), "mcp.read".into()];
    let http = handshake(ScriptedHttp::new()).then(org_info());
    let account = CloseConnector::new(&host, &http)
        .check_connection()
        .unwrap();
    assert_eq!(account.granted_scopes, vec!["mcp.write_safe"]);
    assert!(http
        .requests()
        .iter()
        .all(|r| r.header("close-scope") == Some("mcp.write_safe")));
}

#[test]
fn a_missing_api_key_is_unauthorized_and_nothing_is_sent() {
    let mut host = FakeHost::new();
    host.secrets.clear();
    let http = ScriptedHttp::new();
    let err = CloseConnector::new(&host, &http).list_tools().unwrap_err();
    assert!(
        matches!(&err, Error::Unauthorized(m) if m.contains("Reconnect")),
        "{err:?}"
    );
    assert!(http.requests().is_empty());
}

#[test]
fn an_invalid_endpoint_is_reported_before_anything_is_sent() {
    let mut host = FakeHost::new();
    host.connection.endpoint = "mcp.close.com/mcp".into();
    let http = ScriptedHttp::new();
    assert!(
        matches!(CloseConnector::new(&host, &http).list_tools(), Err(Error::Protocol(m)) if m.contains("endpoint"))
    );
    assert!(http.requests().is_empty());
}

#[test]
fn list_tools_reuses_the_stored_session_and_converts_the_tools() {
    let host = FakeHost::new();
    store_session(&host);
    let http = ScriptedHttp::new().then(result(json!({ "tools": [
        { "name": "fetch_lead", "title": "Fetch Lead", "inputSchema": { "type": "object" }, "annotations": { "readOnlyHint": true } },
        { "name": "org_info", "inputSchema": { "type": "object" } }
    ] })));
    let tools = CloseConnector::new(&host, &http).list_tools().unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0].title.as_deref(), Some("Fetch Lead"));
    assert_eq!(tools[0].annotations.read_only_hint, Some(true));
    assert_eq!(
        http.requests().len(),
        1,
        "no initialize when a session is stored"
    );
    assert_eq!(http.requests()[0].header("mcp-session-id"), Some("sess-42"));
}

#[test]
fn call_tool_refuses_arguments_that_are_not_a_json_object() {
    let host = FakeHost::new();
    let http = ScriptedHttp::new();
    for args in ["[]", "42", "\"x\"", "{", ""] {
        assert!(
            matches!(
                CloseConnector::new(&host, &http).call_tool("fetch_lead", args),
                Err(Error::InvalidArguments(_))
            ),
            "{args}"
        );
    }
    assert!(http.requests().is_empty());
}

#[test]
fn call_tool_returns_the_result_with_structured_content() {
    let host = FakeHost::new();
    store_session(&host);
    let http = ScriptedHttp::new().then(result(json!({ "content": [{ "type": "text", "text": "{\"id\":\"lead_1\",\"name\":\"Wayne\"}" }] })));
    let r = CloseConnector::new(&host, &http)
        .call_tool("fetch_lead", r#"{"id":"lead_1"}"#)
        .unwrap();
    assert_eq!(
        r.structured_content.as_deref(),
        Some(r#"{"id":"lead_1","name":"Wayne"}"#)
    );
    let sent: Value = serde_json::from_slice(&http.requests()[0].body).unwrap();
    assert_eq!(
        sent["params"],
        json!({ "name": "fetch_lead", "arguments": { "id": "lead_1" } })
    );
}

#[test]
fn call_tool_maps_close_errors_onto_the_wit_error_cases() {
    type Step = Box<dyn FnMut(&HttpRequest) -> Result<mcp_client::HttpResponse, TransportError>>;
    type Check = fn(&Error) -> bool;
    let cases: Vec<(Step, Check)> = vec![
        (
            Box::new(|_| Ok(json_response(401, &json!({ "error": "invalid_token" })))),
            |e| {
                *e == Error::Unauthorized(
                    "Close rejected the credentials (HTTP 401). Reconnect the connection.".into(),
                )
            },
        ),
        (
            Box::new(|_| {
                Ok(response(
                    403,
                    &[(
                        "WWW-Authenticate",
                        r#"Bearer error="insufficient_scope", scope="mcp.read""#,
                    )],
                    vec![],
                ))
            }),
            |e| matches!(e, Error::InsufficientScope(p) if p.message == "Insufficient scope: the Close account did not grant mcp.read. Reconnect and accept the read scope."),
        ),
        (
            Box::new(|_| {
                Ok(response(
                    429,
                    &[("RateLimit", "limit=100, remaining=0, reset=1")],
                    vec![],
                ))
            }),
            |e| matches!(e, Error::RateLimited(r) if r.retry_after_ms == Some(1000)),
        ),
        (
            Box::new(|r| Ok(rpc_error(r, -32602, "Unknown tool: nope"))),
            |e| matches!(e, Error::UnknownTool(_)),
        ),
        (
            Box::new(|r| Ok(rpc_error(r, -32602, "Invalid arguments: id is required"))),
            |e| matches!(e, Error::InvalidArguments(_)),
        ),
        (
            Box::new(|r| {
                Ok(rpc_result(
                    r,
                    json!({ "content": [{ "type": "text", "text": "Lead not found" }], "isError": true }),
                ))
            }),
            |e| *e == Error::ToolFailed("Lead not found".into()),
        ),
        (
            Box::new(|_| Ok(empty(502))),
            |e| matches!(e, Error::Upstream(u) if u.status == 502),
        ),
        (
            Box::new(|_| Err(TransportError::Denied("origin not granted".into()))),
            |e| matches!(e, Error::DeniedByPolicy(_)),
        ),
        (
            Box::new(|_| Err(TransportError::Unavailable("connection refused".into()))),
            |e| matches!(e, Error::Unavailable(_)),
        ),
        (
            Box::new(|_| {
                Ok(response(
                    200,
                    &[("Content-Type", "application/json")],
                    vec![b"<<garbage>>".to_vec()],
                ))
            }),
            |e| matches!(e, Error::Protocol(_)),
        ),
    ];
    for (i, (step, check)) in cases.into_iter().enumerate() {
        let host = FakeHost::new();
        store_session(&host);
        let http = ScriptedHttp::new();
        http.push(step);
        let err = CloseConnector::new(&host, &http)
            .call_tool("nope", "{}")
            .unwrap_err();
        assert!(check(&err), "case {i}: {err:?}");
        host.assert_no_secret_logged();
        assert!(
            host.logs.borrow().iter().any(|(l, _)| *l == LogLevel::Warn),
            "case {i}: the failure is logged"
        );
    }
}

#[test]
fn a_server_that_echoes_the_api_key_never_gets_it_into_the_error() {
    let host = FakeHost::new();
    store_session(&host);
    let http = ScriptedHttp::new().then(|_| {
        Ok(json_response(
            400,
            &json!({ "error": format!("invalid key {KEY}") }),
        ))
    });
    let err = CloseConnector::new(&host, &http)
        .call_tool("fetch_lead", "{}")
        .unwrap_err();
    assert_eq!(
        err,
        Error::Upstream(crate::types::UpstreamFailure {
            status: 400,
            message: "Close answered HTTP 400: invalid key ***".into()
        })
    );
    host.assert_no_secret_logged();
}

#[test]
fn check_connection_without_an_org_info_tool_still_succeeds_without_a_name() {
    let host = FakeHost::new();
    let http =
        handshake(ScriptedHttp::new()).then(|r| Ok(rpc_error(r, -32602, "Unknown tool: org_info")));
    let account = CloseConnector::new(&host, &http)
        .check_connection()
        .unwrap();
    assert_eq!(account.display_name, None);
}

#[test]
fn an_expired_session_is_renewed_transparently() {
    let host = FakeHost::new();
    store_session(&host);
    let http = ScriptedHttp::new()
        .then(|_| Ok(empty(404)))
        .then(initialize_ok("2025-06-18", Some("sess-43")))
        .then(accepted())
        .then(result(json!({ "tools": [] })));
    CloseConnector::new(&host, &http).list_tools().unwrap();
    let session: Value = serde_json::from_str(&host.state(STATE_MCP_SESSION).unwrap()).unwrap();
    assert_eq!(
        session,
        json!({ "endpoint": "https://mcp.close.com/mcp", "sessionId": "sess-43", "protocolVersion": "2025-06-18" })
    );
}

#[test]
fn an_oauth_connection_sends_its_access_token_as_a_bearer() {
    let mut host = FakeHost::new();
    host.connection.auth_method = AuthMethod::Oauth;
    host.secrets = HashMap::from([(SECRET_ACCESS_TOKEN.to_owned(), "tok".to_owned())]);
    store_session(&host);
    let http = ScriptedHttp::new().then(result(json!({ "tools": [] })));
    CloseConnector::new(&host, &http).list_tools().unwrap();
    let request = &http.requests()[0];
    assert_eq!(request.header("authorization"), Some("Bearer tok"));
    assert_eq!(request.header("close-api-key"), None);
}

#[test]
fn oauth_authorization_is_not_implemented_yet() {
    assert!(
        matches!(oauth_not_implemented(), Error::Protocol(m) if m.starts_with("OAuth is not implemented yet"))
    );
}

#[test]
fn disconnect_ends_the_session_and_forgets_it() {
    let host = FakeHost::new();
    store_session(&host);
    let http = ScriptedHttp::new().then(|_| Ok(empty(200)));
    CloseConnector::new(&host, &http).disconnect().unwrap();
    assert_eq!(http.requests()[0].method, Method::Delete);
    assert_eq!(http.requests()[0].header("mcp-session-id"), Some("sess-42"));
    assert_eq!(host.state(STATE_MCP_SESSION), None);

    // Whatever happens, disconnect succeeds.
    let mut host = FakeHost::new();
    host.secrets.clear();
    store_session(&host);
    let http = ScriptedHttp::new();
    CloseConnector::new(&host, &http).disconnect().unwrap();
    assert_eq!(host.state(STATE_MCP_SESSION), None);
    let host = FakeHost::new();
    store_session(&host);
    let http = ScriptedHttp::new().then(|_| Err(TransportError::Unavailable("down".into())));
    CloseConnector::new(&host, &http).disconnect().unwrap();
}
