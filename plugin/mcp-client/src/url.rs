//! Just enough URL handling for an HTTP client: split an absolute `http(s)` URL into scheme,
//! authority and path-with-query, and compute its origin; percent-encode and decode query and form
//! parameters; resolve a redirect's `Location`. (The `url` crate would add its IDNA tables to every
//! component for no gain here.)

/// The parts of an absolute `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `http` or `https`, lowercase.
    pub scheme: String,
    /// Host, lowercase (IPv6 literals keep their brackets).
    pub host: String,
    /// The explicit port, if one was given and it is not the scheme's default.
    pub port: Option<u16>,
    /// Path and query, starting with `/` (the fragment is dropped).
    pub path_and_query: String,
}

impl HttpUrl {
    /// Parses an absolute `http`/`https` URL. Userinfo (`user:pass@`) is refused, since a credential
    /// has no business in an endpoint URL.
    pub fn parse(input: &str) -> Result<HttpUrl, String> {
        let input = input.trim();
        let (scheme, rest) = input
            .split_once("://")
            .ok_or_else(|| "the URL is not absolute".to_owned())?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => {
                return Err(format!(
                    "unsupported URL scheme `{}`",
                    crate::error::one_line(&scheme, 20)
                ))
            }
        };
        let rest = rest.split('#').next().unwrap_or("");
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err("the URL must not contain a user name or password".to_owned());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| "invalid IPv6 host in URL".to_owned())?;
            (
                format!("[{}]", addr.to_ascii_lowercase()),
                after.strip_prefix(':'),
            )
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
                None => (authority.to_ascii_lowercase(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err("the URL has no host".to_owned());
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:%".contains(&b))
        {
            return Err("the URL host contains invalid characters".to_owned());
        }
        let port = match port {
            None | Some("") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| "invalid port in URL".to_owned())?,
            ),
        }
        .filter(|p| *p != default_port);
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("the URL path contains spaces or control characters".to_owned());
        }
        let path_and_query = if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(HttpUrl {
            scheme,
            host,
            port,
            path_and_query,
        })
    }

    /// `host[:port]`, as sent in the request's authority.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// `scheme://host[:port]`, the default port omitted.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority())
    }

    /// The path without the query, starting with `/`.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split('?')
            .next()
            .filter(|p| !p.is_empty())
            .unwrap_or("/")
    }

    /// The query (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, q)| q)
    }

    /// Whether the host is a loopback name or address (`localhost`, `127.0.0.1`, `[::1]`).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host == "127.0.0.1" || self.host == "[::1]"
    }

    /// Whether the host is a loopback IP literal (`127.0.0.1`, `[::1]`), on which RFC 8252 §7.3 lets
    /// a native client's redirect URI use any port.
    pub fn is_loopback_ip(&self) -> bool {
        self.host == "127.0.0.1" || self.host == "[::1]"
    }
}

/// The URL a redirect's `Location` points to: an absolute `http(s)` URL as is, an absolute path
/// (`/x`) on `base`'s origin. Anything else (relative paths, other schemes) is refused.
pub fn resolve_location(base: &HttpUrl, location: &str) -> Option<String> {
    let location = location.trim();
    if location.starts_with("//") {
        return HttpUrl::parse(&format!("{}:{location}", base.scheme))
            .ok()
            .map(|u| format!("{}{}", u.origin(), u.path_and_query));
    }
    if location.starts_with('/') {
        return Some(format!("{}{location}", base.origin()));
    }
    HttpUrl::parse(location)
        .ok()
        .map(|u| format!("{}{}", u.origin(), u.path_and_query))
}

/// Percent-encodes everything but the unreserved characters (RFC 3986 §2.3), so the result is safe
/// in a query string and in an `application/x-www-form-urlencoded` body alike (a space is `%20`).
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `k1=v1&k2=v2`, each name and value percent-encoded.
pub fn encode_pairs<'p>(pairs: impl IntoIterator<Item = (&'p str, &'p str)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes a query string or form body (`+` is a space; invalid escapes are kept as written,
/// invalid UTF-8 is replaced). Pairs without `=` get an empty value.
pub fn decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query parameters of an absolute or relative URL (the fragment is ignored).
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let without_fragment = url.split('#').next().unwrap_or("");
    match without_fragment.split_once('?') {
        Some((_, query)) => decode_pairs(query),
        None => Vec::new(),
    }
}

/// `url` with `pairs` appended to its query (`?` or `&`), the fragment dropped.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let base = url.split('#').next().unwrap_or("");
    let encoded = encode_pairs(pairs.iter().copied());
    if encoded.is_empty() {
        return base.to_owned();
    }
    let separator = match base.split_once('?') {
        None => "?",
        Some((_, q)) if q.is_empty() || q.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{base}{separator}{encoded}")
}

/// RFC 8414 §3.1 / RFC 9728 §3.1 "path insertion": `https://h/.well-known/<suffix>/<path>` for
/// `https://h/<path>`, or `https://h/.well-known/<suffix>` when the path is `/`. The query is
/// dropped, and so is a trailing `/` of the path.
pub fn well_known_inserted(url: &HttpUrl, suffix: &str) -> String {
    let path = url.path().trim_end_matches('/');
    format!("{}/.well-known/{suffix}{path}", url.origin())
}

