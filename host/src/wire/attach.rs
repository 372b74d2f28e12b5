//! Attaching credentials on the wire: the one place a credential value enters a request.
//!
//! A connector holds placeholders ([`crate::vault::credentials`]). For every request it sends, after
//! the grant allowed it, [`attach`] looks for placeholders and replaces each one by its value only
//! where the credential's binding puts it:
//!
//! | where in the request | form the host understands |
//! |---|---|
//! | `Authorization: Bearer <placeholder>` | [`Place::Bearer`] |
//! | `<declared header>: <placeholder>` (e.g. `Close-API-Key`) | [`Place::Header`] |
//! | `Authorization: Basic base64(id ":" <placeholder>)` (`client_secret_basic`, form-encoded parts) | [`Place::BasicPassword`] |
//! | `<field>=<placeholder>` in an `application/x-www-form-urlencoded` body (token and revocation requests) | [`Place::Form`] |
//!
//! and only when the request's method and URL (scheme, host, port, path) are the binding's. A
//! placeholder anywhere else — another path or origin, another header, a header *name*, the URL or
//! query, the body of any other request, an unknown placeholder — refuses the whole request with a
//! one-line reason. `Content-Length` follows the rewritten body.
//!
//! When the connection declares an API-key scope header (Close's `Close-Scope`), a request carrying
//! the API key gets it set, or checked when the connector set it ([`crate::oauth::scopes`]); any
//! other header naming a scope (`*scope`) next to the key refuses the request.

use crate::policy::{Method, Target};
use crate::vault::credentials::{Credential, Kind, Place, Placeholder};
use base64::Engine as _;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};

/// Looks credentials up by placeholder (the call's new ones, then the connection's stored ones).
pub trait Resolve {
    /// The credential behind `placeholder`, if it is one of this connection's.
    fn credential(&self, placeholder: &Placeholder) -> Option<Credential>;
}

/// The API-key headers a connection declared.
#[derive(Debug, Clone, Default)]
pub struct KeyHeaders {
    /// The header the API key travels in (lower case; `None`: `Authorization: Bearer`).
    pub key: Option<String>,
    /// The header that names the key's scope, and the scopes allowed in it.
    pub scope: Option<(String, Vec<String>)>,
}

/// What [`attach`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Attached {
    /// The kinds of the credentials attached, in order.
    pub kinds: Vec<Kind>,
    /// The new body, when the body was rewritten.
    pub body: Option<Vec<u8>>,
    /// Whether a grant credential went in: a refresh token, an authorization code, a client secret,
    /// or any credential in a form field or a Basic password. The answer to such a request is a token
    /// answer, whatever its URL ([`crate::wire::inbound::Treatment`]).
    pub grant_credential: bool,
}

