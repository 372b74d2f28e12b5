//! Engine-ready results: what the AI engine reads back from a tool call.
//!
//! A vendor answers with JSON shaped its own way. For an engine that has to chart or compare, the host
//! adds a **table view** to every list-like result — the rows, typed columns, and the pagination state —
//! and, when a result is too large for an engine's context, replaces it by a **summary** (row count,
//! columns, the first rows that fit, and a cursor for `claribi__next_rows`) instead of cutting it
//! mid-JSON.
//!
//! ```
//! use claribi_host::results::table_view;
//! use serde_json::json;
//! let v = json!({"data": [{"id": "oppo_1", "value": 5000, "won": false, "date_won": null},
//!                         {"id": "oppo_2", "value": 7500.5, "won": true, "date_won": "2026-11-02"}],
//!                "has_more": true, "cursor": "c2", "total_results": 120});
//! let t = table_view(&v).unwrap();
//! assert_eq!(t.columns.iter().map(|c| c.r#type.as_str()).collect::<Vec<_>>(), ["string", "number", "boolean", "date"]);
//! assert_eq!(t.pagination.cursor.as_deref(), Some("c2"));
//! ```

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Array fields that hold the rows of a list-like result, most likely first.
const ROW_FIELDS: &[&str] = &["data", "rows", "items", "results", "records", "tools", "users", "pipelines"];
const MAX_COLUMNS: usize = 40;

/// A column of a table view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Dotted path inside a row, e.g. `value` or `group.lead.source`.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean`, `date`, `datetime` or `null` (never seen a value).
    pub r#type: String,
}

/// Where the vendor's pagination stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pagination {
    /// More rows exist beyond this page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
    /// The vendor's cursor for the next page (pass it back as the tool's `cursor` argument).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Total matching rows, when the vendor says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_results: Option<u64>,
}

/// A normalised view of a list-like result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// The JSON field the rows came from (`data`, …; empty for a top-level array).
    pub source: String,
    /// Typed columns.
    pub columns: Vec<Column>,
    /// One array per row, values in column order (nested objects flattened with dots; arrays
    /// replaced by their length).
    pub rows: Vec<Vec<Value>>,
    /// Rows in this page.
    pub row_count: usize,
    /// The vendor's pagination state.
    pub pagination: Pagination,
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn is_datetime(s: &str) -> bool {
    s.len() >= 19 && is_date(&s[..10]) && matches!(s.as_bytes()[10], b'T' | b' ') && s.as_bytes()[13] == b':'
}

fn kind(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(s) if is_date(s) => "date",
        Value::String(s) if is_datetime(s) => "datetime",
        _ => "string",
    })
}

fn merge_kind(a: &str, b: &str) -> &'static str {
    match (a, b) {
        _ if a == b => match a {
            "boolean" => "boolean",
            "integer" => "integer",
            "number" => "number",
            "date" => "date",
            "datetime" => "datetime",
            "null" => "null",
            _ => "string",
        },
        ("null", x) | (x, "null") => merge_kind(x, x),
        ("integer", "number") | ("number", "integer") => "number",
        ("date", "datetime") | ("datetime", "date") => "datetime",
        _ => "string",
    }
}

/// Flatten one row: scalars as they are, nested objects with dotted names (two levels), arrays as
/// their length.
fn flatten(prefix: &str, v: &Value, depth: usize, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) if depth < 3 => {
            for (k, x) in o {
                let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&name, x, depth + 1, out);
            }
        }
        Value::Object(_) => out.push((prefix.to_string(), Value::String("{…}".into()))),
        Value::Array(a) => out.push((prefix.to_string(), Value::from(a.len()))),
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// The rows of a list-like result: a top-level array of objects, or the first array-of-objects field
/// (preferring the usual names). `None` for anything else.
fn rows_of(v: &Value) -> Option<(String, &Vec<Value>)> {
    let objects = |a: &Vec<Value>| !a.is_empty() && a.iter().all(Value::is_object);
    match v {
        Value::Array(a) if objects(a) || a.is_empty() => Some((String::new(), a)),
        Value::Object(o) => {
            for f in ROW_FIELDS {
                if let Some(Value::Array(a)) = o.get(*f) {
                    if a.is_empty() || objects(a) {
                        return Some((f.to_string(), a));
                    }
                }
            }
            o.iter().find_map(|(k, x)| match x {
                Value::Array(a) if objects(a) => Some((k.clone(), a)),
                _ => None,
            })
        }
        _ => None,
    }
}

