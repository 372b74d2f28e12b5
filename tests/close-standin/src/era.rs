//! The two MCP protocol eras on `/mcp`, and [`ProtocolMode`], the switch that picks which the
//! stand-in speaks.
//!
//! **The 2025 era** (revisions 2025-03-26, 2025-06-18, 2025-11-25): `initialize`, then
//! `notifications/initialized`, then requests carrying `Mcp-Session-Id` (with sessions on) and
//! `MCP-Protocol-Version`. This is what Close's hosted server speaks today (`close-mcp.md` §3), and the
//! stand-in serves it as it always did.
//!
//! **The 2026-07-28 era** (stateless, SEP-2575/2567/2243/2549/2322): no handshake and no session. Every
//! request carries in `params._meta` the keys `io.modelcontextprotocol/protocolVersion` (required),
//! `io.modelcontextprotocol/clientCapabilities` (required, may be `{}`) and
//! `io.modelcontextprotocol/clientInfo` (optional), and the headers `MCP-Protocol-Version`,
//! `Mcp-Method` and, for `tools/call`, `Mcp-Name`. Whether and when Close moves to this revision is
//! unknown; the stand-in follows the specification as the official conformance suite (0.2.0-alpha.12)
//! checks it. What answers what:
//!
//! | request | answer |
//! |---|---|
//! | `server/discover` with valid `_meta` | `supportedVersions`, `capabilities`, `instructions`, `_meta["io.modelcontextprotocol/serverInfo"]`, `ttlMs` = [`Switches::list_ttl_ms`](crate::Switches::list_ttl_ms), `cacheScope: "private"`, `resultType: "complete"` |
//! | `_meta` without `protocolVersion` or `clientCapabilities` (a 2026 header, or `server/discover`) | HTTP 400, -32602 |
//! | `_meta` version without the header, or header ≠ `_meta` version | HTTP 400, -32020 (HeaderMismatch) |
//! | `Mcp-Method` missing or ≠ the body's method; `Mcp-Name` missing or ≠ `params.name` (`tools/call`) | HTTP 400, -32020 |
//! | a version the server does not speak (e.g. `v999.0.0` in header and `_meta`) | HTTP 400, -32022, `data.supported`, `data.requested` |
//! | `tools/list` | the grant's tools, `ttlMs` (switch), `cacheScope: "private"`, `resultType: "complete"` |
//! | `tools/call` | the tool's result with `resultType: "complete"`, or `"input_required"` (switch [`Switches::input_required_tool`](crate::Switches::input_required_tool)) |
//! | `initialize`, `ping`, `logging/setLevel`, an unknown method, sent as 2026 requests | HTTP 404, -32601 |
//!
//! Most of this is rmcp 3.11's (its Streamable HTTP service routes a request to the stateless path
//! when it is of the new era, validates the headers and `_meta`, and maps the error codes to HTTP
//! statuses); the stand-in adds the TTL, the counters, `logging/setLevel` refused at 2026, the
//! `input_required` switch, and the mode switch below, which rmcp has no run-time form of.
//!
//! Both response modes work in both eras: in SSE mode a 2026 request gets a `text/event-stream`
//! answer (progress notifications before the result; `notifications/message` only when the request's
//! `_meta` has `io.modelcontextprotocol/logLevel`, as the revision demands; never a server→client
//! request, so `server_ping_before_result` applies to 2025 sessions only); in JSON mode a single
//! `application/json` message. JSON-RPC errors that carry an HTTP 4xx status are always
//! `application/json`. Authentication is unchanged: every 2026 request must carry the API key or
//! the bearer token (there is no session to remember it), and a request without gets Close's 401
//! challenge before any of this. `server/discover` passes a token without `mcp.read`, like
//! `initialize` (it is the new era's handshake).
//!
//! # [`ProtocolMode`]
//!
//! * [`ProtocolMode::Dual`] (default): both eras on the same URL. A 2025 client sees exactly what it
//!   saw before this switch existed (no `ttlMs`, no `resultType`); `data.supported` of a -32022 lists
//!   `2025-03-26`, `2025-06-18`, `2025-11-25` and `2026-07-28`.
//! * [`ProtocolMode::Only2026`]: a server that has moved on. A POST of the 2025 era is answered HTTP
//!   400 with `{"code": -32022, "message": "Unsupported protocol version", "data": {"supported":
//!   ["2026-07-28"], "requested": R}}`, where R is `params.protocolVersion` for `initialize`, else the
//!   `MCP-Protocol-Version` header, else `2025-03-26` (the version a server must assume when the
//!   header is absent); the error carries the request's id (`null` for a notification). A POST is of
//!   the 2025 era when it is not `server/discover`, carries no `io.modelcontextprotocol/*` key in
//!   `_meta` and no `MCP-Protocol-Version` of 2026-07-28 or later. (An `initialize` sent with the
//!   2026 header or `_meta`, as the conformance suite probes, is a 2026 request for a method that
//!   revision removed: 404 -32601, in every mode.) GET and DELETE, the session era's stream and
//!   session end, are answered 405 with `Allow: POST`, as an rmcp server without sessions answers
//!   them. How a real 2026-only server refuses the old era is a guess: -32022 is the code the revision
//!   defines for a version the server does not speak; the conformance suite's stateless mock answers
//!   -32020 ("missing MCP-Protocol-Version header") instead.
//! * [`ProtocolMode::Only2025`]: a server that predates 2026-07-28. `server/discover` is answered
//!   HTTP 200 with `{"code": -32601, "message": "Method not found"}` and the request's id, in the
//!   response mode (JSON, or one SSE event), as JSON-RPC answers a method the server does not know.
//!   Also a guess: real 2025 servers answer a discover probe in other ways too (the conformance
//!   suite's mocks: HTTP 400 -32000 with `id: null` from the TypeScript SDK's version check, 400
//!   "missing session ID", or an empty `{}` result; `conformance-2026-07-28.md` §5.4), so a client's
//!   fallback must not rely on this one shape alone. Any other request of the 2026 era is left to
//!   rmcp, which, with only the 2025 versions supported, answers HTTP 400 -32022 with
//!   `data.supported` = the three 2025 versions.
//!
//! Every refusal here is counted in
//! [`CountersSnapshot::era_refusals`](crate::CountersSnapshot::era_refusals); every 2026 request in
//! [`CountersSnapshot::requests_2026`](crate::CountersSnapshot::requests_2026).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use rmcp::model::ProtocolVersion;
use serde_json::{json, Value};

