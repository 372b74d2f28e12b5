//! The console's routes: the pages, the JSON API they call, and the OAuth callback route.
//!
//! ```text
//! GET  /?token=…                      one-time access token → session cookie → 303 /
//! GET  /                              the app (a session is needed)
//! GET  /static/*                      scripts, styles, images (compiled in)
//! GET  /oauth/callback                where the authorization server sends the popup back
//! GET  /api/session                   the CSRF token, the banner
//! GET  /api/connections               Data Sources
//! GET  /api/connectors                the MCP Servers tab's cards
//! POST /api/setups                    Authorize (OAuth: the URL for the popup) or an API key
//! GET  /api/setups/{id}               where a setup stands
//! POST /api/setups/{id}/finish        name it → ready
//! POST /api/setups/{id}/cancel        give it up (removed with its secrets)
//! GET  /api/connections/{name}/settings       grant, policy, what each secret is bound to
//! POST /api/connections/{name}/reconnect      OAuth again (popup) or a new API key
//! POST /api/connections/{name}/disconnect     revoke and delete
//! GET  /api/connections/{name}/tools          read tools with their input schemas
//! POST /api/connections/{name}/call           run one read tool: table view and chart
//! GET  /api/explorations                      the four ready-made questions
//! GET  /api/connections/{name}/exploration-options   pipelines, stages, reps
//! POST /api/explorations/{id}/run             several calls plus a computation
//! GET  /api/pins · POST /api/pins · POST /api/pins/{id}/run · POST /api/pins/{id}/delete
//! ```
//!
//! Every `/api` request needs the session cookie; every `POST` the CSRF token too
//! ([`super::security`]). Every JSON answer is scrubbed of placeholders; errors are one sentence.

use super::explorations::{self, HostCaller};
use super::security::{self, Gate, SETUP_COOKIE};
use super::{assets, charts, ConsoleOptions};
use crate::engine::results::table_view;
use crate::errors::{ConnectorError, HostError};
use crate::service::console_flow::{is_unnamed, Authorization};
use crate::service::{builtin, ConnectRequest, Credentials, HostService, OAuthFlow, PendingAuthorization};
use crate::vault::store::{AuthMethod, ConnectionRecord, PinRecord, Status};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

mod reviews;

/// What a setup is for.
#[derive(Debug, Clone)]
enum SetupKind {
    /// A new data source, pending under a setup name.
    New { connection_id: String },
    /// An existing OAuth connection authorized again (the service finds it by the pending
    /// authorization's connection id; the name is kept for the logs).
    Reconnect { name: String },
}

#[derive(Debug, Clone)]
enum Phase {
    Authorizing,
    Completing,
    Authorized(Authorization),
    Failed(String),
    Reconnected(Value),
}

#[derive(Debug, Clone)]
struct Setup {
    session: String,
    kind: SetupKind,
    pending: Option<PendingAuthorization>,
    phase: Phase,
    created: Instant,
    connector: String,
    suggested_name: String,
}

/// The console's shared state.
pub struct AppState {
    host: Arc<HostService>,
    addr: SocketAddr,
    gate: Gate,
    options: ConsoleOptions,
    setups: Mutex<HashMap<String, Setup>>,
    connectors: tokio::sync::OnceCell<Vec<Value>>,
}

/// The session a request belongs to (put there by the API guard).
#[derive(Debug, Clone)]
pub struct SessionId(String);

impl AppState {
    pub(super) fn new(host: Arc<HostService>, addr: SocketAddr, gate: Gate, options: ConsoleOptions) -> AppState {
        AppState { host, addr, gate, options, setups: Mutex::new(HashMap::new()), connectors: tokio::sync::OnceCell::new() }
    }

    fn redirect_uri(&self) -> String {
        format!("http://{}/oauth/callback", self.addr)
    }

