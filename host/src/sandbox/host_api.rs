//! The `claribi:data-source/host` interface: what a connector may ask of the host during a call.
//!
//! Everything is scoped to the one connection the call is for; a connector never names a connection.
//!
//! * **Secrets.** `get-secret` of a credential returns its placeholder, never its value
//!   ([`crate::vault::credentials`]); a value the connector stored itself comes back as is.
//!   `update-secrets` with a value that is exactly a placeholder *claims* the credential behind it
//!   (minted during this call, or already the connection's) and seals it under the given name; a
//!   placeholder mixed into other text, an unknown placeholder, or a change to the operator's API key
//!   is refused.
//! * **Staging.** During an authorization (`begin-authorization`, `complete-authorization`) secret
//!   and state writes are kept in the call and committed by the host only when the authorization
//!   succeeded ([`Staging`]): nothing is stored for one that fails, whatever the connector did.
//! * **Bounds.** Key and value sizes, the number of state keys and secrets, log lines; and every byte
//!   a call writes through this interface (secrets, state, logs) counts against the call's host
//!   memory budget ([`crate::sandbox::limits::CallBudget`]). A log line is cut to 2 KiB *before* it is
//!   masked, so a huge line costs no more than a small one.

use crate::sandbox::bindings::claribi::data_source::host::{self as wit_host, LogLevel};
use crate::sandbox::bindings::wit;
use crate::sandbox::limits::CallBudget;
use crate::vault::call_credentials::CallCredentials;
use crate::vault::credentials::{Credential, Kind, Placeholder};
use crate::vault::locks::{CredentialLock, CredentialLocks};
use crate::vault::sealing::MasterKeys;
use crate::vault::store::{AuthMethod, ConnectionRecord, SecretWrite, Store, StoredSecret};
use crate::wire::outbound::OutboundContext;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::{HasData, Resource, ResourceTable};
use zeroize::Zeroizing;

const MAX_KEY: usize = 256;
const MAX_VALUE: usize = 64 * 1024;
const MAX_STATE_KEYS: usize = 256;
const MAX_SHARED_STATE_KEYS: usize = 256;
const MAX_SECRETS: usize = 64;
const MAX_SECRET_CHANGES: usize = 32;
const MAX_LOG_LINES: u32 = 200;
/// The longest log line kept, in bytes.
pub const MAX_LOG_LINE: usize = 2048;

/// A secret written during an authorization, not committed yet.
#[derive(Clone)]
pub enum Staged {
    /// The connector's own value.
    Own(Zeroizing<String>),
    /// A claimed credential.
    Credential(Credential),
}

/// Writes of an authorization call, committed only when it succeeds.
#[derive(Default)]
pub struct Staging {
    /// Secret changes (`None`: deleted).
    pub secrets: BTreeMap<String, Option<Staged>>,
    /// State changes (`None`: deleted).
    pub state: BTreeMap<String, Option<String>>,
}

impl Staging {
    /// The staged secrets as store writes.
    pub fn secret_writes(&self) -> Vec<(String, Option<SecretWrite>)> {
        self.secrets
            .iter()
            .map(|(k, v)| {
                let w = v.as_ref().map(|s| match s {
                    Staged::Own(v) => SecretWrite::Own(v.to_string()),
                    Staged::Credential(c) => SecretWrite::Credential(c.clone()),
                });
                (k.clone(), w)
            })
            .collect()
    }
}

/// What a call on a connection may use.
pub struct CallConnection {
    /// The connection.
    pub record: ConnectionRecord,
    /// The database.
    pub store: Arc<Store>,
    /// The master keys.
    pub keys: Arc<MasterKeys>,
    /// Credential locks.
    pub locks: CredentialLocks,
    /// The call's outbound context (credentials, masking).
    pub outbound: Arc<OutboundContext>,
}

/// Host-side state of one call.
pub struct HostContext {
    call: Option<CallConnection>,
    staging: Option<Staging>,
    failure: Option<String>,
    log_lines: u32,
    budget: Arc<CallBudget>,
}

impl HostContext {
    /// A context with no connection (used to `describe` a component while loading it).
    pub fn detached(budget: Arc<CallBudget>) -> HostContext {
        HostContext { call: None, staging: None, failure: None, log_lines: 0, budget }
    }

    /// A context for a call on a connection; `staged` for an authorization call.
    pub fn for_connection(call: CallConnection, staged: bool) -> HostContext {
        let budget = call.outbound.budget.clone();
        HostContext { call: Some(call), staging: staged.then(Staging::default), failure: None, log_lines: 0, budget }
    }

