//! The wire: every request a connector sends and every response it reads passes through here.
//!
//! | file | decides |
//! |---|---|
//! | [`outbound`] | the send hook: the checks in order, for every request and response of every connector |
//! | [`outbound::rate`] | the vendor's rate budget taken before an endpoint request goes out, learned from its answers |
//! | [`attach`] | the one place a credential value enters a request: placeholders replaced only where bound |
//! | [`inbound`] | responses rewritten before a connector reads them: token and registration responses |
//! | [`json_members`] | whether a JSON answer names a credential member at its top level, read while it streams |
//! | [`matchers`] | the scanner and the masker of a connection's values, built once per set of values, charged to each call |
//! | [`masker`] | echoes of known credential values replaced by their placeholders while a body streams |
//! | [`scanner`] | the second line: credential values in any encoding, refused in requests, masked in logs |
//! | [`upstream_calls`] | which upstream MCP tools a request body calls (the blocklist on the wire) |
//! | [`addresses`] | which resolved addresses are special (loopback, private, metadata, …) |
//! | [`request_headers`] | headers set (`Accept-Encoding: identity`) or refused (method, path and host overrides) on every request |
//! | [`transport`] | DNS, connecting to checked addresses only, TLS, the response byte cap |

pub mod addresses;
pub mod attach;
pub mod inbound;
pub mod json_members;
pub mod masker;
pub mod matchers;
pub mod outbound;
pub mod request_headers;
pub mod scanner;
pub mod transport;
pub mod upstream_calls;
