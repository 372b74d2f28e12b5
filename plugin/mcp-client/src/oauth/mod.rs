//! OAuth 2.1 for MCP servers, as the MCP authorization spec (2025-11-25) wants it from a client, with
//! the 2025-03-26 fallbacks, written for connectors whose every call runs in a fresh instance.
//!
//! * [`discovery`]: protected-resource metadata (RFC 9728) from the 401 challenge or the well-known
//!   locations, the check that it names this server, then authorization-server metadata (RFC 8414 and
//!   OpenID Connect Discovery, in the spec's order), or the 2025-03-26 defaults when there is no
//!   protected-resource metadata at all.
//! * [`registration`]: which client to be: pre-registered (connection options), a client ID metadata
//!   document, or a dynamic registration (RFC 7591) shared by every connection of the connector.
//! * [`authorize`]: [`begin`](authorize::begin) builds the authorization URL (PKCE S256, `state`,
//!   `resource`, the scopes a [`ScopePolicy`] chose) and keeps what the next instance needs;
//!   [`complete`](authorize::complete) checks the redirect and exchanges the code;
//!   [`store_grant`](authorize::store_grant) keeps the tokens.
//! * [`bearer`]: [`OAuthBearer`], the [`AuthProvider`](crate::AuthProvider) of an authorized
//!   connection: `Authorization: Bearer`, refreshed under the host's credential lock.
//! * [`revocation`]: RFC 7009, when the server offers it.
//!
//! The library knows nothing of the WIT: a connector implements [`OAuthHost`] with its bindings.
//!
//! ## What is kept where
//!
//! | Kind | Key | Holds |
//! |---|---|---|
//! | secret | [`keys::ACCESS_TOKEN`], [`keys::REFRESH_TOKEN`] | the tokens |
//! | secret | [`keys::EXPIRES_AT`] | when the access token expires and how long it lived ([`Expiry`]), absent if unknown |
//! | secret | [`keys::CODE_VERIFIER`] | the PKCE verifier, between `begin` and `complete` |
//! | secret | [`keys::CLIENT_SECRET`] | the client secret, when the client has one |
//! | state | [`keys::PENDING`] | the authorization in progress (`state`, redirect URI, endpoints, client) |
//! | state | [`keys::GRANT`] | the authorization in force (endpoints, client, requested and granted scopes) |
//! | state | [`keys::CHALLENGE`] | the last 401/403 `WWW-Authenticate` challenge, for the next authorization |
//! | state | [`keys::CLIENT`] | a dynamic registration that came with a secret (never shared) |
//! | shared state | [`keys::SHARED_CLIENT_PREFIX`]`<hash>` | a public dynamic registration, per issuer and redirect URI |
//!
//! State values never contain a secret (the host refuses them anyway).

pub mod authorize;
pub mod bearer;
pub mod discovery;
mod fetch;
pub mod metadata;
pub mod registration;
pub mod revocation;
pub mod scope;
pub mod token;

pub use authorize::{
    begin, complete, store_grant, AuthorizationStart, CompletedAuthorization, OAuthSettings,
};
pub use bearer::OAuthBearer;
pub use registration::{ClientAuthMethod, ClientInfo, ClientOptions, ClientSource};
pub use revocation::{revoke, Revocation};
pub use scope::{ScopeInputs, ScopePolicy, SpecScopePolicy};
pub use token::{GrantInfo, TokenResponse};

use crate::error::McpError;
use crate::http::HttpClient;
use crate::{LogLevel, Logger};
use serde::{Deserialize, Serialize};

