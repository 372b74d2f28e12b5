//! The authorization code flow with PKCE, split the way a connector's exports are:
//!
//! * [`begin`] finds the authorization server (a stored 401/403 challenge, else a probe of the MCP
//!   endpoint without credentials, then [`discovery`](super::discovery)), chooses the client and the
//!   scopes, and builds the authorization URL: `response_type=code`, `client_id`, `redirect_uri`, a
//!   PKCE S256 challenge, a fresh 256-bit `state`, `scope` (omitted when empty) and `resource` (the
//!   protected resource's identifier, verbatim). The verifier is kept as a secret, everything else
//!   `complete` needs as state: `complete` runs in another instance.
//! * [`complete`] checks the redirect (`state`, then `error`, then RFC 9207 `iss`), exchanges the
//!   code, and returns the tokens without storing them, so that the connector can refuse a grant
//!   (a missing scope) and store nothing.
//! * [`store_grant`] keeps the tokens (one atomic secret update) and what refresh and revocation
//!   need.

use super::discovery::discover;
use super::fetch::random_token;
use super::registration::{
    choose_client, drop_registration, ClientInfo, ClientOptions, RegistrationRequest,
};
use super::scope::{ScopeInputs, ScopePolicy, OFFLINE_ACCESS};
use super::token::{is_client_error, token_request, GrantInfo, TokenFailure, TokenResponse};
use super::{grant_info, keys, stored_challenge, Expiry, OAuthContext, StoredChallenge};
use crate::client::{ClientConfig, McpClient};
use crate::error::{one_line, McpError};
use crate::url::{query_pairs, with_query, HttpUrl};
use crate::{LogLevel, MemorySessionStore, NoAuth};
use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use serde::{Deserialize, Serialize};

/// What an authorization needs to know about the connection and the connector.
pub struct OAuthSettings<'a> {
    /// The MCP endpoint.
    pub endpoint: String,
    /// `client_name` of a dynamic registration, and `clientInfo.name` of the probe.
    pub client_name: String,
    /// `clientInfo.version` of the probe.
    pub client_version: String,
    /// The client settings of the connection's options.
    pub client: ClientOptions,
    /// The connection's configured scopes.
    pub configured_scopes: Vec<String>,
    /// Chooses the scopes.
    pub scope_policy: &'a dyn ScopePolicy,
    /// Authorization-server metadata locations to try after the spec's (vendor knowledge; empty for
    /// a generic client).
    pub extra_metadata_urls: Vec<String>,
    /// The era the unauthenticated probe speaks (the connection's, so that the challenge comes from
    /// the same kind of request the calls will make).
    pub protocol: crate::ProtocolChoice,
}

/// The authorization URL to open, and what the host needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationStart {
    pub url: String,
    /// The `state` in `url`.
    pub state: String,
    /// The scopes asked for (empty: `scope` omitted).
    pub scopes: Vec<String>,
}

/// The authorization in progress (connection state [`keys::PENDING`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    endpoint: String,
    state: String,
    redirect_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    /// The issuer the redirect's `iss` must equal (RFC 9207), when the server published metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    /// The server promised `iss` on its redirects.
    #[serde(default)]
    iss_required: bool,
    token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revocation_endpoint: Option<String>,
    client: ClientInfo,
}

