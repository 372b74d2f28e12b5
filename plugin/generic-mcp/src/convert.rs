//! Conversions between `mcp-client` values and the WIT types: tools, results, and the error mapping
//! (which `McpError` becomes which `error` case, with what message), for a server we know nothing of.

use crate::types::{
    ContentBlock as WitContent, Error, Media, RateLimit, ScopeProblem, Tool as WitTool,
    ToolAnnotations, ToolResult, UpstreamFailure,
};
use mcp_client::error::one_line;
use mcp_client::model::{ContentBlock, Tool};
use mcp_client::{McpError, ToolCallResult, ToolContent};
use serde_json::Value;

/// How the connection authenticates, for the wording of a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials at all.
    None,
    ApiKey,
    OAuth,
}

/// What an error is about, to choose the right case and message.
#[derive(Debug, Clone, Copy)]
pub struct ErrorContext<'a> {
    pub credentials: Credentials,
    /// The scopes the credentials hold (OAuth), for scope problems.
    pub granted: &'a [String],
    /// The tool being called, for `call-tool`.
    pub tool: Option<&'a str>,
}

impl<'a> ErrorContext<'a> {
    pub fn new(credentials: Credentials, granted: &'a [String]) -> Self {
        ErrorContext {
            credentials,
            granted,
            tool: None,
        }
    }

    pub fn for_tool(&self, tool: &'a str) -> Self {
        ErrorContext {
            tool: Some(tool),
            ..*self
        }
    }
}

const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;

/// Maps a client error onto the WIT `error` variant. Messages are one sentence, without secrets.
pub fn map_error(e: McpError, ctx: &ErrorContext<'_>) -> Error {
    match e {
        McpError::Unauthorized { .. } => Error::Unauthorized(match ctx.credentials {
            Credentials::None => "The MCP server requires authorization (HTTP 401). Reconnect with OAuth or an API key.",
            Credentials::ApiKey => "The MCP server rejected the API key (HTTP 401). Reconnect the connection.",
            Credentials::OAuth => "The MCP server rejected the OAuth access token (HTTP 401) and it could not be renewed. Reconnect the connection.",
        }.to_owned()),
        McpError::InsufficientScope { required, .. } => insufficient_scope(required, ctx),
        McpError::RateLimited {
            retry_after_ms,
            message,
            ..
        } => Error::RateLimited(RateLimit {
            retry_after_ms,
            message: format!("The MCP server is rate limiting requests (HTTP 429): {message}"),
        }),
        McpError::Http { status, message } => Error::Upstream(UpstreamFailure {
            status,
            message: format!("The MCP server answered HTTP {status}: {message}"),
        }),
        McpError::JsonRpc { code, message, .. } => match ctx.tool {
            Some(tool) if code == INVALID_PARAMS && mentions_unknown_tool(&message, tool) => {
                unknown_tool(tool, &message)
            }
            Some(_) if code == INVALID_PARAMS => Error::InvalidArguments(format!(
                "The MCP server rejected the arguments: {message}"
            )),
            Some(tool) if code != METHOD_NOT_FOUND => Error::ToolFailed(format!(
                "The MCP server could not run `{}`: {message} (JSON-RPC error {code})",
                one_line(tool, 80)
            )),
            _ => Error::Protocol(format!(
                "The MCP server answered with JSON-RPC error {code}: {message}"
            )),
        },
        McpError::ToolFailed(text) => match ctx.tool {
            Some(tool) if mentions_unknown_tool(&text, tool) => unknown_tool(tool, &text),
            _ => Error::ToolFailed(text),
        },
        McpError::Unavailable(m) => {
            Error::Unavailable(format!("The MCP server could not be reached: {m}"))
        }
        McpError::Denied(m) => {
            Error::DeniedByPolicy(format!("The host refused a request to the MCP server: {m}"))
        }
        McpError::Protocol(m) => Error::Protocol(format!(
            "The MCP server answered something this connector cannot understand: {m}"
        )),
    }
}

/// Maps a failure of the OAuth flow (discovery, registration, the redirect, the code exchange,
/// revocation, a refused refresh), keeping the library's explanation.
pub fn map_oauth_error(e: McpError) -> Error {
    match e {
        McpError::Unauthorized { message, .. } => {
            Error::Unauthorized(sentence("The authorization failed: ", &message))
        }
        McpError::Protocol(m) => Error::Protocol(sentence("The authorization failed: ", &m)),
        McpError::Http { status, message } => Error::Upstream(UpstreamFailure {
            status,
            message: sentence(
                &format!("The authorization server answered HTTP {status}: "),
                &message,
            ),
        }),
        McpError::Unavailable(m) => Error::Unavailable(sentence(
            "The authorization server could not be reached: ",
            &m,
        )),
        McpError::Denied(m) => Error::DeniedByPolicy(sentence(
            "The host refused a request made for the authorization: ",
            &m,
        )),
        other => map_error(other, &ErrorContext::new(Credentials::OAuth, &[])),
    }
}

