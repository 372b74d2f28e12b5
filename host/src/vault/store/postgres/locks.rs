//! The credential lock across replicas: a session-level `pg_advisory_lock` per connection, held on a
//! session of the lock pool (never the store's pool), released by `pg_advisory_unlock` when the lock is
//! dropped — or by PostgreSQL when the holder's session ends, so a replica that dies holding it
//! blocks nobody.

use super::{pg_err, Res};
use deadpool_postgres::Pool;
use sha2::{Digest, Sha256};

/// Hands out [`DatabaseLock`]s (see the module docs).
#[derive(Clone)]
pub struct DatabaseLocks {
    handle: tokio::runtime::Handle,
    pool: Pool,
}

/// A held credential lock; dropping it releases it.
pub struct DatabaseLock {
    client: Option<deadpool_postgres::Object>,
    key: i32,
    handle: tokio::runtime::Handle,
}

/// The class of credential locks in PostgreSQL's two-key advisory locks, a key space apart from the
/// one-key locks of rate budgets and migrations (so a rate transaction never waits on a credential
/// holder however keys collide).
const CREDENTIAL_CLASS: i32 = 0x636c_6169;

/// The advisory-lock key of a connection's credentials: 4 bytes of a SHA-256 (two connections whose
/// keys collide only refresh one after the other).
pub fn lock_key(connection_id: &str) -> i32 {
    let d = Sha256::digest(format!("claribi/credential-lock/{connection_id}").as_bytes());
    i32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

async fn unlock(client: deadpool_postgres::Object, key: i32) {
    if client.execute("SELECT pg_advisory_unlock($1, $2)", &[&CREDENTIAL_CLASS, &key]).await.is_err() {
        // A session that may still hold the lock never goes back to the pool: closing it releases.
        drop(deadpool_postgres::Object::take(client));
    }
}

impl DatabaseLocks {
    pub(super) fn new(handle: tokio::runtime::Handle, pool: Pool) -> DatabaseLocks {
        DatabaseLocks { handle, pool }
    }

    /// Wait for and take the lock of `connection_id`.
    pub async fn lock(&self, connection_id: &str) -> Res<DatabaseLock> {
        let key = lock_key(connection_id);
        let pool = self.pool.clone();
        let (mut tx, rx) = tokio::sync::oneshot::channel();
        self.handle.spawn(async move {
            let client = match pool.get().await {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(format!("database error: no session for the credential lock ({e})")));
                    return;
                }
            };
            let cancel = client.cancel_token();
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&CREDENTIAL_CLASS, &key];
            let taken = tokio::select! {
                r = client.execute("SELECT pg_advisory_lock($1, $2)", &params) => Some(r.map(drop).map_err(pg_err)),
                _ = tx.closed() => None,
            };
            let Some(taken) = taken else {
                // The caller stopped waiting (its call was cancelled or timed out): stop waiting too,
                // and close the session, which releases the lock should it have been granted meanwhile.
                let _ = cancel.cancel_query(tokio_postgres::NoTls).await; // best effort: the session is closed next
                drop(deadpool_postgres::Object::take(client));
                return;
            };
            match taken {
                Ok(()) => {
                    if let Err(Ok(client)) = tx.send(Ok(client)) {
                        unlock(client, key).await;
                    }
                }
                Err(e) => {
                    // A session whose lock request failed part-way is not reused.
                    drop(deadpool_postgres::Object::take(client));
                    let _ = tx.send(Err(e));
                }
            }
        });
        let client = rx.await.map_err(|_| "database error: the store's runtime stopped".to_string())??;
        Ok(DatabaseLock { client: Some(client), key, handle: self.handle.clone() })
    }
}

impl Drop for DatabaseLock {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let key = self.key;
            self.handle.spawn(unlock(client, key));
        }
    }
}
