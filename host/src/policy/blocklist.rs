//! The write-tool blocklist: clariBI's promise that connecting a data source can never modify data on
//! the vendor's side.
//!
//! Every tool name a connector lists is checked here before the engine sees it, and every
//! `call-tool` is checked again before the connector is even instantiated (see
//! [`crate::service`]). Whatever the plugin or the vendor server says, a tool is blocked when
//!
//! * its name, normalised to `snake_case` (so `createLead`, `lead.create` and `Lead-Create` are
//!   judged alike), matches one of the patterns below; or
//! * its annotations say `readOnlyHint: false` or `destructiveHint: true`.
//!
//! The default patterns, each with an id an operator can refer to:
//!
//! | id | matches | why |
//! |----|---------|-----|
//! | `product-words` | create, update, delete, send, refund as a *word anywhere* (`lead_create`, `close_create_lead`, `mcp_send_email`, `CRMDeleteLead`), or glued to the front of a name (`createlead`, `create2_lead`) | the product's promise, word for word, whatever the naming style |
//! | `write-verbs` | a name whose first word is any other verb that changes something (add, set, remove, apply, enrich, schedule, cancel, merge, assign, import, publish, resend, reopen, …), or that has an unambiguous one *anywhere* (`crm_add_lead`, `find_or_add_contact`, `custom_field_upsert`) | Close's catalog has write tools without the five words (`apply_voice_agent_update`, `enrich_field`, `schedule_voice_agent_call`); vendors prefix and compose names |
//! | `destructive-anywhere` | delete, destroy, purge, erase, wipe, refund, truncate as a *word* anywhere (`bulk_lead_delete_all`) | these words never name a read |
//! | `verb-last` | a name *ending* in send, remove, revoke, charge, void, merge, cancel, archive (`invoice_void`) | object-first naming |
//!
//! Three exemptions, narrow and written out:
//!
//! * `product-words`: a product word glued to the front as a past tense or plural only
//!   (`updated_since`, `refunds_list`, `deleted_items` are reads);
//! * `product-words`: the first word is a read verb (find, fetch, get, list, search, read, view, show,
//!   describe, count, propose, preview, suggest) and the only product word is the *last* word, used as
//!   a noun, and that word is create, update or send (never delete or refund). Close's read tool
//!   `propose_voice_agent_update` (it returns a proposal; applying it is the write tool
//!   `apply_voice_agent_update`) must stay available;
//! * `write-verbs`: a verb that is also the noun a read lists, first, and a read word last
//!   (`email_search`, `call_search`, `sms_search`), with no unambiguous write verb anywhere.
//!
//! Every other rule still applies to such a name.
//!
//! Operators add patterns and, exceptionally, switch a default off in `<data-dir>/blocklist.toml`:
//!
//! ```toml
//! extra_patterns = ["^export_", "_bulk$"]
//! [[override]]
//! disable = "verb-last"
//! reason = "vendor X names read tools like invoice_void_status_report"
//! [[override]]
//! allow_tool = "get_update_history"
//! reason = "the history of updates to a record; checked against the vendor docs"
//! ```
//!
//! `allow_tool` lets one exact tool name past the name rules (never past the annotations); `disable`
//! switches a whole default rule off. Either is logged as a warning every time the host loads it.
//!
//! ```
//! use claribi_host::policy::blocklist::Blocklist;
//! let b = Blocklist::default();
//! assert!(b.check_name("delete_lead").is_some());
//! assert!(b.check_name("enrich_field").is_some());
//! assert!(b.check_name("find_opportunities").is_none());
//! assert!(b.check_name("propose_voice_agent_update").is_none());
//! assert!(b.check_name("close_create_lead").is_some());
//! assert!(b.check_name("lead.update").is_some());
//! ```

use regex::Regex;
use serde::Deserialize;
use std::fmt;

/// Why a tool is blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockReason {
    /// The id of the pattern (`product-words`, …, `operator:<n>`) or `annotation`.
    pub rule: String,
    /// One sentence for humans.
    pub detail: String,
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (rule `{}`)", self.detail, self.rule)
    }
}

struct Rule {
    id: String,
    regex: Regex,
    detail: &'static str,
    /// Names that match `regex` but are let through (see the module docs).
    exempt: Option<fn(&str) -> bool>,
}

