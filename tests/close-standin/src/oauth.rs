//! The authorization server: Close's OAuth 2.1 for MCP, on a second origin playing api.close.com and
//! app.close.com (`close-mcp.md` §2.1; the client side is `mcp-client-brief.md` §4).
//!
//! What Close does (audited): the MCP host's protected-resource metadata names the authorization server
//! `https://api.close.com`, a different origin from `https://mcp.close.com`; clients register dynamically
//! (RFC 7591) as public clients (`token_endpoint_auth_method: none`, no secret, `scope` = every scope in the
//! answer); grants are authorization code (PKCE S256) and refresh token; the scopes are `mcp.read` ⊂
//! `mcp.write_safe` ⊂ `mcp.write_destructive`, plus `offline_access`; on the consent screen the user picks
//! an organization and the scope. Close's REST OAuth answers tokens with `user_id`, `organization_id` and
//! `scope` next to the usual fields, and its refresh tokens rotate.
//!
//! What the stand-in adds where Close is unknown (each a guess, chosen to be strict the way OAuth 2.1 and
//! the MCP 2025-11-25 profile allow, so that client mistakes show up):
//! * **Registration**: `redirect_uris` required (see [`crate::redirect_uri`]);
//!   `token_endpoint_auth_method` other than `none` refused (omitted is replaced by `none`, which RFC 7591
//!   §3.2.1 permits); `grant_types` ⊆ {authorization_code, refresh_token} (default both, as in Close's
//!   example), `response_types` ⊆ {code}; errors are 400 `invalid_redirect_uri` / `invalid_client_metadata`.
//!   A client that registers without `refresh_token` gets no refresh tokens and `unauthorized_client` on
//!   the refresh grant.
//! * **Authorization** (GET): a missing or unknown `client_id`, or a `redirect_uri` that is not registered,
//!   is a 400 HTML page — never a redirect. Everything else is an error redirect carrying `state` and `iss`
//!   (RFC 9207): `response_type` ≠ code → `unsupported_response_type`; no `code_challenge`, or a method other
//!   than S256 (absent means plain, RFC 7636 §4.3) → `invalid_request`; `resource` absent (while the
//!   `resource_required` switch is on) or not the protected resource's identifier → `invalid_target`;
//!   unknown scope values → `invalid_scope`. An omitted or empty `scope` means `mcp.read`. `state` is optional
//!   (RFC 6749) but counted when missing. Redirect URI matching follows RFC 8252 §7.3.
//! * **Consent**: a switch ([`ConsentMode`]); the page offers the dataset's organization and a second one,
//!   "Northwind Sandbox", which exists only here and has no records (tokens for it read an empty
//!   organization). The page may narrow the access level, never widen it.
//! * **Codes**: single use, bound to the client, redirect URI, code challenge, resource, scope and
//!   organization; they expire after `code_ttl_secs`. A second use is `invalid_grant` and revokes every
//!   token issued from the code (RFC 6749 §4.1.2). A code is spent by its first presentation, whatever the
//!   outcome.
//! * **Tokens**: opaque random strings. `expires_in` = `access_token_ttl_secs`. A refresh token is issued
//!   only when `offline_access` was granted. Every refresh rotates the refresh token; presenting a rotated
//!   one is reuse: `invalid_grant`, and the whole grant (every access and refresh token descending from the
//!   same code) is revoked. A refresh may narrow the scope of the new access token (RFC 6749 §6); the new
//!   refresh token keeps the original grant. Errors are RFC 6749 §5.2 JSON, always HTTP 400.
//! * **Revocation** (RFC 7009, invented path): 200 for every well-formed request, known token or not;
//!   revoking a refresh token revokes its grant, revoking an access token revokes that token only.
//!
//! Issued access tokens go into the shared [`TokenTable`] with their [`Grant`] (the highest `mcp.*` scope
//! granted, the user), expiry, organization and whether `mcp.read` is included; the MCP endpoint
//! authenticates from that table alone.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::auth::{Grant, TokenRecord, TokenStatus, TokenTable};
use crate::catalog::Scope;
use crate::metadata::AUTHORIZE_PATH;
use crate::redirect_uri;
use crate::switches::{ConsentMode, Counters, OAuthCounters, OAuthCountersSnapshot, OAuthSwitches};

/// Name of the second organization offered on the consent page (it has no data).
pub const SANDBOX_ORGANIZATION_NAME: &str = "Northwind Sandbox";
/// The scope that yields refresh tokens.
pub const OFFLINE_ACCESS: &str = "offline_access";
/// How long a consent page can be answered.
const PENDING_CONSENT_TTL: Duration = Duration::from_secs(600);
/// How long a spent or expired code is remembered (for reuse detection).
const CODE_MEMORY: Duration = Duration::from_secs(3600);
const MAX_CLIENTS: usize = 10_000;
const MAX_REDIRECT_URIS: usize = 20;

/// `scopes_supported` of both metadata documents.
pub(crate) fn scopes_supported(offline_access: bool) -> Vec<&'static str> {
    let mut scopes: Vec<&'static str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    if offline_access {
        scopes.push(OFFLINE_ACCESS);
    }
    scopes
}

/// `s` on one line (control characters become spaces), at most `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::catalog::truncate(&flat, max)
}

// ---------------------------------------------------------------------------------------------------
// Scopes, PKCE, random values, parameters, errors
// ---------------------------------------------------------------------------------------------------

/// A validated set of scope values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScopeSet {
    /// The `mcp.*` values named, sorted, without duplicates.
    mcp: Vec<Scope>,
    offline: bool,
}

impl ScopeSet {
    /// Parses a space-separated `scope` parameter; the error names the first unknown value.
    pub(crate) fn parse(text: &str, offline_supported: bool) -> Result<ScopeSet, String> {
        let mut set = ScopeSet::default();
        for value in text.split(' ').filter(|v| !v.is_empty()) {
            if value == OFFLINE_ACCESS && offline_supported {
                set.offline = true;
            } else if let Some(scope) = Scope::parse(value).filter(|_| value.trim() == value) {
                if !set.mcp.contains(&scope) {
                    set.mcp.push(scope);
                }
            } else {
                return Err(format!(
                    "unknown scope '{}' (supported: {})",
                    one_line(value, 60),
                    scopes_supported(offline_supported).join(" ")
                ));
            }
        }
        set.mcp.sort();
        Ok(set)
    }

    fn read() -> ScopeSet {
        ScopeSet {
            mcp: vec![Scope::Read],
            offline: false,
        }
    }

    /// What `grant_without_read` grants: `offline_access` alone (nothing if it is not supported).
    fn offline_only(offline_supported: bool) -> ScopeSet {
        ScopeSet {
            mcp: vec![],
            offline: offline_supported,
        }
    }

    /// The widest `mcp.*` scope named (they nest), if any.
    pub(crate) fn highest(&self) -> Option<Scope> {
        self.mcp.iter().max().copied()
    }

    /// Is every value of `self` covered by `granted` (nesting included)?
    fn within(&self, granted: &ScopeSet) -> bool {
        let mcp_ok = match (self.highest(), granted.highest()) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(want), Some(have)) => have.includes(want),
        };
        mcp_ok && (!self.offline || granted.offline)
    }

    /// The same set with its `mcp.*` part replaced by `level`.
    fn with_level(&self, level: Scope) -> ScopeSet {
        ScopeSet {
            mcp: vec![level],
            offline: self.offline,
        }
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut values: Vec<&str> = self.mcp.iter().map(|s| s.as_str()).collect();
        if self.offline {
            values.push(OFFLINE_ACCESS);
        }
        f.write_str(&values.join(" "))
    }
}

