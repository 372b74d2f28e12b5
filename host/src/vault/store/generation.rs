//! The store's generation counter: one number that changes whenever anything a call prepares from
//! changes — a connection's record (policy, grant, OAuth URLs, status), its cached listing and the tools
//! that listing withheld, its pinned definitions and pending reviews — by whichever process writes it.
//!
//! SQLite triggers keep it, so no write path can forget to: the CLI, the console, `serve` and any other
//! process on the same database bump the same row. A host keeps what it prepared for a connection
//! (see `crate::service::prepared`) together with the generation it read, and prepares again when the
//! number it reads before a call differs.
//!
//! ```text
//! call ──► SELECT n FROM generation ──► same as prepared? ── yes ──► use the prepared state
//!                                                          └─ no ──► read record, listing, withheld
//! ```

use super::{db_err, Res, Store};

/// Migration 5: the counter, and a trigger per write on each table a call prepares from (a connection
/// record, its cached listing and withheld tools, its pinned definitions and pending reviews).
pub(super) const MIGRATION_V5: &str = "
CREATE TABLE IF NOT EXISTS generation (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO generation (id, n) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS generation_connections_insert AFTER INSERT ON connections BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS generation_connections_update AFTER UPDATE ON connections BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS generation_connections_delete AFTER DELETE ON connections BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS generation_tool_cache_insert AFTER INSERT ON tool_cache BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS generation_tool_cache_update AFTER UPDATE ON tool_cache BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS generation_tool_cache_delete AFTER DELETE ON tool_cache BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS generation_tool_pins_insert AFTER INSERT ON tool_pins BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS generation_tool_pins_update AFTER UPDATE ON tool_pins BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS generation_tool_pins_delete AFTER DELETE ON tool_pins BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS generation_tool_reviews_insert AFTER INSERT ON tool_reviews BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS generation_tool_reviews_update AFTER UPDATE ON tool_reviews BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS generation_tool_reviews_delete AFTER DELETE ON tool_reviews BEGIN UPDATE generation SET n = n + 1 WHERE id = 1; END;
";

impl Store {
    /// The current generation (see the module docs).
    pub fn generation(&self) -> Res<i64> {
        if let Some(pg) = self.postgres() {
            return pg.generation();
        }
        self.db().query_row("SELECT n FROM generation WHERE id = 1", [], |r| r.get(0)).map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::store::tests::record;

    #[test]
    fn every_write_a_call_prepares_from_changes_the_generation() {
        let s = Store::in_memory().unwrap();
        let g0 = s.generation().unwrap();
        s.insert_connection(&record("one")).unwrap();
        let g1 = s.generation().unwrap();
        assert!(g1 > g0, "inserting a connection");
        s.set_tool_cache("conn_one", "{}", "[]").unwrap();
        let g2 = s.generation().unwrap();
        assert!(g2 > g1, "a new listing");
        s.set_status("conn_one", crate::vault::store::Status::NeedsReconnect, Some("expired")).unwrap();
        let g3 = s.generation().unwrap();
        assert!(g3 > g2, "a status change");
        s.delete_connection("conn_one").unwrap();
        assert!(s.generation().unwrap() > g3, "a deletion");
    }

    #[test]
    fn reads_and_state_writes_leave_the_generation_alone() {
        let s = Store::in_memory().unwrap();
        s.insert_connection(&record("one")).unwrap();
        let g = s.generation().unwrap();
        s.connection("one").unwrap();
        s.tool_cache("conn_one").unwrap();
        s.set_state("conn_one", "cursor", Some("x")).unwrap();
        assert_eq!(s.generation().unwrap(), g);
    }

    #[test]
    fn a_write_through_another_handle_on_the_same_file_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(dir.path()).unwrap();
        let b = Store::open(dir.path()).unwrap();
        a.insert_connection(&record("one")).unwrap();
        let seen = a.generation().unwrap();
        b.set_tool_cache("conn_one", "{}", "[]").unwrap();
        assert!(a.generation().unwrap() > seen);
    }
}