/// The compiled blocklist.
pub struct Blocklist {
    rules: Vec<Rule>,
    /// Default rules switched off, with reasons.
    disabled: Vec<(String, String)>,
    /// Exact tool names let past the name rules, with reasons.
    allowed: Vec<(String, String)>,
}

impl Blocklist {
    /// A digest of the rules in force (patterns, switched-off defaults, allowed names): a listing
    /// filtered under other rules is not reused.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for r in &self.rules {
            h.update(r.id.as_bytes());
            h.update([0]);
            h.update(r.regex.as_str().as_bytes());
            h.update([1]);
        }
        for (a, b) in self.disabled.iter().chain(&self.allowed) {
            h.update(a.as_bytes());
            h.update([2]);
            h.update(b.as_bytes());
            h.update([3]);
        }
        h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect()
    }
}

const MODIFIERS: &str = r"(?:bulk_|batch_|mass_|force_)?";

const WRITE_VERBS: &[&str] = &[
    "add", "insert", "put", "post", "patch", "set", "write", "edit", "modify", "change", "upsert", "replace",
    "remove", "destroy", "purge", "erase", "wipe", "drop", "truncate", "clear", "reset", "apply", "enrich",
    "schedule", "reschedule", "cancel", "void", "charge", "pay", "transfer", "archive", "unarchive", "restore",
    "merge", "move", "assign", "unassign", "reassign", "import", "upload", "publish", "unpublish", "submit",
    "approve", "reject", "revoke", "grant", "invite", "enroll", "unenroll", "subscribe", "unsubscribe", "mark",
    "complete", "start", "stop", "pause", "resume", "trigger", "execute", "run", "call", "dial", "email", "sms",
    "notify", "share", "unshare", "convert", "duplicate", "clone", "copy", "link", "unlink", "attach", "detach",
    "tag", "untag", "rename", "reorder", "log", "record", "book", "reserve", "release", "deploy", "sync", "push",
    "save", "store", "accept", "decline", "dismiss", "snooze", "pin", "unpin", "follow", "unfollow", "comment",
    "reply", "forward", "respond", "disable", "enable", "activate", "deactivate", "lock", "unlock", "issue",
    "credit", "debit", "bill", "provision", "deprovision", "rotate", "generate", "make", "new", "register",
    "unregister", "connect", "disconnect", "install", "uninstall", "upgrade", "downgrade", "renew", "terminate",
    "resend", "reopen", "revert", "undo", "redo", "retry", "reactivate", "overwrite",
    "increment", "decrement", "bump", "finalize", "confirm", "mute", "unmute", "block",
    "unblock", "ban", "unban", "suspend", "unsuspend", "migrate", "populate", "fill", "prune", "flush",
];

/// Verbs that are never nouns in a tool name, so they are blocked as the second word too
/// (`crm_add_lead`, `lead_merge_into`), where a noun-verb like `email` or `log` would misfire
/// (`lead_email_addresses`, `call_log`).
const UNAMBIGUOUS_WRITE_VERBS: &[&str] = &[
    "add", "insert", "upsert", "patch", "edit", "modify", "remove", "destroy", "purge", "erase", "wipe",
    "truncate", "apply", "enrich", "schedule", "reschedule", "cancel", "archive", "unarchive", "restore",
    "merge", "assign", "unassign", "reassign", "import", "upload", "publish", "unpublish", "submit", "approve",
    "reject", "revoke", "invite", "enroll", "unenroll", "subscribe", "unsubscribe", "rename", "reorder",
    "resend", "reopen", "revert", "reactivate", "deactivate", "activate", "overwrite", "increment",
    "decrement", "finalize", "migrate", "populate", "prune", "mark", "convert", "duplicate", "unlink",
    "detach", "untag", "unpin", "snooze", "dismiss", "terminate", "provision", "deprovision", "uninstall",
];

/// Verbs that start a name that reads (the `product-words` exemption).
const READ_VERBS: &[&str] = &[
    "find", "fetch", "get", "list", "search", "read", "view", "show", "describe", "count", "propose", "preview",
    "suggest",
];

