//! Chart proposals for list-like results: a small, declarative **Vega-Lite** spec (a subset) the host
//! proposes from a result's table view ([`crate::engine::results::Table`]), for the console to draw and
//! for an AI engine to use as it likes. Pure: no I/O, no rendering.
//!
//! The rules, in order (each tested below):
//!
//! 1. The **measure** is a numeric column that is not an identifier (`id`, `…_id`, `…_ids`), preferring
//!    money and counts (`value`, `amount`, `total`, `count`, `sum(…)`, `expected_value`, …), else the
//!    first numeric column. No measure, no chart.
//! 2. A **series** — a date or date-time column whose values differ on every row, at least two rows,
//!    and no category that repeats — is a **line**: x the date (temporal), y the measure.
//! 3. Else a **category** — a text column that is not an identifier, URL or e-mail address, with at
//!    least one value — is a **bar** chart, horizontal (categories on y, sorted by the measure). When
//!    categories repeat, the measure is summed per category: the category with the fewest distinct
//!    values (but at least two, when there is one) is chosen, so a list of deals becomes value by
//!    status or by rep rather than one bar per deal.
//! 4. Else a date column with at least two rows is a **line** of the measure summed per date.
//! 5. Else no chart.
//!
//! ```
//! use claribi_host::engine::results::table_view;
//! # use claribi_host::console::charts::propose;
//! use serde_json::json;
//! let t = table_view(&json!({"data": [{"status_label": "Proposal", "value": 5000},
//!                                     {"status_label": "Demo", "value": 2000},
//!                                     {"status_label": "Proposal", "value": 700}]})).unwrap();
//! let spec = propose(&t, "Open deals").unwrap();
//! assert_eq!(spec["mark"], "bar");
//! assert_eq!(spec["encoding"]["y"]["field"], "status_label");
//! assert_eq!(spec["encoding"]["x"]["aggregate"], "sum");
//! ```

use crate::engine::results::{Column, Table};
use serde_json::{json, Value};
use std::collections::HashSet;

/// The Vega-Lite schema the proposals follow (a name only; nothing is fetched).
pub const SCHEMA: &str = "https://vega.github.io/schema/vega-lite/v5.json";

/// Measures worth charting before any other numeric column, most telling first.
const PREFERRED_MEASURES: &[&str] = &[
    "value", "amount", "total", "expected_value", "annualized_value", "count", "revenue", "sum", "days", "coverage", "rate",
];

fn is_identifier(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name).to_ascii_lowercase();
    last == "id" || last.ends_with("_id") || last.ends_with("_ids") || last == "cursor"
}

