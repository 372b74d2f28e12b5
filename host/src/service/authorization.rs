//! OAuth for a connection, in two steps the callers compose: [`HostService::begin_authorization`]
//! (the connector builds the authorization URL; the host checks it) and
//! [`HostService::complete_authorization`] (the browser came back; the host checks the redirect,
//! hands the connector a placeholder for the code, and judges the grant). The CLI puts a loopback
//! listener between the two; the console its own callback route.
//!
//! ```text
//! begin:    begin-authorization(redirect)  ──▶ URL ── host: authorization endpoint the metadata named,
//!           (staged; committed on success)          redirect URI, PKCE S256, state, resource, scopes
//! browser:  user consents ──▶ redirect to the host with code + state (+ iss)
//! complete: host: state, iss (RFC 9207); code ──▶ placeholder bound to the token endpoint
//!           complete-authorization(callback)  ──▶ account
//!           (staged) token response rewritten on the wire; granted scope read by the host
//!           host: grant lacks a required scope? ──▶ insufficient-scope, nothing kept
//!                 otherwise the staged writes are committed
//! ```

use super::{HostService, RunOptions};
use crate::errors::{ConnectorError, HostError};
use crate::oauth::scopes::{self, ScopeInputs};
use crate::policy::{Grant, Rule, Target};
use crate::sandbox::bindings::wit;
use crate::sandbox::runtime::LoadedPlugin;
use crate::vault::credentials::{Binding, Credential, Kind};
use crate::vault::store::{ConnectionRecord, SecretWrite, StoredSecret};

/// An authorization the browser has yet to come back from.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    /// The connection (by id: it may not have its final name yet).
    pub connection_id: String,
    /// The URL to open.
    pub url: String,
    /// The `state` in it.
    pub state: String,
    /// Where the browser comes back.
    pub redirect_uri: String,
    /// The scopes it asks for.
    pub requested_scopes: Vec<String>,
    /// The issuer the redirect's `iss` must name when the server promises one (RFC 9207).
    pub issuer: Option<String>,
    /// Whether the server promised `iss` on its redirects.
    pub iss_required: bool,
}

/// A finished authorization, judged by the host.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The account the connector named.
    pub account: Option<String>,
    /// The scopes granted, as the host read them.
    pub granted_scopes: Vec<String>,
    /// Warnings (a grant wider than asked).
    pub warnings: Vec<String>,
}

fn protocol(message: String) -> HostError {
    HostError::Connector(ConnectorError::Protocol { message })
}

impl HostService {
    /// Start an authorization of connection `c`: the connector discovers its authorization server
    /// and builds the URL; the host checks the URL before anyone opens it. `redirect_uri` is where
    /// the browser comes back (a loopback listener, or the console's callback route).
    pub async fn begin_authorization(&self, c: &ConnectionRecord, plugin: &LoadedPlugin, redirect_uri: &str) -> Result<PendingAuthorization, HostError> {
        let redirect = redirect_uri.to_string();
        let ran = self
            .run(c, plugin, RunOptions { staged: true, redirect_uri: Some(redirect_uri.to_string()), ..RunOptions::default() }, move |b, s| {
                Box::pin(async move { b.claribi_data_source_connector().call_begin_authorization(s, &redirect).await })
            })
            .await?;
        let request: wit::AuthorizationRequest = ran.value;
        let endpoint = Target::parse(&c.endpoint).map_err(HostError::Usage)?;
        let server = ran.oauth.server(&endpoint).ok_or_else(|| {
            protocol(format!(
                "the endpoint's protected-resource metadata names an authorization server whose metadata the host did not see; connection `{}` cannot be authorized",
                c.name
            ))
        })?;
        let allowed = scopes::allowed_scopes(&ScopeInputs { operator: &c.scopes, declared: &plugin.info.scopes, oauth: &ran.oauth });
        let required = scopes::required_scopes(&c.scopes, &plugin.info.scopes);
        let expected = scopes::Expected {
            authorization_endpoint: &server.authorization_endpoint,
            redirect_uri,
            state: &request.state,
            resource: ran.oauth.resource.as_ref().map(|r| r.resource.as_str()),
            allowed: &allowed,
            required: &required,
        };
        let requested = scopes::check_authorization_url(&request.url, &expected)
            .map_err(|m| HostError::Connector(ConnectorError::DeniedByPolicy { message: m }))?;
        self.commit(c, ran.staging).await?;
        self.bind_client_secret(c, &ran.oauth)?;
        Ok(PendingAuthorization {
            connection_id: c.id.clone(),
            url: request.url,
            state: request.state,
            redirect_uri: redirect_uri.to_string(),
            requested_scopes: requested,
            issuer: server.issuer.clone(),
            iss_required: server.iss_supported,
        })
    }

