//! The product page's four questions as ready-made explorations: each is several read calls through
//! [`HostService::call_tool`] (the same path as the CLI and `serve`) plus a computation, the recipes the
//! end-to-end tests verify against the Close stand-in (`tests/e2e/tests/product_questions.rs`).
//!
//! A Close organization usually has several pipelines, and their status labels repeat (a Sales and a
//! Renewals pipeline can both have "Proposal"), so every exploration answers for **one pipeline the
//! user picks** (or, said as such, for all of them) and says which in its answer.
//!
//! | id | question | calls | computation |
//! |---|---|---|---|
//! | `stuck-in-stage` | deals in Proposal longer than 14 days | pipelines, open deals in the stage, their leads' status changes | when each deal entered the stage |
//! | `conversion-by-source` | conversion rate by lead source last quarter | pipelines, two aggregations | won leads ÷ leads per source |
//! | `pipeline-coverage` | reps by pipeline coverage (quotas are the user's) | users, pipelines, open deals | open pipeline ÷ quota |
//! | `weighted-pipeline-change` | how the weighted pipeline changed this week | pipelines, open deals, status changes since Monday, deals created since Monday | weighted pipeline on Monday vs now |
//!
//! Money is Close's integer cents in the calls, dollars in the answers.

use crate::errors::HostError;
use crate::service::{Content, HostService, ToolOutput};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The pipeline choice meaning "every pipeline".
pub const ALL_PIPELINES: &str = "all";

/// One input an exploration asks for.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    /// The argument name.
    pub name: &'static str,
    /// The label shown.
    pub label: &'static str,
    /// `pipeline`, `stage`, `integer`, `date` or `quotas`.
    pub kind: &'static str,
    /// The default, if any.
    pub default: Value,
    /// One line of help.
    pub help: &'static str,
}

/// A ready-made exploration.
#[derive(Debug, Clone, Serialize)]
pub struct Exploration {
    /// Stable id (kept in pins).
    pub id: &'static str,
    /// The product page's question.
    pub question: &'static str,
    /// What it computes, one sentence.
    pub how: &'static str,
    /// What the user gives.
    pub inputs: Vec<Input>,
}

/// The four explorations.
pub fn catalogue() -> Vec<Exploration> {
    let pipeline = Input { name: "pipeline", label: "Pipeline", kind: "pipeline", default: json!("Sales"), help: "Status labels repeat across pipelines: the answer is for this pipeline." };
    let as_of = Input { name: "as_of", label: "As of", kind: "date", default: Value::Null, help: "The day the question is asked (default: today, UTC)." };
    vec![
        Exploration {
            id: "stuck-in-stage",
            question: "Show me deals that have been in Proposal stage longer than 14 days",
            how: "Finds the stage in the pipeline, lists its open deals, and reads their status changes to learn when each entered it.",
            inputs: vec![
                pipeline.clone(),
                Input { name: "stage", label: "Stage", kind: "stage", default: json!("Proposal"), help: "An active status of the pipeline." },
                Input { name: "days", label: "Longer than (days)", kind: "integer", default: json!(14), help: "" },
                as_of.clone(),
            ],
        },
        Exploration {
            id: "conversion-by-source",
            question: "Compare conversion rate by source last quarter",
            how: "Counts leads created last quarter per source, and those of them with a deal won in the pipeline.",
            inputs: vec![pipeline.clone(), as_of.clone()],
        },
        Exploration {
            id: "pipeline-coverage",
            question: "Which reps have the highest pipeline coverage?",
            how: "Sums each rep's open deals in the pipeline and divides by the quota you give (Close holds no quotas).",
            inputs: vec![
                pipeline.clone(),
                Input { name: "quotas", label: "Quotas ($ per rep)", kind: "quotas", default: json!({}), help: "Reps without a quota are left out." },
            ],
        },
        Exploration {
            id: "weighted-pipeline-change",
            question: "How did our weighted pipeline change this week?",
            how: "Weighted pipeline (value × confidence) now, and on Monday rebuilt from the status changes and deals created since.",
            inputs: vec![pipeline, as_of],
        },
    ]
}

/// An exploration's answer: a table (columns and rows, as the console shows every result), a chart,
/// one sentence, the pipeline it answers for, and the calls it made.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Answer {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, values in column order.
    pub rows: Vec<Vec<Value>>,
    /// A Vega-Lite spec (subset) over the rows.
    pub chart: Option<Value>,
    /// The answer in one sentence.
    pub summary: String,
    /// Which pipeline it answers for (its name, or "all pipelines").
    pub pipeline: String,
    /// The tool calls, in order (tool and arguments).
    pub calls: Vec<String>,
}

