//! `host/src/wire`, the parts the fuzz targets need.

#[path = "../../../host/src/wire/addresses.rs"]
pub mod addresses;
#[path = "../../../host/src/wire/attach.rs"]
pub mod attach;
#[path = "../../../host/src/wire/inbound.rs"]
pub mod inbound;
#[path = "../../../host/src/wire/json_members.rs"]
pub mod json_members;
#[path = "../../../host/src/wire/upstream_calls.rs"]
pub mod upstream_calls;
