//! `get_fields` and `aggregation`.
//!
//! Close's aggregation tool computes counts/sums/averages over objects and activities, grouped by at most
//! two fields or bucketed by time, with field names from `get_fields` (`close-mcp.md` §1.3, §1.4). Its
//! exact argument and result shapes are unpublished; the stand-in accepts:
//!
//! ```json
//! {"include_types": ["opportunity"],
//!  "aggregations": [{"type": "count"}, {"type": "sum", "field": "value"}],
//!  "group_by": ["user_name"],
//!  "time_buckets": {"field": "date_created", "start": "2025-01-01", "end": "2025-04-01"},
//!  "interval": "month"}
//! ```
//!
//! and answers
//!
//! ```json
//! {"include_types": […], "aggregations": [{"type": "sum", "field": "value", "key": "sum(value)"}],
//!  "group_by": […], "time_buckets": {"field", "start", "end", "interval"} | null, "display_mode": … | null,
//!  "total_rows": n, "totals": {"count": n, "sum(value)": x},
//!  "rows": [{"bucket": "2025-01-01", "group": {"user_name": "Ann Lee"}, "values": {"count": 3, "sum(value)": 1200}}]}
//! ```
//!
//! `rows` has one entry per non-empty (bucket, group) combination, sorted by bucket then group values;
//! `bucket` is present only with an `interval`. Without `group_by` and `interval`, `rows` holds one row
//! with an empty `group`. `lead.<field>` reads the related lead of an opportunity, contact, task or activity.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use crate::catalog::truncate;
use crate::data::{
    iso, iso_date, Activity, ActivityDetails, ActivityKind, Contact, CustomFieldObject, Dataset,
    Lead, Opportunity, Task,
};
use crate::tools::{arg_str, arg_strs, parse_time, ToolResult};

/// What kind of values a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Id,
    Text,
    Number,
    DateTime,
    Date,
    Boolean,
}

impl FieldKind {
    fn as_str(self) -> &'static str {
        match self {
            FieldKind::Id => "id",
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::DateTime => "datetime",
            FieldKind::Date => "date",
            FieldKind::Boolean => "boolean",
        }
    }
    fn aggregations(self) -> &'static [&'static str] {
        match self {
            FieldKind::Number => &[
                "count",
                "sum",
                "average",
                "min",
                "max",
                "median",
                "cardinality",
                "percent_empty",
            ],
            FieldKind::DateTime | FieldKind::Date => {
                &["count", "min", "max", "cardinality", "percent_empty"]
            }
            _ => &["count", "cardinality", "percent_empty"],
        }
    }
}

/// Object types the aggregation tool accepts (the `include_types` enum).
pub const OBJECT_TYPES: &[&str] = &[
    "lead",
    "contact",
    "opportunity",
    "task",
    "email",
    "call",
    "note",
    "meeting",
    "sms",
    "whatsapp",
    "custom_activity",
    "custom_object",
    "sequence_subscription",
    "lead_status_change",
    "opportunity_status_change",
];

const AGGREGATION_TYPES: &[&str] = &[
    "count",
    "sum",
    "average",
    "min",
    "max",
    "median",
    "cardinality",
    "percent_empty",
];
const INTERVALS: &[&str] = &["day", "week", "month", "quarter", "year"];

use FieldKind::{Boolean as B, Date as D, DateTime as T, Id as I, Number as N, Text as X};

