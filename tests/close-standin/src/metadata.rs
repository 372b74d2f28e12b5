//! Discovery documents: RFC 9728 protected-resource metadata and RFC 8414 authorization-server metadata.
//!
//! What Close serves (`close-mcp.md` §2.1, from an automated audit):
//! * `https://mcp.close.com/.well-known/oauth-protected-resource`: `resource` = `https://mcp.close.com/`
//!   (the host root with a slash, not `/mcp`), `authorization_servers` = `["https://api.close.com/"]`,
//!   `scopes_supported` = the three `mcp.*` scopes + `offline_access`, `bearer_methods_supported` =
//!   `["header"]`.
//! * `https://mcp.close.com/.well-known/oauth-authorization-server`: the authorization server's metadata
//!   is served from the MCP host too, with `issuer` = `https://api.close.com` (another origin, no slash),
//!   `registration_endpoint` = `https://api.close.com/oauth2/register/`, `response_types_supported` =
//!   `["code"]`, `code_challenge_methods_supported` = `["S256"]`, `token_endpoint_auth_methods_supported`
//!   containing `none`.
//!
//! The stand-in serves the same documents with its two origins: the MCP host `http://127.0.0.1:P` (PRM at
//! `/.well-known/oauth-protected-resource` and the path-inserted `…/oauth-protected-resource/mcp`, AS
//! metadata at `/.well-known/oauth-authorization-server`) and the issuer `http://127.0.0.1:Q` (AS
//! metadata at `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`).
//!
//! Guesses: the authorization and token endpoint URLs were not captured by the audit; the stand-in uses
//! the paths of Close's REST OAuth (`/oauth2/authorize/` on app.close.com, `/oauth2/token/` on
//! api.close.com), all on the one issuer origin. The revocation path `/oauth2/revoke/` is invented
//! (Close publishes none). By default `authorization_servers` names the issuer exactly; the
//! `prm_issuer_trailing_slash` switch reproduces Close's slash. `authorization_response_iss_parameter_supported`
//! (RFC 9207) is advertised because the stand-in sends `iss` on every redirect.

use serde_json::{json, Value};

use crate::oauth;
use crate::switches::OAuthSwitches;

/// Authorization endpoint path (GET: the request; POST: the consent page's form).
pub const AUTHORIZE_PATH: &str = "/oauth2/authorize/";
/// Token endpoint path.
pub const TOKEN_PATH: &str = "/oauth2/token/";
/// Dynamic client registration endpoint path.
pub const REGISTER_PATH: &str = "/oauth2/register/";
/// Token revocation endpoint path (RFC 7009).
pub const REVOKE_PATH: &str = "/oauth2/revoke/";

/// The protected resource's identifier for the MCP base URL (no trailing slash): `http://127.0.0.1:P/`.
pub(crate) fn resource_identifier(base_url: &str) -> String {
    format!("{base_url}/")
}

/// The RFC 9728 protected-resource metadata document.
pub(crate) fn protected_resource(base_url: &str, issuer: &str, switches: &OAuthSwitches) -> Value {
    let server = if switches.prm_issuer_trailing_slash {
        format!("{issuer}/")
    } else {
        issuer.to_string()
    };
    json!({
        "resource": resource_identifier(base_url),
        "authorization_servers": [server],
        "scopes_supported": oauth::scopes_supported(switches.offline_access_supported),
        "bearer_methods_supported": ["header"],
    })
}

/// The RFC 8414 authorization-server metadata document (also served as `openid-configuration`).
pub(crate) fn authorization_server(issuer: &str, switches: &OAuthSwitches) -> Value {
    let pkce = if switches.advertise_s256 {
        "S256"
    } else {
        "plain"
    };
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
        "registration_endpoint": format!("{issuer}{REGISTER_PATH}"),
        "revocation_endpoint": format!("{issuer}{REVOKE_PATH}"),
        "scopes_supported": oauth::scopes_supported(switches.offline_access_supported),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": [pkce],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "authorization_response_iss_parameter_supported": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protected_resource_document_names_the_base_url() {
        let doc = protected_resource(
            "http://127.0.0.1:9",
            "http://127.0.0.1:10",
            &OAuthSwitches::default(),
        );
        assert_eq!(doc["resource"], "http://127.0.0.1:9/");
        assert_eq!(doc["authorization_servers"], json!(["http://127.0.0.1:10"]));
        assert_eq!(doc["scopes_supported"].as_array().unwrap().len(), 4);
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }

    #[test]
    fn the_trailing_slash_switch_writes_the_issuer_the_way_close_does() {
        let switches = OAuthSwitches {
            prm_issuer_trailing_slash: true,
            offline_access_supported: false,
            ..OAuthSwitches::default()
        };
        let doc = protected_resource("http://127.0.0.1:9", "http://127.0.0.1:10", &switches);
        assert_eq!(
            doc["authorization_servers"],
            json!(["http://127.0.0.1:10/"])
        );
        assert_eq!(
            doc["scopes_supported"],
            json!(["mcp.read", "mcp.write_safe", "mcp.write_destructive"])
        );
    }

    #[test]
    fn authorization_server_metadata_lists_the_endpoints_under_the_issuer() {
        let doc = authorization_server("http://127.0.0.1:10", &OAuthSwitches::default());
        assert_eq!(doc["issuer"], "http://127.0.0.1:10");
        assert_eq!(
            doc["authorization_endpoint"],
            "http://127.0.0.1:10/oauth2/authorize/"
        );
        assert_eq!(doc["token_endpoint"], "http://127.0.0.1:10/oauth2/token/");
        assert_eq!(
            doc["registration_endpoint"],
            "http://127.0.0.1:10/oauth2/register/"
        );
        assert_eq!(
            doc["revocation_endpoint"],
            "http://127.0.0.1:10/oauth2/revoke/"
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            json!(["none"])
        );
        assert_eq!(
            doc["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
    }

    #[test]
    fn without_s256_the_metadata_advertises_plain_only() {
        let switches = OAuthSwitches {
            advertise_s256: false,
            ..OAuthSwitches::default()
        };
        let doc = authorization_server("http://127.0.0.1:10", &switches);
        assert_eq!(doc["code_challenge_methods_supported"], json!(["plain"]));
    }
}