fn usage(m: impl Into<String>) -> HostError {
    HostError::Usage(m.into())
}

/// The JSON a tool result carries.
pub fn vendor_json(out: &ToolOutput) -> Option<Value> {
    if let Some(v) = &out.structured_content {
        return Some(v.clone());
    }
    out.content.iter().find_map(|c| match c {
        Content::Text { text } => serde_json::from_str::<Value>(text).ok().filter(|v| v.is_object() || v.is_array()),
        _ => None,
    })
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn i(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f.round() as i64))).unwrap_or(0)
}

fn time(v: &Value, k: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s(v, k)).ok().map(|t| t.with_timezone(&Utc))
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_else(Utc::now)
}

fn dollars(cents: i64) -> Value {
    json!((cents as f64) / 100.0)
}

/// `$1,234.56`.
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let whole = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}${grouped}.{:02}", c % 100)
}

/// `value × confidence / 100`, rounded half up (cents).
pub fn weighted(value: i64, confidence: i64) -> i64 {
    (value * confidence + 50).div_euclid(100)
}

/// `[start, end)` of the calendar quarter before the one containing `d`.
pub fn last_quarter(d: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let first_month = (d.month() - 1) / 3 * 3 + 1;
    let this = NaiveDate::from_ymd_opt(d.year(), first_month, 1).unwrap_or(d);
    let prev = if first_month == 1 {
        NaiveDate::from_ymd_opt(d.year() - 1, 10, 1)
    } else {
        NaiveDate::from_ymd_opt(d.year(), first_month - 3, 1)
    }
    .unwrap_or(d);
    (midnight(prev), midnight(this))
}

/// Midnight UTC on the Monday of the week containing `d`.
pub fn week_start(d: NaiveDate) -> DateTime<Utc> {
    midnight(d - Duration::days(i64::from(d.weekday().num_days_from_monday())))
}

/// A pipeline as `find_pipelines_and_opportunity_statuses` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pipeline {
    /// `pipe_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `(status id, label, type)` in pipeline order.
    pub statuses: Vec<(String, String, String)>,
}

impl Pipeline {
    fn ids_of(&self, status_type: &str) -> BTreeSet<String> {
        self.statuses.iter().filter(|(_, _, t)| t == status_type).map(|(id, _, _)| id.clone()).collect()
    }
}

