//! Persistent state: one SQLite database (`<data-dir>/claribi.db`) holding connections, their
//! non-secret state, connector-wide shared state, and every secret *sealed* (see [`crate::vault::sealing`]).
//!
//! Nothing secret is ever written to this database in clear: the `secrets` table holds only key ids,
//! nonces and ciphertexts. The database file is created with mode 0600 in a 0700 directory.
//!
//! Several processes may use one data directory at once (a `serve` and a CLI call): the database is in
//! WAL mode with a busy timeout, and every multi-row change is one transaction.

use crate::oauth::discovery::OAuthState;
use crate::policy::Policy;
use crate::vault::credentials::{Binding, Credential, Kind, Placeholder};
use crate::vault::sealing::{MasterKeys, Sealed};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;
use zeroize::Zeroizing;

mod audit;
mod continuations;
mod engine_tokens;
pub mod fleet;
mod generation;
mod pins;
pub mod postgres;
mod rate_budgets;
pub use audit::{parse_since, AuditEntry, AuditQuery};
pub use continuations::SealedRows;
pub use engine_tokens::EngineTokenRecord;
pub use pins::{Approval, PendingReview};

/// How a connection authenticates (mirrors the WIT `auth-method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// An API key stored as the secret `api-key`.
    ApiKey,
    /// OAuth tokens obtained by the connector.
    Oauth,
}

impl AuthMethod {
    /// `api-key` or `oauth`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api-key",
            AuthMethod::Oauth => "oauth",
        }
    }
    fn parse(s: &str) -> AuthMethod {
        if s == "oauth" { AuthMethod::Oauth } else { AuthMethod::ApiKey }
    }
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Being set up; not usable yet (a crash during `connect` leaves this behind).
    Pending,
    /// Working as of the last call.
    Ready,
    /// Credentials were rejected or could not be refreshed: run `connect` again.
    NeedsReconnect,
    /// The grant lacks a needed scope: reconnect and accept it.
    InsufficientScope,
}

impl Status {
    /// The status as shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Ready => "ready",
            Status::NeedsReconnect => "needs-reconnect",
            Status::InsufficientScope => "insufficient-scope",
        }
    }
    fn parse(s: &str) -> Status {
        match s {
            "ready" => Status::Ready,
            "needs-reconnect" => Status::NeedsReconnect,
            "insufficient-scope" => Status::InsufficientScope,
            _ => Status::Pending,
        }
    }
}

/// One connection, as stored (no secrets).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecord {
    /// Stable opaque id (`conn_…`), bound into every sealed secret.
    pub id: String,
    /// Operator-chosen unique name.
    pub name: String,
    /// SHA-256 of the connector component this connection runs.
    pub plugin_digest: String,
    /// The connector's own id, e.g. `close`.
    pub connector_id: String,
    /// The connector's display name.
    pub connector_name: String,
    /// Vendor endpoint.
    pub endpoint: String,
    /// How it authenticates.
    pub auth_method: AuthMethod,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// `--option key=value` pairs.
    pub options: Vec<(String, String)>,
    /// The operator's grant and limits.
    pub policy: Policy,
    /// What the host learned of the connection's authorization (its OAuth URLs).
    pub oauth: OAuthState,
    /// The header an API key travels in (`None`: `Authorization: Bearer`), as the connector
    /// declared it or the operator chose it.
    pub api_key_header: Option<String>,
    /// Account reached, as the connector described it.
    pub account: Option<String>,
    /// Scopes granted, as the host read them (the token response, or the API key's scope header).
    pub granted_scopes: Vec<String>,
    /// Warnings about the grant (e.g. wider than asked), shown by `connect` and `status`.
    pub warnings: Vec<String>,
    /// Where it stands.
    pub status: Status,
    /// The last error a call hit (one line), if the last call failed.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A secret as the store holds it.
pub enum StoredSecret {
    /// A value the connector stored itself (a PKCE verifier, an expiry): handed back as is.
    Own(Zeroizing<String>),
    /// A credential: a connector sees only its placeholder.
    Credential(Credential),
    /// Sealed by a host that handed credentials to connectors (`claribi:data-source` 0.1): never
    /// given to a connector again; `claribi-host upgrade` converts an API key and drops the rest.
    Legacy(Zeroizing<String>),
}

impl StoredSecret {
    /// The value, whatever it is (host use only).
    pub fn into_value(self) -> Zeroizing<String> {
        match self {
            StoredSecret::Own(v) | StoredSecret::Legacy(v) => v,
            StoredSecret::Credential(c) => c.value,
        }
    }
}

/// A secret to store.
pub enum SecretWrite {
    /// A value of the connector's own.
    Own(String),
    /// A credential, with its kind, placeholder and binding.
    Credential(Credential),
}

/// What a secret is and where it may go, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSummary {
    /// Its name.
    pub name: String,
    /// Its kind (`None`: the connector's own value).
    pub kind: Option<Kind>,
    /// Where it may be attached.
    pub binding: Binding,
    /// Written by a host before credentials were kept out of connectors.
    pub legacy: bool,
}

/// What format 2 binds into a credential's sealed value besides connection and name.
fn credential_meta(kind: Kind, binding_json: &str) -> Vec<u8> {
    let mut m = kind.as_str().as_bytes().to_vec();
    m.push(0);
    m.extend_from_slice(binding_json.as_bytes());
    m
}

/// A secret change sealed and ready to write: `None` deletes the secret.
type SealedChange = (String, Option<SealedWrite>);

/// One sealed secret row to write.
struct SealedWrite {
    /// The credential's kind (`None`: the connector's own value).
    kind: Option<String>,
    placeholder: Option<String>,
    binding: Option<String>,
    sealed: Sealed,
}

/// Seal a batch of secret changes (format 2: kind and binding bound into the sealed value), checking
/// every name before anything is written.
fn seal_changes(keys: &MasterKeys, connection_id: &str, changes: &[(String, Option<SecretWrite>)]) -> Res<Vec<SealedChange>> {
    let mut out = Vec::with_capacity(changes.len());
    for (name, value) in changes {
        if name.is_empty() || name.len() > 128 {
            return Err("secret names must be 1 to 128 characters".into());
        }
        let row = match value {
            None => None,
            Some(SecretWrite::Own(v)) => {
                Some(SealedWrite { kind: None, placeholder: None, binding: None, sealed: keys.seal_with(connection_id, name, Some(b""), v.as_bytes())? })
            }
            Some(SecretWrite::Credential(c)) => {
                let binding = json(&c.binding);
                let meta = credential_meta(c.kind, &binding);
                let sealed = keys.seal_with(connection_id, name, Some(&meta), c.value.as_bytes())?;
                Some(SealedWrite {
                    kind: Some(c.kind.as_str().to_string()),
                    placeholder: Some(c.placeholder.as_str().to_string()),
                    binding: Some(binding),
                    sealed,
                })
            }
        };
        out.push((name.clone(), row));
    }
    Ok(out)
}