    fn setups(&self) -> std::sync::MutexGuard<'_, HashMap<String, Setup>> {
        self.setups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Give up setups older than `max_age` that were never finished: their pending connections are
    /// removed with their secrets.
    pub(super) fn expire_setups(&self, max_age: Duration) {
        let expired: Vec<Setup> = {
            let mut setups = self.setups();
            let old: Vec<String> = setups.iter().filter(|(_, s)| s.created.elapsed() >= max_age).map(|(k, _)| k.clone()).collect();
            old.iter().filter_map(|k| setups.remove(k)).collect()
        };
        for s in expired {
            if let SetupKind::New { connection_id } = &s.kind {
                if let Err(e) = self.host.abandon_unnamed(connection_id) {
                    tracing::warn!("cannot remove an unfinished setup: {e}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------------

fn json_response(status: StatusCode, mut v: Value) -> Response {
    security::scrub(&mut v);
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], v.to_string()).into_response()
}

fn ok(v: Value) -> Response {
    json_response(StatusCode::OK, v)
}

fn fail(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({ "error": sentence_case(message) }))
}

fn sentence_case(m: &str) -> String {
    let m = crate::errors::sentence(m);
    let mut c = m.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => m,
    }
}

/// A host error as the console says it: one sentence, with the console's words for what to do.
pub fn console_message(e: &HostError) -> String {
    let text = match e {
        HostError::Connector(ConnectorError::Unauthorized { message }) if message.contains("access_denied") || message.contains("denied") => {
            "The authorization was denied on the consent page; nothing was stored. Authorize again and approve to connect.".to_string()
        }
        HostError::Usage(m) if m.contains("access_denied") => {
            "The authorization was denied on the consent page; nothing was stored. Authorize again and approve to connect.".to_string()
        }
        HostError::NoSuchConnection(n) => format!("There is no data source named `{}` (it may have been disconnected)", crate::errors::one_line(n)),
        other => other.to_string(),
    };
    let text = text
        .replace(" Run connect again", " Authorize again")
        .replace("Run connect again", "Authorize again")
        .replace(" (claribi-host reconnect NAME)", " (Reconnect in Data Sources)")
        .replace("List the tools with `claribi-host tools NAME`.", "Pick one of the listed tools.");
    sentence_case(&security::scrub_text(&text))
}

fn host_fail(e: &HostError) -> Response {
    let status = match e {
        HostError::NoSuchConnection(_) => StatusCode::NOT_FOUND,
        HostError::Storage(_) | HostError::Crashed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    json_response(status, json!({ "error": console_message(e), "kind": e.kind() }))
}

fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(fail(StatusCode::BAD_REQUEST, "the request body must be a JSON object")),
        Err(e) => Err(fail(StatusCode::BAD_REQUEST, &format!("the request body is not JSON ({e})"))),
    }
}

fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("").trim()
}

// ---------------------------------------------------------------------------------------------------
// The router and its guards
// ---------------------------------------------------------------------------------------------------