fn is_numeric(c: &Column) -> bool {
    matches!(c.r#type.as_str(), "integer" | "number")
}

fn is_temporal(c: &Column) -> bool {
    matches!(c.r#type.as_str(), "date" | "datetime")
}

fn measure_rank(name: &str) -> usize {
    let n = name.to_ascii_lowercase();
    PREFERRED_MEASURES
        .iter()
        .position(|p| n == *p || n.starts_with(&format!("{p}(")) || n.ends_with(&format!("_{p}")) || n.ends_with(&format!(".{p}")))
        .unwrap_or(PREFERRED_MEASURES.len())
}

/// Values that look like URLs or e-mail addresses are not categories.
fn looks_like_address(v: &str) -> bool {
    v.starts_with("http://") || v.starts_with("https://") || (v.contains('@') && !v.contains(' '))
}

fn distinct(rows: &[Vec<Value>], i: usize) -> (usize, usize) {
    let mut seen = HashSet::new();
    let mut present = 0;
    for r in rows {
        match r.get(i) {
            Some(Value::Null) | None => {}
            Some(v) => {
                present += 1;
                seen.insert(v.to_string());
            }
        }
    }
    (seen.len(), present)
}

fn title_of(name: &str) -> String {
    let t = name.replace(['_', '.'], " ");
    let mut c = t.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => t,
    }
}

/// The chart the host proposes for a table view, as a Vega-Lite spec whose `data` is the table's rows
/// by column name (`{"name": "table"}`), or `None`.
pub fn propose(table: &Table, title: &str) -> Option<Value> {
    if table.rows.is_empty() {
        return None;
    }
    let cols = &table.columns;
    let measure = cols
        .iter()
        .enumerate()
        .filter(|(_, c)| is_numeric(c) && !is_identifier(&c.name))
        .min_by_key(|(i, c)| (measure_rank(&c.name), *i))
        .map(|(i, c)| (i, c.name.clone()))?;
    let categories: Vec<(usize, usize, usize)> = cols
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            c.r#type == "string"
                && !is_identifier(&c.name)
                && *i != measure.0
                && !table.rows.iter().any(|r| r.get(*i).and_then(Value::as_str).is_some_and(looks_like_address))
        })
        .map(|(i, _)| {
            let (d, present) = distinct(&table.rows, i);
            (i, d, present)
        })
        .filter(|(_, d, _)| *d >= 1)
        .collect();
    let repeating_category = categories.iter().any(|(_, d, present)| d < present);
    let temporal: Option<(usize, usize, usize)> = cols
        .iter()
        .enumerate()
        .filter(|(_, c)| is_temporal(c))
        .map(|(i, _)| {
            let (d, present) = distinct(&table.rows, i);
            (i, d, present)
        })
        .find(|(_, d, _)| *d >= 1);
    let y_measure = |aggregate: bool| {
        let mut m = json!({"field": measure.1, "type": "quantitative", "title": title_of(&measure.1)});
        if aggregate {
            m["aggregate"] = json!("sum");
            m["title"] = json!(format!("Sum of {}", measure.1.replace(['_', '.'], " ")));
        }
        m
    };
    let spec = |mark: &str, encoding: Value| {
        json!({"$schema": SCHEMA, "title": title, "data": {"name": "table"}, "mark": mark, "encoding": encoding})
    };
    // 2. A series.
    if let Some((i, d, present)) = temporal {
        if table.rows.len() >= 2 && d == present && d == table.rows.len() && !repeating_category {
            let date = &cols[i].name;
            return Some(spec(
                "line",
                json!({"x": {"field": date, "type": "temporal", "title": title_of(date)}, "y": y_measure(false)}),
            ));
        }
    }
    // 3. Categories.
    if !categories.is_empty() {
        let (i, d, present) = *categories
            .iter()
            .min_by_key(|(i, d, _)| (if *d >= 2 { 0 } else { 1 }, *d, *i))
            .unwrap_or(&categories[0]);
        let category = &cols[i].name;
        let aggregate = d < present;
        let mut x = y_measure(aggregate);
        if let Some(o) = x.as_object_mut() {
            o.insert("type".into(), json!("quantitative"));
        }
        return Some(spec(
            "bar",
            json!({"y": {"field": category, "type": "nominal", "sort": "-x", "title": title_of(category)}, "x": x}),
        ));
    }
    // 4. Dates that repeat.
    if let Some((i, _, _)) = temporal {
        if table.rows.len() >= 2 {
            let date = &cols[i].name;
            return Some(spec(
                "line",
                json!({"x": {"field": date, "type": "temporal", "title": title_of(date)}, "y": y_measure(true)}),
            ));
        }
    }
    None
}

