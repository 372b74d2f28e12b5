//! A hostile connector component (`tests/hostile-plugin`) in the real host: each tool tries one
//! escape from the sandbox, and each test checks that the host stops it with a clear one-line error of
//! the right kind, that nothing reached a place it should not (local servers count every connection),
//! and that the host keeps serving a normal Close connection afterwards.
//!
//! Every hostile connection runs under tight limits ([`tight_limits`]: 32 MiB, 2 s, 64 KiB of
//! responses, 5 requests per call) unless a test says otherwise. The only addresses used are on the
//! loopback interface: "private" addresses are loopback literals other than the endpoint's
//! (`127.0.0.2`, `::ffff:127.0.0.2`) and names the host's resolver maps to loopback.

use e2e::claribi_host::errors::{ConnectorError, HostError};
use e2e::claribi_host::policy::Limits;
use e2e::claribi_host::service::ToolOutput;
use e2e::hostile::{
    assert_close_still_serves, connect_hostile, fixture_resolving, fixture_with, sockets_component, tight_limits,
    Behaviour, TestServer, HOSTILE_KEY,
};
use e2e::{json_of, Fixture};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The tools the hostile connector lists, one per escape (plus `ping`).
const ESCAPES: [&str; 20] = [
    "fetch",
    "infinite_loop",
    "memory_bomb",
    "request_flood",
    "read_files",
    "read_env",
    "exfiltrate_secret",
    "stack_overflow",
    "panic",
    "flood_logs",
    "state_flood",
    "hold_lock",
    "smuggle_call",
    "echo_secret",
    "rest_writes",
    "misplace",
    "fields_flood",
    "huge_log",
    "refresh_tokens",
    "ping",
];

/// A fixture (Close stand-in, host resolving `names`) with the Close connection `close` connected, and
/// the hostile connector's home server (its endpoint, always granted).
async fn setup(names: &[(&str, IpAddr)]) -> (Fixture, TestServer) {
    logs::install();
    let f = fixture_resolving(names).await;
    f.connect("close").await.expect("the Close connection connects");
    let home = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    (f, home)
}

/// Connect `hostile` with `home` plus `extra` granted, under `limits`.
async fn hostile_with(f: &Fixture, home: &TestServer, extra: &[String], limits: Limits) {
    connect_hostile(&f.host, "hostile", home, extra, limits).await.expect("the hostile connector connects");
}

async fn call(f: &Fixture, tool: &str, args: Value) -> Result<ToolOutput, HostError> {
    f.host.call_tool("hostile", tool, &args.to_string()).await
}

/// The error's message, checked to be one line (and never to carry the API key).
fn line(e: &HostError) -> String {
    let s = e.to_string();
    println!("{}: {s}", e.kind());
    assert!(!s.contains('\n') && !s.contains('\r'), "not one line: {s:?}");
    assert!(!s.contains(HOSTILE_KEY), "the error carries the API key: {s}");
    s
}

/// The message of a `denied-by-policy` error; anything else fails the test.
fn denial(r: Result<ToolOutput, HostError>) -> String {
    match r {
        Err(e @ HostError::Connector(ConnectorError::DeniedByPolicy { .. })) => {
            let s = line(&e);
            assert!(s.starts_with("denied by policy: "), "{s}");
            s
        }
        Err(e) => panic!("expected a policy denial, got {:?}: {e}", e.kind()),
        Ok(out) => panic!("expected a policy denial, the call succeeded: {}", json_of(&out)),
    }
}

/// The message of a `crashed` error (a trap in the connector); anything else fails the test.
fn crash(r: Result<ToolOutput, HostError>) -> String {
    match r {
        Err(e @ HostError::Crashed { .. }) => line(&e),
        Err(e) => panic!("expected a crash, got {:?}: {e}", e.kind()),
        Ok(out) => panic!("expected a crash, the call succeeded: {}", json_of(&out)),
    }
}

/// After an escape: the Close connection still answers, and so does the hostile connection itself.
async fn assert_host_still_serves(f: &Fixture) {
    assert_close_still_serves(f).await;
    let pong = call(f, "ping", json!({})).await.unwrap_or_else(|e| panic!("the hostile connection no longer answers: {e}"));
    assert_eq!(json_of(&pong)["pong"], true);
}

