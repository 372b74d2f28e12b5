//! The fleet's store: PostgreSQL, so that several host replicas share connections, sealed secrets,
//! components, listings, rate budgets, continuations and the audit trail.
//!
//! [`super::Store`] keeps its synchronous methods whatever the backend; with PostgreSQL each of them
//! runs on the store's own Tokio runtime (one worker thread) through `tokio-postgres` and a
//! `deadpool-postgres` pool, and the caller waits on a channel for the answer. No `block_on` is nested
//! in the caller's runtime, so a wasm host function or an engine request may call the store from any
//! thread.
//!
//! ```text
//! caller thread ──job──► store runtime ──► pool (16) ──► PostgreSQL
//!      ▲                       │
//!      └──── std channel ◄─────┘  (one answer per job)
//!
//! credential lock ──► lock pool (separate) ── pg_advisory_lock(key) held on that session
//! ```
//!
//! The credential lock ([`DatabaseLocks`]) is a session-level advisory lock held on a connection of
//! its own pool, never of the store's: a replica waiting for the lock holds only a lock connection, so
//! the holder, which reads and writes the tokens through the store's pool, never waits for a connection
//! a waiter holds. A replica that dies drops its session and PostgreSQL releases its lock.

pub(super) mod locks;
mod queries;
pub mod schema;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod tls;

use super::Res;
use deadpool_postgres::{ClientWrapper, Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::future::BoxFuture;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::types::ToSql;

pub use locks::{DatabaseLock, DatabaseLocks};

/// How many connections the store keeps to PostgreSQL per replica.
const POOL_SIZE: usize = 16;
/// How many sessions may hold or wait for credential locks at once per replica.
const LOCK_POOL_SIZE: usize = 32;
/// How long a store operation waits for a pooled connection, or for a new one.
const WAIT: Duration = Duration::from_secs(30);
/// How long one statement, one wait for a lock, or one idle transaction may last on the server.
const STATEMENT_LIMIT: Duration = Duration::from_secs(60);
/// How long a caller waits for its answer at most (the server's limits end a job well before).
const ANSWER_LIMIT: Duration = Duration::from_secs(120);

/// One statement parameter, owned (it travels to the store's runtime).
pub(super) type P = Box<dyn ToSql + Send + Sync>;

/// Owned parameters for [`Pg::exec`] and friends: `p![id, name, now()]`.
macro_rules! p {
    ($($v:expr),* $(,)?) => { vec![$($crate::vault::store::postgres::IntoP::p($v)),*] };
}
pub(super) use p;

/// What may be passed as a parameter (borrowed values are copied: the statement runs elsewhere).
pub(super) trait IntoP {
    fn p(self) -> P;
}
impl IntoP for &str {
    fn p(self) -> P {
        Box::new(self.to_string())
    }
}
impl IntoP for &String {
    fn p(self) -> P {
        Box::new(self.clone())
    }
}
impl IntoP for String {
    fn p(self) -> P {
        Box::new(self)
    }
}
impl IntoP for i64 {
    fn p(self) -> P {
        Box::new(self)
    }
}
impl IntoP for Option<&str> {
    fn p(self) -> P {
        Box::new(self.map(str::to_string))
    }
}
impl IntoP for Option<String> {
    fn p(self) -> P {
        Box::new(self)
    }
}
impl IntoP for &Option<String> {
    fn p(self) -> P {
        Box::new(self.clone())
    }
}
impl IntoP for Option<i64> {
    fn p(self) -> P {
        Box::new(self)
    }
}
impl IntoP for &[u8] {
    fn p(self) -> P {
        Box::new(self.to_vec())
    }
}
impl IntoP for &Vec<u8> {
    fn p(self) -> P {
        Box::new(self.clone())
    }
}

/// A driver error as one line (the server's message when it sent one).
pub(super) fn pg_err(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("database error: {} ({})", crate::errors::one_line(db.message()), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            format!("database error: {}", crate::errors::one_line(&text))
        }
    }
}

/// Whether an error is a unique-constraint violation.
pub(super) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// `.q()?`: a driver result as the store's.
pub(super) trait Q<T> {
    fn q(self) -> Res<T>;
}
impl<T> Q<T> for Result<T, tokio_postgres::Error> {
    fn q(self) -> Res<T> {
        self.map_err(pg_err)
    }
}

/// One column of a row, typed; a mismatch is an error, never a panic.
pub(super) fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a tokio_postgres::Row, i: usize) -> Res<T> {
    row.try_get(i).map_err(|e| format!("database error: column {i}: {e}"))
}

