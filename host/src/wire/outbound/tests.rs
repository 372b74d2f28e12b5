use super::*;
use crate::vault::credentials::{Binding, Credential, Kind, OAuthTargets};
use crate::wire::inbound;
use zeroize::Zeroizing;

fn target(u: &str) -> Target {
    Target::parse(u).unwrap()
}

struct World {
    ctx: OutboundContext,
    key: Credential,
}

/// A connection to `https://mcp.close.com/mcp` holding an API key, with `grant` as the operator's
/// extra origins.
fn world(grant: &[&str], connection_urls: bool) -> World {
    world_authorizing(grant, connection_urls, None)
}

/// [`world`] in a call that begins an authorization whose browser comes back to `redirect_uri`.
fn world_authorizing(grant: &[&str], connection_urls: bool, redirect_uri: Option<&str>) -> World {
    let endpoint = target("https://mcp.close.com/mcp");
    let key = Credential::new(Kind::ApiKey, Zeroizing::new("sk_live_0123456789".into()), Binding::api_key(&endpoint, Some("close-api-key")));
    let creds = Arc::new(CallCredentials::new("conn_1", None, vec![key.clone()]));
    let policy = Policy { connection_urls, grant: Grant::parse_list(grant).unwrap(), limits: Limits::default(), tools: Default::default() };
    let net = CallNetwork {
        connection: "test".into(),
        endpoint: Some(endpoint),
        policy,
        oauth: OAuthState::default(),
        uses_oauth: true,
        key_headers: KeyHeaders { key: Some("close-api-key".into()), scope: Some(("close-scope".into(), vec!["mcp.read".into()])) },
        matchers: Arc::new(MatcherCache::default()),
        scopes: ScopeSources { operator: vec![], declared: vec!["mcp.read".into()] },
        redirect_uri: redirect_uri.map(str::to_string),
    };
    let resolver = Arc::new(FixedResolver(
        [
            ("evil.test".to_string(), vec!["127.0.0.1".parse().unwrap()]),
            ("mixed.test".to_string(), vec!["93.184.216.34".parse().unwrap(), "10.0.0.1".parse().unwrap()]),
            ("public.test".to_string(), vec!["93.184.216.34".parse().unwrap()]),
        ]
        .into_iter()
        .collect(),
    ));
    let limits = Limits { max_requests_per_call: 3, ..Limits::default() };
    let ctx = OutboundContext::new(net, limits, creds, resolver, Arc::new(CallBudget::new(limits.host_memory_bytes)));
    World { ctx, key }
}

fn body(s: &str) -> WasiBody {
    http_body_util::Full::new(Bytes::from(s.to_string())).map_err(|never| match never {}).boxed_unsync()
}

async fn prepare(w: &World, method: &str, url: &str, headers: &[(&str, &str)], b: &str) -> Result<(http::Request<WasiBody>, bool), Error> {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body(b)).unwrap();
    let m = Method::parse(method).unwrap();
    let allowed = Allowed { purpose: w.ctx.oauth().purpose(&target("https://mcp.close.com/mcp"), m, &target(url)), ..Allowed::default() };
    w.ctx.prepare(m, &target(url), url, &allowed, req).await
}

async fn prepare_request(w: &World, method: &str, url: &str, headers: &[(&str, &str)], b: &str) -> Result<http::Request<WasiBody>, Error> {
    prepare(w, method, url, headers, b).await.map(|(r, _)| r)
}

#[test]
fn the_endpoint_url_is_granted_and_nothing_else_of_its_origin() {
    let w = world(&[], true);
    assert!(w.ctx.check_request(Method::Post, &target("https://mcp.close.com/mcp")).is_ok());
    assert!(w.ctx.check_request(Method::Post, &target("https://mcp.close.com/api/v1/lead/")).is_err());
    let why = w.ctx.first_denial().unwrap();
    assert!(why.contains("may reach https://mcp.close.com only as"), "{why}");
    assert!(why.contains("[[allow]]"), "{why}");
}

