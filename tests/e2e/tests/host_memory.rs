//! What a hostile connector can make the host hold, measured in a process of its own (the other
//! test binaries run many tests at once, which would blur the figures): a flood of `wasi:http` fields
//! with 60 KiB values (before the host memory budget, one `claribi-host call` grew to 1.3 GB in 30 s),
//! and the largest log line a 32 MiB instance can build. Each call fails with a one-line error, the
//! process's resident memory stays within a small bound, and a Close connection is served meanwhile.

use e2e::claribi_host::policy::Limits;
use e2e::hostile::{assert_close_still_serves, connect_hostile, fixture_resolving, tight_limits, Behaviour, TestServer, HOSTILE_KEY};
use serde_json::json;
use std::time::Duration;

/// The process's resident memory now and at its peak so far, in MiB (Linux `/proc/self/status`).
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc/self/status");
    let kib = |key: &str| {
        status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_connector_cannot_make_the_host_hold_much_memory() {
    let f = fixture_resolving(&[]).await;
    f.connect("close").await.expect("the Close connection connects");
    let home = TestServer::start("127.0.0.1", Behaviour::Ok).await;
    let limits = Limits { call_timeout: Duration::from_secs(30), ..tight_limits() };
    connect_hostile(&f.host, "hostile", &home, &[], limits).await.unwrap();
    // Warm up: one ordinary call of each connection, so that what follows measures the floods only.
    f.host.call_tool("hostile", "ping", "{}").await.unwrap();
    assert_close_still_serves(&f).await;

    // 100 000 fields of 60 KiB each, all kept: 5.9 GB if the host held them.
    let (before, peak_before) = rss_mib();
    let args = json!({ "count": 100_000, "value_kib": 60 }).to_string();
    let (flood, ()) = tokio::join!(f.host.call_tool("hostile", "fields_flood", &args), async {
        assert_close_still_serves(&f).await;
    });
    let err = flood.unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.kind(), "host-memory", "{msg}");
    assert!(!msg.contains('\n') && !msg.contains(HOSTILE_KEY), "{msg}");
    assert!(msg.contains("8 MiB") && msg.contains("wasi:http fields"), "{msg}");
    let (after, peak) = rss_mib();
    println!(
        "fields flood (host_memory_mib = 8): stopped with `{msg}`; RSS {before:.1} → {after:.1} MiB, peak {peak_before:.1} → {peak:.1} MiB"
    );
    assert!(peak - peak_before < 48.0, "the peak grew by {:.1} MiB", peak - peak_before);

    // The largest log line a 32 MiB instance can build: refused by the copy bound before any host
    // function reads it, or cut to 2 KiB before it is masked.
    let (before, peak_before) = rss_mib();
    let r = f.host.call_tool("hostile", "huge_log", &json!({ "bytes": 24 << 20 }).to_string()).await;
    let (after, peak) = rss_mib();
    match &r {
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "{msg}");
            assert_eq!(e.kind(), "host-memory", "{msg}");
            assert!(msg.contains("more than 4 MiB at once"), "{msg}");
        }
        Ok(_) => {}
    }
    println!("24 MiB log line: {:?}; RSS {before:.1} → {after:.1} MiB, peak {peak_before:.1} → {peak:.1} MiB", r.as_ref().err().map(|e| e.to_string()));
    assert!(peak - peak_before < 64.0, "the peak grew by {:.1} MiB", peak - peak_before);

    // Both connections still answer.
    assert_close_still_serves(&f).await;
    let pong = f.host.call_tool("hostile", "ping", "{}").await.expect("the hostile connection answers again");
    assert_eq!(e2e::json_of(&pong)["pong"], true);
}
