//! The authorization server over real HTTP: discovery on both origins, registration, authorization with
//! each consent mode, PKCE, codes, tokens, refresh rotation, revocation and the MCP endpoint's answers to
//! the tokens it issues.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use chrono::NaiveDate;
use close_standin::{
    s256_challenge, ConsentMode, DatasetConfig, OAuthSwitches, ResponseMode, StandIn,
    StandInConfig, Switches, TokenKind, SANDBOX_ORGANIZATION_NAME,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

const VERIFIER: &str = "standin-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
const REDIRECT: &str = "http://127.0.0.1:49152/callback";

async fn start(oauth: OAuthSwitches) -> StandIn {
    StandIn::start(StandInConfig {
        dataset: DatasetConfig {
            seed: 42,
            anchor: NaiveDate::from_ymd_opt(2026, 3, 12).unwrap(),
        },
        switches: Switches {
            response_mode: ResponseMode::Json,
            ..Switches::default()
        },
        oauth,
        ..StandInConfig::default()
    })
    .await
    .unwrap()
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
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    /// The query parameters of the `Location` header (asserting a 302 to the test's redirect URI).
    fn redirect_query(&self) -> HashMap<String, String> {
        assert_eq!(self.status, 302, "{}", self.body);
        let location = self.header("location").unwrap();
        let url = url::Url::parse(&location).unwrap();
        assert_eq!(url.path(), "/callback", "{location}");
        url.query_pairs().into_owned().collect()
    }
}

async fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<String>,
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
    let resp = sender
        .send_request(
            req.body(Full::new(Bytes::from(body.unwrap_or_default())))
                .unwrap(),
        )
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

fn form(pairs: &[(&str, &str)]) -> String {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    f.finish()
}

async fn post_form(port: u16, path: &str, pairs: &[(&str, &str)]) -> Reply {
    send(
        port,
        "POST",
        path,
        &[(
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )],
        Some(form(pairs)),
    )
    .await
}

async fn register(s: &StandIn) -> String {
    let r = send(
        s.as_port(),
        "POST",
        "/oauth2/register/",
        &[("content-type", "application/json".into())],
        Some(
            json!({"client_name": "clariBI test", "redirect_uris": [REDIRECT],
                   "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                   "token_endpoint_auth_method": "none", "application_type": "native"})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["client_id"].as_str().unwrap().to_string()
}

/// GET the authorization endpoint with a good request, `extra` replacing (or, when empty, removing)
/// parameters.
async fn authorize(s: &StandIn, client: &str, extra: &[(&str, &str)]) -> Reply {
    let challenge = s256_challenge(VERIFIER);
    let resource = s.resource_url();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "state-123"),
        ("resource", &resource),
        ("scope", "mcp.read offline_access"),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        if !v.is_empty() {
            pairs.push((k, v));
        }
    }
    send(
        s.as_port(),
        "GET",
        &format!("/oauth2/authorize/?{}", form(&pairs)),
        &[],
        None,
    )
    .await
}

async fn code(s: &StandIn, client: &str) -> String {
    authorize(s, client, &[]).await.redirect_query()["code"].clone()
}

async fn exchange_with(s: &StandIn, client: &str, code: &str, extra: &[(&str, &str)]) -> Reply {
    let resource = s.resource_url();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", client),
        ("code_verifier", VERIFIER),
        ("resource", &resource),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        pairs.push((k, v));
    }
    post_form(s.as_port(), "/oauth2/token/", &pairs).await
}

async fn exchange(s: &StandIn, client: &str, code: &str) -> Value {
    let r = exchange_with(s, client, code, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

async fn refresh(s: &StandIn, client: &str, token: &str) -> Reply {
    let resource = s.resource_url();
    post_form(
        s.as_port(),
        "/oauth2/token/",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client),
            ("resource", &resource),
        ],
    )
    .await
}

/// Asserts an RFC 6749 §5.2 error answer.
fn assert_oauth_error(r: &Reply, error: &str) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], error, "{}", r.body);
    assert!(r.json()["error_description"].is_string());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
}

/// A JSON-RPC POST to `/mcp` with a bearer token.
async fn mcp(s: &StandIn, token: &str, session: Option<&str>, message: Value) -> Reply {
    let mut headers = vec![
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/json".into()),
        ("accept", "application/json, text/event-stream".into()),
    ];
    if let Some(session) = session {
        headers.push(("mcp-session-id", session.to_string()));
        headers.push(("mcp-protocol-version", "2025-11-25".into()));
    }
    send(
        s.port(),
        "POST",
        "/mcp",
        &headers,
        Some(message.to_string()),
    )
    .await
}

