//! Shared by the build scripts that embed WebAssembly components (`host/build.rs` for the connectors,
//! `tests/e2e/build.rs` for the hostile test components): build some workspace packages for
//! `wasm32-wasip2` and hand their paths to the crate being built as environment variables.
//!
//! The nested build uses its own target directory (`target/wasm`), so it never waits on the lock of the
//! outer build. If the `wasm32-wasip2` target is missing and rustup is available, it is installed.
//! When every variable is already set, the prebuilt components it names are used instead.

use std::env;
use std::path::Path;
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// One component: the workspace package, its output file stem, the variable that carries its path.
pub struct Component {
    pub package: &'static str,
    pub stem: &'static str,
    pub var: &'static str,
}

/// Build `components` (from the workspace at `root`), watching `watch` (paths relative to `root`), and
/// export their paths. `what` names them in error messages.
pub fn embed(root: &Path, components: &[Component], watch: &[&str], what: &str) {
    for c in components {
        println!("cargo:rerun-if-env-changed={}", c.var);
    }
    if components.iter().all(|c| env::var(c.var).is_ok()) {
        for c in components {
            println!("cargo:rustc-env={}={}", c.var, env::var(c.var).unwrap_or_default());
        }
        return;
    }
    for dir in watch {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());

    ensure_target();
    let target_dir = root.join("target").join("wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).arg("build");
    for c in components {
        cmd.args(["--package", c.package]);
    }
    cmd.args(["--target", TARGET, "--profile", "wasm", "--target-dir"]).arg(&target_dir);
    // Flags meant for the host build must not leak into the wasm build.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_BUILD_RUSTFLAGS"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run cargo to build {what}: {e}"));
    if !status.success() {
        panic!("building {what} for {TARGET} failed (see the errors above)");
    }
    for c in components {
        let wasm = target_dir.join(TARGET).join("wasm").join(format!("{}.wasm", c.stem));
        if !wasm.exists() {
            panic!("building `{}` produced no {}", c.package, wasm.display());
        }
        println!("cargo:rustc-env={}={}", c.var, wasm.display());
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
