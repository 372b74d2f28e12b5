//! The send hook: the one place every outgoing HTTP request of every connector passes through, and
//! every response comes back through.
//!
//! A connector reaches the network only through `wasi:http/outgoing-handler`; wasmtime-wasi-http hands
//! each request to [`WasiHttpHooks::send_request`], implemented here by [`Outbound`]. The checks run
//! in this order, and the first failure denies the request with `HTTP-request-denied` (the guest sees
//! a policy denial; the host keeps the detailed reason and shows it to the operator):
//!
//! 1. **Request budget** — at most `max_requests_per_call` requests per call.
//! 2. **Grant** — method, scheme, host, port and path must match a rule of the connection's grant
//!    ([`crate::policy`]): its endpoint URL, the OAuth URLs its own metadata named
//!    ([`crate::oauth::discovery`]), and what the operator granted explicitly.
//! 3. **The body is read** (at most [`MAX_REQUEST_BODY`] bytes, counted against the call's host
//!    memory budget).
//! 4. **Second line** — a credential *value* of the connection anywhere in the request, in any
//!    encoding, refuses it ([`crate::wire::scanner`]); a connector holds only placeholders, so this
//!    never fires unless something else failed.
//! 5. **Upstream tool calls** — a JSON body's MCP `tools/call`, or an `Mcp-Name` header, naming a
//!    withheld tool is refused, and so are routing headers that disagree with the body
//!    ([`crate::wire::upstream_calls`]); what reading the body costs is charged to the budget first.
//! 6. **Credentials attached** — placeholders replaced by their values only where their bindings
//!    put them; a placeholder anywhere else refuses the request ([`crate::wire::attach`]). Answers
//!    are asked for whole and uncompressed, and routing-override headers refused
//!    ([`crate::wire::request_headers`]).
//! 7. **DNS and addresses** — the hook resolves the name itself and refuses loopback, private,
//!    link-local, metadata and other special addresses ([`crate::wire::addresses`]) unless the operator
//!    named that address; it then connects to exactly the addresses it checked. Before that, a
//!    request to the endpoint's origin takes from the vendor's rate budget the store keeps for every
//!    process ([`rate`]): when it is spent, the host waits for a near reset or answers with its own
//!    429 and the retry time, so the vendor never sees the request.
//! 8. **Response** — bytes counted against `max_response_bytes` while they stream; a challenge of the
//!    endpoint and the OAuth metadata the host derived are learned from; answers that may hold a
//!    credential reach the connector with placeholders ([`crate::wire::inbound`]): how each answer is
//!    treated is decided *before* the request is sent — the answer to a request that carried a grant
//!    credential is a token answer whatever its URL, and the URL's purpose is read together with the
//!    grant — and any JSON answer naming a credential member at its top level is rewritten too;
//!    a known credential echoed anywhere is masked ([`crate::wire::masker`]).
//!
//! Redirects are not followed by wasi:http: a connector that wants to follow one sends a new request,
//! which comes through this hook again, so every hop is checked against the same policy.

use crate::oauth::discovery::{OAuthState, Purpose};
use crate::oauth::scopes::ScopeSources;
use crate::policy::{Grant, Limits, Method, Origin, Policy, Reason, Rule, Target};
use crate::sandbox::limits::{CallBudget, JSON_PARSE_FACTOR};
use crate::vault::call_credentials::CallCredentials;
use crate::vault::credentials::{Binding, Credential, Kind};
use crate::wire::attach::{self, KeyHeaders};
use crate::wire::inbound::{TokenFacts, Treatment};
use crate::wire::masker::Masker;
use crate::wire::matchers::{MatcherCache, Matchers};
use crate::wire::transport::{self, Meter};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

pub use crate::wire::transport::{FixedResolver, Resolve, SystemResolver};

/// The largest request body the hook reads (larger: denied).
pub const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;

