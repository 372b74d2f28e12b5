//! Several `serve --http` replicas on one store behave as one host. Each test runs twice: on one data
//! directory (SQLite, one machine), and on one PostgreSQL database with a data directory per process,
//! as if each ran on a machine of its own. The vendor's rate budget is one count for all replicas, so
//! an engine's fan-out waits for the vendor's windows (or is told `rate-limited` with a retry time)
//! instead of tripping the vendor's 429s; one refresh serves every replica; the audit trail names the
//! replica that answered each call; cursors and catalogues work whichever replica answers.

use close_standin::{RateBudget, StandIn, StandInConfig};
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

mod common;

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_out_across_two_replicas_stays_within_the_vendors_budget_with_zero_429s_on_one_machine() {
    a_fan_out_across_two_replicas_stays_within_the_vendors_budget_with_zero_429s(Fleet::sqlite()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_out_across_two_replicas_stays_within_the_vendors_budget_with_zero_429s_on_postgresql() {
    a_fan_out_across_two_replicas_stays_within_the_vendors_budget_with_zero_429s(Fleet::postgres()).await
}

async fn a_fan_out_across_two_replicas_stays_within_the_vendors_budget_with_zero_429s(f: Fleet) {
    let s = StandIn::start(StandInConfig::default()).await.expect("stand-in starts");
    // Close's kind of budget: a window of 2 s admitting 6 requests, counted from its first.
    let budget = RateBudget { limit: 6, window_secs: 2 };
    s.set_rate_budget(Some(budget));
    tokio::task::block_in_place(|| f.connect_close(&s));
    let org = s.dataset().organization.id.clone();
    let replicas = [f.serve(1, &["--http", "127.0.0.1:0"], "replica-a"), f.serve(2, &["--http", "127.0.0.1:0"], "replica-b")];

    // 36 calls at once, alternating between the replicas.
    const CALLS: u64 = 36;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..CALLS {
        let port = replicas[(i % 2) as usize].port;
        tasks.push(tokio::spawn(async move {
            post(port, None, &call_headers("close__org_info", None), &call(i + 1, "close__org_info", json!({}))).await
        }));
    }
    let (mut ok, mut limited, mut retry_ms) = (0, 0, 0u64);
    for t in tasks {
        let (status, _, r) = t.await.unwrap();
        assert_eq!(status, 200, "{r}");
        if r["result"]["isError"] == false {
            assert_eq!(r["result"]["structuredContent"]["organization"]["id"], org.as_str(), "{r}");
            ok += 1;
        } else {
            let e = &r["result"]["structuredContent"]["error"];
            assert_eq!(e["kind"], "rate-limited", "the only failure is a rate limit with a retry time: {r}");
            let retry = e["retry_after_ms"].as_u64().unwrap_or_else(|| panic!("a retry time: {r}"));
            assert!(retry > 0 && retry <= 2_000 * 2, "{retry}");
            retry_ms = retry_ms.max(retry);
            limited += 1;
        }
    }
    let elapsed = started.elapsed();
    let counts = s.rate_budget_counts();
    eprintln!(
        "{}: {CALLS} calls over two replicas in {elapsed:?}: {ok} answered, {limited} rate-limited by the host; the vendor admitted {} requests, at most {} in one window, refused {}",
        f.backend(), counts.admitted, counts.most_in_one_window, counts.refused
    );
    assert_eq!(ok + limited, CALLS, "every call answered");
    assert_eq!(counts.refused, 0, "no request reached the vendor past its budget");
    assert!(counts.most_in_one_window <= budget.limit);
    assert!(ok >= budget.limit as u64, "at least a window's worth answered: {ok}");

    // Once the window the host named has passed, a call goes through again.
    tokio::time::sleep(Duration::from_millis(retry_ms)).await;
    let (_, _, r) = post(replicas[1].port, None, &call_headers("close__org_info", None), &call(99, "close__org_info", json!({}))).await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    assert_eq!(s.rate_budget_counts().refused, 0);

    // The audit trail names the replica that answered each call.
    let o = f.cli(&["audit", "--json"]);
    let trail: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let by = |replica: &str| trail.iter().filter(|e| e["replica"] == replica).count() as u64;
    assert_eq!((by("replica-a"), by("replica-b")), (CALLS / 2, CALLS / 2 + 1), "{trail:#?}");
    let limited_in_trail = trail.iter().filter(|e| e["outcome"] == "rate-limited").count() as u64;
    assert_eq!(limited_in_trail, limited);
    f.assert_nothing_stored_locally();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_budget_with_a_distant_reset_fails_fast_with_its_retry_time_on_both_replicas_on_one_machine() {
    a_spent_budget_with_a_distant_reset_fails_fast_with_its_retry_time_on_both_replicas(Fleet::sqlite()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_budget_with_a_distant_reset_fails_fast_with_its_retry_time_on_both_replicas_on_postgresql() {
    a_spent_budget_with_a_distant_reset_fails_fast_with_its_retry_time_on_both_replicas(Fleet::postgres()).await
}

async fn a_spent_budget_with_a_distant_reset_fails_fast_with_its_retry_time_on_both_replicas(f: Fleet) {
    let s = StandIn::start(StandInConfig::default()).await.expect("stand-in starts");
    let budget = RateBudget { limit: 10, window_secs: 20 };
    s.set_rate_budget(Some(budget));
    tokio::task::block_in_place(|| f.connect_close(&s));
    let replicas = [f.serve(1, &["--http", "127.0.0.1:0"], "replica-a"), f.serve(2, &["--http", "127.0.0.1:0"], "replica-b")];
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        let port = replicas[(i % 2) as usize].port;
        tasks.push(tokio::spawn(async move {
            post(port, None, &call_headers("close__org_info", None), &call(i + 1, "close__org_info", json!({}))).await.2
        }));
    }
    let (mut ok, mut limited) = (0u32, 0u32);
    for t in tasks {
        let r = t.await.unwrap();
        if r["result"]["isError"] == false {
            ok += 1;
            continue;
        }
        let e = &r["result"]["structuredContent"]["error"];
        assert_eq!(e["kind"], "rate-limited", "{r}");
        let retry = e["retry_after_ms"].as_u64().expect("a retry time");
        // The vendor says `reset` in whole seconds, rounded up: the host's view ends at most 1 s later.
        assert!(retry > 5_000 && retry <= 21_000, "the window's end, not a guess: {retry}");
        limited += 1;
    }
    let elapsed = started.elapsed();
    let counts = s.rate_budget_counts();
    eprintln!("{}: 16 calls with the budget nearly spent: {ok} answered, {limited} rate-limited in {elapsed:?}; the vendor admitted {}, refused {}", f.backend(), counts.admitted, counts.refused);
    assert_eq!(counts.refused, 0, "the vendor never answered 429");
    assert_eq!(counts.admitted, u64::from(budget.limit), "the whole window was used, and no more");
    assert!(limited > 0 && ok + limited == 16);
    assert!(elapsed < Duration::from_secs(15), "failed fast instead of waiting out a 20 s window: {elapsed:?}");
    let o = f.cli(&["audit", "--json"]);
    let trail: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(trail.iter().filter(|e| e["outcome"] == "rate-limited").count() as u32, limited);
    f.assert_nothing_stored_locally();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_refresh_an_expired_token_once_for_200_concurrent_calls_on_one_machine() {
    two_replicas_refresh_an_expired_token_once_for_200_concurrent_calls(Fleet::sqlite()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_refresh_an_expired_token_once_for_200_concurrent_calls_on_postgresql() {
    two_replicas_refresh_an_expired_token_once_for_200_concurrent_calls(Fleet::postgres()).await
}

async fn two_replicas_refresh_an_expired_token_once_for_200_concurrent_calls(f: Fleet) {
    const TTL_SECS: u64 = 16;
    let s = StandIn::start(StandInConfig {
        oauth: close_standin::OAuthSwitches { access_token_ttl_secs: TTL_SECS, ..Default::default() },
        ..StandInConfig::default()
    })
    .await
    .expect("stand-in starts");
    let (url, origin, issuer) = (s.url(), s.base_url().trim_end_matches('/').to_string(), s.issuer_url());
    let o = tokio::task::block_in_place(|| {
        f.cli(&["connect", "close", "--plugin", "builtin:close", "--endpoint", &url, "--headless", "--allow-origin", &origin, "--allow-origin", &issuer])
    });
    assert!(o.status.success(), "connect: {}", text(&o.stderr));
    let connected = Instant::now();
    let replicas = [f.serve(1, &["--http", "127.0.0.1:0"], "replica-a"), f.serve(2, &["--http", "127.0.0.1:0"], "replica-b")];
    // Each replica answers once while the token is fresh (the connector refreshes a token this short
    // when half its life is left), so both have their component compiled and race for the refresh.
    let warm: Vec<_> = replicas.iter().enumerate().map(|(i, r)| call_on(r.port, 1_000 + i as u64, "close__org_info", json!({}))).collect();
    for r in futures::future::join_all(warm).await {
        assert_eq!(r["result"]["isError"], false, "{r}");
    }
    assert!(connected.elapsed() < Duration::from_secs(TTL_SECS / 2), "warmed up before a refresh is due: {:?}", connected.elapsed());
    assert_eq!(s.oauth_counters().refreshes, 0);
    // Let the access token expire, then call 200 times at once, half through each replica.
    tokio::time::sleep(Duration::from_secs(TTL_SECS).saturating_sub(connected.elapsed()) + Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let port = replicas[(i % 2) as usize].port;
        let tool = if i % 3 == 0 { "close__find_lead_statuses" } else { "close__org_info" };
        tasks.push(tokio::spawn(async move { post(port, None, &call_headers(tool, None), &call(i + 1, tool, json!({}))).await }));
    }
    let mut answered = 0;
    for t in tasks {
        let (status, _, r) = t.await.unwrap();
        assert_eq!((status, r["result"]["isError"].clone()), (200, json!(false)), "{r}");
        answered += 1;
    }
    let elapsed = started.elapsed();
    let oauth = s.oauth_counters();
    eprintln!("{}: 200 calls over two replicas with an expired token: {answered} answered in {elapsed:?}, {} refresh(es)", f.backend(), oauth.refreshes);
    assert!(elapsed < Duration::from_secs(TTL_SECS), "the run fits in one token lifetime, so one refresh is right: {elapsed:?}");
    assert_eq!(oauth.refreshes, 1, "single flight across both processes");
    assert_eq!(oauth.refresh_token_reuse_detections, 0, "no rotated-out refresh token was used");
    assert_eq!(s.live_refresh_tokens(), 1, "no rotation lost");
    f.assert_nothing_stored_locally();
}

/// A stateless (MCP 2026-07-28) `tools/list`: the served tool names.
async fn served_tools(port: u16) -> Vec<String> {
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "engine-test", "version": "1"}
    }}});
    let (status, _, r) = post(port, None, &[("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/list")], &list).await;
    assert_eq!(status, 200, "{r}");
    r["result"]["tools"].as_array().expect("tools").iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
}

async fn call_on(port: u16, id: u64, tool: &str, args: Value) -> Value {
    let (status, _, r) = post(port, None, &call_headers(tool, None), &call(id, tool, args)).await;
    assert_eq!(status, 200, "{r}");
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_alternating_between_replicas_sees_one_host_and_survives_losing_one_on_one_machine() {
    an_engine_alternating_between_replicas_sees_one_host_and_survives_losing_one(Fleet::sqlite()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_alternating_between_replicas_sees_one_host_and_survives_losing_one_on_postgresql() {
    an_engine_alternating_between_replicas_sees_one_host_and_survives_losing_one(Fleet::postgres()).await
}

async fn an_engine_alternating_between_replicas_sees_one_host_and_survives_losing_one(f: Fleet) {
    let s = StandIn::start(StandInConfig::default()).await.expect("stand-in starts");
    tokio::task::block_in_place(|| f.connect_close(&s));
    // The whole list as the connection returns it, outside `serve` (the reference).
    let whole = tokio::task::block_in_place(|| f.cli(&["call", "close", "get_fields", "{}", "--json"]));
    assert!(whole.status.success(), "{}", text(&whole.stderr));
    let whole: Value = serde_json::from_slice(&whole.stdout).unwrap();
    let whole: Value = match &whole["structured_content"] {
        Value::Null => serde_json::from_str(whole["content"][0]["text"].as_str().expect("a text block")).unwrap(),
        v => v.clone(),
    };
    let reference = whole["object_types"].as_array().expect("object_types").clone();

    // Small enough that the list takes several pages, large enough that each element fits whole.
    let small = ["--http", "127.0.0.1:0", "--max-result-bytes", "16384"];
    let mut a = f.serve(1, &small, "replica-a");
    let b = f.serve(2, &small, "replica-b");

    // The catalogue is the same whichever replica answers.
    let (on_a, on_b) = (served_tools(a.port).await, served_tools(b.port).await);
    assert_eq!(on_a.len(), 67, "{on_a:?}");
    assert_eq!(on_a, on_b);

    // A shortened result started on one replica continues on the other, page by page, alternating.
    let first = call_on(a.port, 1, "close__get_fields", json!({})).await;
    let first = &first["result"]["structuredContent"];
    assert_eq!(first["claribi"]["summarized"], true, "{first}");
    let mut rows = first["object_types"].as_array().unwrap().clone();
    let mut cursor = first["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
    let mut pages = 1;
    let ports = [b.port, a.port];
    while let Some(c) = cursor {
        let page = call_on(ports[pages % 2], 10 + pages as u64, "claribi__next_rows", json!({"cursor": c})).await;
        let page = &page["result"]["structuredContent"];
        rows.extend(page["object_types"].as_array().unwrap_or_else(|| panic!("rows on page {pages}: {page}")).iter().cloned());
        cursor = page["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        pages += 1;
    }
    assert!(pages >= 3, "the result took several pages: {pages}");
    let types = |v: &[Value]| v.iter().map(|t| t["type"].as_str().unwrap_or("?").to_string()).collect::<Vec<_>>();
    assert_eq!(types(&rows), types(&reference), "every element, in order, across both replicas");
    assert!(rows == reference, "each element whole");

    // One replica is lost mid-run: a result it shortened is continued by the other.
    let started_on_a = call_on(a.port, 50, "close__get_fields", json!({})).await;
    let cursor = started_on_a["result"]["structuredContent"]["claribi"]["continue"]["arguments"]["cursor"].as_str().unwrap().to_string();
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let page = call_on(b.port, 51, "claribi__next_rows", json!({"cursor": cursor})).await;
    assert_eq!(page["result"]["isError"], false, "{page}");
    let org = call_on(b.port, 52, "close__org_info", json!({})).await;
    assert_eq!(org["result"]["structuredContent"]["organization"]["id"], s.dataset().organization.id.as_str());

    // A third replica joins; a disconnect made by the CLI is seen by both at once.
    let c = f.serve(3, &small, "replica-c");
    assert_eq!(served_tools(c.port).await.len(), 67);
    let o = tokio::task::block_in_place(|| f.cli(&["disconnect", "close"]));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(served_tools(b.port).await, ["claribi__next_rows"], "replica b sees the disconnect");
    assert_eq!(served_tools(c.port).await, ["claribi__next_rows"], "replica c sees the disconnect");
    let gone = call_on(c.port, 60, "close__org_info", json!({})).await;
    assert_eq!(gone["error"]["code"], -32602, "{gone}");
    f.assert_nothing_stored_locally();
}
