//! Which credential members the top level of a JSON object names, read while the bytes stream: a few
//! bytes of state and O(1) work per byte, whatever the size of the body.
//!
//! A token or registration response is recognised by what it *is*, not only by where it came from:
//! a JSON object whose top level has `access_token`, `refresh_token`, `id_token`, `client_secret` or
//! `registration_access_token`. The send hook ([`crate::wire::outbound`]) uses [`TopLevelMembers`] on
//! every response it does not already rewrite: a small one is then read whole and rewritten
//! ([`crate::wire::inbound`]), a large one is cut before the member's value reaches the connector.
//!
//! The reading is structural only (quotes, escapes, braces, brackets, commas, colons), so it never
//! fails: on bytes that are not JSON it may report a member, and the caller then fails closed (it
//! refuses what it cannot parse). Keys are decoded (`"\u0061ccess_token"` is `access_token`).
//!
//! ```
//! use claribi_host::wire::json_members::TopLevelMembers;
//! let mut m = TopLevelMembers::default();
//! assert_eq!(m.feed(br#"{"data":{"access_token":"nested, not a token response"},"#), None);
//! let at = m.feed(br#""refresh_token":"rt-1"}"#).unwrap();
//! assert_eq!(m.found(), Some("refresh_token"));
//! assert_eq!(at, r#""refresh_token""#.len(), "reported where the name ends, before its value");
//! ```

use crate::vault::credentials::Kind;

/// The members of a JSON response that hold a credential, and the kind each one is.
pub const CREDENTIAL_MEMBERS: [(&str, Kind); 5] = [
    ("access_token", Kind::AccessToken),
    ("refresh_token", Kind::RefreshToken),
    ("id_token", Kind::IdToken),
    ("client_secret", Kind::ClientSecret),
    ("registration_access_token", Kind::RegistrationToken),
];

/// Longest raw key kept for decoding: every credential member fits even written entirely in `\u` escapes.
const MAX_KEY: usize = 6 * 32;

/// The streaming reader (see the module docs). Feed it every byte of a body, in order.
#[derive(Debug, Default, Clone)]
pub struct TopLevelMembers {
    depth: u32,
    in_string: bool,
    escape: bool,
    /// The container at depth 1 is an object.
    top_is_object: bool,
    /// At depth 1 of an object, the next string is a key.
    expect_key: bool,
    /// The raw bytes of the top-level key being read (`None`: not reading a key, or too long to be one).
    key: Option<Vec<u8>>,
    found: Option<&'static str>,
}

impl TopLevelMembers {
    /// Read `bytes`; returns the offset in `bytes` just after the first credential member name found
    /// (the first ever: later calls return `None`).
    pub fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        if self.found.is_some() {
            return None;
        }
        let mut i = 0;
        while i < bytes.len() {
            if self.in_string {
                if !self.escape && self.key.is_none() {
                    // Inside a string that is not a top-level key (a result's text, most of a body):
                    // nothing matters until its next quote or backslash.
                    match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                        Some(j) => i += j,
                        None => return None,
                    }
                }
                let b = bytes[i];
                i += 1;
                if self.escape {
                    self.escape = false;
                    self.push(b);
                } else if b == b'\\' {
                    self.escape = true;
                    self.push(b);
                } else if b == b'"' {
                    self.in_string = false;
                    if let Some(raw) = self.key.take() {
                        self.expect_key = false;
                        if let Some(name) = credential_member(&raw) {
                            self.found = Some(name);
                            return Some(i);
                        }
                    }
                } else {
                    self.push(b);
                }
                continue;
            }
            let b = bytes[i];
            i += 1;
            match b {
                b'"' => {
                    self.in_string = true;
                    self.key = (self.depth == 1 && self.top_is_object && self.expect_key).then(Vec::new);
                }
                b'{' | b'[' => {
                    self.depth = self.depth.saturating_add(1);
                    if self.depth == 1 {
                        self.top_is_object = b == b'{';
                        self.expect_key = self.top_is_object;
                    }
                }
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                b',' if self.depth == 1 && self.top_is_object => self.expect_key = true,
                b':' if self.depth == 1 => self.expect_key = false,
                _ => {}
            }
        }
        None
    }

    /// The credential member found, if any.
    pub fn found(&self) -> Option<&'static str> {
        self.found
    }

    fn push(&mut self, b: u8) {
        if let Some(k) = &mut self.key {
            if k.len() >= MAX_KEY {
                self.key = None;
            } else {
                k.push(b);
            }
        }
    }
}

