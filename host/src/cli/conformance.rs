//! `claribi-host conformance-client <server-url>`: the command the official MCP conformance suite
//! (`npx @modelcontextprotocol/conformance client --command ...`) launches to test our MCP/OAuth client.
//!
//! It drives the *same* client code as the Close connector — `plugin/mcp-client`, inside the
//! `builtin:mcp` component (`plugin/generic-mcp`) — through the same host path as every other call
//! (grant, outbound hook, sealed secrets, credential lock). Per scenario:
//!
//! 1. connect without credentials; if the server answers `unauthorized` (or `insufficient-scope`),
//!    connect with OAuth in headless mode (the suite's authorization server approves at once and
//!    redirects to our loopback redirect URI);
//! 2. list the tools;
//! 3. call what the scenario asks for ([`calls`]) — `add_numbers {a, b}` (`tools_call`), `test-tool {}`
//!    (the auth scenarios), the `toolCalls` of the scenario's context (`http-custom-headers`), the four
//!    `test_mrtr_*` tools (`sep-2322-client-request-state`), `json_schema_echo` with the listed schema
//!    (`json-schema-2020-12-preservation`), … — each only when listed; on `insufficient-scope`,
//!    authorize again with the union of scopes and retry, at most three authorizations in all.
//!
//! The scenario comes from `MCP_CONFORMANCE_SCENARIO`, the revision it runs at from
//! `MCP_CONFORMANCE_PROTOCOL_VERSION` (pinned through the connection option `protocol_version`, as
//! the suite asks clients to; without it the client probes with `server/discover` like in
//! production); `MCP_CONFORMANCE_CONTEXT` may carry a pre-registered `client_id`/`client_secret` or
//! tool calls. The run uses a throw-away data directory and grants only loopback origins. Exit code 0
//! on success, 1 with a one-line error otherwise.

use claribi_host::policy::blocklist::{Blocklist, BlocklistConfig, Override};
use claribi_host::errors::{ConnectorError, HostError};
use claribi_host::service::{builtin, ConnectRequest, Credentials, HostConfig, HostService, OAuthFlow};
use claribi_host::policy::tools::ToolListing;
use serde_json::{json, Value};

/// The client id URL the suite expects for Client ID Metadata Documents (scenario `auth/basic-cimd`).
pub const CIMD_URL: &str = "https://conformance-test.local/client-metadata.json";

const NAME: &str = "conformance";

/// Run one conformance scenario against `server_url`. `protocol` is `suite` (the revision the suite
/// names), `auto`, or a revision.
pub async fn run(server_url: &str, protocol: &str) -> Result<(), HostError> {
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let context: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or(Value::Null);
    let dir = tempfile::tempdir().map_err(|e| HostError::Storage(format!("cannot create a temporary directory: {e}")))?;
    let mut config = HostConfig::new(dir.path());
    // The suite's test servers have tools such as `add_numbers`; this runner tests the MCP client, not
    // the product's read-only promise, so it switches the verb rule off (logged like any override).
    config.blocklist = Some(
        Blocklist::new(&BlocklistConfig {
            extra_patterns: vec![],
            overrides: vec![Override {
                disable: "write-verbs".into(),
                reason: "conformance runner: the suite's test tools (add_numbers) are calculators".into(),
                ..Default::default()
            }],
        })
        .map_err(HostError::Usage)?,
    );
    let host = HostService::open(config)?;

    let mut options = vec![("client_metadata_url".to_string(), CIMD_URL.to_string())];
    let version = match protocol {
        "suite" => std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").ok(),
        other => Some(other.to_string()),
    };
    if let Some(version) = version {
        options.push(("protocol_version".to_string(), version));
    }
    for key in ["client_id", "client_secret"] {
        if let Some(v) = context.get(key).and_then(Value::as_str) {
            options.push((key.to_string(), v.to_string()));
        }
    }
    let request = |credentials: Credentials| ConnectRequest {
        name: NAME.into(),
        plugin: builtin::MCP.to_vec(),
        endpoint: Some(server_url.to_string()),
        credentials,
        // The suite's servers ask for `mcp:write` and `mcp:admin` (scope-from-scopes-supported,
        // scope-retry-limit): as their operator, this runner accepts any scope the server names.
        scopes: vec![claribi_host::oauth::scopes::ANY_SCOPE.to_string()],
        allow_origins: Some(vec!["http://localhost:*".into(), "http://127.0.0.1:*".into(), "http://[::1]:*".into()]),
        policy: None,
        options: options.clone(),
    };

    let mut runner = Runner { host: &host, oauth: false, authorizations: 0 };
    match host.connect(request(Credentials::None)).await {
        Ok(_) => {}
        Err(e) if needs_authorization(&e) => {
            runner.authorizations += 1;
            runner.oauth = true;
            host.connect(request(Credentials::OAuth(OAuthFlow::headless()))).await?;
        }
        Err(e) => return Err(e),
    }

    let listing = loop {
        match host.list_tools(NAME).await {
            Ok(l) => break l,
            // The `initialize` scenario's server implements nothing beyond the handshake.
            Err(_) if scenario == "initialize" => return Ok(()),
            Err(e) => runner.escalate(e, &request).await?,
        }
    };
    for (tool, args) in calls(&scenario, &context, &listing) {
        if !listing.tools.iter().any(|t| t.name == tool) {
            continue;
        }
        loop {
            match host.call_tool(NAME, &tool, &args.to_string()).await {
                Ok(_) => break,
                Err(e) => runner.escalate(e, &request).await?,
            }
        }
    }
    Ok(())
}

