//! The client's one error type. Every message is a single line and never contains a request header.

use crate::rate_limit::RateLimitInfo;
use crate::www_authenticate::{self, BearerChallenge};
use serde_json::Value;

/// Why an MCP operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum McpError {
    /// HTTP 401, or the auth provider has no usable credentials.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// The raw `WWW-Authenticate` value (all header lines joined with `, `), for OAuth discovery.
        www_authenticate: Option<String>,
        /// A short description.
        message: String,
    },
    /// HTTP 403 with `error="insufficient_scope"`.
    #[error("insufficient scope: {message}")]
    InsufficientScope {
        /// The scopes the challenge asked for (its `scope` parameter), possibly empty.
        required: Vec<String>,
        /// The raw `WWW-Authenticate` value.
        www_authenticate: Option<String>,
        message: String,
    },
    /// HTTP 429.
    #[error("rate limited: {message}")]
    RateLimited {
        /// How long to wait, from `Retry-After` or else the `RateLimit` reset.
        retry_after_ms: Option<u64>,
        /// The parsed `RateLimit` header, if any.
        limit: Option<RateLimitInfo>,
        message: String,
    },
    /// Any other HTTP error status (and a 404 that persists after re-initializing).
    #[error("HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// The server answered with a JSON-RPC error object.
    #[error("JSON-RPC error {code}: {message}")]
    JsonRpc {
        code: i64,
        message: String,
        /// The error's `data` member, as sent.
        data: Option<Value>,
    },
    /// A `tools/call` result with `isError: true`; the text of its content.
    #[error("tool error: {0}")]
    ToolFailed(String),
    /// The server could not be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The host refused the request (policy).
    #[error("denied by policy: {0}")]
    Denied(String),
    /// The server said something this client cannot understand, or broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl McpError {
    pub(crate) fn protocol(message: impl AsRef<str>) -> Self {
        McpError::Protocol(one_line(message.as_ref(), MAX_MESSAGE_CHARS))
    }

    /// The `Bearer` challenge of a 401/403, parsed.
    pub fn bearer_challenge(&self) -> Option<BearerChallenge> {
        match self {
            McpError::Unauthorized {
                www_authenticate: Some(h),
                ..
            }
            | McpError::InsufficientScope {
                www_authenticate: Some(h),
                ..
            } => www_authenticate::bearer(h),
            _ => None,
        }
    }

    /// `resource_metadata` from the `WWW-Authenticate` challenge of a 401/403 (RFC 9728), if given.
    pub fn resource_metadata(&self) -> Option<String> {
        self.bearer_challenge()
            .and_then(|b| b.resource_metadata.into_iter().next())
    }
}

impl From<crate::http::TransportError> for McpError {
    fn from(e: crate::http::TransportError) -> Self {
        use crate::http::TransportError as T;
        match e {
            T::Denied(m) => McpError::Denied(one_line(&m, MAX_MESSAGE_CHARS)),
            T::Unavailable(m) => McpError::Unavailable(one_line(&m, MAX_MESSAGE_CHARS)),
            T::Protocol(m) => McpError::Protocol(one_line(&m, MAX_MESSAGE_CHARS)),
        }
    }
}

/// The longest message kept from a server (in characters).
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Collapses all whitespace and control characters to single spaces, trims, and cuts the text to
/// `max_chars` characters (adding `…` when cut).
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut count = 0;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            if count + 1 >= max_chars {
                out.push('…');
                return out;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max_chars {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// A short description of an HTTP error body: the `error_description`/`message`/`error`/`detail`
/// member of a JSON body, or the first line of a short plain-text body. Never the whole body.
pub fn summarize_error_body(media_type: Option<&str>, body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return json_error_message(&value).map(|m| one_line(&m, 200));
    }
    match media_type {
        Some("text/html") | Some("application/xhtml+xml") => {
            Some("the server answered with an HTML page".to_owned())
        }
        _ if text.starts_with('<') => Some("the server answered with an HTML page".to_owned()),
        _ => text.lines().next().map(|l| one_line(l, 120)),
    }
}

fn json_error_message(value: &Value) -> Option<String> {
    let obj = value.as_object()?;
    for key in ["error_description", "message", "detail", "error", "errors"] {
        match obj.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => return Some(s.clone()),
            Some(Value::Object(_)) => {
                if let Some(m) = obj.get(key).and_then(json_error_message) {
                    return Some(m);
                }
            }
            Some(Value::Array(items)) => {
                if let Some(Value::String(s)) = items.first() {
                    return Some(s.clone());
                }
            }
            _ => {}
        }
    }
    None
}

/// The reason phrase of common statuses, for messages when the body says nothing useful.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ if status >= 500 => "Server Error",
        _ if status >= 400 => "Client Error",
        _ => "Unexpected Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_collapsed_to_one_short_line() {
        assert_eq!(one_line("  a\nb\r\n\tc  ", 100), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("ab cdef", 3), "ab…");
        assert_eq!(one_line("", 3), "");
        assert_eq!(one_line("日本語テキスト", 2), "日本…");
    }

    #[test]
    fn an_error_body_is_summarized_not_echoed() {
        assert_eq!(
            summarize_error_body(Some("application/json"), br#"{"error": "invalid_token"}"#)
                .as_deref(),
            Some("invalid_token")
        );
        assert_eq!(
            summarize_error_body(None, br#"{"error":{"code":5,"message":"Boom\nagain"}}"#)
                .as_deref(),
            Some("Boom again")
        );
        assert_eq!(
            summarize_error_body(Some("text/html"), b"<html>lots</html>").as_deref(),
            Some("the server answered with an HTML page")
        );
        assert_eq!(
            summarize_error_body(Some("text/plain"), b"upstream connect error\nsecond line")
                .as_deref(),
            Some("upstream connect error")
        );
        assert_eq!(summarize_error_body(None, b"   ").as_deref(), None);
        assert_eq!(
            summarize_error_body(None, br#"{"errors":["Lead not found"],"field-errors":{}}"#)
                .as_deref(),
            Some("Lead not found")
        );
    }
}
