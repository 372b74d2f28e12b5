//! The host service: the one checked path every operation goes through, whoever asks (the CLI, the
//! demo, the MCP server for the engine).
//!
//! ```text
//! call_tool(connection, tool, args)
//!   ├─ blocklist: tool name, and annotations from the last listing   (crate::blocklist)
//!   ├─ arguments: must be a JSON object
//!   ├─ the tool must be in the connection's filtered listing (listed again once if not)
//!   ├─ connection record + policy + secrets                           (crate::store, crate::secrets)
//!   ├─ fresh instance under the policy's limits                        (crate::runtime)
//!   │    └─ every outgoing request → grant, credential origins, upstream tools/call names,
//!   │       DNS/IP, byte cap                                          (crate::outbound, crate::upstream_calls)
//!   └─ result or error (one line), connection status updated, one log line
//! ```

use crate::blocklist::Blocklist;
use crate::bindings::wit;
use crate::errors::{ConnectorError, HostError};
use crate::host_api::HostContext;
use crate::outbound::{CredentialGuard, OutboundContext, Resolve, SystemResolver};
use crate::policy::{Grant, Origin, OriginPattern, Policy};
use crate::runtime::{LoadedPlugin, Runtime};
use crate::secrets::{CredentialLocks, MasterKeys};
use crate::store::{AuthMethod, ConnectionRecord, Status, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use zeroize::Zeroizing;

/// Built-in connector components (compiled into this binary).
pub mod builtin {
    /// The Close CRM connector component.
    pub const CLOSE: &[u8] = include_bytes!(env!("CLARIBI_CLOSE_CONNECTOR_WASM"));
    /// The generic MCP connector component.
    pub const MCP: &[u8] = include_bytes!(env!("CLARIBI_MCP_CONNECTOR_WASM"));

    /// A built-in component by name (`builtin:close`, `builtin:mcp`).
    pub fn get(name: &str) -> Option<&'static [u8]> {
        match name {
            "close" => Some(CLOSE),
            "mcp" => Some(MCP),
            _ => None,
        }
    }
}

/// How the service is set up.
pub struct HostConfig {
    /// Where everything is stored.
    pub data_dir: PathBuf,
    /// Name resolution for outgoing requests.
    pub resolver: Arc<dyn Resolve>,
    /// Concurrent connector instances allowed.
    pub max_instances: usize,
    /// Where compiled components are cached (default `<data-dir>/cache`).
    pub cache_dir: Option<PathBuf>,
    /// The blocklist (default: `<data-dir>/blocklist.toml`, else the defaults).
    pub blocklist: Option<Blocklist>,
}

impl HostConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> HostConfig {
        HostConfig { data_dir: data_dir.into(), resolver: Arc::new(SystemResolver), max_instances: 16, cache_dir: None, blocklist: None }
    }
}

/// Tool annotations as the engine sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    /// The tool does not modify anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    /// The tool may destroy data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    /// Repeating the call has no further effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    /// The tool reaches an open world.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

/// A tool that passed the blocklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolInfo {
    /// Tool name.
    pub name: String,
    /// Human title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description for a model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub input_schema: Value,
    /// JSON Schema of the structured result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Behaviour hints, as the vendor gave them.
    pub annotations: Annotations,
}

/// A tool the host withheld, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedTool {
    /// Tool name (as the connector gave it, made printable).
    pub name: String,
    /// Rule id.
    pub rule: String,
    /// One sentence.
    pub reason: String,
}

impl BlockedTool {
    /// Why `tool` may not be called, if one of `withheld` keeps it back (a tool listed twice is
    /// withheld only as the duplicate: its first listing stands).
    fn reason_for(withheld: &[BlockedTool], tool: &str) -> Option<String> {
        withheld.iter().find(|b| b.name == tool && b.rule != "duplicate").map(|b| format!("{} (rule `{}`)", b.reason, b.rule))
    }
}

/// The result of listing a connection's tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolListing {
    /// Tools the engine may see and call.
    pub tools: Vec<ToolInfo>,
    /// Tools withheld by the blocklist.
    pub blocked: Vec<BlockedTool>,
}

/// One content block of a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// Text.
    Text { text: String },
    /// An image (base64).
    Image { data: String, #[serde(rename = "mimeType")] mime_type: String },
    /// Audio (base64).
    Audio { data: String, #[serde(rename = "mimeType")] mime_type: String },
    /// Any other block, as MCP JSON.
    Other { value: Value },
}

/// A successful tool call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolOutput {
    /// The vendor's JSON result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// Human-readable blocks.
    pub content: Vec<Content>,
}

/// How a new connection authenticates.
pub enum Credentials {
    /// An API key.
    ApiKey(Zeroizing<String>),
    /// OAuth through the connector's `begin-authorization`/`complete-authorization`.
    OAuth(OAuthFlow),
    /// No credentials (servers that need none; the connector reports `unauthorized` otherwise).
    None,
}

/// How an OAuth authorization is carried out.
pub struct OAuthFlow {
    /// Browser (print the URL, maybe open it) or headless.
    pub mode: crate::authorize::Mode,
    /// How long to wait for the user.
    pub timeout: std::time::Duration,
    /// Called with the authorization URL before waiting (the CLI prints it).
    pub on_url: Box<dyn Fn(&str) + Send + Sync>,
}

