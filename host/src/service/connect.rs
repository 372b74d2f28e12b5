//! Making, checking, re-authorizing and removing connections.
//!
//! A connection is created *pending*, gets its credentials (an API key sealed by the host, or an
//! OAuth authorization), is checked, and becomes *ready*; on any failure it is deleted with its
//! secrets, so nothing is left behind. Credentials are sealed as credentials (see
//! [`crate::vault::credentials`]): the API key bound to the endpoint URL and the header the connector
//! declared, a pre-registered client's secret bound to the authorization server once it is known.

use super::{random_id, validate_name, HostService, API_KEY_SECRET, CLIENT_SECRET_OPTION, CLIENT_SECRET_SECRET};
use crate::errors::{ConnectorError, HostError};
use crate::oauth::discovery::OAuthState;
use crate::policy::{Grant, Policy, Target};
use crate::sandbox::runtime::LoadedPlugin;
use crate::vault::credentials::{Binding, Credential, Kind};
use crate::vault::store::{AuthMethod, ConnectionRecord, SecretWrite, Status, StoredSecret};
use serde::Serialize;
use zeroize::Zeroizing;

/// How a new connection authenticates.
pub enum Credentials {
    /// An API key.
    ApiKey(Zeroizing<String>),
    /// OAuth through the connector's `begin-authorization`/`complete-authorization`.
    OAuth(OAuthFlow),
    /// No credentials (servers that need none; the connector reports `unauthorized` otherwise).
    None,
}

/// How an OAuth authorization is carried out.
pub struct OAuthFlow {
    /// Browser (print the URL, maybe open it) or headless.
    pub mode: crate::oauth::redirect::Mode,
    /// How long to wait for the user.
    pub timeout: std::time::Duration,
    /// Called with the authorization URL before waiting (the CLI prints it).
    pub on_url: Box<dyn Fn(&str) + Send + Sync>,
}

impl OAuthFlow {
    /// A headless flow (no user involved) with a 30 s limit.
    pub fn headless() -> OAuthFlow {
        OAuthFlow { mode: crate::oauth::redirect::Mode::Headless, timeout: std::time::Duration::from_secs(30), on_url: Box::new(|_| {}) }
    }
}

/// Everything `connect` needs.
pub struct ConnectRequest {
    /// Connection name.
    pub name: String,
    /// The component bytes.
    pub plugin: Vec<u8>,
    /// Vendor endpoint (`None`: the connector's default).
    pub endpoint: Option<String>,
    /// Credentials.
    pub credentials: Credentials,
    /// Scopes (`empty`: the connector's).
    pub scopes: Vec<String>,
    /// `--allow-origin` values: whole origins the operator grants beyond the connection's own URLs.
    pub allow_origins: Option<Vec<String>>,
    /// A policy file's content.
    pub policy: Option<Policy>,
    /// `--option key=value`. A `client_secret` option is not kept among the options: the host seals
    /// it as the connection's secret [`CLIENT_SECRET_SECRET`].
    pub options: Vec<(String, String)>,
}

/// What a connection's secret is and where it may go, for `connect`, `policy` and `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretBinding {
    /// The secret's name.
    pub name: String,
    /// What it is (`own` for a connector's own value, `legacy` for one sealed before 0.2).
    pub kind: String,
    /// Where it may be attached, one line each (empty: nowhere).
    pub goes_to: Vec<String>,
}

/// What `connect` established.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectOutcome {
    /// Connection name.
    pub name: String,
    /// Connector display name.
    pub connector: String,
    /// Endpoint.
    pub endpoint: String,
    /// Account reached.
    pub account: Option<String>,
    /// Scopes granted, as the host read them.
    pub granted_scopes: Vec<String>,
    /// The grant now: one line per rule.
    pub grant: Vec<String>,
    /// What each secret is bound to.
    pub secrets: Vec<SecretBinding>,
    /// Origins the connector asked for that are not granted.
    pub not_granted: Vec<String>,
    /// Warnings (e.g. a grant wider than asked).
    pub warnings: Vec<String>,
}

