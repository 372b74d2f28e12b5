//! The stand-in's CRM dataset: one Close organization, generated deterministically from a seed and an
//! anchor date.
//!
//! Object shapes and field names follow Close's REST data model as summarised in
//! `close-mcp.md` §4 (id prefixes §4.1, leads §4.2, contacts §4.3, opportunities §4.4, pipelines and
//! statuses §4.5, activities §4.6, tasks §4.7, users/memberships §4.8, custom fields §4.9, smart views
//! §4.10, outcomes §4.11). Timestamps are ISO-8601 with microseconds and `+00:00`, as in Close's examples.
//!
//! Where the stand-in guesses (Close does not publish these details):
//! * `close_date` on an opportunity is the expected close date while the deal is open and the actual
//!   close date once it is won or lost; `date_won` / `date_lost` are set only for won / lost deals.
//! * An opportunity's `value`, `value_period` and `confidence` never change during its life, so the
//!   weighted pipeline at any past instant is fully reconstructable from `date_created` plus the
//!   `OpportunityStatusChange` activities (each carries `old_status_*` and `new_status_*`).
//! * Event timestamps (`date_created`, `date_updated`, `activity_at`, `date_won`, `date_lost`) all fall
//!   in the 455 days before [`Dataset::as_of`] (midnight UTC at the start of the anchor day). Planned
//!   dates (`close_date` of open deals, task `due_date`) may lie up to ~90 days after it.
//!
//! The generator uses its own splitmix64 generator and no floating-point transcendental functions, so a
//! given `(seed, anchor)` yields byte-identical data on every platform and with every dependency version.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{json, Map, Value};

/// How to generate a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetConfig {
    /// Seed of the generator. Default 42.
    pub seed: u64,
    /// Day the dataset is "as of": every event lies before midnight UTC at the start of this day.
    /// Default: today's UTC date.
    pub anchor: NaiveDate,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        DatasetConfig {
            seed: 42,
            anchor: Utc::now().date_naive(),
        }
    }
}

/// Number of days of history before the anchor (~15 months).
pub const HISTORY_DAYS: i64 = 455;

// ---------------------------------------------------------------------------------------------------
// Formatting helpers (Close's formats)
// ---------------------------------------------------------------------------------------------------

/// Formats a timestamp the way Close does: `2025-02-01T00:54:51.337000+00:00`.
pub fn iso(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// Formats a date as `YYYY-MM-DD`.
pub fn iso_date(d: &NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn opt_iso_date(d: &Option<NaiveDate>) -> Value {
    d.as_ref()
        .map(|d| Value::String(iso_date(d)))
        .unwrap_or(Value::Null)
}

/// `$1,234.56`-style money text as Close shows it in `value_formatted` (whole dollars drop the cents).
pub fn format_money(cents: i64) -> String {
    let negative = cents < 0;
    let cents = cents.unsigned_abs();
    let dollars = cents / 100;
    let rest = cents % 100;
    let digits = dollars.to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if negative { "-" } else { "" };
    if rest == 0 {
        format!("{sign}${grouped}")
    } else {
        format!("{sign}${grouped}.{rest:02}")
    }
}

// ---------------------------------------------------------------------------------------------------
// The generator's random numbers
// ---------------------------------------------------------------------------------------------------

/// splitmix64, seeded per concern so that changing one part of the generator leaves the others intact.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64, stream: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
        for b in stream.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut rng = Rng(h ^ seed.rotate_left(17));
        rng.next_u64();
        rng
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            lo
        } else {
            lo + self.below((hi - lo) as u64 + 1) as i64
        }
    }

    /// True with probability `percent / 100`.
    pub(crate) fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = self.below(items.len() as u64) as usize;
        &items[i.min(items.len().saturating_sub(1))]
    }

    pub(crate) fn weighted<'a, T>(&mut self, items: &'a [(T, u64)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| *w).sum();
        let mut roll = self.below(total.max(1));
        for (item, w) in items {
            if roll < *w {
                return item;
            }
            roll -= w;
        }
        &items[items.len() - 1].0
    }

    /// A Close-style id: prefix plus 43 alphanumerics.
    pub(crate) fn id(&mut self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut s = String::with_capacity(prefix.len() + 44);
        s.push_str(prefix);
        s.push('_');
        for _ in 0..43 {
            s.push(ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char);
        }
        s
    }

    /// A time uniformly between `from` and `to` (millisecond resolution).
    pub(crate) fn between(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
        let span = (to - from).num_milliseconds();
        if span <= 0 {
            return from;
        }
        from + Duration::milliseconds(self.range(0, span))
    }
}

// ---------------------------------------------------------------------------------------------------
// Public data types
// ---------------------------------------------------------------------------------------------------

/// Opportunity status type (`close-mcp.md` §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusType {
    Active,
    Won,
    Lost,
}

impl StatusType {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusType::Active => "active",
            StatusType::Won => "won",
            StatusType::Lost => "lost",
        }
    }
    pub fn parse(s: &str) -> Option<StatusType> {
        match s {
            "active" => Some(StatusType::Active),
            "won" => Some(StatusType::Won),
            "lost" => Some(StatusType::Lost),
            _ => None,
        }
    }
}

/// `value_period` of an opportunity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValuePeriod {
    OneTime,
    Monthly,
    Annual,
}

impl ValuePeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            ValuePeriod::OneTime => "one_time",
            ValuePeriod::Monthly => "monthly",
            ValuePeriod::Annual => "annual",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

