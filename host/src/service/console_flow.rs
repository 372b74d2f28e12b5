//! The setup flow in the product's order — **authorize first, name last** — for the web console.
//!
//! The CLI's `connect` takes the name up front and blocks on its own loopback listener. The console
//! instead creates the connection *pending* under a setup name (`setup_…`), authorizes it (an API key
//! sealed and checked, or OAuth in two steps with the console's own callback route), and names it when
//! the user presses Finish. Every step is the same service code the CLI runs
//! ([`HostService::create_pending`], [`HostService::begin_authorization`],
//! [`HostService::complete_authorization`], the API key's sealing and check, `finish_connect`):
//!
//! ```text
//! create_unnamed ──▶ pending `setup_…` ──┬─ authorize_unnamed_with_key (sealed, checked)
//!                                        └─ begin_unnamed_authorization ─▶ URL ─▶ popup ─▶ callback route
//!                                           complete_unnamed_authorization
//! finish_unnamed(name): a taken or invalid name is refused and nothing changes; else renamed, ready
//! abandon_unnamed: a setup given up (or failed) is deleted with its secrets
//! ```
//!
//! A failed authorization removes the pending connection (nothing is stored, as with `connect`); a
//! name refused at Finish leaves it pending so the user can choose another name; a setup that is never
//! finished is removed by [`HostService::abandon_unnamed`] or, after a console stopped,
//! [`HostService::sweep_unnamed`].

use super::connect::Established;
use super::{random_id, validate_name, ConnectOutcome, ConnectRequest, HostService, PendingAuthorization};
use crate::errors::HostError;
use crate::vault::store::{ConnectionRecord, Status, Store};
use zeroize::Zeroizing;

/// The prefix of the name a connection carries while the console sets it up.
pub const SETUP_PREFIX: &str = "setup_";

/// What an authorization established, before the data source is named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorization {
    /// The account the connector named.
    pub account: Option<String>,
    /// The scopes granted, as the host read them.
    pub granted_scopes: Vec<String>,
    /// Warnings (a grant wider than asked).
    pub warnings: Vec<String>,
}

impl From<Established> for Authorization {
    fn from(e: Established) -> Self {
        Authorization { account: e.account, granted_scopes: e.granted_scopes, warnings: e.warnings }
    }
}

impl From<super::Authorized> for Authorization {
    fn from(a: super::Authorized) -> Self {
        Authorization { account: a.account, granted_scopes: a.granted_scopes, warnings: a.warnings }
    }
}

/// Whether a connection is one the console is still setting up.
pub fn is_unnamed(c: &ConnectionRecord) -> bool {
    c.status == Status::Pending && c.name.starts_with(SETUP_PREFIX)
}

impl HostService {
    /// Create a pending connection under a fresh setup name (`req.name` is replaced): the component is
    /// loaded and pinned, the endpoint checked, an operator's client secret sealed.
    pub async fn create_unnamed(&self, mut req: ConnectRequest) -> Result<ConnectionRecord, HostError> {
        req.name = random_id(SETUP_PREFIX.trim_end_matches('_'));
        self.create_pending(&req).await
    }

    fn unnamed(&self, connection_id: &str) -> Result<ConnectionRecord, HostError> {
        let c = self.connection_by_id(connection_id)?;
        if !is_unnamed(&c) {
            return Err(HostError::Usage(format!("connection `{}` is not being set up", c.name)));
        }
        Ok(c)
    }

    /// Remove a failed setup (nothing is stored), passing the error on.
    fn failed<T>(&self, connection_id: &str, e: HostError) -> Result<T, HostError> {
        if let Err(d) = self.abandon_unnamed(connection_id) {
            tracing::warn!("cannot remove the failed setup {connection_id}: {d}");
        }
        Err(e)
    }

    /// Seal an API key for a pending connection and check it. The connection stays pending until it
    /// is named; on failure it is removed with its secrets.
    pub async fn authorize_unnamed_with_key(&self, connection_id: &str, key: Zeroizing<String>) -> Result<Authorization, HostError> {
        let c = self.unnamed(connection_id)?;
        let checked = async {
            let plugin = self.plugin_for(&c).await?;
            self.seal_api_key(&c, &key)?;
            self.check_account(&c, &plugin).await
        }
        .await;
        match checked {
            Ok(e) => Ok(e.into()),
            Err(e) => self.failed(connection_id, e),
        }
    }

    /// Check a pending connection that needs no credentials.
    pub async fn authorize_unnamed_without_credentials(&self, connection_id: &str) -> Result<Authorization, HostError> {
        let c = self.unnamed(connection_id)?;
        let checked = async {
            let plugin = self.plugin_for(&c).await?;
            self.check_account(&c, &plugin).await
        }
        .await;
        match checked {
            Ok(e) => Ok(e.into()),
            Err(e) => self.failed(connection_id, e),
        }
    }