/// What `disconnect` did.
#[derive(Debug, Clone, Serialize)]
pub struct DisconnectOutcome {
    /// Connection name.
    pub name: String,
    /// Whether the connector's `disconnect` (revocation) succeeded.
    pub revoked: bool,
    /// Why revocation failed, if it did (the credentials are deleted anyway).
    pub warning: Option<String>,
}

/// What an authorization or a check established.
pub(crate) struct Established {
    pub(crate) account: Option<String>,
    pub(crate) granted_scopes: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

impl HostService {
    /// Create a connection: load and pin the component, store the credentials sealed, and check that
    /// they work. On any failure nothing is left behind.
    pub async fn connect(&self, req: ConnectRequest) -> Result<ConnectOutcome, HostError> {
        let record = self.create_pending(&req).await?;
        let plugin = self.plugin_for(&record).await?;
        let result = async {
            let established = match &req.credentials {
                Credentials::ApiKey(key) => {
                    self.seal_api_key(&record, key)?;
                    self.check_account(&record, &plugin).await?
                }
                Credentials::None => self.check_account(&record, &plugin).await?,
                Credentials::OAuth(flow) => {
                    let a = self.authorize_connection(&record, &plugin, flow).await?;
                    Established { account: a.account, granted_scopes: a.granted_scopes, warnings: a.warnings }
                }
            };
            self.finish_connect(&record, &plugin, established)
        }
        .await;
        if result.is_err() {
            if let Err(del) = self.store.delete_connection(&record.id) {
                tracing::warn!("cannot remove the failed connection `{}`: {del}", record.name);
            }
        }
        result
    }

    /// Validate a connect request, pin its component, and insert the connection as pending (its
    /// client secret, if any, sealed). The caller adds the credentials and finishes or deletes it.
    pub(crate) async fn create_pending(&self, req: &ConnectRequest) -> Result<ConnectionRecord, HostError> {
        validate_name(&req.name)?;
        if let Some(existing) = self.store.connection(&req.name).map_err(HostError::Storage)? {
            if existing.status == Status::Pending {
                self.store.delete_connection(&existing.id).map_err(HostError::Storage)?;
            } else {
                return Err(HostError::Usage(format!(
                    "a connection named `{}` already exists; run `claribi-host disconnect {}` first or choose another name",
                    req.name, req.name
                )));
            }
        }
        let plugin = self.runtime.load(&req.plugin).await?;
        let info = &plugin.info;
        let endpoint = req.endpoint.clone().unwrap_or_else(|| info.default_endpoint.clone());
        Target::parse(&endpoint).map_err(|e| HostError::Usage(format!("--endpoint: {e}")))?;
        let method = match req.credentials {
            Credentials::ApiKey(_) | Credentials::None => AuthMethod::ApiKey,
            Credentials::OAuth(_) => AuthMethod::Oauth,
        };
        let wit_method = match method {
            AuthMethod::ApiKey => crate::sandbox::bindings::wit::AuthMethod::ApiKey,
            AuthMethod::Oauth => crate::sandbox::bindings::wit::AuthMethod::Oauth,
        };
        if !info.auth_methods.contains(&wit_method) {
            return Err(HostError::Usage(format!("connector `{}` does not support {} authentication", info.id, method.as_str())));
        }
        let mut policy = req.policy.clone().unwrap_or_default();
        if let Some(origins) = &req.allow_origins {
            policy.grant = Grant::parse_list(origins).map_err(|e| HostError::Usage(format!("--allow-origin: {e}")))?;
        }
        if let Some((_, secret)) = req.options.iter().find(|(k, _)| k.trim() == CLIENT_SECRET_OPTION) {
            crate::vault::credentials::check_value_len(Kind::ClientSecret, secret.trim()).map_err(HostError::Usage)?;
        }
        self.pin(&req.plugin, &plugin.digest)?;
        let record = ConnectionRecord {
            id: random_id("conn"),
            name: req.name.clone(),
            plugin_digest: plugin.digest.clone(),
            connector_id: info.id.clone(),
            connector_name: info.display_name.clone(),
            endpoint,
            auth_method: method,
            // Without --scope, the connector's declared scopes, read-level ones only.
            scopes: if req.scopes.is_empty() {
                info.scopes.iter().filter(|s| crate::oauth::scopes::is_read_level(s)).cloned().collect()
            } else {
                req.scopes.clone()
            },
            options: req.options.iter().filter(|(k, _)| k.trim() != CLIENT_SECRET_OPTION && k.trim() != API_KEY_HEADER_OPTION).cloned().collect(),
            policy,
            oauth: OAuthState::default(),
            api_key_header: api_key_header(&plugin, &req.options)?,
            account: None,
            granted_scopes: vec![],
            warnings: vec![],
            status: Status::Pending,
            last_error: None,
            created_at: 0,
            updated_at: 0,
        };
        self.store.insert_connection(&record).map_err(HostError::Storage)?;
        if let Some((_, secret)) = req.options.iter().find(|(k, _)| k.trim() == CLIENT_SECRET_OPTION) {
            // Bound to nothing until the connection learns its authorization server.
            let c = Credential::new(Kind::ClientSecret, Zeroizing::new(secret.trim().to_string()), Binding::default());
            let sealed = self.store.update_secrets(&self.keys, &record.id, &[(CLIENT_SECRET_SECRET.to_string(), Some(SecretWrite::Credential(c)))]);
            if let Err(e) = sealed {
                let _ = self.store.delete_connection(&record.id);
                return Err(HostError::Storage(e));
            }
        }
        Ok(record)
    }

