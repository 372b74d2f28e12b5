//! The two discovery documents, read leniently (a member of the wrong type counts as absent) but
//! checked where it matters: protected-resource metadata (RFC 9728) must name this MCP server and an
//! authorization server; authorization-server metadata (RFC 8414, or an OpenID Connect discovery
//! document) must have usable endpoints and, when discovered, offer PKCE S256.

use crate::error::{one_line, McpError};
use crate::url::HttpUrl;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The members of protected-resource metadata this client uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceMetadata {
    /// The resource identifier, as sent (it is the `resource` parameter, verbatim).
    pub resource: String,
    /// The authorization servers' issuer identifiers, in order.
    pub authorization_servers: Vec<String>,
    /// `scopes_supported`, empty when absent.
    pub scopes_supported: Vec<String>,
}

impl ResourceMetadata {
    /// Reads a protected-resource metadata document.
    pub fn parse(doc: &Value) -> Result<ResourceMetadata, McpError> {
        let resource = str_member(doc, "resource").ok_or_else(|| {
            McpError::protocol("the protected-resource metadata has no `resource`")
        })?;
        let authorization_servers = str_list(doc, "authorization_servers").unwrap_or_default();
        if authorization_servers.is_empty() {
            return Err(McpError::protocol(
                "the protected-resource metadata names no authorization server",
            ));
        }
        Ok(ResourceMetadata {
            resource,
            authorization_servers,
            scopes_supported: str_list(doc, "scopes_supported").unwrap_or_default(),
        })
    }
}

/// Whether a protected-resource identifier names the MCP endpoint: the same origin, and a path that
/// is the endpoint's path or a prefix of it ending at a `/` (a trailing `/` on either is ignored).
/// `https://mcp.example.com/` and `https://mcp.example.com` both name `https://mcp.example.com/mcp`.
pub fn resource_matches(resource: &str, endpoint: &HttpUrl) -> bool {
    if resource.contains('#') {
        return false;
    }
    let Ok(resource) = HttpUrl::parse(resource) else {
        return false;
    };
    if resource.origin() != endpoint.origin() {
        return false;
    }
    let prefix = resource.path().trim_end_matches('/');
    let path = endpoint.path().trim_end_matches('/');
    path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// The members of authorization-server metadata this client uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerMetadata {
    /// `issuer` (absent only for the 2025-03-26 default endpoints).
    pub issuer: Option<String>,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    /// `scopes_supported`, empty when absent.
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Option<Vec<String>>,
    pub code_challenge_methods_supported: Option<Vec<String>>,
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// `client_id_metadata_document_supported` (client ID metadata documents).
    pub client_id_metadata_document_supported: bool,
    /// `authorization_response_iss_parameter_supported` (RFC 9207): the redirect must carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
}

