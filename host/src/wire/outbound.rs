//! The send-request hook: the one place every outgoing HTTP request of every connector passes through.
//!
//! A connector reaches the network only through `wasi:http/outgoing-handler`; wasmtime-wasi-http hands
//! each request to [`WasiHttpHooks::send_request`], implemented here by [`Outbound`]. The checks run
//! in this order, and the first failure denies the request with `HTTP-request-denied` (the guest sees
//! a policy denial; the host keeps the detailed reason and shows it to the operator):
//!
//! 1. **Request budget** — at most `max_requests_per_call` requests per call.
//! 2. **Origin grant** — scheme + host + port must match the connection's grant ([`crate::policy`]).
//! 3. **Credential origins** — a request that carries one of the connection's secrets (in a header, the
//!    URL or the body; as is or percent/form-encoded) may go only to the origins those credentials
//!    belong to (its MCP server and its authorization server), even if another origin is granted.
//! 4. **Upstream tool calls** — every JSON body is read for MCP `tools/call` messages
//!    ([`crate::upstream_calls`]); one naming a tool the blocklist withholds is refused, whatever tool
//!    the host asked the connector to run.
//! 5. **DNS and addresses** — the hook resolves the name itself and refuses loopback, private,
//!    link-local, metadata and other special addresses ([`crate::addresses`]) unless the grant names
//!    that address literally; it then connects to exactly the addresses it checked (no second lookup
//!    an attacker's DNS could answer differently).
//! 6. **Response bytes** — response bodies are counted while they stream; past `max_response_bytes`
//!    the body fails (it is never buffered first).
//!
//! Redirects are not followed by wasi:http: a connector that wants to follow one sends a new request,
//! which comes through this hook again, so every hop is checked against the same policy.
//!
//! TLS uses rustls with the Mozilla root store (webpki-roots), with the host name (not the resolved
//! address) as the server name.

use crate::addresses;
use crate::policy::{Grant, Limits, Origin};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};
use zeroize::Zeroizing;

/// The largest request body checked for credentials on its way to a foreign origin (larger: denied).
pub const MAX_SCANNED_BODY: usize = 4 * 1024 * 1024;

/// Resolves host names. The default uses the system resolver; tests inject fixed answers.
pub trait Resolve: Send + Sync {
    /// The addresses of `host` (a name, never a literal).
    fn resolve(&self, host: String, port: u16) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system resolver (getaddrinfo through tokio).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: String, port: u16) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), port)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A resolver with fixed answers for some names, falling back to the system (tests, demos).
pub struct FixedResolver(pub std::collections::HashMap<String, Vec<IpAddr>>);

impl Resolve for FixedResolver {
    fn resolve(&self, host: String, port: u16) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        match self.0.get(&host.to_ascii_lowercase()) {
            Some(ips) => {
                let ips = ips.clone();
                Box::pin(async move { Ok(ips) })
            }
            None => SystemResolver.resolve(host, port),
        }
    }
}

/// The secrets of a connection and where they may go.
///
/// A request is scanned for every secret in the forms a secret takes on the wire: as is,
/// percent- and form-encoded (URLs, form bodies), base64 and base64url at each of the three byte
/// alignments (Basic auth, JSON-embedded blobs), and hex. One Aho–Corasick automaton over all those
/// needles scans a body in linear time whatever the secrets look like. A connector that transforms a
/// secret otherwise (encrypts, XORs, splits it) defeats any scan: the grant is the outer limit (see
/// SECURITY.md).
#[derive(Default)]
pub struct CredentialGuard {
    /// The connection's secret values (only those long enough to recognise without false alarms).
    secrets: Vec<Zeroizing<String>>,
    /// Origins the secrets belong to.
    origins: Vec<Origin>,
    /// The automaton over every needle of every secret (`None` when there is no secret).
    matcher: Option<aho_corasick::AhoCorasick>,
    /// The automaton could not be built: every scan then reports a leak (fail closed).
    broken: bool,
    /// What [`Self::mask`] replaces: each whole secret, as is and in its URL forms.
    mask_needles: Vec<Zeroizing<String>>,
}

fn percent_encode(raw: &[u8], lower: bool) -> String {
    raw.iter()
        .map(|b| match (b.is_ascii_alphanumeric() || b"-._~".contains(b), lower) {
            (true, _) => (*b as char).to_string(),
            (false, false) => format!("%{b:02X}"),
            (false, true) => format!("%{b:02x}"),
        })
        .collect()
}