/// `BASE64URL(SHA256(verifier))` without padding (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// 43–128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1, also the shape of an S256 challenge).
fn is_pkce_text(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

const PKCE_SHAPE: &str = "43-128 characters of A-Z a-z 0-9 - . _ ~";

/// `prefix_` followed by 43 random URL-safe characters.
pub(crate) fn random_token(prefix: &str) -> String {
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 32];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No OS randomness: still unique and unpredictable enough for a local stand-in.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let mut x = nanos ^ FALLBACK.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        for chunk in bytes.chunks_mut(8) {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes()[..chunk.len()]);
        }
    }
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Form or query parameters, in order, duplicates kept (so that they can be refused).
#[derive(Clone, Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a request body or a query string).
    pub(crate) fn parse(text: &[u8]) -> Params {
        Params(
            form_urlencoded::parse(text)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The parameter's value; an error if it appears more than once (RFC 6749 §3.1, §3.2).
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, String> {
        let mut found = self.0.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(format!("parameter '{name}' appears more than once"));
        }
        Ok(first)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Params(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// An OAuth error: the `error` code and a one-line `error_description`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            error,
            description: one_line(&description.into(), 300),
        }
    }
    /// The RFC 6749 §5.2 / RFC 7591 §3.2.2 body.
    pub fn to_json(&self) -> Value {
        json!({ "error": self.error, "error_description": self.description })
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

fn invalid_request(description: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_request", description)
}
fn invalid_grant(description: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_grant", description)
}
fn invalid_client(description: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_client", description)
}
fn invalid_client_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_client_metadata", description)
}
fn invalid_redirect_uri(description: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_redirect_uri", description)
}

// ---------------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------------

/// An organization the user can consent for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentOrganization {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug)]
struct Client {
    id: String,
    name: Option<String>,
    redirect_uris: Vec<String>,
    refresh_allowed: bool,
}

/// A validated authorization request.
#[derive(Clone, Debug)]
struct AuthRequest {
    client_id: String,
    /// Where to redirect (the requested URI, or the only registered one when none was given).
    redirect_uri: String,
    /// The `redirect_uri` parameter as sent; the token request must repeat it exactly.
    redirect_uri_param: Option<String>,
    code_challenge: String,
    resource: Option<String>,
    scope: ScopeSet,
    state: Option<String>,
}

struct PendingConsent {
    request: AuthRequest,
    expires_at: Instant,
}

struct Code {
    request: AuthRequest,
    organization_id: String,
    issued_at: Instant,
    expires_at: Option<Instant>,
    used: bool,
    /// The grant created by exchanging the code.
    family: Option<u64>,
}

/// A grant: everything issued from one authorization code.
struct Family {
    client_id: String,
    scope: ScopeSet,
    organization_id: String,
    access_tokens: Vec<String>,
    current_refresh: Option<String>,
    revoked: bool,
}

struct AccessInfo {
    family: u64,
    scope: String,
}

#[derive(Default)]
struct State {
    clients: HashMap<String, Client>,
    pending: HashMap<String, PendingConsent>,
    codes: HashMap<String, Code>,
    families: HashMap<u64, Family>,
    next_family: u64,
    /// Every refresh token ever issued (rotated ones too, for reuse detection) → its grant.
    refresh_tokens: HashMap<String, u64>,
    access_tokens: HashMap<String, AccessInfo>,
}

/// Which kind of token [`IssuedToken`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// What the authorization server knows about a token it issued (for tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    pub kind: TokenKind,
    pub client_id: String,
    /// The granted scope, space-separated (for an access token: its own scope).
    pub scope: String,
    pub organization_id: String,
    pub user_id: String,
    /// Still usable: an access token unexpired and unrevoked; a refresh token the current one of an
    /// unrevoked grant.
    pub active: bool,
}

/// What the authorization endpoint answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthorizeOutcome {
    /// 302 to this location; `error` tells whether it carries an OAuth error.
    Redirect { location: String, error: bool },
    /// 400 HTML page with this one-line message (no usable client or redirect URI).
    ErrorPage(String),
    /// 200 HTML consent page.
    Consent(ConsentRequest),
}

impl AuthorizeOutcome {
    fn is_error(&self) -> bool {
        matches!(
            self,
            AuthorizeOutcome::ErrorPage(_) | AuthorizeOutcome::Redirect { error: true, .. }
        )
    }
}

/// Everything the consent page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConsentRequest {
    pub request_id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uri: String,
    pub resource: String,
    pub scope: ScopeSet,
    pub organizations: Vec<ConsentOrganization>,
    /// Where the form posts.
    pub action: String,
}

// ---------------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------------

/// The authorization server's state, switches and counters (the HTTP side is `issuer.rs`).
pub(crate) struct AuthorizationServer {
    issuer: String,
    /// The protected resource's identifier (`http://127.0.0.1:P/`).
    resource: String,
    /// The consenting user (the dataset's first user, like the API key's owner).
    user_id: String,
    /// The dataset's organization first, then the sandbox.
    organizations: Vec<ConsentOrganization>,
    tokens: Arc<TokenTable>,
    switches: RwLock<OAuthSwitches>,
    counters: OAuthCounters,
    state: Mutex<State>,
}

