//! What an authorization server or a resource server sends back, as the host reads it: challenges,
//! protected-resource and authorization-server metadata (learning never panics, and what it learns is
//! only ever URLs the grant can parse), token and registration responses (a rewritten answer never
//! holds the value it replaced; the streaming reader of top-level credential members misses none).
#![no_main]
use claribi_fuzz::oauth::challenge;
use claribi_fuzz::oauth::discovery::OAuthState;
use claribi_fuzz::policy::{Method, Target};
use claribi_fuzz::vault::credentials::Placeholder;
use claribi_fuzz::wire::{inbound, json_members};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = challenge::parse(401, &text);
    let _ = challenge::bearer_error(&text);
    let endpoint = Target::parse("https://mcp.close.com/mcp").unwrap();
    let mut state = OAuthState::default();
    state.learn_challenge(401, &text);
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        for url in state.resource_metadata_urls(&endpoint) {
            if let Ok(t) = Target::parse(&url) {
                state.learn(&endpoint, Method::Get, &t, &doc);
            }
        }
        let asm = Target::parse("https://mcp.close.com/.well-known/oauth-authorization-server").unwrap();
        state.learn(&endpoint, Method::Get, &asm, &doc);
        for rule in state.grant(&endpoint).rules() {
            let _ = rule.describe();
        }
    }
    for status in [200, 400] {
        let mut minted: Vec<String> = Vec::new();
        let mut mint = |_, v: zeroize::Zeroizing<String>| {
            minted.push(v.to_string());
            Placeholder::mint()
        };
        if let Ok((out, _)) = inbound::rewrite_credential_response(status, data, &mut mint) {
            let out = String::from_utf8_lossy(&out).into_owned();
            for v in &minted {
                // A value that is also the text of another member (or a key) may remain; a value long
                // enough to be a credential and unique in the input must not.
                if v.len() >= 16 && text.matches(v.as_str()).count() == 1 {
                    assert!(!out.contains(v.as_str()), "a rewritten answer still holds a value it replaced");
                }
            }
        }
    }
    // The streaming reader finds a credential member at the top level whenever serde_json does.
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(data) {
        let named = json_members::CREDENTIAL_MEMBERS.iter().any(|(m, _)| o.contains_key(*m));
        assert!(!named || json_members::names_a_credential(data), "a top-level credential member was missed");
    }
});
