//! Policy files: the operator's grant and limits for one connection, as TOML.

use super::{Grant, Limits, Method, OriginPattern, Paths, Reason, Rule};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// Everything the operator granted one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Whether the connection's own URLs are granted: its MCP endpoint (exactly that URL) and the
    /// OAuth URLs the endpoint's own metadata names (policy key `connection_urls`, default true).
    pub connection_urls: bool,
    /// What the operator granted beyond them (`allow_origins`: every path of an origin; `[[allow]]`:
    /// path prefixes and methods). An explicit widening, printed as such.
    pub grant: Grant,
    /// Resource limits per call.
    pub limits: Limits,
    /// How changed and new tool definitions are reviewed (table `[tools]`).
    pub tools: super::pinning::Rules,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { connection_urls: true, grant: Grant::default(), limits: Limits::default(), tools: Default::default() }
    }
}

/// A policy file error, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based line number, when known.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    connection_urls: Option<bool>,
    allow_origins: Option<Vec<String>>,
    allow: Option<Vec<AllowEntry>>,
    memory_mib: Option<u64>,
    call_timeout_ms: Option<u64>,
    max_response_bytes: Option<u64>,
    max_requests_per_call: Option<u32>,
    host_memory_mib: Option<u64>,
    tools: Option<ToolsTable>,
}

/// The `[tools]` table: reviews of tool definitions.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsTable {
    auto_approve_new: Option<bool>,
    max_description_chars: Option<u64>,
    review_narrowing: Option<bool>,
}

/// One `[[allow]]` table: an origin, the path prefixes under it, the methods.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowEntry {
    origin: String,
    paths: Vec<String>,
    methods: Option<Vec<String>>,
}

/// The known keys, for the error that names an unknown one.
const KNOWN_KEYS: &str =
    "connection_urls, allow_origins, [[allow]] (origin, paths, methods), memory_mib, host_memory_mib, call_timeout_ms, max_response_bytes, max_requests_per_call, [tools] (auto_approve_new, max_description_chars, review_narrowing)";

impl Policy {
    /// A policy that grants nothing at all, not even the connection's own URLs.
    pub fn deny_all() -> Policy {
        Policy { connection_urls: false, ..Policy::default() }
    }

