//! # close-standin: a local stand-in for Close CRM's MCP server
//!
//! clariBI connects to Close's hosted MCP server (`https://mcp.close.com/mcp`, Streamable HTTP). Tests and
//! demos cannot use the real Close, so this crate serves a faithful local imitation on `127.0.0.1`: the
//! same tool catalog and scopes, the same authentication headers and error shapes, and tool results built
//! from a deterministic, seeded CRM dataset. Tests start it in-process and compare what comes through the
//! connector with answers computed directly from the dataset ([`reference`](mod@reference)).
//!
//! Like Close, it has two origins: the MCP host `http://127.0.0.1:P` ([`StandIn::url`], playing
//! `mcp.close.com`) and an OAuth 2.1 authorization server `http://127.0.0.1:Q` ([`StandIn::issuer_url`],
//! playing `api.close.com` / `app.close.com`) with discovery metadata, dynamic client registration, PKCE,
//! a consent page, rotating refresh tokens and revocation. Clients authenticate with an API key or with the
//! tokens that server issues.
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
//! OAuth, headless (the default consent mode approves at once):
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use close_standin::{ConsentMode, StandIn, StandInConfig};
//! let standin = StandIn::start(StandInConfig::default()).await?;
//! // PRM: {base}/.well-known/oauth-protected-resource → authorization_servers: [issuer]
//! // AS metadata: {issuer}/.well-known/oauth-authorization-server → register, authorize, token, revoke
//! println!("{} → {}", standin.resource_metadata_url(), standin.issuer_url());
//! standin.set_access_token_ttl_secs(1);
//! standin.set_consent(ConsentMode::Page);
//! assert_eq!(standin.live_refresh_tokens(), 0);
//! # standin.shutdown().await; Ok(()) }
//! ```
//!
//! Two protocol eras (see [`era`]): by default the stand-in speaks the 2025 initialize/session era, as
//! Close does today, and the stateless 2026-07-28 era (`server/discover`, per-request `_meta`, the
//! `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` headers, `ttlMs` / `cacheScope`, `resultType`) on
//! the same URL; a switch makes it speak only one of them:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use close_standin::{ProtocolMode, StandIn, StandInConfig};
//! let standin = StandIn::start(StandInConfig::default()).await?;
//! standin.set_protocol(ProtocolMode::Only2026); // initialize → HTTP 400, -32022
//! standin.set_list_ttl_ms(5_000); // tools/list: "ttlMs": 5000, "cacheScope": "private"
//! standin.set_input_required_tool(Some("org_info".into())); // resultType "input_required"
//! // … run the client …
//! let listings = standin.counters().tools_list; // did the client cache its listing?
//! # let _ = listings; standin.shutdown().await; Ok(()) }
//! ```
//!
//! A misbehaving or hostile server, for testing the connector and the host (see [`faults`]):
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use close_standin::{FaultTarget, RateLimitFault, StandIn, StandInConfig};
//! let standin = StandIn::start(StandInConfig::default()).await?;
//! standin.set_fault_target(FaultTarget::ToolsCall);
//! standin.set_malformed_json(true); // initialize and tools/list still work
//! standin.set_rate_limit(Some(RateLimitFault::new(100, 2, 3))); // three 429s
//! standin.set_huge_result_bytes(Some(64 << 20)); // streamed, never held in memory
//! standin.set_ignore_scope_filter(true);
//! standin.set_lying_annotations(true);
//! // … run the client …
//! let injected = standin.counters().faults_injected;
//! # let _ = injected; standin.clear_faults(); standin.shutdown().await; Ok(()) }
//! ```
//!
//! Sources: the research notes `close-mcp.md` (Close's server, auth §2, transport §3, data model §4,
//! unknowns §6) and `close-mcp-tools.json` (116 tools, embedded as `data/close-mcp-tools.json`). Each
//! module says what Close does and where the stand-in guesses:
//!
//! * [`catalog`] – tools, scopes, input schemas, `tools/list` pages;
//! * [`auth`] – `Close-API-Key` / `Close-Scope`, bearer tokens, 401 and 403;
//! * [`metadata`] – protected-resource and authorization-server metadata;
//! * [`oauth`] – the authorization server (registration, authorization, codes, tokens, refresh rotation,
//!   revocation); [`redirect_uri`] – redirect URI rules; [`consent`] – the consent page;
//!   [`issuer`] – the issuer origin's HTTP routes;
//! * [`switches`] – run-time switches and counters (MCP and OAuth), the hostile-catalog switches
//!   (`ignore_scope_filter`, `lying_annotations`), the protocol switches (`protocol`, `list_ttl_ms`,
//!   `input_required_tool`);
//! * [`era`] – the 2025 and 2026-07-28 protocol eras, what each request gets in each, and
//!   [`ProtocolMode`] (`Dual`, `Only2026`, `Only2025`): Close speaks 2025 today; whether it moves to
//!   2026-07-28, and whether it then keeps the initialize era, is unknown, so the 2026 behaviour
//!   follows the specification as the official conformance suite checks it (rmcp 3.11 does most of
//!   it), and how an era is refused is a guess stated there;
//! * `rest` – a small Close-like REST API (`/api/v1/…`) on both origins, counting every write;
//! * [`faults`] – fault injection on `/mcp` POSTs: broken JSON, cut streams, 500s, 429s, huge and slow
//!   results, redirects;
//! * [`server`] – rmcp wiring, sessions, JSON/SSE, the two listeners, the [`StandIn`] handle;
//! * [`data`] – the generated organization; [`tools`] and [`aggregation`] – the read tools;
//! * [`reference`](mod@reference) – independent reference answers.

pub mod aggregation;
pub mod auth;
pub mod budget;
pub mod catalog;
pub mod consent;
pub mod cursor;
pub mod data;
pub mod era;
pub mod faults;
pub mod issuer;
pub mod metadata;
pub mod oauth;
pub mod redirect_uri;
pub mod reference;
mod rest;
pub mod server;
pub mod switches;
pub mod tools;

pub use auth::{Grant, TokenRecord, TokenStatus, TokenTable};
pub use catalog::{AnnotationStyle, Scope};
pub use data::{Dataset, DatasetConfig};
pub use budget::{BudgetCounts, RateBudget};
pub use faults::{FaultCountersSnapshot, FaultTarget, Faults, RateLimitFault};
pub use oauth::{
    s256_challenge, ConsentOrganization, IssuedToken, OAuthError, TokenKind,
    SANDBOX_ORGANIZATION_NAME,
};
pub use server::{StandIn, StandInConfig, DEFAULT_API_KEY, SERVER_NAME};
pub use switches::{
    ConsentMode, CountersSnapshot, OAuthCountersSnapshot, OAuthSwitches, ProtocolMode,
    ResponseMode, Switches, ToolChange, DEFAULT_LIST_TTL_MS,
};
