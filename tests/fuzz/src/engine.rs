//! `host/src/engine`, the parts the fuzz targets need (results propose charts).

#[path = "../../../host/src/engine/charts.rs"]
pub mod charts;
#[path = "../../../host/src/engine/results.rs"]
pub mod results;
