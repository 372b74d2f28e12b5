use super::*;
use crate::http::{HttpRequest, HttpResponse, Method, TransportError};
use crate::testing::*;
use crate::url::{decode_pairs, query_pairs};
use crate::{AuthProvider, ClientConfig, McpClient, MemorySessionStore, NoLogger};
use serde_json::{json, Value};

const MCP: &str = "https://mcp.example.com/mcp";
const PRM_URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
const ISSUER: &str = "https://auth.example.com";
const REDIRECT: &str = "http://127.0.0.1:49152/callback";

type Step = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse, TransportError>>;

fn ctx<'a>(host: &'a MemoryHost, http: &'a ScriptedHttp) -> OAuthContext<'a> {
    OAuthContext {
        host,
        http,
        log: &NoLogger,
    }
}

fn settings(policy: &dyn ScopePolicy) -> OAuthSettings<'_> {
    OAuthSettings {
        endpoint: MCP.to_owned(),
        client_name: "test-connector".to_owned(),
        client_version: "0.1.0".to_owned(),
        client: ClientOptions::default(),
        configured_scopes: Vec::new(),
        scope_policy: policy,
        extra_metadata_urls: Vec::new(),
        protocol: crate::ProtocolChoice::Auto,
    }
}

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

fn challenge_401(header: &'static str) -> Step {
    Box::new(move |_| {
        Ok(response(
            401,
            &[
                ("WWW-Authenticate", header),
                ("Content-Type", "application/json"),
            ],
            vec![br#"{"error": "invalid_token"}"#.to_vec()],
        ))
    })
}

fn prm(resource: &str, issuer: &str) -> Value {
    json!({ "resource": resource, "authorization_servers": [issuer], "scopes_supported": ["mcp:read", "mcp:write"] })
}

fn as_metadata(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        "scopes_supported": ["mcp:read", "mcp:write", "offline_access"],
        "authorization_response_iss_parameter_supported": true
    })
}

fn script(steps: Vec<Step>) -> ScriptedHttp {
    let http = ScriptedHttp::new();
    for step in steps {
        http.push(step);
    }
    http
}

fn urls(http: &ScriptedHttp) -> Vec<String> {
    http.requests().into_iter().map(|r| r.url).collect()
}

fn form(request: &HttpRequest) -> Vec<(String, String)> {
    decode_pairs(&String::from_utf8_lossy(&request.body))
}

fn param<'p>(pairs: &'p [(String, String)], name: &str) -> Option<&'p str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The usual start: a 401 naming the PRM, the PRM, AS metadata at the root, a public registration.
fn standard_begin() -> Vec<Step> {
    vec![
        challenge_401(
            r#"Bearer error="invalid_token", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:read""#,
        ),
        json_step(200, prm("https://mcp.example.com/mcp", ISSUER)),
        json_step(200, as_metadata(ISSUER)),
        json_step(
            201,
            json!({ "client_id": "dyn-client", "token_endpoint_auth_method": "none" }),
        ),
    ]
}

fn begun(host: &MemoryHost) -> AuthorizationStart {
    let http = script(standard_begin());
    begin(&ctx(host, &http), &settings(&SpecScopePolicy), REDIRECT).unwrap()
}

fn token_answer(access: &str, refresh: Option<&str>) -> Value {
    let mut v = json!({ "access_token": access, "token_type": "Bearer", "expires_in": 3600, "scope": "mcp:read offline_access" });
    if let Some(r) = refresh {
        v["refresh_token"] = Value::from(r);
    }
    v
}

fn callback(state: &str, extra: &str) -> String {
    format!("{REDIRECT}?code=the-code&state={state}{extra}")
}

// ------------------------------------------------------------------------------------------------
// Discovery