/// Why an upstream tool may not be called (`None`: it may).
pub type ToolGate = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What the hook knows about the connection a call is for.
pub struct CallNetwork {
    /// Connection name, for messages.
    pub connection: String,
    /// The MCP endpoint (`None`: no connection, e.g. a component being described).
    pub endpoint: Option<Target>,
    /// The operator's policy.
    pub policy: Policy,
    /// What the host learned of the connection's authorization.
    pub oauth: OAuthState,
    /// Whether the connection authorizes with OAuth (only then are OAuth URLs granted and learned).
    pub uses_oauth: bool,
    /// The API-key headers.
    pub key_headers: KeyHeaders,
    /// Where the connection's matchers are kept between calls.
    pub matchers: Arc<MatcherCache>,
    /// Where the connection's scopes come from (what it may ask for).
    pub scopes: ScopeSources,
    /// The redirect URI of the authorization this call begins (`None`: it begins none).
    pub redirect_uri: Option<String>,
}

/// What the grant check decided about a request, kept until its response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allowed {
    /// What the URL was to the authorization when the grant allowed it.
    pub purpose: Option<Purpose>,
    /// The rules that allowed it: only they may open a special address for it.
    pub rules: Grant,
}

/// Per-call outbound state shared between the hook and the call runner.
pub struct OutboundContext {
    /// Connection name, for messages.
    pub connection: String,
    endpoint: Option<Target>,
    /// Whether the learned OAuth URLs are granted (connection URLs granted, and an OAuth connection).
    oauth_urls: bool,
    /// Whether the connection authorizes with OAuth.
    uses_oauth: bool,
    /// The operator's rules, plus the endpoint's.
    fixed: Grant,
    /// The call's limits.
    pub limits: Limits,
    oauth: Mutex<OAuthState>,
    oauth_changed: AtomicBool,
    /// The call's credentials (stored and minted).
    pub credentials: Arc<CallCredentials>,
    key_headers: KeyHeaders,
    /// The matchers for the credentials the call knows, the generation they are for, and the bytes
    /// charged for them to the budget.
    matchers: Mutex<(u64, Arc<Matchers>, usize)>,
    matcher_cache: Arc<MatcherCache>,
    /// Why the matchers do not fit the call's budget (every request is then refused).
    matchers_refused: Mutex<Option<String>>,
    scopes: ScopeSources,
    redirect_uri: Option<String>,
    /// Name resolution.
    pub resolver: Arc<dyn Resolve>,
    /// Requests made so far in this call.
    pub requests: AtomicU32,
    /// Response bytes received so far in this call.
    pub bytes_received: AtomicU64,
    denials: Arc<Mutex<Vec<String>>>,
    tool_gate: Option<ToolGate>,
    token_facts: Mutex<Vec<TokenFacts>>,
    /// The call's host memory budget.
    pub budget: Arc<CallBudget>,
    /// The vendor's rate budget the endpoint requests take from (`None`: unmetered).
    rate: Option<rate::RateScopes>,
}

const ENDPOINT_METHODS: &[Method] = &[Method::Get, Method::Post, Method::Delete];

impl OutboundContext {
    /// The context of one call.
    pub fn new(net: CallNetwork, limits: Limits, credentials: Arc<CallCredentials>, resolver: Arc<dyn Resolve>, budget: Arc<CallBudget>) -> OutboundContext {
        let mut fixed = Grant::default();
        if net.policy.connection_urls {
            if let Some(e) = &net.endpoint {
                fixed.push(Rule::exact(e, ENDPOINT_METHODS, Reason::Endpoint));
            }
        }
        let fixed = fixed.with(&net.policy.grant);
        OutboundContext {
            connection: net.connection,
            endpoint: net.endpoint,
            oauth_urls: net.policy.connection_urls && net.uses_oauth,
            uses_oauth: net.uses_oauth,
            fixed,
            limits,
            oauth: Mutex::new(net.oauth),
            oauth_changed: AtomicBool::new(false),
            matchers: Mutex::new((u64::MAX, Arc::new(Matchers::default()), 0)),
            matcher_cache: net.matchers,
            matchers_refused: Mutex::new(None),
            scopes: net.scopes,
            redirect_uri: net.redirect_uri,
            credentials,
            key_headers: net.key_headers,
            resolver,
            requests: AtomicU32::new(0),
            bytes_received: AtomicU64::new(0),
            denials: Arc::new(Mutex::new(Vec::new())),
            tool_gate: None,
            token_facts: Mutex::new(Vec::new()),
            budget,
            rate: None,
        }
    }