impl OAuthFlow {
    /// A headless flow (no user involved) with a 30 s limit.
    pub fn headless() -> OAuthFlow {
        OAuthFlow { mode: crate::authorize::Mode::Headless, timeout: std::time::Duration::from_secs(30), on_url: Box::new(|_| {}) }
    }
}

/// Everything `connect` needs.
pub struct ConnectRequest {
    /// Connection name.
    pub name: String,
    /// The component bytes.
    pub plugin: Vec<u8>,
    /// Vendor endpoint (`None`: the connector's default).
    pub endpoint: Option<String>,
    /// Credentials.
    pub credentials: Credentials,
    /// Scopes (`empty`: the connector's).
    pub scopes: Vec<String>,
    /// `--allow-origin` values (`None`: default grant, or the policy file's).
    pub allow_origins: Option<Vec<String>>,
    /// A policy file's content.
    pub policy: Option<Policy>,
    /// `--option key=value`. A `client_secret` option is not kept among the options: the host seals
    /// it as the connection's secret [`CLIENT_SECRET_SECRET`].
    pub options: Vec<(String, String)>,
}

/// The option that carries a pre-registered OAuth client's secret.
pub const CLIENT_SECRET_OPTION: &str = "client_secret";
/// The secret a `client_secret` option is sealed as (the name `mcp-client` reads it by).
pub const CLIENT_SECRET_SECRET: &str = "oauth-client-secret";

/// What `connect` established.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectOutcome {
    /// Connection name.
    pub name: String,
    /// Connector display name.
    pub connector: String,
    /// Endpoint.
    pub endpoint: String,
    /// Account reached.
    pub account: Option<String>,
    /// Scopes granted.
    pub granted_scopes: Vec<String>,
    /// The operator's grant.
    pub allowed_origins: Vec<String>,
}

/// What `disconnect` did.
#[derive(Debug, Clone, Serialize)]
pub struct DisconnectOutcome {
    /// Connection name.
    pub name: String,
    /// Whether the connector's `disconnect` (revocation) succeeded.
    pub revoked: bool,
    /// Why revocation failed, if it did (the credentials are deleted anyway).
    pub warning: Option<String>,
}

/// The host service. Cheap to share behind an `Arc`.
pub struct HostService {
    data_dir: PathBuf,
    store: Arc<Store>,
    keys: Arc<MasterKeys>,
    locks: CredentialLocks,
    runtime: Runtime,
    blocklist: Arc<Blocklist>,
    resolver: Arc<dyn Resolve>,
    /// Held while this service runs, so that `rotate-key` never retires the key it seals with.
    _key_use: crate::secrets::KeyUseLock,
    /// Per connection id: held while a call lists the tools again (see `ensure_listed`).
    relisting: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The connection name the host keeps for its own served tools.
pub const RESERVED_NAME: &str = "claribi";

/// Check a connection name.
pub fn validate_name(name: &str) -> Result<(), HostError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.contains("__")
        && !name.ends_with('_');
    if name == RESERVED_NAME {
        return Err(HostError::Usage(format!(
            "`{RESERVED_NAME}` is reserved for the host's own served tools (`{RESERVED_NAME}__next_rows`); choose another connection name"
        )));
    }
    if ok {
        Ok(())
    } else {
        Err(HostError::Usage(format!(
            "`{}` is not a valid connection name; use 1-63 characters of a-z, 0-9, - and _ (no `__`, not ending in `_`: served tool names are `<connection>__<tool>`), starting with a letter or digit",
            crate::errors::one_line(name)
        )))
    }
}

fn valid_tool_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
}

fn random_id(prefix: &str) -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{prefix}_{}", hex::encode(b))
}