/// The address of a database for messages: rebuilt from what the driver reads (user, hosts, ports,
/// database), so no part of a password is ever in it, wherever the URL put it.
pub fn redacted(url: &str) -> String {
    let Ok(c) = tokio_postgres::Config::from_str(url) else { return "the PostgreSQL URL".into() };
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            match c.get_ports().get(i).or(c.get_ports().first()) {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        })
        .collect();
    let user = match (c.get_user(), c.get_password().is_some()) {
        (Some(u), true) => format!("{u}:***@"),
        (Some(u), false) => format!("{u}@"),
        (None, true) => ":***@".into(),
        (None, false) => String::new(),
    };
    format!("postgres://{user}{}/{}", hosts.join(","), c.get_dbname().unwrap_or(""))
}

/// Parameters as the driver takes them.
pub(super) fn refs(params: &[P]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// A PostgreSQL store: its runtime and its two pools.
pub struct Pg {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    locks: Pool,
    /// The address, password removed (for messages).
    pub(super) address: String,
    /// The replica this handle registered as and its heartbeat, if any (both ended when dropped).
    pub(super) registered: std::sync::Mutex<Option<(String, tokio::task::JoinHandle<()>)>>,
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.unregister();
        // Dropping a runtime waits for its tasks, which is refused inside another runtime: let them go.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn pool(config: &tokio_postgres::Config, tls: &tls::MakeRustls, size: usize, handle: &tokio::runtime::Handle) -> Res<Pool> {
    let manager = Manager::from_config(config.clone(), tls.clone(), ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let _guard = handle.enter();
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(WAIT))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| format!("cannot set up the database pool: {e}"))
}