pub use crate::switches::ProtocolMode;
use crate::switches::{Counters, ResponseMode, Switches};

/// The stateless revision.
pub const V_2026_07_28: &str = "2026-07-28";
/// The 2025 revisions the stand-in speaks (with `initialize`).
pub const VERSIONS_2025: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
/// The version a server assumes when a request has no `MCP-Protocol-Version` header.
pub const VERSION_WITHOUT_HEADER: &str = "2025-03-26";
/// `_meta` key: the request's protocol version (2026-07-28, required).
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key: the client's capabilities (2026-07-28, required).
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key: the client's name and version (2026-07-28, optional).
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key of a discover result: the server's name and version.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key: the log level the client wants `notifications/message` at (2026-07-28).
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// Largest POST body the gate reads (rmcp's own limit, answered the same way).
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The versions served in `mode`, oldest first.
pub fn supported_versions(mode: ProtocolMode) -> Vec<ProtocolVersion> {
    let legacy = [
        ProtocolVersion::V_2025_03_26,
        ProtocolVersion::V_2025_06_18,
        ProtocolVersion::V_2025_11_25,
    ];
    match mode {
        ProtocolMode::Dual => legacy
            .into_iter()
            .chain([ProtocolVersion::V_2026_07_28])
            .collect(),
        ProtocolMode::Only2026 => vec![ProtocolVersion::V_2026_07_28],
        ProtocolMode::Only2025 => legacy.to_vec(),
    }
}

/// Is this version string of the 2026-07-28 era or later? (ISO dates compare lexically; like rmcp,
/// anything that sorts after `2026-07-28`, `v999.0.0` included, counts as newer.)
pub fn is_2026_or_later(version: &str) -> bool {
    version >= V_2026_07_28
}

/// The era of one POSTed JSON-RPC message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Era {
    /// The initialize/session era (2025 revisions and older).
    Legacy,
    /// The 2026-07-28 stateless era.
    Stateless,
}

