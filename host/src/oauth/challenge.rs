//! Reading a `WWW-Authenticate` header (RFC 9110 §11.6.1) for the parts the host acts on: the
//! `Bearer` challenge's `resource_metadata` (RFC 9728), `scope` and `error` (RFC 6750).
//!
//! The header is untrusted and may hold several challenges (`Basic realm="x", Bearer scope="a b"`);
//! parameters are `token=token` or `token="quoted string"`. Anything malformed ends the parse with what
//! was read so far.

use super::discovery::Challenge;

/// Most bytes of a header the host reads.
const MAX_HEADER: usize = 8 * 1024;

/// The `Bearer` challenge of a header, as a [`Challenge`] with `status`.
pub fn parse(status: u16, header: &str) -> Challenge {
    let header = &header[..floor_char_boundary(header, MAX_HEADER)];
    let mut out = Challenge { status, ..Challenge::default() };
    for (scheme, params) in challenges(header) {
        if !scheme.eq_ignore_ascii_case("bearer") {
            continue;
        }
        for (k, v) in params {
            match k.to_ascii_lowercase().as_str() {
                "resource_metadata" => {
                    if out.resource_metadata.len() < 8 {
                        out.resource_metadata.push(v);
                    }
                }
                "scope" => out.scopes = v.split_whitespace().take(64).map(str::to_string).collect(),
                _ => {}
            }
        }
        break;
    }
    out
}

/// The `error` parameter of the `Bearer` challenge, e.g. `insufficient_scope`.
pub fn bearer_error(header: &str) -> Option<String> {
    let header = &header[..floor_char_boundary(header, MAX_HEADER)];
    challenges(header)
        .into_iter()
        .find(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, params)| params.into_iter().find(|(k, _)| k.eq_ignore_ascii_case("error")).map(|(_, v)| v))
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `(scheme, [(name, value)])` for each challenge of the header.
fn challenges(header: &str) -> Vec<(String, Vec<(String, String)>)> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let is_tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        // A token: either a new scheme, or (after a scheme) a parameter name.
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if start == i {
            break;
        }
        let token = header[start..i].to_string();
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            // A parameter of the current challenge.
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = Vec::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    v.push(b[i]);
                    i += 1;
                }
                i += 1;
                String::from_utf8_lossy(&v).into_owned()
            } else {
                let vs = i;
                while i < b.len() && is_tchar(b[i]) || (i < b.len() && (b[i] == b'/' || b[i] == b'=')) {
                    i += 1;
                }
                header[vs..i].to_string()
            };
            if let Some(last) = out.last_mut() {
                if last.1.len() < 32 {
                    last.1.push((token, value));
                }
            }
        } else {
            // token68 after a scheme, or a new scheme.
            if out.len() >= 8 {
                break;
            }
            out.push((token, Vec::new()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_challenge_gives_its_metadata_scope_and_error() {
        let c = parse(401, r#"Basic realm="x", Bearer resource_metadata="https://mcp.example/.well-known/oauth-protected-resource", scope="mcp.read offline_access", error="invalid_token""#);
        assert_eq!(c.resource_metadata, vec!["https://mcp.example/.well-known/oauth-protected-resource"]);
        assert_eq!(c.scopes, vec!["mcp.read", "offline_access"]);
        assert_eq!(c.status, 401);
        assert_eq!(bearer_error(r#"Bearer error="insufficient_scope", scope="x""#).as_deref(), Some("insufficient_scope"));
        assert_eq!(bearer_error("Basic realm=x"), None);
    }

    #[test]
    fn unquoted_values_escapes_and_garbage_are_handled() {
        let c = parse(403, r#"bearer scope=read, error=insufficient_scope"#);
        assert_eq!(c.scopes, vec!["read"]);
        let c = parse(401, r#"Bearer scope="a \"b\"""#);
        assert_eq!(c.scopes, vec!["a", "\"b\""]);
        for garbage in ["", "=", "Bearer", "Bearer =", "\"", "Bearer scope=\"unterminated", "Bearer ,,,, scope", "ü=ü"] {
            let _ = parse(401, garbage);
            let _ = bearer_error(garbage);
        }
        let long = format!("Bearer scope=\"{}\"", "s ".repeat(100_000));
        assert!(parse(401, &long).scopes.len() <= 64);
    }
}
