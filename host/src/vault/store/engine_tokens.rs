//! Engine tokens: the bearer credentials an AI engine presents to `serve --http`
//! ([`crate::engine::access`]). Only each token's SHA-256 is stored; the token itself is shown once,
//! when it is created, and never again. A revoked token keeps its row (so the audit trail still names
//! it) and stops working at the next request, on every process using this database.

use super::{db_err, now, Res, Store};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

/// Migration 6: engine tokens, by name, hashed.
pub(super) const MIGRATION_V6: &str = "
CREATE TABLE IF NOT EXISTS engine_tokens (
    name TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
";

/// One engine token as listed (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineTokenRecord {
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None` while the token works.
    pub revoked_at: Option<i64>,
}

impl Store {
    /// Record a new engine token by the SHA-256 (hex) of its value. Fails if the name is taken, even by
    /// a revoked token (the audit trail names tokens; a name means one token forever).
    pub fn insert_engine_token(&self, name: &str, sha256_hex: &str) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.insert_engine_token(name, sha256_hex);
        }
        let db = self.db();
        db.execute("INSERT INTO engine_tokens (name, sha256, created_at) VALUES (?1, ?2, ?3)", params![name, sha256_hex, now()])
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    format!("an engine token named `{name}` already exists (names are never reused); choose another name")
                }
                e => db_err(e),
            })?;
        Ok(())
    }

    /// The name of the working (not revoked) token whose value hashes to `sha256_hex`.
    pub fn engine_token_by_hash(&self, sha256_hex: &str) -> Res<Option<String>> {
        if let Some(pg) = self.postgres() {
            return pg.engine_token_by_hash(sha256_hex);
        }
        self.db()
            .query_row("SELECT name FROM engine_tokens WHERE sha256 = ?1 AND revoked_at IS NULL", params![sha256_hex], |r| r.get(0))
            .optional()
            .map_err(db_err)
    }

    /// Every token, oldest first.
    pub fn engine_tokens(&self) -> Res<Vec<EngineTokenRecord>> {
        if let Some(pg) = self.postgres() {
            return pg.engine_tokens();
        }
        let db = self.db();
        let mut stmt = db.prepare("SELECT name, created_at, revoked_at FROM engine_tokens ORDER BY created_at, name").map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| Ok(EngineTokenRecord { name: r.get(0)?, created_at: r.get(1)?, revoked_at: r.get(2)? }))
            .map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    /// How many tokens work now.
    pub fn active_engine_tokens(&self) -> Res<usize> {
        if let Some(pg) = self.postgres() {
            return pg.active_engine_tokens();
        }
        self.db()
            .query_row("SELECT COUNT(*) FROM engine_tokens WHERE revoked_at IS NULL", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(db_err)
    }

    /// How many tokens were ever made (revoked ones included).
    pub fn engine_tokens_made(&self) -> Res<usize> {
        if let Some(pg) = self.postgres() {
            return pg.engine_tokens_made();
        }
        self.db().query_row("SELECT COUNT(*) FROM engine_tokens", [], |r| r.get::<_, i64>(0)).map(|n| n as usize).map_err(db_err)
    }

    /// Revoke a token. `Ok(false)`: no working token has that name.
    pub fn revoke_engine_token(&self, name: &str) -> Res<bool> {
        if let Some(pg) = self.postgres() {
            return pg.revoke_engine_token(name);
        }
        let n = self
            .db()
            .execute("UPDATE engine_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL", params![name, now()])
            .map_err(db_err)?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_by_its_hash_until_it_is_revoked() {
        let s = Store::in_memory().unwrap();
        s.insert_engine_token("engine-eu", "aa").unwrap();
        assert_eq!(s.engine_token_by_hash("aa").unwrap().as_deref(), Some("engine-eu"));
        assert_eq!(s.engine_token_by_hash("bb").unwrap(), None);
        assert_eq!(s.active_engine_tokens().unwrap(), 1);
        assert!(s.revoke_engine_token("engine-eu").unwrap());
        assert!(!s.revoke_engine_token("engine-eu").unwrap(), "already revoked");
        assert_eq!(s.engine_token_by_hash("aa").unwrap(), None);
        assert_eq!(s.active_engine_tokens().unwrap(), 0);
        let listed = s.engine_tokens().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked_at.is_some());
    }

    #[test]
    fn a_name_is_never_reused() {
        let s = Store::in_memory().unwrap();
        s.insert_engine_token("e", "aa").unwrap();
        s.revoke_engine_token("e").unwrap();
        let err = s.insert_engine_token("e", "bb").unwrap_err();
        assert!(err.contains("already exists") && err.contains("choose another name"), "{err}");
    }
}