/// The forms a secret takes in a URL or a form body: form-encoded, and percent-encoded with upper-
/// and lowercase hex digits (the secret's own characters keep their case).
fn url_forms(raw: &[u8]) -> [String; 3] {
    [url::form_urlencoded::byte_serialize(raw).collect(), percent_encode(raw, false), percent_encode(raw, true)]
}

/// The base64 characters that depend only on `raw` when it sits at each of the three offsets modulo 3
/// of an encoded stream (the characters shared with neighbouring bytes are left out).
fn base64_needles(raw: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for pad in 0..3usize {
        let mut buf = vec![0u8; pad];
        buf.extend_from_slice(raw);
        let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&buf);
        // Characters mixing pad bytes: 0 for no pad, 2 for one byte, 3 for two (6-bit groups).
        let skip = [0, 2, 3][pad];
        // The last character mixes with whatever follows unless the bits end on a 6-bit boundary.
        let take = if (buf.len() * 8) % 6 == 0 { enc.len() } else { enc.len().saturating_sub(1) };
        if take > skip {
            let core = &enc[skip..take];
            out.push(core.to_string());
            let url: String = core.chars().map(|c| match c { '+' => '-', '/' => '_', c => c }).collect();
            if url != core {
                out.push(url);
            }
        }
    }
    out
}

impl CredentialGuard {
    /// Secrets shorter than this are not scanned for (they would match by accident).
    pub const MIN_LEN: usize = 8;
    /// Only this many leading bytes of a secret are scanned for: a request that carries the whole
    /// secret carries its prefix, and the automaton stays small whatever size a connector stores.
    pub const SCANNED_PREFIX: usize = 512;

    /// Most secret values one call's guard holds: the connection's stored secrets plus what the
    /// connector stores during the call. A connector that stores more in one call is refused
    /// (`update-secrets` answers an error), so a call cannot make the host's scanning grow without end.
    pub const MAX_GUARDED: usize = 128;

    /// Add secret values (what the connector just stored), rebuilding the scanner once. Refused, with
    /// nothing added, past [`Self::MAX_GUARDED`].
    pub fn add_secrets(&mut self, secrets: impl IntoIterator<Item = Zeroizing<String>>) -> Result<(), String> {
        let mut new: Vec<Zeroizing<String>> = Vec::new();
        for secret in secrets {
            if secret.len() >= Self::MIN_LEN && !self.secrets.iter().chain(new.iter()).any(|s| **s == *secret) {
                new.push(secret);
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        if self.secrets.len() + new.len() > Self::MAX_GUARDED {
            return Err(format!("a call may hold at most {} secret values; store fewer", Self::MAX_GUARDED));
        }
        self.secrets.extend(new);
        self.rebuild();
        Ok(())
    }

    /// Add one secret value (see [`Self::add_secrets`]).
    pub fn add_secret(&mut self, secret: Zeroizing<String>) -> Result<(), String> {
        self.add_secrets([secret])
    }

    /// A guard for these secret values and origins.
    pub fn new(secrets: Vec<Zeroizing<String>>, origins: Vec<Origin>) -> CredentialGuard {
        let mut g = CredentialGuard {
            secrets: secrets.into_iter().filter(|s| s.len() >= Self::MIN_LEN).collect(),
            origins,
            matcher: None,
            broken: false,
            mask_needles: Vec::new(),
        };
        g.rebuild();
        g
    }

    fn rebuild(&mut self) {
        let mut needles: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for s in &self.secrets {
            let raw = &s.as_bytes()[..s.len().min(Self::SCANNED_PREFIX)];
            needles.push(Zeroizing::new(raw.to_vec()));
            for text in url_forms(raw).into_iter().chain([hex::encode(raw), hex::encode_upper(raw)]).chain(base64_needles(raw)) {
                needles.push(Zeroizing::new(text.into_bytes()));
            }
        }
        self.mask_needles = self
            .secrets
            .iter()
            .flat_map(|s| std::iter::once(s.as_str().to_string()).chain(url_forms(s.as_bytes())))
            .map(Zeroizing::new)
            .collect();
        needles.retain(|n| n.len() >= Self::MIN_LEN);
        self.broken = false;
        self.matcher = if needles.is_empty() {
            None
        } else {
            // A contiguous NFA: linear scans, and memory proportional to the needles (a DFA over many
            // long random tokens would take megabytes for every call).
            let built = aho_corasick::AhoCorasick::builder()
                .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                .build(needles.iter().map(|n| n.as_slice()));
            match built {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!("cannot build the credential scanner ({e}); every request carrying a body is refused");
                    self.broken = true;
                    None
                }
            }
        };
    }

    /// Whether `text` contains one of the secrets (in any of the scanned forms).
    pub fn leaks_into(&self, text: &str) -> bool {
        self.leaks_into_bytes(text.as_bytes())
    }

    /// Whether `bytes` contain one of the secrets, as is, percent/form-encoded, base64(url) or hex.
    pub fn leaks_into_bytes(&self, bytes: &[u8]) -> bool {
        self.broken || self.matcher.as_ref().is_some_and(|m| m.is_match(bytes))
    }

    /// Whether any secret is being guarded.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Replace every secret in `text` (as is, or percent/form-encoded) with `[redacted]`.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for needle in &self.mask_needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), "[redacted]");
            }
        }
        out
    }

    fn allows(&self, origin: &Origin) -> bool {
        self.origins.iter().any(|o| o == origin)
    }
}

