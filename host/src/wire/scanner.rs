//! The second line: the connection's secret values looked for in every request a connector sends,
//! in every encoding a secret takes on the wire. (What a connector says — logs, errors, results — is
//! masked by [`crate::wire::masker`], in one pass.)
//!
//! The first line is that a connector never holds a credential value at all
//! ([`crate::vault::credentials`]): it has placeholders, and the host attaches values only where they
//! belong ([`crate::wire::attach`]). A value found in a request *before* the host attached anything
//! means something let a value through to the connector (a server echoing it in a form the masking
//! did not know, say): the request is refused. A connector that transforms a value it somehow learnt
//! (encrypts, XORs, splits it) defeats any scan; that is why the scan is the second line, not the first.

use zeroize::Zeroizing;

/// The connection's secret values, looked for in what a connector sends and says.
///
/// A request is scanned for every value in the forms a secret takes on the wire: as is,
/// percent- and form-encoded (URLs, form bodies), base64 and base64url at each of the three byte
/// alignments (Basic auth, JSON-embedded blobs), and hex. One Aho–Corasick automaton over all those
/// needles scans a body in linear time whatever the values look like.
#[derive(Default)]
pub struct SecondLine {
    /// The connection's secret values (only those long enough to recognise without false alarms).
    secrets: Vec<Zeroizing<String>>,
    /// The automaton over every needle of every secret (`None` when there is no secret).
    matcher: Option<aho_corasick::AhoCorasick>,
    /// The automaton could not be built: every scan then reports a leak (fail closed).
    broken: bool,
}

fn percent_encode(raw: &[u8], lower: bool) -> String {
    raw.iter()
        .map(|b| match (b.is_ascii_alphanumeric() || b"-._~".contains(b), lower) {
            (true, _) => (*b as char).to_string(),
            (false, false) => format!("%{b:02X}"),
            (false, true) => format!("%{b:02x}"),
        })
        .collect()
}

/// The forms a secret takes in a URL or a form body: form-encoded, and percent-encoded with upper-
/// and lowercase hex digits (the secret's own characters keep their case).
fn url_forms(raw: &[u8]) -> [String; 3] {
    [url::form_urlencoded::byte_serialize(raw).collect(), percent_encode(raw, false), percent_encode(raw, true)]
}

/// The base64 characters that depend only on `raw` when it sits at each of the three offsets modulo 3
/// of an encoded stream (the characters shared with neighbouring bytes are left out).
fn base64_needles(raw: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for pad in 0..3usize {
        let mut buf = vec![0u8; pad];
        buf.extend_from_slice(raw);
        let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&buf);
        // Characters mixing pad bytes: 0 for no pad, 2 for one byte, 3 for two (6-bit groups).
        let skip = [0, 2, 3][pad];
        // The last character mixes with whatever follows unless the bits end on a 6-bit boundary.
        let take = if (buf.len() * 8) % 6 == 0 { enc.len() } else { enc.len().saturating_sub(1) };
        if take > skip {
            let core = &enc[skip..take];
            out.push(core.to_string());
            let url: String = core.chars().map(|c| match c { '+' => '-', '/' => '_', c => c }).collect();
            if url != core {
                out.push(url);
            }
        }
    }
    out
}

impl SecondLine {
    /// Secrets shorter than this are not scanned for (they would match by accident).
    pub const MIN_LEN: usize = 8;
    /// Only this many leading bytes of a secret are scanned for: a request that carries the whole
    /// secret carries its prefix, and the automaton stays small whatever the values (about 1 KiB of
    /// needles per value, whatever its length). A value sharing its first 64 bytes with a credential
    /// (another JWT of the same issuer) is refused as that credential would be.
    pub const SCANNED_PREFIX: usize = 64;

    /// Most secret values one scanner holds: the connection's stored secrets plus what the
    /// call receives. A connector that stores more in one call is refused
    /// (`update-secrets` answers an error), so a call cannot make the host's scanning grow without end.
    pub const MAX_GUARDED: usize = 128;