/// A secret row, not opened yet.
struct SecretRow {
    name: String,
    format: i64,
    kind: Option<String>,
    placeholder: Option<String>,
    binding: Option<String>,
    sealed: Sealed,
}

impl SecretRow {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRow> {
        Ok(SecretRow {
            name: r.get(0)?,
            format: r.get(1)?,
            kind: r.get(2)?,
            placeholder: r.get(3)?,
            binding: r.get(4)?,
            sealed: Sealed { key_id: r.get(5)?, nonce: r.get(6)?, ciphertext: r.get(7)? },
        })
    }

    /// The associated data beyond connection and name (`None`: format 1).
    fn meta(&self) -> Option<Vec<u8>> {
        if self.format < 2 {
            return None;
        }
        Some(match &self.kind {
            Some(k) => credential_meta(Kind::parse(k).unwrap_or(Kind::IdToken), self.binding.as_deref().unwrap_or("")),
            None => Vec::new(),
        })
    }

    fn open(self, keys: &MasterKeys, connection_id: &str) -> Res<StoredSecret> {
        if let Some(k) = &self.kind {
            if Kind::parse(k).is_none() {
                return Err(format!("secret `{}` has an unknown kind `{k}`; reconnect the connection", self.name));
            }
        }
        let meta = self.meta();
        let bytes = keys.open_with(connection_id, &self.name, meta.as_deref(), &self.sealed)?;
        let text = Zeroizing::new(
            String::from_utf8(bytes.to_vec()).map_err(|_| format!("secret `{}` is not text; reconnect the connection", self.name))?,
        );
        if self.format < 2 {
            return Ok(StoredSecret::Legacy(text));
        }
        match (self.kind.as_deref().and_then(Kind::parse), self.placeholder.as_deref().and_then(Placeholder::parse)) {
            (None, _) => Ok(StoredSecret::Own(text)),
            (Some(kind), Some(placeholder)) => Ok(StoredSecret::Credential(Credential {
                kind,
                placeholder,
                value: text,
                binding: self.binding.as_deref().map(from_json).unwrap_or_default(),
            })),
            (Some(_), None) => Err(format!("credential `{}` has no placeholder; reconnect the connection", self.name)),
        }
    }
}

/// What the cached listing of a connection says about one tool ([`Store::listed_tool`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTool {
    /// Whether the listing offered it.
    pub offered: bool,
    /// When the listing was made (Unix seconds).
    pub listed_at: i64,
    /// The listing's `ttl_ms`.
    pub ttl_ms: Option<u64>,
    /// The blocklist fingerprint it was filtered under.
    pub filtered_by: Option<String>,
}

/// The database: SQLite in the data directory (one machine), or PostgreSQL shared by a fleet of
/// replicas ([`postgres`]). Every method means the same on both; the SQL of the PostgreSQL store is in
/// `postgres/queries.rs`, and each method here hands over to it first.
pub struct Store {
    backend: Backend,
    /// How many times the database was asked (one statement or one transaction each): what a call
    /// costs the store, as `claribi-host bench` reports it.
    operations: std::sync::atomic::AtomicU64,
}

enum Backend {
    Sqlite {
        db: Mutex<Connection>,
        /// A second connection to the same file for the vendor's rate budgets, which need no
        /// durability: its commits are not synced to disk (`synchronous = NORMAL`, WAL: checkpoints
        /// still are), so metering a request costs no fsync. `None` for an in-memory store (which uses
        /// `db`).
        rates: Option<Mutex<Connection>>,
    },
    Postgres(postgres::Pg),
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn from_json<T: for<'a> Deserialize<'a> + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    plugin_digest TEXT NOT NULL,
    connector_id TEXT NOT NULL,
    connector_name TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    scopes TEXT NOT NULL,
    options TEXT NOT NULL,
    policy TEXT NOT NULL,
    credential_origins TEXT NOT NULL,
    account TEXT,
    granted_scopes TEXT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (connection_id, name)
);
CREATE TABLE IF NOT EXISTS state (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (connection_id, key)
);
CREATE TABLE IF NOT EXISTS tool_cache (
    connection_id TEXT PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
    listed_at INTEGER NOT NULL,
    listing TEXT NOT NULL,
    blocked TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS shared_state (
    connector_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (connector_id, key)
);
";

/// Migration 2: credentials kept out of connectors (claribi:data-source 0.2). A secret row says what it
/// is (`kind`: a credential, or NULL for the connector's own value), the placeholder a connector sees,
/// and where it may be attached (`binding`); `format` 2 binds kind and binding into the sealed value.
/// Rows of format 1 were written by a host that handed credentials to connectors: they are never
/// given to a connector again (`claribi-host upgrade` converts an API key and drops the rest).
const MIGRATION_V2: &str = "
ALTER TABLE secrets ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
ALTER TABLE secrets ADD COLUMN kind TEXT;
ALTER TABLE secrets ADD COLUMN placeholder TEXT;
ALTER TABLE secrets ADD COLUMN binding TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS secrets_by_placeholder ON secrets (connection_id, placeholder);
ALTER TABLE connections ADD COLUMN oauth TEXT NOT NULL DEFAULT '{}';
ALTER TABLE connections ADD COLUMN api_key_header TEXT;
ALTER TABLE connections ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';
";

/// Migration 3: the console's dashboard. A pin is a *call* to make again — connection, tool (or one of
/// the console's ready-made explorations), arguments, chart choice — never a result. Pins go with their
/// connection.
const MIGRATION_V3: &str = "
CREATE TABLE IF NOT EXISTS pins (
    id TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    arguments TEXT NOT NULL,
    chart TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pins_by_connection ON pins (connection_id);
";

/// The versioned migrations, applied in order at open; the version reached is kept in `meta`.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "connections, state, sealed secrets, tool cache, shared state", SCHEMA_V1),
    (2, "credentials kept out of connectors: kinds, placeholders, bindings; learned OAuth URLs", MIGRATION_V2),
    (3, "dashboard pins (calls, never results)", MIGRATION_V3),
    (4, "tool definitions pinned at approval, pending reviews, approvals", pins::MIGRATION_V4),
    (5, "a generation counter every write a call prepares from changes", generation::MIGRATION_V5),
    (6, "engine tokens (hashed)", engine_tokens::MIGRATION_V6),
    (7, "the audit trail of engine calls", audit::MIGRATION_V7),
    (8, "the vendor's rate budgets, shared by every process on the store", rate_budgets::MIGRATION_V8),
    (9, "rows kept for claribi__next_rows, sealed, for any replica", continuations::MIGRATION_V9),
];

/// A call pinned to the console's dashboard (never its result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRecord {
    /// `pin_…`.
    pub id: String,
    /// The connection it calls (the pin is deleted with it).
    pub connection_id: String,
    /// What the dashboard shows as its title.
    pub title: String,
    /// `tool` (one read tool) or `exploration` (one of the console's ready-made explorations).
    pub kind: String,
    /// The tool's or the exploration's name.
    pub target: String,
    /// The arguments, a JSON object.
    pub arguments: String,
    /// The chart choice, JSON.
    pub chart: String,
    /// Unix seconds.
    pub created_at: i64,
}

