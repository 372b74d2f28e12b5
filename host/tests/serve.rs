//! `claribi-host serve`, the binary an AI engine talks to: MCP over stdio and over Streamable HTTP,
//! one structured log line per tool call, `status` after credentials stop working, and the loopback
//! rule for `--http`.

use close_standin::{StandIn, StandInConfig};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;
use common::{bin, KEY_VAR, WAIT};

fn cli(dir: &std::path::Path, args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = bin();
    cmd.arg("--data-dir").arg(dir).args(args);
    if let Some(k) = key {
        cmd.env(KEY_VAR, k);
    }
    cmd.output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Connect `name` to the stand-in with its API key, through the CLI.
fn connect_with_key(dir: &std::path::Path, name: &str, url: &str, origin: &str, key: &str) {
    let o = cli(dir, &["connect", name, "--plugin", "builtin:close", "--endpoint", url, "--api-key-env", KEY_VAR, "--allow-origin", origin], Some(key));
    assert!(o.status.success(), "connect {name}: {}", stderr(&o));
}

fn origin(s: &StandIn) -> String {
    s.base_url().trim_end_matches('/').to_string()
}

/// Lines of a child's pipe, readable with a timeout.
fn lines_of(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `serve` over stdio: JSON-RPC lines in, JSON-RPC lines out.
struct StdioServe {
    child: Child,
    stdin: Option<ChildStdin>,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

impl StdioServe {
    fn start(dir: &std::path::Path, global: &[&str]) -> StdioServe {
        let mut child = bin()
            .arg("--data-dir")
            .arg(dir)
            .args(global)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stdin = child.stdin.take();
        let out = lines_of(child.stdout.take().unwrap());
        let err = lines_of(child.stderr.take().unwrap());
        StdioServe { child, stdin, out, err }
    }

    fn send(&mut self, msg: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
    }

    /// Send a request and wait for the response with its id (notifications in between are skipped).
    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = self.out.recv_timeout(WAIT).unwrap_or_else(|e| panic!("no answer to {method}: {e}"));
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout carries only JSON-RPC lines ({e}): {line}"));
            if v["id"] == id {
                return v;
            }
        }
    }

    /// Call a served tool that must fail as a tool (`isError: true`); its `structuredContent.error`.
    fn call_failing(&mut self, id: u64, tool: &str, args: Value) -> Value {
        let r = self.request(id, "tools/call", call_params(tool, args));
        assert_eq!(r["result"]["isError"], true, "{r}");
        r["result"]["structuredContent"]["error"].clone()
    }

    fn initialize(&mut self) -> Value {
        let r = self.request(
            1,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "engine-test", "version": "1"}}),
        );
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        r
    }

    /// Close stdin, wait for the exit, and return (success, stderr lines).
    fn finish(mut self) -> (bool, Vec<String>) {
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("serve did not exit when its stdin closed");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = vec![];
        while let Ok(l) = self.err.recv_timeout(Duration::from_secs(5)) {
            err.push(l);
        }
        (status.success(), err)
    }
}

fn call_params(name: &str, args: Value) -> Value {
    json!({"name": name, "arguments": args})
}

