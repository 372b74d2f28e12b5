//! Run-time switches and counters.
//!
//! Close's real behaviour on these points is unknown (`close-mcp.md` §3 and §6: JSON vs SSE, sessions,
//! pagination, annotations, structured content), so tests choose. Defaults follow the MCP Python SDK's
//! defaults (SSE responses, sessions on), since Close's Python-style 401 body suggests a Python server;
//! `tools/list` is one page (a 107-tool single page is "likely", §3).
//!
//! Fault injection (broken JSON, cut streams, 500s, 429s, huge or slow results, redirects) has its own
//! switches, [`Faults`](crate::Faults), described in [`faults`](crate::faults); the hostile-catalog
//! switches `ignore_scope_filter` and `lying_annotations` are here, since the MCP handler applies them.
//!
//! The protocol switches ([`ProtocolMode`], `list_ttl_ms`, `input_required_tool`) choose which MCP
//! eras the stand-in speaks and how its 2026-07-28 answers look; [`era`](crate::era) describes the
//! wire. Close speaks only the 2025 era today (`close-mcp.md` §3); its 2026 behaviour, TTLs included,
//! is a guess that follows the specification.
//!
//! The authorization server has its own switches ([`OAuthSwitches`]) and counters
//! ([`OAuthCountersSnapshot`]); what they imitate is described in [`oauth`](crate::oauth).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::faults::{FaultCounters, FaultCountersSnapshot};

/// How POST requests are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResponseMode {
    /// `Content-Type: application/json`, one JSON-RPC message per POST.
    Json,
    /// `Content-Type: text/event-stream`, with notifications (and optionally a server ping) before the result.
    #[default]
    Sse,
}

impl fmt::Display for ResponseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResponseMode::Json => "json",
            ResponseMode::Sse => "sse",
        })
    }
}

impl FromStr for ResponseMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(ResponseMode::Json),
            "sse" => Ok(ResponseMode::Sse),
            other => Err(format!(
                "unknown response mode '{other}' (expected json or sse)"
            )),
        }
    }
}

/// Which MCP protocol eras the stand-in speaks (see [`era`](crate::era) for the wire details).
///
/// Close's hosted server speaks the 2025 revisions (initialize handshake, `Mcp-Session-Id`); whether and
/// when it moves to 2026-07-28, and whether it then keeps the initialize era, is unknown. The three
/// modes cover the cases a client must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProtocolMode {
    /// Both eras on the same `/mcp`: the 2025 initialize/session era exactly as before, and the
    /// 2026-07-28 stateless era (`server/discover`, per-request `_meta`, standard headers). Default.
    #[default]
    Dual,
    /// 2026-07-28 only, as a server that has moved on: `initialize`, and any request that carries
    /// neither the 2026 `_meta` nor a 2026 `MCP-Protocol-Version` header, get HTTP 400 with
    /// JSON-RPC error -32022 (`data.supported: ["2026-07-28"]`, `data.requested`); GET and DELETE
    /// (the session era's stream and session end) get 405.
    Only2026,
    /// The 2025 revisions only, as a server that predates 2026-07-28: `server/discover` is answered
    /// with JSON-RPC error -32601 (method not found), HTTP 200.
    Only2025,
}

impl fmt::Display for ProtocolMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtocolMode::Dual => "dual",
            ProtocolMode::Only2026 => "only-2026",
            ProtocolMode::Only2025 => "only-2025",
        })
    }
}

impl FromStr for ProtocolMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['_', ' '], "-")
            .as_str()
        {
            "dual" | "both" => Ok(ProtocolMode::Dual),
            "only-2026" | "only2026" | "2026" | "2026-07-28" => Ok(ProtocolMode::Only2026),
            "only-2025" | "only2025" | "2025" | "2025-11-25" => Ok(ProtocolMode::Only2025),
            other => Err(format!(
                "unknown protocol mode '{}' (expected dual, only-2026 or only-2025)",
                crate::catalog::truncate(other, 40)
            )),
        }
    }
}