/// Words that read, after a product word glued to the front of a name: `updated_since`,
/// `refunds_list`, `deleted_items` are reads; `createlead`, `create2_lead` are not.
const GLUED_READ_SUFFIXES: &[&str] = &["s", "d", "ed", "r", "rs"];

/// The `product-words` exemptions: (a) a product word glued to the front only as a past tense or a
/// plural (`updated_since`), or (b) the first word is a read verb and the only product word is the
/// last one, used as a noun (create, update or send; never delete or refund).
fn product_words_exempt(name: &str) -> bool {
    let words: Vec<&str> = name.split('_').collect();
    const PRODUCT: [&str; 5] = ["create", "update", "delete", "send", "refund"];
    if let Some(first) = words.first() {
        for verb in ["create", "update", "delete", "refund"] {
            if let Some(rest) = first.strip_prefix(verb) {
                if !rest.is_empty() && !GLUED_READ_SUFFIXES.contains(&rest) {
                    return false;
                }
            }
        }
    }
    if !words.iter().any(|w| PRODUCT.contains(w)) {
        return true;
    }
    words.len() >= 2
        && READ_VERBS.contains(&words[0])
        && matches!(words[words.len() - 1], "create" | "update" | "send")
        && !words[..words.len() - 1].iter().any(|w| PRODUCT.contains(w))
}

/// Verbs that are also nouns naming what a read lists (`email_search`, `call_search`).
const NOUN_VERBS: &[&str] = &["email", "call", "sms", "log", "record", "tag", "comment", "issue", "note", "book", "link"];
/// Last words that make a name a read.
const READ_TAILS: &[&str] = &["search", "list", "lookup", "count", "report", "stats", "summary", "history"];

/// The `write-verbs` exemption: a noun-verb first and a read word last, with no unambiguous write
/// verb anywhere (`email_search`, but not `email_send` nor `call_merge_search`).
fn noun_verb_read(name: &str) -> bool {
    let words: Vec<&str> = name.split('_').collect();
    words.len() >= 2
        && NOUN_VERBS.contains(&words[0])
        && READ_TAILS.contains(&words[words.len() - 1])
        && !words.iter().any(|w| UNAMBIGUOUS_WRITE_VERBS.contains(w))
}

/// The default rules as (id, regex, detail, exemption).
#[allow(clippy::type_complexity)]
fn default_rules() -> Vec<(String, String, &'static str, Option<fn(&str) -> bool>)> {
    vec![
        (
            "product-words".into(),
            r"(?:^|_)(?:create|update|delete|send|refund)(?:_|$)|^(?:create|update|delete|refund)[a-z0-9]".into(),
            "its name contains a write verb (create, update, delete, send, refund)",
            Some(product_words_exempt as fn(&str) -> bool),
        ),
        (
            "write-verbs".into(),
            format!(
                r"^{MODIFIERS}(?:{})(?:_|$)|(?:^|_){MODIFIERS}(?:{})(?:_|$)",
                WRITE_VERBS.join("|"),
                UNAMBIGUOUS_WRITE_VERBS.join("|")
            ),
            "its name contains a verb that changes data",
            Some(noun_verb_read as fn(&str) -> bool),
        ),
        (
            "destructive-anywhere".into(),
            r"(?:^|_)(?:delete|destroy|purge|erase|wipe|refund|truncate)(?:_|$)".into(),
            "its name contains a destructive verb",
            None,
        ),
        (
            "verb-last".into(),
            r"_(?:send|remove|revoke|charge|void|merge|cancel|archive)$".into(),
            "its name ends in a write verb",
            None,
        ),
    ]
}

/// The ids of the default rules.
pub fn default_rule_ids() -> Vec<String> {
    default_rules().into_iter().map(|(id, _, _, _)| id).collect()
}

/// `createLead` → `create_lead`; `Lead.Create-All` → `lead_create_all`; `CRMDeleteLead` →
/// `crm_delete_lead` (an acronym ends where a capitalised word begins).
pub fn normalize(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 8);
    let mut prev_lower_or_digit = false;
    let mut prev_upper = false;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev_lower_or_digit || (prev_upper && next_lower) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower_or_digit = false;
            prev_upper = true;
        } else if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            prev_lower_or_digit = true;
            prev_upper = false;
        } else {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            prev_lower_or_digit = false;
            prev_upper = false;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// The operator's blocklist file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlocklistConfig {
    /// More patterns (regex over the normalised name).
    #[serde(default)]
    pub extra_patterns: Vec<String>,
    /// Default rules switched off, each with a reason.
    #[serde(default, rename = "override")]
    pub overrides: Vec<Override>,
}