/// The pipelines of a `find_pipelines_and_opportunity_statuses` result.
pub fn pipelines_of(v: &Value) -> Vec<Pipeline> {
    v.get("data")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| Pipeline {
                    id: s(p, "id").into(),
                    name: s(p, "name").into(),
                    statuses: p
                        .get("statuses")
                        .and_then(Value::as_array)
                        .map(|st| st.iter().map(|x| (s(x, "id").into(), s(x, "label").into(), s(x, "type").into())).collect())
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The pipelines the choice names: one by id or name, or every one for [`ALL_PIPELINES`].
pub fn choose_pipelines<'a>(all: &'a [Pipeline], choice: &str) -> Result<(Vec<&'a Pipeline>, String), HostError> {
    let choice = choice.trim();
    if choice.is_empty() || choice == ALL_PIPELINES {
        return Ok((all.iter().collect(), "all pipelines".into()));
    }
    let p = all
        .iter()
        .find(|p| p.id == choice || p.name.eq_ignore_ascii_case(choice))
        .ok_or_else(|| usage(format!("there is no pipeline `{}`; choose one of {}", crate::errors::one_line(choice), all.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "))))?;
    Ok((vec![p], format!("the {} pipeline", p.name)))
}

/// What the explorations need from the host: one call returning the vendor's JSON. The console passes
/// [`HostService::call_tool`]; the tests a fake.
#[allow(async_fn_in_trait)]
pub trait Caller {
    /// Call `tool` with `args` and return its JSON.
    async fn call(&mut self, tool: &str, args: Value) -> Result<Value, HostError>;
}

/// [`Caller`] over the host service, recording each call.
pub struct HostCaller<'a> {
    host: &'a HostService,
    connection: String,
    /// `tool {arguments}` per call.
    pub calls: Vec<String>,
}

impl<'a> HostCaller<'a> {
    /// Calls on `connection`.
    pub fn new(host: &'a HostService, connection: &str) -> Self {
        HostCaller { host, connection: connection.into(), calls: vec![] }
    }
}

impl Caller for HostCaller<'_> {
    async fn call(&mut self, tool: &str, args: Value) -> Result<Value, HostError> {
        let mut shown = args.to_string();
        if shown.len() > 160 {
            shown = format!("{}…", shown.chars().take(160).collect::<String>());
        }
        self.calls.push(format!("{tool} {shown}"));
        let out = self.host.call_tool(&self.connection, tool, &args.to_string()).await?;
        vendor_json(&out).ok_or_else(|| usage(format!("`{tool}` returned no JSON")))
    }
}

/// Every row of a cursor-paged list tool, asking each next page with the same filters plus the cursor.
async fn all_rows(c: &mut impl Caller, tool: &str, args: Value) -> Result<Vec<Value>, HostError> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..200 {
        let mut a = args.clone();
        if let Some(cur) = &cursor {
            a["cursor"] = json!(cur);
        }
        let v = c.call(tool, a).await?;
        rows.extend(v.get("data").and_then(Value::as_array).cloned().unwrap_or_default());
        cursor = v.get("cursor").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        if cursor.is_none() || v.get("has_more") == Some(&Value::Bool(false)) {
            return Ok(rows);
        }
    }
    Err(usage(format!("`{tool}` kept returning pages (200); narrow the question")))
}

fn input_str<'a>(inputs: &'a Value, k: &str, default: &'a str) -> &'a str {
    inputs.get(k).and_then(Value::as_str).filter(|s| !s.trim().is_empty()).unwrap_or(default)
}

fn as_of(inputs: &Value) -> Result<NaiveDate, HostError> {
    match inputs.get("as_of").and_then(Value::as_str).filter(|s| !s.trim().is_empty()) {
        None => Ok(Utc::now().date_naive()),
        Some(d) => d.trim().parse().map_err(|_| usage(format!("`{}` is not a date like 2026-11-18", crate::errors::one_line(d)))),
    }
}

/// Run exploration `id` with `inputs` through `c`.
pub async fn run(id: &str, c: &mut impl Caller, inputs: &Value) -> Result<Answer, HostError> {
    match id {
        "stuck-in-stage" => stuck_in_stage(c, inputs).await,
        "conversion-by-source" => conversion_by_source(c, inputs).await,
        "pipeline-coverage" => pipeline_coverage(c, inputs).await,
        "weighted-pipeline-change" => weighted_pipeline_change(c, inputs).await,
        other => Err(usage(format!("there is no exploration `{}`", crate::errors::one_line(other)))),
    }
}

async fn pipelines(c: &mut impl Caller) -> Result<Vec<Pipeline>, HostError> {
    let v = c.call("find_pipelines_and_opportunity_statuses", json!({})).await?;
    let p = pipelines_of(&v);
    if p.is_empty() {
        return Err(usage("the organization has no pipelines"));
    }
    Ok(p)
}

/// One deal in a stage, and since when.
#[derive(Debug, Clone, PartialEq)]
pub struct Stuck {
    /// The deal (its row from `find_opportunities`).
    pub deal: Value,
    /// When it entered the stage.
    pub since: DateTime<Utc>,
}

/// Deals in `stage_ids` for longer than `days` at `now`, longest first: a deal entered its stage at
/// its last status change into one of `stage_ids`, else (created in it) at its creation.
pub fn stuck(deals: &[Value], changes: &[Value], stage_ids: &BTreeSet<String>, days: i64, now: DateTime<Utc>) -> Vec<Stuck> {
    let mut entered: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for ch in changes {
        if stage_ids.contains(s(ch, "new_status_id")) {
            if let Some(at) = time(ch, "activity_at") {
                let slot = entered.entry(s(ch, "opportunity_id").to_string()).or_insert(at);
                *slot = (*slot).max(at);
            }
        }
    }
    let mut out: Vec<Stuck> = deals
        .iter()
        .filter_map(|d| {
            let since = entered.get(s(d, "id")).copied().or_else(|| time(d, "date_created"))?;
            (now - since > Duration::days(days)).then(|| Stuck { deal: d.clone(), since })
        })
        .collect();
    out.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| s(&a.deal, "id").cmp(s(&b.deal, "id"))));
    out
}

