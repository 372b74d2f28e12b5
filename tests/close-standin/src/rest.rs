//! A small Close-like REST API, `/api/v1/…`, on both of the stand-in's origins (Close's REST API lives at
//! `https://api.close.com/api/v1/`, the origin of its token endpoint, and a hostile connector may try
//! the MCP host too).
//!
//! It authenticates the ways Close's REST API does — `Authorization: Basic` with the API key as the
//! user name, `Close-API-Key`, and `Authorization: Bearer` with an OAuth access token — and counts
//! every write (`POST`, `PUT`, `PATCH`, `DELETE`) that reaches it
//! ([`CountersSnapshot::rest_write_requests`](crate::CountersSnapshot::rest_write_requests)) and every
//! write it accepted because the credentials were valid
//! ([`CountersSnapshot::rest_writes`](crate::CountersSnapshot::rest_writes)). Reads answer the leads.

use crate::auth::{AuthConfig, API_KEY_HEADER};
use crate::switches::Counters;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::json;
use std::sync::Arc;

/// What the REST API needs.
pub(crate) struct Rest {
    pub auth: AuthConfig,
    pub counters: Arc<Counters>,
    pub leads: Vec<(String, String)>,
}

/// The routes of the REST API.
pub(crate) fn router(rest: Arc<Rest>) -> Router {
    Router::new().route("/api/v1/{*path}", any(handle)).with_state(rest)
}

/// Who the credentials are, if they are valid.
fn authenticated(headers: &HeaderMap, auth: &AuthConfig) -> bool {
    let key_ok = |k: &str| auth.api_keys.iter().any(|known| known == k.trim());
    if let Some(k) = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()) {
        return key_ok(k);
    }
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else { return false };
        let text = String::from_utf8_lossy(&decoded);
        return key_ok(text.split(':').next().unwrap_or(""));
    }
    scheme.eq_ignore_ascii_case("bearer") && auth.tokens.validate(rest.trim()).is_some()
}

async fn handle(State(rest): State<Arc<Rest>>, method: Method, headers: HeaderMap) -> Response {
    let write = matches!(method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    if write {
        Counters::bump(&rest.counters.rest_write_requests);
    }
    if !authenticated(&headers, &rest.auth) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "Unauthorized. Use an API key (Basic or Close-API-Key) or an OAuth token."})))
            .into_response();
    }
    if write {
        Counters::bump(&rest.counters.rest_writes);
        return (StatusCode::OK, Json(json!({"id": "lead_written_by_rest", "accepted": true}))).into_response();
    }
    let data: Vec<_> = rest.leads.iter().map(|(id, name)| json!({"id": id, "display_name": name})).collect();
    (StatusCode::OK, Json(json!({"has_more": false, "data": data}))).into_response()
}
