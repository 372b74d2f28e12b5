//! The sandbox: how a connector component is loaded, instantiated and limited, and what it may ask of
//! the host.
//!
//! | file | decides |
//! |---|---|
//! | [`runtime`] | instances, memory/time/instance limits, traps, the compile cache |
//! | [`http_budget`] | `wasi:http` resources a guest creates, counted against the call's host memory budget |
//! | [`limits`] | the guest's memory and tables, and the host memory a call may make the host hold |
//! | [`host_api`] | the `claribi:data-source/host` interface: settings, secrets, state, locks, logs |
//! | [`outputs`] | what a connector returns: converted, and masked before anyone sees it |
//! | [`bindings`] | the generated WIT bindings |

pub mod bindings;
pub mod host_api;
pub mod http_budget;
pub mod limits;
pub mod outputs;
pub mod runtime;
