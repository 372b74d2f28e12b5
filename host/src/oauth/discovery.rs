//! The OAuth URLs of a connection, as the host learns them from what passes through it — never from
//! the connector's word.
//!
//! A connector runs OAuth discovery itself (it is the OAuth client), but every request and response
//! of that discovery goes through the host's send hook, and the host reads the answers of the URLs
//! *it* derives from the endpoint:
//!
//! 1. **Challenges**: a 401 or 403 of the MCP endpoint itself: its `resource_metadata` URLs and the
//!    `scope` it asks for.
//! 2. **Protected-resource metadata** (RFC 9728) at those URLs, at
//!    `/.well-known/oauth-protected-resource<endpoint path>` and at `/.well-known/oauth-protected-resource`
//!    of the endpoint's origin. Accepted when its `resource` names the endpoint (same origin, a path
//!    prefix). It names the authorization servers.
//! 3. **Authorization-server metadata** (RFC 8414, OpenID Connect discovery) at the locations of an
//!    issuer the accepted protected-resource metadata names, accepted when its `issuer` is that
//!    issuer. **One exception, for Close:** Close serves its authorization server's metadata on the MCP
//!    host (`https://mcp.close.com/.well-known/oauth-authorization-server`) while the issuer is
//!    `https://api.close.com`. RFC 8414 wants the metadata under the issuer's own URL; the host also
//!    accepts it at the endpoint origin's `/.well-known/oauth-authorization-server`, but only for an
//!    issuer the endpoint's protected-resource metadata names *and* whose registrable domain (public
//!    suffix list) is the endpoint's. Without protected-resource metadata (MCP 2025-03-26), that same
//!    location is the authorization server's, and without it `/authorize`, `/token` and `/register` on
//!    the endpoint's origin are.
//!
//! What the host learned decides two things: which OAuth URLs the connection may reach (see
//! [`OAuthState::grant`]) and where each OAuth credential may be attached
//! ([`crate::vault::credentials::Binding::oauth`]).
//!
//! ```
//! use claribi_host::oauth::discovery::OAuthState;
//! use claribi_host::policy::{Method, Target};
//! use serde_json::json;
//!
//! let endpoint = Target::parse("https://mcp.close.com/mcp").unwrap();
//! let mut s = OAuthState::default();
//! let prm = Target::parse("https://mcp.close.com/.well-known/oauth-protected-resource").unwrap();
//! assert!(s.learn(&endpoint, Method::Get, &prm, &json!({
//!     "resource": "https://mcp.close.com/", "authorization_servers": ["https://api.close.com/"]})));
//! let asm = Target::parse("https://mcp.close.com/.well-known/oauth-authorization-server").unwrap();
//! assert!(s.learn(&endpoint, Method::Get, &asm, &json!({"issuer": "https://api.close.com",
//!     "authorization_endpoint": "https://app.close.com/oauth2/authorize/",
//!     "token_endpoint": "https://api.close.com/oauth2/token/"})));
//! let token = Target::parse("https://api.close.com/oauth2/token/").unwrap();
//! assert!(s.grant(&endpoint).allows(Method::Post, &token));
//! let rest = Target::parse("https://api.close.com/api/v1/lead/").unwrap();
//! assert!(!s.grant(&endpoint).allows(Method::Post, &rest));
//! ```

use crate::policy::{Grant, Method, Origin, Reason, Rule, Target};
use crate::vault::credentials::OAuthTargets;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the host learned of a connection's authorization (persisted with the connection).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthState {
    /// The last challenge (401/403) of the MCP endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<Challenge>,
    /// Scopes any challenge of the endpoint asked for, accumulated (a step-up adds to them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub challenged_scopes: Vec<String>,
    /// The accepted protected-resource metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceDoc>,
    /// The accepted authorization-server metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerDoc>,
}

