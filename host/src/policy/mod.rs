//! The operator's capability policy for one connection: which origins its connector may reach, and
//! how much memory, time, bandwidth and how many requests one call may use.
//!
//! Everything here is pure: parsing and matching, no I/O. The send-request hook
//! ([`crate::outbound`]) and the call runner ([`crate::runtime`]) apply it.
//!
//! # Origins
//!
//! A grant is a list of origin patterns, `scheme://host[:port]`, in the syntax Spin uses for
//! `allowed_outbound_hosts`:
//!
//! | pattern                     | allows                                                        |
//! |-----------------------------|---------------------------------------------------------------|
//! | `https://mcp.close.com`     | exactly that host, port 443                                   |
//! | `http://127.0.0.1:8811`     | exactly that address and port (an explicit loopback grant)    |
//! | `https://*.close.com`       | any subdomain of `close.com` (not `close.com` itself), port 443 |
//! | `https://api.example.com:*` | that host on any port                                         |
//! | `*://example.com:8080`      | `http` or `https` on that host and port                       |
//!
//! An empty grant denies everything. A wildcard never grants a loopback, private, link-local or
//! metadata address: those are reachable only through a pattern that names that address literally (or
//! the name `localhost`, for loopback). See [`crate::addresses`].
//!
//! ```
//! use claribi_host::policy::{Grant, Origin};
//! let grant = Grant::parse_list(["https://mcp.close.com", "http://127.0.0.1:8811"]).unwrap();
//! assert!(grant.allows(&Origin::parse("https://mcp.close.com/mcp").unwrap()));
//! assert!(!grant.allows(&Origin::parse("https://evil.example/mcp").unwrap()));
//! ```
//!
//! # Policy files
//!
//! A policy file is TOML; every key is optional and defaults as [`Limits::default`] says:
//!
//! ```toml
//! allow_origins = ["https://mcp.close.com", "https://api.close.com"]
//! memory_mib = 64
//! call_timeout_ms = 30000
//! max_response_bytes = 16777216
//! max_requests_per_call = 32
//! ```

use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// A concrete origin a request goes to: scheme, host and port (the default port filled in).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host name, or an IP address (IPv6 without brackets).
    pub host: String,
    /// The port, with the scheme's default filled in.
    pub port: u16,
}

impl Origin {
    /// Parse the origin of an absolute `http`/`https` URL (path and query are ignored).
    pub fn parse(url: &str) -> Result<Origin, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a valid URL ({e})"))?;
        Self::from_url(&parsed)
    }

    /// The origin of a parsed URL.
    pub fn from_url(url: &url::Url) -> Result<Origin, String> {
        let scheme = url.scheme().to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("`{url}` uses scheme `{scheme}`; only http and https are supported"));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(format!("`{url}` has no host")),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("`{url}` has no port"))?;
        Ok(Origin { scheme, host, port })
    }

    /// The host as an IP address, when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// Whether the port is the scheme's default.
    fn default_port(&self) -> bool {
        (self.scheme == "https" && self.port == 443) || (self.scheme == "http" && self.port == 80)
    }
}