impl AuthorizationServer {
    pub(crate) fn new(
        issuer: String,
        resource: String,
        user_id: String,
        organizations: Vec<ConsentOrganization>,
        tokens: Arc<TokenTable>,
        switches: OAuthSwitches,
    ) -> AuthorizationServer {
        AuthorizationServer {
            issuer,
            resource,
            user_id,
            organizations,
            tokens,
            switches: RwLock::new(switches),
            counters: OAuthCounters::default(),
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }
    pub(crate) fn organizations(&self) -> &[ConsentOrganization] {
        &self.organizations
    }
    pub(crate) fn switches(&self) -> OAuthSwitches {
        self.switches
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    pub(crate) fn update_switches(&self, f: impl FnOnce(&mut OAuthSwitches)) {
        f(&mut self.switches.write().unwrap_or_else(|e| e.into_inner()));
    }
    pub(crate) fn counters(&self) -> OAuthCountersSnapshot {
        self.counters.snapshot()
    }
    pub(crate) fn reset_counters(&self) {
        self.counters.reset();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn main_organization(&self) -> String {
        self.organizations
            .first()
            .map(|o| o.id.clone())
            .unwrap_or_default()
    }

    /// Checks a `resource` parameter; the error is the `invalid_target` description.
    fn check_resource(
        &self,
        given: Option<&str>,
        switches: &OAuthSwitches,
    ) -> Result<Option<String>, String> {
        match given {
            None if switches.resource_required => Err(format!(
                "resource is required (RFC 8707); use '{}'",
                self.resource
            )),
            None => Ok(None),
            Some(r) if r == self.resource => Ok(Some(r.to_string())),
            Some(r) => Err(format!(
                "resource '{}' is not this server; use '{}'",
                one_line(r, 80),
                self.resource
            )),
        }
    }

    // ---- registration ----------------------------------------------------------------------------

    /// Dynamic client registration (RFC 7591): the 201 body, or the 400 error.
    pub(crate) fn register(&self, body: &[u8]) -> Result<Value, OAuthError> {
        let result = self.register_client(body);
        Counters::bump(match result {
            Ok(_) => &self.counters.registrations,
            Err(_) => &self.counters.registrations_rejected,
        });
        result
    }

    fn register_client(&self, body: &[u8]) -> Result<Value, OAuthError> {
        let Ok(Value::Object(mut meta)) = serde_json::from_slice::<Value>(body) else {
            return Err(invalid_client_metadata(
                "the registration request must be a JSON object",
            ));
        };
        let redirect_uris: Vec<String> = match meta.get("redirect_uris") {
            Some(Value::Array(items)) if !items.is_empty() => {
                if items.len() > MAX_REDIRECT_URIS {
                    return Err(invalid_redirect_uri(format!(
                        "at most {MAX_REDIRECT_URIS} redirect URIs can be registered"
                    )));
                }
                let mut uris = Vec::new();
                for item in items {
                    let Some(uri) = item.as_str() else {
                        return Err(invalid_redirect_uri(
                            "redirect_uris must be an array of strings",
                        ));
                    };
                    redirect_uri::validate_for_registration(uri).map_err(invalid_redirect_uri)?;
                    uris.push(uri.to_string());
                }
                uris
            }
            None | Some(Value::Array(_)) | Some(Value::Null) => {
                return Err(invalid_redirect_uri(
                    "redirect_uris must list at least one redirect URI",
                ))
            }
            Some(_) => {
                return Err(invalid_redirect_uri(
                    "redirect_uris must be an array of strings",
                ))
            }
        };
        match meta.get("token_endpoint_auth_method") {
            None | Some(Value::Null) => {}
            Some(Value::String(m)) if m == "none" => {}
            Some(Value::String(m)) => {
                return Err(invalid_client_metadata(format!(
                    "token_endpoint_auth_method '{}' is not supported; register a public client with 'none'",
                    one_line(m, 40)
                )))
            }
            Some(_) => {
                return Err(invalid_client_metadata(
                    "token_endpoint_auth_method must be a string",
                ))
            }
        }
        let grant_types = string_list(
            &meta,
            "grant_types",
            &["authorization_code", "refresh_token"],
            &["authorization_code", "refresh_token"],
        )?;
        if !grant_types.iter().any(|g| g == "authorization_code") {
            return Err(invalid_client_metadata(
                "grant_types must include authorization_code",
            ));
        }
        let response_types = string_list(&meta, "response_types", &["code"], &["code"])?;
        let name = match meta.get("client_name") {
            None | Some(Value::Null) => None,
            Some(Value::String(n)) => Some(one_line(n, 100)),
            Some(_) => return Err(invalid_client_metadata("client_name must be a string")),
        };
        match meta.get("application_type") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if t == "native" || t == "web" => {}
            Some(_) => {
                return Err(invalid_client_metadata(
                    "application_type must be 'native' or 'web'",
                ))
            }
        }
        if !matches!(
            meta.get("scope"),
            None | Some(Value::Null) | Some(Value::String(_))
        ) {
            return Err(invalid_client_metadata("scope must be a string"));
        }

        let client = Client {
            id: random_token("oa2client"),
            name,
            redirect_uris: redirect_uris.clone(),
            refresh_allowed: grant_types.iter().any(|g| g == "refresh_token"),
        };
        {
            let mut st = self.state();
            if st.clients.len() >= MAX_CLIENTS {
                return Err(invalid_client_metadata(
                    "too many clients are registered with this stand-in",
                ));
            }
            st.clients.insert(client.id.clone(), client.clone());
        }
        let issued_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        meta.remove("client_secret");
        meta.remove("client_secret_expires_at");
        meta.insert("client_id".into(), json!(client.id));
        meta.insert("client_id_issued_at".into(), json!(issued_at));
        meta.insert("redirect_uris".into(), json!(redirect_uris));
        meta.insert("token_endpoint_auth_method".into(), json!("none"));
        meta.insert("grant_types".into(), json!(grant_types));
        meta.insert("response_types".into(), json!(response_types));
        meta.insert(
            "scope".into(),
            json!(scopes_supported(self.switches().offline_access_supported).join(" ")),
        );
        Ok(Value::Object(meta))
    }

    // ---- authorization ---------------------------------------------------------------------------

    /// The authorization endpoint (GET).
    pub(crate) fn authorize(&self, query: &Params) -> AuthorizeOutcome {
        Counters::bump(&self.counters.authorization_requests);
        self.counters
            .record_scope(query.get("scope").ok().flatten());
        if !matches!(query.get("state"), Ok(Some(_))) {
            Counters::bump(&self.counters.authorization_requests_without_state);
        }
        let outcome = self.authorization_request(query);
        if outcome.is_error() {
            Counters::bump(&self.counters.authorization_errors);
        }
        outcome
    }

    fn authorization_request(&self, query: &Params) -> AuthorizeOutcome {
        let switches = self.switches();
        let client_id = match query.get("client_id") {
            Err(e) => return AuthorizeOutcome::ErrorPage(e),
            Ok(None) => return AuthorizeOutcome::ErrorPage("client_id is missing".into()),
            Ok(Some(id)) => id,
        };
        let Some(client) = self.state().clients.get(client_id).cloned() else {
            return AuthorizeOutcome::ErrorPage(format!(
                "client_id '{}' is not registered",
                one_line(client_id, 80)
            ));
        };
        let redirect_param = match query.get("redirect_uri") {
            Err(e) => return AuthorizeOutcome::ErrorPage(e),
            Ok(r) => r,
        };
        let redirect_uri = match redirect_param {
            Some(r)
                if client
                    .redirect_uris
                    .iter()
                    .any(|reg| redirect_uri::matches(reg, r)) =>
            {
                r.to_string()
            }
            Some(r) => {
                return AuthorizeOutcome::ErrorPage(format!(
                    "redirect_uri '{}' is not registered for this client",
                    one_line(r, 80)
                ))
            }
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => {
                return AuthorizeOutcome::ErrorPage(
                    "redirect_uri is required: the client registered several".into(),
                )
            }
        };
        let state = match query.get("state") {
            Ok(s) => s.map(str::to_string),
            Err(e) => return self.error_redirect(&redirect_uri, None, "invalid_request", &e),
        };
        let fail = |error: &'static str, description: &str| {
            self.error_redirect(&redirect_uri, state.as_deref(), error, description)
        };
        let params = [
            "response_type",
            "code_challenge",
            "code_challenge_method",
            "resource",
            "scope",
        ]
        .map(|name| query.get(name));
        if let Some(Err(e)) = params.iter().find(|p| p.is_err()) {
            return fail("invalid_request", e);
        }
        let [response_type, challenge, method, resource, scope] = params.map(|p| p.ok().flatten());
        match response_type {
            None => return fail("invalid_request", "response_type is missing"),
            Some("code") => {}
            Some(other) => {
                return fail(
                    "unsupported_response_type",
                    &format!(
                        "response_type '{}' is not supported; use code",
                        one_line(other, 40)
                    ),
                )
            }
        }
        if !switches.advertise_s256 {
            return fail(
                "invalid_request",
                &format!(
                    "code_challenge_method '{}' is not supported by this server",
                    one_line(method.unwrap_or("plain"), 40)
                ),
            );
        }
        let Some(challenge) = challenge else {
            return fail("invalid_request", "code_challenge is required (PKCE S256)");
        };
        match method {
            Some("S256") => {}
            None | Some("plain") => {
                return fail(
                    "invalid_request",
                    "code_challenge_method must be S256 (plain is not accepted)",
                )
            }
            Some(other) => {
                return fail(
                    "invalid_request",
                    &format!(
                        "code_challenge_method '{}' is not supported; use S256",
                        one_line(other, 40)
                    ),
                )
            }
        }
        if !is_pkce_text(challenge) {
            return fail(
                "invalid_request",
                &format!("code_challenge must be {PKCE_SHAPE}"),
            );
        }
        let resource = match self.check_resource(resource, &switches) {
            Ok(r) => r,
            Err(e) => return fail("invalid_target", &e),
        };
        let scope = match scope.map(str::trim) {
            None | Some("") => ScopeSet::read(),
            Some(text) => match ScopeSet::parse(text, switches.offline_access_supported) {
                Ok(s) => s,
                Err(e) => return fail("invalid_scope", &e),
            },
        };
        let request = AuthRequest {
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.clone(),
            redirect_uri_param: redirect_param.map(str::to_string),
            code_challenge: challenge.to_string(),
            resource,
            scope,
            state: state.clone(),
        };
        match switches.consent {
            ConsentMode::AutoApprove => {
                self.issue_code(request, self.main_organization(), &switches)
            }
            ConsentMode::AutoDeny => {
                fail("access_denied", "the user denied the authorization request")
            }
            ConsentMode::Page => {
                let request_id = random_token("consent");
                let page = ConsentRequest {
                    request_id: request_id.clone(),
                    client_id: client.id.clone(),
                    client_name: client.name.clone(),
                    redirect_uri: redirect_uri.clone(),
                    resource: self.resource.clone(),
                    scope: request.scope.clone(),
                    organizations: self.organizations.clone(),
                    action: format!("{}{AUTHORIZE_PATH}", self.issuer),
                };
                let now = Instant::now();
                let mut st = self.state();
                st.pending.retain(|_, p| p.expires_at > now);
                st.pending.insert(
                    request_id,
                    PendingConsent {
                        request,
                        expires_at: now.checked_add(PENDING_CONSENT_TTL).unwrap_or(now),
                    },
                );
                AuthorizeOutcome::Consent(page)
            }
        }
    }

    /// The consent page's form (POST): `request_id`, `decision` (approve | deny), `organization_id`
    /// (default: the dataset's organization), `access_level` (optional, at most the requested scope).
    pub(crate) fn decide(&self, form: &Params) -> AuthorizeOutcome {
        Counters::bump(&self.counters.consent_decisions);
        let outcome = self.consent_decision(form);
        if outcome.is_error() {
            Counters::bump(&self.counters.authorization_errors);
        }
        outcome
    }

    fn consent_decision(&self, form: &Params) -> AuthorizeOutcome {
        let page = AuthorizeOutcome::ErrorPage;
        let params = ["request_id", "decision", "organization_id", "access_level"]
            .map(|name| form.get(name));
        if let Some(Err(e)) = params.iter().find(|p| p.is_err()) {
            return page(e.clone());
        }
        let [request_id, decision, organization, level] = params.map(|p| p.ok().flatten());
        let Some(request_id) = request_id else {
            return page("request_id is missing".into());
        };
        let mut request = {
            let now = Instant::now();
            let st = self.state();
            match st.pending.get(request_id) {
                Some(p) if p.expires_at > now => p.request.clone(),
                _ => {
                    return page(
                        "this consent request is unknown, expired or already answered".into(),
                    )
                }
            }
        };
        let approve = match decision {
            Some("approve") => true,
            Some("deny") => false,
            _ => return page("decision must be approve or deny".into()),
        };
        let organization_id = match organization {
            None => self.main_organization(),
            Some(id) if self.organizations.iter().any(|o| o.id == id) => id.to_string(),
            Some(id) => {
                return page(format!(
                    "organization_id '{}' is not one of the user's organizations",
                    one_line(id, 80)
                ))
            }
        };
        if let Some(level) = level {
            let Some(level) = Scope::parse(level) else {
                return page(format!("unknown access level '{}'", one_line(level, 40)));
            };
            if !request.scope.highest().is_some_and(|h| h.includes(level)) {
                return page(format!(
                    "access level {level} exceeds the requested scope '{}'",
                    request.scope
                ));
            }
            request.scope = request.scope.with_level(level);
        }
        self.state().pending.remove(request_id);
        if approve {
            self.issue_code(request, organization_id, &self.switches())
        } else {
            self.error_redirect(
                &request.redirect_uri,
                request.state.as_deref(),
                "access_denied",
                "the user denied access on the consent page",
            )
        }
    }

    fn issue_code(
        &self,
        request: AuthRequest,
        organization_id: String,
        switches: &OAuthSwitches,
    ) -> AuthorizeOutcome {
        let code = random_token("ac");
        let now = Instant::now();
        let redirect_uri = request.redirect_uri.clone();
        let state = request.state.clone();
        {
            let mut st = self.state();
            let remembered = |t: Instant| t.checked_add(CODE_MEMORY).is_none_or(|t| t > now);
            st.codes
                .retain(|_, c| remembered(c.issued_at) || c.expires_at.is_none_or(remembered));
            st.codes.insert(
                code.clone(),
                Code {
                    request,
                    organization_id,
                    issued_at: now,
                    expires_at: now.checked_add(Duration::from_secs(switches.code_ttl_secs)),
                    used: false,
                    family: None,
                },
            );
        }
        Counters::bump(&self.counters.codes_issued);
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = state.as_deref() {
            pairs.push(("state", s));
        }
        pairs.push(("iss", self.issuer.as_str()));
        match with_query(&redirect_uri, &pairs) {
            Some(location) => AuthorizeOutcome::Redirect {
                location,
                error: false,
            },
            None => AuthorizeOutcome::ErrorPage("the redirect URI cannot be used".into()),
        }
    }

    fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &str,
        description: &str,
    ) -> AuthorizeOutcome {
        let description = one_line(description, 300);
        let mut pairs = vec![
            ("error", error),
            ("error_description", description.as_str()),
        ];
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", self.issuer.as_str()));
        match with_query(redirect_uri, &pairs) {
            Some(location) => AuthorizeOutcome::Redirect {
                location,
                error: true,
            },
            None => AuthorizeOutcome::ErrorPage(format!("{error}: {description}")),
        }
    }

