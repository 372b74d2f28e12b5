//! [`HttpClient`] over `wasi:http/outgoing-handler` (WASI 0.2), for `wasm32-wasip2` components.
//!
//! The request body is written in chunks of at most 4096 bytes (the size `blocking-write-and-flush`
//! guarantees), after `handle` so that the host consumes it while it is written; when the server
//! answers without reading the whole body, its answer is returned and the failed write forgotten.
//! The response body is read incrementally from its `input-stream`; nothing is buffered beyond the
//! chunk being returned.

use crate::error::one_line;
use crate::http::{BodyReader, HttpClient, HttpRequest, HttpResponse, Method, TransportError};
use crate::url::HttpUrl;
use std::time::Duration;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, HeaderError, IncomingBody, IncomingResponse, Method as WasiMethod,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::{InputStream, StreamError};

/// Largest chunk `blocking-write-and-flush` accepts.
const WRITE_CHUNK: usize = 4096;
/// Largest chunk requested from the response stream at once.
const READ_CHUNK: u64 = 64 * 1024;

/// An [`HttpClient`] backed by the host's `wasi:http/outgoing-handler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasiHttpClient {
    /// Time allowed to establish the connection.
    pub connect_timeout: Duration,
    /// Time allowed until the first byte of the response (a JSON answer arrives only once the
    /// server has finished the work).
    pub first_byte_timeout: Duration,
    /// Time allowed between two chunks of the body; generous, because an event stream may be quiet
    /// while the server works.
    pub between_bytes_timeout: Duration,
}

impl Default for WasiHttpClient {
    fn default() -> Self {
        WasiHttpClient {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(120),
            between_bytes_timeout: Duration::from_secs(300),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl HttpClient for WasiHttpClient {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let url = HttpUrl::parse(&request.url).map_err(TransportError::Protocol)?;
        let fields = Fields::new();
        for (name, value) in &request.headers {
            fields.append(name, value.as_bytes()).map_err(|e| {
                let why = match e {
                    HeaderError::InvalidSyntax => "is invalid",
                    HeaderError::Forbidden => "is forbidden by the host",
                    HeaderError::Immutable => "cannot be set",
                };
                TransportError::Protocol(format!(
                    "the request header `{}` {why}",
                    one_line(name, 60)
                ))
            })?;
        }
        // An explicit length, so that the host does not send a chunked body (which some servers and
        // proxies refuse, and which makes no sense for an empty DELETE).
        if !request
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            fields
                .append("content-length", request.body.len().to_string().as_bytes())
                .map_err(|_| {
                    TransportError::Protocol("the host refused the Content-Length header".into())
                })?;
        }
        let outgoing = OutgoingRequest::new(fields);
        let method = match request.method {
            Method::Get => WasiMethod::Get,
            Method::Post => WasiMethod::Post,
            Method::Delete => WasiMethod::Delete,
        };
        let scheme = if url.scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let invalid =
            |what: &str| TransportError::Protocol(format!("the host refused the request {what}"));
        outgoing
            .set_method(&method)
            .map_err(|_| invalid("method"))?;
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|_| invalid("scheme"))?;
        outgoing
            .set_authority(Some(&url.authority()))
            .map_err(|_| invalid("authority"))?;
        outgoing
            .set_path_with_query(Some(&url.path_and_query))
            .map_err(|_| invalid("path"))?;
        let body = outgoing.body().map_err(|_| invalid("body"))?;

        let options = RequestOptions::new();
        // A host that does not support a timeout refuses to set it; the request still goes out.
        let _ = options.set_connect_timeout(Some(nanos(self.connect_timeout)));
        let _ = options.set_first_byte_timeout(Some(nanos(self.first_byte_timeout)));
        let _ = options.set_between_bytes_timeout(Some(nanos(self.between_bytes_timeout)));

        let future = outgoing_handler::handle(outgoing, Some(options)).map_err(map_error_code)?;
        // A server may answer (typically 401 or 413) before it has read the whole body, and close
        // the connection: then writing fails but the answer is there, and the answer wins.
        let written = write_body(body, &request.body);

        let response = loop {
            match future.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => return Err(map_error_code(code)),
                Some(Err(())) => {
                    return Err(TransportError::Protocol(
                        "the HTTP response was already taken".into(),
                    ))
                }
                None => future.subscribe().block(),
            }
        };
        drop(written);

        let status = response.status();
        let headers = {
            let fields = response.headers();
            fields
                .entries()
                .into_iter()
                .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                .collect::<Vec<_>>()
        };
        let incoming = response
            .consume()
            .map_err(|_| TransportError::Protocol("the response body was already taken".into()))?;
        let stream = incoming.stream().map_err(|_| {
            TransportError::Protocol("the response body stream was already taken".into())
        })?;
        let body = WasiBody {
            stream: Some(stream),
            body: Some(incoming),
            response: Some(response),
        };
        Ok(HttpResponse {
            status,
            headers,
            body: Box::new(body),
        })
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), TransportError> {
    {
        let stream = body.write().map_err(|_| {
            TransportError::Protocol("the request body stream was already taken".into())
        })?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| stream_error(e, "sending the request"))?;
        }
        // The stream must be dropped before the body is finished.
    }
    OutgoingBody::finish(body, None).map_err(map_error_code)
}

