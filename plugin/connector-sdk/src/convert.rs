//! Conversions between `mcp-client` values and the WIT types: tools, results and their content
//! blocks, and the error mapping (which `McpError` becomes which WIT `error` case, with what
//! message). The case is the SDK's decision; the words are the vendor's ([`Vendor::WORDING`],
//! [`Vendor::scope_problem`]).

use crate::types::{
    CacheScope, ContentBlock as WitContent, Error, Media, RateLimit, ScopeProblem, Tool as WitTool,
    ToolAnnotations, ToolResult, UpstreamFailure,
};
use crate::vendor::{CredentialKind, Vendor, Wording};
use mcp_client::error::one_line;
use mcp_client::model::{ContentBlock, Tool};
use mcp_client::{McpError, ToolCallResult, ToolContent};
#[cfg(test)]
use serde_json::Value;

/// What an error is about, to choose the right case and message.
#[derive(Debug, Clone, Copy)]
pub struct ErrorContext<'a> {
    /// How the connection authenticates (the wording of a 401).
    pub credentials: CredentialKind,
    /// The scopes the credentials hold ([`Vendor::granted_scopes`]), for scope problems.
    pub granted: &'a [String],
    /// The tool being called, for `call-tool`.
    pub tool: Option<&'a str>,
}

impl<'a> ErrorContext<'a> {
    pub fn new(credentials: CredentialKind, granted: &'a [String]) -> Self {
        ErrorContext {
            credentials,
            granted,
            tool: None,
        }
    }

    /// The same context for a call of `tool`.
    pub fn for_tool(&self, tool: &'a str) -> Self {
        ErrorContext {
            tool: Some(tool),
            ..*self
        }
    }
}

/// The JSON-RPC "invalid params" code, which MCP servers also use for an unknown tool.
const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;

/// Maps a client error onto the WIT `error` variant. Messages are one sentence, without secrets
/// (see [`redact`] for what a server echoes back).
pub fn map_error<V: Vendor>(e: McpError, ctx: &ErrorContext<'_>) -> Error {
    let w = &V::WORDING;
    let server = w.server;
    match e {
        McpError::Unauthorized { .. } => Error::Unauthorized(match ctx.credentials {
            CredentialKind::None => format!(
                "{server} requires authorization (HTTP 401). Reconnect with OAuth or an API key."
            ),
            CredentialKind::ApiKey => format!(
                "{server} rejected {} (HTTP 401). Reconnect the connection.",
                w.api_key
            ),
            CredentialKind::OAuth => format!(
                "{server} rejected the OAuth access token (HTTP 401) and it could not be renewed. Reconnect the connection."
            ),
        }),
        McpError::InsufficientScope { required, .. } => {
            Error::InsufficientScope(V::scope_problem(required, ctx.granted))
        }
        McpError::RateLimited {
            retry_after_ms,
            message,
            ..
        } => Error::RateLimited(RateLimit {
            retry_after_ms,
            message: format!("{server} is rate limiting requests (HTTP 429): {message}"),
        }),
        McpError::Http { status, message } => Error::Upstream(UpstreamFailure {
            status,
            message: format!("{server} answered HTTP {status}: {message}"),
        }),
        McpError::JsonRpc { code, message, .. } => match ctx.tool {
            Some(tool) if code == INVALID_PARAMS && mentions_unknown_tool(&message, tool) => {
                unknown_tool(w, tool, &message)
            }
            Some(_) if code == INVALID_PARAMS => {
                Error::InvalidArguments(format!("{server} rejected the arguments: {message}"))
            }
            Some(tool) if code != METHOD_NOT_FOUND => Error::ToolFailed(format!(
                "{server} could not run `{}`: {message} (JSON-RPC error {code})",
                one_line(tool, 80)
            )),
            _ => Error::Protocol(format!(
                "{server} answered with JSON-RPC error {code}: {message}"
            )),
        },
        McpError::ToolFailed(text) => match ctx.tool {
            Some(tool) if mentions_unknown_tool(&text, tool) => unknown_tool(w, tool, &text),
            _ => Error::ToolFailed(text),
        },
        McpError::Unavailable(m) => Error::Unavailable(format!("{server} could not be reached: {m}")),
        McpError::Denied(m) => Error::DeniedByPolicy(format!(
            "The host refused a request to {}: {m}",
            w.the_server
        )),
        McpError::Protocol(m) => Error::Protocol(format!(
            "{server} answered something this connector cannot understand: {m}"
        )),
    }
}

