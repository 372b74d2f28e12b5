//! Finding the authorization server of an MCP server, in the order the MCP spec (2025-11-25) gives,
//! and nowhere else:
//!
//! 1. Protected-resource metadata (RFC 9728): the `resource_metadata` URLs of the 401 challenge, then
//!    `/.well-known/oauth-protected-resource/<path>` (skipped when the endpoint's path is `/`), then
//!    `/.well-known/oauth-protected-resource` at the root. Its `resource` must name this server (same
//!    origin, path a prefix): a server that names another resource gets no authorization request.
//! 2. Authorization-server metadata for its first authorization server, `https://as/<path>`:
//!    `/.well-known/oauth-authorization-server/<path>`, `/.well-known/openid-configuration/<path>`,
//!    then (only when there is a path) `/<path>/.well-known/openid-configuration`; then the extra
//!    locations a connector names for its vendor. The document's `issuer` must be the issuer it was
//!    fetched for. The issuer may live on another origin than the MCP server; it is never compared
//!    with the MCP URL.
//! 3. Without any protected-resource metadata, the 2025-03-26 way: authorization-server metadata at
//!    the MCP origin's root (its `issuer` is not checked), else `/authorize`, `/token` and `/register`
//!    at that origin.
//!
//! A 4xx (or a 2xx that is not JSON) means "not here, try the next"; a 5xx or a transport failure
//! stops discovery. Metadata must offer PKCE S256.

use super::fetch::{get_json, short, Fetched};
use super::metadata::{
    check_endpoint_url, issuer_matches, resource_matches, ResourceMetadata, ServerMetadata,
};
use super::OAuthContext;
use crate::error::{one_line, McpError};
use crate::url::{well_known_appended, well_known_inserted, HttpUrl};
use crate::www_authenticate::BearerChallenge;
use crate::LogLevel;

/// What discovery established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The protected-resource metadata; `None` on the 2025-03-26 path.
    pub resource: Option<ResourceMetadata>,
    /// The authorization server's metadata (or the 2025-03-26 defaults).
    pub server: ServerMetadata,
    /// Whether `server` came from a metadata document (and passed the PKCE check).
    pub from_document: bool,
}

impl Discovery {
    /// The `resource` parameter to send: the protected-resource identifier verbatim, or `None` on
    /// the 2025-03-26 path (as the reference SDK does).
    pub fn resource_parameter(&self) -> Option<&str> {
        self.resource.as_ref().map(|r| r.resource.as_str())
    }
}

/// Runs discovery for `endpoint`. `challenge` is the `Bearer` challenge of a 401 (or 403), if one
/// was seen; `extra_metadata_urls` are vendor-specific authorization-server metadata locations tried
/// after the spec's (empty for a generic client).
pub fn discover(
    ctx: &OAuthContext<'_>,
    endpoint: &str,
    challenge: Option<&BearerChallenge>,
    extra_metadata_urls: &[String],
) -> Result<Discovery, McpError> {
    let endpoint_url = HttpUrl::parse(endpoint)
        .map_err(|e| McpError::protocol(format!("invalid MCP endpoint: {e}")))?;
    let allow_http = endpoint_url.scheme == "http";
    match find_resource_metadata(ctx, &endpoint_url, challenge)? {
        Some(prm) => {
            if !resource_matches(&prm.resource, &endpoint_url) {
                return Err(McpError::protocol(format!(
                    "the protected-resource metadata is for `{}`, not for this MCP server ({}); refusing to authorize",
                    one_line(&prm.resource, 120),
                    endpoint_url.origin()
                )));
            }
            let issuer = prm.authorization_servers[0].clone();
            let server = find_server_metadata(ctx, &issuer, extra_metadata_urls, allow_http)?;
            server.check_pkce()?;
            ctx.log(
                LogLevel::Info,
                &format!(
                    "OAuth discovery: resource {}, authorization server {}",
                    one_line(&prm.resource, 120),
                    one_line(server.issuer.as_deref().unwrap_or(&issuer), 120)
                ),
            );
            Ok(Discovery {
                resource: Some(prm),
                server,
                from_document: true,
            })
        }
        None => legacy(ctx, &endpoint_url, allow_http),
    }
}

