//! Credentials a connector never holds: what they are, the placeholders a connector sees instead, and
//! where each one may be attached.
//!
//! A connector is third-party code, so the host keeps every credential itself: the API key the
//! operator gave, the tokens and client secrets that come back from the vendor's authorization
//! server, the authorization code in the browser's redirect. The connector sees only a
//! [`Placeholder`] — `clbph_` and 32 random characters, different for every value — and uses it as if
//! it were the credential. On the way out, the send hook ([`crate::wire::attach`]) replaces a
//! placeholder by its value only in the places the credential's [`Binding`] names: a given header or
//! form field, of a request with a given method, to exactly one URL. A placeholder anywhere else
//! refuses the request. A credential the connector never had cannot leak, whatever it does.
//!
//! ```
//! use claribi_host::policy::{Method, Target};
//! use claribi_host::vault::credentials::{Binding, Kind, Place, Placeholder};
//!
//! let endpoint = Target::parse("https://mcp.close.com/mcp").unwrap();
//! let binding = Binding::api_key(&endpoint, Some("close-api-key"));
//! assert!(binding.allows(Method::Post, &endpoint, &Place::Header("close-api-key".into())));
//! // Not on another path of the same origin (Close's REST API), not in another header:
//! let rest = Target::parse("https://mcp.close.com/api/v1/lead/").unwrap();
//! assert!(!binding.allows(Method::Post, &rest, &Place::Header("close-api-key".into())));
//! assert!(!binding.allows(Method::Post, &endpoint, &Place::Bearer));
//! let p = Placeholder::mint();
//! assert!(Placeholder::parse(p.as_str()).is_some() && Kind::ApiKey.is_attachable());
//! ```

use crate::policy::{Method, Target};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a credential is. Everything a connector stores that is none of these is its own value (a
/// PKCE verifier, an expiry time): sealed like every secret, handed back as is, never attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An API key the operator gave (`connect --api-key-env`).
    ApiKey,
    /// An OAuth access token (from a token response).
    AccessToken,
    /// An OAuth refresh token (from a token response).
    RefreshToken,
    /// An OpenID Connect ID token (from a token response; never sent anywhere).
    IdToken,
    /// An OAuth client secret (the operator's `--client-secret-env`, or a registration response).
    ClientSecret,
    /// The authorization code of the browser's redirect.
    AuthorizationCode,
    /// A registration's `registration_access_token` (RFC 7592; never sent anywhere).
    RegistrationToken,
}

impl Kind {
    /// The kind's name, e.g. `access-token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ApiKey => "api-key",
            Kind::AccessToken => "access-token",
            Kind::RefreshToken => "refresh-token",
            Kind::IdToken => "id-token",
            Kind::ClientSecret => "client-secret",
            Kind::AuthorizationCode => "authorization-code",
            Kind::RegistrationToken => "registration-token",
        }
    }

    /// Parse [`Kind::as_str`].
    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::ApiKey,
            Kind::AccessToken,
            Kind::RefreshToken,
            Kind::IdToken,
            Kind::ClientSecret,
            Kind::AuthorizationCode,
            Kind::RegistrationToken,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether the host ever attaches this kind to a request.
    pub fn is_attachable(self) -> bool {
        !matches!(self, Kind::IdToken | Kind::RegistrationToken)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a connector sees instead of a credential: `clbph_` and 32 characters of `a-z2-7` (160 random
/// bits), minted for one value. A refreshed token gets a new one, so comparing two placeholders tells
/// whether the values differ (the refresh single-flight of `mcp-client` relies on that).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Placeholder(String);

impl fmt::Debug for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Placeholders are not secrets, but they are never shown either: only their start.
        write!(f, "Placeholder({}…)", &self.0[..PREFIX.len() + 4])
    }
}

