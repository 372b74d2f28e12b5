//! The product's questions, asked the way clariBI's AI engine asks them: an MCP client talks to
//! `claribi-host serve` over Streamable HTTP, lists the tools first, then runs a scripted sequence of
//! `tools/call`s per question and reads nothing but the tool results. Each answer is then checked
//! against what the Close stand-in's `reference` module computes from its dataset.
//!
//! The scripts (`fn ask_*`) see only an [`Engine`] — the MCP client — and what a user would tell the
//! engine (today's date, sales quotas). The tests alone look at the stand-in's dataset, to compute the
//! reference answers. Every script prints the tool sequence it used (`--nocapture` shows it).
//!
//! Also here: two Close organizations served at once, a large result that comes summarized and is
//! continued with `claribi__next_rows`, and a blocked write tool that never reaches the engine.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use close_standin::reference;
use e2e::claribi_host::engine::EngineOptions;
use e2e::engine::{dataset, Served, Source};
use e2e::{catalog_read_tools, catalog_write_tools};
use mcp_client::http::{BodyReader, HttpClient, HttpRequest, HttpResponse, Method, TransportError};
use mcp_client::{ClientConfig, McpClient, McpError, MemorySessionStore, NoAuth, NoLogger};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// A Wednesday: "this week" (from Monday 2026-11-16) and "last quarter" (2026-07-01 to 2026-10-01)
/// both have data, and neither starts on the anchor day itself.
const TODAY: &str = "2026-11-18";
const SEED: u64 = 42;

// ---------------------------------------------------------------------------------------------------
// The engine's side: an MCP client over a small blocking HTTP transport
// ---------------------------------------------------------------------------------------------------

/// A blocking HTTP transport for the workspace's MCP client (as in the host's benchmark).
struct UreqHttp {
    agent: ureq::Agent,
}

struct UreqBody(Box<dyn Read + Send + Sync>);

impl BodyReader for UreqBody {
    fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        let mut buf = vec![0u8; 16 * 1024];
        match self.0.read(&mut buf) {
            Ok(0) => Ok(None),
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(e) => Err(TransportError::Unavailable(e.to_string())),
        }
    }
}

impl HttpClient for UreqHttp {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut req = self.agent.request(request.method.as_str(), &request.url);
        for (k, v) in &request.headers {
            req = req.set(k, v);
        }
        let resp = match request.method {
            Method::Get => req.call(),
            _ => req.send_bytes(&request.body),
        };
        let resp = match resp {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(TransportError::Unavailable(e.to_string())),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .flat_map(|n| resp.all(&n).into_iter().map(move |v| (n.clone(), v.to_string())).collect::<Vec<_>>())
            .collect();
        Ok(HttpResponse { status, headers, body: Box::new(UreqBody(Box::new(resp.into_reader()))) })
    }
}

/// One result as the engine receives it.
struct Reply {
    /// `structuredContent`.
    structured: Value,
    /// `_meta` (the host's table view and the summarized flag).
    meta: Value,
    /// The text blocks.
    texts: Vec<String>,
    is_error: bool,
}

impl Reply {
    fn summarized(&self) -> bool {
        self.meta["claribi/summarized"] == true || self.structured["claribi"]["summarized"] == true
    }
}

/// The AI engine's MCP client: one session with `claribi-host serve`, the tool catalogue it was
/// offered, and a transcript of its calls.
struct Engine {
    http: UreqHttp,
    session: MemorySessionStore,
    endpoint: String,
    tools: Vec<Value>,
    transcript: Vec<String>,
}

