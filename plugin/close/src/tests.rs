//! What is Close's, natively: its description, its API-key headers and scope, `org_info`, its
//! wording of every error, its scope messages, and its OAuth (metadata on the MCP host, exactly
//! `mcp.read`, a grant without it refused). The flow itself is tested in `claribi-connector-sdk`.

use super::*;
use claribi_connector_sdk::convert::{map_error, map_oauth_error, ErrorContext};
use claribi_connector_sdk::mcp_client::oauth::{keys, OAuthHost};
use claribi_connector_sdk::mcp_client::testing::*;
use claribi_connector_sdk::mcp_client::url::{decode_pairs, query_pairs};
use claribi_connector_sdk::mcp_client::{
    HttpRequest, HttpResponse, McpError, Method, TransportError,
};
use claribi_connector_sdk::testing::FakeHost;
use claribi_connector_sdk::types::{Account, RateLimit, UpstreamFailure};
use claribi_connector_sdk::{Connector, STATE_MCP_SESSION};
use serde_json::{json, Value};

const KEY: &str = "api_3xampleSECRETkey";

type CloseConnector<'a> = Connector<'a, Close>;

/// An API-key connection to Close's endpoint, with its key.
fn api_key_host() -> FakeHost {
    let mut host = FakeHost::new(DEFAULT_ENDPOINT, AuthMethod::ApiKey).with_api_key(KEY);
    host.connection.api_key_header = API_KEY_HEADER.into();
    host
}

/// An OAuth connection without tokens yet.
fn oauth_host() -> FakeHost {
    let mut host = FakeHost::new(DEFAULT_ENDPOINT, AuthMethod::Oauth);
    host.connection.scopes = vec!["mcp.read".into()];
    host
}

fn handshake(http: ScriptedHttp) -> ScriptedHttp {
    http.then(discover_refused())
        .then(initialize_ok("2025-11-25", Some("sess-42")))
        .then(accepted())
}