/// How every placeholder starts.
pub const PREFIX: &str = "clbph_";
/// The characters after [`PREFIX`].
pub const BODY_LEN: usize = 32;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl Placeholder {
    /// A fresh placeholder.
    pub fn mint() -> Placeholder {
        use rand::RngCore;
        let mut bytes = [0u8; BODY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let body: String = bytes.iter().map(|b| ALPHABET[(b & 31) as usize] as char).collect();
        Placeholder(format!("{PREFIX}{body}"))
    }

    /// `text` if it is exactly one placeholder.
    pub fn parse(text: &str) -> Option<Placeholder> {
        let body = text.strip_prefix(PREFIX)?;
        (body.len() == BODY_LEN && body.bytes().all(|b| ALPHABET.contains(&b))).then(|| Placeholder(text.to_string()))
    }

    /// The placeholder's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` holds something that starts like a placeholder anywhere.
    pub fn appears_in(text: &[u8]) -> bool {
        memchr::memmem::find(text, PREFIX.as_bytes()).is_some()
    }
}

/// Where in a request a credential is attached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "place", content = "name")]
pub enum Place {
    /// `Authorization: Bearer <credential>`.
    Bearer,
    /// A header (lower-case name) whose whole value is the credential, e.g. `close-api-key`.
    Header(String),
    /// A field of an `application/x-www-form-urlencoded` body, e.g. `refresh_token`.
    Form(String),
    /// The password of `Authorization: Basic` (`client_secret_basic`, RFC 6749 §2.3.1).
    BasicPassword,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Bearer => f.write_str("Authorization: Bearer"),
            Place::Header(h) => write!(f, "header {h}"),
            Place::Form(n) => write!(f, "form field {n}"),
            Place::BasicPassword => f.write_str("Authorization: Basic password"),
        }
    }
}

/// One place a credential may go: exactly this URL (scheme, host, port, path), these methods, these
/// places in the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// `scheme://host[:port]/path`.
    pub url: String,
    /// Methods, upper case.
    pub methods: Vec<String>,
    /// Where in the request.
    pub places: Vec<Place>,
    /// What the URL is, e.g. `MCP endpoint`, `token endpoint`.
    pub purpose: String,
}

impl Destination {
    fn new(target: &Target, methods: &[Method], places: Vec<Place>, purpose: &str) -> Destination {
        Destination {
            url: target.url(),
            methods: methods.iter().map(|m| m.as_str().to_string()).collect(),
            places,
            purpose: purpose.to_string(),
        }
    }

    fn allows(&self, method: Method, target: &Target, place: &Place) -> bool {
        self.url == target.url() && self.methods.iter().any(|m| m == method.as_str()) && self.places.contains(place)
    }
}

/// Everywhere one credential may be attached. Empty: nowhere (an ID token, or a client secret whose
/// authorization server is not known yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Binding {
    destinations: Vec<Destination>,
}

/// The OAuth URLs a binding may name, as the host learned them from the endpoint's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuthTargets {
    /// The authorization server's token endpoint.
    pub token: Option<Target>,
    /// Its revocation endpoint (RFC 7009), when it has one.
    pub revocation: Option<Target>,
}

const ENDPOINT_METHODS: &[Method] = &[Method::Get, Method::Post, Method::Delete];
const MCP_ENDPOINT: &str = "MCP endpoint";

impl Binding {
    /// An API key: the MCP endpoint, in `header` (its whole value), or `Authorization: Bearer` when
    /// the connector declares no header (or declares `authorization`).
    pub fn api_key(endpoint: &Target, header: Option<&str>) -> Binding {
        let place = match header.map(|h| h.trim().to_ascii_lowercase()) {
            None => Place::Bearer,
            Some(h) if h == "authorization" || h.is_empty() => Place::Bearer,
            Some(h) => Place::Header(h),
        };
        Binding { destinations: vec![Destination::new(endpoint, ENDPOINT_METHODS, vec![place], MCP_ENDPOINT)] }
    }

    /// A credential of an OAuth grant, bound to what the host learned of the authorization server.
    pub fn oauth(kind: Kind, endpoint: &Target, oauth: &OAuthTargets) -> Binding {
        let mut d = Vec::new();
        let post = &[Method::Post];
        let revocation = |d: &mut Vec<Destination>, places: Vec<Place>| {
            if let Some(r) = &oauth.revocation {
                d.push(Destination::new(r, post, places, "revocation endpoint"));
            }
        };
        match kind {
            Kind::AccessToken => {
                d.push(Destination::new(endpoint, ENDPOINT_METHODS, vec![Place::Bearer], MCP_ENDPOINT));
                revocation(&mut d, vec![Place::Form("token".into())]);
            }
            Kind::RefreshToken => {
                if let Some(t) = &oauth.token {
                    d.push(Destination::new(t, post, vec![Place::Form("refresh_token".into())], "token endpoint"));
                }
                revocation(&mut d, vec![Place::Form("token".into())]);
            }
            Kind::AuthorizationCode => {
                if let Some(t) = &oauth.token {
                    d.push(Destination::new(t, post, vec![Place::Form("code".into())], "token endpoint"));
                }
            }
            Kind::ClientSecret => {
                let places = vec![Place::Form("client_secret".into()), Place::BasicPassword];
                if let Some(t) = &oauth.token {
                    d.push(Destination::new(t, post, places.clone(), "token endpoint"));
                }
                revocation(&mut d, places);
            }
            Kind::ApiKey | Kind::IdToken | Kind::RegistrationToken => {}
        }
        Binding { destinations: d }
    }

