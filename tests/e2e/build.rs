//! Builds the test-only connector components for `wasm32-wasip2`, the way `host/build.rs` builds the
//! real ones (the same `host/build_components.rs`), and tells the tests where they are:
//!
//! * `HOSTILE_PLUGIN_WASM`: `tests/hostile-plugin`, a connector whose every tool tries to escape the
//!   sandbox;
//! * `HOSTILE_SOCKETS_WASM`: `tests/hostile-sockets`, a connector importing `wasi:sockets`, which the
//!   host must refuse to load;
//! * `LEGACY_PLUGIN_WASM`: `tests/legacy-plugin`, a connector built for `claribi:data-source@0.1.0`.

#[path = "../../host/build_components.rs"]
mod build_components;

use build_components::Component;

fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .and_then(std::path::Path::parent)
        .expect("tests/e2e lives two levels below the workspace root");
    build_components::embed(
        root,
        &[
            Component { package: "hostile-plugin", stem: "hostile_plugin", var: "HOSTILE_PLUGIN_WASM" },
            Component { package: "hostile-sockets", stem: "hostile_sockets", var: "HOSTILE_SOCKETS_WASM" },
            Component { package: "legacy-plugin", stem: "legacy_plugin", var: "LEGACY_PLUGIN_WASM" },
        ],
        &["tests/hostile-plugin", "tests/hostile-sockets", "tests/legacy-plugin", "wit"],
        "the hostile test components",
    );
}