/// Default `ttlMs` of 2026-07-28 `tools/list` and `server/discover` results (one minute).
pub const DEFAULT_LIST_TTL_MS: u64 = 60_000;

/// Behaviour switches, changeable while the stand-in runs (see the `set_*` methods on
/// [`StandIn`](crate::StandIn)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switches {
    /// JSON or SSE responses. Default SSE.
    pub response_mode: ResponseMode,
    /// `tools/list` page size; `None` (or 0) = all tools in one page. Default `None`.
    pub tools_page_size: Option<usize>,
    /// Delay added before every `/mcp` request is handled, in milliseconds. Default 0.
    pub latency_ms: u64,
    /// Add `readOnlyHint` / `destructiveHint` annotations to tools (from their scope). Default off.
    pub annotations: bool,
    /// Also return tool results as `structuredContent`. Default off.
    pub structured_content: bool,
    /// In SSE + session mode, send a server→client `ping` before each `tools/call` result and wait for
    /// the client's answer. Default off.
    pub server_ping_before_result: bool,
    /// A misconfigured or hostile server: `tools/list` lists all 116 tools whatever the granted scope, and
    /// write tools are callable at any scope (still counted in
    /// [`CountersSnapshot::write_tool_calls`], still refused without touching the dataset). Default off.
    pub ignore_scope_filter: bool,
    /// Annotations that lie: every tool is listed `readOnlyHint: true, destructiveHint: false`, write and
    /// destructive tools included (implies annotations, whatever `annotations` says). Default off.
    pub lying_annotations: bool,
    /// Which protocol eras are spoken ([`ProtocolMode`]). Default [`ProtocolMode::Dual`].
    pub protocol: ProtocolMode,
    /// `ttlMs` on 2026-07-28 `tools/list` and `server/discover` results (both `cacheScope: "private"`,
    /// since the listing depends on the caller's grant). 2025-era results carry neither field.
    /// Close's values are unknown; default [`DEFAULT_LIST_TTL_MS`].
    pub list_ttl_ms: u64,
    /// A 2026-07-28 `tools/call` of this tool (`"*"`: of any tool) is answered with
    /// `resultType: "input_required"` (SEP-2322 multi round-trip) asking for an `elicitation/create`
    /// confirmation, whatever capabilities the client declared; the retry carrying the echoed
    /// `requestState` and `inputResponses` gets the tool's ordinary result. 2025-era calls are
    /// answered ordinarily. Nothing suggests Close does this: it is for testing clients that must
    /// refuse such a result. Default `None`.
    pub input_required_tool: Option<String>,
    /// Changes made to read tools' definitions in `tools/list`, by tool name (a vendor rewriting a
    /// tool after the operator approved it: "rug pull" and "tool poisoning" tests). Default none.
    pub tool_changes: std::collections::BTreeMap<String, ToolChange>,
    /// Read tools added to the listing (after the catalog's; each answers `{"extra_tool": NAME}`),
    /// as a vendor adds tools month by month. Default none.
    pub extra_tools: Vec<String>,
}

/// How a tool's definition differs from the catalog's ([`Switches::tool_changes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolChange {
    /// A new description.
    pub description: Option<String>,
    /// A free-text string property added to the input schema.
    pub add_property: Option<String>,
    /// `readOnlyHint` set to this value (the tool is listed with annotations).
    pub read_only_hint: Option<bool>,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            response_mode: ResponseMode::Sse,
            tools_page_size: None,
            latency_ms: 0,
            annotations: false,
            structured_content: false,
            server_ping_before_result: false,
            ignore_scope_filter: false,
            lying_annotations: false,
            protocol: ProtocolMode::Dual,
            list_ttl_ms: DEFAULT_LIST_TTL_MS,
            input_required_tool: None,
            tool_changes: Default::default(),
            extra_tools: Vec::new(),
        }
    }
}