    // ---- token endpoint --------------------------------------------------------------------------

    /// The token endpoint. `basic` is the client id and secret of an `Authorization: Basic` header.
    pub(crate) fn token(
        &self,
        form: &Params,
        basic: Option<(String, String)>,
    ) -> Result<Value, OAuthError> {
        let grant_type = form.get("grant_type");
        match grant_type {
            Ok(Some("authorization_code")) => Counters::bump(&self.counters.token_exchanges),
            Ok(Some("refresh_token")) => Counters::bump(&self.counters.refreshes),
            _ => {}
        }
        let result = grant_type
            .map_err(invalid_request)
            .and_then(|grant_type| self.token_request(grant_type, form, basic));
        if result.is_err() {
            Counters::bump(&self.counters.token_errors);
        }
        result
    }

    fn token_request(
        &self,
        grant_type: Option<&str>,
        form: &Params,
        basic: Option<(String, String)>,
    ) -> Result<Value, OAuthError> {
        let Some(grant_type) = grant_type else {
            return Err(invalid_request("grant_type is missing"));
        };
        let client = self.client_of(form, basic)?;
        match grant_type {
            "authorization_code" => self.exchange_code(&client, form),
            "refresh_token" => self.refresh(&client, form),
            other => Err(OAuthError::new(
                "unsupported_grant_type",
                format!(
                    "grant_type '{}' is not supported; use authorization_code or refresh_token",
                    one_line(other, 40)
                ),
            )),
        }
    }

    /// The public client named by the request (body `client_id`, or the user of a Basic header with an
    /// empty secret).
    fn client_of(
        &self,
        form: &Params,
        basic: Option<(String, String)>,
    ) -> Result<Client, OAuthError> {
        let body_id = form.get("client_id").map_err(invalid_request)?;
        let body_secret = form.get("client_secret").map_err(invalid_request)?;
        if body_secret.is_some_and(|s| !s.is_empty())
            || basic.as_ref().is_some_and(|(_, s)| !s.is_empty())
        {
            return Err(invalid_client(
                "public clients have no client_secret; send client_id alone",
            ));
        }
        let id = match (body_id, basic.as_ref().map(|(id, _)| id.as_str())) {
            (Some(a), Some(b)) if a != b => {
                return Err(invalid_request(
                    "client_id differs between the body and the Authorization header",
                ))
            }
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => {
                return Err(invalid_client(
                    "client_id is missing (public clients send it in the request body)",
                ))
            }
        };
        self.state().clients.get(id).cloned().ok_or_else(|| {
            invalid_client(format!(
                "client_id '{}' is not registered",
                one_line(id, 80)
            ))
        })
    }

