//! Engines on other machines: `serve --http` off loopback needs engine tokens and TLS, admits only
//! working tokens (a revoked one is refused at its next request, without a restart), keeps its `Host`
//! and `Origin` checks, and records every call in the audit trail under the token's name — and the
//! trail, `engine-token list` and the database never hold a token, a key or a result in clear.

use close_standin::{StandIn, StandInConfig};
use common::*;
use serde_json::{json, Value};

mod common;

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
async fn a_loopback_server_closes_to_tokenless_requests_once_a_token_exists_and_stays_closed() {
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
    // Revoking the only token does not reopen the listener to everyone on the machine.
    let o = cli(&d, &["engine-token", "revoke", "local-engine"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (status, _, _) = post(server.port, None, &headers, &list).await;
    assert_eq!(status, 401, "still closed after the last token is revoked");
    let (status, _, _) = post(server.port, None, &with, &list).await;
    assert_eq!(status, 401, "and the revoked token is refused");
    drop(server);
    // A loopback listener a proxy exposes under a public name needs a working token from the start.
    let fresh = tempfile::tempdir().unwrap();
    assert_one_line_error(&cli(fresh.path(), &["serve", "--http", "127.0.0.1:0", "--public-name", "claribi.example"]), "create an engine token first");
}