/// Switching one default rule off, or letting one exact tool name past the name rules.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The id of a default rule to switch off.
    #[serde(default)]
    pub disable: String,
    /// One exact tool name to let past the name rules (its annotations still count).
    #[serde(default)]
    pub allow_tool: String,
    /// Why (required, and logged).
    pub reason: String,
}

impl fmt::Debug for Blocklist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blocklist").field("rules", &self.rules()).field("disabled", &self.disabled).finish()
    }
}

impl Default for Blocklist {
    fn default() -> Self {
        Blocklist::new(&BlocklistConfig::default()).expect("default blocklist compiles")
    }
}

impl Blocklist {
    /// Compile the defaults plus an operator configuration.
    pub fn new(config: &BlocklistConfig) -> Result<Blocklist, String> {
        let mut disabled = Vec::new();
        let mut allowed = Vec::new();
        for o in &config.overrides {
            let what = if o.disable.is_empty() { &o.allow_tool } else { &o.disable };
            if o.disable.is_empty() == o.allow_tool.is_empty() {
                return Err("each blocklist [[override]] needs exactly one of `disable = \"<rule>\"` or `allow_tool = \"<tool name>\"`, and a reason".into());
            }
            if o.reason.trim().is_empty() {
                return Err(format!("blocklist override of `{what}` needs a non-empty reason"));
            }
            if !o.disable.is_empty() {
                if !default_rule_ids().contains(&o.disable) {
                    return Err(format!(
                        "blocklist override names unknown rule `{}`; default rules are: {}",
                        o.disable,
                        default_rule_ids().join(", ")
                    ));
                }
                disabled.push((o.disable.clone(), o.reason.clone()));
            } else {
                allowed.push((o.allow_tool.clone(), o.reason.clone()));
            }
        }
        let mut rules = Vec::new();
        for (id, re, detail, exempt) in default_rules() {
            if disabled.iter().any(|(d, _)| *d == id) {
                continue;
            }
            rules.push(Rule { id, regex: Regex::new(&re).map_err(|e| e.to_string())?, detail, exempt });
        }
        for (i, p) in config.extra_patterns.iter().enumerate() {
            let regex = Regex::new(p)
                .map_err(|e| format!("blocklist extra pattern {} `{p}` is not a valid regex: {}", i + 1, e.to_string().lines().last().unwrap_or("")))?;
            rules.push(Rule { id: format!("operator:{}", i + 1), regex, detail: "it matches a pattern the operator added", exempt: None });
        }
        Ok(Blocklist { rules, disabled, allowed })
    }

    /// Load `<data-dir>/blocklist.toml` if it exists (else the defaults).
    pub fn load(path: &std::path::Path) -> Result<Blocklist, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let cfg: BlocklistConfig = toml::from_str(&text).map_err(|e| {
                    let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                    format!(
                        "{}{}: {}",
                        path.display(),
                        line.map(|l| format!(" line {l}")).unwrap_or_default(),
                        e.message().trim()
                    )
                })?;
                Blocklist::new(&cfg)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Blocklist::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Default rules the operator switched off, with the reasons (to be logged).
    pub fn overrides(&self) -> &[(String, String)] {
        &self.disabled
    }

    /// Exact tool names the operator let past the name rules, with the reasons (to be logged).
    pub fn allowed_tools(&self) -> &[(String, String)] {
        &self.allowed
    }

    /// Why a tool name is blocked, or `None` if it is allowed by name.
    pub fn check_name(&self, name: &str) -> Option<BlockReason> {
        if self.allowed.iter().any(|(t, _)| t == name) {
            return None;
        }
        let n = normalize(name);
        self.rules.iter().find(|r| r.regex.is_match(&n) && !r.exempt.is_some_and(|f| f(&n))).map(|r| BlockReason {
            rule: r.id.clone(),
            detail: format!("tool `{name}` is blocked because {}", r.detail),
        })
    }