/// The tool calls a scenario wants, in order (each made only if the tool is listed).
pub fn calls(scenario: &str, context: &Value, listing: &ToolListing) -> Vec<(String, Value)> {
    let call = |name: &str, args: Value| (name.to_string(), args);
    match scenario {
        "tools_call" => vec![call("add_numbers", json!({"a": 5, "b": 3}))],
        "http-custom-headers" => context
            .get("toolCalls")
            .and_then(Value::as_array)
            .map(|calls| {
                calls
                    .iter()
                    .filter_map(|c| Some(call(c.get("name")?.as_str()?, c.get("arguments").cloned().unwrap_or(json!({})))))
                    .collect()
            })
            .unwrap_or_default(),
        "http-invalid-tool-headers" => vec![call("valid_tool", json!({"region": "us-west1"}))],
        "http-standard-headers" => vec![call("test_headers", json!({}))],
        "sep-2322-client-request-state" => ["test_mrtr_echo_state", "test_mrtr_no_state", "test_mrtr_unrelated", "test_mrtr_no_result_type"]
            .into_iter()
            .map(|n| call(n, json!({})))
            .collect(),
        "json-schema-2020-12-preservation" => listing
            .tools
            .iter()
            .find(|t| t.name == "json_schema_2020_12_tool")
            .map(|t| vec![call("json_schema_echo", json!({"schema": t.input_schema}))])
            .unwrap_or_default(),
        "sse-retry" => vec![call("test_reconnection", json!({}))],
        "elicitation-sep1034-client-defaults" => vec![call("test_client_elicitation_defaults", json!({}))],
        _ if listing.tools.iter().any(|t| t.name == "add_numbers") => vec![call("add_numbers", json!({"a": 5, "b": 3}))],
        _ => vec![call("test-tool", json!({}))],
    }
}

fn needs_authorization(e: &HostError) -> bool {
    matches!(e, HostError::Connector(ConnectorError::Unauthorized { .. } | ConnectorError::InsufficientScope { .. }))
}

struct Runner<'a> {
    host: &'a HostService,
    oauth: bool,
    authorizations: u32,
}

impl Runner<'_> {
    /// Authorize (again) after an `unauthorized` or `insufficient-scope` error, at most three times in
    /// all; any other error, or a fourth time, ends the run with that error.
    async fn escalate(&mut self, e: HostError, request: &impl Fn(Credentials) -> ConnectRequest) -> Result<(), HostError> {
        if !needs_authorization(&e) || self.authorizations >= 3 {
            return Err(e);
        }
        self.authorizations += 1;
        if !self.oauth {
            // Connected without credentials, now the server wants some.
            self.host.disconnect(NAME).await?;
            self.oauth = true;
            self.host.connect(request(Credentials::OAuth(OAuthFlow::headless()))).await?;
            return Ok(());
        }
        let extra = match &e {
            HostError::Connector(ConnectorError::InsufficientScope { required, .. }) => required.clone(),
            _ => vec![],
        };
        self.host.reauthorize(NAME, &OAuthFlow::headless(), &extra).await?;
        Ok(())
    }
}
