//! The host's pure modules that read untrusted input, compiled into the fuzz crate by path (the host
//! itself, with wasmtime, is too heavy to build under libFuzzer's instrumentation). The module tree
//! mirrors `host/src`, so the files compile here unchanged.
#![allow(dead_code, unused_imports)]

#[path = "../../../host/src/text.rs"]
pub mod text;

pub mod wire;
pub mod policy;
pub mod vault;
pub mod oauth;
pub mod engine;
