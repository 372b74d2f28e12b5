//! Opaque cursors for `tools/list` and for the cursor-paged tools.
//!
//! Close does not document its cursor format (`close-mcp.md` §5 only says list endpoints are cursor-paged).
//! The stand-in's cursor carries the query it belongs to plus an offset, base64url-encoded with a
//! checksum, so a client can send the cursor alone and a forged or mangled cursor is recognised as bad.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

fn checksum(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    h
}

/// Encodes `(kind, query, offset)` into an opaque cursor.
pub fn encode(kind: &str, query: &Value, offset: usize) -> String {
    let payload = json!({ "k": kind, "q": query, "o": offset }).to_string();
    format!(
        "{}.{:08x}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        checksum(payload.as_bytes())
    )
}

/// Decodes a cursor made by [`encode`] for the same `kind`; `None` for anything else.
pub fn decode(kind: &str, cursor: &str) -> Option<(Value, usize)> {
    let (body, sum) = cursor.trim().rsplit_once('.')?;
    let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
    if format!("{:08x}", checksum(&bytes)) != sum {
        return None;
    }
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    if value.get("k")?.as_str()? != kind {
        return None;
    }
    let offset = usize::try_from(value.get("o")?.as_u64()?).ok()?;
    Some((value.get("q").cloned().unwrap_or(Value::Null), offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_rejects_tampering() {
        let c = encode("find_opportunities", &json!({"status_type": "active"}), 50);
        assert_eq!(
            decode("find_opportunities", &c),
            Some((json!({"status_type": "active"}), 50))
        );
        assert_eq!(decode("activity_search", &c), None);
        assert_eq!(decode("find_opportunities", "garbage"), None);
        let mut bad = c.clone();
        bad.insert(3, 'x');
        assert_eq!(decode("find_opportunities", &bad), None);
    }
}
