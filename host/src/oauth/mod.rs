//! The host's part of OAuth: the connector runs the OAuth client, the host decides what it may do.
//!
//! | file | decides |
//! |---|---|
//! | [`discovery`] | the connection's OAuth URLs, learned only from the endpoint's own metadata |
//! | [`challenge`] | reading a `WWW-Authenticate` challenge |
//! | [`scopes`] | which scopes an authorization may ask for, whether a grant is sufficient, API-key scope headers |
//! | [`redirect`] | receiving the browser's redirect (loopback listener, headless) |

pub mod challenge;
pub mod discovery;
pub mod redirect;
pub mod scopes;
