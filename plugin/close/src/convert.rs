//! Conversions between `mcp-client` values and the WIT types: tools, results, the organization name,
//! and the error mapping (which `McpError` becomes which `error` case, with what message).

use crate::types::{
    ContentBlock as WitContent, Error, Media, RateLimit, ScopeProblem, Tool as WitTool,
    ToolAnnotations, ToolResult, UpstreamFailure,
};
use mcp_client::error::one_line;
use mcp_client::model::{ContentBlock, Tool};
use mcp_client::{McpError, ToolCallResult, ToolContent};
use serde_json::Value;

/// The message of a grant (or a key) without the read scope. Exactly this text: the host and the
/// operator's tooling recognise it.
pub const READ_SCOPE_MESSAGE: &str =
    "Insufficient scope: the Close account did not grant mcp.read. Reconnect and accept the read scope.";

/// What an error is about, to choose the right case and message.
#[derive(Debug, Clone, Copy)]
pub struct ErrorContext<'a> {
    /// The scope the credentials hold (API key: the `Close-Scope` sent).
    pub granted_scope: &'a str,
    /// The tool being called, for `call-tool`.
    pub tool: Option<&'a str>,
    /// The credentials are OAuth tokens (not an API key).
    pub oauth: bool,
}

impl<'a> ErrorContext<'a> {
    pub fn new(granted_scope: &'a str) -> Self {
        ErrorContext {
            granted_scope,
            tool: None,
            oauth: false,
        }
    }

