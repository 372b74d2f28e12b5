//! What the engine reads back: any JSON a vendor returns gets a table view (or none) and a shaped
//! result within budget without a panic, and a shaped result is always valid JSON text.
#![no_main]
use libfuzzer_sys::fuzz_target;

use claribi_fuzz::engine::results;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let _ = results::table_view(&v);
    let continuations = results::Continuations::default();
    let shaped = continuations.shape(v, 2048);
    serde_json::from_str::<serde_json::Value>(&shaped.text).expect("the shaped text is JSON");
});
