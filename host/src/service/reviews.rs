//! Tool definitions pinned at approval ([`crate::policy::pinning`]), applied to every new listing of a
//! connection, and the operator's reviews.
//!
//! ```text
//! list_tools_of(connection)
//!   ├─ the connector lists, the blocklist filters                       (crate::policy::tools)
//!   └─ review_listing: first listing ever → pinned as it is (connecting was the approval);
//!      later → each tool offered only if its definition is the one approved; a changed or new tool
//!      is withheld (rule `review-changed` / `review-new`) and waits in the store with its diff
//!      until `claribi-host tools NAME --approve TOOL` (or the console's Approve)
//! ```
//!
//! A tool the blocklist withholds never reaches a review, so no approval can serve a write tool.

use super::HostService;
use crate::errors::HostError;
use crate::policy::pinning::{self, Pin, Verdict};
use crate::policy::tools::{BlockedTool, ToolListing};
use crate::vault::store::{Approval, ConnectionRecord, PendingReview, Store};

/// Which pending tools to approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approve {
    /// These tools (each must be waiting for a review).
    Tools(Vec<String>),
    /// Every tool waiting for a review.
    All,
}

/// Who approves, as recorded: the operator's OS user.
pub fn operator() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
        .map(|u| crate::errors::one_line(&u).chars().take(64).collect())
        .unwrap_or_else(|| "unknown user".into())
}

impl HostService {
    /// Apply the connection's pins to a listing the blocklist has filtered: offered tools stay,
    /// changed and new ones move to `blocked` and into the store's pending reviews (logged once each).
    pub(crate) fn review_listing(&self, c: &ConnectionRecord, listing: &mut ToolListing) -> Result<(), HostError> {
        let storage = HostError::Storage;
        let rules = &c.policy.tools;
        if !self.store.tools_pinned(&c.id).map_err(storage)? {
            // Making the connection was the operator's approval: its first listing is pinned as it
            // is, except descriptions over the policy's limit, which wait like any other review.
            let first: Vec<Pin> = listing
                .tools
                .iter()
                .filter(|t| t.description.as_deref().map(|d| d.chars().count()).unwrap_or(0) <= rules.max_description_chars)
                .map(Pin::of)
                .collect();
            self.store.pin_tools(&c.id, &first, &operator(), "connect", true).map_err(storage)?;
        }
        let pins = self.store.tool_pins(&c.id).map_err(storage)?;
        let verdicts = pinning::review(&pins, &listing.tools, rules);
        let now = Store::now();
        let (mut offered, mut auto, mut pending) = (Vec::new(), Vec::new(), Vec::new());
        for (tool, verdict) in std::mem::take(&mut listing.tools).into_iter().zip(verdicts) {
            match verdict {
                Verdict::Offered => offered.push(tool),
                Verdict::AutoApproved { pin, why } => {
                    tracing::info!(connection = %c.name, tool = %tool.name, "approved without a review: {why}");
                    auto.push(pin);
                    offered.push(tool);
                }
                Verdict::New { pin, why } => pending.push(PendingReview {
                    tool: tool.name,
                    kind: "new".into(),
                    digest: pin.digest,
                    definition: pin.definition,
                    detail: why,
                    seen_at: now,
                }),
                Verdict::Changed { pin, diff } => pending.push(PendingReview {
                    tool: tool.name,
                    kind: "changed".into(),
                    digest: pin.digest,
                    definition: pin.definition,
                    detail: diff,
                    seen_at: now,
                }),
            }
        }
        if !auto.is_empty() {
            self.store.pin_tools(&c.id, &auto, "policy", "policy", false).map_err(storage)?;
        }
        for fresh in self.store.set_pending_reviews(&c.id, &pending).map_err(storage)? {
            tracing::warn!(
                connection = %c.name,
                tool = %fresh.tool,
                "withholding the {} tool `{}` from the engine until it is approved: claribi-host tools {} --review",
                fresh.kind,
                fresh.tool,
                c.name
            );
        }
        for r in &pending {
            let what = if r.kind == "new" { "is new since the connection was approved" } else { "changed upstream since it was approved" };
            listing.blocked.push(BlockedTool {
                name: r.tool.clone(),
                rule: format!("review-{}", r.kind),
                reason: format!(
                    "its definition {what}; review it with `claribi-host tools {} --review` and approve it with `--approve {}`",
                    c.name, r.tool
                ),
            });
        }
        listing.tools = offered;
        Ok(())
    }

    /// The tools of a connection waiting for a review, with their diffs.
    pub fn pending_reviews(&self, name: &str) -> Result<Vec<PendingReview>, HostError> {
        let c = self.connection(name)?;
        self.store.pending_reviews(&c.id).map_err(HostError::Storage)
    }

    /// How many tools of a connection wait for a review.
    pub fn pending_review_count(&self, c: &ConnectionRecord) -> Result<usize, HostError> {
        self.store.pending_review_count(&c.id).map_err(HostError::Storage)
    }

    /// Every approval of a connection's tool definitions (time, who, how).
    pub fn approvals(&self, name: &str) -> Result<Vec<Approval>, HostError> {
        let c = self.connection(name)?;
        self.store.approvals(&c.id).map_err(HostError::Storage)
    }

    /// Approve pending tools as they are offered now, recorded under `by`. The next listing offers
    /// them. A tool that waits for no review is an error naming what does (a tool the blocklist
    /// withholds is never waiting: approval does not apply to it).
    pub fn approve_tools(&self, name: &str, which: &Approve, by: &str) -> Result<Vec<String>, HostError> {
        let c = self.connection(name)?;
        let pending = self.store.pending_reviews(&c.id).map_err(HostError::Storage)?;
        let chosen: Vec<&PendingReview> = match which {
            Approve::All => pending.iter().collect(),
            Approve::Tools(names) => {
                let mut chosen = Vec::new();
                for n in names {
                    match pending.iter().find(|p| &p.tool == n) {
                        Some(p) => chosen.push(p),
                        None => return Err(self.not_pending(&c, n, &pending)),
                    }
                }
                chosen
            }
        };
        if chosen.is_empty() {
            return Err(HostError::Usage(format!("no tool of `{name}` waits for a review")));
        }
        let pins: Vec<Pin> =
            chosen.iter().map(|p| Pin { tool: p.tool.clone(), digest: p.digest.clone(), definition: p.definition.clone() }).collect();
        self.store.pin_tools(&c.id, &pins, by, "review", false).map_err(HostError::Storage)?;
        for p in &pins {
            tracing::info!(connection = %c.name, tool = %p.tool, by, "tool definition approved");
        }
        Ok(pins.into_iter().map(|p| p.tool).collect())
    }

    fn not_pending(&self, c: &ConnectionRecord, tool: &str, pending: &[PendingReview]) -> HostError {
        let shown: String = crate::errors::one_line(tool).chars().take(100).collect();
        if let Ok(withheld) = self.withheld(c) {
            if let Some(b) = withheld.iter().find(|b| b.name == tool && !b.rule.starts_with("review-")) {
                return HostError::Usage(format!(
                    "`{shown}` is withheld by the blocklist (rule `{}`), not waiting for a review: approving cannot serve it",
                    b.rule
                ));
            }
        }
        let waiting: Vec<&str> = pending.iter().map(|p| p.tool.as_str()).collect();
        HostError::Usage(if waiting.is_empty() {
            format!("`{shown}` waits for no review; no tool of `{}` does", c.name)
        } else {
            format!("`{shown}` waits for no review; these do: {}", waiting.join(", "))
        })
    }
}