/// Maps a failure of the OAuth flow (discovery, registration, the redirect, the code exchange,
/// revocation, a refused refresh) onto the WIT `error` variant, keeping the library's explanation.
pub fn map_oauth_error<V: Vendor>(e: McpError) -> Error {
    let w = &V::WORDING;
    match e {
        McpError::Unauthorized { message, .. } => Error::Unauthorized(sentence(
            &format!("The {}authorization failed: ", w.vendor),
            &message,
        )),
        McpError::Protocol(m) => Error::Protocol(sentence(
            &format!("The {}authorization failed: ", w.vendor),
            &m,
        )),
        McpError::Http { status, message } => Error::Upstream(UpstreamFailure {
            status,
            message: sentence(
                &format!("{} answered HTTP {status}: ", w.authorization_server),
                &message,
            ),
        }),
        McpError::Unavailable(m) => Error::Unavailable(sentence(
            &format!("{} could not be reached: ", w.authorization_server),
            &m,
        )),
        McpError::Denied(m) => Error::DeniedByPolicy(sentence(
            &format!("The host refused a request {}: ", w.authorization_request),
            &m,
        )),
        other => {
            let granted = V::granted_scopes(CredentialKind::OAuth, &[], None);
            map_error::<V>(other, &ErrorContext::new(CredentialKind::OAuth, &granted))
        }
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

fn unknown_tool(w: &Wording, tool: &str, server_message: &str) -> Error {
    Error::UnknownTool(format!(
        "{} has no tool named `{}`{} ({server_message}); list the tools again.",
        w.server,
        one_line(tool, 80),
        w.tool_scope
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

/// Whether the error of a `tools/call` of `tool` says the server has no such tool (what
/// [`map_error`] reports as `unknown-tool`).
pub fn is_unknown_tool(e: &McpError, tool: &str) -> bool {
    match e {
        McpError::JsonRpc { code, message, .. } => {
            *code == INVALID_PARAMS && mentions_unknown_tool(message, tool)
        }
        McpError::ToolFailed(text) => mentions_unknown_tool(text, tool),
        _ => false,
    }
}

/// The default [`Vendor::scope_problem`]: the scopes asked for as they are, and a message naming
/// the missing ones (else all of them).
pub fn scope_problem(w: &Wording, required: Vec<String>, granted: &[String]) -> ScopeProblem {
    let missing = missing_scopes(&required, granted);
    let lacking = if missing.is_empty() {
        &required
    } else {
        &missing
    };
    let message = if lacking.is_empty() {
        format!(
            "Insufficient scope: {} needs more access than was granted. Reconnect and accept the scopes it asks for.",
            w.the_server
        )
    } else {
        insufficient_scope_message(&format!("{} needs", w.the_server), lacking)
    };
    ScopeProblem {
        required,
        granted: granted.to_vec(),
        message,
    }
}

/// The scopes of `required` that `granted` lacks.
pub fn missing_scopes(required: &[String], granted: &[String]) -> Vec<String> {
    required
        .iter()
        .filter(|s| !granted.contains(s))
        .cloned()
        .collect()
}

/// "Insufficient scope: `what` `lacking`. Reconnect and accept that scope." ("those scopes" for
/// several), as one line.
pub fn insufficient_scope_message(what: &str, lacking: &[String]) -> String {
    one_line(
        &format!(
            "Insufficient scope: {what} {}. Reconnect and accept {}.",
            lacking.join(" "),
            if lacking.len() == 1 {
                "that scope"
            } else {
                "those scopes"
            }
        ),
        300,
    )
}

/// `text` with every occurrence of `secret` replaced by `***` (secrets shorter than 4 characters
/// are left alone: they would mask ordinary text).
pub fn redact_text(text: &str, secret: &str) -> String {
    if secret.len() < 4 {
        text.to_owned()
    } else {
        text.replace(secret, "***")
    }
}

/// Replaces every occurrence of `secret` in the error's messages with `***` (in case a server echoes
/// a credential back in an error text).
pub fn redact(e: Error, secret: &str) -> Error {
    if secret.len() < 4 {
        return e;
    }
    let r = |m: String| redact_text(&m, secret);
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

/// The WIT `cache-scope` of an MCP `cacheScope` (`public` / `private`; anything else is no hint).
pub fn cache_scope(scope: &str) -> Option<CacheScope> {
    match scope {
        "public" => Some(CacheScope::Public),
        "private" => Some(CacheScope::Private),
        _ => None,
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
    // Checked, not built: a document that starts with `{` or `[` and parses is an object or an array,
    // and the host parses it once (it needs the value); building it here too would be a second parse
    // of every result, with every allocation, inside the guest.
    serde_json::from_str::<serde::de::IgnoredAny>(trimmed).ok().map(|_| trimmed.to_owned())
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
mod tests;

/// The API-key header of a connection: `Authorization: Bearer <key>` for `authorization`, else
/// `<header>: <key>`.
pub fn api_key_header(key: &str, header: &str) -> Vec<(String, String)> {
    let header = header.trim();
    if header.is_empty() || header.eq_ignore_ascii_case("authorization") {
        vec![("Authorization".to_owned(), format!("Bearer {key}"))]
    } else {
        vec![(header.to_owned(), key.to_owned())]
    }
}