/// A challenge of the MCP endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// 401 or 403.
    pub status: u16,
    /// `resource_metadata` URLs.
    #[serde(default)]
    pub resource_metadata: Vec<String>,
    /// `scope`, split.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Accepted protected-resource metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDoc {
    /// Where it was read.
    pub url: String,
    /// Its `resource`.
    pub resource: String,
    /// Its `authorization_servers`.
    pub authorization_servers: Vec<String>,
    /// Its `scopes_supported`.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

/// Accepted authorization-server metadata (or the 2025-03-26 defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerDoc {
    /// Where it was read (`None`: the 2025-03-26 default endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its `issuer` (`None` without a document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `registration_endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// `revocation_endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// `scopes_supported`.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207).
    #[serde(default)]
    pub iss_supported: bool,
}

/// What a URL is to the connection's authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A protected-resource metadata location.
    ResourceMetadata,
    /// An authorization-server metadata location.
    ServerMetadata,
    /// The authorization endpoint (the page the user opens).
    Authorization,
    /// The token endpoint.
    Token,
    /// The registration endpoint (RFC 7591).
    Registration,
    /// The revocation endpoint (RFC 7009).
    Revocation,
}

impl Purpose {
    /// How a grant rule names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ResourceMetadata => "protected-resource metadata",
            Purpose::ServerMetadata => "authorization-server metadata",
            Purpose::Authorization => "authorization page",
            Purpose::Token => "token endpoint",
            Purpose::Registration => "registration endpoint",
            Purpose::Revocation => "revocation endpoint",
        }
    }

    fn methods(self) -> &'static [Method] {
        match self {
            Purpose::ResourceMetadata | Purpose::ServerMetadata | Purpose::Authorization => &[Method::Get],
            Purpose::Token | Purpose::Registration | Purpose::Revocation => &[Method::Post],
        }
    }
}

/// `https://host/.well-known/<name><path>` (RFC 8414 §3.1 insertion; the path's trailing `/` dropped).
fn well_known_inserted(base: &Target, name: &str) -> String {
    let path = base.path.trim_end_matches('/');
    format!("{}/.well-known/{name}{path}", base.origin)
}

/// `https://host/<path>/.well-known/<name>` (OpenID Connect Discovery's appended form).
fn well_known_appended(base: &Target, name: &str) -> String {
    format!("{}{}/.well-known/{name}", base.origin, base.path.trim_end_matches('/'))
}

/// The registrable domain of a host (public suffix list), or the host itself for an IP address or
/// a name without one (`localhost`).
pub fn registrable_domain(host: &str) -> String {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_string();
    }
    psl::domain_str(host).unwrap_or(host).to_ascii_lowercase()
}

/// Whether an `issuer` equals the one looked for (a trailing `/` aside, as Close writes it).
pub fn issuer_matches(published: &str, wanted: &str) -> bool {
    !published.is_empty() && published.trim_end_matches('/') == wanted.trim_end_matches('/')
}

/// Whether a protected-resource identifier names the endpoint: same origin, a path that is the
/// endpoint's or a prefix of it ending at `/` (a trailing `/` ignored on both).
pub fn resource_matches(resource: &str, endpoint: &Target) -> bool {
    if resource.contains('#') {
        return false;
    }
    let Ok(r) = Target::parse(resource) else { return false };
    if r.origin != endpoint.origin {
        return false;
    }
    let prefix = r.path.trim_end_matches('/');
    let path = endpoint.path.trim_end_matches('/');
    path == prefix || path.starts_with(&format!("{prefix}/"))
}

fn str_member(doc: &Value, name: &str) -> Option<String> {
    doc.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn str_list(doc: &Value, name: &str) -> Vec<String> {
    match doc.get(name) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).take(64).collect(),
        _ => Vec::new(),
    }
}