impl User {
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub permissions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Membership {
    pub id: String,
    pub user_id: String,
    pub organization_id: String,
    pub role_id: String,
    pub date_created: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OpportunityStatus {
    pub id: String,
    pub label: String,
    pub status_type: StatusType,
    pub pipeline_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub id: String,
    pub name: String,
    /// Statuses in pipeline order (active stages first, then won, then lost).
    pub statuses: Vec<OpportunityStatus>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LeadStatus {
    pub id: String,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Address {
    pub label: String,
    pub address_1: String,
    pub address_2: String,
    pub city: String,
    pub state: String,
    pub zipcode: String,
    pub country: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Lead {
    pub id: String,
    pub name: String,
    pub description: String,
    pub url: String,
    pub status_id: String,
    pub status_label: String,
    pub source: String,
    pub addresses: Vec<Address>,
    /// Custom field values keyed by `cf_…` id (shown as `custom.cf_…`).
    pub custom: BTreeMap<String, Value>,
    /// The rep who owns the account (also stored in the "Account Owner" custom field).
    pub owner_id: String,
    pub created_by: String,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContactEmail {
    pub email: String,
    pub email_type: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContactPhone {
    pub phone: String,
    pub phone_type: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Contact {
    pub id: String,
    pub lead_id: String,
    pub name: String,
    pub title: String,
    pub emails: Vec<ContactEmail>,
    pub phones: Vec<ContactPhone>,
    pub custom: BTreeMap<String, Value>,
    pub created_by: String,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Opportunity {
    pub id: String,
    pub lead_id: String,
    pub lead_name: String,
    pub contact_id: Option<String>,
    pub contact_name: Option<String>,
    pub user_id: String,
    pub user_name: String,
    pub status_id: String,
    pub status_label: String,
    pub status_type: StatusType,
    pub pipeline_id: String,
    pub pipeline_name: String,
    /// Integer cents.
    pub value: i64,
    pub value_period: ValuePeriod,
    pub value_currency: String,
    /// 0–100.
    pub confidence: i64,
    pub date_won: Option<NaiveDate>,
    pub date_lost: Option<NaiveDate>,
    /// Expected close date while open; actual close date once won or lost.
    pub close_date: NaiveDate,
    pub note: String,
    pub custom: BTreeMap<String, Value>,
    pub created_by: String,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

impl Opportunity {
    /// `value × confidence / 100`, rounded half up (cents).
    pub fn expected_value(&self) -> i64 {
        expected(self.value, self.confidence)
    }
    /// Value per year: monthly × 12, annual and one-time as is (Close's convention).
    pub fn annualized_value(&self) -> i64 {
        match self.value_period {
            ValuePeriod::Monthly => self.value * 12,
            _ => self.value,
        }
    }
    pub fn annualized_expected_value(&self) -> i64 {
        expected(self.annualized_value(), self.confidence)
    }
    /// "$500", "$50 monthly", "$1,200 annual".
    pub fn value_formatted(&self) -> String {
        formatted_value(self.value, self.value_period)
    }
}

/// Close's `value_formatted`: money plus the period for recurring values ("$50 monthly").
pub fn formatted_value(cents: i64, period: ValuePeriod) -> String {
    let money = format_money(cents);
    match period {
        ValuePeriod::OneTime => money,
        ValuePeriod::Monthly => format!("{money} monthly"),
        ValuePeriod::Annual => format!("{money} annual"),
    }
}

/// `value × confidence / 100` in cents, rounded half up.
pub fn expected(value: i64, confidence: i64) -> i64 {
    (value * confidence + 50).div_euclid(100)
}

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub direction: String,
    pub status: String,
    pub disposition: String,
    pub duration: i64,
    pub local_phone: String,
    pub remote_phone: String,
    pub note: String,
    pub outcome_id: Option<String>,
    /// US cents.
    pub cost: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Email {
    pub direction: String,
    pub status: String,
    pub subject: String,
    pub body_text: String,
    pub sender: String,
    pub to: Vec<String>,
    pub template_id: Option<String>,
    pub template_name: Option<String>,
    pub opens: i64,
    pub has_reply: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub title: String,
    pub note: String,
    pub pinned: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MeetingAttendee {
    pub contact_id: Option<String>,
    pub user_id: Option<String>,
    pub name: String,
    pub email: String,
    pub is_organizer: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Meeting {
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: String,
    pub location: String,
    pub conference_url: String,
    pub attendees: Vec<MeetingAttendee>,
    pub outcome_id: Option<String>,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sms {
    pub direction: String,
    pub status: String,
    pub text: String,
    pub local_phone: String,
    pub remote_phone: String,
    pub template_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LeadStatusChange {
    pub old_status_id: Option<String>,
    pub old_status_label: Option<String>,
    pub new_status_id: String,
    pub new_status_label: String,
}

/// One step of an opportunity's status history (`close-mcp.md` §4.6).
#[derive(Clone, Debug, PartialEq)]
pub struct OpportunityStatusChange {
    pub opportunity_id: String,
    pub old_status_id: String,
    pub old_status_label: String,
    pub old_status_type: StatusType,
    pub new_status_id: String,
    pub new_status_label: String,
    pub new_status_type: StatusType,
    pub old_pipeline_id: String,
    pub old_pipeline_name: String,
    pub new_pipeline_id: String,
    pub new_pipeline_name: String,
    pub opportunity_value: i64,
    pub opportunity_value_currency: String,
    pub opportunity_value_period: ValuePeriod,
    pub opportunity_confidence: i64,
    pub opportunity_date_won: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CustomActivityRecord {
    pub custom_activity_type_id: String,
    pub status: String,
    pub pinned: bool,
    pub custom: BTreeMap<String, Value>,
}

/// What kind of activity, with its type-specific fields.
#[derive(Clone, Debug, PartialEq)]
pub enum ActivityDetails {
    Call(Call),
    Email(Email),
    Note(Note),
    Meeting(Meeting),
    Sms(Sms),
    LeadStatusChange(LeadStatusChange),
    OpportunityStatusChange(OpportunityStatusChange),
    CustomActivity(CustomActivityRecord),
}

/// The activity types the dataset contains, with Close's `_type` and search names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActivityKind {
    Call,
    Email,
    Note,
    Meeting,
    Sms,
    LeadStatusChange,
    OpportunityStatusChange,
    CustomActivity,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 8] = [
        ActivityKind::Call,
        ActivityKind::Email,
        ActivityKind::Note,
        ActivityKind::Meeting,
        ActivityKind::Sms,
        ActivityKind::LeadStatusChange,
        ActivityKind::OpportunityStatusChange,
        ActivityKind::CustomActivity,
    ];
    /// Close's `_type` value, e.g. `OpportunityStatusChange`.
    pub fn type_name(self) -> &'static str {
        match self {
            ActivityKind::Call => "Call",
            ActivityKind::Email => "Email",
            ActivityKind::Note => "Note",
            ActivityKind::Meeting => "Meeting",
            ActivityKind::Sms => "SMS",
            ActivityKind::LeadStatusChange => "LeadStatusChange",
            ActivityKind::OpportunityStatusChange => "OpportunityStatusChange",
            ActivityKind::CustomActivity => "CustomActivity",
        }
    }
    /// Snake-case name used by search/aggregation (`opportunity_status_change`); activity_search
    /// takes it as `activity.<name>`.
    pub fn search_name(self) -> &'static str {
        match self {
            ActivityKind::Call => "call",
            ActivityKind::Email => "email",
            ActivityKind::Note => "note",
            ActivityKind::Meeting => "meeting",
            ActivityKind::Sms => "sms",
            ActivityKind::LeadStatusChange => "lead_status_change",
            ActivityKind::OpportunityStatusChange => "opportunity_status_change",
            ActivityKind::CustomActivity => "custom_activity",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    pub id: String,
    pub lead_id: String,
    pub contact_id: Option<String>,
    pub user_id: String,
    pub user_name: String,
    pub activity_at: DateTime<Utc>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
    pub details: ActivityDetails,
}

impl Activity {
    pub fn kind(&self) -> ActivityKind {
        match &self.details {
            ActivityDetails::Call(_) => ActivityKind::Call,
            ActivityDetails::Email(_) => ActivityKind::Email,
            ActivityDetails::Note(_) => ActivityKind::Note,
            ActivityDetails::Meeting(_) => ActivityKind::Meeting,
            ActivityDetails::Sms(_) => ActivityKind::Sms,
            ActivityDetails::LeadStatusChange(_) => ActivityKind::LeadStatusChange,
            ActivityDetails::OpportunityStatusChange(_) => ActivityKind::OpportunityStatusChange,
            ActivityDetails::CustomActivity(_) => ActivityKind::CustomActivity,
        }
    }
    /// The status-change details when this is an `OpportunityStatusChange`.
    pub fn opportunity_status_change(&self) -> Option<&OpportunityStatusChange> {
        match &self.details {
            ActivityDetails::OpportunityStatusChange(c) => Some(c),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub id: String,
    pub text: String,
    pub lead_id: String,
    pub lead_name: String,
    pub contact_id: Option<String>,
    pub contact_name: Option<String>,
    pub assigned_to: String,
    pub assigned_to_name: String,
    pub due_date: NaiveDate,
    pub is_complete: bool,
    pub priority: String,
    pub created_by: String,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

/// Which object a custom field belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CustomFieldObject {
    Lead,
    Contact,
    Opportunity,
    CustomActivity,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CustomField {
    pub id: String,
    pub object: CustomFieldObject,
    pub name: String,
    pub description: String,
    /// text, number, date, choices, user
    pub field_type: String,
    pub accepts_multiple_values: bool,
    pub choices: Option<Vec<String>>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

/// What a lead smart view selects (the stand-in's simplified `s_query`).
#[derive(Clone, Debug, PartialEq)]
pub enum LeadQuery {
    All,
    LeadStatus(String),
    Source(String),
    HasActiveOpportunity,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SmartView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub is_shared: bool,
    pub pinned: bool,
    pub user_id: String,
    pub query: LeadQuery,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EmailTemplate {
    pub id: String,
    pub name: String,
    pub subject: String,
    pub body: String,
    pub is_shared: bool,
    pub is_archived: bool,
    pub created_by: String,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SmsTemplate {
    pub id: String,
    pub name: String,
    pub text: String,
    pub is_shared: bool,
    pub is_archived: bool,
    pub created_by: String,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `custom` or `vm-dropped`.
    pub outcome_type: String,
    /// Subset of `calls`, `meetings`.
    pub applies_to: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub member_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    pub id: String,
    pub name: String,
    /// active, paused or draft
    pub status: String,
    pub steps: i64,
    pub created_by: String,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SchedulingLink {
    pub id: String,
    pub name: String,
    pub url: String,
    pub user_id: Option<String>,
    pub duration_minutes: i64,
    pub shared: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Form {
    pub id: String,
    pub name: String,
    pub date_created: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CustomActivityType {
    pub id: String,
    pub name: String,
    pub description: String,
    pub field_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Invoice {
    pub id: String,
    pub number: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub date_created: DateTime<Utc>,
}

/// The whole organization.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub config: DatasetConfig,
    pub organization: Organization,
    pub users: Vec<User>,
    pub roles: Vec<Role>,
    pub memberships: Vec<Membership>,
    pub pipelines: Vec<Pipeline>,
    pub lead_statuses: Vec<LeadStatus>,
    pub leads: Vec<Lead>,
    pub contacts: Vec<Contact>,
    pub opportunities: Vec<Opportunity>,
    /// All activities, oldest first.
    pub activities: Vec<Activity>,
    pub tasks: Vec<Task>,
    pub custom_fields: Vec<CustomField>,
    pub smart_views: Vec<SmartView>,
    pub email_templates: Vec<EmailTemplate>,
    pub sms_templates: Vec<SmsTemplate>,
    pub call_outcomes: Vec<Outcome>,
    pub meeting_outcomes: Vec<Outcome>,
    pub groups: Vec<Group>,
    pub workflows: Vec<Workflow>,
    pub scheduling_links: Vec<SchedulingLink>,
    pub forms: Vec<Form>,
    pub custom_activity_types: Vec<CustomActivityType>,
    pub invoices: Vec<Invoice>,
    index: Index,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Index {
    users: HashMap<String, usize>,
    leads: HashMap<String, usize>,
    contacts: HashMap<String, usize>,
    opportunities: HashMap<String, usize>,
    activities: HashMap<String, usize>,
    tasks: HashMap<String, usize>,
    contacts_by_lead: HashMap<String, Vec<usize>>,
    opportunities_by_lead: HashMap<String, Vec<usize>>,
}

impl Dataset {
    /// Generates the dataset for `config`. Same config → identical dataset.
    pub fn generate(config: DatasetConfig) -> Dataset {
        generate(config)
    }

    /// A second organization of the same user with no records: the consent page's "Northwind Sandbox"
    /// (an invention of the stand-in; see [`oauth`](crate::oauth)). It keeps the first user (as the
    /// only member, with the same role), the roles and the configuration; everything else is empty.
    pub fn sandbox(&self, name: &str) -> Dataset {
        let mut rng = Rng::new(self.config.seed, "sandbox-organization");
        let organization = Organization {
            id: rng.id("orga"),
            name: name.to_string(),
            ..self.organization.clone()
        };
        let users: Vec<User> = self.users.first().cloned().into_iter().collect();
        let memberships = users
            .iter()
            .map(|u| Membership {
                id: rng.id("memb"),
                user_id: u.id.clone(),
                organization_id: organization.id.clone(),
                role_id: self
                    .membership_of(&u.id)
                    .map(|m| m.role_id.clone())
                    .unwrap_or_default(),
                date_created: organization.date_created,
            })
            .collect();
        let mut ds = Dataset {
            config: self.config,
            organization,
            users,
            roles: self.roles.clone(),
            memberships,
            pipelines: vec![],
            lead_statuses: vec![],
            leads: vec![],
            contacts: vec![],
            opportunities: vec![],
            activities: vec![],
            tasks: vec![],
            custom_fields: vec![],
            smart_views: vec![],
            email_templates: vec![],
            sms_templates: vec![],
            call_outcomes: vec![],
            meeting_outcomes: vec![],
            groups: vec![],
            workflows: vec![],
            scheduling_links: vec![],
            forms: vec![],
            custom_activity_types: vec![],
            invoices: vec![],
            index: Index::default(),
        };
        ds.build_index();
        ds
    }

    /// The instant the dataset is "as of": midnight UTC at the start of the anchor day. Every event
    /// timestamp lies strictly before it.
    pub fn as_of(&self) -> DateTime<Utc> {
        day_start(self.config.anchor)
    }

    /// Start of the history window (`as_of - 455 days`).
    pub fn history_start(&self) -> DateTime<Utc> {
        self.as_of() - Duration::days(HISTORY_DAYS)
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.index.users.get(id).map(|&i| &self.users[i])
    }
    pub fn lead(&self, id: &str) -> Option<&Lead> {
        self.index.leads.get(id).map(|&i| &self.leads[i])
    }
    pub fn contact(&self, id: &str) -> Option<&Contact> {
        self.index.contacts.get(id).map(|&i| &self.contacts[i])
    }
    pub fn opportunity(&self, id: &str) -> Option<&Opportunity> {
        self.index
            .opportunities
            .get(id)
            .map(|&i| &self.opportunities[i])
    }
    pub fn activity(&self, id: &str) -> Option<&Activity> {
        self.index.activities.get(id).map(|&i| &self.activities[i])
    }
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.index.tasks.get(id).map(|&i| &self.tasks[i])
    }
    pub fn pipeline(&self, id: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.id == id)
    }
    pub fn pipeline_by_name(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.name == name)
    }
    /// Any opportunity status, in any pipeline.
    pub fn opportunity_status(&self, id: &str) -> Option<&OpportunityStatus> {
        self.pipelines
            .iter()
            .flat_map(|p| p.statuses.iter())
            .find(|s| s.id == id)
    }
    /// The status called `label` in the pipeline called `pipeline`.
    pub fn opportunity_status_by_label(
        &self,
        pipeline: &str,
        label: &str,
    ) -> Option<&OpportunityStatus> {
        self.pipeline_by_name(pipeline)?
            .statuses
            .iter()
            .find(|s| s.label == label)
    }
    pub fn lead_status(&self, id: &str) -> Option<&LeadStatus> {
        self.lead_statuses.iter().find(|s| s.id == id)
    }
    pub fn contacts_of(&self, lead_id: &str) -> Vec<&Contact> {
        self.index
            .contacts_by_lead
            .get(lead_id)
            .map(|v| v.iter().map(|&i| &self.contacts[i]).collect())
            .unwrap_or_default()
    }
    pub fn opportunities_of(&self, lead_id: &str) -> Vec<&Opportunity> {
        self.index
            .opportunities_by_lead
            .get(lead_id)
            .map(|v| v.iter().map(|&i| &self.opportunities[i]).collect())
            .unwrap_or_default()
    }
    pub fn custom_field(&self, id: &str) -> Option<&CustomField> {
        self.custom_fields.iter().find(|f| f.id == id)
    }
    /// Membership of a user.
    pub fn membership_of(&self, user_id: &str) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.user_id == user_id)
    }
    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    /// Does `lead` match a smart view's query?
    pub fn lead_matches(&self, lead: &Lead, query: &LeadQuery) -> bool {
        match query {
            LeadQuery::All => true,
            LeadQuery::LeadStatus(id) => &lead.status_id == id,
            LeadQuery::Source(s) => &lead.source == s,
            LeadQuery::HasActiveOpportunity => self
                .opportunities_of(&lead.id)
                .iter()
                .any(|o| o.status_type == StatusType::Active),
        }
    }

    fn build_index(&mut self) {
        let mut ix = Index::default();
        for (i, u) in self.users.iter().enumerate() {
            ix.users.insert(u.id.clone(), i);
        }
        for (i, l) in self.leads.iter().enumerate() {
            ix.leads.insert(l.id.clone(), i);
        }
        for (i, c) in self.contacts.iter().enumerate() {
            ix.contacts.insert(c.id.clone(), i);
            ix.contacts_by_lead
                .entry(c.lead_id.clone())
                .or_default()
                .push(i);
        }
        for (i, o) in self.opportunities.iter().enumerate() {
            ix.opportunities.insert(o.id.clone(), i);
            ix.opportunities_by_lead
                .entry(o.lead_id.clone())
                .or_default()
                .push(i);
        }
        for (i, a) in self.activities.iter().enumerate() {
            ix.activities.insert(a.id.clone(), i);
        }
        for (i, t) in self.tasks.iter().enumerate() {
            ix.tasks.insert(t.id.clone(), i);
        }
        self.index = ix;
    }
}

/// Midnight UTC at the start of `d`.
pub fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------------
// JSON views (Close's REST field names)
// ---------------------------------------------------------------------------------------------------

fn put_custom(obj: &mut Map<String, Value>, custom: &BTreeMap<String, Value>) {
    for (k, v) in custom {
        obj.insert(format!("custom.{k}"), v.clone());
    }
}

impl Dataset {
    fn user_name(&self, id: &str) -> String {
        self.user(id).map(User::display_name).unwrap_or_default()
    }

    pub fn organization_json(&self) -> Value {
        let o = &self.organization;
        json!({
            "id": o.id,
            "name": o.name,
            "currency": o.currency,
            "date_created": iso(&o.date_created),
            "date_updated": iso(&o.date_updated),
        })
    }

    pub fn user_json(&self, u: &User) -> Value {
        let membership = self.membership_of(&u.id);
        let role = membership.and_then(|m| self.role(&m.role_id));
        json!({
            "id": u.id,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "display_name": u.display_name(),
            "email": u.email,
            "image": Value::Null,
            "organizations": [self.organization.id],
            "membership_id": membership.map(|m| m.id.clone()),
            "role_id": membership.map(|m| m.role_id.clone()),
            "role_name": role.map(|r| r.name.clone()),
            "mention_html": format!(
                "<span data-type=\"mention\" data-id=\"{}\" data-label=\"{}\" class=\"mention\">@{}</span>",
                u.id, u.display_name(), u.display_name()
            ),
            "date_created": iso(&u.date_created),
            "date_updated": iso(&u.date_updated),
        })
    }

    pub fn membership_json(&self, m: &Membership) -> Value {
        let role = self.role(&m.role_id);
        let user = self.user(&m.user_id);
        json!({
            "id": m.id,
            "user_id": m.user_id,
            "user_name": user.map(User::display_name),
            "user_email": user.map(|u| u.email.clone()),
            "organization_id": m.organization_id,
            "role_id": m.role_id,
            "role_name": role.map(|r| r.name.clone()),
            "permissions_granted": role.map(|r| r.permissions.clone()).unwrap_or_default(),
            "date_created": iso(&m.date_created),
        })
    }

    pub fn role_json(&self, r: &Role) -> Value {
        json!({ "id": r.id, "name": r.name, "permissions": r.permissions, "organization_id": self.organization.id })
    }

    pub fn opportunity_status_json(&self, s: &OpportunityStatus) -> Value {
        let pipeline = self.pipeline(&s.pipeline_id);
        json!({
            "id": s.id,
            "label": s.label,
            "type": s.status_type.as_str(),
            "pipeline_id": s.pipeline_id,
            "pipeline_name": pipeline.map(|p| p.name.clone()),
            "organization_id": self.organization.id,
        })
    }

    pub fn pipeline_json(&self, p: &Pipeline) -> Value {
        json!({
            "id": p.id,
            "name": p.name,
            "organization_id": self.organization.id,
            "statuses": p.statuses.iter().map(|s| json!({
                "id": s.id, "label": s.label, "type": s.status_type.as_str(),
            })).collect::<Vec<_>>(),
            "created_by": self.users[0].id,
            "updated_by": self.users[0].id,
            "date_created": iso(&p.date_created),
            "date_updated": iso(&p.date_updated),
        })
    }

    pub fn lead_status_json(&self, s: &LeadStatus) -> Value {
        json!({ "id": s.id, "label": s.label, "organization_id": self.organization.id })
    }

    pub fn contact_json(&self, c: &Contact) -> Value {
        let mut v = json!({
            "id": c.id,
            "lead_id": c.lead_id,
            "name": c.name,
            "display_name": c.name,
            "title": c.title,
            "emails": c.emails.iter().map(|e| json!({
                "email": e.email, "type": e.email_type, "is_unsubscribed": false,
            })).collect::<Vec<_>>(),
            "phones": c.phones.iter().map(|p| json!({
                "phone": p.phone, "phone_formatted": format_phone(&p.phone), "type": p.phone_type, "country": "US",
            })).collect::<Vec<_>>(),
            "urls": [],
            "timezone": "America/New_York",
            "organization_id": self.organization.id,
            "created_by": c.created_by,
            "updated_by": c.created_by,
            "date_created": iso(&c.date_created),
            "date_updated": iso(&c.date_updated),
        });
        if let Some(obj) = v.as_object_mut() {
            put_custom(obj, &c.custom);
        }
        v
    }

    pub fn opportunity_json(&self, o: &Opportunity) -> Value {
        let mut v = json!({
            "id": o.id,
            "organization_id": self.organization.id,
            "lead_id": o.lead_id,
            "lead_name": o.lead_name,
            "contact_id": o.contact_id,
            "contact_name": o.contact_name,
            "user_id": o.user_id,
            "user_name": o.user_name,
            "status_id": o.status_id,
            "status_label": o.status_label,
            "status_display_name": o.status_label,
            "status_type": o.status_type.as_str(),
            "pipeline_id": o.pipeline_id,
            "pipeline_name": o.pipeline_name,
            "value": o.value,
            "value_period": o.value_period.as_str(),
            "value_currency": o.value_currency,
            "value_formatted": o.value_formatted(),
            "expected_value": o.expected_value(),
            "annualized_value": o.annualized_value(),
            "annualized_expected_value": o.annualized_expected_value(),
            "confidence": o.confidence,
            "date_won": opt_iso_date(&o.date_won),
            "date_lost": opt_iso_date(&o.date_lost),
            "close_date": iso_date(&o.close_date),
            "note": o.note,
            "is_stalled": self.is_stalled(o),
            "created_by": o.created_by,
            "created_by_name": self.user_name(&o.created_by),
            "updated_by": o.user_id,
            "updated_by_name": o.user_name,
            "date_created": iso(&o.date_created),
            "date_updated": iso(&o.date_updated),
        });
        if let Some(obj) = v.as_object_mut() {
            put_custom(obj, &o.custom);
        }
        v
    }

    /// An open deal whose status has not changed for 30 days or more (stand-in's definition).
    pub fn is_stalled(&self, o: &Opportunity) -> bool {
        o.status_type == StatusType::Active && self.as_of() - o.date_updated >= Duration::days(30)
    }

    fn address_json(a: &Address) -> Value {
        json!({
            "label": a.label, "address_1": a.address_1, "address_2": a.address_2, "city": a.city,
            "state": a.state, "zipcode": a.zipcode, "country": a.country,
        })
    }

    /// Full lead as `fetch_lead` returns it: contacts and opportunities embedded.
    pub fn lead_json(&self, l: &Lead) -> Value {
        let contacts = self.contacts_of(&l.id);
        let mut v = self.lead_summary_json(l);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("description".into(), json!(l.description));
            obj.insert("organization_id".into(), json!(self.organization.id));
            obj.insert(
                "addresses".into(),
                l.addresses.iter().map(Self::address_json).collect(),
            );
            obj.insert(
                "contact_ids".into(),
                contacts.iter().map(|c| c.id.clone()).collect(),
            );
            obj.insert(
                "contacts".into(),
                contacts.iter().map(|c| self.contact_json(c)).collect(),
            );
            obj.insert(
                "opportunities".into(),
                self.opportunities_of(&l.id)
                    .iter()
                    .map(|o| self.opportunity_json(o))
                    .collect(),
            );
            obj.insert(
                "tasks".into(),
                self.tasks
                    .iter()
                    .filter(|t| t.lead_id == l.id && !t.is_complete)
                    .map(|t| self.task_json(t))
                    .collect(),
            );
            obj.insert("integration_links".into(), json!([]));
            obj.insert("created_by".into(), json!(l.created_by));
            obj.insert(
                "created_by_name".into(),
                json!(self.user_name(&l.created_by)),
            );
            obj.insert("updated_by".into(), json!(l.owner_id));
            obj.insert("updated_by_name".into(), json!(self.user_name(&l.owner_id)));
            put_custom(obj, &l.custom);
        }
        v
    }

    /// Compact lead (search results).
    pub fn lead_summary_json(&self, l: &Lead) -> Value {
        let contacts = self.contacts_of(&l.id);
        let primary = contacts.first();
        json!({
            "id": l.id,
            "name": l.name,
            "display_name": l.name,
            "url": l.url,
            "html_url": format!("https://app.close.com/lead/{}/", l.id),
            "status_id": l.status_id,
            "status_label": l.status_label,
            "source": l.source,
            "primary_email": primary.and_then(|c| c.emails.first()).map(|e| json!({"email": e.email, "type": e.email_type})),
            "primary_phone": primary.and_then(|c| c.phones.first()).map(|p| json!({"phone": p.phone, "type": p.phone_type})),
            "date_created": iso(&l.date_created),
            "date_updated": iso(&l.date_updated),
        })
    }

    pub fn activity_json(&self, a: &Activity) -> Value {
        let mut obj = Map::new();
        obj.insert("id".into(), json!(a.id));
        obj.insert("_type".into(), json!(a.kind().type_name()));
        obj.insert("organization_id".into(), json!(self.organization.id));
        obj.insert("lead_id".into(), json!(a.lead_id));
        obj.insert(
            "lead_name".into(),
            json!(self.lead(&a.lead_id).map(|l| l.name.clone())),
        );
        obj.insert("contact_id".into(), json!(a.contact_id));
        obj.insert(
            "contact_name".into(),
            json!(a
                .contact_id
                .as_deref()
                .and_then(|c| self.contact(c))
                .map(|c| c.name.clone())),
        );
        obj.insert("user_id".into(), json!(a.user_id));
        obj.insert("user_name".into(), json!(a.user_name));
        obj.insert("users".into(), json!([a.user_id]));
        obj.insert("activity_at".into(), json!(iso(&a.activity_at)));
        obj.insert("date_created".into(), json!(iso(&a.date_created)));
        obj.insert("date_updated".into(), json!(iso(&a.date_updated)));
        obj.insert("created_by".into(), json!(a.user_id));
        obj.insert("created_by_name".into(), json!(a.user_name));
        obj.insert("updated_by".into(), json!(a.user_id));
        obj.insert("updated_by_name".into(), json!(a.user_name));
        let extra = match &a.details {
            ActivityDetails::Call(c) => json!({
                "direction": c.direction,
                "status": c.status,
                "disposition": c.disposition,
                "call_method": "regular",
                "duration": c.duration,
                "phone": c.remote_phone,
                "local_phone": c.local_phone,
                "remote_phone": c.remote_phone,
                "recording_url": Value::Null,
                "voicemail_url": Value::Null,
                "voicemail_duration": if c.disposition == "vm-left" { json!(c.duration) } else { json!(0) },
                "outcome_id": c.outcome_id,
                "note": c.note,
                "note_html": if c.note.is_empty() { String::new() } else { format!("<body><p>{}</p></body>", html_escape(&c.note)) },
                "cost": c.cost,
                "source": "Close.io",
            }),
            ActivityDetails::Email(e) => json!({
                "direction": e.direction,
                "status": e.status,
                "subject": e.subject,
                "body_text": e.body_text,
                "body_html": format!("<body><p>{}</p></body>", html_escape(&e.body_text)),
                "body_preview": preview(&e.body_text),
                "sender": e.sender,
                "to": e.to,
                "cc": [],
                "bcc": [],
                "thread_id": format!("acti_thread_{}", &a.id[5..a.id.len().min(20)]),
                "template_id": e.template_id,
                "template_name": e.template_name,
                "date_sent": iso(&a.activity_at),
                "date_scheduled": Value::Null,
                "opens_summary": if e.opens > 0 { format!("Opened {} time(s)", e.opens) } else { String::new() },
                "has_reply": e.has_reply,
                "attachments": [],
            }),
            ActivityDetails::Note(n) => json!({
                "title": n.title,
                "note": n.note,
                "note_html": format!("<body><p>{}</p></body>", html_escape(&n.note)),
                "pinned": n.pinned,
            }),
            ActivityDetails::Meeting(m) => json!({
                "title": m.title,
                "starts_at": iso(&m.starts_at),
                "ends_at": iso(&m.ends_at),
                "duration": (m.ends_at - m.starts_at).num_seconds(),
                "status": m.status,
                "location": m.location,
                "attendees": m.attendees.iter().map(|at| json!({
                    "contact_id": at.contact_id, "user_id": at.user_id, "name": at.name,
                    "email": at.email, "is_organizer": at.is_organizer, "status": "yes",
                })).collect::<Vec<_>>(),
                "conference_links": [{"type": "ZOOM", "url": m.conference_url}],
                "source": "calendar",
                "note": m.note,
                "user_note": "",
                "user_note_html": "",
                "outcome_id": m.outcome_id,
                "notetaker_id": Value::Null,
            }),
            ActivityDetails::Sms(s) => json!({
                "direction": s.direction,
                "status": s.status,
                "text": s.text,
                "local_phone": s.local_phone,
                "local_phone_formatted": format_phone(&s.local_phone),
                "remote_phone": s.remote_phone,
                "remote_phone_formatted": format_phone(&s.remote_phone),
                "template_id": s.template_id,
                "date_sent": iso(&a.activity_at),
                "date_scheduled": Value::Null,
                "cost": "0.79",
                "error_message": Value::Null,
                "source": "Close.io",
            }),
            ActivityDetails::LeadStatusChange(c) => json!({
                "old_status_id": c.old_status_id,
                "old_status_label": c.old_status_label,
                "new_status_id": c.new_status_id,
                "new_status_label": c.new_status_label,
            }),
            ActivityDetails::OpportunityStatusChange(c) => json!({
                "opportunity_id": c.opportunity_id,
                "old_status_id": c.old_status_id,
                "old_status_label": c.old_status_label,
                "old_status_type": c.old_status_type.as_str(),
                "new_status_id": c.new_status_id,
                "new_status_label": c.new_status_label,
                "new_status_type": c.new_status_type.as_str(),
                "old_pipeline_id": c.old_pipeline_id,
                "old_pipeline_name": c.old_pipeline_name,
                "new_pipeline_id": c.new_pipeline_id,
                "new_pipeline_name": c.new_pipeline_name,
                "opportunity_value": c.opportunity_value,
                "opportunity_value_currency": c.opportunity_value_currency,
                "opportunity_value_period": c.opportunity_value_period.as_str(),
                "opportunity_value_formatted": formatted_value(c.opportunity_value, c.opportunity_value_period),
                "opportunity_confidence": c.opportunity_confidence,
                "opportunity_date_won": opt_iso_date(&c.opportunity_date_won),
            }),
            ActivityDetails::CustomActivity(c) => {
                let mut v = json!({
                    "custom_activity_type_id": c.custom_activity_type_id,
                    "custom_activity_type_name": self.custom_activity_types.iter()
                        .find(|t| t.id == c.custom_activity_type_id).map(|t| t.name.clone()),
                    "status": c.status,
                    "pinned": c.pinned,
                });
                if let Some(o) = v.as_object_mut() {
                    put_custom(o, &c.custom);
                }
                v
            }
        };
        if let Value::Object(extra) = extra {
            obj.extend(extra);
        }
        Value::Object(obj)
    }

    pub fn task_json(&self, t: &Task) -> Value {
        let view = if t.is_complete {
            "archive"
        } else if t.due_date <= self.config.anchor {
            "inbox"
        } else {
            "future"
        };
        json!({
            "id": t.id,
            "_type": "lead",
            "organization_id": self.organization.id,
            "text": t.text,
            "lead_id": t.lead_id,
            "lead_name": t.lead_name,
            "contact_id": t.contact_id,
            "contact_name": t.contact_name,
            "assigned_to": t.assigned_to,
            "assigned_to_name": t.assigned_to_name,
            "date": iso_date(&t.due_date),
            "due_date": iso_date(&t.due_date),
            "is_complete": t.is_complete,
            "is_dateless": false,
            "priority": t.priority,
            "view": view,
            "object_id": Value::Null,
            "object_type": Value::Null,
            "created_by": t.created_by,
            "created_by_name": self.user_name(&t.created_by),
            "updated_by": t.assigned_to,
            "updated_by_name": t.assigned_to_name,
            "date_created": iso(&t.date_created),
            "date_updated": iso(&t.date_updated),
        })
    }

    pub fn custom_field_json(&self, f: &CustomField) -> Value {
        json!({
            "id": f.id,
            "name": f.name,
            "description": f.description,
            "type": f.field_type,
            "accepts_multiple_values": f.accepts_multiple_values,
            "choices": f.choices,
            "is_shared": false,
            "editable_with_roles": [],
            "organization_id": self.organization.id,
            "created_by": self.users[0].id,
            "updated_by": self.users[0].id,
            "date_created": iso(&f.date_created),
            "date_updated": iso(&f.date_updated),
        })
    }

    pub fn smart_view_json(&self, s: &SmartView) -> Value {
        let inner = match &s.query {
            LeadQuery::All => json!({"type": "match_all"}),
            LeadQuery::LeadStatus(id) => json!({
                "type": "field_condition",
                "field": {"type": "regular_field", "object_type": "lead", "field_name": "status_id"},
                "condition": {"type": "reference", "reference_type": "status.lead", "object_ids": [id]},
            }),
            LeadQuery::Source(src) => json!({
                "type": "field_condition",
                "field": {"type": "regular_field", "object_type": "lead", "field_name": "source"},
                "condition": {"type": "text", "mode": "exact_value", "value": src},
            }),
            LeadQuery::HasActiveOpportunity => json!({
                "type": "has_related",
                "this_object_type": "lead",
                "related_object_type": "opportunity",
                "related_query": {
                    "type": "field_condition",
                    "field": {"type": "regular_field", "object_type": "opportunity", "field_name": "status_type"},
                    "condition": {"type": "term", "values": ["active"]},
                },
            }),
        };
        json!({
            "id": s.id,
            "name": s.name,
            "description": s.description,
            "type": "lead",
            "s_query": {
                "query": {"type": "and", "queries": [{"type": "object_type", "object_type": "lead"}, inner]},
                "results_limit": Value::Null,
                "sort": [{"direction": "desc", "field": {"type": "regular_field", "object_type": "lead", "field_name": "date_updated"}}],
            },
            "query": Value::Null,
            "is_shared": s.is_shared,
            "is_user_dependent": false,
            "pinned": s.pinned,
            "user_id": s.user_id,
            "organization_id": self.organization.id,
            "date_created": iso(&s.date_created),
            "date_updated": iso(&s.date_updated),
        })
    }

    pub fn email_template_json(&self, t: &EmailTemplate) -> Value {
        json!({
            "id": t.id, "name": t.name, "subject": t.subject, "body": t.body,
            "is_shared": t.is_shared, "is_archived": t.is_archived, "attachments": [],
            "organization_id": self.organization.id, "created_by": t.created_by,
            "date_created": iso(&t.date_created), "date_updated": iso(&t.date_updated),
        })
    }

    pub fn sms_template_json(&self, t: &SmsTemplate) -> Value {
        json!({
            "id": t.id, "name": t.name, "text": t.text,
            "is_shared": t.is_shared, "is_archived": t.is_archived,
            "organization_id": self.organization.id, "created_by": t.created_by,
            "date_created": iso(&t.date_created), "date_updated": iso(&t.date_updated),
        })
    }

    pub fn outcome_json(&self, o: &Outcome) -> Value {
        json!({
            "id": o.id, "name": o.name, "description": o.description, "type": o.outcome_type,
            "applies_to": o.applies_to, "organization_id": self.organization.id,
        })
    }

    pub fn group_json(&self, g: &Group) -> Value {
        json!({
            "id": g.id,
            "name": g.name,
            "members": g.member_ids.iter().map(|id| json!({"user_id": id})).collect::<Vec<_>>(),
            "mention_html": format!(
                "<span data-type=\"mention\" data-id=\"{}\" data-label=\"{}\" class=\"mention\">@{}</span>",
                g.id, g.name, g.name
            ),
        })
    }

    pub fn workflow_json(&self, w: &Workflow) -> Value {
        json!({
            "id": w.id, "name": w.name, "status": w.status, "steps_count": w.steps,
            "created_by": w.created_by, "organization_id": self.organization.id,
            "date_created": iso(&w.date_created), "date_updated": iso(&w.date_updated),
        })
    }

    pub fn scheduling_link_json(&self, s: &SchedulingLink) -> Value {
        if s.shared {
            json!({
                "id": s.id, "name": s.name, "type": "shared", "duration": s.duration_minutes,
                "template_tag": format!("{{{{ scheduling_link.{} }}}}", s.id),
            })
        } else {
            json!({
                "id": s.id, "name": s.name, "type": "personal", "duration": s.duration_minutes,
                "url": s.url, "user_id": s.user_id,
            })
        }
    }

    pub fn form_json(&self, f: &Form) -> Value {
        json!({ "id": f.id, "name": f.name, "organization_id": self.organization.id, "date_created": iso(&f.date_created) })
    }

    pub fn custom_activity_type_json(&self, t: &CustomActivityType) -> Value {
        json!({
            "id": t.id,
            "name": t.name,
            "description": t.description,
            "api_create_only": false,
            "fields": t.field_ids.iter().filter_map(|id| self.custom_field(id)).map(|f| self.custom_field_json(f)).collect::<Vec<_>>(),
        })
    }

    pub fn invoice_json(&self, i: &Invoice) -> Value {
        json!({
            "id": i.id, "number": i.number, "amount": i.amount, "amount_formatted": format_money(i.amount),
            "currency": i.currency, "status": i.status, "period_start": iso_date(&i.period_start),
            "period_end": iso_date(&i.period_end), "date_created": iso(&i.date_created),
        })
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn preview(s: &str) -> String {
    s.chars().take(100).collect()
}

/// `+14155550123` → `+1 415-555-0123`.
pub fn format_phone(e164: &str) -> String {
    let digits: String = e164.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() == 11 && digits.starts_with('1') {
        format!("+1 {}-{}-{}", &digits[1..4], &digits[4..7], &digits[7..])
    } else {
        e164.to_string()
    }
}

// ---------------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------------

const FIRST_NAMES: &[&str] = &[
    "Avery", "Jordan", "Priya", "Marcus", "Elena", "Tomás", "Hannah", "Kenji", "Fatima", "Liam",
    "Grace", "Noah", "Sofia", "Daniel", "Aisha", "Mateo", "Chloe", "Ethan", "Mei", "Oliver",
    "Zara", "Lucas", "Nina", "Samuel", "Isabel", "Ravi", "Clara", "Jonah", "Leah", "Victor",
    "Maya", "Felix", "Ingrid", "Omar", "Ruth", "Caleb", "Julia", "Andre", "Tessa", "Hugo",
];
const LAST_NAMES: &[&str] = &[
    "Nguyen",
    "Patel",
    "Okafor",
    "Schmidt",
    "Rossi",
    "Kowalski",
    "Garcia",
    "Tanaka",
    "Haddad",
    "Brennan",
    "Lindqvist",
    "Moreau",
    "Silva",
    "Chen",
    "Johansson",
    "Adeyemi",
    "Novak",
    "Fischer",
    "Ramirez",
    "O'Neill",
    "Kim",
    "Dubois",
    "Mensah",
    "Costa",
    "Weber",
    "Ivanova",
    "Park",
    "Sato",
    "Murphy",
    "Alvarez",
    "Khan",
    "Larsen",
    "Bauer",
    "Reyes",
    "Walsh",
    "Horvat",
    "Yilmaz",
    "Jensen",
    "Mori",
    "Quinn",
];
const COMPANY_FIRST: &[&str] = &[
    "Acme",
    "Blue Harbor",
    "Crescent",
    "Summit",
    "Ironwood",
    "Northstar",
    "Silverline",
    "Redwood",
    "Maple",
    "Granite",
    "Evergreen",
    "Brightpath",
    "Cobalt",
    "Harborview",
    "Keystone",
    "Lumen",
    "Meridian",
    "Oakridge",
    "Pinnacle",
    "Quarry",
    "Riverbend",
    "Sable",
    "Tidewater",
    "Upland",
    "Vantage",
    "Westfield",
    "Yellowstone",
    "Zenith",
    "Alder",
    "Beacon",
    "Cedar",
    "Driftwood",
    "Ember",
    "Foxglove",
    "Juniper",
    "Kestrel",
    "Larkspur",
    "Mosaic",
    "Nimbus",
    "Orchid",
];
const COMPANY_SECOND: &[&str] = &[
    "Logistics",
    "Labs",
    "Health",
    "Software",
    "Manufacturing",
    "Foods",
    "Capital",
    "Energy",
    "Retail",
    "Analytics",
    "Robotics",
    "Media",
    "Biotech",
    "Outfitters",
    "Systems",
    "Partners",
    "Dynamics",
    "Networks",
    "Learning",
    "Freight",
];
const TITLES: &[&str] = &[
    "CEO",
    "CFO",
    "COO",
    "VP of Operations",
    "Head of Data",
    "Director of Finance",
    "IT Manager",
    "Operations Manager",
    "Procurement Lead",
    "Analytics Lead",
    "Controller",
    "Head of Growth",
    "Data Engineer",
    "Marketing Director",
    "Founder",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Boston", "MA", "02110"),
    ("Seattle", "WA", "98101"),
    ("Chicago", "IL", "60601"),
    ("Atlanta", "GA", "30303"),
    ("Portland", "OR", "97204"),
    ("San Diego", "CA", "92101"),
    ("Raleigh", "NC", "27601"),
    ("Minneapolis", "MN", "55401"),
];
const STREETS: &[&str] = &[
    "Main St",
    "Market St",
    "Oak Ave",
    "Pine St",
    "Harbor Blvd",
    "Elm St",
    "Park Ave",
    "1st Ave",
];

/// Lead sources with their frequency weight and a win-rate factor (percent of baseline).
const SOURCES: &[(&str, u64, u64)] = &[
    ("Website", 25, 100),
    ("Referral", 15, 170),
    ("Outbound", 25, 70),
    ("Event", 10, 100),
    ("Partner", 10, 135),
    ("Paid Ads", 15, 55),
];

pub const SALES_PIPELINE: &str = "Sales";
pub const RENEWALS_PIPELINE: &str = "Renewals";
const SALES_STAGES: &[&str] = &["Lead", "Qualified", "Demo", "Proposal", "Negotiation"];
/// Renewals share the "Proposal" label with Sales, as pipelines of a real Close organization often
/// repeat labels: a question about "deals in Proposal" must say which pipeline it means.
const RENEWAL_STAGES: &[&str] = &["Upcoming", "Proposal"];

const LEAD_POTENTIAL: usize = 0;
const LEAD_QUALIFIED: usize = 1;
const LEAD_CUSTOMER: usize = 2;
const LEAD_BAD_FIT: usize = 3;
const LEAD_NOT_INTERESTED: usize = 4;

struct Walk {
    /// (time entered, status index in pipeline.statuses)
    steps: Vec<(DateTime<Utc>, usize)>,
}

fn generate(config: DatasetConfig) -> Dataset {
    let seed = config.seed;
    let as_of = day_start(config.anchor);
    let start = as_of - Duration::days(HISTORY_DAYS);
    let latest = as_of - Duration::minutes(1);

    // --- organization, users, roles ---------------------------------------------------------------
    let mut rng = Rng::new(seed, "org");
    let organization = Organization {
        id: rng.id("orga"),
        name: "Northwind Analytics".into(),
        currency: "USD".into(),
        date_created: start,
        date_updated: start + Duration::days(3),
    };
    let mut users = Vec::new();
    let mut used_names = HashSet::new();
    let mut rng_users = Rng::new(seed, "users");
    while users.len() < 8 {
        let first = *rng_users.pick(FIRST_NAMES);
        let last = *rng_users.pick(LAST_NAMES);
        if !used_names.insert(first) {
            continue;
        }
        let n = users.len() as i64;
        let created = start + Duration::hours(2 + n * 5);
        users.push(User {
            id: rng_users.id("user"),
            first_name: first.into(),
            last_name: last.into(),
            email: format!(
                "{}.{}@northwind-analytics.com",
                ascii_lower(first),
                ascii_lower(last)
            ),
            phone: format!("+1415555{:04}", 100 + n),
            date_created: created,
            date_updated: created + Duration::days(rng_users.range(1, 30)),
        });
    }
    let roles = vec![
        Role {
            id: rng.id("role"),
            name: "Admin".into(),
            permissions: vec![
                "manage_organization".into(),
                "manage_users".into(),
                "manage_billing".into(),
                "view_all_leads".into(),
                "edit_all_leads".into(),
            ],
        },
        Role {
            id: rng.id("role"),
            name: "Sales Manager".into(),
            permissions: vec![
                "view_all_leads".into(),
                "edit_all_leads".into(),
                "view_reports".into(),
            ],
        },
        Role {
            id: rng.id("role"),
            name: "Sales Rep".into(),
            permissions: vec!["view_all_leads".into(), "edit_own_leads".into()],
        },
    ];
    let memberships: Vec<Membership> = users
        .iter()
        .enumerate()
        .map(|(i, u)| Membership {
            id: rng.id("memb"),
            user_id: u.id.clone(),
            organization_id: organization.id.clone(),
            role_id: roles[match i {
                0 => 0,
                1 => 1,
                _ => 2,
            }]
            .id
            .clone(),
            date_created: u.date_created,
        })
        .collect();
    let admin = users[0].id.clone();
    // Reps who own accounts: everyone except the admin; the manager owns a few.
    let owner_weights: Vec<(usize, u64)> = (1..users.len())
        .map(|i| (i, if i == 1 { 4 } else { 10 + (i as u64 % 3) * 2 }))
        .collect();

    // --- pipelines and statuses -------------------------------------------------------------------
    let mut rng_p = Rng::new(seed, "pipelines");
    let mut make_pipeline =
        |name: &str, active: &[&str], won: &str, lost: &str, offset_days: i64| {
            let id = rng_p.id("pipe");
            let mut statuses: Vec<OpportunityStatus> = active
                .iter()
                .map(|l| OpportunityStatus {
                    id: rng_p.id("stat"),
                    label: (*l).into(),
                    status_type: StatusType::Active,
                    pipeline_id: id.clone(),
                })
                .collect();
            statuses.push(OpportunityStatus {
                id: rng_p.id("stat"),
                label: won.into(),
                status_type: StatusType::Won,
                pipeline_id: id.clone(),
            });
            statuses.push(OpportunityStatus {
                id: rng_p.id("stat"),
                label: lost.into(),
                status_type: StatusType::Lost,
                pipeline_id: id.clone(),
            });
            Pipeline {
                id,
                name: name.into(),
                statuses,
                date_created: start + Duration::days(offset_days),
                date_updated: start + Duration::days(offset_days + 2),
            }
        };
    let pipelines = vec![
        make_pipeline(SALES_PIPELINE, SALES_STAGES, "Won", "Lost", 0),
        make_pipeline(RENEWALS_PIPELINE, RENEWAL_STAGES, "Renewed", "Churned", 1),
    ];
    let lead_statuses: Vec<LeadStatus> = [
        "Potential",
        "Qualified",
        "Customer",
        "Bad Fit",
        "Not Interested",
    ]
    .iter()
    .map(|l| LeadStatus {
        id: rng_p.id("stat"),
        label: (*l).into(),
    })
    .collect();

    // --- custom fields ----------------------------------------------------------------------------
    let mut rng_cf = Rng::new(seed, "custom_fields");
    let cf = |rng: &mut Rng,
              object,
              name: &str,
              description: &str,
              ty: &str,
              choices: Option<&[&str]>| CustomField {
        id: rng.id("cf"),
        object,
        name: name.into(),
        description: description.into(),
        field_type: ty.into(),
        accepts_multiple_values: false,
        choices: choices.map(|c| c.iter().map(|s| s.to_string()).collect()),
        date_created: start + Duration::days(1),
        date_updated: start + Duration::days(1),
    };
    const INDUSTRIES: &[&str] = &[
        "SaaS",
        "Healthcare",
        "Manufacturing",
        "Retail",
        "Financial Services",
        "Education",
        "Logistics",
    ];
    const COMPETITORS: &[&str] = &["None", "Salesforce", "HubSpot", "Pipedrive"];
    const DEAL_TYPES: &[&str] = &["New Business", "Expansion", "Renewal"];
    let custom_fields = vec![
        cf(
            &mut rng_cf,
            CustomFieldObject::Lead,
            "Industry",
            "Primary industry of the account",
            "choices",
            Some(INDUSTRIES),
        ),
        cf(
            &mut rng_cf,
            CustomFieldObject::Lead,
            "Employees",
            "Approximate head count",
            "number",
            None,
        ),
        cf(
            &mut rng_cf,
            CustomFieldObject::Lead,
            "Account Owner",
            "Rep responsible for the account",
            "user",
            None,
        ),
        cf(
            &mut rng_cf,
            CustomFieldObject::Opportunity,
            "Competitor",
            "Main competitor in the deal",
            "choices",
            Some(COMPETITORS),
        ),
        cf(
            &mut rng_cf,
            CustomFieldObject::Opportunity,
            "Deal Type",
            "New business, expansion or renewal",
            "choices",
            Some(DEAL_TYPES),
        ),
        cf(
            &mut rng_cf,
            CustomFieldObject::Contact,
            "LinkedIn",
            "Profile URL",
            "text",
            None,
        ),
        cf(
            &mut rng_cf,
            CustomFieldObject::CustomActivity,
            "Pain Points",
            "What hurts today",
            "text",
            None,
        ),
        cf(
            &mut rng_cf,
            CustomFieldObject::CustomActivity,
            "Budget Confirmed",
            "Budget holder confirmed",
            "choices",
            Some(&["Yes", "No"]),
        ),
    ];
    let cf_industry = custom_fields[0].id.clone();
    let cf_employees = custom_fields[1].id.clone();
    let cf_owner = custom_fields[2].id.clone();
    let cf_competitor = custom_fields[3].id.clone();
    let cf_deal_type = custom_fields[4].id.clone();
    let cf_linkedin = custom_fields[5].id.clone();
    let cf_pain = custom_fields[6].id.clone();
    let cf_budget = custom_fields[7].id.clone();

    // --- leads and contacts -----------------------------------------------------------------------
    let mut rng_l = Rng::new(seed, "leads");
    let mut leads = Vec::new();
    let mut lead_names = HashSet::new();
    let mut lead_win_factor = Vec::new();
    while leads.len() < 300 {
        let name = format!(
            "{} {}",
            rng_l.pick(COMPANY_FIRST),
            rng_l.pick(COMPANY_SECOND)
        );
        if !lead_names.insert(name.clone()) {
            continue;
        }
        let (source, factor) = {
            let weighted: Vec<((&str, u64), u64)> =
                SOURCES.iter().map(|(s, w, f)| ((*s, *f), *w)).collect();
            *rng_l.weighted(&weighted)
        };
        let owner = *rng_l.weighted(&owner_weights);
        let created = rng_l.between(start + Duration::days(2), latest - Duration::hours(6));
        let (city, state, zip) = *rng_l.pick(CITIES);
        let slug: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let mut custom = BTreeMap::new();
        custom.insert(cf_industry.clone(), json!(rng_l.pick(INDUSTRIES)));
        custom.insert(cf_employees.clone(), json!(rng_l.range(1, 40) * 25));
        custom.insert(cf_owner.clone(), json!(users[owner].id));
        leads.push(Lead {
            id: rng_l.id("lead"),
            description: format!("{} account sourced via {}.", name, source),
            url: format!("https://www.{slug}.com"),
            name,
            status_id: String::new(),
            status_label: String::new(),
            source: source.into(),
            addresses: vec![Address {
                label: "business".into(),
                address_1: format!("{} {}", rng_l.range(10, 999), rng_l.pick(STREETS)),
                address_2: String::new(),
                city: city.into(),
                state: state.into(),
                zipcode: zip.into(),
                country: "US".into(),
            }],
            custom,
            owner_id: users[owner].id.clone(),
            created_by: users[owner].id.clone(),
            date_created: created,
            date_updated: created,
        });
        lead_win_factor.push(factor);
    }
    // Oldest first keeps the structure readable.
    let mut order: Vec<usize> = (0..leads.len()).collect();
    order.sort_by_key(|&i| (leads[i].date_created, leads[i].id.clone()));
    let leads: Vec<Lead> = order.iter().map(|&i| leads[i].clone()).collect();
    let lead_win_factor: Vec<u64> = order.iter().map(|&i| lead_win_factor[i]).collect();

    let mut rng_c = Rng::new(seed, "contacts");
    let mut contacts = Vec::new();
    let mut contacts_by_lead: Vec<Vec<usize>> = vec![Vec::new(); leads.len()];
    for (li, lead) in leads.iter().enumerate() {
        let n = 1 + *rng_c.weighted(&[(0usize, 40), (1, 38), (2, 22)]);
        let domain = lead.url.trim_start_matches("https://www.").to_string();
        for k in 0..n {
            let first = *rng_c.pick(FIRST_NAMES);
            let last = *rng_c.pick(LAST_NAMES);
            let created = if k == 0 {
                lead.date_created + Duration::minutes(2)
            } else {
                rng_c.between(lead.date_created, latest)
            };
            let mut custom = BTreeMap::new();
            if rng_c.percent(60) {
                custom.insert(
                    cf_linkedin.clone(),
                    json!(format!(
                        "https://www.linkedin.com/in/{}-{}",
                        ascii_lower(first),
                        ascii_lower(last)
                    )),
                );
            }
            contacts_by_lead[li].push(contacts.len());
            contacts.push(Contact {
                id: rng_c.id("cont"),
                lead_id: lead.id.clone(),
                name: format!("{first} {last}"),
                title: (*rng_c.pick(TITLES)).into(),
                emails: vec![ContactEmail {
                    email: format!("{}.{}@{}", ascii_lower(first), ascii_lower(last), domain),
                    email_type: "office".into(),
                }],
                phones: vec![ContactPhone {
                    phone: format!(
                        "+1{}{:03}{:04}",
                        rng_c.pick(&[
                            "512", "303", "617", "206", "312", "404", "503", "619", "919", "612"
                        ]),
                        rng_c.range(200, 989),
                        rng_c.range(0, 9999)
                    ),
                    phone_type: (*rng_c.pick(&["office", "mobile", "direct"])).into(),
                }],
                custom,
                created_by: lead.owner_id.clone(),
                date_created: created,
                date_updated: created,
            });
        }
    }

    // --- opportunities and their status histories -------------------------------------------------
    let sales = &pipelines[0];
    let renewals = &pipelines[1];
    let mut rng_o = Rng::new(seed, "opportunities");
    struct Draft {
        lead: usize,
        pipeline: usize,
        walk: Walk,
        value: i64,
        period: ValuePeriod,
        confidence: i64,
        owner: String,
        contact: Option<usize>,
        close_date: NaiveDate,
        deal_type: &'static str,
    }
    let mut drafts: Vec<Draft> = Vec::new();
    let eligible: Vec<usize> = (0..leads.len())
        .filter(|&i| leads[i].date_created < latest - Duration::days(1))
        .collect();
    for _ in 0..540 {
        let li = *rng_o.pick(&eligible);
        let lead = &leads[li];
        let delay = Duration::hours(rng_o.range(1, 24 * 25));
        let mut created = lead.date_created + delay;
        if created >= latest {
            created = rng_o.between(lead.date_created, latest - Duration::hours(1));
        }
        let factor = lead_win_factor[li] as i64;
        let walk = walk_sales(&mut rng_o, created, as_of, factor);
        let (period, value) = match rng_o.weighted(&[(0u8, 85), (1, 10), (2, 5)]) {
            0 => (ValuePeriod::OneTime, sales_value(&mut rng_o)),
            1 => (ValuePeriod::Annual, rng_o.range(60, 600) * 10_000),
            _ => (ValuePeriod::Monthly, rng_o.range(6, 100) * 5_000),
        };
        let last = walk.steps.last().map(|s| s.1).unwrap_or(0);
        let confidence = confidence_for(&mut rng_o, sales, last);
        let close_date = close_date_for(&mut rng_o, &walk, sales, as_of);
        let contact = if rng_o.percent(85) {
            Some(*rng_o.pick(&contacts_by_lead[li]))
        } else {
            None
        };
        let owner = if rng_o.percent(85) {
            lead.owner_id.clone()
        } else {
            users[*rng_o.weighted(&owner_weights)].id.clone()
        };
        let deal_type = if rng_o.percent(20) {
            "Expansion"
        } else {
            "New Business"
        };
        drafts.push(Draft {
            lead: li,
            pipeline: 0,
            walk,
            value,
            period,
            confidence,
            owner,
            contact,
            close_date,
            deal_type,
        });
    }
    // Renewals follow some won sales deals.
    let won_idx = sales
        .statuses
        .iter()
        .position(|s| s.status_type == StatusType::Won)
        .unwrap_or(0);
    let mut renewal_drafts = Vec::new();
    for d in &drafts {
        let Some(&(won_at, st)) = d.walk.steps.last() else {
            continue;
        };
        if st != won_idx || !rng_o.percent(45) {
            continue;
        }
        let created =
            won_at + Duration::days(rng_o.range(30, 330)) + Duration::minutes(rng_o.range(0, 600));
        if created >= latest {
            continue;
        }
        let walk = walk_renewal(&mut rng_o, created, as_of);
        let base = match d.period {
            ValuePeriod::Monthly => d.value * 12,
            _ => d.value,
        };
        let value = (base * rng_o.range(80, 130) / 100).max(100_000) / 100 * 100;
        let last = walk.steps.last().map(|s| s.1).unwrap_or(0);
        let confidence = confidence_for(&mut rng_o, renewals, last);
        let close_date = close_date_for(&mut rng_o, &walk, renewals, as_of);
        renewal_drafts.push(Draft {
            lead: d.lead,
            pipeline: 1,
            walk,
            value,
            period: ValuePeriod::Annual,
            confidence,
            owner: d.owner.clone(),
            contact: d.contact,
            close_date,
            deal_type: "Renewal",
        });
    }
    drafts.extend(renewal_drafts);
    drafts.sort_by_key(|d| d.walk.steps.first().map(|s| s.0));

    let mut opportunities = Vec::new();
    let mut activities: Vec<Activity> = Vec::new();
    let mut rng_a = Rng::new(seed, "activities");
    let user_name = |id: &str| {
        users
            .iter()
            .find(|u| u.id == id)
            .map(User::display_name)
            .unwrap_or_default()
    };
    for d in &drafts {
        let lead = &leads[d.lead];
        let pipeline = &pipelines[d.pipeline];
        let Some(&(created, _)) = d.walk.steps.first() else {
            continue;
        };
        let &(last_at, last_idx) = d.walk.steps.last().unwrap_or(&(created, 0));
        let status = &pipeline.statuses[last_idx];
        let id = rng_o.id("oppo");
        let contact = d.contact.map(|ci| &contacts[ci]);
        let date_won = (status.status_type == StatusType::Won).then(|| last_at.date_naive());
        let date_lost = (status.status_type == StatusType::Lost).then(|| last_at.date_naive());
        let mut custom = BTreeMap::new();
        custom.insert(cf_deal_type.clone(), json!(d.deal_type));
        if d.pipeline == 0 {
            custom.insert(cf_competitor.clone(), json!(rng_o.pick(COMPETITORS)));
        }
        let owner_name = user_name(&d.owner);
        // Status-change history.
        for w in d.walk.steps.windows(2) {
            let (at, to) = w[1];
            let from = w[0].1;
            let old = &pipeline.statuses[from];
            let new = &pipeline.statuses[to];
            activities.push(Activity {
                id: rng_a.id("acti"),
                lead_id: lead.id.clone(),
                contact_id: contact.map(|c| c.id.clone()),
                user_id: d.owner.clone(),
                user_name: owner_name.clone(),
                activity_at: at,
                date_created: at,
                date_updated: at,
                details: ActivityDetails::OpportunityStatusChange(OpportunityStatusChange {
                    opportunity_id: id.clone(),
                    old_status_id: old.id.clone(),
                    old_status_label: old.label.clone(),
                    old_status_type: old.status_type,
                    new_status_id: new.id.clone(),
                    new_status_label: new.label.clone(),
                    new_status_type: new.status_type,
                    old_pipeline_id: pipeline.id.clone(),
                    old_pipeline_name: pipeline.name.clone(),
                    new_pipeline_id: pipeline.id.clone(),
                    new_pipeline_name: pipeline.name.clone(),
                    opportunity_value: d.value,
                    opportunity_value_currency: "USD".into(),
                    opportunity_value_period: d.period,
                    opportunity_confidence: d.confidence,
                    opportunity_date_won: (new.status_type == StatusType::Won)
                        .then(|| at.date_naive()),
                }),
            });
            // A demo meeting when a sales deal reaches "Demo".
            if d.pipeline == 0 && new.label == "Demo" {
                let starts = at
                    + Duration::days(rng_a.range(1, 4).min(((as_of - at).num_days() - 1).max(0)));
                let starts = if starts >= latest { at } else { starts };
                let mut attendees = vec![MeetingAttendee {
                    contact_id: None,
                    user_id: Some(d.owner.clone()),
                    name: owner_name.clone(),
                    email: users
                        .iter()
                        .find(|u| u.id == d.owner)
                        .map(|u| u.email.clone())
                        .unwrap_or_default(),
                    is_organizer: true,
                }];
                if let Some(c) = contact {
                    attendees.push(MeetingAttendee {
                        contact_id: Some(c.id.clone()),
                        user_id: None,
                        name: c.name.clone(),
                        email: c
                            .emails
                            .first()
                            .map(|e| e.email.clone())
                            .unwrap_or_default(),
                        is_organizer: false,
                    });
                }
                activities.push(Activity {
                    id: rng_a.id("acti"),
                    lead_id: lead.id.clone(),
                    contact_id: contact.map(|c| c.id.clone()),
                    user_id: d.owner.clone(),
                    user_name: owner_name.clone(),
                    activity_at: starts,
                    date_created: at,
                    date_updated: starts,
                    details: ActivityDetails::Meeting(Meeting {
                        title: format!("Product demo – {}", lead.name),
                        starts_at: starts,
                        ends_at: starts + Duration::minutes(45),
                        status: "completed".into(),
                        location: "Zoom".into(),
                        conference_url: format!(
                            "https://zoom.us/j/{}",
                            rng_a.range(100_000_000, 999_999_999)
                        ),
                        attendees,
                        outcome_id: None,
                        note: "Walked through dashboards and the data connectors.".into(),
                    }),
                });
            }
        }
        opportunities.push(Opportunity {
            id,
            lead_id: lead.id.clone(),
            lead_name: lead.name.clone(),
            contact_id: contact.map(|c| c.id.clone()),
            contact_name: contact.map(|c| c.name.clone()),
            user_id: d.owner.clone(),
            user_name: owner_name.clone(),
            status_id: status.id.clone(),
            status_label: status.label.clone(),
            status_type: status.status_type,
            pipeline_id: pipeline.id.clone(),
            pipeline_name: pipeline.name.clone(),
            value: d.value,
            value_period: d.period,
            value_currency: "USD".into(),
            confidence: d.confidence,
            date_won,
            date_lost,
            close_date: d.close_date,
            note: if d.pipeline == 1 {
                "Annual renewal".into()
            } else {
                format!("{} opportunity for {}", d.deal_type, lead.name)
            },
            custom,
            created_by: d.owner.clone(),
            date_created: created,
            date_updated: last_at,
        });
    }

    // --- lead statuses consistent with opportunities ----------------------------------------------
    let mut leads = leads;
    let mut opps_by_lead: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, o) in opportunities.iter().enumerate() {
        opps_by_lead.entry(o.lead_id.clone()).or_default().push(i);
    }
    let mut rng_ls = Rng::new(seed, "lead_statuses");
    for lead in leads.iter_mut() {
        let opps: Vec<&Opportunity> = opps_by_lead
            .get(&lead.id)
            .map(|v| v.iter().map(|&i| &opportunities[i]).collect())
            .unwrap_or_default();
        let mut history: Vec<(DateTime<Utc>, usize)> = Vec::new();
        if let Some(first) = opps.iter().map(|o| o.date_created).min() {
            history.push((first + Duration::minutes(1), LEAD_QUALIFIED));
            let first_win = opps
                .iter()
                .filter_map(|o| (o.status_type == StatusType::Won).then_some(o.date_updated))
                .min();
            let all_lost = opps.iter().all(|o| o.status_type == StatusType::Lost);
            if let Some(won) = first_win {
                history.push((won + Duration::minutes(1), LEAD_CUSTOMER));
            } else if all_lost && rng_ls.percent(55) {
                let last_loss = opps.iter().map(|o| o.date_updated).max().unwrap_or(first);
                history.push((last_loss + Duration::minutes(5), LEAD_BAD_FIT));
            }
        } else if rng_ls.percent(15) {
            let at = rng_ls.between(lead.date_created, latest);
            history.push((
                at,
                if rng_ls.percent(50) {
                    LEAD_BAD_FIT
                } else {
                    LEAD_NOT_INTERESTED
                },
            ));
        }
        let mut current = LEAD_POTENTIAL;
        for (k, (at, to)) in history.into_iter().enumerate() {
            // Keep the change before the anchor (and in order) even when the deal closed seconds before it.
            let at = at.min(as_of - Duration::milliseconds(3 - k as i64));
            if to == current {
                continue;
            }
            activities.push(Activity {
                id: rng_ls.id("acti"),
                lead_id: lead.id.clone(),
                contact_id: None,
                user_id: lead.owner_id.clone(),
                user_name: user_name(&lead.owner_id),
                activity_at: at,
                date_created: at,
                date_updated: at,
                details: ActivityDetails::LeadStatusChange(LeadStatusChange {
                    old_status_id: Some(lead_statuses[current].id.clone()),
                    old_status_label: Some(lead_statuses[current].label.clone()),
                    new_status_id: lead_statuses[to].id.clone(),
                    new_status_label: lead_statuses[to].label.clone(),
                }),
            });
            current = to;
            lead.date_updated = lead.date_updated.max(at);
        }
        lead.status_id = lead_statuses[current].id.clone();
        lead.status_label = lead_statuses[current].label.clone();
    }

    // --- templates, outcomes and other org configuration ------------------------------------------
    let mut rng_t = Rng::new(seed, "templates");
    let email_templates: Vec<EmailTemplate> = [
        ("Intro – analytics", "Quick question about {{ lead.display_name }}'s reporting", false),
        ("Demo follow-up", "Recording and next steps from today's demo", false),
        ("Proposal sent", "Your Northwind Analytics proposal", false),
        ("Check-in after proposal", "Any questions on the proposal?", false),
        ("Renewal reminder", "Your subscription renews soon", false),
        ("Old newsletter", "Northwind monthly – archive", true),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, subject, archived))| {
        let created = start + Duration::days(5 + 3 * i as i64);
        EmailTemplate {
            id: rng_t.id("tmpl"),
            name: (*name).into(),
            subject: (*subject).into(),
            body: format!("<p>Hi {{{{ contact.first_name }}}},</p><p>{subject}.</p><p>{{{{ user.first_name }}}}</p>"),
            is_shared: true,
            is_archived: *archived,
            created_by: admin.clone(),
            date_created: created,
            date_updated: created + Duration::days(rng_t.range(0, 60)),
        }
    })
    .collect();
    let sms_templates: Vec<SmsTemplate> = [
        (
            "Meeting reminder",
            "Hi {{ contact.first_name }}, reminder of our call today at {{ custom.time }}.",
            false,
        ),
        (
            "Quick follow-up",
            "Hi {{ contact.first_name }}, just sent over the proposal – happy to walk through it.",
            false,
        ),
        (
            "Holiday promo",
            "Season's greetings from Northwind Analytics!",
            true,
        ),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, text, archived))| {
        let created = start + Duration::days(8 + 5 * i as i64);
        SmsTemplate {
            id: rng_t.id("smstmpl"),
            name: (*name).into(),
            text: (*text).into(),
            is_shared: true,
            is_archived: *archived,
            created_by: admin.clone(),
            date_created: created,
            date_updated: created,
        }
    })
    .collect();
    let call_outcomes: Vec<Outcome> = [
        ("Interested", "Prospect wants to continue", "custom"),
        ("Not interested", "Prospect declined", "custom"),
        (
            "Call back later",
            "Asked to be called at another time",
            "custom",
        ),
        (
            "Voicemail dropped",
            "Left a pre-recorded voicemail",
            "vm-dropped",
        ),
    ]
    .iter()
    .map(|(n, d, t)| Outcome {
        id: rng_t.id("outcome"),
        name: (*n).into(),
        description: (*d).into(),
        outcome_type: (*t).into(),
        applies_to: vec!["calls".into()],
    })
    .collect();
    let meeting_outcomes: Vec<Outcome> = [
        ("Demo completed", "Demo delivered"),
        ("No show", "Prospect did not attend"),
        ("Rescheduled", "Moved to another time"),
    ]
    .iter()
    .map(|(n, d)| Outcome {
        id: rng_t.id("outcome"),
        name: (*n).into(),
        description: (*d).into(),
        outcome_type: "custom".into(),
        applies_to: vec!["meetings".into()],
    })
    .collect();
    let groups = vec![
        Group {
            id: rng_t.id("group"),
            name: "Account Executives".into(),
            member_ids: users[2..].iter().map(|u| u.id.clone()).collect(),
        },
        Group {
            id: rng_t.id("group"),
            name: "Leadership".into(),
            member_ids: users[..2].iter().map(|u| u.id.clone()).collect(),
        },
    ];
    let workflows = [
        ("New inbound lead nurture", "active", 5),
        ("Post-demo follow-up", "active", 3),
        ("Renewal outreach", "paused", 4),
        ("Event attendees Q3", "draft", 2),
    ]
    .iter()
    .enumerate()
    .map(|(i, (n, s, steps))| Workflow {
        id: rng_t.id("seq"),
        name: (*n).into(),
        status: (*s).into(),
        steps: *steps,
        created_by: admin.clone(),
        date_created: start + Duration::days(20 + 30 * i as i64),
        date_updated: start + Duration::days(25 + 30 * i as i64),
    })
    .collect();
    let mut scheduling_links: Vec<SchedulingLink> = users[2..5]
        .iter()
        .map(|u| SchedulingLink {
            id: rng_t.id("schedlink"),
            name: format!("30 min with {}", u.first_name),
            url: format!(
                "https://calendly.com/{}-{}/30min",
                ascii_lower(&u.first_name),
                ascii_lower(&u.last_name)
            ),
            user_id: Some(u.id.clone()),
            duration_minutes: 30,
            shared: false,
        })
        .collect();
    scheduling_links.push(SchedulingLink {
        id: rng_t.id("schedlink"),
        name: "Team demo".into(),
        url: String::new(),
        user_id: None,
        duration_minutes: 45,
        shared: true,
    });
    let forms = vec![Form {
        id: rng_t.id("form"),
        name: "Website demo request".into(),
        date_created: start + Duration::days(12),
    }];
    let custom_activity_types = vec![CustomActivityType {
        id: rng_t.id("actitype"),
        name: "Discovery Notes".into(),
        description: "Structured notes from a discovery call".into(),
        field_ids: vec![cf_pain.clone(), cf_budget.clone()],
    }];
    let smart_views = {
        let q = |i: usize| LeadQuery::LeadStatus(lead_statuses[i].id.clone());
        [
            (
                "All Leads",
                "Every lead in the organization",
                LeadQuery::All,
                true,
            ),
            ("Hot Prospects", "Qualified leads", q(LEAD_QUALIFIED), true),
            ("Customers", "Leads with a won deal", q(LEAD_CUSTOMER), true),
            (
                "Referral Leads",
                "Leads that came from referrals",
                LeadQuery::Source("Referral".into()),
                false,
            ),
            (
                "Open Deals",
                "Leads with an active opportunity",
                LeadQuery::HasActiveOpportunity,
                false,
            ),
            ("Bad Fit", "Disqualified leads", q(LEAD_BAD_FIT), false),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (name, description, query, pinned))| SmartView {
            id: rng_t.id("save"),
            name: name.into(),
            description: description.into(),
            is_shared: true,
            pinned,
            user_id: users[i % 2].id.clone(),
            query,
            date_created: start + Duration::days(4 + i as i64),
            date_updated: start + Duration::days(40 + i as i64),
        })
        .collect::<Vec<_>>()
    };
    let invoices = (0..3)
        .map(|i| {
            let period_start =
                NaiveDate::from_ymd_opt(config.anchor.year(), config.anchor.month(), 1)
                    .unwrap_or(config.anchor)
                    - Duration::days(31 * (i + 1));
            let period_start =
                NaiveDate::from_ymd_opt(period_start.year(), period_start.month(), 1)
                    .unwrap_or(period_start);
            let period_end = NaiveDate::from_ymd_opt(
                period_start.year() + i32::from(period_start.month() == 12),
                period_start.month() % 12 + 1,
                1,
            )
            .unwrap_or(period_start)
                - Duration::days(1);
            Invoice {
                id: rng_t.id("inv"),
                number: format!("NW-{}-{:02}", period_start.year(), period_start.month()),
                amount: 8 * 14_900,
                currency: "USD".into(),
                status: "paid".into(),
                period_start,
                period_end,
                date_created: day_start(period_end) + Duration::hours(20),
            }
        })
        .collect();

    // --- everyday activities (calls, emails, notes, SMS, custom activities) -----------------------
    let opp_stage_at: HashMap<&str, Vec<DateTime<Utc>>> = {
        let mut m: HashMap<&str, Vec<DateTime<Utc>>> = HashMap::new();
        for a in &activities {
            m.entry(a.lead_id.as_str()).or_default().push(a.activity_at);
        }
        m
    };
    let mut extra: Vec<Activity> = Vec::new();
    let mut rng_e = Rng::new(seed, "everyday");
    for (li, lead) in leads.iter().enumerate() {
        let lead_contacts: Vec<&Contact> = contacts_by_lead[li]
            .iter()
            .map(|&ci| &contacts[ci])
            .collect();
        let anchors = opp_stage_at
            .get(lead.id.as_str())
            .cloned()
            .unwrap_or_default();
        let owner = users
            .iter()
            .find(|u| u.id == lead.owner_id)
            .unwrap_or(&users[1]);
        let n_calls = rng_e.range(1, 5) + anchors.len().min(6) as i64 / 2;
        let n_emails = rng_e.range(1, 5) + anchors.len().min(6) as i64 / 2;
        let n_notes = rng_e.range(0, 2);
        let n_sms = rng_e.range(0, 1);
        let when = |rng: &mut Rng| -> DateTime<Utc> {
            // Mostly near status changes (when there are any), otherwise any time after creation.
            if !anchors.is_empty() && rng.percent(60) {
                let a = *rng.pick(&anchors);
                let t = a + Duration::hours(rng.range(-72, 72));
                t.clamp(lead.date_created + Duration::minutes(5), latest)
            } else {
                rng.between(lead.date_created + Duration::minutes(5), latest)
            }
        };
        let mut push = |rng: &mut Rng, at: DateTime<Utc>, details: ActivityDetails| {
            let user = if rng.percent(85) {
                owner
            } else {
                rng.pick(&users[1..])
            };
            let contact = if lead_contacts.is_empty() {
                None
            } else {
                Some(rng.pick(&lead_contacts).id.clone())
            };
            extra.push(Activity {
                id: rng.id("acti"),
                lead_id: lead.id.clone(),
                contact_id: contact,
                user_id: user.id.clone(),
                user_name: user.display_name(),
                activity_at: at,
                date_created: at,
                date_updated: at,
                details,
            });
        };
        let remote = lead_contacts
            .first()
            .and_then(|c| c.phones.first())
            .map(|p| p.phone.clone())
            .unwrap_or_default();
        for _ in 0..n_calls {
            let at = when(&mut rng_e);
            let disposition =
                *rng_e.weighted(&[("answered", 60), ("no-answer", 20), ("vm-left", 20)]);
            let duration = match disposition {
                "answered" => rng_e.range(60, 1800),
                "vm-left" => rng_e.range(15, 60),
                _ => 0,
            };
            let outcome = match disposition {
                "answered" => Some(call_outcomes[*rng_e.pick(&[0usize, 1, 2])].id.clone()),
                "vm-left" if rng_e.percent(50) => Some(call_outcomes[3].id.clone()),
                _ => None,
            };
            let note = if disposition == "answered" && rng_e.percent(50) {
                (*rng_e.pick(&[
                    "Discussed current reporting stack.",
                    "Wants pricing for 20 seats.",
                    "Asked about SSO and data residency.",
                    "Follow up next week with a proposal.",
                    "Budget approved for Q-next.",
                ]))
                .to_string()
            } else {
                String::new()
            };
            let details = ActivityDetails::Call(Call {
                direction: (*rng_e.weighted(&[("outbound", 80), ("inbound", 20)])).into(),
                status: "completed".into(),
                disposition: disposition.into(),
                duration,
                local_phone: owner.phone.clone(),
                remote_phone: remote.clone(),
                note,
                outcome_id: outcome,
                cost: duration / 60 * 2,
            });
            push(&mut rng_e, at, details);
        }
        for _ in 0..n_emails {
            let at = when(&mut rng_e);
            let outgoing = rng_e.percent(70);
            let template =
                (outgoing && rng_e.percent(50)).then(|| rng_e.pick(&email_templates[..5]));
            let to = lead_contacts
                .first()
                .and_then(|c| c.emails.first())
                .map(|e| e.email.clone())
                .unwrap_or_default();
            let subject = template
                .map(|t| t.subject.replace("{{ lead.display_name }}", &lead.name))
                .unwrap_or_else(|| {
                    (*rng_e.pick(&[
                        "Re: pricing",
                        "Re: next steps",
                        "Intro call",
                        "Data connector questions",
                        "Re: security review",
                    ]))
                    .to_string()
                });
            let details = ActivityDetails::Email(Email {
                direction: if outgoing { "outgoing" } else { "incoming" }.into(),
                status: if outgoing { "sent" } else { "inbox" }.into(),
                subject: subject.clone(),
                body_text: format!(
                    "{subject}\n\nThanks,\n{}",
                    if outgoing {
                        owner.first_name.clone()
                    } else {
                        "the team".into()
                    }
                ),
                sender: if outgoing {
                    owner.email.clone()
                } else {
                    to.clone()
                },
                to: vec![if outgoing {
                    to.clone()
                } else {
                    owner.email.clone()
                }],
                template_id: template.map(|t| t.id.clone()),
                template_name: template.map(|t| t.name.clone()),
                opens: if outgoing { rng_e.range(0, 4) } else { 0 },
                has_reply: rng_e.percent(40),
            });
            push(&mut rng_e, at, details);
        }
        for _ in 0..n_notes {
            let at = when(&mut rng_e);
            let (title, note) = *rng_e.pick(&[
                (
                    "Discovery summary",
                    "Team of analysts using spreadsheets; wants automated weekly pipeline reports.",
                ),
                (
                    "Stakeholders",
                    "Economic buyer is the CFO; champion is the head of data.",
                ),
                (
                    "Objections",
                    "Concerned about migration effort from the current BI tool.",
                ),
                ("", "Sent case study from a similar customer."),
            ]);
            let details = ActivityDetails::Note(Note {
                title: title.into(),
                note: note.into(),
                pinned: rng_e.percent(10),
            });
            push(&mut rng_e, at, details);
        }
        for _ in 0..n_sms {
            let at = when(&mut rng_e);
            let template = rng_e.pick(&sms_templates[..2]);
            let details = ActivityDetails::Sms(Sms {
                direction: "outbound".into(),
                status: "sent".into(),
                text: template.text.replace(
                    "{{ contact.first_name }}",
                    lead_contacts
                        .first()
                        .map(|c| c.name.split(' ').next().unwrap_or(""))
                        .unwrap_or(""),
                ),
                local_phone: owner.phone.clone(),
                remote_phone: remote.clone(),
                template_id: Some(template.id.clone()),
            });
            push(&mut rng_e, at, details);
        }
        if rng_e.percent(18) {
            let at = when(&mut rng_e);
            let mut custom = BTreeMap::new();
            custom.insert(
                cf_pain.clone(),
                json!(rng_e.pick(&[
                    "Manual reporting",
                    "No single source of truth",
                    "Slow dashboards"
                ])),
            );
            custom.insert(cf_budget.clone(), json!(rng_e.pick(&["Yes", "No"])));
            let details = ActivityDetails::CustomActivity(CustomActivityRecord {
                custom_activity_type_id: custom_activity_types[0].id.clone(),
                status: "published".into(),
                pinned: false,
                custom,
            });
            push(&mut rng_e, at, details);
        }
    }
    activities.extend(extra);
    activities.retain(|a| a.activity_at < as_of);
    activities.sort_by(|a, b| {
        a.activity_at
            .cmp(&b.activity_at)
            .then_with(|| a.id.cmp(&b.id))
    });

    // Lead and contact `date_updated` follow their latest activity.
    let mut last_touch: HashMap<&str, DateTime<Utc>> = HashMap::new();
    for a in &activities {
        let e = last_touch
            .entry(a.lead_id.as_str())
            .or_insert(a.activity_at);
        *e = (*e).max(a.activity_at);
    }
    let last_touch: HashMap<String, DateTime<Utc>> = last_touch
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    for lead in leads.iter_mut() {
        if let Some(t) = last_touch.get(&lead.id) {
            lead.date_updated = lead.date_updated.max(*t);
        }
    }

    // --- tasks -----------------------------------------------------------------------------------
    let mut rng_k = Rng::new(seed, "tasks");
    let mut tasks = Vec::new();
    let anchor = config.anchor;
    for o in opportunities
        .iter()
        .filter(|o| o.status_type == StatusType::Active)
    {
        let due = o.date_updated.date_naive() + Duration::days(rng_k.range(2, 21));
        let complete = due < anchor && rng_k.percent(55);
        let created = o.date_updated;
        tasks.push(Task {
            id: rng_k.id("task"),
            text: format!(
                "Follow up with {} on {}",
                o.contact_name
                    .clone()
                    .unwrap_or_else(|| o.lead_name.clone()),
                o.status_label.to_lowercase()
            ),
            lead_id: o.lead_id.clone(),
            lead_name: o.lead_name.clone(),
            contact_id: o.contact_id.clone(),
            contact_name: o.contact_name.clone(),
            assigned_to: o.user_id.clone(),
            assigned_to_name: o.user_name.clone(),
            due_date: due,
            is_complete: complete,
            priority: if o.value > 2_000_000 {
                "high"
            } else {
                "medium"
            }
            .into(),
            created_by: o.user_id.clone(),
            date_created: created,
            date_updated: if complete {
                rng_k.between(created, day_start(due).min(latest))
            } else {
                created
            },
        });
    }
    while tasks.len() < 400 {
        let lead = rng_k.pick(&leads);
        let created = rng_k.between(lead.date_created, latest);
        let due = created.date_naive() + Duration::days(rng_k.range(1, 14));
        let complete = due < anchor && rng_k.percent(85);
        let contact = contacts.iter().find(|c| c.lead_id == lead.id);
        tasks.push(Task {
            id: rng_k.id("task"),
            text: (*rng_k.pick(&[
                "Send case study",
                "Call to check in",
                "Share security questionnaire",
                "Book demo",
                "Confirm decision timeline",
                "Send pricing",
            ]))
            .into(),
            lead_id: lead.id.clone(),
            lead_name: lead.name.clone(),
            contact_id: contact.map(|c| c.id.clone()),
            contact_name: contact.map(|c| c.name.clone()),
            assigned_to: lead.owner_id.clone(),
            assigned_to_name: user_name(&lead.owner_id),
            due_date: due,
            is_complete: complete,
            priority: (*rng_k.weighted(&[("medium", 80), ("high", 20)])).into(),
            created_by: lead.owner_id.clone(),
            date_created: created,
            date_updated: if complete {
                rng_k.between(created, day_start(due).min(latest))
            } else {
                created
            },
        });
    }
    tasks.sort_by(|a, b| {
        a.date_created
            .cmp(&b.date_created)
            .then_with(|| a.id.cmp(&b.id))
    });

    let mut ds = Dataset {
        config,
        organization,
        users,
        roles,
        memberships,
        pipelines,
        lead_statuses,
        leads,
        contacts,
        opportunities,
        activities,
        tasks,
        custom_fields,
        smart_views,
        email_templates,
        sms_templates,
        call_outcomes,
        meeting_outcomes,
        groups,
        workflows,
        scheduling_links,
        forms,
        custom_activity_types,
        invoices,
        index: Index::default(),
    };
    ds.build_index();
    ds
}

fn ascii_lower(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'á' | 'à' | 'â' => 'a',
            'é' | 'è' => 'e',
            'ó' | 'ö' => 'o',
            'í' => 'i',
            'ú' | 'ü' => 'u',
            other => other,
        })
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// One-time deal sizes: $2k–$120k, rounded to $100, skewed towards smaller deals.
fn sales_value(rng: &mut Rng) -> i64 {
    let dollars = match rng.weighted(&[(0u8, 40), (1, 35), (2, 20), (3, 5)]) {
        0 => rng.range(20, 100) * 100,
        1 => rng.range(100, 300) * 100,
        2 => rng.range(300, 700) * 100,
        _ => rng.range(700, 1200) * 100,
    };
    dollars * 100
}

/// Dwell time (hours) in a sales stage: mostly days to a few weeks, sometimes a long stall.
fn sales_dwell_hours(rng: &mut Rng, stage: &str) -> i64 {
    let (lo, hi) = match stage {
        "Lead" => (1, 12),
        "Qualified" => (2, 16),
        "Demo" => (2, 14),
        "Proposal" => (3, 35),
        _ => (2, 16),
    };
    let days = if rng.percent(6) {
        rng.range(45, 150)
    } else {
        rng.range(lo, hi)
    };
    days * 24 + rng.range(0, 23)
}

fn walk_sales(
    rng: &mut Rng,
    created: DateTime<Utc>,
    as_of: DateTime<Utc>,
    win_factor: i64,
) -> Walk {
    // statuses: 0 Lead, 1 Qualified, 2 Demo, 3 Proposal, 4 Negotiation, 5 Won, 6 Lost
    let mut stage = *rng.weighted(&[(0usize, 70), (1, 20), (2, 10)]);
    let mut t = created;
    let mut steps = vec![(t, stage)];
    let loss_pct = [25i64, 20, 15, 15, 22];
    loop {
        let next = t + Duration::hours(sales_dwell_hours(rng, SALES_STAGES[stage]));
        if next >= as_of {
            break;
        }
        t = next + Duration::seconds(rng.range(0, 3599));
        if t >= as_of {
            break;
        }
        let p_loss = (loss_pct[stage] * 100 / win_factor.max(1)).clamp(3, 80);
        if rng.below(100) < p_loss as u64 {
            steps.push((t, 6));
            break;
        }
        if stage == 4 {
            steps.push((t, 5));
            break;
        }
        stage += if stage < 3 && rng.percent(10) { 2 } else { 1 };
        steps.push((t, stage));
    }
    Walk { steps }
}

fn walk_renewal(rng: &mut Rng, created: DateTime<Utc>, as_of: DateTime<Utc>) -> Walk {
    // statuses: 0 Upcoming, 1 Proposal, 2 Renewed, 3 Churned
    let mut stage = 0usize;
    let mut t = created;
    let mut steps = vec![(t, stage)];
    loop {
        let days = if stage == 0 {
            rng.range(10, 60)
        } else {
            rng.range(5, 30)
        };
        let next = t + Duration::days(days) + Duration::minutes(rng.range(0, 1439));
        if next >= as_of {
            break;
        }
        t = next;
        if stage == 1 {
            steps.push((t, if rng.percent(22) { 3 } else { 2 }));
            break;
        }
        stage = 1;
        steps.push((t, stage));
    }
    Walk { steps }
}

fn confidence_for(rng: &mut Rng, pipeline: &Pipeline, status_idx: usize) -> i64 {
    let status = &pipeline.statuses[status_idx.min(pipeline.statuses.len() - 1)];
    let base = match status.status_type {
        StatusType::Won => rng.range(70, 100),
        StatusType::Lost => rng.range(10, 60),
        StatusType::Active => {
            let n_active = pipeline
                .statuses
                .iter()
                .filter(|s| s.status_type == StatusType::Active)
                .count() as i64;
            10 + (status_idx as i64) * 70 / n_active.max(1) + rng.range(-5, 10)
        }
    };
    (base / 5 * 5).clamp(5, 100)
}

fn close_date_for(
    rng: &mut Rng,
    walk: &Walk,
    pipeline: &Pipeline,
    as_of: DateTime<Utc>,
) -> NaiveDate {
    let &(last_at, idx) = walk.steps.last().unwrap_or(&(as_of, 0));
    match pipeline.statuses.get(idx).map(|s| s.status_type) {
        Some(StatusType::Active) | None => {
            let expected = last_at + Duration::days(rng.range(7, 75));
            expected.date_naive()
        }
        _ => last_at.date_naive(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> DatasetConfig {
        DatasetConfig {
            seed,
            anchor: NaiveDate::from_ymd_opt(2026, 3, 12).unwrap(),
        }
    }

    #[test]
    fn the_same_seed_and_anchor_give_identical_data() {
        let a = Dataset::generate(config(42));
        let b = Dataset::generate(config(42));
        assert_eq!(a, b);
        let a_json: Vec<Value> = a
            .opportunities
            .iter()
            .map(|o| a.opportunity_json(o))
            .collect();
        let b_json: Vec<Value> = b
            .opportunities
            .iter()
            .map(|o| b.opportunity_json(o))
            .collect();
        assert_eq!(a_json, b_json);
    }

    #[test]
    fn different_seeds_give_different_data() {
        let a = Dataset::generate(config(42));
        let b = Dataset::generate(config(43));
        assert_ne!(a.opportunities[0].id, b.opportunities[0].id);
    }

    #[test]
    fn the_first_ids_of_seed_42_never_change() {
        // Guards the generator against accidental drift: tests elsewhere may pin these.
        let ds = Dataset::generate(config(42));
        let again = Dataset::generate(config(42));
        assert_eq!(ds.organization.id, again.organization.id);
        assert!(ds.organization.id.starts_with("orga_") && ds.organization.id.len() == 5 + 43);
        assert_eq!(ds.organization.name, "Northwind Analytics");
    }

    #[test]
    fn the_dataset_has_the_promised_sizes_and_prefixes() {
        let ds = Dataset::generate(config(7));
        assert_eq!(ds.users.len(), 8);
        assert_eq!(ds.leads.len(), 300);
        assert!(
            (450..=650).contains(&ds.contacts.len()),
            "{} contacts",
            ds.contacts.len()
        );
        assert!(
            (560..=680).contains(&ds.opportunities.len()),
            "{} opportunities",
            ds.opportunities.len()
        );
        assert!(ds.activities.len() > 3000);
        assert!(ds.users.iter().all(|u| u.id.starts_with("user_")));
        assert!(ds.memberships.iter().all(|m| m.id.starts_with("memb_")));
        assert!(ds.leads.iter().all(|l| l.id.starts_with("lead_")));
        assert!(ds.contacts.iter().all(|c| c.id.starts_with("cont_")));
        assert!(ds.opportunities.iter().all(|o| o.id.starts_with("oppo_")));
        assert!(ds.activities.iter().all(|a| a.id.starts_with("acti_")));
        assert!(ds.tasks.iter().all(|t| t.id.starts_with("task_")));
        assert!(ds
            .pipelines
            .iter()
            .all(|p| p.id.starts_with("pipe_")
                && p.statuses.iter().all(|s| s.id.starts_with("stat_"))));
        assert!(ds.smart_views.iter().all(|s| s.id.starts_with("save_")));
        assert!(ds.custom_fields.iter().all(|f| f.id.starts_with("cf_")));
    }

    #[test]
    fn all_events_fall_in_the_history_window_before_the_anchor() {
        let ds = Dataset::generate(config(3));
        let (from, to) = (ds.history_start(), ds.as_of());
        let inside = |t: &DateTime<Utc>| *t >= from && *t < to;
        assert!(ds
            .leads
            .iter()
            .all(|l| inside(&l.date_created) && inside(&l.date_updated)));
        assert!(ds
            .opportunities
            .iter()
            .all(|o| inside(&o.date_created) && inside(&o.date_updated)));
        assert!(ds.activities.iter().all(|a| inside(&a.activity_at)));
        assert!(ds
            .opportunities
            .iter()
            .all(|o| o.date_won.is_none_or(|d| d < ds.config.anchor)));
    }

    #[test]
    fn every_opportunitys_history_ends_in_its_current_status() {
        let ds = Dataset::generate(config(11));
        for o in &ds.opportunities {
            let changes: Vec<&OpportunityStatusChange> = ds
                .activities
                .iter()
                .filter_map(|a| a.opportunity_status_change())
                .filter(|c| c.opportunity_id == o.id)
                .collect();
            if let Some(last) = changes.last() {
                assert_eq!(last.new_status_id, o.status_id, "{}", o.id);
            }
            for w in changes.windows(2) {
                assert_eq!(w[0].new_status_id, w[1].old_status_id);
            }
            assert_eq!(o.date_won.is_some(), o.status_type == StatusType::Won);
            assert_eq!(o.date_lost.is_some(), o.status_type == StatusType::Lost);
        }
    }

    #[test]
    fn lead_statuses_agree_with_opportunities() {
        let ds = Dataset::generate(config(5));
        for l in &ds.leads {
            let won = ds
                .opportunities_of(&l.id)
                .iter()
                .any(|o| o.status_type == StatusType::Won);
            assert_eq!(won, l.status_label == "Customer", "{}", l.name);
        }
    }

    #[test]
    fn money_is_formatted_like_close() {
        assert_eq!(format_money(50_000), "$500");
        assert_eq!(format_money(12_345_678), "$123,456.78");
        let mut o = Dataset::generate(config(1)).opportunities[0].clone();
        o.value = 5_000;
        o.value_period = ValuePeriod::Monthly;
        o.confidence = 50;
        assert_eq!(o.value_formatted(), "$50 monthly");
        assert_eq!(o.annualized_value(), 60_000);
        assert_eq!(o.expected_value(), 2_500);
    }

    #[test]
    fn timestamps_use_close_formatting() {
        let t = Utc.with_ymd_and_hms(2025, 2, 1, 0, 54, 51).unwrap() + Duration::milliseconds(337);
        assert_eq!(iso(&t), "2025-02-01T00:54:51.337000+00:00");
    }
}
