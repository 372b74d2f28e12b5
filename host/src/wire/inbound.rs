//! What comes back: responses that may carry a credential are rewritten before the connector reads
//! them, so that it never sees a credential value.
//!
//! Which responses those are is decided **before the request is sent** ([`Treatment::decide`]), from
//! what the request carried and what the URL was when the grant allowed it — not from what the host
//! has learned by the time the answer arrives, and not from the policy's `connection_urls`:
//!
//! * the answer to a request into which the host attached a grant credential (a refresh token, an
//!   authorization code, a client secret, or any credential in a form field) **is** a token answer;
//! * so is the answer of the token, registration and revocation endpoints the host learned;
//! * and any other JSON answer whose top level names `access_token`, `refresh_token`, `id_token`,
//!   `client_secret` or `registration_access_token` ([`crate::wire::json_members`]) is rewritten the
//!   same way, wherever it came from.
//!
//! Rewriting ([`rewrite_credential_response`]) replaces every such member by a fresh placeholder; the
//! values are held for the call, sealed only if the connector claims them with `update-secrets`. The
//! `scope` member tells the host what was granted. It fails closed: a 2xx answer that is not a JSON
//! object (nor empty) is refused — the host cannot tell what in it is a credential — and a non-2xx
//! answer that is not a JSON object reaches the connector with its status and no body.
//!
//! Echoes of values the host already knows are masked separately ([`crate::wire::masker`]).

use crate::oauth::discovery::Purpose;
use crate::vault::credentials::{Kind, Placeholder};
use crate::wire::json_members::CREDENTIAL_MEMBERS;
use serde_json::Value;

/// The largest token or registration response the host reads (larger ones are refused).
pub const MAX_OAUTH_RESPONSE: usize = 256 * 1024;

/// What a token response said, besides its tokens.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TokenFacts {
    /// Its `scope`, split (`None`: absent, meaning what was asked).
    pub scope: Option<Vec<String>>,
    /// Whether it carried an access token (a successful grant or refresh).
    pub granted: bool,
}

/// How the send hook treats the response to one request, decided before the request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// OAuth metadata at a location the host derived: read whole and learned from.
    Metadata,
    /// An answer that may hold new credentials: read whole, every credential member rewritten,
    /// refused when it cannot be read.
    Credentials,
    /// Anything else: streamed with echoes masked; a JSON body naming a credential member is still
    /// rewritten (or cut, when too large to read whole).
    Plain,
}

impl Treatment {
    /// The treatment of the answer to a request: `purpose` is what the URL was to the authorization
    /// when the grant allowed the request (`None`: nothing, or not known); `grant_credential` whether
    /// the host attached a grant credential to it ([`crate::wire::attach::Attached::grant_credential`]).
    pub fn decide(purpose: Option<Purpose>, grant_credential: bool) -> Treatment {
        if grant_credential {
            return Treatment::Credentials;
        }
        match purpose {
            Some(Purpose::Token | Purpose::Registration | Purpose::Revocation) => Treatment::Credentials,
            Some(Purpose::ResourceMetadata | Purpose::ServerMetadata) => Treatment::Metadata,
            Some(Purpose::Authorization) | None => Treatment::Plain,
        }
    }
}

