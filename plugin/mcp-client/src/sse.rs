//! An incremental parser for `text/event-stream` (the WHATWG "server-sent events" format).
//!
//! Feed it the body chunk by chunk as it arrives; it returns the events completed by each chunk. It
//! accepts LF, CRLF and lone CR line ends (a CRLF pair may be split across chunks), keeps a multi-byte
//! UTF-8 character that straddles chunks intact (lines are split on bytes, which never occur inside a
//! UTF-8 sequence, and decoded only once complete), joins multi-line `data:` with `\n`, strips one
//! space after the colon, ignores comments, and records `id:` and `retry:` even on events that carry
//! no data. Events with empty data (such as the MCP 2025-11-25 priming event) are not dispatched.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `None` when absent (which means `message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event id seen on the stream when this event was dispatched.
    pub id: Option<String>,
}

impl SseEvent {
    /// Whether this event carries a message (`event:` absent or equal to `message`).
    pub fn is_message(&self) -> bool {
        matches!(self.event.as_deref(), None | Some("message"))
    }
}

/// The parser exceeded its size cap: one line or one event was larger than allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseTooLarge {
    /// The cap, in bytes.
    pub limit: usize,
}

impl std::fmt::Display for SseTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an event-stream event exceeds {} bytes", self.limit)
    }
}

/// Incremental `text/event-stream` parser.
#[derive(Debug)]
pub struct SseParser {
    max_event_bytes: usize,
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// The previous chunk ended with CR: a LF at the start of the next chunk belongs to it.
    after_cr: bool,
    /// Still at the very start of the stream (a UTF-8 BOM is dropped there).
    at_start: bool,
    data: String,
    event_type: Option<String>,
    last_event_id: Option<String>,
    retry_ms: Option<u64>,
}

