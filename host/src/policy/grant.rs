//! Which origins a connection may reach: origin patterns in the syntax Spin uses for
//! `allowed_outbound_hosts` (see the table in [`crate::policy`]). Pure: parsing and matching, no I/O.

use std::fmt;
use std::net::IpAddr;

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

    /// The pattern naming exactly this origin.
    pub fn literal(origin: &Origin) -> OriginPattern {
        let host = match origin.ip() {
            Some(ip) => HostPattern::Ip(ip),
            None => HostPattern::Name(origin.host.clone()),
        };
        OriginPattern {
            scheme: SchemePattern::Exact(origin.scheme.clone()),
            host,
            port: if origin.default_port() { PortPattern::Default } else { PortPattern::Exact(origin.port) },
            text: origin.to_string(),
        }
    }

    /// Whether this pattern names the address `ip` literally (or `localhost` for a loopback `ip`),
    /// whatever the port: an operator who names `127.0.0.1` lets the connection reach that address.
    pub fn names_host(&self, ip: IpAddr) -> bool {
        match &self.host {
            HostPattern::Ip(granted) => crate::wire::addresses::canonical(*granted) == crate::wire::addresses::canonical(ip),
            HostPattern::Name(n) => n == "localhost" && crate::wire::addresses::canonical(ip).is_loopback(),
            _ => false,
        }
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

/// An HTTP method a grant rule may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl Method {
    /// Every method, in a fixed order.
    pub const ALL: [Method; 7] =
        [Method::Get, Method::Head, Method::Post, Method::Put, Method::Patch, Method::Delete, Method::Options];

    /// Parse a method name (case-insensitive). Other methods (CONNECT, TRACE, extensions) are never granted.
    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// The method's name, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request goes: its origin and its path (without the query). Built only from URLs whose path
/// holds no dot segment and no encoded slash, so that a server normalising `/mcp/../api/v1/lead` cannot
/// be reached through a rule that names `/mcp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Scheme, host and port.
    pub origin: Origin,
    /// The path as sent, e.g. `/mcp` (`/` when empty).
    pub path: String,
}

impl Target {
    /// The target of an absolute `http`/`https` URL. Refuses paths with `.`/`..` segments (also
    /// percent-encoded), encoded slashes or backslashes, which servers may normalise to another path.
    ///
    /// The URL must also read the same to a URL parser (the WHATWG rules browsers and most servers
    /// follow) as it does here: no backslash, blank or control character anywhere (a parser reads `\`
    /// as `/` and drops tabs), no user part (`user@host`: the `Host` header would carry it), and a
    /// path the parser leaves as written.
    pub fn parse(url: &str) -> Result<Target, String> {
        if url.bytes().any(|b| b == b'\\' || b == b' ' || b.is_ascii_control()) {
            return Err(format!("`{}` holds a backslash, a blank or a control character, which a parser reads as another host or path", url.escape_debug()));
        }
        let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a valid URL ({e})"))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!("`{url}` names a user before its host (user@host); give the host alone"));
        }
        let origin = Origin::from_url(&parsed)?;
        // `url::Url` normalises dot segments away; read the path as written instead.
        let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let path_start = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
        let rest = &after_scheme[path_start..];
        let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
        let path = if rest[..path_end].is_empty() { "/".to_string() } else { rest[..path_end].to_string() };
        check_path(&path)?;
        if parsed.path() != path {
            return Err(format!("the path `{path}` reads as `{}` to a URL parser; write it as that", parsed.path()));
        }
        Ok(Target { origin, path })
    }

    /// `scheme://host[:port]/path`.
    pub fn url(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin, self.path)
    }
}

/// Refuse a path a server could read as another path (see [`Target::parse`]).
pub(super) fn check_path(path: &str) -> Result<(), String> {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || path.contains('\\') {
        return Err(format!("the path `{path}` holds an encoded slash or a backslash"));
    }
    for segment in lower.split('/') {
        let decoded = segment.replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Err(format!("the path `{path}` holds a `.` or `..` segment"));
        }
    }
    Ok(())
}

