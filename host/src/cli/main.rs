//! `claribi-host`: the command line of the connector host. See `claribi-host --help`.

use clap::{Parser, Subcommand};
use claribi_host::errors::HostError;
use claribi_host::policy::Policy;
use claribi_host::oauth::redirect;
use claribi_host::service::{builtin, Approve, ConnectRequest, Credentials, HostConfig, HostService, OAuthFlow};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use zeroize::Zeroizing;

#[cfg(feature = "demo")]
mod bench;
#[cfg(feature = "demo")]
mod demo;
#[cfg(feature = "demo")]
mod conformance;
mod output;

#[derive(Parser)]
#[command(name = "claribi-host", version, about = "Load data-source connectors (WebAssembly components), keep their secrets, and call their read-only tools.")]
struct Cli {
    /// Where connections, secrets and caches live [env: CLARIBI_HOME] [default: ~/.local/share/claribi]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL database shared by a fleet of replicas, postgres://USER@HOST:PORT/DATABASE
    /// [env: CLARIBI_DATABASE_URL] [default: SQLite in the data directory]
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    /// More logging on stderr (-v info, -vv debug). CLARIBI_LOG takes a tracing filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

/// How an OAuth authorization is carried out (connect, reconnect).
#[derive(clap::Args)]
struct OAuthArgs {
    /// OAuth: print the authorization URL but do not open a browser.
    #[arg(long)]
    no_browser: bool,
    /// OAuth: fetch the authorization URL without a browser and follow its redirects (for servers
    /// that approve automatically).
    #[arg(long, conflicts_with = "no_browser")]
    headless: bool,
    /// OAuth: how long to wait for the authorization, in seconds (1 to 86400).
    #[arg(long, default_value_t = 300, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Create a connection: load and pin a connector, store its credentials encrypted, check them.
    Connect {
        /// Connection name (a-z, 0-9, - and _).
        name: String,
        /// The connector component: a .wasm file, `builtin:close` or `builtin:mcp` (any MCP server).
        #[arg(long, value_name = "PATH")]
        plugin: String,
        /// Vendor endpoint [default: the connector's, e.g. https://mcp.close.com/mcp].
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// Name of the environment variable holding the API key. Without it, the connection is
        /// authorized with OAuth in a browser.
        #[arg(long, value_name = "VAR")]
        api_key_env: Option<String>,
        #[command(flatten)]
        oauth: OAuthArgs,
        /// Scope to request (repeatable) [default: the connector's read-level ones, e.g. mcp.read]; `*` allows any scope the server names (an explicit widening).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Origin the connector may reach on every path (repeatable), e.g. http://127.0.0.1:8080: an
        /// explicit widening beyond the connection's own URLs (its endpoint and the OAuth URLs its
        /// metadata names). Loopback and private addresses are reachable only when named here, in
        /// --endpoint or in the policy file.
        #[arg(long = "allow-origin", value_name = "ORIGIN")]
        allow_origins: Vec<String>,
        /// The header an API key is bound to [default: the connector's, e.g. close-api-key; else
        /// Authorization: Bearer].
        #[arg(long, value_name = "HEADER")]
        api_key_header: Option<String>,
        /// Policy file (TOML: allow_origins, memory_mib, call_timeout_ms, max_response_bytes, max_requests_per_call).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Connector option key=value (repeatable), e.g. client_id=… for a pre-registered OAuth client.
        #[arg(long = "option", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// OAuth: environment variable holding a pre-registered client's secret (stored encrypted).
        #[arg(long, value_name = "VAR")]
        client_secret_env: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Authorize a connection again (after `needs-reconnect` or `insufficient-scope`): OAuth in a
    /// browser, or a new API key with --api-key-env.
    Reconnect {
        /// Connection name.
        name: String,
        /// For an API-key connection: the environment variable holding the new key.
        #[arg(long, value_name = "VAR")]
        api_key_env: Option<String>,
        /// Ask for this scope too (repeatable).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        #[command(flatten)]
        oauth: OAuthArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Move a connection to another build of its connector (e.g. one for this host's
    /// claribi:data-source version): an API key is kept, an OAuth connection is authorized again.
    Upgrade {
        /// Connection name.
        name: String,
        /// The new component: a .wasm file, `builtin:close` or `builtin:mcp`.
        #[arg(long, value_name = "PATH")]
        plugin: String,
        #[command(flatten)]
        oauth: OAuthArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List connections.
    Connections {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List the read-only tools of a connection (write tools are withheld by the blocklist).
    Tools {
        /// Connection name.
        name: String,
        /// Also list the withheld tools and why.
        #[arg(long)]
        show_blocked: bool,
        /// List the tools whose definitions wait for a review (changed or new upstream), with diffs.
        #[arg(long)]
        review: bool,
        /// Approve these tools as they are offered now (see --review).
        #[arg(long, num_args = 1.., value_name = "TOOL")]
        approve: Vec<String>,
        /// Approve every tool waiting for a review.
        #[arg(long)]
        approve_all: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Call one tool with JSON arguments, e.g. `call close find_opportunities '{"status_type":"active"}'`.
    Call {
        /// Connection name.
        name: String,
        /// Tool name.
        tool: String,
        /// Arguments as a JSON object.
        #[arg(default_value = "{}")]
        args_json: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Check a connection's credentials again.
    Check {
        /// Connection name.
        name: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show a connection's policy as a policy file, or replace it with `--set FILE`.
    Policy {
        /// Connection name.
        name: String,
        /// Replace the policy with this policy file.
        #[arg(long, value_name = "FILE")]
        set: Option<PathBuf>,
    },
    /// Remove a connection: revoke its tokens where possible, delete its secrets and state.
    Disconnect {
        /// Connection name.
        name: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Re-encrypt every stored secret under a new master key. With --database (a fleet): under the key
    /// every replica now holds first in CLARIBI_MASTER_KEY; refused while a replica seals with another.
    RotateKey {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show the write-tool blocklist in force.
    Blocklist,
    /// Bearer tokens for AI engines calling `serve --http` (required off loopback): create (shown once,
    /// stored hashed), list, revoke.
    EngineToken {
        #[command(subcommand)]
        action: EngineTokenAction,
    },
    /// The audit trail of engine calls: time, engine token, connection, tool, SHA-256 of the arguments,
    /// bytes, duration, outcome, replica. Never arguments, results or secrets.
    Audit {
        /// Only calls to this connection.
        #[arg(long, value_name = "NAME")]
        connection: Option<String>,
        /// Only calls since then: a duration back from now (15m, 2h, 7d), an RFC 3339 time or a date.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// At most this many calls (the newest).
        #[arg(long, default_value_t = 1000, value_name = "N")]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Apply the database's pending migrations (every start does too) and report its schema version.
    Migrate {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Each connection's state (ready, needs-reconnect, insufficient-scope) and last error.
    Status {
        /// Check each connection now (one request per connection) instead of showing the last outcome.
        #[arg(long)]
        check: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Serve the read tools of every connection to an AI engine over MCP (stdio, or Streamable HTTP
    /// with --http).
    Serve {
        /// Listen for MCP Streamable HTTP on this address (e.g. 127.0.0.1:8765) instead of stdio. A
        /// non-loopback address needs engine tokens (`engine-token create`) and --tls-cert/--tls-key.
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// With --http: serve HTTPS with this PEM certificate chain.
        #[arg(long, value_name = "FILE", requires_all = ["http", "tls_key"])]
        tls_cert: Option<PathBuf>,
        /// With --http: the PEM private key of --tls-cert.
        #[arg(long, value_name = "FILE", requires_all = ["http", "tls_cert"])]
        tls_key: Option<PathBuf>,
        /// With --http: a host name engines reach this server by (accepted in `Host` and `Origin`
        /// besides loopback and the bound address); repeat for several.
        #[arg(long = "public-name", value_name = "HOST", requires = "http")]
        public_names: Vec<String>,
        /// Results larger than this many bytes are summarized (row count, first rows, a cursor).
        #[arg(long, default_value_t = 32768, value_name = "BYTES")]
        max_result_bytes: usize,
        /// Serve tool names without the `<connection>__` prefix (only with exactly one connection).
        #[arg(long)]
        bare_names: bool,
    },
    /// Serve the web console on loopback: Data Sources (add, authorize, name, reconnect), Settings and
    /// Disconnect, Explore (read tools, charts, the product's questions) and a Dashboard of pinned calls.
    /// Prints a URL with a one-time access token.
    Console {
        /// Listen on this loopback address [default: 127.0.0.1:0, a free port].
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        listen: String,
        /// Print the URL but do not open a browser.
        #[arg(long)]
        no_browser: bool,
        /// Try it without a Close account: a local Close stand-in (with its consent page) and a
        /// temporary data directory; the Close card points at the stand-in.
        #[cfg(feature = "demo")]
        #[arg(long)]
        demo: bool,
    },
    /// Run the whole path against a local Close stand-in: build-in connector, connect, list, call.
    #[cfg(feature = "demo")]
    Demo {
        /// Connect with SSE responses instead of JSON.
        #[arg(long)]
        sse: bool,
    },
    /// Run one MCP conformance-suite client scenario against SERVER_URL (launched by the suite).
    #[cfg(feature = "demo")]
    #[command(hide = true)]
    ConformanceClient {
        /// The MCP revision to speak: `suite` (default: the one the suite names in
        /// MCP_CONFORMANCE_PROTOCOL_VERSION), `auto` (probe with server/discover, as connections do),
        /// or a revision.
        #[arg(long, default_value = "suite")]
        protocol: String,
        /// The test server's MCP URL.
        server_url: String,
    },
    /// Measure compile, load, instantiate and call latency (component vs native client).
    #[cfg(feature = "demo")]
    Bench {
        /// Calls per measurement.
        #[arg(long, default_value_t = 200)]
        iterations: usize,
    },
}

#[derive(Subcommand)]
enum EngineTokenAction {
    /// Create a token for one engine and print it (the only time it is shown; only its hash is kept).
    Create {
        /// The engine's name (letters, digits, -, _ and .), recorded with each of its calls.
        name: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The tokens, when made, and whether they are revoked (never the tokens).
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: the next request that carries it is refused, by every process on this database.
    Revoke {
        /// The token's name.
        name: String,
    },
}

fn default_data_dir() -> Result<PathBuf, HostError> {
    if let Some(d) = std::env::var_os("CLARIBI_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("claribi"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local").join("share").join("claribi")),
        None => Err(HostError::Usage("cannot find a home directory; pass --data-dir DIR or set CLARIBI_HOME".into())),
    }
}

fn init_logging(verbose: u8, json: bool, serving: bool) {
    let default = match verbose {
        // A server logs one line per call (claribi::call) by default; the CLI stays quiet.
        // wasmtime-wasi-http warns about every failed outgoing request; the call's error says it already.
        0 if serving => "warn,connector=error,wasmtime_wasi_http=error,claribi::call=info",
        0 => "warn,connector=error,wasmtime_wasi_http=error",
        1 => "info",
        _ => "debug,cranelift=warn,wasmtime=warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLARIBI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(true).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn read_plugin(spec: &str) -> Result<Vec<u8>, HostError> {
    if let Some(name) = spec.strip_prefix("builtin:") {
        return builtin::get(name)
            .map(|b| b.to_vec())
            .ok_or_else(|| HostError::Usage(format!("no built-in connector `{name}`; built-in: builtin:close, builtin:mcp")));
    }
    std::fs::read(spec).map_err(|e| {
        HostError::Usage(format!("cannot read the connector file `{spec}` ({e}); give the path of a .wasm component or builtin:close"))
    })
}

fn api_key_from_env(var: &str) -> Result<Zeroizing<String>, HostError> {
    secret_from_env(var, "the API key")
}

fn secret_from_env(var: &str, what: &str) -> Result<Zeroizing<String>, HostError> {
    let key = std::env::var(var).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| {
        HostError::Usage(format!("environment variable {var} is not set or empty; export it with {what} and retry"))
    })?;
    Ok(Zeroizing::new(key.trim().to_string()))
}

fn oauth_flow(args: &OAuthArgs) -> OAuthFlow {
    let (headless, timeout) = (args.headless, args.timeout);
    let mode = if headless { redirect::Mode::Headless } else { redirect::Mode::Browser { open: !args.no_browser } };
    OAuthFlow {
        mode,
        timeout: std::time::Duration::from_secs(timeout),
        on_url: Box::new(move |url| {
            if headless {
                return;
            }
            // The URL goes to stderr so that --json output stays clean.
            eprintln!("Open this URL to authorize clariBI (waiting up to {timeout} s):");
            eprintln!("{url}");
        }),
    }
}

fn read_policy(path: &std::path::Path) -> Result<Policy, HostError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| HostError::Usage(format!("cannot read policy file {} ({e})", path.display())))?;
    Policy::parse(&text).map_err(|e| HostError::Usage(format!("policy file {}: {e}", path.display())))
}

fn parse_options(items: &[String]) -> Result<Vec<(String, String)>, HostError> {
    items
        .iter()
        .map(|o| {
            let (k, v) = o.split_once('=').filter(|(k, _)| !k.is_empty()).ok_or_else(|| {
                HostError::Usage(format!("--option `{}` must look like key=value", o.split('=').next().unwrap_or("")))
            })?;
            if k.trim() == claribi_host::service::CLIENT_SECRET_OPTION {
                return Err(HostError::Usage(
                    "a client secret on the command line is visible to every user of this machine; put it in an environment variable and pass --client-secret-env VAR".into(),
                ));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

async fn run(cli: Cli) -> Result<(), HostError> {
    let data_dir = match cli.data_dir {
        Some(d) => d,
        None => default_data_dir()?,
    };
    // Read here rather than by clap, whose help would print the value (and a password in it).
    let database = cli.database.clone().or_else(|| std::env::var("CLARIBI_DATABASE_URL").ok()).filter(|u| !u.trim().is_empty());
    if let Some(url) = &database {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(HostError::Usage(format!(
                "--database `{}` is not a PostgreSQL URL; give postgres://USER@HOST:PORT/DATABASE, or leave it out for SQLite in the data directory",
                claribi_host::vault::store::postgres::redacted(url)
            )));
        }
    }
    match cli.command {
        #[cfg(feature = "demo")]
        Command::Demo { sse } => return demo::run(sse).await,
        #[cfg(feature = "demo")]
        Command::Bench { iterations } => return bench::run(iterations).await,
        #[cfg(feature = "demo")]
        Command::ConformanceClient { protocol, server_url } => return conformance::run(&server_url, &protocol).await,
        #[cfg(feature = "demo")]
        Command::Console { listen, no_browser, demo: true } => return demo::console(&listen, no_browser).await,
        Command::RotateKey { json } => {
            let (id, n) = HostService::rotate_key(&data_dir, database.as_deref())?;
            if json {
                output::print_json(&json!({"key_id": id, "reencrypted": n}));
            } else if database.is_some() {
                println!("re-encrypted {n} secret(s) under master key {id}, which every replica in service seals with; the old keys may now leave CLARIBI_MASTER_KEY");
            } else {
                println!("re-encrypted {n} secret(s) under the new master key {id}");
            }
            return Ok(());
        }
        _ => {}
    }
    let host = HostService::open(HostConfig { database: database.clone(), ..HostConfig::new(&data_dir) })?;
    match cli.command {
        Command::Connect {
            name, plugin, endpoint, api_key_env, oauth, scopes, allow_origins, api_key_header, policy, options, client_secret_env, json,
        } => {
            let plugin = read_plugin(&plugin)?;
            let mut options = parse_options(&options)?;
            if let Some(h) = api_key_header {
                options.retain(|(k, _)| k.trim() != claribi_host::service::connect::API_KEY_HEADER_OPTION);
                options.push((claribi_host::service::connect::API_KEY_HEADER_OPTION.to_string(), h));
            }
            if let Some(var) = client_secret_env {
                let secret = secret_from_env(&var, "the OAuth client secret")?;
                options.push((claribi_host::service::CLIENT_SECRET_OPTION.to_string(), secret.to_string()));
            }
            let credentials = match api_key_env {
                Some(var) => Credentials::ApiKey(api_key_from_env(&var)?),
                None => Credentials::OAuth(oauth_flow(&oauth)),
            };
            let policy = policy.map(|p| read_policy(&p)).transpose()?;
            let outcome = host
                .connect(ConnectRequest {
                    name,
                    plugin,
                    endpoint,
                    credentials,
                    scopes,
                    allow_origins: if allow_origins.is_empty() { None } else { Some(allow_origins) },
                    policy,
                    options,
                })
                .await?;
            output::outcome("connected", &outcome, json);
        }
        Command::Upgrade { name, plugin, oauth, json } => {
            let plugin = read_plugin(&plugin)?;
            let outcome = host.upgrade(&name, &plugin, Some(&oauth_flow(&oauth))).await?;
            output::outcome("upgraded", &outcome, json);
        }
        Command::Reconnect { name, api_key_env, scopes, oauth, json } => {
            let outcome = match api_key_env {
                Some(var) => host.rekey(&name, api_key_from_env(&var)?).await?,
                None => host.reauthorize(&name, &oauth_flow(&oauth), &scopes).await?,
            };
            output::outcome("reconnected", &outcome, json);
        }
        Command::Connections { json } => {
            let list = host.connections()?;
            let pending = list.iter().map(|c| host.pending_review_count(c)).collect::<Result<Vec<_>, _>>()?;
            output::connections(&list, &pending, json)
        }
        Command::Tools { name, show_blocked, review, approve, approve_all, json } => {
            if approve_all || !approve.is_empty() {
                let which = if approve_all { Approve::All } else { Approve::Tools(approve) };
                let approved = host.approve_tools(&name, &which, &claribi_host::service::reviews::operator())?;
                output::approved(&name, &approved, json);
            } else if review {
                // A listing first, so the reviews are those of what the server offers now.
                host.list_tools(&name).await?;
                output::reviews(&name, &host.pending_reviews(&name)?, json);
            } else {
                let listing = host.list_tools(&name).await?;
                output::tools(&listing, show_blocked, json);
            }
        }
        Command::Call { name, tool, args_json, json } => {
            let out = host.call_tool(&name, &tool, &args_json).await?;
            output::tool_output(&out, json);
        }
        Command::Check { name, json } => {
            let outcome = host.check(&name).await?;
            output::outcome("checked", &outcome, json);
        }
        Command::Policy { name, set } => {
            if let Some(path) = set {
                let policy = read_policy(&path)?;
                host.set_policy(&name, &policy)?;
            }
            let c = host.connection(&name)?;
            print!("{}", c.policy.to_toml());
            output::policy_comments(&host.grant_of(&c)?.describe(), &host.secret_bindings(&c)?);
        }
        Command::Disconnect { name, json } => {
            let out = host.disconnect(&name).await?;
            if json {
                output::print_json(&out);
            } else {
                println!("disconnected `{}`; its credentials and state are deleted", out.name);
                if let Some(w) = &out.warning {
                    eprintln!("warning: the connector could not revoke its tokens: {w}");
                }
            }
        }
        Command::Status { check, json } => {
            if check {
                for c in host.connections()? {
                    if let Err(e) = host.check(&c.name).await {
                        tracing::info!(connection = %c.name, "check failed: {e}");
                    }
                }
            }
            let mut rows = Vec::new();
            for c in host.connections()? {
                let secrets = host.secret_bindings(&c)?;
                let pending = host.pending_review_count(&c)?;
                rows.push((c, secrets, pending));
            }
            output::status(&rows, json);
        }
        Command::Serve { http, max_result_bytes, bare_names, tls_cert, tls_key, public_names } => {
            let host = std::sync::Arc::new(host);
            let server = claribi_host::engine::EngineServer::new(
                host.clone(),
                claribi_host::engine::EngineOptions { max_result_bytes: max_result_bytes.max(1024), bare_names },
            );
            match http {
                None => claribi_host::engine::serve_stdio(server).await?,
                Some(addr) => {
                    let addr: std::net::SocketAddr = addr
                        .parse()
                        .map_err(|_| HostError::Usage(format!("--http `{addr}` is not an address like 127.0.0.1:8765")))?;
                    let tls = match (tls_cert, tls_key) {
                        (Some(cert), Some(key)) => Some(claribi_host::engine::tls::server_config(&cert, &key).map_err(HostError::Usage)?),
                        _ => None,
                    };
                    // Refuse before binding: a non-loopback address without tokens or TLS.
                    let tokens = claribi_host::engine::access::Tokens::of(host.store()).map_err(HostError::Storage)?;
                    claribi_host::engine::access::Admission::decide(addr, tokens, tls.is_some(), !public_names.is_empty()).map_err(HostError::Usage)?;
                    let scheme = if tls.is_some() { "https" } else { "http" };
                    let listener = tokio::net::TcpListener::bind(addr)
                        .await
                        .map_err(|e| HostError::Usage(format!("cannot listen on {addr}: {e}")))?;
                    let bound = listener.local_addr().map_err(|e| HostError::Usage(e.to_string()))?;
                    eprintln!("serving MCP (Streamable HTTP) on {scheme}://{bound}/mcp; Ctrl-C stops");
                    let shutdown = async {
                        #[cfg(unix)]
                        {
                            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                            tokio::select! {
                                _ = tokio::signal::ctrl_c() => {}
                                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
                            }
                        }
                        #[cfg(not(unix))]
                        let _ = tokio::signal::ctrl_c().await;
                    };
                    let options = claribi_host::engine::HttpOptions { tls, public_names };
                    claribi_host::engine::serve_http_with(server, listener, options, shutdown).await?;
                }
            }
        }
        Command::Console { listen, no_browser, .. } => {
            console(std::sync::Arc::new(host), &listen, no_browser, claribi_host::console::ConsoleOptions::default()).await?;
        }
        Command::EngineToken { action } => match action {
            EngineTokenAction::Create { name, json } => {
                use claribi_host::engine::access;
                access::validate_name(&name).map_err(HostError::Usage)?;
                let token = access::generate();
                host.store().insert_engine_token(&name, &access::digest(&token)).map_err(HostError::Usage)?;
                if json {
                    output::print_json(&json!({"name": name, "token": token.as_str()}));
                } else {
                    println!("engine token `{name}` (shown once; only its hash is kept):");
                    println!("{}", token.as_str());
                    eprintln!("give it to the engine as `Authorization: Bearer <token>`; revoke it with `claribi-host engine-token revoke {name}`");
                }
            }
            EngineTokenAction::List { json } => output::engine_tokens(&host.store().engine_tokens().map_err(HostError::Storage)?, json),
            EngineTokenAction::Revoke { name } => {
                if !host.store().revoke_engine_token(&name).map_err(HostError::Storage)? {
                    return Err(HostError::Usage(format!(
                        "no working engine token is named `{}`; see `claribi-host engine-token list`",
                        claribi_host::errors::one_line(&name)
                    )));
                }
                println!("revoked engine token `{name}`; requests carrying it are refused from now on");
            }
        },
        Command::Audit { connection, since, limit, json } => {
            let now_ms = claribi_host::vault::store::Store::now_ms();
            let since_ms = since.map(|s| claribi_host::vault::store::parse_since(&s, now_ms)).transpose().map_err(HostError::Usage)?;
            let query = claribi_host::vault::store::AuditQuery { connection, since_ms, limit: limit.max(1) };
            output::audit(&host.store().audit(&query).map_err(HostError::Storage)?, json);
        }
        Command::Migrate { json } => {
            // Opening the store applied whatever was pending.
            let version = host.store().schema_version().map_err(HostError::Storage)?;
            let migrations = host.store().migrations();
            let place = match &database {
                Some(url) => claribi_host::vault::store::postgres::redacted(url),
                None => host.data_dir().join("claribi.db").display().to_string(),
            };
            if json {
                let list: Vec<_> = migrations.iter().map(|(v, what, _)| json!({"version": v, "what": what, "applied": *v <= version})).collect();
                output::print_json(&json!({"database": place, "schema_version": version, "migrations": list}));
            } else {
                println!("{place}: schema version {version}");
                for (v, what, _) in migrations {
                    println!("  {} {v}  {what}", if *v <= version { "applied" } else { "pending" });
                }
            }
        }
        Command::Blocklist => {
            for (id, re) in host.blocklist().rules() {
                println!("{id:<22} {re}");
            }
            for (id, reason) in host.blocklist().overrides() {
                println!("{id:<22} DISABLED by operator: {reason}");
            }
        }
        #[cfg(feature = "demo")]
        Command::Demo { .. } | Command::Bench { .. } | Command::ConformanceClient { .. } => unreachable!("handled above"),
        Command::RotateKey { .. } => unreachable!("handled above"),
    }
    Ok(())
}

/// `claribi-host console`: bind, print the access link (and open it), serve until Ctrl-C.
pub(crate) async fn console(
    host: std::sync::Arc<HostService>,
    listen: &str,
    no_browser: bool,
    options: claribi_host::console::ConsoleOptions,
) -> Result<(), HostError> {
    let addr: std::net::SocketAddr =
        listen.parse().map_err(|_| HostError::Usage(format!("--listen `{listen}` is not an address like 127.0.0.1:8790")))?;
    let console = claribi_host::console::Console::bind(host, addr, options).await?;
    let url = console.access_url();
    println!("clariBI console on http://{} (Ctrl-C stops it)", console.addr());
    println!("Open this link (it works once; it carries the access token):");
    println!("    {url}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    if !no_browser {
        redirect::open_browser(&url);
    }
    // Ctrl-C or SIGTERM: setups still open are removed with their secrets before the console exits.
    let shutdown = async {
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    console.serve(shutdown).await
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error in claribi-host ({}{at}); please report it", claribi_host::errors::one_line(&msg));
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand { ExitCode::from(2) } else { ExitCode::SUCCESS };
            }
            let text = e.to_string();
            let head: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            let line = head.join(" ");
            let line = line.strip_prefix("error: ").unwrap_or(&line);
            eprintln!("error: {line}; run `claribi-host --help` for usage");
            return ExitCode::from(2);
        }
    };
    init_logging(cli.verbose, cli.log_json, matches!(cli.command, Command::Serve { .. } | Command::Console { .. }));
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
