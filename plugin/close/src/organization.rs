//! The organization a connection reaches, from Close's `org_info` tool: `Name (orga_…)`, or what
//! part of it can be found, whatever the shape of the answer (structured content, a JSON text, or
//! plain text naming an `orga_` id).

use claribi_connector_sdk::mcp_client::error::one_line;
use claribi_connector_sdk::mcp_client::{ToolCallResult, ToolContent};
use serde_json::Value;

/// `Name (orga_…)` from an `org_info` result, or what part of it can be found.
pub fn display_name(result: &ToolCallResult) -> Option<String> {
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
    use claribi_connector_sdk::mcp_client::client::parse_call_result;
    use serde_json::json;

    fn result(v: Value) -> ToolCallResult {
        parse_call_result(v).unwrap()
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
                display_name(&result(case.clone())).as_deref(),
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
        assert_eq!(display_name(&r).as_deref(), Some("Acme (42)"));
    }

    #[test]
    fn a_partial_organization_is_named_with_what_is_known() {
        assert_eq!(
            display_name(&result(json!({ "structuredContent": { "name": "Solo" } }))).as_deref(),
            Some("Solo")
        );
        assert_eq!(
            display_name(&result(
                json!({ "content": [{ "type": "text", "text": "Organization orga_XYZ9 (Acme)" }] })
            ))
            .as_deref(),
            Some("orga_XYZ9")
        );
        assert_eq!(
            display_name(&result(
                json!({ "content": [{ "type": "text", "text": "hello" }] })
            )),
            None
        );
    }
}
