//! Who may use the console, and what the browser is allowed to do with its pages.
//!
//! * **Loopback only**, and only requests whose `Host` is this console's own loopback address
//!   (DNS-rebinding protection); a request carrying a foreign `Origin` is refused.
//! * **A one-time access token** in the printed URL (as Jupyter does). Its first use opens a session —
//!   a random id in a cookie that is `HttpOnly` and `SameSite=Strict` — and redirects to a URL
//!   without the token; the token works once.
//! * **CSRF**: every state-changing request (`POST`) carries the session's CSRF token in
//!   `X-CSRF-Token` (read from `/api/session`, which only the console's own pages can read), and, when
//!   the browser says so, comes from the console's own origin (`Origin`, `Sec-Fetch-Site`).
//! * **Headers** on every response: a strict Content-Security-Policy (scripts, styles and images from
//!   the console itself only, no inline script, no framing, forms only to itself), `nosniff`, no
//!   referrer (the token never leaves in a `Referer`), `no-store`.
//! * **Nothing secret is rendered**: every JSON answer passes [`scrub`], which replaces any
//!   placeholder (`clbph_…`) a connector might have echoed; API keys travel only from the browser to
//!   the host, in a `POST` body, and are never sent back.

use rand::RngCore;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name (with the console's port: cookies do not tell ports apart, and two
/// consoles on one machine must not overwrite each other's session).
pub fn session_cookie(port: u16) -> String {
    format!("claribi_console_{port}")
}
/// The cookie naming the setup an OAuth popup belongs to (`SameSite=Lax`: it must come back with the
/// authorization server's redirect, a top-level navigation from another site; it names a setup, the
/// redirect's `state` is what proves it).
pub const SETUP_COOKIE: &str = "claribi_setup";
/// The CSRF header.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);

/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A random token: 32 bytes, hex.
pub fn token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Compare two tokens in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One browser session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The CSRF token of this session.
    pub csrf: String,
    last_used: Instant,
}

/// The access token and the sessions it opened.
pub struct Gate {
    access: Mutex<Option<String>>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl Gate {
    /// A gate with a fresh one-time access token; returns it too.
    pub fn new() -> (Gate, String) {
        let t = token();
        (Gate { access: Mutex::new(Some(t.clone())), sessions: Mutex::new(HashMap::new()) }, t)
    }

    /// Spend the access token: a new session id, or `None` when the token is wrong or used.
    pub fn open_session(&self, offered: &str) -> Option<String> {
        let mut access = self.access.lock().unwrap_or_else(|p| p.into_inner());
        match access.as_deref() {
            Some(t) if same(t, offered) => {
                *access = None;
                let id = token();
                let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
                sessions.insert(id.clone(), Session { csrf: token(), last_used: Instant::now() });
                Some(id)
            }
            _ => None,
        }
    }

    /// The session a cookie value names (and mark it used).
    pub fn session(&self, id: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| now.duration_since(s.last_used) < SESSION_IDLE);
        let s = sessions.get_mut(id)?;
        s.last_used = now;
        Some(s.clone())
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|p| p.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// The `Host` values this console answers to.
pub fn allowed_hosts(port: u16) -> Vec<String> {
    vec![format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")]
}

/// The origins this console's pages have.
pub fn own_origins(port: u16) -> Vec<String> {
    allowed_hosts(port).into_iter().map(|h| format!("http://{h}")).collect()
}

/// Whether a state-changing request may proceed: its CSRF header matches the session's, and what the
/// browser says of its origin is this console.
pub fn state_change_allowed(session: &Session, csrf: Option<&str>, origin: Option<&str>, fetch_site: Option<&str>, port: u16) -> Result<(), &'static str> {
    if !csrf.is_some_and(|c| same(c, &session.csrf)) {
        return Err("the request lacks the console's CSRF token; reload the page");
    }
    if let Some(o) = origin {
        if !own_origins(port).iter().any(|x| x == o) {
            return Err("the request comes from another origin");
        }
    }
    if let Some(site) = fetch_site {
        if site != "same-origin" && site != "none" {
            return Err("the request comes from another site");
        }
    }
    Ok(())
}

/// Replace every placeholder (`clbph_…`) in the strings of `v` by `[credential]`: a connector holds
/// placeholders only, and the console never shows one, even echoed into a result.
pub fn scrub(v: &mut Value) {
    match v {
        Value::String(s) => {
            if s.contains(crate::vault::credentials::PREFIX) {
                *s = scrub_text(s);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().filter(|k| k.contains(crate::vault::credentials::PREFIX)).cloned().collect();
            for k in keys {
                if let Some(x) = o.remove(&k) {
                    o.insert(scrub_text(&k), x);
                }
            }
            o.values_mut().for_each(scrub);
        }
        _ => {}
    }
}

/// [`scrub`] for one text.
pub fn scrub_text(s: &str) -> String {
    let prefix = crate::vault::credentials::PREFIX;
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at]);
        out.push_str("[credential]");
        let tail = &rest[at + prefix.len()..];
        let end = tail.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_access_token_opens_one_session_once() {
        let (gate, t) = Gate::new();
        assert!(gate.open_session("wrong").is_none());
        let id = gate.open_session(&t).expect("the token opens a session");
        assert!(gate.open_session(&t).is_none(), "the token works once");
        let s = gate.session(&id).expect("the session exists");
        assert_eq!(s.csrf.len(), 64);
        assert!(gate.session("other").is_none());
    }

    #[test]
    fn state_changes_need_the_csrf_token_and_the_consoles_origin() {
        let s = Session { csrf: "abc".into(), last_used: Instant::now() };
        assert!(state_change_allowed(&s, Some("abc"), Some("http://127.0.0.1:9"), Some("same-origin"), 9).is_ok());
        assert!(state_change_allowed(&s, Some("abc"), None, None, 9).is_ok());
        assert!(state_change_allowed(&s, None, Some("http://127.0.0.1:9"), None, 9).is_err());
        assert!(state_change_allowed(&s, Some("abd"), None, None, 9).is_err());
        assert!(state_change_allowed(&s, Some("abc"), Some("http://evil.example"), None, 9).is_err());
        assert!(state_change_allowed(&s, Some("abc"), Some("http://127.0.0.1:10"), None, 9).is_err());
        assert!(state_change_allowed(&s, Some("abc"), None, Some("cross-site"), 9).is_err());
    }

    #[test]
    fn placeholders_never_leave_in_what_is_rendered() {
        let p = "clbph_abcdefghijklmnopqrstuvwxyz234567";
        let mut v = json!({"note": format!("key {p}, again {p}."), "list": [p], p: 1, "n": 5});
        scrub(&mut v);
        let text = v.to_string();
        assert!(!text.contains("clbph_"), "{text}");
        assert_eq!(v["note"], "key [credential], again [credential].");
        assert_eq!(v["n"], 5);
        assert_eq!(scrub_text("no placeholder"), "no placeholder");
    }

    #[test]
    fn cookies_are_read_by_name() {
        assert_eq!(cookie("a=1; claribi_console_8790=xyz; b=2", &session_cookie(8790)), Some("xyz"));
        assert_eq!(cookie("a=1; claribi_console_8791=xyz", &session_cookie(8790)), None);
    }
}
