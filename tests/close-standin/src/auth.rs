//! Authentication the way Close's MCP server does it (`close-mcp.md` §2).
//!
//! * API key: `Close-API-Key: <key>` plus `Close-Scope: mcp.read | mcp.write_safe | mcp.write_destructive`
//!   (§2.2). A missing `Close-Scope` means `mcp.read` (the documented client configs default to it; Close's
//!   real behaviour is unknown); any other value is answered HTTP 400 `{"error": "invalid_scope", …}` — a
//!   stand-in guess.
//! * OAuth bearer: `Authorization: Bearer <token>`; tokens are looked up in a [`TokenTable`] that tests
//!   and the stand-in's authorization server ([`oauth`](crate::oauth)) fill. The token's grant carries its own scope.
//! * No or bad credentials: HTTP 401 with a JSON body in Python's `json.dumps` spacing
//!   (`{"error": "invalid_token", …}`, §2.3) and
//!   `WWW-Authenticate: Bearer error="invalid_token", error_description="…", resource_metadata="…"` — the
//!   exact header text is inferred from the MCP Python SDK (§2.3).
//! * A known bearer token whose grant lacks `mcp.read` (the authorization server's `grant_without_read`
//!   switch): HTTP 403 with
//!   `WWW-Authenticate: Bearer error="insufficient_scope", scope="mcp.read", error_description="…", resource_metadata="…"`,
//!   the MCP 2025-11-25 step-up shape. Close has no public evidence of 403s (§2.3); a stand-in choice.
//! * Bearer tokens may expire ([`TokenRecord::expires_at`]); an expired token is a 401 like an unknown one.
//! * The discovery documents (protected-resource and authorization-server metadata) are in
//!   [`metadata`](crate::metadata).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::catalog::Scope;

/// Header carrying the API key.
pub const API_KEY_HEADER: &str = "close-api-key";
/// Header choosing the scope of an API-key request.
pub const SCOPE_HEADER: &str = "close-scope";

/// What a request is allowed to do: decided by the auth middleware, put into the HTTP request's
/// extensions, and read back by the MCP handler through rmcp's injected `http::request::Parts`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Grant {
    pub scope: Scope,
    /// Who is calling: for API keys the key owner's `user_…` id; for bearer tokens whatever the token
    /// issuer recorded.
    pub principal: String,
}

impl Grant {
    pub fn new(scope: Scope, principal: impl Into<String>) -> Grant {
        Grant {
            scope,
            principal: principal.into(),
        }
    }
}

/// What the [`TokenTable`] knows about one bearer token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub grant: Grant,
    /// When the token stops being accepted; `None` = never.
    pub expires_at: Option<Instant>,
    /// Whether the granted scope includes `mcp.read` (every `mcp.*` scope does). A token without it is
    /// known and unexpired but answered 403 `insufficient_scope`; its `grant.scope` is then a placeholder.
    pub includes_read: bool,
    /// The organization consented to on the authorization server; `None` = the dataset's organization.
    pub organization_id: Option<String>,
}

impl TokenRecord {
    /// A token that never expires, with `mcp.read` included, for the dataset's organization.
    pub fn new(grant: Grant) -> TokenRecord {
        TokenRecord {
            grant,
            expires_at: None,
            includes_read: true,
            organization_id: None,
        }
    }

    pub fn is_expired_at(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }
}

/// The state of a bearer token at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    Active(TokenRecord),
    Expired,
    Unknown,
}

/// Bearer tokens the stand-in accepts, shared between the server and whoever issues tokens (tests, and
/// the stand-in's own authorization server, [`oauth`](crate::oauth)).
#[derive(Debug, Default)]
pub struct TokenTable {
    tokens: RwLock<HashMap<String, TokenRecord>>,
}