impl Engine {
    /// Connect to `serve` at `endpoint` and list its tools first, as an engine does.
    fn connect(endpoint: &str) -> Engine {
        let mut e = Engine {
            http: UreqHttp { agent: ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(120)).build() },
            session: MemorySessionStore::default(),
            endpoint: endpoint.to_string(),
            tools: vec![],
            transcript: vec![],
        };
        e.tools = e.list_tools();
        e
    }

    fn client(&self) -> McpClient<'_> {
        McpClient::new(
            ClientConfig::new(&self.endpoint, "claribi-engine-test", "0.1.0"),
            &self.http,
            &NoAuth,
            &self.session,
            &NoLogger,
        )
        .expect("a valid endpoint")
    }

    /// `tools/list`, following `nextCursor`.
    fn list_tools(&mut self) -> Vec<Value> {
        let mut tools = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let params = cursor.as_ref().map(|c| json!({"cursor": c}));
            let page = self.client().request("tools/list", params).expect("tools/list answers");
            tools.extend(page["tools"].as_array().expect("a tools array").iter().cloned());
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        self.transcript.push("tools/list".into());
        tools
    }

    /// The served name of `connection`'s tool `tool`; the engine calls only tools it was offered.
    fn tool(&self, connection: &str, tool: &str) -> String {
        let name = format!("{connection}__{tool}");
        assert!(
            self.tools.iter().any(|t| t["name"] == name.as_str()),
            "`{name}` is not in the catalogue the engine was offered"
        );
        name
    }

    /// The catalogue entry of a served tool.
    fn tool_entry(&self, name: &str) -> &Value {
        self.tools.iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("`{name}` was not offered"))
    }

    /// `tools/call`, as sent: a result (maybe `isError`), or the JSON-RPC error.
    fn call_raw(&mut self, name: &str, args: Value) -> Result<Reply, McpError> {
        let mut shown = args.to_string();
        if shown.len() > 160 {
            shown = format!("{}…", shown.chars().take(160).collect::<String>());
        }
        self.transcript.push(format!("{name} {shown}"));
        let result = self.client().request("tools/call", Some(json!({"name": name, "arguments": args})))?;
        let texts = result["content"]
            .as_array()
            .map(|a| a.iter().filter_map(|b| b["text"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        Ok(Reply {
            structured: result.get("structuredContent").cloned().unwrap_or(Value::Null),
            meta: result.get("_meta").cloned().unwrap_or(Value::Null),
            texts,
            is_error: result["isError"] == true,
        })
    }

    /// A call that must succeed.
    fn call(&mut self, name: &str, args: Value) -> Reply {
        let r = self.call_raw(name, args).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!r.is_error, "{name} failed: {:?}", r.texts);
        r
    }

    /// The rows of one vendor page and the vendor's cursor for the next. A shortened page keeps its
    /// shape (the vendor's fields, the first rows of its list) and is continued with
    /// `claribi__next_rows` until every row has arrived.
    fn page(&mut self, name: &str, args: Value) -> (Vec<Map<String, Value>>, Option<String>) {
        let first = self.call(name, args);
        let field = if first.summarized() {
            first.structured["claribi"]["field"].as_str().expect("a shortened result names its list").to_string()
        } else {
            first.meta["claribi/table"]["source"].as_str().unwrap_or("data").to_string()
        };
        let mut raw: Vec<Value> = first.structured[&field]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no `{field}` rows in {}", first.structured))
            .clone();
        let cursor = first.structured["cursor"].as_str().map(str::to_string);
        if first.summarized() {
            let total = first.structured["claribi"]["total_elements"].as_u64().expect("a shortened result counts its rows") as usize;
            let mut next = first.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
            while let Some(c) = next {
                let more = self.call(NEXT_ROWS, json!({"cursor": c}));
                raw.extend(more.structured[&field].as_array().expect("more rows").iter().cloned());
                next = more.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
            }
            assert_eq!(raw.len(), total, "{name}: every row of the shortened page arrived");
        }
        let rows = raw.into_iter().map(|r| r.as_object().expect("object rows").clone()).collect();
        (rows, cursor)
    }

    /// Every row of a cursor-paged list tool. Each next page is asked for with the same filters plus
    /// the cursor: Close does not document whether a cursor carries the filters, and resending them is
    /// right either way.
    fn all_rows(&mut self, name: &str, args: Value) -> Vec<Map<String, Value>> {
        let (mut rows, mut cursor) = self.page(name, args.clone());
        while let Some(c) = cursor {
            let mut next_args = args.clone();
            next_args["cursor"] = json!(c);
            let (more, next) = self.page(name, next_args);
            rows.extend(more);
            cursor = next;
        }
        rows
    }

    /// Print and forget the transcript since the last call.
    fn print_transcript(&mut self, question: &str) {
        println!("\n=== {question}");
        for line in self.transcript.drain(..) {
            println!("  {line}");
        }
    }
}

const NEXT_ROWS: &str = "claribi__next_rows";

fn text<'a>(row: &'a Map<String, Value>, field: &str) -> &'a str {
    row.get(field).and_then(Value::as_str).unwrap_or_else(|| panic!("no string `{field}` in {row:?}"))
}

fn int(row: &Map<String, Value>, field: &str) -> i64 {
    row.get(field).and_then(Value::as_i64).unwrap_or_else(|| panic!("no integer `{field}` in {row:?}"))
}

fn time(row: &Map<String, Value>, field: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text(row, field)).unwrap_or_else(|e| panic!("`{field}`: {e}")).with_timezone(&Utc)
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// `value × confidence / 100`, rounded half up (cents).
fn weighted(value: i64, confidence: i64) -> i64 {
    (value * confidence + 50).div_euclid(100)
}

// ---------------------------------------------------------------------------------------------------
// The scripts: what the engine does for each question
// ---------------------------------------------------------------------------------------------------

