//! The flow, natively: a [`FakeHost`], a scripted HTTP transport, and the SDK's test vendor
//! ([`AnyServer`]: every default).

use super::*;
use crate::testing::{AnyServer, FakeHost};
use crate::types::{ContentBlock, ScopeProblem, UpstreamFailure};
use mcp_client::oauth::{keys, OAuthHost};
use mcp_client::testing::*;
use mcp_client::url::{decode_pairs, query_pairs};
use mcp_client::{HttpRequest, HttpResponse, Method, TransportError};
use serde_json::json;

const ENDPOINT: &str = "http://localhost:3001/mcp";
const AS: &str = "http://localhost:3002";
const PRM: &str = "http://localhost:3001/.well-known/oauth-protected-resource/mcp";
const REDIRECT: &str = "http://127.0.0.1:40000/callback";
const KEY: &str = "sk-test-0123456789";

type TestConnector<'a> = Connector<'a, AnyServer>;

fn api_key_host() -> FakeHost {
    FakeHost::new(ENDPOINT, AuthMethod::ApiKey).with_api_key(KEY)
}

fn handshake(http: ScriptedHttp) -> ScriptedHttp {
    http.then(discover_refused())
        .then(initialize_ok("2025-11-25", Some("sess-42")))
        .then(accepted())
}

fn store_session(host: &FakeHost) {
    host.set_state(
        STATE_MCP_SESSION,
        Some(&json!({ "endpoint": ENDPOINT, "sessionId": "sess-42", "protocolVersion": "2025-11-25" }).to_string()),
    );
}

type Step = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse, TransportError>>;

fn scripted(steps: Vec<Step>) -> ScriptedHttp {
    let http = ScriptedHttp::new();
    for step in steps {
        http.push(step);
    }
    http
}

fn json_step(status: u16, body: Value) -> Step {
    Box::new(move |_| Ok(json_response(status, &body)))
}

fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

// ------------------------------------------------------------------------------------------------
// Sessions, tools and errors

#[test]
fn check_connection_initializes_a_fresh_session_and_names_the_server() {
    let host = api_key_host();
    store_session(&host);
    let http = handshake(ScriptedHttp::new());
    let account = TestConnector::new(&host, &http).check_connection().unwrap();
    assert_eq!(
        account,
        Account {
            display_name: Some("test-server 1.0.0".into()),
        }
    );
    let requests = http.requests();
    assert_eq!(request_method(&requests[0]), "server/discover");
    assert_eq!(request_method(&requests[1]), "initialize");
    for request in &requests {
        assert_eq!(request.url, ENDPOINT);
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
    }
    let probe: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        probe["params"]["_meta"]["io.modelcontextprotocol/clientInfo"]["name"],
        "claribi-test"
    );
    let init: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(init["params"]["clientInfo"]["name"], "claribi-test");
    assert_eq!(
        init["params"]["clientInfo"]["title"],
        "clariBI test connector"
    );
    assert_eq!(
        init["params"]["clientInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    let session: Value = serde_json::from_str(&host.state(STATE_MCP_SESSION).unwrap()).unwrap();
    assert_eq!(session["sessionId"], "sess-42");
    assert!(host
        .logs
        .borrow()
        .iter()
        .any(|(l, m)| *l == LogLevel::Info && m == "connection checked: test-server 1.0.0"));
}

#[test]
fn a_missing_api_key_is_unauthorized_and_nothing_is_sent() {
    let host = FakeHost::new(ENDPOINT, AuthMethod::ApiKey);
    let http = ScriptedHttp::new();
    let err = TestConnector::new(&host, &http).list_tools().unwrap_err();
    assert_eq!(
        err,
        Error::Unauthorized(
            "No API key is stored for this connection. Reconnect it with an API key.".into()
        )
    );
    assert!(http.requests().is_empty());
}

#[test]
fn a_connection_without_an_endpoint_is_refused_before_anything_is_sent() {
    let mut host = api_key_host();
    host.connection.endpoint = " ".into();
    let http = ScriptedHttp::new();
    let err = TestConnector::new(&host, &http).list_tools().unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("names no MCP server")),
        "{err:?}"
    );
    assert!(http.requests().is_empty());
}

