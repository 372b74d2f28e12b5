//! # close-standin: a local stand-in for Close CRM's MCP server
//!
//! clariBI connects to Close's hosted MCP server (`https://mcp.close.com/mcp`, Streamable HTTP). Tests and
//! demos cannot use the real Close, so this crate serves a faithful local imitation on `127.0.0.1`: the
//! same tool catalog and scopes, the same authentication headers and error shapes, and tool results built
//! from a deterministic, seeded CRM dataset. Tests start it in-process and compare what comes through the
//! connector with answers computed directly from the dataset ([`reference`](mod@reference)).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use close_standin::{StandIn, StandInConfig, ResponseMode};
//! let standin = StandIn::start(StandInConfig::default()).await?;
//! println!("{} (key {})", standin.url(), standin.api_key());
//! standin.set_response_mode(ResponseMode::Json);
//! let proposal = standin.dataset().opportunity_status_by_label("Sales", "Proposal").unwrap();
//! let stuck = close_standin::reference::in_status_longer_than(standin.dataset(), &proposal.id, 14);
//! # let _ = stuck; standin.shutdown().await; Ok(()) }
//! ```
//!
//! Sources: the research notes `close-mcp.md` (Close's server, auth §2, transport §3, data model §4,
//! unknowns §6) and `close-mcp-tools.json` (116 tools, embedded as `data/close-mcp-tools.json`). Each
//! module says what Close does and where the stand-in guesses:
//!
//! * [`catalog`] – tools, scopes, input schemas, `tools/list` pages;
//! * [`auth`] – `Close-API-Key` / `Close-Scope`, bearer tokens, 401 and protected-resource metadata;
//! * [`switches`] – run-time switches and counters;
//! * [`server`] – rmcp wiring, sessions, JSON/SSE, the [`StandIn`] handle;
//! * [`data`] – the generated organization; [`tools`] and [`aggregation`] – the read tools;
//! * [`reference`](mod@reference) – independent reference answers.

pub mod aggregation;
pub mod auth;
pub mod catalog;
pub mod cursor;
pub mod data;
pub mod reference;
pub mod server;
pub mod switches;
pub mod tools;

pub use auth::{Grant, TokenTable};
pub use catalog::Scope;
pub use data::{Dataset, DatasetConfig};
pub use server::{StandIn, StandInConfig, DEFAULT_API_KEY, SERVER_NAME};
pub use switches::{CountersSnapshot, ResponseMode, Switches};