const LEAD_FIELDS: &[(&str, FieldKind)] = &[
    ("id", I),
    ("name", X),
    ("display_name", X),
    ("status_id", I),
    ("status_label", X),
    ("source", X),
    ("url", X),
    ("date_created", T),
    ("date_updated", T),
];
const CONTACT_FIELDS: &[(&str, FieldKind)] = &[
    ("id", I),
    ("lead_id", I),
    ("name", X),
    ("title", X),
    ("date_created", T),
    ("date_updated", T),
];
const OPPORTUNITY_FIELDS: &[(&str, FieldKind)] = &[
    ("id", I),
    ("lead_id", I),
    ("lead_name", X),
    ("contact_id", I),
    ("contact_name", X),
    ("user_id", I),
    ("user_name", X),
    ("status_id", I),
    ("status_label", X),
    ("status_type", X),
    ("pipeline_id", I),
    ("pipeline_name", X),
    ("value", N),
    ("value_period", X),
    ("value_currency", X),
    ("expected_value", N),
    ("annualized_value", N),
    ("annualized_expected_value", N),
    ("confidence", N),
    ("date_won", D),
    ("date_lost", D),
    ("close_date", D),
    ("date_created", T),
    ("date_updated", T),
    ("is_stalled", B),
];
const TASK_FIELDS: &[(&str, FieldKind)] = &[
    ("id", I),
    ("lead_id", I),
    ("lead_name", X),
    ("contact_id", I),
    ("assigned_to", I),
    ("assigned_to_name", X),
    ("text", X),
    ("priority", X),
    ("is_complete", B),
    ("due_date", D),
    ("date_created", T),
    ("date_updated", T),
];
const ACTIVITY_FIELDS: &[(&str, FieldKind)] = &[
    ("id", I),
    ("lead_id", I),
    ("contact_id", I),
    ("user_id", I),
    ("user_name", X),
    ("activity_at", T),
    ("date_created", T),
    ("date_updated", T),
];
const CALL_FIELDS: &[(&str, FieldKind)] = &[
    ("direction", X),
    ("status", X),
    ("disposition", X),
    ("duration", N),
    ("outcome_id", I),
    ("cost", N),
];
const EMAIL_FIELDS: &[(&str, FieldKind)] = &[
    ("direction", X),
    ("status", X),
    ("subject", X),
    ("template_id", I),
    ("template_name", X),
    ("opens", N),
    ("has_reply", B),
];
const MEETING_FIELDS: &[(&str, FieldKind)] = &[
    ("title", X),
    ("status", X),
    ("duration", N),
    ("outcome_id", I),
];
const NOTE_FIELDS: &[(&str, FieldKind)] = &[("title", X), ("pinned", B)];
const SMS_FIELDS: &[(&str, FieldKind)] = &[("direction", X), ("status", X), ("template_id", I)];
const LEAD_STATUS_CHANGE_FIELDS: &[(&str, FieldKind)] = &[
    ("old_status_id", I),
    ("old_status_label", X),
    ("new_status_id", I),
    ("new_status_label", X),
];
const OPPORTUNITY_STATUS_CHANGE_FIELDS: &[(&str, FieldKind)] = &[
    ("opportunity_id", I),
    ("old_status_id", I),
    ("old_status_label", X),
    ("old_status_type", X),
    ("new_status_id", I),
    ("new_status_label", X),
    ("new_status_type", X),
    ("new_pipeline_id", I),
    ("new_pipeline_name", X),
    ("opportunity_value", N),
    ("opportunity_value_period", X),
    ("opportunity_confidence", N),
];
const CUSTOM_ACTIVITY_FIELDS: &[(&str, FieldKind)] = &[("custom_activity_type_id", I)];
const BARE_FIELDS: &[(&str, FieldKind)] = &[("id", I), ("date_created", T)];

/// A field of an object type, as `get_fields` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDef {
    pub name: String,
    pub label: String,
    pub kind: FieldKind,
}

fn label_of(name: &str) -> String {
    let mut out = String::new();
    for (i, part) in name.split('_').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            if i == 0 {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            out.push_str(chars.as_str());
        }
    }
    out
}

fn custom_object_for(object_type: &str) -> Option<CustomFieldObject> {
    match object_type {
        "lead" => Some(CustomFieldObject::Lead),
        "contact" => Some(CustomFieldObject::Contact),
        "opportunity" => Some(CustomFieldObject::Opportunity),
        "custom_activity" => Some(CustomFieldObject::CustomActivity),
        _ => None,
    }
}

fn own_fields(ds: &Dataset, object_type: &str) -> Vec<FieldDef> {
    let tables: Vec<&[(&str, FieldKind)]> = match object_type {
        "lead" => vec![LEAD_FIELDS],
        "contact" => vec![CONTACT_FIELDS],
        "opportunity" => vec![OPPORTUNITY_FIELDS],
        "task" => vec![TASK_FIELDS],
        "call" => vec![ACTIVITY_FIELDS, CALL_FIELDS],
        "email" => vec![ACTIVITY_FIELDS, EMAIL_FIELDS],
        "meeting" => vec![ACTIVITY_FIELDS, MEETING_FIELDS],
        "note" => vec![ACTIVITY_FIELDS, NOTE_FIELDS],
        "sms" => vec![ACTIVITY_FIELDS, SMS_FIELDS],
        "lead_status_change" => vec![ACTIVITY_FIELDS, LEAD_STATUS_CHANGE_FIELDS],
        "opportunity_status_change" => vec![ACTIVITY_FIELDS, OPPORTUNITY_STATUS_CHANGE_FIELDS],
        "custom_activity" => vec![ACTIVITY_FIELDS, CUSTOM_ACTIVITY_FIELDS],
        _ => vec![BARE_FIELDS],
    };
    let mut fields: Vec<FieldDef> = tables
        .into_iter()
        .flatten()
        .map(|(name, kind)| FieldDef {
            name: (*name).to_string(),
            label: label_of(name),
            kind: *kind,
        })
        .collect();
    if let Some(object) = custom_object_for(object_type) {
        for cf in ds.custom_fields.iter().filter(|f| f.object == object) {
            let kind = if cf.field_type == "number" {
                FieldKind::Number
            } else {
                FieldKind::Text
            };
            fields.push(FieldDef {
                name: format!("custom.{}", cf.id),
                label: cf.name.clone(),
                kind,
            });
        }
    }
    fields
}