/// What a POST body and its headers say about the protocol era.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Incoming {
    /// A single JSON object with a string `method`, or a response (no batch, no parse error).
    single: bool,
    method: Option<String>,
    /// The id of a request (absent or `null`: a notification or not a request).
    id: Option<Value>,
    header_version: Option<String>,
    meta_version: Option<String>,
    /// `_meta` has one of the `io.modelcontextprotocol/*` request keys.
    has_2026_meta: bool,
    /// `params.protocolVersion` of an `initialize`.
    initialize_version: Option<String>,
}

impl Incoming {
    pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Incoming {
        let header_version = headers
            .get("mcp-protocol-version")
            .map(|v| crate::catalog::truncate(&String::from_utf8_lossy(v.as_bytes()), 100));
        let mut incoming = Incoming {
            header_version,
            ..Incoming::default()
        };
        let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(body) else {
            return incoming;
        };
        incoming.single = true;
        incoming.method = message
            .get("method")
            .and_then(Value::as_str)
            .map(|m| crate::catalog::truncate(m, 100));
        incoming.id = message.get("id").filter(|id| !id.is_null()).cloned();
        let params = message.get("params");
        if let Some(meta) = params
            .and_then(|p| p.get("_meta"))
            .and_then(Value::as_object)
        {
            incoming.has_2026_meta = [
                META_PROTOCOL_VERSION,
                META_CLIENT_CAPABILITIES,
                META_CLIENT_INFO,
            ]
            .iter()
            .any(|k| meta.contains_key(*k));
            incoming.meta_version = meta
                .get(META_PROTOCOL_VERSION)
                .and_then(Value::as_str)
                .map(|v| crate::catalog::truncate(v, 100));
        }
        if incoming.method.as_deref() == Some("initialize") {
            incoming.initialize_version = params
                .and_then(|p| p.get("protocolVersion"))
                .and_then(Value::as_str)
                .map(|v| crate::catalog::truncate(v, 100));
        }
        incoming
    }

    /// A JSON-RPC request (a method and an id)?
    pub(crate) fn is_request(&self) -> bool {
        self.method.is_some() && self.id.is_some()
    }

    pub(crate) fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// The era, or `None` for a body that is not one JSON object (rmcp answers those).
    pub(crate) fn era(&self) -> Option<Era> {
        if !self.single {
            return None;
        }
        let signals_2026 = self.has_2026_meta
            || self.meta_version.is_some()
            || self.header_version.as_deref().is_some_and(is_2026_or_later);
        Some(match self.method.as_deref() {
            Some("server/discover") => Era::Stateless,
            // An `initialize` sent as a 2026 request (the conformance suite's probe) is a 2026 request
            // for a method that revision removed: rmcp answers it 404 -32601.
            _ if signals_2026 => Era::Stateless,
            _ => Era::Legacy,
        })
    }

    /// The version a 2025-era request asks for (what `data.requested` reports).
    fn requested_version(&self) -> String {
        self.initialize_version
            .clone()
            .or_else(|| self.header_version.clone())
            .unwrap_or_else(|| VERSION_WITHOUT_HEADER.to_string())
    }
}

/// One JSON-RPC error message, on one line (`jsonrpc`, `id`, `error` in rmcp's order).
fn error_message(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> String {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{error}}}"#,
        id.cloned().unwrap_or(Value::Null)
    )
}

fn json_error(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// HTTP 400, -32022, as a 2026-07-28-only server answers the initialize era.
fn unsupported_version(incoming: &Incoming) -> Response {
    json_error(
        StatusCode::BAD_REQUEST,
        error_message(
            incoming.id.as_ref(),
            -32022,
            "Unsupported protocol version",
            Some(json!({"supported": [V_2026_07_28], "requested": incoming.requested_version()})),
        ),
    )
}

/// HTTP 200, -32601, in the response mode, as a 2025 server answers `server/discover`.
fn method_not_found(incoming: &Incoming, mode: ResponseMode) -> Response {
    let body = error_message(incoming.id.as_ref(), -32601, "Method not found", None);
    match mode {
        ResponseMode::Json => json_error(StatusCode::OK, body),
        ResponseMode::Sse => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            format!("event: message\ndata: {body}\n\n"),
        )
            .into_response(),
    }
}

