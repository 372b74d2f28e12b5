//! `host/src/vault`, the parts the fuzz targets need.

#[path = "../../../host/src/vault/credentials.rs"]
pub mod credentials;
