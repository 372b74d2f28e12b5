//! The Close connector's operations, independent of the WIT glue so they can be tested natively
//! with a fake host and a scripted HTTP transport.

use crate::convert::{self, ErrorContext};
use crate::types::{Account, AuthMethod, Connection, ConnectorInfo, Error, Tool, ToolResult};
use mcp_client::error::one_line;
use mcp_client::url::HttpUrl;
use mcp_client::{
    AuthProvider, BearerToken, ClientConfig, HttpClient, LogLevel, Logger, McpClient, McpError,
    SessionStore,
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
/// Secret holding an OAuth access token (reserved for the OAuth flow).
pub const SECRET_ACCESS_TOKEN: &str = "access-token";
/// The tool that names the organization a connection reaches.
pub const ORG_INFO_TOOL: &str = "org_info";

/// What the connector needs from the host (the generated `host` imports, or a fake in tests).
pub trait Host {
    fn connection(&self) -> Connection;
    fn secret(&self, key: &str) -> Option<String>;
    fn state(&self, key: &str) -> Option<String>;
    fn set_state(&self, key: &str, value: Option<&str>);
    fn log(&self, level: LogLevel, message: &str);
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

/// The answer to `begin-authorization` / `complete-authorization` until OAuth lands.
pub fn oauth_not_implemented() -> Error {
    Error::Protocol(
        "OAuth is not implemented yet in this version of the Close connector; connect with an API key instead.".to_owned(),
    )
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

/// The connection's settings, resolved.
struct Settings {
    endpoint: String,
    origin: String,
    scope: String,
    /// The credential in use, to redact it from any message a server might echo it in.
    secret: String,
    auth: Box<dyn AuthProvider>,
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

struct HostLogger<'h>(&'h dyn Host);

impl Logger for HostLogger<'_> {
    fn log(&self, level: LogLevel, message: &str) {
        self.0.log(level, message)
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

    /// Initializes a fresh MCP session, then asks `org_info` which organization the credentials reach.
    pub fn check_connection(&self) -> Result<Account, Error> {
        let settings = self.settings()?;
        let ctx = ErrorContext::new(&settings.scope);
        let (store, logger) = (HostSessionStore(self.host), HostLogger(self.host));
        let mut client = self.client(&settings, &store, &logger)?;
        client
            .initialize()
            .map_err(|e| self.fail(e, &ctx, &settings))?;
        let display_name = match client.call_tool(ORG_INFO_TOOL, Map::new()) {
            Ok(result) => convert::organization_display_name(&result),
            Err(e) => match convert::map_error(e, &ctx.for_tool(ORG_INFO_TOOL)) {
                Error::UnknownTool(_) => {
                    self.host.log(
                        LogLevel::Warn,
                        "Close offers no org_info tool; the account name is unknown",
                    );
                    None
                }
                other => return Err(self.logged(convert::redact(other, &settings.secret))),
            },
        };
        self.host.log(
            LogLevel::Info,
            &format!(
                "connection checked: {}",
                display_name.as_deref().unwrap_or("organization unknown")
            ),
        );
        Ok(Account {
            granted_scopes: vec![settings.scope.clone()],
            display_name,
            credential_origins: vec![settings.origin.clone()],
        })
    }

    /// Every tool Close offers this connection.
    pub fn list_tools(&self) -> Result<Vec<Tool>, Error> {
        let settings = self.settings()?;
        let ctx = ErrorContext::new(&settings.scope);
        let (store, logger) = (HostSessionStore(self.host), HostLogger(self.host));
        let mut client = self.client(&settings, &store, &logger)?;
        let tools = client
            .list_tools()
            .map_err(|e| self.fail(e, &ctx, &settings))?;
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
        let ctx = ErrorContext::new(&settings.scope);
        let (store, logger) = (HostSessionStore(self.host), HostLogger(self.host));
        let mut client = self.client(&settings, &store, &logger)?;
        let result = client
            .call_tool(name, arguments)
            .map_err(|e| self.fail(e, &ctx.for_tool(name), &settings))?;
        Ok(convert::tool_result(result))
    }

    /// Ends the MCP session at Close when there is one (best effort) and forgets it. API keys cannot
    /// be revoked through the MCP server; the host deletes the stored key afterwards.
    pub fn disconnect(&self) -> Result<(), Error> {
        match self.settings() {
            Ok(settings) => {
                let (store, logger) = (HostSessionStore(self.host), HostLogger(self.host));
                match self.client(&settings, &store, &logger) {
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
        Ok(())
    }

    fn client<'c>(
        &self,
        settings: &'c Settings,
        store: &'c HostSessionStore<'a>,
        logger: &'c HostLogger<'a>,
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
        McpClient::new(config, self.http, settings.auth.as_ref(), store, logger)
            .map_err(|e| self.fail(e, &ErrorContext::new(&settings.scope), settings))
    }

    fn settings(&self) -> Result<Settings, Error> {
        let connection = self.host.connection();
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
        let scope = connection
            .scopes
            .iter()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
            .unwrap_or(DEFAULT_SCOPE)
            .to_owned();
        let (secret, auth): (String, Box<dyn AuthProvider>) = match connection.auth_method {
            AuthMethod::ApiKey => match self
                .host
                .secret(SECRET_API_KEY)
                .filter(|k| !k.trim().is_empty())
            {
                Some(key) => {
                    let key = key.trim().to_owned();
                    (
                        key.clone(),
                        Box::new(CloseApiKey {
                            key,
                            scope: scope.clone(),
                        }),
                    )
                }
                None => return Err(self.logged(Error::Unauthorized(
                    "No Close API key is stored for this connection. Reconnect it with an API key."
                        .to_owned(),
                ))),
            },
            AuthMethod::Oauth => match self
                .host
                .secret(SECRET_ACCESS_TOKEN)
                .filter(|t| !t.trim().is_empty())
            {
                Some(token) => {
                    let token = token.trim().to_owned();
                    (token.clone(), Box::new(BearerToken(token)))
                }
                None => {
                    return Err(self.logged(Error::Unauthorized(
                        "This connection holds no Close OAuth token. Reconnect it.".to_owned(),
                    )))
                }
            },
        };
        Ok(Settings {
            endpoint,
            origin: url.origin(),
            scope,
            secret,
            auth,
        })
    }

    fn fail(&self, e: McpError, ctx: &ErrorContext<'_>, settings: &Settings) -> Error {
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
