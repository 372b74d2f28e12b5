//! The host service: the one checked path every operation goes through, whoever asks (the CLI, the
//! demo, the MCP server for the engine, the console).
//!
//! | file | what |
//! |---|---|
//! | [`connect`] | making, checking, re-authorizing, upgrading and removing connections |
//! | [`authorization`] | OAuth in two steps: begin (the URL, checked) and complete (the redirect, the grant judged) |
//! | [`calls`] | listing tools and calling one: the checks before a connector is instantiated |
//! | [`console_flow`] | the console's setup order: authorize a pending connection first, name it last |
//! | [`reviews`] | tool definitions pinned at approval: changed and new tools wait for the operator |
//! | [`prepared`] | what a call reads about its connection, kept while the store's generation stands |
//! | [`run`] | running one export for a connection: the call's sandbox, network and credentials |

pub mod authorization;
pub mod calls;
pub mod connect;
pub mod console_flow;
mod prepared;
pub mod reviews;
pub(crate) mod run;

pub use crate::policy::tools::{Annotations, BlockedTool, ToolInfo, ToolListing};
pub use crate::sandbox::outputs::{Content, ToolOutput};
pub use authorization::{Authorized, PendingAuthorization};
pub use connect::{ConnectOutcome, ConnectRequest, Credentials, DisconnectOutcome, OAuthFlow, SecretBinding};
pub use reviews::Approve;
pub(crate) use run::RunOptions;

use crate::errors::{ConnectorError, HostError};
use crate::policy::blocklist::Blocklist;
use crate::sandbox::runtime::{LoadedPlugin, Runtime};
use crate::vault::locks::CredentialLocks;
use crate::vault::sealing::MasterKeys;
use crate::vault::store::{ConnectionRecord, Status, Store};
use crate::wire::outbound::{Resolve, SystemResolver};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The secret an API key is sealed as (the name connectors read it by).
pub const API_KEY_SECRET: &str = "api-key";
/// The option that carries a pre-registered OAuth client's secret.
pub const CLIENT_SECRET_OPTION: &str = "client_secret";
/// The secret a `client_secret` option is sealed as (the name `mcp-client` reads it by).
pub const CLIENT_SECRET_SECRET: &str = "oauth-client-secret";

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
    /// A PostgreSQL database shared by a fleet of replicas (`postgres://…`); `None`: SQLite in the
    /// data directory.
    pub database: Option<String>,
}

impl HostConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> HostConfig {
        HostConfig { data_dir: data_dir.into(), resolver: Arc::new(SystemResolver), max_instances: 16, cache_dir: None, blocklist: None, database: None }
    }
}

/// The host service. Cheap to share behind an `Arc`.
pub struct HostService {
    data_dir: PathBuf,
    store: Arc<Store>,
    keys: Arc<MasterKeys>,
    locks: CredentialLocks,
    runtime: Runtime,
    blocklist: Arc<Blocklist>,
    /// The blocklist's fingerprint: cached listings filtered under other rules are not reused.
    blocklist_fingerprint: String,
    resolver: Arc<dyn Resolve>,
    /// Held while this service runs, so that `rotate-key` never retires the key it seals with.
    _key_use: crate::vault::locks::KeyUseLock,
    /// Per connection id: held while a call lists the tools again (see `ensure_listed`).
    relisting: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// What calls prepared per connection, valid while the store's generation stands.
    prepared: prepared::PreparedCache,
    /// The credential matchers of each connection, built once per set of values.
    matchers: Arc<crate::wire::matchers::MatcherCache>,
    /// Which replica this process is, in the audit trail.
    replica: String,
}