    fn exchange_code(&self, client: &Client, form: &Params) -> Result<Value, OAuthError> {
        let code = form
            .get("code")
            .map_err(invalid_request)?
            .ok_or_else(|| invalid_request("code is missing"))?;
        let redirect_uri = form.get("redirect_uri").map_err(invalid_request)?;
        let verifier = form.get("code_verifier").map_err(invalid_request)?;
        let resource = form.get("resource").map_err(invalid_request)?;
        let switches = self.switches();
        let now = Instant::now();
        let mut st = self.state();
        let Some(record) = st.codes.get_mut(code) else {
            return Err(invalid_grant("the authorization code is unknown"));
        };
        if record.used {
            let family = record.family;
            Counters::bump(&self.counters.code_reuse_detections);
            if let Some(family) = family {
                self.revoke_family(&mut st, family);
            }
            return Err(invalid_grant(
                "the authorization code was already used; the tokens issued from it are revoked",
            ));
        }
        record.used = true;
        let request = record.request.clone();
        let organization_id = record.organization_id.clone();
        if request.client_id != client.id {
            return Err(invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        if record.expires_at.is_some_and(|e| now >= e) {
            return Err(invalid_grant("the authorization code expired"));
        }
        if redirect_uri != request.redirect_uri_param.as_deref() {
            return Err(invalid_grant(match &request.redirect_uri_param {
                Some(_) => "redirect_uri differs from the one in the authorization request",
                None => "redirect_uri was not in the authorization request, so it must be omitted",
            }));
        }
        let resource = self
            .check_resource(resource, &switches)
            .map_err(|e| OAuthError::new("invalid_target", e))?;
        if let (Some(bound), Some(given)) = (&request.resource, &resource) {
            if bound != given {
                return Err(OAuthError::new(
                    "invalid_target",
                    "resource differs from the one in the authorization request",
                ));
            }
        }
        let Some(verifier) = verifier else {
            return Err(invalid_grant("code_verifier is missing (PKCE)"));
        };
        if !is_pkce_text(verifier) {
            return Err(invalid_grant(format!("code_verifier must be {PKCE_SHAPE}")));
        }
        if s256_challenge(verifier) != request.code_challenge {
            return Err(invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let scope = if switches.grant_without_read {
            ScopeSet::offline_only(switches.offline_access_supported)
        } else {
            request.scope.clone()
        };
        let family = st.next_family;
        st.next_family += 1;
        st.families.insert(
            family,
            Family {
                client_id: client.id.clone(),
                scope,
                organization_id,
                access_tokens: Vec::new(),
                current_refresh: None,
                revoked: false,
            },
        );
        if let Some(record) = st.codes.get_mut(code) {
            record.family = Some(family);
        }
        self.issue_tokens(&mut st, family, None, client, &switches)
    }

    fn refresh(&self, client: &Client, form: &Params) -> Result<Value, OAuthError> {
        let token = form
            .get("refresh_token")
            .map_err(invalid_request)?
            .ok_or_else(|| invalid_request("refresh_token is missing"))?;
        let scope = form.get("scope").map_err(invalid_request)?;
        let resource = form.get("resource").map_err(invalid_request)?;
        if !client.refresh_allowed {
            return Err(OAuthError::new(
                "unauthorized_client",
                "this client did not register the refresh_token grant",
            ));
        }
        let switches = self.switches();
        let mut st = self.state();
        let Some(&family_id) = st.refresh_tokens.get(token) else {
            return Err(invalid_grant("the refresh token is unknown"));
        };
        let Some(family) = st.families.get(&family_id) else {
            return Err(invalid_grant("the refresh token is unknown"));
        };
        if family.client_id != client.id {
            return Err(invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        if family.revoked {
            return Err(invalid_grant("the refresh token was revoked"));
        }
        if family.current_refresh.as_deref() != Some(token) {
            Counters::bump(&self.counters.refresh_token_reuse_detections);
            self.revoke_family(&mut st, family_id);
            return Err(invalid_grant(
                "the refresh token was already used (rotated); every token of this grant is revoked",
            ));
        }
        self.check_resource(resource, &switches)
            .map_err(|e| OAuthError::new("invalid_target", e))?;
        let narrowed = match scope.map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let wanted =
                    ScopeSet::parse(text, true).map_err(|e| OAuthError::new("invalid_scope", e))?;
                if !wanted.within(&family.scope) {
                    return Err(OAuthError::new(
                        "invalid_scope",
                        format!(
                            "scope '{wanted}' exceeds the granted scope '{}'",
                            family.scope
                        ),
                    ));
                }
                Some(wanted)
            }
        };
        self.issue_tokens(&mut st, family_id, narrowed, client, &switches)
    }

    /// Issues an access token (and a rotated refresh token when the grant has `offline_access`) for a
    /// grant; the token response.
    fn issue_tokens(
        &self,
        st: &mut State,
        family_id: u64,
        narrowed: Option<ScopeSet>,
        client: &Client,
        switches: &OAuthSwitches,
    ) -> Result<Value, OAuthError> {
        let State {
            families,
            refresh_tokens,
            access_tokens,
            ..
        } = st;
        let Some(family) = families.get_mut(&family_id) else {
            return Err(OAuthError::new("server_error", "the grant disappeared"));
        };
        let scope = if switches.grant_without_read {
            ScopeSet::offline_only(family.scope.offline)
        } else {
            narrowed.unwrap_or_else(|| family.scope.clone())
        };
        let access = random_token("at");
        let ttl = switches.access_token_ttl_secs;
        self.tokens.insert_record(
            access.clone(),
            TokenRecord {
                grant: Grant::new(scope.highest().unwrap_or(Scope::Read), self.user_id.clone()),
                expires_at: Instant::now().checked_add(Duration::from_secs(ttl)),
                includes_read: scope.highest().is_some(),
                organization_id: Some(family.organization_id.clone()),
            },
        );
        family.access_tokens.push(access.clone());
        access_tokens.insert(
            access.clone(),
            AccessInfo {
                family: family_id,
                scope: scope.to_string(),
            },
        );
        let refresh = (family.scope.offline && client.refresh_allowed).then(|| random_token("rt"));
        family.current_refresh = refresh.clone();
        let mut body = Map::new();
        body.insert("access_token".into(), json!(access));
        body.insert("token_type".into(), json!("Bearer"));
        body.insert("expires_in".into(), json!(ttl));
        if let Some(refresh) = refresh {
            refresh_tokens.insert(refresh.clone(), family_id);
            body.insert("refresh_token".into(), json!(refresh));
        }
        body.insert("scope".into(), json!(scope.to_string()));
        body.insert("organization_id".into(), json!(family.organization_id));
        body.insert("user_id".into(), json!(self.user_id));
        Ok(Value::Object(body))
    }

    /// Revokes a grant: its access tokens leave the token table, its refresh token dies. Returns
    /// whether it was live.
    fn revoke_family(&self, st: &mut State, family_id: u64) -> bool {
        let Some(family) = st.families.get_mut(&family_id) else {
            return false;
        };
        let was_live = !family.revoked;
        family.revoked = true;
        family.current_refresh = None;
        for token in &family.access_tokens {
            self.tokens.remove(token);
        }
        was_live
    }

    // ---- revocation ------------------------------------------------------------------------------

    /// The revocation endpoint (RFC 7009). Unknown tokens, and tokens of another client, are ignored.
    pub(crate) fn revoke(
        &self,
        form: &Params,
        basic: Option<(String, String)>,
    ) -> Result<(), OAuthError> {
        let token = form
            .get("token")
            .map_err(invalid_request)?
            .ok_or_else(|| invalid_request("token is missing"))?;
        form.get("token_type_hint").map_err(invalid_request)?;
        let client_id = form
            .get("client_id")
            .map_err(invalid_request)?
            .map(str::to_string)
            .or(basic.map(|(id, _)| id));
        Counters::bump(&self.counters.revocations);
        let mut st = self.state();
        let found = match st.refresh_tokens.get(token) {
            Some(&family) => Some((family, true)),
            None => st.access_tokens.get(token).map(|a| (a.family, false)),
        };
        let Some((family_id, is_refresh)) = found else {
            return Ok(());
        };
        let same_client = st
            .families
            .get(&family_id)
            .is_some_and(|f| client_id.as_deref().is_none_or(|c| c == f.client_id));
        if same_client {
            if is_refresh {
                self.revoke_family(&mut st, family_id);
            } else {
                self.tokens.remove(token);
            }
        }
        Ok(())
    }

    /// The user revokes the app: every grant dies, unexchanged codes and open consent pages too.
    /// Returns how many live grants were revoked.
    pub(crate) fn revoke_all(&self) -> usize {
        let mut st = self.state();
        let ids: Vec<u64> = st.families.keys().copied().collect();
        let revoked = ids
            .into_iter()
            .filter(|&id| self.revoke_family(&mut st, id))
            .count();
        for code in st.codes.values_mut() {
            code.used = true;
        }
        st.pending.clear();
        revoked
    }

    // ---- for tests -------------------------------------------------------------------------------

    pub(crate) fn registered_clients(&self) -> usize {
        self.state().clients.len()
    }

    pub(crate) fn live_refresh_tokens(&self) -> usize {
        self.state()
            .families
            .values()
            .filter(|f| !f.revoked && f.current_refresh.is_some())
            .count()
    }

    pub(crate) fn live_access_tokens(&self) -> usize {
        self.state()
            .access_tokens
            .keys()
            .filter(|t| matches!(self.tokens.lookup(t), TokenStatus::Active(_)))
            .count()
    }

    pub(crate) fn token_info(&self, token: &str) -> Option<IssuedToken> {
        let st = self.state();
        let describe =
            |family: &Family, kind: TokenKind, scope: String, active: bool| IssuedToken {
                kind,
                client_id: family.client_id.clone(),
                scope,
                organization_id: family.organization_id.clone(),
                user_id: self.user_id.clone(),
                active,
            };
        if let Some(family) = st
            .refresh_tokens
            .get(token)
            .and_then(|f| st.families.get(f))
        {
            let active = !family.revoked && family.current_refresh.as_deref() == Some(token);
            return Some(describe(
                family,
                TokenKind::Refresh,
                family.scope.to_string(),
                active,
            ));
        }
        let info = st.access_tokens.get(token)?;
        let family = st.families.get(&info.family)?;
        let active = matches!(self.tokens.lookup(token), TokenStatus::Active(_));
        Some(describe(
            family,
            TokenKind::Access,
            info.scope.clone(),
            active,
        ))
    }
}

/// A `string_list` metadata field: absent → `default`; present → a non-empty array of `allowed` values.
fn string_list(
    meta: &Map<String, Value>,
    field: &str,
    default: &[&str],
    allowed: &[&str],
) -> Result<Vec<String>, OAuthError> {
    let items = match meta.get(field) {
        None | Some(Value::Null) => return Ok(default.iter().map(|s| s.to_string()).collect()),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(_) => {
            return Err(invalid_client_metadata(format!(
                "{field} must be a non-empty array of strings"
            )))
        }
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        match item.as_str() {
            Some(v) if allowed.contains(&v) => {
                if !out.iter().any(|o| o == v) {
                    out.push(v.to_string());
                }
            }
            Some(v) => {
                return Err(invalid_client_metadata(format!(
                    "{field} value '{}' is not supported (supported: {})",
                    one_line(v, 40),
                    allowed.join(", ")
                )))
            }
            None => {
                return Err(invalid_client_metadata(format!(
                    "{field} must be a non-empty array of strings"
                )))
            }
        }
    }
    Ok(out)
}

/// `uri` with `pairs` appended to its query (`None` if it does not parse).
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
    }
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K2PXQhAt2xd5Mu6qkL6WW2LrzQ";
    const REDIRECT: &str = "http://127.0.0.1:5555/callback";
    const RESOURCE: &str = "http://127.0.0.1:9/";

    fn server() -> AuthorizationServer {
        AuthorizationServer::new(
            "http://127.0.0.1:10".into(),
            RESOURCE.into(),
            "user_1".into(),
            vec![
                ConsentOrganization {
                    id: "orga_main".into(),
                    name: "Northwind Analytics".into(),
                },
                ConsentOrganization {
                    id: "orga_sandbox".into(),
                    name: SANDBOX_ORGANIZATION_NAME.into(),
                },
            ],
            Arc::new(TokenTable::new()),
            OAuthSwitches::default(),
        )
    }

    fn register(s: &AuthorizationServer, body: Value) -> Result<Value, OAuthError> {
        s.register(body.to_string().as_bytes())
    }

    fn client(s: &AuthorizationServer) -> String {
        let c = register(
            s,
            json!({"client_name": "t", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
        )
        .unwrap();
        c["client_id"].as_str().unwrap().to_string()
    }

    fn authorize_query(client: &str, extra: &[(&str, &str)]) -> Params {
        let challenge = s256_challenge(VERIFIER);
        let mut pairs: Vec<(String, String)> = vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), client.into()),
            ("redirect_uri".into(), REDIRECT.into()),
            ("code_challenge".into(), challenge),
            ("code_challenge_method".into(), "S256".into()),
            ("state".into(), "st-1".into()),
            ("resource".into(), RESOURCE.into()),
            ("scope".into(), "mcp.read offline_access".into()),
        ];
        for (k, v) in extra {
            pairs.retain(|(name, _)| name != k);
            if !v.is_empty() {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        pairs.into_iter().collect()
    }

    /// The query of a redirect, and whether it was an error.
    fn redirect(outcome: AuthorizeOutcome) -> HashMap<String, String> {
        let AuthorizeOutcome::Redirect { location, .. } = outcome else {
            panic!("not a redirect: {outcome:?}");
        };
        let url = url::Url::parse(&location).unwrap();
        assert_eq!(url.path(), "/callback");
        url.query_pairs().into_owned().collect()
    }

    fn code_for(s: &AuthorizationServer, client: &str) -> String {
        redirect(s.authorize(&authorize_query(client, &[])))["code"].clone()
    }

    fn exchange(s: &AuthorizationServer, client: &str, code: &str) -> Result<Value, OAuthError> {
        let form: Params = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", RESOURCE),
        ]
        .into_iter()
        .collect();
        s.token(&form, None)
    }

    fn refresh(s: &AuthorizationServer, client: &str, token: &str) -> Result<Value, OAuthError> {
        let form: Params = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client),
            ("resource", RESOURCE),
        ]
        .into_iter()
        .collect();
        s.token(&form, None)
    }