fn pagination_of(v: &Value) -> Pagination {
    let Some(o) = v.as_object() else { return Pagination::default() };
    Pagination {
        has_more: o.get("has_more").and_then(Value::as_bool),
        cursor: o.get("cursor").or_else(|| o.get("next_cursor")).and_then(Value::as_str).map(str::to_string),
        total_results: o.get("total_results").or_else(|| o.get("total")).and_then(Value::as_u64),
    }
}

/// The table view of a list-like result, or `None`.
pub fn table_view(v: &Value) -> Option<Table> {
    let (source, rows) = rows_of(v)?;
    let mut columns: Vec<Column> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut flat_rows: Vec<Vec<(String, Value)>> = Vec::with_capacity(rows.len());
    for r in rows {
        let mut flat = Vec::new();
        flatten("", r, 0, &mut flat);
        for (name, value) in &flat {
            let i = match index.get(name) {
                Some(i) => *i,
                None if columns.len() < MAX_COLUMNS => {
                    columns.push(Column { name: name.clone(), r#type: "null".into() });
                    index.insert(name.clone(), columns.len() - 1);
                    columns.len() - 1
                }
                None => continue,
            };
            if let Some(k) = kind(value) {
                columns[i].r#type = merge_kind(&columns[i].r#type, k).to_string();
            }
        }
        flat_rows.push(flat);
    }
    let rows: Vec<Vec<Value>> = flat_rows
        .into_iter()
        .map(|flat| {
            let mut row = vec![Value::Null; columns.len()];
            for (name, value) in flat {
                if let Some(i) = index.get(&name) {
                    row[*i] = value;
                }
            }
            row
        })
        .collect();
    Some(Table { source, row_count: rows.len(), columns, rows, pagination: pagination_of(v) })
}

/// What the engine receives for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineResult {
    /// `structuredContent`: the vendor's JSON object, or the summary when it was too large.
    pub structured: Value,
    /// The text content: `structured` serialized.
    pub text: String,
    /// The table view, for list-like results (within the size budget).
    pub table: Option<Value>,
    /// Whether `structured` is a summary rather than the whole result.
    pub summarized: bool,
}

/// Rows kept for `claribi__next_rows`, in memory, for a while.
pub struct Continuations {
    entries: Mutex<HashMap<String, (Instant, Vec<Column>, Vec<Vec<Value>>, Pagination)>>,
    ttl: Duration,
    max_entries: usize,
}

impl Default for Continuations {
    fn default() -> Self {
        Continuations { entries: Mutex::new(HashMap::new()), ttl: Duration::from_secs(15 * 60), max_entries: 64 }
    }
}

fn token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("rows_{}", hex::encode(b))
}

impl Continuations {
    fn put(&self, columns: Vec<Column>, rows: Vec<Vec<Value>>, pagination: Pagination) -> String {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        e.retain(|_, (t, ..)| now.duration_since(*t) < self.ttl);
        if e.len() >= self.max_entries {
            if let Some(oldest) = e.iter().min_by_key(|(_, (t, ..))| *t).map(|(k, _)| k.clone()) {
                e.remove(&oldest);
            }
        }
        let t = token();
        e.insert(t.clone(), (now, columns, rows, pagination));
        t
    }

    /// The next rows of a summarized result, within `max_bytes`; `None` if the cursor is unknown or
    /// expired.
    pub fn next(&self, cursor: &str, max_bytes: usize) -> Option<EngineResult> {
        let entry = {
            let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let (t, ..) = e.get(cursor)?;
            if t.elapsed() >= self.ttl {
                e.remove(cursor);
                return None;
            }
            e.remove(cursor)?
        };
        let (_, columns, rows, pagination) = entry;
        Some(self.page(columns, rows, pagination, max_bytes, None))
    }