type Res<T> = Result<T, String>;

fn db_err(e: rusqlite::Error) -> String {
    format!("database error: {e}")
}

fn schema_version(db: &Connection) -> Res<u32> {
    let has_meta: bool = db
        .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')", [], |r| r.get(0))
        .map_err(db_err)?;
    if !has_meta {
        return Ok(0);
    }
    let v: Option<String> =
        db.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional().map_err(db_err)?;
    match v {
        Some(v) => v.parse().map_err(|_| format!("the schema version `{v}` is not a number")),
        // A database of a host from before versioned migrations: the first schema.
        None => {
            let has_connections: bool = db
                .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'connections')", [], |r| r.get(0))
                .map_err(db_err)?;
            Ok(if has_connections { 1 } else { 0 })
        }
    }
}

/// Apply the migrations the database lacks, each in its own transaction.
fn migrate(db: &mut Connection) -> Res<()> {
    let current = schema_version(db)?;
    let newest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > newest {
        return Err(format!(
            "the database has schema version {current}, newer than this claribi-host knows ({newest}); use a newer claribi-host"
        ));
    }
    for (version, what, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = db.transaction().map_err(db_err)?;
        tx.execute_batch(sql).map_err(|e| format!("migration {version} ({what}) failed: {e}"))?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![version.to_string()],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
    }
    Ok(())
}

impl Store {
    /// Open (creating if needed) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Res<Store> {
        let path = data_dir.join("claribi.db");
        let fresh = !path.exists();
        let conn = Connection::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        #[cfg(unix)]
        if fresh {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        let _ = fresh;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;").map_err(db_err)?;
        let mut conn = conn;
        migrate(&mut conn).map_err(|e| format!("cannot initialise {}: {e}; is it a claribi database?", path.display()))?;
        let rates = Connection::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        rates.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err)?;
        // NORMAL: in WAL mode a commit is not synced (a budget lost in a power cut is learned again),
        // while checkpoints still are, so the database file is never left inconsistent.
        rates.execute_batch("PRAGMA synchronous = NORMAL;").map_err(db_err)?;
        Ok(Store { backend: Backend::Sqlite { db: Mutex::new(conn), rates: Some(Mutex::new(rates)) }, operations: Default::default() })
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Res<Store> {
        let mut conn = Connection::open_in_memory().map_err(db_err)?;
        conn.execute_batch("PRAGMA foreign_keys = ON;").map_err(db_err)?;
        migrate(&mut conn)?;
        Ok(Store { backend: Backend::Sqlite { db: Mutex::new(conn), rates: None }, operations: Default::default() })
    }

    /// Connect to a PostgreSQL database (`postgres://…`) shared by a fleet of replicas, applying the
    /// migrations it lacks.
    /// TLS is verified against the web's roots and the PEM file `CLARIBI_DATABASE_CA` names, if any.
    pub fn open_postgres(url: &str) -> Res<Store> {
        let ca = std::env::var_os("CLARIBI_DATABASE_CA").filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
        Store::open_postgres_with_ca(url, ca.as_deref())
    }

    /// [`Store::open_postgres`] trusting the certificates of the PEM file `ca` too.
    pub fn open_postgres_with_ca(url: &str, ca: Option<&Path>) -> Res<Store> {
        Ok(Store { backend: Backend::Postgres(postgres::Pg::connect(url, ca)?), operations: Default::default() })
    }

    /// The PostgreSQL store, when this is one (its credential locks, its fleet registry).
    pub fn postgres(&self) -> Option<&postgres::Pg> {
        match &self.backend {
            Backend::Postgres(pg) => {
                self.operations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some(pg)
            }
            Backend::Sqlite { .. } => None,
        }
    }

    /// Whether replicas on other machines share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The migrations of this store's backend.
    pub fn migrations(&self) -> &'static [(u32, &'static str, &'static str)] {
        match self.backend {
            Backend::Postgres(_) => postgres::schema::MIGRATIONS,
            Backend::Sqlite { .. } => MIGRATIONS,
        }
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Res<u32> {
        if let Some(pg) = self.postgres() {
            return pg.schema_version();
        }
        schema_version(&self.db())
    }