impl HostService {
    /// Open the data directory (creating it, mode 0700), the database, the master key and the
    /// blocklist.
    pub fn open(config: HostConfig) -> Result<HostService, HostError> {
        let dir = &config.data_dir;
        crate::runtime::create_private_dir(dir).map_err(HostError::Storage)?;
        let key_use = crate::secrets::KeyUseLock::shared(dir).map_err(HostError::Storage)?;
        let keys = MasterKeys::load_or_create(dir).map_err(HostError::Storage)?;
        let store = Store::open(dir).map_err(HostError::Storage)?;
        let blocklist = match config.blocklist {
            Some(b) => b,
            None => Blocklist::load(&dir.join("blocklist.toml")).map_err(HostError::Usage)?,
        };
        for (rule, reason) in blocklist.overrides() {
            tracing::warn!("blocklist override: default rule `{rule}` is disabled by the operator ({reason})");
        }
        for (tool, reason) in blocklist.allowed_tools() {
            tracing::warn!("blocklist override: tool `{tool}` is let past the name rules by the operator ({reason})");
        }
        let cache = config.cache_dir.clone().unwrap_or_else(|| dir.join("cache"));
        let runtime = Runtime::new(Some(cache), config.max_instances)?;
        Ok(HostService {
            data_dir: dir.clone(),
            store: Arc::new(store),
            keys: Arc::new(keys),
            locks: CredentialLocks::new(Some(dir.join("locks"))),
            runtime,
            blocklist: Arc::new(blocklist),
            resolver: config.resolver,
            _key_use: key_use,
            relisting: Default::default(),
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The runtime (for benchmarks).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The blocklist in force.
    pub fn blocklist(&self) -> &Blocklist {
        &self.blocklist
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn plugin_path(&self, digest: &str) -> PathBuf {
        self.data_dir.join("plugins").join(format!("{digest}.wasm"))
    }

    /// Load the component a connection runs.
    async fn plugin_for(&self, c: &ConnectionRecord) -> Result<Arc<LoadedPlugin>, HostError> {
        let path = self.plugin_path(&c.plugin_digest);
        let bytes = std::fs::read(&path).map_err(|e| {
            HostError::Storage(format!("the component of connection `{}` is missing ({}: {e}); connect it again", c.name, path.display()))
        })?;
        if crate::runtime::digest(&bytes) != c.plugin_digest {
            return Err(HostError::Storage(format!(
                "the component of connection `{}` changed on disk ({}); connect it again",
                c.name,
                path.display()
            )));
        }
        self.runtime.load(&bytes).await
    }

    /// Look up a connection.
    pub fn connection(&self, name: &str) -> Result<ConnectionRecord, HostError> {
        self.store
            .connection(name)
            .map_err(HostError::Storage)?
            .ok_or_else(|| HostError::NoSuchConnection(name.to_string()))
    }

    /// All connections.
    pub fn connections(&self) -> Result<Vec<ConnectionRecord>, HostError> {
        self.store.connections().map_err(HostError::Storage)
    }

    fn outbound_for(&self, c: &ConnectionRecord) -> Result<Arc<OutboundContext>, HostError> {
        let secrets = self.store.secret_values(&self.keys, &c.id).map_err(HostError::Storage)?;
        let origins = c.credential_origins.iter().filter_map(|o| Origin::parse(o).ok()).collect();
        // The blocklist on the wire: no upstream `tools/call` of a name the rules block or the last
        // listing withheld (for its annotations), whatever the connector was asked to do.
        let withheld = self.withheld(c)?;
        let blocklist = self.blocklist.clone();
        let gate: crate::outbound::ToolGate = Arc::new(move |tool: &str| {
            blocklist.check_name(tool).map(|r| r.to_string()).or_else(|| BlockedTool::reason_for(&withheld, tool))
        });
        Ok(Arc::new(
            OutboundContext::new(&c.name, c.policy.grant.clone(), c.policy.limits, CredentialGuard::new(secrets, origins), self.resolver.clone())
                .with_tool_gate(gate),
        ))
    }

    /// Run one export for a connection, mapping the connector's error and substituting the host's
    /// detailed reason for a policy denial. Whatever the connector returns, result or error, has the
    /// connection's secrets masked ([`MaskSecrets`]): a server that echoes a token into a tool result,
    /// a description or an account name does not get it to the engine, the CLI or the database.
    async fn run<R: MaskSecrets + Send + 'static>(
        &self,
        c: &ConnectionRecord,
        plugin: &LoadedPlugin,
        f: impl for<'a> FnOnce(
                &'a crate::bindings::DataSource,
                &'a mut wasmtime::Store<crate::runtime::CallState>,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<Result<R, wit::Error>>> + Send + 'a>>
            + Send,
    ) -> Result<R, HostError> {
        let outbound = self.outbound_for(c)?;
        let ctx = HostContext::for_connection(c.clone(), self.store.clone(), self.keys.clone(), self.locks.clone(), outbound.clone());
        let result = self.runtime.invoke(plugin, &c.name, ctx, c.policy.limits, Some(outbound.clone()), f).await;
        match result {
            Ok(Ok(mut r)) => {
                r.mask_secrets(&|t| outbound.mask(t));
                Ok(r)
            }
            Ok(Err(e)) => {
                let mut e = ConnectorError::from(e);
                if let ConnectorError::DeniedByPolicy { message } = &mut e {
                    if let Some(detail) = outbound.first_denial() {
                        *message = detail;
                    }
                } else if let Some(detail) = outbound.first_denial() {
                    // The connector reported something else, but the host stopped one of its
                    // requests: the operator needs to know that first.
                    if detail.contains("max_response_bytes") || detail.contains("max_requests_per_call") {
                        e = ConnectorError::DeniedByPolicy { message: detail };
                    }
                }
                // Never let a connector echo a secret into an error.
                e.map_text(|t| outbound.mask(t));
                Err(HostError::Connector(e))
            }
            Err(e) => Err(e),
        }
    }

    fn record_outcome<T>(&self, c: &ConnectionRecord, r: &Result<T, HostError>) {
        let (status, err) = match r {
            Ok(_) => (Status::Ready, None),
            Err(HostError::Connector(ConnectorError::Unauthorized { .. })) => (Status::NeedsReconnect, r.as_ref().err()),
            Err(HostError::Connector(ConnectorError::InsufficientScope { .. })) => {
                (Status::InsufficientScope, r.as_ref().err())
            }
            Err(HostError::Blocked { .. }) | Err(HostError::Usage(_)) => return,
            Err(e) => (c.status, Some(e)),
        };
        let msg = err.map(|e| e.to_string());
        if status != c.status || msg != c.last_error {
            if let Err(e) = self.store.set_status(&c.id, status, msg.as_deref()) {
                tracing::warn!("cannot record the status of connection `{}`: {e}", c.name);
            }
        }
    }

    /// Create a connection: load and pin the component, store the credentials sealed, and check that
    /// they work. On any failure nothing is left behind.
    pub async fn connect(&self, req: ConnectRequest) -> Result<ConnectOutcome, HostError> {
        validate_name(&req.name)?;
        if let Some(existing) = self.store.connection(&req.name).map_err(HostError::Storage)? {
            if existing.status == Status::Pending {
                self.store.delete_connection(&existing.id).map_err(HostError::Storage)?;
            } else {
                return Err(HostError::Usage(format!(
                    "a connection named `{}` already exists; run `claribi-host disconnect {}` first or choose another name",
                    req.name, req.name
                )));
            }
        }
        let plugin = self.runtime.load(&req.plugin).await?;
        let info = &plugin.info;
        let endpoint = req.endpoint.clone().unwrap_or_else(|| info.default_endpoint.clone());
        let endpoint_origin = Origin::parse(&endpoint).map_err(|e| HostError::Usage(format!("--endpoint: {e}")))?;
        let method = match req.credentials {
            Credentials::ApiKey(_) | Credentials::None => AuthMethod::ApiKey,
            Credentials::OAuth(_) => AuthMethod::Oauth,
        };
        let wit_method = match method {
            AuthMethod::ApiKey => wit::AuthMethod::ApiKey,
            AuthMethod::Oauth => wit::AuthMethod::Oauth,
        };
        if !info.auth_methods.contains(&wit_method) {
            return Err(HostError::Usage(format!(
                "connector `{}` does not support {} authentication",
                info.id,
                method.as_str()
            )));
        }
        let mut policy = req.policy.clone().unwrap_or_default();
        if let Some(origins) = &req.allow_origins {
            policy.grant = Grant::parse_list(origins).map_err(|e| HostError::Usage(format!("--allow-origin: {e}")))?;
        } else if req.policy.is_none() {
            policy.grant = default_grant(&endpoint_origin, &info.outbound_origins);
        }
        if !policy.grant.allows(&endpoint_origin) {
            return Err(HostError::Usage(format!(
                "the endpoint's origin {endpoint_origin} is not in the grant; add --allow-origin {endpoint_origin}"
            )));
        }
        // Pin the component: keep our own copy, addressed by its digest.
        let plugins = self.data_dir.join("plugins");
        crate::runtime::create_private_dir(&plugins).map_err(HostError::Storage)?;
        let path = self.plugin_path(&plugin.digest);
        if !path.exists() {
            let tmp = plugins.join(format!(".{}.{}.tmp", plugin.digest, std::process::id()));
            crate::runtime::write_private(&tmp, &req.plugin)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| HostError::Storage(format!("cannot store the component in {}: {e}", plugins.display())))?;
        }
        let record = ConnectionRecord {
            id: random_id("conn"),
            name: req.name.clone(),
            plugin_digest: plugin.digest.clone(),
            connector_id: info.id.clone(),
            connector_name: info.display_name.clone(),
            endpoint: endpoint.clone(),
            auth_method: method,
            scopes: if req.scopes.is_empty() { info.scopes.clone() } else { req.scopes.clone() },
            options: req.options.iter().filter(|(k, _)| k.trim() != CLIENT_SECRET_OPTION).cloned().collect(),
            policy: policy.clone(),
            credential_origins: vec![endpoint_origin.to_string()],
            account: None,
            granted_scopes: vec![],
            status: Status::Pending,
            last_error: None,
            created_at: 0,
            updated_at: 0,
        };
        self.store.insert_connection(&record).map_err(HostError::Storage)?;
        let result = async {
            if let Some((_, secret)) = req.options.iter().find(|(k, _)| k.trim() == CLIENT_SECRET_OPTION) {
                self.store
                    .update_secrets(&self.keys, &record.id, &[(CLIENT_SECRET_SECRET.to_string(), Some(secret.trim().to_string()))])
                    .map_err(HostError::Storage)?;
            }
            let account = match &req.credentials {
                Credentials::ApiKey(key) => {
                    self.store
                        .update_secrets(&self.keys, &record.id, &[("api-key".to_string(), Some(key.as_str().to_string()))])
                        .map_err(HostError::Storage)?;
                    self.check_account(&record, &plugin).await?
                }
                Credentials::None => self.check_account(&record, &plugin).await?,
                Credentials::OAuth(flow) => self.authorize_connection(&record, &plugin, flow).await?,
            };
            self.finish_connect(&record, &account)
        }
        .await;
        match result {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                if let Err(del) = self.store.delete_connection(&record.id) {
                    tracing::warn!("cannot remove the failed connection `{}`: {del}", record.name);
                }
                Err(e)
            }
        }
    }

    async fn check_account(&self, record: &ConnectionRecord, plugin: &LoadedPlugin) -> Result<wit::Account, HostError> {
        self.run(record, plugin, |b, s| Box::pin(async move { b.claribi_data_source_connector().call_check_connection(s).await }))
            .await
    }

    /// The OAuth dance for a connection that exists (pending, or being re-authorized): listen on a
    /// loopback port, let the connector build the authorization URL, obtain the redirect (browser or
    /// headless), check `state`, and let the connector exchange the code and store the tokens.
    async fn authorize_connection(
        &self,
        record: &ConnectionRecord,
        plugin: &LoadedPlugin,
        flow: &OAuthFlow,
    ) -> Result<wit::Account, HostError> {
        let redirect = crate::authorize::Redirect::bind().await?;
        let redirect_uri = redirect.uri().to_string();
        let request = self
            .run(record, plugin, move |b, s| {
                Box::pin(async move { b.claribi_data_source_connector().call_begin_authorization(s, &redirect_uri).await })
            })
            .await?;
        let url_origin = Origin::parse(&request.url)
            .map_err(|e| HostError::Connector(ConnectorError::Protocol { message: format!("the connector's authorization URL is invalid: {e}") }))?;
        if !record.policy.grant.allows(&url_origin) {
            return Err(HostError::Connector(ConnectorError::DeniedByPolicy {
                message: format!(
                    "the authorization page is on {url_origin}, which is not granted to connection `{}`; to allow it, reconnect with --allow-origin {url_origin}",
                    record.name
                ),
            }));
        }
        if request.state.len() < 16 || crate::authorize::query_param(&request.url, "state").as_deref() != Some(request.state.as_str()) {
            return Err(HostError::Connector(ConnectorError::Protocol {
                message: "the connector's authorization URL lacks an unguessable state; refusing to continue".into(),
            }));
        }
        // From here on the connection's secrets may also go to the authorization server's origins
        // the connector named (and that the operator granted).
        let mut record = record.clone();
        record.credential_origins = credential_origins(&record, &request.credential_origins)?;
        self.store.set_credential_origins(&record.id, &record.credential_origins).map_err(HostError::Storage)?;
        let record = &record;
        (flow.on_url)(&request.url);
        let callback = match flow.mode {
            crate::authorize::Mode::Headless => {
                let wait = crate::authorize::headless(&request.url, redirect.uri(), &record.policy.grant);
                tokio::time::timeout(flow.timeout, wait).await.map_err(|_| {
                    HostError::Usage(format!("the headless authorization took longer than {} s; nothing was stored", flow.timeout.as_secs()))
                })??
            }
            crate::authorize::Mode::Browser { open } => {
                if open {
                    crate::authorize::open_browser(&request.url);
                }
                redirect.wait(flow.timeout).await?
            }
        };
        if crate::authorize::query_param(&callback, "state").as_deref() != Some(request.state.as_str()) {
            if let Some(err) = crate::authorize::query_param(&callback, "error").filter(|_| {
                crate::authorize::query_param(&callback, "state").is_none()
            }) {
                return Err(HostError::Usage(format!(
                    "the authorization server answered `{}` without our state; nothing was stored",
                    crate::errors::one_line(&err)
                )));
            }
            return Err(HostError::Usage(
                "the authorization response carries the wrong state (a stale or forged redirect); nothing was stored. Run connect again".into(),
            ));
        }
        self.run(record, plugin, move |b, s| {
            Box::pin(async move { b.claribi_data_source_connector().call_complete_authorization(s, &callback).await })
        })
        .await
    }

    /// Authorize an existing OAuth connection again (after `needs-reconnect` or `insufficient-scope`),
    /// optionally asking for more scopes. The old tokens stay until new ones are stored.
    pub async fn reauthorize(&self, name: &str, flow: &OAuthFlow, extra_scopes: &[String]) -> Result<ConnectOutcome, HostError> {
        let mut c = self.connection(name)?;
        if c.auth_method != AuthMethod::Oauth {
            return Err(HostError::Usage(format!(
                "connection `{name}` uses an API key; give the new one with `claribi-host reconnect {name} --api-key-env VAR`"
            )));
        }
        let before = c.clone();
        for s in extra_scopes {
            if !c.scopes.contains(s) {
                c.scopes.push(s.clone());
            }
        }
        self.store.set_scopes(&c.id, &c.scopes).map_err(HostError::Storage)?;
        let plugin = self.plugin_for(&c).await?;
        let result = match self.authorize_connection(&c, &plugin, flow).await {
            Ok(account) => self.finish_connect(&c, &account),
            Err(e) => {
                // A failed re-authorization changes nothing: the scopes asked for and the credential
                // origins go back to what the working grant had (its tokens were never touched).
                let restored = self
                    .store
                    .set_scopes(&c.id, &before.scopes)
                    .and_then(|_| self.store.set_credential_origins(&c.id, &before.credential_origins));
                if let Err(r) = restored {
                    tracing::warn!("cannot restore connection `{name}` after a failed reconnect: {r}");
                }
                Err(e)
            }
        };
        self.record_outcome(&c, &result);
        result
    }

    /// Give an API-key connection a new key (after `needs-reconnect`). The new key is checked first;
    /// if the check fails the old key is put back, so nothing is lost.
    pub async fn rekey(&self, name: &str, key: Zeroizing<String>) -> Result<ConnectOutcome, HostError> {
        let c = self.connection(name)?;
        if c.auth_method != AuthMethod::ApiKey {
            return Err(HostError::Usage(format!(
                "connection `{name}` uses OAuth; run `claribi-host reconnect {name}` without --api-key-env"
            )));
        }
        let old = self.store.secret(&self.keys, &c.id, "api-key").map_err(HostError::Storage)?;
        let set = |v: Option<&str>| {
            self.store.update_secrets(&self.keys, &c.id, &[("api-key".to_string(), v.map(str::to_string))]).map_err(HostError::Storage)
        };
        set(Some(key.as_str()))?;
        let plugin = self.plugin_for(&c).await?;
        let result = match self.check_account(&c, &plugin).await {
            Ok(account) => self.finish_connect(&c, &account),
            Err(e) => {
                set(old.as_deref().map(|z| z.as_str()))?;
                Err(e)
            }
        };
        self.record_outcome(&c, &result);
        result
    }

    fn finish_connect(&self, record: &ConnectionRecord, account: &wit::Account) -> Result<ConnectOutcome, HostError> {
        let origins = credential_origins(record, &account.credential_origins)?;
        let display = account.display_name.as_deref().map(crate::errors::one_line);
        self.store
            .mark_connected(&record.id, display.as_deref(), &account.granted_scopes, &origins)
            .map_err(HostError::Storage)?;
        Ok(ConnectOutcome {
            name: record.name.clone(),
            connector: record.connector_name.clone(),
            endpoint: record.endpoint.clone(),
            account: display,
            granted_scopes: account.granted_scopes.clone(),
            allowed_origins: record.policy.grant.to_strings(),
        })
    }

    /// List the tools of a connection that pass the blocklist.
    pub async fn list_tools(&self, name: &str) -> Result<ToolListing, HostError> {
        let c = self.connection(name)?;
        self.list_tools_of(&c).await
    }

    async fn list_tools_of(&self, c: &ConnectionRecord) -> Result<ToolListing, HostError> {
        let c = c.clone();
        let started = Instant::now();
        let plugin = self.plugin_for(&c).await?;
        let result = self
            .run(&c, &plugin, |b, s| Box::pin(async move { b.claribi_data_source_connector().call_list_tools(s).await }))
            .await
            .map(|tools| self.filter_tools(tools));
        self.record_outcome(&c, &result);
        if let Ok(listing) = &result {
            if let (Ok(json), Ok(blocked)) = (serde_json::to_string(listing), serde_json::to_string(&listing.blocked)) {
                if let Err(e) = self.store.set_tool_cache(&c.id, &json, &blocked) {
                    tracing::warn!("cannot cache the tool listing of `{}`: {e}", c.name);
                }
            }
        }
        log_call(&c.name, "tools/list", started, &result.as_ref().map(|l| serde_json::to_vec(l).map(|v| v.len()).unwrap_or(0)));
        result
    }

    /// Apply the blocklist to a connector's tool list.
    pub fn filter_tools(&self, tools: Vec<wit::Tool>) -> ToolListing {
        let mut listing = ToolListing { tools: vec![], blocked: vec![] };
        let mut seen = std::collections::HashSet::new();
        for t in tools {
            let printable = crate::errors::one_line(&t.name);
            if !valid_tool_name(&t.name) {
                listing.blocked.push(BlockedTool {
                    name: printable,
                    rule: "invalid-name".into(),
                    reason: "tool name is not 1-128 characters of A-Z a-z 0-9 _ . - /".into(),
                });
                continue;
            }
            if !seen.insert(t.name.clone()) {
                listing.blocked.push(BlockedTool { name: printable, rule: "duplicate".into(), reason: "tool listed twice".into() });
                continue;
            }
            if let Some(r) = self.blocklist.check(&t.name, t.annotations.read_only_hint, t.annotations.destructive_hint) {
                listing.blocked.push(BlockedTool { name: printable, rule: r.rule, reason: r.detail });
                continue;
            }
            let schema = match serde_json::from_str::<Value>(&t.input_schema) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    listing.blocked.push(BlockedTool {
                        name: printable,
                        rule: "invalid-schema".into(),
                        reason: "its input schema is not a JSON object".into(),
                    });
                    continue;
                }
            };
            listing.tools.push(ToolInfo {
                name: t.name,
                title: t.title,
                description: t.description,
                input_schema: schema,
                output_schema: t.output_schema.and_then(|s| serde_json::from_str(&s).ok()),
                annotations: Annotations {
                    read_only_hint: t.annotations.read_only_hint,
                    destructive_hint: t.annotations.destructive_hint,
                    idempotent_hint: t.annotations.idempotent_hint,
                    open_world_hint: t.annotations.open_world_hint,
                },
            });
        }
        listing
    }

    /// The tools the last listing of a connection withheld (none before a first listing).
    fn withheld(&self, c: &ConnectionRecord) -> Result<Vec<BlockedTool>, HostError> {
        Ok(self
            .store
            .blocked_tools(&c.id)
            .map_err(HostError::Storage)?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default())
    }

    /// The checks that need no listing: the name rules, and the tools the last listing withheld.
    pub fn check_callable(&self, c: &ConnectionRecord, tool: &str) -> Result<(), HostError> {
        if !valid_tool_name(tool) {
            return Err(HostError::Usage(format!(
                "`{}` is not a valid tool name; list the tools with `claribi-host tools {}`",
                crate::errors::one_line(tool),
                c.name
            )));
        }
        if let Some(r) = self.blocklist.check_name(tool) {
            return Err(HostError::Blocked { tool: tool.to_string(), reason: r.to_string() });
        }
        if let Some(reason) = BlockedTool::reason_for(&self.withheld(c)?, tool) {
            return Err(HostError::Blocked { tool: tool.to_string(), reason });
        }
        Ok(())
    }

    /// After [`Self::check_callable`]: the tool must be one of the read tools the connection's
    /// listing offered (so a tool withheld for its annotations, or one the listing never showed,
    /// cannot be called by name). Without a listing, or when the tool is not in the last one, the
    /// tools are listed once more first. Runs before the connector is instantiated for the call.
    async fn ensure_listed(&self, c: &ConnectionRecord, tool: &str) -> Result<(), HostError> {
        let unknown = || {
            HostError::Connector(ConnectorError::UnknownTool {
                message: format!(
                    "connection `{}` offers no tool named `{tool}`; list its tools with `claribi-host tools {}`",
                    c.name, c.name
                ),
            })
        };
        // A listing younger than this is trusted to be complete: an engine inventing tool names does
        // not cost a listing (and the vendor's rate limit) per call.
        const FRESH_SECS: i64 = 60;
        // The answer the cached listing gives, if it gives one.
        let cached = || -> Result<Option<Result<(), HostError>>, HostError> {
            Ok(match self.store.listed_tool(&c.id, tool).map_err(HostError::Storage)? {
                Some((true, _)) => Some(Ok(())),
                Some((false, at)) if Store::now() - at < FRESH_SECS => Some(Err(unknown())),
                _ => None,
            })
        };
        if let Some(answer) = cached()? {
            return answer;
        }
        // One listing at a time per connection; whoever waited finds the fresh one.
        let gate = {
            let mut map = self.relisting.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(c.id.clone()).or_default().clone()
        };
        let _one = gate.lock().await;
        if let Some(answer) = cached()? {
            return answer;
        }
        let listing = self.list_tools_of(c).await?;
        if listing.tools.iter().any(|t| t.name == tool) {
            return Ok(());
        }
        if let Some(reason) = BlockedTool::reason_for(&listing.blocked, tool) {
            return Err(HostError::Blocked { tool: tool.to_string(), reason });
        }
        Err(unknown())
    }

    /// Call one tool. The blocklist is applied before anything else.
    pub async fn call_tool(&self, name: &str, tool: &str, arguments: &str) -> Result<ToolOutput, HostError> {
        let c = self.connection(name)?;
        let started = Instant::now();
        // Every outcome from here on is logged once and recorded on the connection.
        let result = self.call_tool_checked(&c, tool, arguments).await;
        self.record_outcome(&c, &result);
        log_call(&c.name, tool, started, &result.as_ref().map(|o| serde_json::to_vec(o).map(|v| v.len()).unwrap_or(0)));
        result
    }

    async fn call_tool_checked(&self, c: &ConnectionRecord, tool: &str, arguments: &str) -> Result<ToolOutput, HostError> {
        self.check_callable(c, tool)?;
        let args: Value = serde_json::from_str(arguments).map_err(|e| {
            HostError::Usage(format!("the arguments are not valid JSON ({e}); pass a JSON object such as '{{}}'"))
        })?;
        if !args.is_object() {
            return Err(HostError::Usage("the arguments must be a JSON object, e.g. '{\"id\": \"lead_123\"}'".into()));
        }
        self.ensure_listed(c, tool).await?;
        let plugin = self.plugin_for(c).await?;
        let tool_name = tool.to_string();
        let args_text = args.to_string();
        self.run(c, &plugin, move |b, s| {
            Box::pin(async move { b.claribi_data_source_connector().call_call_tool(s, &tool_name, &args_text).await })
        })
        .await
        .and_then(convert_result)
    }

    /// Check a connection's credentials again and refresh its account information.
    pub async fn check(&self, name: &str) -> Result<ConnectOutcome, HostError> {
        let c = self.connection(name)?;
        let plugin = self.plugin_for(&c).await?;
        let result = self.check_account(&c, &plugin).await.and_then(|account| self.finish_connect(&c, &account));
        self.record_outcome(&c, &result);
        result
    }

    /// Remove a connection: ask the connector to revoke its tokens, then delete its secrets and state
    /// whatever the connector said.
    pub async fn disconnect(&self, name: &str) -> Result<DisconnectOutcome, HostError> {
        let c = self.connection(name)?;
        let revoke = match self.plugin_for(&c).await {
            Ok(plugin) => self
                .run(&c, &plugin, |b, s| Box::pin(async move { b.claribi_data_source_connector().call_disconnect(s).await }))
                .await,
            Err(e) => Err(e),
        };
        self.store.delete_connection(&c.id).map_err(HostError::Storage)?;
        Ok(DisconnectOutcome {
            name: c.name,
            revoked: revoke.is_ok(),
            warning: revoke.err().map(|e| e.to_string()),
        })
    }

    /// Replace a connection's policy (the operator may narrow it below what the endpoint needs; calls then fail with a policy denial).
    pub fn set_policy(&self, name: &str, policy: &Policy) -> Result<(), HostError> {
        let c = self.connection(name)?;
        self.store.set_policy(&c.id, policy).map_err(HostError::Storage)
    }

    /// Re-encrypt every secret under a new master key (see [`crate::secrets`]).
    pub fn rotate_key(data_dir: &Path) -> Result<(String, usize), HostError> {
        crate::runtime::create_private_dir(data_dir).map_err(HostError::Storage)?;
        let _exclusive = crate::secrets::KeyUseLock::exclusive_now(data_dir).map_err(HostError::Usage)?;
        let mut keys = MasterKeys::load_or_create(data_dir).map_err(HostError::Storage)?;
        let store = Store::open(data_dir).map_err(HostError::Storage)?;
        keys.rotate().map_err(HostError::Storage)?;
        let n = store.reencrypt_all(&keys).map_err(HostError::Storage)?;
        keys.retire_old_keys().map_err(HostError::Storage)?;
        Ok((keys.current_id().to_string(), n))
    }
}

