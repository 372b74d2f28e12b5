//! Who may call `serve --http`, and where it may listen: engine tokens.
//!
//! An engine token is a bearer credential for one AI engine, made by
//! `claribi-host engine-token create NAME`: 32 random bytes, shown once as `cbe_<base64url>`, stored
//! only as its SHA-256 ([`crate::vault::store`]). Every request the engine sends carries it as
//! `Authorization: Bearer cbe_…`; the host hashes what it receives and looks the hash up, so the
//! comparison never runs over the token itself and a revoked token stops working at the next request.
//! Every call is attributed to the token's name in the audit trail.
//!
//! Where `serve --http` may listen ([`Admission::decide`]):
//!
//! | address      | engine tokens | TLS (`--tls-cert`/`--tls-key`) | requests                                 |
//! |--------------|---------------|--------------------------------|------------------------------------------|
//! | loopback     | none ever made| any                            | admitted without a token (`loopback`)    |
//! | loopback     | any made      | any                            | a working token required                 |
//! | loopback + `--public-name` | none working | any               | refused at start: create a token first   |
//! | non-loopback | none          | any                            | refused at start: create a token first   |
//! | non-loopback | ≥ 1           | no                             | refused at start: a token would travel in clear |
//! | non-loopback | ≥ 1           | yes                            | a working token required, always         |
//!
//! Whether a loopback listener needs a token is read per request, so a token created while `serve`
//! runs closes it at once, and it stays closed: revoking every token does not reopen it. A
//! non-loopback listener never admits a request without a working token. The `Host` and `Origin` checks (DNS rebinding) apply either way.

use crate::vault::store::Store;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use zeroize::Zeroizing;

/// What every engine token starts with (so a leaked one is recognizable in a scan).
pub const TOKEN_PREFIX: &str = "cbe_";

/// The engine a request came from, put into the request's extensions by [`require_engine`] and read
/// by the MCP handler for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineIdentity(pub String);

/// Attribution of requests admitted without a token on loopback.
pub const LOOPBACK_ENGINE: &str = "loopback";
/// Attribution of calls over `serve` on stdio (the engine that started the process).
pub const STDIO_ENGINE: &str = "stdio";

/// A new token's value: `cbe_` and 32 random bytes, base64url.
pub fn generate() -> Zeroizing<String> {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    Zeroizing::new(format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())))
}

/// The SHA-256 (hex) a token is stored and looked up by.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The token of an `Authorization` header value (`Bearer <token>`, the scheme in any case).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' ')).then_some(token)
}

/// Check an engine token's name (it appears in the audit trail and in `engine-token list`).
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if name == LOOPBACK_ENGINE || name == STDIO_ENGINE {
        return Err(format!("`{name}` names unauthenticated calls in the audit trail; choose another engine token name"));
    }
    if ok {
        return Ok(());
    }
    Err(format!(
        "`{}` is not a valid engine token name; use 1-63 characters of letters, digits, -, _ and . (e.g. clari-engine-eu)",
        crate::errors::one_line(name)
    ))
}

/// How many engine tokens the store holds: ever made (revoked included), and working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    pub made: usize,
    pub working: usize,
}

impl Tokens {
    /// Read from the store.
    pub fn of(store: &Store) -> Result<Tokens, String> {
        Ok(Tokens { made: store.engine_tokens_made()?, working: store.active_engine_tokens()? })
    }
}

/// How `serve --http` admits requests (see the module docs' table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Loopback: without a token while no token works; with one as soon as one does.
    LoopbackOpen,
    /// Every request needs a working token.
    TokensRequired,
}

