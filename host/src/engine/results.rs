//! Engine-ready results: what the AI engine reads back from a tool call.
//!
//! A vendor answers with JSON shaped its own way. For an engine that has to chart or compare, the host
//! adds a **table view** to every list-like result — the rows, typed columns, and the pagination state —
//! and, when a result is too large for an engine's context, **shortens** it instead of cutting it
//! mid-JSON: the result keeps its shape and every field but its largest array, of which it keeps the
//! first elements that fit, plus a `claribi` note with the element count and a cursor for
//! `claribi__next_rows`, which returns the rest, page by page, in the same shape.
//!
//! ```
//! use claribi_host::engine::results::table_view;
//! use serde_json::json;
//! let v = json!({"data": [{"id": "oppo_1", "value": 5000, "won": false, "date_won": null},
//!                         {"id": "oppo_2", "value": 7500.5, "won": true, "date_won": "2026-11-02"}],
//!                "has_more": true, "cursor": "c2", "total_results": 120});
//! let t = table_view(&v).unwrap();
//! assert_eq!(t.columns.iter().map(|c| c.r#type.as_str()).collect::<Vec<_>>(), ["string", "number", "boolean", "date"]);
//! assert_eq!(t.pagination.cursor.as_deref(), Some("c2"));
//! ```

use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

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
    // `get` rather than slicing: vendor strings are any UTF-8, and byte 10 may fall inside a character.
    let b = s.as_bytes();
    b.len() >= 19 && s.get(..10).is_some_and(is_date) && matches!(b[10], b'T' | b' ') && b[13] == b':'
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
            // Any other array of objects counts only when the object carries pagination state: a single
            // record with, say, an `addresses` array is not a list.
            let paged = ["has_more", "cursor", "next_cursor", "total_results"].iter().any(|k| o.contains_key(*k));
            if !paged {
                return None;
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

/// Typed columns, in first-seen order, over flattened rows.
#[derive(Default)]
struct ColumnSet {
    columns: Vec<Column>,
    index: HashMap<String, usize>,
}

impl ColumnSet {
    fn add(&mut self, flat: &[(String, Value)]) {
        for (name, value) in flat {
            let i = match self.index.get(name) {
                Some(i) => *i,
                None if self.columns.len() < MAX_COLUMNS => {
                    self.columns.push(Column { name: name.clone(), r#type: "null".into() });
                    self.index.insert(name.clone(), self.columns.len() - 1);
                    self.columns.len() - 1
                }
                None => continue,
            };
            if let Some(k) = kind(value) {
                self.columns[i].r#type = merge_kind(&self.columns[i].r#type, k).to_string();
            }
        }
    }
}

/// The typed columns of a list of rows, over every row (without keeping a flattened copy).
fn columns_of(rows: &[Value]) -> Vec<Column> {
    let mut set = ColumnSet::default();
    for r in rows {
        let mut flat = Vec::new();
        flatten("", r, 0, &mut flat);
        set.add(&flat);
    }
    set.columns
}

/// The table view of a list-like result, or `None`.
pub fn table_view(v: &Value) -> Option<Table> {
    let (source, rows) = rows_of(v)?;
    let mut set = ColumnSet::default();
    let mut flat_rows: Vec<Vec<(String, Value)>> = Vec::with_capacity(rows.len());
    for r in rows {
        let mut flat = Vec::new();
        flatten("", r, 0, &mut flat);
        set.add(&flat);
        flat_rows.push(flat);
    }
    let ColumnSet { columns, index } = set;
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
    /// `structuredContent`: the vendor's JSON object, or a shortened copy of it when it was too large.
    pub structured: Value,
    /// The text content: `structured` serialized.
    pub text: String,
    /// The table view, for list-like results (within the size budget).
    pub table: Option<Value>,
    /// `table` serialized (once: its size decides whether it fits, and it travels as a text block).
    pub table_text: Option<String>,
    /// The chart the host proposes for the table view (a Vega-Lite spec, see
    /// [`crate::engine::charts`]), when it proposes one.
    pub chart: Option<Value>,
    /// Whether `structured` is shortened rather than the whole result.
    pub summarized: bool,
}

/// Where a shortened result's remaining elements are kept: the array field they belong to, the
/// vendor's other fields are not repeated.
#[derive(Serialize, serde::Deserialize)]
struct Pending {
    /// Unix ms when it was kept.
    at_ms: i64,
    field: String,
    rows: Vec<Value>,
    total: usize,
    offset: usize,
    /// The list's typed columns and the vendor's pagination, repeated on every page.
    table: Option<Value>,
    /// Where the rows came from (the engine's provenance marker), repeated on every page.
    source: Value,
}

/// Where rows kept for `claribi__next_rows` live when they must outlive this process and be read by
/// any replica (the store, sealed: see `crate::engine::continuations`). Each entry is the serialized
/// rows under its key (the engine that may continue it and the cursor), with their provenance beside
/// them in clear and the connection they came from (deleted with it).
pub trait RowStore: Send + Sync {
    /// Keep `rows` under `cursor` until `expires_at_ms`.
    fn put(&self, cursor: &str, expires_at_ms: i64, connection: &str, source: &str, rows: &[u8]) -> Result<(), String>;
    /// Take (and forget) the rows under `cursor`, if it is known and not expired at `now_ms`.
    fn take(&self, cursor: &str, now_ms: i64) -> Result<Option<Vec<u8>>, String>;
    /// The provenance kept with `cursor`, if it is known and not expired.
    fn source(&self, cursor: &str, now_ms: i64) -> Result<Option<String>, String>;
}

/// What a continuation is kept under: the engine that may continue it, and its cursor. Another engine
/// holding the cursor finds nothing.
fn owned_key(owner: &str, cursor: &str) -> String {
    format!("{owner}\u{0}{cursor}")
}

/// `Store::now_ms`, written here because this module is also compiled on its own (the fuzz crate),
/// without the store.
fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Rows kept for `claribi__next_rows` for a while: in this process's memory, or in a [`RowStore`]
/// every replica reads.
pub struct Continuations {
    entries: Mutex<HashMap<String, Pending>>,
    ttl: Duration,
    max_entries: usize,
    shared: Option<std::sync::Arc<dyn RowStore>>,
}

impl Default for Continuations {
    fn default() -> Self {
        Continuations { entries: Mutex::new(HashMap::new()), ttl: Duration::from_secs(15 * 60), max_entries: 64, shared: None }
    }
}

impl Continuations {
    /// Keep rows in `rows` instead of in memory, so any process reading it can continue a result.
    pub fn shared(rows: std::sync::Arc<dyn RowStore>) -> Continuations {
        Continuations { shared: Some(rows), ..Continuations::default() }
    }
}

fn token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("rows_{}", hex::encode(b))
}

fn size(v: &Value) -> usize {
    serde_json::to_string(v).map(|s| s.len()).unwrap_or(0)
}

/// A value cut down to fit about `max` bytes: long strings shortened, large arrays and objects replaced
/// by a note of what they held. Used only when a single element would not fit on its own.
fn shrink(v: &Value, max: usize) -> Value {
    match v {
        Value::String(s) if s.len() > 200 => {
            let mut cut = 200;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            Value::String(format!("{}… ({} bytes)", &s[..cut], s.len()))
        }
        Value::Array(a) if size(v) > max => Value::String(format!("[{} items omitted]", a.len())),
        Value::Object(o) if size(v) > max => {
            let mut out = Map::new();
            let share = (max / o.len().max(1)).max(64);
            for (k, x) in o {
                out.insert(k.clone(), shrink(x, share));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

impl Continuations {
    #[allow(clippy::too_many_arguments)]
    fn put(&self, owner: &str, field: String, rows: Vec<Value>, total: usize, offset: usize, table: Option<Value>, source: Value) -> String {
        let now = unix_ms();
        let ttl_ms = self.ttl.as_millis() as i64;
        let t = token();
        let key = owned_key(owner, &t);
        let pending = Pending { at_ms: now, field, rows, total, offset, table, source };
        if let Some(shared) = &self.shared {
            let connection = pending.source.get("connection").and_then(Value::as_str).unwrap_or("");
            let kept = serde_json::to_vec(&pending)
                .map_err(|e| e.to_string())
                .and_then(|bytes| shared.put(&key, now + ttl_ms, connection, &pending.source.to_string(), &bytes));
            // A cursor whose rows could not be kept is handed out anyway: continuing it says it is
            // unknown, and the engine calls the original tool again.
            if let Err(e) = kept {
                tracing::warn!("rows for claribi__next_rows could not be kept: {e}");
            }
            return t;
        }
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.retain(|_, p| now - p.at_ms < ttl_ms);
        if e.len() >= self.max_entries {
            if let Some(oldest) = e.iter().min_by_key(|(_, p)| p.at_ms).map(|(k, _)| k.clone()) {
                e.remove(&oldest);
            }
        }
        e.insert(key, pending);
        t
    }

    /// The next elements of a shortened result, within `max_bytes`; `None` if the cursor is unknown,
    /// used up or expired.
    pub fn next(&self, cursor: &str, max_bytes: usize) -> Option<EngineResult> {
        self.next_for("", cursor, max_bytes)
    }

    /// [`Continuations::next`] for the engine `owner`: a cursor made for another engine is unknown.
    pub fn next_for(&self, owner: &str, cursor: &str, max_bytes: usize) -> Option<EngineResult> {
        let now = unix_ms();
        let key = owned_key(owner, cursor);
        let p = match &self.shared {
            Some(shared) => {
                let bytes = shared.take(&key, now).unwrap_or_else(|e| {
                    tracing::warn!("rows for claribi__next_rows could not be read: {e}");
                    None
                })?;
                serde_json::from_slice::<Pending>(&bytes).ok()?
            }
            None => {
                let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                let p = e.remove(&key)?;
                if now - p.at_ms >= self.ttl.as_millis() as i64 {
                    return None;
                }
                p
            }
        };
        Some(self.fill(owner, Map::new(), p.field, p.rows, p.total, p.offset, p.table, max_bytes, p.source))
    }

    /// Where the rows behind `cursor` came from (as [`Continuations::shape_from`] was told).
    pub fn source_of(&self, cursor: &str) -> Option<Value> {
        self.source_for("", cursor)
    }

    /// [`Continuations::source_of`] for the engine `owner`.
    pub fn source_for(&self, owner: &str, cursor: &str) -> Option<Value> {
        let key = owned_key(owner, cursor);
        if let Some(shared) = &self.shared {
            let text = shared.source(&key, unix_ms()).ok()??;
            return serde_json::from_str(&text).ok();
        }
        let e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.get(&key).map(|p| p.source.clone())
    }

    /// `head` plus as many of `rows` (under `field`) as fit in `max_bytes`, and a `claribi` note with
    /// the counts, the list's typed columns and pagination (`table`, when the list is the result's
    /// rows) and, if rows remain, the cursor for `claribi__next_rows`. At least one row is always
    /// returned, shrunk if it would not fit alone, so that continuing always makes progress.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        owner: &str,
        mut head: Map<String, Value>,
        field: String,
        mut rows: Vec<Value>,
        total: usize,
        offset: usize,
        table: Option<Value>,
        max_bytes: usize,
        source: Value,
    ) -> EngineResult {
        // The columns are worth their room only while they leave most of the budget to rows.
        let table = table.filter(|t| size(t) <= max_bytes / 4);
        // Room for the note (with a cursor and the columns) and the field's own framing.
        let note_room = 400 + field.len() + table.as_ref().map(size).unwrap_or(0);
        head.insert(field.clone(), Value::Array(vec![]));
        let fixed = size(&Value::Object(head.clone())) + note_room;
        let budget = max_bytes.saturating_sub(fixed);
        let mut used = 0usize;
        let mut take = 0usize;
        for r in &rows {
            let n = size(r) + 1;
            if used + n > budget {
                break;
            }
            used += n;
            take += 1;
        }
        if take == 0 && !rows.is_empty() {
            rows[0] = shrink(&rows[0], budget.max(256));
            take = 1;
        }
        let rest = rows.split_off(take.min(rows.len()));
        let returned = rows.len();
        head.insert(field.clone(), Value::Array(rows));
        let mut note = Map::new();
        note.insert("summarized".into(), Value::Bool(true));
        note.insert("field".into(), Value::String(field.clone()));
        note.insert("total_elements".into(), Value::from(total));
        note.insert("returned".into(), json!({"from": offset, "count": returned}));
        if let Some(Value::Object(t)) = &table {
            for (k, v) in t {
                note.insert(k.clone(), v.clone());
            }
        }
        if rest.is_empty() {
            note.insert("note".into(), Value::String(format!("The last {returned} of {total} elements of `{field}`.")));
        } else {
            let remaining = rest.len();
            let cursor = self.put(owner, field.clone(), rest, total, offset + returned, table, source);
            note.insert(
                "note".into(),
                Value::String(format!(
                    "The result was too large to return whole: `{field}` holds {total} elements, {returned} are here; call claribi__next_rows with the cursor below for the next {remaining}."
                )),
            );
            note.insert("remaining".into(), Value::from(remaining));
            note.insert("continue".into(), json!({"tool": "claribi__next_rows", "arguments": {"cursor": cursor}}));
        }
        head.insert("claribi".into(), Value::Object(note));
        let structured = Value::Object(head);
        EngineResult { text: structured.to_string(), structured, table: None, table_text: None, chart: None, summarized: true }
    }

    /// Shape a vendor result for the engine (see the module docs). `max_bytes` bounds the text the
    /// engine receives.
    ///
    /// A result within the budget passes whole, with a table view when it is list-like. A larger one
    /// keeps its shape: every field but its largest array as it is, and of that array as many elements
    /// as fit, plus a `claribi` note (counts and a `claribi__next_rows` cursor for the rest) — so a
    /// single record keeps its own fields, and a list keeps its pagination state.
    pub fn shape(&self, vendor: Value, max_bytes: usize) -> EngineResult {
        self.shape_from(vendor, max_bytes, Value::Null)
    }

    /// [`Continuations::shape`], remembering `source` (where the result came from) with the rows
    /// kept for `claribi__next_rows`.
    pub fn shape_from(&self, vendor: Value, max_bytes: usize, source: Value) -> EngineResult {
        self.shape_for("", vendor, max_bytes, source)
    }

    /// [`Continuations::shape_from`] for the engine `owner`: only it may continue the result.
    pub fn shape_for(&self, owner: &str, vendor: Value, max_bytes: usize, source: Value) -> EngineResult {
        let structured = match vendor {
            Value::Object(_) => vendor,
            other => json!({ "items": other }),
        };
        let text = structured.to_string();
        if text.len() <= max_bytes {
            let view = table_view(&structured);
            let chart = view.as_ref().and_then(|t| crate::engine::charts::propose(t, &t.source));
            let table = view.map(|t| serde_json::to_value(t).unwrap_or(Value::Null));
            let table_text = table.as_ref().map(Value::to_string);
            let with_table = table_text.as_ref().map_or(0, String::len) + text.len();
            // The table roughly doubles the size; drop it (and its chart) rather than overflow the budget.
            let fits = with_table <= max_bytes * 2;
            return EngineResult {
                text,
                structured,
                table: table.filter(|_| fits),
                table_text: table_text.filter(|_| fits),
                chart: chart.filter(|_| fits),
                summarized: false,
            };
        }
        // For a list, the typed columns (over every row) and the vendor's pagination travel in the note
        // of every page, so an engine can chart a shortened list without guessing.
        let list_field = rows_of(&structured).map(|(f, _)| f);
        let pagination = pagination_of(&structured);
        let Value::Object(mut obj) = structured else { unreachable!("wrapped above") };
        // The largest array field carries the bulk; keep the rest of the object around it.
        let largest = obj
            .iter()
            .filter_map(|(k, v)| v.as_array().map(|_| (k.clone(), size(v))))
            .max_by_key(|(_, n)| *n)
            .map(|(k, _)| k);
        match largest {
            Some(field) => {
                let rows = match obj.remove(&field) {
                    Some(Value::Array(a)) => a,
                    _ => vec![],
                };
                let table = (list_field.as_deref() == Some(field.as_str())).then(|| {
                    json!({"columns": columns_of(&rows), "pagination": pagination})
                });
                // The rest of the object must fit too; shrink its biggest parts if not.
                let head_budget = max_bytes / 3;
                if size(&Value::Object(obj.clone())) > head_budget {
                    obj = match shrink(&Value::Object(obj), head_budget) {
                        Value::Object(o) => o,
                        _ => Map::new(),
                    };
                }
                let total = rows.len();
                self.fill(owner, obj, field, rows, total, 0, table, max_bytes, source)
            }
            None => {
                let shrunk = shrink(&Value::Object(obj), max_bytes * 3 / 4);
                let mut o = match shrunk {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                o.insert(
                    "claribi".into(),
                    json!({"summarized": true, "note": format!("The result ({} bytes) was too large to return whole; long values were shortened.", text.len())}),
                );
                let structured = Value::Object(o);
                EngineResult { text: structured.to_string(), structured, table: None, table_text: None, chart: None, summarized: true }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_of_any_script_are_typed_without_panicking() {
        for s in ["東京都渋谷区神南一丁目", "2026-01-05 東京都渋谷区", "Zürich Straße 12 München", "é".repeat(20).as_str()] {
            assert_eq!(kind(&Value::String(s.to_string())), Some("string"), "{s}");
        }
        assert_eq!(kind(&json!("2026-01-05T10:00:00Z")), Some("datetime"));
        assert_eq!(kind(&json!("2026-01-05")), Some("date"));
        let t = table_view(&json!({"data": [{"city": "東京都渋谷区神南一丁目"}, {"city": "Zürich"}]})).expect("a list");
        assert_eq!(t.columns[0].r#type, "string");
    }

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
    fn large_list_results_are_shortened_and_continued_without_losing_a_row() {
        let c = Continuations::default();
        let rows: Vec<Value> = (0..500).map(|i| json!({"id": format!("oppo_{i:04}"), "value": i, "note": "x".repeat(50), "tags": ["a", "b"]})).collect();
        let v = json!({"data": rows, "has_more": true, "cursor": "vendor-next", "total_results": 900});
        let first = c.shape(v, 8_000);
        assert!(first.summarized);
        assert!(first.text.len() <= 8_000, "{} bytes", first.text.len());
        assert!(serde_json::from_str::<Value>(&first.text).is_ok(), "never cut mid-JSON");
        assert_eq!(first.structured["cursor"], "vendor-next", "the vendor's pagination state stays");
        assert_eq!(first.structured["claribi"]["total_elements"], 500);
        assert_eq!(first.structured["data"][0]["tags"], json!(["a", "b"]), "elements keep their arrays");
        // A shortened list still says what its columns are (over all 500 rows) and where the vendor's
        // pagination stands.
        let columns = &first.structured["claribi"]["columns"];
        assert_eq!(
            columns,
            &json!([{"name": "id", "type": "string"}, {"name": "value", "type": "integer"}, {"name": "note", "type": "string"}, {"name": "tags", "type": "integer"}]),
        );
        assert_eq!(first.structured["claribi"]["pagination"], json!({"has_more": true, "cursor": "vendor-next", "total_results": 900}));
        let ids = |r: &EngineResult| -> Vec<String> {
            r.structured["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
        };
        let mut seen = ids(&first);
        let mut next = first.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        while let Some(cur) = next {
            let page = c.next(&cur, 8_000).expect("the cursor is valid once");
            assert!(page.text.len() <= 8_000, "{} bytes", page.text.len());
            assert_eq!(page.structured["claribi"]["returned"]["from"], seen.len());
            assert_eq!(page.structured["claribi"]["columns"], first.structured["claribi"]["columns"], "every page has the columns");
            seen.extend(ids(&page));
            assert!(c.next(&cur, 8_000).is_none(), "a cursor is used up");
            next = page.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        }
        let want: Vec<String> = (0..500).map(|i| format!("oppo_{i:04}")).collect();
        assert_eq!(seen, want, "every row exactly once, in order");
    }

    #[test]
    fn a_large_single_record_keeps_its_own_fields() {
        let c = Continuations::default();
        let addresses: Vec<Value> = (0..100).map(|i| json!({"label": "office", "city": format!("City {i}"), "address_1": "x".repeat(40)})).collect();
        let v = json!({"id": "lead_1", "name": "Acme", "source": "Referral", "status_label": "Qualified", "addresses": addresses});
        assert!(table_view(&v).is_none(), "a record with an array is not a list");
        let r = c.shape(v, 2_048);
        assert!(r.text.len() <= 2_048, "{}", r.text.len());
        assert_eq!(r.structured["id"], "lead_1");
        assert_eq!(r.structured["source"], "Referral", "the record's own fields are untouched");
        assert_eq!(r.structured["claribi"]["field"], "addresses");
        assert!(r.structured["claribi"].get("columns").is_none(), "a record's nested array is not a list of rows");
        assert!(r.structured["addresses"].as_array().unwrap().len() >= 1);
    }

    #[test]
    fn nested_lists_survive_shortening() {
        // Like Close's get_fields: a few large objects, each with a list inside.
        let c = Continuations::default();
        let types: Vec<Value> = (0..6)
            .map(|t| json!({"type": format!("t{t}"), "fields": (0..60).map(|f| json!({"name": format!("f{f}"), "type": "text"})).collect::<Vec<_>>()}))
            .collect();
        let v = json!({"object_types": types, "notes": "n"});
        let first = c.shape(v, 6_000);
        let mut got: Vec<Value> = first.structured["object_types"].as_array().unwrap().clone();
        let mut next = first.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        while let Some(cur) = next {
            let page = c.next(&cur, 6_000).unwrap();
            got.extend(page.structured["object_types"].as_array().unwrap().iter().cloned());
            next = page.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        }
        assert_eq!(got.len(), 6);
        assert!(got.iter().all(|t| t["fields"].as_array().map(|f| f.len()) == Some(60)), "every field list whole");
    }

    #[test]
    fn an_element_too_large_alone_is_shrunk_so_continuing_progresses() {
        let c = Continuations::default();
        let v = json!({"data": [{"id": "a", "blob": "x".repeat(50_000)}, {"id": "b"}], "has_more": false});
        let first = c.shape(v, 4_000);
        assert!(first.text.len() <= 4_000, "{}", first.text.len());
        assert_eq!(first.structured["data"][0]["id"], "a");
        let cur = first.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().unwrap().to_string();
        let second = c.next(&cur, 4_000).unwrap();
        assert_eq!(second.structured["data"][0]["id"], "b");
    }

    #[test]
    fn large_results_without_arrays_shorten_long_values() {
        let c = Continuations::default();
        let r = c.shape(json!({"id": "lead_1", "name": "Acme", "blob": "x".repeat(20_000)}), 1_000);
        assert!(r.summarized);
        assert_eq!(r.structured["id"], "lead_1");
        assert!(r.text.len() <= 1_000, "{}", r.text.len());
    }

    #[test]
    fn arrays_are_wrapped_into_an_object() {
        let c = Continuations::default();
        let r = c.shape(json!([{"a": 1}]), 1_000);
        assert_eq!(r.structured, json!({"items": [{"a": 1}]}));
        assert_eq!(r.table.unwrap()["source"], "items");
    }
}