    /// A context that may make no request at all (a component being described).
    pub fn detached(connection: &str, limits: Limits) -> OutboundContext {
        let net = CallNetwork {
            connection: connection.to_string(),
            endpoint: None,
            policy: Policy::deny_all(),
            oauth: OAuthState::default(),
            uses_oauth: false,
            key_headers: KeyHeaders::default(),
            matchers: Arc::new(MatcherCache::default()),
            scopes: ScopeSources::default(),
            redirect_uri: None,
        };
        let budget = Arc::new(CallBudget::new(limits.host_memory_bytes));
        OutboundContext::new(net, limits, Arc::new(CallCredentials::none()), Arc::new(SystemResolver), budget)
    }

    /// Take the endpoint's requests from these rate-budget scopes ([`rate`]).
    pub fn with_rate_budget(mut self, scopes: rate::RateScopes) -> Self {
        self.rate = Some(scopes);
        self
    }

    /// Read request bodies for upstream `tools/call`s and refuse those `gate` refuses.
    pub fn with_tool_gate(mut self, gate: ToolGate) -> Self {
        self.tool_gate = Some(gate);
        self
    }

    fn deny(&self, reason: String) -> Error {
        (self.denial_sink())(self.mask(&reason));
        Error::HttpRequestDenied
    }

