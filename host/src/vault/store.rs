//! Persistent state: one SQLite database (`<data-dir>/claribi.db`) holding connections, their
//! non-secret state, connector-wide shared state, and every secret *sealed* (see [`crate::secrets`]).
//!
//! Nothing secret is ever written to this database in clear: the `secrets` table holds only key ids,
//! nonces and ciphertexts. The database file is created with mode 0600 in a 0700 directory.
//!
//! Several processes may use one data directory at once (a `serve` and a CLI call): the database is in
//! WAL mode with a busy timeout, and every multi-row change is one transaction.

use crate::policy::Policy;
use crate::secrets::{MasterKeys, Sealed};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;
use zeroize::Zeroizing;

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
    /// Origins the connection's secrets may travel to.
    pub credential_origins: Vec<String>,
    /// Account reached, as the connector described it.
    pub account: Option<String>,
    /// Scopes granted, as the connector reported them.
    pub granted_scopes: Vec<String>,
    /// Where it stands.
    pub status: Status,
    /// The last error a call hit (one line), if the last call failed.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// The database.
pub struct Store {
    db: Mutex<Connection>,
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

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
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

type Res<T> = Result<T, String>;

fn db_err(e: rusqlite::Error) -> String {
    format!("database error: {e}")
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
        conn.execute_batch("PRAGMA foreign_keys = ON;").map_err(db_err)?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| format!("cannot initialise {}: {e}; is it a claribi database?", path.display()))?;
        Ok(Store { db: Mutex::new(conn) })
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Res<Store> {
        let conn = Connection::open_in_memory().map_err(db_err)?;
        conn.execute_batch("PRAGMA foreign_keys = ON;").map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(Store { db: Mutex::new(conn) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
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
            policy: Policy::parse(&policy_text).unwrap_or_default(),
            credential_origins: from_json(&row.get::<_, String>("credential_origins")?),
            account: row.get("account")?,
            granted_scopes: from_json(&row.get::<_, String>("granted_scopes")?),
            status: Status::parse(&row.get::<_, String>("status")?),
            last_error: row.get("last_error")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
        })
    }

