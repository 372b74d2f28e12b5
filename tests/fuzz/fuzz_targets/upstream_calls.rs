//! The host's reading of request bodies for upstream `tools/call`s: any bytes give a list of names or
//! an error, never a panic; and whatever a body hides, a plain re-encoding of what serde_json reads
//! names no tool the reader missed.
#![no_main]
use libfuzzer_sys::fuzz_target;

use claribi_fuzz::wire::upstream_calls;

fuzz_target!(|data: &[u8]| {
    let Ok(names) = upstream_calls::tool_calls(data) else { return };
    // serde_json keeps the last of duplicate keys; the reader must have seen that name too.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let messages = match &v {
            serde_json::Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for m in messages {
            if m.get("method").and_then(|x| x.as_str()) == Some("tools/call") {
                if let Some(name) = m.get("params").and_then(|p| p.get("name")).and_then(|n| n.as_str()) {
                    assert!(names.iter().any(|n| n == name), "missed `{name}` in {names:?}");
                }
            }
        }
    }
});
