//! Which tools reach the engine: a connector's listing filtered by the write-tool blocklist
//! ([`crate::policy::blocklist`]), invalid names and schemas, and duplicates. Pure: the service stores
//! the result and answers the callable check from it.
//!
//! ```
//! use claribi_host::policy::blocklist::Blocklist;
//! use claribi_host::policy::tools::{filter, ListedTool};
//! let listed = vec![ListedTool::named("find_leads"), ListedTool::named("delete_lead")];
//! let listing = filter(&Blocklist::default(), listed);
//! assert_eq!(listing.tools.len(), 1);
//! assert_eq!(listing.blocked[0].name, "delete_lead");
//! ```

use super::blocklist::Blocklist;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Tool annotations as the engine sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    /// The tool does not modify anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    /// The tool may destroy data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    /// Repeating the call has no further effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    /// The tool reaches an open world.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

/// A tool as a connector listed it (schemas still text).
#[derive(Debug, Clone, PartialEq)]
pub struct ListedTool {
    /// Name.
    pub name: String,
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Input schema, JSON text.
    pub input_schema: String,
    /// Output schema, JSON text.
    pub output_schema: Option<String>,
    /// Hints.
    pub annotations: Annotations,
}

impl ListedTool {
    /// A tool with only a name and an empty object schema (tests, docs).
    pub fn named(name: &str) -> ListedTool {
        ListedTool {
            name: name.into(),
            title: None,
            description: None,
            input_schema: r#"{"type":"object"}"#.into(),
            output_schema: None,
            annotations: Annotations::default(),
        }
    }
}

/// A tool that passed the blocklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolInfo {
    /// Tool name.
    pub name: String,
    /// Human title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description for a model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub input_schema: Value,
    /// JSON Schema of the structured result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Behaviour hints, as the vendor gave them.
    pub annotations: Annotations,
}

/// A tool the host withheld, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedTool {
    /// Tool name (as the connector gave it, made printable).
    pub name: String,
    /// Rule id.
    pub rule: String,
    /// One sentence.
    pub reason: String,
}

impl BlockedTool {
    /// Why `tool` may not be called, if one of `withheld` keeps it back (a tool listed twice is
    /// withheld only as the duplicate: its first listing stands).
    pub fn reason_for(withheld: &[BlockedTool], tool: &str) -> Option<String> {
        withheld.iter().find(|b| b.name == tool && b.rule != "duplicate").map(|b| format!("{} (rule `{}`)", b.reason, b.rule))
    }
}

/// The result of listing a connection's tools.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ToolListing {
    /// Tools the engine may see and call.
    pub tools: Vec<ToolInfo>,
    /// Tools withheld by the blocklist.
    pub blocked: Vec<BlockedTool>,
    /// How long the server said the listing may be reused, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// The server's `cacheScope` (`public` or `private`), when it said. The host keeps listings per
    /// connection (never shared between credentials), so either scope allows the host's cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_scope: Option<String>,
    /// The blocklist's [`fingerprint`](crate::policy::blocklist::Blocklist::fingerprint) the listing
    /// was filtered under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtered_by: Option<String>,
}

/// How long a listing is reused when its server gave no `ttlMs` (MCP 2025 servers).
pub const DEFAULT_LISTING_TTL_MS: u64 = 60_000;
/// The longest a listing is reused, whatever the server says.
pub const MAX_LISTING_TTL_MS: u64 = 60 * 60 * 1000;

impl ToolListing {
    /// How long this listing may be reused: the server's `ttlMs` (capped at an hour), or a minute
    /// when it gave none. Zero: not at all.
    pub fn reuse_ms(&self) -> u64 {
        self.ttl_ms.unwrap_or(DEFAULT_LISTING_TTL_MS).min(MAX_LISTING_TTL_MS)
    }

    /// Whether a listing made `age_secs` ago (whole seconds, rounded down by the clock) may still be
    /// reused. The age is rounded up, so a listing is never used beyond its TTL.
    pub fn fresh(&self, age_secs: i64) -> bool {
        age_secs >= 0 && (age_secs as u64 + 1).saturating_mul(1000) <= self.reuse_ms()
    }

    /// Whether this listing, made at `listed_at`, may answer for the connection `now` (Unix seconds):
    /// filtered under the blocklist whose fingerprint is `fingerprint`, and [`Self::fresh`].
    pub fn reusable(&self, fingerprint: &str, listed_at: i64, now: i64) -> bool {
        self.filtered_by.as_deref() == Some(fingerprint) && self.fresh(now - listed_at)
    }
}

