//! The connector flow every vendor goes through, independent of the WIT glue so that it can be
//! tested natively with a fake host and a scripted HTTP transport: one [`Connector`] per call,
//! one method per export of the `claribi:data-source/connector` interface.
//!
//! Credentials, by the connection's `auth-method`:
//! * **API key**: the secret [`SECRET_API_KEY`] in the headers of [`Vendor::api_key_headers`].
//!   Without a key the call is `unauthorized`, unless [`Vendor::API_KEY_OPTIONAL`] (then requests go
//!   out without credentials).
//! * **OAuth** (through `mcp_client::oauth`): discovery (plus [`Vendor::metadata_fallbacks`]), the
//!   client (pre-registered through the options `client_id`/`client_secret`, a client ID metadata
//!   document through `client_metadata_url`, else a dynamic registration), the scopes of
//!   [`Vendor::SCOPE_POLICY`], and a grant [`Vendor::check_grant`] accepts. Tokens are refreshed
//!   under the host's credential lock and revoked on `disconnect` where the server offers it.
//!
//! The MCP session survives between instances under the state key [`STATE_MCP_SESSION`];
//! `check-connection` and `complete-authorization` always open a fresh one and name the account
//! with [`Vendor::account_name`].
//!
//! The protocol era is the client's business, not the vendor's: by default a session is opened with
//! `server/discover` (MCP 2026-07-28) and falls back to `initialize` (2025-03-26 to 2025-11-25). The
//! connection option [`OPTION_PROTOCOL_VERSION`] pins one (`2026-07-28`, `2025-11-25`, or `auto`).
//! Listings carry the server's caching hints (`ttl-ms`, `cache-scope`) to the host.

use crate::convert::{self, map_error, map_oauth_error, ErrorContext};
use crate::host::Host;
use crate::types::{
    Account, AuthMethod, AuthorizationRequest, Connection, Error, ToolListing, ToolResult,
};
use crate::vendor::{CredentialKind, Vendor};
use mcp_client::error::one_line;
use mcp_client::oauth::{
    self, ClientOptions, CompletedAuthorization, GrantInfo, OAuthBearer, OAuthContext,
    OAuthSettings,
};
use mcp_client::protocol::ProtocolChoice;
use mcp_client::url::HttpUrl;
use mcp_client::{
    AuthProvider, ClientConfig, HttpClient, LogLevel, Logger, McpClient, McpError, ServerHello,
    SessionStore, StaticHeaders, ToolCallResult,
};
use serde_json::{Map, Value};
use std::marker::PhantomData;

/// Host state key holding the MCP session (endpoint, session id, negotiated protocol version) as JSON.
pub const STATE_MCP_SESSION: &str = "mcp-session";
/// Connection option pinning the MCP revision: `auto` (default: `server/discover`, falling back to
/// `initialize`), `2026-07-28`, or a 2025 revision (`initialize` only).
pub const OPTION_PROTOCOL_VERSION: &str = "protocol_version";
/// Secret holding the API key (set by the host for `auth-method = api-key`).
pub const SECRET_API_KEY: &str = "api-key";
/// Secret holding the OAuth access token (the other OAuth keys are in `mcp_client::oauth::keys`).
pub const SECRET_ACCESS_TOKEN: &str = oauth::keys::ACCESS_TOKEN;

/// The credentials of one call.
enum Credentials<'a> {
    None,
    ApiKey(StaticHeaders),
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

/// The connection's settings, resolved.
struct Settings<'a> {
    endpoint: String,
    /// The credential in use, to redact it from any message a server might echo it in.
    secret: String,
    auth: Credentials<'a>,
    /// The OAuth authorization in force for this endpoint.
    grant: Option<GrantInfo>,
    /// The scopes the credentials hold ([`Vendor::granted_scopes`]).
    granted: Vec<String>,
}

