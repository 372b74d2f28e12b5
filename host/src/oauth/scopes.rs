//! Scopes, decided by the host: which a connector may ask for, and what the vendor granted.
//!
//! * **Asked for.** Before the browser opens, the host reads the authorization URL the connector
//!   built ([`check_authorization_url`]): it must be the authorization endpoint the endpoint's own
//!   metadata named (its path read as a browser reads it), carry the host's redirect URI, PKCE S256,
//!   the `state` the connector reported and the `resource` of the protected-resource metadata, and
//!   no parameter but those the flow needs ([`AUTHORIZATION_PARAMETERS`]: no request object, no
//!   response mode, no claims); and every scope in it must be one the host allows ([`allowed_scopes`]): the operator's `--scope`, else the connector's declared
//!   least-privilege scopes (`mcp.read` for Close), else — for a connector that declares none, such as
//!   the generic MCP connector — what the server itself asked for on the wire (its challenges' `scope`
//!   and its `scopes_supported`); plus `offline_access` when the server advertises it.
//!   The connector's declared scopes and the server's are taken only when they are read-level
//!   ([`is_read_level`]): `mcp.write_safe` is never allowed unless the operator names it. An
//!   authorization URL must ask for a scope (without one the server would choose) and for every
//!   required one.
//! * **Granted.** The host reads *every* token answer of every call — a code exchange, a refresh
//!   during an ordinary call — and also the `scope` a token request asks for: a scope beyond what the
//!   connection may hold is refused on the wire ([`judge_grant`]), the answer never reaching the
//!   connector. After an authorization, a grant without a required scope is *insufficient scope*;
//!   one wider than asked but allowed is kept with a warning ([`judge`]).
//! * **API keys.** A connector that declares a scope header (Close's `Close-Scope`) gets it set by
//!   the host to the read-level required scopes, or checked when it sets it itself
//!   ([`check_scope_header`]); a request carrying the key with any other `*scope` header is refused.

use super::discovery::OAuthState;

/// `offline_access`: asks for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Where the scopes a connection may ask for come from.
pub struct ScopeInputs<'a> {
    /// The operator's (`--scope`, `reconnect --scope`).
    pub operator: &'a [String],
    /// The connector's declared least-privilege scopes (`connector-info.scopes`).
    pub declared: &'a [String],
    /// What the host learned on the wire.
    pub oauth: &'a OAuthState,
}

/// Where a connection's scopes come from, kept by a call so that what it may ask for is judged with
/// what the host learns on the wire during the call.
#[derive(Debug, Clone, Default)]
pub struct ScopeSources {
    /// The operator's (`--scope`).
    pub operator: Vec<String>,
    /// The connector's declared least-privilege scopes.
    pub declared: Vec<String>,
}

impl ScopeSources {
    /// The scopes the connection may ask for, given what was learned ([`allowed_scopes`]).
    pub fn allowed(&self, oauth: &OAuthState) -> Vec<String> {
        allowed_scopes(&ScopeInputs { operator: &self.operator, declared: &self.declared, oauth })
    }
}

/// Words that make a scope more than read access (`mcp.write_safe`, `files:delete`, `admin`).
const WRITE_WORDS: &[&str] =
    &["write", "writes", "delete", "destructive", "admin", "administer", "manage", "modify", "edit", "create", "update", "full", "owner", "sudo", "root", "readwrite", "rw"];

/// Whether a scope asks for reading only, as far as its words tell: `mcp.read`, `files:read`,
/// `offline_access` are; `mcp.write_safe`, `read_write`, `admin`, `*` are not. What a connector
/// declares and what a server advertises are taken only when they are; the operator's `--scope`
/// is the operator's word and taken as it is.
pub fn is_read_level(scope: &str) -> bool {
    !scope.contains('*')
        && !scope
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| WRITE_WORDS.iter().any(|x| w.eq_ignore_ascii_case(x)))
}

