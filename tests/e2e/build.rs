//! Builds the test-only connector components for `wasm32-wasip2`, the way `host/build.rs` builds the
//! real ones, and tells the tests where they are:
//!
//! * `HOSTILE_PLUGIN_WASM`: `tests/hostile-plugin`, a connector whose every tool tries to escape the
//!   sandbox;
//! * `HOSTILE_SOCKETS_WASM`: `tests/hostile-sockets`, a connector importing `wasi:sockets`, which the
//!   host must refuse to load.
//!
//! The nested build uses its own target directory (`target/wasm`), so it never waits on the lock of the
//! outer build. If the `wasm32-wasip2` target is missing and rustup is available, it is installed.
//! Set both variables to use prebuilt components instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// (package, file stem, environment variable)
const COMPONENTS: [(&str, &str, &str); 2] = [
    ("hostile-plugin", "hostile_plugin", "HOSTILE_PLUGIN_WASM"),
    ("hostile-sockets", "hostile_sockets", "HOSTILE_SOCKETS_WASM"),
];

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
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .expect("tests/e2e lives two levels below the workspace root")
        .to_path_buf();
    for dir in ["tests/hostile-plugin", "tests/hostile-sockets", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());

    ensure_target();
    let target_dir = root.join("target").join("wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).arg("build");
    for (package, _, _) in COMPONENTS {
        cmd.args(["--package", package]);
    }
    cmd.args(["--target", TARGET, "--profile", "wasm", "--target-dir"]).arg(&target_dir);
    // Flags meant for the host build must not leak into the wasm build.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_BUILD_RUSTFLAGS"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run cargo to build the hostile test components: {e}"));
    if !status.success() {
        panic!("building the hostile test components for {TARGET} failed (see the errors above)");
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