/// Replace placeholders by their values where their bindings allow, or refuse the request.
pub fn attach(
    method: Method,
    target: &Target,
    uri: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    creds: &dyn Resolve,
    key_headers: &KeyHeaders,
) -> Result<Attached, String> {
    let mut out = Attached::default();
    if Placeholder::appears_in(uri.as_bytes()) {
        return Err("it carries a credential placeholder in its URL; credentials travel only in their header or form field".into());
    }
    let lookup = |text: &str, place: &Place, out: &mut Attached| -> Result<zeroize::Zeroizing<String>, String> {
        let p = Placeholder::parse(text).ok_or_else(|| format!("its {place} holds a credential placeholder mixed with other text"))?;
        let c = creds.credential(&p).ok_or_else(|| format!("its {place} holds a placeholder that is not one of this connection's credentials"))?;
        if !c.kind.is_attachable() || !c.binding.allows(method, target, place) {
            let bound = c.binding.describe();
            return Err(format!(
                "it puts the connection's {} in {place} of {method} {target}, where it does not belong (it may go only to: {})",
                c.kind,
                if bound.is_empty() { "nowhere".to_string() } else { bound.join("; ") }
            ));
        }
        out.kinds.push(c.kind);
        out.grant_credential |= matches!(c.kind, Kind::RefreshToken | Kind::AuthorizationCode | Kind::ClientSecret)
            || matches!(place, Place::Form(_) | Place::BasicPassword);
        Ok(c.value)
    };

    let names: Vec<HeaderName> = headers.keys().cloned().collect();
    for name in names {
        if Placeholder::appears_in(name.as_str().as_bytes()) {
            return Err("it carries a credential placeholder in a header name".into());
        }
        let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
        let mut replaced: Vec<HeaderValue> = Vec::with_capacity(values.len());
        let mut changed = false;
        for v in values {
            let raw = v.as_bytes();
            let basic = name == AUTHORIZATION && scheme_is(raw, "basic");
            if !Placeholder::appears_in(raw) && !basic {
                replaced.push(v);
                continue;
            }
            let text = std::str::from_utf8(raw).map_err(|_| "it carries a credential placeholder in a header that is not UTF-8".to_string())?;
            let new = if name == AUTHORIZATION && scheme_is(raw, "bearer") {
                let token = text[6..].trim();
                let value = lookup(token, &Place::Bearer, &mut out)?;
                format!("Bearer {}", value.as_str())
            } else if basic {
                match basic_password(text, &lookup, &mut out)? {
                    Some(v) => v,
                    None => {
                        replaced.push(v);
                        continue;
                    }
                }
            } else if key_headers.key.as_deref().is_some_and(|k| k == name.as_str()) {
                let value = lookup(text.trim(), &Place::Header(name.as_str().to_string()), &mut out)?;
                value.as_str().to_string()
            } else {
                return Err(format!("it carries a credential placeholder in the header {name}, where no credential belongs"));
            };
            let mut hv = HeaderValue::from_str(&new).map_err(|_| format!("the credential cannot be sent in the header {name}"))?;
            hv.set_sensitive(true);
            replaced.push(hv);
            changed = true;
        }
        if changed {
            headers.remove(&name);
            for v in replaced {
                headers.append(name.clone(), v);
            }
        }
    }

    if Placeholder::appears_in(body) {
        let form = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !form {
            return Err("it carries a credential placeholder in a body that is not a form (credentials go in the form fields of token and revocation requests only)".into());
        }
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(body) {
            if Placeholder::appears_in(k.as_bytes()) {
                return Err("it carries a credential placeholder as a form field name".into());
            }
            if Placeholder::appears_in(v.as_bytes()) {
                let value = lookup(&v, &Place::Form(k.to_string()), &mut out)?;
                ser.append_pair(&k, value.as_str());
            } else {
                ser.append_pair(&k, &v);
            }
        }
        let new_body = ser.finish().into_bytes();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(new_body.len()));
        out.body = Some(new_body);
    }

    if out.kinds.contains(&Kind::ApiKey) {
        // Only the declared scope header may name a scope next to the key (a connector that declares
        // none, or another, cannot slip `Close-Scope: mcp.write_destructive` past the check).
        let declared = key_headers.scope.as_ref().map(|(h, _)| h.to_ascii_lowercase());
        if let Some(other) = headers.keys().find(|n| n.as_str().ends_with("scope") && declared.as_deref() != Some(n.as_str())) {
            return Err(format!(
                "it carries the header {other} with the API key; only the connector's declared scope header ({}) may name a scope",
                declared.as_deref().unwrap_or("none declared")
            ));
        }
        if let Some((header, allowed)) = &key_headers.scope {
            let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| format!("the declared scope header `{header}` is not a header name"))?;
            let present: Vec<&HeaderValue> = headers.get_all(&name).iter().collect();
            if present.len() > 1 {
                return Err(format!("it repeats the scope header {name}"));
            }
            let current = present.first().map(|v| v.to_str().unwrap_or("\u{fffd}").to_string());
            let value = crate::oauth::scopes::check_scope_header(current.as_deref(), allowed)?;
            headers.insert(name, HeaderValue::from_str(&value).map_err(|_| "the scope cannot be sent as a header".to_string())?);
        }
    }
    Ok(out)
}

fn scheme_is(value: &[u8], scheme: &str) -> bool {
    value.len() > scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes()) && value[scheme.len()] == b' '
}

/// Looks a placeholder up for a place in the request, noting what was attached.
type Lookup<'a> = dyn Fn(&str, &Place, &mut Attached) -> Result<zeroize::Zeroizing<String>, String> + 'a;

