//! A small, blocking MCP (Model Context Protocol) client for the Streamable HTTP transport, written
//! for connectors that run as WASI components (one short-lived instance per call).
//!
//! * [`McpClient`] speaks both eras of the protocol ([`protocol`]): MCP 2026-07-28 (stateless,
//!   `server/discover`, request metadata, the routing headers of [`headers`], multi round-trip
//!   requests of [`input_required`], caching hints) and 2025-03-26 to 2025-11-25 (`initialize` +
//!   `notifications/initialized`, sessions, stream resumption). It probes with `server/discover` and
//!   falls back to `initialize`; JSON and SSE answers (server pings answered while a 2025 stream is
//!   read), `tools/list` pagination and `tools/call`.
//! * What differs between deployments is supplied by the caller through small traits: the HTTP
//!   transport ([`HttpClient`]; [`wasi_http::WasiHttpClient`] on `wasm32-wasip2`), the credentials
//!   ([`AuthProvider`]), where the session survives between instances ([`SessionStore`]), and logging
//!   ([`Logger`]).
//! * [`oauth`] authorizes a connection the way the MCP authorization spec wants (discovery, client
//!   registration, PKCE, token refresh under the host's credential lock, revocation) over the same
//!   transport and a small [`oauth::OAuthHost`] trait for secrets and state.
//! * Every failure is an [`McpError`]; nothing in here panics on what a server sends.
//!
//! The protocol types are `rmcp`'s (`rmcp::model`), re-exported as [`model`].

pub mod client;
pub mod error;
pub mod headers;
pub mod http;
pub mod input_required;
pub mod oauth;
pub mod protocol;
pub mod rate_limit;
pub mod sse;
pub mod url;
pub mod www_authenticate;

#[cfg(target_os = "wasi")]
pub mod wasi_http;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use client::{
    ClientConfig, McpClient, Session, ToolCallResult, ToolContent, ToolHeaders, ToolList,
    PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS,
};
pub use protocol::{Era, ProtocolChoice, ServerHello};
pub use error::McpError;
pub use http::{BodyReader, HttpClient, HttpRequest, HttpResponse, Method, TransportError};
pub use rate_limit::RateLimitInfo;
pub use rmcp::model;

/// Supplies the credentials sent with every request. API-key headers, a bearer token, or an OAuth
/// client that refreshes tokens all fit behind it without touching the transport.
pub trait AuthProvider {
    /// The headers to add to the next request (e.g. `Authorization: Bearer …`). An error (typically
    /// [`McpError::Unauthorized`]) aborts the request before anything is sent.
    fn headers(&self) -> Result<Vec<(String, String)>, McpError>;

    /// Called when the server answers HTTP 401, with its `WWW-Authenticate` value. Return `Ok(true)`
    /// after obtaining new credentials (e.g. a refreshed token): the request is then sent once more
    /// with fresh [`headers`](AuthProvider::headers). The default gives up.
    fn on_unauthorized(&self, www_authenticate: Option<&str>) -> Result<bool, McpError> {
        let _ = www_authenticate;
        Ok(false)
    }
}

/// No credentials.
pub struct NoAuth;

impl AuthProvider for NoAuth {
    fn headers(&self) -> Result<Vec<(String, String)>, McpError> {
        Ok(Vec::new())
    }
}

/// Fixed headers, e.g. an API key.
pub struct StaticHeaders(pub Vec<(String, String)>);

impl AuthProvider for StaticHeaders {
    fn headers(&self) -> Result<Vec<(String, String)>, McpError> {
        Ok(self.0.clone())
    }
}

/// `Authorization: Bearer <token>` with a token that does not change during the call.
pub struct BearerToken(pub String);

impl AuthProvider for BearerToken {
    fn headers(&self) -> Result<Vec<(String, String)>, McpError> {
        Ok(vec![(
            "Authorization".to_owned(),
            format!("Bearer {}", self.0),
        )])
    }
}

/// Keeps the serialized [`Session`] between calls (each call may run in a fresh instance). Values
/// are small JSON documents without secrets.
pub trait SessionStore {
    fn load(&self) -> Option<String>;
    /// Store (`Some`) or forget (`None`) the session.
    fn save(&self, value: Option<&str>);
}

/// A [`SessionStore`] that lives as long as the value (tests, or one-shot use).
#[derive(Default)]
pub struct MemorySessionStore(pub std::cell::RefCell<Option<String>>);

impl SessionStore for MemorySessionStore {
    fn load(&self) -> Option<String> {
        self.0.borrow().clone()
    }
    fn save(&self, value: Option<&str>) {
        *self.0.borrow_mut() = value.map(str::to_owned);
    }
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Receives the client's log lines. They never contain credentials or request headers.
pub trait Logger {
    fn log(&self, level: LogLevel, message: &str);
}

/// Discards log lines.
pub struct NoLogger;

impl Logger for NoLogger {
    fn log(&self, _level: LogLevel, _message: &str) {}
}
