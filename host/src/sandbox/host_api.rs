//! The `claribi:data-source/host` interface: what a connector may ask of the host during a call.
//!
//! Everything is scoped to the one connection the call is for; a connector never names a connection.
//! Secrets are opened from and sealed into the [`crate::store::Store`] with the master keys; a new
//! secret value is also added to the call's credential guard at once, so the outbound hook can stop it
//! from leaving for a foreign origin in the same call. Inputs are bounded (key and value sizes, number
//! of state keys, log lines) so that a hostile connector cannot fill the disk or the logs.

use crate::bindings::claribi::data_source::host::{self as wit_host, LogLevel};
use crate::bindings::wit;
use crate::outbound::OutboundContext;
use crate::secrets::{CredentialLock, CredentialLocks, MasterKeys};
use crate::store::{AuthMethod, ConnectionRecord, Store};
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
const MAX_LOG_LINE: usize = 2048;

/// Host-side state of one call.
pub struct HostContext {
    connection: Option<ConnectionRecord>,
    store: Option<Arc<Store>>,
    keys: Option<Arc<MasterKeys>>,
    locks: Option<CredentialLocks>,
    outbound: Option<Arc<OutboundContext>>,
    failure: Option<String>,
    log_lines: u32,
}

impl HostContext {
    /// A context with no connection (used to `describe` a component while loading it).
    pub fn detached() -> HostContext {
        HostContext { connection: None, store: None, keys: None, locks: None, outbound: None, failure: None, log_lines: 0 }
    }

    /// A context for a call on `connection`.
    pub fn for_connection(
        connection: ConnectionRecord,
        store: Arc<Store>,
        keys: Arc<MasterKeys>,
        locks: CredentialLocks,
        outbound: Arc<OutboundContext>,
    ) -> HostContext {
        HostContext {
            connection: Some(connection),
            store: Some(store),
            keys: Some(keys),
            locks: Some(locks),
            outbound: Some(outbound),
            failure: None,
            log_lines: 0,
        }
    }

    /// A host-side failure (storage, keys) that trapped the call, if any.
    pub fn host_failure(&self) -> Option<String> {
        self.failure.clone()
    }

    /// Mask the connection's secrets in `text`.
    pub fn mask(&self, text: &str) -> String {
        match &self.outbound {
            Some(o) => o.mask(text),
            None => text.to_string(),
        }
    }

    fn fail(&mut self, msg: String) -> wasmtime::Error {
        self.failure = Some(msg.clone());
        wasmtime::Error::msg(msg)
    }

