//! Builds the connector components of `plugin/` for `wasm32-wasip2` so that the host can embed them:
//! `builtin:close` (the Close CRM connector, used by `claribi-host demo`) and `builtin:mcp` (the
//! generic MCP connector, used by the conformance runner). See `build_components.rs`; set
//! `CLARIBI_CLOSE_CONNECTOR_WASM` and `CLARIBI_MCP_CONNECTOR_WASM` to embed prebuilt components.

#[path = "build_components.rs"]
mod build_components;

use build_components::Component;

fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("host/ lives in the workspace root");
    build_components::embed(
        root,
        &[
            Component { package: "close", stem: "close", var: "CLARIBI_CLOSE_CONNECTOR_WASM" },
            Component { package: "generic-mcp", stem: "generic_mcp", var: "CLARIBI_MCP_CONNECTOR_WASM" },
        ],
        &["plugin", "wit"],
        "the connector components",
    );
}
