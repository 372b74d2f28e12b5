//! The small blocking HTTP abstraction the MCP client runs on. `wasi_http` implements it over
//! `wasi:http/outgoing-handler`; tests implement it with a scripted fake (see `testing`).

/// HTTP methods the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One outgoing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    /// Absolute `http` or `https` URL.
    pub url: String,
    /// Header names and values, in order. Names are case-insensitive.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response whose body is read incrementally.
pub struct HttpResponse {
    pub status: u16,
    /// Header names and values as received (values decoded lossily as UTF-8).
    pub headers: Vec<(String, String)>,
    pub body: Box<dyn BodyReader>,
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, joined with `, ` (the list form of repeated headers).
    pub fn header_joined(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// The media-type essence of `Content-Type`: lowercase, without parameters (`text/event-stream`).
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type")
            .map(media_type_essence)
            .filter(|m| !m.is_empty())
    }

    /// Reads the body to its end, failing once more than `limit` bytes arrive.
    pub fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, ReadError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.body.read_chunk()? {
            if out.len() + chunk.len() > limit {
                return Err(ReadError::TooLarge { limit });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Reads at most `limit` bytes of the body (for error messages), ignoring transport errors.
    pub fn read_prefix(&mut self, limit: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < limit {
            match self.body.read_chunk() {
                Ok(Some(chunk)) => {
                    out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())])
                }
                _ => break,
            }
        }
        out
    }
}

/// Failure while reading a body to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    Transport(TransportError),
    TooLarge { limit: usize },
}

impl From<TransportError> for ReadError {
    fn from(e: TransportError) -> Self {
        ReadError::Transport(e)
    }
}

/// `type/subtype` of a Content-Type value, lowercase, parameters and spaces removed.
pub fn media_type_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A response body, read chunk by chunk.
pub trait BodyReader {
    /// The next chunk, or `None` at the end of the body. Never returns an empty chunk.
    fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError>;
}

/// A body that is already in memory (tests, and empty bodies).
pub struct BytesBody {
    chunks: std::collections::VecDeque<Vec<u8>>,
}

impl BytesBody {
    /// A body delivered as the given chunks, in order (empty chunks are skipped).
    pub fn chunks(chunks: Vec<Vec<u8>>) -> Self {
        BytesBody {
            chunks: chunks.into_iter().filter(|c| !c.is_empty()).collect(),
        }
    }

    /// A body delivered in one chunk.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self::chunks(vec![bytes.into()])
    }
}

impl BodyReader for BytesBody {
    fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        Ok(self.chunks.pop_front())
    }
}

/// Why a request could not be completed at the transport level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The host refused the request (origin not granted, private address, limit reached).
    #[error("{0}")]
    Denied(String),
    /// The server could not be reached (connection refused, DNS failure, timeout, connection lost).
    #[error("{0}")]
    Unavailable(String),
    /// The exchange broke the HTTP protocol, or the request could not be built.
    #[error("{0}")]
    Protocol(String),
}

/// A blocking HTTP client.
pub trait HttpClient {
    /// Sends `request` and returns once the response head has arrived; the body is read afterwards.
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_compared_by_essence() {
        assert_eq!(
            media_type_essence("Text/Event-Stream; charset=utf-8"),
            "text/event-stream"
        );
        assert_eq!(media_type_essence(" application/json "), "application/json");
        assert_eq!(media_type_essence(""), "");
    }

    #[test]
    fn reading_a_body_past_its_limit_fails() {
        let mut r = HttpResponse {
            status: 200,
            headers: vec![],
            body: Box::new(BytesBody::chunks(vec![b"abc".to_vec(), b"def".to_vec()])),
        };
        assert_eq!(r.read_to_end(5), Err(ReadError::TooLarge { limit: 5 }));
        let mut r = HttpResponse {
            status: 200,
            headers: vec![],
            body: Box::new(BytesBody::new("abcdef")),
        };
        assert_eq!(r.read_prefix(4), b"abcd");
    }
}
