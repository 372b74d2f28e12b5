//! The transport under the send hook: name resolution, connecting to exactly the addresses the hook
//! checked, TLS (rustls with the Mozilla roots, the host name as the server name), HTTP/1.1, and
//! response bodies counted against the call's byte cap while they stream (never buffered first).
//! Nothing here decides what may be sent: [`crate::wire::outbound`] does, before calling [`send`].

use crate::policy::Origin;
use bytes::Bytes;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

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

/// Counts the response bytes of one call against its cap.
pub trait Meter: Send + Sync {
    /// `n` more bytes arrived; `Err` with the total when the call's cap is passed (the meter records
    /// why).
    fn received(&self, n: usize) -> Result<(), u64>;
}

/// Send `request` to `origin` over one of `addrs` (already checked), with timeouts no longer than
/// `call_timeout`; the response body counts against `meter` while it streams.
pub async fn send(
    meter: Arc<dyn Meter>,
    call_timeout: Duration,
    origin: Origin,
    addrs: Vec<SocketAddr>,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<hyper::body::Incoming>, Box<dyn Future<Output = Result<(), Error>> + Send>, CappedBodyParts), Error> {
    let cap = |d: Option<Duration>| d.unwrap_or(call_timeout).min(call_timeout);
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
    let io_done: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async move {
        match conn_task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::from(e)),
            Err(_) => Ok(()),
        }
    });
    Ok((response, io_done, CappedBodyParts { meter, between_bytes: between_bytes_timeout }))
}

/// What a [`CappedBody`] needs besides the body.
pub struct CappedBodyParts {
    meter: Arc<dyn Meter>,
    between_bytes: Duration,
}

impl CappedBodyParts {
    /// Wrap a response body: bytes counted against the call's cap, the between-bytes timeout kept.
    pub fn wrap(self, inner: hyper::body::Incoming) -> CappedBody {
        CappedBody { inner, meter: self.meter, timer: Box::pin(tokio::time::sleep(self.between_bytes)), between_bytes: self.between_bytes, failed: false }
    }
}

/// A response body that counts bytes against the call's cap while streaming and enforces the
/// between-bytes timeout.
pub struct CappedBody {
    inner: hyper::body::Incoming,
    meter: Arc<dyn Meter>,
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
                    if let Err(total) = self.meter.received(data.len()) {
                        self.failed = true;
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

