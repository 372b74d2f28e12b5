//! The credentials one call may use: the connection's stored ones, and the ones minted during the
//! call from responses (a token response, a registration) or handed in by the host (an authorization
//! code) that no `update-secrets` has claimed yet.
//!
//! A placeholder is resolved against the call's minted credentials first, then the connection's
//! stored ones (read again from the store when this call has not seen it: another call may have
//! refreshed the token meanwhile). Minted credentials no call claims are dropped, zeroed, with the
//! call: nothing is stored for an authorization that fails.

use crate::vault::credentials::{Credential, Placeholder};
use crate::vault::sealing::MasterKeys;
use crate::vault::store::Store;
use crate::wire::attach::Resolve;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most credentials one call may mint (token responses, registrations): bounds what a hostile
/// server can make the host hold.
pub const MAX_MINTED: usize = 32;

/// The credentials of one call.
pub struct CallCredentials {
    connection_id: String,
    store: Option<(Arc<Store>, Arc<MasterKeys>)>,
    /// Minted during the call, not claimed yet.
    minted: Mutex<HashMap<Placeholder, Credential>>,
    /// Stored credentials this call has resolved (a cache of the store).
    stored: Mutex<HashMap<Placeholder, Credential>>,
    /// Bumped whenever the set of known values changes (minted, stored, claimed).
    generation: std::sync::atomic::AtomicU64,
}

impl CallCredentials {
    /// A call of connection `connection_id`, reading stored credentials from `store`.
    pub fn new(connection_id: &str, store: Option<(Arc<Store>, Arc<MasterKeys>)>, stored: Vec<Credential>) -> CallCredentials {
        CallCredentials {
            connection_id: connection_id.to_string(),
            store,
            minted: Mutex::new(HashMap::new()),
            stored: Mutex::new(stored.into_iter().map(|c| (c.placeholder.clone(), c)).collect()),
            generation: Default::default(),
        }
    }

    /// The connection's id (empty for no connection).
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }

    /// No connection (a component being described): nothing resolves.
    pub fn none() -> CallCredentials {
        CallCredentials::new("", None, Vec::new())
    }

    /// Hold a credential minted during the call; returns its placeholder. Refused past [`MAX_MINTED`],
    /// and for a value longer than [`crate::vault::credentials::MAX_VALUE_LEN`].
    pub fn mint(&self, credential: Credential) -> Result<Placeholder, String> {
        crate::vault::credentials::check_value_len(credential.kind, &credential.value)?;
        let mut m = self.minted.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_MINTED {
            return Err(format!("one call may receive at most {MAX_MINTED} new credentials"));
        }
        let p = credential.placeholder.clone();
        m.insert(p.clone(), credential);
        self.bump();
        Ok(p)
    }

    /// The minted credential behind `placeholder`, removed from the unclaimed ones (it is being
    /// stored), or a stored one of the connection.
    pub fn claim(&self, placeholder: &Placeholder) -> Option<Credential> {
        let minted = self.minted.lock().unwrap_or_else(|p| p.into_inner()).get(placeholder).cloned();
        minted.or_else(|| self.credential(placeholder))
    }

    /// Note a credential now stored for the connection (after a claim).
    pub fn stored(&self, credential: Credential) {
        self.minted.lock().unwrap_or_else(|p| p.into_inner()).remove(&credential.placeholder);
        self.stored.lock().unwrap_or_else(|p| p.into_inner()).insert(credential.placeholder.clone(), credential);
        self.bump();
    }

    /// Every credential value this call knows (for masking echoes and the second-line scan).
    pub fn known(&self) -> Vec<Credential> {
        let mut out: Vec<Credential> = self.stored.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        out.extend(self.minted.lock().unwrap_or_else(|p| p.into_inner()).values().cloned());
        out
    }

    /// A counter that changes whenever [`Self::known`] may have changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Resolve for CallCredentials {
    fn credential(&self, placeholder: &Placeholder) -> Option<Credential> {
        if let Some(c) = self.minted.lock().unwrap_or_else(|p| p.into_inner()).get(placeholder) {
            return Some(c.clone());
        }
        if let Some(c) = self.stored.lock().unwrap_or_else(|p| p.into_inner()).get(placeholder) {
            return Some(c.clone());
        }
        let (store, keys) = self.store.as_ref()?;
        match store.credential_by_placeholder(keys, &self.connection_id, placeholder) {
            Ok(Some(c)) => {
                self.stored.lock().unwrap_or_else(|p| p.into_inner()).insert(placeholder.clone(), c.clone());
                self.bump();
                Some(c)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("cannot read a credential of the connection: {e}");
                None
            }
        }
    }
}