/// "Show me deals that have been in Proposal stage longer than 14 days": `(opportunity id, entered
/// Proposal at)`, longest first. Labels repeat across pipelines (the Renewals pipeline has a Proposal
/// stage too), so the question names its pipeline; `None` matches the label in every pipeline.
fn ask_deals_stuck_in_stage(
    e: &mut Engine,
    conn: &str,
    pipeline: Option<&str>,
    stage: &str,
    days: i64,
    now: DateTime<Utc>,
) -> Vec<(String, DateTime<Utc>)> {
    // 1. Which status is "Proposal" (in which pipeline)?
    let pipelines = e.call(&e.tool(conn, "find_pipelines_and_opportunity_statuses"), json!({}));
    let stage_ids: BTreeSet<String> = pipelines.structured["data"]
        .as_array()
        .expect("pipelines")
        .iter()
        .filter(|p| pipeline.is_none_or(|name| p["name"] == name))
        .flat_map(|p| p["statuses"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["label"] == stage && s["type"] == "active")
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!stage_ids.is_empty(), "no `{stage}` status in any pipeline");
    // 2. The deals in it now.
    let deals = e.all_rows(&e.tool(conn, "find_opportunities"), json!({"status_ids": stage_ids}));
    // 3. When each entered it: the status changes of their leads (activity_search has no opportunity
    //    filter, so by lead, then matched on `opportunity_id`).
    let leads: BTreeSet<&str> = deals.iter().map(|d| text(d, "lead_id")).collect();
    let changes = e.all_rows(
        &e.tool(conn, "activity_search"),
        json!({"activity_types": ["activity.opportunity_status_change"], "lead_ids": leads}),
    );
    let mut entered: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for c in &changes {
        assert_eq!(text(c, "_type"), "OpportunityStatusChange", "only status changes were asked for");
        if stage_ids.contains(text(c, "new_status_id")) {
            let at = time(c, "activity_at");
            let slot = entered.entry(text(c, "opportunity_id").to_string()).or_insert(at);
            *slot = (*slot).max(at);
        }
    }
    // A deal created in the stage has no change into it: it entered when it was created.
    let mut stuck: Vec<(String, DateTime<Utc>)> = deals
        .iter()
        .map(|d| {
            let id = text(d, "id").to_string();
            let since = entered.get(&id).copied().unwrap_or_else(|| time(d, "date_created"));
            (id, since)
        })
        .filter(|(_, since)| now - *since > Duration::days(days))
        .collect();
    stuck.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let by_change = stuck.iter().filter(|(id, _)| entered.contains_key(id)).count();
    println!(
        "  → {} of {} deals in {stage} for more than {days} days ({by_change} entered by a status change, {} created in it; {} status changes read)",
        stuck.len(),
        deals.len(),
        stuck.len() - by_change,
        changes.len()
    );
    stuck
}

/// `[start, end)` of the calendar quarter before the one containing `today`.
fn last_quarter(today: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let first_month = (today.month() - 1) / 3 * 3 + 1;
    let this = NaiveDate::from_ymd_opt(today.year(), first_month, 1).unwrap();
    let prev = if first_month == 1 {
        NaiveDate::from_ymd_opt(today.year() - 1, 10, 1).unwrap()
    } else {
        NaiveDate::from_ymd_opt(today.year(), first_month - 3, 1).unwrap()
    };
    (midnight(prev), midnight(this))
}

/// Whether `get_fields`' object types list `field` for `object_type`, usable as `capability`
/// (`group_by` or `time_bucket`).
fn field_offers(types: &[Value], object_type: &str, field: &str, capability: &str) -> Option<bool> {
    let t = types.iter().find(|t| t["type"] == object_type)?;
    Some(t["fields"].as_array()?.iter().any(|f| f["name"] == field && f[capability] == true))
}

/// The whole of a result's `field` list: as it came, or, when the result came shortened around that
/// list, completed with `claribi__next_rows`.
fn whole_list(e: &mut Engine, reply: &Reply, field: &str) -> Vec<Value> {
    let mut items = reply.structured[field].as_array().cloned().unwrap_or_default();
    if reply.summarized() && reply.structured["claribi"]["field"] == field {
        let mut next = reply.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        while let Some(c) = next {
            let more = e.call(NEXT_ROWS, json!({"cursor": c}));
            items.extend(more.structured[field].as_array().expect("more elements").iter().cloned());
            next = more.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        }
        let total = reply.structured["claribi"]["total_elements"].as_u64().unwrap_or(0) as usize;
        assert_eq!(items.len(), total, "every element of `{field}` arrived");
    }
    items
}

/// "Compare conversion rate by source last quarter": per lead source, `(leads created, leads that
/// reached Won)`, and the quarter.
fn ask_conversion_by_source(
    e: &mut Engine,
    conn: &str,
    today: NaiveDate,
) -> ((DateTime<Utc>, DateTime<Utc>), BTreeMap<String, (u64, u64)>) {
    let (start, end) = last_quarter(today);
    let aggregation = e.tool(conn, "aggregation");
    // What may aggregation group and bucket by? get_fields says (completed with claribi__next_rows
    // when it comes shortened).
    let fields = e.call(&e.tool(conn, "get_fields"), json!({}));
    println!(
        "  get_fields: {} bytes of text, {}",
        fields.texts.first().map_or(0, String::len),
        if fields.summarized() { "shortened, completed with claribi__next_rows" } else { "whole" }
    );
    let types = whole_list(e, &fields, "object_types");
    for (t, f, cap) in [
        ("lead", "source", "group_by"),
        ("lead", "date_created", "time_bucket"),
        ("opportunity", "lead.source", "group_by"),
        ("opportunity", "lead.date_created", "time_bucket"),
        ("opportunity", "status_type", "group_by"),
    ] {
        assert_eq!(field_offers(&types, t, f, cap), Some(true), "get_fields offers {t}.{f} for {cap}");
    }
    let window = |field: &str| json!({"field": field, "start": iso(start), "end": iso(end)});
    // Leads created last quarter, per source.
    let leads = e.call(
        &aggregation,
        json!({"include_types": ["lead"], "aggregations": [{"aggregation_type": "count"}], "group_by": ["source"], "time_buckets": window("date_created")}),
    );
    // Of those leads, how many have a won deal: distinct lead ids of won opportunities, per source.
    let won = e.call(
        &aggregation,
        json!({
            "include_types": ["opportunity"],
            "aggregations": [{"aggregation_type": "cardinality", "field": "lead_id"}],
            "group_by": ["lead.source", "status_type"],
            "time_buckets": window("lead.date_created"),
        }),
    );
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for row in leads.structured["rows"].as_array().expect("rows") {
        let source = row["group"]["source"].as_str().unwrap_or("").to_string();
        out.entry(source).or_default().0 += row["values"]["count"].as_u64().unwrap();
    }
    for row in won.structured["rows"].as_array().expect("rows") {
        if row["group"]["status_type"] == "won" {
            let source = row["group"]["lead.source"].as_str().unwrap_or("").to_string();
            out.entry(source).or_default().1 += row["values"]["cardinality(lead_id)"].as_u64().unwrap();
        }
    }
    for (source, (n, w)) in &out {
        println!("  → {source:<10} {w:>3} of {n:>3} leads won ({:.1} %)", if *n == 0 { 0.0 } else { *w as f64 * 100.0 / *n as f64 });
    }
    ((start, end), out)
}

