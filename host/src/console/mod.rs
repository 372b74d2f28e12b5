//! `claribi-host console`: a small web app on loopback for the setup flow as people use it — Data
//! Sources (Add → MCP Servers → Close CRM → Authorize → name → Finish), status, reconnect, Settings →
//! Disconnect, Explore (a read tool's form, its table and chart, the product's four questions) and a
//! Dashboard of pinned calls.
//!
//! It is one more caller of [`HostService`]: connecting, re-authorizing, disconnecting and calling take
//! the same service functions as the CLI and `serve` (the setup order is
//! [`crate::service::console_flow`]). Everything it serves ships in the binary ([`assets`]); charts are
//! drawn by its own small SVG renderer from the declarative specs [`charts`] proposes. Who may use it
//! and what the browser may do is [`security`].
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the server: routes, the access link, shutdown |
//! | [`security`] | access token, session cookie, CSRF, headers, scrubbing placeholders |
//! | [`api`] | the JSON API the pages call, and the OAuth callback route |
//! | [`explorations`] | the product page's four questions: several calls plus a computation |
//! | [`charts`] | chart proposals (Vega-Lite subset) for list-like results |
//! | [`assets`] | the pages, styles and scripts, compiled in |

pub mod api;
pub mod assets;
// The chart proposals live with the engine's result shaping (`serve` will add them to `_meta`); the
// console compiles them from there until the engine declares the module itself.
pub use crate::engine::charts;
pub mod explorations;
pub mod security;

use crate::errors::HostError;
use crate::service::HostService;
use std::net::SocketAddr;
use std::sync::Arc;

/// How the console runs.
#[derive(Debug, Clone, Default)]
pub struct ConsoleOptions {
    /// Endpoint the Close card proposes instead of the connector's (the demo's stand-in).
    pub close_endpoint: Option<String>,
    /// Origins the Close card proposes to allow beyond the endpoint (the demo's stand-in, whose
    /// authorization server is another loopback port: a special address only an operator may name).
    pub close_allow_origins: Vec<String>,
    /// A line shown at the top of every page (the demo says what it runs against).
    pub banner: Option<String>,
}

/// A console bound to its address, not serving yet.
pub struct Console {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: Arc<api::AppState>,
    access_token: String,
}

impl Console {
    /// Bind `listen` (loopback only) and prepare the state and the one-time access token.
    pub async fn bind(host: Arc<HostService>, listen: SocketAddr, options: ConsoleOptions) -> Result<Console, HostError> {
        if !listen.ip().is_loopback() {
            return Err(HostError::Usage(format!(
                "--listen {listen}: the console listens on loopback only (127.0.0.1 or [::1])"
            )));
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| HostError::Usage(format!("cannot listen on {listen} ({e}); choose another port with --listen 127.0.0.1:PORT")))?;
        let addr = listener.local_addr().map_err(|e| HostError::Usage(e.to_string()))?;
        // Setups a console left behind when it stopped (older than an hour) go with their secrets.
        match host.sweep_unnamed(3600) {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} unfinished setup(s) a previous console left"),
            Err(e) => tracing::warn!("cannot remove unfinished setups: {e}"),
        }
        let (gate, access_token) = security::Gate::new();
        let state = Arc::new(api::AppState::new(host, addr, gate, options));
        Ok(Console { listener, addr, state, access_token })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to open: the console with its one-time access token.
    pub fn access_url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.access_token)
    }

    /// Serve until `shutdown` resolves; setups still open then are removed with their secrets.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), HostError> {
        let state = self.state.clone();
        let sweeper = {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    state.expire_setups(std::time::Duration::from_secs(30 * 60));
                }
            })
        };
        let router = api::router(state.clone());
        let served = axum::serve(self.listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| HostError::Usage(format!("the console's HTTP server failed: {e}")));
        sweeper.abort();
        state.expire_setups(std::time::Duration::ZERO);
        served
    }
}