    #[test]
    fn scope_sets_parse_in_canonical_order_and_nest() {
        let s = ScopeSet::parse("offline_access  mcp.write_safe mcp.read", true).unwrap();
        assert_eq!(s.to_string(), "mcp.read mcp.write_safe offline_access");
        assert_eq!(s.highest(), Some(Scope::WriteSafe));
        assert!(ScopeSet::parse("mcp.read", true).unwrap().within(&s));
        assert!(!ScopeSet::parse("mcp.write_destructive", true)
            .unwrap()
            .within(&s));
        assert!(!s.within(&ScopeSet::parse("mcp.write_safe", true).unwrap()));
        assert!(ScopeSet::parse("mcp.admin", true)
            .unwrap_err()
            .contains("'mcp.admin'"));
        assert!(ScopeSet::parse("offline_access", false).is_err());
    }

    #[test]
    fn pkce_s256_matches_an_independent_computation_and_checks_the_shape() {
        // python3: base64.urlsafe_b64encode(hashlib.sha256(VERIFIER).digest()).rstrip(b'=')
        assert_eq!(
            s256_challenge(VERIFIER),
            "ADgbzTUF86QmWeX_mnhZCaQVDYEjlX_HYK0TzZhUxMo"
        );
        assert!(is_pkce_text(VERIFIER));
        assert!(!is_pkce_text("short"));
        assert!(!is_pkce_text(&format!("{VERIFIER}+")));
        assert!(!is_pkce_text(&"a".repeat(129)));
    }