/// One rep's pipeline coverage.
#[derive(Debug, Clone, PartialEq)]
struct Coverage {
    user_id: String,
    name: String,
    open_pipeline: i64,
    quota: i64,
}

impl Coverage {
    fn ratio(&self) -> f64 {
        self.open_pipeline as f64 / self.quota as f64
    }
}

/// Highest coverage first; ties by name.
fn rank(mut v: Vec<Coverage>) -> Vec<Coverage> {
    v.sort_by(|a, b| b.ratio().total_cmp(&a.ratio()).then_with(|| a.name.cmp(&b.name)));
    v
}

/// "Which reps have the highest pipeline coverage?": open pipeline (cents) ÷ quota (cents, as the
/// user told the engine, by rep name), highest first.
fn ask_pipeline_coverage(e: &mut Engine, conn: &str, quotas: &BTreeMap<String, i64>) -> Vec<Coverage> {
    let users = e.call(&e.tool(conn, "org_users"), json!({}));
    let names: BTreeMap<String, String> = users.structured["data"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u["display_name"].as_str().unwrap().to_string()))
        .collect();
    // Open pipeline per owner, in one aggregation …
    let agg = e.call(
        &e.tool(conn, "aggregation"),
        json!({"include_types": ["opportunity"], "aggregations": [{"aggregation_type": "sum", "field": "value"}, {"aggregation_type": "count"}], "group_by": ["status_type", "user_id"]}),
    );
    let mut open: BTreeMap<String, i64> = BTreeMap::new();
    for row in agg.structured["rows"].as_array().expect("rows") {
        if row["group"]["status_type"] == "active" {
            open.insert(row["group"]["user_id"].as_str().unwrap().to_string(), row["values"]["sum(value)"].as_i64().unwrap());
        }
    }
    // … cross-checked against the open deals themselves.
    let deals = e.all_rows(&e.tool(conn, "find_opportunities"), json!({"status_type": "active"}));
    let mut by_owner: BTreeMap<String, i64> = BTreeMap::new();
    for d in &deals {
        assert_eq!(text(d, "status_type"), "active");
        *by_owner.entry(text(d, "user_id").to_string()).or_default() += int(d, "value");
    }
    assert_eq!(open, by_owner, "aggregation and the deals themselves agree on the open pipeline");
    let mut out = vec![];
    for (id, name) in &names {
        let Some(quota) = quotas.get(name) else { continue };
        out.push(Coverage { user_id: id.clone(), name: name.clone(), open_pipeline: open.get(id).copied().unwrap_or(0), quota: *quota });
    }
    let out = rank(out);
    for c in &out {
        println!("  → {:<18} open ${:>12.2} / quota ${:>12.2} = {:.2}×", c.name, c.open_pipeline as f64 / 100.0, c.quota as f64 / 100.0, c.ratio());
    }
    out
}

/// The weighted pipeline at the start of the week and now, reconstructed from tool results.
#[derive(Debug, PartialEq)]
struct WeekChange {
    week_start: DateTime<Utc>,
    at_start: i64,
    now: i64,
}