    /// Add secret values (what the connector just stored), rebuilding the scanner once. Refused, with
    /// nothing added, past [`Self::MAX_GUARDED`].
    pub fn add_secrets(&mut self, secrets: impl IntoIterator<Item = Zeroizing<String>>) -> Result<(), String> {
        let mut new: Vec<Zeroizing<String>> = Vec::new();
        for secret in secrets {
            if secret.len() >= Self::MIN_LEN && !self.secrets.iter().chain(new.iter()).any(|s| **s == *secret) {
                new.push(secret);
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        if self.secrets.len() + new.len() > Self::MAX_GUARDED {
            return Err(format!("a call may hold at most {} secret values; store fewer", Self::MAX_GUARDED));
        }
        self.secrets.extend(new);
        self.rebuild();
        Ok(())
    }

    /// Add one secret value (see [`Self::add_secrets`]).
    pub fn add_secret(&mut self, secret: Zeroizing<String>) -> Result<(), String> {
        self.add_secrets([secret])
    }

    /// A scanner for these values.
    pub fn new(secrets: Vec<Zeroizing<String>>) -> SecondLine {
        let mut g = SecondLine {
            secrets: secrets.into_iter().filter(|s| s.len() >= Self::MIN_LEN).collect(),
            matcher: None,
            broken: false,
        };
        g.rebuild();
        g
    }

    fn rebuild(&mut self) {
        let mut needles: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for s in &self.secrets {
            let raw = &s.as_bytes()[..s.len().min(Self::SCANNED_PREFIX)];
            needles.push(Zeroizing::new(raw.to_vec()));
            for text in url_forms(raw).into_iter().chain([hex::encode(raw), hex::encode_upper(raw)]).chain(base64_needles(raw)) {
                needles.push(Zeroizing::new(text.into_bytes()));
            }
        }
        needles.retain(|n| n.len() >= Self::MIN_LEN);
        self.broken = false;
        self.matcher = if needles.is_empty() {
            None
        } else {
            // A contiguous NFA: linear scans, and memory proportional to the needles (a DFA over many
            // long random tokens would take megabytes for every call).
            let built = aho_corasick::AhoCorasick::builder()
                .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                .build(needles.iter().map(|n| n.as_slice()));
            match built {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!("cannot build the credential scanner ({e}); every request carrying a body is refused");
                    self.broken = true;
                    None
                }
            }
        };
    }

    /// Whether `text` contains one of the secrets (in any of the scanned forms).
    pub fn leaks_into(&self, text: &str) -> bool {
        self.leaks_into_bytes(text.as_bytes())
    }

    /// Whether `bytes` contain one of the secrets, as is, percent/form-encoded, base64(url) or hex.
    pub fn leaks_into_bytes(&self, bytes: &[u8]) -> bool {
        self.broken || self.matcher.as_ref().is_some_and(|m| m.is_match(bytes))
    }

    /// Whether any secret is being guarded.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Heap bytes the scanner holds (charged to the call's budget).
    pub fn memory_usage(&self) -> usize {
        self.matcher.as_ref().map_or(0, |m| m.memory_usage()) + self.secrets.iter().map(|s| s.len() + 24).sum::<usize>()
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_found_in_every_encoding_at_every_alignment() {
        use base64::Engine as _;
        let secret = "sk_Live_0123456789+/?";
        let g = SecondLine::new(vec![Zeroizing::new(secret.into())]);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let b64url = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let mut carriers = vec![
            format!("x={}", url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()),
            format!("x={}", percent_encode(secret.as_bytes(), false)),
            format!("x={}", percent_encode(secret.as_bytes(), true)),
            hex::encode(secret),
            hex::encode_upper(secret),
        ];
        // Basic auth and embedded blobs put the secret at any offset of the encoded stream.
        for prefix in ["", "u", "us", "user:", "ab:", "a:"] {
            carriers.push(format!("Basic {}", b64(&format!("{prefix}{secret}"))));
            carriers.push(b64url(&format!("{prefix}{secret}tail")));
        }
        for c in &carriers {
            assert!(g.leaks_into(c), "not found in {c}");
        }
        for clean in ["harmless", "Basic dXNlcjpwYXNz", "sk_live_012345678", &hex::encode("sk_live_01234")] {
            assert!(!g.leaks_into(clean), "false alarm on {clean}");
        }
    }

    #[test]
    fn a_call_cannot_grow_the_guard_without_end() {
        let mut g = SecondLine::new(vec![]);
        let batch = |from: usize, n: usize| (from..from + n).map(|i| Zeroizing::new(format!("token-value-{i:06}")));
        g.add_secrets(batch(0, SecondLine::MAX_GUARDED)).unwrap();
        assert!(g.add_secrets(batch(0, 10)).is_ok(), "values already guarded add nothing");
        let err = g.add_secrets(batch(SecondLine::MAX_GUARDED, 1)).unwrap_err();
        assert!(err.contains("at most 128"), "{err}");
        assert!(g.leaks_into("x token-value-000127 y"), "what was added is still scanned for");
        assert!(!g.leaks_into("x token-value-000128 y"), "the refused one was not added");
    }

    #[test]
    fn a_long_secret_is_found_by_its_prefix() {
        let secret = format!("{}b", "a1".repeat(30_000));
        let g = SecondLine::new(vec![Zeroizing::new(secret.clone())]);
        assert!(g.leaks_into(&format!("token={secret}")));
        assert!(!g.leaks_into_bytes(&vec![b'a'; 100_000]));
    }

    #[test]
    fn a_short_secret_is_not_scanned_for() {
        let short = SecondLine::new(vec![Zeroizing::new("abc".into())]);
        assert!(!short.leaks_into("abc"), "too short to scan for");
    }

    /// The largest scanner a connection can make the host build: as many values as a call may hold,
    /// each as long as the host accepts. Its size is what a call is charged (printed, not asserted).
    #[test]
    fn the_largest_scanner_stays_small_and_fast_to_build() {
        use rand::Rng;
        let values: Vec<Zeroizing<String>> = (0..SecondLine::MAX_GUARDED)
            .map(|_| Zeroizing::new(rand::thread_rng().sample_iter(rand::distributions::Alphanumeric).take(crate::vault::credentials::MAX_VALUE_LEN).map(char::from).collect()))
            .collect();
        let started = std::time::Instant::now();
        let g = SecondLine::new(values.clone());
        let took = started.elapsed();
        assert!(g.leaks_into(&format!("x={}", values[77].as_str())));
        println!("bench: second line over {} values of {} bytes: {} KiB, built in {took:?}", values.len(), values[0].len(), g.memory_usage() / 1024);
    }
}
