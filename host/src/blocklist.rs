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
//! | `product-words` | a name *starting* with create, update, delete, send, refund (optionally after `bulk_`, `batch_`, `mass_`, `force_`) | the product's promise, word for word |
//! | `write-verbs` | a name starting with any other verb that changes something: add, set, remove, apply, enrich, schedule, cancel, merge, assign, import, publish, … | Close's catalog has write tools without the five words (`apply_voice_agent_update`, `enrich_field`, `schedule_voice_agent_call`) |
//! | `destructive-anywhere` | delete, destroy, purge, erase, wipe, refund, truncate as a *word* anywhere (`bulk_lead_delete_all`) | these words never name a read |
//! | `verb-last` | a name *ending* in send, remove, revoke, charge, void (`invoice_void`) | object-first naming |
//!
//! Verbs are matched as the first word because some read tools end in a noun that is also a verb:
//! Close's read tool `propose_voice_agent_update` must stay available.
//!
//! Operators add patterns and, exceptionally, switch a default off in `<data-dir>/blocklist.toml`:
//!
//! ```toml
//! extra_patterns = ["^export_", "_bulk$"]
//! [[override]]
//! disable = "verb-last"
//! reason = "vendor X names read tools like invoice_void_status_report"
//! ```
//!
//! An override is logged as a warning every time the host loads it.
//!
//! ```
//! use claribi_host::blocklist::Blocklist;
//! let b = Blocklist::default();
//! assert!(b.check_name("delete_lead").is_some());
//! assert!(b.check_name("enrich_field").is_some());
//! assert!(b.check_name("find_opportunities").is_none());
//! assert!(b.check_name("propose_voice_agent_update").is_none());
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
}

/// The compiled blocklist.
pub struct Blocklist {
    rules: Vec<Rule>,
    disabled: Vec<(String, String)>,
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
];

/// The default rules as (id, regex, detail).
fn default_rules() -> Vec<(String, String, &'static str)> {
    vec![
        (
            "product-words".into(),
            format!(r"^{MODIFIERS}(?:create|update|delete|send|refund)(?:_|$)"),
            "its name starts with a write verb (create, update, delete, send, refund)",
        ),
        (
            "write-verbs".into(),
            format!(r"^{MODIFIERS}(?:{})(?:_|$)", WRITE_VERBS.join("|")),
            "its name starts with a verb that changes data",
        ),
        (
            "destructive-anywhere".into(),
            r"(?:^|_)(?:delete|destroy|purge|erase|wipe|refund|truncate)(?:_|$)".into(),
            "its name contains a destructive verb",
        ),
        (
            "verb-last".into(),
            r"_(?:send|remove|revoke|charge|void)$".into(),
            "its name ends in a write verb",
        ),
    ]
}

/// The ids of the default rules.
pub fn default_rule_ids() -> Vec<String> {
    default_rules().into_iter().map(|(id, _, _)| id).collect()
}

/// `createLead` → `create_lead`; `Lead.Create-All` → `lead_create_all`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut prev_lower_or_digit = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower_or_digit {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower_or_digit = false;
        } else if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            prev_lower_or_digit = true;
        } else {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            prev_lower_or_digit = false;
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

/// Switching one default rule off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The id of the default rule.
    pub disable: String,
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
        for o in &config.overrides {
            if !default_rule_ids().contains(&o.disable) {
                return Err(format!(
                    "blocklist override names unknown rule `{}`; default rules are: {}",
                    o.disable,
                    default_rule_ids().join(", ")
                ));
            }
            if o.reason.trim().is_empty() {
                return Err(format!("blocklist override of `{}` needs a non-empty reason", o.disable));
            }
            disabled.push((o.disable.clone(), o.reason.clone()));
        }
        let mut rules = Vec::new();
        for (id, re, detail) in default_rules() {
            if disabled.iter().any(|(d, _)| *d == id) {
                continue;
            }
            rules.push(Rule { id, regex: Regex::new(&re).map_err(|e| e.to_string())?, detail });
        }
        for (i, p) in config.extra_patterns.iter().enumerate() {
            let regex = Regex::new(p)
                .map_err(|e| format!("blocklist extra pattern {} `{p}` is not a valid regex: {}", i + 1, e.to_string().lines().last().unwrap_or("")))?;
            rules.push(Rule { id: format!("operator:{}", i + 1), regex, detail: "it matches a pattern the operator added" });
        }
        Ok(Blocklist { rules, disabled })
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

    /// Why a tool name is blocked, or `None` if it is allowed by name.
    pub fn check_name(&self, name: &str) -> Option<BlockReason> {
        let n = normalize(name);
        self.rules.iter().find(|r| r.regex.is_match(&n)).map(|r| BlockReason {
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
        self.rules.iter().map(|r| (r.id.clone(), r.regex.as_str().to_string())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_to_snake_case() {
        for (raw, norm) in [
            ("createLead", "create_lead"),
            ("CreateLead", "create_lead"),
            ("lead.create", "lead_create"),
            ("Lead-Create-All", "lead_create_all"),
            ("find_opportunities", "find_opportunities"),
            ("getHTTPStatus", "get_httpstatus"),
            ("__x__", "x"),
        ] {
            assert_eq!(normalize(raw), norm, "{raw}");
        }
    }

    #[test]
    fn write_verbs_are_blocked_in_every_spelling() {
        let b = Blocklist::default();
        for name in [
            "create_lead", "createLead", "UpdateOpportunity", "delete_task", "send_email", "refund_payment",
            "bulk_delete_leads", "batch_update", "apply_voice_agent_update", "enrich_field",
            "schedule_voice_agent_call", "lead_delete", "invoice_void", "email_send", "merge_leads",
            "lead.remove", "set_status", "archive_lead",
        ] {
            assert!(b.check_name(name).is_some(), "{name} should be blocked");
        }
    }

    #[test]
    fn read_tools_are_not_blocked() {
        let b = Blocklist::default();
        for name in [
            "find_opportunities", "fetch_lead", "lead_search", "activity_search", "aggregation", "org_info",
            "close_product_knowledge_search", "propose_voice_agent_update", "get_fields", "list_roles",
            "paginate_search", "search", "fetch", "customized_builtin_labels", "find_deleted_records_count",
        ] {
            assert!(b.check_name(name).is_none(), "{name} should be allowed: {:?}", b.check_name(name));
        }
    }

    #[test]
    fn every_write_tool_of_close_s_catalog_is_blocked_and_no_read_tool_is() {
        let catalog: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/close-standin/data/close-mcp-tools.json")).unwrap();
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
