//! Dynamic client registration (RFC 7591), read by the host before it is sent.
//!
//! A connector registers its OAuth client itself, but the registration decides where the vendor may
//! send an authorization code (`redirect_uris`), which grants the client may use and which scopes it
//! may ever ask for. So the host reads every registration request — any JSON request body whose top
//! level has `redirect_uris`, wherever it goes, and any body sent to the registration endpoint the
//! host learned — and refuses it unless:
//!
//! * `redirect_uris` is exactly the host's redirect URI (only an authorization the host started has
//!   one: a registration outside `begin-authorization` is refused);
//! * `scope`, when present, names only scopes the connection may ask for;
//! * `grant_types` is within `authorization_code`, `refresh_token`; `response_types` within `code`;
//! * `token_endpoint_auth_method` is `none`, `client_secret_basic` or `client_secret_post`;
//! * it names no key material or pre-registered requests of the connector's choosing (`jwks`,
//!   `jwks_uri`, `request_uris`, `software_statement`, `sector_identifier_uri`).
//!
//! ```
//! use claribi_host::oauth::registration::{check, Expected};
//! let allowed = vec!["mcp.read".to_string()];
//! let ok = br#"{"client_name":"x","redirect_uris":["http://127.0.0.1:5/callback"],"scope":"mcp.read"}"#;
//! let expected = Expected { redirect_uri: Some("http://127.0.0.1:5/callback"), allowed: &allowed };
//! assert!(check(ok, &expected).is_ok());
//! let evil = br#"{"redirect_uris":["http://127.0.0.1:5/callback","https://evil.example/cb"]}"#;
//! assert!(check(evil, &expected).unwrap_err().contains("redirect"));
//! ```

use serde_json::Value;

/// What the host expects of a registration.
pub struct Expected<'a> {
    /// The redirect URI of the authorization in progress (`None`: none is).
    pub redirect_uri: Option<&'a str>,
    /// The scopes the connection may ask for.
    pub allowed: &'a [String],
}

/// Whether `body` is a registration request: a JSON object naming `redirect_uris` at its top level.
pub fn is_registration(body: &[u8]) -> bool {
    // Cheap first: only bodies that mention the member are parsed.
    memchr::memmem::find(body, b"redirect_uris").is_some()
        && matches!(serde_json::from_slice::<Value>(body), Ok(Value::Object(o)) if o.contains_key("redirect_uris"))
}

const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];
const AUTH_METHODS: &[&str] = &["none", "client_secret_basic", "client_secret_post"];
const REFUSED: &[&str] = &["jwks", "jwks_uri", "request_uris", "software_statement", "sector_identifier_uri"];

fn strings<'a>(v: &'a Value, member: &str) -> Result<Vec<&'a str>, String> {
    match v {
        Value::Array(items) => items.iter().map(|i| i.as_str().ok_or_else(|| format!("its {member} holds something other than strings"))).collect(),
        _ => Err(format!("its {member} is not a list")),
    }
}

