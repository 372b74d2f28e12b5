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

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// How long a client may take to complete its handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// Completed handshakes waiting for the HTTP server to take them.
const QUEUE: usize = 64;

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
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
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
        tokio::spawn(async move {
            loop {
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
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
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
    type Io = TlsStream<TcpStream>;
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