impl fmt::Display for Origin {
    /// `scheme://host[:port]`, the form a grant pattern takes (default ports omitted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.default_port() {
            write!(f, "{}://{}", self.scheme, host)
        } else {
            write!(f, "{}://{}:{}", self.scheme, host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemePattern {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `*`: any host name (never a special address, see module docs).
    Any,
    /// `*.example.com`: any strict subdomain.
    Subdomains(String),
    /// `example.com`.
    Name(String),
    /// `127.0.0.1`, `[::1]`.
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// The scheme's default port.
    Default,
    Exact(u16),
}

/// One entry of a grant, e.g. `https://*.close.com` (see the module docs for the syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
    text: String,
}

impl OriginPattern {
    /// Parse one pattern. The error says what is wrong and what a valid pattern looks like.
    pub fn parse(text: &str) -> Result<OriginPattern, String> {
        let hint = "write it as scheme://host[:port], e.g. `https://mcp.close.com` or `http://127.0.0.1:8811`";
        let trimmed = text.trim();
        let (scheme, rest) = trimmed
            .split_once("://")
            .ok_or_else(|| format!("origin `{trimmed}` has no scheme; {hint}"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "*" => SchemePattern::Any,
            s @ ("http" | "https") => SchemePattern::Exact(s.to_string()),
            other => return Err(format!("origin `{trimmed}` uses scheme `{other}`; only http, https or * are allowed")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('#') || rest.contains('@') {
            return Err(format!("origin `{trimmed}` has a path, query or user part; {hint}"));
        }
        // Split host and port, minding bracketed IPv6 literals.
        let (host, port) = if let Some(after) = rest.strip_prefix('[') {
            let (ip, tail) = after
                .split_once(']')
                .ok_or_else(|| format!("origin `{trimmed}` has an unclosed `[`; {hint}"))?;
            let port = match tail {
                "" => None,
                t => Some(t.strip_prefix(':').ok_or_else(|| format!("origin `{trimmed}` is malformed after `]`; {hint}"))?),
            };
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("origin `{trimmed}` has an invalid IPv6 address; {hint}"))?;
            (HostPattern::Ip(ip), port)
        } else {
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            let host = host.to_ascii_lowercase();
            let pattern = if host == "*" {
                HostPattern::Any
            } else if let Some(suffix) = host.strip_prefix("*.") {
                validate_dns_name(suffix).map_err(|e| format!("origin `{trimmed}`: {e}; {hint}"))?;
                HostPattern::Subdomains(suffix.to_string())
            } else if let Ok(ip) = host.parse::<IpAddr>() {
                HostPattern::Ip(ip)
            } else {
                validate_dns_name(&host).map_err(|e| format!("origin `{trimmed}`: {e}; {hint}"))?;
                HostPattern::Name(host)
            };
            (pattern, port)
        };
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Exact(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("origin `{trimmed}` has an invalid port `{p}`; use 1-65535 or *"))?,
            ),
        };
        if port == PortPattern::Default && scheme == SchemePattern::Any {
            return Err(format!(
                "origin `{trimmed}` has scheme * but no port; give a port (e.g. `*://host:8080` or `*://host:*`)"
            ));
        }
        Ok(OriginPattern { scheme, host, port, text: trimmed.to_string() })
    }

    /// Whether this pattern allows the origin (special addresses aside, see [`Grant::allows`]).
    pub fn matches(&self, origin: &Origin) -> bool {
        let scheme_ok = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Exact(s) => *s == origin.scheme,
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Default => origin.default_port(),
            PortPattern::Exact(p) => p == origin.port,
        };
        let host_ok = match &self.host {
            HostPattern::Any => origin.ip().is_none(),
            HostPattern::Subdomains(suffix) => {
                origin.ip().is_none()
                    && origin.host.len() > suffix.len() + 1
                    && origin.host.ends_with(suffix.as_str())
                    && origin.host.as_bytes()[origin.host.len() - suffix.len() - 1] == b'.'
            }
            HostPattern::Name(n) => *n == origin.host,
            HostPattern::Ip(ip) => origin.ip() == Some(*ip),
        };
        scheme_ok && port_ok && host_ok
    }

    /// Whether this pattern names `ip` literally (or `localhost` for a loopback `ip`) on this origin's
    /// scheme and port: the only way a special address becomes reachable.
    pub fn names_address(&self, origin: &Origin, ip: IpAddr) -> bool {
        let literal = match &self.host {
            HostPattern::Ip(granted) => crate::addresses::canonical(*granted) == crate::addresses::canonical(ip),
            HostPattern::Name(n) => n == "localhost" && crate::addresses::canonical(ip).is_loopback(),
            _ => false,
        };
        literal && self.matches_scheme_and_port(origin)
    }

    fn matches_scheme_and_port(&self, origin: &Origin) -> bool {
        let probe = Origin { host: "probe.invalid".into(), ..origin.clone() };
        let any_host = OriginPattern { host: HostPattern::Any, ..self.clone() };
        any_host.matches(&probe)
    }

    /// The pattern as the operator wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn validate_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("the host name is empty or too long".into());
    }
    for label in name.split('.') {
        if label.is_empty()
            || label.len() > 63
            || !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!("`{name}` is not a valid host name (only `*.` may start a wildcard)"));
        }
    }
    Ok(())
}

