//! A misbehaving or hostile vendor server, through the real Close connector and host: every fault of
//! the stand-in ends in a clear one-line error within the call's deadline, and the connection keeps
//! working once the server behaves again. Nothing crashes, nothing hangs, no write call leaves.

use close_standin::{FaultTarget, RateLimitFault, ResponseMode, StandInConfig, Switches};
use e2e::claribi_host::errors::{ConnectorError, HostError};
use e2e::claribi_host::policy::{Grant, Limits, Policy};
use e2e::{catalog_read_tools, catalog_write_tools, Fixture};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const MODES: [ResponseMode; 2] = [ResponseMode::Json, ResponseMode::Sse];

async fn connected(mode: ResponseMode) -> Fixture {
    let f = Fixture::start(mode).await;
    f.connect("close").await.unwrap();
    // Tight limits so a misbehaving server is cut off fast.
    let policy = Policy {
        connection_urls: true,
        grant: Grant::parse_list([f.origin()]).unwrap(),
        limits: Limits {
            call_timeout: Duration::from_secs(3),
            max_response_bytes: 4 * 1024 * 1024,
            ..Limits::default()
        },
        tools: Default::default(),
    };
    f.host.set_policy("close", &policy).unwrap();
    f
}

/// The call fails with an error matching `expected`, in one line, within the deadline.
async fn fails(f: &Fixture, expected: impl Fn(&HostError) -> bool, what: &str) -> HostError {
    let started = Instant::now();
    let err = f.host.call_tool("close", "org_info", "{}").await.expect_err(what);
    assert!(started.elapsed() < Duration::from_secs(6), "{what}: took {:?}", started.elapsed());
    assert!(expected(&err), "{what}: unexpected error {err:?}");
    let msg = err.to_string();
    assert!(!msg.contains('\n') && !msg.is_empty(), "{what}: {msg:?}");
    err
}

async fn recovers(f: &Fixture) {
    f.standin.clear_faults();
    let out = f.host.call_tool("close", "org_info", "{}").await;
    assert!(out.is_ok(), "the connection works again: {out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_is_a_protocol_error() {
    for mode in MODES {
        let f = connected(mode).await;
        f.standin.set_fault_target(FaultTarget::ToolsCall);
        f.standin.set_malformed_json(true);
        let e = fails(&f, |e| matches!(e, HostError::Connector(ConnectorError::Protocol { .. })), "malformed").await;
        assert!(e.to_string().contains("protocol error"), "{e}");
        recovers(&f).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_cut_before_the_response_is_a_clear_error() {
    for mode in MODES {
        let f = connected(mode).await;
        f.standin.set_fault_target(FaultTarget::ToolsCall);
        f.standin.set_truncated_sse(true);
        fails(
            &f,
            |e| matches!(e, HostError::Connector(ConnectorError::Protocol { .. } | ConnectorError::Unavailable { .. })),
            "truncated",
        )
        .await;
        recovers(&f).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_500_every_few_requests_is_an_upstream_error_and_the_rest_succeed() {
    let f = connected(ResponseMode::Json).await;
    f.standin.set_fail_every_nth(Some(3));
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..9 {
        match f.host.call_tool("close", "org_info", "{}").await {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(matches!(e, HostError::Connector(ConnectorError::Upstream { status: 500, .. })), "{e:?}");
                assert!(e.to_string().contains("Retry later"), "{e}");
                failed += 1;
            }
        }
    }
    assert!(failed >= 2 && ok >= 5, "ok {ok}, failed {failed}");
    assert_eq!(f.standin.counters().faults_injected.internal_errors, failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_with_a_long_reset_is_surfaced_with_its_retry_time() {
    let f = connected(ResponseMode::Json).await;
    f.standin.set_rate_limit(Some(RateLimitFault::new(100, 30, 5)));
    let e = fails(&f, |e| matches!(e, HostError::Connector(ConnectorError::RateLimited { .. })), "429").await;
    let HostError::Connector(ConnectorError::RateLimited { retry_after_ms, .. }) = &e else { unreachable!() };
    assert_eq!(*retry_after_ms, Some(30_000));
    assert!(e.to_string().contains("Retry in 30.0 s"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_rate_limit_is_retried_once_after_its_reset() {
    let f = connected(ResponseMode::Json).await;
    f.standin.set_rate_limit(Some(RateLimitFault::new(100, 1, 1)));
    let started = Instant::now();
    f.host.call_tool("close", "org_info", "{}").await.expect("retried after the 1 s reset");
    assert!(started.elapsed() >= Duration::from_millis(900), "waited for the reset: {:?}", started.elapsed());
    assert_eq!(f.standin.counters().faults_injected.rate_limited, 1);
    // Twice in a row: one retry only, then the error.
    f.standin.set_rate_limit(Some(RateLimitFault::new(100, 1, 2)));
    fails(&f, |e| matches!(e, HostError::Connector(ConnectorError::RateLimited { .. })), "429 twice").await;
    assert_eq!(f.standin.counters().faults_injected.rate_limited, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_result_is_cut_while_it_streams() {
    for mode in MODES {
        let f = connected(mode).await;
        f.standin.set_huge_result_bytes(Some(1 << 30));
        let e = fails(&f, |e| matches!(e, HostError::Connector(ConnectorError::DeniedByPolicy { .. })), "huge").await;
        assert!(e.to_string().contains("max_response_bytes"), "{e}");
        recovers(&f).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_server_hits_the_call_deadline() {
    for mode in MODES {
        let f = connected(mode).await;
        f.standin.set_fault_target(FaultTarget::ToolsCall);
        f.standin.set_slow_ms(Some(20_000));
        let e = fails(&f, |e| matches!(e, HostError::Deadline { .. }), "slow").await;
        assert!(e.to_string().contains("3000 ms"), "{e}");
        recovers(&f).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_host_is_not_followed_there() {
    let f = connected(ResponseMode::Json).await;
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_url = format!("http://{}/mcp", trap.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = trap.accept().await {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    f.standin.set_redirect_to(Some(trap_url));
    fails(
        &f,
        |e| matches!(e, HostError::Connector(ConnectorError::Upstream { .. } | ConnectorError::DeniedByPolicy { .. })),
        "redirect",
    )
    .await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing reached the redirect target");
    recovers(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_listing_every_tool_with_lying_annotations_still_yields_only_read_tools() {
    let f = Fixture::with_config(StandInConfig {
        switches: Switches { ignore_scope_filter: true, lying_annotations: true, ..Switches::default() },
        ..StandInConfig::default()
    })
    .await;
    f.connect("close").await.unwrap();
    let listing = f.host.list_tools("close").await.unwrap();
    let listed: BTreeSet<String> = listing.tools.iter().map(|t| t.name.clone()).collect();
    assert_eq!(listed, catalog_read_tools().into_iter().collect::<BTreeSet<_>>());
    assert_eq!(listing.blocked.len(), catalog_write_tools().len());
    for w in catalog_write_tools() {
        let e = f.host.call_tool("close", &w, r#"{"id":"lead_x"}"#).await.unwrap_err();
        assert!(matches!(e, HostError::Blocked { .. }), "{w}: {e:?}");
    }
    assert_eq!(f.standin.counters().write_tool_calls, 0, "no write request left the host");
}