/// Rewrite an answer that may hold credentials (a token, registration or revocation answer, or any
/// JSON naming a credential member): each credential member of the top-level object becomes a
/// placeholder minted by `mint(kind, value)`. Returns the new body and what it said. See the module
/// docs for what is refused.
pub fn rewrite_credential_response(
    status: u16,
    body: &[u8],
    mint: &mut dyn FnMut(Kind, zeroize::Zeroizing<String>) -> Placeholder,
) -> Result<(Vec<u8>, TokenFacts), String> {
    let success = (200..300).contains(&status);
    let mut doc: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ if body.iter().all(u8::is_ascii_whitespace) => return Ok((Vec::new(), TokenFacts::default())),
        _ if !success => return Ok((Vec::new(), TokenFacts::default())),
        _ => {
            return Err("the answer may hold a credential but is not a JSON object; the host passes on only JSON it can rewrite".into())
        }
    };
    let obj = doc.as_object_mut().expect("an object");
    let mut facts = TokenFacts::default();
    for (member, kind) in CREDENTIAL_MEMBERS {
        match obj.get(member) {
            Some(Value::String(v)) if !v.is_empty() => {
                let p = mint(kind, zeroize::Zeroizing::new(v.clone()));
                facts.granted |= kind == Kind::AccessToken;
                obj.insert(member.to_string(), Value::String(p.as_str().to_string()));
            }
            Some(Value::String(_)) | Some(Value::Null) | None => {}
            Some(_) => return Err(format!("the answer's {member} is not a string; refused")),
        }
    }
    facts.scope = match obj.get("scope") {
        Some(Value::String(s)) => Some(s.split_whitespace().map(str::to_string).collect()),
        Some(Value::Array(a)) => Some(a.iter().filter_map(Value::as_str).map(str::to_string).collect()),
        _ => None,
    };
    Ok((serde_json::to_vec(&doc).map_err(|e| e.to_string())?, facts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    /// What a test minter saw: kind, value, placeholder.
    type Seen = std::rc::Rc<std::cell::RefCell<Vec<(Kind, String, Placeholder)>>>;

    /// An answer, and what rewriting it should give (the body) or say (a part of the error).
    type Case<'a> = (u16, &'a [u8], Result<&'a [u8], &'a str>);

    fn minter() -> (impl FnMut(Kind, Zeroizing<String>) -> Placeholder, Seen) {
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let s2 = seen.clone();
        (
            move |k: Kind, v: Zeroizing<String>| {
                let p = Placeholder::mint();
                s2.borrow_mut().push((k, v.to_string(), p.clone()));
                p
            },
            seen,
        )
    }

    #[test]
    fn a_token_response_reaches_the_connector_with_placeholders_only() {
        let (mut mint, seen) = minter();
        let body = br#"{"access_token":"AT-secret-1","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-secret-1","id_token":"ID.secret","scope":"mcp.read offline_access","organization_id":"orga_1"}"#;
        let (out, facts) = rewrite_credential_response(200, body, &mut mint).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("orga_1") && text.contains("3600"));
        assert_eq!(facts.scope, Some(vec!["mcp.read".to_string(), "offline_access".to_string()]));
        assert!(facts.granted);
        let seen = seen.borrow();
        assert_eq!(seen.iter().map(|(k, _, _)| *k).collect::<Vec<_>>(), vec![Kind::AccessToken, Kind::RefreshToken, Kind::IdToken]);
        for (_, value, p) in seen.iter() {
            assert!(text.contains(p.as_str()) && !text.contains(value.as_str()));
        }
    }

    #[test]
    fn answers_that_cannot_be_read_are_refused_or_reach_the_connector_without_a_body() {
        let (mut mint, seen) = minter();
        let table: &[Case] = &[
            // 2xx: a JSON object, or nothing at all (a revocation answer).
            (200, b"access_token=AT&token_type=bearer", Err("not a JSON object")),
            (200, b"\x1f\x8b\x08\x00compressed", Err("not a JSON object")),
            (201, b"[]", Err("not a JSON object")),
            (200, br#"{"access_token":{"v":"AT"}}"#, Err("not a string")),
            (200, br#"{"client_secret":42}"#, Err("not a string")),
            (200, b"", Ok(b"")),
            (200, b" \r\n", Ok(b"")),
            // Errors: JSON objects pass (rewritten), anything else loses its body.
            (400, br#"{"error":"invalid_grant"}"#, Ok(br#"{"error":"invalid_grant"}"#)),
            (502, b"<html>bad gateway</html>", Ok(b"")),
            (400, b"\x1f\x8b\x08\x00compressed", Ok(b"")),
        ];
        for (status, body, want) in table {
            let got = rewrite_credential_response(*status, body, &mut mint);
            match (got, want) {
                (Ok((out, facts)), Ok(w)) => {
                    assert_eq!(&out[..], *w, "{status} {}", String::from_utf8_lossy(body));
                    assert!(!facts.granted);
                }
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{status}: {e}"),
                (got, _) => panic!("{status} {}: {:?}", String::from_utf8_lossy(body), got.map(|g| g.0)),
            }
        }
        assert!(seen.borrow().is_empty());
    }

    #[test]
    fn a_registration_secret_becomes_a_placeholder() {
        let (mut mint, seen) = minter();
        let body = br#"{"client_id":"c1","client_secret":"CS-value","registration_access_token":"RAT-value"}"#;
        let (out, _) = rewrite_credential_response(201, body, &mut mint).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"client_id\":\"c1\"") && !text.contains("-value"), "{text}");
        assert_eq!(seen.borrow().iter().map(|(k, _, _)| *k).collect::<Vec<_>>(), vec![Kind::ClientSecret, Kind::RegistrationToken]);
        let public = br#"{"client_id":"c2"}"#;
        assert_eq!(rewrite_credential_response(201, public, &mut mint).unwrap().0, public);
    }

    #[test]
    fn a_response_is_a_token_answer_when_a_grant_credential_went_into_its_request() {
        use Purpose::*;
        let table: &[(Option<Purpose>, bool, Treatment)] = &[
            // Whatever the URL was (nothing learned, a metadata URL, an alias of the token endpoint).
            (None, true, Treatment::Credentials),
            (Some(ResourceMetadata), true, Treatment::Credentials),
            (Some(Authorization), true, Treatment::Credentials),
            // The endpoints that answer with credentials.
            (Some(Token), false, Treatment::Credentials),
            (Some(Registration), false, Treatment::Credentials),
            (Some(Revocation), false, Treatment::Credentials),
            (Some(ServerMetadata), false, Treatment::Metadata),
            (Some(Authorization), false, Treatment::Plain),
            (None, false, Treatment::Plain),
        ];
        for (purpose, grant_credential, want) in table {
            assert_eq!(Treatment::decide(*purpose, *grant_credential), *want, "{purpose:?} {grant_credential}");
        }
    }
}
