//! The read tools, answered from the dataset.
//!
//! Result payloads mirror Close's REST objects (`close-mcp.md` §4) plus the resolved `*_name` fields the
//! tool descriptions promise (§6: "mirror REST objects"). Lists use Close's REST envelope (§5):
//! `{"data": […], "has_more": bool}`; cursor-paged tools add `"cursor"` (opaque, `null` on the last page)
//! and `"total_results"`. Exact MCP payloads are not published, so every shape here is the stand-in's
//! choice, documented on the function that builds it.
//!
//! Errors are `Err(one line)`; the server turns them into a `CallToolResult` with `isError: true`.
//! Unknown ids answer `Not found: no <thing> with id '<id>'`.

use std::collections::{BTreeSet, HashSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};

use crate::aggregation;
use crate::auth::Grant;
use crate::catalog::{self, truncate};
use crate::cursor;
use crate::data::{
    day_start, iso, Activity, ActivityDetails, ActivityKind, CustomFieldObject, Dataset, StatusType,
};

/// Result of a tool: the JSON document, or a one-line error message.
pub type ToolResult = Result<Value, String>;

/// Page size of every cursor-paged tool.
pub const PAGE_SIZE: usize = 50;

// ---------------------------------------------------------------------------------------------------
// Argument helpers
// ---------------------------------------------------------------------------------------------------

pub(crate) fn arg_str<'a>(
    args: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("Invalid argument '{name}': expected a string")),
    }
}

fn required_str<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    arg_str(args, name)?.ok_or_else(|| format!("Missing required argument '{name}'"))
}

pub(crate) fn arg_strs(
    args: &Map<String, Value>,
    name: &str,
) -> Result<Option<Vec<String>>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("Invalid argument '{name}': items must be strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(_) => Err(format!(
            "Invalid argument '{name}': expected an array of strings"
        )),
    }
}

fn arg_bool(args: &Map<String, Value>, name: &str) -> Result<Option<bool>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("Invalid argument '{name}': expected a boolean")),
    }
}

/// A half-open time interval `[start, end)`; either bound may be open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl TimeRange {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t < e)
    }
    pub fn contains_date(&self, d: NaiveDate) -> bool {
        self.contains(day_start(d))
    }
}

/// Parses `2025-01-15`, RFC 3339 timestamps and naive `2025-01-15T10:00:00` (UTC). The flag says
/// whether only a date was given.
pub fn parse_time(s: &str) -> Option<(DateTime<Utc>, bool)> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some((day_start(d), true));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some((t.with_timezone(&Utc), false));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some((Utc.from_utc_datetime(&t), false));
        }
    }
    None
}

fn bad_time(name: &str, s: &str) -> String {
    format!(
        "Invalid argument '{name}': '{}' is not an ISO-8601 date or timestamp",
        truncate(s, 40)
    )
}

/// Parses a date-range argument: `{"start": …, "end": …}` (aliases gte/gt/from/after, lte/lt/to/before)
/// or a string (`2025-01-15`, `2025-01-01/2025-04-01`, or a timestamp meaning "from then on").
pub fn parse_range(name: &str, v: &Value) -> Result<TimeRange, String> {
    let one_day = Duration::days(1);
    // Saturating: far-future input must not overflow.
    let plus = |t: DateTime<Utc>, d: Duration| t.checked_add_signed(d).unwrap_or(t);
    let time = |s: &Value| -> Result<(DateTime<Utc>, bool), String> {
        let text = s
            .as_str()
            .ok_or_else(|| format!("Invalid argument '{name}': bounds must be strings"))?;
        parse_time(text).ok_or_else(|| bad_time(name, text))
    };
    match v {
        Value::Object(o) => {
            let mut r = TimeRange::default();
            for (k, bound) in o {
                if bound.is_null() {
                    continue;
                }
                let (t, date_only) = time(bound)?;
                match k.as_str() {
                    "start" | "gte" | "from" | "on_or_after" => r.start = Some(t),
                    "gt" | "after" => {
                        r.start = Some(if date_only {
                            plus(t, one_day)
                        } else {
                            plus(t, Duration::milliseconds(1))
                        })
                    }
                    "end" | "lte" | "to" | "on_or_before" => {
                        r.end = Some(if date_only {
                            plus(t, one_day)
                        } else if k == "end" {
                            t
                        } else {
                            plus(t, Duration::milliseconds(1))
                        })
                    }
                    "lt" | "before" => r.end = Some(t),
                    other => {
                        return Err(format!(
                            "Invalid argument '{name}': unknown key '{}' (use start/end)",
                            truncate(other, 30)
                        ))
                    }
                }
            }
            Ok(r)
        }
        Value::String(s) => {
            if let Some((a, b)) = s.split_once('/') {
                let start = if a.trim().is_empty() {
                    None
                } else {
                    Some(parse_time(a).ok_or_else(|| bad_time(name, a))?.0)
                };
                let end = if b.trim().is_empty() {
                    None
                } else {
                    Some(parse_time(b).ok_or_else(|| bad_time(name, b))?.0)
                };
                return Ok(TimeRange { start, end });
            }
            let (t, date_only) = parse_time(s).ok_or_else(|| bad_time(name, s))?;
            Ok(if date_only {
                TimeRange {
                    start: Some(t),
                    end: Some(plus(t, one_day)),
                }
            } else {
                TimeRange {
                    start: Some(t),
                    end: None,
                }
            })
        }
        _ => Err(format!(
            "Invalid argument '{name}': expected a date range object or an ISO string"
        )),
    }
}

fn arg_range(args: &Map<String, Value>, name: &str) -> Result<Option<TimeRange>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_range(name, v).map(Some),
    }
}

fn not_found(thing: &str, id: &str) -> String {
    format!("Not found: no {thing} with id '{}'", truncate(id, 80))
}

fn data(items: Vec<Value>) -> Value {
    json!({ "data": items, "has_more": false })
}

/// Cursor paging shared by the list tools: the query (arguments minus `cursor`) travels in the cursor.
/// Result: `{"data": […], "has_more": bool, "cursor": "…" | null, "total_results": n}`.
fn paged(
    tool: &str,
    args: &Map<String, Value>,
    run: impl Fn(&Map<String, Value>) -> Result<Vec<Value>, String>,
) -> ToolResult {
    let (query, offset) = match arg_str(args, "cursor")? {
        Some(c) if !c.is_empty() => {
            let (q, offset) = cursor::decode(tool, c).ok_or_else(|| {
                "Invalid argument 'cursor': not a cursor returned by this tool".to_string()
            })?;
            let q = q.as_object().cloned().unwrap_or_default();
            // A cursor may be forged: validate its query like fresh arguments.
            let q = match catalog::catalog().get(tool) {
                Some(spec) => catalog::validate_arguments(spec, Some(&q))?,
                None => q,
            };
            (q, offset)
        }
        _ => {
            let mut q = args.clone();
            q.remove("cursor");
            (q, 0)
        }
    };
    let all = run(&query)?;
    let total = all.len();
    if offset > total {
        return Err("Invalid argument 'cursor': it points past the end of the results".into());
    }
    let end = (offset + PAGE_SIZE).min(total);
    let page: Vec<Value> = all[offset..end].to_vec();
    let next = (end < total).then(|| cursor::encode(tool, &Value::Object(query.clone()), end));
    Ok(json!({ "data": page, "has_more": next.is_some(), "cursor": next, "total_results": total }))
}

