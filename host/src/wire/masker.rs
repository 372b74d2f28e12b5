//! Echo masking: a known credential of the connection echoed anywhere in a response (a header, an MCP
//! result, an error page) — as is, URL-encoded or JSON-escaped — is replaced by its placeholder while
//! the body streams, so a connector never reads a value even when a server repeats it. The same
//! machine replaces values by `[redacted]` in what a connector says (logs, errors, results).
//!
//! The work is bounded whatever the values look like:
//!
//! * Values are at most [`crate::vault::credentials::MAX_VALUE_LEN`] bytes (refused longer when received).
//! * The automaton holds only the first [`NEEDLE_PREFIX`] bytes of each form of each value; once a
//!   prefix is found, the rest of the value is compared byte by byte as it streams ([`Echo`]). So the
//!   automaton stays small (a few hundred KiB at most) and is built in well under a millisecond.
//! * How much of a chunk's end is held back (it could be the start of a value split across chunks) is
//!   read from the automaton: an anchored walk over at most [`NEEDLE_PREFIX`] bytes, so at most
//!   `NEEDLE_PREFIX²` steps per chunk whatever the chunk, the values or their number. A stream that
//!   waits on its last event (SSE) is not delayed: an event's end is not the start of a value.

use crate::vault::credentials::Credential;
use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, Input, MatchKind};
use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};
use zeroize::Zeroizing;

/// Most bytes of a value's form the automaton holds (the rest is compared as it streams).
pub const NEEDLE_PREFIX: usize = 64;

/// Values shorter than this are not masked (they would match by accident).
pub const MIN_LEN: usize = 8;

/// What a found value is replaced with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Its placeholder (what a connector reads: it can still use what it was echoed).
    Placeholder,
    /// `[redacted]` (what a connector says: logs, errors, results).
    Redacted,
}

/// Replaces every known credential value (as is, form- or percent-encoded, JSON-escaped) by its
/// placeholder or by `[redacted]`.
pub struct Masker {
    nfa: NFA,
    /// For each needle (a prefix): the forms that start with it.
    candidates: Vec<Vec<usize>>,
    /// Every form of every value.
    forms: Vec<Zeroizing<Vec<u8>>>,
    /// For each form: the index of its value's placeholder.
    owner: Vec<usize>,
    placeholders: Vec<String>,
    memory: usize,
}

/// An echo being read: the forms it may still be, how many of their bytes were read.
#[derive(Debug, Clone)]
struct Echo {
    alive: Vec<usize>,
    matched: usize,
}

/// What a [`Masker`] keeps between the chunks of one stream.
#[derive(Debug, Default)]
pub struct MaskState {
    /// Bytes held back: they could be the start of a value.
    pending: Vec<u8>,
    /// A value being read across chunks.
    echo: Option<Echo>,
}

/// How many bytes `a` and `b` share at their start (compared 32 at a time).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 32 <= n && a[i..i + 32] == b[i..i + 32] {
        i += 32;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

