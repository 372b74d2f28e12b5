//! "Authorize with Close": OAuth 2.1 through the real Close connector component and the real host,
//! against the stand-in's Close-like authorization server on a second origin. The happy path and
//! every failure the product promises to handle, each leaving nothing behind.

use close_standin::{ConsentMode, OAuthSwitches, StandInConfig};
use e2e::claribi_host::oauth::redirect::Mode;
use e2e::claribi_host::errors::{ConnectorError, HostError};
use e2e::claribi_host::vault::sealing::MasterKeys;
use e2e::claribi_host::service::{builtin, ConnectRequest, Credentials, OAuthFlow};
use e2e::claribi_host::vault::store::Store;
use e2e::{json_of, Fixture};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const INSUFFICIENT: &str =
    "Insufficient scope: the Close account did not grant mcp.read. Reconnect and accept the read scope.";

async fn fixture(oauth: OAuthSwitches) -> Fixture {
    Fixture::with_config(StandInConfig { oauth, ..StandInConfig::default() }).await
}

fn request(f: &Fixture, name: &str, flow: OAuthFlow) -> ConnectRequest {
    ConnectRequest {
        name: name.into(),
        plugin: builtin::CLOSE.to_vec(),
        endpoint: Some(f.standin.url()),
        credentials: Credentials::OAuth(flow),
        scopes: vec![],
        allow_origins: Some(vec![f.origin(), f.standin.issuer_url()]),
        policy: None,
        options: vec![],
    }
}

/// A flow whose `on_url` runs `hook` (with the authorization URL) before the host continues.
fn flow_with(mode: Mode, hook: impl Fn(&str) + Send + Sync + 'static) -> OAuthFlow {
    OAuthFlow { mode, timeout: Duration::from_secs(20), on_url: Box::new(hook) }
}

/// The data directory's store and keys, opened beside the running host (as another process would).
fn open_store(f: &Fixture) -> (Store, MasterKeys) {
    (Store::open(f.dir.path()).unwrap(), MasterKeys::load_or_create(f.dir.path()).unwrap())
}

fn secret(f: &Fixture, connection: &str, key: &str) -> Option<String> {
    let id = f.host.connection(connection).ok()?.id;
    let (store, keys) = open_store(f);
    store.secret_value(&keys, &id, key).unwrap().map(|z| z.as_str().to_string())
}

