//! TLS for `serve --http` on a non-loopback address: the host terminates TLS itself (rustls, with the
//! same `ring` provider as its outbound connections), from PEM certificate and key files.
//!
//! ```text
//! TCP accept ──► handshake task (10 s limit) ──► queue (64) ──► axum::serve ──► /mcp
//!          └──── next accept right away: a slow or silent client holds only its own task
//! ```
//!
//! Handshakes run in their own tasks, so a client that connects and sends nothing (or trickles a
//! ClientHello) never stops other engines from being accepted; a failed handshake is logged at debug
//! level and dropped. Only HTTP/1.1 is offered (ALPN `http/1.1`).
//!
//! Connections are bounded before anyone is authenticated: at most [`MAX_CONNECTIONS`] open (further
//! peers wait in the kernel's backlog), at most [`MAX_PER_PEER`] from one address (further ones are
//! closed at once), and a connection that sends nothing for [`IDLE_LIMIT`] is closed. A peer that
//! trickles one byte at a time is still held only to those bounds: on a network you do not trust,
//! put a proxy with per-client limits in front as well.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::future::Future;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// How long a client may take to complete its handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// Completed handshakes waiting for the HTTP server to take them.
const QUEUE: usize = 64;
/// Connections open at once (handshaking or serving).
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections open at once from one address.
pub const MAX_PER_PEER: usize = 64;
/// A connection that sends nothing this long is closed.
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// Open connections per peer address.
#[derive(Default)]
struct Peers(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

impl Peers {
    fn enter(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<PeerSlot> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_default();
        if *n >= MAX_PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot { peers: self.clone(), ip })
    }
}

/// One open connection's place in [`Peers`], given back when the connection closes.
struct PeerSlot {
    peers: Arc<Peers>,
    ip: std::net::IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut m = self.peers.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// A TLS connection with its places in the bounds, closed when idle for [`IDLE_LIMIT`].
pub struct Guarded {
    inner: TlsStream<TcpStream>,
    idle: std::pin::Pin<Box<tokio::time::Sleep>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
    _peer: PeerSlot,
}

impl Guarded {
    fn touched(&mut self) {
        self.idle.as_mut().reset(tokio::time::Instant::now() + IDLE_LIMIT);
    }
}

impl tokio::io::AsyncRead for Guarded {
    fn poll_read(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let before = buf.filled().len();
        match std::pin::Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.touched();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "idle connection closed"))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl tokio::io::AsyncWrite for Guarded {
    fn poll_write(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A server configuration from a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}; pass a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no PEM certificate; pass a PEM certificate chain", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the TLS private key {}: {e}; pass a PEM private key", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the TLS certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener whose connections arrive with their TLS handshake done (an [`axum::serve::Listener`]).
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(Guarded, SocketAddr)>,
    local: SocketAddr,
    _acceptor: tokio_util::sync::DropGuard,
}

impl TlsListener {
    /// Accept on `tcp`, handshaking with `config`.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(QUEUE);
        let stop = tokio_util::sync::CancellationToken::new();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let stopped = stop.clone();
        let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let peers = Arc::new(Peers::default());
        tokio::spawn(async move {
            loop {
                // A place first: at the cap, further peers wait in the kernel's backlog.
                let permit = tokio::select! {
                    _ = stopped.cancelled() => return,
                    permit = open.clone().acquire_owned() => match permit {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                let (stream, peer) = tokio::select! {
                    _ = stopped.cancelled() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of descriptors and the like: wait a little rather than spin.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let Some(slot) = peers.enter(peer.ip()) else {
                    tracing::debug!(%peer, "closed: {MAX_PER_PEER} connections from that address are open");
                    continue;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let idle = Box::pin(tokio::time::sleep(IDLE_LIMIT));
                            let _ = tx.send((Guarded { inner: tls, idle, _permit: permit, _peer: slot }, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake took longer than {HANDSHAKE_LIMIT:?}"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local, _acceptor: stop.drop_guard() })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(next) => next,
            // The acceptor only stops when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_holds_at_most_its_share_of_connections() {
        let peers = Arc::new(Peers::default());
        let ip: std::net::IpAddr = "10.0.0.9".parse().unwrap();
        let mut held: Vec<_> = (0..MAX_PER_PEER).map(|_| peers.enter(ip).expect("within the share")).collect();
        assert!(peers.enter(ip).is_none(), "one more from the same address is refused");
        assert!(peers.enter("10.0.0.10".parse().unwrap()).is_some(), "another address is not");
        held.pop();
        assert!(peers.enter(ip).is_some(), "a place is given back when a connection closes");
    }

    #[test]
    fn unreadable_or_empty_files_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = server_config(&missing, &missing).unwrap_err();
        assert!(err.contains("cannot read the TLS certificate") && !err.contains('\n'), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = server_config(&empty, &empty).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }
}
