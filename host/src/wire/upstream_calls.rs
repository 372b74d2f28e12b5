//! Which MCP tools an outgoing request would call: the host's own reading of a request body, so that
//! the write-tool blocklist holds even against a connector that lies.
//!
//! The blocklist ([`crate::policy::blocklist`]) already decides which tools a connection lists and which
//! names a caller may invoke. A hostile connector could still send `tools/call delete_lead` upstream
//! while the host thinks it is running `find_leads`. So the send-request hook ([`crate::wire::outbound`])
//! reads every JSON body it forwards with [`tool_calls`] and refuses the request when a `tools/call`
//! names a tool the blocklist withholds.
//!
//! The reading is deliberately stricter than a JSON-RPC server's:
//!
//! * a JSON body (first byte `{` or `[`, after whitespace or a byte-order mark) that does not parse
//!   is refused — a server might read what we could not;
//! * duplicate keys are kept, not collapsed: a message with two `method` or two `params` keys is
//!   refused, and every `name` of a `tools/call`'s `params` is checked (a server may take the first
//!   or the last);
//! * escapes are decoded before comparing (`"\u0064elete_lead"` is `delete_lead`);
//! * batches (arrays of messages) are read message by message;
//! * the MCP 2026-07-28 routing headers ([`tool_calls_with_routing`]) must agree with the body — one
//!   `Mcp-Method` equal to the body's method, one `Mcp-Name` equal (Base64 form decoded) to the tool a
//!   `tools/call` names — and the `Mcp-Name` is checked like a called tool, since a gateway may route
//!   by the header alone.
//!
//! Bodies that are not JSON (an OAuth token request is form-encoded) pass — but only as plain UTF-8
//! text: [`tool_calls_in_request`] first refuses what a server could decode into JSON the host did not
//! read — a `Content-Encoding` other than `identity` (Express decompresses gzip by itself), a charset
//! other than UTF-8 (the TypeScript SDK decodes by the declared charset), a body that is not UTF-8 or
//! holds a NUL byte (Python's `json.loads` detects UTF-16 and UTF-32 on its own), and a body declared
//! as JSON that does not parse as JSON.
//!
//! ```
//! use claribi_host::wire::upstream_calls::tool_calls;
//! let body = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_lead","arguments":{}}}"#;
//! assert_eq!(tool_calls(body).unwrap(), vec!["delete_lead".to_string()]);
//! assert!(tool_calls(b"grant_type=refresh_token&refresh_token=x").unwrap().is_empty());
//! ```

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A JSON value that keeps duplicate keys in order.
#[derive(Debug)]
enum Json {
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
    String(String),
    Other,
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element()? {
                    items.push(v);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    entries.push((k, v));
                }
                Ok(Json::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

fn entries<'a>(entries: &'a [(String, Json)], key: &str) -> Vec<&'a Json> {
    entries.iter().filter(|(k, _)| k == key).map(|(_, v)| v).collect()
}