    /// A client secret the operator gave goes to the token and revocation endpoints of the
    /// authorization server whose metadata document the host read (and nowhere else) — never to the
    /// 2025-03-26 default URLs a connector gets by skipping discovery. The binding follows the
    /// endpoint's metadata when a later authorization learns another server.
    fn bind_client_secret(&self, c: &ConnectionRecord, oauth: &crate::oauth::discovery::OAuthState) -> Result<(), HostError> {
        let endpoint = Target::parse(&c.endpoint).map_err(HostError::Usage)?;
        if oauth.server.as_ref().is_none_or(|s| s.url.is_none()) {
            return Ok(());
        }
        if let Some(StoredSecret::Credential(mut secret)) =
            self.store.secret(&self.keys, &c.id, super::CLIENT_SECRET_SECRET).map_err(HostError::Storage)?
        {
            let binding = Binding::oauth(Kind::ClientSecret, &endpoint, &oauth.targets(&endpoint));
            if secret.kind == Kind::ClientSecret && secret.binding != binding {
                secret.binding = binding;
                self.store
                    .update_secrets(&self.keys, &c.id, &[(super::CLIENT_SECRET_SECRET.to_string(), Some(SecretWrite::Credential(secret)))])
                    .map_err(HostError::Storage)?;
            }
        }
        Ok(())
    }

    /// Finish an authorization with the URL the browser came back to. Nothing is kept unless the
    /// redirect is this authorization's, the connector completes it, and the grant holds the
    /// required scopes.
    pub async fn complete_authorization(
        &self,
        c: &ConnectionRecord,
        plugin: &LoadedPlugin,
        pending: &PendingAuthorization,
        callback_url: &str,
    ) -> Result<Authorized, HostError> {
        let pairs = scopes::query_pairs(callback_url);
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if get("state").as_deref() != Some(pending.state.as_str()) {
            if let Some(err) = get("error").filter(|_| get("state").is_none()) {
                return Err(HostError::Usage(format!(
                    "the authorization server answered `{}` without our state; nothing was stored",
                    crate::errors::one_line(&err)
                )));
            }
            return Err(HostError::Usage(
                "the authorization response carries the wrong state (a stale or forged redirect); nothing was stored. Run connect again".into(),
            ));
        }
        if get("error").is_none() && get("code").is_none_or(|c| c.is_empty()) {
            // A response mode the host cannot read (JARM's `response=`, a fragment): the code would
            // reach the connector unseen.
            return Err(protocol(
                "the authorization response carries neither a code nor an error (a response mode the host does not read); nothing was stored".into(),
            ));
        }
        if get("error").is_none() {
            match (get("iss"), &pending.issuer) {
                // RFC 9207 §2.4: simple string comparison, no normalisation (a trailing slash is a
                // different issuer).
                (Some(iss), Some(issuer)) if iss != *issuer => {
                    return Err(protocol(format!(
                        "the authorization response names the issuer `{}`, not `{}` (RFC 9207, a mix-up); nothing was stored",
                        crate::errors::one_line(&iss),
                        crate::errors::one_line(issuer)
                    )))
                }
                (None, _) if pending.iss_required => {
                    return Err(protocol(
                        "the authorization server promised an `iss` parameter (RFC 9207) but the response has none; nothing was stored".into(),
                    ))
                }
                _ => {}
            }
        }
        // The code is a credential too: the connector gets a placeholder bound to the token endpoint.
        let endpoint = Target::parse(&c.endpoint).map_err(HostError::Usage)?;
        let current = self.connection_by_id(&c.id)?;
        let targets = current.oauth.targets(&endpoint);
        let mut minted = Vec::new();
        let mut callback = url::Url::parse(callback_url).map_err(|e| HostError::Usage(format!("the redirect URL is invalid: {e}")))?;
        if let Some(code) = get("code").filter(|c| !c.is_empty()) {
            let credential = Credential::new(Kind::AuthorizationCode, zeroize::Zeroizing::new(code), Binding::oauth(Kind::AuthorizationCode, &endpoint, &targets));
            let placeholder = credential.placeholder.as_str().to_string();
            minted.push(credential);
            let rewritten: Vec<(String, String)> =
                pairs.iter().map(|(k, v)| if k == "code" { (k.clone(), placeholder.clone()) } else { (k.clone(), v.clone()) }).collect();
            callback.query_pairs_mut().clear().extend_pairs(rewritten);
        }
        let callback = callback.to_string();
        let ran = self
            .run(&current, plugin, RunOptions { staged: true, minted, ..RunOptions::default() }, move |b, s| {
                Box::pin(async move { b.claribi_data_source_connector().call_complete_authorization(s, &callback).await })
            })
            .await?;
        let Some(first) = ran.token_facts.first() else {
            return Err(protocol(
                "the connector completed the authorization without a token response passing through the host; nothing was stored".into(),
            ));
        };
        // Every grant of the call is judged (a wider one was already refused on the wire): the code
        // exchange decides what is reported, and none may lack a required scope.
        let required = scopes::required_scopes(&current.scopes, &plugin.info.scopes);
        let verdict = scopes::judge(&pending.requested_scopes, first.scope.as_deref(), &required);
        for facts in &ran.token_facts {
            let v = scopes::judge(&pending.requested_scopes, facts.scope.as_deref(), &required);
            if !v.missing.is_empty() {
                let message = v.insufficient_message(&current.connector_name);
                return Err(HostError::Connector(ConnectorError::InsufficientScope { required, granted: v.granted.clone(), message }));
            }
        }
        self.commit(&current, ran.staging).await?;
        Ok(Authorized {
            account: ran.value.display_name.as_deref().map(crate::errors::one_line),
            granted_scopes: verdict.granted.clone(),
            warnings: verdict.wider_warning().into_iter().collect(),
        })
    }

