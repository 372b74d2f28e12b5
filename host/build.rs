//! Builds the Close connector component (`plugin/close`) for `wasm32-wasip2` so that the host can embed
//! it as `builtin:close` (used by `claribi-host demo` and available to `connect --plugin builtin:close`).
//!
//! The nested build uses its own target directory (`target/wasm`), so it never waits on the lock of the
//! outer build. If the `wasm32-wasip2` target is missing and rustup is available, it is installed.
//! Set `CLARIBI_CLOSE_CONNECTOR_WASM=/path/to/close.wasm` to embed a prebuilt component instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    println!("cargo:rerun-if-env-changed=CLARIBI_CLOSE_CONNECTOR_WASM");
    if let Ok(prebuilt) = env::var("CLARIBI_CLOSE_CONNECTOR_WASM") {
        println!("cargo:rustc-env=CLARIBI_CLOSE_CONNECTOR_WASM={prebuilt}");
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
        .args(["build", "--package", "close", "--target", TARGET, "--profile", "wasm", "--target-dir"])
        .arg(&target_dir);
    // Flags meant for the host build must not leak into the wasm build.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_BUILD_RUSTFLAGS"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run cargo to build the Close connector: {e}"));
    if !status.success() {
        panic!("building the Close connector for {TARGET} failed (see the errors above)");
    }
    let wasm = target_dir.join(TARGET).join("wasm").join("close.wasm");
    if !wasm.exists() {
        panic!("the Close connector build produced no {}", wasm.display());
    }
    println!("cargo:rustc-env=CLARIBI_CLOSE_CONNECTOR_WASM={}", wasm.display());
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