/// "How did our weighted pipeline change this week?" (cents). `now` is the engine's clock; the
/// status of a deal at the week's start is the old status of its first status change after it (or its
/// current status without one); a deal created after it did not count then.
///
/// What Close's read tools cannot tell: a deal's value or confidence *edited* without a status change.
/// A status-change activity carries the value and confidence at that moment, so a changed deal is
/// priced as it stood then; an unchanged deal is priced at its current values. No read tool exposes
/// field history (nor deals deleted this week), so edits of that kind are invisible to the engine; the
/// stand-in's dataset has none, and its reference prices every deal at its current values.
fn ask_weighted_pipeline_change(e: &mut Engine, conn: &str, now: DateTime<Utc>) -> WeekChange {
    let today = now.date_naive();
    let week_start = midnight(today - Duration::days(i64::from(today.weekday().num_days_from_monday())));
    let find = e.tool(conn, "find_opportunities");
    // The open deals now, with value × confidence.
    let open = e.all_rows(&find, json!({"status_type": "active"}));
    let mut weighted_now = 0;
    for d in &open {
        assert_eq!(int(d, "expected_value"), weighted(int(d, "value"), int(d, "confidence")), "expected_value = value × confidence");
        weighted_now += int(d, "expected_value");
    }
    // Every status change since Monday, and every deal created since Monday.
    let changes = e.all_rows(
        &e.tool(conn, "activity_search"),
        json!({"activity_types": ["activity.opportunity_status_change"], "activity_at": {"start": iso(week_start)}}),
    );
    let created = e.all_rows(&find, json!({"created_at": {"start": iso(week_start)}}));
    let new_deals: BTreeSet<&str> = created.iter().filter(|d| time(d, "date_created") > week_start).map(|d| text(d, "id")).collect();
    // The first change after Monday tells each changed deal's status then.
    let mut first_change: BTreeMap<&str, &Map<String, Value>> = BTreeMap::new();
    for c in &changes {
        let at = time(c, "activity_at");
        if at <= week_start {
            continue;
        }
        let slot = first_change.entry(text(c, "opportunity_id")).or_insert(c);
        if at < time(slot, "activity_at") {
            *slot = c;
        }
    }
    let mut at_start = 0;
    for (id, c) in &first_change {
        if !new_deals.contains(id) && text(c, "old_status_type") == "active" {
            at_start += weighted(int(c, "opportunity_value"), int(c, "opportunity_confidence"));
        }
    }
    for d in &open {
        let id = text(d, "id");
        if !first_change.contains_key(id) && !new_deals.contains(id) {
            at_start += int(d, "expected_value");
        }
    }
    let won = first_change.values().filter(|c| text(c, "new_status_type") == "won").count();
    let lost = first_change.values().filter(|c| text(c, "new_status_type") == "lost").count();
    println!(
        "  → weighted pipeline {} → {} (change {:+.2} $): {} new deals, {} status changes ({won} to won, {lost} to lost first)",
        at_start,
        weighted_now,
        (weighted_now - at_start) as f64 / 100.0,
        new_deals.len(),
        changes.len()
    );
    WeekChange { week_start, at_start, now: weighted_now }
}

// ---------------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Serve `sources` on a fresh runtime and run `script` (blocking, as the engine) against it.
fn with_served(sources: Vec<Source>, options: EngineOptions, script: impl FnOnce(&Served)) {
    let rt = runtime();
    let served = rt.block_on(Served::start(sources, options));
    script(&served);
    rt.block_on(served.shutdown());
}

fn one_close() -> Vec<Source> {
    vec![Source::new("close", dataset(SEED, TODAY))]
}

fn today() -> NaiveDate {
    TODAY.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------------
// The product questions
// ---------------------------------------------------------------------------------------------------

#[test]
fn deals_in_proposal_longer_than_14_days_are_those_the_reference_finds() {
    with_served(one_close(), EngineOptions::default(), |s| {
        let mut e = Engine::connect(&s.url);
        let got = ask_deals_stuck_in_stage(&mut e, "close", Some("Sales"), "Proposal", 14, midnight(today()));
        e.print_transcript("Show me deals that have been in Proposal stage longer than 14 days (Sales pipeline)");
        let ds = s.standin("close").dataset();
        let proposal = ds.opportunity_status_by_label("Sales", "Proposal").unwrap();
        let want: Vec<(String, DateTime<Utc>)> = reference::in_status_longer_than(ds, &proposal.id, 14)
            .iter()
            .map(|d| (d.opportunity.id.clone(), d.since))
            .collect();
        println!("  reference: {} deals; engine: {} deals", want.len(), got.len());
        assert!(!want.is_empty() && want.len() < reference::opportunities_by_status(ds, &proposal.id).len(), "a non-trivial answer");
        let got_ids: Vec<&String> = got.iter().map(|(id, _)| id).collect();
        let want_ids: Vec<&String> = want.iter().map(|(id, _)| id).collect();
        assert_eq!(got_ids, want_ids, "the same deals, longest first");
        // And the engine knows since when, to the microsecond the tools report.
        for ((id, got), (_, want)) in got.iter().zip(&want) {
            assert!((*got - *want).num_milliseconds().abs() < 1, "{id}: {got} vs {want}");
        }
    });
}

/// The Renewals pipeline has a Proposal stage too: matching the label in every pipeline answers another
/// question (more deals) than the one for the Sales pipeline — each pipeline's answer is its own.
#[test]
fn proposal_in_every_pipeline_is_another_answer_than_proposal_in_sales() {
    with_served(one_close(), EngineOptions::default(), |s| {
        let ds = s.standin("close").dataset();
        let mut e = Engine::connect(&s.url);
        let now = midnight(today());
        let everywhere = ask_deals_stuck_in_stage(&mut e, "close", None, "Proposal", 14, now);
        let sales = ask_deals_stuck_in_stage(&mut e, "close", Some("Sales"), "Proposal", 14, now);
        let renewals = ask_deals_stuck_in_stage(&mut e, "close", Some("Renewals"), "Proposal", 14, now);
        e.print_transcript("Proposal longer than 14 days: every pipeline, Sales, Renewals");
        let want = |pipeline: &str| -> Vec<String> {
            let status = ds.opportunity_status_by_label(pipeline, "Proposal").unwrap();
            reference::in_status_longer_than(ds, &status.id, 14).iter().map(|d| d.opportunity.id.clone()).collect()
        };
        let ids = |v: &[(String, DateTime<Utc>)]| v.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&sales), want("Sales"));
        assert_eq!(ids(&renewals), want("Renewals"));
        assert!(!renewals.is_empty(), "renewal deals sit in Proposal too");
        assert_eq!(everywhere.len(), sales.len() + renewals.len(), "every pipeline = Sales + Renewals");
        let mut union: Vec<(String, DateTime<Utc>)> = sales.iter().chain(renewals.iter()).cloned().collect();
        union.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        assert_eq!(everywhere, union);
        assert_ne!(ids(&everywhere), want("Sales"), "the pipeline matters");
    });
}