    /// A host-side failure (storage, keys) that trapped the call, if any.
    pub fn host_failure(&self) -> Option<String> {
        self.failure.clone()
    }

    /// The staged writes of an authorization call (taken once).
    pub fn take_staging(&mut self) -> Option<Staging> {
        self.staging.take()
    }

    /// Mask the connection's credential values in `text`.
    pub fn mask(&self, text: &str) -> String {
        match &self.call {
            Some(c) => c.outbound.mask(text),
            None => text.to_string(),
        }
    }

    fn fail(&mut self, msg: String) -> wasmtime::Error {
        self.failure = Some(msg.clone());
        wasmtime::Error::msg(msg)
    }

    fn call(&self) -> wasmtime::Result<&CallConnection> {
        self.call.as_ref().ok_or_else(|| wasmtime::Error::msg("this call has no connection (describe must not use the host interface)"))
    }

    fn credentials(&self) -> wasmtime::Result<Arc<CallCredentials>> {
        Ok(self.call()?.outbound.credentials.clone())
    }

    /// Count `bytes` of traffic against the call's budget; past it, the call traps.
    fn spend(&mut self, what: &str, bytes: usize) -> wasmtime::Result<()> {
        self.budget.charge(what, bytes).map_err(wasmtime::Error::msg)
    }
}

/// The view the generated bindings use: the call's [`HostContext`] plus the resource table.
pub struct HostView<'a> {
    /// Host state.
    pub ctx: &'a mut HostContext,
    /// The store's resource table (credential locks live there).
    pub table: &'a mut ResourceTable,
}

/// Marker for `add_to_linker`.
pub struct HostApi;

impl HasData for HostApi {
    type Data<'a> = HostView<'a>;
}

impl crate::sandbox::bindings::claribi::data_source::types::Host for HostView<'_> {}