fn read_level(scopes: &[String]) -> Vec<String> {
    scopes.iter().filter(|s| is_read_level(s)).cloned().collect()
}

/// The operator's `--scope '*'`: any scope the connector declares or the server names on the wire,
/// read-level or not — an explicit widening, as `--allow-origin` is for origins (the conformance
/// runner uses it: the suite's servers ask for `mcp:write` and `mcp:admin`).
pub const ANY_SCOPE: &str = "*";

fn any_scope(operator: &[String]) -> bool {
    operator.iter().any(|s| s == ANY_SCOPE)
}

/// The scopes an authorization URL may carry: the operator's, else the connector's declared
/// read-level ones, else the read-level ones the server asked for on the wire; plus `offline_access`
/// when advertised. With the operator's [`ANY_SCOPE`], every scope the connector declares or the
/// server names, and the operator's others.
pub fn allowed_scopes(inputs: &ScopeInputs<'_>) -> Vec<String> {
    let mut out: Vec<String> = if any_scope(inputs.operator) {
        let mut v: Vec<String> = inputs.operator.iter().filter(|s| *s != ANY_SCOPE).cloned().collect();
        v.extend(inputs.declared.iter().cloned());
        v.extend(inputs.oauth.challenged_scopes.iter().cloned());
        if let Some(r) = &inputs.oauth.resource {
            v.extend(r.scopes_supported.iter().cloned());
        }
        v
    } else if !inputs.operator.is_empty() {
        inputs.operator.to_vec()
    } else if !inputs.declared.is_empty() {
        read_level(inputs.declared)
    } else {
        let mut v = inputs.oauth.challenged_scopes.clone();
        if let Some(r) = &inputs.oauth.resource {
            v.extend(r.scopes_supported.iter().cloned());
        }
        read_level(&v)
    };
    if inputs.oauth.offline_access_advertised() {
        out.push(OFFLINE_ACCESS.to_string());
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| !s.is_empty() && seen.insert(s.clone()));
    out
}

/// The scopes a grant must hold: the operator's, else the connector's declared read-level ones,
/// without `offline_access` (a refresh token is welcome, not required).
pub fn required_scopes(operator: &[String], declared: &[String]) -> Vec<String> {
    let named: Vec<String> = operator.iter().filter(|s| *s != ANY_SCOPE).cloned().collect();
    let base = if !named.is_empty() { named } else { read_level(declared) };
    base.into_iter().filter(|s| s.as_str() != OFFLINE_ACCESS).collect()
}

/// Judge scopes a token endpoint is asked for or grants (`granted`), against what the connection
/// may hold: every one must be allowed (or `offline_access`); when the host knows of no allowed scope
/// at all, every one must be read-level. A wider grant is refused, never kept with a warning.
pub fn judge_grant(granted: &[String], allowed: &[String]) -> Result<(), String> {
    let beyond: Vec<&str> = granted
        .iter()
        .map(String::as_str)
        .filter(|s| *s != OFFLINE_ACCESS && if allowed.is_empty() { !is_read_level(s) } else { !allowed.iter().any(|a| a == s) })
        .collect();
    if beyond.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the scope {} is beyond what this connection may hold ({}); to allow it, reconnect with --scope",
        crate::text::one_line(&beyond.join(" ")).chars().take(200).collect::<String>(),
        if allowed.is_empty() { "read-level scopes only".to_string() } else { allowed.join(" ") }
    ))
}

/// What the host expects of an authorization URL.
pub struct Expected<'a> {
    /// The authorization endpoint the endpoint's metadata named.
    pub authorization_endpoint: &'a str,
    /// The host's redirect URI.
    pub redirect_uri: &'a str,
    /// The `state` the connector reported.
    pub state: &'a str,
    /// The protected resource's identifier, when there is protected-resource metadata.
    pub resource: Option<&'a str>,
    /// The scopes it may ask for.
    pub allowed: &'a [String],
    /// The scopes it must ask for.
    pub required: &'a [String],
}

