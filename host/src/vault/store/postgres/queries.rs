//! Every [`super::super::Store`] operation in PostgreSQL's dialect. The decisions (what is sealed with
//! which associated data, what a transaction must hold together, what a deletion takes with it) are the
//! SQLite store's, made in `store.rs` and its modules; this file only says them in other SQL, and the
//! store's tests run against both backends.

use super::{col, is_unique_violation, p, pg_err, Pg, Q};
use crate::policy::rate_budget::{self, Budget, Observed, Take};
use crate::policy::Policy;
use crate::vault::credentials::Placeholder;
use crate::vault::sealing::{MasterKeys, Sealed};
use crate::vault::store::{
    from_json, json, now, Approval, AuditEntry, AuditQuery, AuthMethod, ConnectionRecord, EngineTokenRecord, ListedTool, PendingReview, PinRecord, Res,
    SealedChange, SealedRows, SealedWrite, SecretRow, SecretSummary, Status,
};
use crate::policy::pinning::Pin;
use tokio_postgres::Row;

/// Now, in milliseconds, by the database's clock (one clock for every replica's heartbeat).
pub(super) const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

fn secret_row(r: &Row) -> Res<SecretRow> {
    Ok(SecretRow {
        name: col(r, 0)?,
        format: col(r, 1)?,
        kind: col(r, 2)?,
        placeholder: col(r, 3)?,
        binding: col(r, 4)?,
        sealed: Sealed { key_id: col(r, 5)?, nonce: col(r, 6)?, ciphertext: col(r, 7)? },
    })
}

fn named<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, name: &str) -> Res<T> {
    r.try_get(name).map_err(|e| format!("database error: column {name}: {e}"))
}

fn record(r: &Row) -> Res<ConnectionRecord> {
    let policy: String = named(r, "policy")?;
    Ok(ConnectionRecord {
        id: named(r, "id")?,
        name: named(r, "name")?,
        plugin_digest: named(r, "plugin_digest")?,
        connector_id: named(r, "connector_id")?,
        connector_name: named(r, "connector_name")?,
        endpoint: named(r, "endpoint")?,
        auth_method: AuthMethod::parse(&named::<String>(r, "auth_method")?),
        scopes: from_json(&named::<String>(r, "scopes")?),
        options: from_json(&named::<String>(r, "options")?),
        policy: Policy::parse(&policy).unwrap_or_else(|_| Policy::deny_all()),
        oauth: from_json(&named::<String>(r, "oauth")?),
        api_key_header: named(r, "api_key_header")?,
        account: named(r, "account")?,
        granted_scopes: from_json(&named::<String>(r, "granted_scopes")?),
        warnings: from_json(&named::<String>(r, "warnings")?),
        status: Status::parse(&named::<String>(r, "status")?),
        last_error: named(r, "last_error")?,
        created_at: named(r, "created_at")?,
        updated_at: named(r, "updated_at")?,
    })
}

fn count(row: Option<Row>) -> Res<usize> {
    match row {
        Some(r) => Ok(col::<i64>(&r, 0)?.max(0) as usize),
        None => Ok(0),
    }
}

fn single<T>(row: Option<Row>, f: impl FnOnce(&Row) -> Res<T>) -> Res<Option<T>> {
    row.as_ref().map(f).transpose()
}

impl Pg {
    // ---- connections ----

