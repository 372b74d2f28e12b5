//! The HTTP exchanges of OAuth: metadata documents (GET, a few redirects followed, each one a new
//! request the host checks), form and JSON POSTs, the error answers of OAuth endpoints (RFC 6749
//! §5.2), and the randomness behind PKCE verifiers and `state`.

use super::OAuthContext;
use crate::error::{one_line, reason_phrase, summarize_error_body, McpError};
use crate::http::{HttpRequest, HttpResponse, Method, ReadError};
use crate::url::{resolve_location, HttpUrl};
use crate::LogLevel;
use base64::Engine;
use serde_json::Value;

/// The largest metadata document, registration or token answer read.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Redirects followed for one metadata GET.
const MAX_REDIRECTS: usize = 3;

/// The outcome of fetching a JSON document.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// A 2xx answer holding a JSON object.
    Json(Value),
    /// Not there: a 4xx (or 3xx past the redirect limit), or a 2xx that is not a JSON object (a
    /// catch-all HTML page).
    Missing(u16),
}

/// GETs a JSON document. 5xx answers and transport failures are errors; a missing document is not.
pub(crate) fn get_json(ctx: &OAuthContext<'_>, url: &str) -> Result<Fetched, McpError> {
    let mut url = url.to_owned();
    let mut redirects = 0;
    loop {
        let parsed = HttpUrl::parse(&url).map_err(|e| {
            McpError::protocol(format!("invalid metadata URL `{}`: {e}", short(&url)))
        })?;
        ctx.log(LogLevel::Debug, &format!("GET {}", short(&url)));
        let mut response = ctx.http.send(HttpRequest {
            method: Method::Get,
            url: url.clone(),
            headers: vec![("Accept".into(), "application/json".into())],
            body: Vec::new(),
        })?;
        let status = response.status;
        match status {
            301 | 302 | 303 | 307 | 308 => {
                let next = response
                    .header("location")
                    .and_then(|l| resolve_location(&parsed, l));
                match next {
                    Some(next) if redirects < MAX_REDIRECTS => {
                        redirects += 1;
                        url = next;
                    }
                    _ => return Ok(Fetched::Missing(status)),
                }
            }
            200..=299 => {
                let body = read_body(&mut response, &url)?;
                return Ok(match serde_json::from_slice::<Value>(&body) {
                    Ok(value @ Value::Object(_)) => Fetched::Json(value),
                    _ => {
                        ctx.log(
                            LogLevel::Debug,
                            &format!("{} is not a JSON document; ignoring it", short(&url)),
                        );
                        Fetched::Missing(status)
                    }
                });
            }
            500..=599 => {
                return Err(McpError::Http {
                    status,
                    message: format!(
                        "{} answered HTTP {status} ({})",
                        short(&url),
                        reason_phrase(status)
                    ),
                })
            }
            _ => return Ok(Fetched::Missing(status)),
        }
    }
}

/// An answer of an OAuth endpoint, read to its end.
pub(crate) struct Answer {
    pub status: u16,
    pub media_type: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The RFC 6749 §5.2 error of the answer (`error`, `error_description`), if it has one.
    pub(crate) fn oauth_error(&self) -> Option<OAuthErrorBody> {
        let parsed: oauth2::basic::BasicErrorResponse = serde_json::from_slice(&self.body).ok()?;
        let error = parsed.error().as_ref().to_owned();
        if error.is_empty() {
            return None;
        }
        Some(OAuthErrorBody {
            error: one_line(&error, 60),
            description: parsed
                .error_description()
                .map(|d| one_line(d, 200))
                .filter(|d| !d.is_empty()),
        })
    }

    /// A short description of a failed answer (never the whole body).
    pub(crate) fn summary(&self) -> String {
        summarize_error_body(self.media_type.as_deref(), &self.body)
            .unwrap_or_else(|| reason_phrase(self.status).to_owned())
    }
}

/// An OAuth error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthErrorBody {
    pub error: String,
    pub description: Option<String>,
}

impl OAuthErrorBody {
    /// `invalid_grant: The refresh token expired`, or just the code.
    pub(crate) fn describe(&self) -> String {
        match &self.description {
            Some(d) => format!("{}: {d}", self.error),
            None => self.error.clone(),
        }
    }
}

/// POSTs `body` with `content_type` (plus `headers`) and reads the answer.
pub(crate) fn post(
    ctx: &OAuthContext<'_>,
    url: &str,
    content_type: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Result<Answer, McpError> {
    ctx.log(LogLevel::Debug, &format!("POST {}", short(url)));
    let mut all = vec![
        ("Content-Type".to_owned(), content_type.to_owned()),
        ("Accept".to_owned(), "application/json".to_owned()),
    ];
    all.extend(headers);
    let mut response = ctx.http.send(HttpRequest {
        method: Method::Post,
        url: url.to_owned(),
        headers: all,
        body,
    })?;
    let media_type = response.media_type();
    let body = read_body(&mut response, url)?;
    Ok(Answer {
        status: response.status,
        media_type,
        body,
    })
}

fn read_body(response: &mut HttpResponse, url: &str) -> Result<Vec<u8>, McpError> {
    response
        .read_to_end(MAX_DOCUMENT_BYTES)
        .map_err(|e| match e {
            ReadError::Transport(t) => t.into(),
            ReadError::TooLarge { limit } => McpError::protocol(format!(
                "the answer of {} exceeds {limit} bytes",
                short(url)
            )),
        })
}

/// A URL shortened for messages.
pub(crate) fn short(url: &str) -> String {
    one_line(url, 160)
}

/// `bytes` random bytes as unpadded base64url (from `wasi:random` in a component).
pub(crate) fn random_token(bytes: usize) -> Result<String, McpError> {
    let raw = random_bytes(bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

#[cfg(target_os = "wasi")]
fn random_bytes(n: usize) -> Result<Vec<u8>, McpError> {
    let bytes = wasip2::random::random::get_random_bytes(n as u64);
    if bytes.len() == n {
        Ok(bytes)
    } else {
        Err(McpError::protocol("the host returned too few random bytes"))
    }
}

#[cfg(not(target_os = "wasi"))]
fn random_bytes(n: usize) -> Result<Vec<u8>, McpError> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| McpError::protocol(format!("no randomness available: {e}")))?;
    Ok(bytes)
}