/// OpenID Connect Discovery's "append" form: `https://h/<path>/.well-known/<suffix>`.
pub fn well_known_appended(url: &HttpUrl, suffix: &str) -> String {
    let path = url.path().trim_end_matches('/');
    format!("{}{path}/.well-known/{suffix}", url.origin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_url_is_split_into_its_parts() {
        let u = HttpUrl::parse("https://MCP.close.com/mcp?1#frag").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.host, "mcp.close.com");
        assert_eq!(u.port, None);
        assert_eq!(u.path_and_query, "/mcp?1");
        assert_eq!(u.origin(), "https://mcp.close.com");
    }

    #[test]
    fn the_default_port_is_dropped_from_the_origin_and_others_are_kept() {
        assert_eq!(
            HttpUrl::parse("https://a.example:443/x").unwrap().origin(),
            "https://a.example"
        );
        assert_eq!(
            HttpUrl::parse("http://127.0.0.1:8080").unwrap().origin(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            HttpUrl::parse("http://127.0.0.1:8080")
                .unwrap()
                .path_and_query,
            "/"
        );
        assert_eq!(
            HttpUrl::parse("http://[::1]:9000/mcp").unwrap().authority(),
            "[::1]:9000"
        );
        assert_eq!(
            HttpUrl::parse("https://h?q=1").unwrap().path_and_query,
            "/?q=1"
        );
    }

    #[test]
    fn path_and_query_are_separated() {
        let u = HttpUrl::parse("https://h/a/b?x=1&y").unwrap();
        assert_eq!(u.path(), "/a/b");
        assert_eq!(u.query(), Some("x=1&y"));
        let u = HttpUrl::parse("https://h?x").unwrap();
        assert_eq!(u.path(), "/");
        assert_eq!(HttpUrl::parse("https://h/").unwrap().query(), None);
    }

    #[test]
    fn components_are_percent_encoded_and_decoded_back() {
        assert_eq!(
            encode_component("a b/c?d=é~_.-"),
            "a%20b%2Fc%3Fd%3D%C3%A9~_.-"
        );
        assert_eq!(
            encode_pairs([("scope", "mcp.read offline_access"), ("x", "")]),
            "scope=mcp.read%20offline_access&x="
        );
        assert_eq!(
            decode_pairs("a=1+2&b=%C3%A9%2F&c&d=%zz&e=%4"),
            vec![
                ("a".to_owned(), "1 2".to_owned()),
                ("b".to_owned(), "é/".to_owned()),
                ("c".to_owned(), String::new()),
                ("d".to_owned(), "%zz".to_owned()),
                ("e".to_owned(), "%4".to_owned()),
            ]
        );
        assert_eq!(
            query_pairs("http://127.0.0.1:5/callback?code=a%2Bb&state=s#frag"),
            vec![
                ("code".to_owned(), "a+b".to_owned()),
                ("state".to_owned(), "s".to_owned())
            ]
        );
    }

    #[test]
    fn parameters_are_appended_to_an_existing_query() {
        assert_eq!(
            with_query("https://a/x", &[("k", "v w")]),
            "https://a/x?k=v%20w"
        );
        assert_eq!(
            with_query("https://a/x?p=1#f", &[("k", "v")]),
            "https://a/x?p=1&k=v"
        );
        assert_eq!(with_query("https://a/x?", &[("k", "v")]), "https://a/x?k=v");
    }

    #[test]
    fn well_known_urls_insert_or_append_the_path() {
        let u = HttpUrl::parse("https://auth.example.com/tenant1/?q=1").unwrap();
        assert_eq!(
            well_known_inserted(&u, "oauth-authorization-server"),
            "https://auth.example.com/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            well_known_appended(&u, "openid-configuration"),
            "https://auth.example.com/tenant1/.well-known/openid-configuration"
        );
        let root = HttpUrl::parse("https://auth.example.com/").unwrap();
        assert_eq!(
            well_known_inserted(&root, "oauth-protected-resource"),
            "https://auth.example.com/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn a_location_is_resolved_against_the_request_url() {
        let base = HttpUrl::parse("https://a.example:8443/x/y").unwrap();
        assert_eq!(
            resolve_location(&base, "/z?q").as_deref(),
            Some("https://a.example:8443/z?q")
        );
        assert_eq!(
            resolve_location(&base, "https://b.example/w").as_deref(),
            Some("https://b.example/w")
        );
        assert_eq!(
            resolve_location(&base, "//c.example/v").as_deref(),
            Some("https://c.example/v")
        );
        assert_eq!(resolve_location(&base, "relative"), None);
        assert_eq!(resolve_location(&base, "ftp://x/"), None);
    }

    #[test]
    fn urls_that_are_not_absolute_http_or_carry_credentials_are_refused() {
        for bad in [
            "mcp.close.com/mcp",
            "ftp://x/y",
            "https://user:pw@x/y",
            "https:///y",
            "https://x:99999/",
            "https://x/a b",
            "https://ex ample/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
