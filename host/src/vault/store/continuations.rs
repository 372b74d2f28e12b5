//! Rows kept for `claribi__next_rows` ([`crate::engine::results::Continuations`]), so that a
//! shortened result can be continued by whichever replica the engine's next request reaches. They are
//! vendor data, so they are kept sealed like secrets (XChaCha20-Poly1305 under the master key, the
//! cursor's digest as associated data), under the SHA-256 of the engine's name and their cursor, for
//! 15 minutes at most (expired rows are deleted whenever one is kept or read); a row is deleted when
//! it is read, and with its connection. Rows sealed under a key that `rotate-key` retired no longer open:
//! their cursors read as expired, and the engine calls the original tool again.

use super::{db_err, Res, Store};
use rusqlite::{params, OptionalExtension};

/// Migration 9: continuation rows.
pub(super) const MIGRATION_V9: &str = "
CREATE TABLE IF NOT EXISTS continuations (
    cursor_sha256 TEXT PRIMARY KEY,
    expires_at_ms INTEGER NOT NULL,
    connection TEXT NOT NULL,
    source TEXT NOT NULL,
    key_id TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS continuations_by_expiry ON continuations (expires_at_ms);
CREATE INDEX IF NOT EXISTS continuations_by_connection ON continuations (connection);
";

/// At most this many continuations are kept; the oldest go first.
const MAX_KEPT: i64 = 256;

/// One continuation as stored (sealed).
pub struct SealedRows {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl Store {
    /// Keep a continuation (dropping expired ones, and the oldest beyond the cap).
    pub fn put_continuation(&self, cursor_sha256: &str, expires_at_ms: i64, now_ms: i64, connection: &str, source: &str, rows: &SealedRows) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.put_continuation(cursor_sha256, expires_at_ms, now_ms, connection, source, rows, MAX_KEPT);
        }
        let mut db = self.db();
        let tx = db.transaction().map_err(db_err)?;
        tx.execute("DELETE FROM continuations WHERE expires_at_ms <= ?1", params![now_ms]).map_err(db_err)?;
        tx.execute(
            "DELETE FROM continuations WHERE cursor_sha256 IN (
                 SELECT cursor_sha256 FROM continuations ORDER BY expires_at_ms DESC LIMIT -1 OFFSET ?1)",
            params![MAX_KEPT - 1],
        )
        .map_err(db_err)?;
        tx.execute(
            "INSERT INTO continuations (cursor_sha256, expires_at_ms, connection, source, key_id, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![cursor_sha256, expires_at_ms, connection, source, rows.key_id, rows.nonce, rows.ciphertext],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    /// Take (delete and return) a continuation that has not expired.
    pub fn take_continuation(&self, cursor_sha256: &str, now_ms: i64) -> Res<Option<SealedRows>> {
        if let Some(pg) = self.postgres() {
            return pg.take_continuation(cursor_sha256, now_ms);
        }
        let mut db = self.db();
        let tx = db.transaction().map_err(db_err)?;
        let row = tx
            .query_row(
                "SELECT key_id, nonce, ciphertext FROM continuations WHERE cursor_sha256 = ?1 AND expires_at_ms > ?2",
                params![cursor_sha256, now_ms],
                |r| Ok(SealedRows { key_id: r.get(0)?, nonce: r.get(1)?, ciphertext: r.get(2)? }),
            )
            .optional()
            .map_err(db_err)?;
        tx.execute("DELETE FROM continuations WHERE cursor_sha256 = ?1 OR expires_at_ms <= ?2", params![cursor_sha256, now_ms]).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(row)
    }

    /// The provenance kept with a continuation that has not expired.
    pub fn continuation_source(&self, cursor_sha256: &str, now_ms: i64) -> Res<Option<String>> {
        if let Some(pg) = self.postgres() {
            return pg.continuation_source(cursor_sha256, now_ms);
        }
        self.db()
            .query_row(
                "SELECT source FROM continuations WHERE cursor_sha256 = ?1 AND expires_at_ms > ?2",
                params![cursor_sha256, now_ms],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: u8) -> SealedRows {
        SealedRows { key_id: "k".into(), nonce: vec![n], ciphertext: vec![n; 4] }
    }

    #[test]
    fn a_continuation_is_read_once_and_not_after_it_expires() {
        let s = Store::in_memory().unwrap();
        s.put_continuation("a", 1_000, 0, "c", "{}", &rows(1)).unwrap();
        s.put_continuation("b", 1_000, 0, "c", "{\"tool\":\"t\"}", &rows(2)).unwrap();
        assert_eq!(s.continuation_source("b", 10).unwrap().as_deref(), Some("{\"tool\":\"t\"}"));
        assert_eq!(s.take_continuation("a", 10).unwrap().map(|r| r.nonce), Some(vec![1]));
        assert!(s.take_continuation("a", 10).unwrap().is_none(), "read once");
        assert!(s.take_continuation("b", 1_000).unwrap().is_none(), "expired");
        assert!(s.continuation_source("b", 1_000).unwrap().is_none());
    }

    #[test]
    fn the_oldest_go_beyond_the_cap() {
        let s = Store::in_memory().unwrap();
        for i in 0..(MAX_KEPT + 5) {
            s.put_continuation(&format!("c{i}"), 10_000 + i, 0, "c", "{}", &rows(0)).unwrap();
        }
        let kept: i64 = s.db().query_row("SELECT COUNT(*) FROM continuations", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, MAX_KEPT);
        assert!(s.continuation_source("c0", 1).unwrap().is_none() && s.continuation_source(&format!("c{}", MAX_KEPT + 4), 1).unwrap().is_some());
    }
}