fn org_info() -> impl FnMut(&HttpRequest) -> Result<HttpResponse, TransportError> {
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
    let info = Close::info();
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
fn on_a_2026_07_28_server_the_check_discovers_and_calls_org_info_statelessly() {
    let host = api_key_host();
    let http = ScriptedHttp::new()
        .then(|r| {
            assert_eq!(request_method(r), "server/discover");
            Ok(rpc_result(
                r,
                json!({"resultType": "complete", "supportedVersions": ["2025-11-25", "2026-07-28"],
                       "capabilities": {"tools": {}}, "ttlMs": 0, "cacheScope": "private"}),
            ))
        })
        .then(|r| {
            assert_eq!(request_method(r), "tools/list");
            Ok(rpc_result(r, json!({"tools": [{"name": "org_info", "inputSchema": {"type": "object"}}], "ttlMs": 60000, "cacheScope": "private"})))
        })
        .then(org_info());
    let account = CloseConnector::new(&host, &http)
        .check_connection()
        .unwrap();
    assert_eq!(account.display_name.as_deref(), Some("Acme Corp (orga_123)"));
    let requests = http.requests();
    for request in &requests {
        assert_eq!(request.header("close-api-key"), Some(KEY));
        assert_eq!(request.header("mcp-protocol-version"), Some("2026-07-28"));
        assert_eq!(request.header("mcp-session-id"), None);
    }
    assert_eq!(requests[2].header("mcp-method"), Some("tools/call"));
    assert_eq!(requests[2].header("mcp-name"), Some("org_info"));
    let listing = CloseConnector::new(&host, &ScriptedHttp::new().then(|r| Ok(rpc_result(r, json!({"tools": [], "ttlMs": 30000, "cacheScope": "private"})))))
        .list_tools()
        .unwrap();
    assert_eq!(listing.ttl_ms, Some(30000));
    assert_eq!(listing.cache_scope, Some(claribi_connector_sdk::types::CacheScope::Private));
}

#[test]
fn check_connection_initializes_calls_org_info_and_reports_the_organization() {
    let host = api_key_host();
    let http = handshake(ScriptedHttp::new()).then(org_info());
    let account = CloseConnector::new(&host, &http)
        .check_connection()
        .unwrap();
    assert_eq!(
        account,
        Account {
            display_name: Some("Acme Corp (orga_123)".into()),
        }
    );
    let requests = http.requests();
    assert_eq!(requests.len(), 4, "discover probe, initialize, initialized, org_info");
    for request in &requests {
        assert_eq!(request.url, "https://mcp.close.com/mcp");
        // The key (a placeholder, in a component) in the header the host binds it to; the scope
        // header is the host's to set.
        assert_eq!(request.header("close-api-key"), Some(KEY));
        assert_eq!(request.header("close-scope"), None);
    }
    let call: Value = serde_json::from_slice(&requests[3].body).unwrap();
    assert_eq!(
        call["params"],
        json!({ "name": "org_info", "arguments": {} })
    );
    assert_eq!(requests[3].header("mcp-session-id"), Some("sess-42"));
    let session: Value = serde_json::from_str(&host.state(STATE_MCP_SESSION).unwrap()).unwrap();
    assert_eq!(session["sessionId"], "sess-42");
}

#[test]
fn close_declares_its_key_header_and_its_scope_header() {
    let headers = Close::info().api_key_headers.expect("Close declares its API-key headers");
    assert_eq!(headers.key, "close-api-key");
    assert_eq!(headers.scope.as_deref(), Some("close-scope"));
}

#[test]
fn check_connection_without_an_org_info_tool_still_succeeds_without_a_name() {
    let host = api_key_host();
    let http =
        handshake(ScriptedHttp::new()).then(|r| Ok(rpc_error(r, -32602, "Unknown tool: org_info")));
    let account = CloseConnector::new(&host, &http)
        .check_connection()
        .unwrap();
    assert_eq!(account.display_name, None);
}

// ------------------------------------------------------------------------------------------------
// OAuth
// ------------------------------------------------------------------------------------------------
// Close's wording and scope messages

/// What an API key scoped `mcp.read` holds.
static MCP_READ: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| vec!["mcp.read".to_owned()]);

fn ctx() -> ErrorContext<'static> {
    ErrorContext::new(CredentialKind::ApiKey, &MCP_READ)
}

fn rpc(code: i64, message: &str) -> McpError {
    McpError::JsonRpc {
        code,
        message: message.to_owned(),
        data: None,
    }
}