    /// The SQLite connection. Only reached on the SQLite backend: every method hands a PostgreSQL
    /// store over to [`postgres`] before it.
    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.operations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match &self.backend {
            Backend::Sqlite { db, .. } => db.lock().unwrap_or_else(|p| p.into_inner()),
            Backend::Postgres(_) => unreachable!("a PostgreSQL store reached a SQLite statement"),
        }
    }

    /// How many store operations (a statement or a transaction) this handle has run.
    pub fn operations(&self) -> u64 {
        self.operations.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The connection the rate budgets are kept through (see `rates`).
    fn rates_db(&self) -> std::sync::MutexGuard<'_, Connection> {
        match &self.backend {
            Backend::Sqlite { rates: Some(r), .. } => {
                self.operations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                r.lock().unwrap_or_else(|p| p.into_inner())
            }
            _ => self.db(),
        }
    }

    fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConnectionRecord> {
        let policy_text: String = row.get("policy")?;
        Ok(ConnectionRecord {
            id: row.get("id")?,
            name: row.get("name")?,
            plugin_digest: row.get("plugin_digest")?,
            connector_id: row.get("connector_id")?,
            connector_name: row.get("connector_name")?,
            endpoint: row.get("endpoint")?,
            auth_method: AuthMethod::parse(&row.get::<_, String>("auth_method")?),
            scopes: from_json(&row.get::<_, String>("scopes")?),
            options: from_json(&row.get::<_, String>("options")?),
            policy: Policy::parse(&policy_text).unwrap_or_else(|_| Policy::deny_all()),
            oauth: from_json(&row.get::<_, String>("oauth")?),
            api_key_header: row.get("api_key_header")?,
            account: row.get("account")?,
            granted_scopes: from_json(&row.get::<_, String>("granted_scopes")?),
            warnings: from_json(&row.get::<_, String>("warnings")?),
            status: Status::parse(&row.get::<_, String>("status")?),
            last_error: row.get("last_error")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
        })
    }

    /// Insert a new connection. Fails if the name is taken.
    pub fn insert_connection(&self, c: &ConnectionRecord) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.insert_connection(c);
        }
        let db = self.db();
        db.execute(
            "INSERT INTO connections (id, name, plugin_digest, connector_id, connector_name, endpoint, auth_method,
                scopes, options, policy, credential_origins, account, granted_scopes, status, last_error, created_at, updated_at,
                oauth, api_key_header, warnings)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '[]', ?11, ?12, ?13, ?14, ?15, ?15, ?16, ?17, ?18)",
            params![
                c.id, c.name, c.plugin_digest, c.connector_id, c.connector_name, c.endpoint, c.auth_method.as_str(),
                json(&c.scopes), json(&c.options), c.policy.to_toml(), c.account,
                json(&c.granted_scopes), c.status.as_str(), c.last_error, now(), json(&c.oauth), c.api_key_header, json(&c.warnings)
            ],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                format!("a connection named `{}` already exists; disconnect it first or choose another name", c.name)
            }
            other => db_err(other),
        })?;
        Ok(())
    }

    /// Look a connection up by name.
    pub fn connection(&self, name: &str) -> Res<Option<ConnectionRecord>> {
        if let Some(pg) = self.postgres() {
            return pg.connection(name);
        }
        self.db()
            .query_row("SELECT * FROM connections WHERE name = ?1", params![name], Self::row_to_record)
            .optional()
            .map_err(db_err)
    }

    /// All connections, by name.
    pub fn connections(&self) -> Res<Vec<ConnectionRecord>> {
        if let Some(pg) = self.postgres() {
            return pg.connections();
        }
        let db = self.db();
        let mut stmt = db.prepare("SELECT * FROM connections ORDER BY name").map_err(db_err)?;
        let rows = stmt.query_map([], Self::row_to_record).map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    /// Record the outcome of authorization or a check: account, granted scopes, warnings, and status
    /// `ready`.
    pub fn mark_connected(&self, id: &str, account: Option<&str>, granted: &[String], warnings: &[String]) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.mark_connected(id, account, granted, warnings);
        }
        self.db()
            .execute(
                "UPDATE connections SET account = ?2, granted_scopes = ?3, warnings = ?4, status = 'ready',
                 last_error = NULL, updated_at = ?5 WHERE id = ?1",
                params![id, account, json(&granted), json(&warnings), now()],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Replace what the host learned of a connection's authorization.
    pub fn set_oauth(&self, id: &str, oauth: &OAuthState) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.set_connection_text(id, "oauth", Some(json(oauth)));
        }
        self.db()
            .execute("UPDATE connections SET oauth = ?2, updated_at = ?3 WHERE id = ?1", params![id, json(oauth), now()])
            .map_err(db_err)?;
        Ok(())
    }

    /// Replace the scopes a connection holds, as the host read them (a refresh may narrow them).
    pub fn set_granted_scopes(&self, id: &str, granted: &[String]) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.set_connection_text(id, "granted_scopes", Some(json(&granted)));
        }
        self.db()
            .execute("UPDATE connections SET granted_scopes = ?2, updated_at = ?3 WHERE id = ?1", params![id, json(&granted), now()])
            .map_err(db_err)?;
        Ok(())
    }

    /// Re-pin a connection to another component (`claribi-host upgrade`).
    pub fn set_plugin(&self, id: &str, digest: &str, api_key_header: Option<&str>) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.set_plugin(id, digest, api_key_header);
        }
        self.db()
            .execute(
                "UPDATE connections SET plugin_digest = ?2, api_key_header = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, digest, api_key_header, now()],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Replace a connection's policy (grant and limits).
    pub fn set_policy(&self, id: &str, policy: &Policy) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.set_connection_text(id, "policy", Some(policy.to_toml()));
        }
        self.db()
            .execute(
                "UPDATE connections SET policy = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, policy.to_toml(), now()],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Replace the scopes a connection requests.
    pub fn set_scopes(&self, id: &str, scopes: &[String]) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.set_connection_text(id, "scopes", Some(json(&scopes)));
        }
        self.db()
            .execute("UPDATE connections SET scopes = ?2, updated_at = ?3 WHERE id = ?1", params![id, json(&scopes), now()])
            .map_err(db_err)?;
        Ok(())
    }

    /// Record the status and last error after a call.
    pub fn set_status(&self, id: &str, status: Status, last_error: Option<&str>) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.set_status(id, status, last_error);
        }
        self.db()
            .execute(
                "UPDATE connections SET status = ?2, last_error = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, status.as_str(), last_error, now()],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Give a connection another name (a pending connection named at the end of the console's setup).
    /// Fails, changing nothing, when the name is taken.
    pub fn rename_connection(&self, id: &str, name: &str) -> Res<()> {
        let n = if let Some(pg) = self.postgres() {
            pg.rename_connection(id, name)? as usize
        } else {
            self.db()
            .execute("UPDATE connections SET name = ?2, updated_at = ?3 WHERE id = ?1", params![id, name, now()])
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    format!("a connection named `{name}` already exists; choose another name")
                }
                other => db_err(other),
            })?
        };
        if n == 0 {
            return Err(format!("the connection to name ({id}) no longer exists"));
        }
        Ok(())
    }

    /// Pin a call to the dashboard.
    pub fn insert_pin(&self, p: &PinRecord) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.insert_pin(p);
        }
        self.db()
            .execute(
                "INSERT INTO pins (id, connection_id, title, kind, target, arguments, chart, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![p.id, p.connection_id, p.title, p.kind, p.target, p.arguments, p.chart, if p.created_at == 0 { now() } else { p.created_at }],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Every pin, oldest first.
    pub fn pins(&self) -> Res<Vec<PinRecord>> {
        if let Some(pg) = self.postgres() {
            return pg.pins();
        }
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT id, connection_id, title, kind, target, arguments, chart, created_at FROM pins ORDER BY created_at, rowid")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PinRecord {
                    id: r.get(0)?,
                    connection_id: r.get(1)?,
                    title: r.get(2)?,
                    kind: r.get(3)?,
                    target: r.get(4)?,
                    arguments: r.get(5)?,
                    chart: r.get(6)?,
                    created_at: r.get(7)?,
                })
            })
            .map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    /// Unpin. Returns whether the pin existed.
    pub fn delete_pin(&self, id: &str) -> Res<bool> {
        if let Some(pg) = self.postgres() {
            return pg.delete_pin(id);
        }
        Ok(self.db().execute("DELETE FROM pins WHERE id = ?1", params![id]).map_err(db_err)? > 0)
    }

    /// Delete a connection with its secrets and state. Returns whether it existed.
    pub fn delete_connection(&self, id: &str) -> Res<bool> {
        if let Some(pg) = self.postgres() {
            return pg.delete_connection(id);
        }
        let mut db = self.db();
        let tx = db.transaction().map_err(db_err)?;
        tx.execute("DELETE FROM secrets WHERE connection_id = ?1", params![id]).map_err(db_err)?;
        tx.execute("DELETE FROM state WHERE connection_id = ?1", params![id]).map_err(db_err)?;
        tx.execute("DELETE FROM tool_cache WHERE connection_id = ?1", params![id]).map_err(db_err)?;
        tx.execute("DELETE FROM pins WHERE connection_id = ?1", params![id]).map_err(db_err)?;
        for table in ["tool_pins", "tool_reviews", "tool_approvals"] {
            tx.execute(&format!("DELETE FROM {table} WHERE connection_id = ?1"), params![id]).map_err(db_err)?;
        }
        // Rows kept for its shortened results, and its key's rate budget, go with it.
        let name: Option<String> =
            tx.query_row("SELECT name FROM connections WHERE id = ?1", params![id], |r| r.get(0)).optional().map_err(db_err)?;
        if let Some(name) = name {
            tx.execute("DELETE FROM continuations WHERE connection = ?1", params![name]).map_err(db_err)?;
        }
        tx.execute("DELETE FROM rate_budgets WHERE scope = ?1", params![format!("key:{id}")]).map_err(db_err)?;
        let n = tx.execute("DELETE FROM connections WHERE id = ?1", params![id]).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(n > 0)
    }

    /// Non-secret state of a connection.
    pub fn state(&self, connection_id: &str, key: &str) -> Res<Option<String>> {
        if let Some(pg) = self.postgres() {
            return pg.state(connection_id, key);
        }
        self.db()
            .query_row(
                "SELECT value FROM state WHERE connection_id = ?1 AND key = ?2",
                params![connection_id, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)
    }

    /// How many state keys a connection has.
    pub fn state_key_count(&self, connection_id: &str) -> Res<usize> {
        if let Some(pg) = self.postgres() {
            return pg.state_key_count(connection_id);
        }
        self.db()
            .query_row("SELECT COUNT(*) FROM state WHERE connection_id = ?1", params![connection_id], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(db_err)
    }

    /// The host's cached tool listing of a connection (JSON written by the service), if any.
    pub fn tool_cache(&self, connection_id: &str) -> Res<Option<(i64, String)>> {
        if let Some(pg) = self.postgres() {
            return pg.tool_cache(connection_id);
        }
        self.db()
            .query_row(
                "SELECT listed_at, listing FROM tool_cache WHERE connection_id = ?1",
                params![connection_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_err)
    }

    /// Whether the last listing of a connection offered `tool`, with when it was made and under
    /// which caching hint and blocklist; `None`: no listing yet. Read with SQLite's JSON functions,
    /// so a call does not parse the whole cached listing.
    pub fn listed_tool(&self, connection_id: &str, tool: &str) -> Res<Option<ListedTool>> {
        if let Some(pg) = self.postgres() {
            return pg.listed_tool(connection_id, tool);
        }
        self.db()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM json_each(listing, '$.tools') WHERE json_extract(value, '$.name') = ?2), listed_at,
                        json_extract(listing, '$.ttl_ms'), json_extract(listing, '$.filtered_by')
                 FROM tool_cache WHERE connection_id = ?1",
                params![connection_id, tool],
                |r| {
                    Ok(ListedTool {
                        offered: r.get::<_, bool>(0)?,
                        listed_at: r.get::<_, i64>(1)?,
                        ttl_ms: r.get::<_, Option<i64>>(2)?.and_then(|t| u64::try_from(t).ok()),
                        filtered_by: r.get::<_, Option<String>>(3)?,
                    })
                },
            )
            .optional()
            .map_err(db_err)
    }

    /// Unix seconds now (the clock the store stamps rows with).
    pub fn now() -> i64 {
        now()
    }

    /// Unix milliseconds now (the clock of the audit trail, rate budgets and continuations).
    pub fn now_ms() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }

    /// The tools the last listing withheld (JSON written by the service), if any listing exists.
    pub fn blocked_tools(&self, connection_id: &str) -> Res<Option<String>> {
        if let Some(pg) = self.postgres() {
            return pg.blocked_tools(connection_id);
        }
        self.db()
            .query_row("SELECT blocked FROM tool_cache WHERE connection_id = ?1", params![connection_id], |r| r.get(0))
            .optional()
            .map_err(db_err)
    }

    /// Replace the host's cached tool listing of a connection, with the withheld tools kept apart so
    /// that the per-call check reads only them.
    pub fn set_tool_cache(&self, connection_id: &str, listing: &str, blocked: &str) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.set_tool_cache(connection_id, listing, blocked);
        }
        self.db()
            .execute(
                "INSERT INTO tool_cache (connection_id, listed_at, listing, blocked) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (connection_id) DO UPDATE SET listed_at = excluded.listed_at, listing = excluded.listing,
                 blocked = excluded.blocked",
                params![connection_id, now(), listing, blocked],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Set or delete non-secret state of a connection.
    pub fn set_state(&self, connection_id: &str, key: &str, value: Option<&str>) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.set_state(connection_id, key, value);
        }
        let db = self.db();
        match value {
            Some(v) => db.execute(
                "INSERT INTO state (connection_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (connection_id, key) DO UPDATE SET value = excluded.value",
                params![connection_id, key, v],
            ),
            None => db.execute("DELETE FROM state WHERE connection_id = ?1 AND key = ?2", params![connection_id, key]),
        }
        .map_err(db_err)?;
        Ok(())
    }

    /// State shared by every connection of one connector.
    pub fn shared_state(&self, connector_id: &str, key: &str) -> Res<Option<String>> {
        if let Some(pg) = self.postgres() {
            return pg.shared_state(connector_id, key);
        }
        self.db()
            .query_row(
                "SELECT value FROM shared_state WHERE connector_id = ?1 AND key = ?2",
                params![connector_id, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)
    }

    /// How many shared-state keys one connector component has.
    pub fn shared_state_key_count(&self, connector_id: &str) -> Res<usize> {
        if let Some(pg) = self.postgres() {
            return pg.shared_state_key_count(connector_id);
        }
        self.db()
            .query_row("SELECT COUNT(*) FROM shared_state WHERE connector_id = ?1", params![connector_id], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(db_err)
    }

    /// Set or delete state shared by every connection of one connector.
    pub fn set_shared_state(&self, connector_id: &str, key: &str, value: Option<&str>) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.set_shared_state(connector_id, key, value);
        }
        let db = self.db();
        match value {
            Some(v) => db.execute(
                "INSERT INTO shared_state (connector_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (connector_id, key) DO UPDATE SET value = excluded.value",
                params![connector_id, key, v],
            ),
            None => db.execute(
                "DELETE FROM shared_state WHERE connector_id = ?1 AND key = ?2",
                params![connector_id, key],
            ),
        }
        .map_err(db_err)?;
        Ok(())
    }

    /// Read and open one secret.
    pub fn secret(&self, keys: &MasterKeys, connection_id: &str, name: &str) -> Res<Option<StoredSecret>> {
        if let Some(pg) = self.postgres() {
            return pg.secret_row(connection_id, name)?.map(|r| r.open(keys, connection_id)).transpose();
        }
        let row = self
            .db()
            .query_row(
                "SELECT name, format, kind, placeholder, binding, key_id, nonce, ciphertext FROM secrets WHERE connection_id = ?1 AND name = ?2",
                params![connection_id, name],
                SecretRow::read,
            )
            .optional()
            .map_err(db_err)?;
        row.map(|r| r.open(keys, connection_id)).transpose()
    }

    /// The value of one secret, whatever it is (for the host itself: tests, `rekey`; never for a connector).
    pub fn secret_value(&self, keys: &MasterKeys, connection_id: &str, name: &str) -> Res<Option<Zeroizing<String>>> {
        Ok(self.secret(keys, connection_id, name)?.map(StoredSecret::into_value))
    }

    /// The credential a placeholder stands for, if it is one of this connection's.
    pub fn credential_by_placeholder(&self, keys: &MasterKeys, connection_id: &str, placeholder: &Placeholder) -> Res<Option<Credential>> {
        let row = if let Some(pg) = self.postgres() {
            pg.secret_row_by_placeholder(connection_id, placeholder)?
        } else {
            self.db()
            .query_row(
                "SELECT name, format, kind, placeholder, binding, key_id, nonce, ciphertext FROM secrets
                 WHERE connection_id = ?1 AND placeholder = ?2",
                params![connection_id, placeholder.as_str()],
                SecretRow::read,
            )
            .optional()
            .map_err(db_err)?
        };
        match row.map(|r| r.open(keys, connection_id)).transpose()? {
            Some(StoredSecret::Credential(c)) => Ok(Some(c)),
            _ => Ok(None),
        }
    }

    /// Every secret of a connection, opened.
    pub fn secrets(&self, keys: &MasterKeys, connection_id: &str) -> Res<Vec<(String, StoredSecret)>> {
        let rows: Vec<SecretRow> = if let Some(pg) = self.postgres() {
            pg.secret_rows(connection_id)?
        } else {
            let db = self.db();
            let mut stmt = db
                .prepare("SELECT name, format, kind, placeholder, binding, key_id, nonce, ciphertext FROM secrets WHERE connection_id = ?1 ORDER BY name")
                .map_err(db_err)?;
            let rows = stmt.query_map(params![connection_id], SecretRow::read).map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?
        };
        rows.into_iter().map(|r| Ok((r.name.clone(), r.open(keys, connection_id)?))).collect()
    }

    /// Every credential of a connection (for masking echoes and the second-line scan).
    pub fn credentials(&self, keys: &MasterKeys, connection_id: &str) -> Res<Vec<Credential>> {
        Ok(self
            .secrets(keys, connection_id)?
            .into_iter()
            .filter_map(|(_, s)| match s {
                StoredSecret::Credential(c) => Some(c),
                _ => None,
            })
            .collect())
    }

    /// Every secret value of a connection, opened (the second-line scan and log masking).
    pub fn secret_values(&self, keys: &MasterKeys, connection_id: &str) -> Res<Vec<Zeroizing<String>>> {
        Ok(self.secrets(keys, connection_id)?.into_iter().map(|(_, s)| s.into_value()).collect())
    }

    /// What each secret of a connection is and where it may go, without opening any (for display).
    pub fn secret_summaries(&self, connection_id: &str) -> Res<Vec<SecretSummary>> {
        if let Some(pg) = self.postgres() {
            return pg.secret_summaries(connection_id);
        }
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT name, format, kind, binding FROM secrets WHERE connection_id = ?1 ORDER BY name")
            .map_err(db_err)?;
        let rows = stmt
            .query_map(params![connection_id], |r| {
                let format: i64 = r.get(1)?;
                let kind: Option<String> = r.get(2)?;
                let binding: Option<String> = r.get(3)?;
                Ok(SecretSummary {
                    name: r.get(0)?,
                    kind: kind.as_deref().and_then(Kind::parse),
                    binding: binding.map(|b| from_json(&b)).unwrap_or_default(),
                    legacy: format < 2,
                })
            })
            .map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    /// Names of a connection's secrets (never their values).
    pub fn secret_names(&self, connection_id: &str) -> Res<Vec<String>> {
        if let Some(pg) = self.postgres() {
            return pg.secret_names(connection_id);
        }
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT name FROM secrets WHERE connection_id = ?1 ORDER BY name")
            .map_err(db_err)?;
        let rows = stmt.query_map(params![connection_id], |r| r.get(0)).map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    /// Set (`Some`) or delete (`None`) several secrets of a connection in one transaction.
    pub fn update_secrets(&self, keys: &MasterKeys, connection_id: &str, changes: &[(String, Option<SecretWrite>)]) -> Res<()> {
        let sealed = seal_changes(keys, connection_id, changes)?;
        if let Some(pg) = self.postgres() {
            return pg.write_secrets(connection_id, sealed);
        }
        let mut db = self.db();
        let tx = db.transaction().map_err(db_err)?;
        for (name, row) in sealed {
            match row {
                Some(SealedWrite { kind, placeholder, binding, sealed: s }) => tx.execute(
                    "INSERT INTO secrets (connection_id, name, key_id, nonce, ciphertext, updated_at, format, kind, placeholder, binding)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 2, ?7, ?8, ?9)
                     ON CONFLICT (connection_id, name) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce,
                        ciphertext = excluded.ciphertext, updated_at = excluded.updated_at, format = 2, kind = excluded.kind,
                        placeholder = excluded.placeholder, binding = excluded.binding",
                    params![connection_id, name, s.key_id, s.nonce, s.ciphertext, now(), kind, placeholder, binding],
                ),
                None => tx.execute("DELETE FROM secrets WHERE connection_id = ?1 AND name = ?2", params![connection_id, name]),
            }
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    "a credential may be stored under one name only".to_string()
                }
                other => db_err(other),
            })?;
        }
        tx.commit().map_err(db_err)
    }

    /// Delete every secret of a connection.
    pub fn delete_secrets(&self, connection_id: &str) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.delete_secrets(connection_id);
        }
        self.db()
            .execute("DELETE FROM secrets WHERE connection_id = ?1", params![connection_id])
            .map_err(db_err)?;
        Ok(())
    }

    /// Re-seal every secret under the current master key, in one transaction. Returns how many.
    pub fn reencrypt_all(&self, keys: &MasterKeys) -> Res<usize> {
        if let Some(pg) = self.postgres() {
            return pg.reencrypt_all(std::sync::Arc::new(keys.clone()));
        }
        let mut db = self.db();
        let tx = db.transaction().map_err(db_err)?;
        let rows: Vec<(String, SecretRow)> = {
            let mut stmt = tx
                .prepare("SELECT connection_id, name, format, kind, placeholder, binding, key_id, nonce, ciphertext FROM secrets")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        SecretRow {
                            name: r.get(1)?,
                            format: r.get(2)?,
                            kind: r.get(3)?,
                            placeholder: r.get(4)?,
                            binding: r.get(5)?,
                            sealed: Sealed { key_id: r.get(6)?, nonce: r.get(7)?, ciphertext: r.get(8)? },
                        },
                    ))
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?
        };
        let mut n = 0;
        for (cid, row) in rows {
            let meta = row.meta();
            let plain = keys.open_with(&cid, &row.name, meta.as_deref(), &row.sealed)?;
            let fresh = keys.seal_with(&cid, &row.name, meta.as_deref(), &plain)?;
            tx.execute(
                "UPDATE secrets SET key_id = ?3, nonce = ?4, ciphertext = ?5 WHERE connection_id = ?1 AND name = ?2",
                params![cid, row.name, fresh.key_id, fresh.nonce, fresh.ciphertext],
            )
            .map_err(db_err)?;
            n += 1;
        }
        tx.commit().map_err(db_err)?;
        Ok(n)
    }

    /// Key ids in use by stored secrets.
    pub fn key_ids_in_use(&self) -> Res<Vec<String>> {
        if let Some(pg) = self.postgres() {
            return pg.key_ids_in_use();
        }
        let db = self.db();
        let mut stmt = db.prepare("SELECT DISTINCT key_id FROM secrets ORDER BY key_id").map_err(db_err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }
}