    /// Parse a TOML policy file (see the module docs). Errors name the line and the fix.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let line_of = |offset: usize| Some(text[..offset.min(text.len())].matches('\n').count() + 1);
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let line = e.span().and_then(|s| line_of(s.start));
            let msg = e.message().trim().replace('\n', " ");
            let fix = if msg.contains("unknown field") { format!("; known keys: {KNOWN_KEYS}") } else { String::new() };
            PolicyError { line, message: format!("{msg}{fix}") }
        })?;
        let find_line = |needle: &str| text.find(needle).and_then(line_of);
        let mut policy = Policy::default();
        if let Some(origins) = &file.allow_origins {
            policy.grant = Grant::parse_list(origins).map_err(|message| {
                let bad = origins.iter().find(|o| OriginPattern::parse(o).is_err()).cloned().unwrap_or_default();
                PolicyError { line: find_line(&bad).or_else(|| find_line("allow_origins")), message }
            })?;
        }
        if let Some(c) = file.connection_urls {
            policy.connection_urls = c;
        }
        for entry in file.allow.iter().flatten() {
            let at = find_line(&entry.origin).or_else(|| find_line("[[allow]]"));
            let fail = |message: String| PolicyError { line: at, message };
            let origin = OriginPattern::parse(&entry.origin).map_err(fail)?;
            if entry.paths.is_empty() {
                return Err(fail(format!(
                    "[[allow]] {} names no path; give path prefixes such as paths = [\"/api/v1/reports/\"], or use allow_origins for every path",
                    entry.origin
                )));
            }
            for p in &entry.paths {
                if !p.starts_with('/') || p.contains(['?', '#']) {
                    return Err(fail(format!("[[allow]] path `{p}` must start with `/` and hold no query; e.g. \"/api/v1/\"")));
                }
                super::grant::check_path(p).map_err(|e| fail(format!("[[allow]] {e}")))?;
            }
            let methods = match &entry.methods {
                None => None,
                Some(names) => {
                    let mut out = Vec::new();
                    for n in names {
                        out.push(Method::parse(n).ok_or_else(|| {
                            fail(format!("[[allow]] method `{n}` is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"))
                        })?);
                    }
                    Some(out)
                }
            };
            policy.grant.push(Rule { origin, paths: Paths::Prefixes(entry.paths.clone()), methods, reason: Reason::Operator });
        }
        let bounded = |key: &str, value: u64, min: u64, max: u64| -> Result<u64, PolicyError> {
            if value < min || value > max {
                Err(PolicyError {
                    line: find_line(key),
                    message: format!("{key} = {value} is out of range; use a value from {min} to {max}"),
                })
            } else {
                Ok(value)
            }
        };
        if let Some(m) = file.memory_mib {
            policy.limits.memory_bytes = bounded("memory_mib", m, 4, 4096)? * 1024 * 1024;
        }
        if let Some(m) = file.host_memory_mib {
            policy.limits.host_memory_bytes = bounded("host_memory_mib", m, 1, 1024)? * 1024 * 1024;
        }
        if let Some(t) = file.call_timeout_ms {
            policy.limits.call_timeout = Duration::from_millis(bounded("call_timeout_ms", t, 100, 600_000)?);
        }
        if let Some(b) = file.max_response_bytes {
            policy.limits.max_response_bytes = bounded("max_response_bytes", b, 1024, 1 << 32)?;
        }
        if let Some(r) = file.max_requests_per_call {
            policy.limits.max_requests_per_call =
                bounded("max_requests_per_call", r as u64, 1, 10_000)? as u32;
        }
        if let Some(t) = &file.tools {
            if let Some(a) = t.auto_approve_new {
                policy.tools.auto_approve_new = a;
            }
            if let Some(m) = t.max_description_chars {
                policy.tools.max_description_chars = bounded("max_description_chars", m, 0, 1_000_000)? as usize;
            }
            if let Some(n) = t.review_narrowing {
                policy.tools.review_narrowing = n;
            }
        }
        Ok(policy)
    }

    /// The policy rendered as a policy file (for `claribi-host policy NAME`), saying what is an
    /// explicit widening.
    pub fn to_toml(&self) -> String {
        let quoted = |v: &[String]| v.iter().map(|o| format!("{o:?}")).collect::<Vec<_>>().join(", ");
        let mut out = String::new();
        out.push_str("# The connection's own URLs: its MCP endpoint (exactly that URL) and the OAuth URLs the\n");
        out.push_str("# endpoint's own metadata names. false grants not even those.\n");
        out.push_str(&format!("connection_urls = {}\n", self.connection_urls));
        let origins = self.grant.to_strings();
        let paths: Vec<&Rule> =
            self.grant.rules().iter().filter(|r| r.reason == Reason::Operator && matches!(r.paths, Paths::Prefixes(_))).collect();
        if !origins.is_empty() || !paths.is_empty() {
            out.push_str("# Explicit widenings by the operator: every path of these origins (and the [[allow]] paths below).\n");
        }
        out.push_str(&format!("allow_origins = [{}]\n", quoted(&origins)));
        out.push_str(&format!(
            "memory_mib = {}\nhost_memory_mib = {}\ncall_timeout_ms = {}\nmax_response_bytes = {}\nmax_requests_per_call = {}\n",
            self.limits.memory_bytes / (1024 * 1024),
            self.limits.host_memory_bytes / (1024 * 1024),
            self.limits.call_timeout.as_millis(),
            self.limits.max_response_bytes,
            self.limits.max_requests_per_call,
        ));
        out.push_str("\n# Reviews of tool definitions: a changed or new tool waits for `claribi-host tools NAME --approve`.\n");
        out.push_str(&format!(
            "[tools]\nauto_approve_new = {}\nmax_description_chars = {}\nreview_narrowing = {}\n",
            self.tools.auto_approve_new, self.tools.max_description_chars, self.tools.review_narrowing
        ));
        for r in paths {
            let Paths::Prefixes(p) = &r.paths else { continue };
            out.push_str(&format!("\n[[allow]]\norigin = {:?}\npaths = [{}]\n", r.origin.as_str(), quoted(p)));
            if let Some(m) = &r.methods {
                let names: Vec<String> = m.iter().map(|m| m.as_str().to_string()).collect();
                out.push_str(&format!("methods = [{}]\n", quoted(&names)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tools_table_sets_the_review_rules_and_survives_a_round_trip() {
        let p = Policy::parse("[tools]\nauto_approve_new = true\nmax_description_chars = 100\nreview_narrowing = false\n").unwrap();
        assert!(p.tools.auto_approve_new && !p.tools.review_narrowing);
        assert_eq!(p.tools.max_description_chars, 100);
        assert_eq!(Policy::parse(&p.to_toml()).unwrap(), p);
        assert_eq!(Policy::parse("").unwrap().tools, crate::policy::pinning::Rules::default());
        let err = Policy::parse("[tools]\nauto_approve = true\n").unwrap_err();
        assert!(err.to_string().contains("auto_approve_new"), "{err}");
        let with_allow = Policy::parse("[tools]\nauto_approve_new = true\n\n[[allow]]\norigin = \"https://api.close.com\"\npaths = [\"/api/v1/\"]\n").unwrap();
        assert_eq!(Policy::parse(&with_allow.to_toml()).unwrap(), with_allow);
    }

    #[test]
    fn policy_files_parse_with_defaults() {
        let p = Policy::parse("allow_origins = [\"https://mcp.close.com\"]\nmemory_mib = 32\n").unwrap();
        assert_eq!(p.grant.to_strings(), vec!["https://mcp.close.com"]);
        assert_eq!(p.limits.memory_bytes, 32 * 1024 * 1024);
        assert_eq!(p.limits.call_timeout, Limits::default().call_timeout);
        let again = Policy::parse(&p.to_toml()).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn path_grants_parse_print_and_round_trip() {
        let text = "allow_origins = [\"https://a.example\"]\n\n[[allow]]\norigin = \"https://api.close.com\"\npaths = [\"/api/v1/report/\"]\nmethods = [\"get\"]\n";
        let p = Policy::parse(text).unwrap();
        assert!(p.connection_urls);
        let t = super::super::Target::parse("https://api.close.com/api/v1/report/x").unwrap();
        assert!(p.grant.allows(Method::Get, &t));
        assert!(!p.grant.allows(Method::Post, &t));
        let printed = p.to_toml();
        assert!(printed.contains("Explicit widenings by the operator"), "{printed}");
        assert_eq!(Policy::parse(&printed).unwrap(), p);
        assert!(!Policy::parse("connection_urls = false\n").unwrap().connection_urls);
        assert_eq!(Policy::parse(&Policy::deny_all().to_toml()).unwrap(), Policy::deny_all());
    }

    #[test]
    fn bad_path_grants_name_the_line_and_the_fix() {
        for (bad, needle) in [
            ("[[allow]]\norigin = \"https://x.example\"\npaths = []\n", "names no path"),
            ("[[allow]]\norigin = \"https://x.example\"\npaths = [\"api\"]\n", "must start with"),
            ("[[allow]]\norigin = \"https://x.example\"\npaths = [\"/a/../b\"]\n", ".."),
            ("[[allow]]\norigin = \"https://x.example\"\npaths = [\"/a\"]\nmethods = [\"TRACE\"]\n", "TRACE"),
            ("[[allow]]\norigin = \"x.example\"\npaths = [\"/a\"]\n", "scheme"),
        ] {
            let e = Policy::parse(bad).unwrap_err();
            assert!(e.message.contains(needle), "{bad}: {e}");
            assert!(e.line.is_some(), "{bad}: {e}");
        }
    }

    #[test]
    fn policy_errors_name_the_line_and_the_fix() {
        let e = Policy::parse("memory_mib = 32\nallow_origns = []\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("known keys"), "{e}");

        let e = Policy::parse("allow_origins = [\n  \"https://ok.example\",\n  \"mcp.close.com\",\n]\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("scheme://host"), "{e}");

        let e = Policy::parse("call_timeout_ms = 5\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("100"), "{e}");

        let e = Policy::parse("memory_mib = \"lots\"\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
    }
}
