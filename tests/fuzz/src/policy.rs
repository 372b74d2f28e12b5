//! `host/src/policy`, the parts the fuzz targets need.

#[path = "../../../host/src/policy/file.rs"]
mod file;
#[path = "../../../host/src/policy/grant.rs"]
mod grant;
#[path = "../../../host/src/policy/limits.rs"]
mod limits;
pub use file::{Policy, PolicyError};
pub use grant::{Grant, Method, Origin, OriginPattern, Paths, Reason, Rule, Target};
pub use limits::Limits;