fn convert_result(r: wit::ToolResult) -> Result<ToolOutput, HostError> {
    let structured = match r.structured_content {
        None => None,
        Some(s) => Some(serde_json::from_str::<Value>(&s).map_err(|e| {
            HostError::Connector(ConnectorError::Protocol { message: format!("the connector returned structured content that is not JSON ({e})") })
        })?),
    };
    let content = r
        .content
        .into_iter()
        .map(|b| match b {
            wit::ContentBlock::Text(text) => Content::Text { text },
            wit::ContentBlock::Image(m) => Content::Image { data: m.data, mime_type: m.mime_type },
            wit::ContentBlock::Audio(m) => Content::Audio { data: m.data, mime_type: m.mime_type },
            wit::ContentBlock::Other(json) => Content::Other { value: serde_json::from_str(&json).unwrap_or(Value::String(json)) },
        })
        .collect();
    Ok(ToolOutput { structured_content: structured, content })
}

/// What a connector hands back, with the connection's secrets replaced by `[redacted]`.
pub trait MaskSecrets {
    /// Mask every text the result carries with `mask`.
    fn mask_secrets(&mut self, mask: &dyn Fn(&str) -> String);
}

fn mask_in_place(text: &mut String, mask: &dyn Fn(&str) -> String) {
    let masked = mask(text);
    if masked != *text {
        *text = masked;
    }
}