async fn standin() -> StandIn {
    StandIn::start(StandInConfig::default()).await.expect("stand-in starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_over_stdio_answers_initialize_tools_list_and_tools_call() {
    let s = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (url, org, key) = (s.url(), s.dataset().organization.clone(), s.api_key().to_string());
    let o = origin(&s);
    let lead = s.dataset().leads[3].clone();
    tokio::task::spawn_blocking(move || {
        connect_with_key(&d, "close", &url, &o, &key);
        let mut serve = StdioServe::start(&d, &[]);
        let init = serve.initialize();
        assert_eq!(init["result"]["serverInfo"]["name"], "claribi-host", "{init}");
        assert!(init["result"]["capabilities"]["tools"].is_object(), "{init}");
        assert!(init["result"]["instructions"].as_str().unwrap().contains("claribi__next_rows"));

        let list = serve.request(2, "tools/list", json!({}));
        let tools = list["result"]["tools"].as_array().expect("tools");
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 66 + 1, "66 read tools and claribi__next_rows: {names:?}");
        assert!(names.iter().all(|n| n.starts_with("close__") || *n == "claribi__next_rows"), "{names:?}");
        let find = tools.iter().find(|t| t["name"] == "close__find_opportunities").unwrap();
        assert_eq!(find["annotations"]["readOnlyHint"], true);
        assert!(find["description"].as_str().unwrap().contains(&org.name), "the account is named: {find}");

        let r = serve.request(3, "tools/call", call_params("close__org_info", json!({})));
        assert_eq!(r["result"]["isError"], false, "{r}");
        assert_eq!(r["result"]["structuredContent"]["organization"]["id"], org.id);
        let text: Value = serde_json::from_str(r["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text, r["result"]["structuredContent"], "the text is the same JSON");
        // Marked as third-party content: vendor data of connection `close`, tool `org_info`.
        let source = &r["result"]["_meta"]["claribi/provenance"];
        assert_eq!(source["kind"], "third-party-data", "{r}");
        assert_eq!((source["connection"].as_str(), source["tool"].as_str()), (Some("close"), Some("org_info")), "{r}");

        let r = serve.request(4, "tools/call", call_params("close__fetch_lead", json!({"id": lead.id})));
        assert_eq!(r["result"]["structuredContent"]["name"], lead.name);

        let error = serve.call_failing(5, "close__fetch_lead", json!({"id": "lead_nope"}));
        assert!(error["kind"].is_string(), "{error}");

        let r = serve.request(6, "tools/call", call_params("close__delete_lead", json!({"lead_id": lead.id})));
        assert_eq!(r["error"]["code"], -32602, "a write tool is unknown to the engine: {r}");

        let (ok, err) = serve.finish();
        assert!(ok, "serve exits cleanly when stdin closes: {err:?}");

        // Each call is in the audit trail, attributed to the engine on stdio.
        let o = cli(&d, &["audit", "--json"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        let trail: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
        let seen: Vec<(&str, &str, &str)> =
            trail.iter().map(|e| (e["engine"].as_str().unwrap(), e["tool"].as_str().unwrap(), e["outcome"].as_str().unwrap())).collect();
        assert_eq!(seen[..3], [("stdio", "org_info", "ok"), ("stdio", "fetch_lead", "ok"), ("stdio", "fetch_lead", error["kind"].as_str().unwrap())]);
        assert_eq!(seen[3], ("stdio", "delete_lead", "unknown-tool"));
        assert_eq!(seen.len(), 4, "{trail:#?}");
        assert!(!stdout(&o).contains(&lead.id), "arguments are kept as a digest only");
    })
    .await
    .unwrap();
    assert_eq!(s.counters().write_tool_calls, 0);
}

/// The `_meta` a 2026-07-28 (stateless) engine puts on every request, plus `extra`.
fn stateless_meta(extra: Value) -> Value {
    let mut meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "engine-test", "version": "1"}
    });
    meta.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    meta
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_over_stdio_answers_a_stateless_engine_with_cache_hints_and_progress() {
    let s = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (url, org, key) = (s.url(), s.dataset().organization.id.clone(), s.api_key().to_string());
    let o = origin(&s);
    tokio::task::spawn_blocking(move || {
        connect_with_key(&d, "close", &url, &o, &key);
        let mut serve = StdioServe::start(&d, &[]);
        // No initialize: a 2026-07-28 engine discovers, then sends self-contained requests.
        let discover = serve.request(1, "server/discover", json!({"_meta": stateless_meta(json!({}))}));
        let versions = discover["result"]["supportedVersions"].as_array().expect("supportedVersions").clone();
        assert!(versions.contains(&json!("2026-07-28")) && versions.contains(&json!("2025-11-25")), "both eras: {discover}");
        assert!(discover["result"]["capabilities"]["tools"].is_object(), "{discover}");

        let list = serve.request(2, "tools/list", json!({"_meta": stateless_meta(json!({}))}));
        assert_eq!(list["result"]["tools"].as_array().map(Vec::len), Some(67), "{list}");
        assert_eq!(list["result"]["cacheScope"], "private", "a listing depends on this host's connections: {list}");
        let ttl = list["result"]["ttlMs"].as_u64().expect("ttlMs");
        assert!(ttl > 0 && ttl <= 60_000, "as long as serve keeps its listing, a minute at most: {ttl}");

        let meta = stateless_meta(json!({"progressToken": "p-1"}));
        serve.send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "close__org_info", "arguments": {}, "_meta": meta}}));
        let mut progress = vec![];
        let answer = loop {
            let line = serve.out.recv_timeout(WAIT).expect("an answer to tools/call");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == 3 {
                break v;
            }
            assert_eq!(v["method"], "notifications/progress", "only progress before the answer: {v}");
            assert_eq!(v["params"]["progressToken"], "p-1", "{v}");
            progress.push(v["params"]["progress"].as_f64().unwrap());
        };
        assert_eq!(answer["result"]["structuredContent"]["organization"]["id"], org, "{answer}");
        assert_eq!(progress, [0.0, 1.0, 2.0], "sent, answered, ready");

        // Without a progress token, the answer comes alone.
        serve.send(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "close__org_info", "arguments": {}, "_meta": stateless_meta(json!({}))}}));
        let line = serve.out.recv_timeout(WAIT).expect("an answer to tools/call");
        let r: Value = serde_json::from_str(&line).unwrap();
        assert_eq!((r["id"].clone(), r["result"]["isError"].clone()), (json!(4), json!(false)), "{r}");
        let (ok, err) = serve.finish();
        assert!(ok, "{err:?}");
    })
    .await
    .unwrap();
}