/// Live counters (atomic; read them through [`StandIn::counters`](crate::StandIn::counters)).
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) http_requests: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) insufficient_scope: AtomicU64,
    pub(crate) initialize: AtomicU64,
    pub(crate) tools_list: AtomicU64,
    pub(crate) tool_calls_total: AtomicU64,
    pub(crate) write_tool_calls: AtomicU64,
    pub(crate) server_pings_sent: AtomicU64,
    pub(crate) server_pings_answered: AtomicU64,
    pub(crate) expired_session_hits: AtomicU64,
    pub(crate) rest_write_requests: AtomicU64,
    pub(crate) rest_writes: AtomicU64,
    pub(crate) discover: AtomicU64,
    pub(crate) requests_2026: AtomicU64,
    pub(crate) era_refusals: AtomicU64,
    pub(crate) input_required_sent: AtomicU64,
    pub(crate) tool_calls: Mutex<BTreeMap<String, u64>>,
    pub(crate) faults: FaultCounters,
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Every HTTP request to `/mcp` (any method, authenticated or not).
    pub http_requests: u64,
    /// Requests answered 401.
    pub unauthorized: u64,
    /// Requests answered 403 `insufficient_scope` (a bearer token whose grant lacks `mcp.read`).
    pub insufficient_scope: u64,
    /// `initialize` requests handled.
    pub initialize: u64,
    /// `tools/list` requests handled, both eras (a client that caches a 2026 listing for its
    /// `ttlMs` does not raise it).
    pub tools_list: u64,
    /// `tools/call` requests handled (any name).
    pub tool_calls_total: u64,
    /// `tools/call` of a write_safe / write_destructive tool, granted or not, including calls a fault
    /// (redirect, 500, 429) answered before the handler saw them.
    pub write_tool_calls: u64,
    /// Server→client pings sent / answered.
    pub server_pings_sent: u64,
    pub server_pings_answered: u64,
    /// Requests refused with 404 because they carried an expired session id.
    pub expired_session_hits: u64,
    /// Write requests (`POST`, `PUT`, `PATCH`, `DELETE`) that reached the REST API (`/api/v1/…`),
    /// with or without credentials.
    pub rest_write_requests: u64,
    /// REST writes that carried valid credentials and were accepted.
    pub rest_writes: u64,
    /// `server/discover` requests handled (answered with a discovery result).
    pub discover: u64,
    /// JSON-RPC requests of the 2026-07-28 era that passed authentication and the faults' early
    /// answers (redirect, 500, 429): a request is of that era when it is `server/discover`, carries
    /// an `io.modelcontextprotocol/*` key in `_meta`, or a `MCP-Protocol-Version` of 2026-07-28 or
    /// later. Counted whatever the answer (a -32020 or -32602 refusal included).
    pub requests_2026: u64,
    /// Requests refused because of their era: -32022 in [`ProtocolMode::Only2026`], -32601 to
    /// `server/discover` in [`ProtocolMode::Only2025`], 405 to GET / DELETE in `Only2026`.
    pub era_refusals: u64,
    /// `resultType: "input_required"` results sent (switch `input_required_tool`).
    pub input_required_sent: u64,
    /// `tools/call` count per requested tool name.
    pub tool_calls: BTreeMap<String, u64>,
    /// Faults sent, per kind ([`Faults`](crate::Faults)).
    pub faults_injected: FaultCountersSnapshot,
}

