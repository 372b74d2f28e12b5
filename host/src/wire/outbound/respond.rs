//! Step 8 of the send hook: what a response becomes before the connector reads it. The treatment was
//! decided before the request left ([`Treatment::decide`]); here it is carried out.
//!
//! | treatment | what happens |
//! |---|---|
//! | metadata (2xx) | read whole (bounded), learned from, then handled as a small plain answer |
//! | credentials | read whole (bounded); every credential member becomes a placeholder; refused when it cannot be read |
//! | plain, JSON/form/text or no content type | read whole up to [`inbound::MAX_OAUTH_RESPONSE`]: naming a credential member at its top level, it is rewritten like a token answer; larger, it streams and is cut where such a member begins |
//! | plain, anything else (an event stream, HTML) | streams, echoes masked, cut where a top-level credential member begins |

use super::{mask_headers, OutboundContext, ReleaseOnDrop};
use crate::policy::{Method, Target};
use crate::sandbox::limits::JSON_PARSE_FACTOR;
use crate::vault::credentials::Placeholder;
use crate::wire::inbound::{self, Treatment};
use crate::wire::json_members;
use crate::wire::masker::MaskedBody;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, WasiBody};

/// Whether a plain answer with these headers is read whole to look for credential members: JSON,
/// forms, plain text, or no declared type (what a token or registration endpoint answers with).
fn read_whole(headers: &http::HeaderMap) -> bool {
    let Some(ct) = headers.get(http::header::CONTENT_TYPE) else { return true };
    let ct = String::from_utf8_lossy(ct.as_bytes()).to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.is_empty()
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "text/json"
        || essence == "text/plain"
        || essence == "application/x-www-form-urlencoded"
}

/// Why the host cannot read an answer as the connector would (the host asked for it whole and
/// uncompressed): a partial answer, or a content or transfer coding.
fn unreadable(head: &http::response::Parts) -> Option<String> {
    if head.status.as_u16() == 206 || head.headers.contains_key(http::header::CONTENT_RANGE) {
        return Some("it is a partial answer (206, Content-Range); the host masks and rewrites only whole answers".into());
    }
    let codings = |name: http::header::HeaderName, ok: &[&str]| -> Option<String> {
        head.headers.get_all(name).iter().flat_map(|v| String::from_utf8_lossy(v.as_bytes()).split(',').map(|c| c.trim().to_ascii_lowercase()).collect::<Vec<_>>()).find(|c| !c.is_empty() && !ok.contains(&c.as_str()))
    };
    if let Some(c) = codings(http::header::CONTENT_ENCODING, &["identity"]) {
        return Some(format!(
            "it is encoded ({}) although the host asked for identity; the host masks and rewrites only what it can read",
            crate::errors::one_line(&c).chars().take(40).collect::<String>()
        ));
    }
    if let Some(c) = codings(http::header::TRANSFER_ENCODING, &["chunked", "identity"]) {
        return Some(format!("its transfer coding {} is not one the host reads", crate::errors::one_line(&c).chars().take(40).collect::<String>()));
    }
    None
}

fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// A body that first yields bytes already read, then the rest.
struct Prefixed<B> {
    prefix: Option<Bytes>,
    inner: B,
}

impl<B: http_body::Body<Data = Bytes> + Unpin> http_body::Body for Prefixed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        if let Some(p) = self.prefix.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(p))));
        }
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.inner.is_end_stream()
    }
}

impl OutboundContext {
    /// Read an OAuth response whole (bounded).
    async fn read_small<B>(&self, target: &Target, body: B) -> Result<Bytes, Error>
    where
        B: http_body::Body<Data = Bytes, Error = Error> + Send + Unpin + 'static,
    {
        match http_body_util::Limited::new(body, inbound::MAX_OAUTH_RESPONSE).collect().await {
            Ok(c) => Ok(c.to_bytes()),
            Err(e) => match e.downcast::<Error>() {
                Ok(e) => Err(*e),
                Err(_) => Err(self.deny(format!(
                    "the answer of {target} is larger than {} bytes, more than the host reads of an answer that may hold a credential",
                    inbound::MAX_OAUTH_RESPONSE
                ))),
            },
        }
    }

    /// Rewrite an answer that may hold credentials, minting a placeholder for each (see
    /// [`inbound::rewrite_credential_response`]); a refusal denies the request.
    fn rewrite_credentials(&self, target: &Target, status: u16, bytes: &[u8]) -> Result<Bytes, Error> {
        let _parsing = self.budget.hold("OAuth documents", bytes.len().saturating_mul(JSON_PARSE_FACTOR)).map_err(|why| self.deny(why))?;
        let mut failed = None;
        let result = inbound::rewrite_credential_response(status, bytes, &mut |kind, value| match self.mint(kind, value) {
            Ok(p) => p,
            Err(e) => {
                failed = Some(e);
                Placeholder::mint()
            }
        });
        let (out, facts) = result.map_err(|why| self.deny(format!("the answer of {target} was refused: {why}")))?;
        if let Some(e) = failed {
            return Err(self.deny(format!("the answer of {target} was refused: {e}")));
        }
        if facts.granted {
            // Every grant is judged, a refresh during an ordinary call included: wider than the
            // connection may hold, the answer is refused (its tokens never reach the connector).
            if let Some(granted) = &facts.scope {
                crate::oauth::scopes::judge_grant(granted, &self.allowed_scopes())
                    .map_err(|why| self.deny(format!("the answer of {target} was refused: the vendor granted more than it may: {why}")))?;
            }
            self.token_facts.lock().unwrap_or_else(|p| p.into_inner()).push(facts);
        }
        Ok(Bytes::from(out))
    }

