//! The Close connector component, in the real host, against the Close stand-in: tools, data,
//! pagination, transports, sessions, errors, grants and persistence.

use close_standin::reference;
use close_standin::{ResponseMode, StandInConfig, Switches};
use e2e::claribi_host::errors::{ConnectorError, HostError};
use e2e::claribi_host::policy::{Grant, Policy};
use e2e::{catalog_read_tools, catalog_write_tools, json_of, Fixture};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const MODES: [ResponseMode; 2] = [ResponseMode::Json, ResponseMode::Sse];

/// A stand-in that speaks only the 2025 (initialize) era.
async fn legacy(mode: ResponseMode) -> Fixture {
    Fixture::with_config(StandInConfig {
        switches: Switches { response_mode: mode, protocol: close_standin::ProtocolMode::Only2025, ..Switches::default() },
        ..StandInConfig::default()
    })
    .await
}

fn names(v: &Value) -> BTreeSet<String> {
    v["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_mcp_read_the_tools_are_exactly_the_catalog_read_tools() {
    for mode in MODES {
        let f = Fixture::start(mode).await;
        f.connect("close").await.unwrap();
        let listing = f.host.list_tools("close").await.unwrap();
        let listed: BTreeSet<String> = listing.tools.iter().map(|t| t.name.clone()).collect();
        let expected: BTreeSet<String> = catalog_read_tools().into_iter().collect();
        assert_eq!(listed, expected, "{mode}");
        assert_eq!(listed.len(), 66);
        for w in catalog_write_tools() {
            assert!(!listed.contains(&w), "write tool {w} listed");
        }
        assert!(listing.blocked.is_empty(), "the server hid the writes itself: {:?}", listing.blocked);
        // Titles, descriptions and schemas came through.
        let find = listing.tools.iter().find(|t| t.name == "find_opportunities").unwrap();
        assert!(find.description.as_deref().unwrap_or("").len() > 20);
        assert_eq!(find.input_schema["type"], "object");
        assert!(find.input_schema["properties"]["status_type"].is_object());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_list_pagination_is_followed_to_the_end() {
    let f = Fixture::with_config(StandInConfig {
        switches: Switches { tools_page_size: Some(7), ..Switches::default() },
        ..StandInConfig::default()
    })
    .await;
    f.connect("close").await.unwrap();
    let before = f.standin.counters().tools_list;
    let listing = f.host.list_tools("close").await.unwrap();
    assert_eq!(listing.tools.len(), catalog_read_tools().len());
    let pages = f.standin.counters().tools_list - before;
    assert_eq!(pages as usize, catalog_read_tools().len().div_ceil(7), "one tools/list request per page");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_implemented_read_tool_returns_what_the_dataset_holds() {
    for mode in MODES {
        let f = Fixture::start(mode).await;
        f.connect("close").await.unwrap();
        let ds = f.standin.dataset();

        let org = f.call_json("close", "org_info", json!({})).await.unwrap();
        assert_eq!(org["organization"]["id"], ds.organization.id);
        assert_eq!(org["organization"]["name"], ds.organization.name);

        let users = f.call_json("close", "org_users", json!({})).await.unwrap();
        let want: BTreeSet<String> = ds.users.iter().map(|u| u.id.clone()).collect();
        assert_eq!(names(&users), want);

        let pipes = f.call_json("close", "find_pipelines_and_opportunity_statuses", json!({})).await.unwrap();
        assert_eq!(names(&pipes), ds.pipelines.iter().map(|p| p.id.clone()).collect());
        let sales = ds.pipelines.iter().find(|p| p.name == "Sales").unwrap();
        let one = f.call_json("close", "fetch_pipeline_and_opportunity_statuses", json!({"id": sales.id})).await.unwrap();
        let labels: Vec<&str> = one["statuses"].as_array().unwrap().iter().map(|s| s["label"].as_str().unwrap()).collect();
        let want: Vec<&str> = sales.statuses.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, want);
        assert_eq!(&labels[..5], ["Lead", "Qualified", "Demo", "Proposal", "Negotiation"]);

        let statuses = f.call_json("close", "find_lead_statuses", json!({})).await.unwrap();
        assert_eq!(names(&statuses), ds.lead_statuses.iter().map(|s| s.id.clone()).collect());

        let opp = &ds.opportunities[17];
        let got = f.call_json("close", "fetch_opportunity", json!({"id": opp.id})).await.unwrap();
        assert_eq!(got, ds.opportunity_json(opp));
        assert_eq!(got["value"], opp.value);
        assert_eq!(got["confidence"], opp.confidence);

        let lead = &ds.leads[42];
        let got = f.call_json("close", "fetch_lead", json!({"id": lead.id})).await.unwrap();
        assert_eq!(got, ds.lead_json(lead));
        assert_eq!(got["source"], lead.source);

        let contact = &ds.contacts[7];
        let got = f.call_json("close", "fetch_contact", json!({"id": contact.id})).await.unwrap();
        assert_eq!(got, ds.contact_json(contact));

        let got = f.call_json("close", "lead_search", json!({"name": lead.name})).await.unwrap();
        let want: BTreeSet<String> =
            ds.leads.iter().filter(|l| l.name.to_lowercase().contains(&lead.name.to_lowercase())).map(|l| l.id.clone()).collect();
        assert_eq!(names(&got), want);

        let got = f.call_json("close", "activity_search", json!({"lead_ids": [lead.id]})).await.unwrap();
        let total = got["total_results"].as_u64().unwrap() as usize;
        assert_eq!(total, ds.activities.iter().filter(|a| a.lead_id == lead.id).count());

        let fields = f.call_json("close", "get_fields", json!({})).await.unwrap();
        assert!(fields.to_string().contains("lead.source"));

        // aggregation: count of opportunities per status id equals the reference count.
        let agg = f
            .call_json(
                "close",
                "aggregation",
                json!({"include_types": ["opportunity"], "aggregations": [{"type": "count"}], "group_by": ["status_id"]}),
            )
            .await
            .unwrap();
        let counts = reference::opportunity_count_by_status(ds);
        for row in agg["rows"].as_array().unwrap() {
            let status = row["group"]["status_id"].as_str().unwrap();
            let n = row["values"].as_object().unwrap().values().next().unwrap().as_u64().unwrap();
            assert_eq!(n as usize, counts[status], "count for {status}");
        }
        assert_eq!(agg["rows"].as_array().unwrap().len(), counts.len());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn find_opportunities_pages_through_every_match() {
    for mode in MODES {
        let f = Fixture::start(mode).await;
        f.connect("close").await.unwrap();
        let ds = f.standin.dataset();
        let proposal = ds.opportunity_status_by_label("Sales", "Proposal").unwrap();
        let want: BTreeSet<String> =
            reference::opportunities_by_status(ds, &proposal.id).iter().map(|o| o.id.clone()).collect();
        assert!(!want.is_empty());

        let mut got = BTreeSet::new();
        let mut args = json!({"status_ids": [proposal.id], "sort_by": "largest_value"});
        let mut pages = 0;
        let mut last_value = i64::MAX;
        loop {
            let page = f.call_json("close", "find_opportunities", args.clone()).await.unwrap();
            pages += 1;
            for o in page["data"].as_array().unwrap() {
                let v = o["value"].as_i64().unwrap_or(0);
                assert!(v <= last_value, "sorted by value, largest first");
                last_value = v;
                assert!(got.insert(o["id"].as_str().unwrap().to_string()), "no duplicates across pages");
            }
            match page["cursor"].as_str() {
                Some(c) if page["has_more"] == true => args = json!({"cursor": c}),
                _ => break,
            }
        }
        assert_eq!(got, want);

        // Every active opportunity, across pages of 50.
        let mut all = BTreeSet::new();
        let mut args = json!({"status_type": "active"});
        loop {
            let page = f.call_json("close", "find_opportunities", args).await.unwrap();
            all.extend(names(&page));
            pages += 1;
            match page["cursor"].as_str() {
                Some(c) if page["has_more"] == true => args = json!({"cursor": c}),
                _ => break,
            }
        }
        let active: BTreeSet<String> =
            ds.opportunities.iter().filter(|o| o.status_type.as_str() == "active").map(|o| o.id.clone()).collect();
        assert_eq!(all, active);
        assert!(pages >= 3, "{mode}: paging really happened");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_is_reused_across_calls_and_renewed_once_after_expiry() {
    // Sessions are the 2025 era's (a 2026-07-28 exchange has none): a server speaking only that.
    let f = legacy(ResponseMode::Sse).await;
    f.connect("close").await.unwrap();
    let init0 = f.standin.counters().initialize;
    for _ in 0..3 {
        f.call_json("close", "org_info", json!({})).await.unwrap();
    }
    assert_eq!(f.standin.counters().initialize, init0, "calls reuse the stored session");
    f.standin.expire_sessions();
    f.call_json("close", "org_info", json!({})).await.unwrap();
    let c = f.standin.counters();
    assert_eq!(c.initialize, init0 + 1, "exactly one re-initialize after a 404");
    assert!(c.expired_session_hits >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_requests_on_the_sse_stream_are_answered() {
    // Server-to-client requests exist only in the 2025 era.
    let f = legacy(ResponseMode::Sse).await;
    f.standin.set_server_ping_before_result(true);
    f.connect("close").await.unwrap();
    let org = f.call_json("close", "org_info", json!({})).await.unwrap();
    assert_eq!(org["organization"]["id"], f.standin.dataset().organization.id);
    let c = f.standin.counters();
    assert!(c.server_pings_sent >= 1);
    assert_eq!(c.server_pings_answered, c.server_pings_sent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_api_key_is_unauthorized_and_nothing_is_stored() {
    let f = Fixture::start(ResponseMode::Json).await;
    let err = f.host.connect(f.request("close", "not-the-key", "mcp.read")).await.unwrap_err();
    assert!(matches!(err, HostError::Connector(ConnectorError::Unauthorized { .. })), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("Reconnect") || msg.contains("reconnect"), "{msg}");
    assert!(!msg.contains("not-the-key"), "the key never appears in errors: {msg}");
    assert!(f.host.connections().unwrap().is_empty());
    assert!(f.standin.counters().unauthorized >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_tool_is_a_clear_error() {
    let f = Fixture::start(ResponseMode::Sse).await;
    f.connect("close").await.unwrap();
    let err = f.host.call_tool("close", "no_such_tool", "{}").await.unwrap_err();
    assert!(matches!(err, HostError::Connector(ConnectorError::UnknownTool { .. })), "{err:?}");
    assert!(err.to_string().contains("no_such_tool"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_are_reported_by_name() {
    let f = Fixture::start(ResponseMode::Json).await;
    f.connect("close").await.unwrap();
    let err = f.host.call_tool("close", "fetch_lead", "{}").await.unwrap_err();
    assert!(err.to_string().contains("id"), "{err}");
    let err = f.host.call_tool("close", "fetch_lead", "[1,2]").await.unwrap_err();
    assert!(matches!(err, HostError::Usage(_)), "{err:?}");
    let err = f.host.call_tool("close", "fetch_lead", "{not json").await.unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_is_down_is_a_clear_error() {
    let f = Fixture::start(ResponseMode::Json).await;
    f.connect("close").await.unwrap();
    let Fixture { standin, dir, host } = f;
    standin.shutdown().await;
    let err = host.call_tool("close", "org_info", "{}").await.unwrap_err();
    assert!(matches!(err, HostError::Connector(ConnectorError::Unavailable { .. })), "{err:?}");
    assert!(err.to_string().contains("could not be reached"), "{err}");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_outside_the_grant_is_denied_and_never_leaves_the_machine() {
    let f = Fixture::start(ResponseMode::Json).await;
    f.connect("close").await.unwrap();
    // Not even the connection's own URLs: only another origin.
    let policy = Policy { connection_urls: false, grant: Grant::parse_list(["https://mcp.close.com"]).unwrap(), ..Policy::default() };
    f.host.set_policy("close", &policy).unwrap();
    let before = f.standin.counters().http_requests;
    let err = f.host.call_tool("close", "org_info", "{}").await.unwrap_err();
    assert!(matches!(err, HostError::Connector(ConnectorError::DeniedByPolicy { .. })), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&f.origin()), "names the host: {msg}");
    assert!(msg.contains(&format!("--allow-origin {}", f.origin())), "names the grant that would allow it: {msg}");
    assert_eq!(f.standin.counters().http_requests, before, "no request reached the server");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_grant_denies_everything() {
    let f = Fixture::start(ResponseMode::Json).await;
    f.connect("close").await.unwrap();
    f.host.set_policy("close", &Policy::deny_all()).unwrap();
    let before = f.standin.counters().http_requests;
    let err = f.host.call_tool("close", "org_info", "{}").await.unwrap_err();
    assert!(err.to_string().contains("granted: nothing"), "{err}");
    assert_eq!(f.standin.counters().http_requests, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_persist_between_runs_and_the_key_is_never_on_disk_in_clear() {
    let f = Fixture::start(ResponseMode::Json).await;
    let out = f.connect("close").await.unwrap();
    assert_eq!(out.account.as_deref().map(|a| a.contains(&f.standin.dataset().organization.name)), Some(true));
    drop(f.host);
    let host = Fixture::open_host(f.dir.path());
    let listed = host.connections().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status.as_str(), "ready");
    let out = host.call_tool("close", "org_info", "{}").await.unwrap();
    assert_eq!(json_of(&out)["organization"]["id"], f.standin.dataset().organization.id);
    drop(host);
    let key = f.standin.api_key().as_bytes().to_vec();
    for entry in walk(f.dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!bytes.windows(key.len()).any(|w| w == key), "API key in clear in {}", entry.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn disconnect_deletes_the_connection_and_its_secrets() {
    let f = Fixture::start(ResponseMode::Json).await;
    f.connect("close").await.unwrap();
    let id = f.host.connection("close").unwrap().id;
    assert_eq!(f.host.store().secret_names(&id).unwrap(), vec!["api-key"]);
    let out = f.host.disconnect("close").await.unwrap();
    assert!(out.revoked, "{:?}", out.warning);
    assert!(f.host.connections().unwrap().is_empty());
    assert!(f.host.store().secret_names(&id).unwrap().is_empty());
    let err = f.host.call_tool("close", "org_info", "{}").await.unwrap_err();
    assert!(matches!(err, HostError::NoSuchConnection(_)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_with_write_scope_still_yields_only_read_tools() {
    let f = Fixture::start(ResponseMode::Sse).await;
    f.host.connect(f.request("close", f.standin.api_key(), "mcp.write_destructive")).await.unwrap();
    let listing = f.host.list_tools("close").await.unwrap();
    let listed: BTreeSet<String> = listing.tools.iter().map(|t| t.name.clone()).collect();
    assert_eq!(listed, catalog_read_tools().into_iter().collect::<BTreeSet<_>>());
    let blocked: BTreeSet<String> = listing.blocked.iter().map(|b| b.name.clone()).collect();
    assert_eq!(blocked, catalog_write_tools().into_iter().collect::<BTreeSet<_>>());
    for w in catalog_write_tools() {
        let err = f.host.call_tool("close", &w, "{}").await.unwrap_err();
        assert!(matches!(err, HostError::Blocked { .. }), "{w}: {err:?}");
    }
    assert_eq!(f.standin.counters().write_tool_calls, 0, "no write call reached the server");
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