    /// Why a tool is blocked by name or annotations, or `None`.
    pub fn check(&self, name: &str, read_only_hint: Option<bool>, destructive_hint: Option<bool>) -> Option<BlockReason> {
        if let Some(r) = self.check_name(name) {
            return Some(r);
        }
        if read_only_hint == Some(false) || destructive_hint == Some(true) {
            return Some(BlockReason {
                rule: "annotation".into(),
                detail: format!(
                    "tool `{name}` is blocked because the server annotates it as {}",
                    if destructive_hint == Some(true) { "destructive" } else { "not read-only" }
                ),
            });
        }
        None
    }

    /// The active rules as (id, regex) pairs, for display.
    pub fn rules(&self) -> Vec<(String, String)> {
        self.rules
            .iter()
            .map(|r| {
                let exempt = match r.id.as_str() {
                    "product-words" => "  (except a glued past tense or plural, and a read verb first with create/update/send as the last word)",
                    "write-verbs" => "  (except a noun-verb first and a read word last, e.g. email_search)",
                    _ => "",
                };
                (r.id.clone(), format!("{}{exempt}", r.regex.as_str()))
            })
            .chain(self.allowed.iter().map(|(t, reason)| (format!("allow:{t}"), format!("allowed by the operator: {reason}"))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_blocked(names: &[&str]) {
        let b = Blocklist::default();
        for name in names {
            assert!(b.check_name(name).is_some(), "{name} should be blocked");
        }
    }

    fn assert_allowed(names: &[&str]) {
        let b = Blocklist::default();
        for name in names {
            assert!(b.check_name(name).is_none(), "{name} should be allowed: {:?}", b.check_name(name));
        }
    }

    #[test]
    fn names_are_normalised_to_snake_case() {
        for (raw, norm) in [
            ("createLead", "create_lead"),
            ("CreateLead", "create_lead"),
            ("lead.create", "lead_create"),
            ("Lead-Create-All", "lead_create_all"),
            ("find_opportunities", "find_opportunities"),
            ("getHTTPStatus", "get_http_status"),
            ("CRMDeleteLead", "crm_delete_lead"),
            ("SMSSend", "sms_send"),
            ("CREATELEAD", "createlead"),
            ("__x__", "x"),
        ] {
            assert_eq!(normalize(raw), norm, "{raw}");
        }
    }

    #[test]
    fn write_verbs_are_blocked_in_every_spelling() {
        assert_blocked(&[
            "create_lead", "createLead", "UpdateOpportunity", "delete_task", "send_email", "refund_payment",
            "bulk_delete_leads", "batch_update", "apply_voice_agent_update", "enrich_field",
            "schedule_voice_agent_call", "lead_delete", "invoice_void", "email_send", "merge_leads",
            "lead.remove", "set_status", "archive_lead",
        ]);
    }

    #[test]
    fn the_product_words_are_blocked_wherever_they_stand() {
        assert_blocked(&[
            // object first
            "lead_create", "lead.update", "leads/create", "opportunity-update", "lead_bulk_update", "LeadCreate",
            // a vendor or version prefix
            "close_create_lead", "crm.createLead", "mcp_send_email", "v2_update_lead", "api_refund_charge",
            // no separator
            "createlead", "CREATELEAD", "create2_lead", "updateOpportunityStatus", "deleteall",
            // verbs a list of five words would miss
            "resend_email", "reopen_lead", "revert_lead", "crm_add_lead", "lead_merge_into", "lead_archive",
            // the exemption is for a trailing noun after a read verb only
            "get_update_log", "find_and_send", "get_delete", "fetch_refund", "list_send_update",
            // acronyms, composed names, verbs further in
            "CRMDeleteLead", "XDeleteLead", "SMSSend", "find_or_add_contact", "fetch_and_enrich_lead",
            "find_and_merge_duplicates", "propose_and_apply_update", "lead_status_assign", "contact_email_add",
            "custom_field_upsert", "email_send", "call_merge_search",
        ]);
    }

    #[test]
    fn reads_that_mention_a_write_word_stay_available() {
        assert_allowed(&[
            "propose_voice_agent_update", "get_last_update", "find_deleted_records_count", "lead_email_addresses",
            "lead_call_log", "address_search", "fetch_call_task", "close_product_knowledge_search", "email_search",
            "call_search", "sms_search", "updated_since", "refunds_list", "deleted_items", "getHTTPStatus",
        ]);
    }

    #[test]
    fn an_operator_can_let_one_exact_name_through_with_a_reason() {
        let cfg: BlocklistConfig =
            toml::from_str("[[override]]\nallow_tool = \"get_update_history\"\nreason = \"a report\"").unwrap();
        let b = Blocklist::new(&cfg).unwrap();
        assert!(b.check_name("get_update_history").is_none());
        assert!(Blocklist::default().check_name("get_update_history").is_some(), "blocked by default");
        assert!(b.check_name("get_update_history_update").is_some(), "only the exact name");
        assert!(b.check("get_update_history", None, Some(true)).is_some(), "annotations still count");
        assert_eq!(b.allowed_tools().len(), 1);
        assert!(b.rules().iter().any(|(id, _)| id == "allow:get_update_history"));
        let both: BlocklistConfig =
            toml::from_str("[[override]]\nallow_tool = \"x\"\ndisable = \"verb-last\"\nreason = \"r\"").unwrap();
        assert!(Blocklist::new(&both).unwrap_err().contains("exactly one"));
    }

    #[test]
    fn read_tools_are_not_blocked() {
        assert_allowed(&[
            "find_opportunities", "fetch_lead", "lead_search", "activity_search", "aggregation", "org_info",
            "close_product_knowledge_search", "propose_voice_agent_update", "get_fields", "list_roles",
            "paginate_search", "search", "fetch", "customized_builtin_labels", "find_deleted_records_count",
        ]);
    }

    #[test]
    fn every_write_tool_of_close_s_catalog_is_blocked_and_no_read_tool_is() {
        let catalog: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/close-standin/data/close-mcp-tools.json")).unwrap();
        let b = Blocklist::default();
        let (mut writes, mut reads) = (0, 0);
        for tool in catalog.as_array().unwrap() {
            let name = tool["name"].as_str().unwrap();
            let scope = tool["scope"].as_str().unwrap();
            if scope == "mcp.write_safe" || scope == "mcp.write_destructive" {
                writes += 1;
                assert!(b.check_name(name).is_some(), "write tool {name} ({scope}) is not blocked");
            } else {
                reads += 1;
                assert!(b.check_name(name).is_none(), "read tool {name} ({scope}) is blocked: {:?}", b.check_name(name));
            }
        }
        assert_eq!((writes, reads), (50, 66), "the whole catalog was checked");
    }

    #[test]
    fn annotations_block_more_but_never_less() {
        let b = Blocklist::default();
        assert!(b.check("find_x", Some(false), None).is_some());
        assert!(b.check("find_x", None, Some(true)).is_some());
        assert!(b.check("find_x", Some(true), Some(false)).is_none());
        assert!(b.check("delete_x", Some(true), Some(false)).is_some(), "a read-only hint never unblocks");
    }

    #[test]
    fn operators_add_patterns_and_overrides_need_a_reason() {
        let cfg: BlocklistConfig = toml::from_str("extra_patterns = [\"^export_\"]").unwrap();
        let b = Blocklist::new(&cfg).unwrap();
        assert_eq!(b.check_name("export_leads").unwrap().rule, "operator:1");

        let cfg: BlocklistConfig = toml::from_str("[[override]]\ndisable = \"verb-last\"\nreason = \"\"").unwrap();
        assert!(Blocklist::new(&cfg).unwrap_err().contains("reason"));
        let cfg: BlocklistConfig = toml::from_str("[[override]]\ndisable = \"nope\"\nreason = \"x\"").unwrap();
        assert!(Blocklist::new(&cfg).unwrap_err().contains("product-words"));
        let cfg: BlocklistConfig =
            toml::from_str("[[override]]\ndisable = \"verb-last\"\nreason = \"vendor names\"").unwrap();
        let b = Blocklist::new(&cfg).unwrap();
        assert!(b.check_name("invoice_void").is_none());
        assert_eq!(b.overrides().len(), 1);

        let cfg: BlocklistConfig = toml::from_str("extra_patterns = [\"(\"]").unwrap();
        assert!(Blocklist::new(&cfg).unwrap_err().contains("not a valid regex"));
    }
}