impl Admission {
    /// Decide at start, from the address, how many tokens were ever made and how many work, whether
    /// TLS is configured, and whether public names were given (a loopback address behind a proxy
    /// that serves the world is not a private listener).
    pub fn decide(bind: SocketAddr, tokens: Tokens, tls: bool, public_names: bool) -> Result<Admission, String> {
        let active_tokens = tokens.working;
        if bind.ip().is_loopback() && !public_names {
            return Ok(if tokens.made > 0 { Admission::TokensRequired } else { Admission::LoopbackOpen });
        }
        if bind.ip().is_loopback() {
            return if active_tokens > 0 {
                Ok(Admission::TokensRequired)
            } else {
                Err(format!(
                    "--http {bind} with --public-name serves whoever reaches that name; create an engine token first with `claribi-host engine-token create NAME`"
                ))
            };
        }
        if active_tokens == 0 {
            return Err(format!(
                "--http {bind}: a non-loopback address needs engine tokens; create one with `claribi-host engine-token create NAME` and give it to the engine"
            ));
        }
        if !tls {
            return Err(format!(
                "--http {bind}: a non-loopback address needs TLS (engine tokens must not travel in clear); pass --tls-cert FILE --tls-key FILE (PEM)"
            ));
        }
        Ok(Admission::TokensRequired)
    }
}

/// What [`require_engine`] checks requests against.
#[derive(Clone)]
pub struct Gate {
    pub store: Arc<Store>,
    pub admission: Admission,
}

/// Why a request was turned away (one line, never the token).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header where one is needed.
    Missing,
    /// A header that is not `Bearer <token>`, or a token no working engine token hashes to.
    Unknown,
    /// The store could not be read.
    Unavailable(String),
}

impl Gate {
    /// Who a request with this `Authorization` header value is, or why it is refused.
    pub fn admit(&self, authorization: Option<&str>) -> Result<EngineIdentity, Refusal> {
        match authorization {
            Some(value) => {
                let token = bearer(value).ok_or(Refusal::Unknown)?;
                match self.store.engine_token_by_hash(&digest(token)) {
                    Ok(Some(name)) => Ok(EngineIdentity(name)),
                    Ok(None) => Err(Refusal::Unknown),
                    Err(e) => Err(Refusal::Unavailable(e)),
                }
            }
            // Open only while no token was ever made: revoking the last one does not reopen it.
            None if self.admission == Admission::LoopbackOpen => match self.store.engine_tokens_made() {
                Ok(0) => Ok(EngineIdentity(LOOPBACK_ENGINE.into())),
                Ok(_) => Err(Refusal::Missing),
                Err(e) => Err(Refusal::Unavailable(e)),
            },
            None => Err(Refusal::Missing),
        }
    }
}