impl MaskSecrets for wit::ToolResult {
    fn mask_secrets(&mut self, mask: &dyn Fn(&str) -> String) {
        if let Some(s) = &mut self.structured_content {
            mask_in_place(s, mask);
        }
        for block in &mut self.content {
            match block {
                wit::ContentBlock::Text(t) | wit::ContentBlock::Other(t) => mask_in_place(t, mask),
                wit::ContentBlock::Image(m) | wit::ContentBlock::Audio(m) => mask_in_place(&mut m.data, mask),
            }
        }
    }
}

impl MaskSecrets for Vec<wit::Tool> {
    fn mask_secrets(&mut self, mask: &dyn Fn(&str) -> String) {
        for t in self {
            for text in [&mut t.title, &mut t.description, &mut t.output_schema].into_iter().flatten() {
                mask_in_place(text, mask);
            }
            mask_in_place(&mut t.input_schema, mask);
            // A name carrying a secret becomes `[redacted]`, which is no valid tool name: withheld.
            mask_in_place(&mut t.name, mask);
        }
    }
}

impl MaskSecrets for wit::Account {
    fn mask_secrets(&mut self, mask: &dyn Fn(&str) -> String) {
        if let Some(n) = &mut self.display_name {
            mask_in_place(n, mask);
        }
        for s in &mut self.granted_scopes {
            mask_in_place(s, mask);
        }
    }
}