/// The set of origins a connection may reach. Empty denies everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    patterns: Vec<OriginPattern>,
}

impl Grant {
    /// Parse a list of patterns; the first bad one is the error.
    pub fn parse_list<I, S>(items: I) -> Result<Grant, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns = Vec::new();
        for item in items {
            let p = OriginPattern::parse(item.as_ref())?;
            if !patterns.contains(&p) {
                patterns.push(p);
            }
        }
        Ok(Grant { patterns })
    }

    /// Whether some pattern allows this origin by name. (Addresses are checked after DNS by
    /// [`Grant::allows_address`].)
    pub fn allows(&self, origin: &Origin) -> bool {
        self.patterns.iter().any(|p| p.matches(origin))
    }

    /// Whether a resolved address may be connected to for this origin: ordinary public addresses
    /// always (the origin was allowed by name already), special ones only when named literally.
    pub fn allows_address(&self, origin: &Origin, ip: IpAddr) -> bool {
        if !crate::addresses::is_special(ip) {
            return true;
        }
        self.patterns.iter().any(|p| p.names_address(origin, ip))
    }

    /// The patterns, in the order given.
    pub fn patterns(&self) -> &[OriginPattern] {
        &self.patterns
    }

    /// The patterns as text (for storage and display).
    pub fn to_strings(&self) -> Vec<String> {
        self.patterns.iter().map(|p| p.text.clone()).collect()
    }

    /// Whether the grant is empty (denies everything).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Resource limits for one call into a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory a connector instance may grow to, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time one call may take, all HTTP requests included.
    pub call_timeout: Duration,
    /// Bytes of response bodies one call may receive, counted while streaming.
    pub max_response_bytes: u64,
    /// Outgoing HTTP requests one call may make.
    pub max_requests_per_call: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 * 1024 * 1024,
            call_timeout: Duration::from_secs(30),
            max_response_bytes: 16 * 1024 * 1024,
            max_requests_per_call: 32,
        }
    }
}

/// Everything the operator granted one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Reachable origins.
    pub grant: Grant,
    /// Resource limits per call.
    pub limits: Limits,
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
    allow_origins: Option<Vec<String>>,
    memory_mib: Option<u64>,
    call_timeout_ms: Option<u64>,
    max_response_bytes: Option<u64>,
    max_requests_per_call: Option<u32>,
}

