//! Which OAuth client an authorization runs as, in the MCP spec's order of preference:
//!
//! 1. a pre-registered client, from the connection options `client_id` (and `client_secret`);
//! 2. a client ID metadata document, when the authorization server advertises
//!    `client_id_metadata_document_supported` and the option `client_metadata_url` is set (that URL
//!    is the `client_id`; nothing is registered);
//! 3. dynamic client registration (RFC 7591) as a public native client. A registration is kept and
//!    reused, keyed by issuer and redirect URI (without the port for a loopback IP literal, which
//!    RFC 8252 §7.3 lets vary): in the connector's shared state when it is public, in the
//!    connection's own state (its secret in a secret) when it came with a client secret.
//!
//! The token-endpoint authentication method is chosen like the reference SDK does
//! ([`select_auth_method`]). A client secret is only ever kept as a secret.

use super::fetch::{post, short};
use super::keys;
use super::metadata::ServerMetadata;
use super::OAuthContext;
use crate::error::{one_line, McpError};
use crate::url::HttpUrl;
use crate::LogLevel;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Digest;

/// How the client authenticates at the token (and revocation) endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// A public client: `client_id` in the body, no secret.
    None,
    /// `Authorization: Basic` with the form-encoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the body.
    ClientSecretPost,
}

impl ClientAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::None => "none",
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
        }
    }

    /// The method of a registered name; other methods (`private_key_jwt`, …) are not supported.
    pub fn parse(name: &str) -> Option<ClientAuthMethod> {
        match name {
            "none" => Some(ClientAuthMethod::None),
            "client_secret_basic" => Some(ClientAuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(ClientAuthMethod::ClientSecretPost),
            _ => None,
        }
    }

    pub fn needs_secret(self) -> bool {
        self != ClientAuthMethod::None
    }
}

/// Where the client identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSource {
    PreRegistered,
    MetadataDocument,
    Dynamic,
}

/// The client an authorization runs as. It never holds the secret (see [`keys::CLIENT_SECRET`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub client_id: String,
    pub auth_method: ClientAuthMethod,
    pub source: ClientSource,
    /// Where a dynamic registration is kept (a shared-state key, or [`keys::CLIENT`]), so that it
    /// can be dropped when the server no longer knows the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_key: Option<String>,
}

/// The client settings a connection's options may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// Option `client_id`: a pre-registered client.
    pub client_id: Option<String>,
    /// Option `client_secret`: its secret, if it is confidential.
    pub client_secret: Option<String>,
    /// Option `client_metadata_url`: the HTTPS URL of this client's metadata document.
    pub client_metadata_url: Option<String>,
}

impl ClientOptions {
    /// Reads `client_id`, `client_secret` and `client_metadata_url` from `key=value` options.
    pub fn from_options(options: &[(String, String)]) -> ClientOptions {
        let get = |name: &str| {
            options
                .iter()
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        ClientOptions {
            client_id: get("client_id"),
            client_secret: get("client_secret"),
            client_metadata_url: get("client_metadata_url"),
        }
    }
}

/// The client chosen for an authorization, and its secret (to be stored as a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientChoice {
    pub info: ClientInfo,
    pub secret: Option<String>,
}

/// A dynamic registration as kept in state (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredRegistration {
    issuer: String,
    redirect: String,
    client_id: String,
    auth_method: ClientAuthMethod,
    /// `client_secret_expires_at` (0: never).
    #[serde(default)]
    secret_expires_at: u64,
}

/// What a registration is for.
pub struct RegistrationRequest<'a> {
    /// The issuer (or, without metadata, the MCP origin) the registration belongs to.
    pub issuer: &'a str,
    pub redirect_uri: &'a str,
    pub client_name: &'a str,
    /// The scopes the authorization will ask for (sent in the registration, as the reference SDK does).
    pub scopes: &'a [String],
}