/// Per-call outbound state shared between the hook and the call runner.
pub struct OutboundContext {
    /// Connection name, for messages.
    pub connection: String,
    /// The operator's grant.
    pub grant: Grant,
    /// The call's limits.
    pub limits: Limits,
    /// Secrets and the origins they may go to (grows when the connector stores new secrets).
    pub credentials: std::sync::RwLock<CredentialGuard>,
    /// Name resolution.
    pub resolver: Arc<dyn Resolve>,
    /// Requests made so far in this call.
    pub requests: AtomicU32,
    /// Response bytes received so far in this call.
    pub bytes_received: AtomicU64,
    /// Detailed reasons of every denial in this call (the guest only sees "denied").
    pub denials: Mutex<Vec<String>>,
    /// Judges the tool names of every upstream `tools/call` a request body carries: `Some(reason)`
    /// refuses it ([`crate::upstream_calls`]). `None`: bodies are not read for tool calls.
    pub tool_gate: Option<ToolGate>,
}

/// Why an upstream tool may not be called (`None`: it may).
pub type ToolGate = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl OutboundContext {
    /// A context for one call.
    pub fn new(connection: &str, grant: Grant, limits: Limits, credentials: CredentialGuard, resolver: Arc<dyn Resolve>) -> Self {
        OutboundContext {
            connection: connection.to_string(),
            grant,
            limits,
            credentials: std::sync::RwLock::new(credentials),
            resolver,
            requests: AtomicU32::new(0),
            bytes_received: AtomicU64::new(0),
            denials: Mutex::new(Vec::new()),
            tool_gate: None,
        }
    }

    /// Read request bodies for upstream `tools/call`s and refuse those `gate` refuses.
    pub fn with_tool_gate(mut self, gate: ToolGate) -> Self {
        self.tool_gate = Some(gate);
        self
    }

    fn deny(&self, reason: String) -> Error {
        // The denial reaches the operator as the call's error; the log line is for -v and `serve`.
        tracing::info!(connection = %self.connection, "outbound request denied: {reason}");
        self.denials.lock().unwrap_or_else(|p| p.into_inner()).push(reason);
        Error::HttpRequestDenied
    }

    /// Mask the connection's secrets in `text`.
    pub fn mask(&self, text: &str) -> String {
        self.credentials.read().unwrap_or_else(|p| p.into_inner()).mask(text)
    }

    /// The first denial of this call, if any.
    pub fn first_denial(&self) -> Option<String> {
        self.denials.lock().unwrap_or_else(|p| p.into_inner()).first().cloned()
    }

    /// The checks that need no I/O: budget, grant, credential origins. Returns the origin.
    pub fn check_request<B>(&self, req: &http::Request<B>) -> Result<Origin, Error> {
        let uri = req.uri().to_string();
        let origin = Origin::parse(&uri).map_err(|_| Error::HttpRequestUriInvalid)?;
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.limits.max_requests_per_call {
            return Err(self.deny(format!(
                "the connector made more than {} outgoing requests in one call (max_requests_per_call)",
                self.limits.max_requests_per_call
            )));
        }
        if !self.grant.allows(&origin) {
            let granted = self.grant.to_strings();
            return Err(self.deny(format!(
                "request to {origin} denied: that origin is not granted to connection `{}` (granted: {}); to allow it, reconnect with --allow-origin {origin}",
                self.connection,
                if granted.is_empty() { "nothing".to_string() } else { granted.join(", ") },
            )));
        }
        let creds = self.credentials.read().unwrap_or_else(|p| p.into_inner());
        if !creds.allows(&origin) {
            let in_headers = req.headers().values().any(|v| creds.leaks_into(&String::from_utf8_lossy(v.as_bytes())));
            if in_headers || creds.leaks_into(&uri) {
                let allowed = creds.origins.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ");
                drop(creds);
                return Err(self.deny(format!(
                    "request to {origin} denied: it carries credentials of connection `{}`, which may only be sent to {}",
                    self.connection,
                    if allowed.is_empty() { "no origin".to_string() } else { allowed }
                )));
            }
        }
        Ok(origin)
    }

    /// Read a request's body before it leaves: a request to an origin the connection's credentials do
    /// not belong to must not carry them, and no request may carry an upstream `tools/call` the tool
    /// gate refuses. The body is buffered (at most [`MAX_SCANNED_BODY`] bytes; larger is denied),
    /// read, and the request rebuilt. Without a gate, requests to credential origins and connections
    /// without secrets pass untouched.
    pub async fn inspect_body(&self, request: http::Request<WasiBody>, origin: &Origin) -> Result<http::Request<WasiBody>, Error> {
        let scan = {
            let creds = self.credentials.read().unwrap_or_else(|p| p.into_inner());
            !creds.is_empty() && !creds.allows(origin)
        };
        if !scan && self.tool_gate.is_none() {
            return Ok(request);
        }
        let (parts, body) = request.into_parts();
        let bytes = match http_body_util::Limited::new(body, MAX_SCANNED_BODY).collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => {
                return Err(self.deny(format!(
                    "request to {origin} denied: its body is larger than {MAX_SCANNED_BODY} bytes, too large for the host to check"
                )))
            }
        };
        if scan && self.credentials.read().unwrap_or_else(|p| p.into_inner()).leaks_into_bytes(&bytes) {
            let allowed = {
                let creds = self.credentials.read().unwrap_or_else(|p| p.into_inner());
                creds.origins.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ")
            };
            return Err(self.deny(format!(
                "request to {origin} denied: its body carries credentials of connection `{}`, which may only be sent to {}",
                self.connection,
                if allowed.is_empty() { "no origin".to_string() } else { allowed }
            )));
        }
        if let Some(gate) = &self.tool_gate {
            let header = |name: http::header::HeaderName| parts.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let names = crate::upstream_calls::tool_calls_in_request(
                header(http::header::CONTENT_TYPE).as_deref(),
                header(http::header::CONTENT_ENCODING).as_deref(),
                &bytes,
            )
            .map_err(|why| self.deny(format!("request to {origin} denied: {why}; the host reads every request body for tool calls")))?;
            for name in names {
                if let Some(why) = gate(&name) {
                    // The name comes from the connector: shortened and masked before it is shown.
                    let shown: String = self.mask(&crate::errors::one_line(&name)).chars().take(100).collect();
                    return Err(self.deny(format!(
                        "request to {origin} denied: it calls the upstream tool `{shown}`, which the host withholds: {why}"
                    )));
                }
            }
        }
        let body = http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed_unsync();
        Ok(http::Request::from_parts(parts, body))
    }

    /// Resolve and check the addresses of an origin.
    async fn addresses(&self, origin: &Origin) -> Result<Vec<SocketAddr>, Error> {
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
                    Ok(Ok(ips)) => ips,
                }
            }
        };
        // Every address must pass: an attacker's DNS answer mixing a public and a private address
        // must not get through on the second try.
        for ip in &ips {
            if !self.grant.allows_address(origin, *ip) {
                let what = if origin.ip().is_some() {
                    format!("request to {origin} denied: {ip} is {}", addresses::describe(*ip))
                } else {
                    format!("request to {origin} denied: `{}` resolves to {ip}, {}", origin.host, addresses::describe(*ip))
                };
                let lit = Origin { host: ip.to_string(), ..origin.clone() };
                return Err(self.deny(format!(
                    "{what}, which is reachable only when granted literally (e.g. --allow-origin {lit})"
                )));
            }
        }
        Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, origin.port)).collect())
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
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let ctx = self.ctx.clone();
        Box::new(async move {
            let origin = ctx.check_request(&request)?;
            let request = ctx.inspect_body(request, &origin).await?;
            let addrs = ctx.addresses(&origin).await?;
            send(ctx, origin, addrs, request, options).await
        })
    }
}