fn method_not_allowed() -> Response {
    let mut response = (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// Applies [`Switches::protocol`] to one `/mcp` request (after authentication and the faults'
/// early answers): `Ok` with the request rebuilt around the body it read, for rmcp, or `Err` with
/// the refusal.
pub(crate) async fn gate(
    req: Request,
    switches: &Switches,
    counters: &Counters,
) -> Result<Request, Response> {
    let mode = switches.protocol;
    if req.method() != Method::POST {
        if mode == ProtocolMode::Only2026 && matches!(*req.method(), Method::GET | Method::DELETE) {
            Counters::bump(&counters.era_refusals);
            return Err(method_not_allowed());
        }
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Payload Too Large: request body exceeds {BODY_LIMIT} bytes"),
            )
                .into_response())
        }
    };
    let incoming = Incoming::parse(&parts.headers, &bytes);
    let era = incoming.era();
    if era == Some(Era::Stateless) && incoming.is_request() {
        Counters::bump(&counters.requests_2026);
    }
    match (mode, era) {
        (ProtocolMode::Only2026, Some(Era::Legacy)) => {
            Counters::bump(&counters.era_refusals);
            return Err(unsupported_version(&incoming));
        }
        (ProtocolMode::Only2025, Some(_))
            if incoming.is_request() && incoming.method() == Some("server/discover") =>
        {
            Counters::bump(&counters.era_refusals);
            return Err(method_not_found(&incoming, switches.response_mode));
        }
        _ => {}
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(header: Option<&str>, body: &str) -> Incoming {
        let mut headers = HeaderMap::new();
        if let Some(h) = header {
            headers.insert("mcp-protocol-version", HeaderValue::from_str(h).unwrap());
        }
        Incoming::parse(&headers, body.as_bytes())
    }

    #[test]
    fn the_era_comes_from_the_method_the_meta_and_the_header() {
        let legacy = [
            (
                None,
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2026-07-28"}}"#,
            ),
            (
                Some("2025-11-25"),
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#,
            ),
            (None, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            (
                Some("2025-11-25"),
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"progressToken":1}}}"#,
            ),
            (
                Some("2025-11-25"),
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            ),
            (None, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
        ];
        for (header, body) in legacy {
            assert_eq!(incoming(header, body).era(), Some(Era::Legacy), "{body}");
        }
        let stateless = [
            (
                None,
                r#"{"jsonrpc":"2.0","id":1,"method":"server/discover"}"#,
            ),
            (
                None,
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{}}}}"#,
            ),
            (
                Some("2025-11-25"),
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            ),
            (
                Some("2026-07-28"),
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            ),
            (
                Some("v999.0.0"),
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            ),
            (
                Some("2026-07-28"),
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
            ),
        ];
        for (header, body) in stateless {
            assert_eq!(incoming(header, body).era(), Some(Era::Stateless), "{body}");
        }
        for body in [
            "",
            "[]",
            "not json",
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
            "7",
        ] {
            assert_eq!(incoming(None, body).era(), None, "{body}");
        }
    }

    #[test]
    fn requested_is_the_initialize_version_then_the_header_then_2025_03_26() {
        let init = incoming(
            Some("2025-06-18"),
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#,
        );
        assert_eq!(init.requested_version(), "2025-11-25");
        let header = incoming(
            Some("2025-06-18"),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        );
        assert_eq!(header.requested_version(), "2025-06-18");
        let bare = incoming(None, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        assert_eq!(bare.requested_version(), "2025-03-26");
    }

    #[test]
    fn hostile_bodies_and_headers_never_panic_and_stay_short() {
        let long = "x".repeat(10_000);
        let bodies = [
            format!(r#"{{"jsonrpc":"2.0","id":{{"a":1}},"method":"{long}","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"{long}"}}}}}}"#),
            r#"{"jsonrpc":"2.0","id":1,"method":7,"params":{"_meta":[]}}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":{"x":1}}}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":"nope"}"#.to_string(),
        ];
        for body in bodies {
            let mut headers = HeaderMap::new();
            headers.insert(
                "mcp-protocol-version",
                HeaderValue::from_bytes(&[0xff, 0xfe, b'2']).unwrap(),
            );
            let parsed = Incoming::parse(&headers, body.as_bytes());
            let _ = parsed.era();
            let refusal = error_message(
                parsed.id.as_ref(),
                -32022,
                "Unsupported protocol version",
                Some(json!({"requested": parsed.requested_version()})),
            );
            assert!(!refusal.contains('\n'));
            assert!(refusal.len() < 400, "{}", refusal.len());
        }
    }
}