    fn parts(&mut self) -> wasmtime::Result<(ConnectionRecord, Arc<Store>, Arc<MasterKeys>)> {
        match (&self.connection, &self.store, &self.keys) {
            (Some(c), Some(s), Some(k)) => Ok((c.clone(), s.clone(), k.clone())),
            _ => Err(wasmtime::Error::msg("this call has no connection (describe must not use the host interface)")),
        }
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

impl crate::bindings::claribi::data_source::types::Host for HostView<'_> {}

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

impl wit_host::Host for HostView<'_> {
    async fn get_connection(&mut self) -> wasmtime::Result<wit::Connection> {
        let Some(c) = &self.ctx.connection else {
            return Ok(wit::Connection {
                name: String::new(),
                id: String::new(),
                endpoint: String::new(),
                auth_method: wit::AuthMethod::ApiKey,
                scopes: vec![],
                options: vec![],
            });
        };
        Ok(wit::Connection {
            name: c.name.clone(),
            id: c.id.clone(),
            endpoint: c.endpoint.clone(),
            auth_method: match c.auth_method {
                AuthMethod::ApiKey => wit::AuthMethod::ApiKey,
                AuthMethod::Oauth => wit::AuthMethod::Oauth,
            },
            scopes: c.scopes.clone(),
            options: c.options.clone(),
        })
    }

    async fn get_secret(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        bounded_key(&key)?;
        let (c, store, keys) = self.ctx.parts()?;
        match store.secret(&keys, &c.id, &key) {
            Ok(v) => Ok(v.map(|z| z.as_str().to_string())),
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
        let (c, store, keys) = self.ctx.parts()?;
        let mut names: std::collections::BTreeSet<String> =
            store.secret_names(&c.id).map_err(|e| self.ctx.fail(e))?.into_iter().collect();
        for (k, v) in &changes {
            if v.is_some() {
                names.insert(k.clone());
            } else {
                names.remove(k);
            }
        }
        if names.len() > MAX_SECRETS {
            return Ok(Err(format!("a connection may keep at most {MAX_SECRETS} secrets")));
        }
        if let Some(o) = &self.ctx.outbound {
            let mut guard = o.credentials.write().unwrap_or_else(|p| p.into_inner());
            let values = changes.iter().filter_map(|(_, v)| v.clone()).map(Zeroizing::new);
            if let Err(e) = guard.add_secrets(values) {
                return Ok(Err(e));
            }
        }
        match store.update_secrets(&keys, &c.id, &changes) {
            Ok(()) => Ok(Ok(())),
            Err(e) => Err(self.ctx.fail(e)),
        }
    }

    async fn get_state(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        bounded_key(&key)?;
        let (c, store, _) = self.ctx.parts()?;
        store.state(&c.id, &key).map_err(|e| self.ctx.fail(e))
    }

    async fn set_state(&mut self, key: String, value: Option<String>) -> wasmtime::Result<()> {
        bounded_key(&key)?;
        if value.as_ref().is_some_and(|v| v.len() > MAX_VALUE) {
            wasmtime::bail!("state values are limited to {MAX_VALUE} bytes");
        }
        let (c, store, _) = self.ctx.parts()?;
        if value.is_some() && store.state(&c.id, &key).map_err(|e| self.ctx.fail(e))?.is_none() {
            let count = store.state_key_count(&c.id).map_err(|e| self.ctx.fail(e))?;
            if count >= MAX_STATE_KEYS {
                wasmtime::bail!("a connection may keep at most {MAX_STATE_KEYS} state keys");
            }
        }
        if let Some(v) = &value {
            if self.ctx.outbound.as_ref().is_some_and(|o| o.credentials.read().unwrap_or_else(|p| p.into_inner()).leaks_into(v)) {
                wasmtime::bail!("refusing to store a secret in clear state; use update-secrets");
            }
        }
        store.set_state(&c.id, &key, value.as_deref()).map_err(|e| self.ctx.fail(e))
    }

    async fn get_shared_state(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        bounded_key(&key)?;
        let (c, store, _) = self.ctx.parts()?;
        store.shared_state(&c.plugin_digest, &key).map_err(|e| self.ctx.fail(e))
    }

    async fn set_shared_state(&mut self, key: String, value: Option<String>) -> wasmtime::Result<()> {
        bounded_key(&key)?;
        if value.as_ref().is_some_and(|v| v.len() > MAX_VALUE) {
            wasmtime::bail!("state values are limited to {MAX_VALUE} bytes");
        }
        let (c, store, _) = self.ctx.parts()?;
        if value.is_some() && store.shared_state(&c.plugin_digest, &key).map_err(|e| self.ctx.fail(e))?.is_none() {
            let count = store.shared_state_key_count(&c.plugin_digest).map_err(|e| self.ctx.fail(e))?;
            if count >= MAX_SHARED_STATE_KEYS {
                wasmtime::bail!("a connector may keep at most {MAX_SHARED_STATE_KEYS} shared state keys");
            }
        }
        if let Some(v) = &value {
            if self.ctx.outbound.as_ref().is_some_and(|o| o.credentials.read().unwrap_or_else(|p| p.into_inner()).leaks_into(v)) {
                wasmtime::bail!("refusing to store a secret in clear shared state");
            }
        }
        store.set_shared_state(&c.plugin_digest, &key, value.as_deref()).map_err(|e| self.ctx.fail(e))
    }

    async fn lock_credentials(&mut self) -> wasmtime::Result<Resource<CredentialLock>> {
        let (c, _, _) = self.ctx.parts()?;
        let locks = self.ctx.locks.clone().ok_or_else(|| wasmtime::Error::msg("no credential locks"))?;
        let lock = locks.lock(&c.id).await.map_err(|e| self.ctx.fail(e))?;
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
        let mut msg: String = crate::errors::one_line(&self.ctx.mask(&message));
        if msg.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
        }
        let connection = self.ctx.connection.as_ref().map(|c| c.name.as_str()).unwrap_or("-");
        match level {
            LogLevel::Debug => tracing::debug!(target: "connector", connection, "{msg}"),
            LogLevel::Info => tracing::info!(target: "connector", connection, "{msg}"),
            LogLevel::Warn => tracing::warn!(target: "connector", connection, "{msg}"),
            LogLevel::Error => tracing::error!(target: "connector", connection, "{msg}"),
        }
        Ok(())
    }
}