    /// Whether the credential may be attached at `place` of a `method` request to `target`.
    pub fn allows(&self, method: Method, target: &Target, place: &Place) -> bool {
        self.destinations.iter().any(|d| d.allows(method, target, place))
    }

    /// Whether the binding names this exact URL for this method (whatever the place).
    pub fn names(&self, method: Method, target: &Target) -> bool {
        self.destinations.iter().any(|d| d.url == target.url() && d.methods.iter().any(|m| m == method.as_str()))
    }

    /// The destinations.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// Whether the credential may go nowhere.
    pub fn is_empty(&self) -> bool {
        self.destinations.is_empty()
    }

    /// One line per destination, e.g. `POST https://api.close.com/oauth2/token/ (token endpoint), form field refresh_token`.
    pub fn describe(&self) -> Vec<String> {
        self.destinations
            .iter()
            .map(|d| {
                let places: Vec<String> = d.places.iter().map(Place::to_string).collect();
                format!("{} {} ({}), {}", d.methods.join(","), d.url, d.purpose, places.join(" or "))
            })
            .collect()
    }
}

/// The longest credential value the host accepts (8 KiB). Real API keys and tokens are far shorter
/// (a JWT is one or two KiB); a longer one is refused when it is received (a token answer, the
/// operator's key or client secret), so that everything that looks for values stays small.
pub const MAX_VALUE_LEN: usize = 8 * 1024;

/// Refuse a credential value longer than [`MAX_VALUE_LEN`] (the error names the kind, never the value).
pub fn check_value_len(kind: Kind, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_LEN {
        return Err(format!(
            "the {kind} is {} bytes, longer than the {} KiB the host accepts for a credential; refused",
            value.len(),
            MAX_VALUE_LEN / 1024
        ));
    }
    Ok(())
}

/// A credential as the host holds it: its kind, its placeholder, its value and where it may go.
#[derive(Clone)]
pub struct Credential {
    /// What it is.
    pub kind: Kind,
    /// What the connector sees.
    pub placeholder: Placeholder,
    /// The value (zeroed when dropped).
    pub value: zeroize::Zeroizing<String>,
    /// Where it may be attached.
    pub binding: Binding,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential").field("kind", &self.kind).field("binding", &self.binding).finish_non_exhaustive()
    }
}

