//! Errors are data: one type for everything a host operation can fail with, each variant rendering as
//! one line that says what happened and what to do next.
//!
//! [`ConnectorError`] mirrors the WIT `error` variant unchanged (the connector's own diagnosis);
//! [`HostError`] adds what only the host can know: a limit that stopped the connector, a blocked tool,
//! a policy denial with its detailed reason, bad operator input, storage failures.

use crate::sandbox::bindings::wit;
use serde::Serialize;
use std::fmt;

/// The WIT `error` variant, as the host and the engine see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ConnectorError {
    /// Credentials missing, expired or revoked.
    Unauthorized { message: String },
    /// The grant lacks a scope.
    InsufficientScope { required: Vec<String>, granted: Vec<String>, message: String },
    /// The vendor is throttling.
    RateLimited { retry_after_ms: Option<u64>, message: String },
    /// Bad arguments.
    InvalidArguments { message: String },
    /// No such tool.
    UnknownTool { message: String },
    /// The tool reported a failure of its own.
    ToolFailed { message: String },
    /// An HTTP error from the vendor.
    Upstream { status: u16, message: String },
    /// The vendor could not be reached.
    Unavailable { message: String },
    /// The vendor's answer could not be understood.
    Protocol { message: String },
    /// The host refused an outgoing request.
    DeniedByPolicy { message: String },
}

impl ConnectorError {
    /// A short machine name of the case (`unauthorized`, `rate-limited`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorError::Unauthorized { .. } => "unauthorized",
            ConnectorError::InsufficientScope { .. } => "insufficient-scope",
            ConnectorError::RateLimited { .. } => "rate-limited",
            ConnectorError::InvalidArguments { .. } => "invalid-arguments",
            ConnectorError::UnknownTool { .. } => "unknown-tool",
            ConnectorError::ToolFailed { .. } => "tool-failed",
            ConnectorError::Upstream { .. } => "upstream",
            ConnectorError::Unavailable { .. } => "unavailable",
            ConnectorError::Protocol { .. } => "protocol",
            ConnectorError::DeniedByPolicy { .. } => "denied-by-policy",
        }
    }
}

impl ConnectorError {
    /// Apply `f` to every text field (used to mask secrets a connector might echo).
    pub fn map_text(&mut self, f: impl Fn(&str) -> String) {
        match self {
            ConnectorError::Unauthorized { message }
            | ConnectorError::InvalidArguments { message }
            | ConnectorError::UnknownTool { message }
            | ConnectorError::ToolFailed { message }
            | ConnectorError::Unavailable { message }
            | ConnectorError::Protocol { message }
            | ConnectorError::DeniedByPolicy { message }
            | ConnectorError::RateLimited { message, .. }
            | ConnectorError::Upstream { message, .. } => *message = f(message),
            ConnectorError::InsufficientScope { required, granted, message } => {
                *message = f(message);
                for s in required.iter_mut().chain(granted.iter_mut()) {
                    *s = f(s);
                }
            }
        }
    }
}

impl From<wit::Error> for ConnectorError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Unauthorized(message) => ConnectorError::Unauthorized { message },
            wit::Error::InsufficientScope(p) => {
                ConnectorError::InsufficientScope { required: p.required, granted: p.granted, message: p.message }
            }
            wit::Error::RateLimited(r) => ConnectorError::RateLimited { retry_after_ms: r.retry_after_ms, message: r.message },
            wit::Error::InvalidArguments(message) => ConnectorError::InvalidArguments { message },
            wit::Error::UnknownTool(message) => ConnectorError::UnknownTool { message },
            wit::Error::ToolFailed(message) => ConnectorError::ToolFailed { message },
            wit::Error::Upstream(u) => ConnectorError::Upstream { status: u.status, message: u.message },
            wit::Error::Unavailable(message) => ConnectorError::Unavailable { message },
            wit::Error::Protocol(message) => ConnectorError::Protocol { message },
            wit::Error::DeniedByPolicy(message) => ConnectorError::DeniedByPolicy { message },
        }
    }
}

pub use crate::text::{one_line, sentence};

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectorError::Unauthorized { message } => {
                write!(f, "unauthorized: {}", sentence(message))?;
                if !message.to_lowercase().contains("reconnect") {
                    write!(f, " Reconnect the connection (claribi-host reconnect NAME).")?;
                }
                Ok(())
            }
            ConnectorError::InsufficientScope { message, required, granted } => {
                if message.is_empty() {
                    write!(f, "Insufficient scope: need {}, granted {}. Reconnect and accept the scope.", required.join(" "), granted.join(" "))
                } else {
                    f.write_str(&one_line(message))
                }
            }
            ConnectorError::RateLimited { retry_after_ms, message } => {
                write!(f, "rate limited by the vendor: {}", sentence(message))?;
                match retry_after_ms {
                    Some(ms) => write!(f, " Retry in {:.1} s.", *ms as f64 / 1000.0),
                    None => write!(f, " Retry later."),
                }
            }
            ConnectorError::InvalidArguments { message } => write!(f, "invalid arguments: {}", one_line(message)),
            ConnectorError::UnknownTool { message } => {
                write!(f, "unknown tool: {} List the tools with `claribi-host tools NAME`.", sentence(message))
            }
            ConnectorError::ToolFailed { message } => write!(f, "the tool failed: {}", one_line(message)),
            ConnectorError::Upstream { status, message } => {
                write!(f, "the vendor answered HTTP {status}: {}", sentence(message))?;
                if *status >= 500 {
                    write!(f, " Retry later.")?;
                }
                Ok(())
            }
            ConnectorError::Unavailable { message } => {
                write!(f, "the vendor could not be reached: {} Check the endpoint and retry.", sentence(message))
            }
            ConnectorError::Protocol { message } => write!(f, "protocol error: {}", one_line(message)),
            ConnectorError::DeniedByPolicy { message } => write!(f, "denied by policy: {}", one_line(message)),
        }
    }
}