/// The parameters an authorization URL may carry: what the authorization code flow with PKCE and
/// resource indicators needs, and `prompt` (mcp-client asks for `consent` with `offline_access`, as
/// OpenID Connect wants). Anything else — `request`, `request_uri` (RFC 9101), `response_mode`
/// (JARM), `claims`, `authorization_details`, `audience`, `include_granted_scopes`, … — could send
/// the code elsewhere or widen the grant, and is refused.
pub const AUTHORIZATION_PARAMETERS: &[&str] =
    &["response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "resource", "prompt"];

/// The values `prompt` may take (`none` would skip the consent the user must see).
const PROMPTS: &[&str] = &["consent", "login", "select_account"];

/// The query parameters of a URL, decoded.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url).map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()).unwrap_or_default()
}

/// Check an authorization URL against what the host expects; returns the scopes it asks for.
pub fn check_authorization_url(url: &str, expected: &Expected<'_>) -> Result<Vec<String>, String> {
    let target = crate::policy::Target::parse(url).map_err(|e| format!("the connector's authorization URL is invalid: {e}"))?;
    // The path a browser opens must be the one checked (a browser reads `\` as `/`, drops tabs).
    let parsed = url::Url::parse(url).map_err(|e| format!("the connector's authorization URL is invalid: {e}"))?;
    if url.bytes().any(|b| b == b'\\' || b.is_ascii_whitespace() || b.is_ascii_control()) || parsed.path() != target.path {
        return Err("the connector's authorization URL has a path a browser would read differently (backslashes, blanks, control characters or dot segments); refused before the browser opened".into());
    }
    let wanted = crate::policy::Target::parse(expected.authorization_endpoint)
        .map_err(|e| format!("the authorization server's authorization endpoint is invalid: {e}"))?;
    if target != wanted {
        return Err(format!(
            "the connector's authorization URL leads to {target}, not to the authorization endpoint {wanted} that the endpoint's metadata names"
        ));
    }
    let pairs = query_pairs(url);
    if let Some((name, _)) = pairs.iter().find(|(k, _)| !AUTHORIZATION_PARAMETERS.contains(&k.as_str())) {
        return Err(format!(
            "the connector's authorization URL carries the parameter `{}`, which the host does not pass on (only {}); refused before the browser opened",
            crate::text::one_line(name).chars().take(60).collect::<String>(),
            AUTHORIZATION_PARAMETERS.join(", ")
        ));
    }
    let get = |name: &str| -> Result<Option<&str>, String> {
        let mut found = pairs.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(format!("the connector's authorization URL repeats `{name}`"));
        }
        Ok(first)
    };
    if get("response_type")? != Some("code") {
        return Err("the connector's authorization URL does not ask for a code (response_type=code)".into());
    }
    if get("redirect_uri")? != Some(expected.redirect_uri) {
        return Err("the connector's authorization URL sends the browser somewhere other than the host's redirect URI".into());
    }
    if get("code_challenge")?.is_none_or(|c| c.len() < 43) || get("code_challenge_method")? != Some("S256") {
        return Err("the connector's authorization URL lacks a PKCE S256 challenge".into());
    }
    match get("state")? {
        Some(s) if s == expected.state && s.len() >= 16 => {}
        _ => return Err("the connector's authorization URL lacks an unguessable state".into()),
    }
    if let Some(p) = get("prompt")? {
        if !PROMPTS.contains(&p) {
            return Err(format!(
                "the connector's authorization URL asks for prompt={}; only {} are passed on (the user must see the consent page)",
                crate::text::one_line(p).chars().take(40).collect::<String>(),
                PROMPTS.join(", ")
            ));
        }
    }
    get("client_id")?;
    if let Some(resource) = expected.resource {
        if get("resource")? != Some(resource) {
            return Err(format!("the connector's authorization URL does not name the resource `{resource}` (RFC 8707)"));
        }
    }
    let scopes: Vec<String> = get("scope")?.unwrap_or("").split_whitespace().map(str::to_string).collect();
    let beyond: Vec<&String> = scopes.iter().filter(|s| !expected.allowed.contains(s)).collect();
    if !beyond.is_empty() {
        let list = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
        let allowed: Vec<&String> = expected.allowed.iter().collect();
        return Err(format!(
            "the connector asks for the scope {} beyond what this connection may ask for ({}); refused before the browser opened. To allow it, reconnect with --scope",
            list(&beyond),
            if allowed.is_empty() { "no scope".to_string() } else { list(&allowed) }
        ));
    }
    // Without a scope the server would choose (its default, or what the client registered).
    if scopes.is_empty() && !expected.allowed.is_empty() {
        let wanted = if expected.required.is_empty() { expected.allowed } else { expected.required };
        return Err(format!(
            "the connector's authorization URL asks for no scope, so the server would choose; it must ask for {}; refused before the browser opened",
            wanted.join(" ")
        ));
    }
    let missing: Vec<&str> = expected.required.iter().filter(|r| !scopes.contains(r)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Err(format!(
            "the connector's authorization URL does not ask for {}, which this connection needs; refused before the browser opened",
            missing.join(" ")
        ));
    }
    Ok(scopes)
}