/// The axum middleware in front of `/mcp`: admits a request ([`Gate::admit`]) and records who sent
/// it in its extensions, or answers 401 (`WWW-Authenticate: Bearer`) with a one-line reason.
pub async fn require_engine(
    axum::extract::State(gate): axum::extract::State<Gate>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = request.headers().get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    match gate.admit(header) {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(refusal) => {
            let (status, challenge, message) = match refusal {
                Refusal::Missing => (
                    http::StatusCode::UNAUTHORIZED,
                    "Bearer realm=\"claribi\"",
                    "this server needs an engine token: send `Authorization: Bearer <token>` (make one with `claribi-host engine-token create NAME`)".to_string(),
                ),
                Refusal::Unknown => (
                    http::StatusCode::UNAUTHORIZED,
                    "Bearer realm=\"claribi\", error=\"invalid_token\"",
                    "the engine token is unknown or revoked; ask the operator for a working one (`claribi-host engine-token list`)".to_string(),
                ),
                Refusal::Unavailable(e) => {
                    tracing::warn!("engine token check failed: {e}");
                    (http::StatusCode::SERVICE_UNAVAILABLE, "", "the host cannot check engine tokens right now; retry shortly".to_string())
                }
            };
            let mut response = (status, message).into_response();
            if !challenge.is_empty() {
                response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static(challenge));
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn where_serve_may_listen() {
        use Admission::*;
        let t = |made, working| Tokens { made, working };
        let table: &[(&str, Tokens, bool, bool, Result<Admission, &str>)] = &[
            ("127.0.0.1:8765", t(0, 0), false, false, Ok(LoopbackOpen)),
            ("[::1]:8765", t(0, 0), true, false, Ok(LoopbackOpen)),
            ("127.0.0.1:8765", t(2, 2), false, false, Ok(TokensRequired)),
            ("127.0.0.1:8765", t(1, 0), false, false, Ok(TokensRequired)),
            ("127.0.0.1:8765", t(0, 0), false, true, Err("with --public-name serves whoever reaches that name")),
            ("127.0.0.1:8765", t(1, 1), false, true, Ok(TokensRequired)),
            ("0.0.0.0:8765", t(0, 0), true, false, Err("create one with `claribi-host engine-token create NAME`")),
            ("0.0.0.0:8765", t(3, 0), true, false, Err("create one with `claribi-host engine-token create NAME`")),
            ("10.0.0.5:8765", t(1, 1), false, false, Err("pass --tls-cert FILE --tls-key FILE")),
            ("0.0.0.0:8765", t(1, 1), true, false, Ok(TokensRequired)),
            ("[::]:8765", t(3, 3), true, true, Ok(TokensRequired)),
        ];
        for (bind, tokens, tls, public, want) in table {
            match (Admission::decide(addr(bind), *tokens, *tls, *public), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{bind} {tokens:?} {tls}"),
                (Err(got), Err(want)) => assert!(got.contains(want) && !got.contains('\n'), "{bind}: {got}"),
                (got, want) => panic!("{bind} {tokens:?} {tls}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn bearer_headers_are_read_strictly() {
        assert_eq!(bearer("Bearer cbe_abc"), Some("cbe_abc"));
        assert_eq!(bearer("bearer   cbe_abc "), Some("cbe_abc"));
        for bad in ["", "Bearer", "Bearer ", "Basic cbe_abc", "cbe_abc", "Bearer a b"] {
            assert_eq!(bearer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_random_prefixed_and_stored_by_digest() {
        let (a, b) = (generate(), generate());
        assert_ne!(*a, *b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 43, "{}", a.len());
        assert_eq!(digest(&a).len(), 64);
        assert!(!digest(&a).contains(&a[TOKEN_PREFIX.len()..]));
    }

    #[test]
    fn token_names_are_checked() {
        assert!(validate_name("clari-engine.eu_1").is_ok());
        for bad in ["", "-x", "a b", "a/b", &"x".repeat(64), "loopback", "stdio"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_gate_admits_working_tokens_and_opens_loopback_only_while_none_was_ever_made() {
        let store = Arc::new(Store::in_memory().unwrap());
        let open = Gate { store: store.clone(), admission: Admission::LoopbackOpen };
        let strict = Gate { store: store.clone(), admission: Admission::TokensRequired };
        assert_eq!(open.admit(None), Ok(EngineIdentity(LOOPBACK_ENGINE.into())));
        assert_eq!(strict.admit(None), Err(Refusal::Missing));
        let token = generate();
        store.insert_engine_token("engine-a", &digest(&token)).unwrap();
        let header = format!("Bearer {}", *token);
        assert_eq!(open.admit(None), Err(Refusal::Missing), "a token exists now: loopback closes");
        assert_eq!(open.admit(Some(&header)), Ok(EngineIdentity("engine-a".into())));
        assert_eq!(strict.admit(Some(&header)), Ok(EngineIdentity("engine-a".into())));
        assert_eq!(strict.admit(Some("Bearer cbe_guess")), Err(Refusal::Unknown));
        store.revoke_engine_token("engine-a").unwrap();
        assert_eq!(strict.admit(Some(&header)), Err(Refusal::Unknown), "revoked: refused at the next request");
        assert_eq!(strict.admit(None), Err(Refusal::Missing), "no token left: a strict gate stays shut");
        assert_eq!(open.admit(None), Err(Refusal::Missing), "revoking the last token does not reopen loopback");
    }
}