fn name_matches(name: &str, needle: Option<&str>) -> bool {
    needle.is_none_or(|n| name.to_lowercase().contains(&n.trim().to_lowercase()))
}

// ---------------------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------------------

/// Runs read tool `name` with already validated `args` (see [`catalog::validate_arguments`]).
pub fn call_read_tool(
    ds: &Dataset,
    grant: &Grant,
    name: &str,
    args: &Map<String, Value>,
) -> ToolResult {
    match name {
        "org_info" => org_info(ds, grant),
        "org_users" => Ok(data(ds.users.iter().map(|u| ds.user_json(u)).collect())),
        "find_pipelines_and_opportunity_statuses" => Ok(data(
            ds.pipelines.iter().map(|p| ds.pipeline_json(p)).collect(),
        )),
        "fetch_pipeline_and_opportunity_statuses" => {
            let id = required_str(args, "id")?;
            ds.pipeline(id)
                .map(|p| ds.pipeline_json(p))
                .ok_or_else(|| not_found("pipeline", id))
        }
        "fetch_opportunity_status" => {
            let id = required_str(args, "id")?;
            ds.opportunity_status(id)
                .map(|s| ds.opportunity_status_json(s))
                .ok_or_else(|| not_found("opportunity status", id))
        }
        "find_lead_statuses" => Ok(data(
            ds.lead_statuses
                .iter()
                .map(|s| ds.lead_status_json(s))
                .collect(),
        )),
        "fetch_lead_status" => {
            let id = required_str(args, "id")?;
            ds.lead_status(id)
                .map(|s| ds.lead_status_json(s))
                .ok_or_else(|| not_found("lead status", id))
        }
        "find_opportunities" => paged(name, args, |q| find_opportunities(ds, q)),
        "fetch_opportunity" => {
            let id = required_str(args, "id")?;
            ds.opportunity(id)
                .map(|o| ds.opportunity_json(o))
                .ok_or_else(|| not_found("opportunity", id))
        }
        "fetch_lead" => {
            let id = required_str(args, "id")?;
            ds.lead(id)
                .map(|l| ds.lead_json(l))
                .ok_or_else(|| not_found("lead", id))
        }
        "fetch_contact" => {
            let id = required_str(args, "id")?;
            ds.contact(id)
                .map(|c| ds.contact_json(c))
                .ok_or_else(|| not_found("contact", id))
        }
        "fetch" => fetch(ds, required_str(args, "id")?),
        "lead_search" => lead_search(ds, args),
        "search" => search(ds, required_str(args, "query")?, 0),
        "paginate_search" => paginate_search(ds, args),
        "activity_search" => paged(name, args, |q| activity_search(ds, q)),
        "fetch_call" => fetch_activity(ds, required_str(args, "id")?, ActivityKind::Call, "call"),
        "fetch_note" => fetch_activity(ds, required_str(args, "id")?, ActivityKind::Note, "note"),
        "fetch_custom_activity_instance" => fetch_activity(
            ds,
            required_str(args, "id")?,
            ActivityKind::CustomActivity,
            "custom activity instance",
        ),
        "fetch_meeting_transcript" => {
            let id = required_str(args, "id")?;
            match ds.activity(id) {
                Some(a) if a.kind() == ActivityKind::Meeting => {
                    Ok(json!({ "meeting_id": a.id, "transcripts": [] }))
                }
                _ => Err(not_found("meeting", id)),
            }
        }
        "find_notes" => paged(name, args, |q| find_notes(ds, q)),
        "find_custom_activity_instances" => {
            paged(name, args, |q| find_custom_activity_instances(ds, q))
        }
        "fetch_task" => {
            let id = required_str(args, "id")?;
            ds.task(id)
                .map(|t| ds.task_json(t))
                .ok_or_else(|| not_found("task", id))
        }
        "find_tasks" => paged(name, args, |q| find_tasks(ds, q)),
        "find_call_tasks" => paged(name, args, |_| Ok(vec![])),
        "fetch_call_task" => Err(not_found("call task", required_str(args, "id")?)),
        "fetch_comment" => Err(not_found("comment", required_str(args, "id")?)),
        "fetch_custom_object_instance" => Err(not_found(
            "custom object instance",
            required_str(args, "id")?,
        )),
        "fetch_custom_object_type" => {
            Err(not_found("custom object type", required_str(args, "id")?))
        }
        "find_custom_object_types" => Ok(data(vec![])),
        "find_custom_object_instances" => {
            let lead_id = required_str(args, "lead_id")?;
            if ds.lead(lead_id).is_none() {
                return Err(not_found("lead", lead_id));
            }
            paged(name, args, |_| Ok(vec![]))
        }
        "find_custom_activities" => Ok(data(
            ds.custom_activity_types
                .iter()
                .map(|t| ds.custom_activity_type_json(t))
                .collect(),
        )),
        "find_lead_custom_fields" => Ok(custom_fields(ds, CustomFieldObject::Lead)),
        "find_contact_custom_fields" => Ok(custom_fields(ds, CustomFieldObject::Contact)),
        "find_opportunity_custom_fields" => Ok(custom_fields(ds, CustomFieldObject::Opportunity)),
        "customized_builtin_labels" => Ok(data(vec![])),
        "find_email_templates" => paged(name, args, |q| {
            let name_search = arg_str(q, "name_search")?;
            let status = arg_str(q, "status")?.unwrap_or("active");
            Ok(ds
                .email_templates
                .iter()
                .filter(|t| {
                    status_filter(status, t.is_archived) && name_matches(&t.name, name_search)
                })
                .map(|t| ds.email_template_json(t))
                .collect())
        }),
        "fetch_email_template" => {
            let id = required_str(args, "id")?;
            ds.email_templates
                .iter()
                .find(|t| t.id == id)
                .map(|t| ds.email_template_json(t))
                .ok_or_else(|| not_found("email template", id))
        }
        "find_sms_templates" => paged(name, args, |q| {
            let name_search = arg_str(q, "name_search")?;
            let status = arg_str(q, "status")?.unwrap_or("active");
            Ok(ds
                .sms_templates
                .iter()
                .filter(|t| {
                    status_filter(status, t.is_archived) && name_matches(&t.name, name_search)
                })
                .map(|t| ds.sms_template_json(t))
                .collect())
        }),
        "fetch_sms_template" => {
            let id = required_str(args, "id")?;
            ds.sms_templates
                .iter()
                .find(|t| t.id == id)
                .map(|t| ds.sms_template_json(t))
                .ok_or_else(|| not_found("SMS template", id))
        }
        "find_lead_smart_views" => paged(name, args, |q| {
            let name_search = arg_str(q, "name_search")?;
            let pinned_only = arg_str(q, "filter")? == Some("pinned");
            Ok(ds
                .smart_views
                .iter()
                .filter(|s| (!pinned_only || s.pinned) && name_matches(&s.name, name_search))
                .map(|s| ds.smart_view_json(s))
                .collect())
        }),
        "fetch_lead_smart_view" => {
            let id = required_str(args, "id")?;
            ds.smart_views
                .iter()
                .find(|s| s.id == id)
                .map(|s| ds.smart_view_json(s))
                .ok_or_else(|| not_found("smart view", id))
        }
        "find_call_outcomes" => Ok(data(
            ds.call_outcomes
                .iter()
                .map(|o| ds.outcome_json(o))
                .collect(),
        )),
        "find_meeting_outcomes" => Ok(data(
            ds.meeting_outcomes
                .iter()
                .map(|o| ds.outcome_json(o))
                .collect(),
        )),
        "find_groups" => Ok(data(ds.groups.iter().map(|g| ds.group_json(g)).collect())),
        "find_forms" => Ok(data(ds.forms.iter().map(|f| ds.form_json(f)).collect())),
        "find_workflows" => paged(name, args, |q| {
            let name_search = arg_str(q, "name_search")?;
            let status = arg_str(q, "status")?.unwrap_or("all");
            Ok(ds
                .workflows
                .iter()
                .filter(|w| {
                    (status == "all" || w.status == status) && name_matches(&w.name, name_search)
                })
                .map(|w| ds.workflow_json(w))
                .collect())
        }),
        "find_scheduling_links" => paged(name, args, |q| {
            let name_search = arg_str(q, "name_search")?;
            Ok(ds
                .scheduling_links
                .iter()
                .filter(|s| name_matches(&s.name, name_search))
                .map(|s| ds.scheduling_link_json(s))
                .collect())
        }),
        "find_agent_configs" | "find_voice_agents" => Ok(data(vec![])),
        "get_voice_agents" | "get_voice_agent_performance_report" => {
            let ids = arg_strs(args, "agent_config_ids")?.unwrap_or_default();
            match ids.first() {
                Some(id) => Err(not_found("voice agent", id)),
                None => Ok(data(vec![])),
            }
        }
        "get_voice_agent_overview_report" => {
            let range = arg_str(args, "date_range")?.unwrap_or("last_30_days");
            Ok(json!({ "data": [], "date_range": range }))
        }
        "propose_voice_agent_update" => Err(not_found(
            "voice agent",
            required_str(args, "agent_config_id")?,
        )),
        "close_product_knowledge_search" => Ok(product_knowledge(required_str(args, "query")?)),
        "get_fields" => Ok(aggregation::field_catalog(ds)),
        "aggregation" => aggregation::aggregate(ds, args),
        // Scope not published by Close (counted as read).
        "find_memberships" => Ok(data(
            ds.memberships
                .iter()
                .map(|m| ds.membership_json(m))
                .collect(),
        )),
        "fetch_membership" => {
            let user_id = required_str(args, "user_id")?;
            ds.membership_of(user_id)
                .map(|m| ds.membership_json(m))
                .ok_or_else(|| not_found("membership for user", user_id))
        }
        "list_roles" => Ok(data(ds.roles.iter().map(|r| ds.role_json(r)).collect())),
        "fetch_role" => {
            let id = required_str(args, "id")?;
            ds.role(id)
                .map(|r| ds.role_json(r))
                .ok_or_else(|| not_found("role", id))
        }
        "list_membership_requests" => Ok(data(vec![])),
        "find_invoices" => paged(name, args, |_| {
            Ok(ds.invoices.iter().map(|i| ds.invoice_json(i)).collect())
        }),
        "fetch_invoice" => {
            let id = required_str(args, "id")?;
            ds.invoices
                .iter()
                .find(|i| i.id == id)
                .map(|i| ds.invoice_json(i))
                .ok_or_else(|| not_found("invoice", id))
        }
        "get_billing_summary" => Ok(billing_summary(ds)),
        "get_ai_credit_usage" => Ok(ai_credit_usage(ds)),
        other => Err(format!(
            "The stand-in does not implement '{}'",
            truncate(other, 80)
        )),
    }
}

