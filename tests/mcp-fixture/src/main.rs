//! `mcp-fixture [PORT]`: serves the MCP conformance test tools at `http://127.0.0.1:PORT/mcp` (any free
//! port without PORT), prints that URL on stdout, and runs until Ctrl-C. See the library docs.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("usage: mcp-fixture [PORT]");
            return ExitCode::from(2);
        }
    };
    let fixture = match mcp_fixture::Fixture::start_on(port).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", fixture.url());
    let _ = tokio::signal::ctrl_c().await;
    fixture.shutdown().await;
    ExitCode::SUCCESS
}
