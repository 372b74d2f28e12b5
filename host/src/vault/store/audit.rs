//! The audit trail: one row per engine call, whichever replica answered it — when, which engine token,
//! which connection and tool, the SHA-256 of the arguments, how many bytes came back, how long it took,
//! the outcome, and the replica. A row never holds a secret, a placeholder, the arguments or a result:
//! the arguments are kept only as a digest, so an auditor holding a call's arguments can show it was
//! that call without the trail holding what was asked.

use super::{db_err, Res, Store};
use rusqlite::params;
use serde::Serialize;

/// Migration 7: the audit trail.
pub(super) const MIGRATION_V7: &str = "
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    engine TEXT NOT NULL,
    connection TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments_sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    replica TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at_ms);
CREATE INDEX IF NOT EXISTS audit_by_connection ON audit (connection, at_ms);
";

/// One engine call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Unix milliseconds when the call arrived.
    pub at_ms: i64,
    /// The engine token's name (`stdio` for `serve` on stdio, `loopback` for an unauthenticated
    /// loopback `serve --http`).
    pub engine: String,
    /// The connection called (`claribi` for the host's own `claribi__next_rows`; empty when the
    /// served name named no connection).
    pub connection: String,
    /// The tool, as the connection names it (one line, at most 200 characters).
    pub tool: String,
    /// SHA-256 (hex) of the arguments' JSON text as the host passes it on (compact, the engine's key
    /// order). Unsalted, as specified: short arguments (an e-mail address) can be confirmed by
    /// guessing, never read back.
    pub arguments_sha256: String,
    /// Bytes of result text returned (0 on failure).
    pub bytes: u64,
    pub duration_ms: u64,
    /// `ok`, or the error's kind (`rate-limited`, `unknown-tool`, `denied-by-policy`, …).
    pub outcome: String,
    /// Which replica answered (`CLARIBI_REPLICA_ID`, else host name and process id).
    pub replica: String,
}

/// Which rows `audit` reads.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub connection: Option<String>,
    /// Unix milliseconds; rows at or after it.
    pub since_ms: Option<i64>,
    /// At most this many rows (the newest).
    pub limit: usize,
}

/// The start of `audit --since T` in Unix milliseconds: a duration back from `now_ms` (`90s`, `15m`,
/// `2h`, `7d`), an RFC 3339 time (`2026-12-07T09:00:00Z`) or a date (`2026-12-07`, midnight UTC).
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    let unit_ms = match t.chars().last() {
        Some('s') => Some(1_000),
        Some('m') => Some(60_000),
        Some('h') => Some(3_600_000),
        Some('d') => Some(86_400_000),
        _ => None,
    };
    if let Some(unit) = unit_ms {
        if let Ok(n) = t[..t.len() - 1].parse::<i64>() {
            if n >= 0 {
                return Ok(now_ms.saturating_sub(n.saturating_mul(unit)));
            }
        }
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(at.timestamp_millis());
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp_millis()).unwrap_or(0));
    }
    Err(format!(
        "--since `{}` is not a time; give a duration back from now (90s, 15m, 2h, 7d), an RFC 3339 time (2026-12-07T09:00:00Z) or a date (2026-12-07)",
        crate::errors::one_line(t)
    ))
}

impl Store {
    /// Append one row.
    pub fn record_audit(&self, e: &AuditEntry) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.record_audit(e);
        }
        self.db()
            .execute(
                "INSERT INTO audit (at_ms, engine, connection, tool, arguments_sha256, bytes, duration_ms, outcome, replica)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    e.at_ms,
                    e.engine,
                    e.connection,
                    e.tool,
                    e.arguments_sha256,
                    e.bytes as i64,
                    e.duration_ms as i64,
                    e.outcome,
                    e.replica
                ],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// The rows a query selects, oldest first.
    pub fn audit(&self, q: &AuditQuery) -> Res<Vec<AuditEntry>> {
        if let Some(pg) = self.postgres() {
            return pg.audit(q);
        }
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT at_ms, engine, connection, tool, arguments_sha256, bytes, duration_ms, outcome, replica FROM (
                     SELECT * FROM audit WHERE (?1 IS NULL OR connection = ?1) AND (?2 IS NULL OR at_ms >= ?2)
                     ORDER BY at_ms DESC, id DESC LIMIT ?3
                 ) ORDER BY at_ms, id",
            )
            .map_err(db_err)?;
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![q.connection, q.since_ms, limit], |r| {
                Ok(AuditEntry {
                    at_ms: r.get(0)?,
                    engine: r.get(1)?,
                    connection: r.get(2)?,
                    tool: r.get(3)?,
                    arguments_sha256: r.get(4)?,
                    bytes: r.get::<_, i64>(5)?.max(0) as u64,
                    duration_ms: r.get::<_, i64>(6)?.max(0) as u64,
                    outcome: r.get(7)?,
                    replica: r.get(8)?,
                })
            })
            .map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: i64, connection: &str) -> AuditEntry {
        AuditEntry {
            at_ms,
            engine: "e".into(),
            connection: connection.into(),
            tool: "t".into(),
            arguments_sha256: "00".into(),
            bytes: 1,
            duration_ms: 2,
            outcome: "ok".into(),
            replica: "r".into(),
        }
    }

    #[test]
    fn since_reads_durations_times_and_dates() {
        let now = 1_765_000_000_000;
        assert_eq!(parse_since("90s", now), Ok(now - 90_000));
        assert_eq!(parse_since("15m", now), Ok(now - 900_000));
        assert_eq!(parse_since(" 2h ", now), Ok(now - 7_200_000));
        assert_eq!(parse_since("7d", now), Ok(now - 7 * 86_400_000));
        assert_eq!(parse_since("1970-01-01T00:00:01Z", now), Ok(1000));
        assert_eq!(parse_since("1970-01-02T00:00:00+01:00", now), Ok(82_800_000));
        assert_eq!(parse_since("1970-01-02", now), Ok(86_400_000));
        for bad in ["", "yesterday", "-5m", "5 m", "2026-13-01", "m"] {
            let err = parse_since(bad, now).unwrap_err();
            assert!(err.contains("is not a time") && !err.contains('\n'), "{bad}: {err}");
        }
    }

    #[test]
    fn the_audit_filters_by_connection_and_time_and_keeps_the_newest() {
        let s = Store::in_memory().unwrap();
        for (at, c) in [(1, "a"), (2, "b"), (3, "a"), (4, "a")] {
            s.record_audit(&entry(at, c)).unwrap();
        }
        let all = s.audit(&AuditQuery { limit: 100, ..Default::default() }).unwrap();
        assert_eq!(all.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [1, 2, 3, 4]);
        let a = s.audit(&AuditQuery { connection: Some("a".into()), since_ms: Some(2), limit: 100 }).unwrap();
        assert_eq!(a.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [3, 4]);
        let newest = s.audit(&AuditQuery { limit: 2, ..Default::default() }).unwrap();
        assert_eq!(newest.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [3, 4], "the newest two, oldest first");
    }
}
