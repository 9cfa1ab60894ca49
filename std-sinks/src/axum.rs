//! An [axum](https://docs.rs/axum) extractor for CloudEvents requests in any
//! content mode (binary, structured, batched).
//!
//! [`CloudEvents`] reads the body (under axum's `DefaultBodyLimit`, 2 MiB
//! unless the router says otherwise), undoes a `Content-Encoding: gzip` (as
//! [`HttpSink`](crate::sink::HttpSink)`::gzip(true)` sends; the decoded body
//! is under the same limit, and never over [`MAX_DECODED_BODY`]), checks
//! every event of the request against the spec, and only then runs the
//! handler: an invalid request (or one
//! with more than one `Content-Type`) is answered
//! `400 Bad Request` with the reason as text (`415` for an event format other
//! than JSON or a content coding other than gzip, `413` for a body over the
//! limit), and the handler never sees part of a batch. The events are then visited with
//! [`CloudEvents::for_each`], each borrowing the request body (zero-copy).
//!
//! ```
//! use axum::{routing::post, Router};
//! use ossa_events::axum::CloudEvents;
//!
//! async fn collect(events: CloudEvents) -> &'static str {
//!     events.for_each(|ev| println!("{} {} from {}", ev.ty(), ev.id(), ev.source()));
//!     "ok"
//! }
//!
//! let app: Router = Router::new().route("/events", post(collect));
//! # drop(app);
//! ```

use std::fmt;

use axum_core::extract::{FromRequest, Request};
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use ossa_events_core::parse::http::{Message, content_mode};
use ossa_events_core::{Event, ParseError, Scratch};

use crate::http_types::{Coding, GunzipError, content_coding, gunzip};

/// Most bytes a gzip request body may decode to: 16 MiB, even when the
/// router's `DefaultBodyLimit` is higher or disabled. That limit bounds the
/// bytes received and, once inflated, the decoded ones too; this bounds the
/// inflating itself (a few KiB of gzip can decode to gigabytes).
pub const MAX_DECODED_BODY: usize = 16 * 1024 * 1024;

/// The events of one CloudEvents HTTP request, all valid.
///
/// Extract it in an axum handler (it reads the body, so it must be the last
/// extractor). [`len`](Self::len) tells how many events the request held,
/// [`for_each`](Self::for_each) visits them in order.
#[derive(Clone)]
pub struct CloudEvents {
    headers: HeaderMap,
    body: Bytes,
    len: usize,
    batched: bool,
}

impl fmt::Debug for CloudEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudEvents")
            .field("len", &self.len)
            .field("batched", &self.batched)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Why a request is not CloudEvents: answered as a response by axum.
#[derive(Debug)]
#[non_exhaustive]
pub enum CloudEventsRejection {
    /// The body could not be read, or is over the body limit (`413`),
    /// as received or, with gzip, decoded.
    Body(axum_core::extract::rejection::BytesRejection),
    /// An event (or the batch, or the headers) breaks the CloudEvents spec:
    /// `400`, or `415` for [`ParseError::UnsupportedFormat`]. In a batch,
    /// [`ParseError::InBatch`] names the element.
    Invalid(ParseError),
    /// The body's `Content-Encoding` is neither `gzip` (`x-gzip`) nor
    /// `identity`, or there is more than one (`415`); the header's values.
    UnsupportedEncoding(String),
    /// The body says `Content-Encoding: gzip` and is not gzip, or is cut
    /// short (`400`).
    InvalidGzip(std::io::Error),
    /// The gzip body decodes to more than [`MAX_DECODED_BODY`] bytes (`413`).
    DecodedTooLarge,
    /// The request has more than one `Content-Type` header, so its content
    /// mode is ambiguous (`400`, as the built-in receiver answers).
    ContentTypes,
}

impl fmt::Display for CloudEventsRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloudEventsRejection::Body(e) => write!(f, "request body: {e}"),
            CloudEventsRejection::Invalid(e) => write!(f, "{e}"),
            CloudEventsRejection::UnsupportedEncoding(v) => write!(
                f,
                "Content-Encoding {v:?}: only gzip or identity is supported"
            ),
            CloudEventsRejection::InvalidGzip(e) => write!(f, "invalid gzip body: {e}"),
            CloudEventsRejection::DecodedTooLarge => write!(
                f,
                "decompressed request body larger than {MAX_DECODED_BODY} bytes"
            ),
            CloudEventsRejection::ContentTypes => f.write_str("more than one Content-Type header"),
        }
    }
}

impl std::error::Error for CloudEventsRejection {}

