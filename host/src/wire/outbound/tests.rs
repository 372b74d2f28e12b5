use super::*;
use crate::vault::credentials::{Binding, Credential, Kind, OAuthTargets};
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

async fn prepare(w: &World, method: &str, url: &str, headers: &[(&str, &str)], b: &str) -> Result<http::Request<WasiBody>, Error> {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body(b)).unwrap();
    let m = Method::parse(method).unwrap();
    w.ctx.prepare(m, &target(url), url, req).await
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
    let sent = prepare(&w, "POST", "https://mcp.close.com/mcp", &[("close-api-key", p)], "{}").await.unwrap();
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
    let back = prepare(&w, "POST", "https://other.example/x", &[], "harmless").await.unwrap();
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
    let sent = prepare(&w, "POST", "https://mcp.close.com/token", &form, &format!("grant_type=refresh_token&refresh_token={}", p.as_str())).await.unwrap();
    let bytes = sent.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], b"grant_type=refresh_token&refresh_token=rt-value-0123456789");
    assert!(prepare(&w, "POST", "https://mcp.close.com/mcp", &[("authorization", &format!("Bearer {}", p.as_str()))], "{}").await.is_err());
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_denied() {
    let w = world(&["http://*:8080"], true);
    let o = Origin::parse("http://evil.test:8080/").unwrap();
    assert!(matches!(w.ctx.addresses(&o).await, Err(Error::HttpRequestDenied)));
    let why = w.ctx.first_denial().unwrap();
    assert!(why.contains("resolves to 127.0.0.1"), "{why}");
}

#[tokio::test]
async fn one_private_answer_among_public_ones_is_denied() {
    let w = world(&["https://*"], true);
    assert!(w.ctx.addresses(&Origin::parse("https://mixed.test/").unwrap()).await.is_err());
    assert_eq!(w.ctx.addresses(&Origin::parse("https://public.test/").unwrap()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_literally_granted_loopback_address_is_reachable() {
    let w = world(&["http://127.0.0.1:8811"], true);
    let o = Origin::parse("http://127.0.0.1:8811/").unwrap();
    assert_eq!(w.ctx.addresses(&o).await.unwrap(), vec!["127.0.0.1:8811".parse().unwrap()]);
}