    /// The same context for an OAuth connection.
    pub fn with_oauth(self, oauth: bool) -> Self {
        ErrorContext { oauth, ..self }
    }

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

/// Maps a client error onto the WIT `error` variant. Messages are one sentence, without secrets.
pub fn map_error(e: McpError, ctx: &ErrorContext<'_>) -> Error {
    match e {
        McpError::Unauthorized { .. } if ctx.oauth => Error::Unauthorized(
            "Close rejected the OAuth access token (HTTP 401) and it could not be renewed. Reconnect the connection.".to_owned(),
        ),
        McpError::Unauthorized { .. } => Error::Unauthorized(
            "Close rejected the credentials (HTTP 401). Reconnect the connection.".to_owned(),
        ),
        McpError::InsufficientScope { required, .. } => insufficient_scope(required, ctx),
        McpError::RateLimited {
            retry_after_ms,
            message,
            ..
        } => Error::RateLimited(RateLimit {
            retry_after_ms,
            message: format!("Close is rate limiting requests (HTTP 429): {message}"),
        }),
        McpError::Http { status, message } => Error::Upstream(UpstreamFailure {
            status,
            message: format!("Close answered HTTP {status}: {message}"),
        }),
        McpError::JsonRpc { code, message, .. } => match ctx.tool {
            Some(tool) if code == INVALID_PARAMS && mentions_unknown_tool(&message, tool) => {
                unknown_tool(tool, &message)
            }
            Some(_) if code == INVALID_PARAMS => {
                Error::InvalidArguments(format!("Close rejected the arguments: {message}"))
            }
            Some(tool) if code != METHOD_NOT_FOUND => Error::ToolFailed(format!(
                "Close could not run `{}`: {message} (JSON-RPC error {code})",
                one_line(tool, 80)
            )),
            _ => Error::Protocol(format!(
                "Close answered with JSON-RPC error {code}: {message}"
            )),
        },
        McpError::ToolFailed(text) => match ctx.tool {
            Some(tool) if mentions_unknown_tool(&text, tool) => unknown_tool(tool, &text),
            _ => Error::ToolFailed(text),
        },
        McpError::Unavailable(m) => Error::Unavailable(format!("Close could not be reached: {m}")),
        McpError::Denied(m) => {
            Error::DeniedByPolicy(format!("The host refused a request to Close: {m}"))
        }
        McpError::Protocol(m) => Error::Protocol(format!(
            "Close answered something this connector cannot understand: {m}"
        )),
    }
}

/// Maps a failure of the OAuth flow (discovery, registration, the redirect, the code exchange,
/// revocation, a refused refresh) onto the WIT `error` variant, keeping the library's explanation.
pub fn map_oauth_error(e: McpError) -> Error {
    match e {
        McpError::Unauthorized { message, .. } => {
            Error::Unauthorized(sentence("The Close authorization failed: ", &message))
        }
        McpError::Protocol(m) => Error::Protocol(sentence("The Close authorization failed: ", &m)),
        McpError::Http { status, message } => Error::Upstream(UpstreamFailure {
            status,
            message: sentence(
                &format!("Close's authorization server answered HTTP {status}: "),
                &message,
            ),
        }),
        McpError::Unavailable(m) => Error::Unavailable(sentence(
            "Close's authorization server could not be reached: ",
            &m,
        )),
        McpError::Denied(m) => Error::DeniedByPolicy(sentence(
            "The host refused a request to Close's authorization server: ",
            &m,
        )),
        other => map_error(other, &ErrorContext::new("mcp.read").with_oauth(true)),
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
        "Close has no tool named `{}` for this connection ({server_message}); list the tools again.",
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
        && (m.contains("not found")
            || m.contains("unknown")
            || m.contains("does not exist")
            || m.contains("not exist"))
}

fn insufficient_scope(required: Vec<String>, ctx: &ErrorContext<'_>) -> Error {
    let granted = vec![ctx.granted_scope.to_owned()];
    let required = if required.is_empty() {
        granted.clone()
    } else {
        required
    };
    let missing: Vec<String> = required
        .iter()
        .filter(|s| !granted.contains(s))
        .cloned()
        .collect();
    let message = if required.iter().any(|s| s == "mcp.read")
        && (missing.is_empty() || missing.iter().any(|s| s == "mcp.read"))
    {
        READ_SCOPE_MESSAGE.to_owned()
    } else {
        let lacking = if missing.is_empty() {
            &required
        } else {
            &missing
        };
        one_line(
            &format!(
                "Insufficient scope: the Close account did not grant {}. Reconnect and accept {}.",
                lacking.join(" "),
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
        granted,
        message,
    })
}

/// Replaces every occurrence of `secret` in the error's messages with `***` (in case a server echoes
/// a credential back in an error text).
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

/// `Name (orga_…)` from an `org_info` result, or what part of it can be found.
pub fn organization_display_name(result: &ToolCallResult) -> Option<String> {
    let value = result.structured_content.clone().or_else(|| {
        result
            .content
            .iter()
            .filter_map(ToolContent::as_text)
            .find_map(|t| serde_json::from_str::<Value>(t.trim()).ok())
    });
    let (name, id) = match &value {
        Some(v) => find_organization(v, 0).unwrap_or_else(|| (top_level_name(v), None)),
        None => {
            let text: String = result
                .content
                .iter()
                .filter_map(ToolContent::as_text)
                .collect::<Vec<_>>()
                .join(" ");
            (None, find_org_id_in_text(&text))
        }
    };
    let name = name.map(|n| one_line(&n, 100)).filter(|n| !n.is_empty());
    let id = id.map(|i| one_line(&i, 60));
    match (name, id) {
        (Some(n), Some(i)) => Some(format!("{n} ({i})")),
        (Some(n), None) => Some(n),
        (None, Some(i)) => Some(i),
        (None, None) => None,
    }
}

fn is_org_id(s: &str) -> bool {
    s.starts_with("orga_")
        && s.len() > 5
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn str_field(obj: &serde_json::Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

/// Depth-first search for the organization: an object whose `id` is an `orga_` id (its `name`), or an
/// object with `organization_id` (and `organization_name`). Prefers `organization`-like members.
fn find_organization(v: &Value, depth: usize) -> Option<(Option<String>, Option<String>)> {
    if depth > 6 {
        return None;
    }
    match v {
        Value::Object(obj) => {
            if let Some(id) = obj
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| is_org_id(id))
            {
                return Some((
                    str_field(obj, &["name", "display_name"]),
                    Some(id.to_owned()),
                ));
            }
            for key in ["organization", "org", "organization_info", "data"] {
                if let Some(found) = obj
                    .get(key)
                    .and_then(|inner| find_organization(inner, depth + 1))
                {
                    return Some(found);
                }
            }
            // An `organization` member named so, whatever its id looks like.
            for key in ["organization", "org"] {
                if let Some(Value::Object(org)) = obj.get(key) {
                    let id = str_field(org, &["id"]);
                    let name = str_field(org, &["name", "display_name"]);
                    if id.is_some() || name.is_some() {
                        return Some((name, id));
                    }
                }
            }
            if let Some(id) = obj
                .get("organization_id")
                .and_then(Value::as_str)
                .filter(|id| is_org_id(id))
            {
                return Some((
                    str_field(obj, &["organization_name", "org_name"]),
                    Some(id.to_owned()),
                ));
            }
            obj.values()
                .find_map(|inner| find_organization(inner, depth + 1))
        }
        Value::Array(items) => items
            .iter()
            .take(50)
            .find_map(|inner| find_organization(inner, depth + 1)),
        _ => None,
    }
}

fn top_level_name(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    str_field(obj, &["organization_name", "name", "display_name"])
}

fn find_org_id_in_text(text: &str) -> Option<String> {
    let start = text.find("orga_")?;
    let id: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect();
    is_org_id(&id).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_client::client::parse_call_result;
    use serde_json::json;

    fn ctx() -> ErrorContext<'static> {
        ErrorContext::new("mcp.read")
    }

    fn call_ctx() -> ErrorContext<'static> {
        ErrorContext::new("mcp.read").for_tool("fetch_lead")
    }

    fn rpc(code: i64, message: &str) -> McpError {
        McpError::JsonRpc {
            code,
            message: message.to_owned(),
            data: None,
        }
    }

    #[test]
    fn http_401_becomes_unauthorized_asking_to_reconnect() {
        let e = map_error(
            McpError::Unauthorized {
                www_authenticate: Some("Bearer".into()),
                message: "HTTP 401".into(),
            },
            &ctx(),
        );
        assert_eq!(
            e,
            Error::Unauthorized(
                "Close rejected the credentials (HTTP 401). Reconnect the connection.".into()
            )
        );
    }

    #[test]
    fn http_401_on_an_oauth_connection_says_the_token_could_not_be_renewed() {
        let e = map_error(
            McpError::Unauthorized {
                www_authenticate: None,
                message: "HTTP 401".into(),
            },
            &ctx().with_oauth(true),
        );
        assert!(
            matches!(e, Error::Unauthorized(m) if m.contains("OAuth") && m.ends_with("Reconnect the connection."))
        );
    }

    #[test]
    fn oauth_flow_failures_keep_their_explanation_as_one_sentence() {
        type Check = fn(&Error) -> bool;
        let cases: Vec<(McpError, Check)> = vec![
            (
                McpError::Unauthorized {
                    www_authenticate: None,
                    message: "access was denied at the authorization server (access_denied)".into(),
                },
                |e| matches!(e, Error::Unauthorized(m) if m == "The Close authorization failed: access was denied at the authorization server (access_denied)."),
            ),
            (
                McpError::Protocol("the authorization server does not offer PKCE with S256".into()),
                |e| matches!(e, Error::Protocol(m) if m.contains("S256") && m.ends_with('.')),
            ),
            (
                McpError::Http {
                    status: 503,
                    message: "down".into(),
                },
                |e| matches!(e, Error::Upstream(u) if u.status == 503),
            ),
            (McpError::Unavailable("refused".into()), |e| {
                matches!(e, Error::Unavailable(_))
            }),
            (McpError::Denied("origin".into()), |e| {
                matches!(e, Error::DeniedByPolicy(_))
            }),
        ];
        for (i, (error, check)) in cases.into_iter().enumerate() {
            let mapped = map_oauth_error(error);
            assert!(check(&mapped), "case {i}: {mapped:?}");
        }
    }

    #[test]
    fn a_missing_read_scope_gets_the_read_scope_message() {
        let e = map_error(
            McpError::InsufficientScope {
                required: vec!["mcp.read".into()],
                www_authenticate: None,
                message: String::new(),
            },
            &ErrorContext::new("mcp.write_safe"),
        );
        assert_eq!(
            e,
            Error::InsufficientScope(ScopeProblem {
                required: vec!["mcp.read".into()],
                granted: vec!["mcp.write_safe".into()],
                message: "Insufficient scope: the Close account did not grant mcp.read. Reconnect and accept the read scope.".into(),
            })
        );
    }

    #[test]
    fn a_missing_higher_scope_names_that_scope() {
        let e = map_error(
            McpError::InsufficientScope {
                required: vec!["mcp.read".into(), "mcp.write_safe".into()],
                www_authenticate: None,
                message: String::new(),
            },
            &ctx(),
        );
        match e {
            Error::InsufficientScope(p) => {
                assert_eq!(p.granted, vec!["mcp.read"]);
                assert_eq!(p.message, "Insufficient scope: the Close account did not grant mcp.write_safe. Reconnect and accept that scope.");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_scope_challenge_without_scopes_requires_the_scope_in_use() {
        let e = map_error(
            McpError::InsufficientScope {
                required: vec![],
                www_authenticate: None,
                message: String::new(),
            },
            &ctx(),
        );
        assert!(
            matches!(e, Error::InsufficientScope(p) if p.required == ["mcp.read"] && p.message.contains("read scope"))
        );
    }

    #[test]
    fn http_429_becomes_rate_limited_with_the_wait() {
        let e = map_error(
            McpError::RateLimited {
                retry_after_ms: Some(1000),
                limit: None,
                message: "slow down".into(),
            },
            &ctx(),
        );
        assert_eq!(
            e,
            Error::RateLimited(RateLimit {
                retry_after_ms: Some(1000),
                message: "Close is rate limiting requests (HTTP 429): slow down".into()
            })
        );
    }

    #[test]
    fn other_http_errors_become_upstream_with_their_status() {
        for status in [400, 404, 500, 502, 503] {
            match map_error(
                McpError::Http {
                    status,
                    message: "x".into(),
                },
                &ctx(),
            ) {
                Error::Upstream(u) => assert_eq!(u.status, status),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn invalid_params_naming_an_unknown_tool_becomes_unknown_tool() {
        for message in [
            "Unknown tool: fetch_lead",
            "Tool fetch_lead not found",
            "tool 'fetch_lead' does not exist",
        ] {
            assert!(
                matches!(
                    map_error(rpc(-32602, message), &call_ctx()),
                    Error::UnknownTool(_)
                ),
                "{message}"
            );
        }
    }

    #[test]
    fn other_invalid_params_become_invalid_arguments() {
        assert_eq!(
            map_error(rpc(-32602, "id: field required"), &call_ctx()),
            Error::InvalidArguments("Close rejected the arguments: id: field required".into())
        );
    }

    #[test]
    fn an_is_error_result_becomes_tool_failed_unless_it_says_the_tool_is_unknown() {
        assert_eq!(
            map_error(McpError::ToolFailed("Lead not found".into()), &call_ctx()),
            Error::ToolFailed("Lead not found".into())
        );
        assert!(matches!(
            map_error(
                McpError::ToolFailed("Unknown tool: fetch_lead".into()),
                &call_ctx()
            ),
            Error::UnknownTool(_)
        ));
    }

    #[test]
    fn other_json_rpc_errors_are_tool_failures_in_a_call_and_protocol_errors_elsewhere() {
        assert!(
            matches!(map_error(rpc(-32603, "Internal error"), &call_ctx()), Error::ToolFailed(m) if m.contains("-32603"))
        );
        assert!(matches!(
            map_error(rpc(-32601, "Method not found"), &call_ctx()),
            Error::Protocol(_)
        ));
        assert!(matches!(
            map_error(rpc(-32602, "Invalid cursor"), &ctx()),
            Error::Protocol(_)
        ));
    }

    #[test]
    fn transport_failures_map_to_unavailable_denied_and_protocol() {
        assert!(matches!(
            map_error(McpError::Unavailable("refused".into()), &ctx()),
            Error::Unavailable(_)
        ));
        assert!(matches!(
            map_error(McpError::Denied("origin".into()), &ctx()),
            Error::DeniedByPolicy(_)
        ));
        assert!(matches!(
            map_error(McpError::Protocol("garbage".into()), &ctx()),
            Error::Protocol(_)
        ));
    }

    #[test]
    fn a_credential_echoed_by_the_server_is_redacted_from_every_message() {
        let e = map_error(
            McpError::Http {
                status: 400,
                message: "bad key api_SECRET123".into(),
            },
            &ctx(),
        );
        assert_eq!(
            redact(e, "api_SECRET123"),
            Error::Upstream(UpstreamFailure {
                status: 400,
                message: "Close answered HTTP 400: bad key ***".into()
            })
        );
        let e = Error::ToolFailed("key api_SECRET123 rejected".into());
        assert_eq!(
            redact(e, "api_SECRET123"),
            Error::ToolFailed("key *** rejected".into())
        );
    }

    #[test]
    fn tools_keep_their_schema_title_and_hints() {
        let t: Tool = serde_json::from_value(json!({
            "name": "fetch_lead",
            "description": "Fetch a lead",
            "inputSchema": { "type": "object", "properties": { "id": { "type": "string" } }, "required": ["id"] },
            "outputSchema": { "type": "object" },
            "annotations": { "title": "Fetch Lead", "readOnlyHint": true, "openWorldHint": false }
        }))
        .unwrap();
        let w = tool(t);
        assert_eq!(w.name, "fetch_lead");
        assert_eq!(w.title.as_deref(), Some("Fetch Lead"));
        assert_eq!(w.description.as_deref(), Some("Fetch a lead"));
        let schema: Value = serde_json::from_str(&w.input_schema).unwrap();
        assert_eq!(schema["required"], json!(["id"]));
        assert_eq!(w.output_schema.as_deref(), Some(r#"{"type":"object"}"#));
        assert_eq!(w.annotations.read_only_hint, Some(true));
        assert_eq!(w.annotations.open_world_hint, Some(false));
        assert_eq!(w.annotations.destructive_hint, None);
    }

    #[test]
    fn a_tools_own_title_wins_over_the_annotation_title() {
        let t: Tool = serde_json::from_value(json!({ "name": "a", "title": "Own", "inputSchema": {}, "annotations": { "title": "Ann" } })).unwrap();
        assert_eq!(tool(t).title.as_deref(), Some("Own"));
    }

    fn result(v: Value) -> ToolCallResult {
        parse_call_result(v).unwrap()
    }

    #[test]
    fn structured_content_is_the_servers_or_else_the_single_json_text_block() {
        let r = tool_result(result(
            json!({ "content": [{ "type": "text", "text": "x" }], "structuredContent": { "a": 1 } }),
        ));
        assert_eq!(r.structured_content.as_deref(), Some(r#"{"a":1}"#));
        let r = tool_result(result(
            json!({ "content": [{ "type": "text", "text": " [1, 2] " }] }),
        ));
        assert_eq!(r.structured_content.as_deref(), Some("[1, 2]"));
        for not_structured in [
            json!({ "content": [{ "type": "text", "text": "42" }] }),
            json!({ "content": [{ "type": "text", "text": "{broken" }] }),
            json!({ "content": [{ "type": "text", "text": "{}" }, { "type": "text", "text": "{}" }] }),
            json!({ "content": [] }),
        ] {
            assert_eq!(
                tool_result(result(not_structured.clone())).structured_content,
                None,
                "{not_structured}"
            );
        }
    }

    #[test]
    fn content_blocks_are_mapped_in_order() {
        let r = tool_result(result(json!({ "content": [
            { "type": "text", "text": "hi" },
            { "type": "image", "data": "aW1n", "mimeType": "image/png" },
            { "type": "audio", "data": "YXVk", "mimeType": "audio/wav" },
            { "type": "resource_link", "uri": "https://app.close.com/lead/lead_1", "name": "lead" },
            { "type": "mystery", "x": 1 }
        ] })));
        assert_eq!(r.content[0], WitContent::Text("hi".into()));
        assert_eq!(
            r.content[1],
            WitContent::Image(Media {
                data: "aW1n".into(),
                mime_type: "image/png".into()
            })
        );
        assert_eq!(
            r.content[2],
            WitContent::Audio(Media {
                data: "YXVk".into(),
                mime_type: "audio/wav".into()
            })
        );
        match &r.content[3] {
            WitContent::Other(json) => {
                let v: Value = serde_json::from_str(json).unwrap();
                assert_eq!(v["type"], "resource_link");
                assert_eq!(v["uri"], "https://app.close.com/lead/lead_1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.content[4],
            WitContent::Other(r#"{"type":"mystery","x":1}"#.into())
        );
    }

    #[test]
    fn the_organization_is_named_with_its_id_whatever_the_shape() {
        let cases = [
            json!({ "structuredContent": { "id": "orga_abc", "name": "Acme Corp" } }),
            json!({ "content": [{ "type": "text", "text": "{\"organization\": {\"id\": \"orga_abc\", \"name\": \"Acme Corp\"}, \"user\": {\"id\": \"user_1\", \"name\": \"Jo\"}}" }] }),
            json!({ "structuredContent": { "user": { "id": "user_1", "name": "Jo", "organization_id": "orga_abc", "organization_name": "Acme Corp" } } }),
            json!({ "structuredContent": { "data": [{ "id": "orga_abc", "name": "Acme Corp" }] } }),
        ];
        for case in cases {
            assert_eq!(
                organization_display_name(&result(case.clone())).as_deref(),
                Some("Acme Corp (orga_abc)"),
                "{case}"
            );
        }
    }

    #[test]
    fn an_organization_member_is_used_even_with_an_unusual_id() {
        let r = result(
            json!({ "structuredContent": { "organization": { "id": "42", "name": "Acme" } } }),
        );
        assert_eq!(organization_display_name(&r).as_deref(), Some("Acme (42)"));
    }

    #[test]
    fn a_partial_organization_is_named_with_what_is_known() {
        assert_eq!(
            organization_display_name(&result(json!({ "structuredContent": { "name": "Solo" } })))
                .as_deref(),
            Some("Solo")
        );
        assert_eq!(
            organization_display_name(&result(
                json!({ "content": [{ "type": "text", "text": "Organization orga_XYZ9 (Acme)" }] })
            ))
            .as_deref(),
            Some("orga_XYZ9")
        );
        assert_eq!(
            organization_display_name(&result(
                json!({ "content": [{ "type": "text", "text": "hello" }] })
            )),
            None
        );
    }
}
