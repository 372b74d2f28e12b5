//! A fleet on PostgreSQL as its operator runs it through the CLI: migrations reported, a database
//! that cannot be reached said in one line, and a master-key rotation carried through replicas on
//! machines of their own (each its own data directory) without a secret becoming unreadable.

use close_standin::{StandIn, StandInConfig};
use common::*;
use serde_json::{json, Value};
use std::process::Command;

mod common;

fn random_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

/// `claribi-host` as process `i` of `f`, with this master key list.
fn with_key(f: &Fleet, i: usize, keys: &str) -> Command {
    let mut c = f.cmd(i);
    c.env("CLARIBI_MASTER_KEY", keys);
    c
}

#[test]
fn migrate_reports_the_postgresql_schema_and_an_unreachable_database_is_one_line() {
    let f = Fleet::postgres();
    let o = f.cli(&["migrate", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let migrations = v["migrations"].as_array().unwrap();
    assert!(migrations.len() >= 4 && migrations.iter().all(|m| m["applied"] == true), "{v}");
    assert_eq!(v["schema_version"], migrations.last().unwrap()["version"]);
    assert!(v["database"].as_str().unwrap().starts_with("postgres://"), "{v}");

    // A replica of its own (a data directory and the fleet's key, nothing from this machine's home).
    let elsewhere = |database: &str| {
        let mut c = bin();
        c.arg("--data-dir").arg(f.dir(1)).env("CLARIBI_MASTER_KEY", random_key());
        c.args(["--database", database, "connections"]).output().unwrap()
    };
    let o = elsewhere("postgres://claribi:hunter2@127.0.0.1:1/fleet");
    assert_one_line_error(&o, "cannot reach PostgreSQL at postgres://claribi:***@127.0.0.1:1/fleet");
    assert!(!text(&o.stderr).contains("hunter2"));
    let o = elsewhere("mysql://x@127.0.0.1/fleet");
    assert_one_line_error(&o, "is not a PostgreSQL URL");
    // Without the fleet's key a process is refused before it reaches the database, saying where to put it.
    let o = cli(f.dir(2), &["--database", "postgres://claribi@127.0.0.1:1/fleet", "connections"]);
    assert_one_line_error(&o, "needs the fleet's master key: set CLARIBI_MASTER_KEY");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_rotation_moves_the_whole_fleet_and_no_replica_loses_a_secret() {
    let s = StandIn::start(StandInConfig::default()).await.expect("stand-in starts");
    let f = Fleet::postgres();
    let (old, new) = (random_key(), random_key());
    let both = format!("{new},{old}");
    // The operator connects with the fleet's first key; two replicas serve with it.
    connect_close_with(with_key(&f, 0, &old), &s);
    let org = s.dataset().organization.id.clone();
    let org_info = |port: u16, id: u64| async move {
        let (status, _, r) = post(port, None, &call_headers("close__org_info", None), &call(id, "close__org_info", json!({}))).await;
        assert_eq!(status, 200, "{r}");
        r
    };
    let a = serve_with(with_key(&f, 1, &old), &["--http", "127.0.0.1:0"], "replica-a");
    let b = serve_with(with_key(&f, 2, &old), &["--http", "127.0.0.1:0"], "replica-b");
    assert_eq!(org_info(a.port, 1).await["result"]["structuredContent"]["organization"]["id"], org.as_str());

    // Replica b restarts holding the new key too; replica a does not hold it: the rotation is refused.
    tokio::task::block_in_place(|| b.stop());
    let b = serve_with(with_key(&f, 2, &both), &["--http", "127.0.0.1:0"], "replica-b");
    assert_eq!(org_info(b.port, 2).await["result"]["structuredContent"]["organization"]["id"], org.as_str(), "it reads the old key's values");
    let o = tokio::task::block_in_place(|| with_key(&f, 0, &both).args(["rotate-key"]).output().unwrap());
    assert_one_line_error(&o, "does not hold master key");
    assert!(text(&o.stderr).contains("replica `replica-a_"), "{}", text(&o.stderr));

    // Replica a restarts with both too: the rotation goes through, and both replicas keep answering.
    // (A replica stopped by SIGTERM leaves the fleet's registry; one killed counts for 30 s.)
    tokio::task::block_in_place(|| a.stop());
    let a = serve_with(with_key(&f, 1, &both), &["--http", "127.0.0.1:0"], "replica-a");
    let o = tokio::task::block_in_place(|| with_key(&f, 0, &both).args(["rotate-key", "--json"]).output().unwrap());
    assert!(o.status.success(), "rotate-key: {}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["reencrypted"], 1, "the API key, re-sealed: {v}");
    for (port, id) in [(a.port, 3), (b.port, 4)] {
        assert_eq!(org_info(port, id).await["result"]["structuredContent"]["organization"]["id"], org.as_str());
    }

    // The old key leaves every replica: nothing needs it any more.
    tokio::task::block_in_place(|| {
        a.stop();
        b.stop();
    });
    let a = serve_with(with_key(&f, 1, &new), &["--http", "127.0.0.1:0"], "replica-a");
    assert_eq!(org_info(a.port, 5).await["result"]["structuredContent"]["organization"]["id"], org.as_str());
    // A replica left with the old key alone is refused at start, in one line.
    let o = tokio::task::block_in_place(|| with_key(&f, 3, &old).args(["connections"]).output().unwrap());
    assert_one_line_error(&o, "which this process does not hold");
    f.assert_nothing_stored_locally();
}