#[test]
fn conversion_by_source_last_quarter_matches_the_reference() {
    with_served(one_close(), EngineOptions::default(), |s| {
        let mut e = Engine::connect(&s.url);
        let ((start, end), got) = ask_conversion_by_source(&mut e, "close", today());
        e.print_transcript("Compare conversion rate by source last quarter");
        let ds = s.standin("close").dataset();
        assert_eq!((start, end), reference::previous_quarter(today()), "the same quarter");
        let want: BTreeMap<String, (u64, u64)> = reference::lead_source_conversion(ds, start, end)
            .into_iter()
            .map(|(k, c)| (k, (c.leads as u64, c.won_leads as u64)))
            .collect();
        println!("  reference: {want:?}");
        assert!(want.len() >= 4 && want.values().any(|(_, w)| *w > 0), "a non-trivial answer: {want:?}");
        assert_eq!(got, want);
    });
}

/// Quotas as the user gives them to the engine: by rep name, in cents.
fn quotas_for(ds: &close_standin::Dataset) -> BTreeMap<String, i64> {
    ds.users.iter().enumerate().map(|(i, u)| (u.display_name(), (150_000 + 50_000 * (i as i64 % 4)) * 100)).collect()
}

#[test]
fn reps_ranked_by_pipeline_coverage_match_the_reference() {
    with_served(one_close(), EngineOptions::default(), |s| {
        let ds = s.standin("close").dataset();
        let quotas = quotas_for(ds);
        let mut e = Engine::connect(&s.url);
        let got = ask_pipeline_coverage(&mut e, "close", &quotas);
        e.print_transcript("Which reps have the highest pipeline coverage?");
        let open = reference::open_pipeline_value_per_user(ds);
        let want = rank(
            ds.users
                .iter()
                .map(|u| Coverage {
                    user_id: u.id.clone(),
                    name: u.display_name(),
                    open_pipeline: open.get(&u.id).copied().unwrap_or(0),
                    quota: quotas[&u.display_name()],
                })
                .collect(),
        );
        assert!(want.iter().filter(|c| c.open_pipeline > 0).count() >= 5, "a non-trivial answer");
        assert_eq!(got, want, "the same reps, figures and order");
    });
}

#[test]
fn the_weighted_pipeline_change_this_week_matches_the_reference() {
    with_served(one_close(), EngineOptions::default(), |s| {
        let mut e = Engine::connect(&s.url);
        let got = ask_weighted_pipeline_change(&mut e, "close", midnight(today()));
        e.print_transcript("How did our weighted pipeline change this week?");
        let ds = s.standin("close").dataset();
        let monday = reference::week_start(today());
        assert_eq!(got.week_start, monday, "the week starts on Monday");
        assert_ne!(monday, ds.as_of(), "the anchor is not a Monday, so the week has begun");
        let want = WeekChange {
            week_start: monday,
            at_start: reference::weighted_pipeline_at(ds, monday),
            now: reference::weighted_pipeline_at(ds, ds.as_of()),
        };
        println!(
            "  reference: {} → {} (change {}); engine: {} → {} (change {})",
            want.at_start,
            want.now,
            reference::weighted_pipeline_change(ds, monday, ds.as_of()),
            got.at_start,
            got.now,
            got.now - got.at_start
        );
        assert_eq!(got, want);
        assert_ne!(got.now - got.at_start, 0, "a non-trivial answer");
        assert_eq!(got.now - got.at_start, reference::weighted_pipeline_change(ds, monday, ds.as_of()));
    });
}

// ---------------------------------------------------------------------------------------------------
// Serving: several organizations, large results, blocked tools
// ---------------------------------------------------------------------------------------------------