/// Chooses (and if needed registers) the client. `options` are the connection's.
pub fn choose_client(
    ctx: &OAuthContext<'_>,
    server: &ServerMetadata,
    request: &RegistrationRequest<'_>,
    options: &ClientOptions,
) -> Result<ClientChoice, McpError> {
    let supported = server.token_endpoint_auth_methods_supported.as_deref();
    if let Some(client_id) = &options.client_id {
        // The secret of a pre-registered client: an option, or (as the clariBI host does it, so that it
        // is never stored in clear) the connection's secret `oauth-client-secret`.
        let secret = options
            .client_secret
            .clone()
            .or_else(|| ctx.host.secret(keys::CLIENT_SECRET));
        let method = select_auth_method(None, secret.is_some(), supported);
        ctx.log(
            LogLevel::Info,
            &format!(
                "OAuth client: pre-registered `{}` ({})",
                one_line(client_id, 80),
                method.as_str()
            ),
        );
        return Ok(ClientChoice {
            info: ClientInfo {
                client_id: client_id.clone(),
                auth_method: method,
                source: ClientSource::PreRegistered,
                registration_key: None,
            },
            secret: secret.filter(|_| method.needs_secret()),
        });
    }
    if let Some(url) = &options.client_metadata_url {
        if server.client_id_metadata_document_supported {
            check_metadata_document_url(url)?;
            ctx.log(
                LogLevel::Info,
                &format!("OAuth client: metadata document {}", short(url)),
            );
            return Ok(ClientChoice {
                info: ClientInfo {
                    client_id: url.clone(),
                    auth_method: ClientAuthMethod::None,
                    source: ClientSource::MetadataDocument,
                    registration_key: None,
                },
                secret: None,
            });
        }
    }
    let redirect = redirect_key(request.redirect_uri);
    if let Some(choice) = reuse_registration(ctx, request.issuer, &redirect) {
        return Ok(choice);
    }
    register(ctx, server, request, &redirect)
}

/// The token-endpoint authentication method, as the reference SDK chooses it: the registered method
/// when the server lists it (or lists nothing); else, without a list, Basic with a secret and `none`
/// without; else Basic, then Post (with a secret), then `none`, whichever the server lists.
pub fn select_auth_method(
    registered: Option<ClientAuthMethod>,
    has_secret: bool,
    supported: Option<&[String]>,
) -> ClientAuthMethod {
    let listed = |m: ClientAuthMethod| supported.is_some_and(|s| s.iter().any(|x| x == m.as_str()));
    let unlisted = supported.is_none_or(|s| s.is_empty());
    if let Some(m) = registered {
        if (unlisted || listed(m)) && (has_secret || !m.needs_secret()) {
            return m;
        }
    }
    if unlisted {
        return if has_secret {
            ClientAuthMethod::ClientSecretBasic
        } else {
            ClientAuthMethod::None
        };
    }
    if has_secret && listed(ClientAuthMethod::ClientSecretBasic) {
        ClientAuthMethod::ClientSecretBasic
    } else if has_secret && listed(ClientAuthMethod::ClientSecretPost) {
        ClientAuthMethod::ClientSecretPost
    } else if listed(ClientAuthMethod::None) || !has_secret {
        ClientAuthMethod::None
    } else {
        ClientAuthMethod::ClientSecretBasic
    }
}

/// Drops a dynamic registration the server no longer accepts (`invalid_client`), so that the next
/// authorization registers again.
pub fn drop_registration(ctx: &OAuthContext<'_>, client: &ClientInfo) {
    if client.source != ClientSource::Dynamic {
        return;
    }
    match client.registration_key.as_deref() {
        Some(keys::CLIENT) => ctx.host.set_state(keys::CLIENT, None),
        Some(key) => ctx.host.set_shared_state(key, None),
        None => return,
    }
    ctx.log(
        LogLevel::Info,
        "the authorization server no longer knows the registered client; the next authorization registers again",
    );
}

