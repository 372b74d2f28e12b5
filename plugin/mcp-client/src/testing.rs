//! A scripted fake HTTP transport for tests (enabled by the `test-util` feature).
//!
//! Each scripted step is a closure that receives the request and returns the response, so a step can
//! echo the JSON-RPC id of the request it answers.

use crate::http::{BytesBody, HttpClient, HttpRequest, HttpResponse, TransportError};
use crate::{LogLevel, Logger};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::VecDeque;

type Step = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse, TransportError>>;

/// Answers requests from a queue of scripted steps and records every request.
#[derive(Default)]
pub struct ScriptedHttp {
    steps: RefCell<VecDeque<Step>>,
    requests: RefCell<Vec<HttpRequest>>,
}

impl ScriptedHttp {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a step.
    pub fn then(
        self,
        step: impl FnMut(&HttpRequest) -> Result<HttpResponse, TransportError> + 'static,
    ) -> Self {
        self.push(step);
        self
    }

    /// Appends a step.
    pub fn push(
        &self,
        step: impl FnMut(&HttpRequest) -> Result<HttpResponse, TransportError> + 'static,
    ) {
        self.steps.borrow_mut().push_back(Box::new(step));
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.borrow().clone()
    }

    /// The JSON bodies of the requests received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.requests
            .borrow()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
            .collect()
    }

    /// How many scripted steps have not been used.
    pub fn remaining(&self) -> usize {
        self.steps.borrow().len()
    }
}

impl HttpClient for ScriptedHttp {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.requests.borrow_mut().push(request.clone());
        let step = self.steps.borrow_mut().pop_front();
        match step {
            Some(mut step) => step(&request),
            None => Err(TransportError::Protocol(format!(
                "test script exhausted at request {}",
                self.requests.borrow().len()
            ))),
        }
    }
}

/// The JSON-RPC id of a request body (`Value::Null` if none).
pub fn request_id(request: &HttpRequest) -> Value {
    serde_json::from_slice::<Value>(&request.body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null)
}

/// The JSON-RPC method of a request body.
pub fn request_method(request: &HttpRequest) -> String {
    serde_json::from_slice::<Value>(&request.body)
        .ok()
        .and_then(|v| v.get("method").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// A response with the given status, headers and body chunks.
pub fn response(status: u16, headers: &[(&str, &str)], chunks: Vec<Vec<u8>>) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: Box::new(BytesBody::chunks(chunks)),
    }
}

/// `application/json` response.
pub fn json_response(status: u16, body: &Value) -> HttpResponse {
    response(
        status,
        &[("Content-Type", "application/json")],
        vec![body.to_string().into_bytes()],
    )
}

/// `text/event-stream` response delivered as the given chunks.
pub fn sse_response(chunks: &[&str]) -> HttpResponse {
    response(
        200,
        &[("Content-Type", "text/event-stream")],
        chunks.iter().map(|c| c.as_bytes().to_vec()).collect(),
    )
}

/// An empty response (e.g. 202 for a notification).
pub fn empty(status: u16) -> HttpResponse {
    response(status, &[], vec![])
}

/// A JSON response carrying `result` for the request's id.
pub fn rpc_result(request: &HttpRequest, result: Value) -> HttpResponse {
    json_response(
        200,
        &json!({ "jsonrpc": "2.0", "id": request_id(request), "result": result }),
    )
}

/// A JSON response carrying a JSON-RPC error for the request's id.
pub fn rpc_error(request: &HttpRequest, code: i64, message: &str) -> HttpResponse {
    json_response(
        200,
        &json!({ "jsonrpc": "2.0", "id": request_id(request), "error": { "code": code, "message": message } }),
    )
}

/// A standard `initialize` result for `version`.
pub fn initialize_result(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": { "name": "test-server", "version": "1.0.0" }
    })
}

/// A step answering `initialize` with `version`, issuing `session_id` when given.
pub fn initialize_ok(
    version: &'static str,
    session_id: Option<&'static str>,
) -> impl FnMut(&HttpRequest) -> Result<HttpResponse, TransportError> {
    move |request| {
        let mut response = rpc_result(request, initialize_result(version));
        if let Some(id) = session_id {
            response
                .headers
                .push(("Mcp-Session-Id".to_owned(), id.to_owned()));
        }
        Ok(response)
    }
}

/// A step answering `server/discover` the way a 2025 server does (the TypeScript SDK's transport:
/// HTTP 400, JSON-RPC -32000 with a null id), so that an `Auto` client falls back to `initialize`.
pub fn discover_refused() -> impl FnMut(&HttpRequest) -> Result<HttpResponse, TransportError> {
    |request| {
        assert_eq!(request_method(request), "server/discover", "the script expected the discover probe");
        Ok(json_response(
            400,
            &json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32000, "message": "Bad Request: Unsupported protocol version: 2026-07-28" } }),
        ))
    }
}

