//! The Close connector's operations, independent of the WIT glue so they can be tested natively
//! with a fake host and a scripted HTTP transport.
//!
//! Two ways to authenticate:
//! * **API key**: `Close-API-Key` + `Close-Scope` on every request (the secret `api-key`).
//! * **OAuth** (through `mcp_client::oauth`): Close's hosted MCP server publishes its
//!   protected-resource metadata (`resource` = `https://mcp.close.com/`) and, also on the MCP host,
//!   the metadata of its authorization server `https://api.close.com`, which registers public
//!   clients dynamically. The connector asks for exactly `mcp.read` (plus `offline_access` when it is
//!   offered, for a refresh token), refuses a grant without `mcp.read`, and names the account after
//!   the organization the user chose on Close's consent screen.

use crate::convert::{self, map_oauth_error, ErrorContext, READ_SCOPE_MESSAGE};
use crate::types::{
    Account, AuthMethod, AuthorizationRequest, Connection, ConnectorInfo, Error, ScopeProblem,
    Tool, ToolResult,
};
use mcp_client::error::one_line;
use mcp_client::oauth::scope::OFFLINE_ACCESS;
use mcp_client::oauth::{
    self, ClientOptions, GrantInfo, OAuthBearer, OAuthContext, OAuthHost, OAuthSettings,
    ScopeInputs, ScopePolicy,
};
use mcp_client::url::HttpUrl;
use mcp_client::{
    AuthProvider, ClientConfig, HttpClient, LogLevel, Logger, McpClient, McpError, SessionStore,
};
use serde_json::{Map, Value};

/// Connector id used in policy files and logs.
pub const CONNECTOR_ID: &str = "close";
/// The hosted MCP endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://mcp.close.com/mcp";
/// The least-privilege scope (read-only tools).
pub const DEFAULT_SCOPE: &str = "mcp.read";
/// Host state key holding the MCP session (endpoint, session id, negotiated protocol version) as JSON.
pub const STATE_MCP_SESSION: &str = "mcp-session";
/// Secret holding the Close API key (set by the host for `auth-method = api-key`).
pub const SECRET_API_KEY: &str = "api-key";
/// Secret holding the OAuth access token (the other OAuth keys are in `mcp_client::oauth::keys`).
pub const SECRET_ACCESS_TOKEN: &str = oauth::keys::ACCESS_TOKEN;
/// The tool that names the organization a connection reaches.
pub const ORG_INFO_TOOL: &str = "org_info";
/// `client_name` of the dynamic client registration.
pub const OAUTH_CLIENT_NAME: &str = "clariBI Close connector";

/// What the connector needs from the host (the generated `host` imports, or a fake in tests):
/// secrets, state and the credential lock ([`OAuthHost`]), logging ([`Logger`]), and the connection.
pub trait Host: OAuthHost + Logger {
    fn connection(&self) -> Connection;
}

/// The connector's self-description (no I/O).
pub fn describe() -> ConnectorInfo {
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
    }
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

/// Close's API-key authentication: `Close-API-Key` and `Close-Scope` on every request.
pub struct CloseApiKey {
    pub key: String,
    pub scope: String,
}

impl AuthProvider for CloseApiKey {
    fn headers(&self) -> Result<Vec<(String, String)>, McpError> {
        Ok(vec![
            ("Close-API-Key".to_owned(), self.key.clone()),
            ("Close-Scope".to_owned(), self.scope.clone()),
        ])
    }
}

/// The credentials of one call.
enum Credentials<'a> {
    ApiKey(CloseApiKey),
    OAuth(OAuthBearer<'a>),
}

impl AuthProvider for Credentials<'_> {
    fn headers(&self) -> Result<Vec<(String, String)>, McpError> {
        match self {
            Credentials::ApiKey(k) => k.headers(),
            Credentials::OAuth(b) => b.headers(),
        }
    }
    fn on_unauthorized(&self, www_authenticate: Option<&str>) -> Result<bool, McpError> {
        match self {
            Credentials::ApiKey(k) => k.on_unauthorized(www_authenticate),
            Credentials::OAuth(b) => b.on_unauthorized(www_authenticate),
        }
    }
}