    /// A plain answer read whole: rewritten when its top level names a credential member.
    fn sweep(&self, target: &Target, head: &http::response::Parts, bytes: Bytes) -> Result<Bytes, Error> {
        if json_members::names_a_credential(&bytes) {
            return self.rewrite_credentials(target, head.status.as_u16(), &bytes);
        }
        if is_form(&head.headers) {
            let named = url::form_urlencoded::parse(&bytes).find(|(k, _)| json_members::CREDENTIAL_MEMBERS.iter().any(|(m, _)| m == k));
            if let Some((member, _)) = named {
                return Err(self.deny(format!(
                    "the answer of {target} carries a form field {member}; the host passes on credentials only in JSON it can rewrite"
                )));
            }
        }
        Ok(bytes)
    }

    /// Learn from, rewrite and mask a response before the connector reads it, as `treatment` says.
    pub(crate) async fn respond<B>(
        &self,
        method: Method,
        target: &Target,
        treatment: Treatment,
        response: http::Response<B>,
    ) -> Result<http::Response<WasiBody>, Error>
    where
        B: http_body::Body<Data = Bytes, Error = Error> + Send + Unpin + 'static,
    {
        let (head, body) = response.into_parts();
        let status = head.status.as_u16();
        if self.endpoint.as_ref() == Some(target) && (status == 401 || status == 403) {
            if let Some(h) = head.headers.get(http::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()) {
                self.oauth.lock().unwrap_or_else(|p| p.into_inner()).learn_challenge(status, h);
                self.oauth_changed.store(true, Ordering::SeqCst);
            }
        }
        if let Some(why) = unreadable(&head) {
            return Err(self.deny(format!("the answer of {target} was refused: {why}")));
        }
        let success = (200..300).contains(&status);
        match treatment {
            Treatment::Metadata if success => {
                let bytes = self.read_small(target, body).await?;
                let _held = self.budget.hold("OAuth documents", bytes.len().saturating_mul(JSON_PARSE_FACTOR)).map_err(|why| self.deny(why))?;
                if let (Some(e), Ok(doc)) = (&self.endpoint, serde_json::from_slice::<serde_json::Value>(&bytes)) {
                    if self.oauth.lock().unwrap_or_else(|p| p.into_inner()).learn(e, method, target, &doc) {
                        self.oauth_changed.store(true, Ordering::SeqCst);
                    }
                }
                let bytes = self.sweep(target, &head, bytes)?;
                Ok(self.whole(head, bytes))
            }
            Treatment::Credentials => {
                let bytes = self.read_small(target, body).await?;
                let bytes = self.rewrite_credentials(target, status, &bytes)?;
                Ok(self.whole(head, bytes))
            }
            _ if method != Method::Head && read_whole(&head.headers) => {
                // Read up to the size of an OAuth answer; smaller, it is swept whole.
                let mut body = body;
                let mut buf = bytes::BytesMut::new();
                let mut held = 0usize;
                let outcome: Result<bool, Error> = async {
                    while let Some(frame) = body.frame().await {
                        let Ok(data) = frame?.into_data() else { continue };
                        self.budget.charge("response bodies", data.len()).map_err(|why| self.deny(why))?;
                        held += data.len();
                        buf.extend_from_slice(&data);
                        if buf.len() > inbound::MAX_OAUTH_RESPONSE {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                }
                .await;
                let _held = ReleaseOnDrop(&self.budget, held);
                if outcome? {
                    let bytes = self.sweep(target, &head, buf.freeze())?;
                    return Ok(self.whole(head, bytes));
                }
                let rest = Prefixed { prefix: Some(buf.freeze()), inner: body };
                Ok(self.streamed(target, head, rest))
            }
            _ => Ok(self.streamed(target, head, body)),
        }
    }

    /// A response whose body the host holds whole: echoes masked, length set.
    fn whole(&self, mut head: http::response::Parts, bytes: Bytes) -> http::Response<WasiBody> {
        let masker = self.matchers().echo.clone();
        mask_headers(&mut head.headers, masker.as_deref());
        let bytes = match &masker {
            Some(m) if m.finds(&bytes) => Bytes::from(m.mask(&bytes)),
            _ => bytes,
        };
        head.headers.remove(http::header::TRANSFER_ENCODING);
        head.headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(bytes.len()));
        http::Response::from_parts(head, http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed_unsync())
    }

    /// A response streamed to the connector: echoes masked, cut where a top-level credential member
    /// begins (too large to be read whole and rewritten).
    fn streamed<B>(&self, target: &Target, mut head: http::response::Parts, body: B) -> http::Response<WasiBody>
    where
        B: http_body::Body<Data = Bytes, Error = Error> + Send + Unpin + 'static,
    {
        let masker = self.matchers().echo.clone();
        mask_headers(&mut head.headers, masker.as_deref());
        let why = format!(
            "the answer of {target} names a credential at its top level but is larger than {} bytes, too large to rewrite; it was cut there",
            inbound::MAX_OAUTH_RESPONSE
        );
        let denials = self.denial_sink();
        let cut: Arc<dyn Fn(&'static str) -> Error + Send + Sync> = Arc::new(move |_member| {
            denials(why.clone());
            Error::HttpResponseBodySize(None)
        });
        let body: WasiBody = MaskedBody::new(body, masker).cut_at_credential_members(cut).boxed_unsync();
        http::Response::from_parts(head, body)
    }
}