/// Every field aggregation accepts for `object_type`, including `lead.<field>` for non-lead types.
pub fn fields_for(ds: &Dataset, object_type: &str) -> Vec<FieldDef> {
    let mut fields = own_fields(ds, object_type);
    if object_type != "lead"
        && !matches!(
            object_type,
            "whatsapp" | "custom_object" | "sequence_subscription"
        )
    {
        for f in own_fields(ds, "lead") {
            fields.push(FieldDef {
                name: format!("lead.{}", f.name),
                label: format!("Lead › {}", f.label),
                kind: f.kind,
            });
        }
    }
    fields
}

/// `get_fields`: `{"object_types": [{"type": "opportunity", "fields": [{"name", "label", "type",
/// "aggregations": […], "group_by": bool, "time_bucket": bool}]}], "aggregation_types": […],
/// "intervals": […]}`.
pub fn field_catalog(ds: &Dataset) -> Value {
    let object_types: Vec<Value> = OBJECT_TYPES
        .iter()
        .map(|t| {
            let fields: Vec<Value> = fields_for(ds, t)
                .iter()
                .map(|f| {
                    json!({
                        "name": f.name,
                        "label": f.label,
                        "type": f.kind.as_str(),
                        "aggregations": f.kind.aggregations(),
                        "group_by": f.kind != FieldKind::DateTime,
                        "time_bucket": matches!(f.kind, FieldKind::DateTime | FieldKind::Date),
                    })
                })
                .collect();
            json!({ "type": t, "fields": fields })
        })
        .collect();
    json!({
        "object_types": object_types,
        "aggregation_types": AGGREGATION_TYPES,
        "intervals": INTERVALS,
        "notes": "Fields named lead.<field> read the lead an object belongs to. Use time_buckets with a datetime or date field to filter by date; add interval to bucket.",
    })
}