#[test]
fn every_error_names_close() {
    let call = ctx().for_tool("fetch_lead");
    let cases: Vec<(McpError, ErrorContext<'_>, Error)> = vec![
        (
            McpError::Unauthorized {
                www_authenticate: Some("Bearer".into()),
                message: "HTTP 401".into(),
            },
            ctx(),
            Error::Unauthorized(
                "Close rejected the credentials (HTTP 401). Reconnect the connection.".into(),
            ),
        ),
        (
            McpError::Unauthorized {
                www_authenticate: None,
                message: "HTTP 401".into(),
            },
            ErrorContext::new(CredentialKind::OAuth, &MCP_READ),
            Error::Unauthorized(
                "Close rejected the OAuth access token (HTTP 401) and it could not be renewed. Reconnect the connection.".into(),
            ),
        ),
        (
            McpError::RateLimited {
                retry_after_ms: Some(1000),
                limit: None,
                message: "slow down".into(),
            },
            ctx(),
            Error::RateLimited(RateLimit {
                retry_after_ms: Some(1000),
                message: "Close is rate limiting requests (HTTP 429): slow down".into(),
            }),
        ),
        (
            rpc(-32602, "id: field required"),
            call,
            Error::InvalidArguments("Close rejected the arguments: id: field required".into()),
        ),
        (
            rpc(-32602, "Unknown tool: fetch_lead"),
            call,
            Error::UnknownTool(
                "Close has no tool named `fetch_lead` for this connection (Unknown tool: fetch_lead); list the tools again.".into(),
            ),
        ),
        (
            rpc(-32603, "Internal error"),
            call,
            Error::ToolFailed(
                "Close could not run `fetch_lead`: Internal error (JSON-RPC error -32603)".into(),
            ),
        ),
        (
            rpc(-32601, "Method not found"),
            call,
            Error::Protocol("Close answered with JSON-RPC error -32601: Method not found".into()),
        ),
        (
            McpError::Http {
                status: 400,
                message: "bad key".into(),
            },
            ctx(),
            Error::Upstream(UpstreamFailure {
                status: 400,
                message: "Close answered HTTP 400: bad key".into(),
            }),
        ),
        (
            McpError::Unavailable("refused".into()),
            ctx(),
            Error::Unavailable("Close could not be reached: refused".into()),
        ),
        (
            McpError::Denied("origin".into()),
            ctx(),
            Error::DeniedByPolicy("The host refused a request to Close: origin".into()),
        ),
        (
            McpError::Protocol("garbage".into()),
            ctx(),
            Error::Protocol(
                "Close answered something this connector cannot understand: garbage".into(),
            ),
        ),
    ];
    for (error, ctx, expected) in cases {
        assert_eq!(map_error::<Close>(error, &ctx), expected);
    }
}

#[test]
fn oauth_flow_failures_name_close_and_its_authorization_server() {
    let cases = [
        (
            McpError::Unauthorized {
                www_authenticate: None,
                message: "access was denied at the authorization server (access_denied)".into(),
            },
            Error::Unauthorized("The Close authorization failed: access was denied at the authorization server (access_denied).".into()),
        ),
        (
            McpError::Protocol("the authorization server does not offer PKCE with S256".into()),
            Error::Protocol("The Close authorization failed: the authorization server does not offer PKCE with S256.".into()),
        ),
        (
            McpError::Http {
                status: 503,
                message: "down".into(),
            },
            Error::Upstream(UpstreamFailure {
                status: 503,
                message: "Close's authorization server answered HTTP 503: down.".into(),
            }),
        ),
        (
            McpError::Unavailable("refused".into()),
            Error::Unavailable("Close's authorization server could not be reached: refused.".into()),
        ),
        (
            McpError::Denied("origin".into()),
            Error::DeniedByPolicy(
                "The host refused a request to Close's authorization server: origin.".into(),
            ),
        ),
        // Anything else is mapped as on an OAuth connection holding `mcp.read`.
        (
            McpError::InsufficientScope {
                required: vec![],
                www_authenticate: None,
                message: String::new(),
            },
            Error::InsufficientScope(ScopeProblem {
                required: vec!["mcp.read".into()],
                granted: vec!["mcp.read".into()],
                message: READ_SCOPE_MESSAGE.into(),
            }),
        ),
    ];
    for (error, expected) in cases {
        assert_eq!(map_oauth_error::<Close>(error), expected);
    }
}

#[test]
fn a_missing_read_scope_gets_the_read_scope_message() {
    let granted = vec!["mcp.write_safe".to_owned()];
    let e = map_error::<Close>(
        McpError::InsufficientScope {
            required: vec!["mcp.read".into()],
            www_authenticate: None,
            message: String::new(),
        },
        &ErrorContext::new(CredentialKind::ApiKey, &granted),
    );
    assert_eq!(
        e,
        Error::InsufficientScope(ScopeProblem {
            required: vec!["mcp.read".into()],
            granted: vec!["mcp.write_safe".into()],
            message: "Insufficient scope: the Close account did not grant mcp.read. Reconnect and accept the read scope.".into(),
        })
    );
}

