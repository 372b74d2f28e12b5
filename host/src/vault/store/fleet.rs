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
//! - **The sealing key is the fleet's, not each process's.** The database names the key the fleet
//!   seals with; every process seals under it whatever order its `CLARIBI_MASTER_KEY` lists keys in,
//!   and one that does not hold it is refused at start. Each replica reads that name and says which
//!   key it seals with and which it holds every [`HEARTBEAT`], by the database's clock. Joining and
//!   rotating both hold the row that names the key, so they never interleave.
//! - **A rotation** moves the name to the new key only when every replica seen in the last
//!   [`GONE_AFTER_MS`] holds it, waits until each of them seals with it, and then re-seals every secret
//!   under it in one transaction. Until then every replica reads both keys, since each value carries
//!   its key id.
//!
//! ```text
//! 1. every replica: CLARIBI_MASTER_KEY=NEW,OLD   (restart: still seals with OLD, the fleet's; reads both)
//! 2. claribi-host --database … rotate-key        (NEW named; replicas seal with NEW; everything re-sealed)
//! 3. every replica: CLARIBI_MASTER_KEY=NEW       (OLD is no longer used by any secret)
//! ```

use super::{Res, Store};
use crate::vault::sealing::MasterKeys;
use std::sync::Arc;
use std::time::Duration;

/// How often a process of a PostgreSQL store reads the fleet's key and says it is in service.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A replica silent for this long is taken to be gone.
pub const GONE_AFTER_MS: i64 = 30_000;
/// How long `rotate-key` waits for every replica to seal with the new key.
const SWITCH_WAIT: Duration = Duration::from_secs(30);

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
    /// seals with a key `keys` lacks; otherwise `keys` seals under the fleet's key from now on, and
    /// every [`HEARTBEAT`] until the store is dropped follows it and says so.
    pub fn join_fleet(&self, replica: &str, keys: &Arc<MasterKeys>) -> Res<()> {
        let Some(pg) = self.postgres() else { return Ok(()) };
        let fleet = pg.join(replica, keys.current_id(), keys.ids())?;
        if !keys.seal_under(&fleet) {
            return Err(format!(
                "the secrets in {} are sealed with master key {fleet}, which this process does not hold (it holds {}); give it the fleet's CLARIBI_MASTER_KEY and start it again",
                pg.address,
                keys.ids().join(", ")
            ));
        }
        pg.keep_alive(replica, keys.clone());
        Ok(())
    }

    /// `rotate-key` on a PostgreSQL store: move the fleet to the first key `keys` lists, wait until
    /// every replica seals with it, and re-seal every secret under it. Refused, changing nothing, while
    /// a replica in service does not hold that key. Returns how many secrets were re-sealed.
    pub fn rotate_fleet(&self, keys: &MasterKeys) -> Res<usize> {
        let Some(pg) = self.postgres() else { return Err("rotate_fleet needs a PostgreSQL store".into()) };
        let new = keys.current_id().to_string();
        let before = pg.move_fleet_key(&new, GONE_AFTER_MS)?;
        if before != new && !keys.holds(&before) {
            tracing::warn!("the fleet sealed with master key {before}, which this process does not hold: secrets sealed with it will not open here");
        }
        let started = std::time::Instant::now();
        loop {
            let behind = pg.replicas_not_sealing_with(&new, GONE_AFTER_MS)?;
            let Some((replica, key)) = behind.first() else { break };
            if started.elapsed() > SWITCH_WAIT {
                return Err(format!(
                    "replica `{replica}` still seals with master key {key} after {} s, not {new}; the fleet's key is {new} now, and every secret still opens; check that replica, then run rotate-key again",
                    SWITCH_WAIT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        pg.reencrypt_all(Arc::new(keys.clone()))
    }
}