fn status_filter(status: &str, archived: bool) -> bool {
    match status {
        "archived" => archived,
        "all" => true,
        _ => !archived,
    }
}

fn custom_fields(ds: &Dataset, object: CustomFieldObject) -> Value {
    data(
        ds.custom_fields
            .iter()
            .filter(|f| f.object == object)
            .map(|f| ds.custom_field_json(f))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------------
// Individual tools
// ---------------------------------------------------------------------------------------------------

/// `org_info`: `{"organization": {id, name, currency, date_created, date_updated, lead_statuses: […],
/// pipelines: [{id, name}], user_count}, "user": {…org_users entry…}, "scope": "mcp.read"}`.
/// The user is the grant's principal when it is a user of the organization, else the first user.
fn org_info(ds: &Dataset, grant: &Grant) -> ToolResult {
    let mut org = ds.organization_json();
    if let Some(o) = org.as_object_mut() {
        o.insert(
            "lead_statuses".into(),
            ds.lead_statuses
                .iter()
                .map(|s| ds.lead_status_json(s))
                .collect(),
        );
        o.insert(
            "pipelines".into(),
            ds.pipelines
                .iter()
                .map(|p| json!({"id": p.id, "name": p.name}))
                .collect(),
        );
        o.insert("user_count".into(), json!(ds.users.len()));
    }
    let user = ds.user(&grant.principal).unwrap_or(&ds.users[0]);
    Ok(json!({ "organization": org, "user": ds.user_json(user), "scope": grant.scope.as_str() }))
}

/// `find_opportunities` rows: every opportunity matching all given filters, sorted.
fn find_opportunities(ds: &Dataset, q: &Map<String, Value>) -> Result<Vec<Value>, String> {
    let status_ids: Option<HashSet<String>> =
        arg_strs(q, "status_ids")?.map(|v| v.into_iter().collect());
    let status_type = match arg_str(q, "status_type")? {
        Some(s) => Some(StatusType::parse(s).ok_or_else(|| {
            format!(
                "Invalid argument 'status_type': expected one of won, lost, active, got \"{}\"",
                truncate(s, 30)
            )
        })?),
        None => None,
    };
    let user_ids: Option<HashSet<String>> =
        arg_strs(q, "user_ids")?.map(|v| v.into_iter().collect());
    let lead_id = arg_str(q, "lead_id")?;
    let lead_view = match arg_str(q, "lead_view_id")? {
        Some(id) => Some(ds.smart_views.iter().find(|s| s.id == id).ok_or_else(|| {
            format!(
                "Invalid argument 'lead_view_id': no smart view with id '{}'",
                truncate(id, 60)
            )
        })?),
        None => None,
    };
    let close_at = arg_range(q, "close_at")?;
    let created_at = arg_range(q, "created_at")?;
    let updated_at = arg_range(q, "updated_at")?;
    let needs_attention = arg_bool(q, "needs_attention")?.unwrap_or(false);
    let anchor = ds.config.anchor;
    let mut rows: Vec<&crate::data::Opportunity> = ds
        .opportunities
        .iter()
        .filter(|o| status_ids.as_ref().is_none_or(|s| s.contains(&o.status_id)))
        .filter(|o| status_type.is_none_or(|t| o.status_type == t))
        .filter(|o| user_ids.as_ref().is_none_or(|u| u.contains(&o.user_id)))
        .filter(|o| lead_id.is_none_or(|l| o.lead_id == l))
        .filter(|o| {
            lead_view.is_none_or(|v| {
                ds.lead(&o.lead_id)
                    .is_some_and(|l| ds.lead_matches(l, &v.query))
            })
        })
        .filter(|o| close_at.is_none_or(|r| r.contains_date(o.close_date)))
        .filter(|o| created_at.is_none_or(|r| r.contains(o.date_created)))
        .filter(|o| updated_at.is_none_or(|r| r.contains(o.date_updated)))
        .filter(|o| {
            !needs_attention
                || (o.status_type == StatusType::Active
                    && (o.close_date < anchor || ds.is_stalled(o)))
        })
        .collect();
    match arg_str(q, "sort_by")? {
        Some("closing_soonest") => rows.sort_by(|a, b| a.close_date.cmp(&b.close_date).then_with(|| a.id.cmp(&b.id))),
        Some("largest_value") => rows.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.id.cmp(&b.id))),
        Some("largest_confidence") => rows.sort_by(|a, b| b.confidence.cmp(&a.confidence).then_with(|| a.id.cmp(&b.id))),
        Some(other) => return Err(format!("Invalid argument 'sort_by': expected one of closing_soonest, largest_value, largest_confidence, got \"{}\"", truncate(other, 30))),
        None => rows.sort_by(|a, b| b.date_updated.cmp(&a.date_updated).then_with(|| a.id.cmp(&b.id))),
    }
    Ok(rows.into_iter().map(|o| ds.opportunity_json(o)).collect())
}

