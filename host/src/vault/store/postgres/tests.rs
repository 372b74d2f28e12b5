//! The PostgreSQL store against the SQLite store as its reference: the same operations, in the same
//! order, must give the same answers (timestamps aside); then what only a fleet needs — migrations
//! raced by two replicas, the advisory credential lock, the generation counter's locks, the fleet's
//! sealing key.

use super::schema;
use super::testing::TestDatabase;
use crate::policy::pinning::Pin;
use crate::policy::rate_budget::Observed;
use crate::policy::Target;
use crate::vault::credentials::{Binding, Credential, Kind};
use crate::vault::sealing::MasterKeys;
use crate::vault::store::tests_support::record;
use crate::vault::store::*;
use zeroize::Zeroizing;

fn api_key(v: &str) -> Credential {
    let endpoint = Target::parse("https://mcp.close.com/mcp").unwrap();
    Credential::new(Kind::ApiKey, Zeroizing::new(v.into()), Binding::api_key(&endpoint, Some("close-api-key")))
}

/// A tool pinned with this digest (its definition names it).
fn tool_pin(tool: &str, digest: &str) -> Pin {
    Pin { tool: tool.into(), digest: digest.into(), definition: format!("{{\"name\":\"{tool}\"}}") }
}

/// A connection as read back, with the clock's stamps removed.
fn unstamped(c: Option<ConnectionRecord>) -> String {
    format!("{:?}", c.map(|c| ConnectionRecord { created_at: 0, updated_at: 0, ..c }))
}

fn opened(s: Option<StoredSecret>) -> String {
    match s {
        None => "none".into(),
        Some(StoredSecret::Own(v)) => format!("own {}", v.as_str()),
        Some(StoredSecret::Legacy(v)) => format!("legacy {}", v.as_str()),
        Some(StoredSecret::Credential(c)) => format!("credential {:?} {} {:?} {}", c.kind, c.placeholder.as_str(), c.binding, c.value.as_str()),
    }
}