#[test]
fn two_close_organizations_are_served_at_once_each_under_its_own_name() {
    let sources = vec![Source::new("acme", dataset(42, TODAY)), Source::new("globex", dataset(7, TODAY))];
    with_served(sources, EngineOptions::default(), |s| {
        let (a, b) = (s.standin("acme").dataset(), s.standin("globex").dataset());
        assert_ne!(a.organization.id, b.organization.id, "two organizations");
        let mut e = Engine::connect(&s.url);
        let reads: BTreeSet<String> = catalog_read_tools().into_iter().collect();
        for conn in ["acme", "globex"] {
            let served: BTreeSet<String> = e
                .tools
                .iter()
                .filter_map(|t| t["name"].as_str()?.strip_prefix(&format!("{conn}__")).map(str::to_string))
                .collect();
            assert_eq!(served, reads, "{conn}: every read tool, namespaced");
            let t = e.tool_entry(&format!("{conn}__find_opportunities"));
            assert!(t["description"].as_str().unwrap().contains(&format!("Data source `{conn}`")), "{t}");
            assert_eq!(t["annotations"]["readOnlyHint"], true);
        }
        assert_eq!(e.tools.len(), 2 * reads.len() + 1, "both sets plus claribi__next_rows");

        let before = (s.standin("acme").counters().tool_calls_total, s.standin("globex").counters().tool_calls_total);
        for (conn, ds) in [("acme", a), ("globex", b)] {
            let org = e.call(&e.tool(conn, "org_info"), json!({}));
            assert_eq!(org.structured["organization"]["id"], ds.organization.id.as_str(), "{conn} reaches its own organization");
            let users = e.call(&e.tool(conn, "org_users"), json!({}));
            let ids: BTreeSet<&str> = users.structured["data"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
            assert_eq!(ids, ds.users.iter().map(|u| u.id.as_str()).collect());
            let open = e.all_rows(&e.tool(conn, "find_opportunities"), json!({"status_type": "active"}));
            let total: i64 = open.iter().map(|d| int(d, "value")).sum();
            let want: i64 = reference::open_pipeline_value_per_user(ds).values().sum();
            assert_eq!(total, want, "{conn}: its own open pipeline");
        }
        let after = (s.standin("acme").counters().tool_calls_total, s.standin("globex").counters().tool_calls_total);
        assert!(after.0 > before.0 && after.1 > before.1, "each organization's stand-in answered its own calls");
        let a_users: BTreeSet<&str> = a.users.iter().map(|u| u.id.as_str()).collect();
        assert!(b.users.iter().all(|u| !a_users.contains(u.id.as_str())), "the organizations share no user");
        e.print_transcript("two organizations");
    });
}

#[test]
fn a_large_result_comes_summarized_and_next_rows_yields_every_row_exactly_once() {
    let max = 4096;
    with_served(one_close(), EngineOptions { max_result_bytes: max, ..EngineOptions::default() }, |s| {
        let ds = s.standin("close").dataset();
        let mut e = Engine::connect(&s.url);
        let find = e.tool("close", "find_opportunities");
        // One vendor page by hand: the summary, then every continuation.
        let first = e.call(&find, json!({}));
        assert!(first.summarized(), "a 50-deal page is far above {max} bytes");
        assert_eq!(first.meta["claribi/summarized"], true);
        assert_eq!(serde_json::from_str::<Value>(&first.texts[0]).unwrap(), first.structured, "text = structuredContent");
        let note = &first.structured["claribi"];
        assert_eq!(note["field"], "data");
        assert_eq!(note["total_elements"].as_u64().unwrap(), 50, "one vendor page");
        assert_eq!(first.structured["has_more"], true, "the vendor's pagination state is kept");
        assert_eq!(first.structured["total_results"], ds.opportunities.len());
        let ids_of = |v: &Value| -> Vec<String> {
            v["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
        };
        let mut ids = ids_of(&first.structured);
        let mut cursor = note["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        assert_eq!(note["continue"]["tool"], NEXT_ROWS);
        let mut continuations = 0;
        while let Some(c) = cursor {
            let page = e.call(NEXT_ROWS, json!({"cursor": c}));
            continuations += 1;
            assert!(!ids_of(&page.structured).is_empty(), "progress every time");
            ids.extend(ids_of(&page.structured));
            let again = e.call_raw(NEXT_ROWS, json!({"cursor": c})).unwrap();
            assert!(again.is_error, "a cursor works once");
            assert_eq!(again.structured["error"]["kind"], "usage");
            cursor = page.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        }
        assert!(continuations >= 2, "{continuations}");
        let mut newest: Vec<&close_standin::data::Opportunity> = ds.opportunities.iter().collect();
        newest.sort_by(|a, b| b.date_updated.cmp(&a.date_updated).then_with(|| a.id.cmp(&b.id)));
        let want: Vec<String> = newest.iter().take(50).map(|o| o.id.clone()).collect();
        assert_eq!(ids, want, "the page's 50 deals, each exactly once, in order");

        // Every deal through every vendor page and every continuation: each exactly once.
        let all = e.all_rows(&find, json!({}));
        let mut seen = BTreeMap::new();
        for r in &all {
            *seen.entry(text(r, "id").to_string()).or_insert(0) += 1;
        }
        assert_eq!(all.len(), ds.opportunities.len());
        assert!(seen.values().all(|n| *n == 1), "no deal twice");
        assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), ds.opportunities.iter().map(|o| o.id.clone()).collect());
        // The rows keep the figures.
        for r in &all {
            let o = ds.opportunity(text(r, "id")).unwrap();
            assert_eq!((int(r, "value"), int(r, "confidence")), (o.value, o.confidence));
        }
        let bogus = e.call_raw(NEXT_ROWS, json!({"cursor": "rows_000000000000000000000000"})).unwrap();
        assert!(bogus.is_error && bogus.structured["error"]["kind"] == "usage");
    });
}

#[test]
fn a_blocked_tool_never_appears_and_calling_it_is_an_error() {
    let sources = vec![Source::new("close", dataset(SEED, TODAY)).with_scope("mcp.write_destructive")];
    with_served(sources, EngineOptions::default(), |s| {
        let rt = runtime();
        let listing = rt.block_on(s.host.list_tools("close")).unwrap();
        let blocked: BTreeSet<String> = listing.blocked.iter().map(|b| b.name.clone()).collect();
        let writes: BTreeSet<String> = catalog_write_tools().into_iter().collect();
        assert_eq!(blocked, writes, "the server offered its write tools, and the host withheld them");

        let mut e = Engine::connect(&s.url);
        let served: BTreeSet<String> =
            e.tools.iter().filter_map(|t| t["name"].as_str()?.strip_prefix("close__").map(str::to_string)).collect();
        assert_eq!(served, catalog_read_tools().into_iter().collect::<BTreeSet<_>>(), "only the read tools");
        for w in &writes {
            assert!(!served.contains(w), "{w} is offered");
        }
        let lead = &s.standin("close").dataset().leads[0].id;
        for (tool, args) in [
            ("delete_lead", json!({"lead_id": lead})),
            ("update_lead", json!({"lead_id": lead, "name": "pwned"})),
            ("create_opportunity", json!({"lead_id": lead})),
        ] {
            match e.call_raw(&format!("close__{tool}"), args) {
                Err(McpError::JsonRpc { code, message, .. }) => {
                    assert_eq!(code, -32602, "invalid params: {message}");
                    assert!(message.contains("Unknown tool"), "{message}");
                }
                Err(other) => panic!("{tool}: unexpected error {other}"),
                Ok(r) => panic!("{tool} answered: {:?}", r.texts),
            }
        }
        assert_eq!(s.standin("close").counters().write_tool_calls, 0, "no write call reached Close");
        // The read tools still work.
        let org = e.call(&e.tool("close", "org_info"), json!({}));
        assert_eq!(org.structured["organization"]["id"], s.standin("close").dataset().organization.id.as_str());
    });
}

// ---------------------------------------------------------------------------------------------------
// Result shaping at the engine's edge
// ---------------------------------------------------------------------------------------------------

/// `--max-result-bytes` bounds the text of a shortened result and of each continuation.
#[test]
fn a_summarized_result_and_each_continuation_fit_in_max_result_bytes() {
    let max = 4096;
    with_served(one_close(), EngineOptions { max_result_bytes: max, ..EngineOptions::default() }, |s| {
        let mut e = Engine::connect(&s.url);
        let first = e.call(&e.tool("close", "find_opportunities"), json!({}));
        assert!(first.summarized());
        let mut sizes = vec![first.texts[0].len()];
        let mut cursor = first.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        while let Some(c) = cursor {
            let page = e.call(NEXT_ROWS, json!({"cursor": c}));
            sizes.push(page.texts[0].len());
            cursor = page.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        }
        assert!(sizes.iter().all(|n| *n <= max), "text sizes of the summary and its continuations: {sizes:?} (max {max})");
    });
}

/// `get_fields` is larger than the default 32 KiB: it comes shortened, and its continuations bring
/// every object type with its whole field list, so the engine learns which fields aggregation accepts.
#[test]
fn get_fields_reaches_the_engine_with_the_fields_aggregation_accepts() {
    with_served(one_close(), EngineOptions::default(), |s| {
        let mut e = Engine::connect(&s.url);
        let r = e.call(&e.tool("close", "get_fields"), json!({}));
        let mut received = r.texts.join(" ");
        let mut cursor = r.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        while let Some(c) = cursor {
            let page = e.call(NEXT_ROWS, json!({"cursor": c}));
            received.push_str(&page.texts.join(" "));
            cursor = page.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        }
        assert!(
            received.contains("\"lead.source\"") && received.contains("\"lead.date_created\""),
            "the engine received ({} bytes, summarized: {}): {}",
            received.len(),
            r.summarized(),
            received.chars().take(600).collect::<String>()
        );
    });
}

/// A single record larger than the budget keeps its own fields (id, name, source) when shortened.
#[test]
fn a_large_single_record_keeps_its_own_fields_when_summarized() {
    let max = 2048;
    with_served(one_close(), EngineOptions { max_result_bytes: max, ..EngineOptions::default() }, |s| {
        let ds = s.standin("close").dataset();
        let lead = ds
            .leads
            .iter()
            .max_by_key(|l| ds.lead_json(l).to_string().len())
            .expect("leads");
        assert!(ds.lead_json(lead).to_string().len() > max, "the lead is larger than the budget");
        let mut e = Engine::connect(&s.url);
        let r = e.call(&e.tool("close", "fetch_lead"), json!({"id": lead.id}));
        assert!(r.summarized());
        assert_eq!(
            (r.structured["id"].as_str(), r.structured["name"].as_str(), r.structured["source"].as_str()),
            (Some(lead.id.as_str()), Some(lead.name.as_str()), Some(lead.source.as_str())),
            "the summary the engine received: {}",
            r.texts[0].chars().take(600).collect::<String>()
        );
    });
}
