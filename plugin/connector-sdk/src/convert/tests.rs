//! The conversions and the error mapping, with the wording of a server known only by its endpoint
//! (`Wording::MCP_SERVER`, the default scope problem).

use super::*;
use crate::testing::AnyServer;
use mcp_client::client::parse_call_result;
use serde_json::json;

fn map(e: McpError, ctx: &ErrorContext<'_>) -> Error {
    map_error::<AnyServer>(e, ctx)
}

fn ctx() -> ErrorContext<'static> {
    ErrorContext::new(CredentialKind::ApiKey, &[])
}

fn call_ctx() -> ErrorContext<'static> {
    ctx().for_tool("fetch_lead")
}

fn rpc(code: i64, message: &str) -> McpError {
    McpError::JsonRpc {
        code,
        message: message.to_owned(),
        data: None,
    }
}

fn unauthorized() -> McpError {
    McpError::Unauthorized {
        www_authenticate: Some("Bearer".into()),
        message: "HTTP 401".into(),
    }
}

#[test]
fn a_401_is_worded_after_the_credentials_in_use() {
    for (credentials, needle) in [
        (CredentialKind::None, "requires authorization"),
        (CredentialKind::ApiKey, "API key"),
        (CredentialKind::OAuth, "OAuth access token"),
    ] {
        let e = map(unauthorized(), &ErrorContext::new(credentials, &[]));
        assert!(
            matches!(&e, Error::Unauthorized(m) if m.contains(needle) && m.contains("Reconnect")),
            "{e:?}"
        );
    }
    assert_eq!(
        map(unauthorized(), &ctx()),
        Error::Unauthorized(
            "The MCP server rejected the API key (HTTP 401). Reconnect the connection.".into()
        )
    );
    let e = map(
        McpError::Unauthorized {
            www_authenticate: None,
            message: "HTTP 401".into(),
        },
        &ErrorContext::new(CredentialKind::OAuth, &[]),
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
            |e| matches!(e, Error::Unauthorized(m) if m == "The authorization failed: access was denied at the authorization server (access_denied)."),
        ),
        (
            McpError::Protocol("the authorization server does not offer PKCE with S256".into()),
            |e| matches!(e, Error::Protocol(m) if m.contains("S256") && m.ends_with('.')),
        ),
        (
            McpError::Protocol(
                "the protected-resource metadata is for `https://evil.example.com/mcp`, not for this MCP server".into(),
            ),
            |e| matches!(e, Error::Protocol(m) if m.starts_with("The authorization failed: ") && m.ends_with('.')),
        ),
        (
            McpError::Http {
                status: 503,
                message: "down".into(),
            },
            |e| matches!(e, Error::Upstream(u) if u.status == 503 && u.message == "The authorization server answered HTTP 503: down."),
        ),
        (McpError::Unavailable("refused".into()), |e| {
            matches!(e, Error::Unavailable(m) if m == "The authorization server could not be reached: refused.")
        }),
        (McpError::Denied("origin".into()), |e| {
            matches!(e, Error::DeniedByPolicy(m) if m == "The host refused a request made for the authorization: origin.")
        }),
    ];
    for (i, (error, check)) in cases.into_iter().enumerate() {
        let mapped = map_oauth_error::<AnyServer>(error);
        assert!(check(&mapped), "case {i}: {mapped:?}");
    }
}

#[test]
fn a_scope_challenge_names_the_missing_scopes_and_what_is_held() {
    let granted = vec!["mcp:basic".to_owned()];
    let e = map(
        McpError::InsufficientScope {
            required: vec!["mcp:basic".into(), "mcp:write".into()],
            www_authenticate: None,
            message: String::new(),
        },
        &ErrorContext::new(CredentialKind::OAuth, &granted),
    );
    assert_eq!(
        e,
        Error::InsufficientScope(ScopeProblem {
            required: vec!["mcp:basic".into(), "mcp:write".into()],
            granted: vec!["mcp:basic".into()],
            message: "Insufficient scope: the MCP server needs mcp:write. Reconnect and accept that scope.".into(),
        })
    );
    let e = map(
        McpError::InsufficientScope {
            required: vec![],
            www_authenticate: None,
            message: String::new(),
        },
        &ErrorContext::new(CredentialKind::OAuth, &granted),
    );
    assert!(
        matches!(e, Error::InsufficientScope(p) if p.required.is_empty() && p.message.ends_with('.'))
    );
}

#[test]
fn http_429_becomes_rate_limited_with_the_wait() {
    let e = map(
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
            message: "The MCP server is rate limiting requests (HTTP 429): slow down".into()
        })
    );
}

#[test]
fn other_http_errors_become_upstream_with_their_status() {
    for status in [400, 404, 500, 502, 503] {
        match map(
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
                map(rpc(-32602, message), &call_ctx()),
                Error::UnknownTool(_)
            ),
            "{message}"
        );
        assert!(is_unknown_tool(&rpc(-32602, message), "fetch_lead"));
    }
    assert_eq!(
        map(rpc(-32602, "Unknown tool: fetch_lead"), &call_ctx()),
        Error::UnknownTool(
            "The MCP server has no tool named `fetch_lead` (Unknown tool: fetch_lead); list the tools again.".into()
        )
    );
}