#[derive(Clone, Copy)]
enum Obj<'a> {
    Lead(&'a Lead),
    Contact(&'a Contact),
    Opp(&'a Opportunity),
    Task(&'a Task),
    Act(&'a Activity),
}

#[derive(Clone, Debug, PartialEq)]
enum FV {
    Null,
    Int(i64),
    Text(String),
    Time(DateTime<Utc>),
    Date(NaiveDate),
    Bool(bool),
}

impl FV {
    fn to_json(&self) -> Value {
        match self {
            FV::Null => Value::Null,
            FV::Int(i) => json!(i),
            FV::Text(s) => json!(s),
            FV::Time(t) => json!(iso(t)),
            FV::Date(d) => json!(iso_date(d)),
            FV::Bool(b) => json!(b),
        }
    }
    fn is_empty(&self) -> bool {
        matches!(self, FV::Null) || matches!(self, FV::Text(s) if s.is_empty())
    }
    /// The day of a date/time value.
    fn day(&self) -> Option<NaiveDate> {
        match self {
            FV::Time(t) => Some(t.date_naive()),
            FV::Date(d) => Some(*d),
            _ => None,
        }
    }
    fn instant(&self) -> Option<DateTime<Utc>> {
        match self {
            FV::Time(t) => Some(*t),
            FV::Date(d) => Some(crate::data::day_start(*d)),
            _ => None,
        }
    }
}

fn text(s: &str) -> FV {
    FV::Text(s.to_string())
}
fn opt_text(s: &Option<String>) -> FV {
    s.as_ref().map(|s| FV::Text(s.clone())).unwrap_or(FV::Null)
}
fn custom_value(custom: &BTreeMap<String, Value>, key: &str) -> FV {
    match custom.get(key) {
        Some(Value::String(s)) => FV::Text(s.clone()),
        Some(Value::Number(n)) => n.as_i64().map(FV::Int).unwrap_or(FV::Null),
        Some(Value::Bool(b)) => FV::Bool(*b),
        _ => FV::Null,
    }
}

fn lead_of<'a>(ds: &'a Dataset, obj: Obj<'a>) -> Option<&'a Lead> {
    match obj {
        Obj::Lead(l) => Some(l),
        Obj::Contact(c) => ds.lead(&c.lead_id),
        Obj::Opp(o) => ds.lead(&o.lead_id),
        Obj::Task(t) => ds.lead(&t.lead_id),
        Obj::Act(a) => ds.lead(&a.lead_id),
    }
}

/// The value of `field` on `obj` (`FV::Null` for fields the object type does not have).
fn value(ds: &Dataset, obj: Obj, field: &str) -> FV {
    if let Some(rest) = field.strip_prefix("lead.") {
        return lead_of(ds, obj)
            .map(|l| value(ds, Obj::Lead(l), rest))
            .unwrap_or(FV::Null);
    }
    match obj {
        Obj::Lead(l) => match field {
            "id" => text(&l.id),
            "name" | "display_name" => text(&l.name),
            "status_id" => text(&l.status_id),
            "status_label" => text(&l.status_label),
            "source" => text(&l.source),
            "url" => text(&l.url),
            "date_created" => FV::Time(l.date_created),
            "date_updated" => FV::Time(l.date_updated),
            f => f
                .strip_prefix("custom.")
                .map(|k| custom_value(&l.custom, k))
                .unwrap_or(FV::Null),
        },
        Obj::Contact(c) => match field {
            "id" => text(&c.id),
            "lead_id" => text(&c.lead_id),
            "name" => text(&c.name),
            "title" => text(&c.title),
            "date_created" => FV::Time(c.date_created),
            "date_updated" => FV::Time(c.date_updated),
            f => f
                .strip_prefix("custom.")
                .map(|k| custom_value(&c.custom, k))
                .unwrap_or(FV::Null),
        },
        Obj::Opp(o) => match field {
            "id" => text(&o.id),
            "lead_id" => text(&o.lead_id),
            "lead_name" => text(&o.lead_name),
            "contact_id" => opt_text(&o.contact_id),
            "contact_name" => opt_text(&o.contact_name),
            "user_id" => text(&o.user_id),
            "user_name" => text(&o.user_name),
            "status_id" => text(&o.status_id),
            "status_label" => text(&o.status_label),
            "status_type" => text(o.status_type.as_str()),
            "pipeline_id" => text(&o.pipeline_id),
            "pipeline_name" => text(&o.pipeline_name),
            "value" => FV::Int(o.value),
            "value_period" => text(o.value_period.as_str()),
            "value_currency" => text(&o.value_currency),
            "expected_value" => FV::Int(o.expected_value()),
            "annualized_value" => FV::Int(o.annualized_value()),
            "annualized_expected_value" => FV::Int(o.annualized_expected_value()),
            "confidence" => FV::Int(o.confidence),
            "date_won" => o.date_won.map(FV::Date).unwrap_or(FV::Null),
            "date_lost" => o.date_lost.map(FV::Date).unwrap_or(FV::Null),
            "close_date" => FV::Date(o.close_date),
            "date_created" => FV::Time(o.date_created),
            "date_updated" => FV::Time(o.date_updated),
            "is_stalled" => FV::Bool(ds.is_stalled(o)),
            f => f
                .strip_prefix("custom.")
                .map(|k| custom_value(&o.custom, k))
                .unwrap_or(FV::Null),
        },
        Obj::Task(t) => match field {
            "id" => text(&t.id),
            "lead_id" => text(&t.lead_id),
            "lead_name" => text(&t.lead_name),
            "contact_id" => opt_text(&t.contact_id),
            "assigned_to" => text(&t.assigned_to),
            "assigned_to_name" => text(&t.assigned_to_name),
            "text" => text(&t.text),
            "priority" => text(&t.priority),
            "is_complete" => FV::Bool(t.is_complete),
            "due_date" => FV::Date(t.due_date),
            "date_created" => FV::Time(t.date_created),
            "date_updated" => FV::Time(t.date_updated),
            _ => FV::Null,
        },
        Obj::Act(a) => match field {
            "id" => text(&a.id),
            "lead_id" => text(&a.lead_id),
            "contact_id" => opt_text(&a.contact_id),
            "user_id" => text(&a.user_id),
            "user_name" => text(&a.user_name),
            "activity_at" => FV::Time(a.activity_at),
            "date_created" => FV::Time(a.date_created),
            "date_updated" => FV::Time(a.date_updated),
            f => activity_value(a, f),
        },
    }
}

fn activity_value(a: &Activity, field: &str) -> FV {
    match &a.details {
        ActivityDetails::Call(c) => match field {
            "direction" => text(&c.direction),
            "status" => text(&c.status),
            "disposition" => text(&c.disposition),
            "duration" => FV::Int(c.duration),
            "outcome_id" => opt_text(&c.outcome_id),
            "cost" => FV::Int(c.cost),
            _ => FV::Null,
        },
        ActivityDetails::Email(e) => match field {
            "direction" => text(&e.direction),
            "status" => text(&e.status),
            "subject" => text(&e.subject),
            "template_id" => opt_text(&e.template_id),
            "template_name" => opt_text(&e.template_name),
            "opens" => FV::Int(e.opens),
            "has_reply" => FV::Bool(e.has_reply),
            _ => FV::Null,
        },
        ActivityDetails::Meeting(m) => match field {
            "title" => text(&m.title),
            "status" => text(&m.status),
            "duration" => FV::Int((m.ends_at - m.starts_at).num_seconds()),
            "outcome_id" => opt_text(&m.outcome_id),
            _ => FV::Null,
        },
        ActivityDetails::Note(n) => match field {
            "title" => text(&n.title),
            "pinned" => FV::Bool(n.pinned),
            _ => FV::Null,
        },
        ActivityDetails::Sms(s) => match field {
            "direction" => text(&s.direction),
            "status" => text(&s.status),
            "template_id" => opt_text(&s.template_id),
            _ => FV::Null,
        },
        ActivityDetails::LeadStatusChange(c) => match field {
            "old_status_id" => opt_text(&c.old_status_id),
            "old_status_label" => opt_text(&c.old_status_label),
            "new_status_id" => text(&c.new_status_id),
            "new_status_label" => text(&c.new_status_label),
            _ => FV::Null,
        },
        ActivityDetails::OpportunityStatusChange(c) => match field {
            "opportunity_id" => text(&c.opportunity_id),
            "old_status_id" => text(&c.old_status_id),
            "old_status_label" => text(&c.old_status_label),
            "old_status_type" => text(c.old_status_type.as_str()),
            "new_status_id" => text(&c.new_status_id),
            "new_status_label" => text(&c.new_status_label),
            "new_status_type" => text(c.new_status_type.as_str()),
            "new_pipeline_id" => text(&c.new_pipeline_id),
            "new_pipeline_name" => text(&c.new_pipeline_name),
            "opportunity_value" => FV::Int(c.opportunity_value),
            "opportunity_value_period" => text(c.opportunity_value_period.as_str()),
            "opportunity_confidence" => FV::Int(c.opportunity_confidence),
            _ => FV::Null,
        },
        ActivityDetails::CustomActivity(c) => match field {
            "custom_activity_type_id" => text(&c.custom_activity_type_id),
            f => f
                .strip_prefix("custom.")
                .map(|k| custom_value(&c.custom, k))
                .unwrap_or(FV::Null),
        },
    }
}

fn rows_of<'a>(ds: &'a Dataset, object_type: &str) -> Vec<Obj<'a>> {
    let activities = |kind: ActivityKind| -> Vec<Obj<'a>> {
        ds.activities
            .iter()
            .filter(|a| a.kind() == kind)
            .map(Obj::Act)
            .collect()
    };
    match object_type {
        "lead" => ds.leads.iter().map(Obj::Lead).collect(),
        "contact" => ds.contacts.iter().map(Obj::Contact).collect(),
        "opportunity" => ds.opportunities.iter().map(Obj::Opp).collect(),
        "task" => ds.tasks.iter().map(Obj::Task).collect(),
        "email" => activities(ActivityKind::Email),
        "call" => activities(ActivityKind::Call),
        "note" => activities(ActivityKind::Note),
        "meeting" => activities(ActivityKind::Meeting),
        "sms" => activities(ActivityKind::Sms),
        "custom_activity" => activities(ActivityKind::CustomActivity),
        "lead_status_change" => activities(ActivityKind::LeadStatusChange),
        "opportunity_status_change" => activities(ActivityKind::OpportunityStatusChange),
        _ => vec![],
    }
}

struct AggSpec {
    kind: String,
    field: Option<String>,
    key: String,
}

fn parse_aggregations(v: Option<&Value>) -> Result<Vec<AggSpec>, String> {
    let items = match v {
        None | Some(Value::Null) => return Ok(vec![AggSpec { kind: "count".into(), field: None, key: "count".into() }]),
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Object(_)) => vec![v.cloned().unwrap_or_default()],
        Some(_) => return Err("Invalid argument 'aggregations': expected a list of {\"type\": …, \"field\": …} objects".into()),
    };
    if items.is_empty() {
        return Err("Invalid argument 'aggregations': give at least one aggregation".into());
    }
    let mut out = Vec::new();
    for item in items {
        let (kind, field) = match &item {
            Value::String(s) => (s.clone(), None),
            Value::Object(o) => {
                let kind = o
                    .get("type")
                    .or_else(|| o.get("aggregation_type"))
                    .and_then(Value::as_str)
                    .ok_or("Invalid argument 'aggregations': each item needs a \"type\" (count, sum, average, min, max, median, cardinality, percent_empty)")?
                    .to_string();
                let field = match o.get("field") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => {
                        return Err(
                            "Invalid argument 'aggregations': \"field\" must be a string".into(),
                        )
                    }
                };
                (kind, field)
            }
            _ => return Err("Invalid argument 'aggregations': each item must be an object".into()),
        };
        let kind = match kind.as_str() {
            "avg" | "mean" => "average".to_string(),
            "distinct_count" | "count_distinct" => "cardinality".to_string(),
            other => other.to_string(),
        };
        if !AGGREGATION_TYPES.contains(&kind.as_str()) {
            return Err(format!("Invalid argument 'aggregations': unknown aggregation type '{}' (expected one of {})", truncate(&kind, 30), AGGREGATION_TYPES.join(", ")));
        }
        if kind != "count" && field.is_none() {
            return Err(format!(
                "Invalid argument 'aggregations': '{kind}' needs a field"
            ));
        }
        let key = match &field {
            None => kind.clone(),
            Some(f) => format!("{kind}({f})"),
        };
        out.push(AggSpec { kind, field, key });
    }
    Ok(out)
}