    /// Records a denial (already masked) from anywhere, a response body included.
    fn denial_sink(&self) -> impl Fn(String) + Send + Sync + 'static {
        let (denials, connection) = (self.denials.clone(), self.connection.clone());
        move |reason| {
            // The denial reaches the operator as the call's error; the log line is for -v and `serve`.
            tracing::info!(target: "claribi::denied", connection = %connection, "outbound request denied: {reason}");
            let mut d = denials.lock().unwrap_or_else(|p| p.into_inner());
            if d.len() < 16 {
                d.push(reason);
            }
        }
    }

    /// The first denial of this call, if any.
    pub fn first_denial(&self) -> Option<String> {
        self.denials.lock().unwrap_or_else(|p| p.into_inner()).first().cloned()
    }

    /// The second-line scanner and the echo masker for the credentials the call knows now: the
    /// connection's, built once per set of values ([`MatcherCache`]), their size charged to the call.
    fn matchers(&self) -> Arc<Matchers> {
        let generation = self.credentials.generation();
        let mut m = self.matchers.lock().unwrap_or_else(|p| p.into_inner());
        if m.0 != generation {
            let known = self.credentials.known();
            let built = self.matcher_cache.get(self.credentials.connection_id(), &known);
            let size = built.memory_usage();
            self.budget.release(m.2);
            let charged = match self.budget.charge("credential matchers", size) {
                Ok(()) => size,
                Err(why) => {
                    *self.matchers_refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                    0
                }
            };
            *m = (generation, built, charged);
        }
        m.1.clone()
    }

    /// `text` with the connection's credential values replaced by `[redacted]` (logs, errors).
    pub fn mask(&self, text: &str) -> String {
        self.matchers().redact(text)
    }

    /// [`Self::mask`], or `None` when `text` holds no credential value (nothing copied).
    pub fn mask_found(&self, text: &str) -> Option<String> {
        self.matchers().redact_found(text)
    }

    /// Whether `text` holds one of the connection's credential values, in any encoding.
    pub fn finds_value(&self, text: &str) -> bool {
        self.matchers().scan.leaks_into(text)
    }

    /// What the host learned of the authorization during this call, if anything changed.
    pub fn learned(&self) -> Option<OAuthState> {
        self.oauth_changed.load(Ordering::SeqCst).then(|| self.oauth.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// What the authorization knows now (learned during this call included).
    pub fn oauth(&self) -> OAuthState {
        self.oauth.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What every token answer of this call said (granted scope), in order.
    pub fn token_facts(&self) -> Vec<TokenFacts> {
        std::mem::take(&mut *self.token_facts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The scopes the connection may hold now (what it may ask for, with what was learned).
    fn allowed_scopes(&self) -> Vec<String> {
        self.scopes.allowed(&self.oauth())
    }

    /// Every rule the connection may reach now: the fixed ones and the learned OAuth URLs.
    pub fn grant(&self) -> Grant {
        self.grant_with(&self.oauth.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn grant_with(&self, oauth: &OAuthState) -> Grant {
        match (&self.endpoint, self.oauth_urls) {
            (Some(e), true) => self.fixed.clone().with(&oauth.grant(e)),
            _ => self.fixed.clone(),
        }
    }

    /// The checks that need no body and no I/O: budget and grant. What the URL is to the
    /// authorization is read in the same instant as the grant, and kept for the response (a document
    /// learned while the request is in flight changes neither).
    pub fn check_request(&self, method: Method, target: &Target) -> Result<Allowed, Error> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.limits.max_requests_per_call {
            return Err(self.deny(format!(
                "the connector made more than {} outgoing requests in one call (max_requests_per_call)",
                self.limits.max_requests_per_call
            )));
        }
        let (grant, purpose) = {
            let oauth = self.oauth.lock().unwrap_or_else(|p| p.into_inner());
            let purpose = match &self.endpoint {
                Some(e) if self.uses_oauth => oauth.purpose(e, method, target),
                _ => None,
            };
            // Metadata is learned only where the OAuth URLs are granted; credential answers are
            // rewritten whatever the policy says.
            let purpose = purpose.filter(|p| self.oauth_urls || !matches!(p, Purpose::ResourceMetadata | Purpose::ServerMetadata));
            (self.grant_with(&oauth), purpose)
        };
        if grant.allows(method, target) {
            return Ok(Allowed { purpose, rules: grant.allowing(method, target) });
        }
        let origin = &target.origin;
        let on_origin: Vec<String> = grant.rules().iter().filter(|r| r.origin.matches(origin)).map(Rule::describe).collect();
        if on_origin.is_empty() {
            let mut origins: Vec<String> = grant.rules().iter().map(|r| r.origin.as_str().trim_end_matches('/').to_string()).collect();
            origins.dedup();
            return Err(self.deny(format!(
                "request to {origin} denied: that origin is not granted to connection `{}` (granted: {}); to allow it, reconnect with --allow-origin {origin}",
                self.connection,
                if origins.is_empty() { "nothing".to_string() } else { origins.join(", ") },
            )));
        }
        Err(self.deny(format!(
            "request {method} {target} denied: connection `{}` may reach {origin} only as {}; to allow more, give the connection a policy with an [[allow]] entry (claribi-host policy {} --set FILE)",
            self.connection,
            on_origin.join("; "),
            self.connection,
        )))
    }

    /// Read the body, scan it (second line), read its tool calls, check a client registration,
    /// attach the credentials. Returns the request to send and whether a grant credential went into it.
    pub async fn prepare(
        &self,
        method: Method,
        target: &Target,
        uri: &str,
        allowed: &Allowed,
        request: http::Request<WasiBody>,
    ) -> Result<(http::Request<WasiBody>, bool), Error> {
        let (mut parts, mut body) = request.into_parts();
        // Read the body, every byte counted against the call's budget as it arrives.
        let mut held = 0usize;
        let mut buf = bytes::BytesMut::new();
        let read = async {
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame.map(|f| f.into_data()) else {
                    return Err(format!("request to {target} denied: its body could not be read"));
                };
                let Ok(data) = data else { continue };
                if buf.len() + data.len() > MAX_REQUEST_BODY {
                    return Err(format!(
                        "request to {target} denied: its body is larger than {MAX_REQUEST_BODY} bytes, too large for the host to check"
                    ));
                }
                self.budget.charge("request bodies", data.len()).map_err(|why| format!("request to {target} denied: {why}"))?;
                held += data.len();
                buf.extend_from_slice(&data);
            }
            Ok(())
        };
        let outcome = read.await;
        let _held = ReleaseOnDrop(&self.budget, held);
        outcome.map_err(|why| self.deny(why))?;
        let bytes = buf.freeze();
        let matchers = self.matchers();
        if let Some(why) = self.matchers_refused.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(self.deny(format!("request to {target} denied: the host cannot look for the connection's credentials within the call's budget: {why}")));
        }
        let scan = &matchers.scan;
        if !scan.is_empty() {
            let in_headers = parts.headers.iter().any(|(k, v)| scan.leaks_into(k.as_str()) || scan.leaks_into_bytes(v.as_bytes()));
            if in_headers || scan.leaks_into(uri) || scan.leaks_into_bytes(&bytes) {
                return Err(self.deny(format!(
                    "request to {target} denied: it carries a credential value of connection `{}` (a connector only ever holds placeholders)",
                    self.connection
                )));
            }
        }
        if let Some(gate) = &self.tool_gate {
            // Reading a JSON body costs up to JSON_PARSE_FACTOR times its size: charged while it lasts.
            let _parsing = self
                .budget
                .hold("reading request bodies for tool calls", bytes.len().saturating_mul(JSON_PARSE_FACTOR))
                .map_err(|why| self.deny(format!("request to {target} denied: {why}")))?;
            let header = |name: http::header::HeaderName| parts.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let all = |name: &str| parts.headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
            let routing = crate::wire::upstream_calls::RoutingHeaders { methods: all("mcp-method"), names: all("mcp-name") };
            let names = crate::wire::upstream_calls::tool_calls_with_routing(
                header(http::header::CONTENT_TYPE).as_deref(),
                header(http::header::CONTENT_ENCODING).as_deref(),
                &routing,
                &bytes,
            )
            .map_err(|why| self.deny(format!("request to {target} denied: {why}; the host reads every request body for tool calls")))?;
            for name in names {
                if let Some(why) = gate(&name) {
                    // The name comes from the connector: shortened and masked before it is shown.
                    let shown: String = crate::errors::one_line(&name).chars().take(100).collect();
                    return Err(self.deny(format!(
                        "request to {target} denied: it calls the upstream tool `{shown}`, which the host withholds: {why}"
                    )));
                }
            }
        }
        if allowed.purpose == Some(Purpose::Registration) || crate::oauth::registration::is_registration(&bytes) {
            let _parsing = self.budget.hold("request bodies", bytes.len().saturating_mul(JSON_PARSE_FACTOR)).map_err(|why| self.deny(why))?;
            let allowed_scopes = self.scopes.allowed(&self.oauth());
            let expected = crate::oauth::registration::Expected { redirect_uri: self.redirect_uri.as_deref(), allowed: &allowed_scopes };
            crate::oauth::registration::check(&bytes, &expected).map_err(|why| self.deny(format!("request to {target} denied: {why}")))?;
        }
        if let Some(h) = crate::wire::request_headers::overriding_header(&parts.headers) {
            return Err(self.deny(format!(
                "request to {target} denied: it carries the header {h}, which some servers read as another method, path or host; the host never passes it on"
            )));
        }
        crate::wire::request_headers::whole_answers_only(&mut parts.headers);
        let attached = attach::attach(method, target, uri, &mut parts.headers, &bytes, &*self.credentials, &self.key_headers)
            .map_err(|why| self.deny(format!("request to {target} denied: {why}")))?;
        if !attached.kinds.is_empty() {
            tracing::debug!(connection = %self.connection, "attached {:?} to {method} {target}", attached.kinds);
        }
        let grant_credential = attached.grant_credential;
        if grant_credential {
            // A token request asks for no scope beyond what the connection may hold.
            let form = parts.headers.get(http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().to_ascii_lowercase().starts_with(b"application/x-www-form-urlencoded"));
            if form {
                let asked: Vec<String> = url::form_urlencoded::parse(&bytes).filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split_whitespace().map(str::to_string).collect::<Vec<_>>()).collect();
                crate::oauth::scopes::judge_grant(&asked, &self.allowed_scopes())
                    .map_err(|why| self.deny(format!("request to {target} denied: it asks the token endpoint for a scope: {why}")))?;
            }
        }
        let bytes = attached.body.map(Bytes::from).unwrap_or(bytes);
        let body = http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed_unsync();
        Ok((http::Request::from_parts(parts, body), grant_credential))
    }

    /// Resolve and check the addresses of a request's origin: a special one only when a rule that
    /// allowed this request opens it ([`Grant::allows_address`]).
    async fn addresses(&self, method: Method, target: &Target, allowed: &Allowed) -> Result<Vec<SocketAddr>, Error> {
        let origin = &target.origin;
        let ips = match origin.ip() {
            Some(ip) => vec![ip],
            None => {
                let lookup = self.resolver.resolve(origin.host.clone(), origin.port);
                match tokio::time::timeout(self.limits.call_timeout, lookup).await {
                    Err(_) => return Err(Error::DnsTimeout),
                    Ok(Err(e)) => {
                        tracing::debug!("DNS lookup of {} failed: {e}", origin.host);
                        return Err(Error::DnsError { rcode: Some("lookup failed".into()), info_code: None });
                    }
                    Ok(Ok(ips)) if ips.is_empty() => return Err(Error::DestinationNotFound),
                    Ok(Ok(ips)) => ips.into_iter().take(16).collect(),
                }
            }
        };
        // Every address must pass: an attacker's DNS answer mixing a public and a private address
        // must not get through on the second try.
        for ip in &ips {
            if !allowed.rules.allows_address(method, target, *ip) {
                let what = if origin.ip().is_some() {
                    format!("request to {origin} denied: {ip} is {}", crate::wire::addresses::describe(*ip))
                } else {
                    format!("request to {origin} denied: `{}` resolves to {ip}, {}", origin.host, crate::wire::addresses::describe(*ip))
                };
                let lit = Origin { host: ip.to_string(), ..origin.clone() };
                return Err(self.deny(format!(
                    "{what}, which is reachable only through a rule the operator named for that address and port (e.g. --allow-origin {lit})"
                )));
            }
        }
        Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, origin.port)).collect())
    }

    fn mint(&self, kind: Kind, value: zeroize::Zeroizing<String>) -> Result<crate::vault::credentials::Placeholder, String> {
        let binding = match &self.endpoint {
            Some(e) => Binding::oauth(kind, e, &self.oauth.lock().unwrap_or_else(|p| p.into_inner()).targets(e)),
            None => Binding::default(),
        };
        self.credentials.mint(Credential::new(kind, value, binding))
    }
}