    pub(in crate::vault::store) fn insert_connection(&self, c: &ConnectionRecord) -> Res<()> {
        let name = c.name.clone();
        let params = p![
            &c.id, &c.name, &c.plugin_digest, &c.connector_id, &c.connector_name, &c.endpoint, c.auth_method.as_str(),
            json(&c.scopes), json(&c.options), c.policy.to_toml(), &c.account, json(&c.granted_scopes), c.status.as_str(),
            &c.last_error, now(), json(&c.oauth), &c.api_key_header, json(&c.warnings)
        ];
        self.run(move |cl| {
            Box::pin(async move {
                let stmt = cl
                    .prepare_cached(
                        "INSERT INTO connections (id, name, plugin_digest, connector_id, connector_name, endpoint, auth_method,
                            scopes, options, policy, account, granted_scopes, status, last_error, created_at, updated_at,
                            oauth, api_key_header, warnings)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16, $17, $18)",
                    )
                    .await
                    .q()?;
                cl.execute(&stmt, &super::refs(&params)).await.map_err(|e| {
                    if is_unique_violation(&e) {
                        format!("a connection named `{name}` already exists; disconnect it first or choose another name")
                    } else {
                        pg_err(e)
                    }
                })?;
                Ok(())
            })
        })
    }

    pub(in crate::vault::store) fn connection(&self, name: &str) -> Res<Option<ConnectionRecord>> {
        single(self.row("SELECT * FROM connections WHERE name = $1", p![name])?, record)
    }

    pub(in crate::vault::store) fn connections(&self) -> Res<Vec<ConnectionRecord>> {
        self.rows("SELECT * FROM connections ORDER BY name COLLATE \"C\"", p![])?.iter().map(record).collect()
    }

    pub(in crate::vault::store) fn mark_connected(&self, id: &str, account: Option<&str>, granted: &[String], warnings: &[String]) -> Res<()> {
        self.exec(
            "UPDATE connections SET account = $2, granted_scopes = $3, warnings = $4, status = 'ready', last_error = NULL, updated_at = $5 WHERE id = $1",
            p![id, account, json(&granted), json(&warnings), now()],
        )
        .map(drop)
    }

    /// `column` is one of the store's own (never input).
    pub(in crate::vault::store) fn set_connection_text(&self, id: &str, column: &'static str, value: Option<String>) -> Res<()> {
        let sql: &'static str = match column {
            "oauth" => "UPDATE connections SET oauth = $2, updated_at = $3 WHERE id = $1",
            "granted_scopes" => "UPDATE connections SET granted_scopes = $2, updated_at = $3 WHERE id = $1",
            "policy" => "UPDATE connections SET policy = $2, updated_at = $3 WHERE id = $1",
            "scopes" => "UPDATE connections SET scopes = $2, updated_at = $3 WHERE id = $1",
            other => return Err(format!("database error: no connection column `{other}`")),
        };
        self.exec(sql, p![id, value, now()]).map(drop)
    }

    pub(in crate::vault::store) fn set_plugin(&self, id: &str, digest: &str, api_key_header: Option<&str>) -> Res<()> {
        self.exec(
            "UPDATE connections SET plugin_digest = $2, api_key_header = $3, updated_at = $4 WHERE id = $1",
            p![id, digest, api_key_header, now()],
        )
        .map(drop)
    }

    pub(in crate::vault::store) fn set_status(&self, id: &str, status: Status, last_error: Option<&str>) -> Res<()> {
        self.exec(
            "UPDATE connections SET status = $2, last_error = $3, updated_at = $4 WHERE id = $1",
            p![id, status.as_str(), last_error, now()],
        )
        .map(drop)
    }

    pub(in crate::vault::store) fn rename_connection(&self, id: &str, name: &str) -> Res<u64> {
        let (id, name) = (id.to_string(), name.to_string());
        self.run(move |c| {
            Box::pin(async move {
                c.execute("UPDATE connections SET name = $2, updated_at = $3 WHERE id = $1", &[&id, &name, &now()]).await.map_err(|e| {
                    if is_unique_violation(&e) {
                        format!("a connection named `{name}` already exists; choose another name")
                    } else {
                        pg_err(e)
                    }
                })
            })
        })
    }

    pub(in crate::vault::store) fn delete_connection(&self, id: &str) -> Res<bool> {
        let id = id.to_string();
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.q()?;
                for table in ["secrets", "state", "tool_cache", "pins", "tool_pins", "tool_reviews", "tool_approvals"] {
                    tx.execute(&format!("DELETE FROM {table} WHERE connection_id = $1"), &[&id]).await.q()?;
                }
                if let Some(row) = tx.query_opt("SELECT name FROM connections WHERE id = $1", &[&id]).await.q()? {
                    let name: String = col(&row, 0)?;
                    tx.execute("DELETE FROM continuations WHERE connection = $1", &[&name]).await.q()?;
                }
                tx.execute("DELETE FROM rate_budgets WHERE scope = $1", &[&format!("key:{id}")]).await.q()?;
                let n = tx.execute("DELETE FROM connections WHERE id = $1", &[&id]).await.q()?;
                tx.commit().await.q()?;
                Ok(n > 0)
            })
        })
    }

    // ---- dashboard pins ----

    pub(in crate::vault::store) fn insert_pin(&self, pin: &PinRecord) -> Res<()> {
        self.exec(
            "INSERT INTO pins (id, connection_id, title, kind, target, arguments, chart, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            p![&pin.id, &pin.connection_id, &pin.title, &pin.kind, &pin.target, &pin.arguments, &pin.chart, if pin.created_at == 0 { now() } else { pin.created_at }],
        )
        .map(drop)
    }

    pub(in crate::vault::store) fn pins(&self) -> Res<Vec<PinRecord>> {
        self.rows("SELECT id, connection_id, title, kind, target, arguments, chart, created_at FROM pins ORDER BY created_at, seq", p![])?
            .iter()
            .map(|r| {
                Ok(PinRecord {
                    id: col(r, 0)?,
                    connection_id: col(r, 1)?,
                    title: col(r, 2)?,
                    kind: col(r, 3)?,
                    target: col(r, 4)?,
                    arguments: col(r, 5)?,
                    chart: col(r, 6)?,
                    created_at: col(r, 7)?,
                })
            })
            .collect()
    }

    pub(in crate::vault::store) fn delete_pin(&self, id: &str) -> Res<bool> {
        Ok(self.exec("DELETE FROM pins WHERE id = $1", p![id])? > 0)
    }

    // ---- state and listings ----

    pub(in crate::vault::store) fn state(&self, connection_id: &str, key: &str) -> Res<Option<String>> {
        single(self.row("SELECT value FROM state WHERE connection_id = $1 AND key = $2", p![connection_id, key])?, |r| col(r, 0))
    }

    pub(in crate::vault::store) fn state_key_count(&self, connection_id: &str) -> Res<usize> {
        count(self.row("SELECT COUNT(*) FROM state WHERE connection_id = $1", p![connection_id])?)
    }

    pub(in crate::vault::store) fn set_state(&self, connection_id: &str, key: &str, value: Option<&str>) -> Res<()> {
        match value {
            Some(v) => self.exec(
                "INSERT INTO state (connection_id, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (connection_id, key) DO UPDATE SET value = excluded.value",
                p![connection_id, key, v],
            ),
            None => self.exec("DELETE FROM state WHERE connection_id = $1 AND key = $2", p![connection_id, key]),
        }
        .map(drop)
    }

    pub(in crate::vault::store) fn shared_state(&self, connector_id: &str, key: &str) -> Res<Option<String>> {
        single(self.row("SELECT value FROM shared_state WHERE connector_id = $1 AND key = $2", p![connector_id, key])?, |r| col(r, 0))
    }

    pub(in crate::vault::store) fn shared_state_key_count(&self, connector_id: &str) -> Res<usize> {
        count(self.row("SELECT COUNT(*) FROM shared_state WHERE connector_id = $1", p![connector_id])?)
    }

    pub(in crate::vault::store) fn set_shared_state(&self, connector_id: &str, key: &str, value: Option<&str>) -> Res<()> {
        match value {
            Some(v) => self.exec(
                "INSERT INTO shared_state (connector_id, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (connector_id, key) DO UPDATE SET value = excluded.value",
                p![connector_id, key, v],
            ),
            None => self.exec("DELETE FROM shared_state WHERE connector_id = $1 AND key = $2", p![connector_id, key]),
        }
        .map(drop)
    }

    pub(in crate::vault::store) fn tool_cache(&self, connection_id: &str) -> Res<Option<(i64, String)>> {
        single(self.row("SELECT listed_at, listing FROM tool_cache WHERE connection_id = $1", p![connection_id])?, |r| Ok((col(r, 0)?, col(r, 1)?)))
    }

    pub(in crate::vault::store) fn listed_tool(&self, connection_id: &str, tool: &str) -> Res<Option<ListedTool>> {
        // The listing is JSON text written by the service, read with PostgreSQL's JSON functions so a
        // call does not parse it here; a listing they refuse (jsonb has no `\u0000`, which a vendor may
        // put in a description) is read here instead.
        match self.listed_tool_in_sql(connection_id, tool) {
            Ok(found) => Ok(found),
            Err(_) => self.tool_cache(connection_id).map(|cached| {
                cached.map(|(listed_at, listing)| {
                    let v: serde_json::Value = serde_json::from_str(&listing).unwrap_or_default();
                    ListedTool {
                        offered: v["tools"].as_array().is_some_and(|t| t.iter().any(|t| t["name"].as_str() == Some(tool))),
                        listed_at,
                        ttl_ms: v["ttl_ms"].as_u64(),
                        filtered_by: v["filtered_by"].as_str().map(str::to_string),
                    }
                })
            }),
        }
    }

    fn listed_tool_in_sql(&self, connection_id: &str, tool: &str) -> Res<Option<ListedTool>> {
        single(
            self.row(
                "SELECT EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(l -> 'tools') = 'array' THEN l -> 'tools' ELSE '[]'::jsonb END) t
                                WHERE t ->> 'name' = $2),
                        listed_at,
                        CASE WHEN jsonb_typeof(l -> 'ttl_ms') = 'number' THEN (l ->> 'ttl_ms')::numeric::bigint END,
                        l ->> 'filtered_by'
                 FROM (SELECT listing::jsonb AS l, listed_at FROM tool_cache WHERE connection_id = $1) c",
                p![connection_id, tool],
            )?,
            |r| {
                Ok(ListedTool {
                    offered: col(r, 0)?,
                    listed_at: col(r, 1)?,
                    ttl_ms: col::<Option<i64>>(r, 2)?.and_then(|t| u64::try_from(t).ok()),
                    filtered_by: col(r, 3)?,
                })
            },
        )
    }

    pub(in crate::vault::store) fn blocked_tools(&self, connection_id: &str) -> Res<Option<String>> {
        single(self.row("SELECT blocked FROM tool_cache WHERE connection_id = $1", p![connection_id])?, |r| col(r, 0))
    }

    pub(in crate::vault::store) fn set_tool_cache(&self, connection_id: &str, listing: &str, blocked: &str) -> Res<()> {
        self.exec(
            "INSERT INTO tool_cache (connection_id, listed_at, listing, blocked) VALUES ($1, $2, $3, $4)
             ON CONFLICT (connection_id) DO UPDATE SET listed_at = excluded.listed_at, listing = excluded.listing, blocked = excluded.blocked",
            p![connection_id, now(), listing, blocked],
        )
        .map(drop)
    }

    // ---- secrets ----

    pub(in crate::vault::store) fn secret_row(&self, connection_id: &str, name: &str) -> Res<Option<SecretRow>> {
        single(
            self.row(
                "SELECT name, format, kind, placeholder, binding, key_id, nonce, ciphertext FROM secrets WHERE connection_id = $1 AND name = $2",
                p![connection_id, name],
            )?,
            secret_row,
        )
    }

    pub(in crate::vault::store) fn secret_row_by_placeholder(&self, connection_id: &str, placeholder: &Placeholder) -> Res<Option<SecretRow>> {
        single(
            self.row(
                "SELECT name, format, kind, placeholder, binding, key_id, nonce, ciphertext FROM secrets WHERE connection_id = $1 AND placeholder = $2",
                p![connection_id, placeholder.as_str()],
            )?,
            secret_row,
        )
    }

    pub(in crate::vault::store) fn secret_rows(&self, connection_id: &str) -> Res<Vec<SecretRow>> {
        self.rows(
            "SELECT name, format, kind, placeholder, binding, key_id, nonce, ciphertext FROM secrets WHERE connection_id = $1 ORDER BY name COLLATE \"C\"",
            p![connection_id],
        )?
        .iter()
        .map(secret_row)
        .collect()
    }

    pub(in crate::vault::store) fn secret_summaries(&self, connection_id: &str) -> Res<Vec<SecretSummary>> {
        self.rows("SELECT name, format, kind, binding FROM secrets WHERE connection_id = $1 ORDER BY name COLLATE \"C\"", p![connection_id])?
            .iter()
            .map(|r| {
                let format: i64 = col(r, 1)?;
                let kind: Option<String> = col(r, 2)?;
                let binding: Option<String> = col(r, 3)?;
                Ok(SecretSummary {
                    name: col(r, 0)?,
                    kind: kind.as_deref().and_then(crate::vault::credentials::Kind::parse),
                    binding: binding.map(|b| from_json(&b)).unwrap_or_default(),
                    legacy: format < 2,
                })
            })
            .collect()
    }

    pub(in crate::vault::store) fn secret_names(&self, connection_id: &str) -> Res<Vec<String>> {
        self.rows("SELECT name FROM secrets WHERE connection_id = $1 ORDER BY name COLLATE \"C\"", p![connection_id])?.iter().map(|r| col(r, 0)).collect()
    }

    /// Rows already sealed by the caller: `(name, Some((kind, placeholder, binding, sealed)))` to set, `None` to delete.
    pub(in crate::vault::store) fn write_secrets(&self, connection_id: &str, rows: Vec<SealedChange>) -> Res<()> {
        let cid = connection_id.to_string();
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.q()?;
                for (name, row) in rows {
                    let done = match row {
                        Some(SealedWrite { kind, placeholder, binding, sealed: s }) => {
                            tx.execute(
                                "INSERT INTO secrets (connection_id, name, key_id, nonce, ciphertext, updated_at, format, kind, placeholder, binding)
                                 VALUES ($1, $2, $3, $4, $5, $6, 2, $7, $8, $9)
                                 ON CONFLICT (connection_id, name) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce,
                                    ciphertext = excluded.ciphertext, updated_at = excluded.updated_at, format = 2, kind = excluded.kind,
                                    placeholder = excluded.placeholder, binding = excluded.binding",
                                &[&cid, &name, &s.key_id, &s.nonce, &s.ciphertext, &now(), &kind, &placeholder, &binding],
                            )
                            .await
                        }
                        None => tx.execute("DELETE FROM secrets WHERE connection_id = $1 AND name = $2", &[&cid, &name]).await,
                    };
                    done.map_err(|e| if is_unique_violation(&e) { "a credential may be stored under one name only".to_string() } else { pg_err(e) })?;
                }
                tx.commit().await.q()
            })
        })
    }

    pub(in crate::vault::store) fn delete_secrets(&self, connection_id: &str) -> Res<()> {
        self.exec("DELETE FROM secrets WHERE connection_id = $1", p![connection_id]).map(drop)
    }

    /// Re-seal every secret under the current key, in one transaction that locks the rows it reads.
    pub(in crate::vault::store) fn reencrypt_all(&self, keys: std::sync::Arc<MasterKeys>) -> Res<usize> {
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.q()?;
                let rows = tx
                    .query(
                        "SELECT connection_id, name, format, kind, placeholder, binding, key_id, nonce, ciphertext FROM secrets FOR UPDATE",
                        &[],
                    )
                    .await
                    .q()?;
                let mut n = 0;
                for r in &rows {
                    let cid: String = col(r, 0)?;
                    let row = SecretRow {
                        name: col(r, 1)?,
                        format: col(r, 2)?,
                        kind: col(r, 3)?,
                        placeholder: col(r, 4)?,
                        binding: col(r, 5)?,
                        sealed: Sealed { key_id: col(r, 6)?, nonce: col(r, 7)?, ciphertext: col(r, 8)? },
                    };
                    let meta = row.meta();
                    let plain = keys.open_with(&cid, &row.name, meta.as_deref(), &row.sealed)?;
                    let fresh = keys.seal_with(&cid, &row.name, meta.as_deref(), &plain)?;
                    tx.execute(
                        "UPDATE secrets SET key_id = $3, nonce = $4, ciphertext = $5 WHERE connection_id = $1 AND name = $2",
                        &[&cid, &row.name, &fresh.key_id, &fresh.nonce, &fresh.ciphertext],
                    )
                    .await
                    .q()?;
                    n += 1;
                }
                tx.commit().await.q()?;
                Ok(n)
            })
        })
    }

    pub(in crate::vault::store) fn key_ids_in_use(&self) -> Res<Vec<String>> {
        self.rows("SELECT DISTINCT key_id COLLATE \"C\" AS key_id FROM secrets ORDER BY 1", p![])?.iter().map(|r| col(r, 0)).collect()
    }

    // ---- generation ----

    pub(in crate::vault::store) fn generation(&self) -> Res<i64> {
        self.row("SELECT n FROM generation WHERE id = 1", p![])?.as_ref().map(|r| col(r, 0)).unwrap_or(Ok(0))
    }

    // ---- tool pins and reviews ----

    pub(in crate::vault::store) fn tool_pins(&self, connection_id: &str) -> Res<Vec<Pin>> {
        self.rows("SELECT tool, digest, definition FROM tool_pins WHERE connection_id = $1 ORDER BY tool COLLATE \"C\"", p![connection_id])?
            .iter()
            .map(|r| Ok(Pin { tool: col(r, 0)?, digest: col(r, 1)?, definition: col(r, 2)? }))
            .collect()
    }

    pub(in crate::vault::store) fn tools_pinned(&self, connection_id: &str) -> Res<bool> {
        let at = single(self.row("SELECT tools_pinned_at FROM connections WHERE id = $1", p![connection_id])?, |r| col::<Option<i64>>(r, 0))?;
        Ok(matches!(at, Some(Some(_))))
    }

    pub(in crate::vault::store) fn pin_tools(&self, connection_id: &str, pins: &[Pin], by: &str, how: &str, first: bool) -> Res<()> {
        let (cid, pins, by, how) = (connection_id.to_string(), pins.to_vec(), by.to_string(), how.to_string());
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.q()?;
                let at = now();
                for p in &pins {
                    tx.execute(
                        "INSERT INTO tool_pins (connection_id, tool, digest, definition, approved_at, approved_by) VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (connection_id, tool) DO UPDATE SET digest = excluded.digest, definition = excluded.definition,
                         approved_at = excluded.approved_at, approved_by = excluded.approved_by",
                        &[&cid, &p.tool, &p.digest, &p.definition, &at, &by],
                    )
                    .await
                    .q()?;
                    tx.execute(
                        "INSERT INTO tool_approvals (connection_id, tool, digest, approved_at, approved_by, how) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&cid, &p.tool, &p.digest, &at, &by, &how],
                    )
                    .await
                    .q()?;
                    tx.execute("DELETE FROM tool_reviews WHERE connection_id = $1 AND tool = $2", &[&cid, &p.tool]).await.q()?;
                }
                if first {
                    tx.execute("UPDATE connections SET tools_pinned_at = $2 WHERE id = $1 AND tools_pinned_at IS NULL", &[&cid, &at]).await.q()?;
                }
                tx.execute("DELETE FROM tool_cache WHERE connection_id = $1", &[&cid]).await.q()?;
                tx.commit().await.q()
            })
        })
    }

    pub(in crate::vault::store) fn review_digests(&self, connection_id: &str) -> Res<Vec<(String, String)>> {
        self.rows("SELECT tool, digest FROM tool_reviews WHERE connection_id = $1", p![connection_id])?
            .iter()
            .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
            .collect()
    }

    pub(in crate::vault::store) fn replace_reviews(&self, connection_id: &str, reviews: Vec<PendingReview>) -> Res<()> {
        let cid = connection_id.to_string();
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.q()?;
                tx.execute("DELETE FROM tool_reviews WHERE connection_id = $1", &[&cid]).await.q()?;
                for r in &reviews {
                    tx.execute(
                        "INSERT INTO tool_reviews (connection_id, tool, kind, digest, definition, detail, seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[&cid, &r.tool, &r.kind, &r.digest, &r.definition, &r.detail, &r.seen_at],
                    )
                    .await
                    .q()?;
                }
                tx.commit().await.q()
            })
        })
    }

    pub(in crate::vault::store) fn pending_reviews(&self, connection_id: &str) -> Res<Vec<PendingReview>> {
        self.rows(
            "SELECT tool, kind, digest, definition, detail, seen_at FROM tool_reviews WHERE connection_id = $1 ORDER BY tool COLLATE \"C\"",
            p![connection_id],
        )?
        .iter()
        .map(|r| {
            Ok(PendingReview { tool: col(r, 0)?, kind: col(r, 1)?, digest: col(r, 2)?, definition: col(r, 3)?, detail: col(r, 4)?, seen_at: col(r, 5)? })
        })
        .collect()
    }

    pub(in crate::vault::store) fn pending_review_count(&self, connection_id: &str) -> Res<usize> {
        count(self.row("SELECT COUNT(*) FROM tool_reviews WHERE connection_id = $1", p![connection_id])?)
    }

    pub(in crate::vault::store) fn approvals(&self, connection_id: &str) -> Res<Vec<Approval>> {
        self.rows(
            "SELECT tool, digest, approved_at, approved_by, how FROM tool_approvals WHERE connection_id = $1 ORDER BY seq",
            p![connection_id],
        )?
        .iter()
        .map(|r| Ok(Approval { tool: col(r, 0)?, digest: col(r, 1)?, approved_at: col(r, 2)?, approved_by: col(r, 3)?, how: col(r, 4)? }))
        .collect()
    }

    // ---- engine tokens ----

    pub(in crate::vault::store) fn insert_engine_token(&self, name: &str, sha256_hex: &str) -> Res<()> {
        let (name, hash) = (name.to_string(), sha256_hex.to_string());
        self.run(move |c| {
            Box::pin(async move {
                c.execute("INSERT INTO engine_tokens (name, sha256, created_at) VALUES ($1, $2, $3)", &[&name, &hash, &now()])
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            format!("an engine token named `{name}` already exists (names are never reused); choose another name")
                        } else {
                            pg_err(e)
                        }
                    })
                    .map(drop)
            })
        })
    }

    pub(in crate::vault::store) fn engine_token_by_hash(&self, sha256_hex: &str) -> Res<Option<String>> {
        single(self.row("SELECT name FROM engine_tokens WHERE sha256 = $1 AND revoked_at IS NULL", p![sha256_hex])?, |r| col(r, 0))
    }

    pub(in crate::vault::store) fn engine_tokens(&self) -> Res<Vec<EngineTokenRecord>> {
        self.rows("SELECT name, created_at, revoked_at FROM engine_tokens ORDER BY created_at, name COLLATE \"C\"", p![])?
            .iter()
            .map(|r| Ok(EngineTokenRecord { name: col(r, 0)?, created_at: col(r, 1)?, revoked_at: col(r, 2)? }))
            .collect()
    }

    pub(in crate::vault::store) fn active_engine_tokens(&self) -> Res<usize> {
        count(self.row("SELECT COUNT(*) FROM engine_tokens WHERE revoked_at IS NULL", p![])?)
    }

    pub(in crate::vault::store) fn engine_tokens_made(&self) -> Res<usize> {
        count(self.row("SELECT COUNT(*) FROM engine_tokens", p![])?)
    }

    pub(in crate::vault::store) fn revoke_engine_token(&self, name: &str) -> Res<bool> {
        Ok(self.exec("UPDATE engine_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL", p![name, now()])? > 0)
    }

    // ---- audit trail ----

    pub(in crate::vault::store) fn record_audit(&self, e: &AuditEntry) -> Res<()> {
        self.exec(
            "INSERT INTO audit (at_ms, engine, connection, tool, arguments_sha256, bytes, duration_ms, outcome, replica)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            p![e.at_ms, &e.engine, &e.connection, &e.tool, &e.arguments_sha256, e.bytes as i64, e.duration_ms as i64, &e.outcome, &e.replica],
        )
        .map(drop)
    }

    pub(in crate::vault::store) fn audit(&self, q: &AuditQuery) -> Res<Vec<AuditEntry>> {
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        self.rows(
            "SELECT at_ms, engine, connection, tool, arguments_sha256, bytes, duration_ms, outcome, replica FROM (
                 SELECT * FROM audit WHERE ($1::text IS NULL OR connection = $1) AND ($2::bigint IS NULL OR at_ms >= $2)
                 ORDER BY at_ms DESC, id DESC LIMIT $3
             ) recent ORDER BY at_ms, id",
            p![&q.connection, q.since_ms, limit],
        )?
        .iter()
        .map(|r| {
            Ok(AuditEntry {
                at_ms: col(r, 0)?,
                engine: col(r, 1)?,
                connection: col(r, 2)?,
                tool: col(r, 3)?,
                arguments_sha256: col(r, 4)?,
                bytes: col::<i64>(r, 5)?.max(0) as u64,
                duration_ms: col::<i64>(r, 6)?.max(0) as u64,
                outcome: col(r, 7)?,
                replica: col(r, 8)?,
            })
        })
        .collect()
    }

    // ---- continuations ----

    pub(in crate::vault::store) fn put_continuation(
        &self,
        cursor_sha256: &str,
        expires_at_ms: i64,
        now_ms: i64,
        connection: &str,
        source: &str,
        rows: &SealedRows,
        max_kept: i64,
    ) -> Res<()> {
        let (cursor, connection, source) = (cursor_sha256.to_string(), connection.to_string(), source.to_string());
        let (key_id, nonce, ciphertext) = (rows.key_id.clone(), rows.nonce.clone(), rows.ciphertext.clone());
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.q()?;
                tx.execute("DELETE FROM continuations WHERE expires_at_ms <= $1", &[&now_ms]).await.q()?;
                tx.execute(
                    "DELETE FROM continuations WHERE cursor_sha256 IN (
                         SELECT cursor_sha256 FROM continuations ORDER BY expires_at_ms DESC OFFSET $1)",
                    &[&(max_kept - 1)],
                )
                .await
                .q()?;
                tx.execute(
                    "INSERT INTO continuations (cursor_sha256, expires_at_ms, connection, source, key_id, nonce, ciphertext) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&cursor, &expires_at_ms, &connection, &source, &key_id, &nonce, &ciphertext],
                )
                .await
                .q()?;
                tx.commit().await.q()
            })
        })
    }

    pub(in crate::vault::store) fn take_continuation(&self, cursor_sha256: &str, now_ms: i64) -> Res<Option<SealedRows>> {
        let cursor = cursor_sha256.to_string();
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.q()?;
                // Deleted as it is read: two replicas handed the same cursor cannot both continue it.
                let row = tx
                    .query_opt(
                        "DELETE FROM continuations WHERE cursor_sha256 = $1 AND expires_at_ms > $2 RETURNING key_id, nonce, ciphertext",
                        &[&cursor, &now_ms],
                    )
                    .await
                    .q()?;
                tx.execute("DELETE FROM continuations WHERE cursor_sha256 = $1 OR expires_at_ms <= $2", &[&cursor, &now_ms]).await.q()?;
                tx.commit().await.q()?;
                single(row, |r| Ok(SealedRows { key_id: col(r, 0)?, nonce: col(r, 1)?, ciphertext: col(r, 2)? }))
            })
        })
    }

    pub(in crate::vault::store) fn continuation_source(&self, cursor_sha256: &str, now_ms: i64) -> Res<Option<String>> {
        single(
            self.row("SELECT source FROM continuations WHERE cursor_sha256 = $1 AND expires_at_ms > $2", p![cursor_sha256, now_ms])?,
            |r| col(r, 0),
        )
    }

    // ---- rate budgets ----

    /// Read, change and write the budgets of `scopes` in one transaction that holds a
    /// transaction-scoped advisory lock per scope (taken in one order, so two takes never deadlock).
    fn with_budgets<T, F>(&self, scopes: &[(String, i64)], f: F) -> Res<T>
    where
        T: Send + 'static,
        F: FnOnce(&[(String, i64)], Vec<Option<Budget>>) -> (T, Vec<(usize, Budget)>) + Send + 'static,
    {
        let scopes = scopes.to_vec();
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.q()?;
                let mut order: Vec<&str> = scopes.iter().map(|(s, _)| s.as_str()).collect();
                order.sort_unstable();
                order.dedup();
                let lock = tx.prepare_cached("SELECT pg_advisory_xact_lock(hashtextextended('claribi/rate/' || $1, 0))").await.q()?;
                for s in &order {
                    tx.execute(&lock, &[s]).await.q()?;
                }
                let read = tx.prepare_cached("SELECT lim, remaining, reset_at_ms, window_ms, learned FROM rate_budgets WHERE scope = $1").await.q()?;
                let mut current = Vec::with_capacity(scopes.len());
                for (s, _) in &scopes {
                    let row = tx.query_opt(&read, &[s]).await.q()?;
                    current.push(single(row, |r| {
                        Ok(Budget { limit: col(r, 0)?, remaining: col(r, 1)?, reset_at_ms: col(r, 2)?, window_ms: col(r, 3)?, learned: col::<i64>(r, 4)? != 0 })
                    })?);
                }
                let (out, writes) = f(&scopes, current);
                if !writes.is_empty() {
                    let write = tx
                        .prepare_cached(
                            "INSERT INTO rate_budgets (scope, lim, remaining, reset_at_ms, window_ms, learned) VALUES ($1, $2, $3, $4, $5, $6)
                             ON CONFLICT (scope) DO UPDATE SET lim = excluded.lim, remaining = excluded.remaining, reset_at_ms = excluded.reset_at_ms,
                                 window_ms = excluded.window_ms, learned = excluded.learned",
                        )
                        .await
                        .q()?;
                    for (i, b) in writes {
                        tx.execute(&write, &[&scopes[i].0, &b.limit, &b.remaining, &b.reset_at_ms, &b.window_ms, &(b.learned as i64)]).await.q()?;
                    }
                }
                tx.commit().await.q()?;
                Ok(out)
            })
        })
    }

    pub(in crate::vault::store) fn take_rate_budget(&self, scopes: &[(String, i64)], now_ms: i64) -> Res<Take> {
        self.with_budgets(scopes, move |_, current| {
            let mut after = Vec::new();
            let mut wait: Option<(i64, bool)> = None;
            for (i, b) in current.into_iter().enumerate() {
                match rate_budget::take(b, now_ms) {
                    Take::Go(b) => after.push((i, b)),
                    Take::Wait { until_ms, learning } => {
                        let (until, any) = wait.unwrap_or((0, false));
                        wait = Some((until.max(until_ms), any || learning));
                    }
                }
            }
            if let Some((until_ms, learning)) = wait {
                return (Take::Wait { until_ms, learning }, Vec::new());
            }
            let first = after.first().map(|(_, b)| Take::Go(*b)).unwrap_or(Take::Go(Budget { limit: 0, remaining: 0, reset_at_ms: 0, window_ms: 0, learned: true }));
            (first, after)
        })
    }

    pub(in crate::vault::store) fn learn_rate_budget(&self, scopes: &[(String, i64)], seen: Observed, now_ms: i64) -> Res<()> {
        self.with_budgets(scopes, move |scopes, current| {
            let writes = current
                .into_iter()
                .enumerate()
                .map(|(i, b)| (i, rate_budget::learn(b, seen.scaled(scopes[i].1, b), now_ms)))
                .collect();
            ((), writes)
        })
    }

    pub(in crate::vault::store) fn unmetered_rate_budget(&self, scopes: &[(String, i64)], now_ms: i64) -> Res<()> {
        self.with_budgets(scopes, move |_, current| {
            let writes = current.into_iter().enumerate().filter_map(|(i, b)| rate_budget::unmetered(b, now_ms).map(|o| (i, o))).collect();
            ((), writes)
        })
    }

    pub(in crate::vault::store) fn rate_budget(&self, scope: &str) -> Res<Option<Budget>> {
        single(self.row("SELECT lim, remaining, reset_at_ms, window_ms, learned FROM rate_budgets WHERE scope = $1", p![scope])?, |r| {
            Ok(Budget { limit: col(r, 0)?, remaining: col(r, 1)?, reset_at_ms: col(r, 2)?, window_ms: col(r, 3)?, learned: col::<i64>(r, 4)? != 0 })
        })
    }

    // ---- components ----

    pub(in crate::vault::store) fn put_component(&self, digest: &str, bytes: &[u8]) -> Res<()> {
        self.exec(
            "INSERT INTO components (digest, bytes, stored_at) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO UPDATE SET bytes = excluded.bytes, stored_at = excluded.stored_at WHERE components.bytes <> excluded.bytes",
            p![digest, bytes, now()],
        )
        .map(drop)
    }

    pub(in crate::vault::store) fn component(&self, digest: &str) -> Res<Option<Vec<u8>>> {
        single(self.row("SELECT bytes FROM components WHERE digest = $1", p![digest])?, |r| col(r, 0))
    }

    // ---- the fleet's master keys ----

    /// Join the fleet: in one transaction holding the fleet-key row (so a rotation and a join never
    /// interleave), record `mine` as the fleet's key if none is, read the fleet's key, and — when this
    /// process holds it (`held`) — register `replica` as sealing with it. Returns the fleet's key.
    pub(in crate::vault::store) fn join(&self, replica: &str, mine: &str, held: Vec<String>) -> Res<String> {
        let (replica, mine) = (replica.to_string(), mine.to_string());
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.q()?;
                tx.execute("INSERT INTO meta (key, value) VALUES ('sealing_key_id', $1) ON CONFLICT (key) DO NOTHING", &[&mine]).await.q()?;
                let fleet: String = col(&tx.query_one("SELECT value FROM meta WHERE key = 'sealing_key_id' FOR UPDATE", &[]).await.q()?, 0)?;
                if held.contains(&fleet) {
                    tx.execute(
                        &format!(
                            "INSERT INTO replicas (id, sealing_key_id, key_ids, started_at_ms, seen_at_ms) VALUES ($1, $2, $3, {DB_NOW_MS}, {DB_NOW_MS})
                             ON CONFLICT (id) DO UPDATE SET sealing_key_id = excluded.sealing_key_id, key_ids = excluded.key_ids, seen_at_ms = excluded.seen_at_ms"
                        ),
                        &[&replica, &fleet, &held.join(",")],
                    )
                    .await
                    .q()?;
                }
                tx.commit().await.q()?;
                Ok(fleet)
            })
        })
    }

    /// Move the fleet to key `new`, in one transaction holding the fleet-key row: refused when a
    /// replica seen in the last `gone_after_ms` (by the database's clock) does not hold it. Returns
    /// the key the fleet sealed with before.
    pub(in crate::vault::store) fn move_fleet_key(&self, new: &str, gone_after_ms: i64) -> Res<String> {
        let new = new.to_string();
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.q()?;
                tx.execute("INSERT INTO meta (key, value) VALUES ('sealing_key_id', $1) ON CONFLICT (key) DO NOTHING", &[&new]).await.q()?;
                let before: String = col(&tx.query_one("SELECT value FROM meta WHERE key = 'sealing_key_id' FOR UPDATE", &[]).await.q()?, 0)?;
                let live = tx
                    .query(&format!("SELECT id, key_ids FROM replicas WHERE seen_at_ms >= {DB_NOW_MS} - $1 ORDER BY id"), &[&gone_after_ms])
                    .await
                    .q()?;
                for r in &live {
                    let (id, ids): (String, String) = (col(r, 0)?, col(r, 1)?);
                    if !ids.split(',').any(|k| k == new) {
                        return Err(format!(
                            "replica `{id}` does not hold master key {new}; add it to that replica's CLARIBI_MASTER_KEY (the old keys after it), restart it, then run rotate-key again"
                        ));
                    }
                }
                tx.execute("UPDATE meta SET value = $1 WHERE key = 'sealing_key_id'", &[&new]).await.q()?;
                tx.commit().await.q()?;
                Ok(before)
            })
        })
    }

    /// The replicas seen in the last `gone_after_ms` that do not seal with `key` yet.
    pub(in crate::vault::store) fn replicas_not_sealing_with(&self, key: &str, gone_after_ms: i64) -> Res<Vec<(String, String)>> {
        self.rows(
            "SELECT id, sealing_key_id FROM replicas
             WHERE seen_at_ms >= (extract(epoch from clock_timestamp()) * 1000)::bigint - $1 AND sealing_key_id <> $2 ORDER BY id",
            p![gone_after_ms, key],
        )?
        .iter()
        .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
        .collect()
    }

    pub(super) fn forget_replica(&self, replica: &str) -> Res<()> {
        self.exec("DELETE FROM replicas WHERE id = $1", p![replica]).map(drop)
    }
}