#[test]
fn disallowed_host_fails_with_the_grant_that_would_allow_it() {
    let w = world(&["https://mcp.close.com"], false);
    assert!(matches!(w.ctx.check_request(Method::Get, &target("https://evil.example/x")), Err(Error::HttpRequestDenied)));
    let why = w.ctx.first_denial().unwrap();
    assert!(why.contains("https://evil.example"), "{why}");
    assert!(why.contains("--allow-origin https://evil.example"), "{why}");
    assert!(why.contains("granted: https://mcp.close.com"), "{why}");
}

#[test]
fn an_empty_grant_denies_everything() {
    let w = world(&[], false);
    assert!(w.ctx.check_request(Method::Post, &target("https://mcp.close.com/mcp")).is_err());
    assert!(w.ctx.first_denial().unwrap().contains("granted: nothing"));
}

#[test]
fn the_request_budget_is_enforced() {
    let w = world(&[], true);
    for _ in 0..3 {
        assert!(w.ctx.check_request(Method::Post, &target("https://mcp.close.com/mcp")).is_ok());
    }
    assert!(w.ctx.check_request(Method::Post, &target("https://mcp.close.com/mcp")).is_err());
    assert!(w.ctx.first_denial().unwrap().contains("max_requests_per_call"));
}

#[tokio::test]
async fn the_api_key_is_attached_at_the_endpoint_and_refused_elsewhere() {
    let w = world(&["https://other.example"], true);
    let p = w.key.placeholder.as_str();
    let sent = prepare_request(&w, "POST", "https://mcp.close.com/mcp", &[("close-api-key", p)], "{}").await.unwrap();
    assert_eq!(sent.headers()["close-api-key"], "sk_live_0123456789");
    assert_eq!(sent.headers()["close-scope"], "mcp.read");
    // Another origin the operator granted, another path of the endpoint's origin: the placeholder stays out.
    assert!(prepare(&w, "POST", "https://other.example/x", &[("close-api-key", p)], "{}").await.is_err());
    assert!(prepare(&w, "DELETE", "https://mcp.close.com/api/v1/lead/lead_1/", &[("close-api-key", p)], "").await.is_err());
    let why = w.ctx.first_denial().unwrap();
    assert!(why.contains("does not belong"), "{why}");
    assert!(!why.contains("sk_live"), "the denial must not echo the value: {why}");
}

#[tokio::test]
async fn a_credential_value_in_a_request_is_refused_by_the_second_line() {
    let w = world(&["https://other.example"], true);
    for (headers, b) in [
        (vec![("authorization", "Bearer sk_live_0123456789")], ""),
        (vec![], r#"{"k":"sk_live_0123456789"}"#),
        (vec![], "k=sk_live_0123456789&x=1"),
        (vec![("x-b64", "c2tfbGl2ZV8wMTIzNDU2Nzg5")], ""),
    ] {
        assert!(prepare(&w, "POST", "https://other.example/x", &headers, b).await.is_err(), "{headers:?} {b}");
    }
    assert!(w.ctx.first_denial().unwrap().contains("carries a credential value"));
    let back = prepare_request(&w, "POST", "https://other.example/x", &[], "harmless").await.unwrap();
    let bytes = back.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], b"harmless", "the body is passed on unchanged");
}

#[tokio::test]
async fn a_token_request_gets_the_refresh_token_in_its_form_field_only() {
    let w = world(&[], true);
    let endpoint = target("https://mcp.close.com/mcp");
    let oauth = OAuthTargets { token: Some(target("https://mcp.close.com/token")), revocation: None };
    let refresh = Credential::new(Kind::RefreshToken, Zeroizing::new("rt-value-0123456789".into()), Binding::oauth(Kind::RefreshToken, &endpoint, &oauth));
    let p = w.ctx.credentials.mint(refresh).unwrap();
    // Without protected-resource metadata, /token on the endpoint's origin is the token endpoint.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let sent = prepare_request(&w, "POST", "https://mcp.close.com/token", &form, &format!("grant_type=refresh_token&refresh_token={}", p.as_str())).await.unwrap();
    let bytes = sent.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], b"grant_type=refresh_token&refresh_token=rt-value-0123456789");
    assert!(prepare(&w, "POST", "https://mcp.close.com/mcp", &[("authorization", &format!("Bearer {}", p.as_str()))], "{}").await.is_err());
}