/// `prefix` + `text` as one sentence: one line, ending with a full stop.
pub fn sentence(prefix: &str, text: &str) -> String {
    let mut s = one_line(&format!("{prefix}{text}"), 400);
    if !s.ends_with(['.', '!', '?', '…']) {
        s.push('.');
    }
    s
}

fn unknown_tool(tool: &str, server_message: &str) -> Error {
    Error::UnknownTool(format!(
        "The MCP server has no tool named `{}` ({server_message}); list the tools again.",
        one_line(tool, 80)
    ))
}

/// Whether a server message says the tool does not exist ("Unknown tool: x", "Tool x not found").
pub fn mentions_unknown_tool(message: &str, tool: &str) -> bool {
    let m = message.to_ascii_lowercase();
    if m.contains("unknown tool") || m.contains("tool not found") || m.contains("no such tool") {
        return true;
    }
    let names_it = !tool.is_empty() && m.contains(&tool.to_ascii_lowercase());
    names_it
        && m.contains("tool")
        && (m.contains("not found") || m.contains("unknown") || m.contains("not exist"))
}

fn insufficient_scope(required: Vec<String>, ctx: &ErrorContext<'_>) -> Error {
    let missing: Vec<&String> = required
        .iter()
        .filter(|s| !ctx.granted.contains(s))
        .collect();
    let lacking: Vec<&String> = if missing.is_empty() {
        required.iter().collect()
    } else {
        missing
    };
    let message = if lacking.is_empty() {
        "Insufficient scope: the MCP server needs more access than was granted. Reconnect and accept the scopes it asks for.".to_owned()
    } else {
        one_line(
            &format!(
                "Insufficient scope: the MCP server needs {}. Reconnect and accept {}.",
                lacking
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                if lacking.len() == 1 {
                    "that scope"
                } else {
                    "those scopes"
                }
            ),
            300,
        )
    };
    Error::InsufficientScope(ScopeProblem {
        required,
        granted: ctx.granted.to_vec(),
        message,
    })
}

/// Replaces every occurrence of `secret` in the error's messages with `***`.
pub fn redact(e: Error, secret: &str) -> Error {
    if secret.len() < 4 {
        return e;
    }
    let r = |m: String| {
        if m.contains(secret) {
            m.replace(secret, "***")
        } else {
            m
        }
    };
    match e {
        Error::Unauthorized(m) => Error::Unauthorized(r(m)),
        Error::InvalidArguments(m) => Error::InvalidArguments(r(m)),
        Error::UnknownTool(m) => Error::UnknownTool(r(m)),
        Error::ToolFailed(m) => Error::ToolFailed(r(m)),
        Error::Unavailable(m) => Error::Unavailable(r(m)),
        Error::Protocol(m) => Error::Protocol(r(m)),
        Error::DeniedByPolicy(m) => Error::DeniedByPolicy(r(m)),
        Error::InsufficientScope(p) => Error::InsufficientScope(ScopeProblem {
            message: r(p.message),
            ..p
        }),
        Error::RateLimited(l) => Error::RateLimited(RateLimit {
            message: r(l.message),
            ..l
        }),
        Error::Upstream(u) => Error::Upstream(UpstreamFailure {
            message: r(u.message),
            ..u
        }),
    }
}

/// The human message of any `error` case (for logs).
pub fn error_message(e: &Error) -> String {
    match e {
        Error::Unauthorized(m)
        | Error::InvalidArguments(m)
        | Error::UnknownTool(m)
        | Error::ToolFailed(m)
        | Error::Unavailable(m)
        | Error::Protocol(m)
        | Error::DeniedByPolicy(m) => m.clone(),
        Error::InsufficientScope(p) => p.message.clone(),
        Error::RateLimited(r) => r.message.clone(),
        Error::Upstream(u) => u.message.clone(),
    }
}

/// An MCP tool as a WIT tool. Title precedence: `title`, then `annotations.title`.
pub fn tool(t: Tool) -> WitTool {
    let annotations = t.annotations.unwrap_or_default();
    WitTool {
        name: t.name.into_owned(),
        title: t.title.or(annotations.title),
        description: t.description.map(|d| d.into_owned()),
        input_schema: serde_json::to_string(&*t.input_schema).unwrap_or_else(|_| "{}".to_owned()),
        output_schema: t
            .output_schema
            .and_then(|s| serde_json::to_string(&*s).ok()),
        annotations: ToolAnnotations {
            read_only_hint: annotations.read_only_hint,
            destructive_hint: annotations.destructive_hint,
            idempotent_hint: annotations.idempotent_hint,
            open_world_hint: annotations.open_world_hint,
        },
    }
}

/// A successful MCP tool result as a WIT `tool-result`. `structured-content` is the server's
/// `structuredContent`, else the single text block when that text is a JSON object or array.
pub fn tool_result(result: ToolCallResult) -> ToolResult {
    let structured_content = match &result.structured_content {
        Some(v) => serde_json::to_string(v).ok(),
        None => single_text_json(&result.content),
    };
    ToolResult {
        structured_content,
        content: result.content.into_iter().map(content_block).collect(),
    }
}

