//! The [`Vendor`] trait: everything one connector says about its MCP server, and nothing the flow
//! does. The SDK's [`Connector`](crate::Connector) reads it; the defaults fit a server the connector
//! knows nothing about (the MCP authorization spec's scope strategy, `Authorization: Bearer` API
//! keys, the server's own name for the account).

use crate::connector::Session;
use crate::convert;
use crate::types::{Connection, ConnectorInfo, Error, ScopeProblem};
use mcp_client::oauth::{GrantInfo, ScopePolicy, SpecScopePolicy};
use mcp_client::url::HttpUrl;

/// How a connection authenticates, as far as error messages and scopes care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// An API-key connection without a key, when the vendor allows it
    /// ([`Vendor::API_KEY_OPTIONAL`]): requests go out without credentials.
    None,
    /// The secret `api-key` (a placeholder), sent in the headers of [`Vendor::api_key_headers`].
    ApiKey,
    /// OAuth tokens (`mcp_client::oauth`).
    OAuth,
}

/// The words the SDK builds every message from: error messages (one sentence for the operator) and
/// log lines. Each field shows what the Close connector and the generic connector
/// ([`Wording::MCP_SERVER`]) use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wording {
    /// The server as a sentence's subject ("Close answered HTTP 502: …"): `"Close"`,
    /// `"The MCP server"`.
    pub server: &'static str,
    /// The server within a sentence ("The host refused a request to Close: …", "Close offers 12
    /// tools"): `"Close"`, `"the MCP server"`.
    pub the_server: &'static str,
    /// The server in a hint ("list the tools to see what Close offers", "could not end the MCP
    /// session at Close"): `"Close"`, `"the server"`.
    pub the_server_short: &'static str,
    /// Qualifies the credentials and the authorization ("No Close API key is stored", "holds no
    /// Close OAuth token", "The Close authorization failed"): `"Close "`, `""`.
    pub vendor: &'static str,
    /// The authorization server as a sentence's subject ("… answered HTTP 503: …", "… could not be
    /// reached: …"): `"Close's authorization server"`, `"The authorization server"`.
    pub authorization_server: &'static str,
    /// Completes "The host refused a request …" for a request of the OAuth flow: `"to Close's
    /// authorization server"`, `"made for the authorization"`.
    pub authorization_request: &'static str,
    /// What a 401 says an API-key connection sent ("Close rejected the credentials (HTTP 401)"):
    /// `"the credentials"`, `"the API key"`.
    pub api_key: &'static str,
    /// Follows "has no tool named `x`" in an `unknown-tool` error: `" for this connection"`, `""`.
    pub tool_scope: &'static str,
}

impl Wording {
    /// For a server known only by its endpoint (the generic MCP connector's).
    pub const MCP_SERVER: Wording = Wording {
        server: "The MCP server",
        the_server: "the MCP server",
        the_server_short: "the server",
        vendor: "",
        authorization_server: "The authorization server",
        authorization_request: "made for the authorization",
        api_key: "the API key",
        tool_scope: "",
    };
}

/// What one connector knows about its MCP server. Implement it on a unit type and export that type
/// with `export_connector!` (see the crate documentation); the SDK implements the WIT `connector`
/// interface for it.
///
/// Only [`info`](Vendor::info), the client names and [`WORDING`](Vendor::WORDING) are required;
/// every other item has a default that suits a server the connector knows nothing about.
pub trait Vendor: 'static {
    /// The connector's self-description (`describe`; no I/O). Its `default-endpoint` is used when a
    /// connection names none (none: such a connection is refused), and its `version` is sent as
    /// `clientInfo.version`: use `env!("CARGO_PKG_VERSION")` of the connector crate.
    fn info() -> ConnectorInfo;

    /// `clientInfo.name` of the MCP sessions, e.g. `"claribi-close"`.
    const CLIENT_NAME: &'static str;
    /// `clientInfo.title` of the MCP sessions, e.g. `"clariBI Close CRM connector"`.
    const CLIENT_TITLE: &'static str;
    /// `client_name` of a dynamic client registration (and `clientInfo.name` of the request that
    /// discovers the authorization server).
    const REGISTRATION_NAME: &'static str = Self::CLIENT_NAME;

    /// The words of the connector's messages.
    const WORDING: Wording;

    /// Whether an API-key connection without a stored key may send its requests without
    /// credentials (servers that need none). When `false` (the default), such a connection is
    /// `unauthorized` before anything is sent.
    const API_KEY_OPTIONAL: bool = false;

    /// The headers that carry the API key on every request. `key` is the secret `api-key` — a
    /// placeholder the host replaces by the key on the wire, and only in the header the connection
    /// binds it to (`connection.api-key-header`, which comes from `connector-info.api-key-headers`
    /// or the operator). Default: that header (`Authorization: Bearer <key>` for `authorization`).
    /// Override it only to add headers; the key in any other header is refused by the host.
    fn api_key_headers(key: &str, connection: &Connection) -> Result<Vec<(String, String)>, Error> {
        Ok(crate::convert::api_key_header(key, &connection.api_key_header))
    }

    /// Which scopes an OAuth authorization asks for. Default: the MCP authorization spec's
    /// strategy (the connection's scopes, else the server's challenge, else the resource's
    /// `scopes_supported`).
    const SCOPE_POLICY: &'static dyn ScopePolicy = &SpecScopePolicy;

    /// Authorization-server metadata locations to try after the spec's, for a vendor that publishes
    /// its metadata elsewhere (e.g. on the MCP host). Default: none.
    fn metadata_fallbacks(endpoint: &HttpUrl) -> Vec<String> {
        let _ = endpoint;
        Vec::new()
    }

    /// Refuses a grant before its tokens are stored (typically: a needed scope is missing, an
    /// `insufficient-scope` error). Default: every grant is accepted.
    fn check_grant(granted: &[String]) -> Result<(), Error> {
        let _ = granted;
        Ok(())
    }

    /// The scopes the credentials hold, as error messages name them (`scope-problem.granted`) and
    /// as a connection reports them when no OAuth grant says (API keys). `connection_scopes` are the
    /// operator's (empty for a failure of the OAuth flow itself); `grant` is the OAuth grant in
    /// force for this endpoint. Default: the grant's scopes, else none.
    fn granted_scopes(
        kind: CredentialKind,
        connection_scopes: &[String],
        grant: Option<&GrantInfo>,
    ) -> Vec<String> {
        let _ = (kind, connection_scopes);
        grant.map(|g| g.granted_scopes.clone()).unwrap_or_default()
    }

    /// The `insufficient-scope` error of a 403 challenge that asks for `required` (possibly
    /// nothing) while the credentials hold `granted` ([`granted_scopes`](Vendor::granted_scopes)).
    /// Default: names the missing scopes ("Insufficient scope: the MCP server needs mcp:write.
    /// Reconnect and accept that scope.").
    fn scope_problem(required: Vec<String>, granted: &[String]) -> ScopeProblem {
        convert::scope_problem(&Self::WORDING, required, granted)
    }

    /// Names the account a connection reaches (`account.display-name`), on the fresh MCP session
    /// that `check-connection` and `complete-authorization` open. Default: the server's own name
    /// (`Title (name version)`).
    fn account_name(session: &mut Session<'_>) -> Result<Option<String>, Error> {
        Ok(Some(session.server_name()))
    }
}