fn find_resource_metadata(
    ctx: &OAuthContext<'_>,
    endpoint: &HttpUrl,
    challenge: Option<&BearerChallenge>,
) -> Result<Option<ResourceMetadata>, McpError> {
    let mut candidates: Vec<String> = Vec::new();
    for url in challenge
        .map(|c| c.resource_metadata.as_slice())
        .unwrap_or(&[])
    {
        if HttpUrl::parse(url).is_ok() && !candidates.contains(url) {
            candidates.push(url.clone());
        }
    }
    if !endpoint.path().trim_end_matches('/').is_empty() {
        candidates.push(well_known_inserted(endpoint, "oauth-protected-resource"));
    }
    let root = format!("{}/.well-known/oauth-protected-resource", endpoint.origin());
    if !candidates.contains(&root) {
        candidates.push(root);
    }
    for url in &candidates {
        match get_json(ctx, url)? {
            Fetched::Json(doc) => return ResourceMetadata::parse(&doc).map(Some),
            Fetched::Missing(status) => ctx.log(
                LogLevel::Debug,
                &format!(
                    "no protected-resource metadata at {} (HTTP {status})",
                    short(url)
                ),
            ),
        }
    }
    Ok(None)
}

/// The metadata locations of an issuer, in the spec's order.
pub fn server_metadata_urls(issuer: &HttpUrl) -> Vec<String> {
    let mut urls = vec![
        well_known_inserted(issuer, "oauth-authorization-server"),
        well_known_inserted(issuer, "openid-configuration"),
    ];
    if !issuer.path().trim_end_matches('/').is_empty() {
        urls.push(well_known_appended(issuer, "openid-configuration"));
    }
    urls
}

fn find_server_metadata(
    ctx: &OAuthContext<'_>,
    issuer: &str,
    extra: &[String],
    allow_http: bool,
) -> Result<ServerMetadata, McpError> {
    check_endpoint_url(issuer, "issuer", allow_http)?;
    let issuer_url = HttpUrl::parse(issuer).map_err(|e| {
        McpError::protocol(format!(
            "invalid authorization server `{}`: {e}",
            short(issuer)
        ))
    })?;
    let mut urls = server_metadata_urls(&issuer_url);
    for url in extra {
        if !urls.contains(url) {
            urls.push(url.clone());
        }
    }
    for url in &urls {
        match get_json(ctx, url)? {
            Fetched::Json(doc) => {
                let published = doc.get("issuer").and_then(|v| v.as_str()).unwrap_or("");
                if !issuer_matches(published, issuer) {
                    return Err(McpError::protocol(format!(
                        "the authorization-server metadata at {} names the issuer `{}`, not `{}`; refusing to use it",
                        short(url),
                        one_line(published, 120),
                        one_line(issuer, 120)
                    )));
                }
                return ServerMetadata::parse(&doc, allow_http);
            }
            Fetched::Missing(status) => ctx.log(
                LogLevel::Debug,
                &format!(
                    "no authorization-server metadata at {} (HTTP {status})",
                    short(url)
                ),
            ),
        }
    }
    Err(McpError::protocol(format!(
        "no authorization-server metadata was found for `{}` ({} locations tried)",
        one_line(issuer, 120),
        urls.len()
    )))
}

fn legacy(
    ctx: &OAuthContext<'_>,
    endpoint: &HttpUrl,
    allow_http: bool,
) -> Result<Discovery, McpError> {
    let origin = endpoint.origin();
    let url = format!("{origin}/.well-known/oauth-authorization-server");
    match get_json(ctx, &url)? {
        Fetched::Json(doc) => {
            let server = ServerMetadata::parse(&doc, allow_http)?;
            server.check_pkce()?;
            ctx.log(
                LogLevel::Info,
                "OAuth discovery: no protected-resource metadata; using the authorization-server metadata at the MCP server's origin (MCP 2025-03-26)",
            );
            Ok(Discovery {
                resource: None,
                server,
                from_document: true,
            })
        }
        Fetched::Missing(_) => {
            ctx.log(
                LogLevel::Info,
                "OAuth discovery: no metadata at all; using /authorize, /token and /register at the MCP server's origin (MCP 2025-03-26)",
            );
            Ok(Discovery {
                resource: None,
                server: ServerMetadata::defaults(&origin),
                from_document: false,
            })
        }
    }
}
