//! `claribi-host demo`: the whole path on the embedded defaults, with no Close account.
//!
//! It starts the Close stand-in on 127.0.0.1 (the same one the tests use), opens a throw-away data
//! directory, connects the built-in Close connector with an API key, lists the read-only tools, calls
//! `org_info` and `find_opportunities`, and shows the blocklist at work on a key with write scope.

use crate::output;
use claribi_host::errors::HostError;
use claribi_host::service::{builtin, ConnectRequest, Credentials, HostConfig, HostService};
use close_standin::{ResponseMode, StandIn, StandInConfig, Switches};
use zeroize::Zeroizing;

fn step(label: &str, text: impl AsRef<str>) {
    println!("{label:<11}{}", text.as_ref());
}

/// Run the demo.
pub async fn run(sse: bool) -> Result<(), HostError> {
    let mode = if sse { ResponseMode::Sse } else { ResponseMode::Json };
    let standin = StandIn::start(StandInConfig {
        switches: Switches { response_mode: mode, ..Switches::default() },
        ..StandInConfig::default()
    })
    .await
    .map_err(|e| HostError::Usage(format!("cannot start the Close stand-in: {e}")))?;
    let dir = tempfile::Builder::new()
        .prefix("claribi-demo-")
        .tempdir()
        .map_err(|e| HostError::Storage(format!("cannot create a temporary data directory: {e}")))?;
    let result = demo(&standin, dir.path(), mode).await;
    standin.shutdown().await;
    if result.is_ok() {
        println!();
        step("console", "the same flow in a browser (Data Sources, Authorize with Close, Explore, Dashboard):");
        println!("{:<11}claribi-host console --demo", "");
    }
    result
}

/// `claribi-host console --demo`: the console against a local Close stand-in whose authorization
/// server shows its consent page, on a temporary data directory.
pub async fn console(listen: &str, no_browser: bool) -> Result<(), HostError> {
    let standin = StandIn::start(StandInConfig {
        switches: Switches { response_mode: ResponseMode::Json, ..Switches::default() },
        oauth: close_standin::OAuthSwitches { consent: close_standin::ConsentMode::Page, ..Default::default() },
        ..StandInConfig::default()
    })
    .await
    .map_err(|e| HostError::Usage(format!("cannot start the Close stand-in: {e}")))?;
    let dir = tempfile::Builder::new()
        .prefix("claribi-console-demo-")
        .tempdir()
        .map_err(|e| HostError::Storage(format!("cannot create a temporary data directory: {e}")))?;
    println!("Close stand-in: {} (seeded CRM data; its OAuth consent page approves or denies)", standin.url());
    println!("API key for the API-key path: {}", standin.api_key());
    println!("Data directory: {} (temporary, deleted when the console stops)", dir.path().display());
    let host = std::sync::Arc::new(HostService::open(HostConfig::new(dir.path()))?);
    let options = claribi_host::console::ConsoleOptions {
        close_endpoint: Some(standin.url()),
        close_allow_origins: vec![standin.base_url().trim_end_matches('/').to_string(), standin.issuer_url()],
        banner: Some(format!(
            "Demo: the Close CRM card points at a local Close stand-in ({}), with seeded data; the data directory is temporary.",
            standin.url()
        )),
    };
    let result = crate::console(host, listen, no_browser, options).await;
    standin.shutdown().await;
    result
}

async fn demo(standin: &StandIn, data_dir: &std::path::Path, mode: ResponseMode) -> Result<(), HostError> {
    println!("clariBI connector host: demo against a local Close stand-in\n");
    step("stand-in", format!("{} ({mode} responses, Close's 116-tool catalog, seeded CRM data)", standin.url()));
    step("data dir", format!("{} (temporary)", data_dir.display()));

    let host = HostService::open(HostConfig::new(data_dir))?;
    let connect = |name: &str, scope: &str| ConnectRequest {
        name: name.into(),
        plugin: builtin::CLOSE.to_vec(),
        endpoint: Some(standin.url()),
        credentials: Credentials::ApiKey(Zeroizing::new(standin.api_key().to_string())),
        scopes: vec![scope.into()],
        allow_origins: None,
        policy: None,
        options: vec![],
    };

    let started = std::time::Instant::now();
    let outcome = host.connect(connect("close-demo", "mcp.read")).await?;
    step(
        "connected",
        format!(
            "`{}` → {} with scope {} in {} ms (component compiled and pinned, API key sealed)",
            outcome.name,
            outcome.account.as_deref().unwrap_or("?"),
            outcome.granted_scopes.join(" "),
            started.elapsed().as_millis()
        ),
    );
    step("grant", outcome.grant.join("; "));
    if let Some(key) = outcome.secrets.iter().find(|s| s.name == "api-key") {
        step("api key", format!("the connector holds a placeholder; the host attaches the key only to {}", key.goes_to.join("; ")));
    }

    let listing = host.list_tools("close-demo").await?;
    step(
        "tools",
        format!(
            "{} read-only tools listed (e.g. {})",
            listing.tools.len(),
            listing.tools.iter().take(4).map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    );

    let args = r#"{"status_type":"active","sort_by":"largest_value"}"#;
    step("call", format!("find_opportunities {args}"));
    let result = host.call_tool("close-demo", "find_opportunities", args).await?;
    println!();
    match result.structured_content.as_ref().and_then(|v| top_rows(v, 8)) {
        Some(v) => match output::render_table(&v) {
            Some(t) => print!("{t}"),
            None => output::print_json(&v),
        },
        None => output::tool_output(&result, false),
    }
    println!();

    // The same server with a key scoped for writes lists every tool; the host withholds the writes.
    let outcome = host.connect(connect("close-demo-write-key", "mcp.write_destructive")).await?;
    let listing = host.list_tools(&outcome.name).await?;
    step(
        "blocklist",
        format!(
            "with a key scoped mcp.write_destructive the server offers {} tools; the host withheld {} write tools (e.g. {}) and passed {}",
            listing.tools.len() + listing.blocked.len(),
            listing.blocked.len(),
            listing.blocked.iter().take(3).map(|b| b.name.as_str()).collect::<Vec<_>>().join(", "),
            listing.tools.len()
        ),
    );
    match host.call_tool(&outcome.name, "delete_lead", r#"{"id":"lead_x"}"#).await {
        Err(e) => step("refused", e.to_string()),
        Ok(_) => return Err(HostError::Usage("the blocklist let delete_lead through; this is a bug".into())),
    }
    step("writes", format!("{} write calls reached the stand-in", standin.counters().write_tool_calls));
    Ok(())
}

/// Keep the first `n` rows of a `{"data": [...]}` result, with a few readable columns.
fn top_rows(v: &serde_json::Value, n: usize) -> Option<serde_json::Value> {
    let rows = v.get("data")?.as_array()?;
    let keep = ["id", "lead_name", "status_label", "value_formatted", "confidence", "user_name"];
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .take(n)
        .map(|r| {
            let mut o = serde_json::Map::new();
            for k in keep {
                if let Some(x) = r.get(k) {
                    o.insert(k.to_string(), x.clone());
                }
            }
            serde_json::Value::Object(o)
        })
        .collect();
    let mut out = serde_json::Map::new();
    out.insert("data".into(), serde_json::Value::Array(rows));
    if let Some(t) = v.get("total_results") {
        out.insert("total_results".into(), t.clone());
    }
    Some(serde_json::Value::Object(out))
}