/// Check a registration request body (see the module docs). The error is one line, for the operator.
pub fn check(body: &[u8], expected: &Expected<'_>) -> Result<(), String> {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(body) else {
        return Err("a client registration must be a JSON object the host can read".into());
    };
    let Some(redirect) = expected.redirect_uri else {
        return Err("it registers an OAuth client outside an authorization the host started (begin-authorization)".into());
    };
    match doc.get("redirect_uris") {
        Some(v) if strings(v, "redirect_uris")? == [redirect] => {}
        _ => return Err(format!("it registers redirect URIs other than exactly the host's ({redirect})")),
    }
    for member in REFUSED {
        if doc.contains_key(*member) {
            return Err(format!("it registers {member}, which the host does not let a connector choose"));
        }
    }
    if let Some(v) = doc.get("grant_types") {
        if let Some(g) = strings(v, "grant_types")?.into_iter().find(|g| !GRANT_TYPES.contains(g)) {
            return Err(format!("it registers the grant type `{}`; only authorization_code and refresh_token are allowed", crate::text::one_line(g)));
        }
    }
    if let Some(v) = doc.get("response_types") {
        if let Some(r) = strings(v, "response_types")?.into_iter().find(|r| *r != "code") {
            return Err(format!("it registers the response type `{}`; only code is allowed", crate::text::one_line(r)));
        }
    }
    match doc.get("token_endpoint_auth_method") {
        None => {}
        Some(Value::String(m)) if AUTH_METHODS.contains(&m.as_str()) => {}
        Some(other) => {
            return Err(format!(
                "it registers the token endpoint authentication `{}`; only none, client_secret_basic and client_secret_post are allowed",
                crate::text::one_line(&other.to_string())
            ))
        }
    }
    match doc.get("scope") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            let beyond: Vec<&str> = s.split_whitespace().filter(|s| !expected.allowed.iter().any(|a| a == s)).collect();
            if !beyond.is_empty() {
                return Err(format!(
                    "it registers the scope {} beyond what this connection may ask for ({}); to allow it, reconnect with --scope",
                    crate::text::one_line(&beyond.join(" ")),
                    if expected.allowed.is_empty() { "no scope".to_string() } else { expected.allowed.join(" ") }
                ));
            }
        }
        Some(_) => return Err("its scope is not a string".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIRECT: &str = "http://127.0.0.1:5/callback";

    #[test]
    fn a_registration_must_name_only_the_hosts_redirect_and_the_connections_scopes() {
        let allowed = vec!["mcp.read".to_string(), "offline_access".to_string()];
        let expected = Expected { redirect_uri: Some(REDIRECT), allowed: &allowed };
        let mcp_client = r#"{"client_name":"clariBI","redirect_uris":["http://127.0.0.1:5/callback"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none","application_type":"native","scope":"mcp.read offline_access"}"#;
        let table: &[(&str, Option<&str>)] = &[
            (mcp_client, None),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback"]}"#, None),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback","https://evil.example/cb"]}"#, Some("redirect URIs")),
            (r#"{"redirect_uris":["https://evil.example/cb"]}"#, Some("redirect URIs")),
            (r#"{"redirect_uris":[]}"#, Some("redirect URIs")),
            (r#"{"redirect_uris":"http://127.0.0.1:5/callback"}"#, Some("not a list")),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback"],"scope":"mcp.read mcp.write_destructive"}"#, Some("mcp.write_destructive")),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback"],"scope":["mcp.read"]}"#, Some("scope is not a string")),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback"],"grant_types":["client_credentials"]}"#, Some("client_credentials")),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback"],"grant_types":["implicit"]}"#, Some("implicit")),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback"],"response_types":["token"]}"#, Some("response type")),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback"],"token_endpoint_auth_method":"private_key_jwt"}"#, Some("private_key_jwt")),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback"],"jwks_uri":"https://evil.example/jwks"}"#, Some("jwks_uri")),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback"],"jwks":{"keys":[]}}"#, Some("jwks")),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback"],"software_statement":"e30.e30."}"#, Some("software_statement")),
            (r#"{"redirect_uris":["http://127.0.0.1:5/callback"],"request_uris":["https://evil.example/r"]}"#, Some("request_uris")),
            ("not json", Some("JSON object")),
        ];
        for (body, refused) in table {
            match (check(body.as_bytes(), &expected), refused) {
                (Ok(()), None) => {}
                (Err(e), Some(needle)) => assert!(e.contains(needle) && !e.contains('\n'), "{body}: {e}"),
                (got, _) => panic!("{body}: {got:?}"),
            }
        }
        let outside = Expected { redirect_uri: None, allowed: &allowed };
        assert!(check(mcp_client.as_bytes(), &outside).unwrap_err().contains("outside an authorization"));
    }

    #[test]
    fn only_bodies_naming_redirect_uris_at_the_top_are_registrations() {
        assert!(is_registration(br#"{"client_name":"x","redirect_uris":[]}"#));
        assert!(!is_registration(br#"{"jsonrpc":"2.0","method":"tools/call","params":{"arguments":{"redirect_uris":[]}}}"#));
        assert!(!is_registration(b"grant_type=authorization_code&redirect_uri=x"));
        assert!(!is_registration(br#"{"note":"redirect_uris"}"#));
    }
}
