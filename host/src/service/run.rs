//! Running one export of a connector for a connection: the one place a call's sandbox is assembled.
//!
//! ```text
//! run(connection, export)
//!   ├─ the connection's credentials, opened (a connector will see only their placeholders)
//!   ├─ the call's network: endpoint, policy, learned OAuth URLs, API-key headers, tool gate
//!   ├─ the call's host memory budget
//!   ├─ a fresh instance under the policy's limits                  (crate::sandbox::runtime)
//!   ├─ what the host learned on the wire is kept                    (the connection's OAuth URLs)
//!   └─ the result or error masked, a policy denial given its reason (crate::sandbox::outputs)
//! ```

use super::HostService;
use crate::errors::{ConnectorError, HostError};
use crate::oauth::discovery::OAuthState;
use crate::policy::tools::BlockedTool;
use crate::policy::Target;
use crate::sandbox::bindings::{wit, DataSource};
use crate::sandbox::host_api::{CallConnection, HostContext, Staging};
use crate::sandbox::limits::CallBudget;
use crate::sandbox::outputs::MaskSecrets;
use crate::sandbox::runtime::{CallState, LoadedPlugin};
use crate::vault::call_credentials::CallCredentials;
use crate::vault::credentials::Credential;
use crate::vault::store::ConnectionRecord;
use crate::wire::attach::KeyHeaders;
use crate::wire::inbound::TokenFacts;
use crate::wire::outbound::{CallNetwork, OutboundContext, ToolGate};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// How a call runs.
#[derive(Default)]
pub(crate) struct RunOptions {
    /// An authorization: secret and state writes are staged, committed by the caller on success.
    pub staged: bool,
    /// Credentials the host hands the call (an authorization code), as if minted during it.
    pub minted: Vec<Credential>,
    /// The redirect URI of the authorization the call begins (a client registration must name it).
    pub redirect_uri: Option<String>,
    /// The tools the last listing withheld, when the caller already read them (a call's prepared
    /// state); else they are read from the store.
    pub withheld: Option<Arc<Vec<BlockedTool>>>,
}

/// What a call returned, and what the host saw during it.
pub(crate) struct Ran<R> {
    /// The export's result.
    pub value: R,
    /// The staged writes of an authorization.
    pub staging: Option<Staging>,
    /// What every token answer of the call said, in order.
    pub token_facts: Vec<TokenFacts>,
    /// The connection's OAuth URLs as they stand after the call.
    pub oauth: OAuthState,
}

/// What one export of the connector interface returns, as a future borrowing the store.
pub(crate) type ExportFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<Result<R, wit::Error>>> + Send + 'a>>;

impl HostService {
    /// The headers an API key of `c` travels in, and the scope header's allowed scopes.
    pub(crate) fn key_headers(&self, c: &ConnectionRecord, plugin: &LoadedPlugin) -> KeyHeaders {
        // The operator's scopes, else the connector's declared read-level ones (`connect` keeps only
        // those when the operator names none).
        let scope = plugin.info.api_key_headers.as_ref().and_then(|h| h.scope.clone()).map(|name| {
            (name.trim().to_ascii_lowercase(), crate::oauth::scopes::required_scopes(&c.scopes, &plugin.info.scopes))
        });
        KeyHeaders { key: c.api_key_header.clone().filter(|h| h != "authorization"), scope }
    }

    /// The rate-budget scopes of a connection's endpoint requests: its key, and the organization it
    /// reaches (the account its connector described, at the endpoint origin the operator chose) with
    /// the vendor's organization factor.
    fn rate_scopes(&self, c: &ConnectionRecord, origin: &crate::policy::Origin) -> crate::wire::outbound::rate::RateScopes {
        let mut scopes = vec![(format!("key:{}", c.id), 1)];
        if let Some(account) = c.account.as_deref().filter(|a| !a.is_empty()) {
            scopes.push((format!("org:{}:{origin}:{account}", c.connector_id), crate::policy::rate_budget::org_factor(&c.connector_id)));
        }
        crate::wire::outbound::rate::RateScopes { store: self.store.clone(), scopes }
    }

    fn tool_gate(&self, c: &ConnectionRecord, withheld: Option<Arc<Vec<BlockedTool>>>) -> Result<ToolGate, HostError> {
        // The blocklist on the wire: no upstream `tools/call` of a name the rules block or the last
        // listing withheld (for its annotations), whatever the connector was asked to do.
        let withheld = match withheld {
            Some(w) => w,
            None => Arc::new(self.withheld(c)?),
        };
        let blocklist = self.blocklist.clone();
        Ok(Arc::new(move |tool: &str| blocklist.check_name(tool).map(|r| r.to_string()).or_else(|| BlockedTool::reason_for(&withheld, tool))))
    }

