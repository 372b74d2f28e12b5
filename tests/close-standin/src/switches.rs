//! Run-time switches and counters.
//!
//! Close's real behaviour on these points is unknown (`close-mcp.md` §3 and §6: JSON vs SSE, sessions,
//! pagination, annotations, structured content), so tests choose. Defaults follow the MCP Python SDK's
//! defaults (SSE responses, sessions on), since Close's Python-style 401 body suggests a Python server;
//! `tools/list` is one page (a 107-tool single page is "likely", §3).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
    /// Add `readOnlyHint` / `destructiveHint` annotations to tools. Default off.
    pub annotations: bool,
    /// Also return tool results as `structuredContent`. Default off.
    pub structured_content: bool,
    /// In SSE + session mode, send a server→client `ping` before each `tools/call` result and wait for
    /// the client's answer. Default off.
    pub server_ping_before_result: bool,
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
        }
    }
}

/// Live counters (atomic; read them through [`StandIn::counters`](crate::StandIn::counters)).
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) http_requests: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) initialize: AtomicU64,
    pub(crate) tools_list: AtomicU64,
    pub(crate) tool_calls_total: AtomicU64,
    pub(crate) write_tool_calls: AtomicU64,
    pub(crate) server_pings_sent: AtomicU64,
    pub(crate) server_pings_answered: AtomicU64,
    pub(crate) expired_session_hits: AtomicU64,
    pub(crate) tool_calls: Mutex<BTreeMap<String, u64>>,
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Every HTTP request to `/mcp` (any method, authenticated or not).
    pub http_requests: u64,
    /// Requests answered 401.
    pub unauthorized: u64,
    /// `initialize` requests handled.
    pub initialize: u64,
    /// `tools/list` requests handled.
    pub tools_list: u64,
    /// `tools/call` requests handled (any name).
    pub tool_calls_total: u64,
    /// `tools/call` of a write_safe / write_destructive tool, granted or not.
    pub write_tool_calls: u64,
    /// Server→client pings sent / answered.
    pub server_pings_sent: u64,
    pub server_pings_answered: u64,
    /// Requests refused with 404 because they carried an expired session id.
    pub expired_session_hits: u64,
    /// `tools/call` count per requested tool name.
    pub tool_calls: BTreeMap<String, u64>,
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
            initialize: get(&self.initialize),
            tools_list: get(&self.tools_list),
            tool_calls_total: get(&self.tool_calls_total),
            write_tool_calls: get(&self.write_tool_calls),
            server_pings_sent: get(&self.server_pings_sent),
            server_pings_answered: get(&self.server_pings_answered),
            expired_session_hits: get(&self.expired_session_hits),
            tool_calls: self
                .tool_calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    pub(crate) fn reset(&self) {
        for c in [
            &self.http_requests,
            &self.unauthorized,
            &self.initialize,
            &self.tools_list,
            &self.tool_calls_total,
            &self.write_tool_calls,
            &self.server_pings_sent,
            &self.server_pings_answered,
            &self.expired_session_hits,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.tool_calls
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
}