impl Pg {
    /// Connect to `url` (`postgres://user@host:port/database`), over TLS verified against the web's
    /// roots and `ca` (see [`tls`]), check that the server answers, and apply the migrations it lacks.
    pub fn connect(url: &str, ca: Option<&std::path::Path>) -> Res<Pg> {
        let address = redacted(url);
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            format!("`{address}` is not a PostgreSQL URL ({e}); give postgres://USER@HOST:PORT/DATABASE")
        })?;
        // A replica that freezes or loses the network must not hold locks or sessions for long: the
        // server drops its session (and so its advisory locks) once keepalives go unanswered, a
        // statement or an idle transaction ends after a minute, and so does waiting for a lock.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .connect_timeout(Duration::from_secs(10));
        let options = format!(
            "{} -c statement_timeout={ms} -c lock_timeout={ms} -c idle_in_transaction_session_timeout={ms} -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3",
            config.get_options().unwrap_or(""),
            ms = STATEMENT_LIMIT.as_millis()
        );
        config.options(options.trim());
        if !tls::local_only(&config) && config.get_ssl_mode() != tokio_postgres::config::SslMode::Require {
            return Err(format!(
                "the database at {address} is on another machine: add sslmode=require to its URL (and CLARIBI_DATABASE_CA=ca.pem for a private CA), so rows never cross the network in clear"
            ));
        }
        if tls::local_only(&config) && config.get_ssl_mode() == tokio_postgres::config::SslMode::Prefer {
            // Traffic that never leaves this machine goes plain unless the URL asks for TLS.
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        }
        let tls = tls::MakeRustls::new(ca)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("claribi-store")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the database runtime: {e}"))?;
        let handle = runtime.handle().clone();
        let pg = Pg {
            pool: pool(&config, &tls, POOL_SIZE, &handle)?,
            locks: pool(&config, &tls, LOCK_POOL_SIZE, &handle)?,
            runtime: Some(runtime),
            handle,
            address,
            registered: Default::default(),
        };
        pg.run(|c| Box::pin(async move { c.simple_query("SELECT 1").await.q().map(|_| ()) })).map_err(|e| {
            format!("cannot reach PostgreSQL at {} ({e}); start it, or fix --database / CLARIBI_DATABASE_URL", pg.address)
        })?;
        pg.migrate().map_err(|e| format!("cannot initialise the database at {}: {e}", pg.address))?;
        Ok(pg)
    }

    /// Run `f` with a pooled connection on the store's runtime and wait for its answer.
    pub(super) fn run<T, F>(&self, f: F) -> Res<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut ClientWrapper) -> BoxFuture<'c, Res<T>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let out = match pool.get().await {
                Ok(mut client) => f(&mut client).await,
                Err(deadpool_postgres::PoolError::Backend(e)) => Err(pg_err(e)),
                Err(e) => Err(format!("database error: no connection to PostgreSQL ({e})")),
            };
            let _ = tx.send(out);
        });
        // A worker of a multi-threaded runtime hands its other tasks over while it waits.
        let wait = || match rx.recv_timeout(ANSWER_LIMIT) {
            Ok(out) => out,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(format!("database error: no answer from PostgreSQL in {} s", ANSWER_LIMIT.as_secs()))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err("database error: the store's runtime stopped".to_string()),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(wait),
            _ => wait(),
        }
    }

    /// One statement; how many rows it changed.
    pub(super) fn exec(&self, sql: &'static str, params: Vec<P>) -> Res<u64> {
        self.run(move |c| {
            Box::pin(async move {
                let stmt = c.prepare_cached(sql).await.q()?;
                c.execute(&stmt, &refs(&params)).await.q()
            })
        })
    }

    /// One query's rows.
    pub(super) fn rows(&self, sql: &'static str, params: Vec<P>) -> Res<Vec<tokio_postgres::Row>> {
        self.run(move |c| {
            Box::pin(async move {
                let stmt = c.prepare_cached(sql).await.q()?;
                c.query(&stmt, &refs(&params)).await.q()
            })
        })
    }

    /// One query's row, if any.
    pub(super) fn row(&self, sql: &'static str, params: Vec<P>) -> Res<Option<tokio_postgres::Row>> {
        self.run(move |c| {
            Box::pin(async move {
                let stmt = c.prepare_cached(sql).await.q()?;
                c.query_opt(&stmt, &refs(&params)).await.q()
            })
        })
    }

    /// Every [`HEARTBEAT`](super::fleet::HEARTBEAT) until this store is dropped: seal under the key
    /// the fleet's database names (when held), and say that `replica` is in service, which key it
    /// seals with and which it holds.
    pub(super) fn keep_alive(&self, replica: &str, keys: std::sync::Arc<crate::vault::sealing::MasterKeys>) {
        let pool = self.pool.clone();
        let id = replica.to_string();
        let replica = id.clone();
        let task = self.handle.spawn(async move {
            let mut tick = tokio::time::interval(super::fleet::HEARTBEAT);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Ok(c) = pool.get().await else { continue };
                if let Ok(Some(row)) = c.query_opt("SELECT value FROM meta WHERE key = 'sealing_key_id'", &[]).await {
                    if let Ok(fleet) = row.try_get::<_, String>(0) {
                        if !keys.seal_under(&fleet) {
                            tracing::error!("the fleet now seals with master key {fleet}, which this replica does not hold; give it that key and restart it");
                        }
                    }
                }
                let sql = format!(
                    "INSERT INTO replicas (id, sealing_key_id, key_ids, started_at_ms, seen_at_ms) VALUES ($1, $2, $3, {now}, {now})
                     ON CONFLICT (id) DO UPDATE SET sealing_key_id = excluded.sealing_key_id, key_ids = excluded.key_ids, seen_at_ms = excluded.seen_at_ms",
                    now = queries::DB_NOW_MS
                );
                if let Err(e) = c.execute(&sql, &[&replica, &keys.current_id(), &keys.ids().join(",")]).await {
                    tracing::warn!("cannot tell the fleet this replica is in service: {}", pg_err(e));
                }
            }
        });
        if let Ok(mut r) = self.registered.lock() {
            if let Some((_, old)) = r.replace((id, task)) {
                old.abort();
            }
        }
    }

    fn unregister(&self) {
        let registered = self.registered.lock().ok().and_then(|mut r| r.take());
        if let Some((replica, heartbeat)) = registered {
            // The heartbeat stops first, so it cannot write the row again after it is removed.
            heartbeat.abort();
            if let Err(e) = self.forget_replica(&replica) {
                tracing::debug!("cannot remove replica `{replica}` from the fleet: {e}");
            }
        }
    }

    /// The credential locks of this database (see the module docs).
    pub fn locks(&self) -> DatabaseLocks {
        DatabaseLocks::new(self.handle.clone(), self.locks.clone())
    }

    /// The schema version reached.
    pub(super) fn schema_version(&self) -> Res<u32> {
        self.run(|c| Box::pin(async move { version(&**c).await }))
    }

    fn migrate(&self) -> Res<()> {
        self.run(|c| {
            Box::pin(async move {
                let newest = schema::MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
                for (v, what, sql) in schema::MIGRATIONS {
                    let tx = c.transaction().await.q()?;
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::MIGRATION_LOCK]).await.q()?;
                    let current = version(&*tx).await?;
                    if current > newest {
                        return Err(format!(
                            "the database has schema version {current}, newer than this claribi-host knows ({newest}); use a newer claribi-host"
                        ));
                    }
                    if current >= *v {
                        continue;
                    }
                    tx.batch_execute(sql).await.map_err(|e| format!("migration {v} ({what}) failed: {}", pg_err(e)))?;
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        &[&v.to_string()],
                    )
                    .await
                    .q()?;
                    tx.commit().await.q()?;
                }
                Ok(())
            })
        })
    }
}

/// The schema version recorded in `meta` (0: an empty database).
async fn version<C: tokio_postgres::GenericClient>(c: &C) -> Res<u32> {
    let has_meta: bool = c
        .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
        .await
        .q()?
        .try_get(0)
        .map_err(|e| format!("database error: {e}"))?;
    if !has_meta {
        return Ok(0);
    }
    match c.query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[]).await.q()? {
        None => Ok(0),
        Some(row) => {
            let v: String = col(&row, 0)?;
            v.parse().map_err(|_| format!("the schema version `{v}` is not a number"))
        }
    }
}
