//! The operator's capability policy for one connection: which origins its connector may reach, and
//! how much memory, time, bandwidth and how many requests one call may use.
//!
//! Everything here is pure: parsing and matching, no I/O. The send-request hook
//! ([`crate::wire::outbound`]) and the call runner ([`crate::sandbox::runtime`]) apply it.
//!
//! # Origins
//!
//! A grant is a list of origin patterns, `scheme://host[:port]`, in the syntax Spin uses for
//! `allowed_outbound_hosts`:
//!
//! | pattern                     | allows                                                        |
//! |-----------------------------|---------------------------------------------------------------|
//! | `https://mcp.close.com`     | exactly that host, port 443                                   |
//! | `http://127.0.0.1:8811`     | exactly that address and port (an explicit loopback grant)    |
//! | `https://*.close.com`       | any subdomain of `close.com` (not `close.com` itself), port 443 |
//! | `https://api.example.com:*` | that host on any port                                         |
//! | `*://example.com:8080`      | `http` or `https` on that host and port                       |
//!
//! An empty grant denies everything. A wildcard never grants a loopback, private, link-local or
//! metadata address: those are reachable only through a pattern that names that address literally (or
//! the name `localhost`, for loopback). See [`crate::wire::addresses`].
//!
//! ```
//! use claribi_host::policy::Grant;
//! use claribi_host::policy::{Method, Target};
//! let grant = Grant::parse_list(["https://mcp.close.com", "http://127.0.0.1:8811"]).unwrap();
//! assert!(grant.allows(Method::Post, &Target::parse("https://mcp.close.com/mcp").unwrap()));
//! assert!(!grant.allows(Method::Get, &Target::parse("https://evil.example/mcp").unwrap()));
//! ```
//!
//! # Policy files
//!
//! A policy file is TOML; every key is optional and defaults as [`Limits::default`] says:
//!
//! ```toml
//! allow_origins = ["https://mcp.close.com", "https://api.close.com"]
//! memory_mib = 64
//! call_timeout_ms = 30000
//! max_response_bytes = 16777216
//! max_requests_per_call = 32
//!
//! [tools]                     # reviews of tool definitions (see pinning)
//! auto_approve_new = false    # new read tools wait for `claribi-host tools NAME --approve`
//! max_description_chars = 4000
//! review_narrowing = true     # annotations that only narrow a tool still need a review
//! ```

pub mod blocklist;
mod file;
pub mod pinning;
pub mod rate_budget;
pub mod tools;
mod grant;
mod limits;

pub use file::{Policy, PolicyError};
pub use grant::{Grant, Method, Origin, OriginPattern, Paths, Reason, Rule, Target};
pub use limits::Limits;
