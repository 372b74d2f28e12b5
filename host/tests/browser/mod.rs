//! A small WebDriver client (W3C protocol over HTTP, with `ureq`) for Debian's `chromedriver`
//! driving Debian's Chromium, headless. Enough for the console's tests: open pages, find elements by
//! CSS, click, type, read text, switch windows (the OAuth popup), run a script, take screenshots.
//!
//! [`ensure_browser`] finds `/usr/bin/chromium` and `chromedriver`; when they are missing it installs
//! Debian's packages (`apt-get install -y chromium chromium-driver`, as root) or fails saying how —
//! never a silent skip.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for an element or a text lasts.
pub const WAIT: Duration = Duration::from_secs(30);

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

fn found() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("CLARIBI_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let driver = std::env::var_os("CLARIBI_CHROMEDRIVER").map(PathBuf::from).or_else(|| which("chromedriver"));
    match (chromium.is_file(), driver) {
        (true, Some(d)) if d.is_file() => Some((chromium, d)),
        _ => None,
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Chromium and chromedriver: found, or installed from Debian's packages, or the test fails saying how.
pub fn ensure_browser() -> &'static (PathBuf, PathBuf) {
    static FOUND: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FOUND.get_or_init(|| {
        if let Some(f) = found() {
            return f;
        }
        let how = "the console's browser tests need Debian's Chromium and its driver: run `apt-get update && apt-get install -y chromium chromium-driver` as root (or set CLARIBI_CHROMIUM and CLARIBI_CHROMEDRIVER)";
        if Path::new("/usr/bin/apt-get").exists() && is_root() {
            eprintln!("installing Debian's chromium and chromium-driver for the console's browser tests…");
            let install = || {
                Command::new("apt-get")
                    .args(["install", "-y", "-q", "chromium", "chromium-driver"])
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            };
            if !install() {
                let _ = Command::new("apt-get").args(["update", "-q"]).status();
                install();
            }
        }
        found().unwrap_or_else(|| panic!("{how}"))
    })
}

/// A running chromedriver with one headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Browser {
    /// Start chromedriver and a headless Chromium (a window of 1400×1000).
    pub fn start() -> Browser {
        let (chromium, driver_path) = ensure_browser();
        let port = free_port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_path.display()));
        let base = format!("http://127.0.0.1:{port}");
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(90)).build();
        let started = Instant::now();
        loop {
            if let Ok(r) = agent.get(&format!("{base}/status")).call() {
                if r.into_string().map(|t| t.contains("\"ready\":true")).unwrap_or(false) {
                    break;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut b = Browser { driver, base, session: String::new(), agent };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
                         "--window-size=1400,1000", "--lang=en-US"]
            }
        }}});
        let v = b.raw("POST", "/session", Some(caps)).unwrap_or_else(|e| panic!("cannot start a Chromium session: {e}"));
        b.session = v["sessionId"].as_str().expect("a session id").to_string();
        b
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let req = self.agent.request(method, &url);
        let resp = match body {
            Some(b) => req.set("content-type", "application/json").send_string(&b.to_string()),
            None if method == "POST" => req.set("content-type", "application/json").send_string("{}"),
            None => req.call(),
        };
        let (ok, text) = match resp {
            Ok(r) => (true, r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(_, r)) => (false, r.into_string().unwrap_or_default()),
            Err(e) => return Err(e.to_string()),
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if !ok {
            return Err(format!("{}: {}", v["value"]["error"].as_str().unwrap_or("error"), v["value"]["message"].as_str().unwrap_or("")));
        }
        Ok(v["value"].clone())
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Open a URL.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url}))).unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }

    /// The page's HTML as it stands.
    pub fn source(&self) -> String {
        self.cmd("GET", "/source", None).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }

    /// The first element matching `css`, if any (now).
    pub fn try_find(&self, css: &str) -> Option<String> {
        self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})))
            .ok()
            .and_then(|v| v[ELEMENT].as_str().map(str::to_string))
    }

    /// Every element matching `css` (now).
    pub fn find_all(&self, css: &str) -> Vec<String> {
        self.cmd("POST", "/elements", Some(json!({"using": "css selector", "value": css})))
            .ok()
            .and_then(|v| v.as_array().map(|a| a.iter().filter_map(|e| e[ELEMENT].as_str().map(str::to_string)).collect()))
            .unwrap_or_default()
    }

    /// Wait for an element matching `css` that is displayed.
    pub fn find(&self, css: &str) -> String {
        self.wait(&format!("a visible `{css}`"), || self.try_find(css).filter(|e| self.displayed(e)))
    }

    /// Poll `f` until it gives a value (for [`WAIT`]).
    pub fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            if started.elapsed() > WAIT {
                let text = self.try_find("main").map(|m| self.text(&m)).unwrap_or_default();
                panic!("timed out waiting for {what}; the page at {} shows: {}", self.url(), text.chars().take(1500).collect::<String>());
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Wait until the element matching `css` shows text containing `needle`; return its text.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait(&format!("`{css}` to show “{needle}”"), || {
            self.find_all(css).into_iter().map(|e| self.text(&e)).find(|t| t.contains(needle))
        })
    }

    /// Whether an element is displayed.
    pub fn displayed(&self, el: &str) -> bool {
        self.cmd("GET", &format!("/element/{el}/displayed"), None).ok().and_then(|v| v.as_bool()).unwrap_or(false)
    }

    /// Click an element (waiting for it first).
    pub fn click(&self, css: &str) {
        let el = self.find(css);
        self.click_el(&el);
    }

    /// Click an element by reference.
    pub fn click_el(&self, el: &str) {
        if let Err(e) = self.cmd("POST", &format!("/element/{el}/click"), None) {
            // Covered for a moment (an animation, a toast): click through a script.
            if e.contains("intercepted") || e.contains("not interactable") {
                self.script("arguments[0].click();", vec![self.el_ref(el)]);
            } else {
                panic!("click: {e}");
            }
        }
    }

    fn el_ref(&self, el: &str) -> Value {
        json!({ ELEMENT: el })
    }

    /// Replace an input's value by typing.
    pub fn fill(&self, css: &str, text: &str) {
        let el = self.find(css);
        let _ = self.cmd("POST", &format!("/element/{el}/clear"), None);
        self.cmd("POST", &format!("/element/{el}/value"), Some(json!({"text": text}))).unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Choose an option of a `<select>` by its value (and tell the page).
    pub fn select(&self, css: &str, value: &str) {
        let el = self.find(css);
        let ok = self.script(
            "var s = arguments[0], v = arguments[1];\
             if (!Array.prototype.some.call(s.options, function (o) { return o.value === v; })) return false;\
             s.value = v; s.dispatchEvent(new Event('change', {bubbles: true})); return true;",
            vec![self.el_ref(&el), json!(value)],
        );
        assert_eq!(ok, json!(true), "`{css}` has no option `{value}`");
    }

    /// An element's visible text.
    pub fn text(&self, el: &str) -> String {
        self.cmd("GET", &format!("/element/{el}/text"), None).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }

    /// The visible text of the first element matching `css` (waiting for it).
    pub fn text_of(&self, css: &str) -> String {
        let el = self.find(css);
        self.text(&el)
    }

    /// An element's property (e.g. `value`).
    pub fn property(&self, el: &str, name: &str) -> Value {
        self.cmd("GET", &format!("/element/{el}/property/{name}"), None).unwrap_or(Value::Null)
    }

    /// Run a script in the page; returns its value.
    pub fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": args}))).unwrap_or_else(|e| panic!("script: {e}"))
    }

    /// Scroll the first element matching `css` to the top of the window.
    pub fn scroll_to(&self, css: &str) {
        let el = self.find(css);
        self.script("arguments[0].scrollIntoView({block: 'start'}); window.scrollBy(0, -12);", vec![self.el_ref(&el)]);
    }

    /// The window handles.
    pub fn windows(&self) -> Vec<String> {
        self.cmd("GET", "/window/handles", None)
            .ok()
            .and_then(|v| v.as_array().map(|a| a.iter().filter_map(|h| h.as_str().map(str::to_string)).collect()))
            .unwrap_or_default()
    }

    /// The current window's handle.
    pub fn window(&self) -> String {
        self.cmd("GET", "/window", None).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }

    /// Switch to a window.
    pub fn switch_to(&self, handle: &str) {
        self.cmd("POST", "/window", Some(json!({"handle": handle}))).unwrap_or_else(|e| panic!("switch window: {e}"));
    }

    /// Wait for a window other than `main` to open; switch to it and return its handle.
    pub fn switch_to_popup(&self, main: &str) -> String {
        let popup = self.wait("the popup window", || self.windows().into_iter().find(|h| h != main));
        self.switch_to(&popup);
        popup
    }

    /// Wait until only `main` is left (the popup closed itself) and switch back to it.
    pub fn wait_popup_closed(&self, main: &str) {
        self.wait("the popup to close itself", || (self.windows() == [main.to_string()]).then_some(()));
        self.switch_to(main);
    }

    /// Save a PNG of the current window.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self.cmd("GET", "/screenshot", None).unwrap_or_else(|e| panic!("screenshot: {e}"));
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or("")).expect("a base64 PNG");
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).expect("the screenshot folder");
        }
        std::fs::write(path, png).expect("the screenshot is written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `claribi-host console` as a child process, and the access link it printed.
pub struct ConsoleProcess {
    child: Child,
    /// `http://127.0.0.1:PORT/?token=…`.
    pub access_url: String,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
}

impl ConsoleProcess {
    /// Start `claribi-host --data-dir DIR console --listen 127.0.0.1:0 --no-browser` and read its link.
    pub fn start(data_dir: &Path) -> ConsoleProcess {
        let mut child = crate::common::bin()
            .arg("--data-dir")
            .arg(data_dir)
            .args(["console", "--listen", "127.0.0.1:0", "--no-browser"])
            .env("CLARIBI_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("claribi-host console starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut access_url = None;
        for line in lines.by_ref() {
            let line = line.expect("a line");
            if let Some(at) = line.find("http://") {
                if line.contains("?token=") {
                    access_url = Some(line[at..].trim().to_string());
                    break;
                }
            }
        }
        // Keep reading (and dropping) what the console prints.
        std::thread::spawn(move || for _ in lines {});
        let access_url = access_url.expect("the console printed its access link");
        let origin = access_url.split("/?token=").next().unwrap_or("").to_string();
        ConsoleProcess { child, access_url, origin }
    }
}

impl Drop for ConsoleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