/// An endpoint URL of a metadata document: absolute http(s) whose path a server cannot read as
/// another; plain http only when the MCP endpoint itself is plain http (a local server).
fn endpoint_url(doc: &Value, name: &str, endpoint: &Target) -> Option<String> {
    let url = str_member(doc, name)?;
    let t = Target::parse(&url).ok()?;
    if t.origin.scheme == "http" && endpoint.origin.scheme != "http" {
        return None;
    }
    Some(url)
}

impl OAuthState {
    /// The protected-resource metadata locations the host accepts for `endpoint`, in the spec's order.
    /// A challenge's `resource_metadata` counts only in the endpoint's registrable domain, and over
    /// https unless the endpoint itself is plain http: a challenge cannot steer the connector to
    /// another host (an internal address, say).
    pub fn resource_metadata_urls(&self, endpoint: &Target) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(c) = &self.challenge {
            let near = |u: &&String| {
                Target::parse(u).is_ok_and(|t| {
                    (t.origin.scheme == "https" || endpoint.origin.scheme == "http")
                        && registrable_domain(&t.origin.host) == registrable_domain(&endpoint.origin.host)
                })
            };
            out.extend(c.resource_metadata.iter().filter(near).cloned());
        }
        if endpoint.path.trim_end_matches('/') != "" {
            out.push(well_known_inserted(endpoint, "oauth-protected-resource"));
        }
        out.push(format!("{}/.well-known/oauth-protected-resource", endpoint.origin));
        out.dedup();
        out
    }

    /// The metadata locations of an issuer (RFC 8414, then OpenID Connect), in the spec's order.
    pub fn server_metadata_urls(issuer: &str) -> Vec<String> {
        let Ok(i) = Target::parse(issuer) else { return Vec::new() };
        let mut urls = vec![well_known_inserted(&i, "oauth-authorization-server"), well_known_inserted(&i, "openid-configuration")];
        if i.path.trim_end_matches('/') != "" {
            urls.push(well_known_appended(&i, "openid-configuration"));
        }
        urls
    }

    /// The endpoint origin's `/.well-known/oauth-authorization-server`: the 2025-03-26 location, and
    /// Close's (see the module docs).
    fn origin_server_metadata(endpoint: &Target) -> String {
        format!("{}/.well-known/oauth-authorization-server", endpoint.origin)
    }

    /// The authorization server in force: the accepted document, else (without protected-resource
    /// metadata) the 2025-03-26 defaults on the endpoint's origin.
    pub fn server(&self, endpoint: &Target) -> Option<ServerDoc> {
        if let Some(s) = &self.server {
            return Some(s.clone());
        }
        if self.resource.is_some() {
            return None;
        }
        let o = &endpoint.origin;
        Some(ServerDoc {
            url: None,
            issuer: None,
            authorization_endpoint: format!("{o}/authorize"),
            token_endpoint: format!("{o}/token"),
            registration_endpoint: Some(format!("{o}/register")),
            revocation_endpoint: None,
            scopes_supported: Vec::new(),
            iss_supported: false,
        })
    }

    /// What `method` to `target` is to the authorization, if anything.
    pub fn purpose(&self, endpoint: &Target, method: Method, target: &Target) -> Option<Purpose> {
        let url = target.url();
        let same = |u: &str| Target::parse(u).is_ok_and(|t| t.url() == url);
        let purpose = if self.resource_metadata_urls(endpoint).iter().any(|u| same(u)) {
            Some(Purpose::ResourceMetadata)
        } else if self.server_metadata_candidates(endpoint).iter().any(|u| same(u)) {
            Some(Purpose::ServerMetadata)
        } else if let Some(s) = self.server(endpoint) {
            if same(&s.token_endpoint) {
                Some(Purpose::Token)
            } else if s.registration_endpoint.as_deref().is_some_and(same) {
                Some(Purpose::Registration)
            } else if s.revocation_endpoint.as_deref().is_some_and(same) {
                Some(Purpose::Revocation)
            } else if same(&s.authorization_endpoint) {
                Some(Purpose::Authorization)
            } else {
                None
            }
        } else {
            None
        };
        purpose.filter(|p| p.methods().contains(&method))
    }

    /// Every authorization-server metadata location the host accepts now.
    fn server_metadata_candidates(&self, endpoint: &Target) -> Vec<String> {
        let mut out = Vec::new();
        match &self.resource {
            Some(r) => {
                for issuer in &r.authorization_servers {
                    out.extend(Self::server_metadata_urls(issuer));
                    if self.close_exception_applies(endpoint, issuer) {
                        out.push(Self::origin_server_metadata(endpoint));
                    }
                }
            }
            None => out.push(Self::origin_server_metadata(endpoint)),
        }
        out.dedup();
        out
    }

    fn close_exception_applies(&self, endpoint: &Target, issuer: &str) -> bool {
        Origin::parse(issuer).is_ok_and(|i| registrable_domain(&i.host) == registrable_domain(&endpoint.origin.host))
    }

    /// Learn from a response: `doc` is the JSON body of a 2xx answer to `method` `target`. Returns
    /// whether the host accepted it as metadata of this connection's authorization.
    pub fn learn(&mut self, endpoint: &Target, method: Method, target: &Target, doc: &Value) -> bool {
        match self.purpose(endpoint, method, target) {
            Some(Purpose::ResourceMetadata) => self.learn_resource(endpoint, target, doc),
            Some(Purpose::ServerMetadata) => self.learn_server(endpoint, target, doc),
            _ => false,
        }
    }

    fn learn_resource(&mut self, endpoint: &Target, target: &Target, doc: &Value) -> bool {
        let Some(resource) = str_member(doc, "resource") else { return false };
        let servers: Vec<String> = str_list(doc, "authorization_servers").into_iter().filter(|s| Target::parse(s).is_ok()).collect();
        if servers.is_empty() || !resource_matches(&resource, endpoint) {
            return false;
        }
        // A server no longer named (a migration) is forgotten with its endpoints.
        if let Some(s) = &self.server {
            if !s.issuer.as_deref().is_some_and(|i| servers.iter().any(|n| issuer_matches(i, n))) {
                self.server = None;
            }
        }
        self.resource = Some(ResourceDoc {
            url: target.url(),
            resource,
            authorization_servers: servers,
            scopes_supported: str_list(doc, "scopes_supported"),
        });
        true
    }

    fn learn_server(&mut self, endpoint: &Target, target: &Target, doc: &Value) -> bool {
        let url = target.url();
        let published = str_member(doc, "issuer");
        let issuer = match &self.resource {
            Some(r) => {
                // The document must be the metadata of a named issuer, at one of its locations or
                // (Close's exception) at the endpoint origin's well-known location.
                let named = r.authorization_servers.iter().find(|i| {
                    published.as_deref().is_some_and(|p| issuer_matches(p, i))
                        && (Self::server_metadata_urls(i).contains(&url)
                            || (url == Self::origin_server_metadata(endpoint) && self.close_exception_applies(endpoint, i)))
                });
                match named {
                    Some(_) => published,
                    None => return false,
                }
            }
            // 2025-03-26: the endpoint origin's document, whatever its issuer says.
            None => published,
        };
        let (Some(authorization_endpoint), Some(token_endpoint)) =
            (endpoint_url(doc, "authorization_endpoint", endpoint), endpoint_url(doc, "token_endpoint", endpoint))
        else {
            return false;
        };
        self.server = Some(ServerDoc {
            url: Some(url),
            issuer,
            authorization_endpoint,
            token_endpoint,
            registration_endpoint: endpoint_url(doc, "registration_endpoint", endpoint),
            revocation_endpoint: endpoint_url(doc, "revocation_endpoint", endpoint),
            scopes_supported: str_list(doc, "scopes_supported"),
            iss_supported: doc.get("authorization_response_iss_parameter_supported").and_then(Value::as_bool).unwrap_or(false),
        });
        true
    }

    /// Remember a challenge of the MCP endpoint (401 or 403 with a `WWW-Authenticate` header).
    pub fn learn_challenge(&mut self, status: u16, www_authenticate: &str) {
        let c = crate::oauth::challenge::parse(status, www_authenticate);
        for s in &c.scopes {
            if !self.challenged_scopes.contains(s) && self.challenged_scopes.len() < 64 {
                self.challenged_scopes.push(s.clone());
            }
        }
        self.challenge = Some(c);
    }

    /// The OAuth URLs the connection may reach now, as grant rules.
    pub fn grant(&self, endpoint: &Target) -> Grant {
        let mut g = Grant::default();
        let mut add = |url: &str, purpose: Purpose| {
            if let Ok(t) = Target::parse(url) {
                g.push(Rule::exact(&t, purpose.methods(), Reason::OAuth(purpose.as_str())));
            }
        };
        for u in self.resource_metadata_urls(endpoint) {
            add(&u, Purpose::ResourceMetadata);
        }
        for u in self.server_metadata_candidates(endpoint) {
            add(&u, Purpose::ServerMetadata);
        }
        if let Some(s) = self.server(endpoint) {
            add(&s.authorization_endpoint, Purpose::Authorization);
            add(&s.token_endpoint, Purpose::Token);
            for (u, p) in [(&s.registration_endpoint, Purpose::Registration), (&s.revocation_endpoint, Purpose::Revocation)] {
                if let Some(u) = u {
                    add(u, p);
                }
            }
        }
        g
    }

    /// The token and revocation endpoints, for binding OAuth credentials.
    pub fn targets(&self, endpoint: &Target) -> OAuthTargets {
        let s = self.server(endpoint);
        OAuthTargets {
            token: s.as_ref().and_then(|s| Target::parse(&s.token_endpoint).ok()),
            revocation: s.as_ref().and_then(|s| s.revocation_endpoint.as_deref()).and_then(|u| Target::parse(u).ok()),
        }
    }

    /// Whether the server advertises `offline_access` (its metadata or the resource's).
    pub fn offline_access_advertised(&self) -> bool {
        let in_list = |l: &[String]| l.iter().any(|s| s == "offline_access");
        self.server.as_ref().is_some_and(|s| in_list(&s.scopes_supported))
            || self.resource.as_ref().is_some_and(|r| in_list(&r.scopes_supported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(u: &str) -> Target {
        Target::parse(u).unwrap()
    }

    fn close_like() -> (Target, OAuthState) {
        let endpoint = t("https://mcp.close.com/mcp");
        let mut s = OAuthState::default();
        let prm = json!({"resource": "https://mcp.close.com/", "authorization_servers": ["https://api.close.com/"],
            "scopes_supported": ["mcp.read", "mcp.write_safe", "offline_access"]});
        assert!(s.learn(&endpoint, Method::Get, &t("https://mcp.close.com/.well-known/oauth-protected-resource"), &prm));
        let asm = json!({"issuer": "https://api.close.com", "authorization_endpoint": "https://app.close.com/oauth2/authorize/",
            "token_endpoint": "https://api.close.com/oauth2/token/", "registration_endpoint": "https://api.close.com/oauth2/register/",
            "scopes_supported": ["mcp.read"]});
        assert!(s.learn(&endpoint, Method::Get, &t("https://mcp.close.com/.well-known/oauth-authorization-server"), &asm));
        (endpoint, s)
    }

    #[test]
    fn close_metadata_on_the_mcp_host_is_accepted_for_an_issuer_in_its_registrable_domain() {
        let (endpoint, s) = close_like();
        assert_eq!(s.server.as_ref().unwrap().issuer.as_deref(), Some("https://api.close.com"));
        let g = s.grant(&endpoint);
        for (m, u, ok) in [
            (Method::Post, "https://api.close.com/oauth2/token/", true),
            (Method::Post, "https://api.close.com/oauth2/register/", true),
            (Method::Get, "https://app.close.com/oauth2/authorize/", true),
            (Method::Get, "https://api.close.com/oauth2/token/", false),
            (Method::Post, "https://api.close.com/api/v1/lead/", false),
            (Method::Delete, "https://api.close.com/api/v1/lead/lead_1/", false),
            (Method::Get, "https://api.close.com/.well-known/oauth-authorization-server", true),
            (Method::Get, "https://mcp.close.com/.well-known/oauth-protected-resource/mcp", true),
        ] {
            assert_eq!(g.allows(m, &t(u)), ok, "{m} {u}");
        }
        assert!(s.offline_access_advertised());
        assert_eq!(s.targets(&endpoint).token, Some(t("https://api.close.com/oauth2/token/")));
    }

    #[test]
    fn the_mcp_host_cannot_speak_for_an_issuer_outside_its_registrable_domain() {
        let endpoint = t("https://mcp.vendor.example/mcp");
        let mut s = OAuthState::default();
        let prm = json!({"resource": "https://mcp.vendor.example/mcp", "authorization_servers": ["https://auth.other.example"]});
        assert!(s.learn(&endpoint, Method::Get, &t("https://mcp.vendor.example/.well-known/oauth-protected-resource/mcp"), &prm));
        let asm = json!({"issuer": "https://auth.other.example", "authorization_endpoint": "https://auth.other.example/a",
            "token_endpoint": "https://evil.example/token"});
        assert!(!s.learn(&endpoint, Method::Get, &t("https://mcp.vendor.example/.well-known/oauth-authorization-server"), &asm));
        // At the issuer's own location it is the issuer speaking.
        assert!(s.learn(&endpoint, Method::Get, &t("https://auth.other.example/.well-known/oauth-authorization-server"), &asm));
    }

    #[test]
    fn documents_from_urls_the_host_did_not_derive_teach_nothing() {
        let endpoint = t("https://mcp.close.com/mcp");
        let mut s = OAuthState::default();
        let prm = json!({"resource": "https://mcp.close.com/", "authorization_servers": ["https://evil.example"]});
        assert!(!s.learn(&endpoint, Method::Get, &t("https://mcp.close.com/api/v1/prm"), &prm));
        assert!(!s.learn(&endpoint, Method::Post, &t("https://mcp.close.com/.well-known/oauth-protected-resource"), &prm));
        assert!(s.resource.is_none());
        // A resource naming another server is refused.
        let other = json!({"resource": "https://elsewhere.example/", "authorization_servers": ["https://evil.example"]});
        assert!(!s.learn(&endpoint, Method::Get, &t("https://mcp.close.com/.well-known/oauth-protected-resource"), &other));
        // An issuer that does not match the location it was read from is refused.
        let (endpoint, mut s) = close_like();
        let forged = json!({"issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/a", "token_endpoint": "https://evil.example/t"});
        assert!(!s.learn(&endpoint, Method::Get, &t("https://api.close.com/.well-known/oauth-authorization-server"), &forged));
        assert_eq!(s.server.unwrap().token_endpoint, "https://api.close.com/oauth2/token/");
    }

    #[test]
    fn a_challenges_resource_metadata_url_is_a_location_and_its_scopes_accumulate() {
        let endpoint = t("http://127.0.0.1:9/mcp");
        let mut s = OAuthState::default();
        s.learn_challenge(401, r#"Bearer resource_metadata="http://127.0.0.1:9/custom/prm", scope="a b""#);
        s.learn_challenge(403, r#"Bearer error="insufficient_scope", scope="b c""#);
        assert_eq!(s.challenged_scopes, vec!["a", "b", "c"]);
        assert!(s.purpose(&endpoint, Method::Get, &t("http://127.0.0.1:9/.well-known/oauth-protected-resource")).is_some());
        let mut s2 = OAuthState::default();
        s2.learn_challenge(401, r#"Bearer resource_metadata="http://127.0.0.1:9/custom/prm""#);
        assert_eq!(s2.purpose(&endpoint, Method::Get, &t("http://127.0.0.1:9/custom/prm")), Some(Purpose::ResourceMetadata));
    }

    #[test]
    fn a_challenge_cannot_name_resource_metadata_on_another_host() {
        let endpoint = t("https://mcp.close.com/mcp");
        for (url, kept) in [
            ("https://mcp.close.com/custom/prm", true),
            ("https://auth.close.com/prm", true),
            ("http://mcp.close.com/prm", false),
            ("https://evil.example/prm", false),
            ("http://10.0.0.7:8080/admin/export?all=1", false),
        ] {
            let mut s = OAuthState::default();
            s.learn_challenge(401, &format!(r#"Bearer resource_metadata="{url}""#));
            assert_eq!(s.purpose(&endpoint, Method::Get, &t(url)) == Some(Purpose::ResourceMetadata), kept, "{url}");
            assert_eq!(s.grant(&endpoint).allows(Method::Get, &t(url)), kept, "{url}");
        }
    }

    #[test]
    fn without_protected_resource_metadata_the_2025_03_26_locations_apply() {
        let endpoint = t("http://127.0.0.1:9/mcp");
        let s = OAuthState::default();
        let g = s.grant(&endpoint);
        assert!(g.allows(Method::Get, &t("http://127.0.0.1:9/.well-known/oauth-authorization-server")));
        assert!(g.allows(Method::Post, &t("http://127.0.0.1:9/token")));
        assert!(g.allows(Method::Post, &t("http://127.0.0.1:9/register")));
        assert!(!g.allows(Method::Post, &t("http://127.0.0.1:9/api")));
        let mut s = s;
        let asm = json!({"issuer": "whatever", "authorization_endpoint": "http://127.0.0.1:9/oauth/authorize", "token_endpoint": "http://127.0.0.1:9/oauth/token"});
        assert!(s.learn(&endpoint, Method::Get, &t("http://127.0.0.1:9/.well-known/oauth-authorization-server"), &asm));
        assert!(s.grant(&endpoint).allows(Method::Post, &t("http://127.0.0.1:9/oauth/token")));
        assert!(!s.grant(&endpoint).allows(Method::Post, &t("http://127.0.0.1:9/token")));
    }

    #[test]
    fn a_migration_forgets_the_old_server() {
        let (endpoint, mut s) = close_like();
        let prm = json!({"resource": "https://mcp.close.com/", "authorization_servers": ["https://auth2.close.com"]});
        assert!(s.learn(&endpoint, Method::Get, &t("https://mcp.close.com/.well-known/oauth-protected-resource"), &prm));
        assert!(s.server.is_none());
        assert!(!s.grant(&endpoint).allows(Method::Post, &t("https://api.close.com/oauth2/token/")));
        assert!(s.grant(&endpoint).allows(Method::Get, &t("https://auth2.close.com/.well-known/oauth-authorization-server")));
    }

    #[test]
    fn plain_http_endpoints_in_metadata_need_a_plain_http_mcp_endpoint() {
        let (endpoint, mut s) = close_like();
        let asm = json!({"issuer": "https://api.close.com", "authorization_endpoint": "https://app.close.com/a", "token_endpoint": "http://api.close.com/t"});
        assert!(!s.learn(&endpoint, Method::Get, &t("https://api.close.com/.well-known/oauth-authorization-server"), &asm));
    }

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        assert_eq!(registrable_domain("mcp.close.com"), "close.com");
        assert_eq!(registrable_domain("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(registrable_domain("127.0.0.1"), "127.0.0.1");
        assert_ne!(registrable_domain("x.github.io"), registrable_domain("y.github.io"));
    }
}