impl Policy {
    /// Parse a TOML policy file (see the module docs). Errors name the line and the fix.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let line_of = |offset: usize| Some(text[..offset.min(text.len())].matches('\n').count() + 1);
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let line = e.span().and_then(|s| line_of(s.start));
            let msg = e.message().trim().replace('\n', " ");
            let fix = if msg.contains("unknown field") {
                "; known keys: allow_origins, memory_mib, call_timeout_ms, max_response_bytes, max_requests_per_call"
            } else {
                ""
            };
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
        Ok(policy)
    }

    /// The policy rendered as a policy file (for `claribi-host policy NAME`).
    pub fn to_toml(&self) -> String {
        let origins: Vec<String> = self.grant.to_strings().iter().map(|o| format!("{o:?}")).collect();
        format!(
            "allow_origins = [{}]\nmemory_mib = {}\ncall_timeout_ms = {}\nmax_response_bytes = {}\nmax_requests_per_call = {}\n",
            origins.join(", "),
            self.limits.memory_bytes / (1024 * 1024),
            self.limits.call_timeout.as_millis(),
            self.limits.max_response_bytes,
            self.limits.max_requests_per_call,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> Origin {
        Origin::parse(s).unwrap()
    }

    #[test]
    fn patterns_allow_exactly_what_the_table_says() {
        let cases: &[(&str, &str, bool)] = &[
            ("https://mcp.close.com", "https://mcp.close.com/mcp", true),
            ("https://mcp.close.com", "https://mcp.close.com:443/x", true),
            ("https://mcp.close.com", "http://mcp.close.com/mcp", false),
            ("https://mcp.close.com", "https://mcp.close.com:8443/mcp", false),
            ("https://mcp.close.com", "https://api.close.com/", false),
            ("https://mcp.close.com", "https://mcp.close.com.evil.net/", false),
            ("https://*.close.com", "https://api.close.com/", true),
            ("https://*.close.com", "https://a.b.close.com/", true),
            ("https://*.close.com", "https://close.com/", false),
            ("https://*.close.com", "https://evilclose.com/", false),
            ("https://api.close.com:*", "https://api.close.com:9999/", true),
            ("*://example.com:8080", "http://example.com:8080/", true),
            ("*://example.com:8080", "https://example.com:8080/", true),
            ("*://example.com:8080", "https://example.com/", false),
            ("http://127.0.0.1:8811", "http://127.0.0.1:8811/mcp", true),
            ("http://127.0.0.1:8811", "http://127.0.0.1:8812/mcp", false),
            ("http://[::1]:8811", "http://[::1]:8811/mcp", true),
            ("https://*", "https://anything.example/", true),
            ("https://*", "https://10.0.0.1/", false),
            ("https://*.close.com", "https://127.0.0.1/", false),
            ("HTTPS://MCP.Close.com/", "https://mcp.close.com/", true),
        ];
        for (pattern, url, expected) in cases {
            let p = OriginPattern::parse(pattern).unwrap();
            assert_eq!(p.matches(&origin(url)), *expected, "{pattern} vs {url}");
        }
    }

    #[test]
    fn malformed_patterns_are_rejected_with_a_hint() {
        for bad in [
            "mcp.close.com",
            "ftp://x.com",
            "https://x.com/path",
            "https://user@x.com",
            "https://x.com:0",
            "https://x.com:99999",
            "https://exa*mple.com",
            "https://*example.com",
            "*://example.com",
            "https://[::1",
            "https://",
        ] {
            let err = OriginPattern::parse(bad).unwrap_err();
            assert!(!err.contains('\n'), "one line: {err}");
            assert!(err.contains(bad.trim()) || err.contains("scheme"), "{err}");
        }
    }

    #[test]
    fn an_empty_grant_denies_everything() {
        let g = Grant::default();
        assert!(!g.allows(&origin("https://mcp.close.com/")));
        assert!(!g.allows(&origin("http://127.0.0.1:1/")));
    }

    #[test]
    fn special_addresses_need_a_literal_grant() {
        let wildcard = Grant::parse_list(["https://*", "http://*:*"]).unwrap();
        let o = origin("http://internal.example:8080/");
        assert!(wildcard.allows(&o));
        assert!(!wildcard.allows_address(&o, "127.0.0.1".parse().unwrap()));
        assert!(!wildcard.allows_address(&o, "10.1.2.3".parse().unwrap()));
        assert!(!wildcard.allows_address(&o, "169.254.169.254".parse().unwrap()));
        assert!(!wildcard.allows_address(&o, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(wildcard.allows_address(&o, "93.184.216.34".parse().unwrap()));

        let literal = Grant::parse_list(["http://127.0.0.1:8811"]).unwrap();
        let lo = origin("http://127.0.0.1:8811/");
        assert!(literal.allows_address(&lo, "127.0.0.1".parse().unwrap()));
        assert!(literal.allows_address(&lo, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(!literal.allows_address(&origin("http://127.0.0.1:9999/"), "127.0.0.1".parse().unwrap()));

        let localhost = Grant::parse_list(["http://localhost:8811"]).unwrap();
        let lh = origin("http://localhost:8811/");
        assert!(localhost.allows_address(&lh, "127.0.0.1".parse().unwrap()));
        assert!(localhost.allows_address(&lh, "::1".parse().unwrap()));
        assert!(!localhost.allows_address(&lh, "10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn origins_display_as_grant_patterns() {
        assert_eq!(origin("https://mcp.close.com/mcp").to_string(), "https://mcp.close.com");
        assert_eq!(origin("http://127.0.0.1:8811/mcp").to_string(), "http://127.0.0.1:8811");
        assert_eq!(origin("http://[::1]:80/").to_string(), "http://[::1]");
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