/// The TLS client configuration used for every outgoing connection (Mozilla roots via webpki-roots).
pub fn tls_client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|_| {
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                });
            Arc::new(config)
        })
        .clone()
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

async fn send(
    ctx: Arc<OutboundContext>,
    origin: Origin,
    addrs: Vec<SocketAddr>,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error> {
    let cap = |d: Option<Duration>| d.unwrap_or(ctx.limits.call_timeout).min(ctx.limits.call_timeout);
    let connect_timeout = cap(options.and_then(|o| o.connect_timeout));
    let first_byte_timeout = cap(options.and_then(|o| o.first_byte_timeout));
    let between_bytes_timeout = cap(options.and_then(|o| o.between_bytes_timeout));

    // Connect to the checked addresses only, in order.
    let mut last_err = Error::ConnectionRefused;
    let mut stream = None;
    for addr in &addrs {
        match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => {
                last_err = if e.kind() == std::io::ErrorKind::ConnectionRefused { Error::ConnectionRefused } else { Error::Connect(e) }
            }
            Err(_) => last_err = Error::ConnectionTimeout,
        }
    }
    let stream = stream.ok_or(last_err)?;
    let _ = stream.set_nodelay(true);
    let io: Box<dyn Io> = if origin.scheme == "https" {
        let name = match origin.ip() {
            Some(ip) => rustls::pki_types::ServerName::from(ip),
            None => rustls::pki_types::ServerName::try_from(origin.host.clone())
                .map_err(|_| Error::HttpRequestUriInvalid)?,
        };
        let tls = tokio_rustls::TlsConnector::from(tls_client_config());
        match tokio::time::timeout(connect_timeout, tls.connect(name, stream)).await {
            Ok(Ok(s)) => Box::new(s),
            Ok(Err(e)) => {
                if e.to_string().contains("certificate") {
                    return Err(Error::TlsCertificateError);
                }
                return Err(Error::Tls(e));
            }
            Err(_) => return Err(Error::ConnectionTimeout),
        }
    } else {
        Box::new(stream)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(hyper_util::rt::TokioIo::new(io)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries only the path; Host was set by wasmtime-wasi-http.
    let path = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    *request.uri_mut() = http::Uri::builder().path_and_query(path).build().map_err(|_| Error::HttpRequestUriInvalid)?;

    let conn_task = tokio::spawn(conn);
    let response = match tokio::time::timeout(first_byte_timeout, sender.send_request(request)).await {
        Err(_) => {
            conn_task.abort();
            return Err(Error::ConnectionReadTimeout);
        }
        Ok(Err(e)) => {
            conn_task.abort();
            return Err(Error::from(e));
        }
        Ok(Ok(r)) => r,
    };
    let (parts, incoming) = response.into_parts();
    let body = CappedBody {
        inner: incoming,
        ctx: ctx.clone(),
        between_bytes: between_bytes_timeout,
        timer: Box::pin(tokio::time::sleep(between_bytes_timeout)),
        failed: false,
    };
    let io_done: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async move {
        match conn_task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::from(e)),
            Err(_) => Ok(()),
        }
    });
    Ok((http::Response::from_parts(parts, body.boxed_unsync()), io_done))
}