/// The connection's settings, resolved.
struct Settings<'a> {
    endpoint: String,
    origin: String,
    scope: String,
    /// The credential in use, to redact it from any message a server might echo it in.
    secret: String,
    auth: Credentials<'a>,
    /// The OAuth authorization in force.
    grant: Option<GrantInfo>,
}

impl Settings<'_> {
    fn is_oauth(&self) -> bool {
        matches!(self.auth, Credentials::OAuth(_))
    }

    fn error_context(&self) -> ErrorContext<'_> {
        ErrorContext::new(&self.scope).with_oauth(self.is_oauth())
    }

    /// What a check reports: the scopes held and where the credentials may go.
    fn account(&self, display_name: Option<String>) -> Account {
        match &self.grant {
            Some(grant) if self.is_oauth() => Account {
                granted_scopes: grant.granted_scopes.clone(),
                display_name,
                credential_origins: grant.credential_origins(),
            },
            _ => Account {
                granted_scopes: vec![self.scope.clone()],
                display_name,
                credential_origins: vec![self.origin.clone()],
            },
        }
    }
}

struct HostSessionStore<'h>(&'h dyn Host);

impl SessionStore for HostSessionStore<'_> {
    fn load(&self) -> Option<String> {
        self.0.state(STATE_MCP_SESSION)
    }
    fn save(&self, value: Option<&str>) {
        self.0.set_state(STATE_MCP_SESSION, value)
    }
}

/// One call's worth of connector.
pub struct CloseConnector<'a> {
    host: &'a dyn Host,
    http: &'a dyn HttpClient,
}

impl<'a> CloseConnector<'a> {
    pub fn new(host: &'a dyn Host, http: &'a dyn HttpClient) -> Self {
        CloseConnector { host, http }
    }