/// What a grant holds, judged against what was asked and what is required (a grant beyond what
/// the connection may hold never gets this far: [`judge_grant`] refuses it on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The scopes granted.
    pub granted: Vec<String>,
    /// Required scopes the grant lacks (non-empty: insufficient scope).
    pub missing: Vec<String>,
    /// Scopes granted beyond those asked for (a warning).
    pub wider: Vec<String>,
}

/// Judge a grant: `scope` of the token response (`None`: what was asked, RFC 6749 §5.1).
pub fn judge(requested: &[String], granted: Option<&[String]>, required: &[String]) -> Verdict {
    let granted: Vec<String> = granted.map(<[String]>::to_vec).unwrap_or_else(|| requested.to_vec());
    Verdict {
        missing: required.iter().filter(|s| !granted.contains(s)).cloned().collect(),
        wider: granted.iter().filter(|s| !requested.contains(s)).cloned().collect(),
        granted,
    }
}

impl Verdict {
    /// The one-sentence message of an insufficient grant.
    pub fn insufficient_message(&self, vendor: &str) -> String {
        let missing = self.missing.join(" ");
        format!("Insufficient scope: the {vendor} account did not grant {missing}. Reconnect and accept the read scope.")
    }

    /// The one-sentence warning of a wider grant, if it is wider.
    pub fn wider_warning(&self) -> Option<String> {
        (!self.wider.is_empty()).then(|| {
            format!(
                "the vendor granted more than was asked for ({}); the host withholds write tools whatever the grant, but consider a narrower grant",
                self.wider.join(" ")
            )
        })
    }
}