async fn stuck_in_stage(c: &mut impl Caller, inputs: &Value) -> Result<Answer, HostError> {
    let all = pipelines(c).await?;
    let (chosen, pipeline) = choose_pipelines(&all, input_str(inputs, "pipeline", "Sales"))?;
    let stage = input_str(inputs, "stage", "Proposal").to_string();
    let days = inputs.get("days").and_then(|d| d.as_i64().or_else(|| d.as_str().and_then(|s| s.trim().parse().ok()))).unwrap_or(14);
    if !(0..=3650).contains(&days) {
        return Err(usage("the number of days must be between 0 and 3650"));
    }
    let now = midnight(as_of(inputs)?);
    let stage_ids: BTreeSet<String> = chosen
        .iter()
        .flat_map(|p| p.statuses.iter())
        .filter(|(_, label, t)| label.eq_ignore_ascii_case(&stage) && t == "active")
        .map(|(id, _, _)| id.clone())
        .collect();
    if stage_ids.is_empty() {
        return Err(usage(format!("{pipeline} has no open stage named `{}`", crate::errors::one_line(&stage))));
    }
    let deals = all_rows(c, "find_opportunities", json!({"status_ids": stage_ids})).await?;
    let leads: BTreeSet<&str> = deals.iter().map(|d| s(d, "lead_id")).filter(|l| !l.is_empty()).collect();
    let changes = if leads.is_empty() {
        vec![]
    } else {
        all_rows(c, "activity_search", json!({"activity_types": ["activity.opportunity_status_change"], "lead_ids": leads})).await?
    };
    let found = stuck(&deals, &changes, &stage_ids, days, now);
    let columns = ["deal", "pipeline", "owner", "value_usd", "in_stage_since", "days_in_stage"].map(String::from).to_vec();
    let rows: Vec<Vec<Value>> = found
        .iter()
        .map(|x| {
            vec![
                json!(s(&x.deal, "lead_name")),
                json!(s(&x.deal, "pipeline_name")),
                json!(s(&x.deal, "user_name")),
                dollars(i(&x.deal, "value")),
                json!(x.since.format("%Y-%m-%d").to_string()),
                json!((now - x.since).num_days()),
            ]
        })
        .collect();
    let summary = format!(
        "{} of {} open deals in {stage} ({pipeline}) have been there longer than {days} days as of {}.",
        found.len(),
        deals.len(),
        now.format("%Y-%m-%d")
    );
    let chart = (!rows.is_empty()).then(|| super::charts::choose("bar", "deal", "days_in_stage", false, false, &format!("Days in {stage}"))).flatten();
    Ok(Answer { columns, rows, chart, summary, pipeline, calls: vec![] })
}

/// Per source: leads created in the window, and those with a won deal (from the two aggregations'
/// rows; `won_status_ids` empty means any won status).
pub fn conversion(leads: &Value, won: &Value, won_status_ids: &BTreeSet<String>) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for row in leads.get("rows").and_then(Value::as_array).into_iter().flatten() {
        let source = row["group"]["source"].as_str().unwrap_or("").to_string();
        out.entry(source).or_default().0 += row["values"]["count"].as_u64().unwrap_or(0);
    }
    for row in won.get("rows").and_then(Value::as_array).into_iter().flatten() {
        let g = &row["group"];
        let is_won = match g.get("status_id").and_then(Value::as_str) {
            Some(id) => won_status_ids.contains(id),
            None => g["status_type"] == "won",
        };
        if is_won {
            let source = g["lead.source"].as_str().unwrap_or("").to_string();
            out.entry(source).or_default().1 += row["values"]["cardinality(lead_id)"].as_u64().unwrap_or(0);
        }
    }
    out
}