/// Gives bytes back to the budget when dropped.
struct ReleaseOnDrop<'a>(&'a CallBudget, usize);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

fn mask_headers(headers: &mut http::HeaderMap, masker: Option<&Masker>) {
    let Some(m) = masker else { return };
    for v in headers.values_mut() {
        if m.finds(v.as_bytes()) {
            if let Ok(new) = http::HeaderValue::from_bytes(&m.mask(v.as_bytes())) {
                *v = new;
            }
        }
    }
}

impl Meter for OutboundContext {
    fn received(&self, n: usize) -> Result<(), u64> {
        let total = self.bytes_received.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        let max = self.limits.max_response_bytes;
        if total > max {
            let _ = self.deny(format!("the responses of one call exceeded {max} bytes (max_response_bytes); the rest was not read"));
            return Err(total);
        }
        Ok(())
    }
}

/// The `WasiHttpHooks` implementation installed in every connector store.
pub struct Outbound {
    ctx: Arc<OutboundContext>,
}

impl Outbound {
    /// Hooks sharing `ctx` with the call runner.
    pub fn new(ctx: Arc<OutboundContext>) -> Outbound {
        Outbound { ctx }
    }
}

type SendFuture = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>>
        + Send,
>;

impl WasiHttpHooks for Outbound {
    /// One chunk of 64 KiB in flight per request body (wasmtime-wasi-http's default is 1 MiB), so
    /// what a body holds on the host is small and counted ([`crate::sandbox::http_budget`]).
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        64 * 1024
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let ctx = self.ctx.clone();
        Box::new(async move {
            let uri = request.uri().to_string();
            let Some(method) = Method::parse(request.method().as_str()) else {
                return Err(ctx.deny(format!("request with method {} denied: only GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS are ever granted", crate::errors::one_line(request.method().as_str()))));
            };
            let target = Target::parse(&uri).map_err(|e| ctx.deny(format!("request denied: {e}")))?;
            let allowed = ctx.check_request(method, &target)?;
            let (request, grant_credential) = ctx.prepare(method, &target, &uri, &allowed, request).await?;
            // How the answer is treated is decided now, before anything is sent.
            let treatment = Treatment::decide(allowed.purpose, grant_credential);
            if let Some(spent) = ctx.take_rate_budget(&target).await {
                let done: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
                return Ok((spent, done));
            }
            let addrs = ctx.addresses(method, &target, &allowed).await?;
            let meter: Arc<dyn Meter> = ctx.clone();
            let (response, io_done, parts) = transport::send(meter, ctx.limits.call_timeout, target.origin.clone(), addrs, request, options).await?;
            let (head, incoming) = response.into_parts();
            ctx.learn_rate_budget(&target, head.status.as_u16(), &head.headers);
            let response = http::Response::from_parts(head, parts.wrap(incoming));
            let response = ctx.respond(method, &target, treatment, response).await?;
            Ok((response, io_done))
        })
    }
}

pub mod rate;
mod respond;

#[cfg(test)]
mod tests;