impl IntoResponse for CloudEventsRejection {
    fn into_response(self) -> Response {
        // RFC 9110, 15.5.16: a `415` for the content coding says which are
        // taken in `Accept-Encoding` (as the built-in receiver does).
        let accept_encoding = matches!(self, CloudEventsRejection::UnsupportedEncoding(_));
        let status = match &self {
            CloudEventsRejection::Body(_) => None,
            CloudEventsRejection::Invalid(ParseError::UnsupportedFormat)
            | CloudEventsRejection::UnsupportedEncoding(_) => {
                Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            CloudEventsRejection::Invalid(_)
            | CloudEventsRejection::InvalidGzip(_)
            | CloudEventsRejection::ContentTypes => Some(StatusCode::BAD_REQUEST),
            CloudEventsRejection::DecodedTooLarge => Some(StatusCode::PAYLOAD_TOO_LARGE),
        };
        match (self, status) {
            (CloudEventsRejection::Body(e), _) => e.into_response(),
            (other, status) => {
                let status = status.unwrap_or(StatusCode::BAD_REQUEST);
                let mut res = (status, format!("{other}\n")).into_response();
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                if accept_encoding {
                    res.headers_mut().insert(
                        header::ACCEPT_ENCODING,
                        HeaderValue::from_static("gzip, identity"),
                    );
                }
                res
            }
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for CloudEvents {
    type Rejection = CloudEventsRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let coding = content_coding(&headers).ok_or_else(|| {
            let values = headers.get_all(header::CONTENT_ENCODING).iter();
            let values: Vec<_> = values
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .collect();
            CloudEventsRejection::UnsupportedEncoding(values.join(", "))
        })?;
        // The first of two would pick the content mode (and a proxy may
        // read the other): refused, as the built-in receiver does.
        if headers
            .get_all(header::CONTENT_TYPE)
            .iter()
            .nth(1)
            .is_some()
        {
            return Err(CloudEventsRejection::ContentTypes);
        }
        // Bytes outside visible ASCII are no media type (the receiver
        // refuses them too; the core would read UTF-8 ones).
        if headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.to_str().is_err())
        {
            return Err(CloudEventsRejection::Invalid(ParseError::InvalidHeader));
        }
        // A gzip body is limited twice: as received, and once decoded, by
        // the same limit (the router's), for which its extensions are kept.
        let extensions = (coding == Coding::Gzip).then(|| req.extensions().clone());
        let body = Bytes::from_request(req, state)
            .await
            .map_err(CloudEventsRejection::Body)?;
        // The content mode is the head's to say, as the built-in receiver
        // reads it: an event format other than JSON is `415` before the body
        // is inflated, not `400` for a body that is not gzip.
        if let Some(ct) = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            content_mode(Some(ct)).map_err(CloudEventsRejection::Invalid)?;
        }
        let body = match coding {
            Coding::Identity => body,
            Coding::Gzip => match gunzip(&body, MAX_DECODED_BODY) {
                // The router's `DefaultBodyLimit` bounds what the handler
                // gets, as the built-in receiver's `max_body_bytes` bounds
                // the decoded body: a few KiB of gzip under a 64 KiB limit
                // decoded to 16 MiB went through. axum keeps the limit to
                // itself, so the decoded bytes are buffered again under it
                // (one chunk: not copied).
                Ok(decoded) => {
                    let mut again = Request::new(axum_core::body::Body::from(decoded));
                    if let Some(extensions) = extensions {
                        *again.extensions_mut() = extensions;
                    }
                    Bytes::from_request(again, state)
                        .await
                        .map_err(CloudEventsRejection::Body)?
                }
                Err(GunzipError::Invalid(e)) => return Err(CloudEventsRejection::InvalidGzip(e)),
                Err(GunzipError::TooLarge) => return Err(CloudEventsRejection::DecodedTooLarge),
            },
        };
        let mut events = CloudEvents {
            headers,
            body,
            len: 0,
            batched: false,
        };
        let mut n = 0;
        let batched = events
            .visit(|_| n += 1)
            .map_err(CloudEventsRejection::Invalid)?;
        events.len = n;
        events.batched = batched;
        Ok(events)
    }
}

impl CloudEvents {
    /// How many events the request held (1 in binary and structured mode).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the request held no event (an empty batch).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the request was in batched mode.
    pub fn is_batch(&self) -> bool {
        self.batched
    }

    /// The request's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request's body, decoded: as received, or inflated when it came
    /// with `Content-Encoding: gzip` (the events borrow these bytes; the
    /// header is still in [`headers`](Self::headers)).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Calls `f` with each event, in order. The events were checked when the
    /// request was extracted; each borrows the body and a scratch buffer for
    /// its escaped strings, so it lives for the call only.
    pub fn for_each<F: FnMut(&Event<'_>)>(&self, f: F) {
        // Checked whole at extraction: the same bytes parse the same way again.
        let _ = self.visit(f);
    }

    /// Parses the request and calls `f` with each event as it is read.
    /// `Ok(true)` for a batch. Extraction calls it with a counter, so every
    /// event is checked before [`for_each`](Self::for_each) hands one over.
    fn visit(&self, mut f: impl FnMut(&Event<'_>)) -> Result<bool, ParseError> {
        // Unescaping never makes a string longer: the body's size is enough.
        let mut buf = vec![0u8; self.body.len() + crate::http_types::header_bytes(&self.headers)];
        let mut scratch = Scratch::new(&mut buf);
        let message = crate::http_types::parse(&self.headers, &self.body, &mut scratch)?;

        match message {
            Message::Event(ev) => {
                f(&ev);
                Ok(false)
            }
            Message::Batch(mut batch) => {
                let mut scratch = vec![0u8; self.body.len()];
                while let Some(ev) = batch.next_event(&mut scratch) {
                    f(&ev?);
                }
                Ok(true)
            }
            // `Message` is non-exhaustive: a kind added later is not ours to guess.
            _ => Err(ParseError::UnsupportedFormat),
        }
    }
}
