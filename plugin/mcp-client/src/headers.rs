//! The routing headers of MCP 2026-07-28 (SEP-2243): `Mcp-Method`, `Mcp-Name`, and the `Mcp-Param-*`
//! headers a tool asks for by marking properties of its input schema with `x-mcp-header`.
//!
//! ```
//! use mcp_client::headers::{encode_value, ParamHeader, param_headers};
//! use serde_json::json;
//!
//! let schema = json!({"type": "object", "properties": {
//!     "region": {"type": "string", "x-mcp-header": "Region"},
//!     "query": {"type": "string"}}});
//! let mapping = param_headers(schema.as_object().unwrap()).unwrap();
//! assert_eq!(mapping, vec![ParamHeader { path: vec!["region".into()], header: "Region".into() }]);
//!
//! // Values that cannot travel as a bare header value use the Base64 sentinel form.
//! assert_eq!(encode_value("us-west1"), "us-west1");
//! assert_eq!(encode_value("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
//! assert_eq!(encode_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
//!
//! // An annotation that breaks the rules makes the whole tool unusable (it is not listed).
//! let bad = json!({"type": "object", "properties": {"filter": {"type": "object", "x-mcp-header": "Filter"}}});
//! assert!(param_headers(bad.as_object().unwrap()).unwrap_err().contains("string, integer or boolean"));
//! ```

use crate::error::one_line;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The header naming the JSON-RPC method.
pub const MCP_METHOD: &str = "Mcp-Method";
/// The header naming the tool, prompt (`params.name`) or resource (`params.uri`) a request is about.
pub const MCP_NAME: &str = "Mcp-Name";
/// The prefix of mirrored tool arguments.
pub const MCP_PARAM_PREFIX: &str = "Mcp-Param-";

const SENTINEL_PREFIX: &str = "=?base64?";
const SENTINEL_SUFFIX: &str = "?=";

/// The most annotations read from one tool (a schema may be hostile).
pub const MAX_PARAM_HEADERS: usize = 32;
/// The longest header name accepted in an annotation.
const MAX_HEADER_NAME: usize = 64;

/// One `x-mcp-header` annotation: the argument at `path` (property names from the root) is sent as
/// `Mcp-Param-<header>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamHeader {
    pub path: Vec<String>,
    pub header: String,
}

/// The value of `Mcp-Name` for a request, if its method names something.
pub fn name_of(method: &str, params: Option<&Value>) -> Option<String> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    params?.get(key)?.as_str().map(encode_value)
}

/// A header value as sent: plain, or `=?base64?…?=` (RFC 4648 with padding, of the UTF-8 bytes) when
/// it has a character outside visible ASCII and space, leading or trailing whitespace, or already looks
/// like the sentinel.
pub fn encode_value(value: &str) -> String {
    let needs = !value.is_empty()
        && (value.starts_with([' ', '\t'])
            || value.ends_with([' ', '\t'])
            || value.chars().any(|c| !(' '..='~').contains(&c))
            || (value.starts_with(SENTINEL_PREFIX) && value.ends_with(SENTINEL_SUFFIX)));
    if needs {
        format!(
            "{SENTINEL_PREFIX}{}{SENTINEL_SUFFIX}",
            base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
        )
    } else {
        value.to_owned()
    }
}