    /// Keep the component, addressed by its digest: in the shared store (a fleet's replicas load it
    /// from there) and as a file in the data directory.
    fn pin(&self, bytes: &[u8], digest: &str) -> Result<(), HostError> {
        self.store.put_component(digest, bytes).map_err(HostError::Storage)?;
        self.keep_component_file(digest, bytes)
    }

    /// Write a component's file in the data directory, unless it is there already.
    pub(crate) fn keep_component_file(&self, digest: &str, bytes: &[u8]) -> Result<(), HostError> {
        let plugins = self.data_dir.join("plugins");
        crate::sandbox::runtime::create_private_dir(&plugins).map_err(HostError::Storage)?;
        let path = self.plugin_path(digest);
        if !path.exists() {
            let tmp = plugins.join(format!(".{digest}.{}.tmp", std::process::id()));
            crate::sandbox::runtime::write_private(&tmp, bytes)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| HostError::Storage(format!("cannot store the component in {}: {e}", plugins.display())))?;
        }
        Ok(())
    }

    /// Seal an API key for `record`: bound to its endpoint URL and API-key header.
    pub(crate) fn seal_api_key(&self, record: &ConnectionRecord, key: &str) -> Result<(), HostError> {
        crate::vault::credentials::check_value_len(Kind::ApiKey, key.trim()).map_err(HostError::Usage)?;
        let endpoint = Target::parse(&record.endpoint).map_err(HostError::Usage)?;
        let c = Credential::new(Kind::ApiKey, Zeroizing::new(key.trim().to_string()), Binding::api_key(&endpoint, record.api_key_header.as_deref()));
        self.store
            .update_secrets(&self.keys, &record.id, &[(API_KEY_SECRET.to_string(), Some(SecretWrite::Credential(c)))])
            .map_err(HostError::Storage)
    }

    pub(crate) async fn check_account(&self, record: &ConnectionRecord, plugin: &LoadedPlugin) -> Result<Established, HostError> {
        let ran = self
            .run(record, plugin, Default::default(), |b, s| {
                Box::pin(async move { b.claribi_data_source_connector().call_check_connection(s).await })
            })
            .await?;
        let current = self.connection_by_id(&record.id)?;
        let granted = match record.auth_method {
            // What the API key is used with: the scope header the host sets (or the scopes asked for).
            AuthMethod::ApiKey => self.key_headers(record, plugin).scope.map(|(_, s)| s).unwrap_or_else(|| record.scopes.clone()),
            AuthMethod::Oauth => current.granted_scopes.clone(),
        };
        Ok(Established {
            account: ran.value.display_name.as_deref().map(crate::errors::one_line),
            granted_scopes: granted,
            warnings: current.warnings,
        })
    }

