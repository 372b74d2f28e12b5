//! The token endpoint: form-encoded requests with the client's authentication, token responses
//! (`oauth2`'s RFC 6749 types, read leniently), error answers, and [`GrantInfo`], what an
//! authorization in force remembers besides its tokens.

use super::fetch::{post, short, OAuthErrorBody};
use super::registration::{ClientAuthMethod, ClientInfo};
use super::OAuthContext;
use crate::error::{one_line, McpError};
use crate::url::{encode_component, encode_pairs};
use base64::Engine;
use oauth2::basic::BasicTokenType;
use oauth2::{ExtraTokenFields, StandardTokenResponse, TokenResponse as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The members of a token response beyond RFC 6749's (Close adds `organization_id` and `user_id`).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExtraFields(pub Map<String, Value>);

impl std::fmt::Debug for ExtraFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be credentials (an `id_token`): show the names only.
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl ExtraTokenFields for ExtraFields {}

/// A successful token response.
#[derive(Clone)]
pub struct TokenResponse {
    inner: StandardTokenResponse<ExtraFields, BasicTokenType>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &self.refresh_token().map(|_| "[redacted]"))
            .field("expires_in", &self.expires_in())
            .field("scopes", &self.scopes())
            .field("extra", &self.inner.extra_fields())
            .finish()
    }
}

