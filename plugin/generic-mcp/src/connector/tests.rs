use super::*;
use mcp_client::oauth::keys;
use mcp_client::testing::*;
use mcp_client::url::{decode_pairs, query_pairs};
use mcp_client::{HttpRequest, HttpResponse, Method, TransportError};
use serde_json::json;
use std::cell::RefCell;

const ENDPOINT: &str = "http://localhost:3001/mcp";
const AS: &str = "http://localhost:3002";
const PRM: &str = "http://localhost:3001/.well-known/oauth-protected-resource/mcp";
const REDIRECT: &str = "http://127.0.0.1:40000/callback";
const KEY: &str = "sk-test-0123456789";

/// The connection, logs, and an in-memory host for secrets, state and the credential lock.
struct FakeHost {
    connection: Connection,
    inner: MemoryHost,
    logs: RefCell<Vec<(LogLevel, String)>>,
}

impl FakeHost {
    fn new(auth_method: AuthMethod) -> Self {
        FakeHost {
            connection: Connection {
                name: "conformance".into(),
                id: "conn-1".into(),
                endpoint: ENDPOINT.into(),
                auth_method,
                scopes: vec![],
                options: vec![],
            },
            inner: MemoryHost::new(),
            logs: RefCell::default(),
        }
    }

    fn with_key(self) -> Self {
        self.inner.put_secret(SECRET_API_KEY, KEY);
        self
    }
}

impl OAuthHost for FakeHost {
    fn secret(&self, key: &str) -> Option<String> {
        self.inner.secret(key)
    }
    fn update_secrets(&self, changes: &[(&str, Option<&str>)]) -> Result<(), String> {
        self.inner.update_secrets(changes)
    }
    fn state(&self, key: &str) -> Option<String> {
        self.inner.state(key)
    }
    fn set_state(&self, key: &str, value: Option<&str>) {
        self.inner.set_state(key, value)
    }
    fn shared_state(&self, key: &str) -> Option<String> {
        self.inner.shared_state(key)
    }
    fn set_shared_state(&self, key: &str, value: Option<&str>) {
        self.inner.set_shared_state(key, value)
    }
    fn lock_credentials(&self) -> Box<dyn mcp_client::oauth::HeldLock + '_> {
        self.inner.lock_credentials()
    }
}

impl Logger for FakeHost {
    fn log(&self, level: LogLevel, message: &str) {
        assert!(
            !message.contains(KEY),
            "a log line contains the key: {message}"
        );
        self.logs.borrow_mut().push((level, message.to_owned()));
    }
}

impl Host for FakeHost {
    fn connection(&self) -> Connection {
        self.connection.clone()
    }
}

type Step = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse, TransportError>>;

fn scripted(steps: Vec<Step>) -> ScriptedHttp {
    let http = ScriptedHttp::new();
    for step in steps {
        http.push(step);
    }
    http
}

fn json_step(status: u16, body: serde_json::Value) -> Step {
    Box::new(move |_| Ok(json_response(status, &body)))
}

fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
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

fn as_metadata() -> serde_json::Value {
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

#[test]
fn describe_names_a_generic_mcp_connector_without_endpoint_origins_or_scopes() {
    let info = describe();
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
fn a_connection_without_an_endpoint_is_refused_before_anything_is_sent() {
    let mut host = FakeHost::new(AuthMethod::ApiKey);
    host.connection.endpoint = " ".into();
    let http = ScriptedHttp::new();
    let err = McpConnector::new(&host, &http).list_tools().unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("names no MCP server")),
        "{err:?}"
    );
    assert!(http.requests().is_empty());
}

