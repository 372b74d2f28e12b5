//! The host's part of OAuth: the connector runs the OAuth client, the host decides what it may do.
//!
//! | file | decides |
//! |---|---|
//! | [`discovery`] | the connection's OAuth URLs, learned only from the endpoint's own metadata |
//! | [`challenge`] | reading a `WWW-Authenticate` challenge |
//! | [`scopes`] | which scopes an authorization may ask for, whether a grant is sufficient, API-key scope headers |
//! | [`registration`] | whether a connector's client registration names only the host's redirect URI, allowed scopes and grants |
//! | [`redirect`] | receiving the browser's redirect (loopback listener, headless) |

pub mod challenge;
pub mod discovery;
pub mod redirect;
pub mod registration;
pub mod scopes;