    pub(crate) fn finish_connect(&self, record: &ConnectionRecord, plugin: &LoadedPlugin, e: Established) -> Result<ConnectOutcome, HostError> {
        self.store.mark_connected(&record.id, e.account.as_deref(), &e.granted_scopes, &e.warnings).map_err(HostError::Storage)?;
        let current = self.connection_by_id(&record.id)?;
        Ok(ConnectOutcome {
            name: current.name.clone(),
            connector: current.connector_name.clone(),
            endpoint: current.endpoint.clone(),
            account: e.account,
            granted_scopes: e.granted_scopes,
            grant: self.grant_of(&current)?.describe(),
            secrets: self.secret_bindings(&current)?,
            not_granted: self.not_granted(&current, plugin)?,
            warnings: e.warnings,
        })
    }

    /// The rules a connection may reach now (its own URLs and the operator's grant).
    pub fn grant_of(&self, c: &ConnectionRecord) -> Result<Grant, HostError> {
        let endpoint = Target::parse(&c.endpoint).map_err(HostError::Usage)?;
        if !c.policy.connection_urls {
            return Ok(c.policy.grant.clone());
        }
        let mut own = Grant::default();
        own.push(crate::policy::Rule::exact(
            &endpoint,
            &[crate::policy::Method::Get, crate::policy::Method::Post, crate::policy::Method::Delete],
            crate::policy::Reason::Endpoint,
        ));
        if c.auth_method == AuthMethod::Oauth {
            own = own.with(&c.oauth.grant(&endpoint));
        }
        Ok(own.with(&c.policy.grant))
    }

    /// What each secret of a connection is and where it may go.
    pub fn secret_bindings(&self, c: &ConnectionRecord) -> Result<Vec<SecretBinding>, HostError> {
        Ok(self
            .store
            .secret_summaries(&c.id)
            .map_err(HostError::Storage)?
            .into_iter()
            .map(|s| SecretBinding {
                name: s.name,
                kind: if s.legacy { "legacy".into() } else { s.kind.map(|k| k.as_str().to_string()).unwrap_or_else(|| "own".into()) },
                goes_to: s.binding.describe(),
            })
            .collect())
    }

    /// The origins the connector declared that the grant does not cover.
    fn not_granted(&self, c: &ConnectionRecord, plugin: &LoadedPlugin) -> Result<Vec<String>, HostError> {
        let grant = self.grant_of(c)?;
        Ok(plugin
            .info
            .outbound_origins
            .iter()
            .filter(|o| crate::policy::Origin::parse(o).is_ok_and(|o| !grant.covers_origin(&o)))
            .cloned()
            .collect())
    }

    /// Check a connection's credentials again and refresh its account information.
    pub async fn check(&self, name: &str) -> Result<ConnectOutcome, HostError> {
        let c = self.connection(name)?;
        let plugin = self.plugin_for(&c).await?;
        let result = match self.check_account(&c, &plugin).await {
            Ok(e) => self.finish_connect(&c, &plugin, e),
            Err(e) => Err(e),
        };
        self.record_outcome(&c, &result);
        result
    }

    /// Authorize an existing OAuth connection again (after `needs-reconnect` or `insufficient-scope`),
    /// optionally asking for more scopes. The old tokens stay until new ones are stored.
    pub async fn reauthorize(&self, name: &str, flow: &OAuthFlow, extra_scopes: &[String]) -> Result<ConnectOutcome, HostError> {
        let mut c = self.connection(name)?;
        if c.auth_method != AuthMethod::Oauth {
            return Err(HostError::Usage(format!(
                "connection `{name}` uses an API key; give the new one with `claribi-host reconnect {name} --api-key-env VAR`"
            )));
        }
        let before = c.scopes.clone();
        // A connection that let the connector choose its scopes keeps what its grant holds, plus the
        // scopes added now (a step-up asks for the union, never for less).
        if c.scopes.is_empty() && !extra_scopes.is_empty() {
            c.scopes = c.granted_scopes.clone();
        }
        for s in extra_scopes {
            if !c.scopes.contains(s) {
                c.scopes.push(s.clone());
            }
        }
        self.store.set_scopes(&c.id, &c.scopes).map_err(HostError::Storage)?;
        let plugin = self.plugin_for(&c).await?;
        let result = match self.authorize_connection(&c, &plugin, flow).await {
            Ok(a) => self.finish_connect(&c, &plugin, Established { account: a.account, granted_scopes: a.granted_scopes, warnings: a.warnings }),
            Err(e) => {
                // A failed re-authorization changes nothing: the scopes asked for go back to what the
                // working grant had (its tokens were never touched).
                if let Err(r) = self.store.set_scopes(&c.id, &before) {
                    tracing::warn!("cannot restore connection `{name}` after a failed reconnect: {r}");
                }
                Err(e)
            }
        };
        self.record_outcome(&c, &result);
        result
    }

