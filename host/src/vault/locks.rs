//! Locks around credentials: the per-connection credential lock a connector holds while it refreshes
//! tokens (in-process mutex plus an `flock` across processes sharing the data directory), and the
//! data-directory lock that keeps `rotate-key` from retiring a master key a running process still uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The credential lock a connector holds while it refreshes a connection's tokens (the WIT resource
/// `host.credential-lock`). Dropping it releases both the in-process mutex and the cross-process
/// file lock.
pub struct CredentialLock {
    // Fields drop in this order: the lock shared with other processes goes before this process's.
    _database: Option<crate::vault::store::postgres::DatabaseLock>,
    _file: Option<std::fs::File>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

/// Hands out [`CredentialLock`]s: one per connection, across tasks of this process (a mutex) and
/// across processes — those sharing the data directory (an exclusive `flock` on
/// `locks/<connection>.lock`), or, with a PostgreSQL store, every replica of the fleet (an advisory
/// lock, see [`crate::vault::store::postgres::DatabaseLocks`]). A task takes the process's mutex
/// before the shared lock, so a process has at most one session waiting per connection.
#[derive(Clone)]
pub struct CredentialLocks {
    local: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    dir: Option<PathBuf>,
    database: Option<crate::vault::store::postgres::DatabaseLocks>,
}

impl CredentialLocks {
    /// Locks whose cross-process files live under `dir` (`None`: in-process only).
    pub fn new(dir: Option<PathBuf>) -> CredentialLocks {
        CredentialLocks { local: Arc::default(), dir, database: None }
    }

    /// Locks held in a PostgreSQL database shared by the fleet.
    pub fn database(locks: crate::vault::store::postgres::DatabaseLocks) -> CredentialLocks {
        CredentialLocks { local: Arc::default(), dir: None, database: Some(locks) }
    }

    /// Wait for and take the lock of `connection_id`.
    pub async fn lock(&self, connection_id: &str) -> Result<CredentialLock, String> {
        let mutex = {
            let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(connection_id.to_string()).or_default().clone()
        };
        let local = mutex.lock_owned().await;
        if let Some(db) = &self.database {
            let held = db.lock(connection_id).await?;
            return Ok(CredentialLock { _local: local, _file: None, _database: Some(held) });
        }
        let file = match &self.dir {
            None => None,
            Some(dir) => {
                let path = dir.join(format!("{}.lock", sanitize(connection_id)));
                let f = tokio::task::spawn_blocking(move || -> Result<std::fs::File, String> {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                    }
                    let f = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&path)
                        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                    f.lock().map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
                    Ok(f)
                })
                .await
                .map_err(|e| format!("credential lock task failed: {e}"))??;
                Some(f)
            }
        };
        Ok(CredentialLock { _local: local, _file: file, _database: None })
    }
}

/// Which processes use a data directory's master key: every [`crate::service::HostService`] holds a
/// shared `flock` on `locks/host.lock` while it runs, and `rotate-key` needs it exclusively, so a key
/// is never retired while a running process (a `serve`, say) could still seal new tokens with it.
pub struct KeyUseLock {
    _file: std::fs::File,
}

impl KeyUseLock {
    fn open(data_dir: &Path) -> Result<std::fs::File, String> {
        let dir = data_dir.join("locks");
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("host.lock");
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))
    }

    /// A shared hold: this process uses the master key (waits while a rotation runs).
    pub fn shared(data_dir: &Path) -> Result<KeyUseLock, String> {
        let f = Self::open(data_dir)?;
        match f.try_lock_shared() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::warn!("a key rotation is running on {}; waiting for it to finish", data_dir.display());
                f.lock_shared().map_err(|e| format!("cannot lock {}/locks/host.lock: {e}", data_dir.display()))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(format!("cannot lock {}/locks/host.lock: {e}", data_dir.display())),
        }
        Ok(KeyUseLock { _file: f })
    }

    /// The exclusive hold a rotation needs, or an error saying which process to stop.
    pub fn exclusive_now(data_dir: &Path) -> Result<KeyUseLock, String> {
        let f = Self::open(data_dir)?;
        match f.try_lock() {
            Ok(()) => Ok(KeyUseLock { _file: f }),
            Err(std::fs::TryLockError::WouldBlock) => Err(format!(
                "another claribi-host process (a `serve`, say) is using {}; stop it, run rotate-key, then start it again",
                data_dir.display()
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}/locks/host.lock: {e}", data_dir.display())),
        }
    }
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_waits_for_no_process_using_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let running = KeyUseLock::shared(dir.path()).unwrap();
        let also_running = KeyUseLock::shared(dir.path()).unwrap();
        let err = KeyUseLock::exclusive_now(dir.path()).err().expect("refused while others run");
        assert!(err.contains("stop it, run rotate-key"), "{err}");
        drop((running, also_running));
        let rotating = KeyUseLock::exclusive_now(dir.path()).expect("free once they stopped");
        drop(rotating);
    }

    #[tokio::test]
    async fn the_credential_lock_is_exclusive_per_connection() {
        let dir = tempfile::tempdir().unwrap();
        let locks = CredentialLocks::new(Some(dir.path().to_path_buf()));
        let held = locks.lock("c1").await.unwrap();
        // Another connection is independent.
        let other = tokio::time::timeout(std::time::Duration::from_secs(2), locks.lock("c2")).await;
        assert!(other.is_ok());
        // The same connection waits until the first holder drops.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(200), locks.lock("c1")).await;
        assert!(waiting.is_err(), "second lock must wait");
        drop(held);
        let got = tokio::time::timeout(std::time::Duration::from_secs(2), locks.lock("c1")).await;
        assert!(got.is_ok());
    }
}