/// Every store operation, each answer written down (the credential is the same value on both, so its
/// placeholder is too).
fn script(s: &Store, keys: &MasterKeys, key: &Credential) -> Vec<String> {
    let mut out = Vec::new();
    let mut say = |what: &str, v: String| out.push(format!("{what}: {v}"));

    // Connections.
    say("insert a", format!("{:?}", s.insert_connection(&record("a"))));
    say("insert b", format!("{:?}", s.insert_connection(&record("b"))));
    say("insert a again", format!("{:?}", s.insert_connection(&ConnectionRecord { id: "other".into(), ..record("a") })));
    let g0 = s.generation().unwrap();
    s.mark_connected("conn_a", Some("Org"), &["mcp.read".into()], &["wider".into()]).unwrap();
    s.set_oauth("conn_a", &Default::default()).unwrap();
    s.set_granted_scopes("conn_a", &["mcp.read".into(), "x".into()]).unwrap();
    s.set_plugin("conn_a", "digest-2", Some("x-key")).unwrap();
    s.set_policy("conn_a", &crate::policy::Policy::default()).unwrap();
    s.set_scopes("conn_a", &["mcp.read".into()]).unwrap();
    s.set_status("conn_a", Status::NeedsReconnect, Some("expired")).unwrap();
    say("generation moved by record writes", format!("{}", s.generation().unwrap() > g0));
    say("a", unstamped(s.connection("a").unwrap()));
    say("missing", unstamped(s.connection("zzz").unwrap()));
    say("all", format!("{:?}", s.connections().unwrap().iter().map(|c| c.name.clone()).collect::<Vec<_>>()));
    say("rename to taken", format!("{:?}", s.rename_connection("conn_b", "a")));
    say("rename missing", format!("{:?}", s.rename_connection("conn_zzz", "q")));
    say("rename", format!("{:?}", s.rename_connection("conn_b", "c")));
    say("renamed", unstamped(s.connection("c").unwrap()));

    // State.
    let g1 = s.generation().unwrap();
    s.set_state("conn_a", "cursor", Some("1")).unwrap();
    s.set_state("conn_a", "cursor", Some("2")).unwrap();
    s.set_state("conn_a", "other", Some("o")).unwrap();
    say("state", format!("{:?} {:?}", s.state("conn_a", "cursor"), s.state_key_count("conn_a")));
    s.set_state("conn_a", "other", None).unwrap();
    say("state deleted", format!("{:?} {:?}", s.state("conn_a", "other"), s.state_key_count("conn_a")));
    s.set_shared_state("close", "k", Some("v")).unwrap();
    say("shared", format!("{:?} {:?}", s.shared_state("close", "k"), s.shared_state_key_count("close")));
    s.set_shared_state("close", "k", None).unwrap();
    say("shared deleted", format!("{:?} {:?}", s.shared_state("close", "k"), s.shared_state_key_count("close")));
    say("state writes leave the generation", format!("{}", s.generation().unwrap() == g1));

    // Listings.
    let listing = r#"{"tools":[{"name":"find_leads"},{"name":"org_info"}],"ttl_ms":5000,"filtered_by":"fp1"}"#;
    s.set_tool_cache("conn_a", listing, r#"["delete_lead"]"#).unwrap();
    say("listing", format!("{:?}", s.tool_cache("conn_a").unwrap().map(|(_, l)| l)));
    let listed = |t: &str| format!("{:?}", s.listed_tool("conn_a", t).unwrap().map(|l| ListedTool { listed_at: 0, ..l }));
    say("listed org_info", listed("org_info"));
    say("listed delete_lead", listed("delete_lead"));
    say("listed nothing", format!("{:?}", s.listed_tool("conn_b", "x").unwrap()));
    say("blocked", format!("{:?}", s.blocked_tools("conn_a")));
    s.set_tool_cache("conn_a", r#"{"tools":[]}"#, "[]").unwrap();
    say("listed without hints", listed("org_info"));

    // Secrets.
    say(
        "store secrets",
        format!(
            "{:?}",
            s.update_secrets(keys, "conn_a", &[("expiry".into(), Some(SecretWrite::Own("r1".into()))), ("api-key".into(), Some(SecretWrite::Credential(key.clone())))])
        ),
    );
    say("secret own", opened(s.secret(keys, "conn_a", "expiry").unwrap()));
    say("secret credential", opened(s.secret(keys, "conn_a", "api-key").unwrap()));
    say("by placeholder", format!("{:?}", s.credential_by_placeholder(keys, "conn_a", &key.placeholder).unwrap().map(|c| c.value.to_string())));
    say("all secrets", format!("{:?}", s.secrets(keys, "conn_a").unwrap().into_iter().map(|(n, v)| format!("{n}={}", opened(Some(v)))).collect::<Vec<_>>()));
    say("summaries", format!("{:?}", s.secret_summaries("conn_a")));
    say("names", format!("{:?}", s.secret_names("conn_a")));
    say(
        "a bad batch",
        format!("{:?}", s.update_secrets(keys, "conn_a", &[("expiry".into(), Some(SecretWrite::Own("r2".into()))), ("".into(), Some(SecretWrite::Own("x".into())))])),
    );
    say(
        "one credential, two names",
        format!(
            "{:?}",
            s.update_secrets(keys, "conn_b", &[("a".into(), Some(SecretWrite::Credential(key.clone()))), ("b".into(), Some(SecretWrite::Credential(key.clone())))])
        ),
    );
    say("nothing of it kept", format!("{:?} {}", s.secret_names("conn_b"), opened(s.secret(keys, "conn_a", "expiry").unwrap())));
    s.update_secrets(keys, "conn_a", &[("expiry".into(), None)]).unwrap();
    say("deleted", format!("{:?}", s.secret_names("conn_a")));
    say("key ids", format!("{}", s.key_ids_in_use().unwrap() == vec![keys.current_id().to_string()]));

    // Dashboard pins.
    let pin = PinRecord {
        id: "pin_1".into(),
        connection_id: "conn_a".into(),
        title: "Open".into(),
        kind: "tool".into(),
        target: "find_opportunities".into(),
        arguments: "{}".into(),
        chart: "{}".into(),
        created_at: 5,
    };
    s.insert_pin(&pin).unwrap();
    s.insert_pin(&PinRecord { id: "pin_2".into(), ..pin.clone() }).unwrap();
    say("pin for no connection refused", format!("{}", s.insert_pin(&PinRecord { id: "pin_3".into(), connection_id: "conn_none".into(), ..pin.clone() }).is_err()));
    say("pins", format!("{:?}", s.pins()));
    say("unpin", format!("{:?} {:?}", s.delete_pin("pin_2"), s.delete_pin("pin_2")));

    // Tool pins, reviews, approvals.
    say("not pinned yet", format!("{:?}", s.tools_pinned("conn_a")));
    s.pin_tools("conn_a", &[tool_pin("find_leads", "d1"), tool_pin("org_info", "d2")], "connect", "connect", true).unwrap();
    say("pinned", format!("{:?} {:?}", s.tools_pinned("conn_a"), s.tool_pins("conn_a")));
    say("pinning dropped the listing", format!("{:?}", s.tool_cache("conn_a").unwrap().is_none()));
    let review = |t: &str, d: &str| PendingReview { tool: t.into(), kind: "changed".into(), digest: d.into(), definition: "{}".into(), detail: "diff".into(), seen_at: 0 };
    let fresh = s.set_pending_reviews("conn_a", &[review("org_info", "d3"), review("new_tool", "d4")]).unwrap();
    say("fresh reviews", format!("{:?}", fresh.iter().map(|r| r.tool.clone()).collect::<Vec<_>>()));
    let again = s.set_pending_reviews("conn_a", &[review("org_info", "d3")]).unwrap();
    say("nothing fresh the second time", format!("{}", again.is_empty()));
    say("reviews", format!("{:?} {:?}", s.pending_reviews("conn_a").unwrap().iter().map(|r| (r.tool.clone(), r.seen_at > 0)).collect::<Vec<_>>(), s.pending_review_count("conn_a")));
    s.pin_tools("conn_a", &[tool_pin("org_info", "d3")], "operator", "review", false).unwrap();
    say("approved leaves the reviews", format!("{:?}", s.pending_review_count("conn_a")));
    say(
        "approvals",
        format!("{:?}", s.approvals("conn_a").unwrap().iter().map(|a| (a.tool.clone(), a.digest.clone(), a.approved_by.clone(), a.how.clone())).collect::<Vec<_>>()),
    );

    // Engine tokens.
    s.insert_engine_token("engine-eu", "aa").unwrap();
    s.insert_engine_token("engine-us", "bb").unwrap();
    say("token taken", format!("{:?}", s.insert_engine_token("engine-eu", "cc")));
    say("by hash", format!("{:?} {:?}", s.engine_token_by_hash("aa"), s.engine_token_by_hash("zz")));
    say("revoke", format!("{:?} {:?}", s.revoke_engine_token("engine-eu"), s.revoke_engine_token("engine-eu")));
    say("after revoking", format!("{:?} {:?} {:?}", s.engine_token_by_hash("aa"), s.active_engine_tokens(), s.engine_tokens_made()));
    say("tokens", format!("{:?}", s.engine_tokens().unwrap().iter().map(|t| (t.name.clone(), t.revoked_at.is_some())).collect::<Vec<_>>()));

    // Audit trail.
    for (at, conn) in [(1_000, "a"), (2_000, "c"), (3_000, "a"), (4_000, "a")] {
        s.record_audit(&AuditEntry {
            at_ms: at,
            engine: "e".into(),
            connection: conn.into(),
            tool: "t".into(),
            arguments_sha256: "00".into(),
            bytes: 7,
            duration_ms: 3,
            outcome: "ok".into(),
            replica: "r".into(),
        })
        .unwrap();
    }
    let q = |connection: Option<&str>, since_ms: Option<i64>, limit: usize| {
        s.audit(&AuditQuery { connection: connection.map(str::to_string), since_ms, limit }).unwrap().iter().map(|e| e.at_ms).collect::<Vec<_>>()
    };
    say("audit", format!("{:?} {:?} {:?} {:?}", q(None, None, 100), q(Some("a"), None, 100), q(None, Some(2_500), 100), q(Some("a"), None, 2)));

    // Continuations.
    let rows = |k: &str| SealedRows { key_id: k.into(), nonce: vec![1, 2], ciphertext: vec![3, 4, 5] };
    s.put_continuation("cur1", 10_000, 1_000, "a", "src1", &rows("k1")).unwrap();
    s.put_continuation("cur2", 2_000, 1_000, "a", "src2", &rows("k2")).unwrap();
    s.put_continuation("cur3", 10_000, 1_000, "c", "src3", &rows("k3")).unwrap();
    s.put_continuation("cur4", 10_000, 1_000, "a", "src4", &rows("k4")).unwrap();
    say("source", format!("{:?} {:?}", s.continuation_source("cur1", 1_500), s.continuation_source("cur2", 2_500)));
    let taken = |c: &str, now: i64| format!("{:?}", s.take_continuation(c, now).unwrap().map(|r| (r.key_id, r.nonce, r.ciphertext)));
    say("take", format!("{} {} {}", taken("cur1", 1_500), taken("cur1", 1_500), taken("cur2", 2_500)));

    // Rate budgets.
    let scopes = [("key:conn_a".to_string(), 1), ("org:close:https://x:o".to_string(), 3)];
    s.learn_rate_budget(&scopes, Observed { limit: Some(2), remaining: 2, reset_ms: 10_000 }, 0).unwrap();
    let takes: Vec<String> = (1..=3).map(|t| format!("{:?}", s.take_rate_budget(&scopes, t).unwrap())).collect();
    say("takes", format!("{takes:?}"));
    say("org budget", format!("{:?}", s.rate_budget("org:close:https://x:o")));
    s.unmetered_rate_budget(&[("key:new".to_string(), 1)], 5).unwrap();
    say("unmetered", format!("{:?}", s.rate_budget("key:new")));

    // A disconnect takes everything of the connection with it.
    say("delete", format!("{:?} {:?}", s.delete_connection("conn_a"), s.delete_connection("conn_a")));
    say(
        "gone with it",
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            s.secret_names("conn_a"),
            s.state_key_count("conn_a"),
            s.pins().map(|p| p.len()),
            s.tool_pins("conn_a").map(|p| p.len()),
            s.approvals("conn_a").map(|p| p.len()),
            s.rate_budget("key:conn_a"),
            s.continuation_source("cur4", 1_500),
            s.continuation_source("cur3", 1_500),
        ),
    );
    say("kept", format!("{:?}", s.rate_budget("org:close:https://x:o").map(|b| b.is_some())));
    out
}

#[test]
fn the_postgresql_store_answers_every_operation_as_the_sqlite_store_does() {
    let db = TestDatabase::create();
    let keys = MasterKeys::generate();
    let key = api_key("sk_secret_value_123");
    let reference = script(&Store::in_memory().unwrap(), &keys, &key);
    let pg = Store::open_postgres(&db.url).unwrap();
    assert!(pg.is_shared());
    let got = script(&pg, &keys, &key);
    assert_eq!(got.len(), reference.len());
    for (g, r) in got.iter().zip(&reference) {
        assert_eq!(g, r);
    }
    assert_eq!(pg.schema_version().unwrap(), schema::MIGRATIONS.last().unwrap().0);
}

#[test]
fn secrets_in_postgresql_are_sealed_and_a_copied_ciphertext_does_not_open() {
    let db = TestDatabase::create();
    let keys = MasterKeys::generate();
    let s = Store::open_postgres(&db.url).unwrap();
    s.insert_connection(&record("a")).unwrap();
    s.insert_connection(&record("b")).unwrap();
    s.update_secrets(&keys, "conn_a", &[("api-key".into(), Some(SecretWrite::Credential(api_key("sk_secret_value_123"))))]).unwrap();
    // The clear value is nowhere in the database.
    let pg = s.postgres().unwrap();
    let dump: Vec<String> = pg
        .rows("SELECT connection_id || name || key_id || encode(nonce, 'escape') || encode(ciphertext, 'escape') || coalesce(binding, '') FROM secrets", super::p![])
        .unwrap()
        .iter()
        .map(|r| super::col::<String>(r, 0).unwrap())
        .collect();
    assert_eq!(dump.len(), 1);
    assert!(!dump[0].contains("sk_secret_value_123"));
    // Moved to another connection, it fails authentication instead of opening.
    pg.exec("UPDATE secrets SET connection_id = 'conn_b'", super::p![]).unwrap();
    let e = s.secret(&keys, "conn_b", "api-key").err().expect("bound to its connection");
    assert!(e.contains("failed authentication"), "{e}");
}

#[test]
fn replicas_opening_a_new_database_at_once_migrate_it_once() {
    let db = TestDatabase::create();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || Store::open_postgres(&url).map(|s| s.schema_version()))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap().unwrap(), schema::MIGRATIONS.last().unwrap().0);
    }
}

