//! Builds the connector components of `plugin/` for `wasm32-wasip2` so that the host can embed them:
//! `builtin:close` (the Close CRM connector, used by `claribi-host demo`) and `builtin:mcp` (the
//! generic MCP connector, used by the conformance runner).
//!
//! The nested build uses its own target directory (`target/wasm`), so it never waits on the lock of the
//! outer build. If the `wasm32-wasip2` target is missing and rustup is available, it is installed.
//! Set `CLARIBI_CLOSE_CONNECTOR_WASM` and `CLARIBI_MCP_CONNECTOR_WASM` to embed prebuilt components.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// (package, file stem, environment variable)
const COMPONENTS: [(&str, &str, &str); 2] =
    [("close", "close", "CLARIBI_CLOSE_CONNECTOR_WASM"), ("generic-mcp", "generic_mcp", "CLARIBI_MCP_CONNECTOR_WASM")];

fn main() {
    for (_, _, var) in COMPONENTS {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if COMPONENTS.iter().all(|(_, _, var)| env::var(var).is_ok()) {
        for (_, _, var) in COMPONENTS {
            println!("cargo:rustc-env={var}={}", env::var(var).unwrap_or_default());
        }
        return;
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("host/ lives in the workspace root").to_path_buf();
    for dir in ["plugin", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());

    ensure_target();
    let target_dir = root.join("target").join("wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--package", "close", "--package", "generic-mcp", "--target", TARGET, "--profile", "wasm", "--target-dir"])
        .arg(&target_dir);
    // Flags meant for the host build must not leak into the wasm build.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_BUILD_RUSTFLAGS"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run cargo to build the connector components: {e}"));
    if !status.success() {
        panic!("building the connector components for {TARGET} failed (see the errors above)");
    }
    for (package, stem, var) in COMPONENTS {
        let wasm = target_dir.join(TARGET).join("wasm").join(format!("{stem}.wasm"));
        if !wasm.exists() {
            panic!("building `{package}` produced no {}", wasm.display());
        }
        println!("cargo:rustc-env={var}={}", wasm.display());
    }
}

fn sysroot_has_target() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .map(|root| Path::new(&root).join("lib").join("rustlib").join(TARGET).exists())
        .unwrap_or(false)
}

fn ensure_target() {
    if sysroot_has_target() {
        return;
    }
    println!("cargo:warning=installing the {TARGET} Rust target (rustup target add {TARGET})");
    let ok = Command::new("rustup").args(["target", "add", TARGET]).status().map(|s| s.success()).unwrap_or(false);
    if !ok || !sysroot_has_target() {
        panic!("the {TARGET} Rust target is missing and could not be installed; run `rustup target add {TARGET}`");
    }
}