/// The shared-state key of a public registration for `issuer` and a redirect key.
pub fn shared_key(issuer: &str, redirect: &str) -> String {
    let digest = sha2::Sha256::digest(format!("{issuer}\n{redirect}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}{hex}", keys::SHARED_CLIENT_PREFIX)
}

/// The redirect URI a registration is kept under: without its port for `http` on a loopback IP
/// literal (the port changes with every authorization, RFC 8252 §7.3), verbatim otherwise.
pub fn redirect_key(redirect_uri: &str) -> String {
    match HttpUrl::parse(redirect_uri) {
        Ok(u) if u.scheme == "http" && u.is_loopback_ip() => {
            format!("http://{}{}", u.host, u.path())
        }
        _ => redirect_uri.to_owned(),
    }
}

fn check_metadata_document_url(url: &str) -> Result<(), McpError> {
    match HttpUrl::parse(url) {
        Ok(u) if u.scheme == "https" && u.path() != "/" && !url.contains('#') => Ok(()),
        _ => Err(McpError::protocol(format!(
            "the option client_metadata_url ({}) must be an https URL with a path",
            short(url)
        ))),
    }
}

fn reuse_registration(
    ctx: &OAuthContext<'_>,
    issuer: &str,
    redirect: &str,
) -> Option<ClientChoice> {
    let now = super::now_secs();
    let usable = |r: &StoredRegistration| {
        r.issuer == issuer
            && r.redirect == redirect
            && (r.secret_expires_at == 0 || r.secret_expires_at > now + 60)
    };
    if let Some(own) = ctx
        .state_json::<StoredRegistration>(keys::CLIENT)
        .filter(usable)
    {
        let secret = ctx.host.secret(keys::CLIENT_SECRET);
        if secret.is_some() || !own.auth_method.needs_secret() {
            ctx.log(
                LogLevel::Debug,
                &format!(
                    "OAuth client: reusing this connection's registration `{}`",
                    one_line(&own.client_id, 80)
                ),
            );
            return Some(ClientChoice {
                info: ClientInfo {
                    client_id: own.client_id,
                    auth_method: own.auth_method,
                    source: ClientSource::Dynamic,
                    registration_key: Some(keys::CLIENT.to_owned()),
                },
                secret,
            });
        }
    }
    let key = shared_key(issuer, redirect);
    let shared = ctx
        .host
        .shared_state(&key)
        .and_then(|raw| serde_json::from_str::<StoredRegistration>(&raw).ok())
        .filter(usable)
        .filter(|r| !r.auth_method.needs_secret())?;
    ctx.log(
        LogLevel::Info,
        &format!(
            "OAuth client: reusing the registration `{}`",
            one_line(&shared.client_id, 80)
        ),
    );
    Some(ClientChoice {
        info: ClientInfo {
            client_id: shared.client_id,
            auth_method: shared.auth_method,
            source: ClientSource::Dynamic,
            registration_key: Some(key),
        },
        secret: None,
    })
}

fn register(
    ctx: &OAuthContext<'_>,
    server: &ServerMetadata,
    request: &RegistrationRequest<'_>,
    redirect: &str,
) -> Result<ClientChoice, McpError> {
    let Some(endpoint) = &server.registration_endpoint else {
        return Err(McpError::protocol(
            "the authorization server offers no client registration; set the connection options client_id (and client_secret) of a client registered there",
        ));
    };
    let mut body = json!({
        "client_name": request.client_name,
        "redirect_uris": [request.redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    });
    if !request.scopes.is_empty() {
        body["scope"] = Value::from(request.scopes.join(" "));
    }
    let answer = post(
        ctx,
        endpoint,
        "application/json",
        Vec::new(),
        body.to_string().into_bytes(),
    )?;
    if !(200..300).contains(&answer.status) {
        let why = answer
            .oauth_error()
            .map(|e| e.describe())
            .unwrap_or_else(|| answer.summary());
        return Err(if answer.status >= 500 {
            McpError::Http {
                status: answer.status,
                message: format!("the client registration failed: {why}"),
            }
        } else {
            McpError::protocol(format!(
                "the authorization server refused to register this client (HTTP {}): {why}",
                answer.status
            ))
        });
    }
    let doc: Value = serde_json::from_slice(&answer.body)
        .map_err(|_| McpError::protocol("the client registration answer is not JSON"))?;
    let client_id = doc
        .get("client_id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| McpError::protocol("the client registration answer has no client_id"))?
        .to_owned();
    let secret = doc
        .get("client_secret")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    // RFC 7591 §2: an omitted method means client_secret_basic (which needs the secret).
    let registered = match doc
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
    {
        Some(m) => ClientAuthMethod::parse(m),
        None if secret.is_some() => Some(ClientAuthMethod::ClientSecretBasic),
        None => Some(ClientAuthMethod::None),
    };
    let method = select_auth_method(
        registered,
        secret.is_some(),
        server.token_endpoint_auth_methods_supported.as_deref(),
    );
    let stored = StoredRegistration {
        issuer: request.issuer.to_owned(),
        redirect: redirect.to_owned(),
        client_id: client_id.clone(),
        auth_method: method,
        secret_expires_at: doc
            .get("client_secret_expires_at")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    };
    let json = serde_json::to_string(&stored).unwrap_or_default();
    let key = if method.needs_secret() {
        ctx.host.set_state(keys::CLIENT, Some(&json));
        keys::CLIENT.to_owned()
    } else {
        let key = shared_key(request.issuer, redirect);
        ctx.host.set_shared_state(&key, Some(&json));
        key
    };
    ctx.log(
        LogLevel::Info,
        &format!(
            "OAuth client: registered `{}` ({})",
            one_line(&client_id, 80),
            method.as_str()
        ),
    );
    Ok(ClientChoice {
        info: ClientInfo {
            client_id,
            auth_method: method,
            source: ClientSource::Dynamic,
            registration_key: Some(key),
        },
        secret: secret.filter(|_| method.needs_secret()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ClientAuthMethod::{ClientSecretBasic as Basic, ClientSecretPost as Post, None as Public};

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_auth_method_follows_the_registration_then_the_servers_list() {
        let basic_only = list(&["client_secret_basic"]);
        let post_only = list(&["client_secret_post"]);
        let none_only = list(&["none"]);
        let all = list(&["none", "client_secret_post", "client_secret_basic"]);
        type Case<'a> = (
            Option<ClientAuthMethod>,
            bool,
            Option<&'a [String]>,
            ClientAuthMethod,
        );
        let cases: Vec<Case> = vec![
            (Some(Post), true, Some(&post_only), Post),
            (Some(Basic), true, Some(&basic_only), Basic),
            (Some(Public), false, Some(&none_only), Public),
            (Some(Post), true, None, Post),
            (Some(Basic), true, Some(&post_only), Post),
            (Some(Basic), true, Some(&none_only), Public),
            (None, true, None, Basic),
            (None, false, None, Public),
            (None, true, Some(&all), Basic),
            (None, true, Some(&post_only), Post),
            (None, false, Some(&basic_only), Public),
            (Some(Basic), false, Some(&all), Public),
        ];
        for (i, (registered, secret, supported, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                select_auth_method(registered, secret, supported),
                expected,
                "case {i}"
            );
        }
    }

    #[test]
    fn a_loopback_ip_redirect_is_keyed_without_its_port() {
        assert_eq!(
            redirect_key("http://127.0.0.1:49152/callback"),
            "http://127.0.0.1/callback"
        );
        assert_eq!(redirect_key("http://[::1]:5/cb"), "http://[::1]/cb");
        assert_eq!(
            redirect_key("http://localhost:3000/callback"),
            "http://localhost:3000/callback"
        );
        assert_eq!(
            redirect_key("https://app.example/cb"),
            "https://app.example/cb"
        );
        let a = shared_key("https://as", "http://127.0.0.1/callback");
        assert!(a.starts_with("oauth-client:") && a.len() == "oauth-client:".len() + 32);
        assert_ne!(a, shared_key("https://as2", "http://127.0.0.1/callback"));
    }

    #[test]
    fn options_name_the_pre_registered_client_and_the_metadata_document() {
        let o = ClientOptions::from_options(&[
            ("client_id".into(), " abc ".into()),
            ("client_secret".into(), "".into()),
            ("other".into(), "x".into()),
        ]);
        assert_eq!(o.client_id.as_deref(), Some("abc"));
        assert_eq!(o.client_secret, None);
        assert_eq!(o.client_metadata_url, None);
    }
}
