//! Just enough URL handling for an HTTP client: split an absolute `http(s)` URL into scheme,
//! authority and path-with-query, and compute its origin. (The `url` crate would add its IDNA tables
//! to every component for no gain here.)

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
