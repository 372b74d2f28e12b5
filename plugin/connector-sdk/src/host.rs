//! What a connector needs from the host, and the real host behind the WIT `host` imports.
//!
//! [`Host`] is the one trait the connector flow runs against: secrets, state, shared state and the
//! credential lock ([`OAuthHost`]), logging ([`Logger`]), and the connection. In a component it is
//! `WitHost` (the generated `host` imports, on `wasm32-wasip2`); in native tests, a fake
//! (`claribi_connector_sdk::testing::FakeHost`, feature `test-util`).

use crate::types::Connection;
use mcp_client::oauth::OAuthHost;
use mcp_client::Logger;

/// What the connector needs from the host, for the one connection the call is for.
pub trait Host: OAuthHost + Logger {
    /// The connection this call is for.
    fn connection(&self) -> Connection;
}

#[cfg(target_os = "wasi")]
pub use wit::WitHost;

#[cfg(target_os = "wasi")]
mod wit {
    use super::Host;
    use crate::bindings::claribi::data_source::host;
    use crate::types::Connection;
    use mcp_client::oauth::{HeldLock, OAuthHost};
    use mcp_client::{LogLevel, Logger};

    /// The real host, through the generated `host` imports.
    pub struct WitHost;

    impl OAuthHost for WitHost {
        fn secret(&self, key: &str) -> Option<String> {
            host::get_secret(key)
        }
        fn update_secrets(&self, changes: &[(&str, Option<&str>)]) -> Result<(), String> {
            let changes: Vec<(String, Option<String>)> = changes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect();
            host::update_secrets(&changes)
        }
        fn state(&self, key: &str) -> Option<String> {
            host::get_state(key)
        }
        fn set_state(&self, key: &str, value: Option<&str>) {
            host::set_state(key, value)
        }
        fn shared_state(&self, key: &str) -> Option<String> {
            host::get_shared_state(key)
        }
        fn set_shared_state(&self, key: &str, value: Option<&str>) {
            host::set_shared_state(key, value)
        }
        fn lock_credentials(&self) -> Box<dyn HeldLock + '_> {
            // Dropping the resource releases the lock.
            Box::new(host::lock_credentials())
        }
    }

    impl Logger for WitHost {
        fn log(&self, level: LogLevel, message: &str) {
            let level = match level {
                LogLevel::Debug => host::LogLevel::Debug,
                LogLevel::Info => host::LogLevel::Info,
                LogLevel::Warn => host::LogLevel::Warn,
                LogLevel::Error => host::LogLevel::Error,
            };
            host::log(level, message)
        }
    }

    impl Host for WitHost {
        fn connection(&self) -> Connection {
            host::get_connection()
        }
    }
}