    fn page(
        &self,
        columns: Vec<Column>,
        mut rows: Vec<Vec<Value>>,
        pagination: Pagination,
        max_bytes: usize,
        head: Option<Map<String, Value>>,
    ) -> EngineResult {
        let total = rows.len();
        // Take rows while they fit in about three quarters of the budget (the rest is framing).
        let budget = max_bytes * 3 / 4;
        let mut used = 0usize;
        let mut take = 0usize;
        for r in &rows {
            let n = serde_json::to_string(r).map(|s| s.len()).unwrap_or(0) + 1;
            if take > 0 && used + n > budget {
                break;
            }
            used += n;
            take += 1;
        }
        let rest: Vec<Vec<Value>> = rows.split_off(take.min(rows.len()));
        let mut summary = head.unwrap_or_default();
        summary.insert("summarized".into(), Value::Bool(true));
        summary.insert(
            "note".into(),
            Value::String(format!(
                "The result was too large to return whole: {total} rows here, the first {take} below{}.",
                if rest.is_empty() { "" } else { "; call claribi__next_rows with `continue.arguments` for more" }
            )),
        );
        summary.insert("row_count".into(), Value::from(total));
        summary.insert("columns".into(), serde_json::to_value(&columns).unwrap_or(Value::Null));
        summary.insert("first_rows".into(), Value::Array(rows.into_iter().map(Value::Array).collect()));
        summary.insert("pagination".into(), serde_json::to_value(&pagination).unwrap_or(Value::Null));
        if !rest.is_empty() {
            let remaining = rest.len();
            let cursor = self.put(columns, rest, pagination);
            summary.insert("remaining_rows".into(), Value::from(remaining));
            summary.insert(
                "continue".into(),
                serde_json::json!({"tool": "claribi__next_rows", "arguments": {"cursor": cursor}}),
            );
        }
        let structured = Value::Object(summary);
        EngineResult { text: structured.to_string(), structured, table: None, summarized: true }
    }