async fn conversion_by_source(c: &mut impl Caller, inputs: &Value) -> Result<Answer, HostError> {
    let all = pipelines(c).await?;
    let (chosen, pipeline) = choose_pipelines(&all, input_str(inputs, "pipeline", "Sales"))?;
    let (start, end) = last_quarter(as_of(inputs)?);
    let window = |field: &str| json!({"field": field, "start": start.to_rfc3339(), "end": end.to_rfc3339()});
    let leads = c
        .call(
            "aggregation",
            json!({"include_types": ["lead"], "aggregations": [{"aggregation_type": "count"}], "group_by": ["source"], "time_buckets": window("date_created")}),
        )
        .await?;
    // Won leads: distinct leads with a deal in one of the pipeline's won statuses (for every pipeline,
    // by status type, so that a lead won in two pipelines counts once).
    let every = chosen.len() == all.len();
    let won = c
        .call(
            "aggregation",
            json!({
                "include_types": ["opportunity"],
                "aggregations": [{"aggregation_type": "cardinality", "field": "lead_id"}],
                "group_by": ["lead.source", if every { "status_type" } else { "status_id" }],
                "time_buckets": window("lead.date_created"),
            }),
        )
        .await?;
    let won_ids: BTreeSet<String> = if every { BTreeSet::new() } else { chosen.iter().flat_map(|p| p.ids_of("won")).collect() };
    let per_source = conversion(&leads, &won, &won_ids);
    let columns = ["source", "leads", "won_leads", "conversion_pct"].map(String::from).to_vec();
    let rows: Vec<Vec<Value>> = per_source
        .iter()
        .map(|(src, (n, w))| {
            let pct = if *n == 0 { 0.0 } else { (*w as f64 * 1000.0 / *n as f64).round() / 10.0 };
            vec![json!(src), json!(n), json!(w), json!(pct)]
        })
        .collect();
    let (n, w): (u64, u64) = per_source.values().fold((0, 0), |a, (n, w)| (a.0 + n, a.1 + w));
    let best = per_source
        .iter()
        .filter(|(_, (n, _))| *n > 0)
        .max_by(|a, b| (a.1 .1 as f64 / a.1 .0 as f64).total_cmp(&(b.1 .1 as f64 / b.1 .0 as f64)))
        .map(|(s, _)| s.clone())
        .unwrap_or_default();
    let summary = format!(
        "{w} of {n} leads created {} to {} reached a won deal in {pipeline}; {} converts best.",
        start.format("%Y-%m-%d"),
        (end - Duration::days(1)).format("%Y-%m-%d"),
        if best.is_empty() { "no source".into() } else { best }
    );
    let chart = super::charts::choose("bar", "source", "conversion_pct", false, false, "Conversion by source (%)");
    Ok(Answer { columns, rows, chart, summary, pipeline, calls: vec![] })
}

/// One rep's coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// `user_…`.
    pub user_id: String,
    /// Display name.
    pub name: String,
    /// Open pipeline, cents.
    pub open: i64,
    /// Quota, cents.
    pub quota: i64,
}

/// Coverage per rep with a quota (`quotas` by name, cents), highest first, ties by name.
pub fn coverage(users: &[(String, String)], open_deals: &[Value], quotas: &BTreeMap<String, i64>) -> Vec<Coverage> {
    let mut open: BTreeMap<&str, i64> = BTreeMap::new();
    for d in open_deals {
        *open.entry(s(d, "user_id")).or_default() += i(d, "value");
    }
    let mut out: Vec<Coverage> = users
        .iter()
        .filter_map(|(id, name)| {
            let quota = *quotas.get(name).filter(|q| **q > 0)?;
            Some(Coverage { user_id: id.clone(), name: name.clone(), open: open.get(id.as_str()).copied().unwrap_or(0), quota })
        })
        .collect();
    out.sort_by(|a, b| (b.open as f64 / b.quota as f64).total_cmp(&(a.open as f64 / a.quota as f64)).then_with(|| a.name.cmp(&b.name)));
    out
}

/// Quotas as the form gives them: rep name → dollars (a number or a numeric text).
pub fn quotas_of(v: &Value) -> Result<BTreeMap<String, i64>, HostError> {
    let mut out = BTreeMap::new();
    for (name, q) in v.as_object().into_iter().flatten() {
        let dollars = match q {
            Value::Number(n) => n.as_f64(),
            Value::String(t) if t.trim().is_empty() => continue,
            Value::String(t) => t.trim().replace(',', "").parse::<f64>().ok(),
            Value::Null => continue,
            _ => None,
        }
        .filter(|d| d.is_finite() && *d >= 0.0 && *d < 1e12)
        .ok_or_else(|| usage(format!("the quota of {} is not an amount in dollars", crate::errors::one_line(name))))?;
        out.insert(name.clone(), (dollars * 100.0).round() as i64);
    }
    Ok(out)
}

