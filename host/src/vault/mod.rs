//! The vault: what the host keeps, and how secrets are kept.
//!
//! | file | decides |
//! |---|---|
//! | [`store`] | the database: connections, state, sealed secrets |
//! | [`sealing`] | secrets at rest: the master key, AEAD sealing, rotation |
//! | [`call_credentials`] | the credentials one call may use: stored, and minted during the call |
//! | [`credentials`] | credentials a connector never holds: kinds, placeholders, bindings |
//! | [`locks`] | the per-connection credential lock and the key-use lock |

pub mod call_credentials;
pub mod credentials;
pub mod locks;
pub mod sealing;
pub mod store;
