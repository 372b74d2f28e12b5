//! The authorization server's HTTP side: the routes of the issuer origin `http://127.0.0.1:Q` (playing
//! api.close.com and app.close.com; what each endpoint decides is in [`oauth`](crate::oauth)).
//!
//! | Method | Path | Answer |
//! |---|---|---|
//! | GET | `/.well-known/oauth-authorization-server`, `/.well-known/openid-configuration` | RFC 8414 metadata |
//! | POST | `/oauth2/register/` (JSON) | 201 client / 400 `invalid_redirect_uri`, `invalid_client_metadata` |
//! | GET | `/oauth2/authorize/` | 302 to the client (code or error), 200 consent page, 400 error page |
//! | POST | `/oauth2/authorize/` (consent form) | 302 to the client, 400 error page |
//! | POST | `/oauth2/token/` (form) | 200 tokens / 400 RFC 6749 §5.2 error |
//! | POST | `/oauth2/revoke/` (form) | 200 / 400 `invalid_request` |
//!
//! Each path also answers without its trailing slash (Close's Django-style paths end in one; clients that
//! drop it should not fail here for that). JSON bodies use Python's `json.dumps` spacing, like Close's MCP
//! error bodies (`close-mcp.md` §2.3) — whether api.close.com does the same is a guess. JSON answers carry
//! `Cache-Control: no-store` (RFC 6749 §5.1). The token and revocation endpoints require
//! `Content-Type: application/x-www-form-urlencoded` (else 400 `invalid_request`); registration parses the
//! body as JSON whatever its type.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

use crate::auth::python_json_value;
use crate::consent;
use crate::metadata::{self, AUTHORIZE_PATH, REGISTER_PATH, REVOKE_PATH, TOKEN_PATH};
use crate::oauth::{AuthorizationServer, AuthorizeOutcome, OAuthError, Params};

/// The issuer origin's routes.
pub(crate) fn router(server: Arc<AuthorizationServer>) -> Router {
    let bare = |path: &'static str| path.trim_end_matches('/');
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(as_metadata))
        .route("/.well-known/openid-configuration", get(as_metadata))
        .route(REGISTER_PATH, post(register))
        .route(bare(REGISTER_PATH), post(register))
        .route(AUTHORIZE_PATH, get(authorize).post(consent_form))
        .route(bare(AUTHORIZE_PATH), get(authorize).post(consent_form))
        .route(TOKEN_PATH, post(token))
        .route(bare(TOKEN_PATH), post(token))
        .route(REVOKE_PATH, post(revoke))
        .route(bare(REVOKE_PATH), post(revoke))
        .fallback(not_found)
        .with_state(server)
}

/// A JSON answer with Python spacing and `Cache-Control: no-store`.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        python_json_value(body),
    )
        .into_response()
}

fn error_response(error: &OAuthError) -> Response {
    json_response(StatusCode::BAD_REQUEST, &error.to_json())
}

fn html(status: StatusCode, page: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

fn outcome_response(outcome: AuthorizeOutcome) -> Response {
    match outcome {
        AuthorizeOutcome::Redirect { location, .. } => match HeaderValue::from_str(&location) {
            Ok(value) => (
                StatusCode::FOUND,
                [
                    (header::LOCATION, value),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response(),
            Err(_) => html(
                StatusCode::BAD_REQUEST,
                consent::error_page("the redirect URI cannot be used"),
            ),
        },
        AuthorizeOutcome::ErrorPage(message) => {
            html(StatusCode::BAD_REQUEST, consent::error_page(&message))
        }
        AuthorizeOutcome::Consent(request) => html(StatusCode::OK, consent::consent_page(&request)),
    }
}

/// Is the request body `application/x-www-form-urlencoded`?
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The client id and secret of an `Authorization: Basic` header (RFC 6749 §2.3.1 form-encodes both).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':').unwrap_or((&decoded, ""));
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("v={}", s.replace('&', "%26")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

fn not_a_form() -> Response {
    error_response(&OAuthError {
        error: "invalid_request",
        description: "the request body must be application/x-www-form-urlencoded".into(),
    })
}

async fn as_metadata(State(server): State<Arc<AuthorizationServer>>) -> Response {
    if !server.switches().issuer_serves_metadata {
        return not_found().await;
    }
    json_response(
        StatusCode::OK,
        &metadata::authorization_server(server.issuer(), &server.switches()),
    )
}

async fn register(State(server): State<Arc<AuthorizationServer>>, body: Bytes) -> Response {
    match server.register(&body) {
        Ok(client) => json_response(StatusCode::CREATED, &client),
        Err(e) => error_response(&e),
    }
}

async fn authorize(
    State(server): State<Arc<AuthorizationServer>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    outcome_response(server.authorize(&params))
}

async fn consent_form(State(server): State<Arc<AuthorizationServer>>, body: Bytes) -> Response {
    outcome_response(server.decide(&Params::parse(&body)))
}

async fn token(
    State(server): State<Arc<AuthorizationServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        return not_a_form();
    }
    match server.token(&Params::parse(&body), basic_credentials(&headers)) {
        Ok(tokens) => json_response(StatusCode::OK, &tokens),
        Err(e) => error_response(&e),
    }
}

async fn revoke(
    State(server): State<Arc<AuthorizationServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        return not_a_form();
    }
    match server.revoke(&Params::parse(&body), basic_credentials(&headers)) {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn form_bodies_are_recognised_by_their_media_type() {
        assert!(is_form(&headers(&[(
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8"
        )])));
        assert!(!is_form(&headers(&[("content-type", "application/json")])));
        assert!(!is_form(&HeaderMap::new()));
    }

    #[test]
    fn basic_credentials_are_decoded_and_form_unescaped() {
        let encoded = STANDARD.encode("my%20client:");
        assert_eq!(
            basic_credentials(&headers(&[("authorization", &format!("Basic {encoded}"))])),
            Some(("my client".into(), String::new()))
        );
        assert_eq!(
            basic_credentials(&headers(&[("authorization", "Basic !!!")])),
            None
        );
        assert_eq!(
            basic_credentials(&headers(&[("authorization", "Bearer x")])),
            None
        );
    }
}