async fn pipeline_coverage(c: &mut impl Caller, inputs: &Value) -> Result<Answer, HostError> {
    let quotas = quotas_of(inputs.get("quotas").unwrap_or(&Value::Null))?;
    if quotas.values().all(|q| *q == 0) {
        return Err(usage("give at least one rep's quota: Close holds no quotas"));
    }
    let users_v = c.call("org_users", json!({})).await?;
    let users: Vec<(String, String)> = users_v
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|u| (s(u, "id").to_string(), s(u, "display_name").to_string()))
        .collect();
    let all = pipelines(c).await?;
    let (chosen, pipeline) = choose_pipelines(&all, input_str(inputs, "pipeline", "Sales"))?;
    let args = if chosen.len() == all.len() {
        json!({"status_type": "active"})
    } else {
        json!({"status_ids": chosen.iter().flat_map(|p| p.ids_of("active")).collect::<Vec<_>>()})
    };
    let deals = all_rows(c, "find_opportunities", args).await?;
    let ranked = coverage(&users, &deals, &quotas);
    let columns = ["rep", "open_pipeline_usd", "quota_usd", "coverage"].map(String::from).to_vec();
    let rows: Vec<Vec<Value>> = ranked
        .iter()
        .map(|r| vec![json!(r.name), dollars(r.open), dollars(r.quota), json!(((r.open as f64 / r.quota as f64) * 100.0).round() / 100.0)])
        .collect();
    let summary = match ranked.first() {
        Some(top) => format!(
            "{} has the highest coverage in {pipeline}: {} open against a {} quota ({:.2}×).",
            top.name,
            money(top.open),
            money(top.quota),
            top.open as f64 / top.quota as f64
        ),
        None => format!("None of the reps with a quota has open deals in {pipeline}."),
    };
    let chart = super::charts::choose("bar", "rep", "coverage", false, false, "Pipeline coverage (× quota)");
    Ok(Answer { columns, rows, chart, summary, pipeline, calls: vec![] })
}

/// The weighted pipeline (cents) on Monday and now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekChange {
    /// On the week's start.
    pub at_start: i64,
    /// Now.
    pub now: i64,
}

/// The weighted pipeline at `week_start` and now, in the pipelines whose active statuses are
/// `active_ids`: open deals now (with `expected_value` or value × confidence); a deal's status at the
/// week's start is the old status of its first change after it (priced as the change recorded it),
/// else its current status; deals created after it did not count then.
pub fn week_change(open_now: &[Value], changes: &[Value], created_since: &[Value], active_ids: &BTreeSet<String>, week_start: DateTime<Utc>) -> WeekChange {
    let priced = |d: &Value| match d.get("expected_value").and_then(Value::as_i64) {
        Some(e) => e,
        None => weighted(i(d, "value"), i(d, "confidence")),
    };
    let now: i64 = open_now.iter().map(priced).sum();
    let new_deals: BTreeSet<&str> =
        created_since.iter().filter(|d| time(d, "date_created").is_some_and(|t| t > week_start)).map(|d| s(d, "id")).collect();
    let mut first: BTreeMap<&str, (&Value, DateTime<Utc>)> = BTreeMap::new();
    for ch in changes {
        let Some(at) = time(ch, "activity_at") else { continue };
        if at <= week_start {
            continue;
        }
        let slot = first.entry(s(ch, "opportunity_id")).or_insert((ch, at));
        if at < slot.1 {
            *slot = (ch, at);
        }
    }
    let mut at_start = 0;
    for (id, (ch, _)) in &first {
        if !new_deals.contains(id) && active_ids.contains(s(ch, "old_status_id")) {
            at_start += weighted(i(ch, "opportunity_value"), i(ch, "opportunity_confidence"));
        }
    }
    for d in open_now {
        let id = s(d, "id");
        if !first.contains_key(id) && !new_deals.contains(id) {
            at_start += priced(d);
        }
    }
    WeekChange { at_start, now }
}

async fn weighted_pipeline_change(c: &mut impl Caller, inputs: &Value) -> Result<Answer, HostError> {
    let all = pipelines(c).await?;
    let (chosen, pipeline) = choose_pipelines(&all, input_str(inputs, "pipeline", "Sales"))?;
    let today = as_of(inputs)?;
    let start = week_start(today);
    let active: BTreeSet<String> = chosen.iter().flat_map(|p| p.ids_of("active")).collect();
    let open = all_rows(c, "find_opportunities", json!({"status_ids": active})).await?;
    let changes = all_rows(
        c,
        "activity_search",
        json!({"activity_types": ["activity.opportunity_status_change"], "activity_at": {"start": start.to_rfc3339()}}),
    )
    .await?;
    let created = all_rows(c, "find_opportunities", json!({"created_at": {"start": start.to_rfc3339()}})).await?;
    let w = week_change(&open, &changes, &created, &active, start);
    let columns = ["moment", "weighted_pipeline_usd"].map(String::from).to_vec();
    let rows = vec![
        vec![json!(format!("Monday {}", start.format("%Y-%m-%d"))), dollars(w.at_start)],
        vec![json!(format!("Now ({today})")), dollars(w.now)],
    ];
    let change = w.now - w.at_start;
    let summary = format!(
        "The weighted pipeline of {pipeline} went from {} on Monday {} to {} now: {}{}.",
        money(w.at_start),
        start.format("%Y-%m-%d"),
        money(w.now),
        if change < 0 { "-" } else { "+" },
        money(change.abs())
    );
    let chart = super::charts::choose("bar", "moment", "weighted_pipeline_usd", false, false, "Weighted pipeline ($)");
    Ok(Answer { columns, rows, chart, summary, pipeline, calls: vec![] })
}