#[test]
fn a_missing_higher_scope_names_that_scope() {
    let e = map_error::<Close>(
        McpError::InsufficientScope {
            required: vec!["mcp.read".into(), "mcp.write_safe".into()],
            www_authenticate: None,
            message: String::new(),
        },
        &ctx(),
    );
    match e {
        Error::InsufficientScope(p) => {
            assert_eq!(p.granted, vec!["mcp.read"]);
            assert_eq!(p.message, "Insufficient scope: the Close account did not grant mcp.write_safe. Reconnect and accept that scope.");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_scope_challenge_without_scopes_requires_the_scope_in_use() {
    let e = map_error::<Close>(
        McpError::InsufficientScope {
            required: vec![],
            www_authenticate: None,
            message: String::new(),
        },
        &ctx(),
    );
    assert!(
        matches!(e, Error::InsufficientScope(p) if p.required == ["mcp.read"] && p.message.contains("read scope"))
    );
}

#[test]
fn the_flow_speaks_of_close() {
    // A 401 and a 403 on a call, with an API key.
    for (step, expected) in [
        (
            json_step(401, json!({ "error": "invalid_token" })),
            Error::Unauthorized(
                "Close rejected the credentials (HTTP 401). Reconnect the connection.".into(),
            ),
        ),
        (
            Box::new(|_: &HttpRequest| {
                Ok(response(
                    403,
                    &[(
                        "WWW-Authenticate",
                        r#"Bearer error="insufficient_scope", scope="mcp.read""#,
                    )],
                    vec![],
                ))
            }) as Step,
            Error::InsufficientScope(ScopeProblem {
                required: vec!["mcp.read".into()],
                granted: vec!["mcp.read".into()],
                message: READ_SCOPE_MESSAGE.into(),
            }),
        ),
        (
            json_step(400, json!({ "error": format!("invalid key {KEY}") })),
            Error::Upstream(UpstreamFailure {
                status: 400,
                message: "Close answered HTTP 400: invalid key ***".into(),
            }),
        ),
    ] {
        let host = api_key_host();
        store_session(&host);
        let http = scripted(vec![step]);
        let err = CloseConnector::new(&host, &http)
            .call_tool("fetch_lead", "{}")
            .unwrap_err();
        assert_eq!(err, expected);
    }
    // Missing credentials, and an empty tool name.
    let host = FakeHost::new(DEFAULT_ENDPOINT, AuthMethod::ApiKey);
    let http = ScriptedHttp::new();
    assert_eq!(
        CloseConnector::new(&host, &http).list_tools(),
        Err(Error::Unauthorized(
            "No Close API key is stored for this connection. Reconnect it with an API key.".into()
        ))
    );
    assert_eq!(
        CloseConnector::new(&host, &http).call_tool("", "{}"),
        Err(Error::UnknownTool(
            "No tool name was given; list the tools to see what Close offers.".into()
        ))
    );
    let host = oauth_host();
    assert_eq!(
        CloseConnector::new(&host, &http).list_tools(),
        Err(Error::Unauthorized(
            "This connection holds no Close OAuth token. Reconnect it.".into()
        ))
    );
    assert!(http.requests().is_empty());
}

#[test]
fn a_connection_without_an_endpoint_uses_closes() {
    let mut host = api_key_host();
    host.connection.endpoint = String::new();
    let http = ScriptedHttp::new().then(result(json!({ "tools": [] })));
    store_session(&host);
    CloseConnector::new(&host, &http).list_tools().unwrap();
    assert_eq!(http.requests()[0].url, DEFAULT_ENDPOINT);
}

const REDIRECT: &str = "http://127.0.0.1:49152/callback";
const CHALLENGE: &str = r#"Bearer error="invalid_token", error_description="Missing credentials", resource_metadata="https://mcp.close.com/.well-known/oauth-protected-resource""#;

type Step = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse, TransportError>>;

fn json_step(status: u16, body: Value) -> Step {
    Box::new(move |_| Ok(json_response(status, &body)))
}

fn not_found() -> Step {
    Box::new(|_| {
        Ok(response(
            404,
            &[("Content-Type", "text/html")],
            vec![b"<html>".to_vec()],
        ))
    })
}

/// Close's authorization-server metadata, as served on the MCP host (`close-mcp.md` §2.1).
fn close_as_metadata() -> Value {
    json!({
        "issuer": "https://api.close.com",
        "authorization_endpoint": "https://app.close.com/oauth2/authorize/",
        "token_endpoint": "https://api.close.com/oauth2/token/",
        "registration_endpoint": "https://api.close.com/oauth2/register/",
        "revocation_endpoint": "https://api.close.com/oauth2/revoke/",
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["mcp.read", "mcp.write_safe", "mcp.write_destructive", "offline_access"]
    })
}

/// Close's discovery: a 401 naming the root PRM, the PRM, no metadata on api.close.com, the metadata
/// on the MCP host, and a public registration.
fn close_discovery() -> Vec<Step> {
    vec![
        Box::new(|_| {
            Ok(response(
                401,
                &[
                    ("WWW-Authenticate", CHALLENGE),
                    ("Content-Type", "application/json"),
                ],
                vec![br#"{"error": "invalid_token"}"#.to_vec()],
            ))
        }),
        json_step(
            200,
            json!({
                "resource": "https://mcp.close.com/",
                "authorization_servers": ["https://api.close.com/"],
                "scopes_supported": ["mcp.read", "mcp.write_safe", "mcp.write_destructive", "offline_access"],
                "bearer_methods_supported": ["header"]
            }),
        ),
        not_found(),
        not_found(),
        json_step(200, close_as_metadata()),
        json_step(
            201,
            json!({ "client_id": "close-client-1", "token_endpoint_auth_method": "none", "redirect_uris": [REDIRECT] }),
        ),
    ]
}

fn scripted(steps: Vec<Step>) -> ScriptedHttp {
    let http = ScriptedHttp::new();
    for step in steps {
        http.push(step);
    }
    http
}

fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Runs begin-authorization; returns the `state`.
fn begin_close(host: &FakeHost) -> String {
    let http = scripted(close_discovery());
    CloseConnector::new(host, &http)
        .begin_authorization(REDIRECT)
        .unwrap()
        .state
}

fn token_answer(scope: &str) -> Value {
    json!({
        "access_token": "close-access-1", "token_type": "Bearer", "expires_in": 3600,
        "refresh_token": "close-refresh-1", "scope": scope,
        "organization_id": "orga_123", "user_id": "user_9"
    })
}

#[test]
fn begin_authorization_finds_closes_metadata_on_the_mcp_host_and_asks_for_mcp_read_and_offline_access(
) {
    let host = oauth_host();
    let http = scripted(close_discovery());
    let request = CloseConnector::new(&host, &http)
        .begin_authorization(REDIRECT)
        .unwrap();
    let urls: Vec<String> = http.requests().into_iter().map(|r| r.url).collect();
    assert_eq!(
        urls,
        vec![
            "https://mcp.close.com/mcp",
            "https://mcp.close.com/.well-known/oauth-protected-resource",
            "https://api.close.com/.well-known/oauth-authorization-server",
            "https://api.close.com/.well-known/openid-configuration",
            "https://mcp.close.com/.well-known/oauth-authorization-server",
            "https://api.close.com/oauth2/register/",
        ]
    );
    assert!(request
        .url
        .starts_with("https://app.close.com/oauth2/authorize/?"));
    let q = query_pairs(&request.url);
    assert_eq!(
        param(&q, "scope").as_deref(),
        Some("mcp.read offline_access")
    );
    assert_eq!(
        param(&q, "resource").as_deref(),
        Some("https://mcp.close.com/")
    );
    assert_eq!(param(&q, "client_id").as_deref(), Some("close-client-1"));
    assert_eq!(param(&q, "state"), Some(request.state.clone()));
    let registration: Value = serde_json::from_slice(&http.requests()[5].body).unwrap();
    assert_eq!(registration["client_name"], OAUTH_CLIENT_NAME);
    assert_eq!(registration["scope"], "mcp.read offline_access");
}

#[test]
fn the_close_scope_policy_asks_for_mcp_read_whatever_the_connection_or_challenge_says() {
    let wide = vec!["mcp.write_destructive".to_owned()];
    let offline = vec!["offline_access".to_owned()];
    let inputs = ScopeInputs {
        configured: &wide,
        challenged: &wide,
        step_up: true,
        previous: &wide,
        ..Default::default()
    };
    assert_eq!(CloseScopePolicy.select(&inputs), vec!["mcp.read"]);
    let inputs = ScopeInputs {
        server_scopes: &offline,
        ..Default::default()
    };
    assert_eq!(
        CloseScopePolicy.select(&inputs),
        vec!["mcp.read", "offline_access"]
    );
}

#[test]
fn complete_authorization_stores_the_tokens_and_names_the_organization() {
    let host = oauth_host();
    let state = begin_close(&host);
    let http = scripted(vec![json_step(
        200,
        token_answer("mcp.read offline_access"),
    )])
    .then(discover_refused())
        .then(initialize_ok("2025-11-25", Some("sess-9")))
    .then(accepted())
    .then(org_info());
    let account = CloseConnector::new(&host, &http)
        .complete_authorization(&format!("{REDIRECT}?code=abc&state={state}"))
        .unwrap();
    assert_eq!(
        account,
        Account {
            display_name: Some("Acme Corp (orga_123)".into()),
        }
    );
    let requests = http.requests();
    assert_eq!(requests[0].url, "https://api.close.com/oauth2/token/");
    let form = decode_pairs(&String::from_utf8_lossy(&requests[0].body));
    assert_eq!(
        param(&form, "resource").as_deref(),
        Some("https://mcp.close.com/")
    );
    assert_eq!(param(&form, "client_id").as_deref(), Some("close-client-1"));
    for request in &requests[1..] {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer close-access-1")
        );
        assert_eq!(request.header("close-api-key"), None);
    }
    assert_eq!(
        host.secret(keys::ACCESS_TOKEN).as_deref(),
        Some("close-access-1")
    );
    assert_eq!(
        host.secret(keys::REFRESH_TOKEN).as_deref(),
        Some("close-refresh-1")
    );
    assert_eq!(host.secret(keys::CODE_VERIFIER), None);
}

#[test]
fn a_grant_without_mcp_read_is_insufficient_scope_and_nothing_is_stored() {
    let host = oauth_host();
    let state = begin_close(&host);
    let http = scripted(vec![json_step(200, token_answer("offline_access"))]);
    let err = CloseConnector::new(&host, &http)
        .complete_authorization(&format!("{REDIRECT}?code=abc&state={state}"))
        .unwrap_err();
    assert_eq!(
        err,
        Error::InsufficientScope(ScopeProblem {
            required: vec!["mcp.read".into()],
            granted: vec!["offline_access".into()],
            message: "Insufficient scope: the Close account did not grant mcp.read. Reconnect and accept the read scope.".into(),
        })
    );
    assert_eq!(http.requests().len(), 1, "no MCP request");
    for key in [
        keys::ACCESS_TOKEN,
        keys::REFRESH_TOKEN,
        keys::EXPIRES_AT,
        keys::CODE_VERIFIER,
    ] {
        assert_eq!(host.secret(key), None, "{key}");
    }
    assert_eq!(host.state(keys::GRANT), None);
}

#[test]
fn without_org_info_the_organization_id_of_the_token_response_names_the_account() {
    let host = oauth_host();
    let state = begin_close(&host);
    let http = scripted(vec![json_step(200, token_answer("mcp.read"))])
        .then(discover_refused())
        .then(initialize_ok("2025-11-25", None))
        .then(accepted())
        .then(|r| Ok(rpc_error(r, -32602, "Unknown tool: org_info")));
    let account = CloseConnector::new(&host, &http)
        .complete_authorization(&format!("{REDIRECT}?code=abc&state={state}"))
        .unwrap();
    assert_eq!(account.display_name.as_deref(), Some("orga_123"));
}

#[test]
fn a_denied_consent_or_a_forged_state_is_unauthorized_and_stores_nothing() {
    for (callback, needle) in [
        (
            "error=access_denied&error_description=User+declined",
            "access_denied",
        ),
        ("code=abc&state=forged", "state"),
    ] {
        let host = oauth_host();
        let state = begin_close(&host);
        let http = ScriptedHttp::new();
        let url = if callback.starts_with("error") {
            format!("{REDIRECT}?{callback}&state={state}")
        } else {
            format!("{REDIRECT}?{callback}")
        };
        let err = CloseConnector::new(&host, &http)
            .complete_authorization(&url)
            .unwrap_err();
        assert!(
            matches!(&err, Error::Unauthorized(m) if m.contains(needle) && m.starts_with("The Close authorization failed")),
            "{err:?}"
        );
        assert!(http.requests().is_empty());
        assert_eq!(host.secret(keys::ACCESS_TOKEN), None);
    }
}

#[test]
fn metadata_without_s256_is_refused_before_registering() {
    let host = oauth_host();
    let mut steps = close_discovery();
    let mut metadata = close_as_metadata();
    metadata["code_challenge_methods_supported"] = json!(["plain"]);
    steps[4] = json_step(200, metadata);
    steps.truncate(5);
    let http = scripted(steps);
    let err = CloseConnector::new(&host, &http)
        .begin_authorization(REDIRECT)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("S256")),
        "{err:?}"
    );
    assert_eq!(http.remaining(), 0);
    assert_eq!(http.requests().len(), 5);
}

/// An authorized OAuth connection whose access token expires in `expires_in` seconds.
fn authorized(expires_in: u64) -> FakeHost {
    let host = oauth_host();
    let state = begin_close(&host);
    let http = scripted(vec![json_step(
        200,
        token_answer("mcp.read offline_access"),
    )])
    .then(discover_refused())
        .then(initialize_ok("2025-11-25", Some("sess-42")))
    .then(accepted())
    .then(org_info());
    CloseConnector::new(&host, &http)
        .complete_authorization(&format!("{REDIRECT}?code=abc&state={state}"))
        .unwrap();
    let expires_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + expires_in;
    host.inner
        .put_secret(keys::EXPIRES_AT, &expires_at.to_string());
    host.inner.events.borrow_mut().clear();
    host
}

#[test]
fn check_connection_on_oauth_names_the_organization_with_the_bearer_token() {
    let host = authorized(3600);
    let http = handshake(ScriptedHttp::new()).then(org_info());
    let account = CloseConnector::new(&host, &http)
        .check_connection()
        .unwrap();
    assert_eq!(account.display_name.as_deref(), Some("Acme Corp (orga_123)"));
    assert!(http
        .requests()
        .iter()
        .all(|r| r.header("authorization").is_some_and(|a| a.starts_with("Bearer "))));
}

#[test]
fn an_expiring_token_is_refreshed_under_the_lock_before_the_call() {
    let host = authorized(10);
    let http = ScriptedHttp::new()
        .then(|_| {
            Ok(json_response(
                200,
                &json!({ "access_token": "close-access-2", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "close-refresh-2" }),
            ))
        })
        .then(result(json!({ "tools": [] })));
    CloseConnector::new(&host, &http).list_tools().unwrap();
    let requests = http.requests();
    assert_eq!(requests[0].url, "https://api.close.com/oauth2/token/");
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer close-access-2")
    );
    assert_eq!(
        host.secret(keys::REFRESH_TOKEN).as_deref(),
        Some("close-refresh-2")
    );
    let events = host.inner.events.borrow().clone();
    assert_eq!(events.first(), Some(&HostEvent::Lock));
    assert_eq!(events.last(), Some(&HostEvent::Unlock));
    assert_eq!(host.inner.secret_updates().len(), 1);
}

