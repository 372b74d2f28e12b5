//! What comes back: responses are rewritten before the connector reads them, so that it never sees a
//! credential value.
//!
//! * **Token responses** (a `POST` to the token endpoint the host learned): a JSON object whose
//!   `access_token`, `refresh_token` and `id_token` are replaced by fresh placeholders
//!   ([`rewrite_token_response`]); the values are held for the call, sealed only if the connector
//!   claims them with `update-secrets`. The `scope` member tells the host what was granted. A 2xx
//!   answer that is not a JSON object is refused: the host cannot tell what in it is a token.
//! * **Registration responses** (a `POST` to the registration endpoint): `client_secret` and
//!   `registration_access_token` likewise.
//! * **Every response**: a known credential of the connection echoed anywhere (a header, an MCP result,
//!   an error page) — as is or URL-encoded — is replaced by its placeholder while the body streams
//!   ([`Masker`], [`MaskedBody`]).

use crate::vault::credentials::{Credential, Kind, Placeholder};
use bytes::Bytes;
use serde_json::Value;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The largest token or registration response the host reads (larger ones are refused).
pub const MAX_OAUTH_RESPONSE: usize = 256 * 1024;

/// What a token response said, besides its tokens.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TokenFacts {
    /// Its `scope`, split (`None`: absent, meaning what was asked).
    pub scope: Option<Vec<String>>,
    /// Whether it carried an access token (a successful grant or refresh).
    pub granted: bool,
}

/// Rewrite a token response: each credential member becomes a placeholder, minted by `mint(kind,
/// value)`. Returns the new body and what it said. Error answers (no `access_token`) pass unchanged.
pub fn rewrite_token_response(
    status: u16,
    body: &[u8],
    mint: &mut dyn FnMut(Kind, zeroize::Zeroizing<String>) -> Placeholder,
) -> Result<(Vec<u8>, TokenFacts), String> {
    let mut doc: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ if !(200..300).contains(&status) => return Ok((body.to_vec(), TokenFacts::default())),
        _ => return Err("the token endpoint answered something that is not a JSON object; the host passes on only JSON token responses".into()),
    };
    let obj = doc.as_object_mut().expect("an object");
    let mut facts = TokenFacts::default();
    for (member, kind) in [("access_token", Kind::AccessToken), ("refresh_token", Kind::RefreshToken), ("id_token", Kind::IdToken)] {
        if let Some(Value::String(v)) = obj.get(member) {
            if v.is_empty() {
                continue;
            }
            let p = mint(kind, zeroize::Zeroizing::new(v.clone()));
            if kind == Kind::AccessToken {
                facts.granted = true;
            }
            obj.insert(member.to_string(), Value::String(p.as_str().to_string()));
        } else if let Some(other) = obj.get(member) {
            if !other.is_null() {
                return Err(format!("the token response's {member} is not a string; refused"));
            }
        }
    }
    facts.scope = match obj.get("scope") {
        Some(Value::String(s)) => Some(s.split_whitespace().map(str::to_string).collect()),
        Some(Value::Array(a)) => Some(a.iter().filter_map(Value::as_str).map(str::to_string).collect()),
        _ => None,
    };
    Ok((serde_json::to_vec(&doc).map_err(|e| e.to_string())?, facts))
}

/// Rewrite a registration response (RFC 7591): `client_secret` and `registration_access_token`
/// become placeholders. A body that is not a JSON object passes unchanged (it holds no secret the
/// host knows how to find; a confidential registration must answer JSON).
pub fn rewrite_registration_response(
    body: &[u8],
    mint: &mut dyn FnMut(Kind, zeroize::Zeroizing<String>) -> Placeholder,
) -> Result<Vec<u8>, String> {
    let Ok(mut doc @ Value::Object(_)) = serde_json::from_slice::<Value>(body) else {
        return Ok(body.to_vec());
    };
    let obj = doc.as_object_mut().expect("an object");
    for (member, kind) in [("client_secret", Kind::ClientSecret), ("registration_access_token", Kind::RegistrationToken)] {
        match obj.get(member) {
            Some(Value::String(v)) if !v.is_empty() => {
                let p = mint(kind, zeroize::Zeroizing::new(v.clone()));
                obj.insert(member.to_string(), Value::String(p.as_str().to_string()));
            }
            Some(Value::String(_)) | Some(Value::Null) | None => {}
            Some(_) => return Err(format!("the registration response's {member} is not a string; refused")),
        }
    }
    serde_json::to_vec(&doc).map_err(|e| e.to_string())
}

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

