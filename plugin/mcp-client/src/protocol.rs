//! Which MCP revision a session speaks, and how the client finds out.
//!
//! MCP has two eras on the wire:
//!
//! * **Legacy** (2025-03-26, 2025-06-18, 2025-11-25): `initialize` + `notifications/initialized`,
//!   an optional `Mcp-Session-Id`, `MCP-Protocol-Version` on later requests.
//! * **Modern** (2026-07-28, the stateless core): no handshake and no session. Every request carries
//!   `MCP-Protocol-Version`, `Mcp-Method` (and `Mcp-Name` where the method names something), and in
//!   `params._meta` the protocol version, the client's capabilities and its name. `server/discover`
//!   says what a server speaks.
//!
//! A [`ProtocolChoice::Auto`] client opens a session by sending `server/discover` the modern way and
//! reads the answer with [`judge_discover`]:
//!
//! ```
//! use mcp_client::protocol::{judge_discover, Discovery};
//! use mcp_client::McpError;
//! use serde_json::json;
//!
//! // A 2026-07-28 server answers with a DiscoverResult.
//! let modern = json!({"resultType": "complete", "supportedVersions": ["2026-07-28"],
//!     "capabilities": {"tools": {}}, "ttlMs": 0, "cacheScope": "private",
//!     "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "close", "version": "2"}}});
//! assert!(matches!(judge_discover(Ok(modern), false), Discovery::Modern(h) if h.server_info.as_ref().unwrap().name == "close"));
//!
//! // It may first refuse the version it was asked in; the client retries once with one it lists.
//! let refused = McpError::JsonRpc { code: -32022, message: "Unsupported protocol version".into(),
//!     data: Some(json!({"supported": ["2026-07-28"], "requested": "2026-07-28"})) };
//! assert_eq!(judge_discover(Err(refused.clone()), false), Discovery::Retry);
//! assert!(matches!(judge_discover(Err(refused), true), Discovery::Failed(_)));
//!
//! // A 2025 server does not know the method (or the version): fall back to `initialize`.
//! let unknown = McpError::JsonRpc { code: -32601, message: "Method not found".into(), data: None };
//! assert!(matches!(judge_discover(Err(unknown), false), Discovery::Legacy(_)));
//! assert!(matches!(judge_discover(Ok(json!({})), false), Discovery::Legacy(_)));
//!
//! // Credentials and rate limits are not a version question: they stay errors.
//! let unauthorized = McpError::Unauthorized { www_authenticate: None, message: "HTTP 401".into() };
//! assert!(matches!(judge_discover(Err(unauthorized), false), Discovery::Failed(_)));
//! ```

use crate::error::one_line;
use crate::McpError;
use rmcp::model::{Implementation, ServerCapabilities};
use serde_json::{json, Map, Value};

/// The modern revision (stateless core).
pub const MODERN_VERSION: &str = "2026-07-28";
/// The legacy revision offered in `initialize`.
pub const LEGACY_VERSION: &str = "2025-11-25";
/// Legacy revisions accepted in a server's `initialize` answer.
pub const LEGACY_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// Every revision this client speaks, newest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = [MODERN_VERSION, "2025-11-25", "2025-06-18", "2025-03-26"];

/// `_meta` key of the protocol version on every modern request.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of the client's capabilities on every modern request.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of the client's name and version on every modern request.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key of the server's name and version in a `server/discover` result.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// JSON-RPC error code of an unsupported protocol version (`data.supported` lists the server's).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// JSON-RPC error code of a header that disagrees with the body, or a missing version header.
pub const HEADER_MISMATCH: i64 = -32020;

/// The two wire eras.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// `initialize`, sessions: 2025-03-26 to 2025-11-25.
    Legacy,
    /// Stateless, `server/discover`: 2026-07-28.
    Modern,
}

impl Era {
    /// The era of a protocol version this client speaks (`None` for any other).
    pub fn of(version: &str) -> Option<Era> {
        if version == MODERN_VERSION {
            Some(Era::Modern)
        } else if LEGACY_VERSIONS.contains(&version) {
            Some(Era::Legacy)
        } else {
            None
        }
    }
}

