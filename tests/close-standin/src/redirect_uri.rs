//! Redirect URIs: which ones a client may register, and which registered one a request names.
//!
//! The MCP 2025-11-25 authorization spec wants redirect URIs on `localhost` or HTTPS (`mcp-client-brief.md`
//! §4.6); Close's registration example uses `http://localhost:49152/callback` (`close-mcp.md` §2.1). The
//! stand-in accepts at registration:
//! * `https://…` (any host);
//! * `http://` on a loopback host: `127.0.0.1`, `[::1]` or `localhost`.
//!
//! It refuses anything else (other schemes, other http hosts, fragments, user information, spaces or
//! control characters, relative URIs) with `invalid_redirect_uri`. Close's exact rules are unknown;
//! private-use schemes (RFC 8252 §7.1) are refused because the MCP spec does not list them.
//!
//! Matching at the authorization endpoint (RFC 8252 §7.3): a registered `http` URI on a loopback *IP
//! literal* (`127.0.0.1`, `[::1]`) matches a requested one that differs only in the port; everything
//! else — `localhost` included — must match exactly, character for character.

use url::{Host, Url};

/// Checks one redirect URI offered at registration; the error is one line.
pub(crate) fn validate_for_registration(uri: &str) -> Result<(), String> {
    let shown = crate::oauth::one_line(uri, 80);
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "redirect URI '{shown}' must not contain spaces or control characters"
        ));
    }
    let url =
        Url::parse(uri).map_err(|_| format!("redirect URI '{shown}' is not an absolute URI"))?;
    if url.fragment().is_some() {
        return Err(format!(
            "redirect URI '{shown}' must not contain a fragment"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "redirect URI '{shown}' must not contain user information"
        ));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "redirect URI '{shown}' uses http on a host that is not 127.0.0.1, [::1] or localhost"
        )),
        _ => Err(format!(
            "redirect URI '{shown}' must use https, or http on a loopback host"
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        _ => is_loopback_ip(url),
    }
}

fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        _ => false,
    }
}

/// Does the requested redirect URI match the registered one?
pub(crate) fn matches(registered: &str, requested: &str) -> bool {
    if requested
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return false;
    }
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    reg.scheme() == "http"
        && req.scheme() == "http"
        && is_loopback_ip(&reg)
        && reg.host() == req.host()
        && reg.path() == req.path()
        && reg.query() == req.query()
        && req.fragment().is_none()
        && req.username().is_empty()
        && req.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_http_and_any_https_can_be_registered() {
        for ok in [
            "http://127.0.0.1:53682/callback",
            "http://[::1]:8080/cb",
            "http://localhost:49152/callback",
            "http://LOCALHOST/cb",
            "https://app.example.com/oauth/callback",
        ] {
            assert_eq!(validate_for_registration(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn other_redirect_uris_are_refused_with_one_line_reasons() {
        for bad in [
            "http://example.com/cb",
            "http://127.0.0.2/cb",
            "https://app.example.com/cb#frag",
            "com.example.app:/callback",
            "/callback",
            "",
            "http://user:pw@127.0.0.1/cb",
            "javascript:alert(1)",
            "http://127.0.0.1/cb\nX",
        ] {
            let err = validate_for_registration(bad).unwrap_err();
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn loopback_ip_literals_match_on_any_port() {
        assert!(matches(
            "http://127.0.0.1:1234/callback",
            "http://127.0.0.1:5678/callback"
        ));
        assert!(matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:5678/callback"
        ));
        assert!(matches("http://[::1]:1/cb?x=1", "http://[::1]:2/cb?x=1"));
    }

    #[test]
    fn everything_else_must_match_exactly() {
        assert!(!matches(
            "http://127.0.0.1:1234/callback",
            "http://127.0.0.1:1234/other"
        ));
        assert!(!matches("http://127.0.0.1:1234/cb", "http://[::1]:1234/cb"));
        assert!(!matches(
            "http://localhost:1234/cb",
            "http://localhost:5678/cb"
        ));
        assert!(matches(
            "http://localhost:1234/cb",
            "http://localhost:1234/cb"
        ));
        assert!(!matches("https://a.example/cb", "https://a.example:444/cb"));
        assert!(!matches("http://127.0.0.1:1/cb", "http://127.0.0.1:2/cb#x"));
        assert!(!matches("http://127.0.0.1:1/cb", "not a url"));
    }
}