/// Every route of the console.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/session", get(session))
        .route("/connections", get(connections))
        .route("/connectors", get(connectors))
        .route("/setups", post(start_setup))
        .route("/setups/{id}", get(setup_status))
        .route("/setups/{id}/finish", post(finish_setup))
        .route("/setups/{id}/cancel", post(cancel_setup))
        .route("/connections/{name}/settings", get(settings))
        .route("/connections/{name}/reconnect", post(reconnect))
        .route("/connections/{name}/disconnect", post(disconnect))
        .route("/connections/{name}/tools", get(tools))
        .route("/connections/{name}/reviews", get(reviews::list))
        .route("/connections/{name}/reviews/approve", post(reviews::approve))
        .route("/connections/{name}/call", post(call))
        .route("/connections/{name}/exploration-options", get(exploration_options))
        .route("/explorations", get(list_explorations))
        .route("/explorations/{id}/run", post(run_exploration))
        .route("/pins", get(list_pins).post(add_pin))
        .route("/pins/{id}/run", post(run_pin))
        .route("/pins/{id}/delete", post(delete_pin))
        .fallback(|| async { fail(StatusCode::NOT_FOUND, "no such API route") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), api_guard));
    Router::new()
        .route("/", get(index))
        .route("/static/{file}", get(static_file))
        .route("/oauth/callback", get(oauth_callback))
        .nest("/api", api)
        .fallback(|| async { html(StatusCode::NOT_FOUND, assets::message_page("Not found", "There is no such page in the console.")) })
        .layer(axum::middleware::from_fn_with_state(state.clone(), edge_guard))
        .with_state(state)
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Every request: its `Host` must be this console's; a foreign `Origin` is refused; every response
/// gets the security headers.
async fn edge_guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let port = st.addr.port();
    let host_ok = header_str(req.headers(), "host").is_some_and(|h| security::allowed_hosts(port).iter().any(|a| a == h));
    let origin_ok = header_str(req.headers(), "origin").is_none_or(|o| security::own_origins(port).iter().any(|a| a == o));
    let callback = req.uri().path() == "/oauth/callback";
    let mut resp = if !host_ok {
        (StatusCode::FORBIDDEN, "this console answers only to its own loopback address\n").into_response()
    } else if !origin_ok {
        (StatusCode::FORBIDDEN, "requests from other origins are refused\n").into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(security::CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    if !callback {
        // The popup must keep its opener through the authorization server's pages.
        h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin-allow-popups"));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// `/api`: a session, and for a `POST` its CSRF token and the console's own origin.
async fn api_guard(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let name = security::session_cookie(st.addr.port());
    let sid = header_str(headers, "cookie").and_then(|c| security::cookie(c, &name)).map(str::to_string);
    let Some((sid, session)) = sid.and_then(|id| st.gate.session(&id).map(|s| (id, s))) else {
        return fail(StatusCode::UNAUTHORIZED, "your console session has ended; open the console with the link `claribi-host console` printed");
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        if let Err(why) = security::state_change_allowed(
            &session,
            header_str(headers, security::CSRF_HEADER),
            header_str(headers, "origin"),
            header_str(headers, "sec-fetch-site"),
            st.addr.port(),
        ) {
            return fail(StatusCode::FORBIDDEN, why);
        }
    }
    req.extensions_mut().insert(SessionId(sid));
    next.run(req).await
}

// ---------------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------------

async fn index(State(st): State<Arc<AppState>>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    let cookie_name = security::session_cookie(st.addr.port());
    let has_session = header_str(&headers, "cookie")
        .and_then(|c| security::cookie(c, &cookie_name))
        .is_some_and(|id| st.gate.session(id).is_some());
    if let Some(t) = q.get("token") {
        if has_session {
            return redirect_home(None);
        }
        return match st.gate.open_session(t) {
            Some(sid) => redirect_home(Some(format!("{cookie_name}={sid}; Path=/; HttpOnly; SameSite=Strict"))),
            None => html(
                StatusCode::UNAUTHORIZED,
                assets::message_page(
                    "This access link was used already",
                    "Each link `claribi-host console` prints opens the console once. Stop the console and start it again for a new link.",
                ),
            ),
        };
    }
    if !has_session {
        return html(
            StatusCode::UNAUTHORIZED,
            assets::message_page("Open the console with its link", "Open the link `claribi-host console` printed: it carries a one-time access token."),
        );
    }
    html(StatusCode::OK, assets::INDEX_HTML.to_string())
}

fn redirect_home(cookie: Option<String>) -> Response {
    let mut r = Response::builder().status(StatusCode::SEE_OTHER).header(header::LOCATION, "/");
    if let Some(c) = cookie {
        r = r.header(header::SET_COOKIE, c);
    }
    r.body(Body::empty()).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn static_file(Path(file): Path<String>) -> Response {
    match assets::get(&file) {
        Some((mime, bytes)) => ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache")], bytes).into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

// ---------------------------------------------------------------------------------------------------
// Data sources
// ---------------------------------------------------------------------------------------------------

async fn session(State(st): State<Arc<AppState>>, Extension(SessionId(sid)): Extension<SessionId>) -> Response {
    let csrf = st.gate.session(&sid).map(|s| s.csrf).unwrap_or_default();
    ok(json!({"csrf": csrf, "banner": st.options.banner, "version": env!("CARGO_PKG_VERSION")}))
}

/// The fix the product page gives for each status.
fn fix_text(c: &ConnectionRecord) -> Option<String> {
    match c.status {
        Status::InsufficientScope => Some(match c.last_error.as_deref() {
            Some(m) if m.starts_with("Insufficient scope") => m.to_string(),
            _ => format!(
                "Insufficient scope: the {} account did not grant {}. Reconnect and accept the read scope.",
                c.connector_name.trim_end_matches(" CRM"),
                c.scopes.join(" ")
            ),
        }),
        Status::NeedsReconnect => Some(format!(
            "{} no longer accepts this data source's credentials (expired or revoked). Reconnect to authorize again.",
            c.connector_name
        )),
        _ => None,
    }
}

fn connection_view(c: &ConnectionRecord) -> Value {
    json!({
        "name": c.name,
        "connector": c.connector_name,
        "connector_id": c.connector_id,
        "account": c.account,
        "granted_scopes": c.granted_scopes,
        "status": c.status.as_str(),
        "fix": fix_text(c),
        "last_error": c.last_error.as_deref().map(crate::errors::one_line),
        "auth_method": c.auth_method.as_str(),
        "endpoint": c.endpoint,
        "warnings": c.warnings,
        "updated_at": c.updated_at,
    })
}

async fn connections(State(st): State<Arc<AppState>>) -> Response {
    match st.host.connections() {
        Ok(list) => ok(json!({"connections": list.iter().filter(|c| !is_unnamed(c) && c.status != Status::Pending).map(|c| {
            let mut v = connection_view(c);
            v["reviews"] = json!(st.host.pending_review_count(c).unwrap_or(0));
            v
        }).collect::<Vec<_>>()})),
        Err(e) => host_fail(&e),
    }
}

async fn connectors(State(st): State<Arc<AppState>>) -> Response {
    let cards = st
        .connectors
        .get_or_try_init(|| async {
            let mut out = Vec::new();
            for (spec, bytes) in [("close", builtin::CLOSE), ("mcp", builtin::MCP)] {
                let p = st.host.runtime().load(bytes).await?;
                let i = &p.info;
                let methods: Vec<&str> = i
                    .auth_methods
                    .iter()
                    .map(|m| match m {
                        crate::sandbox::bindings::wit::AuthMethod::Oauth => "oauth",
                        crate::sandbox::bindings::wit::AuthMethod::ApiKey => "api-key",
                    })
                    .collect();
                let endpoint = match (spec, &st.options.close_endpoint) {
                    ("close", Some(e)) => e.clone(),
                    _ => i.default_endpoint.clone(),
                };
                let allow_origins = if spec == "close" { st.options.close_allow_origins.clone() } else { vec![] };
                out.push(json!({
                    "id": spec, "name": i.display_name, "version": i.version, "description": i.description,
                    "default_endpoint": endpoint, "scopes": i.scopes, "auth_methods": methods,
                    "needs_endpoint": i.default_endpoint.is_empty(), "allow_origins": allow_origins,
                }));
            }
            Ok::<_, HostError>(out)
        })
        .await;
    match cards {
        Ok(c) => ok(json!({"connectors": c})),
        Err(e) => host_fail(&e),
    }
}

fn setup_view(id: &str, s: &Setup) -> Value {
    let mut v = json!({"setup": id, "connector": s.connector, "suggested_name": s.suggested_name,
                       "reconnect": matches!(s.kind, SetupKind::Reconnect { .. })});
    match &s.phase {
        Phase::Authorizing => v["status"] = json!("authorizing"),
        Phase::Completing => v["status"] = json!("completing"),
        Phase::Authorized(a) => {
            v["status"] = json!("authorized");
            v["account"] = json!(a.account);
            v["granted_scopes"] = json!(a.granted_scopes);
            v["warnings"] = json!(a.warnings);
        }
        Phase::Failed(m) => {
            v["status"] = json!("failed");
            v["error"] = json!(m);
        }
        Phase::Reconnected(outcome) => {
            v["status"] = json!("reconnected");
            v["outcome"] = outcome.clone();
        }
    }
    if let (Phase::Authorizing, Some(p)) = (&s.phase, &s.pending) {
        v["authorize_url"] = json!(p.url);
    }
    v
}

fn setup_cookie(id: &str) -> String {
    format!("{SETUP_COOKIE}={id}; Path=/oauth/callback; HttpOnly; SameSite=Lax; Max-Age=1800")
}

fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The origins the operator allowed beyond the connection's own URLs (`allow_origins` of a setup).
fn allow_origins(body: &Value) -> Option<Vec<String>> {
    let list: Vec<String> = body
        .get("allow_origins")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).take(16).collect())
        .unwrap_or_default();
    (!list.is_empty()).then_some(list)
}

async fn start_setup(State(st): State<Arc<AppState>>, Extension(SessionId(sid)): Extension<SessionId>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let connector = str_field(&body, "connector");
    let plugin = match connector {
        "close" => builtin::CLOSE,
        "mcp" => builtin::MCP,
        _ => return fail(StatusCode::BAD_REQUEST, "choose one of the installed connectors (close or mcp)"),
    };
    let method = str_field(&body, "method");
    let endpoint = Some(str_field(&body, "endpoint").to_string()).filter(|e| !e.is_empty());
    if connector == "mcp" && endpoint.is_none() {
        return fail(StatusCode::BAD_REQUEST, "give the MCP server's endpoint URL, e.g. https://example.com/mcp");
    }
    let key = match method {
        "api-key" => {
            let k = Zeroizing::new(str_field(&body, "api_key").to_string());
            if k.is_empty() {
                return fail(StatusCode::BAD_REQUEST, "paste the API key first");
            }
            Some(k)
        }
        "oauth" | "none" => None,
        _ => return fail(StatusCode::BAD_REQUEST, "choose how to authorize: OAuth, an API key, or none"),
    };
    let credentials = match method {
        "oauth" => Credentials::OAuth(OAuthFlow::headless()),
        "api-key" => Credentials::ApiKey(Zeroizing::new(String::new())),
        _ => Credentials::None,
    };
    let request = ConnectRequest {
        name: String::new(),
        plugin: plugin.to_vec(),
        endpoint,
        credentials,
        scopes: vec![],
        // The operator's explicit widening (the card's "Also allow origins").
        allow_origins: allow_origins(&body),
        policy: None,
        options: vec![],
    };
    let record = match st.host.create_unnamed(request).await {
        Ok(r) => r,
        Err(e) => return host_fail(&e),
    };
    let id = security::token()[..24].to_string();
    let suggested = suggest_name(&st.host, if connector == "close" { "close" } else { "mcp" });
    let mut setup = Setup {
        session: sid,
        kind: SetupKind::New { connection_id: record.id.clone() },
        pending: None,
        phase: Phase::Authorizing,
        created: Instant::now(),
        connector: record.connector_name.clone(),
        suggested_name: suggested,
    };
    let result = match (method, key) {
        ("oauth", _) => match st.host.begin_unnamed_authorization(&record.id, &st.redirect_uri()).await {
            Ok(p) => {
                setup.pending = Some(p);
                Ok(())
            }
            Err(e) => Err(e),
        },
        (_, Some(k)) => st.host.authorize_unnamed_with_key(&record.id, k).await.map(|a| setup.phase = Phase::Authorized(a)),
        _ => st.host.authorize_unnamed_without_credentials(&record.id).await.map(|a| setup.phase = Phase::Authorized(a)),
    };
    if let Err(e) = result {
        // The service removed the pending connection: nothing is stored.
        return host_fail(&e);
    }
    let view = setup_view(&id, &setup);
    st.setups().insert(id.clone(), setup);
    with_cookie(ok(view), &setup_cookie(&id))
}

/// `close`, else `close-2`, `close-3`, … — the first name no connection has.
fn suggest_name(host: &HostService, base: &str) -> String {
    let taken: Vec<String> = host.connections().map(|l| l.into_iter().map(|c| c.name).collect()).unwrap_or_default();
    (1..100).map(|n| if n == 1 { base.to_string() } else { format!("{base}-{n}") }).find(|n| !taken.contains(n)).unwrap_or_else(|| base.into())
}

fn own_setup(st: &AppState, sid: &str, id: &str) -> Result<Setup, Response> {
    match st.setups().get(id) {
        Some(s) if s.session == sid => Ok(s.clone()),
        _ => Err(fail(StatusCode::NOT_FOUND, "this setup is unknown or finished; start again from Add data source")),
    }
}

async fn setup_status(State(st): State<Arc<AppState>>, Extension(SessionId(sid)): Extension<SessionId>, Path(id): Path<String>) -> Response {
    match own_setup(&st, &sid, &id) {
        Ok(s) => ok(setup_view(&id, &s)),
        Err(r) => r,
    }
}

async fn finish_setup(State(st): State<Arc<AppState>>, Extension(SessionId(sid)): Extension<SessionId>, Path(id): Path<String>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let setup = match own_setup(&st, &sid, &id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (SetupKind::New { connection_id }, Phase::Authorized(a)) = (&setup.kind, &setup.phase) else {
        return fail(StatusCode::CONFLICT, "authorize the data source before naming it");
    };
    let name = str_field(&body, "name");
    if name.is_empty() {
        return fail(StatusCode::BAD_REQUEST, "give the data source a name");
    }
    match st.host.finish_unnamed(connection_id, name, a.clone()).await {
        Ok(outcome) => {
            st.setups().remove(&id);
            ok(json!({"connected": serde_json::to_value(&outcome).unwrap_or(Value::Null)}))
        }
        // A taken or invalid name: refused, the setup waits for another name.
        Err(e @ HostError::Usage(_)) => host_fail(&e),
        Err(e) => {
            st.setups().remove(&id);
            let _ = st.host.abandon_unnamed(connection_id);
            host_fail(&e)
        }
    }
}

async fn cancel_setup(State(st): State<Arc<AppState>>, Extension(SessionId(sid)): Extension<SessionId>, Path(id): Path<String>) -> Response {
    let setup = match own_setup(&st, &sid, &id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    st.setups().remove(&id);
    if let SetupKind::New { connection_id } = &setup.kind {
        if let Err(e) = st.host.abandon_unnamed(connection_id) {
            return host_fail(&e);
        }
    }
    ok(json!({"cancelled": true}))
}

/// The redirect from the authorization server: complete the setup the popup belongs to, and show a
/// page that closes itself.
async fn oauth_callback(State(st): State<Arc<AppState>>, headers: HeaderMap, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").to_string();
    let callback_url = format!("{}?{query}", st.redirect_uri());
    let state_param = crate::oauth::scopes::query_pairs(&callback_url).into_iter().find(|(k, _)| k == "state").map(|(_, v)| v);
    let by_cookie = header_str(&headers, "cookie").and_then(|c| security::cookie(c, SETUP_COOKIE)).map(str::to_string);
    // The setup the popup belongs to: the one its cookie names, else the one whose state it carries.
    let taken = {
        let mut setups = st.setups();
        let id = by_cookie.filter(|id| setups.get(id).is_some_and(|s| matches!(s.phase, Phase::Authorizing))).or_else(|| {
            setups
                .iter()
                .find(|(_, s)| matches!(s.phase, Phase::Authorizing) && s.pending.as_ref().map(|p| Some(&p.state) == state_param.as_ref()).unwrap_or(false))
                .map(|(k, _)| k.clone())
        });
        id.and_then(|id| {
            let s = setups.get_mut(&id)?;
            let pending = s.pending.take()?;
            s.phase = Phase::Completing;
            Some((id, s.kind.clone(), s.connector.clone(), pending))
        })
    };
    let Some((id, kind, connector, pending)) = taken else {
        return html(
            StatusCode::BAD_REQUEST,
            assets::callback_page(false, "This authorization is unknown or finished (a stale or forged redirect); nothing was stored."),
        );
    };
    let (phase, message, success) = match kind {
        SetupKind::New { .. } => match st.host.complete_unnamed_authorization(&pending, &callback_url).await {
            Ok(a) => {
                let who = a.account.clone().unwrap_or_else(|| connector.clone());
                (Phase::Authorized(a), format!("{connector} authorized ({who}). Back in the console, name the data source and press Finish."), true)
            }
            Err(e) => {
                let m = console_message(&e);
                (Phase::Failed(m.clone()), m, false)
            }
        },
        SetupKind::Reconnect { name } => match st.host.complete_reauthorization(&pending, &callback_url).await {
            Ok(outcome) => (
                Phase::Reconnected(serde_json::to_value(&outcome).unwrap_or(Value::Null)),
                format!("{connector} authorized again: `{}` is ready.", outcome.name),
                true,
            ),
            Err(e) => {
                tracing::info!(connection = %name, "reconnect failed: {e}");
                let m = console_message(&e);
                (Phase::Failed(m.clone()), m, false)
            }
        },
    };
    if let Some(s) = st.setups().get_mut(&id) {
        s.phase = phase;
    }
    html(if success { StatusCode::OK } else { StatusCode::BAD_REQUEST }, assets::callback_page(success, &message))
}

// ---------------------------------------------------------------------------------------------------
// Settings, reconnect, disconnect
// ---------------------------------------------------------------------------------------------------

fn named(st: &AppState, name: &str) -> Result<ConnectionRecord, Response> {
    match st.host.connection(name) {
        Ok(c) if !is_unnamed(&c) => Ok(c),
        Ok(_) => Err(fail(StatusCode::NOT_FOUND, "that data source is still being set up")),
        Err(e) => Err(host_fail(&e)),
    }
}

async fn settings(State(st): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let c = match named(&st, &name) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let grant = match st.host.grant_of(&c) {
        Ok(g) => g.describe(),
        Err(e) => return host_fail(&e),
    };
    let secrets = match st.host.secret_bindings(&c) {
        Ok(s) => s,
        Err(e) => return host_fail(&e),
    };
    let l = c.policy.limits;
    ok(json!({
        "connection": connection_view(&c),
        "grant": grant,
        "operator_origins": c.policy.grant.to_strings(),
        "secrets": secrets,
        "policy_toml": c.policy.to_toml(),
        "limits": {
            "memory_mib": l.memory_bytes / (1024 * 1024),
            "host_memory_mib": l.host_memory_bytes / (1024 * 1024),
            "call_timeout_ms": l.call_timeout.as_millis() as u64,
            "max_response_bytes": l.max_response_bytes,
            "max_requests_per_call": l.max_requests_per_call,
        },
        "scopes_requested": c.scopes,
        "created_at": c.created_at,
    }))
}

async fn reconnect(State(st): State<Arc<AppState>>, Extension(SessionId(sid)): Extension<SessionId>, Path(name): Path<String>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let c = match named(&st, &name) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if c.auth_method == AuthMethod::ApiKey {
        let key = Zeroizing::new(str_field(&body, "api_key").to_string());
        if key.is_empty() {
            return fail(StatusCode::BAD_REQUEST, "paste the new API key first");
        }
        return match st.host.rekey(&name, key).await {
            Ok(outcome) => ok(json!({"status": "reconnected", "outcome": serde_json::to_value(&outcome).unwrap_or(Value::Null)})),
            Err(e) => host_fail(&e),
        };
    }
    let pending = match st.host.begin_reauthorization(&name, &st.redirect_uri()).await {
        Ok(p) => p,
        Err(e) => return host_fail(&e),
    };
    let id = security::token()[..24].to_string();
    let setup = Setup {
        session: sid,
        kind: SetupKind::Reconnect { name: name.clone() },
        pending: Some(pending),
        phase: Phase::Authorizing,
        created: Instant::now(),
        connector: c.connector_name.clone(),
        suggested_name: name,
    };
    let view = setup_view(&id, &setup);
    st.setups().insert(id.clone(), setup);
    with_cookie(ok(view), &setup_cookie(&id))
}

async fn disconnect(State(st): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    if let Err(r) = named(&st, &name) {
        return r;
    }
    match st.host.disconnect(&name).await {
        Ok(out) => ok(json!({"disconnected": out.name, "revoked": out.revoked, "warning": out.warning.map(|w| console_message(&HostError::Usage(w)))})),
        Err(e) => host_fail(&e),
    }
}

// ---------------------------------------------------------------------------------------------------
// Explore
// ---------------------------------------------------------------------------------------------------

async fn tools(State(st): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    if let Err(r) = named(&st, &name) {
        return r;
    }
    match st.host.list_tools(&name).await {
        Ok(l) => {
            let tools: Vec<Value> = l
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "title": t.title, "description": t.description, "input_schema": t.input_schema}))
                .collect();
            ok(json!({"tools": tools, "withheld": l.blocked.len()}))
        }
        Err(e) => host_fail(&e),
    }
}

const MAX_ROWS: usize = 1000;
const MAX_JSON: usize = 64 * 1024;

/// A tool result as the console shows it: the table view, a proposed chart, and the JSON.
fn result_view(out: &crate::service::ToolOutput, title: &str) -> Value {
    let Some(vendor) = explorations::vendor_json(out) else {
        let texts: Vec<String> = out
            .content
            .iter()
            .filter_map(|c| match c {
                crate::service::Content::Text { text } => Some(text.chars().take(MAX_JSON).collect()),
                _ => None,
            })
            .collect();
        return json!({"table": null, "chart": null, "json": null, "text": texts.join("\n")});
    };
    let table = table_view(&vendor);
    let chart = table.as_ref().and_then(|t| charts::propose(t, title));
    let mut pretty = serde_json::to_string_pretty(&vendor).unwrap_or_default();
    let truncated = pretty.len() > MAX_JSON;
    if truncated {
        let mut cut = MAX_JSON;
        while !pretty.is_char_boundary(cut) {
            cut -= 1;
        }
        pretty.truncate(cut);
        pretty.push_str("\n…");
    }
    let table = table.map(|mut t| {
        let total = t.rows.len();
        t.rows.truncate(MAX_ROWS);
        let mut v = serde_json::to_value(&t).unwrap_or(Value::Null);
        v["shown"] = json!(t.rows.len());
        v["row_count"] = json!(total);
        v
    });
    json!({"table": table, "chart": chart, "json": pretty, "json_truncated": truncated})
}

async fn call(State(st): State<Arc<AppState>>, Path(name): Path<String>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = named(&st, &name) {
        return r;
    }
    let tool = str_field(&body, "tool").to_string();
    let args = body.get("arguments").cloned().unwrap_or_else(|| json!({}));
    if !args.is_object() {
        return fail(StatusCode::BAD_REQUEST, "the arguments must be a JSON object");
    }
    let started = Instant::now();
    match st.host.call_tool(&name, &tool, &args.to_string()).await {
        Ok(out) => {
            let mut v = result_view(&out, &tool);
            v["duration_ms"] = json!(started.elapsed().as_millis() as u64);
            ok(v)
        }
        Err(e) => host_fail(&e),
    }
}

async fn list_explorations() -> Response {
    ok(json!({"explorations": explorations::catalogue()}))
}

async fn exploration_options(State(st): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    if let Err(r) = named(&st, &name) {
        return r;
    }
    let mut caller = HostCaller::new(&st.host, &name);
    match explorations::options(&mut caller).await {
        Ok(v) => ok(v),
        Err(e) => host_fail(&e),
    }
}

async fn answer(st: &AppState, connection: &str, id: &str, inputs: &Value) -> Result<Value, HostError> {
    let mut caller = HostCaller::new(&st.host, connection);
    let a = explorations::run(id, &mut caller, inputs).await?;
    let mut v = serde_json::to_value(&a).unwrap_or(Value::Null);
    v["calls"] = json!(caller.calls);
    Ok(v)
}

async fn run_exploration(State(st): State<Arc<AppState>>, Path(id): Path<String>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let connection = str_field(&body, "connection").to_string();
    if let Err(r) = named(&st, &connection) {
        return r;
    }
    let inputs = body.get("inputs").cloned().unwrap_or_else(|| json!({}));
    match answer(&st, &connection, &id, &inputs).await {
        Ok(v) => ok(v),
        Err(e) => host_fail(&e),
    }
}

// ---------------------------------------------------------------------------------------------------
// Pins and the dashboard
// ---------------------------------------------------------------------------------------------------

fn pin_view(p: &PinRecord, connections: &[ConnectionRecord]) -> Value {
    let c = connections.iter().find(|c| c.id == p.connection_id);
    json!({
        "id": p.id, "title": p.title, "kind": p.kind, "target": p.target,
        "arguments": serde_json::from_str::<Value>(&p.arguments).unwrap_or(Value::Null),
        "chart": serde_json::from_str::<Value>(&p.chart).unwrap_or(Value::Null),
        "connection": c.map(|c| c.name.clone()), "connector": c.map(|c| c.connector_name.clone()),
        "account": c.and_then(|c| c.account.clone()), "created_at": p.created_at,
    })
}

async fn list_pins(State(st): State<Arc<AppState>>) -> Response {
    let (pins, conns) = match (st.host.store().pins(), st.host.connections()) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(e), _) => return host_fail(&HostError::Storage(e)),
        (_, Err(e)) => return host_fail(&e),
    };
    ok(json!({"pins": pins.iter().map(|p| pin_view(p, &conns)).collect::<Vec<_>>()}))
}

async fn add_pin(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let c = match named(&st, str_field(&body, "connection")) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let kind = str_field(&body, "kind");
    let target = str_field(&body, "target");
    match kind {
        "tool" => {
            if let Err(e) = st.host.check_callable(&c, target) {
                return host_fail(&e);
            }
        }
        "exploration" if explorations::catalogue().iter().any(|x| x.id == target) => {}
        _ => return fail(StatusCode::BAD_REQUEST, "a pin is a read tool's call or one of the ready-made explorations"),
    }
    let arguments = body.get("arguments").cloned().unwrap_or_else(|| json!({}));
    let chart = body.get("chart").cloned().unwrap_or(Value::Null);
    let (args_text, chart_text) = (arguments.to_string(), chart.to_string());
    if !arguments.is_object() || args_text.len() > 16 * 1024 || !(chart.is_object() || chart.is_null()) || chart_text.len() > 8 * 1024 {
        return fail(StatusCode::BAD_REQUEST, "a pin keeps a call's arguments (a JSON object) and a chart choice, nothing larger");
    }
    // A pin keeps a call, never a result and never a credential.
    if body.get("result").is_some() || body.get("rows").is_some() {
        return fail(StatusCode::BAD_REQUEST, "a pin keeps the call, not its result");
    }
    if args_text.contains(crate::vault::credentials::PREFIX) || chart_text.contains(crate::vault::credentials::PREFIX) {
        return fail(StatusCode::BAD_REQUEST, "a pin cannot keep a credential placeholder");
    }
    let title: String = crate::errors::one_line(str_field(&body, "title")).chars().take(120).collect();
    let pin = PinRecord {
        id: format!("pin_{}", &security::token()[..24]),
        connection_id: c.id.clone(),
        title: if title.is_empty() { target.to_string() } else { title },
        kind: kind.into(),
        target: target.into(),
        arguments: args_text,
        chart: chart_text,
        created_at: 0,
    };
    match st.host.store().insert_pin(&pin) {
        Ok(()) => ok(json!({"pinned": pin.id})),
        Err(e) => host_fail(&HostError::Storage(e)),
    }
}

async fn run_pin(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let pins = match st.host.store().pins() {
        Ok(p) => p,
        Err(e) => return host_fail(&HostError::Storage(e)),
    };
    let Some(pin) = pins.into_iter().find(|p| p.id == id) else {
        return fail(StatusCode::NOT_FOUND, "that pin is gone");
    };
    let conns = st.host.connections().unwrap_or_default();
    let Some(c) = conns.iter().find(|c| c.id == pin.connection_id) else {
        return fail(StatusCode::NOT_FOUND, "the pin's data source is gone");
    };
    let args: Value = serde_json::from_str(&pin.arguments).unwrap_or_else(|_| json!({}));
    let chart: Value = serde_json::from_str(&pin.chart).unwrap_or(Value::Null);
    let started = Instant::now();
    let ran = match pin.kind.as_str() {
        "exploration" => answer(&st, &c.name, &pin.target, &args).await,
        _ => st.host.call_tool(&c.name, &pin.target, &args.to_string()).await.map(|out| result_view(&out, &pin.title)),
    };
    let mut v = match ran {
        Ok(mut v) => {
            if chart.is_object() {
                v["chart"] = chart;
            }
            v["status"] = json!("ok");
            v
        }
        Err(e) => json!({"status": "error", "error": console_message(&e)}),
    };
    let fresh = st.host.connection(&c.name).ok();
    v["pin"] = pin_view(&pin, &conns);
    v["ran_at"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    v["duration_ms"] = json!(started.elapsed().as_millis() as u64);
    v["data_source"] = json!({"name": c.name, "connector": c.connector_name, "account": c.account,
                              "status": fresh.map(|f| f.status.as_str()).unwrap_or("unknown")});
    ok(v)
}

async fn delete_pin(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match st.host.store().delete_pin(&id) {
        Ok(true) => ok(json!({"deleted": id})),
        Ok(false) => fail(StatusCode::NOT_FOUND, "that pin is gone"),
        Err(e) => host_fail(&HostError::Storage(e)),
    }
}
