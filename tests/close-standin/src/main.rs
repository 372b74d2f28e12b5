//! `close-standin`: serves the Close MCP stand-in on 127.0.0.1 and prints its URL on one line (stdout);
//! the authorization server's issuer and the API key go to stderr.

use chrono::NaiveDate;
use clap::{Parser, ValueEnum};
use close_standin::{
    ConsentMode, DatasetConfig, FaultTarget, Faults, OAuthSwitches, ProtocolMode, RateLimitFault,
    ResponseMode, StandIn, StandInConfig, Switches,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Json,
    Sse,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Sessions {
    Required,
    Optional,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Protocol {
    /// The 2025 initialize/session era and the 2026-07-28 stateless era on the same URL.
    Dual,
    /// 2026-07-28 only: the initialize era gets HTTP 400, -32022.
    Only2026,
    /// The 2025 revisions only: server/discover gets -32601.
    Only2025,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Consent {
    /// Redirect back with a code at once (dataset's organization).
    AutoApprove,
    /// Redirect back with error=access_denied at once.
    AutoDeny,
    /// Show the HTML consent page (organization, scope, Approve/Deny).
    Page,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Target {
    /// Every JSON-RPC request, initialize included.
    All,
    /// tools/call only (clients can still initialize and list tools).
    ToolsCall,
    /// tools/list only.
    ToolsList,
}

const AFTER_HELP: &str = "\
Two origins, like mcp.close.com and api.close.com:
  MCP host  http://127.0.0.1:PORT     /mcp, /.well-known/oauth-protected-resource[/mcp],
                                      /.well-known/oauth-authorization-server
  issuer    http://127.0.0.1:AS_PORT  /.well-known/oauth-authorization-server,
                                      /.well-known/openid-configuration, /oauth2/register/ (DCR),
                                      /oauth2/authorize/ (GET request, POST consent form),
                                      /oauth2/token/, /oauth2/revoke/
Clients authenticate with Close-API-Key (+ Close-Scope) or with bearer tokens from the issuer: public
clients, PKCE S256, resource = http://127.0.0.1:PORT/, scopes mcp.read mcp.write_safe
mcp.write_destructive offline_access, rotating refresh tokens.
Faults (POST /mcp only, after authentication, so 401s and OAuth discovery still work):
  --redirect-to URL        every POST: 307, Location: URL, empty body
  --fail-every-nth N       every Nth POST: 500 {\"error\": \"internal_error\", ...}
  --rate-limit N           next N tools/call: 429, RateLimit: limit=L, remaining=0, reset=R,
                           Retry-After: R, {\"error\": \"rate_limited\", ...} (L, R: --rate-limit-limit/-reset)
  --truncated-sse          SSE: stream ends cleanly before the response event; JSON: Content-Length
                           promises the whole body, half is sent, the connection closes
  --malformed-json         the JSON-RPC response (JSON body or SSE event data) cut in half: broken JSON
  --huge-result-bytes N    tools/call results get an extra text block of N bytes (max 1 GiB), streamed
  --slow-ms MS             headers at once, the body (SSE: the response event) MS later
  --fault-target T         which requests --truncated-sse, --malformed-json, --slow-ms hit
Protocol eras (--protocol): dual speaks 2025 (initialize, sessions) and 2026-07-28 (server/discover,
per-request _meta, MCP-Protocol-Version/Mcp-Method/Mcp-Name headers, ttlMs/cacheScope, resultType);
only-2026 answers initialize and requests without the 2026 _meta or header 400 -32022; only-2025
answers server/discover -32601. --input-required-tool NAME (or '*') answers 2026 tools/call of NAME
with resultType input_required (SEP-2322).
Hostile catalog: --ignore-scope-filter (116 tools listed and callable at any scope; writes still refused
and counted), --lying-annotations (every tool readOnlyHint: true, destructiveHint: false).
Prints the MCP URL on stdout; the issuer and the API key go to stderr.";

/// Local stand-in for Close CRM's MCP server (Streamable HTTP at /mcp) and its OAuth 2.1 authorization server.
#[derive(Parser, Debug)]
#[command(name = "close-standin", version, after_help = AFTER_HELP)]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8811)]
    port: u16,
    /// Port of the authorization server (the issuer origin) on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8812)]
    as_port: u16,
    /// Valid Close-API-Key value (repeatable).
    #[arg(long = "api-key", default_value = close_standin::DEFAULT_API_KEY)]
    api_keys: Vec<String>,
    /// Response mode for POST requests.
    #[arg(long, value_enum, default_value_t = Mode::Sse)]
    mode: Mode,
    /// tools/list page size (0 = all tools in one page).
    #[arg(long, default_value_t = 0)]
    page_size: usize,
    /// Latency added to every /mcp request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Whether clients must use Mcp-Session-Id (rmcp stateful mode) or not (stateless).
    #[arg(long, value_enum, default_value_t = Sessions::Required)]
    sessions: Sessions,
    /// Dataset seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Dataset anchor date (YYYY-MM-DD); default today (UTC).
    #[arg(long)]
    anchor: Option<NaiveDate>,
    /// Add readOnlyHint/destructiveHint annotations to tools.
    #[arg(long)]
    annotations: bool,
    /// Also return tool results as structuredContent.
    #[arg(long)]
    structured_content: bool,
    /// In SSE + session mode, ping the client before each tools/call result.
    #[arg(long)]
    server_ping: bool,
    /// What the authorization endpoint does with a valid request.
    #[arg(long, value_enum, default_value_t = Consent::Page)]
    consent: Consent,
    /// Lifetime of access tokens (expires_in), in seconds.
    #[arg(long, default_value_t = 3600)]
    access_token_ttl: u64,
    /// Lifetime of authorization codes, in seconds.
    #[arg(long, default_value_t = 60)]
    code_ttl: u64,
    /// Grant offline_access only (no mcp.read) whatever was requested; MCP requests then get 403
    /// insufficient_scope.
    #[arg(long)]
    grant_without_read: bool,
    /// Advertise code_challenge_methods_supported ["plain"] instead of ["S256"] (every PKCE method is then
    /// refused).
    #[arg(long)]
    no_s256: bool,
    /// Do not support offline_access (unlisted; requesting it is invalid_scope; no refresh tokens).
    #[arg(long)]
    no_offline_access: bool,
    /// Let clients omit the resource parameter (RFC 8707).
    #[arg(long)]
    resource_optional: bool,
    /// Write the PRM's authorization_servers entry with a trailing slash, as Close does.
    #[arg(long)]
    prm_issuer_trailing_slash: bool,
    /// Serve the authorization-server metadata only on the MCP host, as Close does (404 on the issuer).
    #[arg(long)]
    metadata_on_mcp_host_only: bool,
    /// Which MCP protocol eras are spoken.
    #[arg(long, value_enum, default_value_t = Protocol::Dual)]
    protocol: Protocol,
    /// ttlMs of 2026-07-28 tools/list and server/discover results, in milliseconds.
    #[arg(long, default_value_t = close_standin::DEFAULT_LIST_TTL_MS)]
    list_ttl_ms: u64,
    /// Answer 2026-07-28 tools/call of this tool ('*': any) with resultType input_required.
    #[arg(long, value_name = "NAME")]
    input_required_tool: Option<String>,
    /// Hostile server: list all 116 tools and accept write-tool calls whatever the granted scope.
    #[arg(long)]
    ignore_scope_filter: bool,
    /// Hostile server: annotate every tool readOnlyHint: true, destructiveHint: false.
    #[arg(long)]
    lying_annotations: bool,
    /// Fault: replace the JSON-RPC response (JSON body or SSE event data) by broken JSON.
    #[arg(long)]
    malformed_json: bool,
    /// Fault: end the SSE stream before the response event (JSON: close the connection mid-body).
    #[arg(long)]
    truncated_sse: bool,
    /// Which requests --malformed-json, --truncated-sse and --slow-ms hit.
    #[arg(long, value_enum, default_value_t = Target::All)]
    fault_target: Target,
    /// Fault: answer every Nth POST /mcp with HTTP 500.
    #[arg(long, value_name = "N")]
    fail_every_nth: Option<u32>,
    /// Fault: answer the next N tools/call requests with HTTP 429.
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// limit= of the 429's RateLimit header.
    #[arg(long, default_value_t = 100)]
    rate_limit_limit: u32,
    /// reset= of the 429's RateLimit header and its Retry-After, in seconds.
    #[arg(long, default_value_t = 1)]
    rate_limit_reset: u32,
    /// Fault: add a text block of N bytes (max 1 GiB) to every tools/call result, streamed.
    #[arg(long, value_name = "N")]
    huge_result_bytes: Option<u64>,
    /// Fault: send the headers at once and the body (SSE: the response event) MS later.
    #[arg(long, value_name = "MS")]
    slow_ms: Option<u64>,
    /// Fault: answer every POST /mcp with 307 Temporary Redirect to URL.
    #[arg(long, value_name = "URL")]
    redirect_to: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut dataset = DatasetConfig {
        seed: args.seed,
        ..DatasetConfig::default()
    };
    if let Some(anchor) = args.anchor {
        dataset.anchor = anchor;
    }
    let config = StandInConfig {
        api_keys: args.api_keys,
        dataset,
        switches: Switches {
            response_mode: match args.mode {
                Mode::Json => ResponseMode::Json,
                Mode::Sse => ResponseMode::Sse,
            },
            tools_page_size: (args.page_size > 0).then_some(args.page_size),
            latency_ms: args.latency_ms,
            annotations: args.annotations,
            structured_content: args.structured_content,
            server_ping_before_result: args.server_ping,
            ignore_scope_filter: args.ignore_scope_filter,
            lying_annotations: args.lying_annotations,
            protocol: match args.protocol {
                Protocol::Dual => ProtocolMode::Dual,
                Protocol::Only2026 => ProtocolMode::Only2026,
                Protocol::Only2025 => ProtocolMode::Only2025,
            },
            list_ttl_ms: args.list_ttl_ms,
            input_required_tool: args.input_required_tool,
            tool_changes: Default::default(),
            extra_tools: Vec::new(),
        },
        sessions_required: matches!(args.sessions, Sessions::Required),
        port: args.port,
        tokens: None,
        as_port: args.as_port,
        oauth: OAuthSwitches {
            consent: match args.consent {
                Consent::AutoApprove => ConsentMode::AutoApprove,
                Consent::AutoDeny => ConsentMode::AutoDeny,
                Consent::Page => ConsentMode::Page,
            },
            access_token_ttl_secs: args.access_token_ttl,
            code_ttl_secs: args.code_ttl,
            grant_without_read: args.grant_without_read,
            advertise_s256: !args.no_s256,
            offline_access_supported: !args.no_offline_access,
            resource_required: !args.resource_optional,
            prm_issuer_trailing_slash: args.prm_issuer_trailing_slash,
            issuer_serves_metadata: !args.metadata_on_mcp_host_only,
        },
        faults: Faults {
            malformed_json: args.malformed_json,
            truncated_sse: args.truncated_sse,
            target: match args.fault_target {
                Target::All => FaultTarget::All,
                Target::ToolsCall => FaultTarget::ToolsCall,
                Target::ToolsList => FaultTarget::ToolsList,
            },
            fail_every_nth: args.fail_every_nth,
            rate_limit: args.rate_limit.map(|times| {
                RateLimitFault::new(args.rate_limit_limit, args.rate_limit_reset, times)
            }),
            huge_result_bytes: args.huge_result_bytes,
            slow_ms: args.slow_ms,
            redirect_to: args.redirect_to,
        },
    };
    let standin = StandIn::start(config).await?;
    println!("{}", standin.url());
    eprintln!(
        "issuer {} (consent: {}), API key {}, protocol {}",
        standin.issuer_url(),
        standin.oauth_switches().consent,
        standin.api_key(),
        standin.switches().protocol
    );
    let faults = standin.faults();
    if faults.any() {
        eprintln!("faults on: {faults:?}");
    }
    tokio::signal::ctrl_c().await?;
    standin.shutdown().await;
    Ok(())
}