#[test]
fn check_connection_tolerates_a_200_json_answer_to_the_notification_and_names_the_server() {
    let host = FakeHost::new(AuthMethod::ApiKey);
    let http = ScriptedHttp::new().then(initialize_ok("2025-11-25", None));
    http.push(notification_200());
    let account = McpConnector::new(&host, &http).check_connection().unwrap();
    assert_eq!(account.display_name.as_deref(), Some("test-server 1.0.0"));
    assert!(account.granted_scopes.is_empty());
    assert_eq!(account.credential_origins, vec!["http://localhost:3001"]);
    let requests = http.requests();
    assert_eq!(requests.len(), 2, "no GET stream is opened");
    assert!(requests.iter().all(|r| r.header("authorization").is_none()));
    let init: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(init["params"]["clientInfo"]["name"], CLIENT_NAME);
    assert_eq!(init["params"]["protocolVersion"], "2025-11-25");
}

#[test]
fn an_api_key_goes_as_a_bearer_or_in_the_named_header() {
    let cases: Vec<(Option<&str>, &str, String)> = vec![
        (None, "authorization", format!("Bearer {KEY}")),
        (
            Some("Authorization"),
            "authorization",
            format!("Bearer {KEY}"),
        ),
        (Some("X-API-Key"), "x-api-key", KEY.to_owned()),
    ];
    for (option, header, value) in cases {
        let mut host = FakeHost::new(AuthMethod::ApiKey).with_key();
        if let Some(o) = option {
            host.connection.options = vec![(OPTION_API_KEY_HEADER.into(), o.into())];
        }
        let http = ScriptedHttp::new()
            .then(initialize_ok("2025-11-25", None))
            .then(accepted())
            .then(result(json!({ "tools": [] })));
        McpConnector::new(&host, &http).list_tools().unwrap();
        for request in http.requests() {
            assert_eq!(request.header(header), Some(value.as_str()), "{option:?}");
        }
    }
}

#[test]
fn an_api_key_header_option_that_is_no_header_name_is_refused() {
    for bad in ["X Key", "Content-Type", "Mcp-Session-Id", "a:b"] {
        let options = vec![(OPTION_API_KEY_HEADER.to_owned(), bad.to_owned())];
        assert!(
            matches!(api_key_header(&options), Err(Error::Protocol(_))),
            "{bad}"
        );
    }
}

#[test]
fn tools_are_listed_and_called_on_a_stateless_server_answering_with_sse() {
    let host = FakeHost::new(AuthMethod::ApiKey);
    let http = ScriptedHttp::new()
        .then(initialize_ok("2025-11-25", None))
        .then(accepted())
        .then(|r| {
            let id = request_id(r);
            Ok(sse_response(&[&format!(
                "event: message\ndata: {}\n\n",
                json!({ "jsonrpc": "2.0", "id": id, "result": { "tools": [{ "name": "add_numbers", "inputSchema": { "type": "object", "properties": { "a": { "type": "number" }, "b": { "type": "number" } } } }] } })
            )]))
        });
    let tools = McpConnector::new(&host, &http).list_tools().unwrap();
    assert_eq!(tools[0].name, "add_numbers");
    // The session (without an id) is reused for the call.
    let http = ScriptedHttp::new().then(|r| {
        let id = request_id(r);
        Ok(sse_response(&[&format!(
            "data: {}\n\n",
            json!({ "jsonrpc": "2.0", "id": id, "result": { "content": [{ "type": "text", "text": "The sum of 2 and 3 is 5." }] } })
        )]))
    });
    let r = McpConnector::new(&host, &http)
        .call_tool("add_numbers", r#"{"a":2,"b":3}"#)
        .unwrap();
    assert_eq!(
        r.content[0],
        crate::types::ContentBlock::Text("The sum of 2 and 3 is 5.".into())
    );
    let sent: serde_json::Value = serde_json::from_slice(&http.requests()[0].body).unwrap();
    assert_eq!(sent["params"]["arguments"], json!({ "a": 2, "b": 3 }));
    assert_eq!(http.requests()[0].header("mcp-session-id"), None);
}

#[test]
fn without_credentials_a_401_asks_for_authorization() {
    let host = FakeHost::new(AuthMethod::ApiKey);
    let http =
        ScriptedHttp::new().then(|_| Ok(response(401, &[("WWW-Authenticate", "Bearer")], vec![])));
    let err = McpConnector::new(&host, &http)
        .check_connection()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unauthorized(m) if m.contains("requires authorization")),
        "{err:?}"
    );
}

