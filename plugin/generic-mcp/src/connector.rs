//! The generic MCP connector's operations, independent of the WIT glue so they can be tested
//! natively with a fake host and a scripted HTTP transport.
//!
//! Credentials, by the connection's `auth-method`:
//! * **OAuth**: `mcp_client::oauth` with the spec's scope strategy ([`SpecScopePolicy`]); the client
//!   is pre-registered (options `client_id`, `client_secret`), a client ID metadata document (option
//!   `client_metadata_url`), or registered dynamically.
//! * **API key**: the secret `api-key` as `Authorization: Bearer <key>`, or as `<header>: <key>` when
//!   the option `api_key_header` names another header. Without a key, requests go out without
//!   credentials (servers that need none).

use crate::convert::{self, map_oauth_error, Credentials as Kind, ErrorContext};
use crate::types::{
    Account, AuthMethod, AuthorizationRequest, Connection, ConnectorInfo, Error, Tool, ToolResult,
};
use mcp_client::error::one_line;
use mcp_client::model::InitializeResult;
use mcp_client::oauth::{
    self, ClientOptions, GrantInfo, OAuthBearer, OAuthContext, OAuthHost, OAuthSettings,
    SpecScopePolicy,
};
use mcp_client::url::HttpUrl;
use mcp_client::{
    AuthProvider, ClientConfig, HttpClient, LogLevel, Logger, McpClient, McpError, SessionStore,
};
use serde_json::Value;

/// Connector id used in policy files and logs.
pub const CONNECTOR_ID: &str = "mcp";
/// Host state key holding the MCP session (endpoint, session id, negotiated protocol version) as JSON.
pub const STATE_MCP_SESSION: &str = "mcp-session";
/// Secret holding the API key (set by the host for `auth-method = api-key`).
pub const SECRET_API_KEY: &str = "api-key";
/// Option naming the header the API key is sent in (default `Authorization: Bearer`).
pub const OPTION_API_KEY_HEADER: &str = "api_key_header";
/// `clientInfo.name` and the `client_name` of a dynamic registration.
pub const CLIENT_NAME: &str = "claribi-mcp";

/// What the connector needs from the host (the generated `host` imports, or a fake in tests).
pub trait Host: OAuthHost + Logger {
    fn connection(&self) -> Connection;
}

/// The connector's self-description (no I/O).
pub fn describe() -> ConnectorInfo {
    ConnectorInfo {
        id: CONNECTOR_ID.to_owned(),
        display_name: "MCP server".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        description:
            "Reads what any MCP server (Streamable HTTP) offers through its tools; the operator \
                      names the server, and its authorization server is discovered."
                .to_owned(),
        default_endpoint: String::new(),
        outbound_origins: Vec::new(),
        scopes: Vec::new(),
        auth_methods: vec![AuthMethod::Oauth, AuthMethod::ApiKey],
    }
}

/// An API key in a header: `Authorization: Bearer <key>`, or `<header>: <key>`.
pub struct ApiKeyHeader {
    pub header: String,
    pub value: String,
}

impl AuthProvider for ApiKeyHeader {
    fn headers(&self) -> Result<Vec<(String, String)>, McpError> {
        Ok(vec![(self.header.clone(), self.value.clone())])
    }
}

enum Credentials<'a> {
    None,
    ApiKey(ApiKeyHeader),
    OAuth(OAuthBearer<'a>),
}

impl AuthProvider for Credentials<'_> {
    fn headers(&self) -> Result<Vec<(String, String)>, McpError> {
        match self {
            Credentials::None => Ok(Vec::new()),
            Credentials::ApiKey(k) => k.headers(),
            Credentials::OAuth(b) => b.headers(),
        }
    }
    fn on_unauthorized(&self, www_authenticate: Option<&str>) -> Result<bool, McpError> {
        match self {
            Credentials::OAuth(b) => b.on_unauthorized(www_authenticate),
            _ => Ok(false),
        }
    }
}

struct Settings<'a> {
    endpoint: String,
    origin: String,
    /// The credential in use, to redact it from any message a server might echo it in.
    secret: String,
    auth: Credentials<'a>,
    grant: Option<GrantInfo>,
}