/// Maps `activity.call`, `call`, `Call`, `opportunity_status_change`, `OpportunityStatusChange` … to a
/// kind. `Ok(None)` for Close types the dataset never contains (e.g. `activity.whatsapp_message`).
fn parse_activity_type(s: &str) -> Result<Option<ActivityKind>, String> {
    let norm: String = s
        .trim()
        .trim_start_matches("activity.")
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_lowercase();
    for k in ActivityKind::ALL {
        if norm == k.search_name().replace('_', "") || norm == k.type_name().to_lowercase() {
            return Ok(Some(k));
        }
    }
    const EMPTY: &[&str] = &[
        "whatsappmessage",
        "whatsapp",
        "emailthread",
        "taskcompleted",
        "created",
        "leadmerge",
        "formsubmission",
        "customobject",
    ];
    if EMPTY.contains(&norm.as_str()) {
        return Ok(None);
    }
    Err(format!(
        "Invalid argument 'activity_types': unknown activity type '{}'",
        truncate(s, 40)
    ))
}

/// `activity_search` rows, newest first.
fn activity_search(ds: &Dataset, q: &Map<String, Value>) -> Result<Vec<Value>, String> {
    let kinds: Option<HashSet<ActivityKind>> = match arg_strs(q, "activity_types")? {
        Some(v) => {
            let mut set = HashSet::new();
            for t in &v {
                if let Some(k) = parse_activity_type(t)? {
                    set.insert(k);
                }
            }
            Some(set)
        }
        None => None,
    };
    let lead_ids: Option<HashSet<String>> =
        arg_strs(q, "lead_ids")?.map(|v| v.into_iter().collect());
    let user_ids: Option<HashSet<String>> =
        arg_strs(q, "user_ids")?.map(|v| v.into_iter().collect());
    let contact_ids: Option<HashSet<String>> =
        arg_strs(q, "contact_ids")?.map(|v| v.into_iter().collect());
    let agent_ids = arg_strs(q, "agent_config_ids")?.unwrap_or_default();
    let views = match arg_strs(q, "lead_smart_view_ids")? {
        Some(ids) => {
            let mut views = Vec::new();
            for id in &ids {
                views.push(ds.smart_views.iter().find(|s| &s.id == id).ok_or_else(|| {
                    format!(
                        "Invalid argument 'lead_smart_view_ids': no smart view with id '{}'",
                        truncate(id, 60)
                    )
                })?);
            }
            Some(views)
        }
        None => None,
    };
    let activity_at = arg_range(q, "activity_at")?;
    if !agent_ids.is_empty() {
        // No voice agents in this organization, so no agent activities.
        return Ok(vec![]);
    }
    let mut rows: Vec<&Activity> = ds
        .activities
        .iter()
        .filter(|a| kinds.as_ref().is_none_or(|k| k.contains(&a.kind())))
        .filter(|a| lead_ids.as_ref().is_none_or(|s| s.contains(&a.lead_id)))
        .filter(|a| user_ids.as_ref().is_none_or(|s| s.contains(&a.user_id)))
        .filter(|a| {
            contact_ids
                .as_ref()
                .is_none_or(|s| a.contact_id.as_ref().is_some_and(|c| s.contains(c)))
        })
        .filter(|a| activity_at.is_none_or(|r| r.contains(a.activity_at)))
        .filter(|a| {
            views.as_ref().is_none_or(|vs| {
                ds.lead(&a.lead_id)
                    .is_some_and(|l| vs.iter().any(|v| ds.lead_matches(l, &v.query)))
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        b.activity_at
            .cmp(&a.activity_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    Ok(rows.into_iter().map(|a| ds.activity_json(a)).collect())
}

fn fetch_activity(ds: &Dataset, id: &str, kind: ActivityKind, thing: &str) -> ToolResult {
    match ds.activity(id) {
        Some(a) if a.kind() == kind => Ok(ds.activity_json(a)),
        _ => Err(not_found(thing, id)),
    }
}

fn find_notes(ds: &Dataset, q: &Map<String, Value>) -> Result<Vec<Value>, String> {
    let lead_id = arg_str(q, "lead_id")?;
    let contact_id = arg_str(q, "contact_id")?;
    let user_id = arg_str(q, "user_id")?;
    let activity_at = arg_range(q, "activity_at")?;
    let date_created = arg_range(q, "date_created")?;
    let mut rows: Vec<&Activity> = ds
        .activities
        .iter()
        .filter(|a| a.kind() == ActivityKind::Note)
        .filter(|a| lead_id.is_none_or(|l| a.lead_id == l))
        .filter(|a| contact_id.is_none_or(|c| a.contact_id.as_deref() == Some(c)))
        .filter(|a| user_id.is_none_or(|u| a.user_id == u))
        .filter(|a| activity_at.is_none_or(|r| r.contains(a.activity_at)))
        .filter(|a| date_created.is_none_or(|r| r.contains(a.date_created)))
        .collect();
    rows.sort_by(|a, b| {
        b.activity_at
            .cmp(&a.activity_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    Ok(rows.into_iter().map(|a| ds.activity_json(a)).collect())
}

fn find_custom_activity_instances(
    ds: &Dataset,
    q: &Map<String, Value>,
) -> Result<Vec<Value>, String> {
    let lead_id = required_str(q, "lead_id")?;
    if ds.lead(lead_id).is_none() {
        return Err(not_found("lead", lead_id));
    }
    let type_ids: Option<HashSet<String>> =
        arg_strs(q, "custom_activity_type_ids")?.map(|v| v.into_iter().collect());
    let user_id = arg_str(q, "user_id")?;
    let activity_at = arg_range(q, "activity_at")?;
    let mut rows: Vec<&Activity> = ds
        .activities
        .iter()
        .filter(|a| a.lead_id == lead_id)
        .filter(|a| match &a.details {
            ActivityDetails::CustomActivity(c) => type_ids
                .as_ref()
                .is_none_or(|t| t.contains(&c.custom_activity_type_id)),
            _ => false,
        })
        .filter(|a| user_id.is_none_or(|u| a.user_id == u))
        .filter(|a| activity_at.is_none_or(|r| r.contains(a.activity_at)))
        .collect();
    rows.sort_by(|a, b| {
        b.activity_at
            .cmp(&a.activity_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    Ok(rows.into_iter().map(|a| ds.activity_json(a)).collect())
}

/// `find_tasks` rows, by due date (then id).
fn find_tasks(ds: &Dataset, q: &Map<String, Value>) -> Result<Vec<Value>, String> {
    let assigned_to = arg_str(q, "assigned_to")?;
    let lead_id = arg_str(q, "lead_id")?;
    let is_complete = arg_bool(q, "is_complete")?;
    let created_at = arg_range(q, "created_at")?;
    let updated_at = arg_range(q, "updated_at")?;
    let due_date = arg_range(q, "due_date")?;
    let mut rows: Vec<&crate::data::Task> = ds
        .tasks
        .iter()
        .filter(|t| assigned_to.is_none_or(|u| t.assigned_to == u))
        .filter(|t| lead_id.is_none_or(|l| t.lead_id == l))
        .filter(|t| is_complete.is_none_or(|c| t.is_complete == c))
        .filter(|t| created_at.is_none_or(|r| r.contains(t.date_created)))
        .filter(|t| updated_at.is_none_or(|r| r.contains(t.date_updated)))
        .filter(|t| due_date.is_none_or(|r| r.contains_date(t.due_date)))
        .collect();
    rows.sort_by(|a, b| a.due_date.cmp(&b.due_date).then_with(|| a.id.cmp(&b.id)));
    Ok(rows.into_iter().map(|t| ds.task_json(t)).collect())
}

/// `lead_search`: `{"data": [lead summaries, at most 50], "has_more": bool, "total_results": n}`, most
/// recently updated first. `full_text` matches name, description, url, source, status and contact
/// names/emails/phones (case-insensitive substring); `name` matches the lead name.
fn lead_search(ds: &Dataset, args: &Map<String, Value>) -> ToolResult {
    let full_text = arg_str(args, "full_text")?
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let name = arg_str(args, "name")?;
    let status = arg_str(args, "lead_status_id")?;
    let view = match arg_str(args, "smart_view_id")? {
        Some(id) => Some(ds.smart_views.iter().find(|s| s.id == id).ok_or_else(|| {
            format!(
                "Invalid argument 'smart_view_id': no smart view with id '{}'",
                truncate(id, 60)
            )
        })?),
        None => None,
    };
    let mut rows: Vec<&crate::data::Lead> = ds
        .leads
        .iter()
        .filter(|l| name_matches(&l.name, name))
        .filter(|l| status.is_none_or(|s| l.status_id == s))
        .filter(|l| view.is_none_or(|v| ds.lead_matches(l, &v.query)))
        .filter(|l| {
            full_text
                .as_ref()
                .is_none_or(|t| lead_text(ds, l).contains(t.as_str()))
        })
        .collect();
    rows.sort_by(|a, b| {
        b.date_updated
            .cmp(&a.date_updated)
            .then_with(|| a.id.cmp(&b.id))
    });
    let total = rows.len();
    let page: Vec<Value> = rows
        .iter()
        .take(PAGE_SIZE)
        .map(|l| ds.lead_summary_json(l))
        .collect();
    Ok(json!({ "data": page, "has_more": total > PAGE_SIZE, "total_results": total }))
}

fn lead_text(ds: &Dataset, l: &crate::data::Lead) -> String {
    let mut text = format!(
        "{} {} {} {} {}",
        l.name, l.description, l.url, l.source, l.status_label
    );
    for c in ds.contacts_of(&l.id) {
        text.push(' ');
        text.push_str(&c.name);
        for e in &c.emails {
            text.push(' ');
            text.push_str(&e.email);
        }
        for p in &c.phones {
            text.push(' ');
            text.push_str(&p.phone);
        }
    }
    text.to_lowercase()
}

/// `fetch` (search/fetch convention): `{"id", "title", "text", "url", "metadata": {…object…}}` for
/// `lead_…` and `cont_…` ids.
fn fetch(ds: &Dataset, id: &str) -> ToolResult {
    if let Some(l) = ds.lead(id) {
        let contacts: Vec<String> = ds
            .contacts_of(&l.id)
            .iter()
            .map(|c| format!("{} ({})", c.name, c.title))
            .collect();
        return Ok(json!({
            "id": l.id,
            "title": l.name,
            "text": format!("{}\nStatus: {}\nSource: {}\nContacts: {}", l.description, l.status_label, l.source, contacts.join(", ")),
            "url": format!("https://app.close.com/lead/{}/", l.id),
            "metadata": ds.lead_summary_json(l),
        }));
    }
    if let Some(c) = ds.contact(id) {
        let emails: Vec<&str> = c.emails.iter().map(|e| e.email.as_str()).collect();
        return Ok(json!({
            "id": c.id,
            "title": c.name,
            "text": format!("{} at {}\n{}", c.title, ds.lead(&c.lead_id).map(|l| l.name.as_str()).unwrap_or(""), emails.join(", ")),
            "url": format!("https://app.close.com/lead/{}/", c.lead_id),
            "metadata": ds.contact_json(c),
        }));
    }
    Err(not_found("lead or contact", id))
}

const SEARCH_PAGE: usize = 20;

/// `search`: `{"data": [{"id", "object_type", "title", "preview", "url"}], "total_results", "has_more",
/// "cursor", "search_id": "share_…", "url"}`; words are matched against leads and contacts (all words
/// must match; if nothing does, any word).
fn search(ds: &Dataset, query: &str, offset: usize) -> ToolResult {
    let short: String = query.chars().take(500).collect();
    let words: Vec<String> = short
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.')
        .filter(|w| w.len() >= 2)
        .take(20)
        .map(str::to_string)
        .collect();
    let mut hits: Vec<Value> = Vec::new();
    for any in [false, true] {
        hits.clear();
        for l in &ds.leads {
            let text = lead_text(ds, l);
            let ok = if any {
                words.iter().any(|w| text.contains(w.as_str()))
            } else {
                !words.is_empty() && words.iter().all(|w| text.contains(w.as_str()))
            };
            if ok {
                hits.push(json!({
                    "id": l.id, "object_type": "lead", "title": l.name,
                    "preview": format!("{} · {} · {}", l.status_label, l.source, l.url),
                    "url": format!("https://app.close.com/lead/{}/", l.id),
                }));
            }
        }
        for c in &ds.contacts {
            let text = format!(
                "{} {} {}",
                c.name,
                c.title,
                c.emails
                    .iter()
                    .map(|e| e.email.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
            .to_lowercase();
            let ok = if any {
                words.iter().any(|w| text.contains(w.as_str()))
            } else {
                !words.is_empty() && words.iter().all(|w| text.contains(w.as_str()))
            };
            if ok {
                hits.push(json!({
                    "id": c.id, "object_type": "contact", "title": c.name,
                    "preview": format!("{} at {}", c.title, ds.lead(&c.lead_id).map(|l| l.name.as_str()).unwrap_or("")),
                    "url": format!("https://app.close.com/lead/{}/", c.lead_id),
                }));
            }
        }
        if !hits.is_empty() || words.len() < 2 {
            break;
        }
    }
    let total = hits.len();
    if offset > total {
        return Err("Invalid argument 'cursor': it points past the end of the results".into());
    }
    let end = (offset + SEARCH_PAGE).min(total);
    let search_id = format!("share_{}", URL_SAFE_NO_PAD.encode(query.as_bytes()));
    let next = (end < total).then(|| cursor::encode("search", &json!({ "query": query }), end));
    Ok(json!({
        "data": hits[offset..end].to_vec(),
        "total_results": total,
        "has_more": next.is_some(),
        "cursor": next,
        "search_id": search_id,
        "url": format!("https://app.close.com/search/{}/", URL_SAFE_NO_PAD.encode(query.as_bytes())),
    }))
}

/// `paginate_search`: next page of a `search` (by `search_id`) or of a smart view (by `smart_view_id`,
/// leads most recently updated first, paged like the other list tools).
fn paginate_search(ds: &Dataset, args: &Map<String, Value>) -> ToolResult {
    let search_id = arg_str(args, "search_id")?;
    let view_id = arg_str(args, "smart_view_id")?;
    let cursor_arg = arg_str(args, "cursor")?;
    match (search_id, view_id) {
        (Some(sid), None) => {
            let query = sid
                .strip_prefix("share_")
                .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| not_found("search", sid))?;
            let offset = match cursor_arg {
                Some(c) if !c.is_empty() => {
                    let (q, offset) = cursor::decode("search", c).ok_or_else(|| {
                        "Invalid argument 'cursor': not a cursor returned by search".to_string()
                    })?;
                    if q.get("query").and_then(Value::as_str) != Some(query.as_str()) {
                        return Err(
                            "Invalid argument 'cursor': it belongs to a different search".into(),
                        );
                    }
                    offset
                }
                _ => 0,
            };
            search(ds, &query, offset)
        }
        (None, Some(vid)) => {
            let view = ds
                .smart_views
                .iter()
                .find(|s| s.id == vid)
                .ok_or_else(|| not_found("smart view", vid))?;
            let mut q = Map::new();
            q.insert("smart_view_id".into(), json!(vid));
            if let Some(c) = cursor_arg {
                q.insert("cursor".into(), json!(c));
            }
            let query = view.query.clone();
            paged("paginate_search", &q, move |_| {
                let mut leads: Vec<&crate::data::Lead> = ds
                    .leads
                    .iter()
                    .filter(|l| ds.lead_matches(l, &query))
                    .collect();
                leads.sort_by(|a, b| {
                    b.date_updated
                        .cmp(&a.date_updated)
                        .then_with(|| a.id.cmp(&b.id))
                });
                Ok(leads.into_iter().map(|l| ds.lead_summary_json(l)).collect())
            })
        }
        _ => Err("Invalid arguments: pass exactly one of 'search_id' or 'smart_view_id'".into()),
    }
}

/// `close_product_knowledge_search`: `{"results": [{"title", "url", "snippet"}]}` from a few canned
/// help-center articles, best keyword overlap first.
fn product_knowledge(query: &str) -> Value {
    const ARTICLES: &[(&str, &str, &str)] = &[
        ("Close MCP server", "https://help.close.com/integrations/close-mcp-server", "Connect AI assistants to Close over MCP with OAuth or an API key and a scope."),
        ("API keys", "https://help.close.com/docs/api-keys", "Create API keys under Settings → Developer → API Keys; each key belongs to one user in one organization."),
        ("Pipelines and opportunity statuses", "https://help.close.com/docs/pipelines", "Pipelines group opportunity statuses of type active, won or lost."),
        ("Smart Views", "https://help.close.com/docs/smart-views", "Smart Views are saved searches of leads or contacts that update automatically."),
        ("Opportunity reporting", "https://help.close.com/docs/opportunity-reporting", "Report on pipeline value, expected value and win rates by user, status and time."),
        ("Lead statuses", "https://help.close.com/docs/lead-statuses", "Lead statuses track where a company is in your process, e.g. Potential, Qualified, Customer."),
        ("Rate limits", "https://developer.close.com/topics/rate-limits", "Limits apply per endpoint group; a 429 response says when to retry."),
    ];
    let words: BTreeSet<String> = query
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .take(50)
        .map(str::to_string)
        .collect();
    let mut scored: Vec<(usize, usize)> = ARTICLES
        .iter()
        .enumerate()
        .map(|(i, (t, _, s))| {
            let text = format!("{t} {s}").to_lowercase();
            (
                words.iter().filter(|w| text.contains(w.as_str())).count(),
                i,
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let results: Vec<Value> = scored.iter().take(3).map(|&(_, i)| json!({"title": ARTICLES[i].0, "url": ARTICLES[i].1, "snippet": ARTICLES[i].2})).collect();
    json!({ "results": results })
}

fn billing_summary(ds: &Dataset) -> Value {
    let last = ds.invoices.first();
    json!({
        "plan": "Growth",
        "billing_period": "monthly",
        "seats": ds.users.len(),
        "price_per_seat": 14_900,
        "currency": "USD",
        "status": "active",
        "last_invoice_id": last.map(|i| i.id.clone()),
        "next_invoice_date": last.map(|i| crate::data::iso_date(&(i.period_end + Duration::days(1) + Duration::days(31)))),
    })
}

fn ai_credit_usage(ds: &Dataset) -> Value {
    let month_ago = ds.as_of() - Duration::days(30);
    let calls = ds
        .activities
        .iter()
        .filter(|a| a.activity_at >= month_ago && a.kind() == ActivityKind::Call)
        .count() as i64;
    let emails = ds
        .activities
        .iter()
        .filter(|a| a.activity_at >= month_ago && a.kind() == ActivityKind::Email)
        .count() as i64;
    json!({
        "period_start": iso(&month_ago),
        "period_end": iso(&ds.as_of()),
        "credits_included": 5000,
        "credits_used": calls * 3 + emails,
        "by_feature": [
            {"feature": "call_summaries", "credits": calls * 3},
            {"feature": "email_assistant", "credits": emails},
            {"feature": "enrichment", "credits": 0},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{catalog, validate_arguments, Scope};
    use crate::data::{Dataset, DatasetConfig};
    use std::sync::LazyLock;

    static DS: LazyLock<Dataset> = LazyLock::new(|| {
        Dataset::generate(DatasetConfig {
            seed: 42,
            anchor: NaiveDate::from_ymd_opt(2026, 3, 12).unwrap(),
        })
    });

    fn grant() -> Grant {
        Grant::new(Scope::Read, DS.users[0].id.clone())
    }

    fn call(name: &str, args: Value) -> ToolResult {
        let spec = catalog().get(name).unwrap();
        let args = validate_arguments(spec, args.as_object())?;
        call_read_tool(&DS, &grant(), name, &args)
    }

    fn all_pages(name: &str, args: Value) -> Vec<Value> {
        let mut out = Vec::new();
        let mut first = call(name, args).unwrap();
        loop {
            out.extend(first["data"].as_array().unwrap().iter().cloned());
            match first["cursor"].as_str() {
                Some(c) => first = call(name, json!({ "cursor": c })).unwrap(),
                None => break,
            }
        }
        out
    }

    #[test]
    fn every_read_tool_answers_without_arguments_or_names_the_missing_one() {
        for spec in catalog().visible(Scope::Read) {
            match call(&spec.name, json!({})) {
                Ok(v) => assert!(v.is_object(), "{}", spec.name),
                Err(e) if spec.name == "paginate_search" => {
                    assert!(e.contains("'search_id'"), "{e}")
                }
                Err(e) => {
                    assert!(
                        spec.params.iter().any(|p| p.required),
                        "{} failed: {e}",
                        spec.name
                    );
                    assert!(
                        e.starts_with("Missing required argument '"),
                        "{}: {e}",
                        spec.name
                    );
                }
            }
        }
    }

    #[test]
    fn hostile_arguments_never_panic_and_give_one_line_errors() {
        let junk = [
            json!(null),
            json!(1),
            json!(-1.5),
            json!("x"),
            json!([1, {"a": 2}]),
            json!({"start": 5}),
            json!({"nested": {"deep": []}}),
            json!(true),
            json!("9999-99-99"),
        ];
        for spec in catalog().visible(Scope::Read) {
            for p in &spec.params {
                for j in &junk {
                    let mut args = Map::new();
                    for q in spec.params.iter().filter(|q| q.required) {
                        args.insert(q.name.clone(), json!("lead_unknown"));
                    }
                    args.insert(p.name.clone(), j.clone());
                    if let Err(e) = call(&spec.name, Value::Object(args)) {
                        assert!(!e.contains('\n'), "{}: {e}", spec.name);
                    }
                }
            }
        }
    }

    #[test]
    fn find_opportunities_returns_what_the_dataset_holds() {
        let proposal = DS.opportunity_status_by_label("Sales", "Proposal").unwrap();
        let got = all_pages("find_opportunities", json!({ "status_ids": [proposal.id] }));
        let want: Vec<&str> = DS
            .opportunities
            .iter()
            .filter(|o| o.status_id == proposal.id)
            .map(|o| o.id.as_str())
            .collect();
        assert_eq!(got.len(), want.len());
        assert!(!want.is_empty());
        for o in &got {
            assert_eq!(o["status_label"], "Proposal");
            let ours = DS.opportunity(o["id"].as_str().unwrap()).unwrap();
            assert_eq!(o["value"], ours.value);
            assert_eq!(o["confidence"], ours.confidence);
        }
    }

    #[test]
    fn find_opportunities_pages_by_fifty_with_a_cursor() {
        let first = call("find_opportunities", json!({})).unwrap();
        assert_eq!(first["data"].as_array().unwrap().len(), PAGE_SIZE);
        assert_eq!(first["has_more"], true);
        assert_eq!(first["total_results"], DS.opportunities.len());
        let all = all_pages("find_opportunities", json!({}));
        assert_eq!(all.len(), DS.opportunities.len());
        let ids: HashSet<&str> = all.iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), DS.opportunities.len());
        assert!(call("find_opportunities", json!({"cursor": "forged"}))
            .unwrap_err()
            .contains("'cursor'"));
    }

    #[test]
    fn find_opportunities_filters_by_type_owner_and_dates_and_sorts() {
        let user = &DS.users[2].id;
        let got = all_pages(
            "find_opportunities",
            json!({ "status_type": "active", "user_ids": [user], "sort_by": "largest_value" }),
        );
        let want = DS
            .opportunities
            .iter()
            .filter(|o| o.status_type == StatusType::Active && &o.user_id == user)
            .count();
        assert_eq!(got.len(), want);
        let values: Vec<i64> = got.iter().map(|o| o["value"].as_i64().unwrap()).collect();
        assert!(values.windows(2).all(|w| w[0] >= w[1]));
        let won_2025 = all_pages(
            "find_opportunities",
            json!({ "status_type": "won", "created_at": {"start": "2025-06-01", "end": "2025-06-30"} }),
        );
        assert!(won_2025
            .iter()
            .all(|o| o["date_created"].as_str().unwrap().starts_with("2025-06")));
        let soon = all_pages(
            "find_opportunities",
            json!({ "status_type": "active", "sort_by": "closing_soonest" }),
        );
        let dates: Vec<&str> = soon
            .iter()
            .map(|o| o["close_date"].as_str().unwrap())
            .collect();
        assert!(dates.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn activity_search_finds_status_changes_newest_first() {
        let got = all_pages(
            "activity_search",
            json!({ "activity_types": ["activity.opportunity_status_change"] }),
        );
        let want = DS
            .activities
            .iter()
            .filter(|a| a.kind() == ActivityKind::OpportunityStatusChange)
            .count();
        assert_eq!(got.len(), want);
        assert!(got.iter().all(|a| a["_type"] == "OpportunityStatusChange"));
        let times: Vec<&str> = got
            .iter()
            .map(|a| a["activity_at"].as_str().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]));
        let lead = &DS.leads[10].id;
        let calls = all_pages(
            "activity_search",
            json!({ "activity_types": ["call"], "lead_ids": [lead] }),
        );
        assert_eq!(
            calls.len(),
            DS.activities
                .iter()
                .filter(|a| a.kind() == ActivityKind::Call && &a.lead_id == lead)
                .count()
        );
        assert!(call(
            "activity_search",
            json!({ "activity_types": ["activity.teleport"] })
        )
        .unwrap_err()
        .contains("activity_types"));
        assert_eq!(
            call(
                "activity_search",
                json!({ "activity_types": ["activity.whatsapp_message"] })
            )
            .unwrap()["total_results"],
            0
        );
    }

    #[test]
    fn fetch_tools_return_the_object_or_a_not_found_error() {
        let o = &DS.opportunities[3];
        assert_eq!(
            call("fetch_opportunity", json!({"id": o.id})).unwrap()["lead_name"],
            o.lead_name
        );
        let l = &DS.leads[5];
        let lead = call("fetch_lead", json!({"id": l.id})).unwrap();
        assert_eq!(lead["name"], l.name);
        assert_eq!(
            lead["contacts"].as_array().unwrap().len(),
            DS.contacts_of(&l.id).len()
        );
        let c = &DS.contacts[7];
        assert_eq!(
            call("fetch_contact", json!({"id": c.id})).unwrap()["name"],
            c.name
        );
        assert_eq!(
            call("fetch_lead", json!({"id": "lead_nope"})).unwrap_err(),
            "Not found: no lead with id 'lead_nope'"
        );
        let p = &DS.pipelines[0];
        let pipe = call(
            "fetch_pipeline_and_opportunity_statuses",
            json!({"id": p.id}),
        )
        .unwrap();
        assert_eq!(pipe["statuses"].as_array().unwrap().len(), 7);
        let note = DS
            .activities
            .iter()
            .find(|a| a.kind() == ActivityKind::Note)
            .unwrap();
        assert_eq!(
            call("fetch_note", json!({"id": note.id})).unwrap()["_type"],
            "Note"
        );
        assert!(call("fetch_call", json!({"id": note.id})).is_err());
    }

    #[test]
    fn org_tools_describe_the_organization_and_its_people() {
        let info = call("org_info", json!({})).unwrap();
        assert_eq!(info["organization"]["name"], "Northwind Analytics");
        assert_eq!(info["organization"]["id"], DS.organization.id);
        assert_eq!(info["user"]["id"], DS.users[0].id);
        assert_eq!(info["scope"], "mcp.read");
        let users = call("org_users", json!({})).unwrap();
        assert_eq!(users["data"].as_array().unwrap().len(), 8);
        assert!(users["data"][0]["mention_html"]
            .as_str()
            .unwrap()
            .contains("data-type=\"mention\""));
        let pipes = call("find_pipelines_and_opportunity_statuses", json!({})).unwrap();
        let names: Vec<&str> = pipes["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Sales", "Renewals"]);
        assert_eq!(
            call("find_lead_statuses", json!({})).unwrap()["data"]
                .as_array()
                .unwrap()
                .len(),
            DS.lead_statuses.len()
        );
    }

    #[test]
    fn lead_search_matches_text_and_orders_by_last_update() {
        let target = &DS.leads[42];
        let got = call("lead_search", json!({"name": target.name})).unwrap();
        assert!(got["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == target.id));
        let customers = DS
            .lead_statuses
            .iter()
            .find(|s| s.label == "Customer")
            .unwrap();
        let got = call("lead_search", json!({"lead_status_id": customers.id})).unwrap();
        assert_eq!(
            got["total_results"],
            DS.leads
                .iter()
                .filter(|l| l.status_id == customers.id)
                .count()
        );
        let times: Vec<&str> = got["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["date_updated"].as_str().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]));
        let email = &DS.contacts_of(&target.id)[0].emails[0].email;
        assert!(
            call("lead_search", json!({"full_text": email})).unwrap()["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["id"] == target.id)
        );
    }

    #[test]
    fn search_and_paginate_search_walk_the_same_results() {
        let first = call("search", json!({"query": "labs"})).unwrap();
        let total = first["total_results"].as_u64().unwrap() as usize;
        assert!(total > SEARCH_PAGE, "{total}");
        let mut seen = first["data"].as_array().unwrap().len();
        let sid = first["search_id"].as_str().unwrap().to_string();
        let mut cursor = first["cursor"].as_str().map(str::to_string);
        while let Some(c) = cursor {
            let page = call("paginate_search", json!({"search_id": sid, "cursor": c})).unwrap();
            seen += page["data"].as_array().unwrap().len();
            cursor = page["cursor"].as_str().map(str::to_string);
        }
        assert_eq!(seen, total);
        let view = &DS.smart_views[0];
        let page = call("paginate_search", json!({"smart_view_id": view.id})).unwrap();
        assert_eq!(page["total_results"], DS.leads.len());
        assert!(call("paginate_search", json!({})).is_err());
    }

    #[test]
    fn date_ranges_accept_objects_and_strings() {
        let r = parse_range("x", &json!({"start": "2025-01-01", "end": "2025-01-31"})).unwrap();
        assert!(r.contains(
            day_start(NaiveDate::from_ymd_opt(2025, 1, 31).unwrap()) + Duration::hours(23)
        ));
        assert!(!r.contains(day_start(NaiveDate::from_ymd_opt(2025, 2, 1).unwrap())));
        let r = parse_range("x", &json!("2025-01-01/2025-02-01")).unwrap();
        assert!(!r.contains(day_start(NaiveDate::from_ymd_opt(2025, 2, 1).unwrap())));
        let r = parse_range("x", &json!("2025-03-04T10:00:00+02:00")).unwrap();
        assert_eq!(
            r.start.unwrap(),
            Utc.with_ymd_and_hms(2025, 3, 4, 8, 0, 0).unwrap()
        );
        assert!(parse_range("x", &json!({"begin": "2025-01-01"}))
            .unwrap_err()
            .contains("'begin'"));
        assert!(parse_range("x", &json!("yesterday"))
            .unwrap_err()
            .contains("'x'"));
        for extreme in ["+262142-12-31", "-262143-01-01", "262143-12-31T23:59:59Z"] {
            let _ = parse_range("x", &json!({"gt": extreme, "lte": extreme}));
            let _ = parse_range("x", &json!(extreme));
        }
    }

    #[test]
    fn tasks_notes_and_templates_come_from_the_dataset() {
        let user = &DS.users[3].id;
        let tasks = all_pages(
            "find_tasks",
            json!({"assigned_to": user, "is_complete": false}),
        );
        assert_eq!(
            tasks.len(),
            DS.tasks
                .iter()
                .filter(|t| &t.assigned_to == user && !t.is_complete)
                .count()
        );
        let t = &DS.tasks[0];
        assert_eq!(
            call("fetch_task", json!({"id": t.id})).unwrap()["text"],
            t.text
        );
        let notes = all_pages("find_notes", json!({}));
        assert_eq!(
            notes.len(),
            DS.activities
                .iter()
                .filter(|a| a.kind() == ActivityKind::Note)
                .count()
        );
        let templates = call("find_email_templates", json!({})).unwrap();
        assert_eq!(
            templates["data"].as_array().unwrap().len(),
            DS.email_templates.iter().filter(|t| !t.is_archived).count()
        );
        assert_eq!(
            call("find_email_templates", json!({"status": "all"})).unwrap()["total_results"],
            DS.email_templates.len()
        );
        assert_eq!(
            call("find_lead_custom_fields", json!({})).unwrap()["data"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn every_read_tool_answers_the_empty_sandbox_organization_without_panicking() {
        let sandbox = DS.sandbox("Northwind Sandbox");
        let grant = grant();
        for spec in catalog().tools.iter().filter(|t| !t.is_write()) {
            for args in [
                json!({}),
                json!({"query": "acme", "id": "lead_x", "limit": 5}),
            ] {
                if let Ok(args) = validate_arguments(spec, args.as_object()) {
                    let _ = call_read_tool(&sandbox, &grant, &spec.name, &args);
                }
            }
        }
        let info = call_read_tool(&sandbox, &grant, "org_info", &Map::new()).unwrap();
        assert_eq!(info["organization"]["name"], "Northwind Sandbox");
        assert_eq!(info["user"]["id"], DS.users[0].id);
        let found = call_read_tool(&sandbox, &grant, "find_opportunities", &Map::new()).unwrap();
        assert_eq!(found["total_results"], 0);
    }
}