    #[test]
    fn duplicate_parameters_are_refused() {
        let p = Params::parse(b"a=1&b=2&a=3");
        assert_eq!(p.get("b"), Ok(Some("2")));
        assert_eq!(p.get("c"), Ok(None));
        assert!(p.get("a").is_err());
    }

    #[test]
    fn random_tokens_are_prefixed_and_distinct() {
        let a = random_token("at");
        assert!(a.starts_with("at_") && a.len() == 3 + 43, "{a}");
        assert_ne!(a, random_token("at"));
    }

    #[test]
    fn registration_accepts_public_clients_and_echoes_close_like_metadata() {
        let s = server();
        let c = register(
            &s,
            json!({"client_name": "clariBI", "redirect_uris": [REDIRECT], "application_type": "native",
                   "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}),
        )
        .unwrap();
        assert!(c["client_id"].as_str().unwrap().starts_with("oa2client_"));
        assert!(c.get("client_secret").is_none());
        assert_eq!(c["token_endpoint_auth_method"], "none");
        assert_eq!(c["client_name"], "clariBI");
        assert_eq!(
            c["scope"],
            "mcp.read mcp.write_safe mcp.write_destructive offline_access"
        );
        assert_eq!(s.registered_clients(), 1);
        assert_eq!(s.counters().registrations, 1);
    }

    #[test]
    fn registration_errors_name_the_problem() {
        let s = server();
        let cases = [
            (json!([1]), "invalid_client_metadata"),
            (json!({}), "invalid_redirect_uri"),
            (
                json!({"redirect_uris": "http://127.0.0.1/cb"}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["http://evil.example/cb"]}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": [REDIRECT], "grant_types": ["refresh_token"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": [REDIRECT], "application_type": "tv"}),
                "invalid_client_metadata",
            ),
        ];
        for (body, error) in cases {
            let e = register(&s, body.clone()).unwrap_err();
            assert_eq!(e.error, error, "{body}: {e}");
            assert!(!e.description.contains('\n'));
        }
        assert!(s.register(b"\xff not json").is_err());
        assert_eq!(s.counters().registrations_rejected, 10);
        assert_eq!(s.registered_clients(), 0);
    }

    #[test]
    fn unusable_clients_and_redirect_uris_get_an_error_page_not_a_redirect() {
        let s = server();
        let c = client(&s);
        for query in [
            authorize_query("oa2client_nope", &[]),
            authorize_query(&c, &[("client_id", "")]),
            authorize_query(&c, &[("redirect_uri", "http://127.0.0.1:5555/other")]),
            authorize_query(&c, &[("redirect_uri", "http://localhost:5555/callback")]),
        ] {
            assert!(matches!(
                s.authorize(&query),
                AuthorizeOutcome::ErrorPage(_)
            ));
        }
        assert_eq!(s.counters().authorization_errors, 4);
    }

    #[test]
    fn bad_authorization_requests_redirect_with_an_error_state_and_iss() {
        let s = server();
        let c = client(&s);
        let cases: [(&[(&str, &str)], &str); 8] = [
            (&[("response_type", "token")], "unsupported_response_type"),
            (&[("code_challenge", "")], "invalid_request"),
            (&[("code_challenge_method", "plain")], "invalid_request"),
            (&[("code_challenge_method", "")], "invalid_request"),
            (&[("resource", "http://127.0.0.1:9/mcp")], "invalid_target"),
            (&[("resource", "")], "invalid_target"),
            (&[("scope", "mcp.admin")], "invalid_scope"),
            (&[("code_challenge", "too-short")], "invalid_request"),
        ];
        for (extra, error) in cases {
            let q = redirect(s.authorize(&authorize_query(&c, extra)));
            assert_eq!(q["error"], error, "{extra:?}");
            assert_eq!(q["state"], "st-1");
            assert_eq!(q["iss"], "http://127.0.0.1:10");
            assert!(!q.contains_key("code"));
        }
    }

    #[test]
    fn a_loopback_redirect_uri_may_change_its_port() {
        let s = server();
        let c = client(&s);
        let q = redirect(s.authorize(&authorize_query(
            &c,
            &[("redirect_uri", "http://127.0.0.1:6000/callback")],
        )));
        assert!(q.contains_key("code"));
    }

    #[test]
    fn a_code_is_exchanged_once_and_its_reuse_revokes_the_tokens() {
        let s = server();
        let c = client(&s);
        let code = code_for(&s, &c);
        let t = exchange(&s, &c, &code).unwrap();
        assert_eq!(t["token_type"], "Bearer");
        assert_eq!(t["scope"], "mcp.read offline_access");
        assert_eq!(t["organization_id"], "orga_main");
        assert_eq!(t["user_id"], "user_1");
        let access = t["access_token"].as_str().unwrap();
        assert!(matches!(s.tokens.lookup(access), TokenStatus::Active(_)));
        let again = exchange(&s, &c, &code).unwrap_err();
        assert_eq!(again.error, "invalid_grant");
        assert_eq!(s.tokens.lookup(access), TokenStatus::Unknown);
        assert_eq!(s.live_refresh_tokens(), 0);
        assert_eq!(s.counters().code_reuse_detections, 1);
    }