fn stream_error(e: StreamError, doing: &str) -> TransportError {
    match e {
        StreamError::Closed => {
            TransportError::Unavailable(format!("the connection closed while {doing}"))
        }
        StreamError::LastOperationFailed(err) => match wasip2::http::types::http_error_code(&err) {
            Some(code) => map_error_code(code),
            None => TransportError::Unavailable(format!(
                "the connection failed while {doing}: {}",
                one_line(&err.to_debug_string(), 120)
            )),
        },
    }
}

/// A response body read from its `input-stream`. Drops its handles child-first.
struct WasiBody {
    stream: Option<InputStream>,
    body: Option<IncomingBody>,
    response: Option<IncomingResponse>,
}

impl WasiBody {
    fn close(&mut self) {
        self.stream.take();
        if let Some(body) = self.body.take() {
            // Trailers are of no interest; dropping the future releases them.
            drop(IncomingBody::finish(body));
        }
        self.response.take();
    }
}

impl Drop for WasiBody {
    fn drop(&mut self) {
        self.stream.take();
        self.body.take();
        self.response.take();
    }
}

impl BodyReader for WasiBody {
    fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        loop {
            let Some(stream) = &self.stream else {
                return Ok(None);
            };
            match stream.blocking_read(READ_CHUNK) {
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => return Ok(Some(bytes)),
                Err(StreamError::Closed) => {
                    self.close();
                    return Ok(None);
                }
                Err(e) => {
                    let error = stream_error(e, "reading the response");
                    self.close();
                    return Err(error);
                }
            }
        }
    }
}

/// Maps a `wasi:http` error code to a transport error: host refusals are `Denied`, network trouble
/// is `Unavailable`, broken HTTP is `Protocol`.
pub fn map_error_code(code: ErrorCode) -> TransportError {
    use ErrorCode as E;
    use TransportError::{Denied, Protocol, Unavailable};
    let s = |m: &str| m.to_owned();
    match code {
        E::HttpRequestDenied => Denied(s(
            "the host refused the request: its origin is not granted to this connection",
        )),
        E::DestinationIpProhibited => Denied(s(
            "the host refused to connect to a prohibited (private or blocked) address",
        )),
        E::ConnectionLimitReached => Denied(s("the host's limit on outgoing requests was reached")),
        E::HttpRequestBodySize(_) => Denied(s("the request body exceeds the host's limit")),
        E::HttpResponseBodySize(_) => Denied(s("the response body exceeds the host's limit")),
        E::DnsTimeout => Unavailable(s("the DNS lookup timed out")),
        E::DnsError(p) => Unavailable(match p.rcode {
            Some(rcode) => format!("the DNS lookup failed ({})", one_line(&rcode, 40)),
            None => s("the DNS lookup failed"),
        }),
        E::DestinationNotFound => Unavailable(s("the server's host name was not found")),
        E::DestinationUnavailable => Unavailable(s("the server is unavailable")),
        E::DestinationIpUnroutable => Unavailable(s("the server's address is unroutable")),
        E::ConnectionRefused => Unavailable(s("the connection was refused")),
        E::ConnectionTerminated => Unavailable(s("the connection was closed unexpectedly")),
        E::ConnectionTimeout => Unavailable(s("connecting to the server timed out")),
        E::ConnectionReadTimeout | E::HttpResponseTimeout => {
            Unavailable(s("the server did not answer in time"))
        }
        E::ConnectionWriteTimeout => Unavailable(s("sending the request timed out")),
        E::TlsProtocolError => Unavailable(s("the TLS handshake with the server failed")),
        E::TlsCertificateError => Unavailable(s("the server's TLS certificate was not accepted")),
        E::TlsAlertReceived(_) => Unavailable(s("the server aborted the TLS handshake")),
        E::HttpResponseIncomplete => Unavailable(s("the response ended before it was complete")),
        E::ConfigurationError => Unavailable(s("the host's HTTP configuration is invalid")),
        E::InternalError(m) => Unavailable(match m {
            Some(m) => format!("the host's HTTP client failed: {}", one_line(&m, 120)),
            None => s("the host's HTTP client failed"),
        }),
        E::HttpRequestLengthRequired
        | E::HttpRequestMethodInvalid
        | E::HttpRequestUriInvalid
        | E::HttpRequestUriTooLong
        | E::HttpRequestHeaderSectionSize(_)
        | E::HttpRequestHeaderSize(_)
        | E::HttpRequestTrailerSectionSize(_)
        | E::HttpRequestTrailerSize(_) => Protocol(s("the host refused the request as malformed")),
        E::HttpResponseHeaderSectionSize(_)
        | E::HttpResponseHeaderSize(_)
        | E::HttpResponseTrailerSectionSize(_)
        | E::HttpResponseTrailerSize(_) => Protocol(s("the response headers are too large")),
        E::HttpResponseTransferCoding(_) | E::HttpResponseContentCoding(_) => Protocol(s(
            "the response uses an unsupported transfer or content coding",
        )),
        E::HttpUpgradeFailed | E::HttpProtocolError => {
            Protocol(s("the server broke the HTTP protocol"))
        }
        E::LoopDetected => Protocol(s("the request looped")),
    }
}
