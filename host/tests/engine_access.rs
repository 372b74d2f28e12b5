//! Engines on other machines: `serve --http` off loopback needs engine tokens and TLS, admits only
//! working tokens (a revoked one is refused at its next request, without a restart), keeps its `Host`
//! and `Origin` checks, and records every call in the audit trail under the token's name — and the
//! trail, `engine-token list` and the database never hold a token, a key or a result in clear.

use close_standin::{StandIn, StandInConfig};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const KEY_VAR: &str = "CLARIBI_TEST_CLOSE_KEY";
const WAIT: Duration = Duration::from_secs(60);

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claribi-host"));
    cmd.env_remove("CLARIBI_HOME").env_remove(KEY_VAR).env_remove("CLARIBI_LOG").env_remove("CLARIBI_REPLICA_ID");
    cmd
}

fn cli(dir: &std::path::Path, args: &[&str]) -> Output {
    bin().arg("--data-dir").arg(dir).args(args).output().expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A failure: exit code 1, exactly one line on stderr, nothing on stdout.
fn assert_one_line_error(o: &Output, needle: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("error: ") && err.contains(needle), "expected `{needle}` in: {err}");
    assert!(o.stdout.is_empty());
}

fn create_token(dir: &std::path::Path, name: &str) -> String {
    let o = cli(dir, &["engine-token", "create", name, "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["name"], name);
    v["token"].as_str().unwrap().to_string()
}

/// A self-signed certificate for `localhost`, `claribi.test` and 127.0.0.1: (cert PEM, key PEM, DER).
fn certificate() -> (String, String, Vec<u8>) {
    let names = vec!["localhost".to_string(), "claribi.test".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names).unwrap();
    (cert.pem(), key_pair.serialize_pem(), cert.der().to_vec())
}

/// `serve --http ADDR …` running, and the port it bound.
struct Serving {
    child: Child,
    port: u16,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path, args: &[&str], replica: &str) -> Serving {
    let mut child = bin()
        .env("CLARIBI_REPLICA_ID", replica)
        .arg("--data-dir")
        .arg(dir)
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
fn trusting(der: &[u8]) -> Arc<rustls::ClientConfig> {
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
async fn post(port: u16, tls: Option<&Arc<rustls::ClientConfig>>, headers: &[(&str, &str)], body: &Value) -> (u16, String, Value) {
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

async fn send<T>(io: hyper_util::rt::TokioIo<T>, req: http::Request<Full<bytes::Bytes>>) -> http::Response<hyper::body::Incoming>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.expect("HTTP/1.1");
    tokio::spawn(conn);
    tokio::time::timeout(WAIT, sender.send_request(req)).await.expect("an answer in time").expect("a response")
}

/// A stateless (MCP 2026-07-28) `tools/call`: no session, everything on the request.
fn call(id: u64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": tool, "arguments": args,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "engine-test", "version": "1"}
        }
    }})
}

fn call_headers<'a>(tool: &'a str, bearer: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/call"), ("Mcp-Name", tool)];
    if let Some(b) = bearer {
        h.push(("Authorization", b));
    }
    h
}

fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_off_loopback_needs_a_working_token_over_tls_and_each_call_is_audited_under_its_name() {
    let s = StandIn::start(StandInConfig::default()).await.expect("stand-in starts");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (url, org, key) = (s.url(), s.dataset().organization.id.clone(), s.api_key().to_string());
    let lead = s.dataset().leads[2].clone();
    let o = bin()
        .arg("--data-dir")
        .arg(&d)
        .args(["connect", "close", "--plugin", "builtin:close", "--endpoint", &url, "--api-key-env", KEY_VAR])
        .args(["--allow-origin", s.base_url().trim_end_matches('/')])
        .env(KEY_VAR, &key)
        .output()
        .unwrap();
    assert!(o.status.success(), "connect: {}", text(&o.stderr));

    // Off loopback: refused without tokens, then without TLS; each in one line saying what to do.
    assert_one_line_error(&cli(&d, &["serve", "--http", "0.0.0.0:0"]), "create one with `claribi-host engine-token create NAME`");
    let token_a = create_token(&d, "engine-a");
    let token_b = create_token(&d, "engine-b");
    assert_one_line_error(&cli(&d, &["engine-token", "create", "engine-a"]), "already exists");
    assert_one_line_error(&cli(&d, &["engine-token", "create", "bad name"]), "not a valid engine token name");
    assert_one_line_error(&cli(&d, &["serve", "--http", "0.0.0.0:0"]), "pass --tls-cert FILE --tls-key FILE");
    let (cert, key_pem, der) = certificate();
    let (cert_path, key_path) = (d.join("cert.pem"), d.join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key_pem).unwrap();
    let (cert_arg, key_arg) = (cert_path.to_str().unwrap(), key_path.to_str().unwrap());
    assert_one_line_error(&cli(&d, &["serve", "--http", "0.0.0.0:0", "--tls-cert", key_arg, "--tls-key", key_arg]), "holds no PEM certificate");

    let server = serve(&d, &["--http", "0.0.0.0:0", "--tls-cert", cert_arg, "--tls-key", key_arg, "--public-name", "claribi.test"], "replica-1");
    let port = server.port;
    let tls = trusting(&der);
    let (bearer_a, bearer_b) = (format!("Bearer {token_a}"), format!("Bearer {token_b}"));

    // A client that connects and never says hello does not hold up anyone else.
    let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();

    // No token, a wrong one, a token in another scheme: 401 with a Bearer challenge.
    let org_info = call(1, "close__org_info", json!({}));
    for bearer in [None, Some("Bearer cbe_not-a-real-token"), Some(&*format!("Basic {token_a}"))] {
        let (status, challenge, body) = post(port, Some(&tls), &call_headers("close__org_info", bearer), &org_info).await;
        assert_eq!(status, 401, "{bearer:?}: {body}");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert!(!body.to_string().contains(&token_a), "the answer never echoes a token");
    }
    // Plain HTTP to a TLS port is not served.
    let plain = tokio::time::timeout(WAIT, async {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tcp.write_all(format!("POST /mcp HTTP/1.1\r\nHost: localhost:{port}\r\nAuthorization: {bearer_a}\r\nContent-Length: 2\r\n\r\n{{}}").as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let _ = tcp.read_to_end(&mut buf).await;
        buf
    })
    .await
    .expect("the server hangs up");
    assert!(!text(&plain).contains("HTTP/1.1 200") && !text(&plain).contains("jsonrpc"), "{}", text(&plain));

    // Both engines' calls are answered over HTTPS, each under its own name.
    let (status, _, r) = post(port, Some(&tls), &call_headers("close__org_info", Some(&bearer_a)), &org_info).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["result"]["structuredContent"]["organization"]["id"], org, "{r}");
    let fetch_args = json!({"id": lead.id});
    let (status, _, r) = post(port, Some(&tls), &call_headers("close__fetch_lead", Some(&bearer_b)), &call(2, "close__fetch_lead", fetch_args.clone())).await;
    assert_eq!((status, r["result"]["structuredContent"]["name"].clone()), (200, json!(lead.name)), "{r}");
    let (_, _, r) = post(port, Some(&tls), &call_headers("close__delete_lead", Some(&bearer_b)), &call(3, "close__delete_lead", json!({"lead_id": lead.id}))).await;
    assert_eq!(r["error"]["code"], -32602, "a write tool is unknown to the engine: {r}");

    // DNS rebinding: a working token does not make a foreign Host acceptable; a public name is.
    let mut foreign = call_headers("close__org_info", Some(&bearer_a));
    foreign.push(("Host", "attacker.example"));
    let (status, _, _) = post(port, Some(&tls), &foreign, &org_info).await;
    assert!((400..500).contains(&status) && status != 401, "{status}");
    let public_host = format!("claribi.test:{port}");
    let mut public = call_headers("close__org_info", Some(&bearer_a));
    public.push(("Host", &public_host));
    let (status, _, _) = post(port, Some(&tls), &public, &org_info).await;
    assert_eq!(status, 200, "the --public-name is this server");
    let mut from_page = call_headers("close__org_info", Some(&bearer_a));
    from_page.push(("Origin", "https://evil.example"));
    let (status, _, _) = post(port, Some(&tls), &from_page, &org_info).await;
    assert_eq!(status, 403, "a foreign Origin");

    // Revoked: refused at its next request, by the running server; the other engine carries on.
    let o = cli(&d, &["engine-token", "revoke", "engine-b"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (status, challenge, _) = post(port, Some(&tls), &call_headers("close__org_info", Some(&bearer_b)), &org_info).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_one_line_error(&cli(&d, &["engine-token", "revoke", "engine-b"]), "no working engine token");
    let (status, _, _) = post(port, Some(&tls), &call_headers("close__org_info", Some(&bearer_a)), &org_info).await;
    assert_eq!(status, 200);

    // The audit trail: every call that reached the MCP handler, attributed, without what was asked.
    let o = cli(&d, &["audit", "--json", "--since", "10m"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let trail: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let seen: Vec<(&str, &str, &str, &str)> = trail
        .iter()
        .map(|e| (e["engine"].as_str().unwrap(), e["connection"].as_str().unwrap(), e["tool"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("engine-a", "close", "org_info", "ok"),
            ("engine-b", "close", "fetch_lead", "ok"),
            ("engine-b", "close", "delete_lead", "unknown-tool"),
            ("engine-a", "close", "org_info", "ok"),
            ("engine-a", "close", "org_info", "ok"),
        ],
        "refused requests (no token, revoked, foreign Host or Origin) never reach a tool: {trail:#?}"
    );
    assert_eq!(trail[1]["arguments_sha256"], sha256(&fetch_args.to_string()));
    assert_eq!(trail[0]["arguments_sha256"], sha256("{}"));
    assert!(trail.iter().all(|e| e["replica"] == "replica-1"), "{trail:#?}");
    assert!(trail[1]["bytes"].as_u64().unwrap() > lead.name.len() as u64, "{}", trail[1]);
    let o = cli(&d, &["audit", "--connection", "close", "--since", "2h"]);
    let table = text(&o.stdout);
    assert_eq!(table.lines().count(), 1 + 5, "a header and the five calls to `close`: {table}");
    assert!(table.contains("engine-b") && table.contains("fetch_lead"), "{table}");
    assert_one_line_error(&cli(&d, &["audit", "--since", "yesterday"]), "is not a time");

    // What is listed, audited and stored never holds a token, the API key or a result.
    let listed = text(&cli(&d, &["engine-token", "list"]).stdout);
    assert!(listed.contains("engine-a") && listed.contains("working") && listed.contains("revoked"), "{listed}");
    drop(server);
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&d).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("claribi.db")) {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(stored.len() > 4096, "the database was read");
    let stored = text(&stored);
    for (what, secret) in [("engine token a", &token_a), ("engine token b", &token_b), ("API key", &key), ("a result", &lead.name)] {
        assert!(!stored.contains(secret.as_str()), "{what} is in the database in clear");
        assert!(!text(&o.stdout).contains(secret.as_str()) && !listed.contains(secret.as_str()), "{what} is printed");
    }
    assert!(stored.contains(&sha256(&token_a)), "tokens are kept by their SHA-256");
    assert_eq!(s.counters().write_tool_calls, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_server_closes_to_tokenless_requests_once_a_token_exists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let server = serve(&d, &["--http", "127.0.0.1:0"], "loopback-1");
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "engine-test", "version": "1"}
    }}});
    let headers = [("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/list")];
    let (status, _, r) = post(server.port, None, &headers, &list).await;
    assert_eq!(status, 200, "no token exists: loopback is open ({r})");
    assert_eq!(r["result"]["tools"].as_array().map(Vec::len), Some(1), "only claribi__next_rows: {r}");
    let token = create_token(&d, "local-engine");
    let (status, _, _) = post(server.port, None, &headers, &list).await;
    assert_eq!(status, 401, "a token now exists: the running server asks for it");
    let bearer = format!("Bearer {token}");
    let mut with = headers.to_vec();
    with.push(("Authorization", &bearer));
    let (status, _, _) = post(server.port, None, &with, &list).await;
    assert_eq!(status, 200);
}