    /// The whole authorization the CLI runs: a loopback listener, begin, the browser (or a headless
    /// fetch), complete.
    pub(crate) async fn authorize_connection(&self, c: &ConnectionRecord, plugin: &LoadedPlugin, flow: &super::OAuthFlow) -> Result<Authorized, HostError> {
        let redirect = crate::oauth::redirect::Redirect::bind().await?;
        let pending = self.begin_authorization(c, plugin, redirect.uri()).await?;
        (flow.on_url)(&pending.url);
        let callback = match flow.mode {
            crate::oauth::redirect::Mode::Headless => {
                let grant = self.browser_grant(c)?;
                let wait = crate::oauth::redirect::headless(&pending.url, redirect.uri(), &grant);
                tokio::time::timeout(flow.timeout, wait).await.map_err(|_| {
                    HostError::Usage(format!("the headless authorization took longer than {} s; nothing was stored", flow.timeout.as_secs()))
                })??
            }
            crate::oauth::redirect::Mode::Browser { open } => {
                if open {
                    crate::oauth::redirect::open_browser(&pending.url);
                }
                redirect.wait(flow.timeout).await?
            }
        };
        self.complete_authorization(c, plugin, &pending, &callback).await
    }

    /// Where a headless fetch of the authorization page may go: the operator's grant, and every
    /// origin of the connection's own URLs (the pages of the authorization server a browser would
    /// see). It carries no credential.
    fn browser_grant(&self, c: &ConnectionRecord) -> Result<Grant, HostError> {
        let current = self.connection_by_id(&c.id)?;
        let endpoint = Target::parse(&current.endpoint).map_err(HostError::Usage)?;
        let mut g = current.policy.grant.clone();
        let own = current.oauth.grant(&endpoint);
        for r in own.rules().iter().chain([Rule::exact(&endpoint, &[], crate::policy::Reason::Endpoint)].iter()) {
            // Whole origins, keeping why each is there: only the endpoint's host (which the operator
            // named) opens a special address.
            g.push(Rule { paths: crate::policy::Paths::Any, methods: None, ..r.clone() });
        }
        Ok(g)
    }
}