impl SseParser {
    /// A parser that refuses lines and events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            max_event_bytes,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            data: String::new(),
            event_type: None,
            last_event_id: None,
            retry_ms: None,
        }
    }

    /// The last `id:` seen (it survives events without data).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The last valid `retry:` value, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Feed the next chunk; returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseTooLarge> {
        let mut events = Vec::new();
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some((&b'\n', tail)) = rest.split_first() {
                rest = tail;
            }
        }
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.push_line_bytes(&rest[..end])?;
                    let terminator = rest[end];
                    rest = &rest[end + 1..];
                    if terminator == b'\r' {
                        match rest.first() {
                            Some(b'\n') => rest = &rest[1..],
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.process_line(&line)? {
                        events.push(event);
                    }
                }
                None => {
                    self.push_line_bytes(rest)?;
                    rest = &[];
                }
            }
        }
        Ok(events)
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), SseTooLarge> {
        if self.line.len() + bytes.len() > self.max_event_bytes {
            return Err(SseTooLarge {
                limit: self.max_event_bytes,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, raw: &[u8]) -> Result<Option<SseEvent>, SseTooLarge> {
        let mut bytes = raw;
        if self.at_start {
            self.at_start = false;
            if let Some(tail) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
                bytes = tail;
            }
        }
        if bytes.is_empty() {
            return Ok(self.dispatch());
        }
        let line = String::from_utf8_lossy(bytes);
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.find(':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => self.event_type = Some(value.to_owned()),
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    return Err(SseTooLarge {
                        limit: self.max_event_bytes,
                    });
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_event_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Digits only, but possibly more than fit: ignore those.
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event_type = self.event_type.take();
        if self.data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        if data.trim().is_empty() {
            // A priming or keep-alive event (`data:` with nothing in it): there is no message.
            return None;
        }
        Some(SseEvent {
            event: event_type,
            data,
            id: self.last_event_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_whole(input: &[u8]) -> Vec<SseEvent> {
        let mut parser = SseParser::new(1 << 20);
        parser.feed(input).unwrap()
    }

    /// Feeds `input` split at every pair of points (three chunks), and one byte at a time, and checks
    /// that every split yields the same events as the unsplit stream.
    fn assert_split_invariant(input: &[u8], expected: &[SseEvent]) {
        assert_eq!(parse_whole(input), expected, "unsplit");
        let mut bytewise = SseParser::new(1 << 20);
        let mut events = Vec::new();
        for b in input {
            events.extend(bytewise.feed(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(events, expected, "one byte at a time");
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let mut parser = SseParser::new(1 << 20);
                let mut events = parser.feed(&input[..i]).unwrap();
                events.extend(parser.feed(&input[i..j]).unwrap());
                events.extend(parser.feed(&input[j..]).unwrap());
                assert_eq!(events, expected, "split at {i} and {j}");
            }
        }
    }

    fn ev(event: Option<&str>, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        }
    }

    #[test]
    fn events_are_the_same_whatever_the_line_ending_and_split_points() {
        let table: &[(&str, &[u8])] = &[
            ("LF", b"data: {\"a\":1}\n\ndata: two\n\n"),
            ("CRLF", b"data: {\"a\":1}\r\n\r\ndata: two\r\n\r\n"),
            ("CR", b"data: {\"a\":1}\r\rdata: two\r\r"),
            ("mixed", b"data: {\"a\":1}\r\n\ndata: two\r\r\n"),
        ];
        for (name, input) in table {
            let expected = vec![ev(None, "{\"a\":1}", None), ev(None, "two", None)];
            assert_eq!(parse_whole(input), expected, "{name}");
            assert_split_invariant(input, &expected);
        }
    }

    #[test]
    fn a_crlf_pair_split_across_chunks_is_one_line_end() {
        let mut parser = SseParser::new(1024);
        assert!(parser.feed(b"data: x\r").unwrap().is_empty());
        assert!(
            parser.feed(b"\n").unwrap().is_empty(),
            "the LF completes the CRLF, it is not a blank line"
        );
        assert_eq!(parser.feed(b"\r\n").unwrap(), vec![ev(None, "x", None)]);
    }

    #[test]
    fn a_utf8_character_split_across_chunks_is_decoded_whole() {
        let input = "data: {\"name\":\"Zoë – 日本 🚀\"}\n\n".as_bytes();
        assert_split_invariant(input, &[ev(None, "{\"name\":\"Zoë – 日本 🚀\"}", None)]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines_and_one_leading_space_is_stripped() {
        let input = b"data:first\ndata:  second\ndata\ndata: third\n\n";
        assert_split_invariant(input, &[ev(None, "first\n second\n\nthird", None)]);
    }

    #[test]
    fn comments_and_unknown_fields_are_ignored() {
        let input = b": keepalive\n\n:another\nfoo: bar\ndata: x\n\n";
        assert_split_invariant(input, &[ev(None, "x", None)]);
    }

    #[test]
    fn event_names_are_reported_so_non_message_events_can_be_skipped() {
        let input = b"event: endpoint\ndata: /x\n\nevent: message\ndata: y\n\ndata: z\n\n";
        let events = parse_whole(input);
        assert_eq!(events.len(), 3);
        assert!(!events[0].is_message());
        assert!(events[1].is_message());
        assert!(events[2].is_message());
        assert_split_invariant(input, &events);
    }

    #[test]
    fn the_event_name_does_not_leak_into_the_next_event() {
        let input = b"event: other\n\ndata: y\n\n";
        assert_eq!(parse_whole(input), vec![ev(None, "y", None)]);
    }

    #[test]
    fn a_priming_event_with_empty_data_is_not_dispatched_but_its_id_and_retry_are_kept() {
        let input = b"id: event-1\nretry: 500\ndata: \n\n";
        let mut parser = SseParser::new(1024);
        assert!(parser.feed(input).unwrap().is_empty());
        assert_eq!(parser.last_event_id(), Some("event-1"));
        assert_eq!(parser.retry_ms(), Some(500));
        assert_eq!(
            parser.feed(b"data: m\n\n").unwrap(),
            vec![ev(None, "m", Some("event-1"))]
        );
    }

    #[test]
    fn retry_with_anything_but_digits_is_ignored() {
        let mut parser = SseParser::new(1024);
        parser.feed(b"retry: 12a\nretry: -5\nretry:\n\n").unwrap();
        assert_eq!(parser.retry_ms(), None);
        parser.feed(b"retry:250\n\n").unwrap();
        assert_eq!(parser.retry_ms(), Some(250));
    }

    #[test]
    fn an_id_containing_nul_is_ignored() {
        let mut parser = SseParser::new(1024);
        parser.feed(b"id: a\0b\n\n").unwrap();
        assert_eq!(parser.last_event_id(), None);
    }

    #[test]
    fn an_unterminated_event_at_the_end_of_the_stream_is_not_dispatched() {
        assert!(parse_whole(b"data: half").is_empty());
        assert!(parse_whole(b"data: half\n").is_empty());
    }

    #[test]
    fn a_leading_byte_order_mark_is_dropped() {
        assert_split_invariant(b"\xEF\xBB\xBFdata: x\n\n", &[ev(None, "x", None)]);
    }

    #[test]
    fn a_line_longer_than_the_cap_is_refused_even_when_it_never_ends() {
        let mut parser = SseParser::new(16);
        assert!(parser.feed(b"data: 0123456789").unwrap().is_empty());
        assert_eq!(
            parser.feed(b"abcdef").unwrap_err(),
            SseTooLarge { limit: 16 }
        );
    }

    #[test]
    fn an_event_whose_data_lines_add_up_past_the_cap_is_refused() {
        let mut parser = SseParser::new(16);
        assert_eq!(
            parser
                .feed(b"data: 012345\ndata: 012345\ndata: 012345\n")
                .unwrap_err(),
            SseTooLarge { limit: 16 }
        );
    }
}