/// The `Mcp-Param-*` headers of a `tools/call`: each annotated argument that is present and a string,
/// number or boolean (`null` and absent arguments send nothing).
pub fn param_values(mapping: &[ParamHeader], arguments: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in mapping {
        let mut value: Option<&Value> = None;
        let mut current = arguments;
        for (i, key) in p.path.iter().enumerate() {
            match current.get(key) {
                Some(Value::Object(inner)) if i + 1 < p.path.len() => current = inner,
                Some(v) if i + 1 == p.path.len() => value = Some(v),
                _ => break,
            }
        }
        let text = match value {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        out.push((format!("{MCP_PARAM_PREFIX}{}", p.header), encode_value(&text)));
    }
    out
}

/// The annotations of a tool's input schema, checked: each `x-mcp-header` must be a non-empty HTTP
/// token (RFC 9110 `tchar`), unique within the tool whatever its case, on a `string`, `integer` or
/// `boolean` property reached from the root through `properties` alone. The error says what is wrong.
pub fn param_headers(input_schema: &Map<String, Value>) -> Result<Vec<ParamHeader>, String> {
    if input_schema.contains_key("x-mcp-header") {
        return Err("x-mcp-header is on the schema root, not on a property".into());
    }
    if off_chain(input_schema, true, 0) {
        return Err("an x-mcp-header is not on a `properties`-only path from the root".into());
    }
    let mut found = Vec::new();
    collect(input_schema.get("properties"), &mut Vec::new(), &mut found, 0)?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (path, schema, header) in found {
        let prop = one_line(&path.join("."), 60);
        let Value::String(header) = header else {
            return Err(format!("property `{prop}`: x-mcp-header is not a string"));
        };
        if header.is_empty() {
            return Err(format!("property `{prop}`: x-mcp-header is empty"));
        }
        if header.len() > MAX_HEADER_NAME || !header.chars().all(is_tchar) {
            return Err(format!(
                "property `{prop}`: x-mcp-header `{}` is not a valid HTTP header name",
                one_line(header, 40)
            ));
        }
        if !seen.insert(header.to_ascii_lowercase()) {
            return Err(format!("property `{prop}`: x-mcp-header `{header}` is used twice (case-insensitively)"));
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("string" | "integer" | "boolean") => {}
            other => {
                return Err(format!(
                    "property `{prop}`: x-mcp-header must be on a string, integer or boolean property, not {}",
                    other.map(|t| one_line(t, 20)).unwrap_or_else(|| "an untyped one".into())
                ))
            }
        }
        out.push(ParamHeader { path: path.into_iter().map(str::to_owned).collect(), header: header.clone() });
        if out.len() > MAX_PARAM_HEADERS {
            return Err(format!("more than {MAX_PARAM_HEADERS} x-mcp-header annotations"));
        }
    }
    Ok(out)
}

/// How deep a schema is walked; deeper nesting is refused rather than followed.
const MAX_DEPTH: usize = 32;

type Found<'a> = (Vec<&'a str>, &'a Value, &'a Value);

fn collect<'a>(properties: Option<&'a Value>, path: &mut Vec<&'a str>, out: &mut Vec<Found<'a>>, depth: usize) -> Result<(), String> {
    let Some(Value::Object(properties)) = properties else { return Ok(()) };
    if depth > MAX_DEPTH {
        return Err("the input schema nests properties too deeply".into());
    }
    for (name, schema) in properties {
        path.push(name);
        if let Some(header) = schema.get("x-mcp-header") {
            out.push((path.clone(), schema, header));
            if out.len() > MAX_PARAM_HEADERS {
                return Err(format!("more than {MAX_PARAM_HEADERS} x-mcp-header annotations"));
            }
        }
        collect(schema.get("properties"), path, out, depth + 1)?;
        path.pop();
    }
    Ok(())
}

/// Whether `schema` holds an `x-mcp-header` off the `properties` chain (`on_chain`: `schema` is the
/// root or a property reached through `properties` alone). Too deep counts as off the chain.
fn off_chain(schema: &Map<String, Value>, on_chain: bool, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return true;
    }
    schema.iter().any(|(key, value)| match key.as_str() {
        "x-mcp-header" => !on_chain,
        "properties" => map_off_chain(value, on_chain, depth),
        "$defs" | "definitions" | "dependencies" | "dependentSchemas" | "patternProperties" => map_off_chain(value, false, depth),
        "default" | "const" | "enum" | "examples" | "dependentRequired" => false,
        _ => sub_off_chain(value, depth),
    })
}

fn map_off_chain(map: &Value, on_chain: bool, depth: usize) -> bool {
    map.as_object()
        .is_some_and(|m| m.values().any(|s| s.as_object().is_some_and(|s| off_chain(s, on_chain, depth + 1))))
}