/// The names of the secrets and state values this module reads and writes.
pub mod keys {
    /// Secret: the access token.
    pub const ACCESS_TOKEN: &str = "access-token";
    /// Secret: the refresh token.
    pub const REFRESH_TOKEN: &str = "refresh-token";
    /// Secret: when the access token expires, as [`Expiry`](super::Expiry) JSON (a secret so that it
    /// is written in the same atomic update as the token it belongs to).
    pub const EXPIRES_AT: &str = "access-token-expires-at";
    /// Secret: the PKCE code verifier of the authorization in progress.
    pub const CODE_VERIFIER: &str = "oauth-code-verifier";
    /// Secret: the OAuth client secret, when the client has one.
    pub const CLIENT_SECRET: &str = "oauth-client-secret";
    /// State: the authorization in progress (JSON).
    pub const PENDING: &str = "oauth-pending";
    /// State: the authorization in force (JSON [`GrantInfo`](super::GrantInfo)).
    pub const GRANT: &str = "oauth-grant";
    /// State: the last `WWW-Authenticate` challenge of a 401 or 403 (JSON).
    pub const CHALLENGE: &str = "oauth-challenge";
    /// State: this connection's own dynamic registration (one that came with a client secret).
    pub const CLIENT: &str = "oauth-client";
    /// Shared state: prefix of the keys of public dynamic registrations, reused by every connection.
    pub const SHARED_CLIENT_PREFIX: &str = "oauth-client:";
}

/// A held credential lock; dropping it releases the lock. Any value can be one (the WIT resource
/// in a component, a recording guard in tests).
pub trait HeldLock {}

impl<T: ?Sized> HeldLock for T {}

/// What the OAuth code needs from the host, for the one connection the call is for.
pub trait OAuthHost {
    /// A secret of the connection, `None` if unset.
    fn secret(&self, key: &str) -> Option<String>;
    /// Sets (`Some`) or deletes (`None`) several secrets in one atomic write.
    fn update_secrets(&self, changes: &[(&str, Option<&str>)]) -> Result<(), String>;
    /// A non-secret value kept for the connection.
    fn state(&self, key: &str) -> Option<String>;
    /// Sets or deletes a non-secret value of the connection.
    fn set_state(&self, key: &str, value: Option<&str>);
    /// A non-secret value shared by every connection of the connector.
    fn shared_state(&self, key: &str) -> Option<String>;
    /// Sets or deletes a value shared by every connection of the connector.
    fn set_shared_state(&self, key: &str, value: Option<&str>);
    /// Waits until no other call of the connection holds the credential lock, then takes it. Read
    /// the credentials again afterwards: another call may have refreshed them meanwhile.
    fn lock_credentials(&self) -> Box<dyn HeldLock + '_>;
}

/// Everything an OAuth operation works with.
#[derive(Clone, Copy)]
pub struct OAuthContext<'a> {
    pub host: &'a dyn OAuthHost,
    pub http: &'a dyn HttpClient,
    pub log: &'a dyn Logger,
}

impl OAuthContext<'_> {
    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        self.log.log(level, message);
    }

    pub(crate) fn update_secrets(&self, changes: &[(&str, Option<&str>)]) -> Result<(), McpError> {
        self.host.update_secrets(changes).map_err(|e| {
            McpError::protocol(format!("the host could not store the credentials: {e}"))
        })
    }

    /// A state value parsed as JSON; an unreadable value counts as absent.
    pub(crate) fn state_json<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Option<T> {
        self.host
            .state(key)
            .and_then(|raw| serde_json::from_str(&raw).ok())
    }

    pub(crate) fn set_state_json<T: Serialize>(&self, key: &str, value: &T) {
        if let Ok(json) = serde_json::to_string(value) {
            self.host.set_state(key, Some(&json));
        }
    }
}

/// A `WWW-Authenticate` challenge the MCP server answered with, kept for the next authorization
/// (its `resource_metadata` and `scope` steer discovery and scope selection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChallenge {
    /// The MCP endpoint that answered.
    pub endpoint: String,
    /// 401 or 403.
    pub status: u16,
    /// The header value.
    pub www_authenticate: String,
}

impl StoredChallenge {
    /// The `Bearer` challenge in it, if any.
    pub fn bearer(&self) -> Option<crate::www_authenticate::BearerChallenge> {
        crate::www_authenticate::bearer(&self.www_authenticate)
    }

