//! Listing and calling tools: the checks before a connector is instantiated for a call.
//!
//! ```text
//! call_tool(connection, tool, args)
//!   ├─ blocklist: tool name, and the tools the last listing withheld   (crate::policy::blocklist;
//!   │  a definition waiting for a review is withheld too:                crate::service::reviews)
//!   ├─ arguments: must be a JSON object
//!   ├─ the tool must be in the connection's filtered listing (listed again once if not)
//!   └─ run: fresh instance, the wire's checks on every request          (crate::service::run)
//! ```

use super::prepared::Prepared;
use super::{log_call, HostService, RunOptions};
use crate::errors::{ConnectorError, HostError};
use crate::policy::tools::{self, BlockedTool, ToolListing};
use crate::sandbox::outputs::{self, ToolOutput};
use crate::vault::store::{ConnectionRecord, Store};
use serde_json::Value;
use std::time::Instant;

impl HostService {
    /// List the tools of a connection that pass the blocklist.
    pub async fn list_tools(&self, name: &str) -> Result<ToolListing, HostError> {
        let c = self.connection(name)?;
        self.list_tools_of(&c).await
    }

    /// The connection's listing: the cached one while it is fresh (the server's `ttlMs`, a minute
    /// when it gave none, never more than an hour, and only if filtered under the blocklist in
    /// force), else a new one from the connector — filtered by the blocklist and cached.
    pub(crate) async fn list_tools_of(&self, c: &ConnectionRecord) -> Result<ToolListing, HostError> {
        if let Some(listing) = self.fresh_listing(c)? {
            return Ok(listing);
        }
        let started = Instant::now();
        let plugin = self.plugin_for(c).await?;
        let result = self
            .run(c, &plugin, Default::default(), |b, s| Box::pin(async move { b.claribi_data_source_connector().call_list_tools(s).await }))
            .await
            .and_then(|ran| {
                let listing = ran.value;
                let mut filtered = tools::filter(&self.blocklist, outputs::listed_tools(listing.tools));
                filtered.ttl_ms = listing.ttl_ms;
                filtered.cache_scope = listing.cache_scope.map(|s| outputs::cache_scope_name(s).to_string());
                // Changed and new definitions wait for the operator (crate::service::reviews).
                self.review_listing(c, &mut filtered)?;
                Ok(filtered)
            });
        self.record_outcome(c, &result);
        if let Ok(listing) = &result {
            if let (Ok(json), Ok(blocked)) = (serde_json::to_string(listing), serde_json::to_string(&listing.blocked)) {
                if let Err(e) = self.store.set_tool_cache(&c.id, &json, &blocked) {
                    tracing::warn!("cannot cache the tool listing of `{}`: {e}", c.name);
                }
            }
        }
        log_call(&c.name, "tools/list", started, &result.as_ref().map(|l| serde_json::to_vec(l).map(|v| v.len()).unwrap_or(0)));
        result
    }

    /// The cached listing, if it may still be used.
    fn fresh_listing(&self, c: &ConnectionRecord) -> Result<Option<ToolListing>, HostError> {
        let Some((listed_at, json)) = self.store.tool_cache(&c.id).map_err(HostError::Storage)? else {
            return Ok(None);
        };
        let Ok(listing) = serde_json::from_str::<ToolListing>(&json) else { return Ok(None) };
        Ok(listing.reusable(&self.blocklist_fingerprint, listed_at, Store::now()).then_some(listing))
    }

    /// The tools the last listing of a connection withheld (none before a first listing).
    pub(crate) fn withheld(&self, c: &ConnectionRecord) -> Result<Vec<BlockedTool>, HostError> {
        Ok(self
            .store
            .blocked_tools(&c.id)
            .map_err(HostError::Storage)?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default())
    }

    /// The checks that need no listing: the name rules, and the tools the last listing withheld.
    pub fn check_callable(&self, c: &ConnectionRecord, tool: &str) -> Result<(), HostError> {
        self.check_callable_given(c, tool, &self.withheld(c)?)
    }