/// Starts an authorization; see the module documentation. `redirect_uri` is where the host waits
/// for the browser (`http` on a loopback host, or `https`).
pub fn begin(
    ctx: &OAuthContext<'_>,
    settings: &OAuthSettings<'_>,
    redirect_uri: &str,
) -> Result<AuthorizationStart, McpError> {
    check_redirect_uri(redirect_uri)?;
    let endpoint = settings.endpoint.as_str();
    let challenge = match stored_challenge(ctx.host, endpoint) {
        Some(c) => Some(c),
        None => probe(ctx, settings)?,
    };
    let bearer = challenge.as_ref().and_then(StoredChallenge::bearer);
    let discovery = discover(
        ctx,
        endpoint,
        bearer.as_ref(),
        &settings.extra_metadata_urls,
    )?;
    let server = &discovery.server;

    let challenged = bearer.as_ref().map(|b| b.scopes()).unwrap_or_default();
    let previous = grant_info(ctx.host)
        .filter(|g| g.endpoint == endpoint)
        .map(|g| g.requested_scopes)
        .unwrap_or_default();
    let no_scopes = Vec::new();
    let scopes = settings.scope_policy.select(&ScopeInputs {
        configured: &settings.configured_scopes,
        challenged: &challenged,
        step_up: challenge.as_ref().is_some_and(StoredChallenge::is_step_up),
        previous: &previous,
        resource_scopes: discovery
            .resource
            .as_ref()
            .map(|r| &r.scopes_supported)
            .unwrap_or(&no_scopes),
        server_scopes: &server.scopes_supported,
    });

    let origin = HttpUrl::parse(endpoint)
        .map(|u| u.origin())
        .unwrap_or_default();
    let registration_issuer = server.issuer.clone().unwrap_or(origin);
    let client = choose_client(
        ctx,
        server,
        &RegistrationRequest {
            issuer: &registration_issuer,
            redirect_uri,
            client_name: &settings.client_name,
            scopes: &scopes,
        },
        &settings.client,
    )?;

    let verifier = random_token(64)?;
    let code_challenge =
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));
    let state = random_token(32)?;
    let scope = scopes.join(" ");
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &client.info.client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", code_challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", &state),
    ];
    if !scope.is_empty() {
        params.push(("scope", &scope));
    }
    if let Some(resource) = discovery.resource_parameter() {
        params.push(("resource", resource));
    }
    if scopes.iter().any(|s| s == OFFLINE_ACCESS) {
        // OpenID Connect grants offline_access only with explicit consent.
        params.push(("prompt", "consent"));
    }
    let url = with_query(&server.authorization_endpoint, &params);

    ctx.update_secrets(&[
        (keys::CODE_VERIFIER, Some(verifier.as_str())),
        (keys::CLIENT_SECRET, client.secret.as_deref()),
    ])?;
    let pending = Pending {
        endpoint: endpoint.to_owned(),
        state: state.clone(),
        redirect_uri: redirect_uri.to_owned(),
        resource: discovery.resource_parameter().map(str::to_owned),
        scopes: scopes.clone(),
        issuer: server.issuer.clone(),
        iss_required: server.authorization_response_iss_parameter_supported,
        token_endpoint: server.token_endpoint.clone(),
        revocation_endpoint: server.revocation_endpoint.clone(),
        client: client.info,
    };
    ctx.set_state_json(keys::PENDING, &pending);
    ctx.log(
        LogLevel::Info,
        &format!(
            "OAuth authorization started ({})",
            if scope.is_empty() {
                "no scope requested".to_owned()
            } else {
                format!("scope {}", one_line(&scope, 200))
            }
        ),
    );
    Ok(AuthorizationStart {
        url,
        state,
        scopes,
    })
}

/// A finished authorization whose tokens are not stored yet.
#[derive(Debug, Clone)]
pub struct CompletedAuthorization {
    pub grant: GrantInfo,
    pub tokens: TokenResponse,
}

impl CompletedAuthorization {
    /// The scopes granted (the token response's `scope`, else those requested).
    pub fn granted_scopes(&self) -> &[String] {
        &self.grant.granted_scopes
    }
}

