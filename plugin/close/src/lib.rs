//! clariBI data-source connector for Close CRM's hosted MCP server (`https://mcp.close.com/mcp`).
//!
//! The component implements the `claribi:data-source/connector` interface (see `wit/data-source.wit`)
//! through `claribi-connector-sdk`, which holds everything that is not Close's (the bindings, the host
//! glue, the connector flow, the error mapping; the protocol and OAuth are `mcp-client`'s). This crate
//! is the [`Close`] vendor, which departs from a plain MCP server in these ways:
//!
//! * **API key**: `Close-API-Key` on every request (the secret `api-key`, a placeholder the host
//!   replaces on the wire), declared in `api-key-headers` with the scope header `Close-Scope`, which
//!   the host sets to the connection's scope (`mcp.read`).
//! * **OAuth**: Close's hosted MCP server publishes its protected-resource metadata (`resource` =
//!   `https://mcp.close.com/`) and, also on the MCP host, the metadata of its authorization server
//!   `https://api.close.com`, which registers public clients dynamically. The connector asks for
//!   exactly `mcp.read` (plus `offline_access` when it is offered, for a refresh token:
//!   [`CloseScopePolicy`]), and refuses a grant without `mcp.read` with [`READ_SCOPE_MESSAGE`].
//! * **Scopes held**: an API key holds its `Close-Scope`; OAuth tokens their `mcp.*` scope. A scope
//!   problem that involves `mcp.read` is [`READ_SCOPE_MESSAGE`], which the host recognises.
//! * **Account**: named after the organization, by `org_info` (see [`organization`]), else after the
//!   token response's `organization_id`.
//! * **Wording**: every message names Close.
//!
//! Every export runs in a fresh instance: the MCP session is kept with `host.set-state` under
//! `claribi_connector_sdk::STATE_MCP_SESSION`, the API key is read with `host.get-secret("api-key")`,
//! and the OAuth tokens, registration and authorization in progress are kept under the keys of
//! `mcp_client::oauth::keys`. Every credential the connector holds is a placeholder: the host attaches
//! the values on the wire, only at Close's MCP endpoint and its authorization server's token and
//! revocation endpoints.

pub mod organization;

use claribi_connector_sdk::mcp_client::oauth::scope::OFFLINE_ACCESS;
use claribi_connector_sdk::mcp_client::oauth::{GrantInfo, ScopeInputs, ScopePolicy};
use claribi_connector_sdk::mcp_client::url::HttpUrl;
use claribi_connector_sdk::mcp_client::LogLevel;
use claribi_connector_sdk::types::{ApiKeyHeaders, AuthMethod, ConnectorInfo, Error, ScopeProblem};
use claribi_connector_sdk::{convert, CredentialKind, Session, Vendor, Wording};
use serde_json::Map;

/// Connector id used in policy files and logs.
pub const CONNECTOR_ID: &str = "close";
/// The hosted MCP endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://mcp.close.com/mcp";
/// The least-privilege scope (read-only tools).
pub const DEFAULT_SCOPE: &str = "mcp.read";
/// The header Close reads an API key from.
pub const API_KEY_HEADER: &str = "close-api-key";
/// The header that names the scope an API key is used with (set by the host).
pub const SCOPE_HEADER: &str = "close-scope";
/// The tool that names the organization a connection reaches.
pub const ORG_INFO_TOOL: &str = "org_info";
/// `client_name` of the dynamic client registration.
pub const OAUTH_CLIENT_NAME: &str = "clariBI Close connector";
/// The message of a grant (or a key) without the read scope. Exactly this text: the host and the
/// operator's tooling recognise it.
pub const READ_SCOPE_MESSAGE: &str =
    "Insufficient scope: the Close account did not grant mcp.read. Reconnect and accept the read scope.";

/// The Close CRM connector.
pub struct Close;

impl Vendor for Close {
    fn info() -> ConnectorInfo {
        ConnectorInfo {
            id: CONNECTOR_ID.to_owned(),
            display_name: "Close CRM".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Reads leads, contacts, opportunities, activities, tasks and pipelines from a Close CRM \
                          organization through Close's hosted MCP server."
                .to_owned(),
            default_endpoint: DEFAULT_ENDPOINT.to_owned(),
            outbound_origins: vec![
                // The MCP server (and its OAuth metadata).
                "https://mcp.close.com".to_owned(),
                // The authorization server: client registration and token endpoint.
                "https://api.close.com".to_owned(),
                // The consent page the user opens.
                "https://app.close.com".to_owned(),
            ],
            scopes: vec![DEFAULT_SCOPE.to_owned()],
            auth_methods: vec![AuthMethod::ApiKey, AuthMethod::Oauth],
            api_key_headers: Some(ApiKeyHeaders {
                key: API_KEY_HEADER.to_owned(),
                scope: Some(SCOPE_HEADER.to_owned()),
            }),
        }
    }

