//! `host/src/oauth`, the parts the fuzz targets need.

#[path = "../../../host/src/oauth/challenge.rs"]
pub mod challenge;
#[path = "../../../host/src/oauth/discovery.rs"]
pub mod discovery;
#[path = "../../../host/src/oauth/scopes.rs"]
pub mod scopes;
