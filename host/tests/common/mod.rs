//! Helpers shared by the tests that run `claribi-host serve --http` as engines see it: the binary, its
//! CLI, a running server and the port it bound, and one HTTP(S) request per connection.
#![allow(dead_code)]

use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

pub const KEY_VAR: &str = "CLARIBI_TEST_CLOSE_KEY";
pub const WAIT: Duration = Duration::from_secs(60);

/// The binary with none of the host's settings from the shell that runs the tests (a home, a log
/// filter, a replica name, a fleet's database or master key): each test gives what it means to.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claribi-host"));
    for var in ["CLARIBI_HOME", KEY_VAR, "CLARIBI_LOG", "CLARIBI_REPLICA_ID", "CLARIBI_DATABASE_URL", "CLARIBI_DATABASE_CA", "CLARIBI_MASTER_KEY"] {
        cmd.env_remove(var);
    }
    cmd
}

pub fn cli(dir: &std::path::Path, args: &[&str]) -> Output {
    bin().arg("--data-dir").arg(dir).args(args).output().expect("the binary runs")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A failure: exit code 1, exactly one line on stderr, nothing on stdout.
pub fn assert_one_line_error(o: &Output, needle: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("error: ") && err.contains(needle), "expected `{needle}` in: {err}");
    assert!(o.stdout.is_empty());
}

pub fn create_token(dir: &std::path::Path, name: &str) -> String {
    let o = cli(dir, &["engine-token", "create", name, "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["name"], name);
    v["token"].as_str().unwrap().to_string()
}

/// A self-signed certificate for `localhost`, `claribi.test` and 127.0.0.1: (cert PEM, key PEM, DER).
pub fn certificate() -> (String, String, Vec<u8>) {
    let names = vec!["localhost".to_string(), "claribi.test".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names).unwrap();
    (cert.pem(), key_pair.serialize_pem(), cert.der().to_vec())
}

/// `serve --http ADDR …` running, and the port it bound.
pub struct Serving {
    pub child: Child,
    pub port: u16,
}

impl Serving {
    /// Stop it as an orchestrator does (SIGTERM), and wait for it to end.
    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("serve did not stop within {WAIT:?} of SIGTERM");
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(dir: &std::path::Path, args: &[&str], replica: &str) -> Serving {
    let mut cmd = bin();
    cmd.arg("--data-dir").arg(dir);
    serve_with(cmd, args, replica)
}

/// `serve` run by `cmd` (which names the store).
pub fn serve_with(mut cmd: Command, args: &[&str], replica: &str) -> Serving {
    let mut child = cmd
        .env("CLARIBI_REPLICA_ID", replica)
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = loop {
        let l = rx.recv_timeout(WAIT).expect("serve says where it listens");
        if l.contains("serving MCP") {
            break l;
        }
    };
    let port = line
        .split_whitespace()
        .find_map(|w| w.strip_suffix("/mcp;"))
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a port in: {line}"));
    Serving { child, port }
}

/// The TLS client configuration that trusts only the test's certificate.
pub fn trusting(der: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(der.to_vec())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// One HTTP request on its own connection (HTTPS when `tls` is given, verified for `localhost`):
/// (status, `WWW-Authenticate`, the JSON-RPC answer or the body's text).
pub async fn post(port: u16, tls: Option<&Arc<rustls::ClientConfig>>, headers: &[(&str, &str)], body: &Value) -> (u16, String, Value) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connects");
    let mut req = http::Request::post("/mcp")
        .header("Host", format!("localhost:{port}"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    // A Host given by the caller replaces the default.
    let mut req = req.body(Full::new(bytes::Bytes::from(body.to_string()))).unwrap();
    if let Some((_, h)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.headers_mut().insert(http::header::HOST, http::HeaderValue::from_str(h).unwrap());
    }
    let response = match tls {
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let stream = tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await.expect("TLS handshake");
            send(hyper_util::rt::TokioIo::new(stream), req).await
        }
        None => send(hyper_util::rt::TokioIo::new(tcp), req).await,
    };
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let sse = response.headers().get("content-type").is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
    let body = text(&response.into_body().collect().await.unwrap().to_bytes());
    let value = if sse {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
            .unwrap_or(Value::Null)
    } else {
        serde_json::from_str(&body).unwrap_or(Value::String(body))
    };
    (status, challenge, value)
}

pub async fn send<T>(io: hyper_util::rt::TokioIo<T>, req: http::Request<Full<bytes::Bytes>>) -> http::Response<hyper::body::Incoming>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.expect("HTTP/1.1");
    tokio::spawn(conn);
    tokio::time::timeout(WAIT, sender.send_request(req)).await.expect("an answer in time").expect("a response")
}

/// A stateless (MCP 2026-07-28) `tools/call`: no session, everything on the request.
pub fn call(id: u64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": tool, "arguments": args,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "engine-test", "version": "1"}
        }
    }})
}