/// Whether a tool name is one the host serves: 1 to 128 characters of `A-Z a-z 0-9 _ . - /`.
pub fn valid_tool_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
}

/// Apply the blocklist (names and annotations), name and schema rules, and duplicates to a listing.
pub fn filter(blocklist: &Blocklist, tools: Vec<ListedTool>) -> ToolListing {
    let mut listing = ToolListing { tools: vec![], blocked: vec![], ttl_ms: None, cache_scope: None, filtered_by: Some(blocklist.fingerprint()) };
    let mut seen = std::collections::HashSet::new();
    for t in tools {
        let printable = crate::text::one_line(&t.name);
        if !valid_tool_name(&t.name) {
            listing.blocked.push(BlockedTool {
                name: printable,
                rule: "invalid-name".into(),
                reason: "tool name is not 1-128 characters of A-Z a-z 0-9 _ . - /".into(),
            });
            continue;
        }
        if !seen.insert(t.name.clone()) {
            listing.blocked.push(BlockedTool { name: printable, rule: "duplicate".into(), reason: "tool listed twice".into() });
            continue;
        }
        if let Some(r) = blocklist.check(&t.name, t.annotations.read_only_hint, t.annotations.destructive_hint) {
            listing.blocked.push(BlockedTool { name: printable, rule: r.rule, reason: r.detail });
            continue;
        }
        let schema = match serde_json::from_str::<Value>(&t.input_schema) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                listing.blocked.push(BlockedTool {
                    name: printable,
                    rule: "invalid-schema".into(),
                    reason: "its input schema is not a JSON object".into(),
                });
                continue;
            }
        };
        listing.tools.push(ToolInfo {
            name: t.name,
            title: t.title,
            description: t.description,
            input_schema: schema,
            output_schema: t.output_schema.and_then(|s| serde_json::from_str(&s).ok()),
            annotations: t.annotations,
        });
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_is_reused_only_within_the_servers_ttl_and_never_beyond_an_hour() {
        let with = |ttl_ms| ToolListing { ttl_ms, ..ToolListing::default() };
        // (ttl_ms, age in whole seconds, fresh?)
        let table = [
            (Some(0), 0, false),
            (Some(999), 0, false),
            (Some(1000), 0, true),
            (Some(1000), 1, false),
            (Some(300_000), 299, true),
            (Some(300_000), 300, false),
            (None, 58, true),
            (None, 59, true),
            (None, 60, false),
            (Some(u64::MAX), 3599, true),
            (Some(u64::MAX), 3600, false),
            (Some(60_000), -5, false),
        ];
        for (ttl, age, fresh) in table {
            assert_eq!(with(ttl).fresh(age), fresh, "ttl {ttl:?}, age {age}s");
        }
    }

    fn with(name: &str, f: impl FnOnce(&mut ListedTool)) -> ListedTool {
        let mut t = ListedTool::named(name);
        f(&mut t);
        t
    }

    #[test]
    fn a_listing_is_filtered_by_name_annotation_schema_and_duplicates() {
        let listed = vec![
            ListedTool::named("find_leads"),
            ListedTool::named("delete_lead"),
            with("fetch_note", |t| t.annotations.destructive_hint = Some(true)),
            with("fetch_task", |t| t.annotations.read_only_hint = Some(false)),
            with("fetch_lead", |t| t.input_schema = "[1]".into()),
            ListedTool::named("bad name"),
            ListedTool::named("find_leads"),
        ];
        let l = filter(&Blocklist::default(), listed);
        assert_eq!(l.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["find_leads"]);
        let rules: Vec<(&str, &str)> = l.blocked.iter().map(|b| (b.name.as_str(), b.rule.as_str())).collect();
        assert_eq!(rules.len(), 6, "{rules:?}");
        assert!(rules.contains(&("fetch_lead", "invalid-schema")));
        assert!(rules.contains(&("bad name", "invalid-name")));
        assert!(rules.contains(&("find_leads", "duplicate")));
        assert_eq!(BlockedTool::reason_for(&l.blocked, "find_leads"), None, "a duplicate keeps its first listing");
        assert!(BlockedTool::reason_for(&l.blocked, "delete_lead").is_some());
    }

    #[test]
    fn tool_names_are_bounded_and_printable() {
        for ok in ["find_leads", "a.b-c/d", &"x".repeat(128)] {
            assert!(valid_tool_name(ok), "{ok}");
        }
        for bad in ["", "a b", "ü", &"x".repeat(129), "a\nb"] {
            assert!(!valid_tool_name(bad), "{bad}");
        }
    }
}
