//! WWW-Authenticate and rate-limit headers: any text, never panic; scopes are non-empty and contain
//! no whitespace; no value is longer than the header it came from.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for challenge in mcp_client::www_authenticate::parse(text) {
        let _ = challenge.param("resource_metadata");
    }
    if let Some(b) = mcp_client::www_authenticate::bearer(text) {
        for s in b.scopes() {
            assert!(!s.is_empty() && !s.chars().any(|c| c.is_ascii_whitespace()), "scope {s:?}");
            assert!(s.len() <= text.len());
        }
    }
    let _ = mcp_client::rate_limit::parse_ratelimit(text);
    let _ = mcp_client::rate_limit::parse_retry_after(text, std::time::SystemTime::UNIX_EPOCH);
});