/// The authorization URL carries `state` and the PKCE challenge, which a connector may keep among its
/// secrets: masking would break the flow, and the host checks the URL itself (origin, state).
impl MaskSecrets for wit::AuthorizationRequest {
    fn mask_secrets(&mut self, _: &dyn Fn(&str) -> String) {}
}

impl MaskSecrets for () {
    fn mask_secrets(&mut self, _: &dyn Fn(&str) -> String) {}
}

/// The origins a connection's secrets may go to: its endpoint's origin, plus, for OAuth, those the
/// connector names (its authorization server's) that the grant allows. An API key belongs to the
/// endpoint alone: what a connector names for it is ignored.
fn credential_origins(record: &ConnectionRecord, named: &[String]) -> Result<Vec<String>, HostError> {
    let endpoint = Origin::parse(&record.endpoint).map_err(HostError::Usage)?;
    let mut out = vec![endpoint.to_string()];
    if record.auth_method == AuthMethod::ApiKey {
        return Ok(out);
    }
    for o in named {
        match Origin::parse(o) {
            Ok(origin) if record.policy.grant.allows(&origin) => {
                if !out.contains(&origin.to_string()) {
                    out.push(origin.to_string());
                }
            }
            _ => tracing::debug!("connection `{}`: ignoring credential origin `{}` outside the grant", record.name, crate::errors::one_line(o)),
        }
    }
    Ok(out)
}