    #[test]
    fn the_token_request_must_repeat_the_authorization_request() {
        let s = server();
        let c = client(&s);
        let other = client(&s);
        let base = |code: &str| -> Vec<(String, String)> {
            [
                ("grant_type", "authorization_code"),
                ("code", code),
                ("client_id", c.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("resource", RESOURCE),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let cases: [(&str, &str, &str); 6] = [
            ("code_verifier", "x".repeat(43).leak(), "invalid_grant"),
            ("code_verifier", "", "invalid_grant"),
            (
                "redirect_uri",
                "http://127.0.0.1:5555/other",
                "invalid_grant",
            ),
            ("client_id", other.clone().leak(), "invalid_grant"),
            ("resource", "http://127.0.0.1:9", "invalid_target"),
            ("client_id", "", "invalid_client"),
        ];
        for (name, value, error) in cases {
            let code = code_for(&s, &c);
            let mut form = base(&code);
            form.retain(|(k, _)| k != name);
            if !value.is_empty() {
                form.push((name.to_string(), value.to_string()));
            }
            let e = s.token(&form.into_iter().collect(), None).unwrap_err();
            assert_eq!(e.error, error, "{name}={value}: {e}");
        }
        let e = s
            .token(&Params::parse(b"grant_type=password"), None)
            .unwrap_err();
        assert_eq!(e.error, "invalid_client");
        let e = s
            .token(
                &Params::parse(format!("grant_type=password&client_id={c}").as_bytes()),
                None,
            )
            .unwrap_err();
        assert_eq!(e.error, "unsupported_grant_type");
        assert_eq!(s.tokens.len(), 0);
    }

    #[test]
    fn expired_codes_are_invalid_grants() {
        let s = server();
        s.update_switches(|sw| sw.code_ttl_secs = 0);
        let c = client(&s);
        let code = code_for(&s, &c);
        let e = exchange(&s, &c, &code).unwrap_err();
        assert_eq!(
            (e.error, e.description.as_str()),
            ("invalid_grant", "the authorization code expired")
        );
    }

    #[test]
    fn refresh_tokens_rotate_and_reuse_revokes_the_grant() {
        let s = server();
        let c = client(&s);
        let first = exchange(&s, &c, &code_for(&s, &c)).unwrap();
        let rt1 = first["refresh_token"].as_str().unwrap().to_string();
        let second = refresh(&s, &c, &rt1).unwrap();
        let rt2 = second["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(rt1, rt2);
        assert_eq!(s.token_info(&rt1).map(|i| i.active), Some(false));
        assert_eq!(s.token_info(&rt2).map(|i| i.active), Some(true));
        assert_eq!(s.live_access_tokens(), 2);
        let reuse = refresh(&s, &c, &rt1).unwrap_err();
        assert_eq!(reuse.error, "invalid_grant");
        assert_eq!(refresh(&s, &c, &rt2).unwrap_err().error, "invalid_grant");
        assert_eq!(s.live_access_tokens(), 0);
        assert_eq!(s.live_refresh_tokens(), 0);
        assert_eq!(s.counters().refresh_token_reuse_detections, 1);
        assert_eq!(s.counters().refreshes, 3);
    }

    #[test]
    fn a_refresh_may_narrow_but_not_widen_the_scope() {
        let s = server();
        let c = client(&s);
        let q = redirect(s.authorize(&authorize_query(
            &c,
            &[("scope", "mcp.write_safe offline_access")],
        )));
        let t = exchange(&s, &c, &q["code"]).unwrap();
        let rt = t["refresh_token"].as_str().unwrap();
        let mut form = Params::parse(
            format!("grant_type=refresh_token&client_id={c}&resource={RESOURCE}&scope=mcp.write_destructive&refresh_token={rt}").as_bytes(),
        );
        assert_eq!(s.token(&form, None).unwrap_err().error, "invalid_scope");
        form = Params::parse(
            format!("grant_type=refresh_token&client_id={c}&resource={RESOURCE}&scope=mcp.read&refresh_token={rt}").as_bytes(),
        );
        let narrowed = s.token(&form, None).unwrap();
        assert_eq!(narrowed["scope"], "mcp.read");
        let new_rt = narrowed["refresh_token"].as_str().unwrap();
        assert_eq!(
            s.token_info(new_rt).map(|i| i.scope),
            Some("mcp.write_safe offline_access".to_string())
        );
    }

    #[test]
    fn without_offline_access_there_is_no_refresh_token() {
        let s = server();
        let c = client(&s);
        let q = redirect(s.authorize(&authorize_query(&c, &[("scope", "mcp.read")])));
        let t = exchange(&s, &c, &q["code"]).unwrap();
        assert!(t.get("refresh_token").is_none());
        assert_eq!(t["scope"], "mcp.read");
        let q = redirect(s.authorize(&authorize_query(&c, &[("scope", "")])));
        assert_eq!(exchange(&s, &c, &q["code"]).unwrap()["scope"], "mcp.read");
    }

    #[test]
    fn grant_without_read_grants_offline_access_only() {
        let s = server();
        s.update_switches(|sw| sw.grant_without_read = true);
        let c = client(&s);
        let t = exchange(&s, &c, &code_for(&s, &c)).unwrap();
        assert_eq!(t["scope"], "offline_access");
        let access = t["access_token"].as_str().unwrap();
        assert!(matches!(s.tokens.lookup(access), TokenStatus::Active(r) if !r.includes_read));
        assert!(t["refresh_token"].is_string());
    }

    #[test]
    fn the_consent_form_picks_the_organization_and_may_narrow_the_level() {
        let s = server();
        s.update_switches(|sw| sw.consent = ConsentMode::Page);
        let c = client(&s);
        let AuthorizeOutcome::Consent(page) =
            s.authorize(&authorize_query(&c, &[("scope", "mcp.write_safe")]))
        else {
            panic!("no consent page");
        };
        assert_eq!(page.organizations.len(), 2);
        let wide = Params::parse(
            format!(
                "request_id={}&decision=approve&access_level=mcp.write_destructive",
                page.request_id
            )
            .as_bytes(),
        );
        assert!(matches!(s.decide(&wide), AuthorizeOutcome::ErrorPage(_)));
        let form = Params::parse(
            format!(
                "request_id={}&decision=approve&organization_id=orga_sandbox&access_level=mcp.read",
                page.request_id
            )
            .as_bytes(),
        );
        let q = redirect(s.decide(&form));
        assert_eq!(q["state"], "st-1");
        let t = exchange(&s, &c, &q["code"]).unwrap();
        assert_eq!(t["organization_id"], "orga_sandbox");
        assert_eq!(t["scope"], "mcp.read");
        assert!(
            matches!(s.decide(&form), AuthorizeOutcome::ErrorPage(_)),
            "single use"
        );
    }

    #[test]
    fn revocation_of_a_refresh_token_kills_its_grant_and_unknown_tokens_are_fine() {
        let s = server();
        let c = client(&s);
        let t = exchange(&s, &c, &code_for(&s, &c)).unwrap();
        let access = t["access_token"].as_str().unwrap();
        let rt = t["refresh_token"].as_str().unwrap();
        assert_eq!(s.revoke(&Params::parse(b"token=unknown"), None), Ok(()));
        let other_client = Params::parse(format!("token={rt}&client_id=someone_else").as_bytes());
        assert_eq!(s.revoke(&other_client, None), Ok(()));
        assert_eq!(s.live_refresh_tokens(), 1);
        assert_eq!(
            s.revoke(&Params::parse(format!("token={rt}").as_bytes()), None),
            Ok(())
        );
        assert_eq!(s.tokens.lookup(access), TokenStatus::Unknown);
        assert_eq!(s.live_refresh_tokens(), 0);
        assert_eq!(
            s.revoke(&Params::parse(b"token_type_hint=x"), None)
                .unwrap_err()
                .error,
            "invalid_request"
        );
        assert_eq!(s.counters().revocations, 3);
    }

    #[test]
    fn revoking_everything_kills_every_grant_and_pending_code() {
        let s = server();
        let c = client(&s);
        exchange(&s, &c, &code_for(&s, &c)).unwrap();
        exchange(&s, &c, &code_for(&s, &c)).unwrap();
        let pending = code_for(&s, &c);
        assert_eq!(s.revoke_all(), 2);
        assert_eq!(s.live_access_tokens() + s.live_refresh_tokens(), 0);
        assert_eq!(
            exchange(&s, &c, &pending).unwrap_err().error,
            "invalid_grant"
        );
        assert_eq!(s.revoke_all(), 0);
    }

    #[test]
    fn hostile_parameters_never_panic_and_give_one_line_errors() {
        let s = server();
        let c = client(&s);
        let nasty = ["\n", "\u{0}", "%", "é", &"x".repeat(5000), "a b\r\nc"];
        for value in nasty {
            for name in [
                "client_id",
                "redirect_uri",
                "scope",
                "resource",
                "state",
                "code_challenge",
            ] {
                let _ = s.authorize(&authorize_query(&c, &[(name, value)]));
            }
            for grant in ["authorization_code", "refresh_token", value] {
                let form: Params = [
                    ("grant_type", grant),
                    ("client_id", c.as_str()),
                    ("code", value),
                    ("refresh_token", value),
                    ("scope", value),
                    ("resource", value),
                ]
                .into_iter()
                .collect();
                if let Err(e) = s.token(&form, Some((value.into(), String::new()))) {
                    assert!(
                        !e.description.contains('\n') && e.description.chars().count() <= 301,
                        "{e}"
                    );
                }
            }
            let _ = s.decide(
                &[("request_id", value), ("decision", value)]
                    .into_iter()
                    .collect(),
            );
            let _ = s.revoke(&[("token", value)].into_iter().collect(), None);
        }
    }
}