impl TokenResponse {
    /// Reads a token response. `expires_in` may be a number or a numeric string, `scope` a string or
    /// an array; `token_type` must be `Bearer` (case-insensitive) and defaults to it when absent.
    pub fn parse(body: &[u8]) -> Result<TokenResponse, McpError> {
        let mut value: Value = serde_json::from_slice(body)
            .map_err(|_| McpError::protocol("the token response is not JSON"))?;
        let Some(obj) = value.as_object_mut() else {
            return Err(McpError::protocol(
                "the token response is not a JSON object",
            ));
        };
        match obj.get("token_type") {
            None | Some(Value::Null) => {
                obj.insert("token_type".into(), Value::from("Bearer"));
            }
            Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
            Some(other) => {
                return Err(McpError::protocol(format!(
                    "the token endpoint issued a `{}` token; only Bearer tokens are supported",
                    one_line(other.as_str().unwrap_or("?"), 30)
                )))
            }
        }
        let expires_in = match obj.get("expires_in") {
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match expires_in {
            Some(secs) => obj.insert("expires_in".into(), Value::from(secs)),
            None => obj.remove("expires_in"),
        };
        match obj.get("scope") {
            Some(Value::Array(items)) => {
                let joined = items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ");
                obj.insert("scope".into(), Value::from(joined));
            }
            Some(Value::String(_)) => {}
            Some(_) => {
                obj.remove("scope");
            }
            None => {}
        }
        if obj
            .get("refresh_token")
            .is_some_and(|r| !r.is_string() || r.as_str() == Some(""))
        {
            obj.remove("refresh_token");
        }
        let inner: StandardTokenResponse<ExtraFields, BasicTokenType> =
            serde_json::from_value(value).map_err(|e| {
                McpError::protocol(format!(
                    "the token response is malformed: {}",
                    one_line(&e.to_string(), 120)
                ))
            })?;
        if inner.access_token().secret().trim().is_empty() {
            return Err(McpError::protocol(
                "the token response has an empty access_token",
            ));
        }
        Ok(TokenResponse { inner })
    }

    pub fn access_token(&self) -> &str {
        self.inner.access_token().secret()
    }

    pub fn refresh_token(&self) -> Option<&str> {
        self.inner.refresh_token().map(|r| r.secret().as_str())
    }

    /// `expires_in`, in seconds.
    pub fn expires_in(&self) -> Option<u64> {
        self.inner.expires_in().map(|d| d.as_secs())
    }

    /// `scope`, split; `None` when the server did not say (then it granted what was requested).
    pub fn scopes(&self) -> Option<Vec<String>> {
        self.inner.scopes().map(|s| {
            s.iter()
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    /// The other members.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.inner.extra_fields().0
    }

    /// A short string (or number) member of the extra fields, e.g. `organization_id`.
    pub fn extra_str(&self, name: &str) -> Option<String> {
        match self.extra().get(name)? {
            Value::String(s) if !s.trim().is_empty() => Some(one_line(s, 100)),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// What an authorization in force remembers besides its tokens (connection state [`GRANT`]).
///
/// [`GRANT`]: super::keys::GRANT
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantInfo {
    /// The MCP endpoint the grant is for.
    pub endpoint: String,
    /// The `resource` parameter used (absent on the 2025-03-26 path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The authorization server's issuer, when it published metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    pub client: ClientInfo,
    /// The scopes asked for.
    #[serde(default)]
    pub requested_scopes: Vec<String>,
    /// The scopes granted (the token response's `scope`, else those asked for).
    #[serde(default)]
    pub granted_scopes: Vec<String>,
}

/// Why a token request failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenFailure {
    /// The endpoint answered an OAuth error (`invalid_grant`, `invalid_client`, …).
    OAuth { status: u16, error: OAuthErrorBody },
    /// Anything else (transport, 5xx, a malformed answer).
    Other(McpError),
}

impl From<McpError> for TokenFailure {
    fn from(e: McpError) -> Self {
        TokenFailure::Other(e)
    }
}

/// Request headers, and form parameters.
pub(crate) type Authentication = (Vec<(String, String)>, Vec<(&'static str, String)>);

/// The headers and body parameters that authenticate `client` (RFC 6749 §2.3.1).
pub(crate) fn client_authentication(
    client: &ClientInfo,
    secret: Option<&str>,
) -> Result<Authentication, McpError> {
    let missing = || McpError::Unauthorized {
        www_authenticate: None,
        message: "the OAuth client secret is missing; reconnect needed".to_owned(),
    };
    match client.auth_method {
        ClientAuthMethod::None => Ok((Vec::new(), vec![("client_id", client.client_id.clone())])),
        ClientAuthMethod::ClientSecretPost => {
            let secret = secret.ok_or_else(missing)?;
            Ok((
                Vec::new(),
                vec![
                    ("client_id", client.client_id.clone()),
                    ("client_secret", secret.to_owned()),
                ],
            ))
        }
        ClientAuthMethod::ClientSecretBasic => {
            let secret = secret.ok_or_else(missing)?;
            let pair = format!(
                "{}:{}",
                encode_component(&client.client_id),
                encode_component(secret)
            );
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            Ok((
                vec![("Authorization".to_owned(), format!("Basic {encoded}"))],
                Vec::new(),
            ))
        }
    }
}

/// POSTs a token request (`params` plus the client's authentication) and reads the answer.
pub(crate) fn token_request(
    ctx: &OAuthContext<'_>,
    token_endpoint: &str,
    client: &ClientInfo,
    secret: Option<&str>,
    params: Vec<(&'static str, String)>,
) -> Result<TokenResponse, TokenFailure> {
    let (headers, auth_params) = client_authentication(client, secret)?;
    let mut all = params;
    all.extend(auth_params);
    let body = encode_pairs(all.iter().map(|(k, v)| (*k, v.as_str())));
    let answer = post(
        ctx,
        token_endpoint,
        "application/x-www-form-urlencoded",
        headers,
        body.into_bytes(),
    )?;
    if (200..300).contains(&answer.status) {
        let has_token = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .is_some_and(|v| v.get("access_token").is_some());
        if !has_token {
            if let Some(error) = answer.oauth_error() {
                return Err(TokenFailure::OAuth {
                    status: answer.status,
                    error,
                });
            }
        }
        return Ok(TokenResponse::parse(&answer.body)?);
    }
    if let Some(error) = answer.oauth_error() {
        if answer.status < 500 {
            return Err(TokenFailure::OAuth {
                status: answer.status,
                error,
            });
        }
    }
    Err(TokenFailure::Other(McpError::Http {
        status: answer.status,
        message: format!(
            "the token endpoint {} answered HTTP {}: {}",
            short(token_endpoint),
            answer.status,
            answer.summary()
        ),
    }))
}

/// Whether the server no longer knows the client.
pub(crate) fn is_client_error(error: &OAuthErrorBody) -> bool {
    matches!(
        error.error.as_str(),
        "invalid_client" | "unauthorized_client"
    )
}

#[cfg(test)]
mod tests {
    use super::super::registration::ClientSource;
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<TokenResponse, McpError> {
        TokenResponse::parse(v.to_string().as_bytes())
    }

    #[test]
    fn a_token_response_keeps_its_tokens_lifetime_scope_and_extra_fields() {
        let t = parse(json!({
            "access_token": "at-1", "token_type": "bearer", "expires_in": 3600,
            "refresh_token": "rt-1", "scope": "mcp.read offline_access",
            "organization_id": "orga_1", "user_id": "user_1"
        }))
        .unwrap();
        assert_eq!(t.access_token(), "at-1");
        assert_eq!(t.refresh_token(), Some("rt-1"));
        assert_eq!(t.expires_in(), Some(3600));
        assert_eq!(
            t.scopes(),
            Some(vec!["mcp.read".into(), "offline_access".into()])
        );
        assert_eq!(t.extra_str("organization_id").as_deref(), Some("orga_1"));
        let debug = format!("{t:?}");
        assert!(
            !debug.contains("at-1") && !debug.contains("rt-1"),
            "{debug}"
        );
    }

    #[test]
    fn lenient_shapes_of_expiry_scope_and_token_type_are_accepted() {
        let t = parse(json!({ "access_token": "a", "expires_in": "120", "scope": ["x", "y"] }))
            .unwrap();
        assert_eq!(t.expires_in(), Some(120));
        assert_eq!(t.scopes(), Some(vec!["x".into(), "y".into()]));
        let t = parse(json!({ "access_token": "a", "token_type": "Bearer", "expires_in": 59.5, "refresh_token": "" })).unwrap();
        assert_eq!(t.expires_in(), Some(59));
        assert_eq!(t.refresh_token(), None);
        assert_eq!(t.scopes(), None);
    }

    #[test]
    fn a_token_response_that_is_not_a_bearer_token_or_has_no_token_is_refused() {
        for bad in [
            json!({ "access_token": "a", "token_type": "DPoP" }),
            json!({ "token_type": "Bearer" }),
            json!({ "access_token": " ", "token_type": "Bearer" }),
            json!([1]),
        ] {
            assert!(
                matches!(parse(bad.clone()), Err(McpError::Protocol(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn client_authentication_follows_the_method() {
        let client = |m| ClientInfo {
            client_id: "id:1".into(),
            auth_method: m,
            source: ClientSource::Dynamic,
            registration_key: None,
        };
        let (h, p) = client_authentication(&client(ClientAuthMethod::None), None).unwrap();
        assert!(h.is_empty());
        assert_eq!(p, vec![("client_id", "id:1".to_owned())]);
        let (h, p) =
            client_authentication(&client(ClientAuthMethod::ClientSecretPost), Some("s")).unwrap();
        assert!(h.is_empty());
        assert_eq!(p.len(), 2);
        let (h, p) =
            client_authentication(&client(ClientAuthMethod::ClientSecretBasic), Some("s e"))
                .unwrap();
        assert!(p.is_empty());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(h[0].1.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"id%3A1:s%20e");
        assert!(matches!(
            client_authentication(&client(ClientAuthMethod::ClientSecretBasic), None),
            Err(McpError::Unauthorized { .. })
        ));
    }
}