/// A minimal Streamable HTTP exchange: POST a JSON-RPC message, read a JSON or SSE answer.
fn http_post(url: &str, session: Option<&str>, msg: &Value) -> (u16, Option<String>, Option<Value>) {
    let mut req = ureq::post(url)
        .set("Content-Type", "application/json")
        .set("Accept", "application/json, text/event-stream")
        .timeout(WAIT);
    if let Some(s) = session {
        req = req.set("Mcp-Session-Id", s).set("MCP-Protocol-Version", "2025-06-18");
    }
    let resp = match req.send_string(&msg.to_string()) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {url}: {e}"),
    };
    let status = resp.status();
    let sid = resp.header("mcp-session-id").map(str::to_string);
    let sse = resp.content_type() == "text/event-stream";
    let body = resp.into_string().unwrap();
    let value = if sse {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
    } else {
        serde_json::from_str(&body).ok()
    };
    (status, sid, value)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_over_http_prints_its_address_and_answers_there_only_for_loopback_hosts() {
    let s = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (url, org, key) = (s.url(), s.dataset().organization.id.clone(), s.api_key().to_string());
    let o = origin(&s);
    tokio::task::spawn_blocking(move || {
        connect_with_key(&d, "close", &url, &o, &key);
        let mut child = bin()
            .arg("--data-dir")
            .arg(&d)
            .args(["serve", "--http", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = lines_of(child.stderr.take().unwrap());
        let line = loop {
            let l = err.recv_timeout(WAIT).expect("serve says where it listens");
            if l.contains("serving MCP") {
                break l;
            }
        };
        let mcp = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:") && w.ends_with("/mcp;"))
            .unwrap_or_else(|| panic!("an address in: {line}"))
            .trim_end_matches(';')
            .to_string();
        assert!(!mcp.ends_with(":0/mcp"), "the bound port, not 0: {line}");

        let (status, sid, init) = http_post(
            &mcp,
            None,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        );
        assert_eq!(status, 200);
        assert_eq!(init.unwrap()["result"]["serverInfo"]["name"], "claribi-host");
        let sid = sid.expect("a session id");
        let (status, _, _) = http_post(&mcp, Some(&sid), &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert!(status == 202 || status == 200, "{status}");
        let (_, _, list) = http_post(&mcp, Some(&sid), &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
        let list = list.unwrap();
        assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 67, "{list}");
        let (_, _, r) = http_post(&mcp, Some(&sid), &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call_params("close__org_info", json!({}))}));
        assert_eq!(r.unwrap()["result"]["structuredContent"]["organization"]["id"], org);

        // DNS rebinding: a page on another origin resolving to 127.0.0.1 sends its own Host header.
        let foreign = ureq::post(&mcp)
            .set("Host", "attacker.example")
            .set("Content-Type", "application/json")
            .set("Accept", "application/json, text/event-stream")
            .send_string(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}).to_string());
        match foreign {
            Ok(r) => panic!("a foreign Host header was served: {}", r.status()),
            Err(ureq::Error::Status(code, _)) => assert!((400..500).contains(&code), "{code}"),
            Err(e) => panic!("{e}"),
        }

        // A browser page on another origin: its Origin header is refused; our own origin is fine.
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).to_string();
        let with_origin = |o: &str| {
            ureq::post(&mcp)
                .set("Origin", o)
                .set("Content-Type", "application/json")
                .set("Accept", "application/json, text/event-stream")
                .send_string(&init)
        };
        for bad in ["http://evil.example.com", "null"] {
            match with_origin(bad) {
                Ok(r) => panic!("Origin {bad} was served: {}", r.status()),
                Err(ureq::Error::Status(code, _)) => assert_eq!(code, 403, "{bad}"),
                Err(e) => panic!("{e}"),
            }
        }
        let own = format!("http://{}", mcp.trim_start_matches("http://").trim_end_matches("/mcp"));
        assert_eq!(with_origin(&own).map(|r| r.status()).unwrap_or(0), 200, "its own origin {own}");

        // Ctrl-C stops it cleanly.
        let ok = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        assert!(ok.success());
        let deadline = std::time::Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(std::time::Instant::now() < deadline, "serve --http stops on SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_log_json_each_tool_call_is_one_structured_line_without_secrets() {
    let s = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (url, key) = (s.url(), s.api_key().to_string());
    let o = origin(&s);
    let lead = s.dataset().leads[0].id.clone();
    let secret = key.clone();
    tokio::task::spawn_blocking(move || {
        connect_with_key(&d, "close", &url, &o, &key);
        let mut serve = StdioServe::start(&d, &["--log-json"]);
        serve.initialize();
        serve.request(2, "tools/list", json!({}));
        let calls = [
            ("org_info", json!({}), "ok"),
            ("find_opportunities", json!({"status_type": "won"}), "ok"),
            ("fetch_lead", json!({"id": lead}), "ok"),
            ("fetch_lead", json!({"id": "lead_nope"}), "error"),
            ("delete_lead", json!({"lead_id": lead}), "blocked"),
        ];
        let mut answers = vec![];
        for (i, (tool, args, _)) in calls.iter().enumerate() {
            answers.push(serve.request(10 + i as u64, "tools/call", call_params(&format!("close__{tool}"), args.clone())));
        }
        let (ok, err) = serve.finish();
        assert!(ok, "{err:?}");
        let all = err.join("\n");
        assert!(!all.contains(&secret), "the API key never appears in the log");
        let lines: Vec<Value> = err
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("every log line is JSON ({e}): {l}")))
            .filter(|v| v["target"] == "claribi::call" && v["fields"]["tool"] != "tools/list")
            .collect();
        for l in &lines {
            println!("{l}");
        }
        assert_eq!(lines.len(), calls.len(), "one line per call: {lines:#?}");
        for ((tool, _, expect), (line, answer)) in calls.iter().zip(lines.iter().zip(&answers)) {
            let f = &line["fields"];
            assert_eq!(f["connection"], "close", "{line}");
            assert_eq!(f["tool"], *tool, "{line}");
            assert!(f["duration_ms"].is_u64(), "{line}");
            assert!(f["bytes"].is_u64(), "{line}");
            match *expect {
                "ok" => {
                    assert_eq!(f["outcome"], "ok", "{line}");
                    assert!(f["bytes"].as_u64().unwrap() > 0, "{line}");
                }
                "error" => {
                    assert_eq!(f["outcome"], answer["result"]["structuredContent"]["error"]["kind"], "the kind the engine saw: {line}");
                    assert_ne!(f["outcome"], "ok");
                }
                _ => assert_eq!(f["outcome"], "blocked", "{line}"),
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_ready_and_needs_reconnect_with_the_last_error() {
    // Three connections: one stays fine, one's API key is rejected, one's OAuth grant is revoked.
    let fine = standin().await;
    let keyed = StandIn::start(StandInConfig { api_keys: vec!["key-one".into()], ..StandInConfig::default() }).await.unwrap();
    let oauthed = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let keyed_port = keyed.port();
    {
        let d = d.clone();
        let (fu, fo, fk) = (fine.url(), origin(&fine), fine.api_key().to_string());
        let (ku, ko) = (keyed.url(), origin(&keyed));
        let (ou, oo, oi) = (oauthed.url(), origin(&oauthed), oauthed.issuer_url());
        tokio::task::spawn_blocking(move || {
            connect_with_key(&d, "fine", &fu, &fo, &fk);
            connect_with_key(&d, "keyed", &ku, &ko, "key-one");
            let o = cli(&d, &["connect", "oauthed", "--plugin", "builtin:close", "--endpoint", &ou, "--headless", "--allow-origin", &oo, "--allow-origin", &oi], None);
            assert!(o.status.success(), "{}", stderr(&o));
            let o = cli(&d, &["status", "--json"], None);
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            for c in v.as_array().unwrap() {
                assert_eq!(c["status"], "ready", "{c}");
                assert!(c["last_error"].is_null(), "{c}");
            }
        })
        .await
        .unwrap();
    }
    // Close rotates the key: the same server, now accepting another one.
    keyed.shutdown().await;
    let keyed = StandIn::start(StandInConfig { api_keys: vec!["key-two".into()], port: keyed_port, ..StandInConfig::default() }).await.unwrap();
    // The user revokes clariBI in Close.
    assert!(oauthed.revoke_all_grants() >= 1);
    tokio::task::spawn_blocking(move || {
        // The engine's next call through the rejected key fails …
        let mut serve = StdioServe::start(&d, &[]);
        serve.initialize();
        let error = serve.call_failing(2, "keyed__org_info", json!({}));
        assert_eq!(error["kind"], "unauthorized", "{error}");
        let r = serve.request(3, "tools/call", call_params("fine__org_info", json!({})));
        assert_eq!(r["result"]["isError"], false, "{r}");
        let (ok, _) = serve.finish();
        assert!(ok);
        // … and `status --check` finds the revoked grant.
        let o = cli(&d, &["status", "--check"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        let table = stdout(&o);
        println!("{table}");
        assert!(table.starts_with("NAME"), "{table}");
        let row = |name: &str| table.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name} in {table}")).to_string();
        assert!(row("fine").contains("ready"), "{table}");
        assert!(row("keyed").contains("needs-reconnect"), "{table}");
        assert!(row("oauthed").contains("needs-reconnect"), "{table}");
        assert!(!row("keyed").ends_with(" -"), "the last error is shown: {table}");

        let o = cli(&d, &["status", "--json"], None);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let by_name = |n: &str| v.as_array().unwrap().iter().find(|c| c["name"] == n).unwrap().clone();
        assert_eq!(by_name("fine")["status"], "ready");
        assert!(by_name("fine")["last_error"].is_null());
        for n in ["keyed", "oauthed"] {
            let c = by_name(n);
            assert_eq!(c["status"], "needs-reconnect", "{c}");
            let e = c["last_error"].as_str().unwrap_or_else(|| panic!("{n} has a last error: {c}"));
            assert!(!e.is_empty() && !e.contains('\n'), "{e}");
            assert!(!e.contains("key-one") && !e.contains("key-two"), "{e}");
        }
        let all = format!("{table}{}", stdout(&o));
        assert!(!all.contains("key-one"), "no secret in status output");

        // The operator fixes both: a new key for one (a wrong one first: refused, the old key kept),
        // a new authorization for the other.
        let o = cli_env(&d, &["reconnect", "keyed", "--api-key-env", "NEW_KEY"], &[("NEW_KEY", "still-wrong")]);
        assert!(!o.status.success());
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        let o = cli_env(&d, &["reconnect", "keyed", "--api-key-env", "NEW_KEY"], &[("NEW_KEY", "key-two")]);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = cli(&d, &["reconnect", "oauthed", "--headless"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = cli(&d, &["status", "--json"], None);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        for c in v.as_array().unwrap() {
            assert_eq!(c["status"], "ready", "{c}");
        }
    })
    .await
    .unwrap();
    drop(keyed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_narrowed_below_the_read_scope_shows_as_insufficient_scope_until_reconnected() {
    let s = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (url, mcp_origin, issuer) = (s.url(), origin(&s), s.issuer_url());
    {
        let d = d.clone();
        tokio::task::spawn_blocking(move || {
            let o = cli(&d, &["connect", "close", "--plugin", "builtin:close", "--endpoint", &url, "--headless", "--allow-origin", &mcp_origin, "--allow-origin", &issuer], None);
            assert!(o.status.success(), "{}", stderr(&o));
        })
        .await
        .unwrap();
    }
    // The user takes the read scope away in Close.
    assert!(s.tokens().drop_read_scope_all() >= 1);
    tokio::task::spawn_blocking(move || {
        let mut serve = StdioServe::start(&d, &[]);
        serve.initialize();
        let error = serve.call_failing(2, "close__org_info", json!({}));
        assert_eq!(error["kind"], "insufficient-scope", "{error}");
        let (ok, _) = serve.finish();
        assert!(ok);

        let o = cli(&d, &["status", "--json"], None);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v[0]["status"], "insufficient-scope", "{v}");
        let e = v[0]["last_error"].as_str().unwrap_or_else(|| panic!("a last error: {v}"));
        assert!(e.contains("mcp.read") || e.to_lowercase().contains("scope"), "{e}");
        let o = cli(&d, &["status"], None);
        assert!(stdout(&o).contains("insufficient-scope"), "{}", stdout(&o));

        // Reconnecting (the stand-in approves mcp.read again) makes it ready.
        let o = cli(&d, &["reconnect", "close", "--headless"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = cli(&d, &["status", "--json"], None);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v[0]["status"], "ready", "{v}");
    })
    .await
    .unwrap();
    drop(s);
}

fn cli_env(d: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = bin();
    cmd.arg("--data-dir").arg(d).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

/// `HostService::call_tool` logs its line at the end, but returns early with `?` when the
/// connection's component cannot be loaded (`plugin_for`: the pinned .wasm is missing or changed on
/// disk): the engine gets an `isError` result of kind `storage`, and the log has no line for the call
/// (nor does `status` record the error, as `record_outcome` is skipped too).
#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_fails_before_the_connector_runs_is_still_logged_once() {
    let s = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (url, key) = (s.url(), s.api_key().to_string());
    let o = origin(&s);
    tokio::task::spawn_blocking(move || {
        connect_with_key(&d, "close", &url, &o, &key);
        for entry in std::fs::read_dir(d.join("plugins")).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let mut serve = StdioServe::start(&d, &["--log-json"]);
        serve.initialize();
        let kind = serve.call_failing(2, "close__org_info", json!({}))["kind"].clone();
        let (ok, err) = serve.finish();
        assert!(ok);
        let lines: Vec<Value> = err
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"] == "claribi::call" && v["fields"]["tool"] == "org_info")
            .collect();
        assert_eq!(lines.len(), 1, "one log line for the failed call (the engine saw kind {kind}); log: {err:#?}");
        assert_eq!(lines[0]["fields"]["outcome"], kind);
    })
    .await
    .unwrap();
}

/// A failure: exit code 1, exactly one line on stderr, nothing on stdout.
fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("error: ") && err.contains(needle), "expected `{needle}` in: {err}");
    assert!(stdout(o).is_empty());
}

#[test]
fn serve_refuses_to_listen_beyond_loopback_without_engine_tokens_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    assert_one_line_error(&cli(dir.path(), &["serve", "--http", "0.0.0.0:1"], None), "needs engine tokens");
    assert_one_line_error(&cli(dir.path(), &["serve", "--http", "[::]:8765"], None), "needs engine tokens");
    let o = cli(dir.path(), &["serve", "--tls-cert", "c.pem"], None);
    assert_eq!((o.status.code(), stderr(&o).lines().count()), (Some(2), 1), "a usage error in one line: {}", stderr(&o));
    assert!(stderr(&o).contains("--http") && stderr(&o).contains("--tls-key"), "{}", stderr(&o));
    assert_one_line_error(&cli(dir.path(), &["serve", "--http", "localhost-ish"], None), "not an address");
}