    fn oauth(&self) -> OAuthContext<'a> {
        OAuthContext {
            host: self.host,
            http: self.http,
            log: self.host,
        }
    }

    /// Starts an OAuth authorization: discovery (Close serves its authorization server's metadata
    /// on the MCP host too), the client (pre-registered through the options `client_id`/
    /// `client_secret`, else a dynamic registration shared by every Close connection), and the
    /// authorization URL for `mcp.read` (+ `offline_access`).
    pub fn begin_authorization(&self, redirect_uri: &str) -> Result<AuthorizationRequest, Error> {
        let connection = self.host.connection();
        let (endpoint, url) = self.endpoint(&connection)?;
        let settings = OAuthSettings {
            endpoint,
            client_name: OAUTH_CLIENT_NAME.to_owned(),
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
            client: ClientOptions::from_options(&connection.options),
            configured_scopes: connection.scopes.clone(),
            scope_policy: &CloseScopePolicy,
            extra_metadata_urls: vec![format!(
                "{}/.well-known/oauth-authorization-server",
                url.origin()
            )],
        };
        let start = oauth::begin(&self.oauth(), &settings, redirect_uri)
            .map_err(|e| self.logged(map_oauth_error(e)))?;
        Ok(AuthorizationRequest {
            url: start.url,
            state: start.state,
            credential_origins: start.credential_origins,
        })
    }

    /// Finishes the authorization: checks the redirect, exchanges the code, refuses a grant without
    /// `mcp.read` (storing nothing), stores the tokens, and names the organization (`org_info`, else
    /// the token response's `organization_id`).
    pub fn complete_authorization(&self, callback_url: &str) -> Result<Account, Error> {
        let ctx = self.oauth();
        let done =
            oauth::complete(&ctx, callback_url).map_err(|e| self.logged(map_oauth_error(e)))?;
        let granted = done.granted_scopes().to_vec();
        if !granted.iter().any(|s| s == DEFAULT_SCOPE) {
            return Err(self.logged(Error::InsufficientScope(ScopeProblem {
                required: vec![DEFAULT_SCOPE.to_owned()],
                granted,
                message: READ_SCOPE_MESSAGE.to_owned(),
            })));
        }
        oauth::store_grant(&ctx, &done).map_err(|e| self.logged(map_oauth_error(e)))?;
        // A session opened with other credentials is not reused.
        self.host.set_state(STATE_MCP_SESSION, None);
        let settings = self.settings()?;
        let name = self.organization(&settings)?;
        let display_name = name.or_else(|| done.tokens.extra_str("organization_id"));
        self.host.log(
            LogLevel::Info,
            &format!(
                "Close authorized: {}",
                display_name.as_deref().unwrap_or("organization unknown")
            ),
        );
        Ok(settings.account(display_name))
    }

    /// Initializes a fresh MCP session, then asks `org_info` which organization the credentials reach.
    pub fn check_connection(&self) -> Result<Account, Error> {
        let settings = self.settings()?;
        let display_name = self.organization(&settings)?;
        self.host.log(
            LogLevel::Info,
            &format!(
                "connection checked: {}",
                display_name.as_deref().unwrap_or("organization unknown")
            ),
        );
        Ok(settings.account(display_name))
    }

    /// Every tool Close offers this connection.
    pub fn list_tools(&self) -> Result<Vec<Tool>, Error> {
        let settings = self.settings()?;
        let store = HostSessionStore(self.host);
        let mut client = self.client(&settings, &store)?;
        let tools = client
            .list_tools()
            .map_err(|e| self.fail(e, &settings.error_context(), &settings))?;
        self.host.log(
            LogLevel::Debug,
            &format!("Close offers {} tools", tools.len()),
        );
        Ok(tools.into_iter().map(convert::tool).collect())
    }

    /// Calls one tool. `arguments` must be a JSON object.
    pub fn call_tool(&self, name: &str, arguments: &str) -> Result<ToolResult, Error> {
        let arguments = match serde_json::from_str::<Value>(arguments) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Error::InvalidArguments(
                    "The arguments must be a JSON object, e.g. {}.".to_owned(),
                ))
            }
            Err(_) => {
                return Err(Error::InvalidArguments(
                    "The arguments are not valid JSON; send a JSON object.".to_owned(),
                ))
            }
        };
        if name.trim().is_empty() {
            return Err(Error::UnknownTool(
                "No tool name was given; list the tools to see what Close offers.".to_owned(),
            ));
        }
        let settings = self.settings()?;
        let store = HostSessionStore(self.host);
        let mut client = self.client(&settings, &store)?;
        let result = client
            .call_tool(name, arguments)
            .map_err(|e| self.fail(e, &settings.error_context().for_tool(name), &settings))?;
        Ok(convert::tool_result(result))
    }

    /// Ends the MCP session at Close when there is one (best effort) and forgets it. OAuth tokens are
    /// revoked when Close's authorization server offers revocation (best effort, logged); API keys
    /// cannot be revoked through the MCP server. The host deletes the stored secrets afterwards.
    pub fn disconnect(&self) -> Result<(), Error> {
        match self.settings() {
            Ok(settings) => {
                let store = HostSessionStore(self.host);
                match self.client(&settings, &store) {
                    Ok(mut client) => {
                        if let Err(e) = client.terminate_session() {
                            let message = format!("could not end the MCP session at Close: {e}");
                            self.host.log(
                                LogLevel::Info,
                                &message.replace(settings.secret.as_str(), "***"),
                            );
                        }
                    }
                    Err(_) => self.host.set_state(STATE_MCP_SESSION, None),
                }
            }
            Err(_) => self.host.set_state(STATE_MCP_SESSION, None),
        }
        if self.host.connection().auth_method == AuthMethod::Oauth {
            if let Err(e) = oauth::revoke(&self.oauth()) {
                self.host.log(
                    LogLevel::Warn,
                    &one_line(
                        &format!("could not revoke the Close OAuth tokens: {e}"),
                        400,
                    ),
                );
            }
            oauth::forget(self.host);
        }
        Ok(())
    }

    /// `org_info` on a fresh session: the organization's name, `None` when Close has no such tool.
    fn organization(&self, settings: &Settings<'_>) -> Result<Option<String>, Error> {
        let ctx = settings.error_context();
        let store = HostSessionStore(self.host);
        let mut client = self.client(settings, &store)?;
        client
            .initialize()
            .map_err(|e| self.fail(e, &ctx, settings))?;
        match client.call_tool(ORG_INFO_TOOL, Map::new()) {
            Ok(result) => Ok(convert::organization_display_name(&result)),
            Err(e) => match convert::map_error(e.clone(), &ctx.for_tool(ORG_INFO_TOOL)) {
                Error::UnknownTool(_) => {
                    self.host.log(
                        LogLevel::Warn,
                        "Close offers no org_info tool; the account name is unknown",
                    );
                    Ok(None)
                }
                _ => Err(self.fail(e, &ctx.for_tool(ORG_INFO_TOOL), settings)),
            },
        }
    }

    fn client<'c>(
        &self,
        settings: &'c Settings<'a>,
        store: &'c HostSessionStore<'a>,
    ) -> Result<McpClient<'c>, Error>
    where
        'a: 'c,
    {
        let mut config = ClientConfig::new(
            settings.endpoint.clone(),
            "claribi-close",
            env!("CARGO_PKG_VERSION"),
        );
        config.client_title = Some("clariBI Close CRM connector".to_owned());
        McpClient::new(config, self.http, &settings.auth, store, self.host)
            .map_err(|e| self.fail(e, &settings.error_context(), settings))
    }

    /// The connection's endpoint (Close's when none is set), checked.
    fn endpoint(&self, connection: &Connection) -> Result<(String, HttpUrl), Error> {
        let endpoint = if connection.endpoint.trim().is_empty() {
            DEFAULT_ENDPOINT.to_owned()
        } else {
            connection.endpoint.trim().to_owned()
        };
        let url = HttpUrl::parse(&endpoint).map_err(|e| {
            self.logged(Error::Protocol(format!(
                "The connection's endpoint is not a valid http(s) URL ({e}); reconnect with a valid endpoint."
            )))
        })?;
        Ok((endpoint, url))
    }

    fn settings(&self) -> Result<Settings<'a>, Error> {
        let connection = self.host.connection();
        let (endpoint, url) = self.endpoint(&connection)?;
        let configured_scope = connection
            .scopes
            .iter()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
            .unwrap_or(DEFAULT_SCOPE)
            .to_owned();
        let (scope, secret, auth, grant) = match connection.auth_method {
            AuthMethod::ApiKey => match self
                .host
                .secret(SECRET_API_KEY)
                .filter(|k| !k.trim().is_empty())
            {
                Some(key) => {
                    let key = key.trim().to_owned();
                    let auth = Credentials::ApiKey(CloseApiKey {
                        key: key.clone(),
                        scope: configured_scope.clone(),
                    });
                    (configured_scope, key, auth, None)
                }
                None => return Err(self.logged(Error::Unauthorized(
                    "No Close API key is stored for this connection. Reconnect it with an API key."
                        .to_owned(),
                ))),
            },
            AuthMethod::Oauth => {
                let bearer = OAuthBearer::new(self.oauth());
                if !bearer.has_credentials() {
                    return Err(self.logged(Error::Unauthorized(
                        "This connection holds no Close OAuth token. Reconnect it.".to_owned(),
                    )));
                }
                let grant = oauth::grant_info(self.host).filter(|g| g.endpoint == endpoint);
                let scope = grant
                    .as_ref()
                    .and_then(|g| {
                        g.granted_scopes
                            .iter()
                            .find(|s| s.starts_with("mcp."))
                            .cloned()
                    })
                    .unwrap_or_else(|| DEFAULT_SCOPE.to_owned());
                let secret = self.host.secret(SECRET_ACCESS_TOKEN).unwrap_or_default();
                (scope, secret, Credentials::OAuth(bearer), grant)
            }
        };
        Ok(Settings {
            endpoint,
            origin: url.origin(),
            scope,
            secret,
            auth,
            grant,
        })
    }

    fn fail(&self, e: McpError, ctx: &ErrorContext<'_>, settings: &Settings<'_>) -> Error {
        if let Credentials::OAuth(bearer) = &settings.auth {
            oauth::remember_challenge(self.host, &settings.endpoint, &e);
            if let Some(failure) = bearer.failure() {
                return self.logged(convert::redact(map_oauth_error(failure), &settings.secret));
            }
        }
        self.logged(convert::redact(
            convert::map_error(e, ctx),
            &settings.secret,
        ))
    }

    fn logged(&self, e: Error) -> Error {
        self.host
            .log(LogLevel::Warn, &one_line(&convert::error_message(&e), 400));
        e
    }
}

#[cfg(test)]
mod tests;
