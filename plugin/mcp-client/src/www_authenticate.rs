//! A tolerant parser for `WWW-Authenticate` header values (RFC 9110 §11.6.1).
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! ```
//!
//! Several challenges may share one header value (`DPoP algs="ES256", Bearer realm="x"`); several
//! header lines are joined with `,` before parsing. Scheme and parameter names are case-insensitive
//! (returned lowercase); values may be tokens or quoted strings with `\` escapes; spaces around `=`
//! are allowed. Malformed input never panics: parsing stops at the first thing it cannot read and
//! returns the challenges completed so far.

/// One challenge: a scheme and either a token68 or a list of parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    /// The auth scheme, lowercase (e.g. `bearer`).
    pub scheme: String,
    /// The token68 form (`Basic abc==`), if the challenge used it.
    pub token68: Option<String>,
    /// Parameters in order, names lowercase, values unquoted and unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The first value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of parameter `name`, in order (servers sometimes repeat `resource_metadata`).
    pub fn params_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.params
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The fields of a `Bearer` challenge that OAuth (RFC 6750, RFC 9728) and MCP care about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BearerChallenge {
    /// `resource_metadata` URLs (RFC 9728), in order; usually one.
    pub resource_metadata: Vec<String>,
    /// `scope`, space-separated scopes.
    pub scope: Option<String>,
    /// `error`, e.g. `invalid_token` or `insufficient_scope`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
    /// `realm`.
    pub realm: Option<String>,
}

impl BearerChallenge {
    /// The scopes of `scope`, split on whitespace.
    pub fn scopes(&self) -> Vec<String> {
        self.scope.as_deref().map(split_scopes).unwrap_or_default()
    }
}

/// Splits a space-separated scope string.
pub fn split_scopes(scope: &str) -> Vec<String> {
    scope.split_ascii_whitespace().map(str::to_owned).collect()
}

/// Parses a `WWW-Authenticate` value into its challenges.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut p = Cursor {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_list_separators();
        if p.at_end() {
            break;
        }
        let Some(scheme) = p.token() else { break };
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            ..Challenge::default()
        };
        p.skip_ws();
        if let Some(t68) = p.try_token68() {
            challenge.token68 = Some(t68);
            out.push(challenge);
            continue;
        }
        // Parameters, until the next challenge starts or the input ends.
        loop {
            p.skip_ws();
            if p.at_end() {
                break;
            }
            if p.peek() == Some(b',') {
                p.skip_list_separators();
                if p.at_end() || !p.param_follows() {
                    break;
                }
                continue;
            }
            if !p.param_follows() {
                break;
            }
            let Some(name) = p.token() else { break };
            p.skip_ws();
            p.i += 1; // '='
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted_string()
            } else {
                p.token()
            };
            match value {
                Some(v) => challenge.params.push((name.to_ascii_lowercase(), v)),
                None => {
                    out.push(challenge);
                    return out;
                }
            }
        }
        out.push(challenge);
        if !p.at_end() && p.peek() != Some(b',') && !p.token_starts() {
            break;
        }
    }
    out
}

/// The first `Bearer` challenge in the header value, if any.
pub fn bearer(header: &str) -> Option<BearerChallenge> {
    let challenge = parse(header).into_iter().find(|c| c.scheme == "bearer")?;
    Some(BearerChallenge {
        resource_metadata: challenge
            .params_named("resource_metadata")
            .map(str::to_owned)
            .collect(),
        scope: challenge.param("scope").map(str::to_owned),
        error: challenge.param("error").map(str::to_owned),
        error_description: challenge.param("error_description").map(str::to_owned),
        realm: challenge.param("realm").map(str::to_owned),
    })
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn token_starts(&self) -> bool {
        self.peek().is_some_and(is_tchar)
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .map(str::to_owned)
    }

    /// Whether `token BWS "="` (an auth-param) starts here, without consuming anything.
    fn param_follows(&self) -> bool {
        let mut j = self.i;
        let start = j;
        while self.s.get(j).copied().is_some_and(is_tchar) {
            j += 1;
        }
        if j == start {
            return false;
        }
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        // `name==` cannot be a parameter (its value would be empty); it is a token68.
        self.s.get(j) == Some(&b'=') && self.s.get(j + 1) != Some(&b'=')
    }

    /// A token68 that forms the whole challenge body (followed by the end, or a `,`).
    fn try_token68(&mut self) -> Option<String> {
        let start = self.i;
        let mut j = start;
        while self.s.get(j).copied().is_some_and(is_token68_char) {
            j += 1;
        }
        if j == start {
            return None;
        }
        while self.s.get(j) == Some(&b'=') {
            j += 1;
        }
        let end = j;
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if j < self.s.len() && self.s[j] != b',' {
            return None;
        }
        self.i = j;
        std::str::from_utf8(&self.s[start..end])
            .ok()
            .map(str::to_owned)
    }

    fn quoted_string(&mut self) -> Option<String> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        // Unterminated: take what there is.
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect()
    }

    #[test]
    fn a_bearer_challenge_with_quoted_values_is_parsed() {
        let h = r#"Bearer error="invalid_token", error_description="The access token expired", resource_metadata="https://mcp.close.com/.well-known/oauth-protected-resource""#;
        let c = parse(h);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(
            params(&c[0]),
            vec![
                ("error", "invalid_token"),
                ("error_description", "The access token expired"),
                (
                    "resource_metadata",
                    "https://mcp.close.com/.well-known/oauth-protected-resource"
                ),
            ]
        );
        let b = bearer(h).unwrap();
        assert_eq!(
            b.resource_metadata,
            vec!["https://mcp.close.com/.well-known/oauth-protected-resource"]
        );
        assert_eq!(b.error.as_deref(), Some("invalid_token"));
    }

    #[test]
    fn several_challenges_in_one_value_are_separated() {
        let h = r#"DPoP algs="ES256 PS256", Bearer realm="mcp", scope="mcp.read mcp.write_safe", Basic abc123=="#;
        let c = parse(h);
        assert_eq!(
            c.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
            vec!["dpop", "bearer", "basic"]
        );
        assert_eq!(params(&c[0]), vec![("algs", "ES256 PS256")]);
        assert_eq!(
            params(&c[1]),
            vec![("realm", "mcp"), ("scope", "mcp.read mcp.write_safe")]
        );
        assert_eq!(c[2].token68.as_deref(), Some("abc123=="));
        assert_eq!(
            bearer(h).unwrap().scopes(),
            vec!["mcp.read", "mcp.write_safe"]
        );
    }

    #[test]
    fn the_rfc_example_with_escaped_quotes_and_unquoted_values_is_parsed() {
        let h = r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#;
        let c = parse(h);
        assert_eq!(c.len(), 2);
        assert_eq!(
            params(&c[0]),
            vec![
                ("realm", "apps"),
                ("type", "1"),
                ("title", r#"Login to "apps""#)
            ]
        );
        assert_eq!(c[1].scheme, "basic");
        assert_eq!(params(&c[1]), vec![("realm", "simple")]);
    }

    #[test]
    fn spaces_around_the_equals_sign_and_mixed_case_names_are_accepted() {
        let h = r#"bearer  Error = "insufficient_scope" ,  SCOPE= mcp.read ,resource_metadata ="https://x/y""#;
        let b = bearer(h).unwrap();
        assert_eq!(b.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(b.scope.as_deref(), Some("mcp.read"));
        assert_eq!(b.resource_metadata, vec!["https://x/y"]);
    }

    #[test]
    fn a_repeated_resource_metadata_keeps_every_value_in_order() {
        let h = r#"Bearer resource_metadata="https://a/1", resource_metadata="https://b/2""#;
        assert_eq!(
            bearer(h).unwrap().resource_metadata,
            vec!["https://a/1", "https://b/2"]
        );
    }

    #[test]
    fn error_may_come_last_and_a_bare_scheme_is_a_challenge() {
        let h = r#"Basic, Bearer scope="a b", error="insufficient_scope""#;
        let c = parse(h);
        assert_eq!(c.len(), 2);
        assert!(c[0].params.is_empty() && c[0].token68.is_none());
        assert_eq!(
            bearer(h).unwrap().error.as_deref(),
            Some("insufficient_scope")
        );
    }

    #[test]
    fn garbage_never_panics_and_keeps_what_was_read() {
        for h in [
            "",
            ",,,",
            "=",
            "Bearer =",
            "Bearer a=\"unterminated",
            "Bearer a=b c",
            "\"x\"",
            "Bearer a=,b=\"",
            "é",
        ] {
            let _ = parse(h);
            let _ = bearer(h);
        }
        assert_eq!(bearer("Bearer a=\"unterminated").unwrap().realm, None);
        assert_eq!(parse("Bearer realm=x")[0].param("realm"), Some("x"));
    }
}