/// A spec for an explicit choice (the console's chart picker, a pinned chart): `mark` `bar` or `line`,
/// a category or date field and a measure field. `None` for an unknown mark.
pub fn choose(mark: &str, category: &str, measure: &str, temporal: bool, aggregate: bool, title: &str) -> Option<Value> {
    let m = {
        let mut m = json!({"field": measure, "type": "quantitative", "title": title_of(measure)});
        if aggregate {
            m["aggregate"] = json!("sum");
        }
        m
    };
    let encoding = match mark {
        "bar" => json!({"y": {"field": category, "type": if temporal { "temporal" } else { "nominal" }, "sort": "-x", "title": title_of(category)}, "x": m}),
        "line" => json!({"x": {"field": category, "type": if temporal { "temporal" } else { "ordinal" }, "title": title_of(category)}, "y": m}),
        _ => return None,
    };
    Some(json!({"$schema": SCHEMA, "title": title, "data": {"name": "table"}, "mark": mark, "encoding": encoding}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::results::table_view;

    fn spec(rows: Value) -> Option<Value> {
        propose(&table_view(&json!({ "data": rows })).expect("a table"), "t")
    }

    /// (what, rows, expected mark, expected category/date field, expected measure, aggregated)
    #[test]
    fn proposals_follow_the_rules() {
        let cases: Vec<(&str, Value, Option<(&str, &str, &str, bool)>)> = vec![
            (
                "a category and a number: bar, one bar per category",
                json!([{"source": "Website", "count": 12}, {"source": "Referral", "count": 7}]),
                Some(("bar", "source", "count", false)),
            ),
            (
                "repeating categories are summed; the one with the fewest values wins",
                json!([
                    {"id": "oppo_1", "lead_name": "Acme", "status_label": "Proposal", "user_name": "Ann", "value": 5000},
                    {"id": "oppo_2", "lead_name": "Bolt", "status_label": "Proposal", "user_name": "Bob", "value": 2000},
                    {"id": "oppo_3", "lead_name": "Crux", "status_label": "Demo", "user_name": "Cid", "value": 100}
                ]),
                Some(("bar", "status_label", "value", true)),
            ),
            (
                "a date series: line",
                json!([{"week": "2026-11-02", "count": 3}, {"week": "2026-11-09", "count": 5}, {"week": "2026-11-16", "count": 4}]),
                Some(("line", "week", "count", false)),
            ),
            (
                "dates with a repeating category: bar by the category",
                json!([
                    {"date_created": "2026-11-02", "status_type": "won", "value": 3},
                    {"date_created": "2026-11-03", "status_type": "won", "value": 5},
                    {"date_created": "2026-11-04", "status_type": "lost", "value": 1}
                ]),
                Some(("bar", "status_type", "value", true)),
            ),
            (
                "repeating dates alone: a line of sums",
                json!([{"day": "2026-11-02", "value": 3}, {"day": "2026-11-02", "value": 5}, {"day": "2026-11-03", "value": 1}]),
                Some(("line", "day", "value", true)),
            ),
            (
                "money before other numbers",
                json!([{"name": "A", "confidence": 50, "value": 100}, {"name": "B", "confidence": 20, "value": 300}]),
                Some(("bar", "name", "value", false)),
            ),
            (
                "aggregation columns like sum(value) are measures",
                json!([{"user_id": "user_1", "user_name": "Ann", "sum(value)": 10}, {"user_id": "user_2", "user_name": "Bob", "sum(value)": 20}]),
                Some(("bar", "user_name", "sum(value)", false)),
            ),
            ("identifiers are no measure", json!([{"name": "A", "lead_id": 1}, {"name": "B", "lead_id": 2}]), None),
            ("no number, no chart", json!([{"name": "A"}, {"name": "B"}]), None),
            ("e-mail addresses are no category", json!([{"email": "a@x.io", "n": 1}, {"email": "b@x.io", "n": 2}]), None),
            ("one dated row is no line", json!([{"day": "2026-11-02", "value": 3}]), None),
            ("no rows, no chart", json!([]), None),
        ];
        for (what, rows, want) in cases {
            let got = spec(rows);
            match (want, got) {
                (None, None) => {}
                (None, Some(g)) => panic!("{what}: expected no chart, got {g}"),
                (Some(_), None) => panic!("{what}: expected a chart, got none"),
                (Some((mark, field, measure, aggregated)), Some(g)) => {
                    assert_eq!(g["mark"], mark, "{what}: {g}");
                    let (category, m) = if mark == "bar" { ("y", "x") } else { ("x", "y") };
                    assert_eq!(g["encoding"][category]["field"], field, "{what}: {g}");
                    assert_eq!(g["encoding"][m]["field"], measure, "{what}: {g}");
                    assert_eq!(g["encoding"][m]["aggregate"] == "sum", aggregated, "{what}: {g}");
                    assert_eq!(g["$schema"], SCHEMA);
                    assert_eq!(g["data"]["name"], "table");
                }
            }
        }
    }

    #[test]
    fn explicit_choices_are_specs_too() {
        let bar = choose("bar", "source", "count", false, false, "Leads").unwrap();
        assert_eq!((bar["encoding"]["y"]["field"].as_str(), bar["encoding"]["x"]["field"].as_str()), (Some("source"), Some("count")));
        let line = choose("line", "week", "value", true, true, "Value").unwrap();
        assert_eq!(line["encoding"]["x"]["type"], "temporal");
        assert_eq!(line["encoding"]["y"]["aggregate"], "sum");
        assert!(choose("pie", "a", "b", false, false, "").is_none());
    }
}