fn percent_encode(raw: &[u8], lower: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for b in raw {
        if b.is_ascii_alphanumeric() || b"-._~".contains(b) {
            out.push(*b);
        } else if lower {
            out.extend_from_slice(format!("%{b:02x}").as_bytes());
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// The forms a value takes in what a server sends back: as is, form-encoded, percent-encoded (both
/// cases of hex digits), and with `/` escaped as JSON may write it.
fn forms(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![
        raw.to_vec(),
        url::form_urlencoded::byte_serialize(raw).collect::<String>().into_bytes(),
        percent_encode(raw, false),
        percent_encode(raw, true),
        String::from_utf8_lossy(raw).replace('/', "\\/").into_bytes(),
    ];
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert(f.clone()));
    out
}

impl Masker {
    /// A masker for these credentials (`None` when there is nothing to mask). Values shorter than
    /// [`MIN_LEN`] bytes are not masked; only the first [`crate::vault::credentials::MAX_VALUE_LEN`]
    /// bytes of a longer one (the host refuses such values when it receives them).
    pub fn new<'a>(credentials: impl IntoIterator<Item = &'a Credential>) -> Option<Masker> {
        let mut placeholders: Vec<String> = Vec::new();
        let mut all_forms: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut owner = Vec::new();
        // Forms seen, by hash (compared only within a bucket: no quadratic work on long values).
        let mut seen: std::collections::HashMap<u64, Vec<usize>> = std::collections::HashMap::new();
        for c in credentials {
            let raw = c.value.as_bytes();
            if raw.len() < MIN_LEN {
                continue;
            }
            let raw = &raw[..raw.len().min(crate::vault::credentials::MAX_VALUE_LEN)];
            placeholders.push(c.placeholder.as_str().to_string());
            for f in forms(raw) {
                let h = {
                    use std::hash::{Hash, Hasher};
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    f.hash(&mut hasher);
                    hasher.finish()
                };
                let bucket = seen.entry(h).or_default();
                if !bucket.iter().any(|i| *all_forms[*i] == f) {
                    bucket.push(all_forms.len());
                    all_forms.push(Zeroizing::new(f));
                    owner.push(placeholders.len() - 1);
                }
            }
        }
        if all_forms.is_empty() {
            return None;
        }
        // One needle per distinct prefix; the forms sharing it are its candidates.
        let mut needles: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut candidates: Vec<Vec<usize>> = Vec::new();
        let mut by_prefix: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
        for (i, f) in all_forms.iter().enumerate() {
            let prefix = &f[..f.len().min(NEEDLE_PREFIX)];
            match by_prefix.get(prefix) {
                Some(n) => candidates[*n].push(i),
                None => {
                    by_prefix.insert(prefix, needles.len());
                    needles.push(Zeroizing::new(prefix.to_vec()));
                    candidates.push(vec![i]);
                }
            }
        }
        drop(by_prefix);
        let nfa = NFA::builder().match_kind(MatchKind::LeftmostLongest).build(needles.iter().map(|n| n.as_slice())).ok()?;
        let memory = nfa.memory_usage()
            + all_forms.iter().map(|f| f.len()).sum::<usize>()
            + candidates.iter().map(|c| c.len() * 8 + 24).sum::<usize>()
            + placeholders.iter().map(|p| p.len() + 24).sum::<usize>();
        Some(Masker { nfa, candidates, forms: all_forms, owner, placeholders, memory })
    }

    /// Heap bytes the masker holds (charged to the call's budget).
    pub fn memory_usage(&self) -> usize {
        self.memory
    }

    /// Whether `bytes` hold the start of a known value.
    pub fn finds(&self, bytes: &[u8]) -> bool {
        self.nfa.try_find(&Input::new(bytes)).ok().flatten().is_some()
    }

    /// `bytes` with every known value replaced by its placeholder.
    pub fn mask(&self, bytes: &[u8]) -> Vec<u8> {
        self.mask_as(bytes, Replace::Placeholder)
    }

    /// `bytes` with every known value replaced as `replace` says.
    pub fn mask_as(&self, bytes: &[u8], replace: Replace) -> Vec<u8> {
        let mut state = MaskState::default();
        let mut out = Vec::with_capacity(bytes.len());
        self.drain(&mut state, bytes, true, replace, &mut out);
        out
    }

    /// `text` with every known value replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        self.redact_found(text).unwrap_or_else(|| text.to_string())
    }

    /// [`Self::redact`], or `None` when `text` holds no known value.
    pub fn redact_found(&self, text: &str) -> Option<String> {
        if !self.finds(text.as_bytes()) {
            return None;
        }
        Some(String::from_utf8_lossy(&self.mask_as(text.as_bytes(), Replace::Redacted)).into_owned())
    }

    fn replacement(&self, echo: &Echo, replace: Replace) -> &[u8] {
        match replace {
            Replace::Redacted => b"[redacted]",
            Replace::Placeholder => {
                // The form read whole, if one was; else the one read furthest.
                let best = echo.alive.iter().find(|f| self.forms[**f].len() == echo.matched).or(echo.alive.first()).copied().unwrap_or(0);
                self.placeholders[self.owner[best]].as_bytes()
            }
        }
    }

    /// Read bytes of `input` from `i` into an echo; returns where the echo stopped (`None`: it goes on
    /// past the end of `input`). Each candidate form is compared in bulk.
    fn follow(&self, echo: &mut Echo, input: &[u8], i: usize) -> Option<usize> {
        let rest = &input[i..];
        let reach: Vec<usize> = echo.alive.iter().map(|f| common_prefix(&self.forms[*f][echo.matched..], rest)).collect();
        let best = reach.iter().copied().max().unwrap_or(0);
        let mut k = 0;
        echo.alive.retain(|_| {
            k += 1;
            reach[k - 1] == best
        });
        echo.matched += best;
        if best < rest.len() || echo.alive.iter().all(|f| self.forms[*f].len() == echo.matched) {
            return Some(i + best);
        }
        None
    }

    /// How many bytes at the end of `tail` could be the start of a value: the longest suffix the
    /// automaton reads, anchored, without dying (at most `NEEDLE_PREFIX - 1` bytes are looked at).
    fn hold_back(&self, tail: &[u8]) -> usize {
        let Ok(start) = self.nfa.start_state(Anchored::Yes) else { return 0 };
        let longest = tail.len().min(NEEDLE_PREFIX - 1);
        'suffix: for k in (1..=longest).rev() {
            let mut sid = start;
            for &b in &tail[tail.len() - k..] {
                sid = self.nfa.next_state(Anchored::Yes, sid, b);
                if self.nfa.is_dead(sid) {
                    continue 'suffix;
                }
            }
            return k;
        }
        0
    }

    /// Mask what is safe to emit of the bytes held and `data` (everything when `last`) into `out`,
    /// keeping a tail that could be the start of a value split across chunks.
    pub fn drain(&self, st: &mut MaskState, data: &[u8], last: bool, replace: Replace, out: &mut Vec<u8>) {
        let input: std::borrow::Cow<'_, [u8]> = if st.pending.is_empty() {
            std::borrow::Cow::Borrowed(data)
        } else {
            let mut v = std::mem::take(&mut st.pending);
            v.extend_from_slice(data);
            std::borrow::Cow::Owned(v)
        };
        let input = &input[..];
        let mut i = 0;
        if let Some(mut echo) = st.echo.take() {
            match self.follow(&mut echo, input, 0) {
                Some(end) => {
                    out.extend_from_slice(self.replacement(&echo, replace));
                    i = end;
                }
                None if last => {
                    out.extend_from_slice(self.replacement(&echo, replace));
                    return;
                }
                None => {
                    st.echo = Some(echo);
                    return;
                }
            }
        }
        let safe = if last { input.len() } else { input.len() - self.hold_back(&input[i..]) };
        while i < input.len() {
            let Ok(Some(m)) = self.nfa.try_find(&Input::new(input).range(i..)) else { break };
            if m.start() >= safe {
                break;
            }
            out.extend_from_slice(&input[i..m.start()]);
            let mut echo = Echo { alive: self.candidates[m.pattern().as_usize()].clone(), matched: m.len() };
            match self.follow(&mut echo, input, m.end()) {
                Some(end) => {
                    out.extend_from_slice(self.replacement(&echo, replace));
                    i = end;
                }
                None if last => {
                    out.extend_from_slice(self.replacement(&echo, replace));
                    return;
                }
                None => {
                    st.echo = Some(echo);
                    return;
                }
            }
        }
        let cut = i.max(safe);
        out.extend_from_slice(&input[i..cut]);
        st.pending = input[cut..].to_vec();
    }
}