impl Credential {
    /// A credential with a fresh placeholder.
    pub fn new(kind: Kind, value: zeroize::Zeroizing<String>, binding: Binding) -> Credential {
        Credential { kind, placeholder: Placeholder::mint(), value, binding }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn placeholders_are_unique_recognisable_and_exact() {
        let a = Placeholder::mint();
        let b = Placeholder::mint();
        assert_ne!(a, b);
        assert_eq!(Placeholder::parse(a.as_str()), Some(a.clone()));
        assert!(Placeholder::parse(&format!("{} ", a.as_str())).is_none(), "exactly one placeholder");
        assert!(Placeholder::parse(&format!("Bearer {}", a.as_str())).is_none());
        assert!(Placeholder::parse("clbph_short").is_none());
        assert!(Placeholder::parse(&format!("{PREFIX}{}", "A".repeat(BODY_LEN))).is_none(), "upper case is not the alphabet");
        assert!(Placeholder::appears_in(format!("x={}&y", a.as_str()).as_bytes()));
        assert!(!Placeholder::appears_in(b"clbph"));
        assert!(!format!("{a:?}").contains(&a.as_str()[10..]), "Debug shows only the start");
    }

    #[test]
    fn each_kind_is_bound_to_exactly_its_urls_and_places() {
        let endpoint = t("https://mcp.close.com/mcp");
        let oauth = OAuthTargets { token: Some(t("https://api.close.com/oauth2/token/")), revocation: Some(t("https://api.close.com/oauth2/revoke/")) };
        let token = t("https://api.close.com/oauth2/token/");
        let revoke = t("https://api.close.com/oauth2/revoke/");
        let rest = t("https://api.close.com/api/v1/lead/");
        let form = |n: &str| Place::Form(n.into());
        let cases: Vec<(Kind, Method, &Target, Place, bool)> = vec![
            (Kind::AccessToken, Method::Post, &endpoint, Place::Bearer, true),
            (Kind::AccessToken, Method::Get, &endpoint, Place::Bearer, true),
            (Kind::AccessToken, Method::Put, &endpoint, Place::Bearer, false),
            (Kind::AccessToken, Method::Post, &rest, Place::Bearer, false),
            (Kind::AccessToken, Method::Post, &token, Place::Bearer, false),
            (Kind::AccessToken, Method::Post, &revoke, form("token"), true),
            (Kind::AccessToken, Method::Post, &revoke, Place::Bearer, false),
            (Kind::RefreshToken, Method::Post, &token, form("refresh_token"), true),
            (Kind::RefreshToken, Method::Post, &token, form("code"), false),
            (Kind::RefreshToken, Method::Post, &endpoint, Place::Bearer, false),
            (Kind::RefreshToken, Method::Post, &revoke, form("token"), true),
            (Kind::AuthorizationCode, Method::Post, &token, form("code"), true),
            (Kind::AuthorizationCode, Method::Post, &revoke, form("token"), false),
            (Kind::ClientSecret, Method::Post, &token, Place::BasicPassword, true),
            (Kind::ClientSecret, Method::Post, &token, form("client_secret"), true),
            (Kind::ClientSecret, Method::Post, &endpoint, Place::Bearer, false),
            (Kind::IdToken, Method::Post, &endpoint, Place::Bearer, false),
            (Kind::RegistrationToken, Method::Post, &token, form("code"), false),
        ];
        for (kind, method, target, place, expected) in cases {
            let b = Binding::oauth(kind, &endpoint, &oauth);
            assert_eq!(b.allows(method, target, &place), expected, "{kind} {method} {target} {place}");
        }
    }

    #[test]
    fn an_api_key_goes_only_in_its_header_to_the_endpoint() {
        let endpoint = t("https://mcp.close.com/mcp");
        let b = Binding::api_key(&endpoint, Some("Close-API-Key"));
        assert!(b.allows(Method::Post, &endpoint, &Place::Header("close-api-key".into())));
        assert!(!b.allows(Method::Post, &endpoint, &Place::Bearer));
        assert!(!b.allows(Method::Post, &endpoint, &Place::BasicPassword));
        assert!(!b.allows(Method::Post, &t("https://mcp.close.com/api/v1/lead/"), &Place::Header("close-api-key".into())));
        assert!(!b.allows(Method::Post, &t("http://mcp.close.com/mcp"), &Place::Header("close-api-key".into())));
        let bearer = Binding::api_key(&endpoint, None);
        assert!(bearer.allows(Method::Post, &endpoint, &Place::Bearer));
        assert_eq!(Binding::api_key(&endpoint, Some("authorization")), bearer);
    }

    #[test]
    fn a_credential_without_a_known_server_goes_nowhere() {
        let endpoint = t("https://mcp.example/mcp");
        let b = Binding::oauth(Kind::ClientSecret, &endpoint, &OAuthTargets::default());
        assert!(b.is_empty());
        assert!(!Kind::IdToken.is_attachable());
        assert_eq!(Kind::parse("refresh-token"), Some(Kind::RefreshToken));
        assert_eq!(Kind::parse("nope"), None);
    }

    #[test]
    fn bindings_describe_themselves_in_one_line_each() {
        let endpoint = t("https://mcp.close.com/mcp");
        let oauth = OAuthTargets { token: Some(t("https://api.close.com/oauth2/token/")), revocation: None };
        let lines = Binding::oauth(Kind::RefreshToken, &endpoint, &oauth).describe();
        assert_eq!(lines, vec!["POST https://api.close.com/oauth2/token/ (token endpoint), form field refresh_token"]);
    }

    #[test]
    fn a_value_longer_than_8_kib_is_refused_without_being_shown() {
        let ok = "a".repeat(MAX_VALUE_LEN);
        assert!(check_value_len(Kind::AccessToken, &ok).is_ok());
        let long = format!("{ok}Z");
        let e = check_value_len(Kind::RefreshToken, &long).unwrap_err();
        assert!(e.contains("refresh-token") && e.contains("8 KiB") && !e.contains("aaaa") && !e.contains('\n'), "{e}");
    }
}
