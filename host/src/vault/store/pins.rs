//! The tool definitions a connection's operator approved ([`crate::policy::pinning`]), the reviews
//! waiting for them, and the record of every approval (time, who, how).

use super::{db_err, now, Res, Store};
use crate::policy::pinning::Pin;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

/// Migration 4: pinned tool definitions.
pub(super) const MIGRATION_V4: &str = "
ALTER TABLE connections ADD COLUMN tools_pinned_at INTEGER;
CREATE TABLE IF NOT EXISTS tool_pins (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    tool TEXT NOT NULL,
    digest TEXT NOT NULL,
    definition TEXT NOT NULL,
    approved_at INTEGER NOT NULL,
    approved_by TEXT NOT NULL,
    PRIMARY KEY (connection_id, tool)
);
CREATE TABLE IF NOT EXISTS tool_reviews (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    tool TEXT NOT NULL,
    kind TEXT NOT NULL,
    digest TEXT NOT NULL,
    definition TEXT NOT NULL,
    detail TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (connection_id, tool)
);
CREATE TABLE IF NOT EXISTS tool_approvals (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    tool TEXT NOT NULL,
    digest TEXT NOT NULL,
    approved_at INTEGER NOT NULL,
    approved_by TEXT NOT NULL,
    how TEXT NOT NULL
);
";

/// A tool definition held back until the operator approves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingReview {
    pub tool: String,
    /// `new` or `changed`.
    pub kind: String,
    pub digest: String,
    /// The definition as the vendor offers it now (canonical JSON).
    pub definition: String,
    /// For a changed tool, the line diff from the approved definition; for a new one, why it waits.
    pub detail: String,
    /// When it was first seen (Unix seconds).
    pub seen_at: i64,
}

/// One approval, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub tool: String,
    pub digest: String,
    pub approved_at: i64,
    pub approved_by: String,
    /// `connect` (the first listing), `review` (an operator's approval) or `policy` (the policy's rules).
    pub how: String,
}

