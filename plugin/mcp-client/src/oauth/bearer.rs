//! [`OAuthBearer`]: the credentials of an authorized connection, for [`McpClient`](crate::McpClient).
//!
//! It sends `Authorization: Bearer <access token>`. When the token expires within
//! [`REFRESH_SKEW_SECS`] (half its lifetime for a token that lives less than two minutes), or the
//! server answers 401 `invalid_token`, it refreshes, at most once per call, under the host's
//! credential lock:
//!
//! 1. take the lock (other calls of the connection wait);
//! 2. read the tokens again: another call may have refreshed while this one waited, and then its
//!    token is used as it is (unless it has expired already);
//! 3. otherwise POST the `refresh_token` grant (with `resource` and the client's authentication);
//! 4. store the new access token, its expiry and the rotated refresh token in one secret update (the
//!    old refresh token is kept only when none is returned);
//! 5. release the lock.
//!
//! A refresh the server refuses (`invalid_grant`, `invalid_client`, …) deletes the tokens and fails
//! with [`McpError::Unauthorized`]: the connection must be authorized again. A transport failure or
//! a 5xx leaves the tokens alone.

use super::fetch::OAuthErrorBody;
use super::registration::drop_registration;
use super::token::{is_client_error, token_request, TokenFailure};
use super::{grant_info, keys, Expiry, OAuthContext};
use crate::error::{one_line, McpError};
use crate::www_authenticate;
use crate::{AuthProvider, LogLevel};
use std::cell::{Cell, RefCell};

/// How long before its expiry an access token is refreshed.
pub const REFRESH_SKEW_SECS: u64 = 60;

/// The [`AuthProvider`] of an OAuth connection. Create one per call.
pub struct OAuthBearer<'a> {
    ctx: OAuthContext<'a>,
    token: RefCell<Option<String>>,
    refreshed: Cell<bool>,
    failure: RefCell<Option<McpError>>,
}

impl<'a> OAuthBearer<'a> {
    pub fn new(ctx: OAuthContext<'a>) -> Self {
        OAuthBearer {
            ctx,
            token: RefCell::new(None),
            refreshed: Cell::new(false),
            failure: RefCell::new(None),
        }
    }

    /// The error this provider itself failed a request with (no token, a refused refresh), as
    /// opposed to a 401 of the server: lets a connector word the two differently.
    pub fn failure(&self) -> Option<McpError> {
        self.failure.borrow().clone()
    }

    fn failed<T>(&self, outcome: Result<T, McpError>) -> Result<T, McpError> {
        if let Err(e) = &outcome {
            *self.failure.borrow_mut() = Some(e.clone());
        }
        outcome
    }

    /// Whether the connection holds a token at all (an access or a refresh token).
    pub fn has_credentials(&self) -> bool {
        self.secret(keys::ACCESS_TOKEN).is_some() || self.secret(keys::REFRESH_TOKEN).is_some()
    }

    /// Whether this call refreshed (or tried to refresh) the access token.
    pub fn refreshed(&self) -> bool {
        self.refreshed.get()
    }

    /// The access token in use, if one has been read.
    pub fn current_token(&self) -> Option<String> {
        self.token.borrow().clone()
    }

