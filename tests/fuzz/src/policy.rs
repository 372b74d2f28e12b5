//! `host/src/policy`, the parts the fuzz targets need (the policy file's `[tools]` table names the
//! pinning rules, which name the tool listing and the blocklist).

#[path = "../../../host/src/policy/blocklist.rs"]
pub mod blocklist;
#[path = "../../../host/src/policy/file.rs"]
mod file;
#[path = "../../../host/src/policy/grant.rs"]
mod grant;
#[path = "../../../host/src/policy/limits.rs"]
mod limits;
#[path = "../../../host/src/policy/pinning.rs"]
pub mod pinning;
#[path = "../../../host/src/policy/tools.rs"]
pub mod tools;
pub use file::{Policy, PolicyError};
pub use grant::{Grant, Method, Origin, OriginPattern, Paths, Reason, Rule, Target};
pub use limits::Limits;