pub fn call_headers<'a>(tool: &'a str, bearer: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/call"), ("Mcp-Name", tool)];
    if let Some(b) = bearer {
        h.push(("Authorization", b));
    }
    h
}

pub fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Connect `close` to the stand-in with its API key, through the CLI.
pub fn connect_close(dir: &std::path::Path, s: &close_standin::StandIn) {
    let mut cmd = bin();
    cmd.arg("--data-dir").arg(dir);
    connect_close_with(cmd, s);
}

/// Connect `close` to the stand-in with its API key, through the CLI `cmd` runs.
pub fn connect_close_with(mut cmd: Command, s: &close_standin::StandIn) {
    let o = cmd
        .args(["connect", "close", "--plugin", "builtin:close", "--endpoint", &s.url(), "--api-key-env", KEY_VAR])
        .args(["--allow-origin", s.base_url().trim_end_matches('/')])
        .env(KEY_VAR, s.api_key())
        .output()
        .unwrap();
    assert!(o.status.success(), "connect: {}", text(&o.stderr));
}

/// Where a test's host processes keep their state: one data directory for all of them (SQLite, one
/// machine), or a PostgreSQL database of the test's own with a data directory per process, as if each
/// ran on a machine of its own, and one master key given to all through `CLARIBI_MASTER_KEY`.
pub struct Fleet {
    dirs: Vec<tempfile::TempDir>,
    pub database: Option<claribi_host::vault::store::postgres::testing::TestDatabase>,
    master_key: Option<String>,
}

impl Fleet {
    /// SQLite in one shared data directory.
    pub fn sqlite() -> Fleet {
        Fleet { dirs: vec![tempfile::tempdir().unwrap()], database: None, master_key: None }
    }

    /// PostgreSQL (a fresh database, dropped after) and a data directory per process.
    pub fn postgres() -> Fleet {
        use base64::Engine as _;
        let database = claribi_host::vault::store::postgres::testing::TestDatabase::create();
        let key: [u8; 32] = rand::random();
        Fleet {
            dirs: (0..4).map(|_| tempfile::tempdir().unwrap()).collect(),
            database: Some(database),
            master_key: Some(base64::engine::general_purpose::STANDARD.encode(key)),
        }
    }

    /// With PostgreSQL, no process kept a store of its own: no data directory holds a database file,
    /// and every connection is in the shared database.
    pub fn assert_nothing_stored_locally(&self) {
        if self.database.is_none() {
            return;
        }
        for d in &self.dirs {
            assert!(!d.path().join("claribi.db").exists(), "{} holds a SQLite store", d.path().display());
        }
    }

    /// Which store this is, for the figures a test prints.
    pub fn backend(&self) -> &'static str {
        if self.database.is_some() { "PostgreSQL" } else { "SQLite" }
    }

    /// The data directory of process `i` (0: the operator's CLI).
    pub fn dir(&self, i: usize) -> &std::path::Path {
        self.dirs[i.min(self.dirs.len() - 1)].path()
    }

    /// `claribi-host` as process `i` runs it.
    pub fn cmd(&self, i: usize) -> Command {
        let mut cmd = bin();
        cmd.arg("--data-dir").arg(self.dir(i));
        if let Some(db) = &self.database {
            cmd.arg("--database").arg(&db.url);
        }
        if let Some(k) = &self.master_key {
            cmd.env("CLARIBI_MASTER_KEY", k);
        }
        cmd
    }

    /// The operator's CLI.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cmd(0).args(args).output().expect("the binary runs")
    }

    /// `serve` as process `i` (1, 2, 3: replicas).
    pub fn serve(&self, i: usize, args: &[&str], replica: &str) -> Serving {
        serve_with(self.cmd(i), args, replica)
    }

    /// Connect `close` to the stand-in with its API key, through the operator's CLI.
    pub fn connect_close(&self, s: &close_standin::StandIn) {
        connect_close_with(self.cmd(0), s);
    }
}
