//! SSE framing: any bytes, split anywhere, never panic; and splitting never changes the events.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_client::sse::SseParser;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    // The first byte chooses the chunk size for the second parse.
    let step = (data[0] as usize % 17) + 1;
    let body = &data[1..];
    let mut whole = SseParser::new(64 * 1024);
    let all_at_once = whole.feed(body);
    let mut chunked = SseParser::new(64 * 1024);
    let mut events = Vec::new();
    let mut failed = false;
    for chunk in body.chunks(step) {
        match chunked.feed(chunk) {
            Ok(mut e) => events.append(&mut e),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if let (Ok(a), false) = (all_at_once, failed) {
        assert_eq!(a, events, "chunking changed the events");
        assert_eq!(whole.last_event_id(), chunked.last_event_id());
        assert_eq!(whole.retry_ms(), chunked.retry_ms());
    }
});
