//! Multi round-trip requests (MCP 2026-07-28, SEP-2322): a server that needs something from the client
//! before it can finish a `tools/call` (or `prompts/get`, `resources/read`) answers with
//! `resultType: "input_required"`, a map of `inputRequests`, and an opaque `requestState`. The client
//! sends the same request again — with a new JSON-RPC id — carrying `inputResponses` (one per request,
//! same keys) and the `requestState` exactly as received (and no `requestState` when none came).
//!
//! clariBI's connectors run with nobody to ask and no model to lend, so the answers are fixed:
//!
//! | input request           | answer                                                     |
//! |-------------------------|------------------------------------------------------------|
//! | `elicitation/create`    | `{"action": "decline"}` — no person can confirm or fill in |
//! | `roots/list`            | `{"roots": []}` — a connector exposes no files              |
//! | anything else (`sampling/createMessage`, …) | the call fails with a one-line error that names the method |
//!
//! A result without `resultType` is complete (servers of earlier drafts), and the rounds are bounded.
//!
//! ```
//! use mcp_client::input_required::{classify, Round};
//! use serde_json::json;
//!
//! let asked = json!({"resultType": "input_required",
//!     "inputRequests": {"confirm": {"method": "elicitation/create", "params": {"message": "Sure?"}}},
//!     "requestState": "opaque-1"});
//! let Round::Retry(retry) = classify(&asked).unwrap() else { panic!() };
//! let params = retry.apply(json!({"name": "t", "arguments": {}}));
//! assert_eq!(params["inputResponses"], json!({"confirm": {"action": "decline"}}));
//! assert_eq!(params["requestState"], "opaque-1");
//!
//! assert!(matches!(classify(&json!({"content": []})).unwrap(), Round::Complete));
//! ```

use crate::error::one_line;
use crate::McpError;
use serde_json::{json, Map, Value};

/// The most rounds of input one request may take before the client gives up.
pub const MAX_ROUNDS: usize = 8;
/// The most input requests answered in one round.
pub const MAX_INPUT_REQUESTS: usize = 64;
/// The longest `requestState` echoed back (it is opaque, but it travels in every retry).
pub const MAX_REQUEST_STATE_BYTES: usize = 256 * 1024;

/// What one result means.
#[derive(Debug, Clone, PartialEq)]
pub enum Round {
    /// The result is final.
    Complete,
    /// Send the request again with these answers.
    Retry(Retry),
}

/// The answers for the next round.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub input_responses: Map<String, Value>,
    pub request_state: Option<String>,
}