/// A response body with known credential values masked while it streams.
pub struct MaskedBody<B> {
    inner: B,
    masker: std::sync::Arc<Masker>,
    pending: Vec<u8>,
    done: bool,
}

impl<B> MaskedBody<B> {
    /// Mask `inner` with `masker`.
    pub fn new(inner: B, masker: std::sync::Arc<Masker>) -> MaskedBody<B> {
        MaskedBody { inner, masker, pending: Vec::new(), done: false }
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
                let this = &mut *self;
                let out = this.masker.drain(&mut this.pending, true);
                return Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(out)))));
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let this = &mut *self;
                        this.pending.extend_from_slice(&data);
                        let out = this.masker.drain(&mut this.pending, false);
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
    use crate::vault::credentials::Binding;
    use http_body_util::BodyExt;
    use zeroize::Zeroizing;

    fn minter() -> (impl FnMut(Kind, Zeroizing<String>) -> Placeholder, std::rc::Rc<std::cell::RefCell<Vec<(Kind, String, Placeholder)>>>) {
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let s2 = seen.clone();
        (
            move |k: Kind, v: Zeroizing<String>| {
                let p = Placeholder::mint();
                s2.borrow_mut().push((k, v.to_string(), p.clone()));
                p
            },
            seen,
        )
    }

    #[test]
    fn a_token_response_reaches_the_connector_with_placeholders_only() {
        let (mut mint, seen) = minter();
        let body = br#"{"access_token":"AT-secret-1","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-secret-1","id_token":"ID.secret","scope":"mcp.read offline_access","organization_id":"orga_1"}"#;
        let (out, facts) = rewrite_token_response(200, body, &mut mint).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("orga_1") && text.contains("3600"));
        assert_eq!(facts.scope, Some(vec!["mcp.read".to_string(), "offline_access".to_string()]));
        assert!(facts.granted);
        let seen = seen.borrow();
        assert_eq!(seen.iter().map(|(k, _, _)| *k).collect::<Vec<_>>(), vec![Kind::AccessToken, Kind::RefreshToken, Kind::IdToken]);
        for (_, value, p) in seen.iter() {
            assert!(text.contains(p.as_str()) && !text.contains(value.as_str()));
        }
    }

    #[test]
    fn token_responses_that_cannot_be_read_are_refused_and_errors_pass() {
        let (mut mint, seen) = minter();
        assert!(rewrite_token_response(200, b"access_token=AT&token_type=bearer", &mut mint).is_err());
        assert!(rewrite_token_response(200, br#"{"access_token":{"v":"AT"}}"#, &mut mint).is_err());
        let (out, facts) = rewrite_token_response(400, br#"{"error":"invalid_grant"}"#, &mut mint).unwrap();
        assert_eq!(out, br#"{"error":"invalid_grant"}"#);
        assert!(!facts.granted);
        assert_eq!(rewrite_token_response(502, b"<html>bad gateway</html>", &mut mint).unwrap().0, b"<html>bad gateway</html>");
        assert!(seen.borrow().is_empty());
    }

    #[test]
    fn a_registration_secret_becomes_a_placeholder() {
        let (mut mint, seen) = minter();
        let out = rewrite_registration_response(br#"{"client_id":"c1","client_secret":"CS-value","registration_access_token":"RAT-value"}"#, &mut mint).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"client_id\":\"c1\"") && !text.contains("-value"), "{text}");
        assert_eq!(seen.borrow().len(), 2);
        let public = br#"{"client_id":"c2"}"#;
        assert_eq!(rewrite_registration_response(public, &mut mint).unwrap(), public);
    }

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
            let body = MaskedBody::new(inner, masker.clone());
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