#[test]
fn an_invalid_endpoint_is_reported_before_anything_is_sent() {
    let mut host = api_key_host();
    host.connection.endpoint = "localhost:3001/mcp".into();
    let http = ScriptedHttp::new();
    assert!(
        matches!(TestConnector::new(&host, &http).list_tools(), Err(Error::Protocol(m)) if m.contains("endpoint"))
    );
    assert!(http.requests().is_empty());
}

#[test]
fn list_tools_reuses_the_stored_session_and_converts_the_tools() {
    let host = api_key_host();
    store_session(&host);
    let http = ScriptedHttp::new().then(result(json!({ "tools": [
        { "name": "fetch_lead", "title": "Fetch Lead", "inputSchema": { "type": "object" }, "annotations": { "readOnlyHint": true } },
        { "name": "org_info", "inputSchema": { "type": "object" } }
    ] })));
    let tools = TestConnector::new(&host, &http).list_tools().unwrap().tools;
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
fn tools_are_listed_and_called_on_a_stateless_server_answering_with_sse() {
    let host = api_key_host();
    let http = ScriptedHttp::new()
        .then(discover_refused())
        .then(initialize_ok("2025-11-25", None))
        .then(accepted())
        .then(|r| {
            let id = request_id(r);
            Ok(sse_response(&[&format!(
                "event: message\ndata: {}\n\n",
                json!({ "jsonrpc": "2.0", "id": id, "result": { "tools": [{ "name": "add_numbers", "inputSchema": { "type": "object", "properties": { "a": { "type": "number" }, "b": { "type": "number" } } } }] } })
            )]))
        });
    let tools = TestConnector::new(&host, &http).list_tools().unwrap().tools;
    assert_eq!(tools[0].name, "add_numbers");
    // The session (without an id) is reused for the call.
    let http = ScriptedHttp::new().then(|r| {
        let id = request_id(r);
        Ok(sse_response(&[&format!(
            "data: {}\n\n",
            json!({ "jsonrpc": "2.0", "id": id, "result": { "content": [{ "type": "text", "text": "The sum of 2 and 3 is 5." }] } })
        )]))
    });
    let r = TestConnector::new(&host, &http)
        .call_tool("add_numbers", r#"{"a":2,"b":3}"#)
        .unwrap();
    assert_eq!(
        r.content[0],
        ContentBlock::Text("The sum of 2 and 3 is 5.".into())
    );
    let sent: Value = serde_json::from_slice(&http.requests()[0].body).unwrap();
    assert_eq!(sent["params"]["arguments"], json!({ "a": 2, "b": 3 }));
    assert_eq!(http.requests()[0].header("mcp-session-id"), None);
}

#[test]
fn call_tool_refuses_arguments_that_are_not_a_json_object_and_an_empty_name() {
    let host = api_key_host();
    let http = ScriptedHttp::new();
    for args in ["[]", "42", "\"x\"", "{", ""] {
        assert!(
            matches!(
                TestConnector::new(&host, &http).call_tool("fetch_lead", args),
                Err(Error::InvalidArguments(_))
            ),
            "{args}"
        );
    }
    assert_eq!(
        TestConnector::new(&host, &http).call_tool(" ", "{}"),
        Err(Error::UnknownTool(
            "No tool name was given; list the tools to see what the server offers.".into()
        ))
    );
    assert!(http.requests().is_empty());
}

#[test]
fn call_tool_returns_the_result_with_structured_content() {
    let host = api_key_host();
    store_session(&host);
    let http = ScriptedHttp::new().then(result(json!({ "content": [{ "type": "text", "text": "{\"id\":\"lead_1\",\"name\":\"Wayne\"}" }] })));
    let r = TestConnector::new(&host, &http)
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
fn call_tool_maps_server_errors_onto_the_wit_error_cases() {
    type Check = fn(&Error) -> bool;
    let cases: Vec<(Step, Check)> = vec![
        (
            Box::new(|_| Ok(json_response(401, &json!({ "error": "invalid_token" })))),
            |e| {
                *e == Error::Unauthorized(
                    "The MCP server rejected the API key (HTTP 401). Reconnect the connection."
                        .into(),
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
            |e| {
                *e == Error::InsufficientScope(ScopeProblem {
                    required: vec!["mcp.read".into()],
                    granted: vec![],
                    message: "Insufficient scope: the MCP server needs mcp.read. Reconnect and accept that scope.".into(),
                })
            },
        ),
        (
            Box::new(|_| {
                Ok(response(
                    429,
                    // A reset too far away to wait for (a short one is retried once by mcp-client).
                    &[("RateLimit", "limit=100, remaining=0, reset=30")],
                    vec![],
                ))
            }),
            |e| matches!(e, Error::RateLimited(r) if r.retry_after_ms == Some(30_000)),
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
        let host = api_key_host();
        store_session(&host);
        let http = ScriptedHttp::new();
        http.push(step);
        let err = TestConnector::new(&host, &http)
            .call_tool("nope", "{}")
            .unwrap_err();
        assert!(check(&err), "case {i}: {err:?}");
        assert!(
            host.logged(LogLevel::Warn),
            "case {i}: the failure is logged"
        );
    }
}

#[test]
fn a_server_that_echoes_the_api_key_never_gets_it_into_the_error() {
    let host = api_key_host();
    store_session(&host);
    let http = ScriptedHttp::new().then(|_| {
        Ok(json_response(
            400,
            &json!({ "error": format!("invalid key {KEY}") }),
        ))
    });
    let err = TestConnector::new(&host, &http)
        .call_tool("fetch_lead", "{}")
        .unwrap_err();
    assert_eq!(
        err,
        Error::Upstream(UpstreamFailure {
            status: 400,
            message: "The MCP server answered HTTP 400: invalid key ***".into()
        })
    );
}

#[test]
fn an_expired_session_is_renewed_transparently() {
    let host = api_key_host();
    store_session(&host);
    let http = ScriptedHttp::new()
        .then(|_| Ok(empty(404)))
        .then(discover_refused())
        .then(initialize_ok("2025-06-18", Some("sess-43")))
        .then(accepted())
        .then(result(json!({ "tools": [] })));
    TestConnector::new(&host, &http).list_tools().unwrap();
    let session: Value = serde_json::from_str(&host.state(STATE_MCP_SESSION).unwrap()).unwrap();
    assert_eq!(
        session,
        json!({ "endpoint": ENDPOINT, "sessionId": "sess-43", "protocolVersion": "2025-06-18" })
    );
}

#[test]
fn disconnect_ends_the_session_and_forgets_it() {
    let host = api_key_host();
    store_session(&host);
    let http = ScriptedHttp::new().then(|_| Ok(empty(200)));
    TestConnector::new(&host, &http).disconnect().unwrap();
    assert_eq!(http.requests()[0].method, Method::Delete);
    assert_eq!(http.requests()[0].header("mcp-session-id"), Some("sess-42"));
    assert_eq!(host.state(STATE_MCP_SESSION), None);

    // Whatever happens, disconnect succeeds.
    let host = FakeHost::new(ENDPOINT, AuthMethod::ApiKey);
    store_session(&host);
    let http = ScriptedHttp::new();
    TestConnector::new(&host, &http).disconnect().unwrap();
    assert_eq!(host.state(STATE_MCP_SESSION), None);
    let host = api_key_host();
    store_session(&host);
    let http = ScriptedHttp::new().then(|_| Err(TransportError::Unavailable("down".into())));
    TestConnector::new(&host, &http).disconnect().unwrap();
    assert!(host.logs.borrow().iter().any(|(l, m)| *l == LogLevel::Info
        && m.starts_with("could not end the MCP session at the server: ")));
}

// ------------------------------------------------------------------------------------------------
// The account hook

/// A vendor that names the account with its server's `whoami` tool.
struct WhoAmI;

impl Vendor for WhoAmI {
    fn info() -> crate::types::ConnectorInfo {
        AnyServer::info()
    }
    const CLIENT_NAME: &'static str = "claribi-whoami";
    const CLIENT_TITLE: &'static str = "clariBI whoami connector";
    const WORDING: crate::Wording = crate::Wording::MCP_SERVER;

    fn account_name(session: &mut Session<'_>) -> Result<Option<String>, Error> {
        assert!(session.authorization().is_none());
        assert_eq!(session.hello().server_info.as_ref().unwrap().name, "test-server");
        Ok(session
            .call_tool_if_offered("whoami", Map::new())?
            .map(|r| r.content[0].as_text().unwrap_or_default().to_owned()))
    }
}

#[test]
fn the_account_hook_calls_tools_on_the_fresh_session() {
    let host = api_key_host();
    let http = handshake(ScriptedHttp::new()).then(result(
        json!({ "content": [{ "type": "text", "text": "Jo" }] }),
    ));
    let account = Connector::<WhoAmI>::new(&host, &http)
        .check_connection()
        .unwrap();
    assert_eq!(account.display_name.as_deref(), Some("Jo"));
    let call: Value = serde_json::from_slice(&http.requests()[3].body).unwrap();
    assert_eq!(call["params"], json!({ "name": "whoami", "arguments": {} }));
    assert_eq!(http.requests()[3].header("mcp-session-id"), Some("sess-42"));

    // No such tool: no name, and no failure.
    let host = api_key_host();
    let http =
        handshake(ScriptedHttp::new()).then(|r| Ok(rpc_error(r, -32602, "Unknown tool: whoami")));
    let account = Connector::<WhoAmI>::new(&host, &http)
        .check_connection()
        .unwrap();
    assert_eq!(account.display_name, None);
    assert!(!host.logged(LogLevel::Warn));

    // Any other failure is the check's, mapped for the tool and logged.
    let host = api_key_host();
    let http = handshake(ScriptedHttp::new()).then(|r| Ok(rpc_error(r, -32603, "boom")));
    let err = Connector::<WhoAmI>::new(&host, &http)
        .check_connection()
        .unwrap_err();
    assert!(
        matches!(&err, Error::ToolFailed(m) if m.contains("`whoami`")),
        "{err:?}"
    );
    assert!(host.logged(LogLevel::Warn));
}

// ------------------------------------------------------------------------------------------------
// OAuth (the spec's discovery and scope strategy)

#[test]
fn an_oauth_connection_sends_its_access_token_as_a_bearer() {
    let host = FakeHost::new(ENDPOINT, AuthMethod::Oauth);
    host.inner.put_secret(SECRET_ACCESS_TOKEN, "tok");
    store_session(&host);
    let http = ScriptedHttp::new().then(result(json!({ "tools": [] })));
    TestConnector::new(&host, &http).list_tools().unwrap();
    assert_eq!(
        http.requests()[0].header("authorization"),
        Some("Bearer tok")
    );
}

#[test]
fn an_oauth_connection_without_a_token_is_unauthorized_and_nothing_is_sent() {
    let host = FakeHost::new(ENDPOINT, AuthMethod::Oauth);
    let http = ScriptedHttp::new();
    assert_eq!(
        TestConnector::new(&host, &http).list_tools(),
        Err(Error::Unauthorized(
            "This connection holds no OAuth token. Reconnect it.".into()
        ))
    );
    assert!(http.requests().is_empty());
}

/// A notification answered 200 with a JSON body, as the conformance `initialize` server does.
fn notification_200() -> Step {
    Box::new(|_| {
        Ok(json_response(
            200,
            &json!({ "jsonrpc": "2.0", "result": {} }),
        ))
    })
}

fn as_metadata() -> Value {
    json!({
        "issuer": AS,
        "authorization_endpoint": format!("{AS}/authorize"),
        "token_endpoint": format!("{AS}/token"),
        "registration_endpoint": format!("{AS}/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "authorization_response_iss_parameter_supported": true
    })
}

/// The conformance `scope-step-up` server: `initialize` is open, `tools/list` without a token gets
/// a 401 asking for `mcp:basic`, and discovery goes through the challenge's metadata URL.
fn step_up_begin(registration: bool) -> Vec<Step> {
    let mut steps: Vec<Step> = vec![
        Box::new(discover_refused()),
        Box::new(|r| Ok(rpc_result(r, initialize_result("2025-11-25")))),
        notification_200(),
        Box::new(|_| {
            Ok(response(
                401,
                &[(
                    "WWW-Authenticate",
                    r#"Bearer scope="mcp:basic", resource_metadata="http://localhost:3001/.well-known/oauth-protected-resource/mcp""#,
                )],
                vec![],
            ))
        }),
        json_step(
            200,
            json!({ "resource": ENDPOINT, "authorization_servers": [AS], "scopes_supported": ["mcp:profile"] }),
        ),
        json_step(200, as_metadata()),
    ];
    if registration {
        steps.push(json_step(
            201,
            json!({ "client_id": "test-client-id", "client_secret": "test-client-secret", "token_endpoint_auth_method": "none" }),
        ));
    }
    steps
}

#[test]
fn an_oauth_connection_steps_up_to_the_union_of_its_scopes_after_a_403() {
    let host = FakeHost::new(ENDPOINT, AuthMethod::Oauth);
    let connector_http = scripted(step_up_begin(true));
    let start = TestConnector::new(&host, &connector_http)
        .begin_authorization(REDIRECT)
        .unwrap();
    assert_eq!(
        param(&query_pairs(&start.url), "scope").as_deref(),
        Some("mcp:basic")
    );
    assert_eq!(
        param(&query_pairs(&start.url), "resource").as_deref(),
        Some(ENDPOINT)
    );
    let urls: Vec<String> = connector_http
        .requests()
        .into_iter()
        .map(|r| r.url)
        .collect();
    assert_eq!(urls[4], PRM);
    assert_eq!(
        urls[5],
        format!("{AS}/.well-known/oauth-authorization-server")
    );
    let registration: Value = serde_json::from_slice(&connector_http.requests()[6].body).unwrap();
    assert_eq!(registration["client_name"], "claribi-test");

    // Completion: the token, then a check with it.
    let iss = AS.replace(':', "%3A").replace('/', "%2F");
    let http = scripted(vec![json_step(
        200,
        json!({ "access_token": "test-token-1", "token_type": "Bearer", "expires_in": 3600, "scope": "mcp:basic" }),
    )])
    .then(discover_refused())
        .then(initialize_ok("2025-11-25", None))
    .then(accepted());
    let account = TestConnector::new(&host, &http)
        .complete_authorization(&format!(
            "{REDIRECT}?code=test-auth-code&state={}&iss={iss}",
            start.state
        ))
        .unwrap();
    assert_eq!(account.display_name.as_deref(), Some("test-server 1.0.0"));
    let token_form = decode_pairs(&String::from_utf8_lossy(&http.requests()[0].body));
    assert_eq!(
        param(&token_form, "client_id").as_deref(),
        Some("test-client-id")
    );
    assert_eq!(param(&token_form, "resource").as_deref(), Some(ENDPOINT));
    assert_eq!(
        http.requests()[2].header("authorization"),
        Some("Bearer test-token-1")
    );

    // The call needs more: a 403 step-up challenge.
    let http = ScriptedHttp::new().then(|_| {
        Ok(response(
            403,
            &[("WWW-Authenticate", r#"Bearer scope="mcp:write", resource_metadata="http://localhost:3001/.well-known/oauth-protected-resource/mcp", error="insufficient_scope""#)],
            vec![],
        ))
    });
    let err = TestConnector::new(&host, &http)
        .call_tool("test-tool", "{}")
        .unwrap_err();
    match &err {
        Error::InsufficientScope(p) => {
            assert_eq!(p.required, vec!["mcp:write"]);
            assert_eq!(p.granted, vec!["mcp:basic"]);
        }
        other => panic!("{other:?}"),
    }

    // The next authorization goes straight to discovery and asks for both scopes.
    let mut steps = step_up_begin(false);
    steps.drain(..4);
    let http = scripted(steps);
    let again = TestConnector::new(&host, &http)
        .begin_authorization("http://127.0.0.1:40001/callback")
        .unwrap();
    assert_eq!(http.requests()[0].url, PRM, "no probe");
    assert_eq!(
        param(&query_pairs(&again.url), "scope").as_deref(),
        Some("mcp:basic mcp:write")
    );
    assert_eq!(http.remaining(), 0);
}

#[test]
fn a_resource_metadata_naming_another_server_stops_before_registration_and_authorization() {
    let host = FakeHost::new(ENDPOINT, AuthMethod::Oauth);
    let http = scripted(vec![
        Box::new(|_| {
            Ok(response(
                401,
                &[(
                    "WWW-Authenticate",
                    r#"Bearer resource_metadata="http://localhost:3001/.well-known/oauth-protected-resource/mcp""#,
                )],
                vec![],
            ))
        }),
        json_step(
            200,
            json!({ "resource": "https://evil.example.com/mcp", "authorization_servers": [AS] }),
        ),
    ]);
    let err = TestConnector::new(&host, &http)
        .begin_authorization(REDIRECT)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("evil.example.com")),
        "{err:?}"
    );
    assert_eq!(http.requests().len(), 2);
    assert_eq!(host.state(keys::PENDING), None);
}

#[test]
fn pre_registered_credentials_from_the_options_authenticate_with_basic() {
    let mut host = FakeHost::new(ENDPOINT, AuthMethod::Oauth);
    host.connection.options = vec![
        ("client_id".into(), "pre-registered-client".into()),
        ("client_secret".into(), "pre-registered-secret".into()),
    ];
    let mut metadata = as_metadata();
    metadata["token_endpoint_auth_methods_supported"] = json!(["client_secret_basic"]);
    metadata
        .as_object_mut()
        .unwrap()
        .remove("registration_endpoint");
    let http = scripted(vec![
        Box::new(|_| {
            Ok(response(
                401,
                &[(
                    "WWW-Authenticate",
                    r#"Bearer resource_metadata="http://localhost:3001/.well-known/oauth-protected-resource/mcp""#,
                )],
                vec![],
            ))
        }),
        json_step(
            200,
            json!({ "resource": ENDPOINT, "authorization_servers": [AS] }),
        ),
        json_step(200, metadata),
    ]);
    let start = TestConnector::new(&host, &http)
        .begin_authorization(REDIRECT)
        .unwrap();
    assert_eq!(
        param(&query_pairs(&start.url), "client_id").as_deref(),
        Some("pre-registered-client")
    );
    assert_eq!(
        param(&query_pairs(&start.url), "scope"),
        None,
        "no scope anywhere: omitted"
    );
    let http = scripted(vec![json_step(
        200,
        json!({ "access_token": "test-token-2", "token_type": "Bearer" }),
    )])
    .then(discover_refused())
        .then(initialize_ok("2025-11-25", None))
    .then(accepted());
    TestConnector::new(&host, &http)
        .complete_authorization(&format!("{REDIRECT}?code=c&state={}&iss={AS}", start.state))
        .unwrap();
    assert_eq!(
        http.requests()[0].header("authorization"),
        Some("Basic cHJlLXJlZ2lzdGVyZWQtY2xpZW50OnByZS1yZWdpc3RlcmVkLXNlY3JldA==")
    );
}

#[test]
fn disconnect_ends_the_session_and_revokes_nothing_without_a_revocation_endpoint() {
    let host = FakeHost::new(ENDPOINT, AuthMethod::Oauth);
    host.inner.put_secret(keys::ACCESS_TOKEN, "test-token-3");
    store_session(&host);
    let http = ScriptedHttp::new().then(|_| Ok(empty(405)));
    TestConnector::new(&host, &http).disconnect().unwrap();
    assert_eq!(http.requests().len(), 1);
    assert_eq!(http.requests()[0].method, Method::Delete);
    assert_eq!(host.state(STATE_MCP_SESSION), None);
}
