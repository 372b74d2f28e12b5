//! `close-standin`: serves the Close MCP stand-in on 127.0.0.1 and prints its URL on one line.

use chrono::NaiveDate;
use clap::{Parser, ValueEnum};
use close_standin::{DatasetConfig, ResponseMode, StandIn, StandInConfig, Switches};

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

/// Local stand-in for Close CRM's MCP server (Streamable HTTP at /mcp).
#[derive(Parser, Debug)]
#[command(name = "close-standin", version)]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8811)]
    port: u16,
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
        },
        sessions_required: matches!(args.sessions, Sessions::Required),
        port: args.port,
        tokens: None,
    };
    let standin = StandIn::start(config).await?;
    println!("{}", standin.url());
    tokio::signal::ctrl_c().await?;
    standin.shutdown().await;
    Ok(())
}