impl CountersSnapshot {
    /// How often `name` was called.
    pub fn calls_of(&self, name: &str) -> u64 {
        self.tool_calls.get(name).copied().unwrap_or(0)
    }
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_tool_call(&self, name: &str, is_write: bool) {
        Self::bump(&self.tool_calls_total);
        if is_write {
            Self::bump(&self.write_tool_calls);
        }
        let mut map = self.tool_calls.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(crate::catalog::truncate(name, 100)).or_insert(0) += 1;
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            http_requests: get(&self.http_requests),
            unauthorized: get(&self.unauthorized),
            insufficient_scope: get(&self.insufficient_scope),
            initialize: get(&self.initialize),
            tools_list: get(&self.tools_list),
            tool_calls_total: get(&self.tool_calls_total),
            write_tool_calls: get(&self.write_tool_calls),
            server_pings_sent: get(&self.server_pings_sent),
            server_pings_answered: get(&self.server_pings_answered),
            expired_session_hits: get(&self.expired_session_hits),
            rest_write_requests: get(&self.rest_write_requests),
            rest_writes: get(&self.rest_writes),
            discover: get(&self.discover),
            requests_2026: get(&self.requests_2026),
            era_refusals: get(&self.era_refusals),
            input_required_sent: get(&self.input_required_sent),
            tool_calls: self
                .tool_calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            faults_injected: self.faults.snapshot(),
        }
    }

    pub(crate) fn reset(&self) {
        self.faults.reset();
        for c in [
            &self.http_requests,
            &self.unauthorized,
            &self.insufficient_scope,
            &self.initialize,
            &self.tools_list,
            &self.tool_calls_total,
            &self.write_tool_calls,
            &self.server_pings_sent,
            &self.server_pings_answered,
            &self.expired_session_hits,
            &self.rest_write_requests,
            &self.rest_writes,
            &self.discover,
            &self.requests_2026,
            &self.era_refusals,
            &self.input_required_sent,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.tool_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

// ---------------------------------------------------------------------------------------------------
// The authorization server
// ---------------------------------------------------------------------------------------------------

/// What the authorization endpoint does with a valid request (`close-mcp.md` §2.1: on Close the user
/// picks an organization and the scope on app.close.com's consent screen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConsentMode {
    /// Redirect straight back with a code for the dataset's organization (headless tests).
    #[default]
    AutoApprove,
    /// Redirect straight back with `error=access_denied`.
    AutoDeny,
    /// Show an HTML consent page (organization choice, scope, Approve / Deny); the form posts back to
    /// the issuer, which then redirects like the automatic modes.
    Page,
}

impl fmt::Display for ConsentMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConsentMode::AutoApprove => "auto-approve",
            ConsentMode::AutoDeny => "auto-deny",
            ConsentMode::Page => "page",
        })
    }
}

impl FromStr for ConsentMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "auto-approve" | "approve" => Ok(ConsentMode::AutoApprove),
            "auto-deny" | "deny" => Ok(ConsentMode::AutoDeny),
            "page" => Ok(ConsentMode::Page),
            other => Err(format!(
                "unknown consent mode '{}' (expected auto-approve, auto-deny or page)",
                crate::catalog::truncate(other, 40)
            )),
        }
    }
}

/// Authorization-server switches, changeable while the stand-in runs (see the `set_*` methods on
/// [`StandIn`](crate::StandIn)). Changes apply to requests that arrive afterwards; tokens already
/// issued keep their lifetime and scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthSwitches {
    /// Consent behaviour. Default [`ConsentMode::AutoApprove`] (the binary defaults to the page).
    pub consent: ConsentMode,
    /// `expires_in` of access tokens, in seconds. Default 3600 (Close does not publish its lifetime;
    /// ~1 h is a third-party guess, `close-mcp.md` §2.1).
    pub access_token_ttl_secs: u64,
    /// Lifetime of authorization codes, in seconds (0 = expired at once). Default 60.
    pub code_ttl_secs: u64,
    /// The token endpoint grants `offline_access` only (no `mcp.*` scope), whatever was requested and
    /// consented; the MCP endpoint then answers such tokens 403 `insufficient_scope`. Default off.
    pub grant_without_read: bool,
    /// Advertise `code_challenge_methods_supported: ["S256"]`. Off: the metadata lists `["plain"]`
    /// only and the authorization endpoint refuses every PKCE method (a client must stop before the
    /// authorization request). Default on.
    pub advertise_s256: bool,
    /// `offline_access` is listed in `scopes_supported` and grantable (refresh tokens). Off: it is
    /// unlisted, and requesting it is `invalid_scope`. Default on.
    pub offline_access_supported: bool,
    /// The `resource` parameter (RFC 8707) is required at the authorization and token endpoints.
    /// Off: it may be omitted (a given one must still name this server). Default on.
    pub resource_required: bool,
    /// Write the protected-resource metadata's `authorization_servers` entry with a trailing slash
    /// (`http://127.0.0.1:Q/`), as Close's document does (`https://api.close.com/` next to the issuer
    /// `https://api.close.com`). Default off: the entry is the issuer exactly.
    pub prm_issuer_trailing_slash: bool,
    /// The issuer's origin serves its own authorization-server metadata
    /// (`/.well-known/oauth-authorization-server`, `/.well-known/openid-configuration`). Off: 404
    /// there, so a client must use the copy on the MCP host — which is where Close serves both
    /// documents (`close-mcp.md` §2). Default on.
    pub issuer_serves_metadata: bool,
}

