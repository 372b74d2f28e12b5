//! The host's half of an OAuth authorization: receiving the browser's redirect.
//!
//! A component cannot listen on a socket, so the host does (RFC 8252, loopback redirect): it binds
//! `127.0.0.1:<random port>`, hands `http://127.0.0.1:<port>/callback` to the connector's
//! `begin-authorization`, shows the returned URL to the user (and opens a browser when one exists),
//! and waits for exactly one request to `/callback`. That request's full URL goes to
//! `complete-authorization`. The host checks the `state` itself too, before the connector sees it.
//!
//! In *headless* mode (tests, the conformance suite, servers that approve automatically) the host
//! fetches the authorization URL itself, without a browser, and follows redirects (each one checked
//! against the connection's grant) until one points at the redirect URI.

use crate::errors::HostError;
use crate::policy::{Grant, Origin};
use http_body_util::BodyExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the user's consent is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Print the URL and wait for the redirect; open a browser when `open` is true.
    Browser {
        /// Try to open the system browser.
        open: bool,
    },
    /// Fetch the URL ourselves and follow redirects (no user involved).
    Headless,
}

/// The loopback listener for one authorization.
pub struct Redirect {
    listener: TcpListener,
    uri: String,
}

impl Redirect {
    /// Bind `127.0.0.1:0`.
    pub async fn bind() -> Result<Redirect, HostError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HostError::Storage(format!("cannot listen on 127.0.0.1 for the OAuth redirect: {e}")))?;
        let port = listener.local_addr().map_err(|e| HostError::Storage(e.to_string()))?.port();
        Ok(Redirect { listener, uri: format!("http://127.0.0.1:{port}/callback") })
    }

    /// `http://127.0.0.1:<port>/callback`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Wait for the browser to come back to `/callback`; return the full callback URL. Other paths get
    /// a 404 and are ignored; the wait ends after `timeout`.
    pub async fn wait(&self, timeout: Duration) -> Result<String, HostError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let accepted = tokio::time::timeout_at(deadline, self.listener.accept()).await.map_err(|_| {
                HostError::Usage(format!(
                    "no authorization arrived within {} s; nothing was stored. Run connect again (with --no-browser you can open the URL yourself)",
                    timeout.as_secs()
                ))
            })?;
            let Ok((mut stream, _)) = accepted else { continue };
            let Some(target) = read_request_target(&mut stream).await else { continue };
            if target.starts_with("/callback?") || target == "/callback" {
                let page = "<!doctype html><meta charset=utf-8><title>clariBI</title>\
                    <p>clariBI received the authorization. You can close this window and return to the terminal.</p>";
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\ncache-control: no-store\r\n\r\n{page}",
                            page.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                let base = self.uri.trim_end_matches("/callback");
                return Ok(format!("{base}{target}"));
            }
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        }
    }
}

/// Read an HTTP/1.x request head (at most 16 KiB, 5 s) and return the request target of a GET.
async fn read_request_target(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
                return Some(());
            }
            if buf.len() > 16 * 1024 {
                return None;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.ok()??;
    let head = String::from_utf8_lossy(&buf);
    let line = head.lines().next()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?;
    let target = parts.next()?;
    (method == "GET" && target.starts_with('/')).then(|| target.to_string())
}

/// The value of a query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Try to open a browser on `url` (best effort; the URL has been printed anyway).
pub fn open_browser(url: &str) -> bool {
    let candidates: &[&str] = if cfg!(target_os = "macos") { &["open"] } else { &["xdg-open", "sensible-browser"] };
    for c in candidates {
        if std::process::Command::new(c)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
        {
            return true;
        }
    }
    false
}

/// Headless mode: GET `url` and follow redirects (at most 8, each origin checked against `grant`)
/// until one points at `redirect_uri`; return that URL.
pub async fn headless(url: &str, redirect_uri: &str, grant: &Grant) -> Result<String, HostError> {
    let mut current = url.to_string();
    for _ in 0..8 {
        if current.starts_with(redirect_uri) {
            return Ok(current);
        }
        let origin = Origin::parse(&current).map_err(|e| HostError::Usage(format!("authorization URL: {e}")))?;
        if !grant.covers_origin(&origin) {
            return Err(HostError::Connector(crate::errors::ConnectorError::DeniedByPolicy {
                message: format!(
                    "the authorization flow went to {origin}, which is not granted to this connection; to allow it, reconnect with --allow-origin {origin}"
                ),
            }));
        }
        let (status, location) = get_no_redirect(&current, &origin, grant).await?;
        match (status, location) {
            (300..=399, Some(loc)) => {
                let base = url::Url::parse(&current).map_err(|e| HostError::Usage(e.to_string()))?;
                current = base
                    .join(&loc)
                    .map_err(|_| HostError::Usage(format!("the authorization server redirected to an invalid URL `{}`", crate::errors::one_line(&loc))))?
                    .to_string();
            }
            (200..=299, _) => {
                return Err(HostError::Usage(
                    "the authorization server shows a consent page that needs a person; run connect without --headless".into(),
                ))
            }
            (s, _) => {
                return Err(HostError::Connector(crate::errors::ConnectorError::Upstream {
                    status: s,
                    message: "the authorization request was refused".into(),
                }))
            }
        }
    }
    Err(HostError::Usage("the authorization server redirected more than 8 times; giving up".into()))
}