/// `Authorization: Basic`: a placeholder may only be the password (`client_secret_basic`, whose id and
/// secret are form-encoded, RFC 6749 §2.3.1). `Ok(None)`: no placeholder in it.
fn basic_password(text: &str, lookup: &Lookup<'_>, out: &mut Attached) -> Result<Option<String>, String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let Ok(decoded) = engine.decode(text[6..].trim()) else {
        return if Placeholder::appears_in(text.as_bytes()) { Err("it carries a credential placeholder in a malformed Basic header".into()) } else { Ok(None) };
    };
    let decoded = zeroize::Zeroizing::new(decoded);
    if !Placeholder::appears_in(&decoded) {
        return Ok(None);
    }
    let s = std::str::from_utf8(&decoded).map_err(|_| "it carries a credential placeholder in a Basic header that is not UTF-8".to_string())?;
    let (user, password) = s.split_once(':').ok_or("it carries a credential placeholder in a Basic header without a password")?;
    let decode = |p: &str| url::form_urlencoded::parse(format!("x={p}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
    if Placeholder::appears_in(decode(user).as_bytes()) || Placeholder::appears_in(user.as_bytes()) {
        return Err("it carries a credential placeholder as the user name of a Basic header (a Basic header carries only a client secret, as its password)".into());
    }
    let value = lookup(&decode(password), &Place::BasicPassword, out)?;
    let enc = |p: &str| url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>();
    let pair = zeroize::Zeroizing::new(format!("{user}:{}", enc(value.as_str())));
    Ok(Some(format!("Basic {}", engine.encode(pair.as_bytes()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::credentials::{Binding, OAuthTargets};
    use std::collections::HashMap;
    use zeroize::Zeroizing;

    struct Creds(HashMap<Placeholder, Credential>);

    impl Resolve for Creds {
        fn credential(&self, p: &Placeholder) -> Option<Credential> {
            self.0.get(p).cloned()
        }
    }

    fn t(u: &str) -> Target {
        Target::parse(u).unwrap()
    }

    struct World {
        creds: Creds,
        key: Placeholder,
        access: Placeholder,
        refresh: Placeholder,
        secret: Placeholder,
        headers: KeyHeaders,
    }

    fn world() -> World {
        let endpoint = t("https://mcp.close.com/mcp");
        let oauth = OAuthTargets { token: Some(t("https://api.close.com/oauth2/token/")), revocation: Some(t("https://api.close.com/oauth2/revoke/")) };
        let mk = |kind, value: &str, binding| Credential::new(kind, Zeroizing::new(value.to_string()), binding);
        let key = mk(Kind::ApiKey, "api_KEY_value", Binding::api_key(&endpoint, Some("close-api-key")));
        let access = mk(Kind::AccessToken, "at-VALUE", Binding::oauth(Kind::AccessToken, &endpoint, &oauth));
        let refresh = mk(Kind::RefreshToken, "rt/VALUE+=", Binding::oauth(Kind::RefreshToken, &endpoint, &oauth));
        let secret = mk(Kind::ClientSecret, "cs:VALUE &", Binding::oauth(Kind::ClientSecret, &endpoint, &oauth));
        World {
            key: key.placeholder.clone(),
            access: access.placeholder.clone(),
            refresh: refresh.placeholder.clone(),
            secret: secret.placeholder.clone(),
            creds: Creds([key, access, refresh, secret].into_iter().map(|c| (c.placeholder.clone(), c)).collect()),
            headers: KeyHeaders { key: Some("close-api-key".into()), scope: Some(("close-scope".into(), vec!["mcp.read".into()])) },
        }
    }

    fn run(w: &World, method: Method, url: &str, headers: &[(&str, String)], body: &str, ct: Option<&str>) -> Result<(HeaderMap, Vec<u8>, Vec<Kind>), String> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        if let Some(ct) = ct {
            h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        let a = attach(method, &t(url), url, &mut h, body.as_bytes(), &w.creds, &w.headers)?;
        Ok((h, a.body.unwrap_or_else(|| body.as_bytes().to_vec()), a.kinds))
    }

    const MCP: &str = "https://mcp.close.com/mcp";
    const TOKEN: &str = "https://api.close.com/oauth2/token/";
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn credentials_are_attached_where_they_belong() {
        let w = world();
        let (h, _, kinds) = run(&w, Method::Post, MCP, &[("close-api-key", w.key.as_str().into())], "{}", None).unwrap();
        assert_eq!(h["close-api-key"], "api_KEY_value");
        assert_eq!(h["close-scope"], "mcp.read", "the host sets the scope header");
        assert_eq!(kinds, vec![Kind::ApiKey]);

        let (h, _, _) = run(&w, Method::Get, MCP, &[("authorization", format!("Bearer {}", w.access.as_str()))], "", None).unwrap();
        assert_eq!(h["authorization"], "Bearer at-VALUE");

        let body = format!("grant_type=refresh_token&refresh_token={}&client_id=c1", w.refresh.as_str());
        let (h, b, _) = run(&w, Method::Post, TOKEN, &[], &body, FORM).unwrap();
        assert_eq!(String::from_utf8(b.clone()).unwrap(), "grant_type=refresh_token&refresh_token=rt%2FVALUE%2B%3D&client_id=c1");
        assert_eq!(h[CONTENT_LENGTH], b.len().to_string().as_str());

        let basic = base64::engine::general_purpose::STANDARD.encode(format!("client%3A1:{}", w.secret.as_str()));
        let (h, _, _) = run(&w, Method::Post, TOKEN, &[("authorization", format!("Basic {basic}"))], "grant_type=x", FORM).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(h["authorization"].to_str().unwrap().strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "client%3A1:cs%3AVALUE+%26");
    }

    #[test]
    fn a_placeholder_anywhere_else_refuses_the_request() {
        let w = world();
        let rest_delete = "https://mcp.close.com/api/v1/lead/lead_1/";
        let rest_api = "https://api.close.com/api/v1/lead/";
        let basic_user = base64::engine::general_purpose::STANDARD.encode(format!("{}:", w.key.as_str()));
        let with_query = format!("{MCP}?k={}", w.key.as_str());
        // Method, URL, headers, body, content type, what the refusal says.
        type Case<'a> = (Method, &'a str, Vec<(&'a str, String)>, String, Option<&'a str>, &'a str);
        let cases: Vec<Case> = vec![
            // Close's REST API with its own key, every header form Close accepts.
            (Method::Delete, rest_delete, vec![("close-api-key", w.key.as_str().into())], String::new(), None, "does not belong"),
            (Method::Post, rest_api, vec![("authorization", format!("Basic {basic_user}"))], "{}".into(), None, "user name"),
            (Method::Post, rest_api, vec![("authorization", format!("Bearer {}", w.access.as_str()))], "{}".into(), None, "does not belong"),
            (Method::Patch, rest_api, vec![("authorization", format!("Bearer {}", w.key.as_str()))], "{}".into(), None, "does not belong"),
            // The right URL, the wrong place or method.
            (Method::Post, MCP, vec![("authorization", format!("Bearer {}", w.key.as_str()))], "{}".into(), None, "does not belong"),
            (Method::Put, MCP, vec![("close-api-key", w.key.as_str().into())], "{}".into(), None, "does not belong"),
            (Method::Post, MCP, vec![("x-exfil", w.key.as_str().into())], "{}".into(), None, "x-exfil"),
            (Method::Post, MCP, vec![("close-api-key", format!("{} ", w.key.as_str()) + "x")], "{}".into(), None, "mixed"),
            (Method::Post, MCP, vec![("close-api-key", w.key.as_str().into())], format!("{{\"k\":\"{}\"}}", w.key.as_str()), None, "not a form"),
            (Method::Post, &with_query, vec![], "{}".into(), None, "URL"),
            // The refresh token in a Bearer header, at the endpoint; the access token at the token endpoint.
            (Method::Post, MCP, vec![("authorization", format!("Bearer {}", w.refresh.as_str()))], "{}".into(), None, "refresh-token"),
            (Method::Post, TOKEN, vec![], format!("refresh_token={}", w.access.as_str()), FORM, "access-token"),
            (Method::Post, TOKEN, vec![], format!("token={}", w.refresh.as_str()), FORM, "form field token"),
            (Method::Post, TOKEN, vec![], format!("{}=x", w.refresh.as_str()), FORM, "field name"),
            // An unknown placeholder.
            (Method::Post, MCP, vec![("close-api-key", Placeholder::mint().as_str().into())], "{}".into(), None, "not one of this connection's"),
        ];
        for (method, url, headers, body, ct, needle) in cases {
            let e = run(&w, method, url, &headers, &body, ct).unwrap_err();
            assert!(e.contains(needle), "{method} {url}: {e}");
            assert!(!e.contains("VALUE") && !e.contains("api_KEY"), "a reason never holds a value: {e}");
        }
        // A header name holding a placeholder.
        let mut h = HeaderMap::new();
        h.insert(HeaderName::from_bytes(w.key.as_str().as_bytes()).unwrap(), HeaderValue::from_static("x"));
        assert!(attach(Method::Post, &t(MCP), MCP, &mut h, b"", &w.creds, &w.headers).unwrap_err().contains("header name"));
    }

    #[test]
    fn a_scope_header_wider_than_the_connection_is_refused() {
        let w = world();
        let e = run(&w, Method::Post, MCP, &[("close-api-key", w.key.as_str().into()), ("close-scope", "mcp.write_destructive".into())], "{}", None).unwrap_err();
        assert!(e.contains("limited to mcp.read"), "{e}");
        // Another scope header next to the key, or any when the connector declared none.
        let e = run(&w, Method::Post, MCP, &[("close-api-key", w.key.as_str().into()), ("x-close-scope", "mcp.write_destructive".into())], "{}", None).unwrap_err();
        assert!(e.contains("x-close-scope") && e.contains("(close-scope)"), "{e}");
        let mut undeclared = world();
        undeclared.headers.scope = None;
        let e = run(&undeclared, Method::Post, MCP, &[("close-api-key", undeclared.key.as_str().into()), ("close-scope", "mcp.write_destructive".into())], "{}", None).unwrap_err();
        assert!(e.contains("none declared"), "{e}");
        assert!(run(&undeclared, Method::Post, MCP, &[("close-api-key", undeclared.key.as_str().into())], "{}", None).is_ok());
        let (h, _, _) = run(&w, Method::Post, MCP, &[("close-api-key", w.key.as_str().into()), ("close-scope", "mcp.read".into())], "{}", None).unwrap();
        assert_eq!(h["close-scope"], "mcp.read");
    }

    #[test]
    fn requests_without_placeholders_pass_untouched() {
        let w = world();
        let (h, b, kinds) = run(&w, Method::Post, "https://api.close.com/oauth2/register/", &[("content-type", "application/json".into())], "{\"client_name\":\"x\"}", None).unwrap();
        assert!(kinds.is_empty());
        assert_eq!(b, b"{\"client_name\":\"x\"}");
        assert!(h.get("close-scope").is_none());
        let basic = base64::engine::general_purpose::STANDARD.encode("user:pass");
        let (h, _, _) = run(&w, Method::Post, TOKEN, &[("authorization", format!("Basic {basic}"))], "", None).unwrap();
        assert_eq!(h["authorization"], format!("Basic {basic}").as_str());
    }
    #[test]
    fn only_a_grant_credential_makes_the_answer_a_token_answer() {
        let w = world();
        let grant = |method, url: &str, headers: &[(&str, String)], body: &str, ct| {
            let mut h = HeaderMap::new();
            for (k, v) in headers {
                h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            }
            if let Some(ct) = ct {
                h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            }
            attach(method, &t(url), url, &mut h, body.as_bytes(), &w.creds, &w.headers).unwrap().grant_credential
        };
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("c1:{}", w.secret.as_str()));
        let table: Vec<(bool, bool)> = vec![
            (grant(Method::Post, TOKEN, &[], &format!("grant_type=refresh_token&refresh_token={}", w.refresh.as_str()), FORM), true),
            (grant(Method::Post, TOKEN, &[("authorization", format!("Basic {basic}"))], "grant_type=x", FORM), true),
            (grant(Method::Post, TOKEN, &[], &format!("client_secret={}", w.secret.as_str()), FORM), true),
            (grant(Method::Post, "https://api.close.com/oauth2/revoke/", &[], &format!("token={}", w.access.as_str()), FORM), true),
            (grant(Method::Post, MCP, &[("authorization", format!("Bearer {}", w.access.as_str()))], "{}", None), false),
            (grant(Method::Post, MCP, &[("close-api-key", w.key.as_str().into())], "{}", None), false),
            (grant(Method::Post, TOKEN, &[], "grant_type=authorization_code&code=raw", FORM), false),
        ];
        for (i, (got, want)) in table.into_iter().enumerate() {
            assert_eq!(got, want, "case {i}");
        }
    }
}
