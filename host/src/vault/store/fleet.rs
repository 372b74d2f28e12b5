//! What replicas on other machines share besides rows: the connector components (by digest), and the
//! master key the fleet seals with.
//!
//! A SQLite store serves one machine: its components are files in the data directory and its key
//! rotation waits for the other processes on that directory (`crate::vault::locks::KeyUseLock`). A
//! PostgreSQL store serves a fleet:
//!
//! - **Components** are kept in the database by digest, so a replica that never saw a connection's
//!   `connect` loads the very bytes it was pinned to (and checks their digest) and caches them, and
//!   their compiled code, on its own disk.
//! - **The sealing key.** The database records the key id the fleet seals with. A replica that does
//!   not hold that key is refused at start (it could open nothing). Each replica says every 10 s which
//!   key it seals with; `rotate-key` moves the fleet to the key it holds first only when every replica
//!   seen in the last 30 s seals with that key too, and then re-seals every secret under it in one
//!   transaction. Until then replicas keep reading the old ids, since each value carries its key id.
//!
//! ```text
//! 1. every replica: CLARIBI_MASTER_KEY=NEW,OLD   (restart: seals with NEW, reads both)
//! 2. claribi-host --database … rotate-key        (refused while any live replica seals with OLD)
//! 3. every replica: CLARIBI_MASTER_KEY=NEW       (OLD is no longer used by any row)
//! ```

use super::{Res, Store};
use crate::vault::sealing::MasterKeys;
use std::sync::Arc;
use std::time::Duration;

/// How often a replica of a PostgreSQL store says it is in service.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A replica silent for this long is taken to be gone.
pub const GONE_AFTER_MS: i64 = 30_000;

impl Store {
    /// Keep a component where every replica finds it (PostgreSQL). A SQLite store keeps components as
    /// files in the data directory, and this does nothing.
    pub fn put_component(&self, digest: &str, bytes: &[u8]) -> Res<()> {
        match self.postgres() {
            Some(pg) => pg.put_component(digest, bytes),
            None => Ok(()),
        }
    }

    /// A component kept by [`Store::put_component`] (`None` on SQLite, or when not kept).
    pub fn component(&self, digest: &str) -> Res<Option<Vec<u8>>> {
        match self.postgres() {
            Some(pg) => pg.component(digest),
            None => Ok(None),
        }
    }

    /// Take part in the fleet as `replica` (PostgreSQL; nothing on SQLite): refused when the fleet
    /// seals with a key `keys` lacks; otherwise says every [`HEARTBEAT`] which key this replica seals
    /// with, until the store is dropped.
    pub fn join_fleet(&self, replica: &str, keys: &MasterKeys) -> Res<()> {
        let Some(pg) = self.postgres() else { return Ok(()) };
        let fleet = pg.fleet_key(keys.current_id())?;
        if !keys.ids().iter().any(|id| *id == fleet) {
            return Err(format!(
                "the secrets in {} are sealed with master key {fleet}, which this replica does not hold (it holds {}); give it the fleet's CLARIBI_MASTER_KEY and start it again",
                pg.address,
                keys.ids().join(", ")
            ));
        }
        pg.heartbeat(replica, keys.current_id(), &keys.ids(), Store::now_ms())?;
        pg.keep_alive(replica, keys.current_id(), &keys.ids());
        Ok(())
    }

    /// `rotate-key` on a PostgreSQL store: move the fleet to the key `keys` holds first and re-seal
    /// every secret under it. Refused, changing nothing, while a replica in service seals with another
    /// key. Returns how many secrets were re-sealed.
    pub fn rotate_fleet(&self, keys: &MasterKeys) -> Res<usize> {
        let Some(pg) = self.postgres() else { return Err("rotate_fleet needs a PostgreSQL store".into()) };
        let new = keys.current_id().to_string();
        let before = pg.fleet_key(&new)?;
        // The fleet's key moves first, so a replica starting from now on without it is refused …
        pg.set_fleet_key(&new)?;
        // … and then no replica in service may still seal with another.
        let live = pg.replicas_seen_since(Store::now_ms() - GONE_AFTER_MS)?;
        if let Some((replica, key)) = live.iter().find(|(_, k)| *k != new) {
            pg.set_fleet_key(&before)?;
            return Err(format!(
                "replica `{replica}` still seals with master key {key}, not {new}; put the new key first in its CLARIBI_MASTER_KEY (the old keys after it), restart it, then run rotate-key again"
            ));
        }
        pg.reencrypt_all(Arc::new(keys.clone()))
    }
}