async fn get_no_redirect(url: &str, origin: &Origin, grant: &Grant) -> Result<(u16, Option<String>), HostError> {
    if origin.scheme != "http" && origin.scheme != "https" {
        return Err(HostError::Usage(format!("unsupported scheme in {url}")));
    }
    let unavailable = |m: String| HostError::Connector(crate::errors::ConnectorError::Unavailable { message: m });
    // The same address rule as the send hook: special addresses only when granted literally.
    let addrs: Vec<std::net::SocketAddr> = match origin.ip() {
        Some(ip) => vec![std::net::SocketAddr::new(ip, origin.port)],
        None => tokio::net::lookup_host((origin.host.as_str(), origin.port))
            .await
            .map_err(|e| unavailable(format!("cannot resolve {}: {e}", origin.host)))?
            .collect(),
    };
    let target = crate::policy::Target::parse(url).map_err(|e| HostError::Usage(format!("authorization URL: {e}")))?;
    if let Some(bad) = addrs.iter().find(|a| !grant.allows_address(crate::policy::Method::Get, &target, a.ip())) {
        return Err(HostError::Connector(crate::errors::ConnectorError::DeniedByPolicy {
            message: format!(
                "the authorization flow went to {origin}, which resolves to {}, {}; grant that address literally if intended",
                bad.ip(),
                crate::wire::addresses::describe(bad.ip())
            ),
        }));
    }
    let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&addrs[..]))
        .await
        .map_err(|_| unavailable(format!("connecting to {origin} timed out")))?
        .map_err(|e| unavailable(format!("cannot connect to {origin}: {e}")))?;
    let parsed = url::Url::parse(url).map_err(|e| HostError::Usage(e.to_string()))?;
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let host_header = match parsed.port() {
        Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or("")),
        None => parsed.host_str().unwrap_or("").to_string(),
    };
    let req = http::Request::get(path)
        .header("host", host_header)
        .header("accept", "text/html,application/json")
        .header("user-agent", concat!("claribi-host/", env!("CARGO_PKG_VERSION")))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| HostError::Usage(e.to_string()))?;
    let send = async {
        if origin.scheme == "https" {
            let name = rustls::pki_types::ServerName::try_from(origin.host.clone()).map_err(|e| unavailable(e.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(crate::wire::transport::tls_client_config())
                .connect(name, tcp)
                .await
                .map_err(|e| unavailable(format!("TLS with {origin} failed: {e}")))?;
            send_on(hyper_util::rt::TokioIo::new(tls), req).await
        } else {
            send_on(hyper_util::rt::TokioIo::new(tcp), req).await
        }
    };
    tokio::time::timeout(Duration::from_secs(30), send).await.map_err(|_| unavailable(format!("{origin} did not answer in 30 s")))?
}

async fn send_on<IO>(io: IO, req: http::Request<http_body_util::Empty<bytes::Bytes>>) -> Result<(u16, Option<String>), HostError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let unavailable = |m: String| HostError::Connector(crate::errors::ConnectorError::Unavailable { message: m });
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| unavailable(e.to_string()))?;
    let task = tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| unavailable(e.to_string()))?;
    let status = resp.status().as_u16();
    let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    // Drain a little of the body so the connection closes cleanly; never keep more than 64 KiB.
    let mut body = resp.into_body();
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        seen += frame.data_ref().map(|d| d.len()).unwrap_or(0);
        if seen > 64 * 1024 {
            break;
        }
    }
    task.abort();
    Ok((status, location))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_listener_returns_the_callback_url_and_ignores_other_paths() {
        let r = Redirect::bind().await.unwrap();
        let uri = r.uri().to_string();
        assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"));
        let port: u16 = uri.trim_start_matches("http://127.0.0.1:").trim_end_matches("/callback").parse().unwrap();
        let client = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.write_all(b"GET /favicon.ico HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
            let mut out = vec![];
            s.read_to_end(&mut out).await.unwrap();
            assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 404"));
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.write_all(b"GET /callback?code=abc&state=xyz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
            let mut out = vec![];
            s.read_to_end(&mut out).await.unwrap();
            assert!(String::from_utf8_lossy(&out).contains("You can close this window"));
        });
        let got = r.wait(Duration::from_secs(5)).await.unwrap();
        client.await.unwrap();
        assert_eq!(got, format!("{}?code=abc&state=xyz", uri));
        assert_eq!(query_param(&got, "state").as_deref(), Some("xyz"));
    }

    #[tokio::test]
    async fn waiting_ends_with_a_clear_timeout() {
        let r = Redirect::bind().await.unwrap();
        let err = r.wait(Duration::from_millis(100)).await.unwrap_err();
        assert!(err.to_string().contains("nothing was stored"), "{err}");
    }

    #[tokio::test]
    async fn headless_refuses_ungranted_origins() {
        let err = headless("https://evil.example/authorize", "http://127.0.0.1:1/callback", &Grant::default()).await.unwrap_err();
        assert!(err.to_string().contains("--allow-origin https://evil.example"), "{err}");
    }
}