impl wit_host::HostCredentialLock for HostView<'_> {
    async fn drop(&mut self, rep: Resource<CredentialLock>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

fn bounded_key(key: &str) -> wasmtime::Result<()> {
    if key.is_empty() || key.len() > MAX_KEY {
        wasmtime::bail!("keys must be 1 to {MAX_KEY} bytes");
    }
    Ok(())
}

/// What a secret is to the connector: a credential's placeholder, its own value, or nothing.
fn shown(secret: StoredSecret) -> Option<String> {
    match secret {
        StoredSecret::Own(v) => Some(v.to_string()),
        StoredSecret::Credential(c) => Some(c.placeholder.as_str().to_string()),
        StoredSecret::Legacy(_) => None,
    }
}

impl wit_host::Host for HostView<'_> {
    async fn get_connection(&mut self) -> wasmtime::Result<wit::Connection> {
        let Some(call) = &self.ctx.call else {
            return Ok(wit::Connection {
                name: String::new(),
                id: String::new(),
                endpoint: String::new(),
                auth_method: wit::AuthMethod::ApiKey,
                scopes: vec![],
                options: vec![],
                api_key_header: "authorization".into(),
            });
        };
        let c = &call.record;
        Ok(wit::Connection {
            name: c.name.clone(),
            id: c.id.clone(),
            endpoint: c.endpoint.clone(),
            auth_method: match c.auth_method {
                AuthMethod::ApiKey => wit::AuthMethod::ApiKey,
                AuthMethod::Oauth => wit::AuthMethod::Oauth,
            },
            // The operator's `*` is the host's rule (any scope the server names), not a scope.
            scopes: c.scopes.iter().filter(|s| s.as_str() != crate::oauth::scopes::ANY_SCOPE).cloned().collect(),
            options: c.options.clone(),
            api_key_header: c.api_key_header.clone().unwrap_or_else(|| "authorization".into()),
        })
    }

    async fn get_secret(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        bounded_key(&key)?;
        if let Some(staged) = self.ctx.staging.as_ref().and_then(|s| s.secrets.get(&key)) {
            return Ok(staged.as_ref().map(|s| match s {
                Staged::Own(v) => v.to_string(),
                Staged::Credential(c) => c.placeholder.as_str().to_string(),
            }));
        }
        let call = self.ctx.call()?;
        let (store, keys, id) = (call.store.clone(), call.keys.clone(), call.record.id.clone());
        match store.secret(&keys, &id, &key) {
            Ok(v) => Ok(v.and_then(shown)),
            Err(e) => Err(self.ctx.fail(e)),
        }
    }

    async fn update_secrets(&mut self, changes: Vec<(String, Option<String>)>) -> wasmtime::Result<Result<(), String>> {
        if changes.len() > MAX_SECRET_CHANGES {
            return Ok(Err(format!("at most {MAX_SECRET_CHANGES} secrets per update")));
        }
        for (k, v) in &changes {
            if k.is_empty() || k.len() > MAX_KEY || v.as_ref().is_some_and(|v| v.len() > MAX_VALUE) {
                return Ok(Err(format!("secret keys must be 1-{MAX_KEY} bytes and values at most {MAX_VALUE} bytes")));
            }
        }
        let traffic: usize = changes.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, String::len)).sum();
        self.ctx.spend("secret writes", traffic)?;
        let creds = self.ctx.credentials()?;
        let call = self.ctx.call()?;
        let (store, keys, record) = (call.store.clone(), call.keys.clone(), call.record.clone());
        let outbound = call.outbound.clone();
        // What each change becomes: a claimed credential, or the connector's own value.
        let mut writes: Vec<(String, Option<Staged>)> = Vec::with_capacity(changes.len());
        for (k, v) in changes {
            let staged = match v {
                None => None,
                Some(v) => match Placeholder::parse(&v) {
                    Some(p) => match creds.claim(&p) {
                        Some(c) => Some(Staged::Credential(c)),
                        None => return Ok(Err("the value is a placeholder that is not one of this connection's credentials".into())),
                    },
                    None if Placeholder::appears_in(v.as_bytes()) => {
                        return Ok(Err("a credential placeholder must be stored as the whole value, not inside other text".into()))
                    }
                    None if outbound.finds_value(&v) => {
                        return Ok(Err("the value holds a credential of the connection; store its placeholder instead".into()))
                    }
                    None => Some(Staged::Own(Zeroizing::new(v))),
                },
            };
            // The operator's API key is the operator's: a connector may only store it back as it is.
            if k == crate::service::API_KEY_SECRET && record.auth_method == AuthMethod::ApiKey {
                let same = matches!(&staged, Some(Staged::Credential(c)) if c.kind == Kind::ApiKey);
                if !same {
                    return Ok(Err("the API key is the operator's; a connector cannot replace or delete it".into()));
                }
            }
            writes.push((k, staged));
        }
        let mut names: std::collections::BTreeSet<String> = store.secret_names(&record.id).map_err(|e| self.ctx.fail(e))?.into_iter().collect();
        if let Some(s) = &self.ctx.staging {
            for (k, v) in &s.secrets {
                if v.is_some() {
                    names.insert(k.clone());
                } else {
                    names.remove(k);
                }
            }
        }
        for (k, v) in &writes {
            if v.is_some() {
                names.insert(k.clone());
            } else {
                names.remove(k);
            }
        }
        if names.len() > MAX_SECRETS {
            return Ok(Err(format!("a connection may keep at most {MAX_SECRETS} secrets")));
        }
        if let Some(staging) = &mut self.ctx.staging {
            for (k, v) in writes {
                staging.secrets.insert(k, v);
            }
            return Ok(Ok(()));
        }
        let store_writes: Vec<(String, Option<SecretWrite>)> = writes
            .iter()
            .map(|(k, v)| {
                (k.clone(), v.as_ref().map(|s| match s {
                    Staged::Own(v) => SecretWrite::Own(v.to_string()),
                    Staged::Credential(c) => SecretWrite::Credential(c.clone()),
                }))
            })
            .collect();
        match store.update_secrets(&keys, &record.id, &store_writes) {
            Ok(()) => {
                for (_, v) in writes {
                    if let Some(Staged::Credential(c)) = v {
                        creds.stored(c);
                    }
                }
                Ok(Ok(()))
            }
            Err(e) if e.contains("one name") => Ok(Err(e)),
            Err(e) => Err(self.ctx.fail(e)),
        }
    }

    async fn get_state(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        bounded_key(&key)?;
        if let Some(v) = self.ctx.staging.as_ref().and_then(|s| s.state.get(&key)) {
            return Ok(v.clone());
        }
        let call = self.ctx.call()?;
        let (store, id) = (call.store.clone(), call.record.id.clone());
        store.state(&id, &key).map_err(|e| self.ctx.fail(e))
    }

    async fn set_state(&mut self, key: String, value: Option<String>) -> wasmtime::Result<()> {
        bounded_key(&key)?;
        if value.as_ref().is_some_and(|v| v.len() > MAX_VALUE) {
            wasmtime::bail!("state values are limited to {MAX_VALUE} bytes");
        }
        self.ctx.spend("state writes", key.len() + value.as_ref().map_or(0, String::len))?;
        let call = self.ctx.call()?;
        let (store, id, outbound) = (call.store.clone(), call.record.id.clone(), call.outbound.clone());
        if let Some(v) = &value {
            if outbound.finds_value(v) {
                wasmtime::bail!("refusing to store a credential in clear state; use update-secrets");
            }
        }
        let exists = store.state(&id, &key).map_err(|e| self.ctx.fail(e))?.is_some()
            || self.ctx.staging.as_ref().is_some_and(|s| matches!(s.state.get(&key), Some(Some(_))));
        if value.is_some() && !exists {
            let staged_new = self.ctx.staging.as_ref().map_or(0, |s| s.state.values().filter(|v| v.is_some()).count());
            let count = store.state_key_count(&id).map_err(|e| self.ctx.fail(e))? + staged_new;
            if count >= MAX_STATE_KEYS {
                wasmtime::bail!("a connection may keep at most {MAX_STATE_KEYS} state keys");
            }
        }
        if let Some(staging) = &mut self.ctx.staging {
            staging.state.insert(key, value);
            return Ok(());
        }
        store.set_state(&id, &key, value.as_deref()).map_err(|e| self.ctx.fail(e))
    }

    async fn get_shared_state(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        bounded_key(&key)?;
        let call = self.ctx.call()?;
        let (store, digest) = (call.store.clone(), call.record.plugin_digest.clone());
        store.shared_state(&digest, &key).map_err(|e| self.ctx.fail(e))
    }

    async fn set_shared_state(&mut self, key: String, value: Option<String>) -> wasmtime::Result<()> {
        bounded_key(&key)?;
        if value.as_ref().is_some_and(|v| v.len() > MAX_VALUE) {
            wasmtime::bail!("state values are limited to {MAX_VALUE} bytes");
        }
        self.ctx.spend("state writes", key.len() + value.as_ref().map_or(0, String::len))?;
        let call = self.ctx.call()?;
        let (store, digest, outbound) = (call.store.clone(), call.record.plugin_digest.clone(), call.outbound.clone());
        if let Some(v) = &value {
            if outbound.finds_value(v) || Placeholder::appears_in(v.as_bytes()) {
                wasmtime::bail!("refusing to store a credential (or its placeholder) in state shared by every connection");
            }
        }
        if value.is_some() && store.shared_state(&digest, &key).map_err(|e| self.ctx.fail(e))?.is_none() {
            let count = store.shared_state_key_count(&digest).map_err(|e| self.ctx.fail(e))?;
            if count >= MAX_SHARED_STATE_KEYS {
                wasmtime::bail!("a connector may keep at most {MAX_SHARED_STATE_KEYS} shared state keys");
            }
        }
        store.set_shared_state(&digest, &key, value.as_deref()).map_err(|e| self.ctx.fail(e))
    }

    async fn lock_credentials(&mut self) -> wasmtime::Result<Resource<CredentialLock>> {
        let call = self.ctx.call()?;
        let (locks, id) = (call.locks.clone(), call.record.id.clone());
        let lock = locks.lock(&id).await.map_err(|e| self.ctx.fail(e))?;
        Ok(self.table.push(lock)?)
    }

    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.ctx.log_lines += 1;
        if self.ctx.log_lines > MAX_LOG_LINES {
            if self.ctx.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(target: "connector", "connector log limit of {MAX_LOG_LINES} lines per call reached; further lines dropped");
            }
            return Ok(());
        }
        // Cut first, then mask: the work done on a line is bounded whatever its size.
        let mut cut = message.len().min(MAX_LOG_LINE);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        self.ctx.spend("log lines", cut)?;
        let msg = crate::errors::one_line(&self.ctx.mask(&message[..cut]));
        let connection = self.ctx.call.as_ref().map(|c| c.record.name.as_str()).unwrap_or("-");
        match level {
            LogLevel::Debug => tracing::debug!(target: "connector", connection, "{msg}"),
            LogLevel::Info => tracing::info!(target: "connector", connection, "{msg}"),
            LogLevel::Warn => tracing::warn!(target: "connector", connection, "{msg}"),
            LogLevel::Error => tracing::error!(target: "connector", connection, "{msg}"),
        }
        Ok(())
    }
}
