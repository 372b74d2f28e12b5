//! What looks for a connection's credential values — the second line's scanner
//! ([`crate::wire::scanner`]) and the echo masker ([`crate::wire::masker`]) — built once per set of
//! values and shared by every call of the connection while that set stays the same.
//!
//! A set of values is named by its placeholders (unique per value, and a value never changes under
//! its placeholder), so a call that knows the same credentials as the last one reuses its matchers;
//! a refresh, a claim or a new credential builds new ones once. Each call charges the size of the
//! matchers it uses to its host memory budget ([`crate::sandbox::limits::CallBudget`]).

use crate::vault::credentials::{Credential, Placeholder};
use crate::wire::masker::Masker;
use crate::wire::scanner::SecondLine;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The scanner and the masker of one set of credential values.
#[derive(Default)]
pub struct Matchers {
    /// The second line (requests).
    pub scan: SecondLine,
    /// The echo masker (responses, and `[redacted]` in what a connector says); `None`: nothing to mask.
    pub echo: Option<Arc<Masker>>,
}

impl Matchers {
    /// Build both for these credentials.
    pub fn build(credentials: &[Credential]) -> Matchers {
        let values = credentials.iter().map(|c| c.value.clone()).collect();
        Matchers { scan: SecondLine::new(values), echo: Masker::new(credentials.iter()).map(Arc::new) }
    }

    /// Heap bytes held (what a call using them is charged).
    pub fn memory_usage(&self) -> usize {
        self.scan.memory_usage() + self.echo.as_ref().map_or(0, |m| m.memory_usage())
    }

    /// `text` with every value replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        self.redact_found(text).unwrap_or_else(|| text.to_string())
    }

    /// [`Self::redact`], or `None` when `text` holds no value.
    pub fn redact_found(&self, text: &str) -> Option<String> {
        self.echo.as_ref().and_then(|m| m.redact_found(text))
    }
}

/// Connections whose matchers are kept (beyond it, the cache starts over).
const MAX_CONNECTIONS: usize = 1024;

/// Per connection: the placeholders of the values, and the matchers built for them.
type Entries = HashMap<String, (Vec<Placeholder>, Arc<Matchers>)>;

/// Matchers kept per connection, for the set of values they were built for.
#[derive(Default)]
pub struct MatcherCache {
    entries: Mutex<Entries>,
}

impl MatcherCache {
    /// The matchers of `connection` for exactly these credentials, built now only if the set changed.
    pub fn get(&self, connection: &str, credentials: &[Credential]) -> Arc<Matchers> {
        let mut key: Vec<Placeholder> = credentials.iter().map(|c| c.placeholder.clone()).collect();
        key.sort();
        if let Some((k, m)) = self.entries.lock().unwrap_or_else(|p| p.into_inner()).get(connection) {
            if *k == key {
                return m.clone();
            }
        }
        // Built outside the lock: other connections are not held up.
        let built = Arc::new(Matchers::build(credentials));
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_CONNECTIONS && !entries.contains_key(connection) {
            entries.clear();
        }
        entries.insert(connection.to_string(), (key, built.clone()));
        built
    }

    /// Forget a connection's matchers (it was disconnected).
    pub fn forget(&self, connection: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(connection);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::credentials::{Binding, Kind};
    use zeroize::Zeroizing;

    fn cred(v: &str) -> Credential {
        Credential::new(Kind::AccessToken, Zeroizing::new(v.into()), Binding::default())
    }

    #[test]
    fn matchers_are_built_once_per_set_of_values() {
        let cache = MatcherCache::default();
        let (a, b) = (cred("value-aaaaaaaa"), cred("value-bbbbbbbb"));
        let first = cache.get("conn_1", &[a.clone(), b.clone()]);
        assert!(Arc::ptr_eq(&first, &cache.get("conn_1", &[b.clone(), a.clone()])), "the same set, in any order: reused");
        let refreshed = cache.get("conn_1", &[a.clone(), cred("value-cccccccc")]);
        assert!(!Arc::ptr_eq(&first, &refreshed), "a new value: built again");
        assert!(!Arc::ptr_eq(&refreshed, &cache.get("conn_2", std::slice::from_ref(&a))), "per connection");
        assert!(refreshed.scan.leaks_into("x value-cccccccc") && !refreshed.scan.leaks_into("x value-bbbbbbbb"));
        assert_eq!(refreshed.redact("a value-aaaaaaaa b"), "a [redacted] b");
        assert!(refreshed.memory_usage() > 0);
        cache.forget("conn_1");
        assert!(!Arc::ptr_eq(&refreshed, &cache.get("conn_1", &[a, cred("value-cccccccc")])));
    }
}