/// What other modules' tests build connections from.
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::tests::record;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Target;

    pub(crate) fn record(name: &str) -> ConnectionRecord {
        ConnectionRecord {
            id: format!("conn_{name}"),
            name: name.into(),
            plugin_digest: "d".into(),
            connector_id: "close".into(),
            connector_name: "Close CRM".into(),
            endpoint: "https://mcp.close.com/mcp".into(),
            auth_method: AuthMethod::ApiKey,
            scopes: vec!["mcp.read".into()],
            options: vec![],
            policy: Policy::default(),
            oauth: OAuthState::default(),
            api_key_header: Some("close-api-key".into()),
            account: None,
            granted_scopes: vec![],
            warnings: vec![],
            status: Status::Pending,
            last_error: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn own(v: &str) -> Option<SecretWrite> {
        Some(SecretWrite::Own(v.into()))
    }

    fn api_key(v: &str) -> Credential {
        let endpoint = Target::parse("https://mcp.close.com/mcp").unwrap();
        Credential::new(Kind::ApiKey, Zeroizing::new(v.into()), Binding::api_key(&endpoint, Some("close-api-key")))
    }

    #[test]
    fn connections_round_trip_and_names_are_unique() {
        let s = Store::in_memory().unwrap();
        s.insert_connection(&record("a")).unwrap();
        let err = s.insert_connection(&ConnectionRecord { id: "other".into(), ..record("a") }).unwrap_err();
        assert!(err.contains("already exists"), "{err}");
        s.mark_connected("conn_a", Some("Org"), &["mcp.read".into()], &["wider".into()]).unwrap();
        let got = s.connection("a").unwrap().unwrap();
        assert_eq!(got.status, Status::Ready);
        assert_eq!(got.account.as_deref(), Some("Org"));
        assert_eq!(got.warnings, vec!["wider"]);
        assert_eq!(got.api_key_header.as_deref(), Some("close-api-key"));
        assert_eq!(s.connections().unwrap().len(), 1);
    }

    #[test]
    fn secrets_are_stored_sealed_and_deleted_with_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MasterKeys::generate();
        let s = Store::open(dir.path()).unwrap();
        s.insert_connection(&record("a")).unwrap();
        let key = api_key("sk_secret_value_123");
        s.update_secrets(&keys, "conn_a", &[("api-key".into(), Some(SecretWrite::Credential(key.clone())))]).unwrap();
        match s.secret(&keys, "conn_a", "api-key").unwrap().unwrap() {
            StoredSecret::Credential(c) => {
                assert_eq!(c.value.as_str(), "sk_secret_value_123");
                assert_eq!(c.placeholder, key.placeholder);
                assert_eq!(c.binding, key.binding);
            }
            _ => panic!("a credential"),
        }
        let by_placeholder = s.credential_by_placeholder(&keys, "conn_a", &key.placeholder).unwrap().unwrap();
        assert_eq!(by_placeholder.kind, Kind::ApiKey);
        assert_eq!(s.secret_summaries("conn_a").unwrap()[0].kind, Some(Kind::ApiKey));
        drop(s);
        // The clear value is nowhere in the database files.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(19).any(|w| w == b"sk_secret_value_123"));
        }
        let s = Store::open(dir.path()).unwrap();
        assert!(s.delete_connection("conn_a").unwrap());
        assert!(s.secret(&keys, "conn_a", "api-key").unwrap().is_none());
    }

    #[test]
    fn a_binding_edited_in_the_database_no_longer_opens() {
        let keys = MasterKeys::generate();
        let s = Store::in_memory().unwrap();
        s.insert_connection(&record("a")).unwrap();
        s.update_secrets(&keys, "conn_a", &[("api-key".into(), Some(SecretWrite::Credential(api_key("sk_secret_value_123"))))]).unwrap();
        let evil = Binding::api_key(&Target::parse("https://evil.example/x").unwrap(), Some("close-api-key"));
        s.db().execute("UPDATE secrets SET binding = ?1", params![json(&evil)]).unwrap();
        let e = s.secret(&keys, "conn_a", "api-key").err().unwrap();
        assert!(e.contains("failed authentication"), "{e}");
    }

    #[test]
    fn a_batch_of_secret_changes_is_atomic() {
        let keys = MasterKeys::generate();
        let s = Store::in_memory().unwrap();
        s.insert_connection(&record("a")).unwrap();
        s.update_secrets(&keys, "conn_a", &[("expiry".into(), own("r1"))]).unwrap();
        // An invalid name in the batch rejects the whole batch: r1 survives.
        let err = s.update_secrets(&keys, "conn_a", &[("expiry".into(), own("r2")), ("".into(), own("x"))]).unwrap_err();
        assert!(err.contains("secret names"));
        assert_eq!(s.secret_value(&keys, "conn_a", "expiry").unwrap().unwrap().as_str(), "r1");
        // One credential under two names is refused (its placeholder names one row).
        let k = api_key("sk_secret_value_123");
        let err = s
            .update_secrets(&keys, "conn_a", &[("a".into(), Some(SecretWrite::Credential(k.clone()))), ("b".into(), Some(SecretWrite::Credential(k)))])
            .unwrap_err();
        assert!(err.contains("one name"), "{err}");
        assert!(s.secret(&keys, "conn_a", "a").unwrap().is_none(), "nothing of the refused batch was stored");
    }

    #[test]
    fn reencryption_moves_every_secret_to_the_current_key() {
        let mut keys = MasterKeys::generate();
        let s = Store::in_memory().unwrap();
        s.insert_connection(&record("a")).unwrap();
        s.update_secrets(&keys, "conn_a", &[("k1".into(), own("v1")), ("k2".into(), Some(SecretWrite::Credential(api_key("v2-long-enough"))))]).unwrap();
        let old = keys.current_id().to_string();
        keys.rotate().unwrap();
        assert_eq!(s.key_ids_in_use().unwrap(), vec![old]);
        assert_eq!(s.reencrypt_all(&keys).unwrap(), 2);
        assert_eq!(s.key_ids_in_use().unwrap(), vec![keys.current_id().to_string()]);
        keys.retire_old_keys().unwrap();
        assert_eq!(s.secret_value(&keys, "conn_a", "k2").unwrap().unwrap().as_str(), "v2-long-enough");
        assert_eq!(s.secret_value(&keys, "conn_a", "k1").unwrap().unwrap().as_str(), "v1");
    }

    #[test]
    fn a_database_of_the_first_schema_is_migrated_and_its_secrets_stay_inert() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MasterKeys::generate();
        {
            let db = Connection::open(dir.path().join("claribi.db")).unwrap();
            db.execute_batch(SCHEMA_V1).unwrap();
            db.execute(
                "INSERT INTO connections (id, name, plugin_digest, connector_id, connector_name, endpoint, auth_method, scopes, options,
                 policy, credential_origins, granted_scopes, status, created_at, updated_at)
                 VALUES ('conn_a', 'a', 'd', 'close', 'Close CRM', 'https://mcp.close.com/mcp', 'api-key', '[]', '[]', '', '[]', '[]', 'ready', 0, 0)",
                [],
            )
            .unwrap();
            let sealed = keys.seal("conn_a", "access-token", b"old-token-value").unwrap();
            db.execute(
                "INSERT INTO secrets (connection_id, name, key_id, nonce, ciphertext, updated_at) VALUES ('conn_a', 'access-token', ?1, ?2, ?3, 0)",
                params![sealed.key_id, sealed.nonce, sealed.ciphertext],
            )
            .unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.last().unwrap().0);
        assert!(matches!(s.secret(&keys, "conn_a", "access-token").unwrap(), Some(StoredSecret::Legacy(_))));
        assert!(s.secret_summaries("conn_a").unwrap()[0].legacy);
        assert!(s.credentials(&keys, "conn_a").unwrap().is_empty(), "a legacy value is no credential a placeholder resolves to");
        drop(s);
        assert_eq!(Store::open(dir.path()).unwrap().schema_version().unwrap(), MIGRATIONS.last().unwrap().0, "opening again migrates nothing");
    }

    #[test]
    fn a_connection_is_renamed_unless_the_name_is_taken() {
        let s = Store::in_memory().unwrap();
        s.insert_connection(&record("setup-1")).unwrap();
        s.insert_connection(&record("close")).unwrap();
        let e = s.rename_connection("conn_setup-1", "close").unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        assert!(s.connection("setup-1").unwrap().is_some(), "a refused rename changes nothing");
        s.rename_connection("conn_setup-1", "close-eu").unwrap();
        assert_eq!(s.connection("close-eu").unwrap().unwrap().id, "conn_setup-1");
        assert!(s.rename_connection("conn_gone", "x").is_err());
    }

    #[test]
    fn pins_keep_calls_and_go_with_their_connection() {
        let s = Store::in_memory().unwrap();
        s.insert_connection(&record("a")).unwrap();
        let pin = PinRecord {
            id: "pin_1".into(),
            connection_id: "conn_a".into(),
            title: "Open deals".into(),
            kind: "tool".into(),
            target: "find_opportunities".into(),
            arguments: r#"{"status_type":"active"}"#.into(),
            chart: r#"{"mark":"bar"}"#.into(),
            created_at: 0,
        };
        s.insert_pin(&pin).unwrap();
        let got = s.pins().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].target.as_str(), got[0].arguments.as_str()), ("find_opportunities", r#"{"status_type":"active"}"#));
        assert!(got[0].created_at > 0);
        assert!(s.insert_pin(&PinRecord { id: "pin_2".into(), connection_id: "conn_none".into(), ..pin.clone() }).is_err(), "a pin needs its connection");
        assert!(s.delete_connection("conn_a").unwrap());
        assert!(s.pins().unwrap().is_empty(), "a pin goes with its connection");
        s.insert_connection(&record("a")).unwrap();
        s.insert_pin(&pin).unwrap();
        assert!(s.delete_pin("pin_1").unwrap());
        assert!(!s.delete_pin("pin_1").unwrap());
    }
}