    /// Begin OAuth for a pending connection: the checked authorization URL, with the browser coming
    /// back to `redirect_uri` (the console's callback route). On failure the setup is removed.
    pub async fn begin_unnamed_authorization(&self, connection_id: &str, redirect_uri: &str) -> Result<PendingAuthorization, HostError> {
        let c = self.unnamed(connection_id)?;
        let begun = async {
            let plugin = self.plugin_for(&c).await?;
            self.begin_authorization(&c, &plugin, redirect_uri).await
        }
        .await;
        match begun {
            Ok(p) => Ok(p),
            Err(e) => self.failed(connection_id, e),
        }
    }

    /// Complete OAuth for a pending connection with the URL the browser came back to. On failure
    /// (denied consent, wrong state, insufficient scope, …) the setup is removed: nothing is stored.
    pub async fn complete_unnamed_authorization(
        &self,
        pending: &PendingAuthorization,
        callback_url: &str,
    ) -> Result<Authorization, HostError> {
        let c = self.unnamed(&pending.connection_id)?;
        let completed = async {
            let plugin = self.plugin_for(&c).await?;
            self.complete_authorization(&c, &plugin, pending, callback_url).await
        }
        .await;
        match completed {
            Ok(a) => Ok(a.into()),
            Err(e) => self.failed(&pending.connection_id, e),
        }
    }

    /// Name an authorized setup and make it ready. An invalid name, or one another connection has, is
    /// refused before anything changes (the setup stays pending, for another name).
    pub async fn finish_unnamed(&self, connection_id: &str, name: &str, authorization: Authorization) -> Result<ConnectOutcome, HostError> {
        let c = self.unnamed(connection_id)?;
        let name = name.trim();
        validate_name(name)?;
        if name.starts_with(SETUP_PREFIX) {
            return Err(HostError::Usage(format!("names starting with `{SETUP_PREFIX}` are the console's own; choose another name")));
        }
        if self.store.connection(name).map_err(HostError::Storage)?.is_some() {
            return Err(HostError::Usage(format!("a data source named `{name}` already exists; choose another name")));
        }
        self.store.rename_connection(&c.id, name).map_err(HostError::Usage)?;
        let named = self.connection_by_id(&c.id)?;
        let plugin = self.plugin_for(&named).await?;
        let a = authorization;
        self.finish_connect(&named, &plugin, Established { account: a.account, granted_scopes: a.granted_scopes, warnings: a.warnings })
    }

    /// Remove a setup with its secrets and state. Only connections still being set up are removed;
    /// returns whether one was.
    pub fn abandon_unnamed(&self, connection_id: &str) -> Result<bool, HostError> {
        match self.connection_by_id(connection_id) {
            Ok(c) if is_unnamed(&c) => self.store.delete_connection(&c.id).map_err(HostError::Storage),
            Ok(_) | Err(HostError::NoSuchConnection(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Remove setups older than `older_than_secs` (a console that stopped mid-setup). Returns how many.
    pub fn sweep_unnamed(&self, older_than_secs: i64) -> Result<usize, HostError> {
        let now = Store::now();
        let mut n = 0;
        for c in self.connections()? {
            if is_unnamed(&c) && now - c.created_at >= older_than_secs && self.store.delete_connection(&c.id).map_err(HostError::Storage)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Begin authorizing an existing OAuth connection again (after needs-reconnect or insufficient
    /// scope), with the browser coming back to `redirect_uri`. Its tokens stay until new ones are kept.
    pub async fn begin_reauthorization(&self, name: &str, redirect_uri: &str) -> Result<PendingAuthorization, HostError> {
        let c = self.connection(name)?;
        if c.auth_method != crate::vault::store::AuthMethod::Oauth {
            return Err(HostError::Usage(format!("data source `{name}` uses an API key; give it a new key instead")));
        }
        let plugin = self.plugin_for(&c).await?;
        self.begin_authorization(&c, &plugin, redirect_uri).await
    }

    /// Complete a re-authorization begun with [`Self::begin_reauthorization`]; the outcome is recorded
    /// on the connection as a CLI `reconnect` records it.
    pub async fn complete_reauthorization(&self, pending: &PendingAuthorization, callback_url: &str) -> Result<ConnectOutcome, HostError> {
        let c = self.connection_by_id(&pending.connection_id)?;
        let plugin = self.plugin_for(&c).await?;
        let result = match self.complete_authorization(&c, &plugin, pending, callback_url).await {
            Ok(a) => self.finish_connect(&c, &plugin, Established { account: a.account, granted_scopes: a.granted_scopes, warnings: a.warnings }),
            Err(e) => Err(e),
        };
        self.record_outcome(&c, &result);
        result
    }
}
