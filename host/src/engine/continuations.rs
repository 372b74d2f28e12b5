//! Where `serve` keeps the rows of shortened results for `claribi__next_rows`: in the store, sealed
//! under the master key ([`crate::vault::store`]), so that the engine's next request may reach any
//! replica on the same store and a restarted replica still continues what it started. A row is kept
//! under the SHA-256 of the engine's name and the cursor (also the sealing's associated data), so only
//! the engine that received the cursor can continue it; the rows' provenance (connection, tool,
//! connector) is kept beside them in clear, since `serve` marks the page with it before reading the
//! rows, and a connection's rows are deleted with it.

use crate::engine::results::RowStore;
use crate::vault::sealing::{MasterKeys, Sealed};
use crate::vault::store::{SealedRows, Store};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The associated-data name continuations are sealed under (no connection has it as an id).
const SEALED_AS: &str = "claribi:continuation";

/// [`RowStore`] over the store.
pub struct StoredRows {
    pub store: Arc<Store>,
    pub keys: Arc<MasterKeys>,
}

fn digest(cursor: &str) -> String {
    hex::encode(Sha256::digest(cursor.as_bytes()))
}

impl RowStore for StoredRows {
    fn put(&self, cursor: &str, expires_at_ms: i64, connection: &str, source: &str, rows: &[u8]) -> Result<(), String> {
        let key = digest(cursor);
        let sealed = self.keys.seal(SEALED_AS, &key, rows)?;
        let now = Store::now_ms();
        let rows = SealedRows { key_id: sealed.key_id, nonce: sealed.nonce, ciphertext: sealed.ciphertext };
        self.store.put_continuation(&key, expires_at_ms, now, connection, source, &rows)
    }

    fn take(&self, cursor: &str, now_ms: i64) -> Result<Option<Vec<u8>>, String> {
        let key = digest(cursor);
        let Some(row) = self.store.take_continuation(&key, now_ms)? else { return Ok(None) };
        let sealed = Sealed { key_id: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext };
        // A key retired by a rotation no longer opens it: the cursor reads as expired.
        Ok(self.keys.open(SEALED_AS, &key, &sealed).ok().map(|plain| plain.to_vec()))
    }

    fn source(&self, cursor: &str, now_ms: i64) -> Result<Option<String>, String> {
        self.store.continuation_source(&digest(cursor), now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::results::Continuations;
    use serde_json::json;

    #[test]
    fn a_result_shortened_by_one_server_is_continued_by_another_on_the_same_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let keys = Arc::new(MasterKeys::generate());
        let rows = |s: &Arc<Store>| Continuations::shared(Arc::new(StoredRows { store: s.clone(), keys: keys.clone() }));
        let (a, b) = (rows(&store), rows(&store));
        let list: Vec<_> = (0..200).map(|i| json!({"id": format!("lead_{i}"), "name": "x".repeat(20)})).collect();
        let first = a.shape_from(json!({"data": list}), 2_000, json!({"tool": "find"}));
        let cursor = first.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().unwrap().to_string();
        assert_eq!(b.source_of(&cursor), Some(json!({"tool": "find"})));
        let mut got: Vec<_> = first.structured["data"].as_array().unwrap().clone();
        let mut next = Some(cursor.clone());
        let mut turn = 0;
        while let Some(c) = next {
            let page = if turn % 2 == 0 { b.next(&c, 2_000) } else { a.next(&c, 2_000) }.expect("either continues");
            turn += 1;
            got.extend(page.structured["data"].as_array().unwrap().iter().cloned());
            next = page.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().map(str::to_string);
        }
        assert_eq!(got, list, "every row, in order, alternating between the two");
        assert!(a.next(&cursor, 2_000).is_none(), "a cursor works once");
        // A cursor made for one engine is unknown to another.
        let owned = a.shape_for("engine-a", json!({"data": list.clone()}), 2_000, json!({"connection": "close"}));
        let mine = owned.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().unwrap().to_string();
        assert!(b.source_for("engine-b", &mine).is_none() && b.next_for("engine-b", &mine, 2_000).is_none(), "another engine's cursor");
        assert!(b.next_for("engine-a", &mine, 2_000).is_some(), "its own engine continues it on any replica");
        // Disconnecting deletes a connection's rows.
        let again = a.shape_for("engine-a", json!({"data": list.clone()}), 2_000, json!({"connection": "close"}));
        let pending = again.structured["claribi"]["continue"]["arguments"]["cursor"].as_str().unwrap().to_string();
        store.insert_connection(&crate::vault::store::tests_support::record("close")).unwrap();
        store.delete_connection("conn_close").unwrap();
        assert!(b.next_for("engine-a", &pending, 2_000).is_none(), "deleted with its connection");
        // Nothing in the store holds a row in clear.
        let other = rows(&store);
        let again = other.shape_from(json!({"data": (0..50).map(|i| json!({"secret_note": format!("note-{i}-{}", "y".repeat(40))})).collect::<Vec<_>>()}), 1_500, json!(null));
        assert!(again.summarized);
        let mut on_disk = Vec::new();
        for f in std::fs::read_dir(dir.path()).unwrap() {
            on_disk.extend(std::fs::read(f.unwrap().path()).unwrap());
        }
        assert!(on_disk.len() > 4096 && !String::from_utf8_lossy(&on_disk).contains("note-4"), "rows are sealed on disk");
    }
}