/// The addresses a GET of `url` may connect to, after the grant check.
async fn addresses(w: &World, url: &str) -> Result<Vec<SocketAddr>, Error> {
    let allowed = w.ctx.check_request(Method::Get, &target(url))?;
    w.ctx.addresses(Method::Get, &target(url), &allowed).await
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_denied() {
    let w = world(&["http://*:8080"], true);
    assert!(matches!(addresses(&w, "http://evil.test:8080/").await, Err(Error::HttpRequestDenied)));
    let why = w.ctx.first_denial().unwrap();
    assert!(why.contains("resolves to 127.0.0.1"), "{why}");
}

#[tokio::test]
async fn one_private_answer_among_public_ones_is_denied() {
    let w = world(&["https://*"], true);
    assert!(addresses(&w, "https://mixed.test/").await.is_err());
    assert_eq!(addresses(&w, "https://public.test/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_literally_granted_loopback_address_is_reachable() {
    let w = world(&["http://127.0.0.1:8811"], true);
    assert_eq!(addresses(&w, "http://127.0.0.1:8811/").await.unwrap(), vec!["127.0.0.1:8811".parse().unwrap()]);
}

/// The review's M3 through the hook: a rule the vendor's metadata led to (here a token endpoint on
/// another port of an address the operator granted for something else) allows the request by name,
/// but not the address.
#[tokio::test]
async fn a_vendor_cannot_steer_a_request_to_another_port_of_a_special_address() {
    let w = world(&["http://10.0.0.7:9000"], true);
    // What a vendor's authorization-server metadata could name (set directly: learning refuses a
    // plain-http token endpoint for an https MCP endpoint anyway).
    w.ctx.oauth.lock().unwrap().server = Some(crate::oauth::discovery::ServerDoc {
        url: Some("https://mcp.close.com/.well-known/oauth-authorization-server".into()),
        issuer: None,
        authorization_endpoint: "https://mcp.close.com/authorize".into(),
        token_endpoint: "http://10.0.0.7:8080/admin/export".into(),
        registration_endpoint: None,
        revocation_endpoint: None,
        scopes_supported: vec![],
        iss_supported: false,
    });
    let admin = target("http://10.0.0.7:8080/admin/export");
    let allowed = w.ctx.check_request(Method::Post, &admin).unwrap();
    assert!(allowed.rules.rules().iter().all(|r| !r.reason.operator_named()), "the learned rule allows it by name");
    assert!(w.ctx.addresses(Method::Post, &admin, &allowed).await.is_err(), "metadata named it; the operator did not");
    assert!(w.ctx.first_denial().unwrap().contains("10.0.0.7"));
    assert!(addresses(&w, "http://10.0.0.7:9000/api").await.is_ok());
}

// ---- H1: answers that may hold a credential are decided before the request leaves -------------

const TOKENS: &str = r#"{"access_token":"raw-access-0123456789","token_type":"Bearer","refresh_token":"raw-refresh-0123456789","scope":"mcp.read"}"#;

fn response(status: u16, content_type: Option<&str>, b: &str) -> http::Response<WasiBody> {
    let mut r = http::Response::builder().status(status);
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    r.body(body(b)).unwrap()
}

/// What the connector reads of `response` to `method url`, treated as `treatment`.
async fn read(w: &World, method: Method, url: &str, treatment: Treatment, response: http::Response<WasiBody>) -> Result<String, String> {
    let r = w.ctx.respond(method, &target(url), treatment, response).await.map_err(|e| format!("{e:?}"))?;
    let bytes = r.into_body().collect().await.map_err(|e| format!("{e:?}"))?.to_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn assert_placeholders_only(seen: &str) {
    assert!(!seen.contains("raw-access") && !seen.contains("raw-refresh"), "the connector saw a token: {seen}");
    assert!(seen.contains("\"access_token\":\"clbph_") && seen.contains("\"refresh_token\":\"clbph_"), "{seen}");
}

/// The review's attack A: `connection_urls = false` and the operator granting both Close origins; the
/// connector refreshes. Nothing marks the URL as the token endpoint, yet the answer is a token answer
/// because the host put the refresh token into the request.
#[tokio::test]
async fn a_refresh_answer_is_rewritten_whatever_the_policy_says_about_connection_urls() {
    let w = world(&["https://mcp.close.com", "https://api.close.com"], false);
    let endpoint = target("https://mcp.close.com/mcp");
    let token_url = "https://api.close.com/oauth2/token/";
    let oauth = OAuthTargets { token: Some(target(token_url)), revocation: None };
    let refresh = Credential::new(Kind::RefreshToken, Zeroizing::new("rt-value-0123456789".into()), Binding::oauth(Kind::RefreshToken, &endpoint, &oauth));
    let p = w.ctx.credentials.mint(refresh).unwrap();
    let allowed = w.ctx.check_request(Method::Post, &target(token_url)).unwrap();
    assert_eq!(allowed.purpose, None, "nothing learned names this URL");
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (_, grant_credential) = prepare(&w, "POST", token_url, &form, &format!("grant_type=refresh_token&refresh_token={}", p.as_str())).await.unwrap();
    assert!(grant_credential);
    let treatment = Treatment::decide(allowed.purpose, grant_credential);
    assert_eq!(treatment, Treatment::Credentials);
    // Served as text/html, even: what decides is what went into the request.
    let seen = read(&w, Method::Post, token_url, treatment, response(200, Some("text/html"), TOKENS)).await.unwrap();
    assert_placeholders_only(&seen);
    assert!(w.ctx.token_facts().iter().any(|f| f.granted), "the host read the grant");
    // A 2xx it cannot read is refused, not passed on.
    assert!(read(&w, Method::Post, token_url, treatment, response(200, None, "access_token=raw-access-0123456789")).await.is_err());
}

fn close_oauth() -> OAuthState {
    let endpoint = target("https://mcp.close.com/mcp");
    let mut s = OAuthState::default();
    let prm = serde_json::json!({"resource": "https://mcp.close.com/", "authorization_servers": ["https://api.close.com/"]});
    assert!(s.learn(&endpoint, Method::Get, &target("https://mcp.close.com/.well-known/oauth-protected-resource"), &prm));
    let asm = serde_json::json!({"issuer": "https://api.close.com", "authorization_endpoint": "https://app.close.com/oauth2/authorize/",
        "token_endpoint": "https://api.close.com/oauth2/token/", "registration_endpoint": "https://api.close.com/oauth2/register/"});
    assert!(s.learn(&endpoint, Method::Get, &target("https://mcp.close.com/.well-known/oauth-authorization-server"), &asm));
    s
}

/// The review's attack B: the learned state changes while the request is in flight (another accepted
/// document names another server). The purpose was read with the grant and stays.
#[tokio::test]
async fn a_document_learned_while_a_request_is_in_flight_does_not_change_how_its_answer_is_read() {
    let w = world(&[], true);
    *w.ctx.oauth.lock().unwrap() = close_oauth();
    let register = "https://api.close.com/oauth2/register/";
    let allowed = w.ctx.check_request(Method::Post, &target(register)).unwrap();
    assert_eq!(allowed.purpose, Some(Purpose::Registration));
    // Meanwhile: a protected-resource document naming another issuer forgets api.close.com.
    let endpoint = target("https://mcp.close.com/mcp");
    let migrated = serde_json::json!({"resource": "https://mcp.close.com/", "authorization_servers": ["https://auth2.close.com"]});
    assert!(w.ctx.oauth.lock().unwrap().learn(&endpoint, Method::Get, &target("https://mcp.close.com/.well-known/oauth-protected-resource"), &migrated));
    assert_eq!(w.ctx.oauth().purpose(&endpoint, Method::Post, &target(register)), None, "now the URL means nothing");
    let treatment = Treatment::decide(allowed.purpose, false);
    let answer = r#"{"client_id":"c1","client_secret":"raw-secret-0123456789","registration_access_token":"raw-rat-0123456789"}"#;
    let seen = read(&w, Method::Post, register, treatment, response(201, Some("application/json"), answer)).await.unwrap();
    assert!(!seen.contains("raw-") && seen.contains("\"client_secret\":\"clbph_"), "{seen}");
    // And a registration answer it cannot read is refused (it used to pass unchanged).
    assert!(read(&w, Method::Post, register, treatment, response(201, Some("application/json"), "\u{1f}\u{8b}gzip")).await.is_err());
}

/// The review's attack C: an alias of the token endpoint (no trailing slash), or a metadata URL
/// answering a POST, under a whole-origin grant, with no credential attached (a raw code obtained
/// some other way): any JSON answer naming a credential member is rewritten all the same.
#[tokio::test]
async fn a_json_answer_naming_a_token_is_rewritten_wherever_it_comes_from() {
    let w = world(&["https://api.close.com", "https://mcp.close.com"], true);
    *w.ctx.oauth.lock().unwrap() = close_oauth();
    for url in ["https://api.close.com/oauth2/token", "https://api.close.com//oauth2/token/", "https://mcp.close.com/.well-known/oauth-protected-resource"] {
        let allowed = w.ctx.check_request(Method::Post, &target(url)).unwrap();
        assert_eq!(allowed.purpose, None, "{url}");
        let treatment = Treatment::decide(allowed.purpose, false);
        assert_eq!(treatment, Treatment::Plain);
        for ct in [Some("application/json"), Some("application/json; charset=utf-8"), None, Some("text/plain")] {
            let seen = read(&w, Method::Post, url, treatment, response(200, ct, TOKENS)).await.unwrap();
            assert_placeholders_only(&seen);
        }
    }
    // A form-encoded answer with a token is refused (the host rewrites credentials only in JSON).
    let url = "https://api.close.com/oauth2/token";
    let form = response(200, Some("application/x-www-form-urlencoded"), "access_token=raw-access-0123456789&token_type=bearer");
    assert!(read(&w, Method::Post, url, Treatment::Plain, form).await.is_err());
    // An ordinary answer passes untouched, nested members included.
    let plain = r#"{"jsonrpc":"2.0","id":1,"result":{"access_token":"not at the top level"}}"#;
    assert_eq!(read(&w, Method::Post, url, Treatment::Plain, response(200, Some("application/json"), plain)).await.unwrap(), plain);
}

#[tokio::test]
async fn an_answer_too_large_to_rewrite_is_cut_before_a_top_level_token() {
    let w = world(&["https://api.close.com"], true);
    let url = "https://api.close.com/oauth2/token";
    let big = format!(r#"{{"padding":"{}","access_token":"raw-access-0123456789"}}"#, "x".repeat(inbound::MAX_OAUTH_RESPONSE));
    for ct in [Some("application/json"), Some("text/event-stream")] {
        let r = w.ctx.respond(Method::Post, &target(url), Treatment::Plain, response(200, ct, &big)).await.unwrap();
        let mut b = r.into_body();
        let mut seen = Vec::new();
        let mut failed = false;
        while let Some(frame) = b.frame().await {
            match frame {
                Ok(f) => seen.extend_from_slice(f.data_ref().map(|d| &d[..]).unwrap_or_default()),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "{ct:?}: the body ends in an error");
        assert!(!String::from_utf8_lossy(&seen).contains("raw-access"), "{ct:?}: the value never came through");
    }
    assert!(w.ctx.first_denial().unwrap().contains("too large to rewrite"));
    // Large answers without such a member stream through whole.
    let big = format!(r#"{{"padding":"{}","ok":true}}"#, "x".repeat(inbound::MAX_OAUTH_RESPONSE));
    assert_eq!(read(&w, Method::Post, url, Treatment::Plain, response(200, Some("application/json"), &big)).await.unwrap(), big);
}

// ---- H2: bounded echo masking ------------------------------------------------------------------

#[tokio::test]
async fn a_token_longer_than_8_kib_is_refused_when_it_arrives() {
    let w = world(&["https://api.close.com"], true);
    let long = "t".repeat(crate::vault::credentials::MAX_VALUE_LEN + 1);
    let answer = format!(r#"{{"access_token":"{long}","token_type":"Bearer"}}"#);
    let url = "https://api.close.com/oauth2/token/";
    assert!(read(&w, Method::Post, url, Treatment::Credentials, response(200, Some("application/json"), &answer)).await.is_err());
    let why = w.ctx.first_denial().unwrap();
    assert!(why.contains("access-token") && why.contains("8 KiB"), "{why}");
    assert!(!why.contains("tttttttt"), "{why}");
    assert!(w.ctx.credentials.known().iter().all(|c| c.value.len() <= crate::vault::credentials::MAX_VALUE_LEN));
}

fn context(cache: Arc<MatcherCache>, budget: u64, creds: Vec<Credential>) -> OutboundContext {
    let endpoint = target("https://mcp.close.com/mcp");
    let net = CallNetwork {
        connection: "test".into(),
        endpoint: Some(endpoint),
        policy: Policy { connection_urls: true, grant: Grant::default(), limits: Limits::default(), tools: Default::default() },
        oauth: OAuthState::default(),
        uses_oauth: false,
        key_headers: KeyHeaders::default(),
        matchers: cache,
        scopes: ScopeSources::default(),
        redirect_uri: None,
    };
    let creds = Arc::new(CallCredentials::new("conn_1", None, creds));
    let limits = Limits { host_memory_bytes: budget, ..Limits::default() };
    OutboundContext::new(net, limits, creds, Arc::new(FixedResolver(Default::default())), Arc::new(CallBudget::new(budget)))
}

#[tokio::test]
async fn credential_matchers_are_built_once_per_connection_and_charged_to_each_call() {
    let endpoint = target("https://mcp.close.com/mcp");
    let values: Vec<Credential> = (0..40)
        .map(|i| Credential::new(Kind::AccessToken, Zeroizing::new(format!("{i:02}{}", "v".repeat(8000))), Binding::api_key(&endpoint, None)))
        .collect();
    let cache = Arc::new(MatcherCache::default());
    let first = context(cache.clone(), 16 << 20, values.clone());
    assert_eq!(first.mask(&format!("x {} y", values[3].value.as_str())), "x [redacted] y");
    let charged = first.budget.used();
    assert!(charged > 0, "the matchers are charged to the call");
    let second = context(cache.clone(), 16 << 20, values.clone());
    assert!(Arc::ptr_eq(&first.matchers(), &second.matchers()), "the next call of the connection reuses them");
    assert_eq!(second.budget.used(), charged, "and is charged for them too");
    // A call whose budget cannot hold them refuses every request, with the budget's reason.
    let tight = context(cache, (charged / 2) as u64, values);
    let req = http::Request::builder().method("POST").uri("https://mcp.close.com/mcp").body(body("{}")).unwrap();
    assert!(tight.prepare(Method::Post, &endpoint, "https://mcp.close.com/mcp", &Allowed::default(), req).await.is_err());
    let why = tight.first_denial().unwrap();
    assert!(why.contains("credential matchers") && why.contains("host_memory_mib"), "{why}");
}

// ---- H3: the connector's client registration is read before it is sent -----------------------

#[tokio::test]
async fn a_client_registration_is_read_before_it_is_sent_wherever_it_goes() {
    let redirect = "http://127.0.0.1:5/callback";
    let w = world_authorizing(&["https://api.close.com"], true, Some(redirect));
    *w.ctx.oauth.lock().unwrap() = close_oauth();
    let json = [("content-type", "application/json")];
    let good = r#"{"client_name":"c","redirect_uris":["http://127.0.0.1:5/callback"],"grant_types":["authorization_code","refresh_token"],"scope":"mcp.read"}"#;
    let evil = r#"{"client_name":"c","redirect_uris":["http://127.0.0.1:5/callback","https://evil.example/cb"]}"#;
    let wide = r#"{"redirect_uris":["http://127.0.0.1:5/callback"],"scope":"mcp.read mcp.write_destructive"}"#;
    // The learned registration endpoint, and an alias of it the operator's grant allows.
    for url in ["https://api.close.com/oauth2/register/", "https://api.close.com/oauth2/register"] {
        assert!(prepare(&w, "POST", url, &json, good).await.is_ok(), "{url}");
        assert!(prepare(&w, "POST", url, &json, evil).await.is_err(), "{url}");
        assert!(w.ctx.first_denial().unwrap().contains("redirect URIs other than exactly the host's"));
        assert!(prepare(&w, "POST", url, &json, wide).await.is_err(), "{url}");
    }
    // To the learned registration endpoint, a body the host cannot read is refused too.
    assert!(prepare(&w, "POST", "https://api.close.com/oauth2/register/", &[("content-type", "application/x-www-form-urlencoded")], "redirect_uris=x").await.is_err());
    // Outside an authorization the host began, no registration goes out at all.
    let idle = world(&["https://api.close.com"], true);
    assert!(prepare(&idle, "POST", "https://api.close.com/oauth2/register", &json, good).await.is_err());
    assert!(idle.ctx.first_denial().unwrap().contains("outside an authorization"));
}

// ---- M1: compression and ranges ----------------------------------------------------------------

#[tokio::test]
async fn answers_are_asked_for_whole_and_uncompressed() {
    let w = world(&["https://other.example"], true);
    let headers = [("accept-encoding", "gzip, br"), ("range", "bytes=0-9"), ("if-range", "\"x\"")];
    let (sent, _) = prepare(&w, "GET", "https://other.example/x", &headers, "").await.unwrap();
    assert_eq!(sent.headers()["accept-encoding"], "identity");
    assert!(sent.headers().get("range").is_none() && sent.headers().get("if-range").is_none());
}

#[tokio::test]
async fn a_request_that_names_another_method_path_or_host_is_refused() {
    let w = world(&["https://other.example"], true);
    for h in ["x-http-method-override", "x-original-url", "x-forwarded-host", "forwarded"] {
        assert!(prepare(&w, "POST", "https://other.example/x", &[(h, "DELETE")], "").await.is_err(), "{h}");
    }
    assert!(w.ctx.first_denial().unwrap().contains("x-http-method-override"));
}

#[tokio::test]
async fn a_compressed_or_partial_answer_is_refused_whatever_its_url() {
    let w = world(&["https://api.close.com"], true);
    let url = "https://api.close.com/oauth2/register/";
    let with = |status: u16, name: &str, value: &str| {
        let mut r = response(status, Some("application/json"), "\u{1f}\u{8b}gzipped");
        r.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), http::HeaderValue::from_str(value).unwrap());
        r
    };
    for (treatment, r, needle) in [
        (Treatment::Credentials, with(201, "content-encoding", "gzip"), "encoded (gzip)"),
        (Treatment::Plain, with(200, "content-encoding", "identity, br"), "encoded (br)"),
        (Treatment::Plain, with(206, "content-range", "bytes 0-9/100"), "partial"),
        (Treatment::Plain, with(200, "content-range", "bytes 0-9/100"), "partial"),
    ] {
        assert!(read(&w, Method::Post, url, treatment, r).await.is_err(), "{needle}");
        assert!(w.ctx.denials.lock().unwrap().iter().any(|d| d.contains(needle)), "{needle}");
    }
    // identity is fine.
    let ok = with(200, "content-encoding", "identity");
    assert!(read(&w, Method::Post, url, Treatment::Plain, ok).await.is_ok());
}

// ---- M2: every grant is judged, and every scope asked of the token endpoint ----------------------

#[tokio::test]
async fn a_grant_wider_than_the_connection_may_hold_is_refused_in_any_call() {
    let w = world(&["https://api.close.com"], true);
    let url = "https://api.close.com/oauth2/token/";
    let wide = TOKENS.replace(r#""scope":"mcp.read""#, r#""scope":"mcp.read mcp.write_destructive""#);
    for treatment in [Treatment::Credentials, Treatment::Plain] {
        assert!(read(&w, Method::Post, url, treatment, response(200, Some("application/json"), &wide)).await.is_err());
    }
    let why = w.ctx.first_denial().unwrap();
    assert!(why.contains("mcp.write_destructive") && why.contains("beyond what this connection may hold"), "{why}");
    assert!(w.ctx.token_facts().is_empty(), "a refused grant is not recorded");
    // What the connection may hold passes, and every grant of the call is kept for judging.
    for _ in 0..2 {
        let seen = read(&w, Method::Post, url, Treatment::Credentials, response(200, Some("application/json"), TOKENS)).await.unwrap();
        assert_placeholders_only(&seen);
    }
    assert_eq!(w.ctx.token_facts().len(), 2);
}

#[tokio::test]
async fn a_token_request_asking_for_a_write_scope_is_refused_before_it_is_sent() {
    let w = world(&[], true);
    let endpoint = target("https://mcp.close.com/mcp");
    let oauth = OAuthTargets { token: Some(target("https://mcp.close.com/token")), revocation: None };
    let refresh = Credential::new(Kind::RefreshToken, Zeroizing::new("rt-value-0123456789".into()), Binding::oauth(Kind::RefreshToken, &endpoint, &oauth));
    let p = w.ctx.credentials.mint(refresh).unwrap();
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let ask = |scope: &str| format!("grant_type=refresh_token&refresh_token={}&scope={scope}", p.as_str());
    assert!(prepare(&w, "POST", "https://mcp.close.com/token", &form, &ask("mcp.read+offline_access")).await.is_ok());
    assert!(prepare(&w, "POST", "https://mcp.close.com/token", &form, &ask("mcp.read+mcp.write_safe")).await.is_err());
    assert!(w.ctx.first_denial().unwrap().contains("mcp.write_safe"));
}

// ---- M4: what the tool gate's reading costs is charged -----------------------------------------

#[tokio::test]
async fn reading_a_body_for_tool_calls_is_charged_to_the_call() {
    let ctx = context(Arc::new(MatcherCache::default()), 16 << 20, vec![]).with_tool_gate(Arc::new(|_: &str| None));
    let endpoint = target("https://mcp.close.com/mcp");
    let allowed = Allowed::default();
    let send = |b: String| {
        let req = http::Request::builder().method("POST").uri("https://mcp.close.com/mcp").header("content-type", "application/json").body(body(&b)).unwrap();
        ctx.prepare(Method::Post, &endpoint, "https://mcp.close.com/mcp", &allowed, req)
    };
    // The review's body: 1.5 MiB of `[0,0,…]` would take 24 MiB as a tree; the call holds 16 MiB.
    let zeros = format!("[{}0]", "0,".repeat(768 * 1024));
    assert!(send(zeros).await.is_err());
    let why = ctx.first_denial().unwrap();
    assert!(why.contains("reading request bodies for tool calls") && why.contains("host_memory_mib"), "{why}");
    assert_eq!(ctx.budget.used(), 0, "nothing stays charged");
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"find_leads","arguments":{}}}"#;
    assert!(send(call.to_string()).await.is_ok());
}