impl TokenTable {
    pub fn new() -> TokenTable {
        TokenTable::default()
    }
    /// Accept `token` from now on, with `grant` (no expiry).
    pub fn insert(&self, token: impl Into<String>, grant: Grant) {
        self.insert_record(token, TokenRecord::new(grant));
    }
    /// Accept `token` from now on, as `record` says.
    pub fn insert_record(&self, token: impl Into<String>, record: TokenRecord) {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.into(), record);
    }
    /// Stop accepting `token`; returns its grant if it was known.
    pub fn remove(&self, token: &str) -> Option<Grant> {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token)
            .map(|r| r.grant)
    }
    /// The grant of `token`, if it is accepted for MCP requests (known, unexpired, `mcp.read` included).
    pub fn validate(&self, token: &str) -> Option<Grant> {
        match self.lookup(token) {
            TokenStatus::Active(r) if r.includes_read => Some(r.grant),
            _ => None,
        }
    }
    /// Whether `token` is known and unexpired, and what it carries.
    pub fn lookup(&self, token: &str) -> TokenStatus {
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        match tokens.get(token) {
            None => TokenStatus::Unknown,
            Some(r) if r.is_expired_at(Instant::now()) => TokenStatus::Expired,
            Some(r) => TokenStatus::Active(r.clone()),
        }
    }
    /// Take `mcp.read` away from every access token issued so far (as if the user narrowed clariBI's
    /// access in Close): each then answers 403 `insufficient_scope`. Returns how many changed.
    pub fn drop_read_scope_all(&self) -> usize {
        let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for r in tokens.values_mut().filter(|r| r.includes_read) {
            r.includes_read = false;
            n += 1;
        }
        n
    }
    pub fn clear(&self) {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
    /// Number of tokens in the table, expired ones included.
    pub fn len(&self) -> usize {
        self.tokens.read().unwrap_or_else(|e| e.into_inner()).len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Inputs of the authentication decision.
#[derive(Clone, Debug)]
pub(crate) struct AuthConfig {
    pub api_keys: Vec<String>,
    /// Principal recorded for API-key requests (the key owner).
    pub api_key_principal: String,
    pub tokens: Arc<TokenTable>,
}

/// Outcome of authenticating one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthDecision {
    Granted(Grant),
    /// 401 with this `error_description`.
    Unauthorized(&'static str),
    /// 400 `invalid_scope` for this `Close-Scope` value.
    InvalidScope(String),
    /// A known, unexpired bearer token whose grant lacks `mcp.read`: 403 `insufficient_scope` (the
    /// grant is a placeholder for the requests that are let through, see `server.rs`).
    InsufficientScope(Grant),
}

pub(crate) fn authenticate(headers: &HeaderMap, cfg: &AuthConfig) -> AuthDecision {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let Ok(auth) = auth.to_str() else {
            return AuthDecision::Unauthorized("Malformed Authorization header");
        };
        let mut parts = auth.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or_default();
        let token = parts.next().unwrap_or_default().trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            if token.is_empty() {
                return AuthDecision::Unauthorized("Empty bearer token");
            }
            return match cfg.tokens.lookup(token) {
                TokenStatus::Active(r) if r.includes_read => AuthDecision::Granted(r.grant),
                TokenStatus::Active(r) => AuthDecision::InsufficientScope(r.grant),
                TokenStatus::Expired => AuthDecision::Unauthorized("The access token expired"),
                TokenStatus::Unknown => {
                    AuthDecision::Unauthorized("Invalid or expired access token")
                }
            };
        }
        if headers.get(API_KEY_HEADER).is_none() {
            return AuthDecision::Unauthorized(
                "Unsupported authorization scheme; use Bearer or Close-API-Key",
            );
        }
    }
    let Some(key) = headers.get(API_KEY_HEADER) else {
        return AuthDecision::Unauthorized(
            "Missing credentials: send Authorization: Bearer or Close-API-Key",
        );
    };
    let valid = key
        .to_str()
        .map(|k| cfg.api_keys.iter().any(|known| known == k.trim()))
        .unwrap_or(false);
    if !valid {
        return AuthDecision::Unauthorized("Invalid API key");
    }
    let scope = match headers.get(SCOPE_HEADER) {
        None => Scope::Read,
        Some(v) => {
            let text = String::from_utf8_lossy(v.as_bytes()).into_owned();
            match Scope::parse(&text) {
                Some(s) => s,
                None => return AuthDecision::InvalidScope(text),
            }
        }
    };
    AuthDecision::Granted(Grant {
        scope,
        principal: cfg.api_key_principal.clone(),
    })
}