impl Store {
    /// The approved definitions of a connection.
    pub fn tool_pins(&self, connection_id: &str) -> Res<Vec<Pin>> {
        if let Some(pg) = self.postgres() {
            return pg.tool_pins(connection_id);
        }
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT tool, digest, definition FROM tool_pins WHERE connection_id = ?1 ORDER BY tool")
            .map_err(db_err)?;
        let rows = stmt
            .query_map(params![connection_id], |r| Ok(Pin { tool: r.get(0)?, digest: r.get(1)?, definition: r.get(2)? }))
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    /// Whether the connection's first listing has been pinned.
    pub fn tools_pinned(&self, connection_id: &str) -> Res<bool> {
        if let Some(pg) = self.postgres() {
            return pg.tools_pinned(connection_id);
        }
        let at: Option<Option<i64>> = self
            .db()
            .query_row("SELECT tools_pinned_at FROM connections WHERE id = ?1", params![connection_id], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        Ok(matches!(at, Some(Some(_))))
    }

    /// Approve `pins` (replacing earlier approvals of the same tools) and record who and how; `first`
    /// marks the connection's first listing as pinned. Approved tools leave the pending reviews.
    pub fn pin_tools(&self, connection_id: &str, pins: &[Pin], by: &str, how: &str, first: bool) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.pin_tools(connection_id, pins, by, how, first);
        }
        let mut db = self.db();
        let tx = db.transaction().map_err(db_err)?;
        let at = now();
        for p in pins {
            tx.execute(
                "INSERT INTO tool_pins (connection_id, tool, digest, definition, approved_at, approved_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (connection_id, tool) DO UPDATE SET digest = excluded.digest, definition = excluded.definition,
                 approved_at = excluded.approved_at, approved_by = excluded.approved_by",
                params![connection_id, p.tool, p.digest, p.definition, at, by],
            )
            .map_err(db_err)?;
            tx.execute(
                "INSERT INTO tool_approvals (connection_id, tool, digest, approved_at, approved_by, how) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![connection_id, p.tool, p.digest, at, by, how],
            )
            .map_err(db_err)?;
            tx.execute("DELETE FROM tool_reviews WHERE connection_id = ?1 AND tool = ?2", params![connection_id, p.tool])
                .map_err(db_err)?;
        }
        if first {
            tx.execute("UPDATE connections SET tools_pinned_at = ?2 WHERE id = ?1 AND tools_pinned_at IS NULL", params![connection_id, at])
                .map_err(db_err)?;
        }
        // A new approval changes what the next listing offers.
        tx.execute("DELETE FROM tool_cache WHERE connection_id = ?1", params![connection_id]).map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    /// Replace the pending reviews of a connection with `reviews` (what the last listing held back: a
    /// tool removed upstream, or changed back, stops waiting). Returns the reviews that are new or
    /// whose definition changed since they were recorded (each is logged once).
    pub fn set_pending_reviews(&self, connection_id: &str, reviews: &[PendingReview]) -> Res<Vec<PendingReview>> {
        let before: Vec<(String, String)> = if let Some(pg) = self.postgres() {
            pg.review_digests(connection_id)?
        } else {
            let db = self.db();
            let mut stmt = db.prepare("SELECT tool, digest FROM tool_reviews WHERE connection_id = ?1").map_err(db_err)?;
            let rows = stmt.query_map(params![connection_id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)?
        };
        let fresh: Vec<PendingReview> =
            reviews.iter().filter(|r| !before.iter().any(|(t, d)| *t == r.tool && *d == r.digest)).cloned().collect();
        if let Some(pg) = self.postgres() {
            let stamped = reviews
                .iter()
                .map(|r| PendingReview { seen_at: if fresh.iter().any(|f| f.tool == r.tool) { now() } else { r.seen_at }, ..r.clone() })
                .collect();
            pg.replace_reviews(connection_id, stamped)?;
            return Ok(fresh);
        }
        let mut db = self.db();
        let tx = db.transaction().map_err(db_err)?;
        tx.execute("DELETE FROM tool_reviews WHERE connection_id = ?1", params![connection_id]).map_err(db_err)?;
        for r in reviews {
            let seen_at = if fresh.iter().any(|f| f.tool == r.tool) { now() } else { r.seen_at };
            tx.execute(
                "INSERT INTO tool_reviews (connection_id, tool, kind, digest, definition, detail, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![connection_id, r.tool, r.kind, r.digest, r.definition, r.detail, seen_at],
            )
            .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(fresh)
    }

    /// The reviews waiting for the operator, by tool name.
    pub fn pending_reviews(&self, connection_id: &str) -> Res<Vec<PendingReview>> {
        if let Some(pg) = self.postgres() {
            return pg.pending_reviews(connection_id);
        }
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT tool, kind, digest, definition, detail, seen_at FROM tool_reviews WHERE connection_id = ?1 ORDER BY tool",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map(params![connection_id], |r| {
                Ok(PendingReview {
                    tool: r.get(0)?,
                    kind: r.get(1)?,
                    digest: r.get(2)?,
                    definition: r.get(3)?,
                    detail: r.get(4)?,
                    seen_at: r.get(5)?,
                })
            })
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    /// How many tools of a connection wait for a review.
    pub fn pending_review_count(&self, connection_id: &str) -> Res<usize> {
        if let Some(pg) = self.postgres() {
            return pg.pending_review_count(connection_id);
        }
        self.db()
            .query_row("SELECT COUNT(*) FROM tool_reviews WHERE connection_id = ?1", params![connection_id], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(db_err)
    }

    /// Every approval of a connection, oldest first.
    pub fn approvals(&self, connection_id: &str) -> Res<Vec<Approval>> {
        if let Some(pg) = self.postgres() {
            return pg.approvals(connection_id);
        }
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT tool, digest, approved_at, approved_by, how FROM tool_approvals WHERE connection_id = ?1 ORDER BY rowid",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map(params![connection_id], |r| {
                Ok(Approval { tool: r.get(0)?, digest: r.get(1)?, approved_at: r.get(2)?, approved_by: r.get(3)?, how: r.get(4)? })
            })
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }
}