impl ServerMetadata {
    /// Reads an authorization-server metadata document. The endpoints must be absolute `https`
    /// URLs, or `http` ones to a loopback host or when `allow_http` (the MCP server is plain http).
    pub fn parse(doc: &Value, allow_http: bool) -> Result<ServerMetadata, McpError> {
        let endpoint = |name: &str, required: bool| -> Result<Option<String>, McpError> {
            match str_member(doc, name) {
                Some(url) => {
                    check_endpoint_url(&url, name, allow_http)?;
                    Ok(Some(url))
                }
                None if required => Err(McpError::protocol(format!(
                    "the authorization-server metadata has no `{name}`"
                ))),
                None => Ok(None),
            }
        };
        Ok(ServerMetadata {
            issuer: str_member(doc, "issuer"),
            authorization_endpoint: endpoint("authorization_endpoint", true)?.unwrap_or_default(),
            token_endpoint: endpoint("token_endpoint", true)?.unwrap_or_default(),
            registration_endpoint: endpoint("registration_endpoint", false)?,
            revocation_endpoint: endpoint("revocation_endpoint", false)?,
            scopes_supported: str_list(doc, "scopes_supported").unwrap_or_default(),
            response_types_supported: str_list(doc, "response_types_supported"),
            code_challenge_methods_supported: str_list(doc, "code_challenge_methods_supported"),
            token_endpoint_auth_methods_supported: str_list(
                doc,
                "token_endpoint_auth_methods_supported",
            ),
            client_id_metadata_document_supported: doc
                .get("client_id_metadata_document_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            authorization_response_iss_parameter_supported: doc
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// The 2025-03-26 defaults for a server without metadata: `/authorize`, `/token` and `/register`
    /// at the MCP server's origin.
    pub fn defaults(origin: &str) -> ServerMetadata {
        ServerMetadata {
            issuer: None,
            authorization_endpoint: format!("{origin}/authorize"),
            token_endpoint: format!("{origin}/token"),
            registration_endpoint: Some(format!("{origin}/register")),
            revocation_endpoint: None,
            scopes_supported: Vec::new(),
            response_types_supported: None,
            code_challenge_methods_supported: None,
            token_endpoint_auth_methods_supported: None,
            client_id_metadata_document_supported: false,
            authorization_response_iss_parameter_supported: false,
        }
    }

    /// The PKCE gate of the MCP spec: metadata must list `S256` in `code_challenge_methods_supported`
    /// (and `code` in `response_types_supported`, when it lists any).
    pub fn check_pkce(&self) -> Result<(), McpError> {
        let s256 = self
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"));
        if !s256 {
            return Err(McpError::protocol(format!(
                "the authorization server does not offer PKCE with S256 (its metadata lists {}), which MCP requires; refusing to authorize",
                match &self.code_challenge_methods_supported {
                    Some(m) if !m.is_empty() => format!("only `{}`", one_line(&m.join(" "), 60)),
                    _ => "no code challenge method".to_owned(),
                }
            )));
        }
        if let Some(types) = &self.response_types_supported {
            if !types.iter().any(|t| t == "code") {
                return Err(McpError::protocol(
                    "the authorization server does not offer the authorization code flow (response type `code`)",
                ));
            }
        }
        Ok(())
    }
}

/// Whether the `issuer` of a metadata document is the issuer it was fetched for. A trailing `/` is
/// ignored (Close names `https://api.close.com/` and publishes the issuer `https://api.close.com`);
/// anything else must match exactly.
pub fn issuer_matches(published: &str, expected: &str) -> bool {
    published.trim_end_matches('/') == expected.trim_end_matches('/')
}

/// An endpoint must be an absolute `https` URL without a fragment; `http` is accepted for a loopback
/// host, or anywhere when `allow_http`.
pub fn check_endpoint_url(url: &str, what: &str, allow_http: bool) -> Result<(), McpError> {
    let parsed = HttpUrl::parse(url).map_err(|e| {
        McpError::protocol(format!(
            "the authorization server's `{what}` is not a usable URL ({e})"
        ))
    })?;
    if url.contains('#') {
        return Err(McpError::protocol(format!(
            "the authorization server's `{what}` contains a fragment"
        )));
    }
    if parsed.scheme != "https" && !parsed.is_loopback() && !allow_http {
        return Err(McpError::protocol(format!(
            "the authorization server's `{what}` ({}) does not use https",
            one_line(url, 120)
        )));
    }
    Ok(())
}

fn str_member(doc: &Value, name: &str) -> Option<String> {
    doc.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn str_list(doc: &Value, name: &str) -> Option<Vec<String>> {
    let items = doc.get(name)?.as_array()?;
    Some(
        items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_resource_matches_when_it_is_the_endpoint_or_a_path_prefix_on_the_same_origin() {
        let endpoint = HttpUrl::parse("https://mcp.example.com/public/mcp?x=1").unwrap();
        for (resource, matches) in [
            ("https://mcp.example.com/public/mcp", true),
            ("https://mcp.example.com/public/mcp/", true),
            ("https://mcp.example.com/public", true),
            ("https://mcp.example.com/", true),
            ("https://mcp.example.com", true),
            ("https://MCP.example.com:443/public/mcp", true),
            ("https://mcp.example.com/pub", false),
            ("https://mcp.example.com/public/mcp/more", false),
            ("https://evil.example.com/public/mcp", false),
            ("http://mcp.example.com/public/mcp", false),
            ("https://mcp.example.com:8443/public/mcp", false),
            ("https://mcp.example.com/public/mcp#frag", false),
            ("not a url", false),
        ] {
            assert_eq!(resource_matches(resource, &endpoint), matches, "{resource}");
        }
    }

    #[test]
    fn protected_resource_metadata_needs_a_resource_and_an_authorization_server() {
        let prm = ResourceMetadata::parse(&json!({
            "resource": "https://mcp.close.com/",
            "authorization_servers": ["https://api.close.com/", 7],
            "scopes_supported": ["mcp.read", "offline_access"]
        }))
        .unwrap();
        assert_eq!(prm.resource, "https://mcp.close.com/");
        assert_eq!(prm.authorization_servers, vec!["https://api.close.com/"]);
        assert_eq!(prm.scopes_supported, vec!["mcp.read", "offline_access"]);
        for bad in [
            json!({ "authorization_servers": ["https://a"] }),
            json!({ "resource": "https://r" }),
            json!({ "resource": "https://r", "authorization_servers": [] }),
            json!({ "resource": "https://r", "authorization_servers": "https://a" }),
        ] {
            assert!(
                matches!(ResourceMetadata::parse(&bad), Err(McpError::Protocol(_))),
                "{bad}"
            );
        }
    }

    fn server_doc() -> Value {
        json!({
            "issuer": "https://as.example.com",
            "authorization_endpoint": "https://as.example.com/authorize",
            "token_endpoint": "https://as.example.com/token",
            "registration_endpoint": "https://reg.example.com/register",
            "revocation_endpoint": "https://as.example.com/revoke",
            "code_challenge_methods_supported": ["S256"],
            "response_types_supported": ["code"],
            "scopes_supported": "not a list",
            "client_id_metadata_document_supported": true
        })
    }

    #[test]
    fn server_metadata_is_read_leniently_but_needs_its_two_endpoints() {
        let m = ServerMetadata::parse(&server_doc(), false).unwrap();
        assert_eq!(m.issuer.as_deref(), Some("https://as.example.com"));
        assert!(m.scopes_supported.is_empty());
        assert!(m.client_id_metadata_document_supported);
        assert!(!m.authorization_response_iss_parameter_supported);
        let mut doc = server_doc();
        doc.as_object_mut().unwrap().remove("token_endpoint");
        assert!(ServerMetadata::parse(&doc, false).is_err());
    }

    #[test]
    fn endpoints_must_use_https_unless_loopback_or_allowed() {
        let mut doc = server_doc();
        doc["token_endpoint"] = json!("http://as.example.com/token");
        assert!(ServerMetadata::parse(&doc, false).is_err());
        assert!(ServerMetadata::parse(&doc, true).is_ok());
        doc["token_endpoint"] = json!("http://127.0.0.1:9/token");
        assert!(ServerMetadata::parse(&doc, false).is_ok());
        doc["token_endpoint"] = json!("https://as.example.com/token#x");
        assert!(ServerMetadata::parse(&doc, false).is_err());
    }

    #[test]
    fn metadata_without_s256_is_refused() {
        for methods in [json!(["plain"]), json!([]), Value::Null] {
            let mut doc = server_doc();
            doc["code_challenge_methods_supported"] = methods.clone();
            let m = ServerMetadata::parse(&doc, false).unwrap();
            let err = m.check_pkce().unwrap_err();
            assert!(
                matches!(&err, McpError::Protocol(msg) if msg.contains("S256")),
                "{methods}: {err:?}"
            );
        }
        let mut doc = server_doc();
        doc["response_types_supported"] = json!(["token"]);
        assert!(ServerMetadata::parse(&doc, false)
            .unwrap()
            .check_pkce()
            .is_err());
        assert!(ServerMetadata::parse(&server_doc(), false)
            .unwrap()
            .check_pkce()
            .is_ok());
    }

    #[test]
    fn an_issuer_matches_only_itself_give_or_take_a_trailing_slash() {
        assert!(issuer_matches(
            "https://api.close.com",
            "https://api.close.com/"
        ));
        assert!(issuer_matches("https://as/tenant1", "https://as/tenant1"));
        assert!(!issuer_matches(
            "https://attacker.example.com",
            "https://as"
        ));
        assert!(!issuer_matches("https://as/tenant2", "https://as/tenant1"));
    }
}