fn assert_nothing_stored(f: &Fixture) {
    assert!(f.host.connections().unwrap().is_empty(), "no connection left behind");
    assert_eq!(f.standin.live_access_tokens(), 0, "no token issued or kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_with_close_end_to_end() {
    let f = fixture(OAuthSwitches::default()).await;
    let out = f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap();
    assert!(out.granted_scopes.contains(&"mcp.read".to_string()), "{:?}", out.granted_scopes);
    assert!(out.granted_scopes.contains(&"offline_access".to_string()), "offline_access is advertised, so asked for");
    let org = &f.standin.dataset().organization;
    assert!(out.account.as_deref().unwrap_or("").contains(&org.name), "{:?}", out.account);

    // Exactly mcp.read (+ offline_access) was requested, with PKCE, state and resource.
    let c = f.standin.oauth_counters();
    assert_eq!(c.registrations, 1);
    assert_eq!(c.authorization_requests, 1);
    assert_eq!(c.authorization_requests_without_state, 0);
    assert_eq!(c.token_exchanges, 1);
    assert_eq!(c.requested_scopes, vec!["mcp.read offline_access".to_string()]);

    // The tokens work, and travel only sealed.
    let listing = f.host.list_tools("close").await.unwrap();
    assert_eq!(listing.tools.len(), e2e::catalog_read_tools().len());
    let v = json_of(&f.host.call_tool("close", "org_info", "{}").await.unwrap());
    assert_eq!(v["organization"]["id"], org.id);
    let access = secret(&f, "close", "access-token").expect("access token stored");
    assert!(f.standin.is_token_active(&access));
    // Each token is bound where it belongs: the access token to the MCP endpoint, the refresh token
    // to the token endpoint the endpoint's metadata named (the issuer's, not the MCP host's).
    let conn = f.host.connection("close").unwrap();
    let bindings = f.host.secret_bindings(&conn).unwrap();
    let goes_to = |name: &str| bindings.iter().find(|b| b.name == name).map(|b| b.goes_to.join("; ")).unwrap_or_default();
    assert!(goes_to("access-token").contains(&f.standin.url()), "{bindings:?}");
    assert!(goes_to("refresh-token").starts_with(&format!("POST {}/oauth2/token/", f.standin.issuer_url())), "{bindings:?}");
    assert!(!goes_to("refresh-token").contains(&f.standin.url()), "{bindings:?}");

    // A second connection to the same authorization server reuses the registration.
    f.host.connect(request(&f, "close-2", OAuthFlow::headless())).await.unwrap();
    assert_eq!(f.standin.oauth_counters().registrations, 1, "the DCR registration is reused");
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_found_only_on_the_mcp_host_is_enough_as_with_close() {
    // Close serves the authorization server's metadata from mcp.close.com although its issuer is
    // api.close.com; here the issuer's own origin answers 404 for it.
    let f = fixture(OAuthSwitches { issuer_serves_metadata: false, ..OAuthSwitches::default() }).await;
    let probe = ureq::get(&format!("{}/.well-known/oauth-authorization-server", f.standin.issuer_url())).call();
    assert!(matches!(probe, Err(ureq::Error::Status(404, _))), "the issuer serves no metadata");
    let out = f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap();
    assert!(out.granted_scopes.contains(&"mcp.read".to_string()), "{:?}", out.granted_scopes);
    let v = json_of(&f.host.call_tool("close", "org_info", "{}").await.unwrap());
    assert_eq!(v["organization"]["id"], f.standin.dataset().organization.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_flow_prints_the_url_and_completes_on_the_redirect() {
    let f = fixture(OAuthSwitches::default()).await;
    let seen = Arc::new(Mutex::new(String::new()));
    let seen2 = seen.clone();
    let flow = flow_with(Mode::Browser { open: false }, move |url| {
        *seen2.lock().unwrap() = url.to_string();
        // Play the user's browser: open the URL, follow the redirect to the loopback listener.
        let url = url.to_string();
        std::thread::spawn(move || {
            let agent = ureq_like_get(&url);
            let _ = ureq_like_get(&agent);
        });
    });
    let out = f.host.connect(request(&f, "close", flow)).await.unwrap();
    assert!(out.granted_scopes.contains(&"mcp.read".to_string()));
    let url = seen.lock().unwrap().clone();
    assert!(url.starts_with(&f.standin.authorization_endpoint()), "{url}");
    for p in ["code_challenge=", "code_challenge_method=S256", "state=", "resource=", "redirect_uri=http%3A%2F%2F127.0.0.1"] {
        assert!(url.contains(p), "{p} in {url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_with_the_wrong_state_is_refused_and_nothing_is_stored() {
    let f = fixture(OAuthSwitches::default()).await;
    let flow = flow_with(Mode::Browser { open: false }, |url| {
        let redirect = query(url, "redirect_uri");
        std::thread::spawn(move || {
            ureq_like_get(&format!("{redirect}?code=forged&state=not-the-state"));
        });
    });
    let err = f.host.connect(request(&f, "close", flow)).await.unwrap_err();
    assert!(err.to_string().contains("wrong state"), "{err}");
    assert!(err.to_string().contains("nothing was stored"), "{err}");
    assert_nothing_stored(&f);
    assert_eq!(f.standin.oauth_counters().token_exchanges, 0, "the forged code was never exchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_consent_is_a_clear_error_and_nothing_is_stored() {
    let f = fixture(OAuthSwitches { consent: ConsentMode::AutoDeny, ..OAuthSwitches::default() }).await;
    let err = f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap_err();
    assert!(err.to_string().contains("access_denied") || err.to_string().contains("denied"), "{err}");
    assert_nothing_stored(&f);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_reconnect_changes_nothing_and_the_old_grant_keeps_working() {
    let f = fixture(OAuthSwitches::default()).await;
    f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap();
    let before = f.host.connection("close").unwrap();
    f.standin.set_consent(ConsentMode::AutoDeny);
    let err = f.host.reauthorize("close", &OAuthFlow::headless(), &["mcp.write_safe".to_string()]).await.unwrap_err();
    assert!(err.to_string().contains("denied"), "{err}");
    let after = f.host.connection("close").unwrap();
    assert_eq!(after.scopes, before.scopes, "the extra scope asked for is not kept");
    assert_eq!(f.host.secret_bindings(&after).unwrap(), f.host.secret_bindings(&before).unwrap(), "the old tokens are untouched");
    let v = json_of(&f.host.call_tool("close", "org_info", "{}").await.unwrap());
    assert_eq!(v["organization"]["id"], f.standin.dataset().organization.id, "the old tokens still work");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pkce_mismatch_is_refused_by_the_server_and_nothing_is_stored() {
    let f = fixture(OAuthSwitches::default()).await;
    let dir = f.dir.path().to_path_buf();
    // Between begin and complete, replace the stored PKCE verifier (as a corrupted store would).
    let flow = flow_with(Mode::Headless, move |_| {
        let store = Store::open(&dir).unwrap();
        let keys = MasterKeys::load_or_create(&dir).unwrap();
        let id = store.connection("close").unwrap().unwrap().id;
        let wrong = e2e::claribi_host::vault::store::SecretWrite::Own("x".repeat(64));
        store.update_secrets(&keys, &id, &[("oauth-code-verifier".into(), Some(wrong))]).unwrap();
    });
    let err = f.host.connect(request(&f, "close", flow)).await.unwrap_err();
    assert!(err.to_string().to_lowercase().contains("invalid_grant") || err.to_string().contains("PKCE"), "{err}");
    assert_nothing_stored(&f);
    assert!(f.standin.oauth_counters().token_errors >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_code_is_refused_and_nothing_is_stored() {
    let f = fixture(OAuthSwitches { code_ttl_secs: 1, ..OAuthSwitches::default() }).await;
    let flow = flow_with(Mode::Browser { open: false }, |url| {
        let url = url.to_string();
        std::thread::spawn(move || {
            let location = ureq_like_get(&url);
            std::thread::sleep(Duration::from_millis(1600));
            ureq_like_get(&location);
        });
    });
    let err = f.host.connect(request(&f, "close", flow)).await.unwrap_err();
    assert!(err.to_string().contains("invalid_grant") || err.to_string().contains("expired"), "{err}");
    assert_nothing_stored(&f);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_without_mcp_read_is_the_documented_error_and_nothing_is_stored() {
    let f = fixture(OAuthSwitches { grant_without_read: true, ..OAuthSwitches::default() }).await;
    let err = f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap_err();
    assert!(matches!(err, HostError::Connector(ConnectorError::InsufficientScope { .. })), "{err:?}");
    assert_eq!(err.to_string(), INSUFFICIENT);
    assert!(f.host.connections().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_s256_is_refused_before_any_authorization_request() {
    let f = fixture(OAuthSwitches { advertise_s256: false, ..OAuthSwitches::default() }).await;
    let err = f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap_err();
    assert!(err.to_string().contains("S256"), "{err}");
    assert_nothing_stored(&f);
    assert_eq!(f.standin.oauth_counters().authorization_requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_access_tokens_are_refreshed_and_the_refresh_token_rotates() {
    let f = fixture(OAuthSwitches { access_token_ttl_secs: 1, ..OAuthSwitches::default() }).await;
    f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap();
    let r1 = secret(&f, "close", "refresh-token").unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    f.host.call_tool("close", "org_info", "{}").await.unwrap();
    assert_eq!(f.standin.oauth_counters().refreshes, 1);
    let r2 = secret(&f, "close", "refresh-token").unwrap();
    assert_ne!(r1, r2, "the refresh token rotated");
    assert!(!f.standin.is_token_active(&r1));
    assert!(f.standin.is_token_active(&r2), "the new refresh token was stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_calls_with_an_expired_token_refresh_once() {
    let f = Arc::new(fixture(OAuthSwitches { access_token_ttl_secs: 1, ..OAuthSwitches::default() }).await);
    f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap();
    for round in 1..=2u64 {
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let (a, b) = tokio::join!(
            f.host.call_tool("close", "org_info", "{}"),
            f.host.call_tool("close", "find_lead_statuses", "{}")
        );
        a.unwrap();
        b.unwrap();
        assert_eq!(f.standin.oauth_counters().refreshes, round, "single flight in round {round}");
        assert_eq!(f.standin.oauth_counters().refresh_token_reuse_detections, 0);
    }
    assert_eq!(f.standin.live_refresh_tokens(), 1, "no refresh token lost or duplicated");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reused_refresh_token_ends_in_reconnect_needed_not_a_loop() {
    let f = fixture(OAuthSwitches { access_token_ttl_secs: 1, ..OAuthSwitches::default() }).await;
    f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap();
    let (store, keys) = open_store(&f);
    let id = f.host.connection("close").unwrap().id;
    let Some(e2e::claribi_host::vault::store::StoredSecret::Credential(old)) = store.secret(&keys, &id, "refresh-token").unwrap() else {
        panic!("the refresh token is a credential")
    };
    tokio::time::sleep(Duration::from_millis(1300)).await;
    f.host.call_tool("close", "org_info", "{}").await.unwrap();
    // Put the rotated-out refresh token back (a stale backup restored, or a stolen token replayed).
    let old = e2e::claribi_host::vault::store::SecretWrite::Credential(old);
    store.update_secrets(&keys, &id, &[("refresh-token".into(), Some(old))]).unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let before = f.standin.oauth_counters().refreshes;
    let err = f.host.call_tool("close", "org_info", "{}").await.unwrap_err();
    assert!(matches!(err, HostError::Connector(ConnectorError::Unauthorized { .. })), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("reconnect"), "{err}");
    assert_eq!(f.standin.oauth_counters().refreshes - before, 1, "one refresh attempt, refused, and no retry");
    assert_eq!(f.standin.oauth_counters().refresh_token_reuse_detections, 1);
    assert_eq!(f.host.connection("close").unwrap().status.as_str(), "needs-reconnect");
    // A second call fails the same way without hammering the server.
    let token_calls = f.standin.oauth_counters().token_errors;
    let _ = f.host.call_tool("close", "org_info", "{}").await.unwrap_err();
    assert!(f.standin.oauth_counters().token_errors - token_calls <= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_grant_needs_a_reconnect_which_fixes_it() {
    let f = fixture(OAuthSwitches::default()).await;
    f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap();
    f.standin.revoke_all_grants();
    let err = f.host.call_tool("close", "org_info", "{}").await.unwrap_err();
    assert!(matches!(err, HostError::Connector(ConnectorError::Unauthorized { .. })), "{err:?}");
    assert_eq!(f.host.connection("close").unwrap().status.as_str(), "needs-reconnect");
    let out = f.host.reauthorize("close", &OAuthFlow::headless(), &[]).await.unwrap();
    assert!(out.granted_scopes.contains(&"mcp.read".to_string()));
    f.host.call_tool("close", "org_info", "{}").await.unwrap();
    assert_eq!(f.host.connection("close").unwrap().status.as_str(), "ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn disconnect_revokes_the_tokens_and_deletes_them() {
    let f = fixture(OAuthSwitches::default()).await;
    f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap();
    let refresh = secret(&f, "close", "refresh-token").unwrap();
    let access = secret(&f, "close", "access-token").unwrap();
    let id = f.host.connection("close").unwrap().id;
    let out = f.host.disconnect("close").await.unwrap();
    assert!(out.revoked, "{:?}", out.warning);
    assert!(f.standin.oauth_counters().revocations >= 1);
    assert!(!f.standin.is_token_active(&refresh));
    assert!(!f.standin.is_token_active(&access));
    assert!(f.host.store().secret_names(&id).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_never_appear_on_disk_in_clear_after_connect_calls_and_refresh() {
    let f = fixture(OAuthSwitches { access_token_ttl_secs: 1, ..OAuthSwitches::default() }).await;
    f.host.connect(request(&f, "close", OAuthFlow::headless())).await.unwrap();
    let mut tokens = vec![secret(&f, "close", "access-token").unwrap(), secret(&f, "close", "refresh-token").unwrap()];
    tokio::time::sleep(Duration::from_millis(1300)).await;
    f.host.call_tool("close", "org_info", "{}").await.unwrap();
    tokens.push(secret(&f, "close", "access-token").unwrap());
    tokens.push(secret(&f, "close", "refresh-token").unwrap());
    let verifier_like: Vec<String> = tokens.iter().filter(|t| t.len() >= 16).cloned().collect();
    assert_eq!(verifier_like.len(), 4);
    for file in walk(f.dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for t in &verifier_like {
            assert!(!bytes.windows(t.len()).any(|w| w == t.as_bytes()), "a token in clear in {}", file.display());
        }
    }
    // Nor in what the engine sees.
    let listing = serde_json::to_string(&f.host.list_tools("close").await.unwrap()).unwrap();
    let result = serde_json::to_string(&f.host.call_tool("close", "org_info", "{}").await.unwrap()).unwrap();
    for t in &verifier_like {
        assert!(!listing.contains(t.as_str()) && !result.contains(t.as_str()));
    }
    let _ = json!({});
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn query(url: &str, name: &str) -> String {
    e2e::claribi_host::oauth::redirect::query_param(url, name).unwrap_or_default()
}

/// A minimal blocking GET that does not follow redirects; returns the `Location` header (or "").
fn ureq_like_get(url: &str) -> String {
    use std::io::{Read, Write};
    let u = url::Url::parse(url).unwrap();
    let mut s = std::net::TcpStream::connect((u.host_str().unwrap(), u.port_or_known_default().unwrap())).unwrap();
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    write!(s, "GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", u.host_str().unwrap()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("location:"))
        .map(|l| l[9..].trim().to_string())
        .unwrap_or_default()
}
