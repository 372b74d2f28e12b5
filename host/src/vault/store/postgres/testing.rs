//! A database of its own for each test (created on the server the tests are given, dropped after).
//!
//! The server is `CLARIBI_TEST_DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/test` (this
//! project's machines and CI run PostgreSQL there). When it cannot be reached the test fails, saying
//! so; it never skips.

/// Where the tests find PostgreSQL.
pub fn server_url() -> String {
    std::env::var("CLARIBI_TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty()).unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh database, dropped (with any session still on it) when this goes.
pub struct TestDatabase {
    name: String,
    /// Its URL.
    pub url: String,
}

/// Run `sql` on the tests' server, from a thread of its own (so it works inside or outside a runtime).
fn admin(sql: String) -> Result<(), String> {
    let server = server_url();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls).await.map_err(|e| super::pg_err(e))?;
            let task = tokio::spawn(conn);
            let out = client.batch_execute(&sql).await.map_err(super::pg_err);
            drop(client);
            let _ = task.await;
            out
        })
    })
    .join()
    .map_err(|_| "the database helper thread failed".to_string())?
}

impl TestDatabase {
    /// Create one. Panics, naming the server and what to do, when PostgreSQL cannot be reached.
    pub fn create() -> TestDatabase {
        TestDatabase::try_create().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Create one, or say why not in one line.
    pub fn try_create() -> Result<TestDatabase, String> {
        use rand::RngCore;
        let mut b = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let name = format!("claribi_test_{}", hex::encode(b));
        admin(format!("CREATE DATABASE {name}")).map_err(|e| {
            format!(
                "the PostgreSQL tests need a server at {} ({e}); start PostgreSQL there, or point CLARIBI_TEST_DATABASE_URL at one",
                super::redacted(&server_url())
            )
        })?;
        let mut url = url::Url::parse(&server_url()).map_err(|e| format!("CLARIBI_TEST_DATABASE_URL is not a URL ({e})"))?;
        url.set_path(&format!("/{name}"));
        Ok(TestDatabase { name, url: url.to_string() })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = admin(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}