    fn secret(&self, key: &str) -> Option<String> {
        self.ctx
            .host
            .secret(key)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    fn expiry(&self) -> Option<Expiry> {
        self.secret(keys::EXPIRES_AT)
            .and_then(|s| Expiry::parse(&s))
    }

    /// Whether the stored token is due for a refresh.
    fn expiring(&self) -> bool {
        self.expiry().is_some_and(|e| e.is_due())
    }

    fn use_token(&self, token: String) -> String {
        *self.token.borrow_mut() = Some(token.clone());
        token
    }

    /// The token to send: the cached one, else the stored one, refreshed first when it expires soon
    /// (or is missing) and a refresh token is there.
    fn access_token(&self) -> Result<String, McpError> {
        if let Some(token) = self.token.borrow().clone() {
            return Ok(token);
        }
        let access = self.secret(keys::ACCESS_TOKEN);
        if access.is_some() && !self.expiring() {
            return Ok(self.use_token(access.unwrap_or_default()));
        }
        if !self.refreshed.get() && self.secret(keys::REFRESH_TOKEN).is_some() {
            return self.refresh(access.as_deref());
        }
        match access {
            // Expired, and nothing to refresh with: let the server decide.
            Some(token) => Ok(self.use_token(token)),
            None => Err(unauthorized(
                "no OAuth access token is stored for this connection; reconnect needed",
            )),
        }
    }

    /// Refreshes under the credential lock; `stale` is the token known to be expired or refused.
    fn refresh(&self, stale: Option<&str>) -> Result<String, McpError> {
        self.refreshed.set(true);
        let lock = self.ctx.host.lock_credentials();
        let outcome = self.refresh_locked(stale);
        drop(lock);
        outcome
    }

    fn refresh_locked(&self, stale: Option<&str>) -> Result<String, McpError> {
        let access = self.secret(keys::ACCESS_TOKEN);
        if let Some(current) = access {
            let expired = self.expiry().is_some_and(|e| e.is_expired());
            if Some(current.as_str()) != stale && !expired {
                self.ctx.log(
                    LogLevel::Debug,
                    "another call refreshed the OAuth access token meanwhile; using it",
                );
                return Ok(self.use_token(current));
            }
        }
        let Some(refresh_token) = self.secret(keys::REFRESH_TOKEN) else {
            return Err(unauthorized(
                "the OAuth access token expired and no refresh token is stored; reconnect needed",
            ));
        };
        let Some(mut grant) = grant_info(self.ctx.host) else {
            return Err(unauthorized(
                "this connection keeps no record of its OAuth authorization, so its token cannot be refreshed; reconnect needed",
            ));
        };
        let client_secret = if grant.client.auth_method.needs_secret() {
            self.secret(keys::CLIENT_SECRET)
        } else {
            None
        };
        let mut form: Vec<(&'static str, String)> = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.clone()),
        ];
        if let Some(resource) = &grant.resource {
            form.push(("resource", resource.clone()));
        }
        match token_request(
            &self.ctx,
            &grant.token_endpoint,
            &grant.client,
            client_secret.as_deref(),
            form,
        ) {
            Ok(tokens) => {
                let expires_at = tokens
                    .expires_in()
                    .map(|secs| Expiry::starting_now(secs).encode());
                let rotated = tokens.refresh_token().unwrap_or(&refresh_token);
                self.ctx.update_secrets(&[
                    (keys::ACCESS_TOKEN, Some(tokens.access_token())),
                    (keys::EXPIRES_AT, expires_at.as_deref()),
                    (keys::REFRESH_TOKEN, Some(rotated)),
                ])?;
                if let Some(scopes) = tokens.scopes() {
                    if scopes != grant.granted_scopes {
                        grant.granted_scopes = scopes;
                        self.ctx.set_state_json(keys::GRANT, &grant);
                    }
                }
                self.ctx.log(
                    LogLevel::Info,
                    &format!(
                        "OAuth access token refreshed{}",
                        if tokens.refresh_token().is_some() {
                            " (refresh token rotated)"
                        } else {
                            ""
                        }
                    ),
                );
                Ok(self.use_token(tokens.access_token().to_owned()))
            }
            Err(TokenFailure::OAuth { error, .. }) => Err(self.refresh_refused(&error, &grant)),
            Err(TokenFailure::Other(e)) => Err(e),
        }
    }

    fn refresh_refused(&self, error: &OAuthErrorBody, grant: &super::GrantInfo) -> McpError {
        let deleted = self.ctx.update_secrets(&[
            (keys::ACCESS_TOKEN, None),
            (keys::REFRESH_TOKEN, None),
            (keys::EXPIRES_AT, None),
        ]);
        if is_client_error(error) {
            drop_registration(&self.ctx, &grant.client);
        }
        *self.token.borrow_mut() = None;
        let message = format!(
            "the authorization server refused to refresh the access token ({}); the tokens were deleted, reconnect needed",
            one_line(&error.describe(), 200)
        );
        self.ctx.log(LogLevel::Warn, &message);
        match deleted {
            Ok(()) => unauthorized(&message),
            Err(e) => e,
        }
    }
}

impl AuthProvider for OAuthBearer<'_> {
    fn headers(&self) -> Result<Vec<(String, String)>, McpError> {
        let token = self.failed(self.access_token())?;
        Ok(vec![(
            "Authorization".to_owned(),
            format!("Bearer {token}"),
        )])
    }

    /// Refreshes after a 401 whose challenge says `invalid_token` (or gives no error), once per call.
    fn on_unauthorized(&self, www_authenticate: Option<&str>) -> Result<bool, McpError> {
        let error = www_authenticate
            .and_then(www_authenticate::bearer)
            .and_then(|b| b.error);
        if error.as_deref().is_some_and(|e| e != "invalid_token") || self.refreshed.get() {
            return Ok(false);
        }
        let stale = self.token.borrow_mut().take();
        if self.secret(keys::REFRESH_TOKEN).is_none() {
            // Nothing to refresh with; another call may have stored a new token meanwhile.
            self.refreshed.set(true);
            return Ok(match self.secret(keys::ACCESS_TOKEN) {
                Some(current) if Some(current.as_str()) != stale.as_deref() => {
                    self.use_token(current);
                    true
                }
                _ => false,
            });
        }
        self.failed(self.refresh(stale.as_deref())).map(|_| true)
    }
}

fn unauthorized(message: &str) -> McpError {
    McpError::Unauthorized {
        www_authenticate: None,
        message: message.to_owned(),
    }
}