impl Default for OAuthSwitches {
    fn default() -> Self {
        OAuthSwitches {
            consent: ConsentMode::AutoApprove,
            access_token_ttl_secs: 3600,
            code_ttl_secs: 60,
            grant_without_read: false,
            advertise_s256: true,
            offline_access_supported: true,
            resource_required: true,
            prm_issuer_trailing_slash: false,
            issuer_serves_metadata: true,
        }
    }
}

/// Live authorization-server counters (read them through
/// [`StandIn::oauth_counters`](crate::StandIn::oauth_counters)).
#[derive(Debug, Default)]
pub struct OAuthCounters {
    pub(crate) registrations: AtomicU64,
    pub(crate) registrations_rejected: AtomicU64,
    pub(crate) authorization_requests: AtomicU64,
    pub(crate) authorization_errors: AtomicU64,
    pub(crate) authorization_requests_without_state: AtomicU64,
    pub(crate) consent_decisions: AtomicU64,
    pub(crate) codes_issued: AtomicU64,
    pub(crate) token_exchanges: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) token_errors: AtomicU64,
    pub(crate) code_reuse_detections: AtomicU64,
    pub(crate) refresh_token_reuse_detections: AtomicU64,
    pub(crate) revocations: AtomicU64,
    pub(crate) requested_scopes: Mutex<Vec<String>>,
}

/// A copy of the authorization-server counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OAuthCountersSnapshot {
    /// Client registrations accepted (201).
    pub registrations: u64,
    /// Client registrations refused (400).
    pub registrations_rejected: u64,
    /// GET requests to the authorization endpoint (any outcome).
    pub authorization_requests: u64,
    /// Authorization requests (and consent posts) answered with an error page or an error redirect,
    /// `access_denied` included.
    pub authorization_errors: u64,
    /// Authorization requests without a `state` parameter.
    pub authorization_requests_without_state: u64,
    /// Approve / Deny posts from the consent page.
    pub consent_decisions: u64,
    /// Authorization codes issued.
    pub codes_issued: u64,
    /// Token requests with `grant_type=authorization_code` (any outcome).
    pub token_exchanges: u64,
    /// Token requests with `grant_type=refresh_token` (any outcome).
    pub refreshes: u64,
    /// Token requests answered with an error.
    pub token_errors: u64,
    /// Authorization codes presented a second time.
    pub code_reuse_detections: u64,
    /// Rotated (already used) refresh tokens presented again.
    pub refresh_token_reuse_detections: u64,
    /// Well-formed requests to the revocation endpoint.
    pub revocations: u64,
    /// The `scope` parameter of each authorization request, in order (`""` when absent).
    pub requested_scopes: Vec<String>,
}

impl OAuthCounters {
    /// Remembers the scope parameter of an authorization request (the list is capped at 10 000).
    pub(crate) fn record_scope(&self, scope: Option<&str>) {
        let mut list = self
            .requested_scopes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if list.len() < 10_000 {
            list.push(crate::catalog::truncate(scope.unwrap_or(""), 200));
        }
    }