/// Which paths of an origin a rule covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paths {
    /// Every path (an operator's `allow_origins` entry).
    Any,
    /// Paths starting with one of these prefixes (an operator's `[[allow]]` entry), e.g. `/api/v1/`.
    Prefixes(Vec<String>),
    /// Exactly this path (the endpoint, an OAuth URL).
    Exact(String),
}

impl Paths {
    fn matches(&self, path: &str) -> bool {
        match self {
            Paths::Any => true,
            Paths::Prefixes(prefixes) => prefixes.iter().any(|p| path.starts_with(p.as_str())),
            Paths::Exact(p) => p == path,
        }
    }
}

/// Why a rule is in a connection's grant (shown by `policy`, `connect` and `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The operator named it (`--allow-origin`, the policy file): an explicit widening.
    Operator,
    /// The connection's MCP endpoint.
    Endpoint,
    /// An OAuth URL the endpoint's own metadata led to (its purpose, e.g. `token endpoint`).
    OAuth(&'static str),
}

impl Reason {
    /// Whether the operator named this rule's host (the endpoint or an explicit grant): only then may
    /// a special address (loopback, private, …) be reached through it.
    pub fn operator_named(&self) -> bool {
        matches!(self, Reason::Operator | Reason::Endpoint)
    }
}

/// One entry of a grant: an origin pattern, the paths it covers, the methods it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Scheme, host and port.
    pub origin: OriginPattern,
    /// Which paths.
    pub paths: Paths,
    /// Which methods (`None`: any of [`Method::ALL`]).
    pub methods: Option<Vec<Method>>,
    /// Why it is granted.
    pub reason: Reason,
}

impl Rule {
    /// An operator's whole-origin rule (`--allow-origin`, `allow_origins`).
    pub fn origin(pattern: OriginPattern) -> Rule {
        Rule { origin: pattern, paths: Paths::Any, methods: None, reason: Reason::Operator }
    }

    /// Exactly one URL (scheme, host, port, path) with these methods.
    pub fn exact(target: &Target, methods: &[Method], reason: Reason) -> Rule {
        let pattern = OriginPattern::literal(&target.origin);
        Rule { origin: pattern, paths: Paths::Exact(target.path.clone()), methods: Some(methods.to_vec()), reason }
    }

    /// Whether the rule allows `method` to `target` (special addresses aside, see [`Grant::allows_address`]).
    pub fn allows(&self, method: Method, target: &Target) -> bool {
        self.origin.matches(&target.origin)
            && self.paths.matches(&target.path)
            && self.methods.as_ref().is_none_or(|m| m.contains(&method))
    }

    /// The rule as one line, e.g. `POST https://api.close.com/oauth2/token/ (token endpoint)`.
    pub fn describe(&self) -> String {
        let methods = match &self.methods {
            None => "any method".to_string(),
            Some(m) => m.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
        };
        let what = match &self.paths {
            Paths::Any => format!("{} (every path)", self.origin),
            Paths::Prefixes(p) => format!("{} paths {}", self.origin, p.join(" ")),
            Paths::Exact(p) => format!("{}{}", self.origin.as_str().trim_end_matches('/'), p),
        };
        let why = match &self.reason {
            Reason::Operator => "granted by the operator".to_string(),
            Reason::Endpoint => "the MCP endpoint".to_string(),
            Reason::OAuth(purpose) => format!("{purpose}, named by the endpoint's metadata"),
        };
        format!("{methods} {what} ({why})")
    }
}

/// The rules a connection may reach. Empty denies everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    rules: Vec<Rule>,
}