#[test]
fn other_invalid_params_become_invalid_arguments() {
    assert_eq!(
        map(rpc(-32602, "id: field required"), &call_ctx()),
        Error::InvalidArguments("The MCP server rejected the arguments: id: field required".into())
    );
    assert!(!is_unknown_tool(
        &rpc(-32602, "id: field required"),
        "fetch_lead"
    ));
}

#[test]
fn an_is_error_result_becomes_tool_failed_unless_it_says_the_tool_is_unknown() {
    assert_eq!(
        map(McpError::ToolFailed("Lead not found".into()), &call_ctx()),
        Error::ToolFailed("Lead not found".into())
    );
    assert!(matches!(
        map(
            McpError::ToolFailed("Unknown tool: fetch_lead".into()),
            &call_ctx()
        ),
        Error::UnknownTool(_)
    ));
    assert!(is_unknown_tool(
        &McpError::ToolFailed("Unknown tool: fetch_lead".into()),
        "fetch_lead"
    ));
}

#[test]
fn other_json_rpc_errors_are_tool_failures_in_a_call_and_protocol_errors_elsewhere() {
    assert!(
        matches!(map(rpc(-32603, "Internal error"), &call_ctx()), Error::ToolFailed(m) if m.contains("-32603"))
    );
    assert!(matches!(
        map(rpc(-32601, "Method not found"), &call_ctx()),
        Error::Protocol(_)
    ));
    assert!(matches!(
        map(rpc(-32602, "Invalid cursor"), &ctx()),
        Error::Protocol(_)
    ));
}

#[test]
fn json_rpc_errors_in_a_call_become_unknown_tool_invalid_arguments_or_tool_failed() {
    let ctx = ErrorContext::new(CredentialKind::None, &[]);
    let call = ctx.for_tool("add_numbers");
    assert!(matches!(
        map(rpc(-32602, "Tool add_numbers not found"), &call),
        Error::UnknownTool(_)
    ));
    assert!(matches!(
        map(rpc(-32602, "a: expected number"), &call),
        Error::InvalidArguments(_)
    ));
    assert!(matches!(
        map(rpc(-32603, "boom"), &call),
        Error::ToolFailed(_)
    ));
    assert!(matches!(map(rpc(-32603, "boom"), &ctx), Error::Protocol(_)));
}

#[test]
fn transport_failures_map_to_unavailable_denied_and_protocol() {
    assert!(matches!(
        map(McpError::Unavailable("refused".into()), &ctx()),
        Error::Unavailable(_)
    ));
    assert_eq!(
        map(McpError::Denied("origin".into()), &ctx()),
        Error::DeniedByPolicy("The host refused a request to the MCP server: origin".into())
    );
    assert!(matches!(
        map(McpError::Protocol("garbage".into()), &ctx()),
        Error::Protocol(_)
    ));
}

#[test]
fn a_credential_echoed_by_the_server_is_redacted_from_every_message() {
    let e = map(
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
            message: "The MCP server answered HTTP 400: bad key ***".into()
        })
    );
    let e = Error::ToolFailed("key api_SECRET123 rejected".into());
    assert_eq!(
        redact(e, "api_SECRET123"),
        Error::ToolFailed("key *** rejected".into())
    );
    assert_eq!(
        redact(Error::ToolFailed("bad key sk-123456".into()), "sk-123456"),
        Error::ToolFailed("bad key ***".into())
    );
    // Too short to be a credential worth masking.
    assert_eq!(redact_text("a b c", ""), "a b c");
    assert_eq!(redact_text("a b c", "b"), "a b c");
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
        json!({ "content": [{ "type": "text", "text": "3" }], "structuredContent": { "sum": 3 } }),
    ));
    assert_eq!(r.structured_content.as_deref(), Some("{\"sum\":3}"));
    assert_eq!(r.content, vec![WitContent::Text("3".into())]);
    let r = tool_result(result(
        json!({ "content": [{ "type": "text", "text": " [1, 2] " }] }),
    ));
    assert_eq!(r.structured_content.as_deref(), Some("[1, 2]"));
    let r = tool_result(result(
        json!({ "content": [{ "type": "text", "text": "{\"sum\":3}" }] }),
    ));
    assert_eq!(r.structured_content.as_deref(), Some("{\"sum\":3}"));
    for not_structured in [
        json!({ "content": [{ "type": "text", "text": "42" }] }),
        json!({ "content": [{ "type": "text", "text": "{broken" }] }),
        json!({ "content": [{ "type": "text", "text": "{\"a\":1} and more" }] }),
        json!({ "content": [{ "type": "text", "text": "[1, 2" }] }),
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