#[test]
fn a_revoked_grant_asks_for_a_reconnect_and_deletes_the_tokens() {
    let host = authorized(10);
    let http = ScriptedHttp::new().then(|_| {
        Ok(json_response(
            400,
            &json!({ "error": "invalid_grant", "error_description": "Refresh token revoked" }),
        ))
    });
    let err = CloseConnector::new(&host, &http).list_tools().unwrap_err();
    match &err {
        Error::Unauthorized(m) => {
            assert!(m.starts_with("The Close authorization failed"), "{m}");
            assert!(
                m.contains("invalid_grant") && m.contains("reconnect"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(host.secret(keys::ACCESS_TOKEN), None);
    assert_eq!(host.secret(keys::REFRESH_TOKEN), None);
    // Later calls say so without sending anything.
    let http = ScriptedHttp::new();
    assert!(matches!(
        CloseConnector::new(&host, &http).list_tools(),
        Err(Error::Unauthorized(m)) if m.contains("holds no Close OAuth token")
    ));
}

#[test]
fn a_403_insufficient_scope_on_oauth_is_reported_and_its_challenge_kept_for_the_next_authorization()
{
    let host = authorized(3600);
    let http = ScriptedHttp::new().then(|_| {
        Ok(response(
            403,
            &[("WWW-Authenticate", r#"Bearer error="insufficient_scope", scope="mcp.read", resource_metadata="https://mcp.close.com/.well-known/oauth-protected-resource""#)],
            vec![],
        ))
    });
    let err = CloseConnector::new(&host, &http)
        .call_tool("fetch_lead", "{}")
        .unwrap_err();
    assert!(
        matches!(&err, Error::InsufficientScope(p) if p.message == READ_SCOPE_MESSAGE),
        "{err:?}"
    );
    assert!(host
        .state(keys::CHALLENGE)
        .unwrap()
        .contains("insufficient_scope"));
}

#[test]
fn disconnect_revokes_the_refresh_then_the_access_token_and_forgets_the_authorization() {
    let host = authorized(3600);
    let http = ScriptedHttp::new()
        .then(|_| Ok(empty(200)))
        .then(|_| Ok(empty(200)))
        .then(|_| Ok(empty(200)));
    CloseConnector::new(&host, &http).disconnect().unwrap();
    let requests = http.requests();
    assert_eq!(requests[0].method, Method::Delete);
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer close-access-1")
    );
    for (request, token) in requests[1..]
        .iter()
        .zip(["close-refresh-1", "close-access-1"])
    {
        assert_eq!(request.url, "https://api.close.com/oauth2/revoke/");
        let form = decode_pairs(&String::from_utf8_lossy(&request.body));
        assert_eq!(param(&form, "token").as_deref(), Some(token));
    }
    assert_eq!(host.state(keys::GRANT), None);
    assert_eq!(host.state(STATE_MCP_SESSION), None);

    // A revocation that fails is logged; disconnect still succeeds.
    let host = authorized(3600);
    host.inner.set_state(STATE_MCP_SESSION, None);
    let http = ScriptedHttp::new()
        .then(|_| Err(TransportError::Unavailable("down".into())))
        .then(|_| Err(TransportError::Unavailable("down".into())));
    CloseConnector::new(&host, &http).disconnect().unwrap();
    assert!(host
        .logs
        .borrow()
        .iter()
        .any(|(l, m)| *l == LogLevel::Warn && m.contains("revoke")));
}