/// The conformance `scope-step-up` server: `initialize` is open, `tools/list` without a token gets
/// a 401 asking for `mcp:basic`, and discovery goes through the challenge's metadata URL.
fn step_up_begin(registration: bool) -> Vec<Step> {
    let mut steps: Vec<Step> = vec![
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
    let host = FakeHost::new(AuthMethod::Oauth);
    let connector_http = scripted(step_up_begin(true));
    let start = McpConnector::new(&host, &connector_http)
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
    assert_eq!(start.credential_origins, vec![AS]);
    let urls: Vec<String> = connector_http
        .requests()
        .into_iter()
        .map(|r| r.url)
        .collect();
    assert_eq!(urls[3], PRM);
    assert_eq!(
        urls[4],
        format!("{AS}/.well-known/oauth-authorization-server")
    );

    // Completion: the token, then a check with it.
    let iss = AS.replace(':', "%3A").replace('/', "%2F");
    let http = scripted(vec![json_step(
        200,
        json!({ "access_token": "test-token-1", "token_type": "Bearer", "expires_in": 3600, "scope": "mcp:basic" }),
    )])
    .then(initialize_ok("2025-11-25", None))
    .then(accepted());
    let account = McpConnector::new(&host, &http)
        .complete_authorization(&format!(
            "{REDIRECT}?code=test-auth-code&state={}&iss={iss}",
            start.state
        ))
        .unwrap();
    assert_eq!(account.granted_scopes, vec!["mcp:basic"]);
    assert_eq!(
        account.credential_origins,
        vec!["http://localhost:3001", AS]
    );
    let token_form = decode_pairs(&String::from_utf8_lossy(&http.requests()[0].body));
    assert_eq!(
        param(&token_form, "client_id").as_deref(),
        Some("test-client-id")
    );
    assert_eq!(param(&token_form, "resource").as_deref(), Some(ENDPOINT));
    assert_eq!(
        http.requests()[1].header("authorization"),
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
    let err = McpConnector::new(&host, &http)
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
    steps.drain(..3);
    let http = scripted(steps);
    let again = McpConnector::new(&host, &http)
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
    let host = FakeHost::new(AuthMethod::Oauth);
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
    let err = McpConnector::new(&host, &http)
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
    let mut host = FakeHost::new(AuthMethod::Oauth);
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
    let start = McpConnector::new(&host, &http)
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
    .then(initialize_ok("2025-11-25", None))
    .then(accepted());
    McpConnector::new(&host, &http)
        .complete_authorization(&format!("{REDIRECT}?code=c&state={}&iss={AS}", start.state))
        .unwrap();
    assert_eq!(
        http.requests()[0].header("authorization"),
        Some("Basic cHJlLXJlZ2lzdGVyZWQtY2xpZW50OnByZS1yZWdpc3RlcmVkLXNlY3JldA==")
    );
}

#[test]
fn disconnect_ends_the_session_and_revokes_nothing_without_a_revocation_endpoint() {
    let host = FakeHost::new(AuthMethod::Oauth);
    host.inner.put_secret(keys::ACCESS_TOKEN, "test-token-3");
    host.set_state(
        STATE_MCP_SESSION,
        Some(
            &json!({ "endpoint": ENDPOINT, "sessionId": "s-1", "protocolVersion": "2025-11-25" })
                .to_string(),
        ),
    );
    let http = ScriptedHttp::new().then(|_| Ok(empty(405)));
    McpConnector::new(&host, &http).disconnect().unwrap();
    assert_eq!(http.requests().len(), 1);
    assert_eq!(http.requests()[0].method, Method::Delete);
    assert_eq!(host.state(STATE_MCP_SESSION), None);
}
