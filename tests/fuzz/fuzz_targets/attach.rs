//! Attaching credentials to whatever request a hostile connector builds: never a panic, and a
//! credential value appears in the request only when the request goes to the credential's own URL.
#![no_main]
use claribi_fuzz::policy::{Method, Target};
use claribi_fuzz::vault::credentials::{Binding, Credential, Kind, OAuthTargets, Placeholder};
use claribi_fuzz::wire::attach::{attach, KeyHeaders, Resolve};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

struct Creds(Vec<Credential>);

impl Resolve for Creds {
    fn credential(&self, p: &Placeholder) -> Option<Credential> {
        self.0.iter().find(|c| &c.placeholder == p).cloned()
    }
}

fuzz_target!(|data: &[u8]| {
    let endpoint = Target::parse("https://mcp.close.com/mcp").unwrap();
    let oauth = OAuthTargets { token: Target::parse("https://api.close.com/oauth2/token/").ok(), revocation: None };
    let key = Credential::new(Kind::ApiKey, zeroize::Zeroizing::new("KEYVALUE-0123456789".into()), Binding::api_key(&endpoint, Some("close-api-key")));
    let refresh = Credential::new(Kind::RefreshToken, zeroize::Zeroizing::new("RTVALUE-0123456789".into()), Binding::oauth(Kind::RefreshToken, &endpoint, &oauth));
    let creds = Creds(vec![key.clone(), refresh.clone()]);
    // The input: a URL line, a method line, header lines, a blank line, the body; `$K`/`$R` stand for
    // the placeholders.
    let text = String::from_utf8_lossy(data);
    // A connector never holds the values (it sees placeholders; the second line refuses a value sent as
    // is, before anything is attached): an input that already carries one says nothing about `attach`.
    if text.contains("KEYVALUE-0123456789") || text.contains("RTVALUE-0123456789") {
        return;
    }
    let text = text.replace("$K", key.placeholder.as_str()).replace("$R", refresh.placeholder.as_str());
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let url = lines.next().unwrap_or("https://mcp.close.com/mcp");
    let Ok(target) = Target::parse(url) else { return };
    let method = Method::parse(lines.next().unwrap_or("POST")).unwrap_or(Method::Post);
    let mut headers = HeaderMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.trim().as_bytes()), HeaderValue::from_str(v.trim())) {
                headers.append(k, v);
            }
        }
    }
    let key_headers = KeyHeaders { key: Some("close-api-key".into()), scope: Some(("close-scope".into(), vec!["mcp.read".into()])) };
    if let Ok(a) = attach(method, &target, url, &mut headers, body.as_bytes(), &creds, &key_headers) {
        let body = a.body.unwrap_or_else(|| body.as_bytes().to_vec());
        let mut sent: Vec<u8> = body;
        for (k, v) in &headers {
            sent.extend_from_slice(k.as_str().as_bytes());
            sent.extend_from_slice(v.as_bytes());
        }
        let sent = String::from_utf8_lossy(&sent);
        if sent.contains("KEYVALUE-0123456789") {
            assert_eq!(target, endpoint, "the API key left for another URL");
        }
        if sent.contains("RTVALUE-0123456789") {
            assert_eq!(target.url(), "https://api.close.com/oauth2/token/", "the refresh token left for another URL");
        }
    }
});