    const CLIENT_NAME: &'static str = "claribi-close";
    const CLIENT_TITLE: &'static str = "clariBI Close CRM connector";
    const REGISTRATION_NAME: &'static str = OAUTH_CLIENT_NAME;

    const WORDING: Wording = Wording {
        server: "Close",
        the_server: "Close",
        the_server_short: "Close",
        vendor: "Close ",
        authorization_server: "Close's authorization server",
        authorization_request: "to Close's authorization server",
        api_key: "the credentials",
        tool_scope: " for this connection",
    };

    const SCOPE_POLICY: &'static dyn ScopePolicy = &CloseScopePolicy;

    /// Close serves its authorization server's metadata on the MCP host too.
    fn metadata_fallbacks(endpoint: &HttpUrl) -> Vec<String> {
        vec![format!(
            "{}/.well-known/oauth-authorization-server",
            endpoint.origin()
        )]
    }

    /// A grant without `mcp.read` is refused (nothing is stored).
    fn check_grant(granted: &[String]) -> Result<(), Error> {
        if granted.iter().any(|s| s == DEFAULT_SCOPE) {
            return Ok(());
        }
        Err(Error::InsufficientScope(ScopeProblem {
            required: vec![DEFAULT_SCOPE.to_owned()],
            granted: granted.to_vec(),
            message: READ_SCOPE_MESSAGE.to_owned(),
        }))
    }

    /// One scope: an API key's `Close-Scope`; OAuth tokens' `mcp.*` scope (else `mcp.read`).
    fn granted_scopes(
        kind: CredentialKind,
        connection_scopes: &[String],
        grant: Option<&GrantInfo>,
    ) -> Vec<String> {
        let scope = match kind {
            CredentialKind::OAuth => grant
                .and_then(|g| {
                    g.granted_scopes
                        .iter()
                        .find(|s| s.starts_with("mcp."))
                        .cloned()
                })
                .unwrap_or_else(|| DEFAULT_SCOPE.to_owned()),
            _ => configured_scope(connection_scopes),
        };
        vec![scope]
    }

    /// A challenge without scopes requires the scope in use; one that involves `mcp.read` is
    /// [`READ_SCOPE_MESSAGE`]; others name the scopes the account did not grant.
    fn scope_problem(required: Vec<String>, granted: &[String]) -> ScopeProblem {
        let granted = granted.to_vec();
        let required = if required.is_empty() {
            granted.clone()
        } else {
            required
        };
        let missing = convert::missing_scopes(&required, &granted);
        let message = if required.iter().any(|s| s == DEFAULT_SCOPE)
            && (missing.is_empty() || missing.iter().any(|s| s == DEFAULT_SCOPE))
        {
            READ_SCOPE_MESSAGE.to_owned()
        } else {
            let lacking = if missing.is_empty() {
                &required
            } else {
                &missing
            };
            convert::insufficient_scope_message("the Close account did not grant", lacking)
        };
        ScopeProblem {
            required,
            granted,
            message,
        }
    }

    /// `org_info` names the organization; without that tool, the token response's
    /// `organization_id` (after an authorization), else nothing.
    fn account_name(session: &mut Session<'_>) -> Result<Option<String>, Error> {
        let name = match session.call_tool_if_offered(ORG_INFO_TOOL, Map::new())? {
            Some(result) => organization::display_name(&result),
            None => {
                session.log(
                    LogLevel::Warn,
                    "Close offers no org_info tool; the account name is unknown",
                );
                None
            }
        };
        Ok(name.or_else(|| {
            session
                .authorization()
                .and_then(|done| done.tokens.extra_str("organization_id"))
        }))
    }
}

/// The scope a connection asks for: its first, else `mcp.read`.
fn configured_scope(scopes: &[String]) -> String {
    scopes
        .iter()
        .map(|s| s.trim())
        .find(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SCOPE)
        .to_owned()
}

/// Close's scope policy: exactly `mcp.read` (read-only tools, least privilege), plus
/// `offline_access` when the authorization server or the resource offers it (Close issues refresh
/// tokens for it). Connection scopes and challenges do not widen it.
pub struct CloseScopePolicy;

impl ScopePolicy for CloseScopePolicy {
    fn select(&self, inputs: &ScopeInputs<'_>) -> Vec<String> {
        let mut scopes = vec![DEFAULT_SCOPE.to_owned()];
        if inputs
            .server_scopes
            .iter()
            .chain(inputs.resource_scopes)
            .any(|s| s == OFFLINE_ACCESS)
        {
            scopes.push(OFFLINE_ACCESS.to_owned());
        }
        scopes
    }
}

#[cfg(target_os = "wasi")]
claribi_connector_sdk::export_connector!(Close with_types_in claribi_connector_sdk::bindings);

#[cfg(test)]
mod tests;
