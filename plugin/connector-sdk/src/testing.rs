//! A fake host for connectors' native tests (feature `test-util`): the connection, an in-memory
//! host for secrets, state and the credential lock (`mcp_client::testing::MemoryHost`), and the log
//! lines. Drive a [`Connector`](crate::Connector) with it and `mcp_client::testing::ScriptedHttp`.

use crate::host::Host;
use crate::types::{AuthMethod, Connection};
use mcp_client::oauth::{HeldLock, OAuthHost};
use mcp_client::testing::MemoryHost;
use mcp_client::{LogLevel, Logger};
use std::cell::RefCell;

/// The connection, logs, and an in-memory host for secrets, state and the credential lock.
///
/// Like the real host's logs, its log lines are checked as they are written: a line that spans
/// lines or contains a secret the host holds (8 characters or more) panics, so that a test sees it.
pub struct FakeHost {
    pub connection: Connection,
    pub inner: MemoryHost,
    pub logs: RefCell<Vec<(LogLevel, String)>>,
}

impl FakeHost {
    /// A connection named `test` to `endpoint`, without scopes or options or secrets.
    pub fn new(endpoint: &str, auth_method: AuthMethod) -> Self {
        FakeHost {
            connection: Connection {
                name: "test".into(),
                id: "conn-1".into(),
                endpoint: endpoint.into(),
                auth_method,
                scopes: vec![],
                options: vec![],
                api_key_header: "authorization".into(),
            },
            inner: MemoryHost::new(),
            logs: RefCell::default(),
        }
    }

    /// The same host with the secret `api-key` set.
    pub fn with_api_key(self, key: &str) -> Self {
        self.inner.put_secret(crate::SECRET_API_KEY, key);
        self
    }

    /// Whether a line was logged at `level`.
    pub fn logged(&self, level: LogLevel) -> bool {
        self.logs.borrow().iter().any(|(l, _)| *l == level)
    }
}

impl OAuthHost for FakeHost {
    fn secret(&self, key: &str) -> Option<String> {
        self.inner.secret(key)
    }
    fn update_secrets(&self, changes: &[(&str, Option<&str>)]) -> Result<(), String> {
        self.inner.update_secrets(changes)
    }
    fn state(&self, key: &str) -> Option<String> {
        self.inner.state(key)
    }
    fn set_state(&self, key: &str, value: Option<&str>) {
        self.inner.set_state(key, value)
    }
    fn shared_state(&self, key: &str) -> Option<String> {
        self.inner.shared_state(key)
    }
    fn set_shared_state(&self, key: &str, value: Option<&str>) {
        self.inner.set_shared_state(key, value)
    }
    fn lock_credentials(&self) -> Box<dyn HeldLock + '_> {
        self.inner.lock_credentials()
    }
}

impl Logger for FakeHost {
    fn log(&self, level: LogLevel, message: &str) {
        assert!(!message.contains('\n'), "a log line spans lines: {message}");
        for secret in self.inner.secrets.borrow().values() {
            assert!(
                secret.len() < 8 || !message.contains(secret.as_str()),
                "a log line contains a secret: {message}"
            );
        }
        self.logs.borrow_mut().push((level, message.to_owned()));
    }
}

impl Host for FakeHost {
    fn connection(&self) -> Connection {
        self.connection.clone()
    }
}

/// The vendor of the SDK's own tests: every default, worded like a server known only by its
/// endpoint.
#[cfg(test)]
pub(crate) struct AnyServer;

#[cfg(test)]
impl crate::Vendor for AnyServer {
    fn info() -> crate::types::ConnectorInfo {
        crate::types::ConnectorInfo {
            id: "test".to_owned(),
            display_name: "Test server".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Reads what a test server offers.".to_owned(),
            default_endpoint: String::new(),
            outbound_origins: Vec::new(),
            scopes: Vec::new(),
            auth_methods: vec![AuthMethod::Oauth, AuthMethod::ApiKey],
            api_key_headers: None,
        }
    }

    const CLIENT_NAME: &'static str = "claribi-test";
    const CLIENT_TITLE: &'static str = "clariBI test connector";
    const WORDING: crate::Wording = crate::Wording::MCP_SERVER;
}