    /// Give an API-key connection a new key (after `needs-reconnect`). The new key is checked first;
    /// if the check fails the old key is put back, so nothing is lost.
    pub async fn rekey(&self, name: &str, key: Zeroizing<String>) -> Result<ConnectOutcome, HostError> {
        let c = self.connection(name)?;
        if c.auth_method != AuthMethod::ApiKey {
            return Err(HostError::Usage(format!("connection `{name}` uses OAuth; run `claribi-host reconnect {name}` without --api-key-env")));
        }
        let old = self.store.secret(&self.keys, &c.id, API_KEY_SECRET).map_err(HostError::Storage)?;
        self.seal_api_key(&c, &key)?;
        let plugin = self.plugin_for(&c).await?;
        let result = match self.check_account(&c, &plugin).await {
            Ok(e) => self.finish_connect(&c, &plugin, e),
            Err(e) => {
                let restore = match old {
                    Some(StoredSecret::Credential(k)) => Some(SecretWrite::Credential(k)),
                    Some(StoredSecret::Own(v)) | Some(StoredSecret::Legacy(v)) => Some(SecretWrite::Own(v.to_string())),
                    None => None,
                };
                self.store.update_secrets(&self.keys, &c.id, &[(API_KEY_SECRET.to_string(), restore)]).map_err(HostError::Storage)?;
                Err(e)
            }
        };
        self.record_outcome(&c, &result);
        result
    }

    /// Move a connection to another build of its connector (one for this host's
    /// `claribi:data-source` version). An API key sealed by an older host is kept (bound now to the
    /// endpoint and the new build's key header); OAuth tokens sealed by an older host are dropped and
    /// the connection is authorized again with `flow`.
    pub async fn upgrade(&self, name: &str, plugin_bytes: &[u8], flow: Option<&OAuthFlow>) -> Result<ConnectOutcome, HostError> {
        let c = self.connection(name)?;
        let plugin = self.runtime.load(plugin_bytes).await?;
        if plugin.info.id != c.connector_id {
            return Err(HostError::Usage(format!(
                "connection `{name}` runs the `{}` connector; the component given is `{}`. Give a build of `{}`",
                c.connector_id, plugin.info.id, c.connector_id
            )));
        }
        self.pin(plugin_bytes, &plugin.digest)?;
        let header = api_key_header(&plugin, &[])?.or(c.api_key_header.clone());
        self.store.set_plugin(&c.id, &plugin.digest, header.as_deref()).map_err(HostError::Storage)?;
        let c = self.connection(name)?;
        let mut changes = Vec::new();
        for (n, s) in self.store.secrets(&self.keys, &c.id).map_err(HostError::Storage)? {
            if let StoredSecret::Legacy(v) = s {
                let keep = n == API_KEY_SECRET && c.auth_method == AuthMethod::ApiKey;
                let endpoint = Target::parse(&c.endpoint).map_err(HostError::Usage)?;
                changes.push((
                    n,
                    keep.then(|| SecretWrite::Credential(Credential::new(Kind::ApiKey, v, Binding::api_key(&endpoint, c.api_key_header.as_deref())))),
                ));
            }
        }
        self.store.update_secrets(&self.keys, &c.id, &changes).map_err(HostError::Storage)?;
        match c.auth_method {
            AuthMethod::ApiKey => self.check(name).await,
            AuthMethod::Oauth => match flow {
                Some(flow) => self.reauthorize(name, flow, &[]).await,
                None => Err(HostError::Usage(format!("connection `{name}` now runs the new build; authorize it again with `claribi-host reconnect {name}`"))),
            },
        }
    }

