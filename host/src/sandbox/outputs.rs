//! What a connector hands back — tool results, tool listings, account names, errors — converted to
//! the host's types and masked before the engine, the CLI or the database sees it: any credential
//! value of the connection in it becomes `[redacted]` ([`MaskSecrets`]). A connector holds only
//! placeholders, so a value could get here only through a server that echoed it in a form the
//! response masking did not know; this is the last check on the way out.

use crate::errors::{ConnectorError, HostError};
use crate::policy::tools::{Annotations, ListedTool};
use crate::sandbox::bindings::wit;
use serde::Serialize;
use serde_json::Value;

/// One content block of a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// Text.
    Text { text: String },
    /// An image (base64).
    Image { data: String, #[serde(rename = "mimeType")] mime_type: String },
    /// Audio (base64).
    Audio { data: String, #[serde(rename = "mimeType")] mime_type: String },
    /// Any other block, as MCP JSON.
    Other { value: Value },
}

/// A successful tool call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolOutput {
    /// The vendor's JSON result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// Human-readable blocks.
    pub content: Vec<Content>,
}

impl ToolOutput {
    /// The size of the result's content blocks in bytes, for the call log: counted, not serialized
    /// again (the structured copy of a result, when there is one, repeats its text block).
    pub fn approximate_bytes(&self) -> usize {
        self.content
            .iter()
            .map(|c| match c {
                Content::Text { text } => text.len(),
                Content::Image { data, .. } | Content::Audio { data, .. } => data.len(),
                Content::Other { value } => value.as_str().map_or(0, str::len),
            })
            .sum()
    }
}

/// A connector's tool result as the host's type.
pub fn tool_output(r: wit::ToolResult) -> Result<ToolOutput, HostError> {
    let structured = match r.structured_content {
        None => None,
        Some(s) => Some(serde_json::from_str::<Value>(&s).map_err(|e| {
            HostError::Connector(ConnectorError::Protocol { message: format!("the connector returned structured content that is not JSON ({e})") })
        })?),
    };
    let content = r
        .content
        .into_iter()
        .map(|b| match b {
            wit::ContentBlock::Text(text) => Content::Text { text },
            wit::ContentBlock::Image(m) => Content::Image { data: m.data, mime_type: m.mime_type },
            wit::ContentBlock::Audio(m) => Content::Audio { data: m.data, mime_type: m.mime_type },
            wit::ContentBlock::Other(json) => Content::Other { value: serde_json::from_str(&json).unwrap_or(Value::String(json)) },
        })
        .collect();
    Ok(ToolOutput { structured_content: structured, content })
}

/// A connector's listed tools as the host's type (schemas still text: [`crate::policy::tools::filter`]
/// reads them).
pub fn listed_tools(tools: Vec<wit::Tool>) -> Vec<ListedTool> {
    tools
        .into_iter()
        .map(|t| ListedTool {
            name: t.name,
            title: t.title,
            description: t.description,
            input_schema: t.input_schema,
            output_schema: t.output_schema,
            annotations: Annotations {
                read_only_hint: t.annotations.read_only_hint,
                destructive_hint: t.annotations.destructive_hint,
                idempotent_hint: t.annotations.idempotent_hint,
                open_world_hint: t.annotations.open_world_hint,
            },
        })
        .collect()
}

/// What a connector hands back, with the connection's credential values replaced by `[redacted]`.
pub trait MaskSecrets {
    /// Mask every text the value carries with `mask`, which returns the masked text, or `None` when
    /// the text holds nothing to mask (so a clean result is neither copied nor compared).
    fn mask_secrets(&mut self, mask: &dyn Fn(&str) -> Option<String>);
}

fn mask_in_place(text: &mut String, mask: &dyn Fn(&str) -> Option<String>) {
    if let Some(masked) = mask(text) {
        *text = masked;
    }
}

impl MaskSecrets for wit::ToolResult {
    fn mask_secrets(&mut self, mask: &dyn Fn(&str) -> Option<String>) {
        if let Some(s) = &mut self.structured_content {
            mask_in_place(s, mask);
        }
        for block in &mut self.content {
            match block {
                wit::ContentBlock::Text(t) | wit::ContentBlock::Other(t) => mask_in_place(t, mask),
                wit::ContentBlock::Image(m) | wit::ContentBlock::Audio(m) => mask_in_place(&mut m.data, mask),
            }
        }
    }
}

/// The MCP name of a listing's cache scope.
pub fn cache_scope_name(scope: wit::CacheScope) -> &'static str {
    match scope {
        wit::CacheScope::Public => "public",
        wit::CacheScope::Private => "private",
    }
}

impl MaskSecrets for wit::ToolListing {
    fn mask_secrets(&mut self, mask: &dyn Fn(&str) -> Option<String>) {
        for t in &mut self.tools {
            for text in [&mut t.title, &mut t.description, &mut t.output_schema].into_iter().flatten() {
                mask_in_place(text, mask);
            }
            mask_in_place(&mut t.input_schema, mask);
            // A name carrying a secret becomes `[redacted]`, which is no valid tool name: withheld.
            mask_in_place(&mut t.name, mask);
        }
    }
}

impl MaskSecrets for wit::Account {
    fn mask_secrets(&mut self, mask: &dyn Fn(&str) -> Option<String>) {
        if let Some(n) = &mut self.display_name {
            mask_in_place(n, mask);
        }
    }
}

/// The authorization URL is checked by the host itself (endpoint, redirect URI, PKCE, state,
/// resource, scopes); it carries no credential value a connector could know.
impl MaskSecrets for wit::AuthorizationRequest {
    fn mask_secrets(&mut self, _: &dyn Fn(&str) -> Option<String>) {}
}

impl MaskSecrets for wit::ConnectorInfo {
    fn mask_secrets(&mut self, _: &dyn Fn(&str) -> Option<String>) {}
}

impl MaskSecrets for () {
    fn mask_secrets(&mut self, _: &dyn Fn(&str) -> Option<String>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_a_result_carries_is_masked() {
        let mut r = wit::ToolResult {
            structured_content: Some(r#"{"k":"SECRET-1"}"#.into()),
            content: vec![
                wit::ContentBlock::Text("SECRET-1".into()),
                wit::ContentBlock::Other("{\"x\":\"SECRET-1\"}".into()),
                wit::ContentBlock::Image(wit::Media { data: "SECRET-1".into(), mime_type: "image/png".into() }),
            ],
        };
        r.mask_secrets(&|t| t.contains("SECRET-1").then(|| t.replace("SECRET-1", "[redacted]")));
        let out = tool_output(r).unwrap();
        assert!(!format!("{out:?}").contains("SECRET-1"));
    }

    #[test]
    fn structured_content_that_is_not_json_is_a_protocol_error() {
        let r = wit::ToolResult { structured_content: Some("{".into()), content: vec![] };
        assert_eq!(tool_output(r).unwrap_err().kind(), "protocol");
    }
}