impl Retry {
    /// The original `params` with this round's `inputResponses` and `requestState` (replacing any
    /// from an earlier round; `requestState` is removed when the server sent none).
    pub fn apply(&self, params: Value) -> Value {
        let mut params = match params {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        params.insert("inputResponses".to_owned(), Value::Object(self.input_responses.clone()));
        match &self.request_state {
            Some(state) => {
                params.insert("requestState".to_owned(), Value::String(state.clone()));
            }
            None => {
                params.remove("requestState");
            }
        }
        Value::Object(params)
    }
}

/// Reads `resultType` and, for `input_required`, prepares the answers.
pub fn classify(result: &Value) -> Result<Round, McpError> {
    let result_type = match result.get("resultType") {
        None | Some(Value::Null) => return Ok(Round::Complete),
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(McpError::protocol("the result's resultType is not a string")),
    };
    match result_type {
        "complete" => return Ok(Round::Complete),
        "input_required" => {}
        other => {
            return Err(McpError::protocol(format!(
                "the result's resultType `{}` is unknown to this client",
                one_line(other, 40)
            )))
        }
    }
    let request_state = match result.get("requestState") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= MAX_REQUEST_STATE_BYTES => Some(s.clone()),
        Some(Value::String(_)) => {
            return Err(McpError::protocol(format!(
                "the server's requestState is larger than {MAX_REQUEST_STATE_BYTES} bytes"
            )))
        }
        Some(_) => return Err(McpError::protocol("the server's requestState is not a string")),
    };
    let requests = match result.get("inputRequests") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(McpError::protocol("the server's inputRequests is not an object")),
    };
    if requests.is_empty() && request_state.is_none() {
        return Err(McpError::protocol(
            "the server asked for input without inputRequests or requestState",
        ));
    }
    if requests.len() > MAX_INPUT_REQUESTS {
        return Err(McpError::protocol(format!(
            "the server asked for more than {MAX_INPUT_REQUESTS} inputs at once"
        )));
    }
    let mut input_responses = Map::new();
    for (key, request) in requests {
        let method = request.get("method").and_then(Value::as_str).unwrap_or("");
        let answer = match method {
            "elicitation/create" => json!({ "action": "decline" }),
            "roots/list" => json!({ "roots": [] }),
            "" => return Err(McpError::protocol("an input request of the server names no method")),
            other => {
                return Err(McpError::protocol(format!(
                    "the server needs `{}` from the client to go on, which clariBI connectors do not provide \
                     (they decline elicitation and have no roots)",
                    one_line(other, 60)
                )))
            }
        };
        input_responses.insert(key, answer);
    }
    Ok(Round::Retry(Retry { input_responses, request_state }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_without_result_type_is_complete() {
        assert_eq!(classify(&json!({"content": []})).unwrap(), Round::Complete);
        assert_eq!(classify(&json!({"resultType": "complete"})).unwrap(), Round::Complete);
        assert_eq!(classify(&json!({"resultType": null})).unwrap(), Round::Complete);
    }

    #[test]
    fn elicitation_is_declined_and_roots_are_empty_and_state_is_echoed_verbatim() {
        let state = "{\"a\": 1,  \"weird\":\"\\u00e9\"}";
        let Round::Retry(retry) = classify(&json!({"resultType": "input_required",
            "inputRequests": {"e": {"method": "elicitation/create", "params": {}}, "r": {"method": "roots/list"}},
            "requestState": state}))
        .unwrap() else { panic!() };
        assert_eq!(retry.input_responses["e"], json!({"action": "decline"}));
        assert_eq!(retry.input_responses["r"], json!({"roots": []}));
        assert_eq!(retry.request_state.as_deref(), Some(state));
    }

    #[test]
    fn no_state_means_no_request_state_key_even_after_an_earlier_round() {
        let Round::Retry(retry) = classify(&json!({"resultType": "input_required",
            "inputRequests": {"e": {"method": "elicitation/create"}}}))
        .unwrap() else { panic!() };
        let params = retry.apply(json!({"name": "t", "requestState": "old", "inputResponses": {"x": 1}}));
        assert!(params.get("requestState").is_none());
        assert_eq!(params["inputResponses"], json!({"e": {"action": "decline"}}));
        assert_eq!(params["name"], "t");
    }

    #[test]
    fn state_alone_is_a_valid_round() {
        let Round::Retry(retry) = classify(&json!({"resultType": "input_required", "requestState": "s"})).unwrap() else { panic!() };
        assert!(retry.input_responses.is_empty());
        assert_eq!(retry.apply(json!({}))["requestState"], "s");
    }

    #[test]
    fn what_claribi_cannot_answer_fails_with_the_method_named() {
        let err = classify(&json!({"resultType": "input_required",
            "inputRequests": {"s": {"method": "sampling/createMessage"}}}))
        .unwrap_err();
        assert!(err.to_string().contains("sampling/createMessage"), "{err}");
        for bad in [
            json!({"resultType": "input_required"}),
            json!({"resultType": "input_required", "inputRequests": []}),
            json!({"resultType": "input_required", "requestState": 5}),
            json!({"resultType": "input_required", "inputRequests": {"x": {}}}),
            json!({"resultType": "later"}),
            json!({"resultType": 1}),
        ] {
            assert!(classify(&bad).is_err(), "{bad}");
        }
    }
}
