//! `host/src/engine`, the parts the fuzz targets need.

#[path = "../../../host/src/engine/results.rs"]
pub mod results;