/// Whether a body is JSON by its first significant byte.
fn looks_like_json(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    matches!(body.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{') | Some(b'['))
}

/// The tool names of every `tools/call` in a request body (empty for a body that is not JSON, or
/// JSON that calls no tool). An error says why the body cannot be read safely.
pub fn tool_calls(body: &[u8]) -> Result<Vec<String>, String> {
    if !looks_like_json(body) {
        return Ok(vec![]);
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let json: Json = serde_json::from_slice(body).map_err(|e| format!("its JSON body does not parse ({e})"))?;
    let messages = match &json {
        Json::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut names = Vec::new();
    for m in messages {
        let Json::Object(fields) = m else { continue };
        let methods = entries(fields, "method");
        if methods.len() > 1 {
            return Err("a JSON-RPC message in its body has more than one `method`".into());
        }
        if !matches!(methods.first(), Some(Json::String(m)) if m == "tools/call") {
            continue;
        }
        let params = entries(fields, "params");
        let [Json::Object(params)] = params.as_slice() else {
            return Err("its `tools/call` has no single `params` object".into());
        };
        let called = entries(params, "name");
        if called.is_empty() {
            return Err("its `tools/call` names no tool".into());
        }
        for n in called {
            match n {
                Json::String(s) => names.push(s.clone()),
                _ => return Err("its `tools/call` names a tool with something other than a string".into()),
            }
        }
    }
    Ok(names)
}

/// The MCP 2026-07-28 routing headers of a request (SEP-2243), every value as sent: a gateway in
/// front of a server may route by them instead of reading the body.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoutingHeaders {
    /// Every `Mcp-Method` value.
    pub methods: Vec<String>,
    /// Every `Mcp-Name` value (possibly `=?base64?…?=`).
    pub names: Vec<String>,
}

/// [`tool_calls_in_request`], and the routing headers must agree with the body: at most one
/// `Mcp-Method` and one `Mcp-Name`; `Mcp-Method` equal to the method of a single JSON-RPC message;
/// for a `tools/call`, `Mcp-Name` (decoded) equal to the tool the body names. Every `Mcp-Name` is
/// returned among the called tools, so a name the blocklist withholds is refused whichever of the
/// header and the body a server reads.
pub fn tool_calls_with_routing(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    routing: &RoutingHeaders,
    body: &[u8],
) -> Result<Vec<String>, String> {
    let mut names = tool_calls_in_request(content_type, content_encoding, body)?;
    if routing.methods.len() > 1 || routing.names.len() > 1 {
        return Err("it has more than one Mcp-Method or Mcp-Name header".into());
    }
    let header_name = match routing.names.first() {
        Some(v) => Some(decode_routing_value(v).ok_or("its Mcp-Name header is not valid (a Base64 value that does not decode to UTF-8)")?),
        None => None,
    };
    if let Some(method) = routing.methods.first() {
        let body_method = single_method(body).ok_or("it has an Mcp-Method header but its body is not one JSON-RPC request")?;
        if body_method != *method {
            return Err(format!("its Mcp-Method header (`{}`) disagrees with its body (`{}`)", short(method), short(&body_method)));
        }
        if method == "tools/call" {
            if let Some(h) = &header_name {
                if names.iter().any(|n| n != h) {
                    return Err(format!("its Mcp-Name header (`{}`) disagrees with the tool its body calls", short(h)));
                }
            }
        }
    }
    if let Some(h) = header_name {
        names.push(h);
    }
    Ok(names)
}

/// A routing header value: plain, or the Base64 sentinel `=?base64?…?=` decoded.
fn decode_routing_value(value: &str) -> Option<String> {
    use base64::Engine;
    match value.strip_prefix("=?base64?").and_then(|v| v.strip_suffix("?=")) {
        Some(inner) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(inner).ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(value.to_string()),
    }
}

/// The `method` of a body that is one JSON-RPC message with exactly one `method`.
fn single_method(body: &[u8]) -> Option<String> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let json: Json = serde_json::from_slice(body).ok()?;
    let Json::Object(fields) = json else { return None };
    match entries(&fields, "method").as_slice() {
        [Json::String(m)] => Some(m.clone()),
        _ => None,
    }
}

/// [`tool_calls`] for a request as a server would read it: `content_type` and `content_encoding` are
/// the request's headers. Anything the host cannot read as plain UTF-8 (see the module docs) is an
/// error, whatever it holds.
pub fn tool_calls_in_request(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
) -> Result<Vec<String>, String> {
    if let Some(enc) = content_encoding.map(str::trim).filter(|e| !e.is_empty()) {
        if !enc.eq_ignore_ascii_case("identity") {
            return Err(format!("its body is encoded (Content-Encoding: {}), which the host does not read", short(enc)));
        }
    }
    let declared_json = content_type.is_some_and(|t| t.to_ascii_lowercase().contains("json"));
    if let Some(t) = content_type {
        for param in t.split(';').skip(1) {
            if let Some((k, v)) = param.split_once('=') {
                let v = v.trim().trim_matches('"');
                if k.trim().eq_ignore_ascii_case("charset") && !v.eq_ignore_ascii_case("utf-8") && !v.eq_ignore_ascii_case("utf8") {
                    return Err(format!("its body declares the charset `{}`; only UTF-8 is read", short(v)));
                }
            }
        }
    }
    if body.is_empty() {
        return Ok(vec![]);
    }
    if std::str::from_utf8(body).is_err() || body.contains(&0) {
        return Err("its body is not plain UTF-8 text (a server might still decode it as JSON)".into());
    }
    if declared_json && !looks_like_json(body) {
        return Err("its body is declared JSON but does not start as a JSON object or array".into());
    }
    tool_calls(body)
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(methods: &[&str], names: &[&str]) -> RoutingHeaders {
        RoutingHeaders { methods: methods.iter().map(|s| s.to_string()).collect(), names: names.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn routing_headers_must_agree_with_the_body_and_their_tool_is_checked_too() {
        let json = Some("application/json");
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"find_leads"}}"#;
        let ok = |m: &[&str], n: &[&str], b: &[u8]| tool_calls_with_routing(json, None, &routing(m, n), b);
        assert_eq!(ok(&["tools/call"], &["find_leads"], call).unwrap(), vec!["find_leads", "find_leads"]);
        assert_eq!(ok(&[], &[], call).unwrap(), vec!["find_leads"]);
        // A gateway routing by the header would call `delete_lead`.
        assert!(ok(&["tools/call"], &["delete_lead"], call).unwrap_err().contains("Mcp-Name"));
        assert!(ok(&["tools/list"], &[], call).unwrap_err().contains("Mcp-Method"));
        assert!(ok(&["tools/call", "tools/call"], &[], call).is_err());
        assert!(ok(&[], &["a", "b"], call).is_err());
        // A name header on a body that is no tools/call still counts as a called tool.
        let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert_eq!(ok(&[], &["delete_lead"], list).unwrap(), vec!["delete_lead"]);
        // The Base64 form is decoded before comparing.
        let encoded = "=?base64?ZGVsZXRlX2xlYWQ=?=";
        assert_eq!(ok(&[], &[encoded], list).unwrap(), vec!["delete_lead"]);
        assert!(ok(&["tools/call"], &[encoded], call).is_err());
        assert!(ok(&[], &["=?base64?!!!?="], list).is_err());
        // A method header on a batch or a non-JSON body is refused.
        assert!(ok(&["tools/call"], &[], b"grant_type=x").is_err());
        assert!(ok(&["tools/list"], &[], format!("[{}]", std::str::from_utf8(list).unwrap()).as_bytes()).is_err());
    }

    #[test]
    fn bodies_a_server_could_decode_otherwise_are_refused() {
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_lead"}}"#;
        let utf16be: Vec<u8> = call.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        let utf16le_bom: Vec<u8> = [0xFF, 0xFE].into_iter().chain(call.encode_utf16().flat_map(|u| u.to_le_bytes())).collect();
        let utf32: Vec<u8> = call.chars().flat_map(|c| (c as u32).to_be_bytes()).collect();
        for body in [&utf16be, &utf16le_bom, &utf32] {
            assert!(tool_calls_in_request(Some("application/json"), None, body).is_err());
            assert!(tool_calls_in_request(Some("text/plain"), None, body).is_err());
            assert!(tool_calls_in_request(None, None, body).is_err());
        }
        let json = Some("application/json");
        assert!(tool_calls_in_request(json, Some("gzip"), b"\x1f\x8b...").unwrap_err().contains("Content-Encoding"));
        assert!(tool_calls_in_request(Some("application/json; charset=utf-16be"), None, call.as_bytes()).unwrap_err().contains("charset"));
        assert!(tool_calls_in_request(json, None, format!("x{call}").as_bytes()).is_err(), "declared JSON, junk first");
        // What real connectors send passes.
        assert_eq!(tool_calls_in_request(Some("application/json; charset=utf-8"), Some("identity"), call.as_bytes()).unwrap(), vec!["delete_lead"]);
        assert!(tool_calls_in_request(Some("application/x-www-form-urlencoded"), None, b"grant_type=refresh_token&refresh_token=r").unwrap().is_empty());
        assert!(tool_calls_in_request(json, None, b"").unwrap().is_empty());
    }

    fn calls(body: &str) -> Result<Vec<String>, String> {
        tool_calls(body.as_bytes())
    }

    #[test]
    fn a_tools_call_names_its_tool() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"find_leads","arguments":{"name":"Update Ltd"}}}"#;
        assert_eq!(calls(body).unwrap(), vec!["find_leads"], "the arguments' own `name` is not the tool");
    }

    #[test]
    fn other_messages_and_other_bodies_call_nothing() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientInfo":{"name":"delete_lead"}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"cursor":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"result":{}}"#,
            "grant_type=authorization_code&code=abc",
            "",
            "plain text",
        ] {
            assert_eq!(calls(body).unwrap(), Vec::<String>::new(), "{body}");
        }
    }

    #[test]
    fn escapes_are_decoded_and_batches_are_read_whole() {
        let body = r#"  [{"method":"ping","id":1},{"method":"tools\/call","id":2,"params":{"name":"\u0064elete_lead"}}]"#;
        assert_eq!(calls(body).unwrap(), vec!["delete_lead"]);
        let bom = format!("\u{feff}{}", r#"{"method":"tools/call","params":{"name":"x"}}"#);
        assert_eq!(tool_calls(bom.as_bytes()).unwrap(), vec!["x"]);
    }

    #[test]
    fn duplicate_keys_are_checked_not_collapsed() {
        let body = r#"{"method":"tools/call","params":{"name":"find_leads","name":"delete_lead"}}"#;
        assert_eq!(calls(body).unwrap(), vec!["find_leads", "delete_lead"]);
        assert!(calls(r#"{"method":"ping","method":"tools/call","params":{"name":"x"}}"#).is_err());
        assert!(calls(r#"{"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}"#).is_err());
    }

    #[test]
    fn unreadable_json_and_odd_calls_are_errors() {
        for body in [
            r#"{"method":"tools/call","params":{"name":"x"}"#,
            r#"{"method":"tools/call"}"#,
            r#"{"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"method":"tools/call","params":{"name":["delete_lead"]}}"#,
            r#"{"method":"tools/call","params":[]}"#,
            "[1, 2,",
        ] {
            assert!(calls(body).is_err(), "{body}");
        }
    }
}