#[test]
fn discovery_follows_the_challenge_then_the_path_inserted_metadata_of_the_issuer() {
    let host = MemoryHost::new();
    let http = script(vec![
        json_step(
            200,
            prm(
                "https://mcp.example.com/mcp",
                "https://auth.example.com/tenant1",
            ),
        ),
        json_step(200, as_metadata("https://auth.example.com/tenant1")),
    ]);
    let challenge =
        crate::www_authenticate::bearer(&format!(r#"Bearer resource_metadata="{PRM_URL}""#));
    let d = discovery::discover(&ctx(&host, &http), MCP, challenge.as_ref(), &[]).unwrap();
    assert_eq!(
        urls(&http),
        vec![
            PRM_URL,
            "https://auth.example.com/.well-known/oauth-authorization-server/tenant1"
        ]
    );
    assert_eq!(d.resource_parameter(), Some("https://mcp.example.com/mcp"));
    assert_eq!(
        d.server.token_endpoint,
        "https://auth.example.com/tenant1/token"
    );
    assert!(http.requests().iter().all(|r| r.method == Method::Get));
}

#[test]
fn without_a_challenge_the_path_inserted_resource_metadata_comes_before_the_root_one() {
    let host = MemoryHost::new();
    let http = script(vec![
        not_found(),
        json_step(200, prm("https://mcp.example.com", ISSUER)),
        json_step(200, as_metadata(ISSUER)),
    ]);
    let d = discovery::discover(&ctx(&host, &http), MCP, None, &[]).unwrap();
    assert_eq!(
        urls(&http)[..2],
        [
            PRM_URL.to_owned(),
            "https://mcp.example.com/.well-known/oauth-protected-resource".to_owned()
        ]
    );
    assert_eq!(d.resource_parameter(), Some("https://mcp.example.com"));
}

#[test]
fn an_issuer_with_a_path_falls_back_to_openid_configuration_inserted_then_appended_never_the_root()
{
    let host = MemoryHost::new();
    let issuer = "https://auth.example.com/tenant1/";
    let http = script(vec![
        json_step(200, prm(MCP, issuer)),
        not_found(),
        not_found(),
        json_step(200, as_metadata("https://auth.example.com/tenant1")),
    ]);
    let challenge =
        crate::www_authenticate::bearer(&format!(r#"Bearer resource_metadata="{PRM_URL}""#));
    discovery::discover(&ctx(&host, &http), MCP, challenge.as_ref(), &[]).unwrap();
    assert_eq!(
        urls(&http)[1..],
        [
            "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
            "https://auth.example.com/.well-known/openid-configuration/tenant1",
            "https://auth.example.com/tenant1/.well-known/openid-configuration",
        ]
    );
}

#[test]
fn an_issuer_at_the_root_tries_oauth_then_openid_metadata_and_then_the_connectors_extra_location() {
    let host = MemoryHost::new();
    let http = script(vec![
        json_step(
            200,
            prm("https://mcp.example.com/", "https://api.example.com/"),
        ),
        not_found(),
        not_found(),
        json_step(200, as_metadata("https://api.example.com")),
    ]);
    let challenge =
        crate::www_authenticate::bearer(&format!(r#"Bearer resource_metadata="{PRM_URL}""#));
    let extra = vec!["https://mcp.example.com/.well-known/oauth-authorization-server".to_owned()];
    let d = discovery::discover(&ctx(&host, &http), MCP, challenge.as_ref(), &extra).unwrap();
    assert_eq!(
        urls(&http)[1..],
        [
            "https://api.example.com/.well-known/oauth-authorization-server",
            "https://api.example.com/.well-known/openid-configuration",
            "https://mcp.example.com/.well-known/oauth-authorization-server",
        ]
    );
    assert_eq!(d.server.issuer.as_deref(), Some("https://api.example.com"));
    assert_eq!(d.resource_parameter(), Some("https://mcp.example.com/"));
}

#[test]
fn metadata_is_followed_through_a_redirect() {
    let host = MemoryHost::new();
    let http = script(vec![
        Box::new(|_| {
            Ok(response(
                301,
                &[("Location", "/.well-known/oauth-protected-resource/mcp/")],
                vec![],
            ))
        }),
        json_step(200, prm(MCP, ISSUER)),
        json_step(200, as_metadata(ISSUER)),
    ]);
    discovery::discover(&ctx(&host, &http), MCP, None, &[]).unwrap();
    assert_eq!(
        urls(&http)[1],
        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp/"
    );
}

#[test]
fn a_redirect_loop_ends_after_three_hops_as_not_found() {
    let host = MemoryHost::new();
    let http = ScriptedHttp::new();
    for _ in 0..4 {
        http.push(|_| Ok(response(302, &[("Location", "/loop")], vec![])));
    }
    let fetched = super::fetch::get_json(&ctx(&host, &http), PRM_URL).unwrap();
    assert!(
        matches!(fetched, super::fetch::Fetched::Missing(302)),
        "{fetched:?}"
    );
    assert_eq!(http.requests().len(), 4);
}

#[test]
fn a_resource_of_another_server_is_refused_before_any_authorization_request() {
    let host = MemoryHost::new();
    let http = script(vec![
        challenge_401(
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
        ),
        json_step(200, prm("https://evil.example.com/mcp", ISSUER)),
    ]);
    let err = begin(&ctx(&host, &http), &settings(&SpecScopePolicy), REDIRECT).unwrap_err();
    assert!(
        matches!(&err, McpError::Protocol(m) if m.contains("evil.example.com") && m.contains("refusing")),
        "{err:?}"
    );
    assert_eq!(
        http.requests().len(),
        2,
        "no metadata, registration or authorization request"
    );
    assert_eq!(host.state(keys::PENDING), None);
    assert!(host.secrets.borrow().is_empty());
}

#[test]
fn metadata_that_names_another_issuer_is_refused() {
    let host = MemoryHost::new();
    let http = script(vec![
        json_step(200, prm(MCP, ISSUER)),
        json_step(200, as_metadata("https://attacker.example.com")),
    ]);
    let challenge =
        crate::www_authenticate::bearer(&format!(r#"Bearer resource_metadata="{PRM_URL}""#));
    let err = discovery::discover(&ctx(&host, &http), MCP, challenge.as_ref(), &[]).unwrap_err();
    assert!(
        matches!(&err, McpError::Protocol(m) if m.contains("attacker.example.com")),
        "{err:?}"
    );
}

#[test]
fn a_server_error_stops_discovery() {
    let host = MemoryHost::new();
    let http = script(vec![Box::new(|_| Ok(empty(503)))]);
    let err = discovery::discover(&ctx(&host, &http), MCP, None, &[]).unwrap_err();
    assert!(matches!(err, McpError::Http { status: 503, .. }), "{err:?}");
}

#[test]
fn without_resource_metadata_the_2025_03_26_metadata_at_the_origin_is_used_without_an_issuer_check()
{
    let host = MemoryHost::new();
    let mut legacy = as_metadata("https://mcp.example.com");
    legacy["issuer"] = json!("https://mcp.example.com/oauth");
    legacy["authorization_endpoint"] = json!("https://mcp.example.com/oauth/authorize");
    let http = script(vec![not_found(), not_found(), json_step(200, legacy)]);
    let d = discovery::discover(&ctx(&host, &http), MCP, None, &[]).unwrap();
    assert_eq!(
        urls(&http)[2],
        "https://mcp.example.com/.well-known/oauth-authorization-server"
    );
    assert_eq!(d.resource_parameter(), None);
    assert_eq!(
        d.server.authorization_endpoint,
        "https://mcp.example.com/oauth/authorize"
    );
}

#[test]
fn without_any_metadata_the_2025_03_26_default_endpoints_are_used() {
    let host = MemoryHost::new();
    let http = script(vec![not_found(), not_found(), not_found()]);
    let d = discovery::discover(&ctx(&host, &http), MCP, None, &[]).unwrap();
    assert!(!d.from_document);
    assert_eq!(
        d.server.authorization_endpoint,
        "https://mcp.example.com/authorize"
    );
    assert_eq!(d.server.token_endpoint, "https://mcp.example.com/token");
    assert_eq!(
        d.server.registration_endpoint.as_deref(),
        Some("https://mcp.example.com/register")
    );
}

#[test]
fn a_server_without_s256_is_refused_before_registration() {
    let host = MemoryHost::new();
    let mut no_pkce = as_metadata(ISSUER);
    no_pkce["code_challenge_methods_supported"] = json!(["plain"]);
    let mut steps = standard_begin();
    steps[2] = json_step(200, no_pkce);
    steps.truncate(3);
    let http = script(steps);
    let err = begin(&ctx(&host, &http), &settings(&SpecScopePolicy), REDIRECT).unwrap_err();
    assert!(
        matches!(&err, McpError::Protocol(m) if m.contains("S256")),
        "{err:?}"
    );
    assert_eq!(http.requests().len(), 3);
    assert_eq!(host.state(keys::PENDING), None);
}

// ------------------------------------------------------------------------------------------------
// Begin: registration, the authorization URL, what is kept

#[test]
fn begin_registers_a_public_native_client_and_builds_the_authorization_url() {
    let host = MemoryHost::new();
    let http = script(standard_begin());
    let start = begin(&ctx(&host, &http), &settings(&SpecScopePolicy), REDIRECT).unwrap();
    let requests = http.requests();
    // The probe is an unauthenticated server/discover (the default era choice, `Auto`).
    assert_eq!(request_method(&requests[0]), "server/discover");
    assert_eq!(requests[0].header("authorization"), None);
    // Dynamic registration (RFC 7591) as a public native client.
    assert_eq!(requests[3].url, "https://auth.example.com/register");
    let body: Value = serde_json::from_slice(&requests[3].body).unwrap();
    assert_eq!(
        body,
        json!({
            "client_name": "test-connector",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "scope": "mcp:read offline_access"
        })
    );
    // The authorization URL.
    assert!(start.url.starts_with("https://auth.example.com/authorize?"));
    let q = query_pairs(&start.url);
    assert_eq!(param(&q, "response_type"), Some("code"));
    assert_eq!(param(&q, "client_id"), Some("dyn-client"));
    assert_eq!(param(&q, "redirect_uri"), Some(REDIRECT));
    assert_eq!(param(&q, "code_challenge_method"), Some("S256"));
    assert_eq!(param(&q, "scope"), Some("mcp:read offline_access"));
    assert_eq!(param(&q, "resource"), Some("https://mcp.example.com/mcp"));
    assert_eq!(param(&q, "prompt"), Some("consent"));
    assert_eq!(param(&q, "state"), Some(start.state.as_str()));
    assert!(start.state.len() >= 43, "at least 256 bits of state");
    let verifier = host.secret(keys::CODE_VERIFIER).unwrap();
    assert!((43..=128).contains(&verifier.len()));
    let expected = oauth2::PkceCodeChallenge::from_code_verifier_sha256(
        &oauth2::PkceCodeVerifier::new(verifier.clone()),
    );
    assert_eq!(param(&q, "code_challenge"), Some(expected.as_str()));
    // What complete needs is kept, the verifier only as a secret.
    let pending = host.state(keys::PENDING).unwrap();
    assert!(pending.contains(&start.state) && !pending.contains(&verifier));
    // The public registration is shared.
    assert_eq!(host.shared.borrow().len(), 1);
}

#[test]
fn two_authorizations_get_different_states_and_verifiers() {
    let (host_a, host_b) = (MemoryHost::new(), MemoryHost::new());
    let (a, b) = (begun(&host_a), begun(&host_b));
    assert_ne!(a.state, b.state);
    assert_ne!(
        host_a.secret(keys::CODE_VERIFIER),
        host_b.secret(keys::CODE_VERIFIER)
    );
}

#[test]
fn a_shared_registration_is_reused_for_the_same_issuer_and_loopback_redirect_whatever_the_port() {
    let host = MemoryHost::new();
    begun(&host);
    let mut steps = standard_begin();
    steps.truncate(3);
    let http = script(steps);
    let other_connection = MemoryHost::new();
    *other_connection.shared.borrow_mut() = host.shared.borrow().clone();
    let start = begin(
        &ctx(&other_connection, &http),
        &settings(&SpecScopePolicy),
        "http://127.0.0.1:50000/callback",
    )
    .unwrap();
    assert_eq!(http.requests().len(), 3, "no second registration");
    assert_eq!(
        param(&query_pairs(&start.url), "client_id"),
        Some("dyn-client")
    );
}

#[test]
fn a_registration_with_a_secret_is_kept_for_the_connection_alone_with_its_secret_as_a_secret() {
    let host = MemoryHost::new();
    let mut steps = standard_begin();
    steps[3] = json_step(
        201,
        json!({ "client_id": "conf-client", "client_secret": "s3cr3t-value" }),
    );
    let http = script(steps);
    begin(&ctx(&host, &http), &settings(&SpecScopePolicy), REDIRECT).unwrap();
    assert!(host.shared.borrow().is_empty());
    assert_eq!(
        host.secret(keys::CLIENT_SECRET).as_deref(),
        Some("s3cr3t-value")
    );
    let own = host.state(keys::CLIENT).unwrap();
    assert!(
        own.contains("conf-client") && own.contains("client_secret_basic"),
        "{own}"
    );
    // The verifier and the client secret are stored in one update.
    assert_eq!(host.secret_updates().len(), 1);
}

#[test]
fn a_pre_registered_client_is_used_without_registering() {
    let host = MemoryHost::new();
    let mut steps = standard_begin();
    steps.truncate(3);
    let http = script(steps);
    let policy = SpecScopePolicy;
    let mut s = settings(&policy);
    s.client = ClientOptions {
        client_id: Some("pre-id".into()),
        client_secret: Some("pre-secret".into()),
        client_metadata_url: Some("https://client.example.com/meta.json".into()),
    };
    let start = begin(&ctx(&host, &http), &s, REDIRECT).unwrap();
    assert_eq!(http.requests().len(), 3);
    assert_eq!(param(&query_pairs(&start.url), "client_id"), Some("pre-id"));
    assert_eq!(
        host.secret(keys::CLIENT_SECRET).as_deref(),
        Some("pre-secret")
    );
    assert!(host
        .state(keys::PENDING)
        .unwrap()
        .contains("client_secret_basic"));
}

#[test]
fn a_client_metadata_document_is_the_client_id_when_the_server_supports_it() {
    for supported in [true, false] {
        let host = MemoryHost::new();
        let mut metadata = as_metadata(ISSUER);
        metadata["client_id_metadata_document_supported"] = json!(supported);
        let mut steps = standard_begin();
        steps[2] = json_step(200, metadata);
        if supported {
            steps.truncate(3);
        }
        let http = script(steps);
        let policy = SpecScopePolicy;
        let mut s = settings(&policy);
        s.client.client_metadata_url = Some("https://client.example.com/meta.json".into());
        let start = begin(&ctx(&host, &http), &s, REDIRECT).unwrap();
        let client_id = if supported {
            "https://client.example.com/meta.json"
        } else {
            "dyn-client"
        };
        assert_eq!(
            param(&query_pairs(&start.url), "client_id"),
            Some(client_id)
        );
    }
}

#[test]
fn scopes_come_from_the_challenge_then_the_resource_metadata_then_are_omitted() {
    let cases: Vec<(&'static str, Value, Option<&str>)> = vec![
        (
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:basic""#,
            prm(MCP, ISSUER),
            Some("mcp:basic offline_access"),
        ),
        (
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
            prm(MCP, ISSUER),
            Some("mcp:read mcp:write offline_access"),
        ),
        (
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
            json!({ "resource": MCP, "authorization_servers": [ISSUER] }),
            None,
        ),
    ];
    for (i, (header, resource_doc, expected)) in cases.into_iter().enumerate() {
        let host = MemoryHost::new();
        let http = script(vec![
            challenge_401(header),
            json_step(200, resource_doc),
            json_step(200, as_metadata(ISSUER)),
            json_step(201, json!({ "client_id": "c" })),
        ]);
        let start = begin(&ctx(&host, &http), &settings(&SpecScopePolicy), REDIRECT).unwrap();
        assert_eq!(
            param(&query_pairs(&start.url), "scope"),
            expected,
            "case {i}"
        );
    }
}

#[test]
fn a_stored_403_challenge_steps_up_to_the_union_of_the_previous_and_the_challenged_scopes() {
    let host = MemoryHost::new();
    let grant = json!({
        "endpoint": MCP, "token_endpoint": "https://auth.example.com/token",
        "client": { "client_id": "dyn-client", "auth_method": "none", "source": "dynamic" },
        "requested_scopes": ["mcp:basic"], "granted_scopes": ["mcp:basic"]
    });
    host.set_state(keys::GRANT, Some(&grant.to_string()));
    remember_challenge(
        &host,
        MCP,
        &McpError::InsufficientScope {
            required: vec!["mcp:write".into()],
            www_authenticate: Some(
                r#"Bearer error="insufficient_scope", scope="mcp:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#.into(),
            ),
            message: String::new(),
        },
    );
    let mut metadata = as_metadata(ISSUER);
    metadata["scopes_supported"] = json!(["mcp:basic", "mcp:write"]);
    let http = script(vec![
        json_step(200, prm(MCP, ISSUER)),
        json_step(200, metadata),
        json_step(201, json!({ "client_id": "c" })),
    ]);
    let start = begin(&ctx(&host, &http), &settings(&SpecScopePolicy), REDIRECT).unwrap();
    assert_eq!(
        http.requests()[0].url,
        PRM_URL,
        "no probe: the stored challenge is used"
    );
    assert_eq!(
        param(&query_pairs(&start.url), "scope"),
        Some("mcp:basic mcp:write")
    );
}

#[test]
fn only_401_and_403_challenges_are_remembered() {
    let host = MemoryHost::new();
    remember_challenge(
        &host,
        MCP,
        &McpError::Http {
            status: 500,
            message: "x".into(),
        },
    );
    assert_eq!(host.state(keys::CHALLENGE), None);
    remember_challenge(
        &host,
        MCP,
        &McpError::Unauthorized {
            www_authenticate: Some("Bearer scope=\"a\"".into()),
            message: String::new(),
        },
    );
    let stored = stored_challenge(&host, MCP).unwrap();
    assert_eq!(stored.status, 401);
    assert!(!stored.is_step_up());
    assert_eq!(
        stored_challenge(&host, "https://other.example.com/mcp"),
        None
    );
}

#[test]
fn a_redirect_uri_that_is_neither_loopback_nor_https_is_refused() {
    let host = MemoryHost::new();
    let http = ScriptedHttp::new();
    let err = begin(
        &ctx(&host, &http),
        &settings(&SpecScopePolicy),
        "http://attacker.example.com/cb",
    )
    .unwrap_err();
    assert!(matches!(err, McpError::Protocol(_)));
    assert!(http.requests().is_empty());
}

// ------------------------------------------------------------------------------------------------
// Complete

#[test]
fn complete_exchanges_the_code_and_stores_nothing_until_asked() {
    let host = MemoryHost::new();
    let start = begun(&host);
    let verifier = host.secret(keys::CODE_VERIFIER).unwrap();
    let http = script(vec![json_step(200, token_answer("at-1", Some("rt-1")))]);
    let done = complete(
        &ctx(&host, &http),
        &callback(&start.state, "&iss=https%3A%2F%2Fauth.example.com"),
    )
    .unwrap();
    let request = &http.requests()[0];
    assert_eq!(request.url, "https://auth.example.com/token");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let sent = form(request);
    assert_eq!(param(&sent, "grant_type"), Some("authorization_code"));
    assert_eq!(param(&sent, "code"), Some("the-code"));
    assert_eq!(param(&sent, "redirect_uri"), Some(REDIRECT));
    assert_eq!(param(&sent, "code_verifier"), Some(verifier.as_str()));
    assert_eq!(
        param(&sent, "resource"),
        Some("https://mcp.example.com/mcp")
    );
    assert_eq!(param(&sent, "client_id"), Some("dyn-client"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(done.granted_scopes(), ["mcp:read", "offline_access"]);
    assert_eq!(done.tokens.access_token(), "at-1");
    // Nothing stored yet; the attempt is over.
    assert_eq!(host.secret(keys::ACCESS_TOKEN), None);
    assert_eq!(host.secret(keys::CODE_VERIFIER), None);
    assert_eq!(host.state(keys::PENDING), None);

    host.events.borrow_mut().clear();
    store_grant(&ctx(&host, &http), &done).unwrap();
    let events = host.events.borrow().clone();
    assert_eq!(events.len(), 3, "lock, one update, unlock: {events:?}");
    assert_eq!(
        (&events[0], &events[2]),
        (&HostEvent::Lock, &HostEvent::Unlock)
    );
    let last = host.secret_updates().pop().unwrap();
    let keys_written: Vec<&str> = last.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys_written,
        vec![
            keys::ACCESS_TOKEN,
            keys::REFRESH_TOKEN,
            keys::EXPIRES_AT,
            keys::CODE_VERIFIER
        ]
    );
    assert_eq!(host.secret(keys::ACCESS_TOKEN).as_deref(), Some("at-1"));
    assert_eq!(host.secret(keys::REFRESH_TOKEN).as_deref(), Some("rt-1"));
    let expiry = Expiry::parse(&host.secret(keys::EXPIRES_AT).unwrap()).unwrap();
    assert_eq!(expiry.lifetime_secs, 3600);
    assert!(expiry.expires_at_ms > now_ms() + 3_500_000);
    let grant = grant_info(&host).unwrap();
    assert_eq!(grant.token_endpoint, "https://auth.example.com/token");
}

#[test]
fn a_callback_with_another_state_is_refused_without_a_token_request() {
    for callback_url in [
        format!("{REDIRECT}?code=c&state=forged"),
        format!("{REDIRECT}?code=c"),
    ] {
        let host = MemoryHost::new();
        begun(&host);
        let http = ScriptedHttp::new();
        let err = complete(&ctx(&host, &http), &callback_url).unwrap_err();
        assert!(
            matches!(&err, McpError::Unauthorized { message, .. } if message.contains("state")),
            "{err:?}"
        );
        assert!(http.requests().is_empty());
        assert_eq!(host.secret(keys::CODE_VERIFIER), None);
    }
}

#[test]
fn a_denied_consent_is_unauthorized_and_names_the_error() {
    let host = MemoryHost::new();
    let start = begun(&host);
    let http = ScriptedHttp::new();
    let err = complete(
        &ctx(&host, &http),
        &format!(
            "{REDIRECT}?error=access_denied&error_description=The+user+said+no&state={}",
            start.state
        ),
    )
    .unwrap_err();
    match err {
        McpError::Unauthorized { message, .. } => {
            assert!(message.contains("access_denied"), "{message}");
            assert!(message.contains("The user said no"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(http.requests().is_empty());
}

#[test]
fn an_iss_that_differs_from_the_issuer_even_by_a_slash_is_refused() {
    for iss in [
        "https%3A%2F%2Fevil.example.com",
        "https%3A%2F%2Fauth.example.com%2F",
    ] {
        let host = MemoryHost::new();
        let start = begun(&host);
        let http = ScriptedHttp::new();
        let err = complete(
            &ctx(&host, &http),
            &callback(&start.state, &format!("&iss={iss}")),
        )
        .unwrap_err();
        assert!(
            matches!(&err, McpError::Protocol(m) if m.contains("RFC 9207")),
            "{err:?}"
        );
        assert!(http.requests().is_empty());
    }
}

#[test]
fn a_missing_iss_is_refused_when_the_server_promised_it() {
    let host = MemoryHost::new();
    let start = begun(&host);
    let http = ScriptedHttp::new();
    let err = complete(&ctx(&host, &http), &callback(&start.state, "")).unwrap_err();
    assert!(
        matches!(&err, McpError::Protocol(m) if m.contains("iss")),
        "{err:?}"
    );
}

#[test]
fn complete_without_a_pending_authorization_is_unauthorized() {
    let host = MemoryHost::new();
    let http = ScriptedHttp::new();
    assert!(matches!(
        complete(&ctx(&host, &http), &callback("s", "")),
        Err(McpError::Unauthorized { .. })
    ));
}

#[test]
fn an_invalid_client_at_the_token_endpoint_drops_the_shared_registration() {
    let host = MemoryHost::new();
    let start = begun(&host);
    assert_eq!(host.shared.borrow().len(), 1);
    let http = script(vec![json_step(401, json!({ "error": "invalid_client" }))]);
    let err = complete(
        &ctx(&host, &http),
        &callback(&start.state, "&iss=https://auth.example.com"),
    )
    .unwrap_err();
    assert!(
        matches!(&err, McpError::Unauthorized { message, .. } if message.contains("invalid_client")),
        "{err:?}"
    );
    assert!(host.shared.borrow().is_empty());
}

#[test]
fn a_confidential_client_authenticates_with_basic_at_the_token_endpoint() {
    let host = MemoryHost::new();
    let mut steps = standard_begin();
    steps[3] = json_step(201, json!({ "client_id": "conf", "client_secret": "sec" }));
    let http = script(steps);
    let start = begin(&ctx(&host, &http), &settings(&SpecScopePolicy), REDIRECT).unwrap();
    let http = script(vec![json_step(200, token_answer("at", None))]);
    complete(
        &ctx(&host, &http),
        &callback(&start.state, "&iss=https://auth.example.com"),
    )
    .unwrap();
    let request = &http.requests()[0];
    assert_eq!(request.header("authorization"), Some("Basic Y29uZjpzZWM="));
    assert_eq!(param(&form(request), "client_id"), None);
    assert_eq!(param(&form(request), "client_secret"), None);
}

// ------------------------------------------------------------------------------------------------
// The bearer provider

fn authorized_host(expires_in: i64, refresh: Option<&str>) -> MemoryHost {
    let host = MemoryHost::new();
    let grant = json!({
        "endpoint": MCP, "resource": MCP, "issuer": ISSUER,
        "token_endpoint": "https://auth.example.com/token",
        "revocation_endpoint": "https://auth.example.com/revoke",
        "client": { "client_id": "dyn-client", "auth_method": "none", "source": "dynamic" },
        "requested_scopes": ["mcp:read"], "granted_scopes": ["mcp:read"],
        "server_origins": ["https://auth.example.com"]
    });
    host.set_state(keys::GRANT, Some(&grant.to_string()));
    host.put_secret(keys::ACCESS_TOKEN, "old-access");
    let expiry = Expiry {
        expires_at_ms: (now_ms() as i64 + expires_in * 1000).max(0) as u64,
        lifetime_secs: 3600,
    };
    host.put_secret(keys::EXPIRES_AT, &expiry.encode());
    if let Some(r) = refresh {
        host.put_secret(keys::REFRESH_TOKEN, r);
    }
    host
}

fn tools_list(http: &ScriptedHttp, auth: &dyn AuthProvider) -> Result<(), McpError> {
    let store = MemorySessionStore::default();
    store.0.replace(Some(
        json!({ "endpoint": MCP, "protocolVersion": "2025-11-25" }).to_string(),
    ));
    let mut client = McpClient::new(
        ClientConfig::new(MCP, "t", "0"),
        http,
        auth,
        &store,
        &NoLogger,
    )?;
    client.list_tools().map(|_| ())
}

#[test]
fn a_token_is_due_a_minute_before_expiry_or_at_half_life_when_it_lives_less_than_two_minutes() {
    let now = now_ms();
    let cases = [
        (3600, now + 30_000, true),
        (3600, now + 120_000, false),
        (1, now + 900, false),
        (1, now + 400, true),
        (60, now + 31_000, false),
        (60, now + 29_000, true),
        (0, now + 10_000, false),
    ];
    for (lifetime_secs, expires_at_ms, due) in cases {
        let e = Expiry {
            expires_at_ms,
            lifetime_secs,
        };
        assert_eq!(e.is_due(), due, "{e:?}");
        assert!(!e.is_expired());
        assert_eq!(Expiry::parse(&e.encode()), Some(e));
    }
    // A bare number is Unix seconds with the full minute of skew.
    let bare = Expiry::parse(&(now / 1000 + 30).to_string()).unwrap();
    assert!(bare.is_due());
    assert!(Expiry::parse("soon").is_none());
}

#[test]
fn a_fresh_token_is_sent_as_a_bearer_without_refreshing() {
    let host = authorized_host(3600, Some("old-refresh"));
    let http = ScriptedHttp::new().then(result(json!({ "tools": [] })));
    let bearer = OAuthBearer::new(ctx(&host, &http));
    tools_list(&http, &bearer).unwrap();
    assert_eq!(
        http.requests()[0].header("authorization"),
        Some("Bearer old-access")
    );
    assert!(!bearer.refreshed());
    assert!(host.events.borrow().is_empty());
}

#[test]
fn a_token_about_to_expire_is_refreshed_under_the_lock_and_stored_in_one_update() {
    let host = authorized_host(30, Some("old-refresh"));
    let http = ScriptedHttp::new()
        .then(|_| {
            Ok(json_response(
                200,
                &token_answer("new-access", Some("new-refresh")),
            ))
        })
        .then(result(json!({ "tools": [] })));
    let bearer = OAuthBearer::new(ctx(&host, &http));
    tools_list(&http, &bearer).unwrap();
    let requests = http.requests();
    assert_eq!(requests[0].url, "https://auth.example.com/token");
    let sent = form(&requests[0]);
    assert_eq!(param(&sent, "grant_type"), Some("refresh_token"));
    assert_eq!(param(&sent, "refresh_token"), Some("old-refresh"));
    assert_eq!(param(&sent, "resource"), Some(MCP));
    assert_eq!(param(&sent, "client_id"), Some("dyn-client"));
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer new-access")
    );
    // Lock, one update holding the new access token, its expiry and the rotated refresh token, unlock.
    let events = host.events.borrow().clone();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], HostEvent::Lock);
    match &events[1] {
        HostEvent::UpdateSecrets(changes) => {
            assert_eq!(
                changes[0],
                (keys::ACCESS_TOKEN.to_owned(), Some("new-access".to_owned()))
            );
            assert_eq!(changes[1].0, keys::EXPIRES_AT);
            assert_eq!(
                changes[2],
                (
                    keys::REFRESH_TOKEN.to_owned(),
                    Some("new-refresh".to_owned())
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(events[2], HostEvent::Unlock);
}

#[test]
fn the_old_refresh_token_is_kept_when_the_server_does_not_rotate_it() {
    let host = authorized_host(0, Some("old-refresh"));
    let http = ScriptedHttp::new()
        .then(|_| Ok(json_response(200, &token_answer("new-access", None))))
        .then(result(json!({ "tools": [] })));
    tools_list(&http, &OAuthBearer::new(ctx(&host, &http))).unwrap();
    assert_eq!(
        host.secret(keys::REFRESH_TOKEN).as_deref(),
        Some("old-refresh")
    );
    assert_eq!(
        host.secret(keys::ACCESS_TOKEN).as_deref(),
        Some("new-access")
    );
}

#[test]
fn a_token_refreshed_by_another_call_while_waiting_for_the_lock_is_used_without_refreshing_again() {
    let host = authorized_host(10, Some("old-refresh"));
    *host.on_lock.borrow_mut() = Some(Box::new(|h: &MemoryHost| {
        h.put_secret(keys::ACCESS_TOKEN, "their-access");
        h.put_secret(keys::EXPIRES_AT, &Expiry::starting_now(3600).encode());
        h.put_secret(keys::REFRESH_TOKEN, "their-refresh");
    }));
    let http = ScriptedHttp::new().then(result(json!({ "tools": [] })));
    let bearer = OAuthBearer::new(ctx(&host, &http));
    tools_list(&http, &bearer).unwrap();
    assert_eq!(http.requests().len(), 1, "no token request");
    assert_eq!(
        http.requests()[0].header("authorization"),
        Some("Bearer their-access")
    );
    assert_eq!(
        *host.events.borrow(),
        vec![HostEvent::Lock, HostEvent::Unlock]
    );
}

#[test]
fn a_401_invalid_token_refreshes_once_and_replays_the_request() {
    let host = authorized_host(3600, Some("old-refresh"));
    let rejected = |_: &HttpRequest| {
        Ok(response(
            401,
            &[("WWW-Authenticate", r#"Bearer error="invalid_token""#)],
            vec![],
        ))
    };
    let http = ScriptedHttp::new()
        .then(rejected)
        .then(|_| {
            Ok(json_response(
                200,
                &token_answer("new-access", Some("new-refresh")),
            ))
        })
        .then(result(json!({ "tools": [] })));
    tools_list(&http, &OAuthBearer::new(ctx(&host, &http))).unwrap();
    let requests = http.requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer old-access")
    );
    assert_eq!(
        requests[2].header("authorization"),
        Some("Bearer new-access")
    );

    // A second 401 after the refresh is final: no second refresh in the same call.
    let host = authorized_host(3600, Some("old-refresh"));
    let http = ScriptedHttp::new()
        .then(rejected)
        .then(|_| {
            Ok(json_response(
                200,
                &token_answer("new-access", Some("new-refresh")),
            ))
        })
        .then(rejected);
    let bearer = OAuthBearer::new(ctx(&host, &http));
    let err = tools_list(&http, &bearer).unwrap_err();
    assert!(matches!(err, McpError::Unauthorized { .. }), "{err:?}");
    assert_eq!(
        bearer.failure(),
        None,
        "the server's 401, not the provider's"
    );
    assert_eq!(http.requests().len(), 3);
    assert_eq!(http.remaining(), 0);
}

#[test]
fn a_token_another_call_refreshed_is_used_even_when_it_is_short_lived() {
    let host = authorized_host(0, Some("old-refresh"));
    *host.on_lock.borrow_mut() = Some(Box::new(|h: &MemoryHost| {
        h.put_secret(keys::ACCESS_TOKEN, "their-access");
        h.put_secret(keys::EXPIRES_AT, &Expiry::starting_now(1).encode());
    }));
    let http = ScriptedHttp::new().then(result(json!({ "tools": [] })));
    tools_list(&http, &OAuthBearer::new(ctx(&host, &http))).unwrap();
    assert_eq!(http.requests().len(), 1, "no second refresh");
    assert_eq!(
        http.requests()[0].header("authorization"),
        Some("Bearer their-access")
    );
}

#[test]
fn a_refused_refresh_deletes_the_tokens_and_asks_for_a_reconnect() {
    let host = authorized_host(0, Some("old-refresh"));
    let http = ScriptedHttp::new().then(|_| {
        Ok(json_response(
            400,
            &json!({ "error": "invalid_grant", "error_description": "Token revoked" }),
        ))
    });
    let bearer = OAuthBearer::new(ctx(&host, &http));
    let err = tools_list(&http, &bearer).unwrap_err();
    match &err {
        McpError::Unauthorized { message, .. } => {
            assert!(
                message.contains("invalid_grant") && message.contains("reconnect"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(http.requests().len(), 1, "no MCP request, no retry");
    assert_eq!(bearer.failure(), Some(err.clone()));
    for key in [keys::ACCESS_TOKEN, keys::REFRESH_TOKEN, keys::EXPIRES_AT] {
        assert_eq!(host.secret(key), None, "{key}");
    }
    assert!(!host.is_locked());
}

#[test]
fn a_refresh_that_cannot_reach_the_server_keeps_the_tokens() {
    let host = authorized_host(0, Some("old-refresh"));
    let http = ScriptedHttp::new().then(|_| Err(TransportError::Unavailable("down".into())));
    let err = tools_list(&http, &OAuthBearer::new(ctx(&host, &http))).unwrap_err();
    assert!(matches!(err, McpError::Unavailable(_)), "{err:?}");
    assert_eq!(
        host.secret(keys::REFRESH_TOKEN).as_deref(),
        Some("old-refresh")
    );
}

#[test]
fn without_any_token_the_request_is_not_sent() {
    let host = MemoryHost::new();
    let http = ScriptedHttp::new();
    let bearer = OAuthBearer::new(ctx(&host, &http));
    assert!(!bearer.has_credentials());
    assert!(matches!(
        tools_list(&http, &bearer),
        Err(McpError::Unauthorized { .. })
    ));
    assert!(http.requests().is_empty());
}

// ------------------------------------------------------------------------------------------------
// Revocation

#[test]
fn revocation_revokes_the_refresh_token_then_the_access_token() {
    let host = authorized_host(3600, Some("old-refresh"));
    let http = ScriptedHttp::new()
        .then(|_| Ok(empty(200)))
        .then(|_| Ok(empty(200)));
    assert_eq!(revoke(&ctx(&host, &http)).unwrap(), Revocation::Revoked(2));
    let requests = http.requests();
    assert!(requests
        .iter()
        .all(|r| r.url == "https://auth.example.com/revoke"));
    let first = form(&requests[0]);
    assert_eq!(param(&first, "token"), Some("old-refresh"));
    assert_eq!(param(&first, "token_type_hint"), Some("refresh_token"));
    assert_eq!(param(&first, "client_id"), Some("dyn-client"));
    assert_eq!(param(&form(&requests[1]), "token"), Some("old-access"));
}

#[test]
fn revocation_is_skipped_when_the_server_offers_none_and_reports_a_refusal() {
    let host = authorized_host(3600, None);
    let mut grant = grant_info(&host).unwrap();
    grant.revocation_endpoint = None;
    host.set_state(keys::GRANT, Some(&serde_json::to_string(&grant).unwrap()));
    let http = ScriptedHttp::new();
    assert_eq!(revoke(&ctx(&host, &http)).unwrap(), Revocation::NotOffered);
    assert!(http.requests().is_empty());

    let host = authorized_host(3600, None);
    let http = ScriptedHttp::new().then(|_| Ok(json_response(503, &json!({}))));
    assert!(matches!(
        revoke(&ctx(&host, &http)),
        Err(McpError::Http { status: 503, .. })
    ));
    assert_eq!(
        revoke(&ctx(&MemoryHost::new(), &http)).unwrap(),
        Revocation::NothingToRevoke
    );
}
