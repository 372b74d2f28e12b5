//! The vendor's rate budgets ([`crate::policy::rate_budget`]), shared by every process on this store:
//! a request takes from each of its scopes in one transaction, so two replicas never both spend the
//! last request of a window. They go through the store's second connection, whose commits are not
//! synced to disk: a budget lost in a power cut is learned again from the vendor's next answer.

use super::{db_err, Res, Store};
use crate::policy::rate_budget::{self, Budget, Observed, Take};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

/// Migration 8: rate budgets by scope.
pub(super) const MIGRATION_V8: &str = "
CREATE TABLE IF NOT EXISTS rate_budgets (
    scope TEXT PRIMARY KEY,
    lim INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    reset_at_ms INTEGER NOT NULL,
    window_ms INTEGER NOT NULL,
    learned INTEGER NOT NULL
);
";

fn read(tx: &rusqlite::Transaction<'_>, scope: &str) -> Res<Option<Budget>> {
    tx.query_row("SELECT lim, remaining, reset_at_ms, window_ms, learned FROM rate_budgets WHERE scope = ?1", params![scope], |r| {
        Ok(Budget { limit: r.get(0)?, remaining: r.get(1)?, reset_at_ms: r.get(2)?, window_ms: r.get(3)?, learned: r.get::<_, i64>(4)? != 0 })
    })
    .optional()
    .map_err(db_err)
}

fn write(tx: &rusqlite::Transaction<'_>, scope: &str, b: &Budget) -> Res<()> {
    tx.execute(
        "INSERT INTO rate_budgets (scope, lim, remaining, reset_at_ms, window_ms, learned) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (scope) DO UPDATE SET lim = excluded.lim, remaining = excluded.remaining, reset_at_ms = excluded.reset_at_ms,
             window_ms = excluded.window_ms, learned = excluded.learned",
        params![scope, b.limit, b.remaining, b.reset_at_ms, b.window_ms, b.learned as i64],
    )
    .map_err(db_err)?;
    Ok(())
}

impl Store {
    /// Take one request from every scope, or from none: `Take::Go` (with the first scope's budget
    /// after it) when each has one, else `Take::Wait` until the latest of their resets.
    /// `scopes` as [`RateScopes`](crate::wire::outbound::rate::RateScopes) holds them (the factor is
    /// not needed to take).
    pub fn take_rate_budget(&self, scopes: &[(String, i64)], now_ms: i64) -> Res<Take> {
        if let Some(pg) = self.postgres() {
            return pg.take_rate_budget(scopes, now_ms);
        }
        let mut db = self.rates_db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        let mut after = Vec::with_capacity(scopes.len());
        let mut wait: Option<(i64, bool)> = None;
        for (scope, _) in scopes {
            match rate_budget::take(read(&tx, scope)?, now_ms) {
                Take::Go(b) => after.push((scope, b)),
                Take::Wait { until_ms, learning } => {
                    let (until, any_learning) = wait.unwrap_or((0, false));
                    wait = Some((until.max(until_ms), any_learning || learning));
                }
            }
        }
        if let Some((until_ms, learning)) = wait {
            return Ok(Take::Wait { until_ms, learning });
        }
        for (scope, b) in &after {
            write(&tx, scope, b)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(after.first().map(|(_, b)| Take::Go(*b)).unwrap_or(Take::Go(Budget { limit: 0, remaining: 0, reset_at_ms: 0, window_ms: 0, learned: true })))
    }

    /// Learn from an answer: each scope with its factor times the key's limit.
    pub fn learn_rate_budget(&self, scopes: &[(String, i64)], seen: Observed, now_ms: i64) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.learn_rate_budget(scopes, seen, now_ms);
        }
        let mut db = self.rates_db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        for (scope, factor) in scopes {
            let current = read(&tx, scope)?;
            let learned = rate_budget::learn(current, seen.scaled(*factor, current), now_ms);
            write(&tx, scope, &learned)?;
        }
        tx.commit().map_err(db_err)
    }

    /// An answer said nothing of a budget: scopes still learning go unmetered for a while.
    pub fn unmetered_rate_budget(&self, scopes: &[(String, i64)], now_ms: i64) -> Res<()> {
        if let Some(pg) = self.postgres() {
            return pg.unmetered_rate_budget(scopes, now_ms);
        }
        let mut db = self.rates_db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        for (scope, _) in scopes {
            if let Some(open) = rate_budget::unmetered(read(&tx, scope)?, now_ms) {
                write(&tx, scope, &open)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// One scope's budget as stored.
    pub fn rate_budget(&self, scope: &str) -> Res<Option<Budget>> {
        if let Some(pg) = self.postgres() {
            return pg.rate_budget(scope);
        }
        let mut db = self.rates_db();
        let tx = db.transaction().map_err(db_err)?;
        read(&tx, scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_takes_from_every_scope_or_from_none() {
        let s = Store::in_memory().unwrap();
        let scopes = [("key:a".to_string(), 1), ("org:close:o".to_string(), 3)];
        let seen = Observed { limit: Some(2), remaining: 2, reset_ms: 10_000 };
        s.learn_rate_budget(&scopes, seen, 0).unwrap();
        assert_eq!(s.rate_budget("org:close:o").unwrap().map(|b| (b.limit, b.remaining)), Some((6, 6)));
        assert!(matches!(s.take_rate_budget(&scopes, 1).unwrap(), Take::Go(_)));
        assert!(matches!(s.take_rate_budget(&scopes, 2).unwrap(), Take::Go(_)));
        assert_eq!(s.take_rate_budget(&scopes, 3).unwrap(), Take::Wait { until_ms: 10_000, learning: false }, "the key is spent");
        assert_eq!(s.rate_budget("org:close:o").unwrap().unwrap().remaining, 4, "a refused request takes from no scope");
        // Another key of the organization still has its own requests and the organization's.
        let other = [("key:b".to_string(), 1), ("org:close:o".to_string(), 3)];
        assert!(matches!(s.take_rate_budget(&other, 4).unwrap(), Take::Go(Budget { learned: false, .. })), "key b learns");
        assert_eq!(s.rate_budget("org:close:o").unwrap().unwrap().remaining, 3);
    }
}