/// Set or check an API key's scope header: `None` (absent) becomes the allowed scopes joined by a
/// space; a present value must name only allowed scopes.
pub fn check_scope_header(value: Option<&str>, allowed: &[String]) -> Result<String, String> {
    match value {
        None => Ok(allowed.join(" ")),
        Some(v) => {
            let asked: Vec<&str> = v.split([' ', ',']).map(str::trim).filter(|s| !s.is_empty()).collect();
            let beyond: Vec<&str> = asked.iter().copied().filter(|s| !allowed.iter().any(|a| a == s)).collect();
            if asked.is_empty() || !beyond.is_empty() {
                Err(format!(
                    "the request asks the vendor for the scope `{}`; this connection is limited to {}",
                    crate::text::one_line(v),
                    allowed.join(" ")
                ))
            } else {
                Ok(v.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::discovery::{ResourceDoc, ServerDoc};

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn learned(prm_scopes: &[&str], as_scopes: &[&str], challenged: &[&str]) -> OAuthState {
        OAuthState {
            challenge: None,
            challenged_scopes: s(challenged),
            resource: Some(ResourceDoc {
                url: "https://m/.well-known/oauth-protected-resource".into(),
                resource: "https://m/".into(),
                authorization_servers: s(&["https://a"]),
                scopes_supported: s(prm_scopes),
            }),
            server: Some(ServerDoc {
                url: None,
                issuer: Some("https://a".into()),
                authorization_endpoint: "https://a/authorize".into(),
                token_endpoint: "https://a/token".into(),
                registration_endpoint: None,
                revocation_endpoint: None,
                scopes_supported: s(as_scopes),
                iss_supported: false,
            }),
        }
    }

    #[test]
    fn allowed_scopes_come_from_the_operator_the_connector_or_the_wire() {
        let close = learned(&["mcp.read", "mcp.write_safe", "mcp.write_destructive", "offline_access"], &[], &[]);
        let table: Vec<(&[&str], &[&str], &OAuthState, &[&str])> = vec![
            (&[], &["mcp.read"], &close, &["mcp.read", "offline_access"]),
            (&["mcp.read"], &[], &close, &["mcp.read", "offline_access"]),
            // The connector's declared or the server's advertised write scopes are never taken.
            (&[], &[], &close, &["mcp.read", "offline_access"]),
            (&[], &["mcp.read", "mcp.write_safe", "mcp.write_destructive"], &close, &["mcp.read", "offline_access"]),
            // The operator's word is taken as it is.
            (&["mcp.read", "mcp.write_safe"], &["mcp.read"], &close, &["mcp.read", "mcp.write_safe", "offline_access"]),
        ];
        for (operator, declared, oauth, want) in table {
            let got = allowed_scopes(&ScopeInputs { operator: &s(operator), declared: &s(declared), oauth });
            assert_eq!(got, s(want), "{operator:?} {declared:?}");
        }
        let generic = learned(&[], &[], &["files:read", "files:write"]);
        assert_eq!(allowed_scopes(&ScopeInputs { operator: &[], declared: &[], oauth: &generic }), s(&["files:read"]));
        let none = OAuthState::default();
        assert!(allowed_scopes(&ScopeInputs { operator: &[], declared: &[], oauth: &none }).is_empty());
        assert_eq!(required_scopes(&[], &s(&["mcp.read", "offline_access"])), s(&["mcp.read"]));
        assert_eq!(required_scopes(&[], &s(&["mcp.read", "mcp.write_destructive"])), s(&["mcp.read"]));
    }

    fn url(params: &[(&str, &str)]) -> String {
        let mut u = url::Url::parse("https://app.close.com/oauth2/authorize/").unwrap();
        for (k, v) in params {
            u.query_pairs_mut().append_pair(k, v);
        }
        u.to_string()
    }

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("response_type", "code"),
            ("client_id", "c"),
            ("redirect_uri", "http://127.0.0.1:5/callback"),
            ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            ("code_challenge_method", "S256"),
            ("state", "0123456789abcdef0123"),
            ("resource", "https://mcp.close.com/"),
            ("scope", "mcp.read offline_access"),
        ]
    }

    fn check(params: &[(&str, &str)]) -> Result<Vec<String>, String> {
        let allowed = s(&["mcp.read", "offline_access"]);
        let required = s(&["mcp.read"]);
        check_authorization_url(
            &url(params),
            &Expected {
                authorization_endpoint: "https://app.close.com/oauth2/authorize/",
                redirect_uri: "http://127.0.0.1:5/callback",
                state: "0123456789abcdef0123",
                resource: Some("https://mcp.close.com/"),
                allowed: &allowed,
                required: &required,
            },
        )
    }

    #[test]
    fn an_authorization_url_is_checked_before_the_browser_opens() {
        assert_eq!(check(&good()).unwrap(), s(&["mcp.read", "offline_access"]));
        let with = |k: &'static str, v: &'static str| -> Vec<(&'static str, &'static str)> {
            good().into_iter().map(|(a, b)| if a == k { (a, v) } else { (a, b) }).collect()
        };
        for (params, needle) in [
            (with("scope", "mcp.read mcp.write_destructive"), "mcp.write_destructive"),
            (with("scope", "mcp.write_safe"), "beyond"),
            (with("redirect_uri", "https://evil.example/cb"), "redirect URI"),
            (with("code_challenge_method", "plain"), "PKCE"),
            (with("state", "short"), "state"),
            (with("resource", "https://evil.example/"), "resource"),
            (with("response_type", "token"), "code"),
        ] {
            let e = check(&params).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        let mut twice = good();
        twice.push(("scope", "mcp.write_destructive"));
        assert!(check(&twice).unwrap_err().contains("repeats"));
        let mut twice = good();
        twice.push(("client_id", "other"));
        assert!(check(&twice).unwrap_err().contains("repeats"));
        let e = check_authorization_url(
            &url(&good()).replace("app.close.com", "evil.example"),
            &Expected { authorization_endpoint: "https://app.close.com/oauth2/authorize/", redirect_uri: "", state: "", resource: None, allowed: &[], required: &[] },
        )
        .unwrap_err();
        assert!(e.contains("not to the authorization endpoint"), "{e}");
    }

    #[test]
    fn an_authorization_url_carries_only_the_parameters_the_flow_needs() {
        let mut with_prompt = good();
        with_prompt.push(("prompt", "consent"));
        assert!(check(&with_prompt).is_ok(), "mcp-client asks for consent with offline_access");
        let jar = "eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL2V2aWwuZXhhbXBsZS9jYiJ9.";
        for (extra, value, needle) in [
            ("request", jar, "`request`"),
            ("request_uri", "https://evil.example/req", "`request_uri`"),
            ("response_mode", "query.jwt", "`response_mode`"),
            ("claims", r#"{"id_token":{}}"#, "`claims`"),
            ("authorization_details", "[]", "`authorization_details`"),
            ("audience", "https://api.close.com", "`audience`"),
            ("include_granted_scopes", "true", "`include_granted_scopes`"),
            ("login_hint", "victim@example.com", "`login_hint`"),
            ("prompt", "none", "prompt=none"),
        ] {
            let mut params = good();
            params.push((extra, value));
            let e = check(&params).unwrap_err();
            assert!(e.contains(needle) && !e.contains('\n'), "{extra}: {e}");
        }
    }

    #[test]
    fn an_authorization_url_is_read_as_a_browser_reads_it() {
        let expected = |allowed: &'static [String]| Expected {
            authorization_endpoint: "https://app.close.com/oauth2/authorize/",
            redirect_uri: "http://127.0.0.1:5/callback",
            state: "0123456789abcdef0123",
            resource: Some("https://mcp.close.com/"),
            allowed,
            required: &[],
        };
        let query = url(&good()).split_once('?').unwrap().1.to_string();
        for bad in [
            format!("https://app.close.com\\x\\..\\..\\some\\page/oauth2/authorize/?{query}"),
            format!("https://app.close.com/oauth2/authorize/\t?{query}"),
            format!("https://app.close.com/other/../oauth2/authorize/?{query}"),
        ] {
            let e = check_authorization_url(&bad, &expected(&[])).unwrap_err();
            assert!(e.contains("browser") || e.contains("not to the authorization endpoint") || e.contains("invalid"), "{bad}: {e}");
        }
    }

    #[test]
    fn an_authorization_url_must_ask_for_the_required_scopes() {
        let without = |name: &str| -> Vec<(&'static str, &'static str)> { good().into_iter().filter(|(k, _)| *k != name).collect() };
        assert!(check(&without("scope")).unwrap_err().contains("asks for no scope"));
        let mut only_offline = without("scope");
        only_offline.push(("scope", "offline_access"));
        assert!(check(&only_offline).unwrap_err().contains("does not ask for mcp.read"));
    }

    #[test]
    fn the_operators_any_scope_allows_what_the_server_names_and_requires_nothing_more() {
        let mut oauth = OAuthState::default();
        oauth.challenged_scopes = vec!["mcp:admin".into()];
        let any = vec![ANY_SCOPE.to_string()];
        let allowed = allowed_scopes(&ScopeInputs { operator: &any, declared: &[], oauth: &oauth });
        assert_eq!(allowed, vec!["mcp:admin".to_string()]);
        let without = allowed_scopes(&ScopeInputs { operator: &[], declared: &[], oauth: &oauth });
        assert!(without.is_empty(), "without it, a write scope the server names is not allowed: {without:?}");
        assert_eq!(required_scopes(&any, &["mcp.read".into()]), vec!["mcp.read".to_string()]);
        assert!(required_scopes(&any, &[]).is_empty());
    }

    #[test]
    fn scopes_are_read_level_only_when_their_words_say_so() {
        for (scope, read) in [
            ("mcp.read", true),
            ("files:read", true),
            ("offline_access", true),
            ("openid", true),
            ("mcp.write_safe", false),
            ("mcp.write_destructive", false),
            ("files:write", false),
            ("read_write", false),
            ("Admin", false),
            ("leads.delete", false),
            ("*", false),
            ("repo:full", false),
        ] {
            assert_eq!(is_read_level(scope), read, "{scope}");
        }
    }

    #[test]
    fn a_grant_beyond_what_the_connection_may_hold_is_refused() {
        let allowed = s(&["mcp.read"]);
        assert!(judge_grant(&s(&["mcp.read", "offline_access"]), &allowed).is_ok());
        assert!(judge_grant(&s(&["offline_access"]), &allowed).is_ok(), "narrower is for the insufficient-scope check");
        let e = judge_grant(&s(&["mcp.read", "mcp.write_destructive"]), &allowed).unwrap_err();
        assert!(e.contains("mcp.write_destructive") && e.contains("--scope") && !e.contains('\n'), "{e}");
        // Knowing of no allowed scope, the host still refuses a write scope.
        assert!(judge_grant(&s(&["files:read"]), &[]).is_ok());
        assert!(judge_grant(&s(&["files:write"]), &[]).unwrap_err().contains("read-level scopes only"));
    }

    #[test]
    fn grants_are_judged_by_the_host() {
        let v = judge(&s(&["mcp.read", "offline_access"]), Some(&s(&["mcp.read", "offline_access"])), &s(&["mcp.read"]));
        assert!(v.missing.is_empty() && v.wider.is_empty());
        let v = judge(&s(&["mcp.read"]), Some(&s(&["offline_access"])), &s(&["mcp.read"]));
        assert_eq!(v.missing, s(&["mcp.read"]));
        assert!(v.insufficient_message("Close").starts_with("Insufficient scope: the Close account did not grant mcp.read."));
        let v = judge(&s(&["mcp.read"]), Some(&s(&["mcp.read", "mcp.write_destructive"])), &s(&["mcp.read"]));
        assert_eq!(v.wider, s(&["mcp.write_destructive"]));
        assert!(v.wider_warning().unwrap().contains("mcp.write_destructive"));
        let v = judge(&s(&["mcp.read"]), None, &s(&["mcp.read"]));
        assert_eq!(v.granted, s(&["mcp.read"]));
    }

    #[test]
    fn an_api_key_scope_header_is_set_or_checked() {
        let allowed = s(&["mcp.read"]);
        assert_eq!(check_scope_header(None, &allowed).unwrap(), "mcp.read");
        assert_eq!(check_scope_header(Some("mcp.read"), &allowed).unwrap(), "mcp.read");
        assert!(check_scope_header(Some("mcp.write_destructive"), &allowed).unwrap_err().contains("limited to mcp.read"));
        assert!(check_scope_header(Some("mcp.read mcp.write_safe"), &allowed).is_err());
        assert!(check_scope_header(Some(""), &allowed).is_err());
    }
}