/// Serialises flat string pairs like Python's `json.dumps` (`{"a": "b", "c": "d"}`).
pub(crate) fn python_json(pairs: &[(&str, &str)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}: {}", Value::from(*k), Value::from(*v)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// URL of the protected-resource metadata for `base_url` (no trailing slash).
pub(crate) fn resource_metadata_url(base_url: &str) -> String {
    format!("{base_url}/.well-known/oauth-protected-resource")
}

/// HTTP 401 as Close answers it.
pub(crate) fn unauthorized_response(description: &str, base_url: &str) -> Response {
    let challenge = format!(
        "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{}\"",
        description.replace('"', "'"),
        resource_metadata_url(base_url)
    );
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        python_json(&[
            ("error", "invalid_token"),
            ("error_description", description),
        ]),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// HTTP 400 for a `Close-Scope` value that is not one of the three scopes.
pub(crate) fn invalid_scope_response(value: &str) -> Response {
    let description = format!(
        "Close-Scope must be one of mcp.read, mcp.write_safe, mcp.write_destructive (got '{}')",
        crate::catalog::truncate(value, 60)
    );
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        python_json(&[
            ("error", "invalid_scope"),
            ("error_description", &description),
        ]),
    )
        .into_response()
}

/// The token of an `Authorization: Bearer …` header, if there is one.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The organization the request's bearer token was consented for, if the token says.
pub(crate) fn organization_of(headers: &HeaderMap, tokens: &TokenTable) -> Option<String> {
    match tokens.lookup(bearer_token(headers)?) {
        TokenStatus::Active(r) => r.organization_id,
        _ => None,
    }
}

/// HTTP 403 for a token whose grant lacks `mcp.read`: the MCP 2025-11-25 step-up shape (Close has no
/// public evidence of answering 403, `close-mcp.md` §2.3; the body follows the MCP Python SDK).
pub(crate) fn insufficient_scope_response(base_url: &str) -> Response {
    let description = "The access token does not grant mcp.read";
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"mcp.read\", error_description=\"{description}\", resource_metadata=\"{}\"",
        resource_metadata_url(base_url)
    );
    let mut response = (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        python_json(&[
            ("error", "insufficient_scope"),
            ("error_description", description),
        ]),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// Serialises any JSON value with Python's `json.dumps` separators (`", "` and `": "`).
pub(crate) fn python_json_value(value: &Value) -> String {
    struct PythonFormatter;
    impl serde_json::ser::Formatter for PythonFormatter {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                writer.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                writer.write_all(b", ")
            }
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
        ) -> std::io::Result<()> {
            writer.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    match serde::Serialize::serialize(value, &mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_else(|_| value.to_string()),
        Err(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> AuthConfig {
        let tokens = Arc::new(TokenTable::new());
        tokens.insert("tok-write", Grant::new(Scope::WriteSafe, "user_oauth"));
        AuthConfig {
            api_keys: vec!["key-1".into()],
            api_key_principal: "user_owner".into(),
            tokens,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn an_api_key_without_a_scope_header_gets_read_scope() {
        assert_eq!(
            authenticate(&headers(&[("close-api-key", "key-1")]), &cfg()),
            AuthDecision::Granted(Grant::new(Scope::Read, "user_owner"))
        );
    }

    #[test]
    fn the_scope_header_chooses_the_scope() {
        let d = authenticate(
            &headers(&[
                ("close-api-key", "key-1"),
                ("close-scope", "mcp.write_destructive"),
            ]),
            &cfg(),
        );
        assert_eq!(
            d,
            AuthDecision::Granted(Grant::new(Scope::WriteDestructive, "user_owner"))
        );
    }

    #[test]
    fn an_unknown_scope_is_an_invalid_scope_error() {
        let d = authenticate(
            &headers(&[
                ("close-api-key", "key-1"),
                ("close-scope", "mcp.everything"),
            ]),
            &cfg(),
        );
        assert_eq!(d, AuthDecision::InvalidScope("mcp.everything".into()));
    }

    #[test]
    fn missing_or_wrong_credentials_are_unauthorized() {
        assert!(matches!(
            authenticate(&HeaderMap::new(), &cfg()),
            AuthDecision::Unauthorized(_)
        ));
        assert!(matches!(
            authenticate(&headers(&[("close-api-key", "nope")]), &cfg()),
            AuthDecision::Unauthorized(_)
        ));
        assert!(matches!(
            authenticate(&headers(&[("authorization", "Bearer nope")]), &cfg()),
            AuthDecision::Unauthorized(_)
        ));
        assert!(matches!(
            authenticate(&headers(&[("authorization", "Basic a2V5LTE6")]), &cfg()),
            AuthDecision::Unauthorized(_)
        ));
    }

    #[test]
    fn bearer_tokens_come_from_the_token_table() {
        let c = cfg();
        assert_eq!(
            authenticate(&headers(&[("authorization", "Bearer tok-write")]), &c),
            AuthDecision::Granted(Grant::new(Scope::WriteSafe, "user_oauth"))
        );
        c.tokens.remove("tok-write");
        assert!(matches!(
            authenticate(&headers(&[("authorization", "Bearer tok-write")]), &c),
            AuthDecision::Unauthorized(_)
        ));
    }

    #[test]
    fn error_bodies_use_python_json_spacing() {
        assert_eq!(
            python_json(&[("error", "invalid_token"), ("x", "a\"b")]),
            r#"{"error": "invalid_token", "x": "a\"b"}"#
        );
    }

    #[test]
    fn any_json_value_can_use_python_spacing() {
        let v = json!({"a": [1, 2], "b": {"c": "d"}});
        assert_eq!(python_json_value(&v), r#"{"a": [1, 2], "b": {"c": "d"}}"#);
    }

    #[test]
    fn expired_tokens_are_unauthorized_and_tokens_without_read_lack_scope() {
        let c = cfg();
        let past = Instant::now();
        c.tokens.insert_record(
            "tok-old",
            TokenRecord {
                expires_at: Some(past),
                ..TokenRecord::new(Grant::new(Scope::Read, "user_oauth"))
            },
        );
        c.tokens.insert_record(
            "tok-offline",
            TokenRecord {
                includes_read: false,
                organization_id: Some("orga_x".into()),
                ..TokenRecord::new(Grant::new(Scope::Read, "user_oauth"))
            },
        );
        assert_eq!(
            authenticate(&headers(&[("authorization", "Bearer tok-old")]), &c),
            AuthDecision::Unauthorized("The access token expired")
        );
        assert_eq!(c.tokens.validate("tok-old"), None);
        assert_eq!(
            authenticate(&headers(&[("authorization", "Bearer tok-offline")]), &c),
            AuthDecision::InsufficientScope(Grant::new(Scope::Read, "user_oauth"))
        );
        assert_eq!(c.tokens.validate("tok-offline"), None);
        assert_eq!(
            organization_of(
                &headers(&[("authorization", "bearer  tok-offline")]),
                &c.tokens
            ),
            Some("orga_x".into())
        );
        assert_eq!(
            organization_of(
                &headers(&[("authorization", "Bearer tok-write")]),
                &c.tokens
            ),
            None
        );
    }

    #[test]
    fn the_insufficient_scope_answer_is_a_403_step_up_challenge() {
        let r = insufficient_scope_response("http://127.0.0.1:9");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let challenge = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"mcp.read\""),
            "{challenge}"
        );
        assert!(
            challenge.ends_with(
                "resource_metadata=\"http://127.0.0.1:9/.well-known/oauth-protected-resource\""
            ),
            "{challenge}"
        );
    }
}
