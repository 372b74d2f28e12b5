//! Host-side bindings for the `claribi:data-source` world (see `wit/data-source.wit`).
//!
//! Every import is `async` (host functions may wait, e.g. for the credential lock) and `trappable`
//! (a host failure such as a broken database traps the call instead of lying to the guest).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "claribi:data-source/data-source",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "claribi:data-source/host.credential-lock": crate::vault::locks::CredentialLock,
    },
});

pub use claribi::data_source::types as wit;
pub use exports::claribi::data_source::connector as guest;