    /// Remove a connection: ask the connector to revoke its tokens, then delete its secrets and state
    /// whatever the connector said.
    pub async fn disconnect(&self, name: &str) -> Result<DisconnectOutcome, HostError> {
        let c = self.connection(name)?;
        let revoke = match self.plugin_for(&c).await {
            Ok(plugin) => self
                .run(&c, &plugin, Default::default(), |b, s| Box::pin(async move { b.claribi_data_source_connector().call_disconnect(s).await }))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        self.store.delete_connection(&c.id).map_err(HostError::Storage)?;
        self.matchers.forget(&c.id);
        Ok(DisconnectOutcome { name: c.name, revoked: revoke.is_ok(), warning: revoke.err().map(|e| e.to_string()) })
    }

    /// Replace a connection's policy (the operator may narrow it below what the endpoint needs; calls
    /// then fail with a policy denial).
    pub fn set_policy(&self, name: &str, policy: &Policy) -> Result<(), HostError> {
        let c = self.connection(name)?;
        self.store.set_policy(&c.id, policy).map_err(HostError::Storage)
    }
}

/// The option the generic MCP connector used to name its API-key header (before 0.2 the host did
/// not know it): read as `--api-key-header`.
pub const API_KEY_HEADER_OPTION: &str = "api_key_header";

/// The header an API key of a new connection is bound to: the operator's option, else the
/// connector's declared header, else `Authorization: Bearer` (`None`).
fn api_key_header(plugin: &LoadedPlugin, options: &[(String, String)]) -> Result<Option<String>, HostError> {
    let chosen = options
        .iter()
        .find(|(k, _)| k.trim() == API_KEY_HEADER_OPTION)
        .map(|(_, v)| v.trim().to_string())
        .or_else(|| plugin.info.api_key_headers.as_ref().map(|h| h.key.clone()));
    key_header_name(chosen)
}

/// Check the header an API key would travel in (`None`: `Authorization: Bearer`).
fn key_header_name(chosen: Option<String>) -> Result<Option<String>, HostError> {
    let Some(name) = chosen.map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()) else { return Ok(None) };
    if name == "authorization" {
        return Ok(None);
    }
    let token = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    // Headers a server logs or hands to others (cookies, analytics, proxies) never carry the key.
    let reserved = [
        "accept", "content-type", "content-length", "host", "mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name", "last-event-id",
        "cookie", "user-agent", "referer", "origin", "forwarded", "via", "accept-encoding", "range", "te",
    ];
    let overriding = crate::wire::request_headers::is_overriding(&name);
    if !token || name.len() > 100 || reserved.contains(&name.as_str()) || overriding || name.starts_with("mcp-param-") {
        return Err(HostError::Usage(format!(
            "`{}` is not a header an API key can be bound to; choose another (--option {API_KEY_HEADER_OPTION}=NAME)",
            crate::errors::one_line(&name)
        )));
    }
    Ok(Some(name))
}

impl From<crate::service::authorization::Authorized> for Established {
    fn from(a: crate::service::authorization::Authorized) -> Self {
        Established { account: a.account, granted_scopes: a.granted_scopes, warnings: a.warnings }
    }
}

#[allow(dead_code)]
fn _insufficient(e: &HostError) -> bool {
    matches!(e, HostError::Connector(ConnectorError::InsufficientScope { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review 9, L4: the key never travels in a header a server logs, hands to analytics or proxies,
    /// or reads as a routing override.
    #[test]
    fn an_api_key_is_bound_only_to_a_header_of_its_own() {
        for (name, ok) in [
            ("Close-API-Key", true),
            ("x-api-key", true),
            ("authorization", true),
            ("cookie", false),
            ("user-agent", false),
            ("referer", false),
            ("x-forwarded-for", false),
            ("x-http-method-override", false),
            ("mcp-session-id", false),
            ("bad header", false),
        ] {
            assert_eq!(key_header_name(Some(name.into())).is_ok(), ok, "{name}");
        }
        assert_eq!(key_header_name(Some("authorization".into())).unwrap(), None, "Bearer");
    }
}