/// Which era a client uses (the connection option `protocol_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolChoice {
    /// Probe with `server/discover`; fall back to `initialize` when the server does not speak 2026-07-28.
    #[default]
    Auto,
    /// 2026-07-28 only: a server that does not speak it is an error.
    Modern,
    /// `initialize` only, offering 2025-11-25.
    Legacy,
}

impl ProtocolChoice {
    /// Reads `auto`, a revision (`2026-07-28`, `2025-11-25`, `2025-06-18`, `2025-03-26`), `modern` or `legacy`.
    pub fn parse(value: &str) -> Result<ProtocolChoice, String> {
        let v = value.trim();
        match v.to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(ProtocolChoice::Auto),
            "modern" => Ok(ProtocolChoice::Modern),
            "legacy" => Ok(ProtocolChoice::Legacy),
            _ => match Era::of(v) {
                Some(Era::Modern) => Ok(ProtocolChoice::Modern),
                Some(Era::Legacy) => Ok(ProtocolChoice::Legacy),
                None => Err(format!(
                    "unknown MCP protocol version `{}`; use auto, {}",
                    one_line(v, 40),
                    SUPPORTED_VERSIONS.join(", ")
                )),
            },
        }
    }

    /// Whether a stored session of `version` may be reused under this choice.
    pub fn allows(self, version: &str) -> bool {
        match (self, Era::of(version)) {
            (_, None) => false,
            (ProtocolChoice::Auto, Some(_)) => true,
            (ProtocolChoice::Modern, Some(era)) => era == Era::Modern,
            (ProtocolChoice::Legacy, Some(era)) => era == Era::Legacy,
        }
    }
}

/// What a server said about itself when the session was opened: from `server/discover` (modern) or
/// `initialize` (legacy).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerHello {
    /// The protocol version in use.
    pub protocol_version: String,
    /// The server's name and version (a modern server need not send it).
    pub server_info: Option<Implementation>,
    pub capabilities: ServerCapabilities,
    pub instructions: Option<String>,
}

/// What a `server/discover` answer means.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one value per session opened
pub enum Discovery {
    /// The server speaks 2026-07-28.
    Modern(ServerHello),
    /// It refused the version but lists 2026-07-28: send the request once more.
    Retry,
    /// It does not speak 2026-07-28 (or does not know `server/discover`): use `initialize`. The text says why.
    Legacy(String),
    /// Not a version question (credentials, rate limits, an unreachable server), or no version in common.
    Failed(McpError),
}