fn loopback(ip: &str) -> IpAddr {
    ip.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hostile_connector_connects_and_every_escape_is_listed_as_a_read_tool() {
    let (f, home) = setup(&[]).await;
    hostile_with(&f, &home, &[], tight_limits()).await;
    let listing = f.host.list_tools("hostile").await.unwrap();
    let names: Vec<&str> = listing.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ESCAPES, "every escape reaches the engine as a tool; blocked: {:?}", listing.blocked);
    assert!(listing.blocked.is_empty(), "{:?}", listing.blocked);
    // The log flood is called `flood_logs`: `log_flood` reads as a write ("log a call") and is blocked.
    assert!(f.host.blocklist().check_name("log_flood").is_some());
    // check-connection did no I/O.
    assert_eq!(home.connections(), 0);
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_to_an_ungranted_origin_is_denied_and_never_leaves_the_host() {
    let (f, home) = setup(&[("ungranted.test", loopback("127.0.0.1"))]).await;
    let ungranted = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    hostile_with(&f, &home, &[], tight_limits()).await;

    let why = denial(call(&f, "fetch", json!({ "url": ungranted.url("/steal") })).await);
    assert!(why.contains(&format!("request to {} denied", ungranted.origin())), "{why}");
    assert!(why.contains("not granted to connection `hostile`"), "{why}");
    assert!(why.contains(&format!("--allow-origin {}", ungranted.origin())), "{why}");

    // By name, too: the grant is checked before any lookup.
    let by_name = format!("http://ungranted.test:{}/steal", ungranted.port());
    let why = denial(call(&f, "fetch", json!({ "url": by_name })).await);
    assert!(why.contains(&format!("http://ungranted.test:{}", ungranted.port())), "{why}");

    assert_eq!(ungranted.connections(), 0, "the ungranted server was reached");
    // The granted endpoint itself is reachable: the denial was about the origin.
    let ok = call(&f, "fetch", json!({ "url": home.url("/") })).await.unwrap();
    assert_eq!(json_of(&ok)["status"], 200);
    assert_eq!(home.connections(), 1);
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_address_literal_is_denied_even_under_a_wildcard_grant() {
    let (f, home) = setup(&[]).await;
    let private = TestServer::start("127.0.0.2", Behaviour::Ok).await;
    let port = private.port();
    hostile_with(&f, &home, &["http://*:*".into()], tight_limits()).await;

    for url in [format!("http://127.0.0.2:{port}/"), format!("http://[::ffff:127.0.0.2]:{port}/"), format!("http://2130706434:{port}/")] {
        let why = denial(call(&f, "fetch", json!({ "url": url })).await);
        assert!(why.contains("not granted to connection `hostile`"), "{url}: {why}");
        assert!(why.contains("granted: http://127.0.0.1:"), "{url}: {why}");
    }
    assert_eq!(private.connections(), 0, "a loopback address was reached through a wildcard grant");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_resolves_to_loopback_is_denied_after_the_host_resolves_it() {
    let (f, home) = setup(&[
        ("internal.test", loopback("127.0.0.1")),
        ("mapped.test", loopback("::ffff:127.0.0.1")),
    ])
    .await;
    let internal = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    let port = internal.port();
    // The wildcard grants every *name* on that port; no address literal is granted.
    hostile_with(&f, &home, &[format!("http://*:{port}")], tight_limits()).await;

    let why = denial(call(&f, "fetch", json!({ "url": format!("http://internal.test:{port}/admin") })).await);
    assert!(why.contains("`internal.test` resolves to 127.0.0.1, a loopback address"), "{why}");
    assert!(why.contains(&format!("--allow-origin http://127.0.0.1:{port}")), "{why}");

    let why = denial(call(&f, "fetch", json!({ "url": format!("http://mapped.test:{port}/admin") })).await);
    assert!(why.contains("`mapped.test` resolves to ::ffff:127.0.0.1, a loopback address"), "{why}");

    assert_eq!(internal.connections(), 0, "a name resolving to loopback reached the loopback server");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_an_ungranted_origin_is_refused_at_that_hop() {
    let (f, home) = setup(&[("internal.test", loopback("127.0.0.1"))]).await;
    let ungranted = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    let internal = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    let to_ungranted =
        TestServer::start("127.0.0.1", Behaviour::RedirectChain { hops: 3, then: ungranted.url("/loot") }).await;
    let to_internal = TestServer::start(
        "127.0.0.1",
        Behaviour::RedirectChain { hops: 0, then: format!("http://internal.test:{}/loot", internal.port()) },
    )
    .await;
    hostile_with(
        &f,
        &home,
        &[to_ungranted.origin(), to_internal.origin(), format!("http://*:{}", internal.port())],
        tight_limits(),
    )
    .await;

    // Three hops inside the granted server, then a redirect out of the grant.
    let why = denial(call(&f, "fetch", json!({ "url": to_ungranted.url("/hop/0") })).await);
    assert!(why.contains(&format!("request to {} denied", ungranted.origin())), "{why}");
    assert!(why.contains("not granted"), "{why}");
    assert_eq!(to_ungranted.requests().len(), 4, "every granted hop was followed: {:?}", to_ungranted.requests());
    assert_eq!(ungranted.connections(), 0, "the redirect target outside the grant was reached");

    // A redirect to a granted *name* that resolves to loopback is caught at the address check.
    let why = denial(call(&f, "fetch", json!({ "url": to_internal.url("/hop/0") })).await);
    assert!(why.contains("`internal.test` resolves to 127.0.0.1, a loopback address"), "{why}");
    assert_eq!(to_internal.requests().len(), 1);
    assert_eq!(internal.connections(), 0, "the redirect reached a loopback server by name");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_redirect_loop_is_cut_by_the_request_budget() {
    let (f, home) = setup(&[]).await;
    let looping = TestServer::start("127.0.0.1", Behaviour::RedirectChain { hops: usize::MAX, then: String::new() }).await;
    hostile_with(&f, &home, &[looping.origin()], tight_limits()).await;

    // The connector follows up to 5 redirects (6 requests); the budget is 5 requests per call.
    let why = denial(call(&f, "fetch", json!({ "url": looping.url("/hop/0"), "max_hops": 5 })).await);
    assert!(why.contains("more than 5 outgoing requests in one call (max_requests_per_call)"), "{why}");
    assert_eq!(looping.requests().len(), 5, "the server saw more requests than the budget");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_bomb_is_cut_at_the_byte_cap_and_the_call_ends_at_once() {
    let (f, home) = setup(&[]).await;
    let bomb = TestServer::start("127.0.0.1", Behaviour::EndlessBody).await;
    hostile_with(&f, &home, &[bomb.origin()], tight_limits()).await;

    let started = Instant::now();
    let why = denial(call(&f, "fetch", json!({ "url": bomb.url("/bomb") })).await);
    let took = started.elapsed();
    assert!(why.contains("exceeded 65536 bytes (max_response_bytes); the rest was not read"), "{why}");
    assert!(took < Duration::from_secs(1), "the call went on for {took:?} after the cap");

    // Asked to carry on regardless, the connector reports what it got: no more than the cap.
    let out = call(&f, "fetch", json!({ "url": bomb.url("/bomb"), "tolerate_errors": true })).await.unwrap();
    let got = json_of(&out);
    let read = got["body_bytes"].as_u64().unwrap();
    assert!(read <= 64 * 1024, "the connector read {read} bytes past the 64 KiB cap: {got}");
    // (The guest sees `internal-error("HTTP response body size exceeds limit …")` rather than the
    // typed `HTTP-response-body-size` code; either way it is told why.)
    let error = got["error"].as_str().unwrap();
    assert!(error.contains("HttpResponseBodySize") || error.contains("body size exceeds limit"), "{got}");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_cannot_hold_a_call_past_its_deadline() {
    let (f, home) = setup(&[]).await;
    let silent = TestServer::start("127.0.0.1", Behaviour::Silent).await;
    hostile_with(&f, &home, &[silent.origin()], tight_limits()).await;

    // The connector asks for hour-long timeouts; the host caps them at the call's 2 s.
    let started = Instant::now();
    let r = call(&f, "fetch", json!({ "url": silent.url("/") })).await;
    let took = started.elapsed();
    let Err(e @ HostError::Deadline { limit_ms: 2000, .. }) = r else { panic!("expected the deadline, got {r:?}") };
    assert!(line(&e).contains("ran past its 2000 ms time limit and was stopped"), "{e}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(3000), "stopped after {took:?}");
    assert_eq!(silent.connections(), 1);
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let (f, home) = setup(&[]).await;
    hostile_with(&f, &home, &[], tight_limits()).await;

    let started = Instant::now();
    let r = call(&f, "infinite_loop", json!({})).await;
    let took = started.elapsed();
    let Err(e @ HostError::Deadline { limit_ms: 2000, .. }) = r else { panic!("expected the deadline, got {r:?}") };
    let msg = line(&e);
    assert!(msg.contains("connection `hostile`: the connector ran past its 2000 ms time limit and was stopped"), "{msg}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(2600), "stopped after {took:?}");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_normal_call_runs_concurrently_with_an_infinite_loop_and_finishes_well_before_its_deadline() {
    let (f, home) = setup(&[]).await;
    let limits = Limits { call_timeout: Duration::from_secs(5), ..tight_limits() };
    hostile_with(&f, &home, &[], limits).await;
    let f = Arc::new(f);

    let started = Instant::now();
    let spinner = {
        let f = f.clone();
        tokio::spawn(async move { f.host.call_tool("hostile", "infinite_loop", "{}").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Several normal calls, one after the other, while the loop spins.
    for _ in 0..3 {
        let t = Instant::now();
        assert_close_still_serves(&f).await;
        assert!(t.elapsed() < Duration::from_secs(1), "a normal call took {:?} next to the spinning connector", t.elapsed());
    }
    assert!(!spinner.is_finished(), "the loop should still be spinning when the normal calls are done");
    assert!(started.elapsed() < Duration::from_secs(4), "the normal calls ended only after {:?}", started.elapsed());

    let r = spinner.await.unwrap();
    assert!(matches!(r, Err(HostError::Deadline { limit_ms: 5000, .. })), "{r:?}");
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_connection_flooding_the_host_cannot_take_every_instance_slot() {
    logs::install();
    // Four instances at once on this host, so at most two per connection.
    let f = Arc::new(fixture_with(&[], 4).await);
    let home = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    let slow = Limits { call_timeout: Duration::from_secs(4), ..tight_limits() };
    let quick = Limits { call_timeout: Duration::from_secs(1), ..tight_limits() };
    for (name, limits) in [("hog", slow), ("hog-two", slow), ("other", quick), ("late", quick)] {
        connect_hostile(&f.host, name, &home, &[], limits).await.expect("connects");
        f.host.list_tools(name).await.expect("lists");
    }
    let spin = |name: &'static str| {
        let f = f.clone();
        tokio::spawn(async move { f.host.call_tool(name, "infinite_loop", "{}").await })
    };
    // `hog` asks for four instances: it gets two, the other two calls wait for its own slots.
    let hogs: Vec<_> = (0..4).map(|_| spin("hog")).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another connection still gets one (its deadline is 1 s: starved, it would be `busy`).
    let pong = f.host.call_tool("other", "ping", "{}").await.expect("another connection is not starved");
    assert_eq!(json_of(&pong)["pong"], true);
    // Now a second hog takes the last two slots: a call on a fourth connection finds none free
    // within its 1 s, and says so in one line.
    let hogs_two: Vec<_> = (0..2).map(|_| spin("hog-two")).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = f.host.call_tool("late", "ping", "{}").await;
    let Err(e @ HostError::Busy { .. }) = r else { panic!("expected busy, got {r:?}") };
    let msg = line(&e);
    assert!(msg.contains("connection `late`: too many calls at once"), "{msg}");
    for h in hogs.into_iter().chain(hogs_two) {
        let r = h.await.unwrap();
        assert!(matches!(r, Err(HostError::Deadline { .. } | HostError::Busy { .. })), "{r:?}");
    }
    // Once the loops are stopped, everyone is served again.
    let pong = f.host.call_tool("late", "ping", "{}").await.expect("served again");
    assert_eq!(json_of(&pong)["pong"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_is_stopped_at_the_memory_limit() {
    let (f, home) = setup(&[]).await;
    hostile_with(&f, &home, &[], tight_limits()).await;

    let r = call(&f, "memory_bomb", json!({})).await;
    let Err(e @ HostError::MemoryLimit { limit_mib: 32, .. }) = r else { panic!("expected the memory limit, got {r:?}") };
    assert!(line(&e).contains("connection `hostile`: the connector exceeded its 32 MiB memory limit and was stopped"), "{e}");

    // A connector that handles the refusal itself gets no more than the limit.
    let out = call(&f, "memory_bomb", json!({ "graceful": true })).await.unwrap();
    let got = json_of(&out);
    let allocated = got["allocated_bytes"].as_u64().unwrap();
    assert!(allocated > 0 && allocated < 32 * 1024 * 1024, "{got}");
    assert!(!got["refused_at_bytes"].is_null(), "{got}");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unbounded_recursion_crashes_the_call_and_not_the_host() {
    let (f, home) = setup(&[]).await;
    hostile_with(&f, &home, &[], tight_limits()).await;

    let r = call(&f, "stack_overflow", json!({})).await;
    let msg = crash(r);
    assert!(msg.starts_with("connection `hostile`: the connector crashed (wasm trap: "), "{msg}");
    assert!(!msg.contains("wasm trap: wasm trap:"), "the trap is named twice: {msg}");
    assert!(msg.ends_with("report it to the connector's author"), "{msg}");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn calling_the_host_at_the_bottom_of_a_deep_recursion_traps_the_call_not_the_host() {
    let (f, home) = setup(&[]).await;
    hostile_with(&f, &home, &[], tight_limits()).await;
    // Run it a few times: a host function overflowing the fiber's stack would abort this process.
    for _ in 0..3 {
        let r = call(&f, "stack_overflow", json!({ "host_calls": true })).await;
        let msg = crash(r);
        assert!(msg.contains("wasm trap"), "{msg}");
    }
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_cannot_smuggle_a_write_call_upstream_under_a_read_tool() {
    let (f, home) = setup(&[]).await;
    // The connector may reach the stand-in, and is handed a key with write scope.
    let standin = f.standin.base_url();
    hostile_with(&f, &home, std::slice::from_ref(&standin), tight_limits()).await;
    let smuggle = |tool: &str, shape: &str| {
        json!({ "url": f.standin.url(), "tool": tool, "api_key": f.standin.api_key(), "shape": shape })
    };

    // The same path with a read tool goes through and is executed upstream: the gate reads the
    // call, it does not block the connector's traffic wholesale.
    let before = f.standin.counters().calls_of("org_info");
    let ok = call(&f, "smuggle_call", smuggle("org_info", "plain")).await.expect("a read call passes");
    assert_eq!(json_of(&ok)["status"], 200, "{}", json_of(&ok));
    assert_eq!(f.standin.counters().calls_of("org_info"), before + 1);

    for shape in ["plain", "batch", "escaped", "duplicate"] {
        let why = denial(call(&f, "smuggle_call", smuggle("delete_lead", shape)).await);
        assert!(why.contains("upstream tool `delete_lead`"), "{shape}: {why}");
        assert!(why.contains("rule `"), "{shape}: the rule is named: {why}");
    }
    // MCP 2026-07-28 routing headers naming the write tool over a read body (a gateway may route by
    // the header): refused as a disagreement, the decoded name shown.
    for shape in ["header", "header_base64"] {
        let why = denial(call(&f, "smuggle_call", smuggle("delete_lead", shape)).await);
        assert!(why.contains("Mcp-Name header (`delete_lead`) disagrees"), "{shape}: {why}");
    }
    let why = denial(call(&f, "smuggle_call", smuggle("update_opportunity", "plain")).await);
    assert!(why.contains("update_opportunity"), "{why}");
    assert_eq!(f.standin.counters().write_tool_calls, 0, "no write call reached the server");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_echoed_into_a_result_reaches_no_one() {
    let (f, home) = setup(&[]).await;
    hostile_with(&f, &home, &[], tight_limits()).await;
    let out = call(&f, "echo_secret", json!({})).await.expect("the call itself succeeds");
    let shown = serde_json::to_string(&out).unwrap();
    assert!(!shown.contains(HOSTILE_KEY), "the key reached the caller: {shown}");
    // The connector holds only the key's placeholder, so that is all it can echo.
    let placeholder = json_of(&out)["key"].as_str().unwrap().to_string();
    assert!(placeholder.starts_with("clbph_") && placeholder.len() == 38, "{shown}");
    assert_eq!(json_of(&out)["note"], format!("the key is {placeholder}"), "{shown}");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_reported_as_a_crash_with_its_message_and_without_the_secret() {
    let (f, home) = setup(&[]).await;
    hostile_with(&f, &home, &[], tight_limits()).await;

    let r = call(&f, "panic", json!({ "message": "hostile-panic-marker-7731" })).await;
    let msg = crash(r);
    assert!(msg.contains("panicked"), "{msg}");
    assert!(msg.contains("hostile-panic-marker-7731"), "the panic message is missing: {msg}");

    // A panic message "carrying the API key" carries its placeholder: the connector never had the
    // key (`line` checks the key is absent).
    let r = call(&f, "panic", json!({ "message": "leaking", "leak_secret": true })).await;
    let msg = crash(r);
    assert!(msg.contains("leaking (api key: clbph_"), "{msg}");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_filesystem_is_invisible_to_a_connector() {
    let (f, home) = setup(&[]).await;
    hostile_with(&f, &home, &[], tight_limits()).await;
    let data_dir = f.dir.path().to_string_lossy().into_owned();
    let planted = f.dir.path().join("hostile-was-here");

    let out = call(
        &f,
        "read_files",
        json!({
            "paths": ["/etc/passwd", ".", "/", data_dir, format!("{data_dir}/master.key")],
            "write": planted.to_string_lossy(),
        }),
    )
    .await
    .unwrap();
    let got = json_of(&out);
    for (path, attempts) in got["paths"].as_object().unwrap() {
        for (what, outcome) in attempts.as_object().unwrap() {
            assert!(outcome.get("ok").is_none(), "`{what}` of {path} succeeded: {outcome}");
            assert!(outcome["error"].is_string(), "{path} {what}: {outcome}");
        }
    }
    assert!(got["write"].get("ok").is_none(), "the write succeeded: {}", got["write"]);
    assert!(!planted.exists(), "the connector created a file in the host's data directory");
    assert!(!got.to_string().contains("root:"), "{got}");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_arguments_and_stdin_of_the_host_are_invisible_to_a_connector() {
    let (f, home) = setup(&[]).await;
    hostile_with(&f, &home, &[], tight_limits()).await;

    let got = json_of(&call(&f, "read_env", json!({})).await.unwrap());
    assert_eq!(got["vars"], json!([]), "the connector saw environment variables");
    assert_eq!(got["args"], json!([]), "the connector saw arguments");
    assert!(matches!(got["stdin_bytes"]["ok"].as_u64(), Some(0) | None), "the connector read stdin: {got}");
    let cwd = std::env::current_dir().unwrap().to_string_lossy().into_owned();
    assert!(!got.to_string().contains(&cwd), "the connector saw the host's working directory: {got}");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_never_reaches_an_origin_it_does_not_belong_to() {
    let (f, home) = setup(&[]).await;
    // The exfiltration target is granted: only the credential check stands in the way.
    let collector = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    let ungranted = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    hostile_with(&f, &home, &[collector.origin()], tight_limits()).await;

    // The connector holds a placeholder; the host attaches the key to nothing but the endpoint's
    // own header, so every other place is refused before the request leaves.
    for (via, needle) in [("header", "header x-stolen"), ("query", "in its URL"), ("key_header", "does not belong")] {
        let why = denial(call(&f, "exfiltrate_secret", json!({ "url": collector.url("/collect"), "via": via })).await);
        assert!(why.contains(&format!("request to {}/collect denied", collector.origin())), "{via}: {why}");
        assert!(why.contains(needle), "{via}: {why}");
    }
    let why = denial(call(&f, "exfiltrate_secret", json!({ "url": ungranted.url("/collect"), "via": "header" })).await);
    assert!(why.contains("not granted"), "{why}");

    assert_eq!(collector.connections(), 0, "the collector was reached: {:?}", collector.requests());
    assert_eq!(ungranted.connections(), 0);
    // The key does travel to the endpoint, in its header (that is what it is for) — and nowhere
    // else even there: a Bearer header to the endpoint is refused.
    call(&f, "exfiltrate_secret", json!({ "url": home.url("/mcp"), "via": "key_header" })).await.unwrap();
    assert!(home.requests().iter().any(|r| r.contains(HOSTILE_KEY)));
    let before = home.requests().len();
    denial(call(&f, "exfiltrate_secret", json!({ "url": home.url("/mcp"), "via": "header" })).await);
    assert_eq!(home.requests().len(), before, "the refused request never reached the endpoint");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_in_a_request_body_never_reaches_an_origin_it_does_not_belong_to() {
    let (f, home) = setup(&[]).await;
    let collector = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    hostile_with(&f, &home, &[collector.origin()], tight_limits()).await;

    let r = call(&f, "exfiltrate_secret", json!({ "url": collector.url("/collect"), "via": "body" })).await;
    let leaked: Vec<String> = collector.requests().into_iter().filter(|req| req.contains(HOSTILE_KEY)).collect();
    assert!(leaked.is_empty(), "the API key reached the collector in a request body (call: {r:?}): {leaked:?}");
    denial(r);
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_flood_is_cut_at_the_request_budget() {
    let (f, home) = setup(&[]).await;
    let target = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    hostile_with(&f, &home, &[target.origin()], tight_limits()).await;

    let why = denial(call(&f, "request_flood", json!({ "url": target.url("/"), "count": 50 })).await);
    assert!(why.contains("the connector made more than 5 outgoing requests in one call (max_requests_per_call)"), "{why}");
    assert_eq!(target.requests().len(), 5);

    // A connector that disguises the denial as a failure of its own still shows the budget.
    let why = denial(call(&f, "request_flood", json!({ "url": target.url("/"), "count": 50, "report_as": "tool-failed" })).await);
    assert!(why.contains("max_requests_per_call"), "{why}");
    assert_eq!(target.requests().len(), 10);

    // And one that carries on regardless got 5 requests through and 45 refused.
    let got = json_of(&call(&f, "request_flood", json!({ "url": target.url("/"), "count": 50, "report_as": "result" })).await.unwrap());
    assert_eq!((got["succeeded"].as_u64(), got["failed"].as_u64()), (Some(5), Some(45)), "{got}");
    assert_eq!(target.requests().len(), 15, "every call has its own budget of 5, and no more");
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_flood_is_capped_and_a_log_line_can_only_ever_hold_a_placeholder() {
    let (f, home) = setup(&[]).await;
    let limits = Limits { call_timeout: Duration::from_secs(20), ..tight_limits() };
    connect_hostile(&f.host, "hostile-logs", &home, &[], limits).await.unwrap();

    let started = Instant::now();
    let out = f.host.call_tool("hostile-logs", "flood_logs", &json!({ "count": 100_000, "include_secret": true }).to_string()).await;
    let got = json_of(&out.unwrap_or_else(|e| panic!("the log flood failed after {:?}: {e}", started.elapsed())));
    assert_eq!(got["sent"], 100_000);

    let lines = logs::of("hostile-logs");
    assert_eq!(lines.len(), 200, "the host kept {} of 100 000 log lines", lines.len());
    // All the connector could log is the key's placeholder.
    assert!(lines[0].contains("the api key is clbph_"), "{}", lines[0]);
    assert!(lines.iter().all(|l| !l.contains(HOSTILE_KEY)), "a log line carries the API key");
    assert!(lines.iter().all(|l| !l.contains('\n')));
    assert!(logs::all().iter().any(|l| l.contains("connector log limit of 200 lines per call reached")));

    // The cap is per call: the next call may log again.
    f.host.call_tool("hostile-logs", "flood_logs", &json!({ "count": 3 }).to_string()).await.unwrap();
    assert_eq!(logs::of("hostile-logs").len(), 203);
    assert_close_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_flood_is_capped_and_clear_state_can_only_ever_hold_a_placeholder() {
    let (f, home) = setup(&[]).await;
    let limits = Limits { call_timeout: Duration::from_secs(60), ..tight_limits() };
    hostile_with(&f, &home, &[], limits).await;
    let id = f.host.connection("hostile").unwrap().id;

    // First "the secret": what the connector has is a placeholder, harmless in clear state.
    call(&f, "state_flood", json!({ "store_secret": true })).await.expect("a placeholder may be kept in state");
    let kept = f.host.store().state(&id, "stolen-key").unwrap().expect("kept");
    assert!(kept.starts_with("clbph_") && !kept.contains(HOSTILE_KEY), "{kept}");
    f.host.store().set_state(&id, "stolen-key", None).unwrap();

    let r = call(&f, "state_flood", json!({ "count": 10_000 })).await;
    let msg = crash(r);
    assert!(msg.contains("a connection may keep at most 256 state keys"), "{msg}");
    assert_eq!(f.host.store().state_key_count(&id).unwrap(), 256);
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn holding_the_credential_lock_blocks_no_call_beyond_the_holders_deadline() {
    let (f, home) = setup(&[]).await;
    hostile_with(&f, &home, &[], tight_limits()).await;
    let other_limits = Limits { call_timeout: Duration::from_secs(5), ..tight_limits() };
    connect_hostile(&f.host, "hostile-b", &home, &[], other_limits).await.unwrap();
    let f = Arc::new(f);

    let holder = {
        let f = f.clone();
        tokio::spawn(async move { f.host.call_tool("hostile", "hold_lock", "{}").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another connection's lock is its own: taken at once, while the holder spins.
    let t = Instant::now();
    let got = json_of(&f.host.call_tool("hostile-b", "hold_lock", r#"{"spin": false}"#).await.unwrap());
    assert_eq!(got["locked"], true);
    assert!(t.elapsed() < Duration::from_secs(1), "another connection waited {:?} for its own lock", t.elapsed());
    // A Close call is not held up either.
    let t = Instant::now();
    assert_close_still_serves(&f).await;
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(!holder.is_finished());

    // A second call on the same connection waits for the lock until the holder is stopped at its
    // deadline, then gets it.
    let second = {
        let f = f.clone();
        tokio::spawn(async move {
            let r = f.host.call_tool("hostile", "hold_lock", r#"{"spin": false}"#).await;
            (r, Instant::now())
        })
    };
    let r = holder.await.unwrap();
    let holder_stopped = Instant::now();
    assert!(matches!(r, Err(HostError::Deadline { limit_ms: 2000, .. })), "{r:?}");
    let (r, second_done) = second.await.unwrap();
    // The second call started 300 ms after the holder, so its own 2 s run out 300 ms after the
    // holder's: the lock must come free well within that.
    let got = json_of(&r.unwrap_or_else(|e| panic!("the second call did not get the lock after the holder was stopped: {e}")));
    assert_eq!(got["locked"], true);
    assert!(
        second_done.saturating_duration_since(holder_stopped) < Duration::from_millis(300),
        "the lock came free {:?} after the holder was stopped",
        second_done.saturating_duration_since(holder_stopped)
    );
    assert_host_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_that_imports_wasi_sockets_is_refused_at_load() {
    let (f, home) = setup(&[]).await;
    let target = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    let mut req = e2e::hostile::hostile_request("sockets", &home.url("/mcp"), &[home.origin()], tight_limits());
    req.plugin = sockets_component();

    let r = f.host.connect(req).await;
    let Err(e @ HostError::InvalidPlugin(_)) = r else { panic!("expected the component to be refused, got {r:?}") };
    let msg = line(&e);
    assert!(msg.starts_with("invalid connector: the component does not fit the claribi:data-source world"), "{msg}");
    assert!(msg.contains("wasi:sockets"), "the error does not name the offending import: {msg}");
    assert!(f.host.connection("sockets").is_err(), "a connection was left behind");
    assert!(f.host.connections().unwrap().iter().all(|c| c.name != "sockets"));
    assert_eq!(target.connections(), 0);
    assert_close_still_serves(&f).await;
}

/// Captures the host's connector log lines (target `connector`) for the whole test binary.
mod logs {
    use std::fmt::Debug;
    use std::sync::{Mutex, OnceLock};
    use tracing::field::{Field, Visit};
    use tracing::{Event, Metadata, Subscriber};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    /// (connection, message)
    static LINES: OnceLock<Mutex<Vec<(Option<String>, String)>>> = OnceLock::new();

    struct Capture;

    impl<S: Subscriber> Layer<S> for Capture {
        fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
            matches!(metadata.target(), "connector" | "claribi::denied")
        }

        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            if !matches!(event.metadata().target(), "connector" | "claribi::denied") {
                return;
            }
            let mut v = Fields::default();
            event.record(&mut v);
            if let Some(lines) = LINES.get() {
                lines.lock().unwrap().push((v.connection, v.message));
            }
        }
    }

    #[derive(Default)]
    struct Fields {
        connection: Option<String>,
        message: String,
    }

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "connection" => self.connection = Some(value.to_string()),
                "message" => self.message = value.to_string(),
                _ => {}
            }
        }

        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            self.record_str(field, &format!("{value:?}"));
        }
    }

    /// Install the capturing subscriber (once per test binary).
    pub fn install() {
        LINES.get_or_init(|| {
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture))
                .expect("no other global subscriber in this test binary");
            Mutex::new(Vec::new())
        });
    }

    /// The messages logged for `connection`.
    pub fn of(connection: &str) -> Vec<String> {
        LINES.get().unwrap().lock().unwrap().iter().filter(|(c, _)| c.as_deref() == Some(connection)).map(|(_, m)| m.clone()).collect()
    }

    /// Every captured message.
    pub fn all() -> Vec<String> {
        LINES.get().unwrap().lock().unwrap().iter().map(|(_, m)| m.clone()).collect()
    }
}

// ---- issue 9: a connector never holds a credential ---------------------------------------------

/// The hostile component connected to the Close stand-in with the stand-in's own API key (a key with
/// write scope at Close), the operator having granted both stand-in origins in full: only the
/// credential binding stands between the connector and Close's REST API.
async fn hostile_on_close(f: &Fixture, name: &str) {
    let mut req = e2e::hostile::hostile_request(name, &f.standin.url(), &[f.origin(), f.standin.issuer_url()], tight_limits());
    req.credentials = e2e::claribi_host::service::Credentials::ApiKey(e2e::claribi_host::zeroize::Zeroizing::new(f.standin.api_key().into()));
    f.host.connect(req).await.expect("the hostile connector connects to the stand-in");
}

/// Every attempt of a `rest_writes` report, checked refused by the host (never sent).
fn all_refused(report: &Value) -> usize {
    let attempts = report["attempts"].as_array().expect("attempts");
    for a in attempts {
        assert_eq!(a["outcome"]["sent"], false, "an attempt left the host: {a}");
    }
    attempts.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_writes_with_the_connections_own_api_key_never_reach_close() {
    let (f, _home) = setup(&[]).await;
    hostile_on_close(&f, "hostile-rest").await;
    let before = f.standin.counters();
    // Close's REST API on both stand-in origins (the MCP host, and the token endpoint's origin, as
    // api.close.com is), with the key as `Close-API-Key`, as the Basic user name, and as a Bearer token.
    for base in [f.origin(), f.standin.issuer_url()] {
        let out = f.host.call_tool("hostile-rest", "rest_writes", &json!({ "base": base }).to_string()).await;
        let report = json_of(&out.unwrap_or_else(|e| panic!("the report itself should come back: {e}")));
        assert_eq!(all_refused(&report), 12, "{report}");
        println!("REST writes from {base}: {report}");
    }
    let after = f.standin.counters();
    assert_eq!(after.rest_write_requests, before.rest_write_requests, "no write request reached the stand-in");
    assert_eq!(after.rest_writes, 0, "zero writes accepted");
    assert_eq!(after.write_tool_calls, 0);
    assert_close_still_serves(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_placeholder_anywhere_but_its_place_refuses_the_request() {
    let (f, home) = setup(&[]).await;
    let other = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    // The operator grants the whole home origin and another origin: only the binding decides.
    hostile_with(&f, &home, &[other.origin()], Limits { max_requests_per_call: 16, ..tight_limits() }).await;
    let out = call(&f, "misplace", json!({ "endpoint": home.url("/mcp"), "other": other.url("/collect") })).await.unwrap();
    let report = json_of(&out);
    let cases = report.as_object().unwrap();
    assert_eq!(cases.len(), 7, "{report}");
    for (what, outcome) in cases {
        assert_eq!(outcome["sent"], false, "{what}: {outcome}");
    }
    assert_eq!(other.connections(), 0, "the other origin was reached: {:?}", other.requests());
    assert!(home.requests().is_empty(), "nothing reached the endpoint's origin: {:?}", home.requests());
    // Each refusal is a one-line reason naming where the placeholder was.
    let lines = logs::all();
    for needle in ["does not belong", "header name", "in its URL", "not a form", "header x-api-key"] {
        assert!(lines.iter().any(|l| l.contains(needle) && l.contains("outbound request denied")), "no denial mentions `{needle}`");
    }
    assert_host_still_serves(&f).await;
}

/// The hostile connector authorized with OAuth against the stand-in, headless; `ask_scope` is the
/// scope it puts in its authorization URL.
fn hostile_oauth(f: &Fixture, name: &str, ask_scope: &str) -> e2e::claribi_host::service::ConnectRequest {
    let mut req = e2e::hostile::hostile_request(name, &f.standin.url(), &[], tight_limits());
    req.credentials = e2e::claribi_host::service::Credentials::OAuth(e2e::claribi_host::service::OAuthFlow::headless());
    req.options = vec![("ask_scope".into(), ask_scope.into())];
    // Both stand-in origins granted in full by the operator: only the credential binding stands
    // between a token and Close's REST API on the token endpoint's origin.
    req.policy = None;
    req.allow_origins = Some(vec![f.origin(), f.standin.issuer_url()]);
    req
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_response_reaches_a_connector_with_placeholders_only() {
    let (f, _home) = setup(&[]).await;
    let out = f.host.connect(hostile_oauth(&f, "hostile-oauth", "mcp.read")).await.expect("the hostile connector authorizes");
    // The connector returned the token endpoint's whole answer as the account name.
    let seen = out.account.clone().unwrap_or_default();
    let access = {
        let id = f.host.connection("hostile-oauth").unwrap().id;
        let keys = e2e::claribi_host::vault::sealing::MasterKeys::load_or_create(f.dir.path()).unwrap();
        f.host.store().secret_value(&keys, &id, "access-token").unwrap().expect("the access token was claimed and sealed").to_string()
    };
    assert!(f.standin.is_token_active(&access), "the sealed value is the real token");
    assert!(seen.contains("\"access_token\":\"clbph_"), "the connector saw a placeholder: {seen}");
    assert!(!seen.contains(&access), "the connector saw the access token: {seen}");
    // What it logged: the redirect's code and the token answer, placeholders only.
    let lines = logs::of("hostile-oauth");
    let code = lines.iter().find(|l| l.contains("the redirect's code is")).expect("the code line");
    assert!(code.contains("the redirect's code is clbph_"), "{code}");
    assert!(lines.iter().all(|l| !l.contains(&access)), "a log line holds the access token");
    // The host, not the connector, says what was granted.
    assert_eq!(out.granted_scopes, vec!["mcp.read"]);
    assert!(out.secrets.iter().any(|s| s.name == "access-token" && s.kind == "access-token"), "{:?}", out.secrets);

    // And with that token the REST API on the token endpoint's origin is as closed as with a key.
    let report = json_of(&f.host.call_tool("hostile-oauth", "rest_writes", &json!({ "base": f.standin.issuer_url(), "oauth": true }).to_string()).await.unwrap());
    all_refused(&report);
    assert_eq!(f.standin.counters().rest_write_requests, 0);
    assert_eq!(f.standin.counters().rest_writes, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authorization_url_asking_for_a_write_scope_is_refused_before_the_browser_opens() {
    let (f, _home) = setup(&[]).await;
    let before = f.standin.oauth_counters();
    let err = f.host.connect(hostile_oauth(&f, "hostile-oauth", "mcp.read mcp.write_destructive")).await.unwrap_err();
    let msg = line(&err);
    assert!(matches!(err, HostError::Connector(ConnectorError::DeniedByPolicy { .. })), "{err:?}");
    assert!(msg.contains("mcp.write_destructive") && msg.contains("before the browser opened"), "{msg}");
    assert_eq!(f.standin.oauth_counters().authorization_requests, before.authorization_requests, "no browser went to the consent page");
    assert!(f.host.connection("hostile-oauth").is_err(), "nothing was kept");
}

/// The review's attack A, end to end: the operator tightens an authorized OAuth connection to
/// `connection_urls = false` with both stand-in origins granted in full (the example of
/// `policy/mod.rs`). Nothing the host learned is granted any more, yet the refresh the connector sends
/// carries the refresh token the host attached, so its answer is a token answer: placeholders only.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_under_a_policy_without_connection_urls_reaches_the_connector_with_placeholders_only() {
    let (f, _home) = setup(&[]).await;
    f.host.connect(hostile_oauth(&f, "hostile-oauth", "mcp.read offline_access")).await.expect("the hostile connector authorizes");
    let policy = e2e::claribi_host::policy::Policy {
        connection_urls: false,
        grant: e2e::claribi_host::policy::Grant::parse_list([f.origin(), f.standin.issuer_url()]).unwrap(),
        limits: tight_limits(),
        tools: Default::default(),
    };
    f.host.set_policy("hostile-oauth", &policy).expect("the operator sets the policy");
    let out = json_of(&f.host.call_tool("hostile-oauth", "refresh_tokens", "{}").await.expect("the refresh goes through"));
    assert_eq!(out["status"], 200, "{out}");
    let answer: Value = serde_json::from_str(out["answer"].as_str().unwrap()).expect("the answer is JSON");
    for member in ["access_token", "refresh_token"] {
        let seen = answer[member].as_str().unwrap_or_default();
        assert!(seen.starts_with("clbph_"), "the connector read a raw {member}: {answer}");
        assert!(!f.standin.is_token_active(seen));
    }
}

/// The review's H3-1 (RFC 9101): an authorization URL whose outer parameters pass every check, plus
/// an unsigned request object naming another redirect URI and a write scope. Refused before any
/// browser goes to the consent page.
#[tokio::test(flavor = "multi_thread")]
async fn an_authorization_url_with_a_request_object_is_refused_before_the_browser_opens() {
    let (f, _home) = setup(&[]).await;
    let before = f.standin.oauth_counters();
    let mut req = hostile_oauth(&f, "hostile-jar", "mcp.read");
    // {"alg":"none"}.{"redirect_uri":"https://evil.example/cb","scope":"mcp.read mcp.write_destructive"}.
    let jar = "eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL2V2aWwuZXhhbXBsZS9jYiIsInNjb3BlIjoibWNwLnJlYWQgbWNwLndyaXRlX2Rlc3RydWN0aXZlIn0.";
    req.options.push(("extra_param".into(), format!("request={jar}")));
    let err = f.host.connect(req).await.unwrap_err();
    let msg = line(&err);
    assert!(matches!(err, HostError::Connector(ConnectorError::DeniedByPolicy { .. })), "{err:?}");
    assert!(msg.contains("`request`") && msg.contains("before the browser opened"), "{msg}");
    assert_eq!(f.standin.oauth_counters().authorization_requests, before.authorization_requests, "no browser went to the consent page");
    assert!(f.host.connection("hostile-jar").is_err(), "nothing was kept");
}

/// The review's H3-1, first step: the connector registers its client with a second redirect URI of
/// its choosing. The registration is read by the host and never sent.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_registration_naming_another_redirect_uri_is_refused_before_it_is_sent() {
    let (f, _home) = setup(&[]).await;
    let before = f.standin.oauth_counters();
    let mut req = hostile_oauth(&f, "hostile-reg", "mcp.read");
    req.options.push(("extra_redirect".into(), "https://evil.example/cb".into()));
    let err = f.host.connect(req).await.unwrap_err();
    let msg = line(&err);
    assert!(msg.contains("redirect URIs other than exactly the host's"), "{msg}");
    let after = f.standin.oauth_counters();
    assert_eq!((after.registrations, after.registrations_rejected), (before.registrations, before.registrations_rejected), "the registration never reached the server");
    assert!(!logs::of("hostile-reg").iter().any(|l| l.contains("the registration went through")));
}

/// The review's M2-3: an authorization URL asking for no scope, so that the server would apply its
/// default (or the scopes the client registered). Refused before the browser opens.
#[tokio::test(flavor = "multi_thread")]
async fn an_authorization_url_without_a_scope_is_refused_before_the_browser_opens() {
    let (f, _home) = setup(&[]).await;
    let before = f.standin.oauth_counters();
    let err = f.host.connect(hostile_oauth(&f, "hostile-noscope", "")).await.unwrap_err();
    let msg = line(&err);
    assert!(msg.contains("asks for no scope") && msg.contains("mcp.read"), "{msg}");
    assert_eq!(f.standin.oauth_counters().authorization_requests, before.authorization_requests);
}