/// The default grant: the endpoint's origin, plus the public `https` origins the connector declares.
pub fn default_grant(endpoint: &Origin, declared: &[String]) -> Grant {
    let mut items = vec![endpoint.to_string()];
    for d in declared {
        let Ok(p) = OriginPattern::parse(d) else { continue };
        let Ok(o) = Origin::parse(d) else { continue };
        if o.scheme == "https" && !o.host.contains('*') && o.ip().is_none_or(|ip| !crate::addresses::is_special(ip)) && o.host != "localhost" {
            items.push(p.as_str().to_string());
        }
    }
    Grant::parse_list(items).unwrap_or_default()
}

/// The one log line per call (`claribi::call`): connection, tool, duration, bytes, outcome.
pub(crate) fn log_call<E: std::borrow::Borrow<HostError>>(connection: &str, tool: &str, started: Instant, outcome: &Result<usize, E>) {
    let ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(bytes) => tracing::info!(target: "claribi::call", connection, tool, duration_ms = ms, bytes = *bytes, outcome = "ok"),
        Err(e) => {
            let e = e.borrow();
            tracing::info!(target: "claribi::call", connection, tool, duration_ms = ms, bytes = 0u64, outcome = e.kind(), error = %e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_grant_is_the_endpoint_and_declared_public_https_origins() {
        let g = default_grant(
            &Origin::parse("http://127.0.0.1:8811/mcp").unwrap(),
            &["https://mcp.close.com".into(), "http://plain.example".into(), "https://10.0.0.1".into(), "https://*.close.com".into()],
        );
        assert_eq!(g.to_strings(), vec!["http://127.0.0.1:8811", "https://mcp.close.com"]);
    }

    #[test]
    fn connection_names_are_checked() {
        assert!(validate_name("close-eu_2").is_ok());
        for bad in ["", "Close", "-x", "a b", "a/b", "a__b", "close_", &"x".repeat(64), "claribi"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