/// Whether the raw (still escaped) key names a credential member.
fn credential_member(raw: &[u8]) -> Option<&'static str> {
    let name: std::borrow::Cow<'_, str> = if raw.contains(&b'\\') {
        let mut quoted = Vec::with_capacity(raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(raw);
        quoted.push(b'"');
        std::borrow::Cow::Owned(serde_json::from_slice::<String>(&quoted).ok()?)
    } else {
        std::borrow::Cow::Borrowed(std::str::from_utf8(raw).ok()?)
    };
    CREDENTIAL_MEMBERS.iter().map(|(m, _)| *m).find(|m| *m == name)
}

/// Whether `body` (whole) names a credential member at the top level of a JSON object.
pub fn names_a_credential(body: &[u8]) -> bool {
    TopLevelMembers::default().feed(body).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_members_are_found_at_the_top_level_only() {
        let table: &[(&str, Option<&str>)] = &[
            (r#"{"access_token":"a"}"#, Some("access_token")),
            (r#"  {"token_type":"Bearer", "refresh_token" : "r"}"#, Some("refresh_token")),
            (r#"{"client_id":"c","client_secret":"s"}"#, Some("client_secret")),
            (r#"{"registration_access_token":"t"}"#, Some("registration_access_token")),
            (r#"{"id_token":"x.y.z"}"#, Some("id_token")),
            (r#"{"\u0061ccess_token":"a"}"#, Some("access_token")),
            (r#"{"access_\u0074oken":"a"}"#, Some("access_token")),
            // Nested, in a value, in an array, a longer or shorter name: not a token response.
            (r#"{"data":{"access_token":"a"}}"#, None),
            (r#"{"note":"access_token"}"#, None),
            (r#"{"note":"say \"access_token\": here"}"#, None),
            (r#"[{"access_token":"a"}]"#, None),
            (r#"{"access_token_expires":1}"#, None),
            (r#"{"xaccess_token":1}"#, None),
            (r#"{"a":[1,{"b":2}],"c":"d"}"#, None),
            ("access_token=a&token_type=bearer", None),
            ("", None),
        ];
        for (body, want) in table {
            let mut m = TopLevelMembers::default();
            let at = m.feed(body.as_bytes());
            assert_eq!(m.found(), *want, "{body}");
            assert_eq!(at.is_some(), want.is_some(), "{body}");
            assert_eq!(names_a_credential(body.as_bytes()), want.is_some());
        }
    }

    #[test]
    fn a_member_split_across_every_chunk_boundary_is_still_found() {
        let body = br#"{"expires_in":3600,"note":"{\"x\":1}","access_token":"secret-value"}"#;
        for split in 1..body.len() {
            let mut m = TopLevelMembers::default();
            let mut at = None;
            let mut offset = 0;
            for chunk in body.chunks(split) {
                if let Some(i) = m.feed(chunk) {
                    at.get_or_insert(offset + i);
                }
                offset += chunk.len();
            }
            assert_eq!(m.found(), Some("access_token"), "chunks of {split}");
            let end = at.unwrap();
            assert!(body[..end].ends_with(br#""access_token""#), "chunks of {split}: reported before the value");
        }
    }

    #[test]
    fn every_new_top_level_object_is_read_and_a_long_key_costs_nothing() {
        let mut m = TopLevelMembers::default();
        assert_eq!(m.feed(b"data: {\"jsonrpc\":\"2.0\"}\n\ndata: "), None);
        assert!(m.feed(br#"{"client_secret":"s"}"#).is_some(), "the second event's object is read too");
        let long = format!(r#"{{"{}":1,"access_token":"a"}}"#, "k".repeat(100_000));
        assert!(names_a_credential(long.as_bytes()));
        assert!(!names_a_credential(format!(r#"{{"{}access_token":1}}"#, "\\u0061".repeat(40)).as_bytes()));
    }
}
