//! Resource limits for one call into a connector.

use std::time::Duration;

/// Resource limits for one call into a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory a connector instance may grow to, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time one call may take, all HTTP requests included.
    pub call_timeout: Duration,
    /// Bytes of response bodies one call may receive, counted while streaming.
    pub max_response_bytes: u64,
    /// Outgoing HTTP requests one call may make.
    pub max_requests_per_call: u32,
    /// Host memory one call may make the host hold on its behalf (fields, buffered bodies, table
    /// entries, log/state/secret traffic), in bytes.
    pub host_memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 * 1024 * 1024,
            call_timeout: Duration::from_secs(30),
            max_response_bytes: 16 * 1024 * 1024,
            max_requests_per_call: 32,
            host_memory_bytes: 16 * 1024 * 1024,
        }
    }
}
