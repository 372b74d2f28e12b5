//! What a call needs to know about its connection, read from the store once and kept until the store
//! says something changed.
//!
//! Before, every call read the connection's record (and parsed its policy), read the tools the last
//! listing withheld twice (parsing them each time), and had SQLite walk the cached listing's JSON to
//! find the tool. Now a call reads one number — the store's generation counter
//! ([`crate::vault::store`]'s `generation`, kept by triggers, so a write from the CLI, the console or
//! another host process on the same database changes it) — and reuses what it prepared while that
//! number stands:
//!
//! ```text
//! prepared("close")
//!   ├─ generation = SELECT n FROM generation             one indexed row
//!   ├─ cached for "close" at this generation?  ── yes ──► Arc<Prepared> (no parse, no copy)
//!   └─ no: record (policy parsed), cached listing (parsed once: tools offered, withheld, ttl, blocklist
//!          fingerprint), kept under the generation read *before* reading them
//! ```
//!
//! Reading the generation first means a write that lands while a host prepares is never hidden: the
//! host keeps the older number and prepares again on the next call. What the prepared state holds is
//! what the store holds; nothing here decides anything — the checks stay where they were
//! (`crate::service::calls`, `crate::policy::tools`).

use super::HostService;
use crate::errors::HostError;
use crate::policy::tools::{BlockedTool, ToolListing};
use crate::vault::store::ConnectionRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A connection's prepared state.
pub(crate) struct Prepared {
    /// The store's generation when this was read.
    pub generation: i64,
    /// The connection's record.
    pub record: ConnectionRecord,
    /// The last listing and when it was made (Unix seconds); `None` before a first listing.
    pub listing: Option<(i64, ToolListing)>,
    /// The tools the last listing withheld (empty before a first listing).
    pub withheld: Arc<Vec<BlockedTool>>,
}

/// Per connection name, the state last prepared.
#[derive(Default)]
pub(crate) struct PreparedCache {
    by_name: Mutex<HashMap<String, Arc<Prepared>>>,
}

impl Prepared {
    /// Whether the last listing offered `tool`, if there is a listing made under `fingerprint` (the
    /// blocklist in force) that is still fresh `now` (Unix seconds).
    pub fn offered(&self, tool: &str, fingerprint: &str, now: i64) -> Option<bool> {
        offered_in(self.listing.as_ref(), tool, fingerprint, now)
    }
}

fn offered_in(listing: Option<&(i64, ToolListing)>, tool: &str, fingerprint: &str, now: i64) -> Option<bool> {
    let (listed_at, listing) = listing?;
    listing.reusable(fingerprint, *listed_at, now).then(|| listing.tools.iter().any(|t| t.name == tool))
}

impl HostService {
    /// The connector a connection runs (its `describe` id), from the prepared state.
    pub fn connector_id(&self, name: &str) -> Result<String, HostError> {
        Ok(self.prepared(name)?.record.connector_id.clone())
    }

    /// The prepared state of connection `name` (see the module docs).
    pub(crate) fn prepared(&self, name: &str) -> Result<Arc<Prepared>, HostError> {
        let generation = self.store.generation().map_err(HostError::Storage)?;
        if let Some(p) = self.prepared.by_name.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            if p.generation == generation {
                return Ok(p.clone());
            }
        }
        let record = self.connection(name)?;
        let listing = self
            .store
            .tool_cache(&record.id)
            .map_err(HostError::Storage)?
            .and_then(|(at, json)| serde_json::from_str::<ToolListing>(&json).ok().map(|l| (at, l)));
        let withheld = Arc::new(listing.as_ref().map(|(_, l)| l.blocked.clone()).unwrap_or_default());
        let prepared = Arc::new(Prepared { generation, record, listing, withheld });
        let mut map = self.prepared.by_name.lock().unwrap_or_else(|p| p.into_inner());
        // Any change made every older entry stale (one counter for the whole store).
        map.retain(|_, p| p.generation >= generation);
        match map.get(name) {
            Some(existing) if existing.generation > generation => {}
            _ => {
                map.insert(name.to_string(), prepared.clone());
            }
        }
        Ok(prepared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tools::{Annotations, ToolInfo};

    fn listing(ttl_ms: Option<u64>) -> ToolListing {
        let tool = ToolInfo {
            name: "find_leads".into(),
            title: None,
            description: None,
            input_schema: serde_json::json!({"type": "object"}),
            output_schema: None,
            annotations: Annotations::default(),
        };
        ToolListing { tools: vec![tool], ttl_ms, filtered_by: Some("rules-1".into()), ..ToolListing::default() }
    }

    #[test]
    fn a_fresh_listing_under_the_rules_in_force_answers_whether_a_tool_is_offered() {
        let l = (1000, listing(None));
        assert_eq!(offered_in(Some(&l), "find_leads", "rules-1", 1010), Some(true));
        assert_eq!(offered_in(Some(&l), "delete_lead", "rules-1", 1010), Some(false));
    }

    #[test]
    fn no_answer_without_a_listing_after_its_ttl_or_under_other_rules() {
        assert_eq!(offered_in(None, "find_leads", "rules-1", 0), None);
        let l = (1000, listing(Some(5_000)));
        assert_eq!(offered_in(Some(&l), "find_leads", "rules-1", 1003), Some(true));
        assert_eq!(offered_in(Some(&l), "find_leads", "rules-1", 1006), None, "past the server's ttlMs");
        assert_eq!(offered_in(Some(&l), "find_leads", "rules-2", 1003), None, "filtered under another blocklist");
        assert_eq!(offered_in(Some(&(1000, listing(Some(0)))), "find_leads", "rules-1", 1000), None, "ttlMs 0: never reused");
    }
}
