//! Authentication the way Close's MCP server does it (`close-mcp.md` §2).
//!
//! * API key: `Close-API-Key: <key>` plus `Close-Scope: mcp.read | mcp.write_safe | mcp.write_destructive`
//!   (§2.2). A missing `Close-Scope` means `mcp.read` (the documented client configs default to it; Close's
//!   real behaviour is unknown); any other value is answered HTTP 400 `{"error": "invalid_scope", …}` — a
//!   stand-in guess.
//! * OAuth bearer: `Authorization: Bearer <token>`; tokens are looked up in a [`TokenTable`] that tests
//!   (and, later, the stand-in's OAuth server) fill. The token's grant carries its own scope.
//! * No or bad credentials: HTTP 401 with a JSON body in Python's `json.dumps` spacing
//!   (`{"error": "invalid_token", …}`, §2.3) and
//!   `WWW-Authenticate: Bearer error="invalid_token", error_description="…", resource_metadata="…"` — the
//!   exact header text is inferred from the MCP Python SDK (§2.3).
//! * `/.well-known/oauth-protected-resource` mirrors Close's document (§2.1) with the stand-in's base URL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

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

/// Bearer tokens the stand-in accepts, shared between the server and whoever issues tokens.
#[derive(Debug, Default)]
pub struct TokenTable {
    tokens: RwLock<HashMap<String, Grant>>,
}

impl TokenTable {
    pub fn new() -> TokenTable {
        TokenTable::default()
    }
    /// Accept `token` from now on, with `grant`.
    pub fn insert(&self, token: impl Into<String>, grant: Grant) {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.into(), grant);
    }
    /// Stop accepting `token`; returns its grant if it was known.
    pub fn remove(&self, token: &str) -> Option<Grant> {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token)
    }
    /// The grant of `token`, if it is accepted.
    pub fn validate(&self, token: &str) -> Option<Grant> {
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }
    pub fn clear(&self) {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
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
            return match cfg.tokens.validate(token) {
                Some(grant) => AuthDecision::Granted(grant),
                None => AuthDecision::Unauthorized("Invalid or expired access token"),
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

/// The RFC 9728 protected-resource metadata document.
pub(crate) fn protected_resource_metadata(base_url: &str) -> Value {
    json!({
        "resource": format!("{base_url}/"),
        "authorization_servers": [base_url],
        "scopes_supported": ["mcp.read", "mcp.write_safe", "mcp.write_destructive", "offline_access"],
        "bearer_methods_supported": ["header"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_protected_resource_document_names_the_base_url() {
        let doc = protected_resource_metadata("http://127.0.0.1:9");
        assert_eq!(doc["resource"], "http://127.0.0.1:9/");
        assert_eq!(doc["authorization_servers"], json!(["http://127.0.0.1:9"]));
        assert_eq!(doc["scopes_supported"].as_array().unwrap().len(), 4);
    }
}
