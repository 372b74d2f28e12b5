//! The limits of one call, inside the guest and on the host's side.
//!
//! * [`CallLimiter`]: the guest's linear memories and tables (wasmtime's `ResourceLimiter`).
//! * [`CallBudget`]: the host memory a call can make the host hold on its behalf, in one figure per
//!   call (`host_memory_mib` in the policy, default 16 MiB): `wasi:http` fields and their bytes,
//!   every resource-table entry, request bodies the send hook buffers, OAuth documents it reads,
//!   outgoing requests in flight, and the log, state and secret bytes a call writes through the host
//!   interface. Past the budget the call fails with a one-line error naming what it filled.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How many times the size of a JSON text its `serde_json::Value` may take on the heap (measured: a
/// text of `[0,0,…]` costs 16 times its size). Parsing a body charges this much to the call's budget.
pub const JSON_PARSE_FACTOR: usize = 16;

/// The memory and table limits of one call's store. Every linear memory and every table of the
/// instance counts against one total, so a component made of several core modules gets no more than
/// one that has a single memory.
pub struct CallLimiter {
    memory_limit: usize,
    /// Whether a growth was refused (the call then failed for memory).
    pub memory_denied: bool,
    /// Bytes of linear memory the instance holds, all memories together.
    memory_used: usize,
    /// Table elements the instance holds, all tables together.
    table_elements: usize,
}

impl CallLimiter {
    /// Most linear memories one instance may define (a Rust component has one or two).
    const MAX_MEMORIES: usize = 8;
    /// Most tables one instance may define (a component's adapter shims define a few each).
    const MAX_TABLES: usize = 64;
    /// Most table elements, all tables together.
    const MAX_TABLE_ELEMENTS: usize = 1_000_000;

    /// A limiter for `memory_limit` bytes of linear memory.
    pub fn new(memory_limit: usize) -> CallLimiter {
        CallLimiter { memory_limit, memory_denied: false, memory_used: 0, table_elements: 0 }
    }

    /// Account for a growth from `current` to `desired` against `used`, refusing past `limit`.
    fn grow(used: &mut usize, limit: usize, current: usize, desired: usize) -> bool {
        let total = used.saturating_sub(current).saturating_add(desired);
        if total > limit {
            return false;
        }
        *used = total;
        true
    }
}

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // `used - current + desired`: the new total with this memory at its new size.
        if !Self::grow(&mut self.memory_used, self.memory_limit, current, desired) {
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(Self::grow(&mut self.table_elements, Self::MAX_TABLE_ELEMENTS, current, desired))
    }

    fn instances(&self) -> usize {
        100
    }

    fn tables(&self) -> usize {
        Self::MAX_TABLES
    }

    fn memories(&self) -> usize {
        Self::MAX_MEMORIES
    }
}

/// The host memory one call may make the host hold (see the module docs).
#[derive(Debug)]
pub struct CallBudget {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    exceeded: Mutex<Option<String>>,
}

/// Bytes held against a [`CallBudget`] until dropped.
#[must_use]
pub struct Held<'a> {
    budget: &'a CallBudget,
    bytes: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

impl CallBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> CallBudget {
        CallBudget { limit: usize::try_from(limit).unwrap_or(usize::MAX), used: AtomicUsize::new(0), peak: AtomicUsize::new(0), exceeded: Mutex::new(None) }
    }

    /// Take `bytes` for `what` until [`Self::release`]; refused (nothing taken) past the budget.
    pub fn charge(&self, what: &str, bytes: usize) -> Result<(), String> {
        let mut current = self.used.load(Ordering::SeqCst);
        loop {
            let next = current.saturating_add(bytes);
            if next > self.limit {
                let mib = self.limit as f64 / (1024.0 * 1024.0);
                let why = format!(
                    "the call made the host hold more than {mib:.0} MiB on its behalf ({what}); raise host_memory_mib in the connection's policy if that is intended"
                );
                let mut e = self.exceeded.lock().unwrap_or_else(|p| p.into_inner());
                if e.is_none() {
                    *e = Some(why.clone());
                }
                return Err(why);
            }
            match self.used.compare_exchange(current, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::SeqCst);
                    return Ok(());
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Take `bytes` for `what` while the returned guard lives.
    pub fn hold(&self, what: &str, bytes: usize) -> Result<Held<'_>, String> {
        self.charge(what, bytes)?;
        Ok(Held { budget: self, bytes })
    }

    /// Give back `bytes` taken by [`Self::charge`].
    pub fn release(&self, bytes: usize) {
        let _ = self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| Some(u.saturating_sub(bytes)));
    }

    /// The first refusal of this call, if any.
    pub fn exceeded(&self) -> Option<String> {
        self.exceeded.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// The most bytes held at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// The budget.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_memory_of_an_instance_counts_against_one_limit() {
        use wasmtime::ResourceLimiter;
        const MIB: usize = 1024 * 1024;
        let mut l = CallLimiter::new(64 * MIB);
        // Two memories of 30 MiB each fit; a third of 30 MiB does not, nor does growing one past the total.
        assert!(l.memory_growing(0, 30 * MIB, None).unwrap());
        assert!(l.memory_growing(0, 30 * MIB, None).unwrap());
        assert!(!l.memory_growing(0, 30 * MIB, None).unwrap());
        assert!(l.memory_denied);
        assert!(!l.memory_growing(30 * MIB, 40 * MIB, None).unwrap());
        // Growing within the total still works, and a refused growth changed nothing.
        assert!(l.memory_growing(30 * MIB, 34 * MIB, None).unwrap());
        assert_eq!(l.memory_used, 64 * MIB);
        assert!(!l.memory_growing(34 * MIB, 34 * MIB + 1, None).unwrap());
    }

    #[test]
    fn table_elements_count_across_tables() {
        use wasmtime::ResourceLimiter;
        let mut l = CallLimiter::new(0);
        assert!(l.table_growing(0, 600_000, None).unwrap());
        assert!(!l.table_growing(0, 600_000, None).unwrap());
        assert!(l.table_growing(0, 400_000, None).unwrap());
        assert!(l.tables() < 100 && l.memories() < 100);
    }

    #[test]
    fn the_host_memory_budget_is_one_figure_for_everything_a_call_holds() {
        let b = CallBudget::new(1000);
        b.charge("fields", 600).unwrap();
        {
            let _h = b.hold("request bodies", 300).unwrap();
            assert_eq!(b.used(), 900);
            let e = b.hold("log lines", 200).err().unwrap();
            assert!(e.contains("log lines") && e.contains("host_memory_mib"), "{e}");
        }
        assert_eq!(b.used(), 600, "a held amount goes back when the guard drops");
        assert_eq!(b.peak(), 900);
        b.release(600);
        assert_eq!(b.used(), 0);
        assert!(b.exceeded().unwrap().contains("log lines"), "the first refusal is kept");
    }
}