/// `initialize` + `notifications/initialized`; the session id.
async fn initialize(s: &StandIn, token: &str) -> String {
    let r = mcp(
        s,
        token,
        None,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let session = r.header("mcp-session-id").unwrap();
    let ack = mcp(
        s,
        token,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(ack.status, 202, "{}", ack.body);
    session
}

async fn tools_list(s: &StandIn, token: &str, session: &str) -> Reply {
    mcp(
        s,
        token,
        Some(session),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await
}

async fn call_tool(s: &StandIn, token: &str, session: &str, name: &str) -> Value {
    let r = mcp(
        s,
        token,
        Some(session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": {}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let text = r.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn discovery_documents_are_served_from_both_origins() {
    let s = start(OAuthSwitches::default()).await;
    assert_ne!(s.as_port(), s.port());
    assert_eq!(s.issuer_url(), format!("http://127.0.0.1:{}", s.as_port()));
    assert_eq!(s.as_base_url(), s.issuer_url());
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let prm = send(s.port(), "GET", path, &[], None).await;
        assert_eq!(prm.status, 200, "{path}");
        let doc = prm.json();
        assert_eq!(doc["resource"], format!("http://127.0.0.1:{}/", s.port()));
        assert_eq!(doc["authorization_servers"], json!([s.issuer_url()]));
        assert_eq!(
            doc["scopes_supported"],
            json!([
                "mcp.read",
                "mcp.write_safe",
                "mcp.write_destructive",
                "offline_access"
            ])
        );
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    let from_mcp_host = send(
        s.port(),
        "GET",
        "/.well-known/oauth-authorization-server",
        &[],
        None,
    )
    .await
    .json();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let r = send(s.as_port(), "GET", path, &[], None).await;
        assert_eq!(r.status, 200, "{path}");
        let doc = r.json();
        assert_eq!(doc, from_mcp_host);
        let issuer = s.issuer_url();
        assert_eq!(doc["issuer"], issuer);
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{issuer}/oauth2/authorize/")
        );
        assert_eq!(doc["token_endpoint"], format!("{issuer}/oauth2/token/"));
        assert_eq!(
            doc["registration_endpoint"],
            format!("{issuer}/oauth2/register/")
        );
        assert_eq!(
            doc["revocation_endpoint"],
            format!("{issuer}/oauth2/revoke/")
        );
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(
            doc["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            json!(["none"])
        );
        assert_eq!(doc["scopes_supported"].as_array().unwrap().len(), 4);
    }
    // The issuer is not the MCP host: no PRM there, and the 401 still points at the MCP host.
    let none = send(
        s.as_port(),
        "GET",
        "/.well-known/oauth-protected-resource",
        &[],
        None,
    )
    .await;
    assert_eq!(none.status, 404);
    let r = send(s.port(), "POST", "/mcp", &[], Some("{}".into())).await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().ends_with(&format!(
        "resource_metadata=\"{}\"",
        s.resource_metadata_url()
    )));

    s.set_prm_issuer_trailing_slash(true);
    s.set_offline_access_supported(false);
    let doc = send(
        s.port(),
        "GET",
        "/.well-known/oauth-protected-resource",
        &[],
        None,
    )
    .await
    .json();
    assert_eq!(
        doc["authorization_servers"],
        json!([format!("{}/", s.issuer_url())])
    );
    assert_eq!(doc["scopes_supported"].as_array().unwrap().len(), 3);
    s.shutdown().await;
}

#[tokio::test]
async fn dynamic_registration_accepts_public_clients_and_refuses_bad_metadata() {
    let s = start(OAuthSwitches::default()).await;
    let r = send(
        s.as_port(),
        "POST",
        "/oauth2/register/",
        &[("content-type", "application/json".into())],
        Some(
            json!({"client_name": "clariBI", "redirect_uris": ["http://localhost:49152/callback"],
                   "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                   "token_endpoint_auth_method": "none"})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let client = r.json();
    assert!(client["client_id"].is_string());
    assert!(client.get("client_secret").is_none());
    assert_eq!(
        client["redirect_uris"],
        json!(["http://localhost:49152/callback"])
    );
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert_eq!(
        client["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        client["scope"],
        "mcp.read mcp.write_safe mcp.write_destructive offline_access"
    );
    assert!(r.body.starts_with("{\""), "{}", r.body);

    for (body, error) in [
        (
            json!({"redirect_uris": ["http://example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({"client_name": "x"}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}),
            "invalid_client_metadata",
        ),
        (json!("not an object"), "invalid_client_metadata"),
    ] {
        let r = send(
            s.as_port(),
            "POST",
            "/oauth2/register/",
            &[("content-type", "application/json".into())],
            Some(body.to_string()),
        )
        .await;
        assert_oauth_error(&r, error);
    }
    let counters = s.oauth_counters();
    assert_eq!(
        (counters.registrations, counters.registrations_rejected),
        (1, 5)
    );
    assert_eq!(s.registered_clients(), 1);
    s.shutdown().await;
}

#[tokio::test]
async fn auto_approval_yields_a_code_whose_tokens_open_the_mcp_endpoint() {
    let s = start(OAuthSwitches::default()).await;
    let client = register(&s).await;
    let q = authorize(&s, &client, &[]).await.redirect_query();
    assert_eq!(q["state"], "state-123");
    assert_eq!(q["iss"], s.issuer_url());
    let tokens = exchange(&s, &client, &q["code"]).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "mcp.read offline_access");
    assert_eq!(tokens["organization_id"], s.dataset().organization.id);
    assert_eq!(tokens["user_id"], s.dataset().users[0].id);
    assert!(tokens["refresh_token"].is_string());
    let access = tokens["access_token"].as_str().unwrap();
    assert!(s.is_token_active(access));

    let session = initialize(&s, access).await;
    let listed = tools_list(&s, access, &session).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let read_tools = listed.json()["result"]["tools"].as_array().unwrap().len();
    let info = call_tool(&s, access, &session, "org_info").await;
    assert_eq!(info["scope"], "mcp.read");
    assert_eq!(info["organization"]["name"], "Northwind Analytics");

    // A wider grant sees more tools.
    let q = authorize(&s, &client, &[("scope", "mcp.write_safe")])
        .await
        .redirect_query();
    let wide = exchange(&s, &client, &q["code"]).await;
    assert!(
        wide.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let wide = wide["access_token"].as_str().unwrap().to_string();
    let session = initialize(&s, &wide).await;
    let listed = tools_list(&s, &wide, &session).await.json();
    assert!(listed["result"]["tools"].as_array().unwrap().len() > read_tools);

    let c = s.oauth_counters();
    assert_eq!(c.authorization_requests, 2);
    assert_eq!(c.codes_issued, 2);
    assert_eq!(c.token_exchanges, 2);
    assert_eq!(
        c.requested_scopes,
        vec![
            "mcp.read offline_access".to_string(),
            "mcp.write_safe".to_string()
        ]
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_pkce_mismatch_is_an_invalid_grant() {
    let s = start(OAuthSwitches::default()).await;
    let client = register(&s).await;
    let code = code(&s, &client).await;
    let wrong = "another-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let r = exchange_with(&s, &client, &code, &[("code_verifier", wrong)]).await;
    assert_oauth_error(&r, "invalid_grant");
    assert!(r.body.contains("code_verifier"), "{}", r.body);
    assert_eq!(s.live_access_tokens(), 0);
    assert_eq!(s.oauth_counters().token_errors, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn a_reused_code_is_an_invalid_grant_and_revokes_what_it_issued() {
    let s = start(OAuthSwitches::default()).await;
    let client = register(&s).await;
    let code = code(&s, &client).await;
    let tokens = exchange(&s, &client, &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    let session = initialize(&s, access).await;
    let again = exchange_with(&s, &client, &code, &[]).await;
    assert_oauth_error(&again, "invalid_grant");
    assert!(!s.is_token_active(access));
    assert!(!s.is_token_active(tokens["refresh_token"].as_str().unwrap()));
    assert_eq!(tools_list(&s, access, &session).await.status, 401);
    assert_eq!(s.oauth_counters().code_reuse_detections, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn an_expired_code_is_an_invalid_grant() {
    let s = start(OAuthSwitches {
        code_ttl_secs: 0,
        ..OAuthSwitches::default()
    })
    .await;
    let client = register(&s).await;
    let code = code(&s, &client).await;
    let r = exchange_with(&s, &client, &code, &[]).await;
    assert_oauth_error(&r, "invalid_grant");
    assert!(r.body.contains("expired"), "{}", r.body);
    s.shutdown().await;
}

#[tokio::test]
async fn redirect_uris_must_be_registered_and_repeated_exactly() {
    let s = start(OAuthSwitches::default()).await;
    let client = register(&s).await;
    let page = authorize(
        &s,
        &client,
        &[("redirect_uri", "http://127.0.0.1:49152/elsewhere")],
    )
    .await;
    assert_eq!(page.status, 400);
    assert!(page.header("location").is_none());
    assert!(page.body.contains("is not registered"), "{}", page.body);
    let unknown = authorize(&s, "oa2client_unknown", &[]).await;
    assert_eq!(unknown.status, 400);

    // Any port on a loopback IP literal (RFC 8252 §7.3); the token request must repeat it exactly.
    let q = authorize(
        &s,
        &client,
        &[("redirect_uri", "http://127.0.0.1:61000/callback")],
    )
    .await
    .redirect_query();
    let r = exchange_with(&s, &client, &q["code"], &[]).await;
    assert_oauth_error(&r, "invalid_grant");
    assert!(r.body.contains("redirect_uri"), "{}", r.body);
    s.shutdown().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_grant() {
    let s = start(OAuthSwitches::default()).await;
    let client = register(&s).await;
    let first = exchange(&s, &client, &code(&s, &client).await).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let r = refresh(&s, &client, &rt1).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second = r.json();
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    assert_eq!(second["scope"], "mcp.read offline_access");
    assert!(!s.is_token_active(&rt1));
    assert!(s.is_token_active(&rt2));
    assert_eq!(s.live_refresh_tokens(), 1);
    assert_eq!(s.token_info(&rt2).unwrap().kind, TokenKind::Refresh);

    let access2 = second["access_token"].as_str().unwrap();
    let session = initialize(&s, access2).await;
    let reuse = refresh(&s, &client, &rt1).await;
    assert_oauth_error(&reuse, "invalid_grant");
    assert_eq!(s.live_refresh_tokens(), 0);
    assert_eq!(s.live_access_tokens(), 0);
    assert!(!s.is_token_active(&rt2));
    assert_oauth_error(&refresh(&s, &client, &rt2).await, "invalid_grant");
    assert_eq!(tools_list(&s, access2, &session).await.status, 401);
    let c = s.oauth_counters();
    assert_eq!((c.refreshes, c.refresh_token_reuse_detections), (3, 1));
    s.shutdown().await;
}

#[tokio::test]
async fn a_grant_without_read_gets_403_insufficient_scope_on_tools_list() {
    let s = start(OAuthSwitches {
        grant_without_read: true,
        ..OAuthSwitches::default()
    })
    .await;
    let client = register(&s).await;
    let tokens = exchange(&s, &client, &code(&s, &client).await).await;
    assert_eq!(tokens["scope"], "offline_access");
    let access = tokens["access_token"].as_str().unwrap();
    let session = initialize(&s, access).await;
    let r = tools_list(&s, access, &session).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp.read\", error_description=\"The access token does not grant mcp.read\", resource_metadata=\"{}\"",
            s.resource_metadata_url()
        )
    );
    assert!(
        r.body.contains("\"error\": \"insufficient_scope\""),
        "{}",
        r.body
    );
    assert_eq!(s.counters().insufficient_scope, 1);

    // Step-up: a new authorization with the switch off grants mcp.read.
    s.set_grant_without_read(false);
    let tokens = exchange(&s, &client, &code(&s, &client).await).await;
    let access = tokens["access_token"].as_str().unwrap();
    let session = initialize(&s, access).await;
    assert_eq!(tools_list(&s, access, &session).await.status, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn an_expired_access_token_is_a_401_and_a_refresh_recovers() {
    let s = start(OAuthSwitches {
        access_token_ttl_secs: 1,
        ..OAuthSwitches::default()
    })
    .await;
    let client = register(&s).await;
    let tokens = exchange(&s, &client, &code(&s, &client).await).await;
    assert_eq!(tokens["expires_in"], 1);
    let access = tokens["access_token"].as_str().unwrap();
    let session = initialize(&s, access).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!s.is_token_active(access));
    let r = tools_list(&s, access, &session).await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with(
        "Bearer error=\"invalid_token\", error_description=\"The access token expired\""
    ));
    let renewed = refresh(&s, &client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let access = renewed.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(tools_list(&s, &access, &session).await.status, 200);
    s.shutdown().await;
}

/// The value of the first `name="<field>" value="…"` in the page.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn the_consent_page_offers_both_organizations_and_its_buttons_redirect() {
    let s = start(OAuthSwitches {
        consent: ConsentMode::Page,
        ..OAuthSwitches::default()
    })
    .await;
    let client = register(&s).await;
    let page = authorize(&s, &client, &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let orgs = s.consent_organizations();
    assert_eq!(orgs[1].name, SANDBOX_ORGANIZATION_NAME);
    for org in &orgs {
        assert!(page.body.contains(&org.name), "{}", org.name);
        assert!(page.body.contains(&format!("value=\"{}\"", org.id)));
    }
    assert!(page.body.contains("Northwind Analytics"));
    assert!(page.body.contains("mcp.read offline_access"));
    assert!(page.body.contains("value=\"approve\">Approve</button>"));
    assert!(page.body.contains("value=\"deny\">Deny</button>"));
    assert!(page
        .body
        .contains(&format!("action=\"{}/oauth2/authorize/\"", s.issuer_url())));

    // Approve for the sandbox organization: the token reads an empty organization.
    let request_id = field(&page.body, "request_id");
    let approved = post_form(
        s.as_port(),
        "/oauth2/authorize/",
        &[
            ("request_id", &request_id),
            ("organization_id", &orgs[1].id),
            ("decision", "approve"),
        ],
    )
    .await;
    let q = approved.redirect_query();
    assert_eq!(q["state"], "state-123");
    assert_eq!(q["iss"], s.issuer_url());
    let tokens = exchange(&s, &client, &q["code"]).await;
    assert_eq!(tokens["organization_id"], orgs[1].id);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(s.token_info(access).unwrap().organization_id, orgs[1].id);
    let session = initialize(&s, access).await;
    let info = call_tool(&s, access, &session, "org_info").await;
    assert_eq!(info["organization"]["name"], SANDBOX_ORGANIZATION_NAME);
    let found = call_tool(&s, access, &session, "find_opportunities").await;
    assert_eq!(found["total_results"], 0);

    // The same consent request cannot be answered twice.
    let twice = post_form(
        s.as_port(),
        "/oauth2/authorize/",
        &[("request_id", &request_id), ("decision", "approve")],
    )
    .await;
    assert_eq!(twice.status, 400);

    // Deny.
    let page = authorize(&s, &client, &[]).await;
    let denied = post_form(
        s.as_port(),
        "/oauth2/authorize/",
        &[
            ("request_id", &field(&page.body, "request_id")),
            ("decision", "deny"),
        ],
    )
    .await
    .redirect_query();
    assert_eq!(denied["error"], "access_denied");
    assert_eq!(denied["state"], "state-123");
    assert!(!denied.contains_key("code"));
    assert_eq!(s.oauth_counters().consent_decisions, 3);

    // The automatic modes.
    s.set_consent(ConsentMode::AutoDeny);
    let q = authorize(&s, &client, &[]).await.redirect_query();
    assert_eq!(q["error"], "access_denied");
    s.set_consent(ConsentMode::AutoApprove);
    assert!(authorize(&s, &client, &[])
        .await
        .redirect_query()
        .contains_key("code"));
    s.shutdown().await;
}

#[tokio::test]
async fn revocation_answers_200_and_a_revoked_refresh_token_takes_its_grant_along() {
    let s = start(OAuthSwitches::default()).await;
    let client = register(&s).await;
    let a = exchange(&s, &client, &code(&s, &client).await).await;
    let b = exchange(&s, &client, &code(&s, &client).await).await;
    let a_access = a["access_token"].as_str().unwrap();
    let b_access = b["access_token"].as_str().unwrap();
    let session = initialize(&s, a_access).await;

    let r = post_form(
        s.as_port(),
        "/oauth2/revoke/",
        &[
            ("token", a_access),
            ("token_type_hint", "access_token"),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(tools_list(&s, a_access, &session).await.status, 401);
    assert!(
        s.is_token_active(a["refresh_token"].as_str().unwrap()),
        "access revocation only"
    );

    let r = post_form(
        s.as_port(),
        "/oauth2/revoke/",
        &[
            ("token", b["refresh_token"].as_str().unwrap()),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(!s.is_token_active(b_access));
    assert_oauth_error(
        &refresh(&s, &client, b["refresh_token"].as_str().unwrap()).await,
        "invalid_grant",
    );
    let unknown = post_form(s.as_port(), "/oauth2/revoke/", &[("token", "nonsense")]).await;
    assert_eq!(unknown.status, 200);
    assert_oauth_error(
        &post_form(s.as_port(), "/oauth2/revoke/", &[]).await,
        "invalid_request",
    );
    assert_eq!(s.oauth_counters().revocations, 3);

    assert_eq!(s.live_refresh_tokens(), 1);
    assert_eq!(s.revoke_all_grants(), 1);
    assert_eq!(s.live_refresh_tokens() + s.live_access_tokens(), 0);
    assert_oauth_error(
        &refresh(&s, &client, a["refresh_token"].as_str().unwrap()).await,
        "invalid_grant",
    );
    s.shutdown().await;
}

#[tokio::test]
async fn without_s256_the_metadata_says_plain_and_authorization_is_refused() {
    let s = start(OAuthSwitches {
        advertise_s256: false,
        ..OAuthSwitches::default()
    })
    .await;
    let doc = send(
        s.as_port(),
        "GET",
        "/.well-known/oauth-authorization-server",
        &[],
        None,
    )
    .await
    .json();
    assert_eq!(doc["code_challenge_methods_supported"], json!(["plain"]));
    let client = register(&s).await;
    let q = authorize(&s, &client, &[]).await.redirect_query();
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("S256"), "{q:?}");
    let plain = authorize(
        &s,
        &client,
        &[
            ("code_challenge", VERIFIER),
            ("code_challenge_method", "plain"),
        ],
    )
    .await
    .redirect_query();
    assert_eq!(plain["error"], "invalid_request");
    assert_eq!(s.oauth_counters().codes_issued, 0);
    s.shutdown().await;
}

#[tokio::test]
async fn authorization_parameter_errors_redirect_with_the_oauth_error() {
    let s = start(OAuthSwitches::default()).await;
    let client = register(&s).await;
    for (extra, error) in [
        (&[("code_challenge", "")][..], "invalid_request"),
        (&[("code_challenge_method", "")][..], "invalid_request"),
        (
            &[("resource", "http://127.0.0.1:1/mcp")][..],
            "invalid_target",
        ),
        (&[("resource", "")][..], "invalid_target"),
        (&[("scope", "mcp.read admin")][..], "invalid_scope"),
        (
            &[("response_type", "token")][..],
            "unsupported_response_type",
        ),
    ] {
        let q = authorize(&s, &client, extra).await.redirect_query();
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "state-123");
    }
    s.set_resource_required(false);
    assert!(authorize(&s, &client, &[("resource", "")])
        .await
        .redirect_query()
        .contains_key("code"));
    s.set_offline_access_supported(false);
    let q = authorize(&s, &client, &[]).await.redirect_query();
    assert_eq!(q["error"], "invalid_scope");
    let c = s.oauth_counters();
    assert_eq!((c.authorization_requests, c.authorization_errors), (8, 7));
    s.shutdown().await;
}

#[tokio::test]
async fn the_token_endpoint_wants_a_form_and_answers_errors_as_json() {
    let s = start(OAuthSwitches::default()).await;
    let client = register(&s).await;
    let code = code(&s, &client).await;
    let r = send(
        s.as_port(),
        "POST",
        "/oauth2/token/",
        &[("content-type", "application/json".into())],
        Some(json!({"grant_type": "authorization_code", "code": code}).to_string()),
    )
    .await;
    assert_oauth_error(&r, "invalid_request");
    assert!(
        r.body.starts_with("{\"error\": \"invalid_request\""),
        "{}",
        r.body
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_oauth_error(
        &post_form(
            s.as_port(),
            "/oauth2/token/",
            &[("grant_type", "password"), ("client_id", &client)],
        )
        .await,
        "unsupported_grant_type",
    );
    assert_oauth_error(
        &post_form(
            s.as_port(),
            "/oauth2/token/",
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await,
        "invalid_client",
    );
    // The code was never presented by its client, so it still works (without the trailing slash too).
    let resource = s.resource_url();
    let ok = post_form(
        s.as_port(),
        "/oauth2/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", VERIFIER),
            ("resource", &resource),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.header("cache-control").as_deref(), Some("no-store"));
    s.shutdown().await;
}