    /// Run one export for a connection, mapping the connector's error and substituting the host's
    /// detailed reason for a policy denial. Whatever the connector returns, result or error, has the
    /// connection's credential values masked ([`MaskSecrets`]).
    pub(crate) async fn run<R: MaskSecrets + Send + 'static>(
        &self,
        c: &ConnectionRecord,
        plugin: &LoadedPlugin,
        options: RunOptions,
        export: impl for<'a> FnOnce(&'a DataSource, &'a mut wasmtime::Store<CallState>) -> ExportFuture<'a, R> + Send,
    ) -> Result<Ran<R>, HostError> {
        let stored = self.store.credentials(&self.keys, &c.id).map_err(HostError::Storage)?;
        let credentials = Arc::new(CallCredentials::new(&c.id, Some((self.store.clone(), self.keys.clone())), stored));
        for m in options.minted {
            credentials.mint(m).map_err(HostError::Storage)?;
        }
        let endpoint = Target::parse(&c.endpoint).map_err(|e| HostError::Usage(format!("the endpoint of connection `{}` is invalid: {e}", c.name)))?;
        let rate = self.rate_scopes(c, &endpoint.origin);
        let net = CallNetwork {
            connection: c.name.clone(),
            endpoint: Some(endpoint),
            policy: c.policy.clone(),
            oauth: c.oauth.clone(),
            uses_oauth: c.auth_method == crate::vault::store::AuthMethod::Oauth,
            key_headers: self.key_headers(c, plugin),
            matchers: self.matchers.clone(),
            scopes: crate::oauth::scopes::ScopeSources { operator: c.scopes.clone(), declared: plugin.info.scopes.clone() },
            redirect_uri: options.redirect_uri.clone(),
        };
        let limits = c.policy.limits;
        let budget = Arc::new(CallBudget::new(limits.host_memory_bytes));
        let outbound = Arc::new(
            OutboundContext::new(net, limits, credentials, self.resolver.clone(), budget)
                .with_tool_gate(self.tool_gate(c, options.withheld.clone())?)
                .with_rate_budget(rate),
        );
        let call = CallConnection {
            record: c.clone(),
            store: self.store.clone(),
            keys: self.keys.clone(),
            locks: self.locks.clone(),
            outbound: outbound.clone(),
        };
        let host = HostContext::for_connection(call, options.staged);
        let result = self.runtime.invoke(plugin, &c.name, host, limits, outbound.clone(), export).await;
        if let Some(learned) = outbound.learned() {
            if let Err(e) = self.store.set_oauth(&c.id, &learned) {
                tracing::warn!("cannot keep what was learned of the authorization of `{}`: {e}", c.name);
            }
        }
        let token_facts = outbound.token_facts();
        let (value, mut host) = match result {
            Ok((Ok(mut r), host)) => {
                r.mask_secrets(&|t| outbound.mask_found(t));
                (r, host)
            }
            Ok((Err(e), _)) => {
                let mut e = ConnectorError::from(e);
                if let ConnectorError::DeniedByPolicy { message } = &mut e {
                    if let Some(detail) = outbound.first_denial() {
                        *message = detail;
                    }
                } else if let Some(detail) = outbound.first_denial() {
                    // The connector reported something else, but the host stopped one of its
                    // requests: the operator needs to know that first.
                    if detail.contains("max_response_bytes") || detail.contains("max_requests_per_call") || detail.contains("placeholder") {
                        e = ConnectorError::DeniedByPolicy { message: detail };
                    }
                }
                // Never let a connector echo a secret into an error.
                e.map_text(|t| outbound.mask(t));
                return Err(HostError::Connector(e));
            }
            Err(e) => return Err(e),
        };
        // A refresh during an ordinary call may narrow (or widen) what the grant holds.
        if !options.staged {
            if let Some(scope) = token_facts.last().and_then(|f| f.scope.clone()) {
                if scope != c.granted_scopes {
                    if let Err(e) = self.store.set_granted_scopes(&c.id, &scope) {
                        tracing::warn!("cannot record the scopes of `{}`: {e}", c.name);
                    }
                }
            }
        }
        Ok(Ran { value, staging: host.take_staging(), token_facts, oauth: outbound.oauth() })
    }

    /// Commit the staged writes of a successful authorization, under the connection's credential lock.
    pub(crate) async fn commit(&self, c: &ConnectionRecord, staging: Option<Staging>) -> Result<(), HostError> {
        let Some(staging) = staging else { return Ok(()) };
        let _lock = self.locks.lock(&c.id).await.map_err(HostError::Storage)?;
        let writes = staging.secret_writes();
        if !writes.is_empty() {
            self.store.update_secrets(&self.keys, &c.id, &writes).map_err(HostError::Storage)?;
        }
        for (k, v) in &staging.state {
            self.store.set_state(&c.id, k, v.as_deref()).map_err(HostError::Storage)?;
        }
        Ok(())
    }
}