fn sub_off_chain(value: &Value, depth: usize) -> bool {
    match value {
        Value::Object(s) => off_chain(s, false, depth + 1),
        Value::Array(items) => items.iter().any(|i| sub_off_chain(i, depth + 1)),
        _ => false,
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema_with(prop: Value) -> Map<String, Value> {
        json!({"type": "object", "properties": {"p": prop}}).as_object().unwrap().clone()
    }

    #[test]
    fn invalid_annotations_are_refused_as_the_conformance_suite_lists_them() {
        let table = [
            (json!({"type": "string", "x-mcp-header": ""}), "empty"),
            (json!({"type": "object", "x-mcp-header": "H"}), "not object"),
            (json!({"type": "array", "x-mcp-header": "H"}), "not array"),
            (json!({"type": "null", "x-mcp-header": "H"}), "not null"),
            (json!({"type": "number", "x-mcp-header": "H"}), "not number"),
            (json!({"x-mcp-header": "H"}), "untyped"),
            (json!({"type": "string", "x-mcp-header": "My Region"}), "space"),
            (json!({"type": "string", "x-mcp-header": "Region:Primary"}), "colon"),
            (json!({"type": "string", "x-mcp-header": "Région"}), "non-ASCII"),
            (json!({"type": "string", "x-mcp-header": "Region\t1"}), "control"),
            (json!({"type": "string", "x-mcp-header": 7}), "not a string"),
        ];
        for (prop, why) in table {
            assert!(param_headers(&schema_with(prop)).is_err(), "{why}");
        }
        let dup_same = json!({"properties": {"a": {"type": "string", "x-mcp-header": "Region"}, "b": {"type": "string", "x-mcp-header": "Region"}}});
        let dup_case = json!({"properties": {"a": {"type": "string", "x-mcp-header": "MyField"}, "b": {"type": "string", "x-mcp-header": "myfield"}}});
        let on_root = json!({"x-mcp-header": "Root", "properties": {}});
        let in_defs = json!({"$defs": {"d": {"type": "string", "x-mcp-header": "D"}}, "properties": {}});
        let in_items = json!({"properties": {"list": {"type": "array", "items": {"type": "string", "x-mcp-header": "I"}}}});
        for s in [dup_same, dup_case, on_root, in_defs, in_items] {
            assert!(param_headers(s.as_object().unwrap()).is_err(), "{s}");
        }
    }

    #[test]
    fn valid_annotations_map_arguments_to_headers_nested_ones_included() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "priority": {"type": "integer", "x-mcp-header": "Priority"},
            "verbose": {"type": "boolean", "x-mcp-header": "Verbose"},
            "empty_val": {"type": "string", "x-mcp-header": "EmptyVal"},
            "opts": {"type": "object", "properties": {"tenant": {"type": "string", "x-mcp-header": "Tenant"}}},
            "float_val": {"type": "number"}}});
        let mapping = param_headers(schema.as_object().unwrap()).unwrap();
        assert_eq!(mapping.len(), 5);
        let args = json!({"region": "us-west1", "priority": 42, "verbose": null, "empty_val": "", "opts": {"tenant": "Zürich"}, "float_val": 3.5});
        let mut headers = param_values(&mapping, args.as_object().unwrap());
        headers.sort();
        assert_eq!(
            headers,
            vec![
                ("Mcp-Param-EmptyVal".to_string(), "".to_string()),
                ("Mcp-Param-Priority".to_string(), "42".to_string()),
                ("Mcp-Param-Region".to_string(), "us-west1".to_string()),
                ("Mcp-Param-Tenant".to_string(), "=?base64?WsO8cmljaA==?=".to_string()),
            ]
        );
    }

    #[test]
    fn values_are_base64_wrapped_exactly_when_a_header_could_not_carry_them() {
        let table = [
            ("us west 1", false),
            ("", false),
            ("test-method", false),
            (" us-west1", true),
            ("us-west1 ", true),
            ("\tindented", true),
            ("line1\nline2", true),
            ("line1\r\nline2", true),
            ("Hello, 世界", true),
            ("=?base64?abc?=", true),
            ("\u{7f}", true),
        ];
        for (value, wrapped) in table {
            let encoded = encode_value(value);
            assert_eq!(encoded.starts_with("=?base64?"), wrapped, "{value:?}");
            if wrapped {
                let inner = encoded.strip_prefix("=?base64?").unwrap().strip_suffix("?=").unwrap();
                let decoded = base64::engine::general_purpose::STANDARD.decode(inner).unwrap();
                assert_eq!(decoded, value.as_bytes());
            } else {
                assert_eq!(encoded, value);
            }
        }
    }

    #[test]
    fn mcp_name_comes_from_the_name_or_the_uri() {
        assert_eq!(name_of("tools/call", Some(&json!({"name": "find_leads"}))).as_deref(), Some("find_leads"));
        assert_eq!(name_of("prompts/get", Some(&json!({"name": "p"}))).as_deref(), Some("p"));
        assert_eq!(name_of("resources/read", Some(&json!({"uri": "file:///a b"}))).as_deref(), Some("file:///a b"));
        assert_eq!(name_of("tools/call", Some(&json!({"name": "ünï"}))).as_deref(), Some("=?base64?w7xuw68=?="));
        assert_eq!(name_of("tools/list", Some(&json!({"name": "x"}))), None);
        assert_eq!(name_of("tools/call", None), None);
    }

    #[test]
    fn hostile_schemas_are_bounded() {
        let mut deep = json!({"type": "string", "x-mcp-header": "Deep"});
        for _ in 0..100 {
            deep = json!({"type": "object", "properties": {"n": deep}});
        }
        assert!(param_headers(deep.as_object().unwrap()).is_err());
        let many: Map<String, Value> = (0..100)
            .map(|i| (format!("p{i}"), json!({"type": "string", "x-mcp-header": format!("H{i}")})))
            .collect();
        let schema = json!({"properties": many});
        assert!(param_headers(schema.as_object().unwrap()).unwrap_err().contains("more than"));
    }
}