#[test]
fn an_unreachable_database_is_one_line_that_says_what_to_do() {
    // Port 1 on loopback: nothing listens there.
    let e = Store::open_postgres("postgres://claribi:hunter2@127.0.0.1:1/none").err().expect("refused");
    assert!(e.contains("cannot reach PostgreSQL at postgres://claribi:***@127.0.0.1:1/none"), "{e}");
    assert!(e.contains("CLARIBI_DATABASE_URL") && !e.contains("hunter2") && !e.contains('\n'), "{e}");
    let e = Store::open_postgres("postgres://[bad").err().expect("refused");
    assert!(e.contains("not a PostgreSQL URL"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_credential_lock_holder_works_through_the_store_while_the_other_replica_waits() {
    let db = TestDatabase::create();
    let (a, b) = (Store::open_postgres(&db.url).unwrap(), Store::open_postgres(&db.url).unwrap());
    a.insert_connection(&record("one")).unwrap();
    let (locks_a, locks_b) = (a.postgres().unwrap().locks(), b.postgres().unwrap().locks());
    let held = locks_a.lock("conn_one").await.unwrap();
    // Other connections are independent.
    tokio::time::timeout(std::time::Duration::from_secs(5), locks_b.lock("conn_other")).await.expect("another connection's lock").unwrap();
    // Replica b waits for the same connection's lock, many times over …
    let waiters: Vec<_> = (0..40)
        .map(|_| {
            let l = locks_b.clone();
            tokio::spawn(async move { l.lock("conn_one").await.map(drop) })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(waiters.iter().all(|w| !w.is_finished()), "the lock is held by replica a");
    // … while the holder still reads and writes through its store (its pool is not the lock's).
    let writes = tokio::task::spawn_blocking(move || {
        for i in 0..50 {
            a.set_state("conn_one", "access", Some(&i.to_string())).unwrap();
        }
        a
    });
    let a = tokio::time::timeout(std::time::Duration::from_secs(10), writes).await.expect("the holder is never starved").unwrap();
    assert_eq!(a.state("conn_one", "access").unwrap().as_deref(), Some("49"));
    drop(held);
    for w in waiters {
        tokio::time::timeout(std::time::Duration::from_secs(10), w).await.expect("each waiter gets the lock in turn").unwrap().unwrap();
    }
}

#[test]
fn a_replica_without_the_fleets_key_is_refused_and_rotation_waits_for_every_replica() {
    let db = TestDatabase::create();
    let random = || {
        use base64::Engine as _;
        use rand::RngCore;
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    let (old_b64, new_b64) = (random(), random());
    let keys = |list: &str| std::sync::Arc::new(MasterKeys::from_list(list).unwrap());
    let (old, new) = (keys(&old_b64), keys(&new_b64));
    let first = Store::open_postgres(&db.url).unwrap();
    first.join_fleet("replica-a", &old).unwrap();
    first.insert_connection(&record("a")).unwrap();
    first.update_secrets(&old, "conn_a", &[("api-key".into(), Some(SecretWrite::Credential(api_key("sk_secret_value_123"))))]).unwrap();

    // A replica holding another key only could open nothing: refused.
    let e = Store::open_postgres(&db.url).unwrap().join_fleet("replica-x", &keys(&new_b64)).err().expect("refused");
    assert!(e.contains(old.current_id()) && e.contains("does not hold"), "{e}");

    // The new key listed first, the old after it: it joins, and seals with the fleet's key (the old).
    let both = keys(&format!("{new_b64},{old_b64}"));
    let second = Store::open_postgres(&db.url).unwrap();
    second.join_fleet("replica-b", &both).unwrap();
    assert_eq!(both.current_id(), old.current_id(), "the fleet's key seals, whatever the order of the list");
    // Replica a does not hold the new key: the rotation is refused and changes nothing.
    let operator = MasterKeys::from_list(&format!("{new_b64},{old_b64}")).unwrap();
    let e = second.rotate_fleet(&operator).err().expect("refused while replica-a lacks the new key");
    assert!(e.contains("replica-a") && e.contains("does not hold master key") && e.contains("restart it"), "{e}");
    assert_eq!(second.key_ids_in_use().unwrap(), vec![old.current_id().to_string()]);
    assert_eq!(both.current_id(), old.current_id());
    // Replica a stops; the rotation moves replica b to the new key and re-seals everything under it.
    drop(first);
    assert_eq!(second.rotate_fleet(&operator).unwrap(), 1);
    assert_eq!(both.current_id(), new.current_id(), "replica b followed the fleet's key");
    assert_eq!(second.key_ids_in_use().unwrap(), vec![new.current_id().to_string()]);
    assert_eq!(second.secret_value(&new, "conn_a", "api-key").unwrap().unwrap().as_str(), "sk_secret_value_123");
    // What replica b seals from now on opens with the new key alone.
    second.update_secrets(&both, "conn_a", &[("expiry".into(), Some(SecretWrite::Own("later".into())))]).unwrap();
    assert_eq!(second.secret_value(&new, "conn_a", "expiry").unwrap().unwrap().as_str(), "later");
    // A process left with the old key alone is refused.
    let e = Store::open_postgres(&db.url).unwrap().join_fleet("replica-c", &old).err().expect("refused");
    assert!(e.contains(new.current_id()), "{e}");
}

#[test]
fn a_database_on_another_machine_needs_tls_and_tls_is_verified() {
    // Refused before anything is sent.
    let e = Store::open_postgres("postgres://claribi@db.example.com:5432/fleet").err().expect("refused");
    assert!(e.contains("sslmode=require") && e.contains("on another machine"), "{e}");
    // The local server speaks TLS with a certificate for `localhost` (Debian's own, self-signed):
    // untrusted, the handshake fails and says so in one line …
    let db = TestDatabase::create();
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_host(Some("localhost")).unwrap();
    url.set_query(Some("sslmode=require"));
    let e = Store::open_postgres_with_ca(url.as_str(), None).err().expect("an unknown issuer");
    assert!(e.contains("cannot reach PostgreSQL") && e.contains("certificate") && !e.contains('\n'), "{e}");
    // … trusted as the operator's CA, every session is TLS.
    let ca = Store::open_postgres(&db.url)
        .unwrap()
        .postgres()
        .unwrap()
        .rows("SELECT current_setting('ssl_cert_file')", super::p![])
        .map(|r| super::col::<String>(&r[0], 0).unwrap())
        .unwrap();
    let s = Store::open_postgres_with_ca(url.as_str(), Some(std::path::Path::new(&ca))).unwrap();
    let ssl: Vec<bool> = s
        .postgres()
        .unwrap()
        .rows("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", super::p![])
        .unwrap()
        .iter()
        .map(|r| super::col(r, 0).unwrap())
        .collect();
    assert_eq!(ssl, vec![true]);
    s.insert_connection(&record("over-tls")).unwrap();
    assert!(s.connection("over-tls").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_waiter_that_gives_up_leaves_no_session_waiting() {
    let db = TestDatabase::create();
    let (a, b) = (Store::open_postgres(&db.url).unwrap(), Store::open_postgres(&db.url).unwrap());
    let held = a.postgres().unwrap().locks().lock("conn_one").await.unwrap();
    let waiting = || {
        a.postgres().unwrap().rows("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", super::p![]).map(|r| super::col::<i64>(&r[0], 0).unwrap())
    };
    // Ten calls of replica b give up waiting (their deadline passed) …
    let locks_b = b.postgres().unwrap().locks();
    for _ in 0..10 {
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(100), locks_b.lock("conn_one")).await;
        assert!(gave_up.is_err(), "the lock is held by replica a");
    }
    // … and none of their sessions is still waiting for the lock.
    let mut left = i64::MAX;
    for _ in 0..50 {
        left = tokio::task::block_in_place(|| waiting().unwrap());
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "sessions still waiting after their callers gave up");
    drop(held);
    tokio::time::timeout(std::time::Duration::from_secs(5), locks_b.lock("conn_one")).await.expect("free once released").unwrap();
}

/// Writes that touch several counted tables (an operator approving tools: pins, then the connection,
/// then the catalogue) race single-row writes of another replica (a relisted catalogue, a status) on
/// the same connection. Were the generation counter bumped by each row as it is written, the approval
/// would hold the counter's row while waiting for a row the other replica holds while waiting for the
/// counter — a lock cycle PostgreSQL breaks by aborting one of them. Bumped at commit, every write
/// goes through.
#[test]
fn replicas_writing_one_connection_at_once_never_deadlock_on_the_generation_counter() {
    let db = TestDatabase::create();
    let (a, b) = (Store::open_postgres(&db.url).unwrap(), Store::open_postgres(&db.url).unwrap());
    a.insert_connection(&record("one")).unwrap();
    let g0 = a.generation().unwrap();
    const ROUNDS: usize = 150;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let approving = {
        let a = a.clone();
        std::thread::spawn(move || {
            (0..ROUNDS)
                .filter_map(|i| {
                    let pins = [tool_pin("find_leads", &format!("d{i}")), tool_pin("org_info", &format!("e{i}"))];
                    a.pin_tools("conn_one", &pins, "operator", "review", true).err()
                })
                .collect::<Vec<_>>()
        })
    };
    let relisting: Vec<_> = (0..2)
        .map(|t| {
            let b = b.clone();
            std::thread::spawn(move || {
                (0..ROUNDS)
                    .filter_map(|i| {
                        let listing = format!(r#"{{"tools":[{{"name":"t{t}_{i}"}}]}}"#);
                        b.set_tool_cache("conn_one", &listing, "[]")
                            .and_then(|_| b.set_status("conn_one", Status::Ready, None))
                            .and_then(|_| b.mark_connected("conn_one", Some("Org"), &["mcp.read".into()], &[]))
                            .err()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut failures = approving.join().unwrap();
    for r in relisting {
        failures.extend(r.join().unwrap());
    }
    assert!(failures.is_empty(), "{} of {} writes failed, first: {}", failures.len(), ROUNDS * 7, failures[0]);
    // Every committed write moved the counter, and the last approval is what both replicas read.
    assert!(b.generation().unwrap() >= g0 + (ROUNDS * 3) as i64, "the counter follows every write");
    let digests: Vec<_> = b.tool_pins("conn_one").unwrap().into_iter().map(|p| p.digest).collect();
    assert_eq!(digests, [format!("d{}", ROUNDS - 1), format!("e{}", ROUNDS - 1)]);
}