    pub fn snapshot(&self) -> OAuthCountersSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        OAuthCountersSnapshot {
            registrations: get(&self.registrations),
            registrations_rejected: get(&self.registrations_rejected),
            authorization_requests: get(&self.authorization_requests),
            authorization_errors: get(&self.authorization_errors),
            authorization_requests_without_state: get(&self.authorization_requests_without_state),
            consent_decisions: get(&self.consent_decisions),
            codes_issued: get(&self.codes_issued),
            token_exchanges: get(&self.token_exchanges),
            refreshes: get(&self.refreshes),
            token_errors: get(&self.token_errors),
            code_reuse_detections: get(&self.code_reuse_detections),
            refresh_token_reuse_detections: get(&self.refresh_token_reuse_detections),
            revocations: get(&self.revocations),
            requested_scopes: self
                .requested_scopes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    pub(crate) fn reset(&self) {
        for c in [
            &self.registrations,
            &self.registrations_rejected,
            &self.authorization_requests,
            &self.authorization_errors,
            &self.authorization_requests_without_state,
            &self.consent_decisions,
            &self.codes_issued,
            &self.token_exchanges,
            &self.refreshes,
            &self.token_errors,
            &self.code_reuse_detections,
            &self.refresh_token_reuse_detections,
            &self.revocations,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.requested_scopes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_modes_parse_from_their_names() {
        assert_eq!("json".parse::<ResponseMode>(), Ok(ResponseMode::Json));
        assert_eq!("SSE".parse::<ResponseMode>(), Ok(ResponseMode::Sse));
        assert!("xml".parse::<ResponseMode>().is_err());
    }

    #[test]
    fn protocol_modes_parse_from_their_names() {
        for mode in [
            ProtocolMode::Dual,
            ProtocolMode::Only2026,
            ProtocolMode::Only2025,
        ] {
            assert_eq!(mode.to_string().parse::<ProtocolMode>(), Ok(mode));
        }
        assert_eq!(
            "ONLY_2026".parse::<ProtocolMode>(),
            Ok(ProtocolMode::Only2026)
        );
        assert_eq!("2025".parse::<ProtocolMode>(), Ok(ProtocolMode::Only2025));
        let err = "x".repeat(500).parse::<ProtocolMode>().unwrap_err();
        assert!(!err.contains('\n') && err.len() < 200, "{err}");
    }

    #[test]
    fn counters_count_calls_per_tool_and_writes() {
        let c = Counters::default();
        c.count_tool_call("find_opportunities", false);
        c.count_tool_call("find_opportunities", false);
        c.count_tool_call("delete_lead", true);
        let s = c.snapshot();
        assert_eq!(s.tool_calls_total, 3);
        assert_eq!(s.write_tool_calls, 1);
        assert_eq!(s.calls_of("find_opportunities"), 2);
        c.reset();
        assert_eq!(c.snapshot(), CountersSnapshot::default());
    }

    #[test]
    fn consent_modes_parse_from_their_names() {
        assert_eq!(
            "auto-approve".parse::<ConsentMode>(),
            Ok(ConsentMode::AutoApprove)
        );
        assert_eq!(
            "AUTO_DENY".parse::<ConsentMode>(),
            Ok(ConsentMode::AutoDeny)
        );
        assert_eq!(" page ".parse::<ConsentMode>(), Ok(ConsentMode::Page));
        assert!("maybe".parse::<ConsentMode>().is_err());
        for mode in [
            ConsentMode::AutoApprove,
            ConsentMode::AutoDeny,
            ConsentMode::Page,
        ] {
            assert_eq!(mode.to_string().parse::<ConsentMode>(), Ok(mode));
        }
    }

    #[test]
    fn oauth_counters_remember_requested_scopes_until_reset() {
        let c = OAuthCounters::default();
        Counters::bump(&c.registrations);
        c.record_scope(Some("mcp.read offline_access"));
        c.record_scope(None);
        let s = c.snapshot();
        assert_eq!(s.registrations, 1);
        assert_eq!(
            s.requested_scopes,
            vec!["mcp.read offline_access".to_string(), String::new()]
        );
        c.reset();
        assert_eq!(c.snapshot(), OAuthCountersSnapshot::default());
    }
}