/// Reads the outcome of a modern `server/discover` request. `retried` says whether this was already
/// the retry after a [`Discovery::Retry`].
pub fn judge_discover(outcome: Result<Value, McpError>, retried: bool) -> Discovery {
    match outcome {
        Ok(result) => match parse_discover(&result) {
            Some((versions, hello)) => {
                if versions.iter().any(|v| v == MODERN_VERSION) {
                    Discovery::Modern(hello)
                } else if versions.iter().any(|v| Era::of(v) == Some(Era::Legacy)) {
                    Discovery::Legacy("server/discover lists only initialize-era versions".into())
                } else {
                    Discovery::Failed(no_common_version(&versions))
                }
            }
            None => Discovery::Legacy("the answer to server/discover is not a DiscoverResult".into()),
        },
        Err(McpError::JsonRpc { code: UNSUPPORTED_PROTOCOL_VERSION, data, message }) => {
            let supported: Vec<String> = data
                .as_ref()
                .and_then(|d| d.get("supported"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            if supported.iter().any(|v| v == MODERN_VERSION) {
                if retried {
                    Discovery::Failed(McpError::protocol(
                        "the server refused MCP 2026-07-28 twice while listing it as supported",
                    ))
                } else {
                    Discovery::Retry
                }
            } else if supported.is_empty() || supported.iter().any(|v| Era::of(v) == Some(Era::Legacy)) {
                Discovery::Legacy(format!("server/discover: {}", one_line(&message, 120)))
            } else {
                Discovery::Failed(no_common_version(&supported))
            }
        }
        Err(
            e @ (McpError::Unauthorized { .. }
            | McpError::InsufficientScope { .. }
            | McpError::RateLimited { .. }
            | McpError::Unavailable(_)
            | McpError::Denied(_)),
        ) => Discovery::Failed(e),
        Err(McpError::Http { status, message }) if status >= 500 => Discovery::Failed(McpError::Http { status, message }),
        Err(e) => Discovery::Legacy(format!("server/discover: {}", one_line(&e.to_string(), 160))),
    }
}

fn no_common_version(versions: &[String]) -> McpError {
    let listed: Vec<String> = versions.iter().take(8).map(|v| one_line(v, 30)).collect();
    McpError::protocol(format!(
        "the server speaks MCP {}, none of which this client speaks ({})",
        listed.join(", "),
        SUPPORTED_VERSIONS.join(", ")
    ))
}

/// `supportedVersions` and the rest of a DiscoverResult, leniently: `capabilities` may be missing,
/// `serverInfo` may be in `_meta` (the revision's place) or in the body (earlier drafts).
fn parse_discover(result: &Value) -> Option<(Vec<String>, ServerHello)> {
    let object = result.as_object()?;
    let versions: Vec<String> = object
        .get("supportedVersions")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let server_info = object
        .get("_meta")
        .and_then(|m| m.get(META_SERVER_INFO))
        .or_else(|| object.get("serverInfo"))
        .and_then(|v| serde_json::from_value::<Implementation>(v.clone()).ok());
    let capabilities = object
        .get("capabilities")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let instructions = object.get("instructions").and_then(Value::as_str).map(str::to_owned);
    Some((
        versions,
        ServerHello { protocol_version: MODERN_VERSION.to_owned(), server_info, capabilities, instructions },
    ))
}

/// Adds the modern request metadata to `params` (creating it when absent), keeping any other `_meta`
/// keys the caller set.
pub fn with_request_meta(params: Option<Value>, client_info: &Value) -> Value {
    let mut params = match params {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let meta = params.entry("_meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    if let Value::Object(meta) = meta {
        meta.insert(META_PROTOCOL_VERSION.to_owned(), json!(MODERN_VERSION));
        meta.insert(META_CLIENT_CAPABILITIES.to_owned(), json!({}));
        meta.insert(META_CLIENT_INFO.to_owned(), client_info.clone());
    }
    Value::Object(params)
}

/// Whether an error means the server does not (or no longer) accept the session's protocol version:
/// the session is then opened afresh.
pub fn is_version_rejection(e: &McpError) -> bool {
    match e {
        McpError::JsonRpc { code: UNSUPPORTED_PROTOCOL_VERSION, .. } => true,
        McpError::JsonRpc { code: HEADER_MISMATCH, message, .. } => message.to_ascii_lowercase().contains("version"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(code: i64, data: Option<Value>) -> McpError {
        McpError::JsonRpc { code, message: "x".into(), data }
    }

    #[test]
    fn protocol_choices_parse_from_the_connection_option() {
        let table = [
            ("", Ok(ProtocolChoice::Auto)),
            ("auto", Ok(ProtocolChoice::Auto)),
            ("AUTO", Ok(ProtocolChoice::Auto)),
            ("2026-07-28", Ok(ProtocolChoice::Modern)),
            ("modern", Ok(ProtocolChoice::Modern)),
            ("2025-11-25", Ok(ProtocolChoice::Legacy)),
            ("2025-06-18", Ok(ProtocolChoice::Legacy)),
            (" 2025-03-26 ", Ok(ProtocolChoice::Legacy)),
            ("legacy", Ok(ProtocolChoice::Legacy)),
        ];
        for (input, want) in table {
            assert_eq!(ProtocolChoice::parse(input), want, "{input:?}");
        }
        let err = ProtocolChoice::parse("2024-11-05").unwrap_err();
        assert!(err.contains("use auto, 2026-07-28"), "{err}");
    }

    #[test]
    fn a_stored_session_is_reused_only_in_the_chosen_era() {
        assert!(ProtocolChoice::Auto.allows("2026-07-28"));
        assert!(ProtocolChoice::Auto.allows("2025-03-26"));
        assert!(!ProtocolChoice::Auto.allows("2024-11-05"));
        assert!(ProtocolChoice::Modern.allows("2026-07-28"));
        assert!(!ProtocolChoice::Modern.allows("2025-11-25"));
        assert!(ProtocolChoice::Legacy.allows("2025-06-18"));
        assert!(!ProtocolChoice::Legacy.allows("2026-07-28"));
    }

    #[test]
    fn discover_answers_decide_the_era() {
        let modern_in_body = json!({"supportedVersions": ["2025-11-25", "2026-07-28"], "serverInfo": {"name": "s", "version": "1"}});
        match judge_discover(Ok(modern_in_body), false) {
            Discovery::Modern(hello) => {
                assert_eq!(hello.server_info.unwrap().name, "s");
                assert_eq!(hello.protocol_version, "2026-07-28");
            }
            other => panic!("{other:?}"),
        }
        let legacy_only = json!({"supportedVersions": ["2025-11-25"]});
        assert!(matches!(judge_discover(Ok(legacy_only), false), Discovery::Legacy(_)));
        let future_only = json!({"supportedVersions": ["2030-01-01"]});
        assert!(matches!(judge_discover(Ok(future_only), false), Discovery::Failed(McpError::Protocol(m)) if m.contains("2030-01-01")));
        // What 2025 servers answer (observed on the conformance suite's mocks and rmcp).
        for e in [
            rpc(-32601, None),
            rpc(-32000, None),
            rpc(-32600, None),
            rpc(-32602, None),
            McpError::Http { status: 400, message: "Bad Request".into() },
            McpError::Http { status: 404, message: "Not Found".into() },
            McpError::Http { status: 405, message: "Method Not Allowed".into() },
            McpError::protocol("unexpected content type `text/html` in the answer to server/discover"),
        ] {
            assert!(matches!(judge_discover(Err(e.clone()), false), Discovery::Legacy(_)), "{e:?}");
        }
        assert!(matches!(judge_discover(Ok(json!({})), false), Discovery::Legacy(_)));
        assert!(matches!(judge_discover(Ok(json!("x")), false), Discovery::Legacy(_)));
        // -32022 lists what the server speaks.
        let legacy_32022 = rpc(-32022, Some(json!({"supported": ["2025-11-25"], "requested": "2026-07-28"})));
        assert!(matches!(judge_discover(Err(legacy_32022), false), Discovery::Legacy(_)));
        let future_32022 = rpc(-32022, Some(json!({"supported": ["2031-01-01"]})));
        assert!(matches!(judge_discover(Err(future_32022), false), Discovery::Failed(_)));
        // Not version questions.
        for e in [
            McpError::RateLimited { retry_after_ms: None, limit: None, message: "x".into() },
            McpError::Unavailable("down".into()),
            McpError::Denied("policy".into()),
            McpError::Http { status: 502, message: "Bad Gateway".into() },
        ] {
            assert!(matches!(judge_discover(Err(e.clone()), false), Discovery::Failed(_)), "{e:?}");
        }
    }

    #[test]
    fn request_meta_is_added_and_other_meta_keys_survive() {
        let info = json!({"name": "c", "version": "1"});
        let params = with_request_meta(Some(json!({"name": "t", "_meta": {"progressToken": 7}})), &info);
        assert_eq!(params["name"], "t");
        assert_eq!(params["_meta"]["progressToken"], 7);
        assert_eq!(params["_meta"][META_PROTOCOL_VERSION], "2026-07-28");
        assert_eq!(params["_meta"][META_CLIENT_CAPABILITIES], json!({}));
        assert_eq!(params["_meta"][META_CLIENT_INFO], info);
        let bare = with_request_meta(None, &info);
        assert_eq!(bare["_meta"][META_PROTOCOL_VERSION], "2026-07-28");
        let odd = with_request_meta(Some(json!({"_meta": 3})), &info);
        assert_eq!(odd["_meta"][META_PROTOCOL_VERSION], "2026-07-28");
    }

    #[test]
    fn version_rejections_are_recognised() {
        assert!(is_version_rejection(&rpc(-32022, None)));
        assert!(is_version_rejection(&McpError::JsonRpc { code: -32020, message: "Missing MCP-Protocol-Version header".into(), data: None }));
        assert!(!is_version_rejection(&McpError::JsonRpc { code: -32020, message: "Mcp-Name header does not match".into(), data: None }));
        assert!(!is_version_rejection(&rpc(-32601, None)));
    }
}