    /// Shape a vendor result for the engine (see the module docs). `max_bytes` bounds the text the
    /// engine receives.
    pub fn shape(&self, vendor: Value, max_bytes: usize) -> EngineResult {
        let structured = match vendor {
            Value::Object(_) => vendor,
            other => serde_json::json!({ "items": other }),
        };
        let text = structured.to_string();
        let table = table_view(&structured);
        if text.len() <= max_bytes {
            let table_json = table.map(|t| serde_json::to_value(t).unwrap_or(Value::Null));
            let with_table = table_json.as_ref().map(|t| t.to_string().len()).unwrap_or(0) + text.len();
            return EngineResult {
                text,
                structured,
                // The table roughly doubles the size; drop it rather than overflow the budget.
                table: table_json.filter(|_| with_table <= max_bytes * 2),
                summarized: false,
            };
        }
        match table {
            Some(t) => {
                let mut head = Map::new();
                head.insert("source".into(), Value::String(t.source.clone()));
                self.page(t.columns, t.rows, t.pagination, max_bytes, Some(head))
            }
            None => {
                // Not list-like: keep the top-level scalar fields and say what was left out.
                let mut head = Map::new();
                let mut omitted = vec![];
                if let Value::Object(o) = &structured {
                    for (k, v) in o {
                        match v {
                            Value::Object(_) | Value::Array(_) => omitted.push(Value::String(k.clone())),
                            Value::String(s) if s.len() > 512 => omitted.push(Value::String(k.clone())),
                            other => {
                                head.insert(k.clone(), other.clone());
                            }
                        }
                    }
                }
                head.insert("summarized".into(), Value::Bool(true));
                head.insert(
                    "note".into(),
                    Value::String(format!(
                        "The result ({} bytes) was too large to return whole and is not a list; large fields were left out.",
                        text.len()
                    )),
                );
                head.insert("omitted_fields".into(), Value::Array(omitted));
                let structured = Value::Object(head);
                EngineResult { text: structured.to_string(), structured, table: None, summarized: true }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_results_get_typed_columns_and_pagination() {
        let v = json!({"data": [
            {"id": "a", "value": 1, "confidence": 50, "close_date": "2026-01-02", "date_created": "2026-01-02T03:04:05.000000+00:00", "contacts": [1, 2]},
            {"id": "b", "value": 2.5, "confidence": null, "close_date": "2026-01-03", "date_created": "2026-01-02T03:04:05+00:00", "contacts": []}
        ], "has_more": false, "cursor": null, "total_results": 2});
        let t = table_view(&v).unwrap();
        let types: Vec<(&str, &str)> = t.columns.iter().map(|c| (c.name.as_str(), c.r#type.as_str())).collect();
        assert_eq!(
            types,
            [("id", "string"), ("value", "number"), ("confidence", "integer"), ("close_date", "date"), ("date_created", "datetime"), ("contacts", "integer")]
        );
        assert_eq!(t.rows[0][5], json!(2), "arrays become their length");
        assert_eq!(t.row_count, 2);
        assert_eq!(t.pagination, Pagination { has_more: Some(false), cursor: None, total_results: Some(2) });
    }

    #[test]
    fn nested_objects_flatten_into_dotted_columns() {
        let v = json!({"rows": [{"group": {"lead.source": "Referral"}, "values": {"count": 3}}]});
        let t = table_view(&v).unwrap();
        assert_eq!(t.source, "rows");
        assert_eq!(t.columns[0].name, "group.lead.source");
        assert_eq!(t.columns[1].name, "values.count");
        assert_eq!(t.rows[0], vec![json!("Referral"), json!(3)]);
    }

    #[test]
    fn non_list_results_have_no_table() {
        assert!(table_view(&json!({"organization": {"id": "orga_1"}})).is_none());
        assert!(table_view(&json!("text")).is_none());
    }

    #[test]
    fn small_results_pass_whole_with_their_table() {
        let c = Continuations::default();
        let v = json!({"data": [{"id": "a"}], "has_more": false});
        let r = c.shape(v.clone(), 10_000);
        assert!(!r.summarized);
        assert_eq!(r.structured, v);
        assert_eq!(serde_json::from_str::<Value>(&r.text).unwrap(), v);
        assert_eq!(r.table.unwrap()["rows"], json!([["a"]]));
    }

    #[test]
    fn large_list_results_are_summarized_and_continued_without_losing_a_row() {
        let c = Continuations::default();
        let rows: Vec<Value> = (0..500).map(|i| json!({"id": format!("oppo_{i:04}"), "value": i, "note": "x".repeat(50)})).collect();
        let v = json!({"data": rows, "has_more": true, "cursor": "vendor-next", "total_results": 900});
        let first = c.shape(v, 8_000);
        assert!(first.summarized);
        assert!(first.text.len() <= 8_000, "{} bytes", first.text.len());
        assert!(serde_json::from_str::<Value>(&first.text).is_ok(), "never cut mid-JSON");
        assert_eq!(first.structured["row_count"], 500);
        assert_eq!(first.structured["pagination"]["cursor"], "vendor-next");
        let mut seen: Vec<String> =
            first.structured["first_rows"].as_array().unwrap().iter().map(|r| r[0].as_str().unwrap().to_string()).collect();
        let mut next = first.structured["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        while let Some(cur) = next {
            let page = c.next(&cur, 8_000).expect("the cursor is valid once");
            assert!(page.text.len() <= 8_000);
            seen.extend(page.structured["first_rows"].as_array().unwrap().iter().map(|r| r[0].as_str().unwrap().to_string()));
            assert!(c.next(&cur, 8_000).is_none(), "a cursor is used up");
            next = page.structured["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        }
        let want: Vec<String> = (0..500).map(|i| format!("oppo_{i:04}")).collect();
        assert_eq!(seen, want, "every row exactly once, in order");
    }

    #[test]
    fn large_non_list_results_keep_their_scalars() {
        let c = Continuations::default();
        let v = json!({"id": "lead_1", "name": "Acme", "blob": "x".repeat(20_000)});
        let r = c.shape(v, 1_000);
        assert!(r.summarized);
        assert_eq!(r.structured["id"], "lead_1");
        assert_eq!(r.structured["omitted_fields"], json!(["blob"]));
    }

    #[test]
    fn arrays_are_wrapped_into_an_object() {
        let c = Continuations::default();
        let r = c.shape(json!([{"a": 1}]), 1_000);
        assert_eq!(r.structured, json!({"items": [{"a": 1}]}));
        assert_eq!(r.table.unwrap()["source"], "items");
    }
}