impl Settings<'_> {
    fn kind(&self) -> Kind {
        match self.auth {
            Credentials::None => Kind::None,
            Credentials::ApiKey(_) => Kind::ApiKey,
            Credentials::OAuth(_) => Kind::OAuth,
        }
    }

    fn granted(&self) -> &[String] {
        self.grant
            .as_ref()
            .map(|g| g.granted_scopes.as_slice())
            .unwrap_or(&[])
    }

    fn account(&self, display_name: Option<String>) -> Account {
        Account {
            granted_scopes: self.granted().to_vec(),
            display_name,
            credential_origins: match &self.grant {
                Some(grant) => grant.credential_origins(),
                None => vec![self.origin.clone()],
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
pub struct McpConnector<'a> {
    host: &'a dyn Host,
    http: &'a dyn HttpClient,
}

impl<'a> McpConnector<'a> {
    pub fn new(host: &'a dyn Host, http: &'a dyn HttpClient) -> Self {
        McpConnector { host, http }
    }

    fn oauth(&self) -> OAuthContext<'a> {
        OAuthContext {
            host: self.host,
            http: self.http,
            log: self.host,
        }
    }

    /// Starts an OAuth authorization as the MCP spec describes it; the scopes come from the
    /// connection, else the server's challenge, else the resource's `scopes_supported`.
    pub fn begin_authorization(&self, redirect_uri: &str) -> Result<AuthorizationRequest, Error> {
        let connection = self.host.connection();
        let (endpoint, _) = self.endpoint(&connection)?;
        let settings = OAuthSettings {
            endpoint,
            client_name: CLIENT_NAME.to_owned(),
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
            client: ClientOptions::from_options(&connection.options),
            configured_scopes: connection.scopes.clone(),
            scope_policy: &SpecScopePolicy,
            extra_metadata_urls: Vec::new(),
        };
        let start = oauth::begin(&self.oauth(), &settings, redirect_uri)
            .map_err(|e| self.logged(map_oauth_error(e)))?;
        Ok(AuthorizationRequest {
            url: start.url,
            state: start.state,
            credential_origins: start.credential_origins,
        })
    }

    /// Finishes the authorization, stores the tokens, and checks them with a fresh `initialize`.
    pub fn complete_authorization(&self, callback_url: &str) -> Result<Account, Error> {
        let ctx = self.oauth();
        let done =
            oauth::complete(&ctx, callback_url).map_err(|e| self.logged(map_oauth_error(e)))?;
        oauth::store_grant(&ctx, &done).map_err(|e| self.logged(map_oauth_error(e)))?;
        self.host.set_state(STATE_MCP_SESSION, None);
        self.check_connection()
    }

    /// Initializes a fresh MCP session and names the server.
    pub fn check_connection(&self) -> Result<Account, Error> {
        let settings = self.settings()?;
        let store = HostSessionStore(self.host);
        let mut client = self.client(&settings, &store)?;
        let init = client
            .initialize()
            .map_err(|e| self.fail(e, &self.context(&settings), &settings))?;
        let name = server_name(&init);
        self.host
            .log(LogLevel::Info, &format!("connection checked: {name}"));
        Ok(settings.account(Some(name)))
    }

    /// Every tool the server offers.
    pub fn list_tools(&self) -> Result<Vec<Tool>, Error> {
        let settings = self.settings()?;
        let store = HostSessionStore(self.host);
        let mut client = self.client(&settings, &store)?;
        let tools = client
            .list_tools()
            .map_err(|e| self.fail(e, &self.context(&settings), &settings))?;
        self.host.log(
            LogLevel::Debug,
            &format!("the MCP server offers {} tools", tools.len()),
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
                "No tool name was given; list the tools to see what the server offers.".to_owned(),
            ));
        }
        let settings = self.settings()?;
        let store = HostSessionStore(self.host);
        let mut client = self.client(&settings, &store)?;
        let result = client
            .call_tool(name, arguments)
            .map_err(|e| self.fail(e, &self.context(&settings).for_tool(name), &settings))?;
        Ok(convert::tool_result(result))
    }

    /// Ends the MCP session (best effort), revokes OAuth tokens where the server offers it (best
    /// effort, logged) and forgets the authorization. The host deletes the secrets afterwards.
    pub fn disconnect(&self) -> Result<(), Error> {
        match self.settings() {
            Ok(settings) => {
                let store = HostSessionStore(self.host);
                match self.client(&settings, &store) {
                    Ok(mut client) => {
                        if let Err(e) = client.terminate_session() {
                            let message =
                                format!("could not end the MCP session at the server: {e}");
                            self.host
                                .log(LogLevel::Info, &redact_text(&message, &settings.secret));
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
                    &one_line(&format!("could not revoke the OAuth tokens: {e}"), 400),
                );
            }
            oauth::forget(self.host);
        }
        Ok(())
    }

    fn context<'s>(&self, settings: &'s Settings<'_>) -> ErrorContext<'s> {
        ErrorContext::new(settings.kind(), settings.granted())
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
            CLIENT_NAME,
            env!("CARGO_PKG_VERSION"),
        );
        config.client_title = Some("clariBI MCP connector".to_owned());
        McpClient::new(config, self.http, &settings.auth, store, self.host)
            .map_err(|e| self.fail(e, &self.context(settings), settings))
    }

    fn endpoint(&self, connection: &Connection) -> Result<(String, HttpUrl), Error> {
        let endpoint = connection.endpoint.trim().to_owned();
        if endpoint.is_empty() {
            return Err(self.logged(Error::Protocol(
                "This connection names no MCP server; reconnect with the server's endpoint URL."
                    .to_owned(),
            )));
        }
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
        let (secret, auth, grant) = match connection.auth_method {
            AuthMethod::ApiKey => match self
                .host
                .secret(SECRET_API_KEY)
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
            {
                Some(key) => {
                    let header = api_key_header(&connection.options).map_err(|e| self.logged(e))?;
                    let auth = match header {
                        None => ApiKeyHeader {
                            header: "Authorization".to_owned(),
                            value: format!("Bearer {key}"),
                        },
                        Some(header) => ApiKeyHeader {
                            header,
                            value: key.clone(),
                        },
                    };
                    (key, Credentials::ApiKey(auth), None)
                }
                None => (String::new(), Credentials::None, None),
            },
            AuthMethod::Oauth => {
                let bearer = OAuthBearer::new(self.oauth());
                if !bearer.has_credentials() {
                    return Err(self.logged(Error::Unauthorized(
                        "This connection holds no OAuth token. Reconnect it.".to_owned(),
                    )));
                }
                let grant = oauth::grant_info(self.host).filter(|g| g.endpoint == endpoint);
                let secret = self
                    .host
                    .secret(oauth::keys::ACCESS_TOKEN)
                    .unwrap_or_default();
                (secret, Credentials::OAuth(bearer), grant)
            }
        };
        Ok(Settings {
            endpoint,
            origin: url.origin(),
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

/// The header named by the option `api_key_header`: `None` for the default (`Authorization:
/// Bearer`), an error for a name that is not an HTTP token or that the client sets itself.
pub fn api_key_header(options: &[(String, String)]) -> Result<Option<String>, Error> {
    let Some(name) = options
        .iter()
        .find(|(k, _)| k.trim() == OPTION_API_KEY_HEADER)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if name.eq_ignore_ascii_case("authorization") {
        return Ok(None);
    }
    let token = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let reserved = [
        "accept",
        "content-type",
        "content-length",
        "host",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    ]
    .iter()
    .any(|r| name.eq_ignore_ascii_case(r));
    if !token || reserved || name.len() > 100 {
        return Err(Error::Protocol(format!(
            "The option {OPTION_API_KEY_HEADER} (`{}`) is not a header the API key can be sent in; reconnect with another.",
            one_line(name, 60)
        )));
    }
    Ok(Some(name.to_owned()))
}

/// `Title (name version)`, or `name version`.
fn server_name(init: &InitializeResult) -> String {
    let info = &init.server_info;
    let base = format!(
        "{} {}",
        one_line(&info.name, 80),
        one_line(&info.version, 30)
    );
    match info
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        Some(title) => format!("{} ({base})", one_line(title, 80)),
        None => base,
    }
}

fn redact_text(text: &str, secret: &str) -> String {
    if secret.len() < 4 {
        text.to_owned()
    } else {
        text.replace(secret, "***")
    }
}

#[cfg(test)]
mod tests;