impl Grant {
    /// A grant of whole origins (an operator's list); the first bad pattern is the error.
    pub fn parse_list<I, S>(items: I) -> Result<Grant, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut grant = Grant::default();
        for item in items {
            grant.push(Rule::origin(OriginPattern::parse(item.as_ref())?));
        }
        Ok(grant)
    }

    /// Add a rule (an identical one is kept once).
    pub fn push(&mut self, rule: Rule) {
        if !self.rules.contains(&rule) {
            self.rules.push(rule);
        }
    }

    /// This grant followed by `other`'s rules.
    pub fn with(mut self, other: &Grant) -> Grant {
        for r in &other.rules {
            self.push(r.clone());
        }
        self
    }

    /// The first rule that allows `method` to `target`, if any. (Addresses are checked after DNS
    /// by [`Grant::allows_address`].)
    pub fn rule_for(&self, method: Method, target: &Target) -> Option<&Rule> {
        self.rules.iter().find(|r| r.allows(method, target))
    }

    /// Whether some rule allows `method` to `target`.
    pub fn allows(&self, method: Method, target: &Target) -> bool {
        self.rule_for(method, target).is_some()
    }

    /// Whether some rule covers this origin at all (any path, any method).
    pub fn covers_origin(&self, origin: &Origin) -> bool {
        self.rules.iter().any(|r| r.origin.matches(origin))
    }

    /// Whether a resolved address of `method` `target` may be connected to: ordinary public
    /// addresses always (the request was allowed by name already); a special one only when the request
    /// names it literally (its host *is* that address, or `localhost` for loopback) and a rule that
    /// allows *this very request* — its scheme, host, port and path — was named by the operator (an
    /// explicit grant, or the endpoint) and names that address. A name that resolves to a special
    /// address is never enough, and neither is the operator naming that address for another port or
    /// path: a URL the vendor's metadata named cannot lead to it.
    pub fn allows_address(&self, method: Method, target: &Target, ip: IpAddr) -> bool {
        if !crate::wire::addresses::is_special(ip) {
            return true;
        }
        let canonical = crate::wire::addresses::canonical;
        let origin = &target.origin;
        let literal = origin.ip().is_some_and(|o| canonical(o) == canonical(ip)) || (origin.host == "localhost" && canonical(ip).is_loopback());
        literal && self.rules.iter().any(|r| r.allows(method, target) && r.reason.operator_named() && r.origin.names_host(ip))
    }

    /// The rules that allow `method` to `target` (what the request's addresses are judged by).
    pub fn allowing(&self, method: Method, target: &Target) -> Grant {
        Grant { rules: self.rules.iter().filter(|r| r.allows(method, target)).cloned().collect() }
    }

    /// The rules, in the order given.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The operator's whole-origin rules as text (the policy file's `allow_origins`).
    pub fn to_strings(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| r.reason == Reason::Operator && r.paths == Paths::Any && r.methods.is_none())
            .map(|r| r.origin.as_str().to_string())
            .collect()
    }

    /// Every rule as one line (for `policy`, `connect`, `status`).
    pub fn describe(&self) -> Vec<String> {
        self.rules.iter().map(Rule::describe).collect()
    }

    /// Whether the grant is empty (denies everything).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> Origin {
        Origin::parse(s).unwrap()
    }

    fn target(s: &str) -> Target {
        Target::parse(s).unwrap()
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
        assert!(!g.allows(Method::Get, &target("https://mcp.close.com/")));
        assert!(!g.allows(Method::Post, &target("http://127.0.0.1:1/")));
    }

    #[test]
    fn special_addresses_need_a_host_the_operator_named() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let wildcard = Grant::parse_list(["https://*", "http://*:*"]).unwrap();
        let named = target("http://internal.example:8080/");
        assert!(wildcard.allows(Method::Get, &named));
        for special in ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::ffff:127.0.0.1"] {
            assert!(!wildcard.allows_address(Method::Get, &named, ip(special)), "{special}");
        }
        assert!(wildcard.allows_address(Method::Get, &named, ip("93.184.216.34")));

        // Naming 127.0.0.1:8811 lets the connection reach 127.0.0.1:8811 by that address...
        let literal = Grant::parse_list(["http://127.0.0.1:8811"]).unwrap();
        assert!(literal.allows_address(Method::Get, &target("http://127.0.0.1:8811/x"), ip("127.0.0.1")));
        assert!(!literal.allows_address(Method::Get, &target("http://10.0.0.1:8811/"), ip("10.0.0.1")));
        let mapped = Grant::parse_list(["http://[::ffff:127.0.0.1]:8811"]).unwrap();
        assert!(mapped.allows_address(Method::Get, &target("http://[::ffff:127.0.0.1]:8811/"), ip("::ffff:127.0.0.1")));
        // ...but never through a name that resolves to it.
        assert!(!literal.allows_address(Method::Get, &target("http://internal.test:8811/"), ip("127.0.0.1")));

        let localhost = Grant::parse_list(["http://localhost:8811"]).unwrap();
        let lh = target("http://localhost:8811/");
        assert!(localhost.allows_address(Method::Get, &lh, ip("127.0.0.1")));
        assert!(localhost.allows_address(Method::Get, &lh, ip("::1")));
        assert!(!localhost.allows_address(Method::Get, &lh, ip("10.0.0.1")));

        // A rule the metadata named never opens a special address by itself.
        let mut learned = Grant::default();
        learned.push(Rule::exact(&target("http://127.0.0.1:9/token"), &[Method::Post], Reason::OAuth("token endpoint")));
        assert!(learned.allows(Method::Post, &target("http://127.0.0.1:9/token")));
        assert!(!learned.allows_address(Method::Post, &target("http://127.0.0.1:9/token"), ip("127.0.0.1")));
    }

    /// Review 9, L1 and L3: what the grant checks is what a URL parser (a browser, a server) reads.
    #[test]
    fn a_url_is_read_as_a_url_parser_reads_it() {
        for (url, ok) in [
            ("https://app.close.com/oauth2/authorize/?a=b", true),
            ("https://mcp.close.com", true),
            ("https://mcp.close.com/mcp?x=1#f", true),
            ("https://app.close.com\\x\\..\\..\\page/oauth2/authorize/", false),
            ("https://mcp.close.com/m\tcp", false),
            ("https://mcp.close.com/mcp\n", false),
            ("https://mcp.close.com/a b", false),
            ("https://api.close.com@mcp.close.com/mcp", false),
            ("https://user:pw@mcp.close.com/mcp", false),
            ("https://mcp.close.com/a{b}", false),
            ("https://mcp.close.com/a/../api/v1/lead/", false),
        ] {
            assert_eq!(Target::parse(url).is_ok(), ok, "{url}: {:?}", Target::parse(url));
        }
    }

    /// The review's M3: the operator granted `http://10.0.0.7:9000` (an internal API); a hostile
    /// endpoint's challenge names `http://10.0.0.7:8080/admin/export` as its resource metadata. The
    /// learned rule allows the request by name, but only a rule the operator named for that very host
    /// and port opens the address.
    #[test]
    fn a_special_address_opens_only_for_the_port_and_rule_the_operator_named() {
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let mut g = Grant::parse_list(["http://10.0.0.7:9000"]).unwrap();
        let admin = target("http://10.0.0.7:8080/admin/export");
        g.push(Rule::exact(&admin, &[Method::Get], Reason::OAuth("protected-resource metadata")));
        assert!(g.allows(Method::Get, &admin), "the learned rule allows it by name");
        assert!(!g.allows_address(Method::Get, &admin, ip), "but no operator rule names 10.0.0.7:8080");
        assert!(g.allows_address(Method::Get, &target("http://10.0.0.7:9000/api"), ip));
        assert!(g.allowing(Method::Get, &admin).rules().iter().all(|r| !r.reason.operator_named()));
        // An operator's `*` port is the operator's word for every port.
        let any_port = Grant::parse_list(["http://10.0.0.7:*"]).unwrap();
        assert!(any_port.allows_address(Method::Get, &admin, ip));
    }

    #[test]
    fn rules_allow_their_paths_and_methods_only() {
        let mut g = Grant::default();
        g.push(Rule::exact(&target("https://mcp.close.com/mcp"), &[Method::Get, Method::Post, Method::Delete], Reason::Endpoint));
        g.push(Rule::exact(&target("https://api.close.com/oauth2/token/"), &[Method::Post], Reason::OAuth("token endpoint")));
        g.push(Rule {
            origin: OriginPattern::parse("https://api.example.com").unwrap(),
            paths: Paths::Prefixes(vec!["/v1/reports/".into()]),
            methods: Some(vec![Method::Get]),
            reason: Reason::Operator,
        });
        let cases: &[(Method, &str, bool)] = &[
            (Method::Post, "https://mcp.close.com/mcp", true),
            (Method::Get, "https://mcp.close.com/mcp?x=1", true),
            (Method::Delete, "https://mcp.close.com/mcp", true),
            (Method::Put, "https://mcp.close.com/mcp", false),
            (Method::Post, "https://mcp.close.com/mcp/", false),
            (Method::Post, "https://mcp.close.com/api/v1/lead/", false),
            (Method::Post, "https://api.close.com/oauth2/token/", true),
            (Method::Get, "https://api.close.com/oauth2/token/", false),
            (Method::Post, "https://api.close.com/api/v1/lead/", false),
            (Method::Delete, "https://api.close.com/api/v1/lead/lead_1/", false),
            (Method::Get, "https://api.example.com/v1/reports/7", true),
            (Method::Post, "https://api.example.com/v1/reports/7", false),
            (Method::Get, "https://api.example.com/v1/other", false),
        ];
        for (method, url, expected) in cases {
            assert_eq!(g.allows(*method, &target(url)), *expected, "{method} {url}");
        }
    }

    #[test]
    fn paths_a_server_could_read_as_another_path_are_refused() {
        for bad in [
            "https://mcp.close.com/mcp/../api/v1/lead/",
            "https://mcp.close.com/mcp/%2e%2e/api/v1/lead/",
            "https://mcp.close.com/mcp/%2E./api",
            "https://mcp.close.com/./mcp",
            "https://mcp.close.com/mcp%2fx",
            "https://mcp.close.com/mcp\\..\\api",
        ] {
            let err = Target::parse(bad).unwrap_err();
            assert!(err.contains("path"), "{bad}: {err}");
        }
        assert_eq!(target("https://mcp.close.com").path, "/");
        assert_eq!(target("https://mcp.close.com/mcp?a=b#c").path, "/mcp");
        assert_eq!(target("HTTPS://MCP.close.com:443/mcp").to_string(), "https://mcp.close.com/mcp");
    }

    #[test]
    fn methods_parse_and_unknown_methods_are_never_granted() {
        assert_eq!(Method::parse("post"), Some(Method::Post));
        assert_eq!(Method::parse("CONNECT"), None);
        assert_eq!(Method::parse("TRACE"), None);
    }

    #[test]
    fn only_whole_origin_operator_rules_are_written_as_allow_origins() {
        let mut g = Grant::parse_list(["https://a.example"]).unwrap();
        g.push(Rule::exact(&target("https://mcp.close.com/mcp"), &[Method::Post], Reason::Endpoint));
        assert_eq!(g.to_strings(), vec!["https://a.example"]);
        let lines = g.describe();
        assert!(lines[0].contains("every path") && lines[0].contains("operator"), "{lines:?}");
        assert!(lines[1].starts_with("POST https://mcp.close.com/mcp"), "{lines:?}");
    }

    #[test]
    fn origins_display_as_grant_patterns() {
        assert_eq!(origin("https://mcp.close.com/mcp").to_string(), "https://mcp.close.com");
        assert_eq!(origin("http://127.0.0.1:8811/mcp").to_string(), "http://127.0.0.1:8811");
        assert_eq!(origin("http://[::1]:80/").to_string(), "http://[::1]");
    }
}
