//! The `claribi-host` binary as an operator uses it: commands, `--json`, exit codes, one-line errors,
//! and no secret in any output.

use close_standin::{StandIn, StandInConfig};
use serde_json::Value;
use std::process::Output;

mod common;
use common::{bin, KEY_VAR};

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

/// A failure: exit code 1 (or 2 for usage), exactly one line on stderr, nothing on stdout.
fn assert_one_line_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "exit code; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
    assert!(stdout(o).is_empty());
}

async fn standin() -> StandIn {
    StandIn::start(StandInConfig::default()).await.expect("stand-in starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_connects_lists_calls_and_disconnects() {
    let s = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let key = s.api_key().to_string();
    let url = s.url();
    let origin = s.base_url().trim_end_matches('/').to_string();
    let org = s.dataset().organization.name.clone();
    let outputs = tokio::task::spawn_blocking(move || {
        let mut all = vec![];
        let o = cli(&d, &["connect", "close", "--plugin", "builtin:close", "--endpoint", &url, "--api-key-env", KEY_VAR, "--allow-origin", &origin], Some(&key));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains(&org), "{}", stdout(&o));
        all.push(o);

        let o = cli(&d, &["connections"], None);
        assert!(o.status.success());
        let table = stdout(&o);
        assert!(table.starts_with("NAME"), "{table}");
        assert!(table.contains("close") && table.contains("ready"), "{table}");
        all.push(o);

        let o = cli(&d, &["connections", "--json"], None);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v[0]["name"], "close");
        assert_eq!(v[0]["status"], "ready");
        assert_eq!(v[0]["operator_origins"][0], origin);
        all.push(o);

        let o = cli(&d, &["tools", "close"], None);
        assert!(stdout(&o).contains("66 read-only tool(s)"), "{}", stdout(&o));
        all.push(o);

        let o = cli(&d, &["tools", "close", "--json"], None);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 66);
        all.push(o);

        let o = cli(&d, &["call", "close", "org_info", "{}", "--json"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let text = v["content"][0]["text"].as_str().unwrap();
        let org_json: Value = serde_json::from_str(text).unwrap();
        assert_eq!(org_json["organization"]["name"], org);
        all.push(o);

        let o = cli(&d, &["call", "close", "find_opportunities", r#"{"status_type":"won"}"#], None);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("rows"), "a table: {}", stdout(&o));
        all.push(o);

        let o = cli(&d, &["policy", "close"], None);
        assert!(stdout(&o).contains(&format!("allow_origins = [\"{origin}\"]")), "{}", stdout(&o));
        all.push(o);

        let o = cli(&d, &["disconnect", "close"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        all.push(o);
        let o = cli(&d, &["connections", "--json"], None);
        assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap(), serde_json::json!([]));
        all.push(o);
        all
    })
    .await
    .unwrap();
    for o in outputs {
        let text = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!text.contains(s.api_key()), "the API key never appears in output");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_mistakes_get_one_line_errors() {
    let s = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let url = s.url();
    let key = s.api_key().to_string();
    let origin = s.base_url().trim_end_matches('/').to_string();
    tokio::task::spawn_blocking(move || {
        assert_one_line_error(&cli(&d, &["tools", "nope"], None), 1, "claribi-host connections");
        assert_one_line_error(
            &cli(&d, &["connect", "close", "--plugin", "builtin:close", "--endpoint", &url, "--api-key-env", KEY_VAR], None),
            1,
            KEY_VAR,
        );
        // An API key cannot be bound to a header a client sets itself.
        assert_one_line_error(
            &cli(&d, &["connect", "x", "--plugin", "builtin:close", "--endpoint", &url, "--api-key-env", KEY_VAR, "--api-key-header", "Content-Type"], Some("k")),
            1,
            "not a header an API key can be bound to",
        );
        assert_one_line_error(&cli(&d, &["connect", "Bad Name", "--plugin", "builtin:close", "--api-key-env", KEY_VAR], Some("k")), 1, "not a valid connection name");
        assert_one_line_error(&cli(&d, &["connect", "x", "--plugin", "/no/such.wasm", "--api-key-env", KEY_VAR], Some("k")), 1, "cannot read the connector file");
        let bogus = d.join("bogus.wasm");
        std::fs::write(&bogus, b"not wasm at all").unwrap();
        assert_one_line_error(
            &cli(&d, &["connect", "x", "--plugin", bogus.to_str().unwrap(), "--api-key-env", KEY_VAR], Some("k")),
            1,
            "not WebAssembly",
        );
        assert_one_line_error(
            &cli(&d, &["connect", "x", "--plugin", "builtin:close", "--endpoint", &url, "--api-key-env", KEY_VAR, "--allow-origin", &origin], Some("wrong-key")),
            1,
            "Reconnect",
        );
        assert_one_line_error(&cli(&d, &["connect", "x", "--plugin", "builtin:close", "--endpoint", "not a url", "--api-key-env", KEY_VAR], Some("k")), 1, "--endpoint");
        assert_one_line_error(&cli(&d, &["connect", "x", "--plugin", "builtin:close", "--endpoint", &url, "--api-key-env", KEY_VAR, "--allow-origin", "mcp.close.com"], Some("k")), 1, "scheme://host");

        let o = cli(&d, &["connect", "close", "--plugin", "builtin:close", "--endpoint", &url, "--api-key-env", KEY_VAR, "--allow-origin", &origin], Some(&key));
        assert!(o.status.success(), "{}", stderr(&o));
        assert_one_line_error(
            &cli(&d, &["connect", "close", "--plugin", "builtin:close", "--endpoint", &url, "--api-key-env", KEY_VAR, "--allow-origin", &origin], Some(&key)),
            1,
            "already exists",
        );
        // A client secret on the command line would show in `ps`: refused, with the way to pass it.
        let o = cli(&d, &["connect", "x", "--plugin", "builtin:close", "--endpoint", &url, "--option", "client_secret=s3cr3t-value"], None);
        assert_one_line_error(&o, 1, "--client-secret-env");
        assert!(!stderr(&o).contains("s3cr3t-value"), "the error echoes the secret: {}", stderr(&o));
        assert_one_line_error(&cli(&d, &["connect", "x", "--plugin", "builtin:close", "--timeout", "99999999999999"], None), 2, "--timeout");
        assert_one_line_error(&cli(&d, &["call", "close", "org_info", "{oops"], None), 1, "not valid JSON");
        assert_one_line_error(&cli(&d, &["call", "close", "delete_lead", r#"{"id":"lead_1"}"#], None), 1, "blocked");
        assert_one_line_error(&cli(&d, &["call", "close", "nope_tool", "{}"], None), 1, "unknown tool");
        let bad_policy = d.join("policy.toml");
        std::fs::write(&bad_policy, "memory_mib = 64\nallow_origins = [\"ftp://x\"]\n").unwrap();
        assert_one_line_error(&cli(&d, &["policy", "close", "--set", bad_policy.to_str().unwrap()], None), 1, "line 2");
        // clap's own errors are one line too, with exit code 2.
        assert_one_line_error(&cli(&d, &["call"], None), 2, "--help");
        assert_one_line_error(&cli(&d, &["frobnicate"], None), 2, "frobnicate");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn claribi_home_selects_the_data_directory() {
    let s = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let url = s.url();
    let key = s.api_key().to_string();
    let origin = s.base_url().trim_end_matches('/').to_string();
    tokio::task::spawn_blocking(move || {
        let o = bin()
            .args(["connect", "close", "--plugin", "builtin:close", "--endpoint", &url, "--api-key-env", KEY_VAR, "--allow-origin", &origin])
            .env("CLARIBI_HOME", &d)
            .env(KEY_VAR, &key)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(d.join("claribi.db").exists());
        assert!(d.join("master.key").exists());
        let o = cli(&d, &["connections", "--json"], None);
        assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap()[0]["name"], "close");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_tokens_never_appear_in_output_logs_or_files() {
    use claribi_host::vault::sealing::MasterKeys;
    use claribi_host::vault::store::Store;
    let s = StandIn::start(StandInConfig {
        oauth: close_standin::OAuthSwitches { access_token_ttl_secs: 1, ..Default::default() },
        ..StandInConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let url = s.url();
    let origin = s.base_url().trim_end_matches('/').to_string();
    let issuer = s.issuer_url();
    let (outputs, tokens) = tokio::task::spawn_blocking(move || {
        let current = |d: &std::path::Path| -> Vec<String> {
            let store = Store::open(d).unwrap();
            let keys = MasterKeys::load_or_create(d).unwrap();
            let id = store.connection("close").unwrap().unwrap().id;
            ["access-token", "refresh-token"]
                .iter()
                .map(|k| store.secret_value(&keys, &id, k).unwrap().unwrap().as_str().to_string())
                .collect()
        };
        let mut outputs = vec![];
        let o = cli(
            &d,
            &["-vv", "connect", "close", "--plugin", "builtin:close", "--endpoint", &url, "--headless", "--allow-origin", &origin, "--allow-origin", &issuer],
            None,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("mcp.read"), "{}", stdout(&o));
        outputs.push(o);
        let mut tokens = current(&d);
        std::thread::sleep(std::time::Duration::from_millis(1300));
        for args in [&["-vv", "call", "close", "org_info", "{}", "--json"][..], &["-vv", "tools", "close", "--json"], &["-vv", "connections", "--json"]] {
            let o = cli(&d, args, None);
            assert!(o.status.success(), "{}", stderr(&o));
            outputs.push(o);
        }
        tokens.extend(current(&d));
        (outputs, tokens)
    })
    .await
    .unwrap();
    assert_eq!(s.oauth_counters().refreshes, 1, "a refresh happened during the calls");
    assert_eq!(tokens.len(), 4);
    assert!(tokens[0] != tokens[2] && tokens[1] != tokens[3], "the tokens rotated");
    assert!(stderr(&outputs[1]).contains("claribi::call"), "the call's log line was captured: {}", stderr(&outputs[1]));
    for o in &outputs {
        let text = format!("{}{}", stdout(o), stderr(o));
        for t in &tokens {
            assert!(!text.contains(t.as_str()), "a token appeared in output or logs");
        }
    }
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        for t in &tokens {
            assert!(!bytes.windows(t.len()).any(|w| w == t.as_bytes()), "a token in clear in {}", entry.display());
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_master_key_can_come_from_the_environment_and_be_rotated() {
    let s = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let url = s.url();
    let key = s.api_key().to_string();
    let origin = s.base_url().trim_end_matches('/').to_string();
    tokio::task::spawn_blocking(move || {
        use base64::Engine as _;
        let master = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let with_env = |args: &[&str], api_key: Option<&str>| {
            let mut cmd = bin();
            cmd.arg("--data-dir").arg(&d).args(args).env("CLARIBI_MASTER_KEY", &master);
            if let Some(k) = api_key {
                cmd.env(KEY_VAR, k);
            }
            cmd.output().unwrap()
        };
        let o = with_env(&["connect", "close", "--plugin", "builtin:close", "--endpoint", &url, "--api-key-env", KEY_VAR, "--allow-origin", &origin], Some(&key));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!d.join("master.key").exists(), "no key file when the key comes from the environment");
        assert!(with_env(&["call", "close", "org_info", "{}"], None).status.success());
        // Without the key the secrets cannot be opened, and the error says what to restore.
        let o = cli(&d, &["call", "close", "org_info", "{}"], None);
        assert_one_line_error(&o, 1, "not available");

        // With a key file: rotate, and everything still opens under the new key.
        let dir2 = tempfile::tempdir().unwrap();
        let d2 = dir2.path();
        let o = cli(d2, &["connect", "close", "--plugin", "builtin:close", "--endpoint", &url, "--api-key-env", KEY_VAR, "--allow-origin", &origin], Some(&key));
        assert!(o.status.success(), "{}", stderr(&o));
        let before = std::fs::read_to_string(d2.join("master.key")).unwrap();
        let o = cli(d2, &["rotate-key", "--json"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["reencrypted"], 1);
        let after = std::fs::read_to_string(d2.join("master.key")).unwrap();
        assert_ne!(before, after);
        assert_eq!(after.lines().count(), 1, "the old key is retired");
        assert!(after.starts_with(v["key_id"].as_str().unwrap()));
        let o = cli(d2, &["call", "close", "org_info", "{}"], None);
        assert!(o.status.success(), "{}", stderr(&o));
    })
    .await
    .unwrap();
}