/// Makes the error a body ends with when it is cut at a credential member (the member's name given).
pub type Cut<E> = std::sync::Arc<dyn Fn(&'static str) -> E + Send + Sync>;

/// A response body with known credential values masked while it streams, optionally cut where the
/// top level of a JSON object names a credential member ([`crate::wire::json_members`]).
pub struct MaskedBody<B: http_body::Body> {
    inner: B,
    masker: Option<std::sync::Arc<Masker>>,
    state: MaskState,
    done: bool,
    members: Option<(crate::wire::json_members::TopLevelMembers, Cut<B::Error>)>,
}

impl<B: http_body::Body> MaskedBody<B> {
    /// Mask `inner` with `masker` (`None`: nothing to mask).
    pub fn new(inner: B, masker: Option<std::sync::Arc<Masker>>) -> MaskedBody<B> {
        MaskedBody { inner, masker, state: MaskState::default(), done: false, members: None }
    }

    /// End the body with `cut`'s error, before the member's value, where the top level of a JSON
    /// object names a credential member.
    pub fn cut_at_credential_members(mut self, cut: Cut<B::Error>) -> MaskedBody<B> {
        self.members = Some((Default::default(), cut));
        self
    }

    fn drain(&mut self, data: &[u8], last: bool) -> Vec<u8> {
        match &self.masker {
            Some(m) => {
                let mut out = Vec::with_capacity(data.len() + self.state.pending.len());
                m.drain(&mut self.state, data, last, Replace::Placeholder, &mut out);
                out
            }
            None => data.to_vec(),
        }
    }

    fn holds_nothing(&self) -> bool {
        self.state.pending.is_empty() && self.state.echo.is_none()
    }
}

impl<B> http_body::Body for MaskedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        loop {
            if self.done {
                if self.holds_nothing() {
                    return Poll::Ready(None);
                }
                let out = self.drain(&[], true);
                self.state = MaskState::default();
                return Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(out)))));
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let this = &mut *self;
                        if let Some((members, cut)) = &mut this.members {
                            if members.feed(&data).is_some() {
                                // Nothing more is passed on: not the member's value, nor what was held back.
                                let e = cut(members.found().unwrap_or_default());
                                this.state = MaskState::default();
                                this.done = true;
                                return Poll::Ready(Some(Err(e)));
                            }
                        }
                        let out = this.drain(&data, false);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(out)))));
                        }
                    }
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => self.done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.holds_nothing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::credentials::{Binding, Kind};
    use http_body_util::BodyExt;

    fn cred(value: &str) -> Credential {
        Credential::new(Kind::AccessToken, Zeroizing::new(value.into()), Binding::default())
    }

    /// `text` split into chunks of `split` bytes, through a [`MaskedBody`].
    async fn streamed(masker: &std::sync::Arc<Masker>, text: &[u8], split: usize) -> Vec<u8> {
        let chunks: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> =
            text.chunks(split).map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c)))).collect();
        let inner = http_body_util::StreamBody::new(futures::stream::iter(chunks));
        MaskedBody::new(inner, Some(masker.clone())).collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn echoed_values_are_masked_across_every_chunk_boundary() {
        let c = cred("tok/en+value=1234");
        let masker = std::sync::Arc::new(Masker::new([&c]).unwrap());
        let text = format!("a {} b {} c tok%2Fen%2Bvalue%3D1234 d tok\\/en+value=1234 e tok%2fen%2bvalue%3d1234", c.value.as_str(), c.value.as_str());
        let want = format!("a {p} b {p} c {p} d {p} e {p}", p = c.placeholder.as_str());
        assert_eq!(String::from_utf8(masker.mask(text.as_bytes())).unwrap(), want);
        for split in 1..text.len() {
            assert_eq!(String::from_utf8(streamed(&masker, text.as_bytes(), split).await).unwrap(), want, "chunks of {split}");
        }
        assert!(Masker::new([&cred("short")]).is_none(), "too short to mask");
        assert_eq!(masker.redact(&format!("x={}", c.value.as_str())), "x=[redacted]");
    }

    #[tokio::test]
    async fn long_values_and_values_sharing_a_prefix_are_masked_whole() {
        // Two JWT-like values from one issuer: the same first 100 bytes, then different.
        let head = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.".repeat(3);
        let a = cred(&format!("{head}payload-A-{}", "a".repeat(3000)));
        let b = cred(&format!("{head}payload-B-{}", "b".repeat(5000)));
        let short = cred(&head[..20]);
        let masker = std::sync::Arc::new(Masker::new([&a, &b, &short]).unwrap());
        let text = format!("[{}] [{}] [{}] [{}]", b.value.as_str(), a.value.as_str(), short.value.as_str(), &head[..30]);
        let want = format!(
            "[{}] [{}] [{}] [{}{}]",
            b.placeholder.as_str(),
            a.placeholder.as_str(),
            short.placeholder.as_str(),
            short.placeholder.as_str(),
            &head[20..30]
        );
        for split in [1, 7, 64, 65, 1000, text.len()] {
            assert_eq!(String::from_utf8(streamed(&masker, text.as_bytes(), split).await).unwrap(), want, "chunks of {split}");
        }
    }

    #[test]
    fn a_stream_is_held_back_only_where_a_value_could_begin() {
        let c = cred("tok/en+value=1234");
        let m = Masker::new([&c]).unwrap();
        let mut st = MaskState::default();
        let mut out = Vec::new();
        m.drain(&mut st, b"event: message\ndata: {}\n\n", false, Replace::Placeholder, &mut out);
        assert_eq!(out, b"event: message\ndata: {}\n\n", "a whole SSE event goes out at once");
        let mut out = Vec::new();
        m.drain(&mut st, b"data: tok/en", false, Replace::Placeholder, &mut out);
        assert_eq!(out, b"data: ", "the start of a value waits for the rest");
        assert_eq!(st.pending, b"tok/en");
    }

    /// The review's H2 attack: values of `A…AB` of the largest size the host accepts, and a body made
    /// of long runs of `A` (each the start of every value, none of them a value). Masking stays linear:
    /// correct output, and the time printed for the record (not asserted).
    #[tokio::test]
    async fn long_runs_that_almost_match_long_values_are_masked_in_linear_time() {
        let max = crate::vault::credentials::MAX_VALUE_LEN;
        let values: Vec<Credential> = (0..16).map(|i| cred(&format!("{}{}", "A".repeat(max - 2), (b'B' + i as u8) as char))).collect();
        let built = std::time::Instant::now();
        let masker = std::sync::Arc::new(Masker::new(values.iter()).unwrap());
        let build = built.elapsed();
        // 4 MiB: runs of 3 × max `A`s ending in `Z` (no value), and one real value.
        let mut text = Vec::new();
        while text.len() < 4 << 20 {
            text.extend(std::iter::repeat_n(b'A', 3 * max));
            text.push(b'Z');
        }
        text.extend_from_slice(values[5].value.as_bytes());
        let started = std::time::Instant::now();
        let got = streamed(&masker, &text, 64 * 1024).await;
        let took = started.elapsed();
        assert!(got.ends_with(values[5].placeholder.as_str().as_bytes()), "the real value is masked");
        let got_text = String::from_utf8_lossy(&got);
        assert!(values.iter().all(|v| !got_text.contains(v.value.as_str())), "no value passes");
        println!(
            "bench: masker over {} values of {max} bytes: {} KiB held, built in {build:?}; 4 MiB of near-matches in 64 KiB chunks: {took:?}",
            values.len(),
            masker.memory_usage() / 1024
        );
    }
}