/// A step accepting a notification with 202.
pub fn accepted() -> impl FnMut(&HttpRequest) -> Result<HttpResponse, TransportError> {
    |_| Ok(empty(202))
}

/// A step answering with `result` for the request's id.
pub fn result(result: Value) -> impl FnMut(&HttpRequest) -> Result<HttpResponse, TransportError> {
    move |request| Ok(rpc_result(request, result.clone()))
}

/// A [`Logger`] that keeps the lines.
#[derive(Default)]
pub struct RecordingLogger(pub RefCell<Vec<(LogLevel, String)>>);

impl Logger for RecordingLogger {
    fn log(&self, level: LogLevel, message: &str) {
        self.0.borrow_mut().push((level, message.to_owned()));
    }
}

/// Something [`MemoryHost`] saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// The credential lock was taken.
    Lock,
    /// The credential lock was released.
    Unlock,
    /// One `update_secrets` call, with its changes.
    UpdateSecrets(Vec<(String, Option<String>)>),
}

type LockHook = Box<dyn FnMut(&MemoryHost)>;

/// An in-memory [`OAuthHost`](crate::oauth::OAuthHost) that behaves like clariBI's host where it
/// matters: at most 32 secret changes per update, state values of at most 64 KiB, and a state value
/// that contains a secret (8 characters or more) is refused — here with a panic, so that a test sees
/// the bug.
#[derive(Default)]
pub struct MemoryHost {
    pub secrets: RefCell<std::collections::BTreeMap<String, String>>,
    pub state: RefCell<std::collections::BTreeMap<String, String>>,
    pub shared: RefCell<std::collections::BTreeMap<String, String>>,
    pub events: RefCell<Vec<HostEvent>>,
    /// Runs each time the credential lock is taken (e.g. to act as another call that refreshed the
    /// tokens while this one waited).
    pub on_lock: RefCell<Option<LockHook>>,
    locked: std::cell::Cell<bool>,
}

impl MemoryHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a secret directly (no event recorded).
    pub fn put_secret(&self, key: &str, value: &str) {
        self.secrets
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
    }

    /// Every `update_secrets` call so far.
    pub fn secret_updates(&self) -> Vec<Vec<(String, Option<String>)>> {
        self.events
            .borrow()
            .iter()
            .filter_map(|e| match e {
                HostEvent::UpdateSecrets(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether the credential lock is held now.
    pub fn is_locked(&self) -> bool {
        self.locked.get()
    }

    fn check_clear(&self, value: &str) {
        for secret in self.secrets.borrow().values() {
            assert!(
                secret.len() < 8 || !value.contains(secret.as_str()),
                "a secret was about to be stored in clear state: {value}"
            );
        }
        assert!(value.len() <= 64 * 1024, "a state value exceeds 64 KiB");
    }
}

struct MemoryLock<'h>(&'h MemoryHost);

impl Drop for MemoryLock<'_> {
    fn drop(&mut self) {
        self.0.locked.set(false);
        self.0.events.borrow_mut().push(HostEvent::Unlock);
    }
}

impl crate::oauth::OAuthHost for MemoryHost {
    fn secret(&self, key: &str) -> Option<String> {
        self.secrets.borrow().get(key).cloned()
    }

    fn update_secrets(&self, changes: &[(&str, Option<&str>)]) -> Result<(), String> {
        if changes.len() > 32 {
            return Err("at most 32 secrets per update".to_owned());
        }
        let mut secrets = self.secrets.borrow_mut();
        for (key, value) in changes {
            match value {
                Some(v) => secrets.insert((*key).to_owned(), (*v).to_owned()),
                None => secrets.remove(*key),
            };
        }
        self.events.borrow_mut().push(HostEvent::UpdateSecrets(
            changes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect(),
        ));
        Ok(())
    }

    fn state(&self, key: &str) -> Option<String> {
        self.state.borrow().get(key).cloned()
    }

    fn set_state(&self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => {
                self.check_clear(v);
                self.state.borrow_mut().insert(key.to_owned(), v.to_owned());
            }
            None => {
                self.state.borrow_mut().remove(key);
            }
        }
    }

    fn shared_state(&self, key: &str) -> Option<String> {
        self.shared.borrow().get(key).cloned()
    }

    fn set_shared_state(&self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => {
                self.check_clear(v);
                self.shared
                    .borrow_mut()
                    .insert(key.to_owned(), v.to_owned());
            }
            None => {
                self.shared.borrow_mut().remove(key);
            }
        }
    }

    fn lock_credentials(&self) -> Box<dyn crate::oauth::HeldLock + '_> {
        assert!(!self.locked.get(), "the credential lock was taken twice");
        self.locked.set(true);
        self.events.borrow_mut().push(HostEvent::Lock);
        let hook = self.on_lock.borrow_mut().take();
        if let Some(mut hook) = hook {
            hook(self);
            *self.on_lock.borrow_mut() = Some(hook);
        }
        Box::new(MemoryLock(self))
    }
}