impl Settings<'_> {
    fn kind(&self) -> CredentialKind {
        match self.auth {
            Credentials::None => CredentialKind::None,
            Credentials::ApiKey(_) => CredentialKind::ApiKey,
            Credentials::OAuth(_) => CredentialKind::OAuth,
        }
    }

    fn context(&self) -> ErrorContext<'_> {
        ErrorContext::new(self.kind(), &self.granted)
    }

    /// What a check reports. (The host reads the granted scopes itself and decides where the
    /// credentials may go.)
    fn account(&self, display_name: Option<String>) -> Account {
        Account { display_name }
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

/// The fresh MCP session on which [`Vendor::account_name`] names the account: opened (in either
/// era), with the connector's credentials, error mapping and logging.
pub struct Session<'s> {
    client: McpClient<'s>,
    hello: ServerHello,
    authorization: Option<&'s CompletedAuthorization>,
    fail: &'s dyn Fn(McpError, &str) -> Error,
    log: &'s dyn Logger,
}

impl Session<'_> {
    /// What the server said when the session was opened (`server/discover` or `initialize`).
    pub fn hello(&self) -> &ServerHello {
        &self.hello
    }

    /// The server's own name: `Title (name version)`, or `name version`; a 2026-07-28 server that
    /// does not name itself is `an unnamed MCP server (2026-07-28)`.
    pub fn server_name(&self) -> String {
        let Some(info) = &self.hello.server_info else {
            return format!("an unnamed MCP server ({})", self.hello.protocol_version);
        };
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

    /// The authorization just completed (its token response may name the account), during
    /// `complete-authorization`; `None` during `check-connection`.
    pub fn authorization(&self) -> Option<&CompletedAuthorization> {
        self.authorization
    }

    /// Calls a tool; `Ok(None)` when the server has no tool of that name. Any other failure is
    /// mapped, redacted and logged like every error of the connector.
    pub fn call_tool_if_offered(
        &mut self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<Option<ToolCallResult>, Error> {
        match self.client.call_tool(name, arguments) {
            Ok(result) => Ok(Some(result)),
            Err(e) if convert::is_unknown_tool(&e, name) => Ok(None),
            Err(e) => Err((self.fail)(e, name)),
        }
    }

    /// Writes a log line (never a secret).
    pub fn log(&self, level: LogLevel, message: &str) {
        self.log.log(level, message)
    }
}

/// One call's worth of connector for the vendor `V`.
pub struct Connector<'a, V: Vendor> {
    host: &'a dyn Host,
    http: &'a dyn HttpClient,
    vendor: PhantomData<V>,
}

impl<'a, V: Vendor> Connector<'a, V> {
    pub fn new(host: &'a dyn Host, http: &'a dyn HttpClient) -> Self {
        Connector {
            host,
            http,
            vendor: PhantomData,
        }
    }