/// Looks up `field` in the include types: its kind, or an error naming the field.
fn resolve_field(
    ds: &Dataset,
    types: &[String],
    field: &str,
    arg: &str,
) -> Result<FieldKind, String> {
    for t in types {
        if let Some(f) = fields_for(ds, t).into_iter().find(|f| f.name == field) {
            return Ok(f.kind);
        }
    }
    Err(format!(
        "Invalid argument '{arg}': unknown field '{}' for {}; see get_fields",
        truncate(field, 60),
        types.join(", ")
    ))
}

fn bucket_start(d: NaiveDate, interval: &str) -> NaiveDate {
    match interval {
        "week" => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
        "month" => NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d),
        "quarter" => NaiveDate::from_ymd_opt(d.year(), (d.month() - 1) / 3 * 3 + 1, 1).unwrap_or(d),
        "year" => NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d),
        _ => d,
    }
}

fn compute(ds: &Dataset, rows: &[Obj], spec: &AggSpec, kind: Option<FieldKind>) -> Value {
    let Some(field) = &spec.field else {
        return json!(rows.len());
    };
    let values: Vec<FV> = rows.iter().map(|r| value(ds, *r, field)).collect();
    let present: Vec<&FV> = values.iter().filter(|v| !matches!(v, FV::Null)).collect();
    let ints: Vec<i64> = present
        .iter()
        .filter_map(|v| if let FV::Int(i) = v { Some(*i) } else { None })
        .collect();
    match spec.kind.as_str() {
        "count" => json!(present.len()),
        "sum" => json!(ints.iter().sum::<i64>()),
        "average" => {
            if ints.is_empty() {
                Value::Null
            } else {
                json!(ints.iter().sum::<i64>() as f64 / ints.len() as f64)
            }
        }
        "median" => {
            let mut sorted = ints.clone();
            sorted.sort_unstable();
            match sorted.len() {
                0 => Value::Null,
                n if n % 2 == 1 => json!(sorted[n / 2] as f64),
                n => json!((sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0),
            }
        }
        "min" | "max" => {
            let want_max = spec.kind == "max";
            if kind == Some(FieldKind::Number) {
                let v = if want_max {
                    ints.iter().max()
                } else {
                    ints.iter().min()
                };
                v.map(|v| json!(v)).unwrap_or(Value::Null)
            } else {
                let mut times: Vec<(DateTime<Utc>, &FV)> = present
                    .iter()
                    .filter_map(|v| v.instant().map(|t| (t, *v)))
                    .collect();
                times.sort_by_key(|(t, _)| *t);
                let pick = if want_max {
                    times.last()
                } else {
                    times.first()
                };
                pick.map(|(_, v)| v.to_json()).unwrap_or(Value::Null)
            }
        }
        "cardinality" => {
            let distinct: HashSet<String> =
                present.iter().map(|v| v.to_json().to_string()).collect();
            json!(distinct.len())
        }
        "percent_empty" => {
            if values.is_empty() {
                Value::Null
            } else {
                let empty = values.iter().filter(|v| v.is_empty()).count();
                json!((empty as f64 * 10_000.0 / values.len() as f64).round() / 100.0)
            }
        }
        _ => Value::Null,
    }
}

/// The `aggregation` tool (shapes in the module docs).
pub fn aggregate(ds: &Dataset, args: &Map<String, Value>) -> ToolResult {
    let types =
        arg_strs(args, "include_types")?.ok_or("Missing required argument 'include_types'")?;
    if types.is_empty() {
        return Err("Invalid argument 'include_types': give at least one object type".into());
    }
    for t in &types {
        if !OBJECT_TYPES.contains(&t.as_str()) {
            return Err(format!(
                "Invalid argument 'include_types': unknown object type '{}'",
                truncate(t, 40)
            ));
        }
    }
    let aggs = parse_aggregations(args.get("aggregations"))?;
    let mut agg_kinds = Vec::new();
    for a in &aggs {
        let kind = match &a.field {
            Some(f) => {
                let k = resolve_field(ds, &types, f, "aggregations")?;
                if !k.aggregations().contains(&a.kind.as_str()) {
                    return Err(format!(
                        "Invalid argument 'aggregations': '{}' does not apply to {} field '{}'",
                        a.kind,
                        k.as_str(),
                        f
                    ));
                }
                Some(k)
            }
            None => None,
        };
        agg_kinds.push(kind);
    }
    let group_by = arg_strs(args, "group_by")?.unwrap_or_default();
    if group_by.len() > 2 {
        return Err(format!(
            "Invalid argument 'group_by': at most 2 fields, got {}",
            group_by.len()
        ));
    }
    for g in &group_by {
        resolve_field(ds, &types, g, "group_by")?;
    }
    let interval = arg_str(args, "interval")?.map(str::to_lowercase);
    if let Some(i) = &interval {
        if !INTERVALS.contains(&i.as_str()) {
            return Err(format!(
                "Invalid argument 'interval': expected one of {}, got \"{}\"",
                INTERVALS.join(", "),
                truncate(i, 30)
            ));
        }
    }
    let buckets = match args.get("time_buckets") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => {
            let field = o
                .get("field")
                .and_then(Value::as_str)
                .ok_or("Invalid argument 'time_buckets': needs a \"field\" naming a date field")?
                .to_string();
            let kind = resolve_field(ds, &types, &field, "time_buckets")?;
            if !matches!(kind, FieldKind::DateTime | FieldKind::Date) {
                return Err(format!(
                    "Invalid argument 'time_buckets': field '{field}' is not a date field"
                ));
            }
            let bound = |key: &str| -> Result<Option<DateTime<Utc>>, String> {
                match o.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => parse_time(s).map(|(t, _)| Some(t)).ok_or_else(|| format!("Invalid argument 'time_buckets': '{}' is not an ISO-8601 date or timestamp", truncate(s, 40))),
                    Some(_) => Err(format!("Invalid argument 'time_buckets': \"{key}\" must be a string")),
                }
            };
            Some((field, bound("start")?, bound("end")?))
        }
        Some(_) => return Err(
            "Invalid argument 'time_buckets': expected an object {\"field\", \"start\", \"end\"}"
                .into(),
        ),
    };
    if interval.is_some() && buckets.is_none() {
        return Err("Invalid argument 'interval': needs time_buckets naming a date field".into());
    }

    let mut rows: Vec<Obj> = types.iter().flat_map(|t| rows_of(ds, t)).collect();
    if let Some((field, start, end)) = &buckets {
        rows.retain(|r| match value(ds, *r, field).instant() {
            Some(t) => start.is_none_or(|s| t >= s) && end.is_none_or(|e| t < e),
            None => false,
        });
    }

    type Group<'a> = (Option<NaiveDate>, Vec<Value>, Vec<Obj<'a>>);
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for r in &rows {
        let bucket = match (&interval, &buckets) {
            (Some(i), Some((field, _, _))) => {
                value(ds, *r, field).day().map(|d| bucket_start(d, i))
            }
            _ => None,
        };
        let keys: Vec<Value> = group_by
            .iter()
            .map(|g| value(ds, *r, g).to_json())
            .collect();
        let sort_key = format!(
            "{}\u{1}{}",
            bucket.map(|b| iso_date(&b)).unwrap_or_default(),
            Value::Array(keys.clone())
        );
        groups
            .entry(sort_key)
            .or_insert_with(|| (bucket, keys, Vec::new()))
            .2
            .push(*r);
    }
    let values_of = |subset: &[Obj]| -> Value {
        let mut m = Map::new();
        for (a, k) in aggs.iter().zip(&agg_kinds) {
            m.insert(a.key.clone(), compute(ds, subset, a, *k));
        }
        Value::Object(m)
    };
    let mut out_rows: Vec<Value> = Vec::new();
    if group_by.is_empty() && interval.is_none() {
        out_rows.push(json!({ "group": {}, "values": values_of(&rows) }));
    } else {
        for (bucket, keys, subset) in groups.values() {
            let mut row = Map::new();
            if interval.is_some() {
                row.insert(
                    "bucket".into(),
                    bucket.map(|b| json!(iso_date(&b))).unwrap_or(Value::Null),
                );
            }
            let group: Map<String, Value> =
                group_by.iter().cloned().zip(keys.iter().cloned()).collect();
            row.insert("group".into(), Value::Object(group));
            row.insert("values".into(), values_of(subset));
            out_rows.push(Value::Object(row));
        }
    }
    Ok(json!({
        "include_types": types,
        "aggregations": aggs.iter().map(|a| json!({"type": a.kind, "field": a.field, "key": a.key})).collect::<Vec<_>>(),
        "group_by": group_by,
        "time_buckets": buckets.as_ref().map(|(f, s, e)| json!({
            "field": f,
            "start": s.map(|t| iso(&t)),
            "end": e.map(|t| iso(&t)),
            "interval": interval,
        })),
        "display_mode": args.get("display_mode").cloned().unwrap_or(Value::Null),
        "total_rows": rows.len(),
        "totals": values_of(&rows),
        "rows": out_rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DatasetConfig, StatusType};
    use std::sync::LazyLock;

    static DS: LazyLock<Dataset> = LazyLock::new(|| {
        Dataset::generate(DatasetConfig {
            seed: 9,
            anchor: NaiveDate::from_ymd_opt(2026, 1, 20).unwrap(),
        })
    });

    fn run(v: Value) -> ToolResult {
        aggregate(&DS, v.as_object().unwrap())
    }

    #[test]
    fn counting_opportunities_without_grouping_gives_one_row() {
        let r = run(json!({"include_types": ["opportunity"]})).unwrap();
        assert_eq!(r["totals"]["count"], DS.opportunities.len());
        assert_eq!(r["rows"].as_array().unwrap().len(), 1);
        assert_eq!(r["rows"][0]["values"]["count"], DS.opportunities.len());
    }

    #[test]
    fn group_by_owner_sums_open_pipeline_per_user() {
        let r = run(json!({
            "include_types": ["opportunity"],
            "aggregations": [{"type": "sum", "field": "value"}, {"aggregation_type": "count"}],
            "group_by": ["status_type", "user_id"],
        }))
        .unwrap();
        for row in r["rows"].as_array().unwrap() {
            let user = row["group"]["user_id"].as_str().unwrap();
            let st = row["group"]["status_type"].as_str().unwrap();
            let want: i64 = DS
                .opportunities
                .iter()
                .filter(|o| o.user_id == user && o.status_type.as_str() == st)
                .map(|o| o.value)
                .sum();
            assert_eq!(row["values"]["sum(value)"], want);
        }
        let active_total: i64 = DS
            .opportunities
            .iter()
            .filter(|o| o.status_type == StatusType::Active)
            .map(|o| o.value)
            .sum();
        let got: i64 = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row["group"]["status_type"] == "active")
            .map(|row| row["values"]["sum(value)"].as_i64().unwrap())
            .sum();
        assert_eq!(got, active_total);
    }

    #[test]
    fn more_than_two_group_by_fields_is_an_error() {
        let e = run(json!({"include_types": ["opportunity"], "group_by": ["user_id", "status_id", "pipeline_id"]})).unwrap_err();
        assert!(e.contains("'group_by'") && e.contains("at most 2"), "{e}");
    }

    #[test]
    fn lead_fields_are_reachable_from_opportunities() {
        let r = run(json!({
            "include_types": ["opportunity"],
            "aggregations": [{"type": "cardinality", "field": "lead_id"}],
            "group_by": ["lead.source"],
        }))
        .unwrap();
        let referral = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["group"]["lead.source"] == "Referral")
            .unwrap();
        let want: HashSet<&str> = DS
            .opportunities
            .iter()
            .filter(|o| DS.lead(&o.lead_id).unwrap().source == "Referral")
            .map(|o| o.lead_id.as_str())
            .collect();
        assert_eq!(referral["values"]["cardinality(lead_id)"], want.len());
    }

    #[test]
    fn time_buckets_filter_and_split_by_interval() {
        let r = run(json!({
            "include_types": ["lead"],
            "time_buckets": {"field": "date_created", "start": "2025-04-01", "end": "2025-07-01"},
            "interval": "month",
        }))
        .unwrap();
        let rows = r["rows"].as_array().unwrap();
        let buckets: Vec<&str> = rows
            .iter()
            .map(|row| row["bucket"].as_str().unwrap())
            .collect();
        assert_eq!(buckets, ["2025-04-01", "2025-05-01", "2025-06-01"]);
        let april = DS
            .leads
            .iter()
            .filter(|l| l.date_created.date_naive().format("%Y-%m").to_string() == "2025-04")
            .count();
        assert_eq!(rows[0]["values"]["count"], april);
        assert_eq!(
            r["total_rows"],
            rows.iter()
                .map(|row| row["values"]["count"].as_u64().unwrap())
                .sum::<u64>()
        );
    }

    #[test]
    fn weekly_buckets_start_on_monday() {
        let r = run(json!({
            "include_types": ["opportunity_status_change"],
            "time_buckets": {"field": "activity_at", "start": "2025-09-01", "end": "2025-10-01"},
            "interval": "week",
        }))
        .unwrap();
        for row in r["rows"].as_array().unwrap() {
            let d = NaiveDate::parse_from_str(row["bucket"].as_str().unwrap(), "%Y-%m-%d").unwrap();
            assert_eq!(d.weekday(), chrono::Weekday::Mon);
        }
    }

    #[test]
    fn unknown_fields_and_misapplied_aggregations_name_the_argument() {
        assert!(run(json!({"include_types": ["opportunity"], "aggregations": [{"type": "sum", "field": "nope"}]})).unwrap_err().contains("'nope'"));
        assert!(run(json!({"include_types": ["opportunity"], "aggregations": [{"type": "sum", "field": "user_name"}]})).unwrap_err().contains("'aggregations'"));
        assert!(
            run(json!({"include_types": ["opportunity"], "interval": "month"}))
                .unwrap_err()
                .contains("'interval'")
        );
        assert!(run(json!({"include_types": ["opportunity"], "aggregations": [{"type": "mode", "field": "value"}]})).unwrap_err().contains("'mode'"));
    }

    #[test]
    fn get_fields_lists_every_object_type_with_lead_source_for_opportunities() {
        let f = field_catalog(&DS);
        let types = f["object_types"].as_array().unwrap();
        assert_eq!(types.len(), OBJECT_TYPES.len());
        let opp = types.iter().find(|t| t["type"] == "opportunity").unwrap();
        let names: Vec<&str> = opp["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        for want in [
            "value",
            "status_type",
            "user_id",
            "confidence",
            "lead.source",
            "lead.date_created",
        ] {
            assert!(names.contains(&want), "{want}");
        }
    }

    #[test]
    fn min_max_average_and_median_are_computed_over_values() {
        let r = run(json!({"include_types": ["opportunity"], "aggregations": [
            {"type": "min", "field": "value"}, {"type": "max", "field": "value"},
            {"type": "average", "field": "confidence"}, {"type": "median", "field": "value"},
            {"type": "min", "field": "date_created"}, {"type": "percent_empty", "field": "date_won"}]})).unwrap();
        let t = &r["totals"];
        assert_eq!(
            t["min(value)"],
            DS.opportunities.iter().map(|o| o.value).min().unwrap()
        );
        assert_eq!(
            t["max(value)"],
            DS.opportunities.iter().map(|o| o.value).max().unwrap()
        );
        assert!(t["average(confidence)"].as_f64().unwrap() > 0.0);
        assert!(t["min(date_created)"].as_str().unwrap().ends_with("+00:00"));
        assert!(t["percent_empty(date_won)"].as_f64().unwrap() > 0.0);
    }
}