    /// [`Self::check_callable`], with the withheld tools already read (a call's prepared state).
    fn check_callable_given(&self, c: &ConnectionRecord, tool: &str, withheld: &[BlockedTool]) -> Result<(), HostError> {
        if !tools::valid_tool_name(tool) {
            return Err(HostError::Usage(format!(
                "`{}` is not a valid tool name; list the tools with `claribi-host tools {}`",
                crate::errors::one_line(tool),
                c.name
            )));
        }
        if let Some(r) = self.blocklist.check_name(tool) {
            return Err(HostError::Blocked { tool: tool.to_string(), reason: r.to_string() });
        }
        if let Some(reason) = BlockedTool::reason_for(withheld, tool) {
            return Err(HostError::Blocked { tool: tool.to_string(), reason });
        }
        Ok(())
    }

    /// After [`Self::check_callable`]: the tool must be one of the read tools the connection's
    /// listing offered (so a tool withheld for its annotations, or one the listing never showed,
    /// cannot be called by name). Without a listing, or when the tool is not in the last one, the
    /// tools are listed once more first. Runs before the connector is instantiated for the call.
    async fn ensure_listed(&self, p: &Prepared, tool: &str) -> Result<(), HostError> {
        let c = &p.record;
        let unknown = || {
            HostError::Connector(ConnectorError::UnknownTool {
                message: format!("connection `{}` offers no tool named `{tool}`; list its tools with `claribi-host tools {}`", c.name, c.name),
            })
        };
        // The answer the cached listing gives while it is fresh (see `list_tools_of`): an engine
        // inventing tool names does not cost a listing (and the vendor's rate limit) per call, and a
        // listing is never trusted beyond the server's TTL.
        let answer = |offered: Option<bool>| offered.map(|o| if o { Ok(()) } else { Err(unknown()) });
        if let Some(answer) = answer(p.offered(tool, &self.blocklist_fingerprint, Store::now())) {
            return answer;
        }
        // Read again from the store: another call may have listed while this one waited.
        let cached = || -> Result<Option<Result<(), HostError>>, HostError> {
            let Some(listed) = self.store.listed_tool(&c.id, tool).map_err(HostError::Storage)? else { return Ok(None) };
            let hints = ToolListing { ttl_ms: listed.ttl_ms, filtered_by: listed.filtered_by, ..ToolListing::default() };
            if !hints.reusable(&self.blocklist_fingerprint, listed.listed_at, Store::now()) {
                return Ok(None);
            }
            Ok(answer(Some(listed.offered)))
        };
        // One listing at a time per connection; whoever waited finds the fresh one.
        let gate = {
            let mut map = self.relisting.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(c.id.clone()).or_default().clone()
        };
        let _one = gate.lock().await;
        if let Some(answer) = cached()? {
            return answer;
        }
        let listing = self.list_tools_of(c).await?;
        if listing.tools.iter().any(|t| t.name == tool) {
            return Ok(());
        }
        if let Some(reason) = BlockedTool::reason_for(&listing.blocked, tool) {
            return Err(HostError::Blocked { tool: tool.to_string(), reason });
        }
        Err(unknown())
    }

    /// Call one tool. The blocklist is applied before anything else.
    pub async fn call_tool(&self, name: &str, tool: &str, arguments: &str) -> Result<ToolOutput, HostError> {
        let p = self.prepared(name)?;
        let started = Instant::now();
        // Every outcome from here on is logged once and recorded on the connection.
        let result = self.call_tool_checked(&p, tool, arguments).await;
        self.record_outcome(&p.record, &result);
        log_call(&p.record.name, tool, started, &result.as_ref().map(ToolOutput::approximate_bytes));
        result
    }

    async fn call_tool_checked(&self, p: &Prepared, tool: &str, arguments: &str) -> Result<ToolOutput, HostError> {
        let c = &p.record;
        self.check_callable_given(c, tool, &p.withheld)?;
        let args: Value = serde_json::from_str(arguments)
            .map_err(|e| HostError::Usage(format!("the arguments are not valid JSON ({e}); pass a JSON object such as '{{}}'")))?;
        if !args.is_object() {
            return Err(HostError::Usage("the arguments must be a JSON object, e.g. '{\"id\": \"lead_123\"}'".into()));
        }
        self.ensure_listed(p, tool).await?;
        let plugin = self.plugin_for(c).await?;
        let tool_name = tool.to_string();
        let args_text = args.to_string();
        let options = RunOptions { withheld: Some(p.withheld.clone()), ..RunOptions::default() };
        let ran = self
            .run(c, &plugin, options, move |b, s| {
                Box::pin(async move { b.claribi_data_source_connector().call_call_tool(s, &tool_name, &args_text).await })
            })
            .await?;
        outputs::tool_output(ran.value)
    }
}