    fn oauth(&self) -> OAuthContext<'a> {
        OAuthContext {
            host: self.host,
            http: self.http,
            log: self.host,
        }
    }

    /// Starts an OAuth authorization: discovery, the client, and the authorization URL for the
    /// scopes of [`Vendor::SCOPE_POLICY`].
    pub fn begin_authorization(&self, redirect_uri: &str) -> Result<AuthorizationRequest, Error> {
        let connection = self.host.connection();
        let (endpoint, url) = self.endpoint(&connection)?;
        let settings = OAuthSettings {
            endpoint,
            client_name: V::REGISTRATION_NAME.to_owned(),
            client_version: V::info().version,
            client: ClientOptions::from_options(&connection.options),
            configured_scopes: connection.scopes.clone(),
            scope_policy: V::SCOPE_POLICY,
            extra_metadata_urls: V::metadata_fallbacks(&url),
            protocol: self.protocol()?,
        };
        let start = oauth::begin(&self.oauth(), &settings, redirect_uri)
            .map_err(|e| self.logged(map_oauth_error::<V>(e)))?;
        Ok(AuthorizationRequest {
            url: start.url,
            state: start.state,
        })
    }

    /// Finishes the authorization: checks the redirect, exchanges the code, lets
    /// [`Vendor::check_grant`] refuse the grant (storing nothing), stores the tokens, and checks
    /// them on a fresh session, which names the account.
    pub fn complete_authorization(&self, callback_url: &str) -> Result<Account, Error> {
        let ctx = self.oauth();
        let done = oauth::complete(&ctx, callback_url)
            .map_err(|e| self.logged(map_oauth_error::<V>(e)))?;
        V::check_grant(done.granted_scopes()).map_err(|e| self.logged(e))?;
        oauth::store_grant(&ctx, &done).map_err(|e| self.logged(map_oauth_error::<V>(e)))?;
        // A session opened with other credentials is not reused.
        self.host.set_state(STATE_MCP_SESSION, None);
        self.check(Some(&done))
    }

    /// Initializes a fresh MCP session and names the account it reaches.
    pub fn check_connection(&self) -> Result<Account, Error> {
        self.check(None)
    }

    /// Every tool the server offers this connection, with its caching hints.
    pub fn list_tools(&self) -> Result<ToolListing, Error> {
        let settings = self.settings()?;
        let store = HostSessionStore(self.host);
        let mut client = self.client(&settings, &store)?;
        let listing = client
            .list_tools_with_hints()
            .map_err(|e| self.fail(e, &settings.context(), &settings))?;
        self.host.log(
            LogLevel::Debug,
            &format!(
                "{} offers {} tools",
                V::WORDING.the_server,
                listing.tools.len()
            ),
        );
        Ok(ToolListing {
            tools: listing.tools.into_iter().map(convert::tool).collect(),
            ttl_ms: listing.ttl_ms,
            cache_scope: listing
                .cache_scope
                .as_deref()
                .and_then(convert::cache_scope),
        })
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
            return Err(Error::UnknownTool(format!(
                "No tool name was given; list the tools to see what {} offers.",
                V::WORDING.the_server_short
            )));
        }
        let settings = self.settings()?;
        let store = HostSessionStore(self.host);
        let mut client = self.client(&settings, &store)?;
        let result = client
            .call_tool(name, arguments)
            .map_err(|e| self.fail(e, &settings.context().for_tool(name), &settings))?;
        Ok(convert::tool_result(result))
    }

    /// Ends the MCP session when there is one (best effort) and forgets it; revokes OAuth tokens
    /// where the authorization server offers revocation (best effort, logged) and forgets the
    /// authorization. API keys cannot be revoked through an MCP server. The host deletes the stored
    /// secrets afterwards.
    pub fn disconnect(&self) -> Result<(), Error> {
        match self.settings() {
            Ok(settings) => {
                let store = HostSessionStore(self.host);
                match self.client(&settings, &store) {
                    Ok(mut client) => {
                        if let Err(e) = client.terminate_session() {
                            let message = format!(
                                "could not end the MCP session at {}: {e}",
                                V::WORDING.the_server_short
                            );
                            self.host.log(
                                LogLevel::Info,
                                &convert::redact_text(&message, &settings.secret),
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
                        &format!(
                            "could not revoke the {}OAuth tokens: {e}",
                            V::WORDING.vendor
                        ),
                        400,
                    ),
                );
            }
            oauth::forget(self.host);
        }
        Ok(())
    }

    /// A fresh session with the stored credentials, and the account it reaches.
    fn check(&self, authorization: Option<&CompletedAuthorization>) -> Result<Account, Error> {
        let settings = self.settings()?;
        let store = HostSessionStore(self.host);
        let mut client = self.client(&settings, &store)?;
        let hello = client
            .open()
            .map_err(|e| self.fail(e, &settings.context(), &settings))?;
        let fail =
            |e: McpError, tool: &str| self.fail(e, &settings.context().for_tool(tool), &settings);
        let mut session = Session {
            client,
            hello,
            authorization,
            fail: &fail,
            log: self.host,
        };
        let display_name = V::account_name(&mut session)?;
        self.host.log(
            LogLevel::Info,
            &format!(
                "connection checked: {}",
                display_name.as_deref().unwrap_or("account unknown")
            ),
        );
        Ok(settings.account(display_name))
    }

    fn client<'c>(
        &self,
        settings: &'c Settings<'a>,
        store: &'c HostSessionStore<'a>,
    ) -> Result<McpClient<'c>, Error>
    where
        'a: 'c,
    {
        let mut config =
            ClientConfig::new(settings.endpoint.clone(), V::CLIENT_NAME, V::info().version);
        config.client_title = Some(V::CLIENT_TITLE.to_owned());
        config.protocol = self.protocol()?;
        McpClient::new(config, self.http, &settings.auth, store, self.host)
            .map_err(|e| self.fail(e, &settings.context(), settings))
    }

    /// The era the connection's option [`OPTION_PROTOCOL_VERSION`] pins (default `auto`).
    fn protocol(&self) -> Result<ProtocolChoice, Error> {
        let connection = self.host.connection();
        let value = connection
            .options
            .iter()
            .find(|(k, _)| k == OPTION_PROTOCOL_VERSION)
            .map(|(_, v)| v.as_str())
            .unwrap_or("auto");
        ProtocolChoice::parse(value).map_err(|e| {
            self.logged(Error::Protocol(format!(
                "The connection option {OPTION_PROTOCOL_VERSION} is not valid: {e}; reconnect with a valid one."
            )))
        })
    }

    /// The connection's endpoint (the connector's default when none is set), checked.
    fn endpoint(&self, connection: &Connection) -> Result<(String, HttpUrl), Error> {
        let mut endpoint = connection.endpoint.trim().to_owned();
        if endpoint.is_empty() {
            endpoint = V::info().default_endpoint.trim().to_owned();
        }
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
        let (endpoint, _) = self.endpoint(&connection)?;
        let (secret, auth, grant) = match connection.auth_method {
            AuthMethod::ApiKey => match self
                .host
                .secret(SECRET_API_KEY)
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
            {
                Some(key) => {
                    let headers =
                        V::api_key_headers(&key, &connection).map_err(|e| self.logged(e))?;
                    (key, Credentials::ApiKey(StaticHeaders(headers)), None)
                }
                None if V::API_KEY_OPTIONAL => (String::new(), Credentials::None, None),
                None => {
                    return Err(self.logged(Error::Unauthorized(format!(
                        "No {}API key is stored for this connection. Reconnect it with an API key.",
                        V::WORDING.vendor
                    ))))
                }
            },
            AuthMethod::Oauth => {
                let bearer = OAuthBearer::new(self.oauth());
                if !bearer.has_credentials() {
                    return Err(self.logged(Error::Unauthorized(format!(
                        "This connection holds no {}OAuth token. Reconnect it.",
                        V::WORDING.vendor
                    ))));
                }
                let grant = oauth::grant_info(self.host).filter(|g| g.endpoint == endpoint);
                let secret = self.host.secret(SECRET_ACCESS_TOKEN).unwrap_or_default();
                (secret, Credentials::OAuth(bearer), grant)
            }
        };
        let mut settings = Settings {
            endpoint,
            secret,
            auth,
            grant,
            granted: Vec::new(),
        };
        settings.granted =
            V::granted_scopes(settings.kind(), &connection.scopes, settings.grant.as_ref());
        Ok(settings)
    }

    fn fail(&self, e: McpError, ctx: &ErrorContext<'_>, settings: &Settings<'_>) -> Error {
        if let Credentials::OAuth(bearer) = &settings.auth {
            oauth::remember_challenge(self.host, &settings.endpoint, &e);
            if let Some(failure) = bearer.failure() {
                return self.logged(convert::redact(
                    map_oauth_error::<V>(failure),
                    &settings.secret,
                ));
            }
        }
        self.logged(convert::redact(map_error::<V>(e, ctx), &settings.secret))
    }

    fn logged(&self, e: Error) -> Error {
        self.host
            .log(LogLevel::Warn, &one_line(&convert::error_message(&e), 400));
        e
    }
}

#[cfg(test)]
mod tests;