/// The pipelines, their open stages and the reps, for the exploration forms.
pub async fn options(c: &mut impl Caller) -> Result<Value, HostError> {
    let all = pipelines(c).await?;
    let users = c.call("org_users", json!({})).await?;
    let reps: Vec<Value> = users
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|u| json!({"id": s(u, "id"), "name": s(u, "display_name")}))
        .collect();
    let pipelines: Vec<Value> = all
        .iter()
        .map(|p| {
            let stages: Vec<&str> = p.statuses.iter().filter(|(_, _, t)| t == "active").map(|(_, l, _)| l.as_str()).collect();
            json!({"id": p.id, "name": p.name, "stages": stages})
        })
        .collect();
    let mut m = Map::new();
    m.insert("pipelines".into(), Value::Array(pipelines));
    m.insert("reps".into(), Value::Array(reps));
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_deal_entered_its_stage_at_its_last_change_into_it_or_when_created() {
        let stage: BTreeSet<String> = ["stat_p".to_string()].into();
        let deals = vec![
            json!({"id": "o1", "date_created": "2026-09-01T00:00:00+00:00"}),
            json!({"id": "o2", "date_created": "2026-10-20T00:00:00+00:00"}),
            json!({"id": "o3", "date_created": "2026-11-10T00:00:00+00:00"}),
        ];
        let changes = vec![
            json!({"opportunity_id": "o1", "new_status_id": "stat_p", "activity_at": "2026-10-01T00:00:00+00:00"}),
            json!({"opportunity_id": "o1", "new_status_id": "stat_p", "activity_at": "2026-11-10T00:00:00+00:00"}),
            json!({"opportunity_id": "o2", "new_status_id": "stat_other", "activity_at": "2026-11-17T00:00:00+00:00"}),
        ];
        let got = stuck(&deals, &changes, &stage, 14, t("2026-11-18T00:00:00+00:00"));
        // o1 re-entered on 11-10 (8 days); o2 has no change into the stage: since creation (29 days);
        // o3 was created 8 days ago.
        assert_eq!(got.iter().map(|x| s(&x.deal, "id")).collect::<Vec<_>>(), ["o2"]);
        assert_eq!(got[0].since, t("2026-10-20T00:00:00+00:00"));
        assert_eq!(stuck(&deals, &changes, &stage, 7, t("2026-11-18T00:00:00+00:00")).len(), 3);
    }

    #[test]
    fn conversion_counts_won_leads_of_the_chosen_pipeline_only() {
        let leads = json!({"rows": [{"group": {"source": "Web"}, "values": {"count": 10}}, {"group": {"source": "Ref"}, "values": {"count": 4}}]});
        let won = json!({"rows": [
            {"group": {"lead.source": "Web", "status_id": "stat_won_sales"}, "values": {"cardinality(lead_id)": 3}},
            {"group": {"lead.source": "Web", "status_id": "stat_renewed"}, "values": {"cardinality(lead_id)": 2}},
            {"group": {"lead.source": "Ref", "status_id": "stat_lost"}, "values": {"cardinality(lead_id)": 1}}
        ]});
        let sales: BTreeSet<String> = ["stat_won_sales".to_string()].into();
        let got = conversion(&leads, &won, &sales);
        assert_eq!(got["Web"], (10, 3));
        assert_eq!(got["Ref"], (4, 0));
        let by_type = json!({"rows": [{"group": {"lead.source": "Web", "status_type": "won"}, "values": {"cardinality(lead_id)": 5}}]});
        assert_eq!(conversion(&leads, &by_type, &BTreeSet::new())["Web"], (10, 5));
    }

    #[test]
    fn coverage_divides_open_pipeline_by_the_users_quota() {
        let users = vec![("u1".to_string(), "Ann".to_string()), ("u2".to_string(), "Bob".to_string()), ("u3".to_string(), "Cid".to_string())];
        let deals = vec![json!({"user_id": "u1", "value": 100_00}), json!({"user_id": "u2", "value": 300_00}), json!({"user_id": "u1", "value": 50_00})];
        let quotas = quotas_of(&json!({"Ann": 100, "Bob": "1,000", "Cid": ""})).unwrap();
        let got = coverage(&users, &deals, &quotas);
        assert_eq!(got.iter().map(|c| (c.name.as_str(), c.open, c.quota)).collect::<Vec<_>>(), [("Ann", 150_00, 100_00), ("Bob", 300_00, 1000_00)]);
        assert!(quotas_of(&json!({"Ann": "lots"})).is_err());
        assert!(quotas_of(&json!({"Ann": -5})).is_err());
    }

    #[test]
    fn the_weighted_pipeline_on_monday_is_rebuilt_from_changes_and_new_deals() {
        let active: BTreeSet<String> = ["a1".to_string(), "a2".to_string()].into();
        let monday = t("2026-11-16T00:00:00+00:00");
        let open_now = vec![
            json!({"id": "o1", "value": 1000, "confidence": 50, "expected_value": 500}), // unchanged
            json!({"id": "o2", "value": 2000, "confidence": 10, "expected_value": 200}), // moved a1 → a2
            json!({"id": "o3", "value": 4000, "confidence": 50, "expected_value": 2000}), // created this week
        ];
        let changes = vec![
            json!({"opportunity_id": "o2", "old_status_id": "a1", "activity_at": "2026-11-17T00:00:00+00:00", "opportunity_value": 2000, "opportunity_confidence": 30}),
            json!({"opportunity_id": "o2", "old_status_id": "a2", "activity_at": "2026-11-17T05:00:00+00:00", "opportunity_value": 2000, "opportunity_confidence": 10}),
            // o4 was open on Monday and won since.
            json!({"opportunity_id": "o4", "old_status_id": "a2", "activity_at": "2026-11-16T09:00:00+00:00", "opportunity_value": 500, "opportunity_confidence": 80}),
            // o5 was in another pipeline's status: not counted.
            json!({"opportunity_id": "o5", "old_status_id": "x1", "activity_at": "2026-11-16T09:00:00+00:00", "opportunity_value": 500, "opportunity_confidence": 80}),
            // Before Monday: ignored.
            json!({"opportunity_id": "o1", "old_status_id": "a1", "activity_at": "2026-11-15T09:00:00+00:00", "opportunity_value": 1, "opportunity_confidence": 1}),
        ];
        let created = vec![json!({"id": "o3", "date_created": "2026-11-17T00:00:00+00:00"})];
        let w = week_change(&open_now, &changes, &created, &active, monday);
        assert_eq!(w, WeekChange { at_start: 500 + 600 + 400, now: 2700 });
    }

    #[test]
    fn money_reads_as_dollars() {
        assert_eq!(money(38_240_000), "$382,400.00");
        assert_eq!(money(-4_679_550), "-$46,795.50");
        assert_eq!(money(5), "$0.05");
    }

    #[test]
    fn quarters_weeks_and_pipelines_are_chosen_as_said() {
        let (s0, e0) = last_quarter(NaiveDate::from_ymd_opt(2026, 2, 10).unwrap());
        assert_eq!((s0.date_naive().to_string(), e0.date_naive().to_string()), ("2025-10-01".into(), "2026-01-01".into()));
        assert_eq!(week_start(NaiveDate::from_ymd_opt(2026, 11, 18).unwrap()).date_naive().to_string(), "2026-11-16");
        let all = pipelines_of(&json!({"data": [
            {"id": "pipe_s", "name": "Sales", "statuses": [{"id": "s1", "label": "Proposal", "type": "active"}]},
            {"id": "pipe_r", "name": "Renewals", "statuses": [{"id": "r1", "label": "Proposal", "type": "active"}]}
        ]}));
        let (one, said) = choose_pipelines(&all, "sales").unwrap();
        assert_eq!((one.len(), said.as_str()), (1, "the Sales pipeline"));
        assert_eq!(choose_pipelines(&all, "pipe_r").unwrap().0[0].name, "Renewals");
        assert_eq!(choose_pipelines(&all, ALL_PIPELINES).unwrap().0.len(), 2);
        assert!(choose_pipelines(&all, "Nope").unwrap_err().to_string().contains("Sales, Renewals"));
    }
}