/// A response body that counts bytes against the call's cap while streaming and enforces the
/// between-bytes timeout.
struct CappedBody {
    inner: hyper::body::Incoming,
    ctx: Arc<OutboundContext>,
    between_bytes: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    failed: bool,
}

impl http_body::Body for CappedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let total = self.ctx.bytes_received.fetch_add(data.len() as u64, Ordering::SeqCst) + data.len() as u64;
                    let max = self.ctx.limits.max_response_bytes;
                    if total > max {
                        self.failed = true;
                        let _ = self.ctx.deny(format!(
                            "the responses of one call exceeded {max} bytes (max_response_bytes); the rest was not read"
                        ));
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(total)))));
                    }
                }
                let d = self.between_bytes;
                self.timer.as_mut().reset(tokio::time::Instant::now() + d);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.failed = true;
                    Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(grant: &[&str], creds: Vec<&str>, cred_origins: &[&str]) -> OutboundContext {
        OutboundContext::new(
            "test",
            Grant::parse_list(grant).unwrap(),
            Limits { max_requests_per_call: 3, ..Limits::default() },
            CredentialGuard::new(
                creds.into_iter().map(|s| Zeroizing::new(s.to_string())).collect(),
                cred_origins.iter().map(|o| Origin::parse(o).unwrap()).collect(),
            ),
            Arc::new(FixedResolver(
                [("evil.test".to_string(), vec!["127.0.0.1".parse().unwrap()]),
                 ("mixed.test".to_string(), vec!["93.184.216.34".parse().unwrap(), "10.0.0.1".parse().unwrap()]),
                 ("public.test".to_string(), vec!["93.184.216.34".parse().unwrap()])]
                .into_iter()
                .collect(),
            )),
        )
    }

    fn req(url: &str, header: Option<(&str, &str)>) -> http::Request<()> {
        let mut b = http::Request::builder().uri(url);
        if let Some((k, v)) = header {
            b = b.header(k, v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn granted_origin_is_allowed() {
        let c = ctx(&["https://mcp.close.com"], vec![], &[]);
        assert!(c.check_request(&req("https://mcp.close.com/mcp", None)).is_ok());
    }

    #[test]
    fn disallowed_host_fails_with_the_grant_that_would_allow_it() {
        let c = ctx(&["https://mcp.close.com"], vec![], &[]);
        assert!(matches!(c.check_request(&req("https://evil.example/x", None)), Err(Error::HttpRequestDenied)));
        let why = c.first_denial().unwrap();
        assert!(why.contains("https://evil.example"), "{why}");
        assert!(why.contains("--allow-origin https://evil.example"), "{why}");
        assert!(why.contains("granted: https://mcp.close.com"), "{why}");
    }

    #[test]
    fn an_empty_grant_denies_everything() {
        let c = ctx(&[], vec![], &[]);
        assert!(c.check_request(&req("https://mcp.close.com/mcp", None)).is_err());
        assert!(c.first_denial().unwrap().contains("granted: nothing"));
    }

    #[test]
    fn the_request_budget_is_enforced() {
        let c = ctx(&["https://mcp.close.com"], vec![], &[]);
        for _ in 0..3 {
            assert!(c.check_request(&req("https://mcp.close.com/mcp", None)).is_ok());
        }
        assert!(c.check_request(&req("https://mcp.close.com/mcp", None)).is_err());
        assert!(c.first_denial().unwrap().contains("max_requests_per_call"));
    }

    #[test]
    fn credentials_travel_only_to_their_origins() {
        let c = ctx(
            &["https://mcp.close.com", "https://other.example"],
            vec!["sk_live_0123456789"],
            &["https://mcp.close.com"],
        );
        assert!(c.check_request(&req("https://mcp.close.com/mcp", Some(("close-api-key", "sk_live_0123456789")))).is_ok());
        assert!(c.check_request(&req("https://other.example/x", None)).is_ok());
        assert!(c.check_request(&req("https://other.example/x", Some(("authorization", "Bearer sk_live_0123456789")))).is_err());
        assert!(c.check_request(&req("https://other.example/x?k=sk_live_0123456789", None)).is_err());
        let why = c.first_denial().unwrap();
        assert!(why.contains("carries credentials"), "{why}");
        assert!(!why.contains("sk_live"), "the denial must not echo the secret: {why}");
    }

    #[tokio::test]
    async fn credentials_in_a_body_to_a_foreign_origin_are_denied() {
        let c = ctx(
            &["https://mcp.close.com", "https://other.example"],
            vec!["sk_live_0123456789", "tok/en+with=chars"],
            &["https://mcp.close.com"],
        );
        let body = |s: &str| http_body_util::Full::new(bytes::Bytes::from(s.to_string())).map_err(|never| match never {}).boxed_unsync();
        let other = Origin::parse("https://other.example/").unwrap();
        for leaky in [r#"{"k":"sk_live_0123456789"}"#, "k=sk_live_0123456789&x=1", "x=tok%2Fen%2Bwith%3Dchars", "tok%2Fen%2Bwith%3Dchars"] {
            let req = http::Request::post("https://other.example/x").body(body(leaky)).unwrap();
            assert!(c.inspect_body(req, &other).await.is_err(), "{leaky}");
        }
        let req = http::Request::post("https://other.example/x").body(body("harmless")).unwrap();
        let back = c.inspect_body(req, &other).await.unwrap();
        let bytes = back.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"harmless", "the body is passed on unchanged");
        let own = Origin::parse("https://mcp.close.com/").unwrap();
        let req = http::Request::post("https://mcp.close.com/mcp").body(body("sk_live_0123456789")).unwrap();
        assert!(c.inspect_body(req, &own).await.is_ok(), "the credential's own origin may receive it");
        assert!(c.first_denial().unwrap().contains("its body carries credentials"));
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_denied() {
        let c = ctx(&["http://*:8080"], vec![], &[]);
        let o = Origin::parse("http://evil.test:8080/").unwrap();
        assert!(matches!(c.addresses(&o).await, Err(Error::HttpRequestDenied)));
        let why = c.first_denial().unwrap();
        assert!(why.contains("resolves to 127.0.0.1"), "{why}");
    }

    #[tokio::test]
    async fn one_private_answer_among_public_ones_is_denied() {
        let c = ctx(&["https://*"], vec![], &[]);
        let o = Origin::parse("https://mixed.test/").unwrap();
        assert!(c.addresses(&o).await.is_err());
        let ok = Origin::parse("https://public.test/").unwrap();
        assert_eq!(c.addresses(&ok).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_literally_granted_loopback_address_is_reachable() {
        let c = ctx(&["http://127.0.0.1:8811"], vec![], &[]);
        let o = Origin::parse("http://127.0.0.1:8811/").unwrap();
        assert_eq!(c.addresses(&o).await.unwrap(), vec!["127.0.0.1:8811".parse().unwrap()]);
    }

    #[test]
    fn secrets_are_found_in_every_encoding_at_every_alignment() {
        use base64::Engine as _;
        let secret = "sk_Live_0123456789+/?";
        let g = CredentialGuard::new(vec![Zeroizing::new(secret.into())], vec![]);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let b64url = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let mut carriers = vec![
            format!("x={}", url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()),
            format!("x={}", percent_encode(secret.as_bytes(), false)),
            format!("x={}", percent_encode(secret.as_bytes(), true)),
            hex::encode(secret),
            hex::encode_upper(secret),
        ];
        // Basic auth and embedded blobs put the secret at any offset of the encoded stream.
        for prefix in ["", "u", "us", "user:", "ab:", "a:"] {
            carriers.push(format!("Basic {}", b64(&format!("{prefix}{secret}"))));
            carriers.push(b64url(&format!("{prefix}{secret}tail")));
        }
        for c in &carriers {
            assert!(g.leaks_into(c), "not found in {c}");
        }
        for clean in ["harmless", "Basic dXNlcjpwYXNz", "sk_live_012345678", &hex::encode("sk_live_01234")] {
            assert!(!g.leaks_into(clean), "false alarm on {clean}");
        }
    }

    #[test]
    fn a_call_cannot_grow_the_guard_without_end() {
        let mut g = CredentialGuard::new(vec![], vec![]);
        let batch = |from: usize, n: usize| (from..from + n).map(|i| Zeroizing::new(format!("token-value-{i:06}")));
        g.add_secrets(batch(0, CredentialGuard::MAX_GUARDED)).unwrap();
        assert!(g.add_secrets(batch(0, 10)).is_ok(), "values already guarded add nothing");
        let err = g.add_secrets(batch(CredentialGuard::MAX_GUARDED, 1)).unwrap_err();
        assert!(err.contains("at most 128"), "{err}");
        assert!(g.leaks_into("x token-value-000127 y"), "what was added is still scanned for");
        assert!(!g.leaks_into("x token-value-000128 y"), "the refused one was not added");
    }

    #[test]
    fn a_long_secret_is_found_by_its_prefix() {
        let secret = format!("{}b", "a1".repeat(30_000));
        let g = CredentialGuard::new(vec![Zeroizing::new(secret.clone())], vec![]);
        assert!(g.leaks_into(&format!("token={secret}")));
        assert!(!g.leaks_into_bytes(&vec![b'a'; 100_000]));
    }

    #[test]
    fn masking_hides_every_secret() {
        let g = CredentialGuard::new(vec![Zeroizing::new("supersecret123".into())], vec![]);
        assert_eq!(g.mask("token=supersecret123!"), "token=[redacted]!");
        let short = CredentialGuard::new(vec![Zeroizing::new("abc".into())], vec![]);
        assert!(!short.leaks_into("abc"), "too short to scan for");
    }
}