/// This process's name in the audit trail: `CLARIBI_REPLICA_ID`, else the host name and process id.
fn replica_id() -> String {
    if let Some(id) = std::env::var("CLARIBI_REPLICA_ID").ok().map(|s| crate::errors::one_line(&s)).filter(|s| !s.trim().is_empty()) {
        return id.chars().take(100).collect();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    format!("{}:{}", if host.is_empty() { "host" } else { &host }, std::process::id())
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

pub(crate) fn random_id(prefix: &str) -> String {
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
        crate::sandbox::runtime::create_private_dir(dir).map_err(HostError::Storage)?;
        let key_use = crate::vault::locks::KeyUseLock::shared(dir).map_err(HostError::Storage)?;
        let keys = Arc::new(match &config.database {
            Some(_) => MasterKeys::load_existing(dir).map_err(HostError::Usage)?,
            None => MasterKeys::load_or_create(dir).map_err(HostError::Storage)?,
        });
        let replica = replica_id();
        let (store, locks) = match &config.database {
            Some(url) => {
                let store = Store::open_postgres(url).map_err(HostError::Storage)?;
                // Its row in the fleet's registry: the replica's name and a random part, so replicas
                // given one CLARIBI_REPLICA_ID are still told apart.
                store.join_fleet(&random_id(&replica), &keys).map_err(HostError::Usage)?;
                let locks = store.postgres().map(|pg| CredentialLocks::database(pg.locks())).unwrap_or_else(|| CredentialLocks::new(None));
                (store, locks)
            }
            None => (Store::open(dir).map_err(HostError::Storage)?, CredentialLocks::new(Some(dir.join("locks")))),
        };
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
            keys,
            locks,
            runtime,
            blocklist_fingerprint: blocklist.fingerprint(),
            blocklist: Arc::new(blocklist),
            resolver: config.resolver,
            _key_use: key_use,
            relisting: Default::default(),
            prepared: Default::default(),
            matchers: Default::default(),
            replica,
        })
    }

    /// This process's name in the audit trail (`CLARIBI_REPLICA_ID`, else host name and process id).
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The master keys, shared (for what `serve` seals besides secrets: rows kept for
    /// `claribi__next_rows`).
    pub fn shared_keys(&self) -> Arc<MasterKeys> {
        self.keys.clone()
    }

    /// The database, shared (for what outlives a borrow: `serve`'s engine-token check).
    pub fn shared_store(&self) -> Arc<Store> {
        self.store.clone()
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

    pub(crate) fn plugin_path(&self, digest: &str) -> PathBuf {
        self.data_dir.join("plugins").join(format!("{digest}.wasm"))
    }

    /// Load the component a connection runs.
    pub(crate) async fn plugin_for(&self, c: &ConnectionRecord) -> Result<Arc<LoadedPlugin>, HostError> {
        // A component this process loaded was hashed when it was loaded (the runtime keys loaded
        // components by the digest of the bytes it compiled): no file read, no hash per call.
        if let Some(plugin) = self.runtime.loaded(&c.plugin_digest) {
            return Ok(plugin);
        }
        let path = self.plugin_path(&c.plugin_digest);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            // A replica of a fleet finds the component in the shared store, and keeps a copy on its disk.
            Err(e) => match self.store.component(&c.plugin_digest).map_err(HostError::Storage)? {
                Some(bytes) => {
                    if crate::sandbox::runtime::digest(&bytes) != c.plugin_digest {
                        return Err(HostError::Storage(format!(
                            "the component of connection `{}` in the database does not match the digest it was pinned to; connect it again",
                            c.name
                        )));
                    }
                    if let Err(e) = self.keep_component_file(&c.plugin_digest, &bytes) {
                        tracing::warn!("cannot keep a copy of the component of connection `{}`: {e}", c.name);
                    }
                    bytes
                }
                None => {
                    return Err(HostError::Storage(format!(
                        "the component of connection `{}` is missing ({}: {e}); connect it again",
                        c.name,
                        path.display()
                    )))
                }
            },
        };
        if crate::sandbox::runtime::digest(&bytes) != c.plugin_digest {
            return Err(HostError::Storage(format!(
                "the component of connection `{}` changed on disk ({}); connect it again",
                c.name,
                path.display()
            )));
        }
        self.runtime.load(&bytes).await.map_err(|e| match e {
            HostError::OldContract(v) => {
                let builtin = match c.connector_id.as_str() {
                    "close" => "builtin:close",
                    "mcp" => "builtin:mcp",
                    _ => "NEW-BUILD.wasm",
                };
                HostError::Usage(format!(
                    "connection `{}` runs a connector built for claribi:data-source@{v}, which handed credentials to connectors; this host keeps them out. Run `claribi-host upgrade {} --plugin {builtin}`{}",
                    c.name,
                    c.name,
                    if c.auth_method == crate::vault::store::AuthMethod::Oauth { " (an OAuth connection is authorized again)" } else { " (the API key is kept)" }
                ))
            }
            other => other,
        })
    }

    /// Look up a connection by id (it may have changed since the caller read it).
    pub(crate) fn connection_by_id(&self, id: &str) -> Result<ConnectionRecord, HostError> {
        self.store
            .connections()
            .map_err(HostError::Storage)?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| HostError::NoSuchConnection(id.to_string()))
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

    pub(crate) fn record_outcome<T>(&self, c: &ConnectionRecord, r: &Result<T, HostError>) {
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

    /// Re-encrypt every secret under a new master key (see [`crate::vault::sealing`]). With a
    /// PostgreSQL store (`database`), the new key is the one the operator put first in every
    /// replica's key source, and the fleet moves to it (see [`crate::vault::store::fleet`]).
    pub fn rotate_key(data_dir: &Path, database: Option<&str>) -> Result<(String, usize), HostError> {
        crate::sandbox::runtime::create_private_dir(data_dir).map_err(HostError::Storage)?;
        if let Some(url) = database {
            let keys = MasterKeys::load_existing(data_dir).map_err(HostError::Usage)?;
            let store = Store::open_postgres(url).map_err(HostError::Storage)?;
            let n = store.rotate_fleet(&keys).map_err(HostError::Usage)?;
            return Ok((keys.current_id().to_string(), n));
        }
        let _exclusive = crate::vault::locks::KeyUseLock::exclusive_now(data_dir).map_err(HostError::Usage)?;
        let mut keys = MasterKeys::load_or_create(data_dir).map_err(HostError::Storage)?;
        let store = Store::open(data_dir).map_err(HostError::Storage)?;
        keys.rotate().map_err(HostError::Storage)?;
        let n = store.reencrypt_all(&keys).map_err(HostError::Storage)?;
        keys.retire_old_keys().map_err(HostError::Storage)?;
        Ok((keys.current_id().to_string(), n))
    }
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
    fn connection_names_are_checked() {
        assert!(validate_name("close-eu_2").is_ok());
        for bad in ["", "Close", "-x", "a b", "a/b", "a__b", "close_", &"x".repeat(64), "claribi"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
