//! Request headers the host sets or refuses on every outgoing request, whatever the connector wrote.
//!
//! * **Answers whole and uncompressed**: `Accept-Encoding: identity`, no `Range`, `If-Range` or `TE`
//!   — a compressed or partial answer would hide a credential from the masking and the rewriting
//!   ([`whole_answers_only`]).
//! * **No routing overrides**: headers some stacks read as another method or path
//!   (`X-HTTP-Method-Override`, Rack's `_method` header forms, IIS/Symfony's `X-Original-URL` and
//!   `X-Rewrite-URL`) or as another host (`Forwarded`, `X-Forwarded-*`, which some servers also use
//!   to build the URLs of their OAuth metadata) would let a request reach what the grant did not
//!   allow: a request carrying one is refused ([`overriding_header`]).
//!
//! ```
//! use claribi_host::wire::request_headers::overriding_header;
//! let mut h = http::HeaderMap::new();
//! h.insert("x-http-method-override", "DELETE".parse().unwrap());
//! assert_eq!(overriding_header(&h).as_deref(), Some("x-http-method-override"));
//! ```

use http::header::{HeaderMap, HeaderValue, ACCEPT_ENCODING, IF_RANGE, RANGE, TE};

/// Ask for answers the host can read whole (see the module docs).
pub fn whole_answers_only(headers: &mut HeaderMap) {
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    for h in [RANGE, IF_RANGE, TE] {
        headers.remove(h);
    }
}

const OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-method",
    "x-original-url",
    "x-rewrite-url",
    "forwarded",
];

/// Whether a header (lower-case name) is one some server could read as another method, path or host.
pub fn is_overriding(name: &str) -> bool {
    OVERRIDES.contains(&name) || name.starts_with("x-forwarded-")
}

/// The first header that some server could read as another method, path or host, if any.
pub fn overriding_header(headers: &HeaderMap) -> Option<String> {
    headers.keys().map(|k| k.as_str()).find(|k| is_overriding(k)).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_that_reroute_a_request_are_found() {
        for (name, refused) in [
            ("x-http-method-override", true),
            ("X-HTTP-Method", true),
            ("x-method-override", true),
            ("x-original-url", true),
            ("x-rewrite-url", true),
            ("forwarded", true),
            ("x-forwarded-host", true),
            ("x-forwarded-for", true),
            ("x-forwarded-proto", true),
            ("content-type", false),
            ("close-api-key", false),
            ("mcp-session-id", false),
            ("x-request-id", false),
        ] {
            let mut h = HeaderMap::new();
            h.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("x"));
            assert_eq!(overriding_header(&h).is_some(), refused, "{name}");
        }
    }

    #[test]
    fn answers_are_asked_for_whole_and_uncompressed() {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip, br"));
        h.insert(RANGE, HeaderValue::from_static("bytes=0-9"));
        h.insert(TE, HeaderValue::from_static("gzip"));
        whole_answers_only(&mut h);
        assert_eq!(h[ACCEPT_ENCODING], "identity");
        assert!(h.get(RANGE).is_none() && h.get(TE).is_none());
    }
}