/// Everything a host operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The connector reported an error.
    Connector(ConnectorError),
    /// The tool is on the write-tool blocklist; the connector was not invoked.
    Blocked { tool: String, reason: String },
    /// The connector ran past its time limit and was stopped.
    Deadline { connection: String, limit_ms: u128 },
    /// The call never started: no instance slot became free within its time limit (too many calls at
    /// once, on this connection or on the host).
    Busy { connection: String, waited_ms: u128 },
    /// The connector tried to grow its memory past the limit and was stopped.
    MemoryLimit { connection: String, limit_mib: u64 },
    /// The connector made the host hold more memory on its behalf than the call's budget allows.
    HostMemory { connection: String, detail: String },
    /// The connector trapped (a bug, an abort or a panic).
    Crashed { connection: String, detail: String },
    /// The component is not a valid connector.
    InvalidPlugin(String),
    /// The component was built for an older `claribi:data-source` (its version), which handed
    /// credentials to connectors; this host does not run it.
    OldContract(String),
    /// Bad operator input (names, files, URLs, arguments).
    Usage(String),
    /// No connection of that name.
    NoSuchConnection(String),
    /// Storage or key problems.
    Storage(String),
}

impl HostError {
    /// A short machine name of the case.
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::Connector(c) => c.kind(),
            HostError::Blocked { .. } => "blocked",
            HostError::Deadline { .. } => "deadline",
            HostError::Busy { .. } => "busy",
            HostError::MemoryLimit { .. } => "memory-limit",
            HostError::HostMemory { .. } => "host-memory",
            HostError::Crashed { .. } => "crashed",
            HostError::InvalidPlugin(_) => "invalid-plugin",
            HostError::OldContract(_) => "old-contract",
            HostError::Usage(_) => "usage",
            HostError::NoSuchConnection(_) => "no-such-connection",
            HostError::Storage(_) => "storage",
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Connector(c) => c.fmt(f),
            HostError::Blocked { reason, .. } => {
                write!(f, "{reason}; clariBI connections are read-only, so write tools are never called")
            }
            HostError::Deadline { connection, limit_ms } => write!(
                f,
                "connection `{connection}`: the connector ran past its {limit_ms} ms time limit and was stopped; retry, or raise call_timeout_ms in its policy"
            ),
            HostError::Busy { connection, waited_ms } => write!(
                f,
                "connection `{connection}`: too many calls at once, none of them finished within {waited_ms} ms to free a slot; retry shortly"
            ),
            HostError::MemoryLimit { connection, limit_mib } => write!(
                f,
                "connection `{connection}`: the connector exceeded its {limit_mib} MiB memory limit and was stopped; raise memory_mib in its policy if the data really is that large"
            ),
            HostError::HostMemory { connection, detail } => {
                write!(f, "connection `{connection}`: {}; the call was stopped", one_line(detail))
            }
            HostError::Crashed { connection, detail } => {
                write!(f, "connection `{connection}`: the connector crashed ({}); report it to the connector's author", one_line(detail))
            }
            HostError::InvalidPlugin(m) => write!(f, "invalid connector: {}", one_line(m)),
            HostError::OldContract(v) => write!(
                f,
                "the connector was built for claribi:data-source@{}, which handed credentials to connectors; this host runs @{} and keeps them out. Rebuild the connector against wit/data-source.wit, or move a connection to a new build with `claribi-host upgrade NAME --plugin FILE` (builtin:close and builtin:mcp are current)",
                one_line(v),
                crate::sandbox::runtime::CONTRACT_VERSION
            ),
            HostError::Usage(m) => f.write_str(&one_line(m)),
            HostError::NoSuchConnection(n) => {
                write!(f, "no connection named `{n}`; list them with `claribi-host connections`")
            }
            HostError::Storage(m) => write!(f, "storage error: {}", one_line(m)),
        }
    }
}

impl std::error::Error for HostError {}

impl From<ConnectorError> for HostError {
    fn from(e: ConnectorError) -> Self {
        HostError::Connector(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_one_line() {
        let cases = vec![
            HostError::Connector(ConnectorError::Unauthorized { message: "bad\nkey".into() }),
            HostError::Connector(ConnectorError::Upstream { status: 502, message: "x\r\ny".into() }),
            HostError::Connector(ConnectorError::RateLimited { retry_after_ms: Some(1500), message: "slow down".into() }),
            HostError::Crashed { connection: "c".into(), detail: "a\nb".into() },
            HostError::Usage("line one\nline two".into()),
        ];
        for c in cases {
            let s = c.to_string();
            assert!(!s.contains('\n') && !s.contains('\r'), "{s}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let s = HostError::Connector(ConnectorError::Unauthorized { message: "HTTP 401".into() }).to_string();
        assert!(s.contains("Reconnect"), "{s}");
        let s = HostError::Connector(ConnectorError::RateLimited { retry_after_ms: Some(1500), message: "m".into() }).to_string();
        assert!(s.contains("Retry in 1.5 s"), "{s}");
        let s = HostError::NoSuchConnection("x".into()).to_string();
        assert!(s.contains("claribi-host connections"), "{s}");
    }

    #[test]
    fn long_connector_messages_are_bounded() {
        let s = one_line(&"x".repeat(10_000));
        assert!(s.chars().count() <= 401);
    }
}