fn single_text_json(content: &[ToolContent]) -> Option<String> {
    let mut texts = content.iter().filter_map(ToolContent::as_text);
    let text = texts.next()?;
    if texts.next().is_some() {
        return None;
    }
    let trimmed = text.trim();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(_) | Value::Array(_)) => Some(trimmed.to_owned()),
        _ => None,
    }
}

fn content_block(c: ToolContent) -> WitContent {
    match c {
        ToolContent::Block(ContentBlock::Text(t)) => WitContent::Text(t.text),
        ToolContent::Block(ContentBlock::Image(i)) => WitContent::Image(Media {
            data: i.data,
            mime_type: i.mime_type,
        }),
        ToolContent::Block(ContentBlock::Audio(a)) => WitContent::Audio(Media {
            data: a.data,
            mime_type: a.mime_type,
        }),
        other => WitContent::Other(other.to_json().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_client::client::parse_call_result;
    use serde_json::json;

    fn unauthorized() -> McpError {
        McpError::Unauthorized {
            www_authenticate: Some("Bearer".into()),
            message: "HTTP 401".into(),
        }
    }

    #[test]
    fn a_401_is_worded_after_the_credentials_in_use() {
        for (credentials, needle) in [
            (Credentials::None, "requires authorization"),
            (Credentials::ApiKey, "API key"),
            (Credentials::OAuth, "OAuth access token"),
        ] {
            let e = map_error(unauthorized(), &ErrorContext::new(credentials, &[]));
            assert!(
                matches!(&e, Error::Unauthorized(m) if m.contains(needle)),
                "{e:?}"
            );
        }
    }

    #[test]
    fn a_scope_challenge_names_the_missing_scopes_and_what_is_held() {
        let granted = vec!["mcp:basic".to_owned()];
        let e = map_error(
            McpError::InsufficientScope {
                required: vec!["mcp:basic".into(), "mcp:write".into()],
                www_authenticate: None,
                message: String::new(),
            },
            &ErrorContext::new(Credentials::OAuth, &granted),
        );
        assert_eq!(
            e,
            Error::InsufficientScope(ScopeProblem {
                required: vec!["mcp:basic".into(), "mcp:write".into()],
                granted: vec!["mcp:basic".into()],
                message: "Insufficient scope: the MCP server needs mcp:write. Reconnect and accept that scope.".into(),
            })
        );
        let e = map_error(
            McpError::InsufficientScope {
                required: vec![],
                www_authenticate: None,
                message: String::new(),
            },
            &ErrorContext::new(Credentials::OAuth, &granted),
        );
        assert!(
            matches!(e, Error::InsufficientScope(p) if p.required.is_empty() && p.message.ends_with('.'))
        );
    }

    #[test]
    fn json_rpc_errors_in_a_call_become_unknown_tool_invalid_arguments_or_tool_failed() {
        let ctx = ErrorContext::new(Credentials::None, &[]);
        let call = ctx.for_tool("add_numbers");
        let rpc = |code, message: &str| McpError::JsonRpc {
            code,
            message: message.into(),
            data: None,
        };
        assert!(matches!(
            map_error(rpc(-32602, "Tool add_numbers not found"), &call),
            Error::UnknownTool(_)
        ));
        assert!(matches!(
            map_error(rpc(-32602, "a: expected number"), &call),
            Error::InvalidArguments(_)
        ));
        assert!(matches!(
            map_error(rpc(-32603, "boom"), &call),
            Error::ToolFailed(_)
        ));
        assert!(matches!(
            map_error(rpc(-32603, "boom"), &ctx),
            Error::Protocol(_)
        ));
    }

    #[test]
    fn oauth_flow_failures_keep_their_explanation_as_one_sentence() {
        let e = map_oauth_error(McpError::Protocol(
            "the protected-resource metadata is for `https://evil.example.com/mcp`, not for this MCP server".into(),
        ));
        assert!(
            matches!(&e, Error::Protocol(m) if m.starts_with("The authorization failed: ") && m.ends_with('.')),
            "{e:?}"
        );
        let e = map_oauth_error(McpError::Unavailable("refused".into()));
        assert!(matches!(e, Error::Unavailable(_)));
    }

    #[test]
    fn results_keep_structured_content_or_a_single_json_text() {
        let r = tool_result(
            parse_call_result(json!({ "content": [{ "type": "text", "text": "{\"sum\":3}" }] }))
                .unwrap(),
        );
        assert_eq!(r.structured_content.as_deref(), Some("{\"sum\":3}"));
        let r = tool_result(
            parse_call_result(json!({ "content": [{ "type": "text", "text": "3" }], "structuredContent": { "sum": 3 } }))
                .unwrap(),
        );
        assert_eq!(r.structured_content.as_deref(), Some("{\"sum\":3}"));
        assert_eq!(r.content, vec![WitContent::Text("3".into())]);
    }

    #[test]
    fn a_credential_echoed_by_the_server_is_redacted() {
        assert_eq!(
            redact(Error::ToolFailed("bad key sk-123456".into()), "sk-123456"),
            Error::ToolFailed("bad key ***".into())
        );
    }
}