    /// Whether it asks for more scope (HTTP 403 `insufficient_scope`).
    pub fn is_step_up(&self) -> bool {
        self.status == 403
            && self.bearer().and_then(|b| b.error).as_deref() == Some("insufficient_scope")
    }
}

/// Keeps the challenge of a 401 or 403 answer of `endpoint` for the next authorization; other errors
/// are ignored. Call it with the errors of MCP requests (the [`OAuthBearer`] keeps 401s itself).
pub fn remember_challenge(host: &dyn OAuthHost, endpoint: &str, error: &McpError) {
    let (status, header) = match error {
        McpError::Unauthorized {
            www_authenticate: Some(h),
            ..
        } => (401, h),
        McpError::InsufficientScope {
            www_authenticate: Some(h),
            ..
        } => (403, h),
        _ => return,
    };
    let challenge = StoredChallenge {
        endpoint: endpoint.to_owned(),
        status,
        www_authenticate: header.clone(),
    };
    if let Ok(json) = serde_json::to_string(&challenge) {
        if json.len() <= 16 * 1024 {
            host.set_state(keys::CHALLENGE, Some(&json));
        }
    }
}

/// The stored challenge of `endpoint`, if any.
pub fn stored_challenge(host: &dyn OAuthHost, endpoint: &str) -> Option<StoredChallenge> {
    host.state(keys::CHALLENGE)
        .and_then(|raw| serde_json::from_str::<StoredChallenge>(&raw).ok())
        .filter(|c| c.endpoint == endpoint)
}

/// The authorization in force, if the connection has one.
pub fn grant_info(host: &dyn OAuthHost) -> Option<GrantInfo> {
    host.state(keys::GRANT)
        .and_then(|raw| serde_json::from_str(&raw).ok())
}

/// Forgets the authorization of the connection (in progress and in force) and its last challenge.
/// Shared registrations are kept; secrets are left to the caller (the host deletes them when a
/// connection is removed).
pub fn forget(host: &dyn OAuthHost) {
    for key in [keys::PENDING, keys::GRANT, keys::CHALLENGE, keys::CLIENT] {
        if host.state(key).is_some() {
            host.set_state(key, None);
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    now_ms() / 1000
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// When an access token expires, and how long it was issued for (secret [`keys::EXPIRES_AT`]),
/// e.g. `{"expires_at_ms":1767225600000,"lifetime_secs":3600}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    /// The expiry, in Unix milliseconds.
    pub expires_at_ms: u64,
    /// The token's `expires_in`.
    pub lifetime_secs: u64,
}

impl Expiry {
    /// The expiry of a token issued now for `expires_in` seconds.
    pub fn starting_now(expires_in: u64) -> Expiry {
        Expiry {
            expires_at_ms: now_ms().saturating_add(expires_in.saturating_mul(1000)),
            lifetime_secs: expires_in,
        }
    }

    /// Reads the stored value (also a bare number of Unix seconds).
    pub fn parse(stored: &str) -> Option<Expiry> {
        let stored = stored.trim();
        if let Ok(secs) = stored.parse::<u64>() {
            return Some(Expiry {
                expires_at_ms: secs.saturating_mul(1000),
                lifetime_secs: u64::MAX / 1000,
            });
        }
        serde_json::from_str(stored).ok()
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// How long before the expiry a token is refreshed: [`REFRESH_SKEW_SECS`](bearer::REFRESH_SKEW_SECS),
    /// or half the lifetime of a token that lives less than twice that (so that a fresh short-lived
    /// token is not refreshed at once).
    pub fn skew_ms(&self) -> u64 {
        (bearer::REFRESH_SKEW_SECS * 1000).min(self.lifetime_secs.saturating_mul(500))
    }

    /// Whether the token should be refreshed now.
    pub fn is_due(&self) -> bool {
        now_ms().saturating_add(self.skew_ms()) >= self.expires_at_ms
    }

    /// Whether the token has expired.
    pub fn is_expired(&self) -> bool {
        now_ms() >= self.expires_at_ms
    }
}

#[cfg(test)]
mod tests;