/// Finishes the authorization [`begin`] started, with the URL the browser was redirected to. The
/// attempt is over whatever happens (the pending state and the verifier are deleted first). Nothing
/// is stored: call [`store_grant`] to keep the tokens.
pub fn complete(
    ctx: &OAuthContext<'_>,
    callback_url: &str,
) -> Result<CompletedAuthorization, McpError> {
    let pending: Pending = ctx.state_json(keys::PENDING).ok_or_else(|| {
        unauthorized("no authorization is in progress for this connection (it may have been completed already); start it again")
    })?;
    let verifier = ctx.host.secret(keys::CODE_VERIFIER);
    ctx.host.set_state(keys::PENDING, None);
    ctx.update_secrets(&[(keys::CODE_VERIFIER, None)])?;

    let params = query_pairs(callback_url);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match get("state") {
        Some(state) if state == pending.state => {}
        Some(_) => {
            return Err(unauthorized(
                "the authorization response belongs to another authorization (its state does not match); nothing was stored, start the authorization again",
            ))
        }
        None => {
            return Err(unauthorized(
                "the authorization response carries no state; nothing was stored, start the authorization again",
            ))
        }
    }
    if let Some(error) = get("error") {
        let error = one_line(error, 60);
        if error == "invalid_client" || error == "unauthorized_client" {
            drop_registration(ctx, &pending.client);
        }
        let detail = get("error_description")
            .map(|d| format!(": {}", one_line(d, 200)))
            .unwrap_or_default();
        let what = if error == "access_denied" {
            "access was denied at the authorization server"
        } else {
            "the authorization server refused the authorization"
        };
        return Err(unauthorized(&format!(
            "{what} ({error}{detail}); nothing was stored, reconnect and approve access"
        )));
    }
    match (get("iss"), &pending.issuer) {
        (Some(iss), Some(issuer)) if iss != issuer => {
            return Err(McpError::protocol(format!(
                "the authorization response names the issuer `{}`, not `{}` (RFC 9207); refusing it, nothing was stored",
                one_line(iss, 120),
                one_line(issuer, 120)
            )))
        }
        (None, _) if pending.iss_required => {
            return Err(McpError::protocol(
                "the authorization server promised an `iss` parameter (RFC 9207) but the response has none; refusing it, nothing was stored",
            ))
        }
        _ => {}
    }
    let code = get("code").filter(|c| !c.is_empty()).ok_or_else(|| {
        McpError::protocol("the authorization response has neither a code nor an error")
    })?;
    let verifier = verifier.ok_or_else(|| {
        unauthorized(
            "the PKCE verifier of this authorization is gone; start the authorization again",
        )
    })?;
    let secret = if pending.client.auth_method.needs_secret() {
        ctx.host.secret(keys::CLIENT_SECRET)
    } else {
        None
    };
    let mut form: Vec<(&'static str, String)> = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", pending.redirect_uri.clone()),
        ("code_verifier", verifier),
    ];
    if let Some(resource) = &pending.resource {
        form.push(("resource", resource.clone()));
    }
    let tokens = match token_request(
        ctx,
        &pending.token_endpoint,
        &pending.client,
        secret.as_deref(),
        form,
    ) {
        Ok(tokens) => tokens,
        Err(TokenFailure::OAuth { error, .. }) => {
            if is_client_error(&error) {
                drop_registration(ctx, &pending.client);
            }
            return Err(unauthorized(&format!(
                "the token endpoint refused the authorization code ({}); nothing was stored, start the authorization again",
                error.describe()
            )));
        }
        Err(TokenFailure::Other(e)) => return Err(e),
    };
    let granted_scopes = tokens.scopes().unwrap_or_else(|| pending.scopes.clone());
    ctx.log(
        LogLevel::Info,
        &format!(
            "OAuth code exchanged (granted: {})",
            if granted_scopes.is_empty() {
                "no scope named".to_owned()
            } else {
                one_line(&granted_scopes.join(" "), 200)
            }
        ),
    );
    Ok(CompletedAuthorization {
        grant: GrantInfo {
            endpoint: pending.endpoint,
            resource: pending.resource,
            issuer: pending.issuer,
            token_endpoint: pending.token_endpoint,
            revocation_endpoint: pending.revocation_endpoint,
            client: pending.client,
            requested_scopes: pending.scopes,
            granted_scopes,
        },
        tokens,
    })
}

