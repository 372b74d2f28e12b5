//! Echo masking: a known credential of the connection echoed anywhere in a response (a header, an MCP
//! result, an error page) — as is or URL-encoded — is replaced by its placeholder while the body
//! streams, so a connector never reads a value even when a server repeats it.

use crate::vault::credentials::Credential;
use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Replaces every known credential value (as is, percent- or form-encoded) by its placeholder.
pub struct Masker {
    matcher: aho_corasick::AhoCorasick,
    replacements: Vec<String>,
    needles: Vec<Vec<u8>>,
}

impl Masker {
    /// A masker for these credentials (`None` when there is nothing to mask). Values shorter than 8
    /// bytes are not masked (they would match by accident).
    pub fn new<'a>(credentials: impl IntoIterator<Item = &'a Credential>) -> Option<Masker> {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        let mut replacements = Vec::new();
        for c in credentials {
            if c.value.len() < 8 {
                continue;
            }
            let raw = c.value.as_bytes();
            let forms = [
                raw.to_vec(),
                url::form_urlencoded::byte_serialize(raw).collect::<String>().into_bytes(),
                percent_encode_upper(raw).into_bytes(),
                c.value.replace('/', "\\/").into_bytes(),
            ];
            for f in forms {
                if !needles.contains(&f) {
                    needles.push(f);
                    replacements.push(c.placeholder.as_str().to_string());
                }
            }
        }
        if needles.is_empty() {
            return None;
        }
        let matcher = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
            .build(&needles)
            .ok()?;
        Some(Masker { matcher, replacements, needles })
    }

    /// `bytes` with every known value replaced.
    pub fn mask(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut pos = 0;
        for m in self.matcher.find_iter(bytes) {
            out.extend_from_slice(&bytes[pos..m.start()]);
            out.extend_from_slice(self.replacements[m.pattern().as_usize()].as_bytes());
            pos = m.end();
        }
        out.extend_from_slice(&bytes[pos..]);
        out
    }

    /// Whether `bytes` hold a known value.
    pub fn finds(&self, bytes: &[u8]) -> bool {
        self.matcher.is_match(bytes)
    }

    /// How many bytes at the end of `bytes` could be the start of a value split across chunks: only
    /// those are held back (a stream that waits on its last event, SSE, must not be delayed).
    fn hold_back(&self, bytes: &[u8]) -> usize {
        let longest = self.needles.iter().map(Vec::len).max().unwrap_or(1);
        for k in (1..longest.min(bytes.len() + 1)).rev() {
            let tail = &bytes[bytes.len() - k..];
            if self.needles.iter().any(|n| n.len() > k && n.starts_with(tail)) {
                return k;
            }
        }
        0
    }

    /// Mask what is safe to emit from `pending` (everything when `last`), keeping a tail that could
    /// be the start of a value split across chunks.
    fn drain(&self, pending: &mut Vec<u8>, last: bool) -> Vec<u8> {
        let safe = if last { pending.len() } else { pending.len() - self.hold_back(pending) };
        let mut out = Vec::with_capacity(safe);
        let mut pos = 0;
        for m in self.matcher.find_iter(&pending[..]) {
            if m.start() >= safe {
                break;
            }
            out.extend_from_slice(&pending[pos..m.start()]);
            out.extend_from_slice(self.replacements[m.pattern().as_usize()].as_bytes());
            pos = m.end();
        }
        let cut = pos.max(safe);
        out.extend_from_slice(&pending[pos..cut]);
        pending.drain(..cut);
        out
    }
}

fn percent_encode_upper(raw: &[u8]) -> String {
    raw.iter().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(b) { (*b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Makes the error a body ends with when it is cut at a credential member (the member's name given).
pub type Cut<E> = std::sync::Arc<dyn Fn(&'static str) -> E + Send + Sync>;

/// A response body with known credential values masked while it streams, optionally cut where the
/// top level of a JSON object names a credential member ([`crate::wire::json_members`]).
pub struct MaskedBody<B: http_body::Body> {
    inner: B,
    masker: Option<std::sync::Arc<Masker>>,
    pending: Vec<u8>,
    done: bool,
    members: Option<(crate::wire::json_members::TopLevelMembers, Cut<B::Error>)>,
}

impl<B: http_body::Body> MaskedBody<B> {
    /// Mask `inner` with `masker` (`None`: nothing to mask).
    pub fn new(inner: B, masker: Option<std::sync::Arc<Masker>>) -> MaskedBody<B> {
        MaskedBody { inner, masker, pending: Vec::new(), done: false, members: None }
    }

    /// End the body with `cut`'s error, before the member's value, where the top level of a JSON
    /// object names a credential member.
    pub fn cut_at_credential_members(mut self, cut: Cut<B::Error>) -> MaskedBody<B> {
        self.members = Some((Default::default(), cut));
        self
    }

    fn drain(&mut self, last: bool) -> Vec<u8> {
        match &self.masker {
            Some(m) => m.drain(&mut self.pending, last),
            None => std::mem::take(&mut self.pending),
        }
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
                if self.pending.is_empty() {
                    return Poll::Ready(None);
                }
                let out = self.drain(true);
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
                                this.pending.clear();
                                this.done = true;
                                return Poll::Ready(Some(Err(e)));
                            }
                        }
                        this.pending.extend_from_slice(&data);
                        let out = this.drain(false);
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
        self.done && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::credentials::{Binding, Kind};
    use http_body_util::BodyExt;
    use zeroize::Zeroizing;

    fn cred(value: &str) -> Credential {
        Credential::new(Kind::AccessToken, Zeroizing::new(value.into()), Binding::default())
    }

    #[tokio::test]
    async fn echoed_values_are_masked_across_every_chunk_boundary() {
        let c = cred("tok/en+value=1234");
        let masker = std::sync::Arc::new(Masker::new([&c]).unwrap());
        let text = format!("a {} b {} c tok%2Fen%2Bvalue%3D1234 d tok\\/en+value=1234", c.value.as_str(), c.value.as_str());
        let want = format!("a {p} b {p} c {p} d {p}", p = c.placeholder.as_str());
        assert_eq!(String::from_utf8(masker.mask(text.as_bytes())).unwrap(), want);
        for split in 1..text.len() {
            let chunks: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = text
                .as_bytes()
                .chunks(split)
                .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
                .collect();
            let inner = http_body_util::StreamBody::new(futures::stream::iter(chunks));
            let body = MaskedBody::new(inner, Some(masker.clone()));
            let got = body.collect().await.unwrap().to_bytes();
            assert_eq!(String::from_utf8(got.to_vec()).unwrap(), want, "chunks of {split}");
        }
        assert!(Masker::new([&cred("short")]).is_none(), "too short to mask");
    }

    #[test]
    fn a_stream_is_held_back_only_where_a_value_could_begin() {
        let c = cred("tok/en+value=1234");
        let m = Masker::new([&c]).unwrap();
        let mut pending = b"event: message\ndata: {}\n\n".to_vec();
        assert_eq!(m.drain(&mut pending, false), b"event: message\ndata: {}\n\n", "a whole SSE event goes out at once");
        let mut pending = b"data: tok/en".to_vec();
        assert_eq!(m.drain(&mut pending, false), b"data: ", "the start of a value waits for the rest");
        assert_eq!(pending, b"tok/en");
    }
}
