//! Token revocation (RFC 7009), when the authorization server's metadata names a
//! `revocation_endpoint`: the refresh token first (which on most servers ends the whole grant), then
//! the access token. Both are tried even if the first fails.

use super::fetch::{post, short};
use super::token::client_authentication;
use super::{grant_info, keys, OAuthContext};
use crate::error::{one_line, McpError};
use crate::url::encode_pairs;
use crate::LogLevel;

/// What [`revoke`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The connection has no authorization on record, or no token.
    NothingToRevoke,
    /// The authorization server has no revocation endpoint.
    NotOffered,
    /// This many tokens were revoked.
    Revoked(usize),
}

/// Revokes the connection's tokens. Nothing is deleted here (the host deletes a removed
/// connection's secrets). An error tells why a token could not be revoked.
pub fn revoke(ctx: &OAuthContext<'_>) -> Result<Revocation, McpError> {
    let Some(grant) = grant_info(ctx.host) else {
        return Ok(Revocation::NothingToRevoke);
    };
    let tokens: Vec<(&str, String)> = [
        ("refresh_token", keys::REFRESH_TOKEN),
        ("access_token", keys::ACCESS_TOKEN),
    ]
    .into_iter()
    .filter_map(|(hint, key)| {
        ctx.host
            .secret(key)
            .filter(|t| !t.trim().is_empty())
            .map(|t| (hint, t))
    })
    .collect();
    if tokens.is_empty() {
        return Ok(Revocation::NothingToRevoke);
    }
    let Some(endpoint) = &grant.revocation_endpoint else {
        ctx.log(
            LogLevel::Info,
            "the authorization server offers no token revocation; the tokens stay valid until they expire",
        );
        return Ok(Revocation::NotOffered);
    };
    let client_secret = if grant.client.auth_method.needs_secret() {
        ctx.host.secret(keys::CLIENT_SECRET)
    } else {
        None
    };
    let (headers, auth) = client_authentication(&grant.client, client_secret.as_deref())?;
    let mut revoked = 0;
    let mut failure = None;
    for (hint, token) in tokens {
        let mut form: Vec<(&str, &str)> = vec![("token", &token), ("token_type_hint", hint)];
        form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        let outcome = post(
            ctx,
            endpoint,
            "application/x-www-form-urlencoded",
            headers.clone(),
            encode_pairs(form).into_bytes(),
        );
        match outcome {
            Ok(answer) if answer.status == 200 => revoked += 1,
            Ok(answer) => {
                let why = answer
                    .oauth_error()
                    .map(|e| e.describe())
                    .unwrap_or_else(|| answer.summary());
                failure.get_or_insert(McpError::Http {
                    status: answer.status,
                    message: format!(
                        "the revocation endpoint {} refused the {}: {}",
                        short(endpoint),
                        hint.replace('_', " "),
                        one_line(&why, 200)
                    ),
                });
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => {
            ctx.log(
                LogLevel::Info,
                &format!("revoked {revoked} OAuth token(s) at the authorization server"),
            );
            Ok(Revocation::Revoked(revoked))
        }
    }
}