    /// Insert a new connection. Fails if the name is taken.
    pub fn insert_connection(&self, c: &ConnectionRecord) -> Res<()> {
        let db = self.db();
        db.execute(
            "INSERT INTO connections (id, name, plugin_digest, connector_id, connector_name, endpoint, auth_method,
                scopes, options, policy, credential_origins, account, granted_scopes, status, last_error, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)",
            params![
                c.id, c.name, c.plugin_digest, c.connector_id, c.connector_name, c.endpoint, c.auth_method.as_str(),
                json(&c.scopes), json(&c.options), c.policy.to_toml(), json(&c.credential_origins), c.account,
                json(&c.granted_scopes), c.status.as_str(), c.last_error, now()
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
        self.db()
            .query_row("SELECT * FROM connections WHERE name = ?1", params![name], Self::row_to_record)
            .optional()
            .map_err(db_err)
    }

    /// All connections, by name.
    pub fn connections(&self) -> Res<Vec<ConnectionRecord>> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT * FROM connections ORDER BY name").map_err(db_err)?;
        let rows = stmt.query_map([], Self::row_to_record).map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    /// Record the outcome of authorization or a check: account, granted scopes, credential origins,
    /// and status `ready`.
    pub fn mark_connected(&self, id: &str, account: Option<&str>, granted: &[String], origins: &[String]) -> Res<()> {
        self.db()
            .execute(
                "UPDATE connections SET account = ?2, granted_scopes = ?3, credential_origins = ?4, status = 'ready',
                 last_error = NULL, updated_at = ?5 WHERE id = ?1",
                params![id, account, json(&granted), json(&origins), now()],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Replace a connection's policy (grant and limits).
    pub fn set_policy(&self, id: &str, policy: &Policy) -> Res<()> {
        self.db()
            .execute(
                "UPDATE connections SET policy = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, policy.to_toml(), now()],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Replace the origins a connection's secrets may travel to.
    pub fn set_credential_origins(&self, id: &str, origins: &[String]) -> Res<()> {
        self.db()
            .execute(
                "UPDATE connections SET credential_origins = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, json(&origins), now()],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Replace the scopes a connection requests.
    pub fn set_scopes(&self, id: &str, scopes: &[String]) -> Res<()> {
        self.db()
            .execute("UPDATE connections SET scopes = ?2, updated_at = ?3 WHERE id = ?1", params![id, json(&scopes), now()])
            .map_err(db_err)?;
        Ok(())
    }

    /// Record the status and last error after a call.
    pub fn set_status(&self, id: &str, status: Status, last_error: Option<&str>) -> Res<()> {
        self.db()
            .execute(
                "UPDATE connections SET status = ?2, last_error = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, status.as_str(), last_error, now()],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Delete a connection with its secrets and state. Returns whether it existed.
    pub fn delete_connection(&self, id: &str) -> Res<bool> {
        let mut db = self.db();
        let tx = db.transaction().map_err(db_err)?;
        tx.execute("DELETE FROM secrets WHERE connection_id = ?1", params![id]).map_err(db_err)?;
        tx.execute("DELETE FROM state WHERE connection_id = ?1", params![id]).map_err(db_err)?;
        tx.execute("DELETE FROM tool_cache WHERE connection_id = ?1", params![id]).map_err(db_err)?;
        let n = tx.execute("DELETE FROM connections WHERE id = ?1", params![id]).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(n > 0)
    }

    /// Non-secret state of a connection.
    pub fn state(&self, connection_id: &str, key: &str) -> Res<Option<String>> {
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
        self.db()
            .query_row("SELECT COUNT(*) FROM state WHERE connection_id = ?1", params![connection_id], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(db_err)
    }

    /// The host's cached tool listing of a connection (JSON written by the service), if any.
    pub fn tool_cache(&self, connection_id: &str) -> Res<Option<(i64, String)>> {
        self.db()
            .query_row(
                "SELECT listed_at, listing FROM tool_cache WHERE connection_id = ?1",
                params![connection_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_err)
    }

    /// Whether the last listing of a connection offered `tool`, and when it was made (Unix seconds);
    /// `None`: no listing yet. Read with SQLite's JSON functions, so a call does not parse the whole
    /// cached listing.
    pub fn listed_tool(&self, connection_id: &str, tool: &str) -> Res<Option<(bool, i64)>> {
        self.db()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM json_each(listing, '$.tools') WHERE json_extract(value, '$.name') = ?2), listed_at
                 FROM tool_cache WHERE connection_id = ?1",
                params![connection_id, tool],
                |r| Ok((r.get::<_, bool>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()
            .map_err(db_err)
    }

    /// Unix seconds now (the clock the store stamps rows with).
    pub fn now() -> i64 {
        now()
    }

    /// The tools the last listing withheld (JSON written by the service), if any listing exists.
    pub fn blocked_tools(&self, connection_id: &str) -> Res<Option<String>> {
        self.db()
            .query_row("SELECT blocked FROM tool_cache WHERE connection_id = ?1", params![connection_id], |r| r.get(0))
            .optional()
            .map_err(db_err)
    }

    /// Replace the host's cached tool listing of a connection, with the withheld tools kept apart so
    /// that the per-call check reads only them.
    pub fn set_tool_cache(&self, connection_id: &str, listing: &str, blocked: &str) -> Res<()> {
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
        self.db()
            .query_row("SELECT COUNT(*) FROM shared_state WHERE connector_id = ?1", params![connector_id], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(db_err)
    }

    /// Set or delete state shared by every connection of one connector.
    pub fn set_shared_state(&self, connector_id: &str, key: &str, value: Option<&str>) -> Res<()> {
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
    pub fn secret(&self, keys: &MasterKeys, connection_id: &str, name: &str) -> Res<Option<Zeroizing<String>>> {
        let sealed = self
            .db()
            .query_row(
                "SELECT key_id, nonce, ciphertext FROM secrets WHERE connection_id = ?1 AND name = ?2",
                params![connection_id, name],
                |r| Ok(Sealed { key_id: r.get(0)?, nonce: r.get(1)?, ciphertext: r.get(2)? }),
            )
            .optional()
            .map_err(db_err)?;
        match sealed {
            None => Ok(None),
            Some(s) => {
                let bytes = keys.open(connection_id, name, &s)?;
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| format!("secret `{name}` is not text; reconnect the connection"))?;
                Ok(Some(Zeroizing::new(text)))
            }
        }
    }

    /// Every secret value of a connection, opened (for the outbound credential check and log masking).
    pub fn secret_values(&self, keys: &MasterKeys, connection_id: &str) -> Res<Vec<Zeroizing<String>>> {
        let names: Vec<String> = {
            let db = self.db();
            let mut stmt = db.prepare("SELECT name FROM secrets WHERE connection_id = ?1").map_err(db_err)?;
            let rows = stmt.query_map(params![connection_id], |r| r.get(0)).map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?
        };
        let mut out = Vec::new();
        for n in names {
            if let Some(v) = self.secret(keys, connection_id, &n)? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Names of a connection's secrets (never their values).
    pub fn secret_names(&self, connection_id: &str) -> Res<Vec<String>> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT name FROM secrets WHERE connection_id = ?1 ORDER BY name")
            .map_err(db_err)?;
        let rows = stmt.query_map(params![connection_id], |r| r.get(0)).map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    /// Set (`Some`) or delete (`None`) several secrets of a connection in one transaction.
    pub fn update_secrets(&self, keys: &MasterKeys, connection_id: &str, changes: &[(String, Option<String>)]) -> Res<()> {
        let mut sealed = Vec::with_capacity(changes.len());
        for (name, value) in changes {
            if name.is_empty() || name.len() > 128 {
                return Err("secret names must be 1 to 128 characters".into());
            }
            sealed.push((name, value.as_ref().map(|v| keys.seal(connection_id, name, v.as_bytes())).transpose()?));
        }
        let mut db = self.db();
        let tx = db.transaction().map_err(db_err)?;
        for (name, s) in sealed {
            match s {
                Some(s) => tx.execute(
                    "INSERT INTO secrets (connection_id, name, key_id, nonce, ciphertext, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (connection_id, name) DO UPDATE SET key_id = excluded.key_id,
                        nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
                    params![connection_id, name, s.key_id, s.nonce, s.ciphertext, now()],
                ),
                None => tx.execute(
                    "DELETE FROM secrets WHERE connection_id = ?1 AND name = ?2",
                    params![connection_id, name],
                ),
            }
            .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Delete every secret of a connection.
    pub fn delete_secrets(&self, connection_id: &str) -> Res<()> {
        self.db()
            .execute("DELETE FROM secrets WHERE connection_id = ?1", params![connection_id])
            .map_err(db_err)?;
        Ok(())
    }

    /// Re-seal every secret under the current master key, in one transaction. Returns how many.
    pub fn reencrypt_all(&self, keys: &MasterKeys) -> Res<usize> {
        let mut db = self.db();
        let tx = db.transaction().map_err(db_err)?;
        let rows: Vec<(String, String, Sealed)> = {
            let mut stmt = tx
                .prepare("SELECT connection_id, name, key_id, nonce, ciphertext FROM secrets")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, Sealed { key_id: r.get(2)?, nonce: r.get(3)?, ciphertext: r.get(4)? }))
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?
        };
        let mut n = 0;
        for (cid, name, sealed) in rows {
            let plain = keys.open(&cid, &name, &sealed)?;
            let fresh = keys.seal(&cid, &name, &plain)?;
            tx.execute(
                "UPDATE secrets SET key_id = ?3, nonce = ?4, ciphertext = ?5 WHERE connection_id = ?1 AND name = ?2",
                params![cid, name, fresh.key_id, fresh.nonce, fresh.ciphertext],
            )
            .map_err(db_err)?;
            n += 1;
        }
        tx.commit().map_err(db_err)?;
        Ok(n)
    }

    /// Key ids in use by stored secrets.
    pub fn key_ids_in_use(&self) -> Res<Vec<String>> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT DISTINCT key_id FROM secrets ORDER BY key_id").map_err(db_err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> ConnectionRecord {
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
            credential_origins: vec![],
            account: None,
            granted_scopes: vec![],
            status: Status::Pending,
            last_error: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn connections_round_trip_and_names_are_unique() {
        let s = Store::in_memory().unwrap();
        s.insert_connection(&record("a")).unwrap();
        let err = s.insert_connection(&ConnectionRecord { id: "other".into(), ..record("a") }).unwrap_err();
        assert!(err.contains("already exists"), "{err}");
        s.mark_connected("conn_a", Some("Org"), &["mcp.read".into()], &["https://x".into()]).unwrap();
        let got = s.connection("a").unwrap().unwrap();
        assert_eq!(got.status, Status::Ready);
        assert_eq!(got.account.as_deref(), Some("Org"));
        assert_eq!(s.connections().unwrap().len(), 1);
    }

    #[test]
    fn secrets_are_stored_sealed_and_deleted_with_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MasterKeys::generate();
        let s = Store::open(dir.path()).unwrap();
        s.insert_connection(&record("a")).unwrap();
        s.update_secrets(&keys, "conn_a", &[("api-key".into(), Some("sk_secret_value_123".into()))]).unwrap();
        assert_eq!(s.secret(&keys, "conn_a", "api-key").unwrap().unwrap().as_str(), "sk_secret_value_123");
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
    fn a_batch_of_secret_changes_is_atomic() {
        let keys = MasterKeys::generate();
        let s = Store::in_memory().unwrap();
        s.insert_connection(&record("a")).unwrap();
        s.update_secrets(&keys, "conn_a", &[("refresh-token".into(), Some("r1".into()))]).unwrap();
        // An invalid name in the batch rejects the whole batch: r1 survives.
        let err = s
            .update_secrets(&keys, "conn_a", &[("refresh-token".into(), Some("r2".into())), ("".into(), Some("x".into()))])
            .unwrap_err();
        assert!(err.contains("secret names"));
        assert_eq!(s.secret(&keys, "conn_a", "refresh-token").unwrap().unwrap().as_str(), "r1");
    }

    #[test]
    fn reencryption_moves_every_secret_to_the_current_key() {
        let mut keys = MasterKeys::generate();
        let s = Store::in_memory().unwrap();
        s.insert_connection(&record("a")).unwrap();
        s.update_secrets(&keys, "conn_a", &[("k1".into(), Some("v1".into())), ("k2".into(), Some("v2".into()))]).unwrap();
        let old = keys.current_id().to_string();
        keys.rotate().unwrap();
        assert_eq!(s.key_ids_in_use().unwrap(), vec![old]);
        assert_eq!(s.reencrypt_all(&keys).unwrap(), 2);
        assert_eq!(s.key_ids_in_use().unwrap(), vec![keys.current_id().to_string()]);
        keys.retire_old_keys().unwrap();
        assert_eq!(s.secret(&keys, "conn_a", "k2").unwrap().unwrap().as_str(), "v2");
    }
}