/// Keeps a completed authorization: the access token, its expiry and the refresh token in one
/// secret update (a grant without a refresh token drops the previous one), the grant's description
/// in state; the stored challenge is forgotten. The credential lock is held meanwhile, so that a
/// call refreshing the previous grant cannot overwrite the new tokens.
pub fn store_grant(
    ctx: &OAuthContext<'_>,
    completed: &CompletedAuthorization,
) -> Result<(), McpError> {
    let tokens = &completed.tokens;
    let lock = ctx.host.lock_credentials();
    let expires_at = tokens
        .expires_in()
        .map(|secs| Expiry::starting_now(secs).encode());
    ctx.update_secrets(&[
        (keys::ACCESS_TOKEN, Some(tokens.access_token())),
        (keys::REFRESH_TOKEN, tokens.refresh_token()),
        (keys::EXPIRES_AT, expires_at.as_deref()),
        (keys::CODE_VERIFIER, None),
    ])?;
    ctx.set_state_json(keys::GRANT, &completed.grant);
    drop(lock);
    ctx.host.set_state(keys::CHALLENGE, None);
    ctx.log(
        LogLevel::Info,
        &format!(
            "OAuth tokens stored ({}{})",
            match tokens.expires_in() {
                Some(s) => format!("access token valid for {s} s"),
                None => "access token lifetime unknown".to_owned(),
            },
            if tokens.refresh_token().is_some() {
                ", with a refresh token"
            } else {
                ", no refresh token"
            }
        ),
    );
    Ok(())
}

/// Opens a session (`server/discover` or `initialize`, by the connection's era; and, if that needs no
/// credentials, sends `tools/list`) without credentials, to get
/// the server's 401 challenge. No challenge is not an error: discovery then probes the well-known
/// locations. Only transport failures stop the authorization.
fn probe(
    ctx: &OAuthContext<'_>,
    settings: &OAuthSettings<'_>,
) -> Result<Option<StoredChallenge>, McpError> {
    let store = MemorySessionStore::default();
    let mut config = ClientConfig::new(
        settings.endpoint.clone(),
        settings.client_name.clone(),
        settings.client_version.clone(),
    );
    config.protocol = settings.protocol;
    let mut client = McpClient::new(config, ctx.http, &NoAuth, &store, ctx.log)?;
    let outcome = match client.open() {
        Ok(_) => match client.list_tools() {
            Ok(_) => {
                let _ = client.terminate_session();
                Ok(())
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let error = match outcome {
        Ok(()) => {
            ctx.log(
                LogLevel::Info,
                "the MCP server answered without credentials; looking for its authorization server anyway",
            );
            return Ok(None);
        }
        Err(e) => e,
    };
    let (status, header) = match &error {
        McpError::Unauthorized {
            www_authenticate, ..
        } => (401, www_authenticate.clone()),
        McpError::InsufficientScope {
            www_authenticate, ..
        } => (403, www_authenticate.clone()),
        McpError::Unavailable(_) | McpError::Denied(_) => return Err(error),
        other => {
            ctx.log(
                LogLevel::Debug,
                &format!("probing the MCP server without credentials: {other}"),
            );
            return Ok(None);
        }
    };
    Ok(Some(StoredChallenge {
        endpoint: settings.endpoint.clone(),
        status,
        www_authenticate: header.unwrap_or_default(),
    }))
}

fn check_redirect_uri(redirect_uri: &str) -> Result<(), McpError> {
    match HttpUrl::parse(redirect_uri) {
        Ok(u) if !redirect_uri.contains('#') && (u.scheme == "https" || u.is_loopback()) => Ok(()),
        _ => Err(McpError::protocol(format!(
            "the redirect URI `{}` must be https, or http on a loopback host",
            one_line(redirect_uri, 120)
        ))),
    }
}

fn unauthorized(message: &str) -> McpError {
    McpError::Unauthorized {
        www_authenticate: None,
        message: message.to_owned(),
    }
}
